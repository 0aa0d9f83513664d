//! TCP Fast Open with MPTCP (RFC 7413, RFC 8684 Appendix B) between our
//! embedded stack (`mptcp-cat --stack embedded --fastopen`, through a TUN)
//! and the Linux kernel (`mptcp-cat --stack kernel --fastopen`: TCP_FASTOPEN
//! on the listener, TCP_FASTOPEN_CONNECT on the client), both ways. Each
//! test makes its own network namespace with `net.ipv4.tcp_fastopen=3`
//! (client and server, cookies required); the kernel's TcpExt counters say
//! whether the data went in the SYN, the MPTcpExt counters that MPTCP was
//! negotiated with no error. Needs root, /dev/net/tun, iproute2.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use common::{NetNs, assert_mib_clean, bin, finish, pseudo_random_bytes, require_interop};
use mptcp_tools::stack::wire::{self, flags};

const OURS: &str = "10.200.0.2/24";
const OUR_IP: &str = "10.200.0.2";
const KERNEL_IP: &str = "10.200.0.1";
const TUN: &str = "ftun0";

struct Env {
    ns: NetNs,
    dir: tempfile::TempDir,
}

impl Env {
    fn new(tag: &str) -> Env {
        let e = Env { ns: NetNs::new(tag), dir: tempfile::tempdir().expect("tempdir") };
        e.ns.sh("sysctl -qw net.ipv4.tcp_fastopen=3");
        let v = e.ns.sh("sysctl -n net.ipv4.tcp_fastopen");
        assert_eq!(v.trim(), "3", "net.ipv4.tcp_fastopen could not be set to 3 in the namespace");
        e
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).expect("write input");
        p
    }

    /// `mptcp-cat ARGS` in the namespace, stdin from `input` (or nothing),
    /// stdout to `out`.
    fn cat(&self, args: &[&str], input: Option<&Path>, out: &Path) -> Child {
        let mut c = self.ns.cmd(bin("mptcp-cat"));
        c.args(args).env("MPTCP_TOOLS_RUNTIME_DIR", self.path("run"));
        c.stdin(input.map_or_else(Stdio::null, |p| Stdio::from(File::open(p).expect("input"))));
        c.stdout(Stdio::from(File::create(out).expect("output")));
        c.stderr(Stdio::piped());
        c.spawn().expect("spawn mptcp-cat")
    }

    fn nstat(&self) -> BTreeMap<String, u64> {
        self.ns.nstat()
    }
}

fn delta(after: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>, k: &str) -> u64 {
    after.get(k).copied().unwrap_or(0) - before.get(k).copied().unwrap_or(0)
}

fn ok(o: &Output, what: &str) -> String {
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{what} failed ({}): {e}", o.status);
    e
}

