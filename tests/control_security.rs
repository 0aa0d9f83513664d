//! The control socket against other local users and hostile peers: a
//! runtime directory planted by another uid, a socket served by another uid,
//! a client of another uid, a server that streams bytes without a newline,
//! answers slowly or never, a client that never reads its replies, and
//! escape sequences in what a server sends.
//!
//! Library-level tests drive [`ControlClient`] and [`ControlServer`]
//! directly; CLI tests run the real `mptcp-ss`. The tests that switch to
//! another uid (`setpriv`, util-linux; `ncat` as the other user's client or
//! server) need root and say so through `require_interop`.
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{bin, finish, require_interop, wait_until, wait_with_deadline};
use mptcp_tools::control::{
    ControlClient, ControlError, ControlEvent, EventBatch, MAX_REPLY, check_runtime_dir, reply,
};
use mptcp_tools::snapshot::{ConnSnapshot, Snapshot, SubflowSnapshot, token_hex};
use mptcp_tools::stack::driver::control_server::{ControlServer, MAX_CLIENTS, MAX_LINE, MAX_QUEUED, STALL_TIMEOUT};
use mptcp_tools::sys::poll;

const NOBODY: u32 = 65534;

/// `program` run as nobody, without supplementary groups.
fn as_uid(uid: u32, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}")).arg(format!("--regid={uid}")).arg("--clear-groups").arg(program);
    c
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A snapshot of `n` connections with two subflows each.
fn big_snapshot(n: usize) -> Snapshot {
    let sf = |i: usize, id: u8| SubflowSnapshot {
        local: format!("10.9.{}.{}:{}", i / 250, i % 250, 40000 + u16::from(id)),
        remote: "10.9.255.1:5201".into(),
        state: Some("ESTAB".into()),
        flags: "Mmec".into(),
        token_loc: token_hex(i as u32),
        token_rem: token_hex(0),
        id_loc: id,
        seq: 0x1122334455667788,
        ..Default::default()
    };
    Snapshot {
        connections: (0..n)
            .map(|i| ConnSnapshot {
                source: "embedded:1".into(),
                token: Some(token_hex(i as u32)),
                local: format!("10.9.{}.{}:40000", i / 250, i % 250),
                remote: "10.9.255.1:5201".into(),
                state: "ESTAB".into(),
                subflows: vec![sf(i, 0), sf(i, 1)],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Serve `path` from a thread: every connection in a thread of its own
/// calls `handle` with the stream, until the process ends.
fn serve_with(path: &Path, handle: impl Fn(UnixStream) + Send + Sync + 'static) {
    let l = UnixListener::bind(path).unwrap();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let h = handle.clone();
            std::thread::spawn(move || h(s));
        }
    });
}

/// A server that answers the first request with bytes and never a newline,
/// as fast as the client reads (at most 1 GiB, so that it stops by itself);
/// counts what it could write.
fn streamer(path: &Path) -> Arc<AtomicU64> {
    let sent = Arc::new(AtomicU64::new(0));
    let s2 = sent.clone();
    serve_with(path, move |mut s| {
        let mut line = String::new();
        let _ = BufReader::new(s.try_clone().unwrap()).read_line(&mut line);
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..(1 << 14) {
            match s.write(&chunk) {
                Ok(n) => s2.fetch_add(n as u64, Ordering::SeqCst),
                Err(_) => return,
            };
        }
    });
    sent
}

/// A server that reads requests and never answers.
fn silent(path: &Path) {
    serve_with(path, |s| {
        let mut sink = [0u8; 1024];
        while (&s).read(&mut sink).is_ok_and(|n| n > 0) {}
    });
}

/// A listener that never accepts, with a queue of one (full once a client
/// waits in it).
fn never_accepting(path: &Path) -> (UnixListener, UnixStream) {
    let l = UnixListener::bind(path).unwrap();
    // SAFETY: listen(2) again on our own listener, to shrink its queue.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
    let waiting = UnixStream::connect(path).unwrap();
    (l, waiting)
}

/// A well-behaved fake embedded mptcp-cat whose data is hostile text.
fn hostile_text(path: &Path, snap: Snapshot, events: Vec<ControlEvent>) {
    serve_with(path, move |s| {
        let mut w = s.try_clone().unwrap();
        let mut first = true;
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { return };
            let evs = || EventBatch { events: if std::mem::take(&mut first) { events.clone() } else { vec![] } };
            if w.write_all(reply(&line, || snap.clone(), evs).as_bytes()).is_err() {
                return;
            }
        }
    });
}

