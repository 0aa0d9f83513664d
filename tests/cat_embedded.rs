//! `mptcp-cat --stack embedded` (our MPTCP stack through a TUN device)
//! against the Linux kernel, both ways, with two independent kernel peers:
//! `mptcp-cat --stack kernel` and python3's socket module (protocol 262, or
//! 6 for plain TCP). Each test makes its own network namespace; the TUN
//! lives inside it and the kernel side of the TUN is the peer's address.
//! Needs root, /dev/net/tun, iproute2, python3.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Output, Stdio};
use std::time::{Duration, Instant};

use common::{NetNs, assert_mib_clean, bin, finish, pseudo_random_bytes, require_interop};
use mptcp_tools::control::ControlClient;
use mptcp_tools::snapshot::Snapshot;
use sha2::{Digest, Sha256};

/// Our addresses on the TUN (the kernel side gets .1 of each prefix).
const OURS: &str = "10.200.0.2/24";
const OURS2: &str = "10.201.0.2/24";
const OUR_IP: &str = "10.200.0.2";
const KERNEL_IP: &str = "10.200.0.1";
const KERNEL_IP2: &str = "10.201.0.1";
const TUN: &str = "mtun0";

struct Env {
    ns: NetNs,
    dir: tempfile::TempDir,
}

fn env(tag: &str) -> Env {
    Env { ns: NetNs::new(tag), dir: tempfile::tempdir().expect("tempdir") }
}

enum Input<'a> {
    Null,
    File(&'a Path),
    /// A pipe the test writes and closes.
    Pipe,
}

impl Env {
    fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Start `program args` in the namespace; stdout to `out` (or /dev/null),
    /// stderr piped.
    fn start(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str], input: Input, out: Option<&Path>) -> Child {
        let mut c = self.ns.cmd(program);
        c.args(args).env("MPTCP_TOOLS_RUNTIME_DIR", self.runtime_dir());
        c.stdin(match input {
            Input::Null => Stdio::null(),
            Input::File(p) => Stdio::from(File::open(p).unwrap()),
            Input::Pipe => Stdio::piped(),
        });
        c.stdout(match out {
            Some(p) => Stdio::from(File::create(p).unwrap()),
            None => Stdio::null(),
        });
        c.stderr(Stdio::piped());
        c.spawn().expect("spawn")
    }

    /// Our stack: `mptcp-cat --stack embedded --tun TUN ARGS...`.
    fn ours(&self, args: &[&str], input: Input, out: Option<&Path>) -> Child {
        let mut a = vec!["--stack", "embedded", "--tun", TUN];
        a.extend_from_slice(args);
        self.start(bin("mptcp-cat"), &a, input, out)
    }

    /// The kernel's stack through our own tool.
    fn kernel_cat(&self, args: &[&str], input: Input, out: Option<&Path>) -> Child {
        let mut a = vec!["--stack", "kernel"];
        a.extend_from_slice(args);
        self.start(bin("mptcp-cat"), &a, input, out)
    }

    fn python(&self, args: &[&str]) -> Child {
        let script = self.path("peer.py");
        if !script.exists() {
            std::fs::write(&script, PY_PEER).unwrap();
        }
        let mut c = self.ns.cmd("python3");
        c.arg(&script).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().expect("spawn python3")
    }

    /// Wait until our TUN carries the kernel-side address (our process is
    /// set up and its listener, if any, answers).
    fn wait_tun(&self, addr: &str) {
        common::wait_until(&format!("TUN {TUN} to get {addr} in {}", self.ns.name), Duration::from_secs(10), || {
            let o = self.ns.sh_any(&format!("ip -o addr show dev {TUN}"));
            String::from_utf8_lossy(&o.stdout).contains(&format!("{addr}/"))
        });
    }

    fn wait_listen(&self, port: u16) {
        self.ns.wait_listen(port);
    }

    /// The control socket of our process `pid`, once it exists.
    fn control(&self, pid: u32) -> ControlClient {
        let path = self.runtime_dir().join(format!("mptcp-cat-{pid}.sock"));
        common::wait_for(&format!("a control socket at {}", path.display()), Duration::from_secs(10), || {
            ControlClient::connect(&path).ok()
        })
    }
}

/// A python3 kernel peer. `server PROTO ADDR PORT OUT [SEND|reset]` and
/// `client PROTO HOST PORT OUT [SEND]`: received bytes go to OUT as they
/// arrive; SEND is sent then the write side shut down, else the write side
/// is shut down once the peer's end arrived. `reset`: close with SO_LINGER
/// {1,0} after the first bytes. Prints `mptcp=1` / `mptcp=0` (TCP_IS_MPTCP).
const PY_PEER: &str = r#"
import socket, struct, sys, threading
mode, proto, host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
extra = sys.argv[6] if len(sys.argv) > 6 else None
if mode == "server":
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((host, port)); l.listen(8)
    c, _ = l.accept()