/// The TCP segments of a pcap our driver wrote (LINUX_SLL2 frames), with
/// their flags and payload lengths: (from us?, flags, payload length).
fn pcap_segments(p: &Path) -> Vec<(bool, u8, usize, Option<usize>)> {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(b.len() >= 24, "{} is not a pcap", p.display());
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= b.len() {
        let caplen = u32::from_le_bytes(b[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
        let frame = &b[at + 16..(at + 16 + caplen).min(b.len())];
        at += 16 + caplen;
        // SLL2: 20 bytes of link header before the IP packet.
        let Some(ip) = frame.get(20..) else { continue };
        if let Ok(s) = wire::parse(ip, false) {
            let ours = s.src.ip().to_string() == OUR_IP;
            out.push((ours, s.flags, s.payload.len(), s.opts.fast_open.map(|c| c.len())));
        }
    }
    out
}

/// The SYNs (no ACK) in a capture: (from us?, payload length, Fast Open option length).
fn syns(segs: &[(bool, u8, usize, Option<usize>)]) -> Vec<(bool, usize, Option<usize>)> {
    segs.iter()
        .filter(|(_, f, _, _)| f & flags::SYN != 0 && f & flags::ACK == 0)
        .map(|(o, _, n, c)| (*o, *n, *c))
        .collect()
}

/// One run of our client against a kernel server started for it: `up`
/// goes, `down` comes back, both checked byte for byte. Returns the nstat
/// deltas of the namespace and our client's capture.
fn our_client_run(e: &Env, run: &str, up: &[u8], down: &[u8]) -> (BTreeMap<String, u64>, PathBuf) {
    let before = e.nstat();
    let (up_f, down_f) = (e.file(&format!("up{run}"), up), e.file(&format!("down{run}"), down));
    let (srv_out, cli_out) = (e.path(&format!("srv{run}.out")), e.path(&format!("cli{run}.out")));
    let srv = e.cat(&["--stack", "kernel", "-l", "--fastopen", "5000"], Some(&down_f), &srv_out);
    e.ns.wait_listen(5000);
    let pcap = e.path(&format!("ours{run}.pcap"));
    let cache = e.path("cookies");
    let cli = e.cat(
        &[
            "--stack",
            "embedded",
            "--tun",
            TUN,
            "--local",
            OURS,
            "--fastopen",
            "--fastopen-cache",
            cache.to_str().expect("utf-8 path"),
            "--require-mptcp",
            "--pcap",
            pcap.to_str().expect("utf-8 path"),
            KERNEL_IP,
            "5000",
        ],
        Some(&up_f),
        &cli_out,
    );
    let co = finish(cli, "our client", 60);
    let so = finish(srv, "kernel server", 30);
    ok(&co, &format!("our client (run {run})"));
    ok(&so, &format!("kernel server (run {run})"));
    assert!(std::fs::read(&srv_out).unwrap_or_default() == up, "run {run}: the kernel received other bytes");
    assert!(std::fs::read(&cli_out).unwrap_or_default() == down, "run {run}: we received other bytes");
    let after = e.nstat();
    let d: BTreeMap<String, u64> = after.keys().map(|k| (k.clone(), delta(&after, &before, k))).collect();
    assert_mib_clean(&d);
    assert!(d["MPTcpExtMPCapableSYNRX"] >= 1, "run {run}: the kernel saw no MP_CAPABLE SYN");
    assert!(d["MPTcpExtMPCapableACKRX"] >= 1, "run {run}: the kernel saw no MP_CAPABLE third ACK");
    (d, pcap)
}

#[test]
fn our_client_gets_a_cookie_then_sends_data_in_the_syn_to_a_kernel_server() {
    require_interop(&[]);
    let e = Env::new("tfoc");
    let cache = e.path("cookies");

    // Run 1: no cookie: the SYN asks for one and carries no data.
    let up1 = pseudo_random_bytes(100_000, 1);
    let down1 = pseudo_random_bytes(50_000, 2);
    let (d1, pcap1) = our_client_run(&e, "1", &up1, &down1);
    assert_eq!(d1["TcpExtTCPFastOpenCookieReqd"], 1, "the kernel saw no cookie request: {d1:?}");
    assert_eq!(d1["TcpExtTCPFastOpenPassive"], 0);
    let s1 = syns(&pcap_segments(&pcap1));
    assert_eq!(s1, vec![(true, 0, Some(0))], "one SYN, empty Fast Open option, no data");
    let text = std::fs::read_to_string(&cache).expect("the cookie cache file was written");
    assert!(text.lines().any(|l| l.starts_with(KERNEL_IP)), "no cookie for {KERNEL_IP} in {text:?}");

    // Run 2: the cookie from the file; the first bytes go in the SYN and
    // the kernel takes them (its application reads them first).
    let up2 = pseudo_random_bytes(100_000, 3);
    let down2 = pseudo_random_bytes(50_000, 4);
    let (d2, pcap2) = our_client_run(&e, "2", &up2, &down2);
    assert_eq!(d2["TcpExtTCPFastOpenPassive"], 1, "the kernel did not take SYN data: {d2:?}");
    assert_eq!(d2["TcpExtTCPFastOpenPassiveFail"], 0);
    let s2 = syns(&pcap_segments(&pcap2));
    assert_eq!(s2.len(), 1, "{s2:?}");
    assert!(s2[0].0 && s2[0].1 > 500 && s2[0].2 == Some(8), "data and an 8-byte cookie in the SYN: {s2:?}");
    // mptcp-dump reads the capture the same way.
    let o = std::process::Command::new(bin("mptcp-dump")).arg("--summary").arg(&pcap2).output().expect("mptcp-dump");
    let sum = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && sum.contains("verdict: MPTCP v1 established"), "{sum}");
    assert!(sum.contains(&format!("{} bytes of data in the SYN (TCP Fast Open)", s2[0].1)), "{sum}");
    // The mappings after the SYN's data count from after it (as Linux
    // counts them): every byte after the SYN is mapped and counted.
    let mapped = up2.len() - s2[0].1;
    assert!(sum.contains(&format!("data: {mapped} bytes client->server, {} bytes", down2.len())), "{sum}");
    assert!(!sum.contains("no mapping"), "{sum}");

    // Run 3: a wrong cookie: a normal handshake, a new cookie, the data
    // sent again after the handshake.
    let bad = format!("{KERNEL_IP} 0102030405060708\n");
    std::fs::write(&cache, bad).expect("write the cache");
    let up3 = pseudo_random_bytes(30_000, 5);
    let down3 = pseudo_random_bytes(10_000, 6);
    let (d3, pcap3) = our_client_run(&e, "3", &up3, &down3);
    assert_eq!(d3["TcpExtTCPFastOpenPassiveFail"], 1, "{d3:?}");
    assert_eq!(d3["TcpExtTCPFastOpenPassive"], 0);
    let s3 = syns(&pcap_segments(&pcap3));
    assert!(s3.len() == 1 && s3[0].1 > 0, "the SYN carried data: {s3:?}");
    let text = std::fs::read_to_string(&cache).expect("cache");
    assert!(
        text.lines().any(|l| l.starts_with(KERNEL_IP) && !l.contains("0102030405060708")),
        "the new cookie replaced the wrong one: {text:?}"
    );
}

/// Our server, echoing every connection through `cat` (what the kernel
/// client reads back proves both directions, SYN data included), once its
/// TUN is up.
fn our_echo_server(e: &Env, pcap: &Path) -> Child {
    let srv = e.cat(
        &[
            "--stack",
            "embedded",
            "--tun",
            TUN,
            "--local",
            OURS,
            "-l",
            "-k",
            "--fastopen",
            "-c",
            "cat",
            "--pcap",
            pcap.to_str().expect("utf-8 path"),
            OUR_IP,
            "5000",
        ],
        None,
        &e.path("srv.out"),
    );
    common::wait_until(&format!("our server's TUN {TUN} to come up"), std::time::Duration::from_secs(10), || {
        String::from_utf8_lossy(&e.ns.sh_any(&format!("ip -o addr show dev {TUN}")).stdout)
            .contains(&format!("{KERNEL_IP}/"))
    });
    srv
}

fn stop(mut srv: Child) {
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(srv.id() as i32, libc::SIGTERM) };
    let _ = srv.wait();
}

