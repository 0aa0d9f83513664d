//! Live capture (root): MPTCP traffic between two network namespaces over a
//! veth pair, made with python3's socket(AF_INET, SOCK_STREAM, 262);
//! `mptcp-dump -i IFACE -c N` shows the MP_CAPABLE handshake, and `-w FILE`
//! writes a pcap that tcpdump reads back.
mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Stdio};
use std::time::Duration;

use common::NetNs;

const SERVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
data = c.recv(100)
c.sendall(data)
c.close()
"#;

const CLIENT: &str = r#"
import socket, sys
c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
c.connect((sys.argv[1], int(sys.argv[2])))
c.sendall(b"hello mptcp\n")
assert c.recv(100) == b"hello mptcp\n"
c.close()
"#;

/// Wait for a child to exit, killing it (and failing) after `limit`.
fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    if let Some(st) = common::poll_until(limit, || child.try_wait().expect("wait")) {
        return st;
    }
    let _ = child.kill();
    let mut err = String::new();
    if let Some(e) = child.stderr.as_mut() {
        let _ = e.read_to_string(&mut err);
    }
    panic!("{what} did not finish within {limit:?}: {err}");
}

/// Start mptcp-dump in `ns` and wait for its "listening on" line.
fn start_dump(ns: &NetNs, args: &[&str]) -> Child {
    let mut child = ns
        .cmd(common::bin("mptcp-dump"))
        .args(args)
        .env("TZ", "UTC")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mptcp-dump");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    err.read_line(&mut line).expect("read stderr");
    assert!(line.starts_with("listening on "), "mptcp-dump did not start capturing: {line}");
    // Keep draining stderr so the child never blocks on it.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
    });
    child
}

/// One MPTCP connection from `a` to `b`: echo server in `b`, client in `a`.
fn mptcp_exchange(a: &NetNs, b: &NetNs, port: u16) {
    let port_s = port.to_string();
    let mut server = b.cmd("python3").args(["-c", SERVER, &port_s]).stdout(Stdio::piped()).spawn().expect("server");
    let mut ready = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready");
    let client = a.cmd("python3").args(["-c", CLIENT, "10.99.1.2", &port_s]).output().expect("client");
    assert!(client.status.success(), "client failed: {}", String::from_utf8_lossy(&client.stderr));
    assert!(wait_exit(&mut server, Duration::from_secs(10), "server").success());
}

fn pair(tag: &str) -> (NetNs, NetNs) {
    let a = NetNs::new(&format!("dl{tag}a"));
    let b = NetNs::new(&format!("dl{tag}b"));
    NetNs::veth(&a, "dlv0", "10.99.1.1/24", &b, "dlv1", "10.99.1.2/24");
    (a, b)
}

#[test]
fn live_capture_shows_the_mp_capable_handshake() {
    if common::interop_opted_out("live_capture_shows_the_mp_capable_handshake") {
        return;
    }
    common::require_interop(&["python3"]);
    let (a, b) = pair("1");
    let mut dump = start_dump(&a, &["-i", "dlv0", "-c", "6", "-nn", "tcp", "port", "5555"]);
    mptcp_exchange(&a, &b, 5555);
    let st = wait_exit(&mut dump, Duration::from_secs(20), "mptcp-dump -c 6");
    let mut out = String::new();
    dump.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(st.success(), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(lines[0].contains("10.99.1.1.") && lines[0].contains("Flags [S]"), "{out}");
    assert!(lines[0].contains("mptcp 4 capable v1 flags [H]]"), "SYN without MP_CAPABLE: {out}");
    assert!(lines[1].contains("Flags [S.]") && lines[1].contains("mptcp 12 capable v1 flags [H] {0x"), "{out}");
    assert!(lines[2].contains("Flags [.]") && lines[2].contains("mptcp 20 capable v1 flags [H] {0x"), "{out}");
    // The data segment carries the 22-byte MP_CAPABLE with the data length.
    assert!(out.contains("mptcp 22 capable v1 flags [H] {0x") && out.contains(",data_len=12}"), "{out}");
}

#[test]
fn live_capture_writes_a_pcap_tcpdump_reads() {
    if common::interop_opted_out("live_capture_writes_a_pcap_tcpdump_reads") {
        return;
    }
    common::require_interop(&["python3", "tcpdump"]);
    let (a, b) = pair("2");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.pcap");
    let fs = file.to_string_lossy().into_owned();
    let mut dump = start_dump(&a, &["-i", "dlv0", "-c", "4", "-w", &fs, "tcp", "port", "5556"]);
    mptcp_exchange(&a, &b, 5556);
    assert!(wait_exit(&mut dump, Duration::from_secs(20), "mptcp-dump -w").success());
    let mut out = String::new();
    dump.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(out.is_empty(), "-w prints no frames: {out}");
    let back = std::process::Command::new("tcpdump").args(["-nn", "-r", &fs]).output().expect("tcpdump");
    assert!(back.status.success(), "{}", String::from_utf8_lossy(&back.stderr));
    let text = String::from_utf8_lossy(&back.stdout);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(text.lines().next().unwrap().contains("mptcp 4 capable v1"), "{text}");
    // And mptcp-dump reads its own file the same way tcpdump does.
    let ours = std::process::Command::new(common::bin("mptcp-dump"))
        .args(["--no-analysis", "-nn", &fs])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ours.stdout).lines().count(), 4);
}
