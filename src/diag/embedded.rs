//! Embedded stacks as a source: every running embedded `mptcp-cat` serves
//! its connections and events on a control socket (see [`crate::control`]);
//! this source asks each one found in the runtime directory.
//!
//! Nothing from there is trusted blindly: the directory must pass
//! [`check_runtime_dir`], a socket must be served by our uid or root, every
//! request has a deadline ([`VIEW_DEADLINE`]) and a size limit, and a process
//! that misbehaves (unresponsive, too long or bad replies) is skipped for a
//! while ([`BACKOFF_MIN`] to [`BACKOFF_MAX`]) so that the view keeps its
//! pace; each of these is a note in the view.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::{LogEvent, Note, Source, SourceUpdate};
use crate::control::{ControlClient, ControlError, check_runtime_dir, list_sockets_in, runtime_dir};
use crate::snapshot::Snapshot;

/// How long the view waits for one reply of one process.
pub const VIEW_DEADLINE: Duration = Duration::from_secs(1);
/// The first pause after a process misbehaved; it doubles on each further
/// failure up to [`BACKOFF_MAX`], and ends with a good reply.
pub const BACKOFF_MIN: Duration = Duration::from_secs(5);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Problems kept between two snapshots.
const MAX_PROBLEMS: usize = 64;

/// A process that is skipped until `until` (time since mptcp-ss started).
#[derive(Clone, Debug)]
struct Backoff {
    until: Duration,
    wait: Duration,
    reason: String,
}

/// All control sockets of a runtime directory.
pub struct EmbeddedSource {
    dir: PathBuf,
    clients: BTreeMap<u32, ControlClient>,
    skipped: BTreeMap<u32, Backoff>,
    deadline: Duration,
    /// Problems met since the last snapshot poll, reported then.
    problems: Vec<String>,
}

impl EmbeddedSource {
    /// The sockets of the default runtime directory ([`runtime_dir`]).
    pub fn new() -> EmbeddedSource {
        EmbeddedSource::in_dir(runtime_dir())
    }

    pub fn in_dir(dir: PathBuf) -> EmbeddedSource {
        EmbeddedSource {
            dir,
            clients: BTreeMap::new(),
            skipped: BTreeMap::new(),
            deadline: VIEW_DEADLINE,
            problems: Vec::new(),
        }
    }

    /// Wait at most `d` for each reply (instead of [`VIEW_DEADLINE`]).
    pub fn with_deadline(mut self, d: Duration) -> EmbeddedSource {
        self.deadline = d;
        self
    }

    /// Keep a problem for the next snapshot's notes (once, and not without
    /// bound: between two snapshots the same problems come back every tick).
    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS && !self.problems.contains(&text) {
            self.problems.push(text);
        }
    }

    /// Skip process `pid` for a while after `e`.
    fn skip(&mut self, pid: u32, now: Duration, e: &ControlError) {
        let wait = self.skipped.get(&pid).map_or(BACKOFF_MIN, |b| (b.wait * 2).min(BACKOFF_MAX));
        self.skipped.insert(pid, Backoff { until: now + wait, wait, reason: e.to_string() });
        self.problem(format!("embedded:{pid}: {e}; skipped for {}s", wait.as_secs()));
    }

    /// Connect to sockets that appeared, forget those that went away;
    /// `snapshot`: this poll reports the notes (the others only gather).
    fn refresh(&mut self, now: Duration, snapshot: bool) {
        if let Err(e) = check_runtime_dir(&self.dir) {
            self.clients.clear();
            match &e {
                // No directory: no embedded process has run yet.
                ControlError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {}
                _ => self.problem(e.to_string()),
            }
            return;
        }
        let present = list_sockets_in(&self.dir);
        self.clients.retain(|pid, _| present.iter().any(|(p, _)| p == pid));
        self.skipped.retain(|pid, _| present.iter().any(|(p, _)| p == pid));
        for (pid, path) in present {
            if self.clients.contains_key(&pid) {
                continue;
            }
            if let Some(b) = self.skipped.get(&pid).filter(|b| now < b.until) {
                if snapshot {
                    let left = b.until.saturating_sub(now).as_secs_f64().ceil();
                    let text = format!("embedded:{pid}: skipped for {left}s more: {}", b.reason);
                    self.problem(text);
                }
                continue;
            }
            match ControlClient::connect_with_deadline(&path, self.deadline) {
                Ok(c) => {
                    self.clients.insert(pid, c);
                }
                // A socket file left by a process that is gone: nothing to show.
                Err(e) if e.is_stale() => self.problem(format!("{e} (stale: the process is gone?)")),
                Err(e @ ControlError::NotAccepting { .. }) => self.skip(pid, now, &e),
                Err(e) => self.problem(e.to_string()),
            }
        }
    }

    /// How many embedded processes answer.
    pub fn count(&self) -> usize {
        self.clients.len()
    }
}