/// One kernel client connection to our server, its bytes echoed back and
/// checked; the namespace's nstat deltas. With `mptcp`, MPTCP must be
/// negotiated and the kernel's error counters stay at zero.
fn kernel_client_run(e: &Env, run: u64, mptcp: bool) -> BTreeMap<String, u64> {
    let before = e.nstat();
    let up = pseudo_random_bytes(60_000, 10 + run);
    let up_f = e.file(&format!("up{run}"), &up);
    let out = e.path(&format!("back{run}"));
    let mut args = vec!["--stack", "kernel", "--fastopen"];
    if mptcp {
        args.push("--require-mptcp");
    }
    args.extend([OUR_IP, "5000"]);
    let cli = e.cat(&args, Some(&up_f), &out);
    let co = finish(cli, "kernel client", 30);
    ok(&co, &format!("kernel client (run {run})"));
    assert!(std::fs::read(&out).unwrap_or_default() == up, "run {run}: the echo differs from what was sent");
    let after = e.nstat();
    let d: BTreeMap<String, u64> = after.keys().map(|k| (k.clone(), delta(&after, &before, k))).collect();
    if mptcp {
        assert_mib_clean(&d);
    }
    assert!(d["MPTcpExtMPCapableSYNACKRX"] >= 1, "run {run}: the kernel client saw no MP_CAPABLE SYN/ACK");
    d
}