else:
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
    c.connect((host, port))
if extra == "reset":
    c.recv(1000)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close(); print("reset", flush=True); sys.exit(0)
mptcp = c.getsockopt(socket.SOL_TCP, 43)
done = threading.Event()
def send():
    if extra:
        with open(extra, "rb") as f:
            c.sendall(f.read())
    else:
        done.wait()
    c.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send); t.start()
with open(out, "wb", buffering=0) as f:
    while True:
        b = c.recv(1 << 18)
        if not b: break
        f.write(b)
done.set(); t.join()
mptcp = max(mptcp, c.getsockopt(socket.SOL_TCP, 43))
c.close()
print("mptcp=%d" % mptcp, flush=True)
"#;

fn sha(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

fn file_sha(p: &Path) -> String {
    sha(&std::fs::read(p).unwrap_or_default())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output, what: &str) -> String {
    let e = text(&o.stderr);
    assert!(o.status.success(), "{what} failed ({}): {e}", o.status);
    e
}

/// Feed `data` to a piped stdin from a thread (the pipe stays open until
/// the returned handle is joined and the stdin dropped).
fn feed(stdin: ChildStdin, data: Vec<u8>) -> std::thread::JoinHandle<ChildStdin> {
    std::thread::spawn(move || {
        let mut s = stdin;
        let _ = s.write_all(&data);
        s
    })
}

fn reaches(p: &Path, len: u64, secs: u64) -> bool {
    common::poll_until(Duration::from_secs(secs), || {
        (std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) >= len).then_some(())
    })
    .is_some()
}

fn wait_size(p: &Path, len: u64, secs: u64) {
    assert!(reaches(p, len, secs), "{} did not reach {len} bytes in {secs}s", p.display());
}

fn count(mib: &BTreeMap<String, u64>, k: &str) -> u64 {
    mib.get(k).copied().unwrap_or(0)
}

/// The kernel accepted our MP_CAPABLE (as server: SYN and third ACK; as
/// client: SYN/ACK) and nothing went wrong.
fn kernel_handshake_ok(mib: &BTreeMap<String, u64>, kernel_is_server: bool) {
    assert_mib_clean(mib);
    if kernel_is_server {
        assert!(count(mib, "MPTcpExtMPCapableSYNRX") >= 1, "no MP_CAPABLE SYN counted: {mib:?}");
        assert!(count(mib, "MPTcpExtMPCapableACKRX") >= 1, "no MP_CAPABLE third ACK counted: {mib:?}");
    } else {
        assert!(count(mib, "MPTcpExtMPCapableSYNACKRX") >= 1, "no MP_CAPABLE SYN/ACK counted: {mib:?}");
    }
}

/// `ss -tiM` lines of kernel subflows (tcp-ulp-mptcp) whose connection has
/// the kernel token `token`.
fn ss_subflows(ns: &NetNs, token: &str) -> Vec<String> {
    let want = u32::from_str_radix(token.trim_start_matches("0x"), 16).expect("hex token");
    // ss prints `token:REMOTE(id:N)/LOCAL(id:M)` in unpadded hex.
    let local_token = |l: &str| -> Option<u32> {
        let t = l.split("token:").nth(1)?.split('/').nth(1)?.split('(').next()?;
        u32::from_str_radix(t, 16).ok()
    };
    let out = ns.sh("ss -tiMn");
    out.lines().filter(|l| l.contains("tcp-ulp-mptcp") && local_token(l) == Some(want)).map(String::from).collect()
}

/// The one non-listener connection in our snapshot.
fn our_conn(s: &Snapshot) -> &mptcp_tools::snapshot::ConnSnapshot {
    s.connections.iter().find(|c| c.state != "LISTEN").expect("a connection in the snapshot")
}

