//! Serves [`crate::control`]'s protocol (one JSON line per request line) on
//! this process's Unix socket, `RUNTIME_DIR/mptcp-cat-PID.sock`, from a
//! snapshot closure. Non-blocking: the owner's poll loop adds
//! [`ControlServer::poll_fds`] to its set and calls [`ControlServer::service`]
//! with the result. The socket file is removed when the server is dropped,
//! which the loops guarantee on a normal end and on SIGINT/SIGTERM/SIGHUP
//! (see [`super::signals`]).
//!
//! A client cannot make the server grow or spin: only our own uid and root
//! are served (SO_PEERCRED), at most [`MAX_CLIENTS`] at once; a request line
//! is at most [`MAX_LINE`] bytes; a client's requests are no longer read
//! while [`MAX_QUEUED`] bytes of its replies wait to be written (so one that
//! never reads blocks in its own writes, and its socket is not polled for
//! input), and a client whose replies have not moved for [`STALL_TIMEOUT`]
//! is dropped. A refused client gets one `{"error": ...}` line saying why.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::control::{self, ControlError, ControlEvent, EventBatch};
use crate::snapshot::Snapshot;
use crate::sys::{POLLIN, POLLOUT, PollFd};

/// Longest request line accepted; a client that sends a longer one is dropped.
pub const MAX_LINE: usize = 4096;
/// Clients served at once; one more is told so and closed.
pub const MAX_CLIENTS: usize = 16;
/// Reply bytes queued for one client above which its requests are not read.
/// (One reply may take it past this: a snapshot is never cut.)
pub const MAX_QUEUED: usize = 256 * 1024;
/// How long a client's queued replies may stay unwritten before it is dropped.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections taken from the listener's queue per [`ControlServer::service`]
/// call, so that a flood of connects cannot keep the owner's loop here.
const ACCEPTS_PER_SERVICE: usize = 32;

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    /// Reply bytes not written yet: `out[out_off..]`.
    out: Vec<u8>,
    out_off: usize,
    /// The client shut its writing side: answer what it asked, then close.
    eof: bool,
    /// Since when queued replies have waited without a byte written.
    stalled_since: Option<Instant>,
    /// Sequence number of the next event this client has not seen
    /// (see [`EventLog`]).
    cursor: u64,
}

/// What happened to a client in one service round.
enum Step {
    Keep,
    Drop,
}

impl Client {
    fn new(stream: UnixStream) -> Client {
        Client { stream, inbuf: Vec::new(), out: Vec::new(), out_off: 0, eof: false, stalled_since: None, cursor: 0 }
    }

    fn queued(&self) -> usize {
        self.out.len() - self.out_off
    }

    fn has_line(&self) -> bool {
        self.inbuf.contains(&b'\n')
    }

    /// Whether to read more requests: not while replies are backed up or a
    /// complete request is still waiting for its turn.
    fn wants_read(&self) -> bool {
        !self.eof && self.queued() < MAX_QUEUED && !self.has_line()
    }

    fn events(&self) -> i16 {
        let mut ev = 0;
        if self.wants_read() {
            ev |= POLLIN;
        }
        if self.queued() > 0 {
            ev |= POLLOUT;
        }
        ev
    }

