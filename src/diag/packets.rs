//! Packets as a source: `-r FILE` replays a capture and `-i IFACE` watches
//! live traffic (libpcap through the `pcap` crate); each frame is decoded by
//! [`crate::dissect::packet::decode`] and handed to a [`PacketModel`], the
//! thing that turns packets into connections (the dissector's analysis),
//! whose [`PacketModel::snapshot`] is the view, and whose events
//! ([`PacketModel::events`]) are the event log. This is the only way to see
//! a peer you do not run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pcap::{Active, Capture, Offline};

use super::{LogEvent, Note, Source, SourceUpdate};
use crate::control::ControlEvent;
use crate::dissect::analysis::{Analyzer, ConnEvent, ConnEventKind};
use crate::dissect::packet::{FrameMeta, Packet, decode, linktype};
use crate::snapshot::{Snapshot, token_hex};

/// What reconstructs connections from packets, fed in capture order.
pub trait PacketModel {
    fn feed(&mut self, meta: &FrameMeta, pkt: &Packet<'_>);
    /// The connections as of the last frame fed, every one with
    /// `source` as its source.
    fn snapshot(&self, source: &str) -> Snapshot;
    /// What happened since the last call (none by default).
    fn events(&mut self) -> Vec<ConnEvent> {
        Vec::new()
    }
}

/// The dissector's connection analysis is the model of the packets source:
/// its snapshot the connections, its event log the events.
impl PacketModel for Analyzer {
    fn feed(&mut self, meta: &FrameMeta, pkt: &Packet<'_>) {
        self.observe(meta, pkt);
    }
    fn snapshot(&self, source: &str) -> Snapshot {
        Analyzer::snapshot(self, source)
    }
    fn events(&mut self) -> Vec<ConnEvent> {
        self.drain_events()
    }
}

/// An analysis event in the event-log vocabulary the kernel's and the
/// embedded stacks' events use; `first_ts` is the capture time of the first
/// frame, from which the event's time counts.
pub fn control_event(e: &ConnEvent, first_ts: f64) -> ControlEvent {
    let rel = (e.ts - first_ts).max(0.0);
    let mut c = ControlEvent {
        time_ms: (rel * 1000.0) as u64,
        kind: e.kind.name().into(),
        token: e.token.map(token_hex),
        local: e.local.map(|a| a.to_string()),
        remote: e.remote.map(|a| a.to_string()),
        id_loc: e.id_loc,
        id_rem: e.id_rem,
        backup: e.backup,
        reason: Some(e.kind.to_string()),
        frame: Some(e.frame),
    };
    if let ConnEventKind::Announced { by, addr, port, .. } = &e.kind {
        let at = match port {
            Some(p) => super::fmt_sockaddr(*addr, *p),
            None => addr.to_string(),
        };
        if *by == crate::dissect::analysis::Side::Client {
            c.local = Some(at);
        } else {
            c.remote = Some(at);
        }
    }
    c
}

/// How a capture file is fed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// At the pace of the capture's timestamps (times `speed`), as if live.
    Replay { speed: f64 },
    /// Everything at the first poll (`--once`).
    AllAtOnce,
}

/// Errors opening a capture.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{}: cannot read the capture: {source}", path.display())]
    File { path: PathBuf, source: pcap::Error },
    #[error("interface {iface}: cannot capture: {source}")]
    Live { iface: String, source: pcap::Error },
    #[error("{input}: unsupported link type {lt} ({})", linktype::name(*lt))]
    LinkType { input: String, lt: u32 },
}

enum Handle {
    File(Capture<Offline>),
    Live(Capture<Active>),
}

/// A capture file or a live interface feeding a [`PacketModel`].
pub struct CaptureSource<M> {
    label: String,
    handle: Handle,
    linktype: u32,
    model: M,
    pace: Pace,
    frames: u64,
    undecodable: u64,
    /// A frame read but not yet due (replay pacing).
    pending: Option<(FrameMeta, Vec<u8>)>,
    first_ts: Option<f64>,
    /// Capture time of the last frame fed.
    last_ts: Option<f64>,
    started: Option<Duration>,
    done: bool,
    problem: Option<String>,
}

fn check_linktype(input: &str, lt: i32) -> Result<u32, CaptureError> {
    let lt = lt as u32;
    if linktype::supported(lt) { Ok(lt) } else { Err(CaptureError::LinkType { input: input.into(), lt }) }
}