#[test]
fn our_client_to_kernel_cat_server_both_ways_20mb() {
    require_interop(&[]);
    let e = env("embc");
    let up = pseudo_random_bytes(20 << 20, 11);
    let down = pseudo_random_bytes(20 << 20, 12);
    let (up_f, down_f) = (e.file("up.bin", &up), e.file("down.bin", &down));
    let (srv_out, cli_out) = (e.path("srv.out"), e.path("cli.out"));
    let srv = e.kernel_cat(&["-l", "5000"], Input::File(&down_f), Some(&srv_out));
    e.wait_listen(5000);
    let pcap = e.path("ours.pcap");
    let cli = e.ours(
        &["-v", "--local", OURS, "--pcap", pcap.to_str().unwrap(), KERNEL_IP, "5000"],
        Input::File(&up_f),
        Some(&cli_out),
    );
    let co = finish(cli, "our client", 60);
    let so = finish(srv, "kernel server", 30);
    let err = ok(&co, "our client");
    ok(&so, "kernel server");
    assert_eq!(file_sha(&srv_out), sha(&up), "the kernel received other bytes");
    assert_eq!(file_sha(&cli_out), sha(&down), "we received other bytes");
    assert!(err.contains("MPTCP established: token 0x"), "{err}");
    assert!(err.contains("subflow #0 open: 10.200.0.2:"), "{err}");
    assert!(err.contains(&format!("{} bytes sent, {} bytes received", up.len(), down.len())), "{err}");
    kernel_handshake_ok(&e.ns.mptcp_mib(), true);
    // The pcap tap recorded both directions: the project's own analysis of
    // it sees the same connection and the same bytes.
    let o = std::process::Command::new(bin("mptcp-dump")).arg("--summary").arg(&pcap).output().unwrap();
    let sum = text(&o.stdout);
    assert!(o.status.success(), "mptcp-dump: {}", text(&o.stderr));
    assert!(sum.contains("verdict: MPTCP v1 established"), "{sum}");
    assert!(
        sum.contains(&format!("data: {} bytes client->server, {} bytes server->client", up.len(), down.len())),
        "{sum}"
    );
    assert!(sum.contains("closed cleanly (DATA_FIN both ways)"), "{sum}");
}

#[test]
fn python_client_to_our_server_both_ways_20mb() {
    require_interop(&["python3"]);
    let e = env("embs");
    let up = pseudo_random_bytes(20 << 20, 21);
    let down = pseudo_random_bytes(20 << 20, 22);
    let (up_f, down_f) = (e.file("up.bin", &up), e.file("down.bin", &down));
    let (srv_out, py_out) = (e.path("srv.out"), e.path("py.out"));
    // A plain TUN: one packet per write(2), checksums computed and verified.
    let srv = e.ours(&["-v", "--no-tun-offload", "-l", "--local", OURS, "5000"], Input::File(&down_f), Some(&srv_out));
    e.wait_tun(KERNEL_IP);
    let py = e.python(&["client", "262", OUR_IP, "5000", py_out.to_str().unwrap(), up_f.to_str().unwrap()]);
    let po = finish(py, "python client", 60);
    let so = finish(srv, "our server", 30);
    let err = ok(&so, "our server");
    ok(&po, "python client");
    assert_eq!(text(&po.stdout).trim(), "mptcp=1", "the kernel client did not use MPTCP");
    assert_eq!(file_sha(&srv_out), sha(&up), "we received other bytes");
    assert_eq!(file_sha(&py_out), sha(&down), "the kernel received other bytes");
    assert!(err.contains("connection from 10.200.0.1:") && err.contains("MPTCP established"), "{err}");
    kernel_handshake_ok(&e.ns.mptcp_mib(), false);
}