fn mptcp_ss(dir: &Path) -> Command {
    let mut c = Command::new(bin("mptcp-ss"));
    c.env("MPTCP_TOOLS_RUNTIME_DIR", dir).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// What [`run_measured`] saw.
struct Measured {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Peak resident size (wait4's ru_maxrss), kB.
    maxrss_kb: u64,
    took: Duration,
}

/// `mptcp-ss ARGS` with runtime directory `dir`, run to its end; a run
/// longer than 20 s fails the test (a hang is a defect, not a wait).
fn ss_output(dir: &Path, args: &[&str]) -> std::process::Output {
    finish(mptcp_ss(dir).args(args).spawn().unwrap(), &format!("mptcp-ss {}", args.join(" ")), 20)
}

/// Run `cmd` to its end (failing after `secs`), and measure its peak
/// resident size and how long it ran.
// The child is reaped by wait4(2) itself (for its rusage), not by Child::wait.
#[allow(clippy::zombie_processes)]
fn run_measured(mut cmd: Command, secs: u64) -> Measured {
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as Box<dyn Read + Send>));
    let pid = child.id() as libc::pid_t;
    let deadline = start + Duration::from_secs(secs);
    let (code, maxrss) = loop {
        let mut status = 0;
        // SAFETY: rusage is plain old data; wait4 on our own child.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: status and ru are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
            break (code, ru.ru_maxrss as u64);
        }
        assert!(r == 0, "wait4: {}", std::io::Error::last_os_error());
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {secs}s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = start.elapsed();
    Measured { code, stdout: out.join().unwrap(), stderr: err.join().unwrap(), maxrss_kb: maxrss, took }
}

// ---------------------------------------------------------------------------
// The client (mptcp-ss's side): bounded in size and time.
// ---------------------------------------------------------------------------

#[test]
fn a_reply_without_newline_is_cut_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mptcp-cat-1.sock");
    let sent = streamer(&path);
    let mut c = ControlClient::connect_with_deadline(&path, Duration::from_secs(20)).unwrap();
    c.set_reply_limit(1 << 20);
    let e = c.snapshot().unwrap_err();
    assert!(matches!(e, ControlError::ReplyTooLong { limit, .. } if limit == 1 << 20), "{e}");
    assert!(e.to_string().contains("longer than 1048576 bytes"), "{e}");
    drop(c);
    // The server could write at most what we read plus the socket buffers.
    wait_until("the streamer to stop", Duration::from_secs(10), || {
        let a = sent.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        a == sent.load(Ordering::SeqCst)
    });
    let n = sent.load(Ordering::SeqCst);
    assert!(n < (1 << 20) + (4 << 20), "the client read on: the server wrote {n} bytes");
}

#[test]
fn a_server_that_never_answers_costs_one_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mptcp-cat-2.sock");
    silent(&path);
    let mut c = ControlClient::connect_with_deadline(&path, Duration::from_millis(300)).unwrap();
    let start = Instant::now();
    let e = c.events().unwrap_err();
    let took = start.elapsed();
    assert!(e.is_unresponsive(), "{e}");
    assert!(e.to_string().contains("no complete reply within 300 ms"), "{e}");
    assert!(took >= Duration::from_millis(290) && took < Duration::from_millis(1500), "{took:?}");
}

