//! The control-socket protocol between a running embedded `mptcp-cat` (the
//! server) and `mptcp-ss` or any script (the client).
//!
//! - Each embedded mptcp-cat process listens on one Unix stream socket,
//!   `RUNTIME_DIR/mptcp-cat-PID.sock` (mode 0600), and removes it on exit.
//! - `RUNTIME_DIR` is `$MPTCP_TOOLS_RUNTIME_DIR` if set, else
//!   `$XDG_RUNTIME_DIR/mptcp-tools` if `XDG_RUNTIME_DIR` is an absolute path,
//!   else `/run/mptcp-tools` for root and `/tmp/mptcp-tools-UID` for others.
//!   It is created with mode 0700; both sides refuse a directory that is not
//!   a directory of their own (or root's) closed to writes by other users
//!   ([`check_runtime_dir`]), since `/tmp/mptcp-tools-UID` is a name another
//!   local user can take first.
//! - Both sides check who is at the other end (SO_PEERCRED, unix(7)): the
//!   server serves only its own uid and root, the client talks only to a
//!   server of its own uid or root ([`trusted_uid`]).
//! - The client writes one request line; the server answers with one line of
//!   JSON and keeps the connection open for further requests:
//!   - `snapshot` -> a [`crate::snapshot::Snapshot`] (`{"connections": [...], "mib": {...}}`),
//!     every connection with `"source": "embedded:PID"`.
//!   - `events` -> `{"events": [...]}`: the path-manager style events since the
//!     previous `events` request on this connection (see [`ControlEvent`]).
//!   - anything else -> `{"error": "unknown request ..."}`; a refused client
//!     gets one `{"error": ...}` line saying why, then the server closes.
//! - The client bounds every reply in size ([`MAX_REPLY`]) and time (a
//!   deadline per request), so a peer that streams bytes without a newline,
//!   answers slowly or never cannot grow its memory or hang it.

use std::io::{self, Read, Write};
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::snapshot::Snapshot;

/// Longest reply line a client accepts (a snapshot of a few thousand
/// connections). A longer one is an error, and no more of it is read.
pub const MAX_REPLY: usize = 4 << 20;

/// How long a [`ControlClient`] waits for a whole reply (writing the
/// request and reading the reply line) unless told otherwise.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(2);

/// This process's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether a peer running as `uid` may talk to us over a control socket:
/// our own uid, or root (who could read our memory anyway).
pub fn trusted_uid(uid: u32) -> bool {
    uid == 0 || uid == euid()
}

/// The uid of the process at the other end of a Unix stream socket, as the
/// kernel recorded it at connect(2) or listen(2) time (SO_PEERCRED, unix(7)).
pub fn peer_uid(s: &impl AsRawFd) -> io::Result<u32> {
    // SAFETY: ucred is plain old data; all-zero is a valid value.
    let mut cred: libc::ucred = unsafe { zeroed() };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred and len are valid for writes of the sizes given.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// The directory holding the control sockets.
pub fn runtime_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MPTCP_TOOLS_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    // The XDG Base Directory spec: a relative XDG_RUNTIME_DIR is to be ignored.
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|d| d.is_absolute()) {
        return d.join("mptcp-tools");
    }
    let uid = euid();
    if uid == 0 { PathBuf::from("/run/mptcp-tools") } else { PathBuf::from(format!("/tmp/mptcp-tools-{uid}")) }
}

/// Check that `dir` is safe to hold control sockets: a real directory (not
/// a symbolic link) owned by us or root, that no other user can write to
/// (they could plant a socket of their own or replace ours).
pub fn check_runtime_dir(dir: &Path) -> Result<(), ControlError> {
    let md = std::fs::symlink_metadata(dir).map_err(|source| ControlError::Io { path: dir.to_path_buf(), source })?;
    if !md.file_type().is_dir() {
        return Err(ControlError::DirNotDirectory { dir: dir.to_path_buf() });
    }
    if !trusted_uid(md.uid()) {
        return Err(ControlError::DirOwner { dir: dir.to_path_buf(), uid: md.uid(), ours: euid() });
    }
    let mode = md.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(ControlError::DirMode { dir: dir.to_path_buf(), mode });
    }
    Ok(())
}

/// Create `dir` (and missing parents) with mode 0700 if it does not exist,
/// then [`check_runtime_dir`] it, whoever created it.
pub fn prepare_runtime_dir(dir: &Path) -> Result<(), ControlError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| ControlError::Io { path: dir.to_path_buf(), source })?;
    check_runtime_dir(dir)
}

/// The socket path of process `pid`.
pub fn socket_path(pid: u32) -> PathBuf {
    runtime_dir().join(format!("mptcp-cat-{pid}.sock"))
}

