//! Serves [`crate::control`]'s protocol (one JSON line per request line) on
//! this process's Unix socket, `RUNTIME_DIR/mptcp-cat-PID.sock`, from a
//! snapshot closure. Non-blocking: the owner's poll loop adds
//! [`ControlServer::poll_fds`] to its set and calls [`ControlServer::service`]
//! with the result. The socket file is removed when the server is dropped,
//! which the loops guarantee on a normal end and on SIGINT/SIGTERM/SIGHUP
//! (see [`super::signals`]).

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::sys::{POLLIN, POLLOUT, PollFd};
use crate::control::{self, ControlEvent, EventBatch};
use crate::snapshot::Snapshot;

/// Longest request line accepted.
const MAX_LINE: usize = 4096;

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    /// Sequence number of the next event this client has not seen
    /// (see [`EventLog`]).
    cursor: u64,
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
}

impl ControlServer {
    /// Listen on this process's socket in [`control::runtime_dir`]
    /// (created 0700 if missing).
    pub fn bind_default() -> io::Result<ControlServer> {
        let dir = control::runtime_dir();
        if !dir.exists() {
            std::fs::create_dir_all(&dir)?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        ControlServer::bind(&control::socket_path(std::process::id()))
    }

    /// Listen on `path`, replacing a stale socket file left by a process
    /// that died without cleaning up.
    pub fn bind(path: &Path) -> io::Result<ControlServer> {
        if path.exists() && UnixStream::connect(path).is_err() {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        listener.set_nonblocking(true)?;
        Ok(ControlServer { listener, path: path.to_path_buf(), clients: Vec::new() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptors to poll: the listener, then every client.
    pub fn poll_fds(&self) -> Vec<PollFd> {
        let mut v = vec![PollFd::new(&self.listener, POLLIN)];
        for c in &self.clients {
            v.push(PollFd::new(&c.stream, if c.out.is_empty() { POLLIN } else { POLLIN | POLLOUT }));
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
        self.serve(ready, snapshot, &mut |cursor| (events(), cursor));
    }

    /// Like [`Self::service`], with `events` answered from `log`: each
    /// client gets the events since its own previous `events` request.
    pub fn service_log(&mut self, ready: &[PollFd], snapshot: &mut dyn FnMut() -> Snapshot, log: &EventLog) {
        self.serve(ready, snapshot, &mut |cursor| log.since(cursor));
    }

    /// `events` maps a client's cursor to its batch and its next cursor.
    fn serve(
        &mut self,
        ready: &[PollFd],
        snapshot: &mut dyn FnMut() -> Snapshot,
        events: &mut dyn FnMut(u64) -> (EventBatch, u64),
    ) {
        let fd_ready = |fd: i32| ready.iter().find(|p| p.fd == fd).copied();
        if fd_ready(self.listener.as_raw_fd()).is_some_and(|p| p.readable()) {
            while let Ok((stream, _)) = self.listener.accept() {
                if stream.set_nonblocking(true).is_ok() {
                    self.clients.push(Client { stream, inbuf: Vec::new(), out: Vec::new(), cursor: 0 });
                }
            }
        }
        let mut buf = [0u8; 1024];
        self.clients.retain_mut(|c| {
            let Some(p) = fd_ready(c.stream.as_raw_fd()) else { return true };
            Self::serve_client(c, p, &mut buf, &mut *snapshot, &mut *events)
        });
    }

    fn serve_client(
        c: &mut Client,
        p: PollFd,
        buf: &mut [u8],
        snapshot: &mut dyn FnMut() -> Snapshot,
        events: &mut dyn FnMut(u64) -> (EventBatch, u64),
    ) -> bool {
        if p.readable() {
            loop {
                match c.stream.read(buf) {
                    Ok(0) => return false,
                    Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
            }
            while let Some(nl) = c.inbuf.iter().position(|b| *b == b'\n') {
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
            if c.inbuf.len() > MAX_LINE {
                return false;
            }
        }
        while !c.out.is_empty() {
            match c.stream.write(&c.out) {
                Ok(n) => {
                    c.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        true
    }

    /// Clients currently connected.
    pub fn clients(&self) -> usize {
        self.clients.len()
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