impl<M: PacketModel> CaptureSource<M> {
    /// Open a pcap or pcapng file.
    pub fn open_file(path: &Path, model: M, pace: Pace) -> Result<Self, CaptureError> {
        let cap = Capture::from_file_with_precision(path, pcap::Precision::Nano)
            .map_err(|source| CaptureError::File { path: path.to_path_buf(), source })?;
        let name = path.display().to_string();
        let lt = check_linktype(&name, cap.get_datalink().0)?;
        Ok(Self::new(format!("capture:{name}"), Handle::File(cap), lt, model, pace))
    }

    /// Start capturing TCP on a live interface (non-blocking; drained on
    /// every poll).
    pub fn open_live(iface: &str, model: M) -> Result<Self, CaptureError> {
        let err = |source| CaptureError::Live { iface: iface.into(), source };
        let mut cap = Capture::from_device(iface)
            .map_err(err)?
            .snaplen(262_144)
            .timeout(50)
            .immediate_mode(true)
            .open()
            .map_err(err)?;
        cap.filter("tcp", true).map_err(err)?;
        let cap = cap.setnonblock().map_err(err)?;
        let lt = check_linktype(iface, cap.get_datalink().0)?;
        Ok(Self::new(format!("live:{iface}"), Handle::Live(cap), lt, model, Pace::AllAtOnce))
    }

    fn new(label: String, handle: Handle, linktype: u32, model: M, pace: Pace) -> Self {
        CaptureSource {
            label,
            handle,
            linktype,
            model,
            pace,
            frames: 0,
            undecodable: 0,
            pending: None,
            first_ts: None,
            last_ts: None,
            started: None,
            done: false,
            problem: None,
        }
    }

    pub fn model(&self) -> &M {
        &self.model
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    fn feed(&mut self, meta: FrameMeta, data: &[u8]) {
        let pkt = decode(self.linktype, data);
        if pkt.error.is_some() && pkt.tcp.is_none() {
            self.undecodable += 1;
        }
        self.model.feed(&meta, &pkt);
        self.frames += 1;
    }

    /// Read the next frame from the handle: `None` at the end of a file or
    /// when a live capture has nothing queued.
    fn next_frame(&mut self) -> Option<(FrameMeta, Vec<u8>)> {
        let number = self.frames + 1 + u64::from(self.pending.is_some());
        let lt = self.linktype;
        let r = match &mut self.handle {
            Handle::File(c) => c.next_packet(),
            Handle::Live(c) => c.next_packet(),
        };
        match r {
            Ok(p) => {
                let meta = FrameMeta {
                    number,
                    ts_sec: p.header.ts.tv_sec,
                    // Opened with nanosecond precision: tv_usec holds nanoseconds.
                    ts_nsec: p.header.ts.tv_usec as u32,
                    caplen: p.header.caplen,
                    len: p.header.len,
                    linktype: lt,
                };
                Some((meta, p.data.to_vec()))
            }
            Err(pcap::Error::NoMorePackets) => {
                if matches!(self.handle, Handle::File(_)) {
                    self.done = true;
                }
                None
            }
            Err(pcap::Error::TimeoutExpired) => None,
            Err(e) => {
                self.problem = Some(format!("read error: {e}"));
                if matches!(self.handle, Handle::File(_)) {
                    self.done = true;
                }
                None
            }
        }
    }

    /// Feed what is due at `now`.
    fn advance(&mut self, now: Duration) {
        let live = matches!(self.handle, Handle::Live(_));
        let limit = match self.pace {
            Pace::Replay { speed } if !live => {
                let started = *self.started.get_or_insert(now);
                Some((now.saturating_sub(started)).as_secs_f64() * speed)
            }
            _ => None,
        };
        // A live capture is drained in bounded bites so the view stays responsive.
        let mut budget: u32 = if live { 20_000 } else { u32::MAX };
        while budget > 0 && !self.done {
            budget -= 1;
            let Some((meta, data)) = self.pending.take().or_else(|| self.next_frame()) else { break };
            let first = *self.first_ts.get_or_insert(meta.ts());
            if let Some(limit) = limit {
                if meta.ts() - first > limit {
                    self.pending = Some((meta, data));
                    break;
                }
            }
            self.last_ts = Some(meta.ts());
            self.feed(meta, &data);
        }
    }
}

impl<M: PacketModel> Source for CaptureSource<M> {
    fn label(&self) -> String {
        self.label.clone()
    }