/// Control sockets present in the runtime directory, with their PIDs.
pub fn list_sockets() -> Vec<(u32, PathBuf)> {
    list_sockets_in(&runtime_dir())
}

/// Control sockets present in `dir`, with their PIDs.
pub fn list_sockets_in(dir: &Path) -> Vec<(u32, PathBuf)> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if let Some(pid) = name.strip_prefix("mptcp-cat-").and_then(|r| r.strip_suffix(".sock")) {
                if let Ok(pid) = pid.parse() {
                    v.push((pid, e.path()));
                }
            }
        }
    }
    v.sort();
    v
}

/// One event an embedded stack reports (the same vocabulary as the kernel's
/// mptcp_pm events).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ControlEvent {
    /// Milliseconds since the process started.
    pub time_ms: u64,
    /// "created", "established", "closed", "announced", "removed",
    /// "sub_established", "sub_closed", "sub_priority", "fallback"; from
    /// packets also "mp_fail", "hmac_failed", "checksum_failed",
    /// "key_mismatch", "reinjection".
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_loc: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_rem: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<bool>,
    /// A reason in words (reset reason, fallback reason, error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The capture frame that shows the event (events reconstructed from
    /// packets by mptcp-ss -r/-i; absent from live stacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<u64>,
}

/// The reply to `events`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    pub events: Vec<ControlEvent>,
}

/// How to fix a runtime directory that another user could have planted.
const DIR_ADVICE: &str = "set XDG_RUNTIME_DIR (or MPTCP_TOOLS_RUNTIME_DIR) to a directory of your own with mode 0700";

/// Errors of the control socket, on either side.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("control socket {path}: bad reply: {detail}")]
    BadReply { path: PathBuf, detail: String },
    #[error("control socket {path}: the server refused: {message}")]
    Refused { path: PathBuf, message: String },
    #[error(
        "control socket {path} is served by uid {uid}, not by you (uid {ours}) or root: refusing to talk \
         to it (another user may have planted it)"
    )]
    PeerNotTrusted { path: PathBuf, uid: u32, ours: u32 },
    #[error(
        "control socket {path}: no complete reply within {} ms: the process is unresponsive (stopped or stuck?)",
        waited.as_millis()
    )]
    Unresponsive { path: PathBuf, waited: Duration },
    #[error("control socket {path}: the process accepts no connections (its queue is full: stopped or stuck?)")]
    NotAccepting { path: PathBuf },
    #[error(
        "control socket {path}: reply longer than {limit} bytes without a newline: not an mptcp-cat control socket?"
    )]
    ReplyTooLong { path: PathBuf, limit: usize },
    #[error(
        "runtime directory {dir} belongs to uid {uid}, not to you (uid {ours}) or root: another user may have \
         created it to plant control sockets, so it is not used; ask its owner or root to remove it, or {DIR_ADVICE}"
    )]
    DirOwner { dir: PathBuf, uid: u32, ours: u32 },
    #[error(
        "runtime directory {dir} has mode {mode:04o}: other users can write to it (plant or replace control \
         sockets), so it is not used; run `chmod 700 {}`, or {DIR_ADVICE}",
        dir.display()
    )]
    DirMode { dir: PathBuf, mode: u32 },
    #[error(
        "runtime directory {dir} is not a directory (a symbolic link or another file), so it is not used; \
         remove it, or {DIR_ADVICE}"
    )]
    DirNotDirectory { dir: PathBuf },
    /// Server side: a client of another user connected.
    #[error("refused: you are uid {uid}; this control socket serves only uid {ours} and root")]
    ClientNotTrusted { uid: u32, ours: u32 },
    /// Server side: [`crate::stack::driver::control_server::MAX_CLIENTS`] are connected.
    #[error("refused: {limit} clients are already connected")]
    TooManyClients { limit: usize },
}

impl ControlError {
    /// Whether the peer is there but does not answer in time (as opposed
    /// to gone, refused or speaking another protocol).
    pub fn is_unresponsive(&self) -> bool {
        matches!(self, ControlError::Unresponsive { .. } | ControlError::NotAccepting { .. })
    }

    /// Whether the socket file is left by a process that is gone (nobody
    /// listens on it, or it vanished).
    pub fn is_stale(&self) -> bool {
        matches!(self, ControlError::Io { source, .. }
            if matches!(source.kind(), io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound))
    }
}