#[test]
fn a_server_that_dribbles_gets_one_deadline_not_one_per_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mptcp-cat-3.sock");
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    serve_with(&path, move |mut s| {
        // A byte every 50 ms: each read returns before a read timeout would.
        for _ in 0..400 {
            if st.load(Ordering::SeqCst) || s.write_all(b" ").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let mut c = ControlClient::connect_with_deadline(&path, Duration::from_millis(400)).unwrap();
    let start = Instant::now();
    let e = c.snapshot().unwrap_err();
    stop.store(true, Ordering::SeqCst);
    assert!(e.is_unresponsive(), "{e}");
    assert!(start.elapsed() < Duration::from_millis(1500), "{:?}", start.elapsed());
}

#[test]
fn an_error_line_from_the_server_is_a_typed_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mptcp-cat-4.sock");
    serve_with(&path, |mut s| {
        let _ = s.write_all(b"{\"error\":\"refused: go away\"}\n");
    });
    let e = ControlClient::connect(&path).unwrap().snapshot().unwrap_err();
    assert!(matches!(&e, ControlError::Refused { message, .. } if message == "refused: go away"), "{e}");
}

// ---------------------------------------------------------------------------
// The server (mptcp-cat's side): bounded per client, no busy loop.
// ---------------------------------------------------------------------------

/// Poll the server's descriptors once (at most `wait`) and service them at
/// `now`; the number of ready descriptors.
fn step(server: &mut ControlServer, snap: &Snapshot, now: Instant, wait: Duration) -> usize {
    let mut fds = server.poll_fds();
    let n = poll(&mut fds, Some(wait)).unwrap();
    server.service_at(now, &fds, &mut || snap.clone(), &mut EventBatch::default);
    n
}

#[test]
fn a_client_that_never_reads_is_bounded_then_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ControlServer::bind(&dir.path().join("mptcp-cat-5.sock")).unwrap();
    let snap = big_snapshot(40);
    let reply_len = serde_json::to_string(&snap).unwrap().len() + 1;
    assert!(reply_len > 16 * 1024, "a reply of {reply_len} bytes");
    let hostile = UnixStream::connect(server.path()).unwrap();
    hostile.set_nonblocking(true).unwrap();
    let t0 = Instant::now();
    let mut written = 0usize;
    let mut most = 0;
    for _ in 0..50 {
        // As many requests as the socket takes; never a reply read.
        while let Ok(n) = (&hostile).write(&b"snapshot\n".repeat(64)) {
            written += n;
        }
        step(&mut server, &snap, t0, Duration::ZERO);
        most = most.max(server.buffered());
    }
    assert_eq!(server.clients(), 1);
    // Queued: at most the limit plus one reply, and one request line.
    assert!(most <= MAX_QUEUED + reply_len + MAX_LINE, "{most} bytes held for one client");
    // Its requests stopped being read: it blocks in its own writes.
    assert!(written < 2 << 20, "the server kept reading: {written} bytes of requests");
    // Nothing to do for the server now: poll sleeps (no busy loop).
    assert_eq!(step(&mut server, &snap, t0, Duration::from_millis(100)), 0, "poll woke for a stalled client");
    // After STALL_TIMEOUT without a byte taken, the client is dropped.
    step(&mut server, &snap, t0 + STALL_TIMEOUT - Duration::from_secs(1), Duration::ZERO);
    assert_eq!(server.clients(), 1);
    step(&mut server, &snap, t0 + STALL_TIMEOUT, Duration::ZERO);
    assert_eq!(server.clients(), 0);
    assert_eq!(server.buffered(), 0);
}

#[test]
fn a_slow_reader_gets_every_reply_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ControlServer::bind(&dir.path().join("mptcp-cat-6.sock")).unwrap();
    let snap = big_snapshot(40);
    let want = serde_json::to_string(&snap).unwrap();
    let mut c = UnixStream::connect(server.path()).unwrap();
    // 30 pipelined requests, far more than MAX_QUEUED of replies; then the
    // client shuts its writing side, as `socat` does at the end of its input.
    c.write_all(&b"snapshot\n".repeat(30)).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    c.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let now = Instant::now();
    for _ in 0..10_000 {
        step(&mut server, &snap, now, Duration::from_millis(10));
        let mut buf = [0u8; 8192];
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let lines: Vec<&str> = std::str::from_utf8(&got).unwrap().lines().collect();
    assert_eq!(lines.len(), 30, "every request answered before the close");
    assert!(lines.iter().all(|l| *l == want));
    assert_eq!(server.clients(), 0, "closed after the last reply");
}

