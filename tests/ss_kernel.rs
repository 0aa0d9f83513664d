//! mptcp-ss against the kernel: a real MPTCP connection with two subflows
//! between two network namespaces, then
//! - `mptcp-ss --once --json` carries the same tokens, ids, flags, ssnoff
//!   and subflow counts as `ss -tinM` taken beside it, on both sides;
//! - the TUI, driven in tmux, shows the connection, its help, and quits on `q`.
mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{NetNs, bin, require_interop};
use serde_json::Value;

/// A server that accepts one MPTCP connection over IPv4 and one over IPv6,
/// echoes the first message of each and then holds them until its stdin
/// closes.
const SERVER: &str = r#"
import socket, sys
ls = []
for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    s = socket.socket(fam, socket.SOCK_STREAM, 262)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, 10000)); s.listen(4)
    ls.append(s)
print("listening", flush=True)
held = []
for s in ls:
    c, _ = s.accept()
    c.sendall(c.recv(100))
    held.append(c)
sys.stdin.read()
"#;

/// A client that connects over MPTCP to the server's IPv4 then IPv6
/// address, checks the echoes and holds the connections until its stdin
/// closes.
const CLIENT: &str = r#"
import socket, sys
held = []
for fam, addr in ((socket.AF_INET, "10.91.1.2"), (socket.AF_INET6, "fd91:1::2")):
    s = socket.socket(fam, socket.SOCK_STREAM, 262)
    s.connect((addr, 10000))
    s.sendall(b"hello")
    assert s.recv(100) == b"hello"
    held.append(s)
print("connected", flush=True)
sys.stdin.read()
"#;

/// What `ss -tinM` says about one socket.
#[derive(Debug, Default, Clone)]
struct SsSock {
    netid: String,
    state: String,
    local: String,
    remote: String,
    info: String,
}

impl SsSock {
    /// The value after `name:` in the info line.
    fn field(&self, name: &str) -> Option<String> {
        self.info.split_whitespace().find_map(|w| w.strip_prefix(&format!("{name}:")).map(str::to_string))
    }
    /// `token:REM(id:R)/LOC(id:L)` -> (rem, id_rem, loc, id_loc).
    fn subflow_tokens(&self) -> Option<(u32, u8, u32, u8)> {
        let t = self.field("token")?;
        let (rem, loc) = t.split_once('/')?;
        let part = |p: &str| -> Option<(u32, u8)> {
            let (tok, id) = p.split_once("(id:")?;
            Some((u32::from_str_radix(tok, 16).ok()?, id.trim_end_matches(')').parse().ok()?))
        };
        let (r, ir) = part(rem)?;
        let (l, il) = part(loc)?;
        Some((r, ir, l, il))
    }
}

/// Parse `ss -tinM` text: a socket line, then a tab-indented info line.
fn parse_ss(text: &str) -> Vec<SsSock> {
    let mut out: Vec<SsSock> = Vec::new();
    for line in text.lines().skip(1) {
        if line.starts_with('\t') || line.starts_with(' ') {
            if let Some(last) = out.last_mut() {
                last.info.push(' ');
                last.info.push_str(line.trim());
            }
            continue;
        }
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 6 {
            continue;
        }
        // ss writes "ADDR%IFACE:PORT" for a socket bound to a device.
        let strip_if = |a: &str| match (a.find('%'), a.rfind(':')) {
            (Some(p), Some(c)) if p < c => format!("{}{}", &a[..p], &a[c..]),
            _ => a.to_string(),
        };
        out.push(SsSock {
            netid: w[0].into(),
            state: w[1].into(),
            local: strip_if(w[4]),
            remote: strip_if(w[5]),
            info: String::new(),
        });
    }
    out
}