/// `connect(2)` to a Unix stream socket without blocking: a listener whose
/// queue is full (a stopped or stuck process, or one that never accepts)
/// answers EAGAIN at once instead of leaving the caller waiting (unix(7)).
/// The stream returned is blocking.
pub fn connect_unix(path: &Path) -> io::Result<UnixStream> {
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a socket we just opened and own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a usable Unix socket path (empty or too long)"));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = size_of::<libc::sa_family_t>() + bytes.len() + 1;
    // SAFETY: addr is a valid sockaddr_un of at least len bytes.
    let r =
        unsafe { libc::connect(fd.as_raw_fd(), (&addr as *const libc::sockaddr_un).cast(), len as libc::socklen_t) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let s = UnixStream::from(fd);
    s.set_nonblocking(false)?;
    Ok(s)
}

/// A reply of the form `{"error": "..."}`.
#[derive(Deserialize)]
struct ErrorReply {
    error: String,
}

/// A client connection to one control socket.
pub struct ControlClient {
    path: PathBuf,
    stream: UnixStream,
    /// Bytes read past the last reply line (a well-behaved server sends none).
    buf: Vec<u8>,
    deadline: Duration,
    limit: usize,
}

impl ControlClient {
    /// Connect, with [`REQUEST_DEADLINE`] per request.
    pub fn connect(path: &Path) -> Result<ControlClient, ControlError> {
        ControlClient::connect_with_deadline(path, REQUEST_DEADLINE)
    }

    /// Connect to `path` and check that its server runs as our uid or root;
    /// every request then waits at most `deadline` for its reply.
    pub fn connect_with_deadline(path: &Path, deadline: Duration) -> Result<ControlClient, ControlError> {
        let io = |source: io::Error| ControlError::Io { path: path.to_path_buf(), source };
        let stream = connect_unix(path).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => ControlError::NotAccepting { path: path.to_path_buf() },
            _ => io(e),
        })?;
        let uid = peer_uid(&stream).map_err(io)?;
        if !trusted_uid(uid) {
            return Err(ControlError::PeerNotTrusted { path: path.to_path_buf(), uid, ours: euid() });
        }
        Ok(ControlClient { path: path.to_path_buf(), stream, buf: Vec::new(), deadline, limit: MAX_REPLY })
    }

    /// A client over a connected stream (one end of a socket pair, in
    /// tests and fuzzing), without the peer check of [`Self::connect`].
    pub fn over_stream(stream: UnixStream, deadline: Duration) -> ControlClient {
        ControlClient { path: PathBuf::from("(stream)"), stream, buf: Vec::new(), deadline, limit: MAX_REPLY }
    }

    /// Bytes read and held past the last reply line.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The longest reply line accepted ([`MAX_REPLY`] unless changed).
    pub fn set_reply_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Send one request line and read one reply line, within the deadline
    /// and the size limit.
    fn request(&mut self, req: &str) -> Result<Vec<u8>, ControlError> {
        let start = Instant::now();
        let unresponsive = || ControlError::Unresponsive { path: self.path.clone(), waited: self.deadline };
        let io = |source| ControlError::Io { path: self.path.clone(), source };
        let remaining = || self.deadline.checked_sub(start.elapsed()).filter(|d| !d.is_zero());
        let timed_out = |e: &io::Error| matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut);

        let msg = format!("{req}\n").into_bytes();
        let mut sent = 0;
        while sent < msg.len() {
            let Some(left) = remaining() else { return Err(unresponsive()) };
            self.stream.set_write_timeout(Some(left)).map_err(io)?;
            match self.stream.write(&msg[sent..]) {
                Ok(0) => return Err(io(io::ErrorKind::WriteZero.into())),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) => return Err(unresponsive()),
                Err(e) => return Err(io(e)),
            }
        }

        let mut chunk = vec![0u8; 64 * 1024];
        let mut scanned = 0;
        loop {
            if let Some(i) = self.buf[scanned..].iter().position(|b| *b == b'\n') {
                let rest = self.buf.split_off(scanned + i + 1);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.pop();
                return Ok(line);
            }
            scanned = self.buf.len();
            if self.buf.len() > self.limit {
                return Err(ControlError::ReplyTooLong { path: self.path.clone(), limit: self.limit });
            }
            let Some(left) = remaining() else { return Err(unresponsive()) };
            self.stream.set_read_timeout(Some(left)).map_err(io)?;
            // Never read more than one byte past the limit.
            let room = (self.limit + 1 - self.buf.len()).min(chunk.len());
            match self.stream.read(&mut chunk[..room]) {
                Ok(0) => {
                    return Err(ControlError::BadReply { path: self.path.clone(), detail: "connection closed".into() });
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if timed_out(&e) => return Err(unresponsive()),
                Err(e) => return Err(io(e)),
            }
        }
    }

    /// Parse a reply as `T`, or as the server's `{"error": ...}`.
    fn parse<T: serde::de::DeserializeOwned>(&self, line: &[u8]) -> Result<T, ControlError> {
        serde_json::from_slice(line).map_err(|e| match serde_json::from_slice::<ErrorReply>(line) {
            Ok(r) => ControlError::Refused { path: self.path.clone(), message: r.error },
            Err(_) => ControlError::BadReply { path: self.path.clone(), detail: e.to_string() },
        })
    }

    pub fn snapshot(&mut self) -> Result<Snapshot, ControlError> {
        let line = self.request("snapshot")?;
        self.parse(&line)
    }

    pub fn events(&mut self) -> Result<EventBatch, ControlError> {
        let line = self.request("events")?;
        self.parse(&line)
    }
}

