//! The control-socket server (src/control.rs protocol) with a fake
//! snapshot: replies, several clients, and the socket file removed on exit,
//! including when the serving loop ends on SIGTERM. No root needed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mptcp_tools::control::{ControlClient, ControlEvent, EventBatch};
use mptcp_tools::snapshot::{ConnSnapshot, Snapshot, SubflowSnapshot, token_hex};
use mptcp_tools::stack::driver::control_server::ControlServer;
use mptcp_tools::sys::signals::Termination;
use mptcp_tools::sys::{PollFd, poll};

fn fake() -> Snapshot {
    Snapshot {
        connections: vec![ConnSnapshot {
            source: format!("embedded:{}", std::process::id()),
            token: Some(token_hex(0x768f615c)),
            local: "10.200.0.2:40000".into(),
            remote: "10.200.0.1:5000".into(),
            state: "ESTAB".into(),
            subflows: vec![SubflowSnapshot {
                local: "10.200.0.2:40000".into(),
                remote: "10.200.0.1:5000".into(),
                flags: "Mmec".into(),
                token_loc: token_hex(0x768f615c),
                token_rem: token_hex(0xb85a1ad2),
                ssnoff: 0xc7304b5f,
                sfseq: 1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The loop an embedded mptcp-cat runs around the server: until `stop` or
/// a termination signal.
fn serve(mut server: ControlServer, stop: Arc<AtomicBool>, term: Option<&Termination>) -> ControlServer {
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) && term.is_none_or(|t| t.received().is_none()) {
        let mut fds = server.poll_fds();
        if let Some(t) = term {
            fds.push(PollFd::raw(t.fd(), libc::POLLIN));
        }
        poll(&mut fds, Some(Duration::from_millis(50))).unwrap();
        server.service(&fds, &mut fake, &mut || {
            n += 1;
            EventBatch { events: vec![ControlEvent { time_ms: n, kind: "created".into(), ..Default::default() }] }
        });
    }
    server
}

#[test]
fn serves_snapshots_and_removes_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mptcp-cat-1.sock");
    // A stale file from a dead process is replaced.
    std::fs::write(&path, b"").unwrap();
    let server = ControlServer::bind(&path).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let h = std::thread::spawn(move || drop(serve(server, s2, None)));
    let mut a = ControlClient::connect(&path).unwrap();
    let mut b = ControlClient::connect(&path).unwrap();
    assert_eq!(a.snapshot().unwrap(), fake());
    assert_eq!(b.snapshot().unwrap(), fake());
    assert_eq!(a.snapshot().unwrap(), fake(), "the connection stays open for more requests");
    let ev = b.events().unwrap();
    assert_eq!(ev.events.len(), 1);
    assert_eq!(ev.events[0].kind, "created");
    // Raw protocol: unknown request.
    use std::io::{BufRead, BufReader, Write};
    let mut raw = std::os::unix::net::UnixStream::connect(&path).unwrap();
    raw.write_all(b"bogus\n").unwrap();
    let mut line = String::new();
    BufReader::new(&raw).read_line(&mut line).unwrap();
    assert!(line.contains("unknown request"), "{line}");
    stop.store(true, Ordering::SeqCst);
    h.join().unwrap();
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn sigterm_ends_the_loop_and_removes_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: setting an environment variable before any other thread of
    // this test reads it.
    unsafe { std::env::set_var("MPTCP_TOOLS_RUNTIME_DIR", dir.path().join("run")) };
    let term = Termination::install().unwrap();
    let server = ControlServer::bind_default().unwrap();
    let path = server.path().to_path_buf();
    assert_eq!(path, mptcp_tools::control::socket_path(std::process::id()));
    assert!(mptcp_tools::control::list_sockets().iter().any(|(pid, _)| *pid == std::process::id()));
    let c = ControlClient::connect(&path).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let t = std::thread::spawn(move || {
        // SAFETY: kill(2) to our own process; the handler is installed.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    });
    let start = Instant::now();
    // Serve on this thread until the signal lands.
    drop(serve(server, stop, Some(&term)));
    drop(c);
    t.join().unwrap();
    assert_eq!(term.received(), Some(libc::SIGTERM));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(!path.exists(), "socket file left behind after SIGTERM");
}
