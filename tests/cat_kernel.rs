//! `mptcp-cat --stack kernel` against independent kernel MPTCP peers
//! (python3's socket module with protocol 262, ncat under mptcpize) and
//! plain-TCP peers, each test in its own pair of network namespaces.
//! Needs root, iproute2, python3, ncat, mptcpize, tc.

mod common;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{NetNs, assert_mib_clean, bin, finish, pseudo_random_bytes, require_interop};
use sha2::{Digest, Sha256};

const SRV: &str = "10.0.1.2";

/// Client and server namespaces joined by one veth pair (10.0.1.0/24), or
/// two (10.0.2.0/24 as the second path).
struct Pair {
    cli: NetNs,
    srv: NetNs,
    dir: tempfile::TempDir,
}

fn pair(tag: &str, paths: usize) -> Pair {
    let cli = NetNs::new(&format!("{tag}c"));
    let srv = NetNs::new(&format!("{tag}s"));
    for p in 1..=paths {
        let (a, b) = (format!("mc{p}{}", std::process::id() % 10000), format!("ms{p}{}", std::process::id() % 10000));
        NetNs::veth(&cli, &a, &format!("10.0.{p}.1/24"), &srv, &b, &format!("10.0.{p}.2/24"));
    }
    Pair { cli, srv, dir: tempfile::tempdir().expect("tempdir") }
}