/// The most characters of an unknown request quoted back in its error.
const MAX_ECHOED: usize = 32;

/// Server side: the reply line (with its newline) to one request line.
pub fn reply(request: &str, snapshot: impl FnOnce() -> Snapshot, events: impl FnOnce() -> EventBatch) -> String {
    let mut s = match request.trim() {
        "snapshot" => serde_json::to_string(&snapshot()),
        "events" => serde_json::to_string(&events()),
        other => {
            // Quote a bounded prefix: a long line of control characters
            // must not come back ten times its size.
            let shown: String = other.chars().take(MAX_ECHOED).collect();
            let more = if other.chars().count() > MAX_ECHOED { "..." } else { "" };
            Ok(serde_json::json!({ "error": format!("unknown request {shown:?}{more}; try snapshot or events") })
                .to_string())
        }
    }
    .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string());
    s.push('\n');
    s
}

/// Server side: the `{"error": ...}` line that tells a refused client why.
pub fn error_line(e: &ControlError) -> String {
    let mut s = serde_json::json!({ "error": e.to_string() }).to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::UnixListener;

    #[test]
    fn reply_lines() {
        let r = reply("snapshot\n", Snapshot::default, EventBatch::default);
        assert_eq!(r, "{\"connections\":[]}\n");
        let r = reply("events", Snapshot::default, EventBatch::default);
        assert_eq!(r, "{\"events\":[]}\n");
        assert!(reply("nope", Snapshot::default, EventBatch::default).contains("unknown request"));
        let e = error_line(&ControlError::TooManyClients { limit: 3 });
        assert_eq!(e, "{\"error\":\"refused: 3 clients are already connected\"}\n");
    }

    #[test]
    fn runtime_dir_checks() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("run");
        prepare_runtime_dir(&dir).unwrap();
        let md = std::fs::metadata(&dir).unwrap();
        assert_eq!(md.mode() & 0o777, 0o700, "created private");
        // Group or others may not write; reading is harmless.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_runtime_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let e = prepare_runtime_dir(&dir).unwrap_err();
        assert!(matches!(e, ControlError::DirMode { mode: 0o1777, .. }), "{e}");
        assert!(e.to_string().contains("mode 1777") && e.to_string().contains("chmod 700"), "{e}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o720)).unwrap();
        assert!(matches!(check_runtime_dir(&dir), Err(ControlError::DirMode { mode: 0o720, .. })));
        // A symbolic link (even to a good directory) and a file are refused.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = t.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(matches!(check_runtime_dir(&link), Err(ControlError::DirNotDirectory { .. })));
        let file = t.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(prepare_runtime_dir(&file), Err(ControlError::Io { .. })));
        assert!(matches!(check_runtime_dir(&file), Err(ControlError::DirNotDirectory { .. })));
        // Missing: an I/O error naming the path.
        let e = check_runtime_dir(&t.path().join("none")).unwrap_err();
        assert!(matches!(&e, ControlError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound), "{e}");
    }

    #[test]
    fn peer_credentials_are_ours() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.sock");
        let l = UnixListener::bind(&p).unwrap();
        let c = connect_unix(&p).unwrap();
        assert_eq!(peer_uid(&c).unwrap(), euid(), "the listener's uid, before any accept");
        let (s, _) = l.accept().unwrap();
        assert_eq!(peer_uid(&s).unwrap(), euid());
        assert!(trusted_uid(euid()) && trusted_uid(0));
        // Nobody listening: a stale file.
        drop(l);
        let e = ControlClient::connect(&p).err().unwrap();
        assert!(e.is_stale(), "{e}");
        let long = t.path().join("x".repeat(200));
        assert_eq!(connect_unix(&long).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_full_queue_is_not_waited_for() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("s.sock");
        let l = UnixListener::bind(&p).unwrap();
        // SAFETY: listen(2) again on our own listener, to shrink its queue.
        assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
        // Fill the queue; nobody accepts.
        let mut held = Vec::new();
        let start = Instant::now();
        let e = loop {
            match ControlClient::connect(&p) {
                Ok(c) => held.push(c),
                Err(e) => break e,
            }
            assert!(held.len() < 64, "the queue never filled");
        };
        assert!(matches!(e, ControlError::NotAccepting { .. }) && e.is_unresponsive(), "{e}");
        assert!(start.elapsed() < Duration::from_secs(1), "connect waited {:?}", start.elapsed());
    }
}