#[test]
fn our_client_joins_python_server_from_second_address() {
    require_interop(&["python3"]);
    let e = env("embj");
    let data = pseudo_random_bytes(20 << 20, 31);
    let py_out = e.path("py.out");
    let py = e.python(&["server", "262", "0.0.0.0", "5000", py_out.to_str().unwrap()]);
    e.wait_listen(5000);
    // With the virtio-net header (the default): our segments go out merged
    // into TSO super-packets, the kernel's come in as such.
    let mut cli = e.ours(&["-v", "--local", OURS, "--local", OURS2, KERNEL_IP, "5000"], Input::Pipe, None);
    let feeder = feed(cli.stdin.take().unwrap(), data.clone());
    if !reaches(&py_out, data.len() as u64, 30) {
        let snap = e.control(cli.id()).snapshot();
        panic!(
            "the kernel did not get {} bytes in 30s ({} so far)\nours: {snap:?}\nkernel: {}",
            data.len(),
            std::fs::metadata(&py_out).map(|m| m.len()).unwrap_or(0),
            e.ns.sh("ss -tiMn")
        );
    }
    // While the connection is up: our snapshot over the control socket, and
    // the kernel's view of the same connection.
    let mut control = e.control(cli.id());
    let snap = control.snapshot().expect("snapshot");
    let events: Vec<String> = control.events().expect("events").events.into_iter().map(|e| e.kind).collect();
    for k in ["created", "established", "sub_established"] {
        assert!(events.iter().any(|e| e == k), "no {k} event in {events:?}");
    }
    assert!(control.events().expect("events").events.is_empty(), "events are given once per client");
    let c = our_conn(&snap);
    assert_eq!(c.source, format!("embedded:{}", cli.id()));
    assert!(!c.fallback);
    let kernel_token = c.remote_token.clone().expect("peer token known");
    assert_eq!(c.subflows.len(), 2, "{c:?}");
    let ss = ss_subflows(&e.ns, &kernel_token);
    assert_eq!(ss.len(), 2, "ss -tiM should show two subflows of token {kernel_token}: {ss:?}");
    assert!(ss.iter().any(|l| l.contains("flags:Mec")) && ss.iter().any(|l| l.contains("flags:Jec")), "{ss:?}");
    drop(feeder.join().unwrap());
    let co = finish(cli, "our client", 30);
    let po = finish(py, "python server", 30);
    let err = ok(&co, "our client");
    assert_eq!(text(&po.stdout).trim(), "mptcp=1");
    assert_eq!(file_sha(&py_out), sha(&data));
    assert!(err.contains("subflow #1 open: 10.201.0.2:"), "{err}");
    assert!(err.contains("MP_JOIN"), "{err}");
    let mib = e.ns.mptcp_mib();
    kernel_handshake_ok(&mib, true);
    assert!(count(&mib, "MPTcpExtMPJoinSynRx") >= 1 && count(&mib, "MPTcpExtMPJoinAckRx") >= 1, "{mib:?}");
}