fn hex(s: &str) -> u32 {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

struct Held(Child);

impl Held {
    fn expect_line(&mut self, want: &str) {
        let mut line = String::new();
        let out = self.0.stdout.as_mut().unwrap();
        BufReader::new(out).read_line(&mut line).unwrap();
        if line.trim() != want {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(self.0.stderr.as_mut().unwrap(), &mut err);
            panic!("expected {want:?}, got {line:?}; stderr: {err}");
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Two namespaces joined by two links, MPTCP limits for two subflows, and
/// a client endpoint on the second link so the client opens a join.
fn topology() -> (NetNs, NetNs) {
    let c = NetNs::new("ssc");
    let s = NetNs::new("sss");
    NetNs::veth(&c, "c1", "10.91.1.1/24", &s, "s1", "10.91.1.2/24");
    NetNs::veth(&c, "c2", "10.91.2.1/24", &s, "s2", "10.91.2.2/24");
    c.sh("ip addr add fd91:1::1/64 dev c1 nodad && ip addr add fd91:2::1/64 dev c2 nodad");
    s.sh("ip addr add fd91:1::2/64 dev s1 nodad && ip addr add fd91:2::2/64 dev s2 nodad");
    for ns in [&c, &s] {
        ns.sh("sysctl -qw net.mptcp.enabled=1 && ip mptcp limits set subflow 2 add_addr_accepted 2");
    }
    // The join is bound to c2, so it reaches the server's 10.91.1.2 over the
    // second link; the server answers 10.91.2.1 over its connected route.
    c.sh("ip mptcp endpoint add 10.91.2.1 dev c2 subflow && ip mptcp endpoint add fd91:2::1 dev c2 subflow");
    // IPv4 finds 10.91.1.2 on c2 by itself (a device-bound lookup falls back
    // to on-link, and s2 answers ARP for any local address); IPv6 needs a
    // route from the second address over c2 and, since neighbour discovery
    // only answers for s2's own addresses, a static neighbour.
    let mac = s.sh("cat /sys/class/net/s2/address");
    c.sh(&format!(
        "ip -6 rule add from fd91:2::1 table 102 && ip -6 route add fd91:1::2 dev c2 table 102 && \
         ip -6 neigh add fd91:1::2 lladdr {} dev c2 nud permanent",
        mac.trim()
    ));
    (c, s)
}

/// `ss -tinM` in `ns` once both connections have both their subflows
/// established on that side.
fn wait_two_subflows(ns: &NetNs) -> Vec<SsSock> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let socks = parse_ss(&ns.sh("ss -tinM"));
        let sf = socks.iter().filter(|s| s.netid == "tcp" && s.state == "ESTAB" && s.info.contains("tcp-ulp-mptcp"));
        if sf.count() == 4 {
            return socks;
        }
        assert!(Instant::now() < deadline, "not four established subflows in {}: {socks:#?}", ns.name);
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// mptcp-ss --once --json in `ns`.
fn mptcp_ss_json(ns: &NetNs) -> Value {
    let out = ns.cmd(bin("mptcp-ss")).args(["--once", "--json", "--no-embedded"]).output().unwrap();
    assert!(out.status.success(), "mptcp-ss failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The check the issue asks for, on one side: every established MPTCP
/// connection ss lists is in mptcp-ss's JSON with the same facts.
fn compare(side: &str, ss: &[SsSock], json: &Value) {
    let msks: Vec<&SsSock> = ss.iter().filter(|s| s.netid == "mptcp" && s.state == "ESTAB").collect();
    assert_eq!(msks.len(), 2, "{side}: two MPTCP connections in ss: {ss:#?}");
    let ours = json["connections"].as_array().unwrap().iter().filter(|c| c["state"] == "ESTAB").count();
    assert_eq!(ours, 2, "{side}: two established connections in mptcp-ss: {json:#}");
    for m in msks {
        compare_conn(side, ss, m, json);
    }
}

fn compare_conn(side: &str, ss: &[SsSock], m: &SsSock, json: &Value) {
    let conns = json["connections"].as_array().unwrap();
    let token = u32::from_str_radix(&m.field("token").expect("ss prints the token"), 16).unwrap();
    let c = conns
        .iter()
        .find(|c| c["token"].as_str().map(hex) == Some(token))
        .unwrap_or_else(|| panic!("{side}: token {token:08x} not in mptcp-ss: {json:#}"));
    assert_eq!(c["source"], "kernel");
    assert_eq!(c["state"], "ESTAB");
    assert_eq!((c["local"].as_str().unwrap(), c["remote"].as_str().unwrap()), (m.local.as_str(), m.remote.as_str()));
    assert_eq!(c["fallback"], false);
    assert_eq!(c["remote_key"], m.info.split_whitespace().any(|w| w == "remote_key"));
    let ss_used: u64 = m.field("subflows").map(|v| v.parse().unwrap()).unwrap_or(0);
    assert_eq!(c["subflows_used"].as_u64(), Some(ss_used), "{side}: subflows:");
    assert_eq!(c["subflows_max"].as_u64(), m.field("subflows_max").map(|v| v.parse().unwrap()), "{side}");
    // ss's subflows of this connection: those whose local token is its token.
    let ss_sf: BTreeMap<String, &SsSock> = ss
        .iter()
        .filter(|s| s.netid == "tcp" && s.subflow_tokens().is_some_and(|t| t.2 == token))
        .map(|s| (format!("{}-{}", s.local, s.remote), s))
        .collect();
    let ours = c["subflows"].as_array().unwrap();
    assert_eq!(ours.len(), 2, "{side}: two subflows in mptcp-ss: {c:#}");
    assert_eq!(ss_sf.len(), ours.len(), "{side}: same subflow count as ss");
    for sf in ours {
        let k = format!("{}-{}", sf["local"].as_str().unwrap(), sf["remote"].as_str().unwrap());
        let s = ss_sf.get(&k).unwrap_or_else(|| panic!("{side}: subflow {k} not in ss: {ss_sf:#?}"));
        let (rem, id_rem, loc, id_loc) = s.subflow_tokens().unwrap();
        assert_eq!(sf["flags"].as_str(), s.field("flags").as_deref(), "{side} {k}: flags");
        assert_eq!(hex(sf["token_rem"].as_str().unwrap()), rem, "{side} {k}: token_rem");
        assert_eq!(hex(sf["token_loc"].as_str().unwrap()), loc, "{side} {k}: token_loc");
        assert_eq!(sf["id_rem"].as_u64(), Some(u64::from(id_rem)), "{side} {k}: id_rem");
        assert_eq!(sf["id_loc"].as_u64(), Some(u64::from(id_loc)), "{side} {k}: id_loc");
        let ssnoff = u32::from_str_radix(&s.field("ssnoff").unwrap(), 16).unwrap();
        assert_eq!(sf["ssnoff"].as_u64(), Some(u64::from(ssnoff)), "{side} {k}: ssnoff");
        assert_eq!(sf["state"], "ESTAB");
        assert!(sf["cwnd"].as_u64().is_some_and(|v| v > 0), "{side} {k}: cwnd from tcp_info");
    }
    // One subflow was opened by MP_CAPABLE, the other by MP_JOIN.
    let flags: Vec<&str> = ours.iter().map(|s| s["flags"].as_str().unwrap()).collect();
    assert!(flags.iter().any(|f| f.contains('M')) && flags.iter().any(|f| f.contains('J')), "{side}: {flags:?}");
}

/// tmux on a private server socket, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }
    fn capture(&self) -> String {
        let out = self.cmd().args(["capture-pane", "-p", "-t", "main"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn wait_for(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let screen = self.capture();
            if screen.contains(what) {
                return screen;
            }
            assert!(Instant::now() < deadline, "the view never showed {what:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    fn alive(&self) -> bool {
        self.cmd().args(["has-session", "-t", "main"]).stderr(Stdio::null()).status().unwrap().success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").stderr(Stdio::null()).status();
    }
}

#[test]
fn kernel_connection_with_two_subflows() {
    require_interop(&["tmux", "python3"]);
    let (c, s) = topology();
    let mut server = Held(s.spawn("python3", &["-c", SERVER]));
    server.expect_line("listening");
    let mut client = Held(c.spawn("python3", &["-c", CLIENT]));
    client.expect_line("connected");

    for (side, ns) in [("client", &c), ("server", &s)] {
        let ss = wait_two_subflows(ns);
        let json = mptcp_ss_json(ns);
        // Idle connection: nothing moves between the two readings, but take
        // ss again to be sure the comparison is against a settled state.
        let ss_after = parse_ss(&ns.sh("ss -tinM"));
        assert_eq!(
            ss.iter().map(|s| &s.info).filter(|i| i.contains("tcp-ulp")).count(),
            ss_after.iter().map(|s| &s.info).filter(|i| i.contains("tcp-ulp")).count()
        );
        compare(side, &ss_after, &json);
    }
    // The server side also lists its listener with the TCP listener under it.
    let json = mptcp_ss_json(&s);
    let listeners: Vec<&Value> =
        json["connections"].as_array().unwrap().iter().filter(|c| c["state"] == "LISTEN").collect();
    let mut locals: Vec<&str> = listeners.iter().map(|l| l["local"].as_str().unwrap()).collect();
    locals.sort();
    assert_eq!(locals, ["0.0.0.0:10000", "[::]:10000"], "{json:#}");
    assert!(listeners.iter().all(|l| l["subflows"][0]["state"] == "LISTEN"), "{json:#}");

    // The text form carries ss's subflow field formats.
    let out = c.cmd(bin("mptcp-ss")).args(["--once", "--no-embedded"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let ss = parse_ss(&c.sh("ss -tinM"));
    for sf in ss.iter().filter(|s| s.netid == "tcp" && s.info.contains("tcp-ulp-mptcp")) {
        let want =
            format!("tcp-ulp-mptcp flags:{} token:{} seq:", sf.field("flags").unwrap(), sf.field("token").unwrap());
        assert!(text.contains(&want), "missing {want:?} in\n{text}");
        assert!(text.contains(&format!(" ssnoff:{} ", sf.field("ssnoff").unwrap())), "{text}");
    }

    // The TUI in tmux.
    let tmux = Tmux { socket: format!("mptcp-ss-test-{}", std::process::id()) };
    let cmdline = format!("ip netns exec {} {} --interval 0.3 --no-embedded", c.name, bin("mptcp-ss").display());
    let ok = tmux.cmd().args(["new-session", "-d", "-s", "main", "-x", "200", "-y", "50", &cmdline]).status().unwrap();
    assert!(ok.success(), "tmux new-session failed");
    let token = format!("{:08x}", hex(json_token(&mptcp_ss_json(&c))));
    let screen = tmux.wait_for(&token);
    assert!(screen.contains("mptcp-ss  2 connections"), "{screen}");
    assert!(screen.contains("10.91.1.1:") && screen.contains("10.91.1.2:10000"), "{screen}");
    assert!(screen.contains("[fd91:1::2]:10000"), "{screen}");
    assert!(screen.contains("Jjec") && screen.contains("Mmec"), "both subflows with their flags:\n{screen}");
    // Path-manager events arrive in the log: dropping the client's endpoints
    // closes the joined subflows.
    c.sh("ip mptcp endpoint flush");
    let screen = tmux.wait_for("sub_closed");
    assert!(
        screen.lines().any(|l| l.contains("kernel         sub_closed")
            && l.contains(" 10.91.2.1:")
            && l.contains("-> 10.91.1.2:10000 ids 1/0")),
        "{screen}"
    );
    // The help spells out the flags.
    tmux.cmd().args(["send-keys", "-t", "main", "?"]).status().unwrap();
    tmux.wait_for("we sent MP_JOIN");
    // Any key closes the help; q quits.
    tmux.cmd().args(["send-keys", "-t", "main", "j"]).status().unwrap();
    tmux.cmd().args(["send-keys", "-t", "main", "q"]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while tmux.alive() {
        assert!(Instant::now() < deadline, "mptcp-ss did not quit on q:\n{}", tmux.capture());
        std::thread::sleep(Duration::from_millis(50));
    }

    // Let both programs end cleanly.
    for h in [&mut client, &mut server] {
        let _ = h.0.stdin.take().map(|mut i| i.write_all(b""));
    }
}

fn json_token(json: &Value) -> &str {
    json["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["state"] == "ESTAB")
        .and_then(|c| c["token"].as_str())
        .expect("an established connection with a token")
}