#[test]
fn clients_are_bounded_and_overlong_requests_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ControlServer::bind(&dir.path().join("mptcp-cat-7.sock")).unwrap();
    let snap = Snapshot::default();
    let now = Instant::now();
    let connect = || {
        let s = UnixStream::connect(server.path()).unwrap();
        // A server that fails to answer fails the test instead of hanging it.
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    };
    let held: Vec<UnixStream> = (0..MAX_CLIENTS).map(|_| connect()).collect();
    let extra = connect();
    for _ in 0..5 {
        step(&mut server, &snap, now, Duration::from_millis(20));
    }
    assert_eq!(server.clients(), MAX_CLIENTS);
    assert_eq!(server.refused(), 1);
    let mut line = String::new();
    BufReader::new(&extra).read_line(&mut line).unwrap();
    assert!(line.contains("16 clients are already connected"), "{line}");
    // A request longer than a line: that client is dropped, the others stay.
    (&held[0]).write_all(&vec![b'a'; MAX_LINE + 10]).unwrap();
    for _ in 0..5 {
        step(&mut server, &snap, now, Duration::from_millis(20));
    }
    assert_eq!(server.clients(), MAX_CLIENTS - 1);
    let mut rest = Vec::new();
    // Closed with our request unread: a reset, or an end of file.
    match (&held[0]).read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "a reply to an overlong line"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
    }
    // The others are served as usual.
    (&held[1]).write_all(b"snapshot\n").unwrap();
    step(&mut server, &snap, now, Duration::from_millis(100));
    let mut line = String::new();
    BufReader::new(&held[1]).read_line(&mut line).unwrap();
    assert_eq!(line, "{\"connections\":[]}\n");
}

// ---------------------------------------------------------------------------
// Other users (root: setpriv).
// ---------------------------------------------------------------------------

/// A directory of root's that anyone may enter, for sockets others reach.
fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn the_server_refuses_a_client_of_another_uid() {
    require_interop(&["setpriv", "ncat"]);
    let dir = open_dir();
    let path = dir.path().join("mptcp-cat-8.sock");
    let mut server = ControlServer::bind(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600, "the socket is ours alone");
    // As if the socket had been opened to others by mistake: the peer check
    // still stands.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let mut client = as_uid(NOBODY, "ncat")
        .arg("-U")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"snapshot\n").unwrap();
    let snap = big_snapshot(1);
    let now = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let d2 = done.clone();
    let mut stdout = client.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        d2.store(true, Ordering::SeqCst);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done.load(Ordering::SeqCst) && Instant::now() < deadline {
        step(&mut server, &snap, now, Duration::from_millis(20));
    }
    drop(stdin);
    let _ = client.kill();
    let _ = client.wait();
    let got = text(&reader.join().unwrap());
    assert!(
        got.contains(&format!("refused: you are uid {NOBODY}; this control socket serves only uid 0 and root")),
        "{got}"
    );
    assert!(!got.contains("connections"), "another user got a snapshot: {got}");
    assert_eq!((server.refused(), server.clients()), (1, 0));
    // Our own uid is served on the same socket.
    let mut ours = ControlClient::connect(&path).unwrap();
    let t = std::thread::spawn(move || ours.snapshot());
    while !t.is_finished() {
        step(&mut server, &snap, now, Duration::from_millis(20));
    }
    assert_eq!(t.join().unwrap().unwrap(), snap);
}

