//! MP_FAIL against the Linux kernel (RFC 8684 §3.7): `mptcp-cat --stack
//! embedded` through a TUN in a network namespace with
//! net.mptcp.checksum_enabled=1, and the hidden test hook of the embedded
//! driver (`MPTCP_CAT_TEST_CORRUPT_TX=N` / `_RX=N`: one payload byte of the
//! Nth data segment we send / receive is changed and the TCP checksum
//! repaired, as a middlebox would). Needs root, /dev/net/tun, iproute2.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Stdio};

use common::{NetNs, bin, pseudo_random_bytes, require_interop};
use sha2::{Digest, Sha256};

const OURS: &str = "10.200.0.2/24";
const OURS2: &str = "10.201.0.2/24";
const KERNEL_IP: &str = "10.200.0.1";
const TUN: &str = "mtun0";

fn sha(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn file_sha(p: &Path) -> String {
    sha(&std::fs::read(p).unwrap_or_default())
}

fn count(mib: &BTreeMap<String, u64>, k: &str) -> u64 {
    mib.get(k).copied().unwrap_or(0)
}

fn start(ns: &NetNs, args: &[&str], env: &[(&str, String)], input: Option<&Path>, out: &Path) -> Child {
    let mut c = ns.cmd(bin("mptcp-cat"));
    c.args(args).env("MPTCP_TOOLS_RUNTIME_DIR", out.with_extension("run"));
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(match input {
        Some(p) => Stdio::from(File::open(p).unwrap()),
        None => Stdio::null(),
    });
    c.stdout(Stdio::from(File::create(out).unwrap())).stderr(Stdio::piped());
    c.spawn().expect("spawn mptcp-cat")
}

/// Wait for `child` at most `secs` (then kill it): its status and stderr.
fn finish(child: Child, secs: u64) -> (Option<std::process::ExitStatus>, String) {
    let (status, out) = common::wait_with_deadline(child, secs);
    (status, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Our stack's counters, from the test hook's last stderr line.
fn our_mib(stderr: &str) -> BTreeMap<String, u64> {
    let line = stderr.lines().find(|l| l.contains("test hook: corrupted")).unwrap_or_else(|| panic!("{stderr}"));
    serde_json::from_str(line.split("; mib ").nth(1).unwrap()).unwrap()
}

fn assert_no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn setup(tag: &str) -> NetNs {
    require_interop(&[]);
    let ns = NetNs::new(tag);
    ns.sh("sysctl -qw net.mptcp.checksum_enabled=1");
    ns
}

/// Two subflows, we send, the kernel detects: it resets the subflow with
/// MP_FAIL + MP_TCPRST, we resend the mapping on the other one.
#[test]
fn kernel_resets_the_subflow_with_mp_fail_and_we_resend() {
    let ns = setup("mpf2");
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random_bytes(4 << 20, 71);
    let input = dir.path().join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let (srv_out, cli_out) = (dir.path().join("srv.out"), dir.path().join("cli.out"));
    let srv = start(&ns, &["--stack", "kernel", "--recv-only", "-l", "5000"], &[], None, &srv_out);
    ns.wait_listen(5000);
    let cli = start(
        &ns,
        &["--stack", "embedded", "--tun", TUN, "-v", "--local", OURS, "--local", OURS2, KERNEL_IP, "5000"],
        &[("MPTCP_CAT_TEST_CORRUPT_TX", "400".into())],
        Some(&input),
        &cli_out,
    );
    let (cst, cerr) = finish(cli, 60);
    let (sst, serr) = finish(srv, 20);
    assert_no_panic(&cerr);
    assert!(cst.is_some_and(|s| s.success()), "our client: {cerr}");
    assert!(sst.is_some_and(|s| s.success()), "kernel server: {serr}");
    assert!(cerr.contains("DSS checksums on"), "{cerr}");
    assert_eq!(file_sha(&srv_out), sha(&data), "what the kernel received");
    let kmib = ns.mptcp_mib();
    let ours = our_mib(&cerr);
    eprintln!("kernel: {kmib:?}\nours: {ours:?}");
    assert!(cerr.contains("corrupted tx 1 "), "{cerr}");
    assert!(count(&kmib, "MPTcpExtDataCsumErr") >= 1, "{kmib:?}");
    assert!(count(&kmib, "MPTcpExtMPFailTx") >= 1, "{kmib:?}");
    assert!(count(&kmib, "MPTcpExtMPRstTx") >= 1, "{kmib:?}");
    assert_eq!(count(&ours, "MPTcpExtMPFailRx"), 1, "{ours:?}");
    assert!(count(&ours, "MPTcpExtMPTCPRetrans") >= 1, "{ours:?}");
}

/// One subflow, we send, the kernel detects. What Linux 6.18 does: it sends
/// MP_FAIL on an ACK, takes our MP_FAIL answer and infinite mapping and
/// falls back (InfiniteMapRx, DssFallback), but it had delivered the failed
/// mapping as it was and maps what follows the infinite mapping to where it
/// stands, not to the mapping's DSN: our resent bytes come twice. Our side
/// ends with the fallback reason recorded, in bounded time.
#[test]
fn single_subflow_kernel_detects() {
    let ns = setup("mpf1");
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random_bytes(1 << 20, 72);
    let input = dir.path().join("in.bin");
    std::fs::write(&input, &data).unwrap();
    let (srv_out, cli_out) = (dir.path().join("srv.out"), dir.path().join("cli.out"));
    let srv = start(&ns, &["--stack", "kernel", "--recv-only", "-l", "-i", "5", "5000"], &[], None, &srv_out);
    ns.wait_listen(5000);
    let cli = start(
        &ns,
        &["--stack", "embedded", "--tun", TUN, "-v", "-i", "5", "--local", OURS, KERNEL_IP, "5000"],
        &[("MPTCP_CAT_TEST_CORRUPT_TX", "100".into())],
        Some(&input),
        &cli_out,
    );
    let (cst, cerr) = finish(cli, 60);
    let (_, serr) = finish(srv, 20);
    assert_no_panic(&cerr);
    assert!(cst.is_some(), "our client hung: {cerr}");
    let kmib = ns.mptcp_mib();
    let ours = our_mib(&cerr);
    let got = std::fs::read(&srv_out).unwrap_or_default();
    let differ = got.iter().zip(&data).filter(|(a, b)| a != b).count();
    eprintln!(
        "kernel: {kmib:?}\nours: {ours:?}\nreceived {} of {} bytes, {differ} differ\nclient: {cerr}\nserver: {serr}",
        got.len(),
        data.len()
    );
    assert!(count(&kmib, "MPTcpExtDataCsumErr") >= 1, "{kmib:?}");
    assert!(count(&kmib, "MPTcpExtMPFailTx") >= 1, "{kmib:?}");
    assert_eq!(count(&ours, "MPTcpExtMPFailRx"), 1, "{ours:?}");
    // We answered with MP_FAIL and the infinite mapping, and fell back; the
    // kernel took both.
    assert_eq!(count(&ours, "MPTcpExtInfiniteMapTx"), 1, "{ours:?}");
    assert!(count(&kmib, "MPTcpExtMPFailRx") >= 1 && count(&kmib, "MPTcpExtInfiniteMapRx") >= 1, "{kmib:?}");
    assert!(cerr.contains("the peer sent an infinite mapping or MP_FAIL"), "the reason is recorded: {cerr}");
}

/// The kernel sends, we detect (the hook changes a received segment).
#[test]
fn we_detect_and_send_mp_fail_to_the_kernel() {
    for (tag, two) in [("mpfr2", true), ("mpfr1", false)] {
        let ns = setup(tag);
        let dir = tempfile::tempdir().unwrap();
        let data = pseudo_random_bytes(2 << 20, 73);
        let input = dir.path().join("in.bin");
        std::fs::write(&input, &data).unwrap();
        let (srv_out, cli_out) = (dir.path().join("srv.out"), dir.path().join("cli.out"));
        let srv = start(&ns, &["--stack", "kernel", "-l", "-i", "5", "5000"], &[], Some(&input), &srv_out);
        ns.wait_listen(5000);
        let mut args = vec!["--stack", "embedded", "--tun", TUN, "-v", "-i", "5", "--recv-only", "--local", OURS];
        if two {
            args.extend(["--local", OURS2]);
        }
        args.extend([KERNEL_IP, "5000"]);
        let cli = start(&ns, &args, &[("MPTCP_CAT_TEST_CORRUPT_RX", "12".into())], None, &cli_out);
        let (cst, cerr) = finish(cli, 60);
        let (_, serr) = finish(srv, 20);
        assert_no_panic(&cerr);
        assert!(cst.is_some(), "our client hung: {cerr}");
        let kmib = ns.mptcp_mib();
        let ours = our_mib(&cerr);
        let got = std::fs::read(&cli_out).unwrap_or_default();
        eprintln!(
            "{tag}: kernel: {kmib:?}\nours: {ours:?}\nreceived {} of {} bytes\nclient: {cerr}\nserver: {serr}",
            got.len(),
            data.len()
        );
        assert_eq!(count(&ours, "MPTcpExtDataCsumErr"), 1, "{ours:?}");
        assert_eq!(count(&ours, "MPTcpExtMPFailTx"), 1, "{ours:?}");
        assert!(count(&kmib, "MPTcpExtMPFailRx") >= 1, "{kmib:?}");
        if two {
            // The kernel takes the reset and resends the mapping on the
            // other subflow: the data arrives whole.
            assert!(count(&kmib, "MPTcpExtMPRstRx") >= 1, "{kmib:?}");
            assert!(cst.is_some_and(|s| s.success()), "{cerr}");
            assert_eq!(sha(&got), sha(&data));
        } else {
            // Linux 6.18 answers with MP_FAIL and counts InfiniteMapTx, but
            // no infinite mapping reaches us and its data stops: we end on
            // our timeout with the reason recorded, not a hang.
            assert!(count(&kmib, "MPTcpExtMPFailTx") >= 1, "{kmib:?}");
            assert_eq!(count(&ours, "MPTcpExtMPFailRx"), 1, "{ours:?}");
            assert_eq!(count(&ours, "MPTcpExtInfiniteMapRx"), 0, "an infinite mapping came after all: {ours:?}");
            assert!(got.len() < data.len());
            assert!(cerr.contains("fallback to plain TCP: a DSS checksum failed"), "{cerr}");
        }
    }
}