impl Pair {
    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn sha(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// Start `program args` in `ns` with stdin from `input` (or /dev/null) and
/// stdout to `out` (or piped).
fn start(
    ns: &NetNs,
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    input: Option<&Path>,
    out: Option<&Path>,
) -> Child {
    let mut c = ns.cmd(program);
    c.args(args);
    c.stdin(match input {
        Some(p) => Stdio::from(File::open(p).unwrap()),
        None => Stdio::null(),
    });
    c.stdout(match out {
        Some(p) => Stdio::from(File::create(p).unwrap()),
        None => Stdio::piped(),
    });
    c.stderr(Stdio::piped());
    c.spawn().expect("spawn")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn cat() -> PathBuf {
    bin("mptcp-cat")
}

/// A python3 peer: `server PORT` prints the sha256 of all it received;
/// `client HOST PORT FILE` sends FILE and prints the sha256 of the reply.
/// PROTO 262 is MPTCP, 6 plain TCP.
const PY_PEER: &str = r#"
import hashlib, socket, sys
mode, proto = sys.argv[1], int(sys.argv[2])
if mode == "server":
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((sys.argv[3], int(sys.argv[4]))); l.listen(1)
    c, _ = l.accept()
    if len(sys.argv) > 5 and sys.argv[5] == "reset":
        c.recv(1000)
        import struct
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close(); sys.exit(0)
    h = hashlib.sha256()
    while True:
        b = c.recv(1 << 16)
        if not b: break
        h.update(b)
    if len(sys.argv) > 5:
        c.sendall(open(sys.argv[5], "rb").read())
    c.close()
    print(h.hexdigest())
else:
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
    c.connect((sys.argv[3], int(sys.argv[4])))
    c.sendall(open(sys.argv[5], "rb").read())
    c.shutdown(socket.SHUT_WR)
    h = hashlib.sha256()
    while True:
        b = c.recv(1 << 16)
        if not b: break
        h.update(b)
    print(h.hexdigest())
"#;

fn py(p: &Pair) -> String {
    let path = p.path("peer.py");
    std::fs::write(&path, PY_PEER).unwrap();
    path.to_string_lossy().into_owned()
}

fn handshake_ok(mib: &std::collections::BTreeMap<String, u64>, what: &str) {
    assert_mib_clean(mib);
    let get = |k: &str| mib.get(k).copied().unwrap_or(0);
    assert!(
        get("MPTcpExtMPCapableSYNRX") + get("MPTcpExtMPCapableSYNACKRX") >= 1,
        "{what}: no MP_CAPABLE handshake counted: {mib:?}"
    );
}

#[test]
fn client_to_python_server_20mb() {
    require_interop(&["python3"]);
    let p = pair("kpy", 1);
    let data = pseudo_random_bytes(20 << 20, 1);
    let input = p.file("in.bin", &data);
    let peer = py(&p);
    let srv = start(&p.srv, "python3", &[&peer, "server", "262", SRV, "5000"], None, None);
    p.srv.wait_listen(5000);
    let cli = start(&p.cli, cat(), &["-v", SRV, "5000"], Some(&input), None);
    let co = finish(cli, "mptcp-cat client", 60);
    let so = finish(srv, "python server", 60);
    assert!(co.status.success(), "client failed: {}", stderr(&co));
    assert_eq!(String::from_utf8_lossy(&so.stdout).trim(), sha(&data), "python received other bytes");
    let e = stderr(&co);
    assert!(e.contains("MPTCP established: token 0x"), "{e}");
    assert!(e.contains("subflow #1 open: 10.0.1.1:"), "{e}");
    assert!(e.contains("20971520 bytes sent"), "{e}");
    handshake_ok(&p.srv.mptcp_mib(), "server");
    assert_mib_clean(&p.cli.mptcp_mib());
}

#[test]
fn python_client_to_server_20mb_both_ways() {
    require_interop(&["python3"]);
    let p = pair("kpys", 1);
    let up = pseudo_random_bytes(20 << 20, 2);
    let down = pseudo_random_bytes(3 << 20, 3);
    let up_f = p.file("up.bin", &up);
    let down_f = p.file("down.bin", &down);
    let out = p.path("out.bin");
    let peer = py(&p);
    let srv = start(&p.srv, cat(), &["-v", "-l", "5001"], Some(&down_f), Some(&out));
    p.srv.wait_listen(5001);
    let cli = start(&p.cli, "python3", &[&peer, "client", "262", SRV, "5001", up_f.to_str().unwrap()], None, None);
    let co = finish(cli, "python client", 60);
    let so = finish(srv, "mptcp-cat server", 60);
    assert!(so.status.success(), "server failed: {}", stderr(&so));
    assert_eq!(sha(&std::fs::read(&out).unwrap()), sha(&up), "server wrote other bytes");
    assert_eq!(String::from_utf8_lossy(&co.stdout).trim(), sha(&down), "client received other bytes");
    let e = stderr(&so);
    assert!(e.contains("connection from 10.0.1.1:") && e.contains("MPTCP established"), "{e}");
    handshake_ok(&p.srv.mptcp_mib(), "server");
    handshake_ok(&p.cli.mptcp_mib(), "client");
}

#[test]
fn ncat_under_mptcpize_both_ways() {
    require_interop(&["ncat", "mptcpize"]);
    let p = pair("kncat", 1);
    let data = pseudo_random_bytes(20 << 20, 4);
    let input = p.file("in.bin", &data);
    // Our client -> ncat server.
    let out1 = p.path("ncat.out");
    let srv = start(&p.srv, "mptcpize", &["run", "ncat", "-l", SRV, "5002"], None, Some(&out1));
    p.srv.wait_listen(5002);
    let cli = start(&p.cli, cat(), &["-v", "--require-mptcp", SRV, "5002"], Some(&input), None);
    let co = finish(cli, "mptcp-cat client", 60);
    finish(srv, "ncat server", 60);
    assert!(co.status.success(), "client failed: {}", stderr(&co));
    assert_eq!(sha(&std::fs::read(&out1).unwrap()), sha(&data));
    // ncat client -> our server.
    let out2 = p.path("cat.out");
    let srv = start(&p.srv, cat(), &["-v", "--require-mptcp", "-l", SRV, "5003"], None, Some(&out2));
    p.srv.wait_listen(5003);
    let cli = start(&p.cli, "mptcpize", &["run", "ncat", "--send-only", SRV, "5003"], Some(&input), None);
    finish(cli, "ncat client", 60);
    let so = finish(srv, "mptcp-cat server", 60);
    assert!(so.status.success(), "server failed: {}", stderr(&so));
    assert_eq!(sha(&std::fs::read(&out2).unwrap()), sha(&data));
    handshake_ok(&p.srv.mptcp_mib(), "server");
    assert_mib_clean(&p.cli.mptcp_mib());
}

#[test]
fn two_subflows_through_endpoints() {
    require_interop(&["python3", "tc"]);
    let p = pair("k2sf", 2);
    // Pace both client links so the join completes while data flows.
    for l in 1..=2 {
        let dev = format!("mc{l}{}", std::process::id() % 10000);
        p.cli.sh(&format!("tc qdisc add dev {dev} root tbf rate 100mbit burst 64kb latency 100ms"));
    }
    // An ADD_ADDR the client could not use yet is sent again after 1s, not 120s.
    p.srv.sh("sysctl -qw net.mptcp.add_addr_timeout=1");
    let data = pseudo_random_bytes(20 << 20, 5);
    let out = p.path("out.bin");
    // The server announces its second address (a `signal` endpoint made from
    // --local); the client accepts one ADD_ADDR (--limits 2,1) and joins.
    // Under load the kernel server may refuse a join that arrives while it
    // finishes establishing the connection (MPTcpExtMPJoinRejected, a race of
    // the kernel with itself on a zero-delay link): up to 3 attempts.
    let nz = |m: std::collections::BTreeMap<String, u64>| {
        m.into_iter().filter(|(_, v)| *v != 0).map(|(k, v)| format!("{k}={v} ")).collect::<String>()
    };
    let mut failures = String::new();
    let mut attempt = 0;
    let (srv, mut cli, mut stdin, reader, port) = loop {
        attempt += 1;
        if attempt > 3 {
            panic!("the client never reported a second subflow in 3 attempts:\n{failures}");
        }
        let port = (5003 + attempt).to_string();
        let mut srv = start(
            &p.srv,
            cat(),
            &["-v", "-l", "--local", "10.0.1.2/24", "--local", "10.0.2.2/24", "--limits", "2", &port],
            None,
            Some(&out),
        );
        p.srv.wait_listen(5003 + attempt);
        // Standard input is fed in two parts: the rest only once the client
        // has reported the second subflow open, so that it carries data.
        let mut cli = p
            .cli
            .cmd(cat())
            .args(["-v", "--limits", "2,1", SRV, &port])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = cli.stdin.take().unwrap();
        let err = cli.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut all = String::new();
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        stdin.write_all(&data[..1 << 20]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(8);
        let mut seen = String::new();
        let joined = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains("subflow #2 open") => break true,
                Ok(l) => seen.push_str(&(l + "\n")),
                Err(_) => break false,
            }
        };
        if joined {
            break (srv, cli, stdin, reader, port);
        }
        // SIGTERM, so that each removes what it set up (endpoint, limits).
        for c in [&cli, &srv] {
            // SAFETY: kill(2) on a child we started.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        let _ = cli.wait();
        let _ = srv.wait();
        failures.push_str(&format!(
            "attempt {attempt}: {seen}client MIB: {}\nserver MIB: {}\n",
            nz(p.cli.mptcp_mib()),
            nz(p.srv.mptcp_mib())
        ));
    };
    let _ = &mut cli;
    stdin.write_all(&data[1 << 20..]).unwrap();
    drop(stdin);
    let co = finish(cli, "mptcp-cat client", 60);
    let co_err = reader.join().unwrap();
    let so = finish(srv, "mptcp-cat server", 60);
    let (ce, se) = (co_err, stderr(&so));
    assert!(co.status.success(), "client failed: {ce}");
    assert!(so.status.success(), "server failed: {se}");
    assert_eq!(sha(&std::fs::read(&out).unwrap()), sha(&data));
    assert!(se.contains("endpoint 10.0.2.2 id") && se.contains("signal"), "{se}");
    assert!(ce.contains("path-manager limits: subflows 2, add_addr_accepted 1"), "{ce}");
    assert!(ce.contains("subflow #2 open: 10.0.2.1:"), "second subflow not reported: {ce}");
    assert!(
        se.contains(&format!("subflow #2 open: 10.0.2.2:{port} -> 10.0.2.1:")),
        "server did not see the join: {se}"
    );
    // Address ids from sock_diag: the announced endpoint is id 1 on the server.
    let line = |e: &str, pat: &str| e.lines().find(|l| l.contains(pat)).unwrap_or_default().to_string();
    assert!(line(&ce, "subflow #2 open").contains("remote 1;"), "{ce}");
    assert!(line(&se, "subflow #2 open").contains("(address ids local 1,"), "{se}");
    assert!(line(&se, "subflow #1 open").contains("(address ids local 0, remote 0;"), "{se}");
    // Both subflows carried data.
    for line in ce.lines().filter(|l| l.contains("subflow #") && l.contains(": sent ")) {
        let sent: u64 = line.split(": sent ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!(sent > 0, "a subflow carried nothing: {line}");
    }
    let mib = p.srv.mptcp_mib();
    handshake_ok(&mib, "server");
    if attempt > 1 {
        eprintln!("note: the join succeeded at attempt {attempt}:\n{failures}");
    }
    assert!(mib.get("MPTcpExtMPJoinAckRx").copied().unwrap_or(0) >= 1, "no join accepted: {mib:?}");
    assert_mib_clean(&p.cli.mptcp_mib());
    // The endpoint and limits were put back.
    assert_eq!(p.srv.sh("ip mptcp endpoint show").trim(), "");
    assert!(p.cli.sh("ip mptcp limits").contains("add_addr_accepted 0"));
}

#[test]
fn fallback_against_plain_tcp_and_require_mptcp() {
    require_interop(&["python3"]);
    let p = pair("kfb", 1);
    let data = pseudo_random_bytes(1 << 20, 6);
    let input = p.file("in.bin", &data);
    let peer = py(&p);
    // Our client -> plain TCP server: data arrives, -v says fallback.
    let srv = start(&p.srv, "python3", &[&peer, "server", "6", SRV, "5005"], None, None);
    p.srv.wait_listen(5005);
    let co = finish(start(&p.cli, cat(), &["-v", SRV, "5005"], Some(&input), None), "client", 30);
    let so = finish(srv, "python server", 30);
    assert!(co.status.success(), "{}", stderr(&co));
    assert_eq!(String::from_utf8_lossy(&so.stdout).trim(), sha(&data));
    assert!(stderr(&co).contains("fallback to plain TCP"), "{}", stderr(&co));
    // --require-mptcp turns it into an error.
    let srv = start(&p.srv, "python3", &[&peer, "server", "6", SRV, "5006"], None, None);
    p.srv.wait_listen(5006);
    let co = finish(start(&p.cli, cat(), &["--require-mptcp", SRV, "5006"], Some(&input), None), "client", 30);
    let _ = finish(srv, "python server", 30);
    assert_eq!(co.status.code(), Some(1));
    let e = stderr(&co);
    assert_eq!(e.lines().count(), 1, "not one line: {e}");
    assert!(e.contains("fallback to plain TCP") && e.contains("--require-mptcp"), "{e}");
    // Plain TCP client -> our server.
    let out = p.path("out.bin");
    let srv = start(&p.srv, cat(), &["-v", "-l", SRV, "5007"], None, Some(&out));
    p.srv.wait_listen(5007);
    let co = finish(
        start(&p.cli, "python3", &[&peer, "client", "6", SRV, "5007", input.to_str().unwrap()], None, None),
        "py",
        30,
    );
    let so = finish(srv, "server", 30);
    assert!(co.status.success() && so.status.success(), "{}", stderr(&so));
    assert_eq!(sha(&std::fs::read(&out).unwrap()), sha(&data));
    assert!(stderr(&so).contains("fallback to plain TCP: the client did not negotiate MPTCP"), "{}", stderr(&so));
}

fn one_line_failure(o: &Output, want: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "exit status for {want:?}: {e}");
    assert_eq!(e.lines().count(), 1, "not one line: {e}");
    assert!(e.starts_with("mptcp-cat: ") && e.contains(want), "expected {want:?} in {e:?}");
}

#[test]
fn errors_are_one_line() {
    require_interop(&["python3"]);
    let p = pair("kerr", 1);
    let input = p.file("in.bin", &pseudo_random_bytes(4 << 20, 7));
    let run = |ns: &NetNs, args: &[&str]| finish(start(ns, cat(), args, Some(&input), None), "mptcp-cat", 30);
    // Refused.
    one_line_failure(&run(&p.cli, &[SRV, "5999"]), "connection to 10.0.1.2:5999 refused");
    // Unreachable: no route.
    one_line_failure(&run(&p.cli, &["10.77.0.1", "80"]), "10.77.0.1:80 is unreachable");
    // Connect timeout: an on-link address nobody answers for.
    one_line_failure(&run(&p.cli, &["-w", "300ms", "10.0.1.99", "80"]), "timed out after 300ms");
    // Address in use.
    let holder = start(&p.srv, cat(), &["-l", SRV, "5010"], None, None);
    p.srv.wait_listen(5010);
    one_line_failure(&run(&p.srv, &["-l", SRV, "5010"]), "address already in use");
    drop(holder);
    // Peer reset while we send.
    let peer = py(&p);
    let srv = start(&p.srv, "python3", &[&peer, "server", "262", SRV, "5011", "reset"], None, None);
    p.srv.wait_listen(5011);
    one_line_failure(&run(&p.cli, &[SRV, "5011"]), "reset by peer");
    let _ = finish(srv, "python", 10);
    // MPTCP disabled in the namespace.
    p.cli.sh("sysctl -qw net.mptcp.enabled=0");
    one_line_failure(&run(&p.cli, &[SRV, "5000"]), "net.mptcp.enabled=0");
    // Usage errors exit 2.
    let o = run(&p.cli, &["-k", SRV, "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = run(&p.cli, &["--bogus"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn keep_open_serves_clients_concurrently() {
    require_interop(&["python3"]);
    let p = pair("kkeep", 1);
    // Each connection gets its own `sha256sum`: a client only gets its answer
    // if the server handles it while the other clients are still connected.
    let srv = start(&p.srv, cat(), &["-l", "-k", "-c", "sha256sum", SRV, "5020"], None, None);
    p.srv.wait_listen(5020);
    let script = r#"
import hashlib, socket, sys
socks = []
for i in range(3):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
    s.connect((sys.argv[1], 5020)); socks.append(s)
for i, s in enumerate(reversed(socks)):
    data = bytes([i]) * (100000 + i)
    s.sendall(data); s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = s.recv(4096)
        if not b: break
        got += b
    assert got.split()[0].decode() == hashlib.sha256(data).hexdigest(), got
print("ok")
"#;
    let f = p.file("k.py", script.as_bytes());
    let o = finish(start(&p.cli, "python3", &[f.to_str().unwrap(), SRV], None, None), "clients", 30);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ok", "{}", stderr(&o));
    // Still listening after serving them.
    p.srv.wait_listen(5020);
    let mut srv = srv;
    let _ = srv.kill();
    let _ = srv.wait();
}

#[test]
fn exec_logs_and_abort() {
    require_interop(&["python3"]);
    let p = pair("kexec", 1);
    // -e echo server; client logs both directions with -o and -x.
    let srv = start(&p.srv, cat(), &["-l", "-e", "/bin/cat", SRV, "5030"], None, None);
    p.srv.wait_listen(5030);
    let input = p.file("in.txt", b"hello world, this is a longer line of text!\n");
    let (raw, hex) = (p.path("o.log"), p.path("x.log"));
    let co = finish(
        start(
            &p.cli,
            cat(),
            &["-o", raw.to_str().unwrap(), "-x", hex.to_str().unwrap(), SRV, "5030"],
            Some(&input),
            None,
        ),
        "client",
        30,
    );
    let so = finish(srv, "server", 30);
    assert!(co.status.success() && so.status.success(), "{} {}", stderr(&co), stderr(&so));
    assert_eq!(co.stdout, std::fs::read(&input).unwrap(), "echo came back different");
    let logged = std::fs::read(&raw).unwrap();
    assert_eq!(logged.len(), 2 * 44, "-o must hold both directions");
    let hx = std::fs::read_to_string(&hex).unwrap();
    assert!(hx.starts_with("0000   68 65 6c 6c 6f 20 77 6f  72 6c 64 2c 20 74 68 69  hello.world,.thi\n"), "{hx}");
    // --abort: the kernel ends the connection with MP_FASTCLOSE.
    let out = p.path("abort.out");
    let srv = start(&p.srv, cat(), &["-l", SRV, "5031"], None, Some(&out));
    p.srv.wait_listen(5031);
    let co = finish(start(&p.cli, cat(), &["--abort", SRV, "5031"], Some(&input), None), "client", 30);
    let so = finish(srv, "server", 30);
    assert!(co.status.success(), "{}", stderr(&co));
    // An abortive close may discard what the server had not read yet; what
    // it did write is a prefix of what was sent, and it saw the reset.
    let got = std::fs::read(&out).unwrap();
    assert!(std::fs::read(&input).unwrap().starts_with(&got));
    if !so.status.success() {
        assert!(stderr(&so).contains("reset by peer"), "{}", stderr(&so));
    }
    let tx = p.cli.mptcp_mib().get("MPTcpExtMPFastcloseTx").copied().unwrap_or(0);
    let rx = p.srv.mptcp_mib().get("MPTcpExtMPFastcloseRx").copied().unwrap_or(0);
    assert!(tx >= 1 && rx >= 1, "no MP_FASTCLOSE exchanged (tx {tx}, rx {rx})");
    let _ = std::io::stderr().flush();
}

#[test]
fn source_options_idle_timeout_cc_scheduler() {
    require_interop(&["python3"]);
    let p = pair("kopt", 1);
    let input = p.file("in.txt", b"some bytes\n");
    // -s/-p choose the source; --cc and --scheduler are applied.
    let out = p.path("out.txt");
    let srv = start(&p.srv, cat(), &["-v", "-l", SRV, "5040"], None, Some(&out));
    p.srv.wait_listen(5040);
    let co = finish(
        start(
            &p.cli,
            cat(),
            &["-s", "10.0.1.1", "-p", "40555", "--cc", "reno", "--scheduler", "default", SRV, "5040"],
            Some(&input),
            None,
        ),
        "client",
        30,
    );
    let so = finish(srv, "server", 30);
    assert!(co.status.success(), "{}", stderr(&co));
    assert!(stderr(&so).contains("connection from 10.0.1.1:40555"), "{}", stderr(&so));
    assert_eq!(std::fs::read(&out).unwrap(), b"some bytes\n");
    // Bad names are one-line errors.
    let run = |args: &[&str]| finish(start(&p.cli, cat(), args, Some(&input), None), "mptcp-cat", 30);
    one_line_failure(&run(&["--cc", "nosuchcc", SRV, "5040"]), "congestion control \"nosuchcc\" is not available");
    one_line_failure(&run(&["--scheduler", "nosuchsched", SRV, "5040"]), "the kernel offers only: default");
    // -i: a silent peer that never closes ends in an idle timeout.
    let never = p.file("never.py", b"import socket,time\nl=socket.socket(socket.AF_INET,socket.SOCK_STREAM,262)\nl.bind(('10.0.1.2',5041));l.listen()\nc,_=l.accept();time.sleep(30)\n");
    let silent = start(&p.srv, "python3", &[never.to_str().unwrap()], None, None);
    p.srv.wait_listen(5041);
    let t0 = Instant::now();
    one_line_failure(
        &run(&["--recv-only", "-i", "300ms", SRV, "5041"]),
        "idle timeout: nothing sent or received for 300ms",
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    let mut silent = silent;
    let _ = silent.kill();
    let _ = silent.wait();
}

#[test]
fn send_only_and_recv_only() {
    require_interop(&["python3"]);
    let p = pair("ksr", 1);
    let up = pseudo_random_bytes(2 << 20, 8);
    let down = pseudo_random_bytes(1 << 20, 9);
    let (up_f, down_f) = (p.file("up.bin", &up), p.file("down.bin", &down));
    let peer = py(&p);
    // --send-only: what the server sends back is not written to stdout.
    // (A short reply: the client is gone once its input is sent.)
    let reply_f = p.file("reply.txt", b"thanks\n");
    let srv = start(&p.srv, "python3", &[&peer, "server", "262", SRV, "5050", reply_f.to_str().unwrap()], None, None);
    p.srv.wait_listen(5050);
    let co = finish(start(&p.cli, cat(), &["--send-only", SRV, "5050"], Some(&up_f), None), "client", 30);
    let so = finish(srv, "server", 30);
    assert!(co.status.success(), "{}", stderr(&co));
    assert!(co.stdout.is_empty());
    assert_eq!(String::from_utf8_lossy(&so.stdout).trim(), sha(&up));
    // --recv-only: stdin is not sent (the server gets nothing), the reply arrives.
    let srv = start(&p.srv, cat(), &["-l", SRV, "5051"], Some(&down_f), None);
    p.srv.wait_listen(5051);
    let co = finish(start(&p.cli, cat(), &["--recv-only", SRV, "5051"], Some(&up_f), None), "client", 30);
    let so = finish(srv, "server", 30);
    let _ = so;
    assert!(co.status.success(), "{}", stderr(&co));
    assert_eq!(sha(&co.stdout), sha(&down));
}

#[test]
fn fastopen_carries_data_in_the_syn() {
    require_interop(&[]);
    let p = pair("ktfo", 1);
    for ns in [&p.cli, &p.srv] {
        ns.sh("sysctl -qw net.ipv4.tcp_fastopen=3");
    }
    let input = p.file("in.txt", b"hello over TFO\n");
    let out = p.path("out.txt");
    let srv = start(&p.srv, cat(), &["-l", "-k", "--fastopen", "-o", out.to_str().unwrap(), SRV, "5070"], None, None);
    p.srv.wait_listen(5070);
    // The first connection fetches a cookie, the next ones use it.
    for _ in 0..3 {
        let co = finish(
            start(&p.cli, cat(), &["--fastopen", "--require-mptcp", SRV, "5070"], Some(&input), None),
            "client",
            30,
        );
        assert!(co.status.success(), "{}", stderr(&co));
    }
    let tfo = p.cli.nstat().get("TcpExtTCPFastOpenActive").copied().unwrap_or(0);
    assert!(tfo >= 1, "no connection used TCP Fast Open");
    // SIGTERM: the server ends cleanly and flushes its -o log.
    // SAFETY: kill(2) on the child we started.
    unsafe { libc::kill(srv.id() as i32, libc::SIGTERM) };
    let so = finish(srv, "server", 10);
    assert_eq!(so.status.code(), Some(128 + libc::SIGTERM), "{}", stderr(&so));
    assert_eq!(std::fs::read(&out).unwrap(), b"hello over TFO\n".repeat(3));
    assert_mib_clean(&p.srv.mptcp_mib());
}
