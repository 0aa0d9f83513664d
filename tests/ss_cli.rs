//! mptcp-ss's command line and its embedded-stack source, without the
//! kernel: a fake embedded mptcp-cat serves its control socket with
//! `control::reply` in a runtime directory of the test's own.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::bin;
use mptcp_tools::control::{ControlEvent, EventBatch, reply};
use mptcp_tools::snapshot::{ConnSnapshot, Snapshot, SubflowSnapshot, token_hex};
use serde_json::Value;

fn fake_snapshot(pid: u32) -> Snapshot {
    let sf = |local: &str, flags: &str, id: u8, sent: u64| SubflowSnapshot {
        local: local.into(),
        remote: "10.200.0.1:5201".into(),
        state: Some("ESTAB".into()),
        flags: flags.into(),
        token_loc: token_hex(0x1a2b3c4d),
        token_rem: token_hex(if flags.contains('j') { 0x99887766 } else { 0 }),
        id_loc: id,
        seq: 0x1122334455667788,
        sfseq: 0x10,
        ssnoff: 0xdeadbeef,
        maplen: 0x5a8,
        cwnd: Some(10),
        rtt_us: Some(2500),
        bytes_sent: Some(sent),
        bytes_received: Some(0),
        ..Default::default()
    };
    Snapshot {
        connections: vec![ConnSnapshot {
            source: format!("embedded:{pid}"),
            token: Some(token_hex(0x1a2b3c4d)),
            remote_token: Some(token_hex(0x99887766)),
            local: "10.200.0.2:40000".into(),
            remote: "10.200.0.1:5201".into(),
            state: "ESTAB".into(),
            subflows_max: Some(2),
            bytes_sent: Some(3000),
            subflows: vec![sf("10.200.0.2:40000", "Mmec", 0, 1000), sf("10.200.1.2:40001", "Jjecv", 1, 2000)],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Serve the control socket of a fake process `pid` in `dir`, every client
/// in its own thread, until the test ends.
fn fake_embedded(dir: &Path, pid: u32) {
    let l = UnixListener::bind(dir.join(format!("mptcp-cat-{pid}.sock"))).unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            std::thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let mut first = true;
                for line in BufReader::new(s).lines() {
                    let Ok(line) = line else { return };
                    let events = || EventBatch {
                        events: if std::mem::take(&mut first) {
                            vec![ControlEvent {
                                time_ms: 12,
                                kind: "sub_established".into(),
                                token: Some(token_hex(0x1a2b3c4d)),
                                local: Some("10.200.1.2:40001".into()),
                                remote: Some("10.200.0.1:5201".into()),
                                id_loc: Some(1),
                                id_rem: Some(0),
                                ..Default::default()
                            }]
                        } else {
                            vec![]
                        },
                    };
                    if w.write_all(reply(&line, || fake_snapshot(pid), events).as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

fn mptcp_ss(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin("mptcp-ss")).args(args).env("MPTCP_TOOLS_RUNTIME_DIR", dir).output().unwrap()
}

#[test]
fn embedded_snapshot_as_json_and_text() {
    let dir = tempfile::tempdir().unwrap();
    fake_embedded(dir.path(), 777001);
    let out = mptcp_ss(dir.path(), &["--once", "--json", "--no-kernel"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["connections"][0];
    assert_eq!(c["source"], "embedded:777001");
    assert_eq!(c["token"], "0x1a2b3c4d");
    assert_eq!(c["subflows"].as_array().unwrap().len(), 2);
    assert_eq!(c["subflows"][1]["flags"], "Jjecv");
    assert_eq!(c["subflows"][1]["token_rem"], "0x99887766");
    assert_eq!(c["subflows"][1]["ssnoff"], 0xdeadbeefu64, "numbers are JSON integers");

    let out = mptcp_ss(dir.path(), &["--once", "--no-kernel"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert!(lines[1].starts_with("mptcp ESTAB") && lines[1].ends_with("embedded:777001"), "{text}");
    assert!(lines[2].contains("token:1a2b3c4d") && lines[2].contains("remote_token:99887766"), "{text}");
    assert!(lines[5].starts_with("`-tcp ESTAB") && lines[5].contains("10.200.1.2:40001"), "{text}");
    assert!(
        lines[6].ends_with(
            "tcp-ulp-mptcp flags:Jjecv token:99887766(id:0)/1a2b3c4d(id:1) seq:1122334455667788 sfseq:10 ssnoff:deadbeef maplen:5a8"
        ),
        "{text}"
    );
    assert!(lines[6].starts_with("\t rtt:2.5/0 cwnd:10 bytes_sent:2000"), "{text}");

    // --filter keeps only what matches; an address of a subflow matches.
    let out = mptcp_ss(dir.path(), &["--once", "--no-kernel", "--filter", "10.200.1.2"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 7);
    let out = mptcp_ss(dir.path(), &["--once", "--no-kernel", "--filter", "nothing-like-this"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1, "only the header");
}

#[test]
fn stale_sockets_are_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    drop(UnixListener::bind(dir.path().join("mptcp-cat-4.sock")).unwrap());
    let out = mptcp_ss(dir.path(), &["--once", "--json", "--no-kernel"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mptcp-cat-4.sock") && err.contains("stale"), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["connections"].as_array().unwrap().len(), 0);
}

#[test]
fn bad_input_is_one_line_and_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = mptcp_ss(dir.path(), &["--interval", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("out of range"));

    let out = mptcp_ss(dir.path(), &["--once", "-r", "/nonexistent/capture.pcap"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("mptcp-ss: /nonexistent/capture.pcap: "), "{err}");

    let out = mptcp_ss(dir.path(), &["--once", "--no-kernel", "--no-embedded"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no source"));
}

#[test]
fn embedded_view_in_tmux() {
    assert!(
        Command::new("tmux").arg("-V").stdout(Stdio::null()).status().is_ok_and(|s| s.success()),
        "this test needs tmux (.ci/setup installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    fake_embedded(dir.path(), 777002);
    let sock = format!("mptcp-ss-cli-{}", std::process::id());
    let tmux = |args: &[&str]| Command::new("tmux").arg("-L").arg(&sock).args(args).output().unwrap();
    let cmdline = format!(
        "MPTCP_TOOLS_RUNTIME_DIR={} {} --no-kernel --interval 0.2",
        dir.path().display(),
        bin("mptcp-ss").display()
    );
    struct Kill<'a>(&'a dyn Fn(&[&str]) -> std::process::Output);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            (self.0)(&["kill-server"]);
        }
    }
    let _kill = Kill(&tmux);
    assert!(tmux(&["new-session", "-d", "-s", "main", "-x", "180", "-y", "40", &cmdline]).status.success());
    let wait = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let screen = String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", "main"]).stdout).into_owned();
            if screen.contains(what) {
                return screen;
            }
            assert!(Instant::now() < deadline, "never saw {what:?}:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let screen = wait("embedded:777002");
    assert!(screen.contains("1a2b3c4d"), "{screen}");
    // The event log has the stack's event; the subflow table both subflows
    // with their shares of the bytes.
    let screen = wait("sub_established");
    assert!(
        screen.contains("embedded:777002 sub_established  0x1a2b3c4d 10.200.1.2:40001 -> 10.200.0.1:5201 ids 1/0"),
        "{screen}"
    );
    assert!(screen.contains("33%") && screen.contains("67%"), "{screen}");
    // Enter shows the details in ss's formats; Esc closes them; q quits.
    tmux(&["send-keys", "-t", "main", "Enter"]);
    wait("token:99887766(id:0)/1a2b3c4d(id:1) seq:1122334455667788");
    tmux(&["send-keys", "-t", "main", "Escape"]);
    tmux(&["send-keys", "-t", "main", "q"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tmux(&["has-session", "-t", "main"]).status.success() {
        assert!(Instant::now() < deadline, "mptcp-ss did not quit on q");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn events_stream_as_lines() {
    let dir = tempfile::tempdir().unwrap();
    fake_embedded(dir.path(), 777003);
    for (json, want) in [
        (false, "embedded:777003 sub_established  0x1a2b3c4d 10.200.1.2:40001 -> 10.200.0.1:5201 ids 1/0"),
        (true, "\"kind\":\"sub_established\""),
    ] {
        let mut args = vec!["--events", "--no-kernel"];
        if json {
            args.push("--json");
        }
        let mut child = Command::new(bin("mptcp-ss"))
            .args(&args)
            .env("MPTCP_TOOLS_RUNTIME_DIR", dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            line
        });
        // Whatever happens, the child ends within 10 s, and the read with it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !reader.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        let line = reader.join().unwrap();
        assert!(line.contains(want), "{line}");
        if json {
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(
                (v["source"].as_str(), v["token"].as_str(), v["id_loc"].as_u64()),
                (Some("embedded:777003"), Some("0x1a2b3c4d"), Some(1))
            );
            assert!(v["at"].as_f64().is_some());
        }
    }
}