#[test]
fn a_kernel_client_sends_data_in_the_syn_to_our_server() {
    require_interop(&[]);
    let e = Env::new("tfos");
    let pcap = e.path("srv.pcap");
    let srv = our_echo_server(&e, &pcap);
    let d1 = kernel_client_run(&e, 1, true);
    let d2 = kernel_client_run(&e, 2, true);
    stop(srv);
    assert_eq!(d1["TcpExtTCPFastOpenActive"], 0, "no cookie yet on the first connection");
    assert_eq!(d2["TcpExtTCPFastOpenActive"], 1, "the second SYN's data was not acknowledged: {d2:?}");
    assert_eq!(d2["TcpExtTCPFastOpenActiveFail"], 0);
    // The kernel's SYNs, as our capture saw them: a request, then data with the cookie.
    let s = syns(&pcap_segments(&pcap));
    let theirs: Vec<_> = s.iter().filter(|(ours, _, _)| !ours).collect();
    assert_eq!(theirs.len(), 2, "{s:?}");
    assert_eq!((theirs[0].1, theirs[0].2), (0, Some(0)), "first SYN: a cookie request");
    assert!(theirs[1].1 > 0 && theirs[1].2 == Some(8), "second SYN: data and our 8-byte cookie: {s:?}");

    // A new server process has a new key: the kernel's cookie is wrong
    // now. Linux then sends the SYN's bytes again unmapped, on the
    // handshake's ACK without MP_CAPABLE, and a Linux server falls back to
    // TCP (MPCapableFallbackACK; its client counts MPCapableDataFallback):
    // ours does the same, the data intact both ways.
    let pcap3 = e.path("srv3.pcap");
    let srv = our_echo_server(&e, &pcap3);
    let d3 = kernel_client_run(&e, 3, false);
    stop(srv);
    assert_eq!(d3["TcpExtTCPFastOpenActive"], 0, "{d3:?}");
    assert_eq!(d3["TcpExtTCPFastOpenActiveFail"], 1, "{d3:?}");
    let s3 = syns(&pcap_segments(&pcap3));
    assert!(s3.iter().any(|(ours, n, c)| !ours && *n > 0 && *c == Some(8)), "the SYN carried data: {s3:?}");
}

#[test]
fn a_bad_cookie_cache_file_is_a_clear_error() {
    // No network needed: the file is read before the TUN is opened.
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("cookies");
    std::fs::write(&f, "# ok\n10.200.0.1 01020304\n10.200.0.9 not-hex\n").expect("write");
    let o = std::process::Command::new(bin("mptcp-cat"))
        .args(["--stack", "embedded", "--tun", TUN, "--local", OURS, "--fastopen", "--fastopen-cache"])
        .arg(&f)
        .args([KERNEL_IP, "5000"])
        .stdin(Stdio::null())
        .output()
        .expect("run mptcp-cat");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("--fastopen-cache") && err.contains("line 3") && err.contains("not-hex"), "{err}");
    // The kernel keeps its own cookies: the option is refused there.
    let o = std::process::Command::new(bin("mptcp-cat"))
        .args(["--stack", "kernel", "--fastopen", "--fastopen-cache"])
        .arg(&f)
        .args([KERNEL_IP, "5000"])
        .output()
        .expect("run mptcp-cat");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--fastopen-cache is for --stack embedded"));
}