    fn poll(&mut self, now: Duration, snapshot: bool) -> SourceUpdate {
        self.advance(now);
        let mut u = SourceUpdate::default();
        let first = self.first_ts.unwrap_or(0.0);
        u.events = self
            .model
            .events()
            .iter()
            .map(|e| {
                let event = control_event(e, first);
                LogEvent { at: Duration::from_millis(event.time_ms), source: self.label.clone(), event }
            })
            .collect();
        if snapshot {
            u.snapshot = Some(self.model.snapshot(&self.label));
            // The capture's own clock: rates follow the traffic's pace
            // whatever the replay speed, and stop when the capture ends.
            u.clock = self.last_ts.map(|t| Duration::from_secs_f64((t - first).max(0.0)));
            let mut text = format!("{} frames", self.frames);
            if self.undecodable > 0 {
                text.push_str(&format!(", {} not decodable", self.undecodable));
            }
            if self.done {
                text.push_str(", end of capture");
            }
            u.notes.push(Note::info(&self.label, text));
            if let Some(p) = &self.problem {
                u.notes.push(Note::warn(&self.label, p));
            }
        }
        u
    }

    fn finished(&self) -> bool {
        self.done && self.pending.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model that only counts, to test the reading and pacing.
    #[derive(Default)]
    struct Counter {
        frames: u64,
        tcp: u64,
        last_ts: f64,
    }

    impl PacketModel for Counter {
        fn feed(&mut self, meta: &FrameMeta, pkt: &Packet<'_>) {
            assert_eq!(meta.number, self.frames + 1, "frames numbered from 1 in order");
            self.frames += 1;
            self.tcp += u64::from(pkt.tcp.is_some());
            self.last_ts = meta.ts();
        }
        fn snapshot(&self, _source: &str) -> Snapshot {
            Snapshot::default()
        }
    }

    fn pcap(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/captures/pcap").join(name)
    }

    #[test]
    fn reads_a_whole_file() {
        let mut s =
            CaptureSource::open_file(&pcap("single-subflow.pcap"), Counter::default(), Pace::AllAtOnce).unwrap();
        assert_eq!(s.label(), format!("capture:{}", pcap("single-subflow.pcap").display()));
        let u = s.poll(Duration::ZERO, true);
        assert!(u.snapshot.is_some());
        // capinfos: 14 packets, all TCP.
        assert_eq!((s.model().frames, s.model().tcp), (14, 14));
        assert!(s.finished());
        assert!(u.notes[0].text.contains("14 frames, end of capture"), "{:?}", u.notes);
    }

    #[test]
    fn replay_follows_the_capture_clock() {
        let mut s =
            CaptureSource::open_file(&pcap("two-subflows-join.pcap"), Counter::default(), Pace::Replay { speed: 1.0 })
                .unwrap();
        s.poll(Duration::from_secs(10), false);
        let at_start = s.model().frames;
        assert!((1..1606).contains(&at_start), "only the frames of the first instant: {at_start}");
        let first = s.first_ts.unwrap();
        s.poll(Duration::from_secs(10) + Duration::from_millis(100), false);
        let m = s.model();
        assert!(m.last_ts - first <= 0.1 + 1e-9, "nothing later than 100 ms in: {}", m.last_ts - first);
        assert!(!s.finished());
        s.poll(Duration::from_secs(1000), false);
        assert_eq!(s.model().frames, 1606);
        assert!(s.finished());
    }

    #[test]
    fn open_errors_name_the_input() {
        let e = CaptureSource::open_file(Path::new("/nonexistent/x.pcap"), Counter::default(), Pace::AllAtOnce)
            .err()
            .unwrap();
        assert!(e.to_string().starts_with("/nonexistent/x.pcap: cannot read the capture"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pcap");
        std::fs::write(&junk, b"this is not a capture").unwrap();
        let e = CaptureSource::open_file(&junk, Counter::default(), Pace::AllAtOnce).err().unwrap();
        assert!(e.to_string().contains("junk.pcap"), "{e}");
        let e = CaptureSource::open_live("no-such-iface0", Counter::default()).err().unwrap();
        assert!(e.to_string().starts_with("interface no-such-iface0"), "{e}");
    }
}
