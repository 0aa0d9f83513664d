//! Where mptcp-ss gets its data: the kernel (sock_diag, mptcp_pm events),
//! embedded stacks (control sockets) and packets.
//!
//! Every source implements [`Source`]: the run loop calls [`Source::poll`]
//! on each tick with the time since mptcp-ss started, asking for a snapshot
//! every `--interval`; a source answers with connections (in the
//! [`crate::snapshot`] shape), events for the log and notes on its own
//! health ("not CAP_NET_ADMIN: ..."). [`Sources`] merges them.

pub mod embedded;
pub mod events;
pub mod kernel;
pub mod packets;

use std::net::IpAddr;
use std::time::Duration;

use crate::control::ControlEvent;
use crate::snapshot::Snapshot;

/// "ADDR:PORT", IPv6 as "[ADDR]:PORT" (the snapshot contract).
pub fn fmt_sockaddr(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v) => format!("{v}:{port}"),
        IpAddr::V6(v) => format!("[{v}]:{port}"),
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it maps (so an IPv6
/// MPTCP socket's addresses compare equal to its IPv4 subflow's).
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v) => v.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// How much a note matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Warn,
}

/// A source's word on its own state, shown in the view's status area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub source: String,
    pub level: Level,
    pub text: String,
}

impl Note {
    pub fn warn(source: impl Into<String>, text: impl Into<String>) -> Note {
        Note { source: source.into(), level: Level::Warn, text: text.into() }
    }
    pub fn info(source: impl Into<String>, text: impl Into<String>) -> Note {
        Note { source: source.into(), level: Level::Info, text: text.into() }
    }
}

/// One line of the event log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEvent {
    /// When mptcp-ss received it, since mptcp-ss started; for events
    /// reconstructed from packets, the capture time since the first frame.
    pub at: Duration,
    /// "kernel", "embedded:PID", ...
    pub source: String,
    pub event: ControlEvent,
}

/// What one poll of one source brought.
#[derive(Clone, Debug, Default)]
pub struct SourceUpdate {
    /// Present when a snapshot was asked for and the source has one.
    pub snapshot: Option<Snapshot>,
    pub events: Vec<LogEvent>,
    /// The source's notes; only read on snapshot polls, where they replace
    /// the previous ones.
    pub notes: Vec<Note>,
    /// With a snapshot from packets: the capture time it reflects (since the
    /// first frame), the clock its rates are to be measured on. `None` for
    /// live sources, whose clock is the poll's `now`.
    pub clock: Option<Duration>,
}

/// A provider of connections and/or events.
pub trait Source {
    /// A short name for notes ("kernel", "events", "embedded", "capture:FILE").
    fn label(&self) -> String;
    /// Gather what is new. `now` is the time since mptcp-ss started;
    /// `snapshot` asks for the connections as of now (every `--interval`).
    fn poll(&mut self, now: Duration, snapshot: bool) -> SourceUpdate;
    /// Whether the source has nothing more to give (a capture file read to
    /// its end). Live sources never finish.
    fn finished(&self) -> bool {
        false
    }
    /// What made the source's data incomplete, for the exit status of a
    /// one-shot run (a capture file that could not be read to its end).
    fn failure(&self) -> Option<String> {
        None
    }
}

/// A source that could not start: it has no data, only the reason, which it
/// repeats in the view so the user knows what is missing and why.
pub struct Unavailable {
    pub label: String,
    pub reason: String,
}

impl Source for Unavailable {
    fn label(&self) -> String {
        self.label.clone()
    }
    fn poll(&mut self, _now: Duration, snapshot: bool) -> SourceUpdate {
        let notes = if snapshot { vec![Note::warn(&self.label, &self.reason)] } else { Vec::new() };
        SourceUpdate { notes, ..Default::default() }
    }
}

/// What all sources brought in one poll, merged.
#[derive(Clone, Debug, Default)]
pub struct Update {
    pub snapshot: Option<Snapshot>,
    /// How many sources contributed to `snapshot`.
    pub sources_with_snapshot: usize,
    pub events: Vec<LogEvent>,
    pub notes: Vec<Note>,
    /// The first source's capture clock (see [`SourceUpdate::clock`]).
    pub clock: Option<Duration>,
}