/// Run `ncat -U path` as nobody with `input`; what it printed (stdout and
/// stderr), once the server closed (at most 10 s).
fn nobody_ncat_client(path: &Path, input: &[u8]) -> (String, String) {
    let mut client = as_uid(NOBODY, "ncat")
        .arg("-U")
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep its input open: ncat ends at the end of its input, not waiting
    // for the reply.
    let mut stdin = client.stdin.take().unwrap();
    let _ = stdin.write_all(input);
    let (status, out) = wait_with_deadline(client, 10);
    drop(stdin);
    assert!(status.is_some(), "ncat as nobody still connected after 10 s: {}", text(&out.stdout));
    (text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_real_mptcp_cat_refuses_a_client_of_another_uid() {
    require_interop(&["setpriv", "ncat"]);
    let ns = common::NetNs::new("ctlsec");
    let run = open_dir();
    let mut cat = ns
        .cmd(bin("mptcp-cat"))
        .args(["--stack", "embedded", "--tun", "mtun0", "-l", "--local", "10.200.0.2/24", "5000"])
        .env("MPTCP_TOOLS_RUNTIME_DIR", run.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let sock = run.path().join(format!("mptcp-cat-{}.sock", cat.id()));
    wait_until("mptcp-cat's control socket", Duration::from_secs(10), || sock.exists());
    // First wall: the socket is its owner's alone.
    assert_eq!(std::fs::metadata(&sock).unwrap().mode() & 0o777, 0o600);
    let (out, err) = nobody_ncat_client(&sock, b"snapshot\n");
    assert!(out.is_empty() && err.contains("Permission denied"), "{out} / {err}");
    // Second wall, with the socket opened to all: the peer check.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (out, _) = nobody_ncat_client(&sock, b"snapshot\n");
    assert!(
        out.contains(&format!("refused: you are uid {NOBODY}; this control socket serves only uid 0 and root")),
        "{out}"
    );
    assert!(!out.contains("connections"), "{out}");
    // Root (its own uid) is served.
    let snap = ControlClient::connect(&sock).unwrap().snapshot().unwrap();
    assert_eq!(snap.connections.len(), 1, "the listener: {snap:?}");
    assert_eq!(snap.connections[0].state, "LISTEN");
    let _ = cat.kill();
    let _ = cat.wait();
}

/// `ncat` as nobody serving a planted connection on `path` (in `dir`, which
/// is opened to nobody only while it binds).
fn planted_server(dir: &Path, path: &Path) -> Child {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let planted = r#"while read l; do case "$l" in events) echo '{"events":[{"time_ms":0,"kind":"planted"}]}';; *) echo '{"connections":[{"source":"embedded:4242","local":"6.6.6.6:66","remote":"6.6.6.7:66","state":"PLANTED","fallback":false,"subflows":[]}]}';; esac; done"#;
    let child = as_uid(NOBODY, "ncat")
        .arg("-lkU")
        .arg(path)
        .arg("-c")
        .arg(planted)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("ncat to listen", Duration::from_secs(10), || path.exists());
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    child
}

#[test]
fn mptcp_ss_refuses_a_socket_served_by_another_uid() {
    require_interop(&["setpriv", "ncat"]);
    let dir = open_dir();
    let path = dir.path().join("mptcp-cat-4242.sock");
    let mut planted = planted_server(dir.path(), &path);
    // The directory is root's and closed to others: it passes; the socket
    // inside is nobody's.
    check_runtime_dir(dir.path()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().uid(), NOBODY);
    let e = ControlClient::connect(&path).err().expect("a socket of nobody's was accepted");
    assert!(matches!(e, ControlError::PeerNotTrusted { uid: NOBODY, ours: 0, .. }), "{e}");

    let out = ss_output(dir.path(), &["--once", "--json", "--no-kernel"]);
    let _ = planted.kill();
    let _ = planted.wait();
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{} is served by uid {NOBODY}, not by you (uid 0) or root", path.display())),
        "{err}"
    );
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("PLANTED"), "the planted connection is shown: {stdout}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["connections"].as_array().unwrap().len(), 0);
}

/// A copy of `path` every user can run, unless it already is one.
fn runnable_by_anyone(path: &Path, scratch: &Path) -> PathBuf {
    let open = path.ancestors().skip(1).all(|d| std::fs::metadata(d).is_ok_and(|m| m.mode() & 0o001 != 0))
        && std::fs::metadata(path).is_ok_and(|m| m.mode() & 0o005 == 0o005);
    if open {
        return path.to_path_buf();
    }
    let copy = scratch.join(path.file_name().unwrap());
    std::fs::copy(path, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// Removes a directory tree on drop.
struct RemoveOnDrop(PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_planted_tmp_runtime_dir_is_refused_with_the_reason() {
    require_interop(&["setpriv", "ncat"]);
    // A user with no runtime directory of its own: mptcp-ss uses
    // /tmp/mptcp-tools-UID, which nobody created first, with a socket in it.
    let victim = 60000 + std::process::id() % 5000;
    let planted_dir = PathBuf::from(format!("/tmp/mptcp-tools-{victim}"));
    let _ = std::fs::remove_dir_all(&planted_dir);
    let _cleanup = RemoveOnDrop(planted_dir.clone());
    let st = as_uid(NOBODY, "mkdir").arg("-m").arg("0777").arg(&planted_dir).status().unwrap();
    assert!(st.success(), "nobody could not create {}", planted_dir.display());
    let sock = planted_dir.join("mptcp-cat-4242.sock");
    let mut planted = as_uid(NOBODY, "ncat")
        .arg("-lkU")
        .arg(&sock)
        .arg("-c")
        .arg(r#"while read l; do echo '{"connections":[{"source":"embedded:4242","local":"6.6.6.6:66","remote":"6.6.6.7:66","state":"PLANTED","fallback":false,"subflows":[]}]}'; done"#)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the planted socket", Duration::from_secs(10), || sock.exists());

    // The library refuses it on both sides, naming the owner.
    let e = check_runtime_dir(&planted_dir).unwrap_err();
    assert!(matches!(e, ControlError::DirOwner { uid: NOBODY, .. }), "{e}");
    let e = ControlServer::bind_in(&planted_dir).err().expect("the server bound in a planted directory");
    assert!(matches!(e, ControlError::DirOwner { uid: NOBODY, .. }), "{e}");

    // The real mptcp-ss of the victim, with its default directory.
    let scratch = open_dir();
    let ss = runnable_by_anyone(&bin("mptcp-ss"), scratch.path());
    let mut cmd = as_uid(victim, &ss);
    cmd.args(["--once", "--json", "--no-kernel"])
        .env_remove("MPTCP_TOOLS_RUNTIME_DIR")
        .env_remove("XDG_RUNTIME_DIR")
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, out) = wait_with_deadline(cmd.spawn().unwrap(), 20);
    let _ = planted.kill();
    let _ = planted.wait();
    assert!(status.is_some(), "mptcp-ss did not finish");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "runtime directory {} belongs to uid {NOBODY}, not to you (uid {victim}) or root",
            planted_dir.display()
        )) && err.contains("XDG_RUNTIME_DIR"),
        "{err}"
    );
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("PLANTED"), "{stdout}");
}

// ---------------------------------------------------------------------------
// mptcp-ss as a whole against hostile servers.
// ---------------------------------------------------------------------------

#[test]
fn mptcp_ss_memory_stays_bounded_against_a_streaming_server() {
    let dir = tempfile::tempdir().unwrap();
    streamer(&dir.path().join("mptcp-cat-11.sock"));
    let mut cmd = mptcp_ss(dir.path());
    cmd.args(["--once", "--no-kernel"]);
    let Measured { code, stderr, maxrss_kb, took, .. } = run_measured(cmd, 30);
    let err = text(&stderr);
    eprintln!("streaming server: mptcp-ss --once peak RSS {maxrss_kb} kB in {took:?}, exit {code:?}");
    assert!(maxrss_kb < 64 * 1024, "mptcp-ss grew to {maxrss_kb} kB");
    // Cut at the limit, or (on a loaded machine) at the deadline first.
    assert!(
        err.contains(&format!("reply longer than {MAX_REPLY} bytes")) || err.contains("no complete reply within"),
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn mptcp_ss_memory_stays_bounded_against_the_largest_reply() {
    // Just under MAX_REPLY of the smallest connections JSON allows: what
    // the parsed reply may cost at most.
    let one = r#"{"source":"","local":"","remote":"","state":"","fallback":false,"subflows":[]},"#;
    let n = (MAX_REPLY - 64) / one.len();
    let mut body = String::from("{\"connections\":[");
    for _ in 0..n {
        body.push_str(one);
    }
    body.pop();
    body.push_str("]}\n");
    assert!(body.len() <= MAX_REPLY);
    let len = body.len();
    let body = Arc::new(body);
    let dir = tempfile::tempdir().unwrap();
    serve_with(&dir.path().join("mptcp-cat-12.sock"), move |s| {
        let mut w = s.try_clone().unwrap();
        for line in BufReader::new(s).lines() {
            let Ok(line) = line else { return };
            let r = if line == "snapshot" { body.as_str().to_owned() } else { "{\"events\":[]}\n".into() };
            if w.write_all(r.as_bytes()).is_err() {
                return;
            }
        }
    });
    let mut cmd = mptcp_ss(dir.path());
    cmd.args(["--once", "--json", "--no-kernel"]);
    let Measured { code, stdout, stderr, maxrss_kb, took } = run_measured(cmd, 60);
    eprintln!("{n} connections in {len} bytes: mptcp-ss --once --json peak RSS {maxrss_kb} kB in {took:?}");
    assert_eq!(code, Some(0), "{}", text(&stderr));
    let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    assert_eq!(v["connections"].as_array().map(Vec::len), Some(n), "the whole reply is taken");
    assert!(maxrss_kb < 256 * 1024, "mptcp-ss grew to {maxrss_kb} kB");
}

#[test]
fn mptcp_ss_once_goes_on_past_unresponsive_processes() {
    let dir = tempfile::tempdir().unwrap();
    silent(&dir.path().join("mptcp-cat-21.sock"));
    let _full = never_accepting(&dir.path().join("mptcp-cat-22.sock"));
    let mut snap = big_snapshot(1);
    snap.connections[0].source = "embedded:23".into();
    hostile_text(&dir.path().join("mptcp-cat-23.sock"), snap, vec![]);
    let start = Instant::now();
    let out = ss_output(dir.path(), &["--once", "--no-kernel"]);
    let took = start.elapsed();
    let err = text(&out.stderr);
    assert!(took < Duration::from_secs(5), "mptcp-ss --once took {took:?}: {err}");
    assert!(err.contains("mptcp-cat-21.sock: no complete reply within 1000 ms"), "{err}");
    assert!(err.contains("mptcp-cat-22.sock: the process accepts no connections"), "{err}");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("embedded:23"), "the answering process is shown: {stdout}");
    assert!(out.status.success(), "{err}");
}

fn hostile_snapshot() -> (Snapshot, Vec<ControlEvent>) {
    let mut snap = big_snapshot(1);
    let c = &mut snap.connections[0];
    c.source = "embedded:31".into();
    c.state = "ESTAB\u{1b}[31m".into();
    c.fallback_reason = Some("\u{1b}]0;pwned\u{7}".into());
    c.subflows[0].flags = "Mm\u{9b}2J".into();
    let ev = ControlEvent {
        kind: "created\u{1b}[2J".into(),
        reason: Some("line\nbreak \u{202e}txet".into()),
        ..Default::default()
    };
    (snap, vec![ev])
}

fn assert_no_raw_controls(what: &str, s: &str) {
    let bad: Vec<char> =
        s.chars().filter(|c| mptcp_tools::tui::escape::is_unsafe(*c) && !matches!(c, '\n' | '\t')).collect();
    assert!(bad.is_empty(), "{what} printed raw {bad:?}: {s:?}");
}

#[test]
fn escape_sequences_from_a_process_are_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let (snap, events) = hostile_snapshot();
    hostile_text(&dir.path().join("mptcp-cat-31.sock"), snap.clone(), events);

    // --once: the text of ss.
    let out = ss_output(dir.path(), &["--once", "--no-kernel"]);
    let stdout = text(&out.stdout);
    assert_no_raw_controls("--once", &stdout);
    assert!(stdout.contains("mptcp ESTAB\\x1b[31m"), "{stdout}");
    assert!(stdout.contains("fallback_reason:\"\\x1b]0;pwned\\x07\""), "{stdout}");
    assert!(stdout.contains("flags:Mm\\u{009b}2J"), "{stdout}");

    // --once --json: escaped by the JSON writer, the same strings once read.
    let out = ss_output(dir.path(), &["--once", "--json", "--no-kernel"]);
    let stdout = text(&out.stdout);
    assert_no_raw_controls("--json", &stdout);
    let back: Snapshot = serde_json::from_str(&stdout).unwrap();
    assert_eq!(back.connections[0].state, snap.connections[0].state);
    assert_eq!(back.connections[0].subflows[0].flags, "Mm\u{9b}2J");

    // --events, text and JSON: one line per event, escaped.
    for json in [false, true] {
        let mut cmd = mptcp_ss(dir.path());
        cmd.args(["--events", "--no-kernel"]);
        if json {
            cmd.arg("--json");
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            line
        });
        wait_until("an event line", Duration::from_secs(10), || reader.is_finished());
        let _ = child.kill();
        let _ = child.wait();
        let line = reader.join().unwrap();
        assert_no_raw_controls("--events", line.trim_end_matches('\n'));
        if json {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["kind"], "created\u{1b}[2J");
            assert_eq!(v["reason"], "line\nbreak \u{202e}txet");
        } else {
            assert!(line.contains("created\\x1b[2J"), "{line}");
            assert!(line.ends_with("(line\\nbreak \\u{202e}txet)\n"), "{line}");
        }
    }
}

#[test]
fn a_runtime_dir_open_to_others_is_reported_by_mptcp_ss() {
    let dir = tempfile::tempdir().unwrap();
    hostile_text(&dir.path().join("mptcp-cat-41.sock"), big_snapshot(1), vec![]);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = ss_output(dir.path(), &["--once", "--json", "--no-kernel"]);
    let err = text(&out.stderr);
    assert!(err.contains("has mode 0777: other users can write to it") && err.contains("chmod 700"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["connections"].as_array().unwrap().len(), 0, "nothing read from it");
}