#[test]
fn kernel_cat_client_joins_our_server_through_subflow_endpoint() {
    require_interop(&[]);
    let e = env("embk");
    let data = pseudo_random_bytes(20 << 20, 41);
    let (up_f, srv_out) = (e.file("up.bin", &data), e.path("srv.out"));
    // Our second address is not announced (`subflow` instead of the
    // server's default `signal`): the kernel client joins from its endpoint.
    let mut srv = e.ours(
        &["-v", "--no-tun-offload", "-l", "--local", OURS, "--local", &format!("{OURS2},subflow"), "5000"],
        Input::Pipe,
        Some(&srv_out),
    );
    e.wait_tun(KERNEL_IP2);
    e.ns.sh(&format!("ip mptcp limits set subflows 2 && ip mptcp endpoint add {KERNEL_IP2} dev {TUN} subflow"));
    let cli = e.kernel_cat(&["-v", OUR_IP, "5000"], Input::File(&up_f), None);
    wait_size(&srv_out, data.len() as u64, 60);
    let snap = e.control(srv.id()).snapshot().expect("snapshot");
    let c = our_conn(&snap);
    let kernel_token = c.remote_token.clone().expect("peer token known");
    let deadline = Instant::now() + Duration::from_secs(5);
    let ss = loop {
        let ss = ss_subflows(&e.ns, &kernel_token);
        if ss.len() >= 2 || Instant::now() > deadline {
            break ss;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        ss.len(),
        2,
        "ss -tiM should show two subflows of token {kernel_token}: {ss:?}\n{}\n{snap:?}",
        e.ns.sh("ss -tiMn")
    );
    assert!(ss.iter().any(|l| l.contains("flags:Jj")), "no joined subflow in {ss:?}");
    drop(srv.stdin.take());
    let so = finish(srv, "our server", 30);
    let co = finish(cli, "kernel client", 30);
    let err = ok(&so, "our server");
    let cerr = ok(&co, "kernel client");
    assert_eq!(file_sha(&srv_out), sha(&data));
    assert!(err.contains("subflow #1 open: 10.200.0.2:5000 -> 10.201.0.1:"), "{err}");
    assert!(cerr.contains("MPTCP established"), "{cerr}");
    let mib = e.ns.mptcp_mib();
    kernel_handshake_ok(&mib, false);
    assert!(count(&mib, "MPTcpExtMPJoinSynTx") >= 1 && count(&mib, "MPTcpExtMPJoinSynAckRx") >= 1, "{mib:?}");
}

#[test]
fn dss_checksums_both_ways_two_subflows() {
    require_interop(&[]);
    let e = env("embx");
    e.ns.sh("sysctl -qw net.mptcp.checksum_enabled=1");
    let up = pseudo_random_bytes(8 << 20, 51);
    let down = pseudo_random_bytes(8 << 20, 52);
    let (up_f, down_f) = (e.file("up.bin", &up), e.file("down.bin", &down));
    let (srv_out, cli_out) = (e.path("srv.out"), e.path("cli.out"));
    let srv = e.kernel_cat(&["-v", "-l", "5000"], Input::File(&down_f), Some(&srv_out));
    e.wait_listen(5000);
    let cli = e.ours(&["-v", "--local", OURS, "--local", OURS2, KERNEL_IP, "5000"], Input::File(&up_f), Some(&cli_out));
    let co = finish(cli, "our client", 60);
    let so = finish(srv, "kernel server", 30);
    let err = ok(&co, "our client");
    let serr = ok(&so, "kernel server");
    assert!(err.contains("DSS checksums on"), "{err}");
    assert!(serr.contains("DSS checksums on"), "{serr}");
    assert_eq!(file_sha(&srv_out), sha(&up));
    assert_eq!(file_sha(&cli_out), sha(&down));
    let mib = e.ns.mptcp_mib();
    kernel_handshake_ok(&mib, true);
    assert_eq!(count(&mib, "MPTcpExtDataCsumErr"), 0, "{mib:?}");
}

#[test]
fn fallback_both_ways_and_require_mptcp() {
    require_interop(&["python3"]);
    let e = env("embf");
    let data = pseudo_random_bytes(2 << 20, 61);
    let data_f = e.file("data.bin", &data);
    // Our client -> plain-TCP kernel server: the data still arrives.
    let py_out = e.path("py1.out");
    let py = e.python(&["server", "6", "0.0.0.0", "5000", py_out.to_str().unwrap()]);
    e.wait_listen(5000);
    let cli = e.ours(&["-v", "--local", OURS, KERNEL_IP, "5000"], Input::File(&data_f), None);
    let co = finish(cli, "our client", 30);
    let po = finish(py, "plain server", 30);
    let err = ok(&co, "our client");
    assert_eq!(text(&po.stdout).trim(), "mptcp=0");
    assert_eq!(file_sha(&py_out), sha(&data));
    assert!(err.contains("fallback to plain TCP: the SYN/ACK had no MP_CAPABLE"), "{err}");
    // --require-mptcp turns that into a one-line error.
    let py = e.python(&["server", "6", "0.0.0.0", "5001", e.path("py2.out").to_str().unwrap()]);
    e.wait_listen(5001);
    let cli = e.ours(&["--require-mptcp", "--local", OURS, KERNEL_IP, "5001"], Input::File(&data_f), None);
    let co = finish(cli, "our client", 30);
    // Our RST may reach the server before its accept(): it waits on.
    let mut py = py;
    let _ = py.kill();
    let _ = py.wait();
    assert!(!co.status.success(), "--require-mptcp accepted a fallback");
    let err = text(&co.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("fallback to plain TCP") && err.contains("--require-mptcp"), "{err}");
    // A plain-TCP kernel client -> our server.
    let srv_out = e.path("srv.out");
    let srv = e.ours(&["-v", "-l", "--local", OURS, "5002"], Input::Null, Some(&srv_out));
    e.wait_tun(KERNEL_IP);
    let py = e.python(&["client", "6", OUR_IP, "5002", e.path("py3.out").to_str().unwrap(), data_f.to_str().unwrap()]);
    let po = finish(py, "plain client", 30);
    let so = finish(srv, "our server", 30);
    let err = ok(&so, "our server");
    assert_eq!(text(&po.stdout).trim(), "mptcp=0");
    assert_eq!(file_sha(&srv_out), sha(&data));
    assert!(err.contains("fallback to plain TCP: the peer's SYN had no MP_CAPABLE"), "{err}");
    assert_mib_clean(&e.ns.mptcp_mib());
}

#[test]
fn keep_open_serves_concurrent_clients_through_a_program() {
    require_interop(&["python3"]);
    let e = env("embk2");
    let outdir = e.path("outs");
    std::fs::create_dir(&outdir).unwrap();
    // Every connection runs `cat > outs/PID` with the connection as its stdio.
    let cmd = format!("cat > {}/$$", outdir.display());
    let srv = e.ours(&["-v", "--no-tun-offload", "-k", "-l", "--local", OURS, "-c", &cmd, "5000"], Input::Null, None);
    e.wait_tun(KERNEL_IP);
    let inputs: Vec<Vec<u8>> = (0..3).map(|i| pseudo_random_bytes((1 << 20) + i * 1000, 70 + i as u64)).collect();
    let clients: Vec<Child> = inputs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let f = e.file(&format!("in{i}.bin"), d);
            let o = e.path(&format!("back{i}.out"));
            e.python(&["client", "262", OUR_IP, "5000", o.to_str().unwrap(), f.to_str().unwrap()])
        })
        .collect();
    // While they run: the control socket lists the listener.
    let snap = e.control(srv.id()).snapshot().expect("snapshot");
    assert!(snap.connections.iter().any(|c| c.state == "LISTEN" && c.local == "0.0.0.0:5000"), "{snap:?}");
    for c in clients {
        let o = finish(c, "python client", 60);
        assert_eq!(text(&o.stdout).trim(), "mptcp=1", "{}", text(&o.stderr));
    }
    // Each program saw exactly one client's bytes.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got: Vec<String>;
    loop {
        got = std::fs::read_dir(&outdir).unwrap().flatten().map(|f| file_sha(&f.path())).collect();
        got.sort();
        let mut want: Vec<String> = inputs.iter().map(|d| sha(d)).collect();
        want.sort();
        if got == want {
            break;
        }
        assert!(Instant::now() < deadline, "program outputs {got:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGTERM ends the server with 128+15 and removes its control socket.
    let pid = srv.id();
    // SAFETY: kill(2) on a child we started.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let so = finish(srv, "our server", 10);
    assert_eq!(so.status.code(), Some(143), "{}", text(&so.stderr));
    assert!(!e.runtime_dir().join(format!("mptcp-cat-{pid}.sock")).exists(), "control socket left behind");
    assert_mib_clean(&e.ns.mptcp_mib());
}

#[test]
fn abort_ends_with_mp_fastclose() {
    require_interop(&[]);
    let e = env("emba");
    let data = pseudo_random_bytes(1 << 20, 81);
    let data_f = e.file("data.bin", &data);
    let srv_out = e.path("srv.out");
    let srv = e.kernel_cat(&["-l", "--recv-only", "5000"], Input::Null, Some(&srv_out));
    e.wait_listen(5000);
    let cli = e.ours(&["-v", "--abort", "--local", OURS, KERNEL_IP, "5000"], Input::File(&data_f), None);
    let co = finish(cli, "our client", 30);
    let so = finish(srv, "kernel server", 30);
    let err = ok(&co, "our client");
    assert!(err.contains("MP_FASTCLOSE"), "{err}");
    assert!(!so.status.success(), "the kernel server should see its peer abort: {}", text(&so.stderr));
    let got = std::fs::read(&srv_out).unwrap();
    assert!(data.starts_with(&got), "the kernel received other bytes than we sent");
    let mib = e.ns.mptcp_mib();
    assert!(count(&mib, "MPTcpExtMPFastcloseRx") >= 1, "{mib:?}");
    assert_mib_clean(&mib);
}

/// One line on standard error and a non-zero exit.
fn fails_with(o: &Output, want: &str) {
    let e = text(&o.stderr);
    assert!(!o.status.success(), "expected a failure ({want}), got success: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line expected: {e}");
    assert!(e.contains(want), "expected {want:?} in: {e}");
}

#[test]
fn faults_give_one_line_and_non_zero_exit() {
    require_interop(&["python3", "setpriv"]);
    let e = env("embe");
    let run = |args: &[&str]| finish(e.ours(args, Input::Null, None), "our client", 20);
    // Nothing listens: the kernel answers our SYN with a RST.
    fails_with(&run(&["--local", OURS, KERNEL_IP, "5999"]), "connection to 10.200.0.1:5999 refused");
    // Nobody owns 10.200.0.99: the SYNs vanish, -w gives up.
    fails_with(&run(&["-w", "1", "--local", OURS, "10.200.0.99", "5000"]), "timed out after 1s");
    // A forwarding kernel without a route answers ICMP unreachable.
    e.ns.sh("sysctl -qw net.ipv4.ip_forward=1");
    fails_with(&run(&["--local", OURS, "10.99.0.1", "5000"]), "10.99.0.1:5000 is unreachable (network unreachable");
    e.ns.sh("sysctl -qw net.ipv4.ip_forward=0");
    // An address the kernel already has cannot be ours.
    e.ns.sh("ip addr add 10.77.0.2/32 dev lo");
    fails_with(&run(&["--local", "10.77.0.2/24", KERNEL_IP, "5000"]), "the kernel already has this address");
    // The TUN is taken by another process.
    let holder = e.ours(&["-l", "--local", OURS, "5000"], Input::Null, None);
    e.wait_tun(KERNEL_IP);
    fails_with(&run(&["--local", "10.202.0.2/24", KERNEL_IP, "5000"]), "TUN device mtun0 is in use");
    // SAFETY: kill(2) on a child we started.
    unsafe { libc::kill(holder.id() as i32, libc::SIGTERM) };
    let _ = finish(holder, "holder", 10);
    // Not root: says so and points at the kernel stack.
    let o =
        e.ns.cmd("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin("mptcp-cat"))
            .args(["--stack", "embedded", "--tun", "mtun9", "--local", OURS, KERNEL_IP, "5000"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
    fails_with(&o, "--stack kernel");
    assert!(text(&o.stderr).contains("root"), "{}", text(&o.stderr));
    // The peer resets: a python server that closes with SO_LINGER {1,0}.
    for (proto, want) in [("262", "aborted by the peer (MP_FASTCLOSE)"), ("6", "reset by peer")] {
        let py = e.python(&["server", proto, "0.0.0.0", "5001", "/dev/null", "reset"]);
        e.wait_listen(5001);
        let mut cli = e.ours(&["--local", OURS, KERNEL_IP, "5001"], Input::Pipe, None);
        let feeder = feed(cli.stdin.take().unwrap(), pseudo_random_bytes(4 << 20, 90));
        let o = finish(cli, "our client", 20);
        drop(feeder.join());
        let _ = finish(py, "resetting server", 10);
        fails_with(&o, want);
    }
    assert_mib_clean(&e.ns.mptcp_mib());
}

#[test]
fn ipv6_client_with_two_subflows_and_tun_offload() {
    require_interop(&[]);
    let e = env("emb6");
    let data = pseudo_random_bytes(4 << 20, 91);
    let (data_f, srv_out) = (e.file("data.bin", &data), e.path("srv.out"));
    let srv = e.kernel_cat(&["-6", "-l", "--recv-only", "5000"], Input::Null, Some(&srv_out));
    e.wait_listen(5000);
    let cli = e.ours(
        &["-v", "--local", "fd00::2/64", "--local", "fd01::2/64", "fd00::1", "5000"],
        Input::File(&data_f),
        None,
    );
    let co = finish(cli, "our client", 30);
    ok(&finish(srv, "kernel server", 30), "kernel server");
    let err = ok(&co, "our client");
    assert_eq!(file_sha(&srv_out), sha(&data));
    assert!(err.contains("subflow #1 open: [fd01::2]:"), "{err}");
    let mib = e.ns.mptcp_mib();
    kernel_handshake_ok(&mib, true);
    assert!(count(&mib, "MPTcpExtMPJoinAckRx") >= 1, "{mib:?}");
}

#[test]
fn ncat_session_options_over_the_embedded_stack() {
    require_interop(&[]);
    let e = env("embo");
    let data = pseudo_random_bytes(100_000, 95);
    let data_f = e.file("data.bin", &data);
    // -o/-x log what went by; --send-only ends once standard input is sent;
    // -s/-p choose the initial subflow's source among our addresses.
    let srv_out = e.path("srv.out");
    let srv = e.kernel_cat(&["-v", "-l", "--recv-only", "5000"], Input::Null, Some(&srv_out));
    e.wait_listen(5000);
    let (raw, hex) = (e.path("raw.log"), e.path("hex.log"));
    let cli = e.ours(
        &[
            "--send-only",
            "-o",
            raw.to_str().unwrap(),
            "-x",
            hex.to_str().unwrap(),
            "--local",
            OURS,
            "--local",
            &format!("{OURS2},backup"),
            "-s",
            "10.201.0.2",
            "-p",
            "40123",
            KERNEL_IP,
            "5000",
        ],
        Input::File(&data_f),
        None,
    );
    ok(&finish(cli, "our client", 30), "our client");
    let serr = ok(&finish(srv, "kernel server", 30), "kernel server");
    assert_eq!(file_sha(&srv_out), sha(&data));
    assert_eq!(std::fs::read(&raw).unwrap(), data, "-o logs the bytes sent");
    let hex = std::fs::read_to_string(&hex).unwrap();
    assert!(hex.starts_with("0000   "), "{}", &hex[..hex.len().min(200)]);
    // ncat's format: 'OOOO   hh hh ... hh  ascii', hex in columns 7..56.
    let from_hex: Vec<u8> = hex
        .lines()
        .flat_map(|l| l.get(7..56).unwrap_or("").split_whitespace().map(|b| u8::from_str_radix(b, 16).unwrap()))
        .collect();
    assert_eq!(from_hex, data, "-x dumps the bytes sent");
    assert!(serr.contains("connection from 10.201.0.2:40123"), "{serr}");
    // -i: nothing moves for 1 s (standard input open, the peer silent).
    let srv = e.kernel_cat(&["-l", "--recv-only", "5001"], Input::Null, None);
    e.wait_listen(5001);
    let mut cli = e.ours(&["-i", "1", "--local", OURS, KERNEL_IP, "5001"], Input::Pipe, None);
    let held = cli.stdin.take();
    let t0 = Instant::now();
    let o = finish(cli, "our client", 10);
    drop(held);
    fails_with(&o, "idle timeout: nothing sent or received for 1s");
    assert!(t0.elapsed() < Duration::from_secs(5), "the idle timeout took {:?}", t0.elapsed());
    let mut srv = srv;
    let _ = srv.kill();
    let _ = srv.wait();
}

/// Empty input both ways (RFC 8684 §3.1: the third ACK is reliable): our
/// client with nothing to send to a kernel server with nothing to send,
/// and a kernel client with nothing to send to our server. Both end
/// cleanly, in MPTCP, within a few round trips (no repeated third ACKs
/// for ever, no timeout).
#[test]
fn empty_input_both_ways_ends_quickly() {
    require_interop(&[]);
    // Our client, the kernel's server.
    let e = env("embz");
    let srv = e.kernel_cat(&["-l", "5000"], Input::Null, None);
    e.wait_listen(5000);
    let t0 = Instant::now();
    let cli = e.ours(&["-v", "--local", OURS, KERNEL_IP, "5000"], Input::Null, None);
    let co = finish(cli, "our client with empty input", 10);
    let took = t0.elapsed();
    let so = finish(srv, "kernel server", 10);
    let err = ok(&co, "our client");
    ok(&so, "kernel server");
    assert!(err.contains("MPTCP established"), "{err}");
    assert!(err.contains("0 bytes sent, 0 bytes received"), "{err}");
    assert!(took < Duration::from_secs(3), "our client took {took:?}: {err}");
    eprintln!("our client, empty input: {took:?}\n{err}");
    kernel_handshake_ok(&e.ns.mptcp_mib(), true);
    drop(e);
    // The kernel's client, our server.
    let e = env("embz2");
    let srv = e.ours(&["-v", "-l", "--local", OURS, "5000"], Input::Null, None);
    e.wait_tun(KERNEL_IP);
    let t0 = Instant::now();
    let cli = e.kernel_cat(&[OUR_IP, "5000"], Input::Null, None);
    let co = finish(cli, "kernel client with empty input", 10);
    let so = finish(srv, "our server", 10);
    let took = t0.elapsed();
    ok(&co, "kernel client");
    let err = ok(&so, "our server");
    assert!(err.contains("MPTCP established"), "{err}");
    assert!(took < Duration::from_secs(3), "took {took:?}: {err}");
    eprintln!("kernel client, empty input: {took:?}\n{err}");
    kernel_handshake_ok(&e.ns.mptcp_mib(), false);
}

/// Our server announces an IPv6 address with a port (ADD_ADDR of 30
/// bytes: it does not fit beside the 12 bytes of timestamps, so it goes on
/// an ACK of its own without them, as Linux sends it); the kernel client
/// takes it (AddAddr, PortAdd), joins that port, and the data arrives.
/// (This announcement once panicked our stack: exit 101.)
#[test]
fn ipv6_add_addr_with_port_to_a_kernel_client() {
    require_interop(&[]);
    let e = env("emb6p");
    let data = pseudo_random_bytes(8 << 20, 93);
    let (data_f, srv_out) = (e.file("data.bin", &data), e.path("srv.out"));
    let mut srv = e.ours(
        &["-v", "-l", "--local", "fd00::2/64", "--local", "fd01::2/64,signal,port=5001", "5000"],
        Input::Pipe,
        Some(&srv_out),
    );
    e.wait_tun("fd01::1");
    e.ns.sh("ip mptcp limits set subflows 2 add_addr_accepted 2");
    let cli = e.kernel_cat(&["-6", "fd00::2", "5000"], Input::File(&data_f), None);
    wait_size(&srv_out, data.len() as u64, 60);
    drop(srv.stdin.take());
    let so = finish(srv, "our server", 30);
    let co = finish(cli, "kernel client", 30);
    let err = ok(&so, "our server");
    ok(&co, "kernel client");
    assert_eq!(file_sha(&srv_out), sha(&data));
    let mib = e.ns.mptcp_mib();
    kernel_handshake_ok(&mib, false);
    assert_eq!(count(&mib, "MPTcpExtAddAddr"), 1, "the kernel took the announcement: {mib:?}");
    assert_eq!(count(&mib, "MPTcpExtPortAdd"), 1, "{mib:?}");
    assert!(count(&mib, "MPTcpExtMPJoinSynAckRx") >= 1, "the kernel joined the announced port: {mib:?}");
    assert!(err.contains("subflow #1 open: [fd01::2]:5001 -> "), "{err}");
}