    /// One read of at most the room left for a request line.
    fn read_some(&mut self) -> Step {
        let mut buf = [0u8; MAX_LINE];
        let room = MAX_LINE - self.inbuf.len();
        loop {
            match self.stream.read(&mut buf[..room]) {
                Ok(0) => {
                    self.eof = true;
                    return Step::Keep;
                }
                Ok(n) => {
                    self.inbuf.extend_from_slice(&buf[..n]);
                    // A request longer than a line can be: not a client of ours.
                    return if self.inbuf.len() >= MAX_LINE && !self.has_line() { Step::Drop } else { Step::Keep };
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Step::Drop,
            }
        }
    }

    /// Write queued replies until done or the socket is full.
    fn flush(&mut self, now: Instant) -> Step {
        let mut wrote = false;
        while self.queued() > 0 {
            match self.stream.write(&self.out[self.out_off..]) {
                Ok(0) => return Step::Drop,
                Ok(n) => {
                    self.out_off += n;
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Step::Drop,
            }
        }
        if self.queued() == 0 {
            self.out.clear();
            self.out_off = 0;
            self.stalled_since = None;
        } else {
            if self.out_off > self.out.len() / 2 {
                self.out.drain(..self.out_off);
                self.out_off = 0;
            }
            self.stalled_since = if wrote { Some(now) } else { self.stalled_since.or(Some(now)) };
        }
        Step::Keep
    }

    fn stalled(&self, now: Instant) -> bool {
        self.stalled_since.is_some_and(|t| now.saturating_duration_since(t) >= STALL_TIMEOUT)
    }
}

/// The events a process reports, kept for `events` requests: every client
/// gets the events since its previous `events` request (the first request
/// returns everything still kept). At most `cap` events are kept; older
/// ones are dropped.
#[derive(Debug)]
pub struct EventLog {
    events: std::collections::VecDeque<ControlEvent>,
    /// Sequence number of `events[0]`.
    first: u64,
    cap: usize,
}

impl EventLog {
    pub fn new(cap: usize) -> EventLog {
        EventLog { events: std::collections::VecDeque::new(), first: 0, cap: cap.max(1) }
    }

    pub fn push(&mut self, ev: ControlEvent) {
        if self.events.len() == self.cap {
            self.events.pop_front();
            self.first += 1;
        }
        self.events.push_back(ev);
    }

    /// Sequence number the next pushed event gets.
    pub fn end(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    /// The events from sequence number `cursor` on, and the new cursor.
    pub fn since(&self, cursor: u64) -> (EventBatch, u64) {
        let skip = cursor.saturating_sub(self.first) as usize;
        (EventBatch { events: self.events.iter().skip(skip).cloned().collect() }, self.end())
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    clients: Vec<Client>,
    refused: u64,
}

impl ControlServer {
    /// Listen on this process's socket in [`control::runtime_dir`]
    /// (created 0700 if missing; refused if another user could have
    /// planted it, see [`control::check_runtime_dir`]).
    pub fn bind_default() -> Result<ControlServer, ControlError> {
        ControlServer::bind_in(&control::runtime_dir())
    }

    /// Listen on this process's socket in `dir`, prepared and checked as
    /// [`Self::bind_default`] does.
    pub fn bind_in(dir: &Path) -> Result<ControlServer, ControlError> {
        control::prepare_runtime_dir(dir)?;
        ControlServer::bind(&dir.join(format!("mptcp-cat-{}.sock", std::process::id())))
    }

    /// Listen on `path` (mode 0600), replacing a stale socket file left by
    /// a process that died without cleaning up.
    pub fn bind(path: &Path) -> Result<ControlServer, ControlError> {
        let io = |source| ControlError::Io { path: path.to_path_buf(), source };
        if let Ok(md) = std::fs::symlink_metadata(path) {
            if !md.is_dir() && control::connect_unix(path).is_err() {
                std::fs::remove_file(path).map_err(io)?;
            }
        }
        let listener = UnixListener::bind(path).map_err(io)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        listener.set_nonblocking(true).map_err(io)?;
        Ok(ControlServer { listener, path: path.to_path_buf(), clients: Vec::new(), refused: 0 })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptors to poll: the listener, then every client (for input
    /// only while its requests are read, for output while replies wait).
    pub fn poll_fds(&self) -> Vec<PollFd> {
        let mut v = vec![PollFd::new(&self.listener, POLLIN)];
        for c in &self.clients {
            v.push(PollFd::new(&c.stream, c.events()));
        }
        v
    }

    /// Handle what `ready` (the [`Self::poll_fds`] entries after `poll`)
    /// reports: accept clients, answer complete request lines.
    pub fn service(
        &mut self,
        ready: &[PollFd],
        snapshot: &mut dyn FnMut() -> Snapshot,
        events: &mut dyn FnMut() -> EventBatch,
    ) {
        self.service_at(Instant::now(), ready, snapshot, events);
    }

    /// [`Self::service`] at time `now`.
    pub fn service_at(
        &mut self,
        now: Instant,
        ready: &[PollFd],
        snapshot: &mut dyn FnMut() -> Snapshot,
        events: &mut dyn FnMut() -> EventBatch,
    ) {
        self.serve(now, ready, snapshot, &mut |cursor| (events(), cursor));
    }

    /// Like [`Self::service`], with `events` answered from `log`: each
    /// client gets the events since its own previous `events` request.
    pub fn service_log(&mut self, ready: &[PollFd], snapshot: &mut dyn FnMut() -> Snapshot, log: &EventLog) {
        self.service_log_at(Instant::now(), ready, snapshot, log);
    }

    /// [`Self::service_log`] at time `now`.
    pub fn service_log_at(
        &mut self,
        now: Instant,
        ready: &[PollFd],
        snapshot: &mut dyn FnMut() -> Snapshot,
        log: &EventLog,
    ) {
        self.serve(now, ready, snapshot, &mut |cursor| log.since(cursor));
    }

    /// `events` maps a client's cursor to its batch and its next cursor.
    fn serve(
        &mut self,
        now: Instant,
        ready: &[PollFd],
        snapshot: &mut dyn FnMut() -> Snapshot,
        events: &mut dyn FnMut(u64) -> (EventBatch, u64),
    ) {
        // Free the places of clients that stopped reading, before taking new ones.
        self.clients.retain(|c| !c.stalled(now));
        let fd_ready = |fd: i32| ready.iter().find(|p| p.fd == fd).copied();
        if fd_ready(self.listener.as_raw_fd()).is_some_and(|p| p.readable()) {
            for _ in 0..ACCEPTS_PER_SERVICE {
                match self.listener.accept() {
                    Ok((stream, _)) => self.admit(stream),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                }
            }
        }
        self.clients.retain_mut(|c| {
            let Some(p) = fd_ready(c.stream.as_raw_fd()) else { return true };
            matches!(Self::serve_client(c, p, now, &mut *snapshot, &mut *events), Step::Keep)
        });
    }

    /// Take a new connection if its peer may talk to us and there is room;
    /// else tell it why (one line, never waited for) and close it.
    fn admit(&mut self, stream: UnixStream) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let refusal = match control::peer_uid(&stream) {
            Err(_) => return,
            Ok(uid) if !control::trusted_uid(uid) => ControlError::ClientNotTrusted { uid, ours: control::euid() },
            Ok(_) if self.clients.len() >= MAX_CLIENTS => ControlError::TooManyClients { limit: MAX_CLIENTS },
            Ok(_) => {
                self.clients.push(Client::new(stream));
                return;
            }
        };
        self.refused += 1;
        let _ = (&stream).write(control::error_line(&refusal).as_bytes());
    }

    fn serve_client(
        c: &mut Client,
        p: PollFd,
        now: Instant,
        snapshot: &mut dyn FnMut() -> Snapshot,
        events: &mut dyn FnMut(u64) -> (EventBatch, u64),
    ) -> Step {
        if p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            // Gone both ways (or broken): nothing it asked can reach it.
            return Step::Drop;
        }
        if p.revents & libc::POLLIN != 0 && c.wants_read() {
            if let Step::Drop = c.read_some() {
                return Step::Drop;
            }
        }
        // Answer while replies may queue; stop when the client does not
        // keep up (its socket is then polled for output, which brings us
        // back here) or no complete request is left. Bounded: at most the
        // requests one MAX_LINE read brought.
        loop {
            while c.queued() < MAX_QUEUED {
                let Some(nl) = c.inbuf.iter().position(|b| *b == b'\n') else { break };
                let line: Vec<u8> = c.inbuf.drain(..=nl).collect();
                let req = String::from_utf8_lossy(&line);
                let cursor = &mut c.cursor;
                let reply = control::reply(&req, &mut *snapshot, || {
                    let (batch, next) = events(*cursor);
                    *cursor = next;
                    batch
                });
                c.out.extend_from_slice(reply.as_bytes());
            }
            if let Step::Drop = c.flush(now) {
                return Step::Drop;
            }
            if c.queued() > 0 || !c.has_line() {
                break;
            }
        }
        if c.eof && c.queued() == 0 { Step::Drop } else { Step::Keep }
    }

    /// Clients currently connected.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    /// Connections refused so far (another user's, or over [`MAX_CLIENTS`]).
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Bytes held for clients: partial requests and unwritten replies.
    pub fn buffered(&self) -> usize {
        self.clients.iter().map(|c| c.inbuf.len() + c.queued()).sum()
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