impl Default for EmbeddedSource {
    fn default() -> Self {
        EmbeddedSource::new()
    }
}

impl Source for EmbeddedSource {
    fn label(&self) -> String {
        "embedded".into()
    }

    fn poll(&mut self, now: Duration, snapshot: bool) -> SourceUpdate {
        if snapshot || self.clients.is_empty() {
            self.refresh(now, snapshot);
        }
        let mut out = SourceUpdate::default();
        let mut snap = Snapshot::default();
        let mut failed: Vec<(u32, ControlError)> = Vec::new();
        for (pid, client) in &mut self.clients {
            let source = format!("embedded:{pid}");
            match client.events() {
                Ok(batch) => out.events.extend(batch.events.into_iter().map(|event| LogEvent {
                    at: now,
                    source: source.clone(),
                    event,
                })),
                Err(e) => {
                    failed.push((*pid, e));
                    continue;
                }
            }
            if snapshot {
                match client.snapshot() {
                    Ok(s) => {
                        for mut c in s.connections {
                            if !c.source.starts_with("embedded") {
                                c.source = source.clone();
                            }
                            snap.connections.push(c);
                        }
                        for (k, v) in s.mib {
                            snap.mib.insert(format!("{source}/{k}"), v);
                        }
                    }
                    Err(e) => failed.push((*pid, e)),
                }
            }
        }
        for (pid, e) in failed {
            self.clients.remove(&pid);
            match &e {
                // The process ended between two requests.
                ControlError::BadReply { detail, .. } if detail == "connection closed" => self.problem(e.to_string()),
                _ => self.skip(pid, now, &e),
            }
        }
        for pid in self.clients.keys() {
            self.skipped.remove(pid);
        }
        if snapshot {
            out.snapshot = Some(snap);
            out.notes = self.problems.drain(..).map(|p| Note::warn("embedded", p)).collect();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{ControlEvent, EventBatch, reply};
    use crate::snapshot::{ConnSnapshot, SubflowSnapshot};
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixListener;

    /// A fake embedded mptcp-cat: serves one client with `control::reply`.
    fn fake_server(dir: &std::path::Path, pid: u32) -> std::thread::JoinHandle<usize> {
        let l = UnixListener::bind(dir.join(format!("mptcp-cat-{pid}.sock"))).unwrap();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut served = 0;
            let mut first_events = true;
            for line in BufReader::new(s).lines() {
                let Ok(line) = line else { break };
                served += 1;
                let snap = || Snapshot {
                    connections: vec![ConnSnapshot {
                        source: format!("embedded:{pid}"),
                        token: Some("0x01020304".into()),
                        state: "ESTAB".into(),
                        subflows: vec![SubflowSnapshot { flags: "Mmec".into(), ..Default::default() }],
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let evs = || EventBatch {
                    events: if std::mem::take(&mut first_events) {
                        vec![ControlEvent { kind: "established".into(), ..Default::default() }]
                    } else {
                        vec![]
                    },
                };
                if w.write_all(reply(&line, snap, evs).as_bytes()).is_err() {
                    break;
                }
            }
            served
        })
    }

    #[test]
    fn polls_control_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let server = fake_server(dir.path(), 4242);
        // A stale socket file nobody listens on.
        drop(UnixListener::bind(dir.path().join("mptcp-cat-99.sock")).unwrap());
        let mut src = EmbeddedSource::in_dir(dir.path().to_path_buf());
        let u = src.poll(Duration::from_secs(1), true);
        let snap = u.snapshot.unwrap();
        assert_eq!(snap.connections.len(), 1);
        assert_eq!(snap.connections[0].source, "embedded:4242");
        assert_eq!(snap.connections[0].subflows[0].flags, "Mmec");
        assert_eq!(u.events.len(), 1);
        assert_eq!((u.events[0].source.as_str(), u.events[0].event.kind.as_str()), ("embedded:4242", "established"));
        assert_eq!(u.notes.len(), 1, "{:?}", u.notes);
        assert!(u.notes[0].text.contains("mptcp-cat-99.sock"));
        assert_eq!(src.count(), 1);
        // Events only: no snapshot, and the events are not repeated.
        let u = src.poll(Duration::from_secs(2), false);
        assert!(u.snapshot.is_none() && u.events.is_empty());
        // The process goes away: the next poll drops it and says why.
        std::fs::remove_file(dir.path().join("mptcp-cat-4242.sock")).unwrap();
        let u = src.poll(Duration::from_secs(3), true);
        assert!(u.snapshot.unwrap().connections.is_empty());
        assert_eq!(src.count(), 0);
        drop(src);
        assert_eq!(server.join().unwrap(), 3, "events and snapshot, then events");
    }

    #[test]
    fn an_unresponsive_process_is_skipped_with_a_growing_pause() {
        let dir = tempfile::tempdir().unwrap();
        // Accepts, reads, never answers.
        let l = UnixListener::bind(dir.path().join("mptcp-cat-77.sock")).unwrap();
        let server = std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming().take(2) {
                held.push(s.unwrap());
            }
            held
        });
        let mut src = EmbeddedSource::in_dir(dir.path().to_path_buf()).with_deadline(Duration::from_millis(200));
        let t = std::time::Instant::now();
        let u = src.poll(Duration::ZERO, true);
        assert!(t.elapsed() < Duration::from_secs(2));
        assert_eq!(u.notes.len(), 1, "{:?}", u.notes);
        assert!(u.notes[0].text.contains("no complete reply within 200 ms"), "{:?}", u.notes);
        assert!(u.notes[0].text.ends_with("skipped for 5s"), "{:?}", u.notes);
        assert_eq!(src.count(), 0);
        // Within the pause: not asked again (no wait), and said so.
        let t = std::time::Instant::now();
        for ms in (100..4000).step_by(100) {
            src.poll(Duration::from_millis(ms), false);
        }
        let u = src.poll(Duration::from_secs(4), true);
        assert!(t.elapsed() < Duration::from_millis(150), "{:?}", t.elapsed());
        assert_eq!(u.notes.len(), 1, "{:?}", u.notes);
        assert!(u.notes[0].text.starts_with("embedded:77: skipped for 1s more: control socket"), "{:?}", u.notes);
        // After it: asked again; still silent, so the pause doubles.
        let u = src.poll(Duration::from_secs(6), true);
        assert!(u.notes.iter().any(|n| n.text.ends_with("skipped for 10s")), "{:?}", u.notes);
        drop(src);
        assert_eq!(server.join().unwrap().len(), 2, "connected twice in all");
    }

    #[test]
    fn a_directory_others_can_write_is_not_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let _server = fake_server(dir.path(), 4243);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o733)).unwrap();
        let mut src = EmbeddedSource::in_dir(dir.path().to_path_buf());
        let u = src.poll(Duration::ZERO, true);
        assert!(u.snapshot.unwrap().connections.is_empty());
        assert_eq!(u.notes.len(), 1, "{:?}", u.notes);
        assert!(u.notes[0].text.contains("has mode 0733: other users can write to it"), "{:?}", u.notes);
        // A missing directory is no problem: no process has run yet.
        let mut src = EmbeddedSource::in_dir(dir.path().join("none"));
        assert!(src.poll(Duration::ZERO, true).notes.is_empty());
        // Opened properly, the same directory is read.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut src = EmbeddedSource::in_dir(dir.path().to_path_buf());
        assert_eq!(src.poll(Duration::ZERO, true).snapshot.unwrap().connections.len(), 1);
    }
}