/// The set of sources the view draws from.
#[derive(Default)]
pub struct Sources {
    list: Vec<Box<dyn Source>>,
}

impl Sources {
    pub fn new() -> Sources {
        Sources::default()
    }

    pub fn push(&mut self, s: Box<dyn Source>) {
        self.list.push(s);
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether every source is finished (nothing more will come).
    pub fn finished(&self) -> bool {
        self.list.iter().all(|s| s.finished())
    }

    /// Each source's failure (see [`Source::failure`]), with its label.
    pub fn failures(&self) -> Vec<(String, String)> {
        self.list.iter().filter_map(|s| s.failure().map(|f| (s.label(), f))).collect()
    }

    /// Poll every source and merge: connections in source order; MIB
    /// counters under their own names for the first source that has them,
    /// prefixed "SOURCE/" for the others; events in arrival order.
    pub fn poll(&mut self, now: Duration, snapshot: bool) -> Update {
        let mut out = Update::default();
        let mut merged = Snapshot::default();
        for s in &mut self.list {
            let u = s.poll(now, snapshot);
            out.events.extend(u.events);
            out.notes.extend(u.notes);
            out.clock = out.clock.or(u.clock);
            if let Some(snap) = u.snapshot {
                out.sources_with_snapshot += 1;
                let first_mib = merged.mib.is_empty();
                for (k, v) in snap.mib {
                    let k = if first_mib { k } else { format!("{}/{k}", s.label()) };
                    merged.mib.insert(k, v);
                }
                merged.connections.extend(snap.connections);
            }
        }
        if snapshot {
            out.snapshot = Some(merged);
        }
        out.events.sort_by_key(|e| e.at);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::ConnSnapshot;

    struct Fake(&'static str, u32);
    impl Source for Fake {
        fn label(&self) -> String {
            self.0.into()
        }
        fn poll(&mut self, now: Duration, snapshot: bool) -> SourceUpdate {
            self.1 += 1;
            let mut snap = Snapshot::default();
            snap.mib.insert("MPTcpExtX".into(), u64::from(self.1));
            snap.connections.push(ConnSnapshot { source: self.0.into(), ..Default::default() });
            SourceUpdate {
                snapshot: snapshot.then_some(snap),
                events: vec![LogEvent { at: now, source: self.0.into(), event: ControlEvent::default() }],
                notes: vec![Note::info(self.0, "ok")],
                clock: None,
            }
        }
    }

    #[test]
    fn merge() {
        let mut s = Sources::new();
        s.push(Box::new(Fake("kernel", 0)));
        s.push(Box::new(Unavailable { label: "events".into(), reason: "needs CAP_NET_ADMIN".into() }));
        s.push(Box::new(Fake("embedded", 10)));
        let u = s.poll(Duration::from_millis(5), true);
        let snap = u.snapshot.unwrap();
        assert_eq!(snap.connections.len(), 2);
        assert_eq!(u.sources_with_snapshot, 2);
        assert_eq!(snap.mib.get("MPTcpExtX"), Some(&1));
        assert_eq!(snap.mib.get("embedded/MPTcpExtX"), Some(&11));
        assert_eq!(u.events.len(), 2);
        assert_eq!(u.notes.len(), 3);
        assert_eq!(u.notes[1].level, Level::Warn);
        let u = s.poll(Duration::from_millis(6), false);
        assert!(u.snapshot.is_none());
        assert!(!s.finished());
    }

    #[test]
    fn addresses() {
        assert_eq!(fmt_sockaddr("10.0.0.1".parse().unwrap(), 80), "10.0.0.1:80");
        assert_eq!(fmt_sockaddr("fd77::1:1".parse().unwrap(), 80), "[fd77::1:1]:80");
        assert_eq!(normalize_ip("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(normalize_ip("::1".parse().unwrap()), "::1".parse::<IpAddr>().unwrap());
    }
}
