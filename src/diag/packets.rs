//! Packets as a source: `-r FILE` replays a capture and `-i IFACE` watches
//! live traffic, both read through the one capture reader
//! ([`crate::capture::CaptureReader`]); each frame is decoded by
//! [`crate::dissect::packet::decode`] and handed to a [`PacketModel`], the
//! thing that turns packets into connections (the dissector's analysis),
//! whose [`PacketModel::snapshot`] is the view, and whose events
//! ([`PacketModel::events`]) are the event log. This is the only way to see
//! a peer you do not run.
//!
//! A replay keeps the capture's pace by the gap between each frame and the
//! one before it, with a gap longer than [`MAX_GAP`] shortened to it (and a
//! note saying so): a capture whose clock jumps (a first frame at time 0, a
//! clock set while capturing) is still replayed in seconds, not years.

use std::path::Path;
use std::time::Duration;

use super::{LogEvent, Note, Source, SourceUpdate};
use crate::capture::{CaptureError, CaptureReader, OpenOptions, Polled};
use crate::control::ControlEvent;
use crate::dissect::analysis::{Analyzer, ConnEvent, ConnEventKind};
use crate::dissect::packet::{FrameMeta, Packet, Timestamp, decode};
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
/// embedded stacks' events use; `at` is where its frame is on the replay's
/// clock (since the first frame).
pub fn control_event(e: &ConnEvent, at: Duration) -> ControlEvent {
    let mut c = ControlEvent {
        time_ms: u64::try_from(at.as_millis()).unwrap_or(u64::MAX),
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

/// The longest gap between two frames a file's replay waits for; a longer
/// one is shortened to it (and a note says so).
pub const MAX_GAP: Duration = Duration::from_secs(1);

/// A frame read but not yet due (replay pacing), with where it goes on the
/// replay's clock.
struct Pending {
    meta: FrameMeta,
    data: Vec<u8>,
    at: Duration,
    /// The gap before it, when it was shortened.
    long_gap: Option<Duration>,
}

/// The gaps shortened so far.
#[derive(Default)]
struct Gaps {
    count: u64,
    longest: Duration,
    /// The frame after the longest.
    frame: u64,
}

/// Everything of a [`CaptureSource`] but its reader.
struct Feed<M> {
    label: String,
    model: M,
    /// Shorten long gaps (a file; a live capture's clock is the traffic's).
    cap_gaps: bool,
    frames: u64,
    undecodable: u64,
    /// The replay's clock at the last frame fed: the capture time since the
    /// first frame, every gap at most [`MAX_GAP`] for a file.
    clock: Option<Duration>,
    /// The last time a frame fed had.
    prev_ts: Option<Timestamp>,
    gaps: Gaps,
    events: Vec<LogEvent>,
}

impl<M: PacketModel> Feed<M> {
    /// Where `meta` goes on the replay's clock, and the gap before it if
    /// that was shortened. A frame without a time, or one earlier than the
    /// frame before it, follows that frame at once.
    fn place(&self, meta: &FrameMeta) -> (Duration, Option<Duration>) {
        let Some(clock) = self.clock else { return (Duration::ZERO, None) };
        let gap = match (self.prev_ts, meta.ts) {
            (Some(prev), Some(ts)) => ts.saturating_duration_since(prev),
            _ => Duration::ZERO,
        };
        if self.cap_gaps && gap > MAX_GAP {
            (clock.saturating_add(MAX_GAP), Some(gap))
        } else {
            (clock.saturating_add(gap), None)
        }
    }

    fn feed(&mut self, meta: &FrameMeta, data: &[u8], at: Duration, long_gap: Option<Duration>) {
        let pkt = decode(meta.linktype, data);
        if pkt.error.is_some() && pkt.tcp.is_none() {
            self.undecodable += 1;
        }
        self.model.feed(meta, &pkt);
        self.frames += 1;
        self.clock = Some(at);
        if meta.ts.is_some() {
            self.prev_ts = meta.ts;
        }
        if let Some(g) = long_gap {
            self.gaps.count += 1;
            if g > self.gaps.longest {
                self.gaps.longest = g;
                self.gaps.frame = meta.number;
            }
        }
        for e in self.model.events() {
            let event = control_event(&e, at);
            self.events.push(LogEvent { at, source: self.label.clone(), event });
        }
    }

    /// The note on shortened gaps, if any was.
    fn gap_note(&self) -> Option<Note> {
        let g = &self.gaps;
        let text = match g.count {
            0 => return None,
            1 => format!(
                "gap of {} in the capture shortened to {} (before frame {})",
                secs(g.longest),
                secs(MAX_GAP),
                g.frame
            ),
            n => format!(
                "{n} gaps in the capture longer than {} shortened to it (the longest {}, before frame {})",
                secs(MAX_GAP),
                secs(g.longest),
                g.frame
            ),
        };
        Some(Note::warn(&self.label, text))
    }
}

/// A duration in seconds for a note: "1 s", "2.5 s", "1700000000 s".
fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if d.subsec_millis() == 0 || s >= 100.0 { format!("{} s", d.as_secs()) } else { format!("{s:.1} s") }
}

/// A capture file or a live interface feeding a [`PacketModel`].
pub struct CaptureSource<M> {
    reader: CaptureReader,
    feed: Feed<M>,
    pace: Pace,
    pending: Option<Pending>,
    /// The poll time of the replay's start.
    started: Option<Duration>,
    done: bool,
    /// The error that ended the file early.
    problem: Option<CaptureError>,
}

impl<M: PacketModel> CaptureSource<M> {
    /// Open a pcap or pcapng file.
    pub fn open_file(path: &Path, model: M, pace: Pace) -> Result<Self, CaptureError> {
        let reader = CaptureReader::open_file(path, &OpenOptions::default())?;
        Ok(Self::new(format!("capture:{}", path.display()), reader, model, pace))
    }

    /// Start capturing TCP on a live interface (non-blocking; drained on
    /// every poll).
    pub fn open_live(iface: &str, model: M) -> Result<Self, CaptureError> {
        let opts = OpenOptions { filter: Some("tcp".into()), ..Default::default() };
        let reader = CaptureReader::open_live(iface, &opts)?;
        Ok(Self::new(format!("live:{iface}"), reader, model, Pace::AllAtOnce))
    }

    /// Feed `model` from a reader opened elsewhere (a capture in memory).
    pub fn from_reader(label: String, reader: CaptureReader, model: M, pace: Pace) -> Self {
        Self::new(label, reader, model, pace)
    }

    fn new(label: String, reader: CaptureReader, model: M, pace: Pace) -> Self {
        let cap_gaps = !reader.is_live();
        CaptureSource {
            reader,
            feed: Feed {
                label,
                model,
                cap_gaps,
                frames: 0,
                undecodable: 0,
                clock: None,
                prev_ts: None,
                gaps: Gaps::default(),
                events: Vec::new(),
            },
            pace,
            pending: None,
            started: None,
            done: false,
            problem: None,
        }
    }

    pub fn model(&self) -> &M {
        &self.feed.model
    }

    pub fn frames(&self) -> u64 {
        self.feed.frames
    }

    /// The error that ended the capture file before its end, if one did.
    pub fn error(&self) -> Option<&CaptureError> {
        self.problem.as_ref()
    }

    /// Feed what is due at `now`.
    fn advance(&mut self, now: Duration) {
        let live = self.reader.is_live();
        let limit = match self.pace {
            Pace::Replay { speed } if !live => {
                let started = *self.started.get_or_insert(now);
                let played = now.saturating_sub(started).as_secs_f64() * speed;
                Some(Duration::try_from_secs_f64(played).unwrap_or(Duration::MAX))
            }
            _ => None,
        };
        if let Some(p) = self.pending.take() {
            if limit.is_some_and(|l| p.at > l) {
                self.pending = Some(p);
                return;
            }
            self.feed.feed(&p.meta, &p.data, p.at, p.long_gap);
        }
        // A live capture is drained in bounded bites so the view stays responsive.
        let mut budget: u32 = if live { 20_000 } else { u32::MAX };
        while budget > 0 && !self.done {
            budget -= 1;
            match self.reader.try_next_frame() {
                Ok(Polled::Frame(meta, data)) => {
                    let (at, long_gap) = self.feed.place(&meta);
                    if limit.is_some_and(|l| at > l) {
                        self.pending = Some(Pending { meta, data: data.to_vec(), at, long_gap });
                        break;
                    }
                    self.feed.feed(&meta, data, at, long_gap);
                }
                Ok(Polled::Quiet) => break,
                Ok(Polled::End) => self.done = true,
                Err(e) => {
                    // What was read stands; the rest of the file is lost.
                    self.problem = Some(e);
                    self.done = true;
                }
            }
        }
    }
}

impl<M: PacketModel> Source for CaptureSource<M> {
    fn label(&self) -> String {
        self.feed.label.clone()
    }

    fn poll(&mut self, now: Duration, snapshot: bool) -> SourceUpdate {
        self.advance(now);
        let mut u = SourceUpdate { events: std::mem::take(&mut self.feed.events), ..Default::default() };
        if snapshot {
            let f = &self.feed;
            u.snapshot = Some(f.model.snapshot(&f.label));
            // The replay's clock: rates follow the traffic's pace whatever
            // the replay speed, and stop when the capture ends.
            u.clock = f.clock;
            let mut text = format!("{} frames", f.frames);
            if f.undecodable > 0 {
                text.push_str(&format!(", {} not decodable", f.undecodable));
            }
            if self.done {
                text.push_str(if self.problem.is_some() { ", capture cut short" } else { ", end of capture" });
            }
            u.notes.push(Note::info(&f.label, text));
            if let Some(p) = &self.problem {
                u.notes.push(Note::warn(&f.label, p.to_string()));
            }
            if matches!(self.pace, Pace::Replay { .. }) {
                u.notes.extend(f.gap_note());
            }
        }
        u
    }

    fn finished(&self) -> bool {
        self.done && self.pending.is_none()
    }

    fn failure(&self) -> Option<String> {
        self.problem.as_ref().map(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A model that only counts, to test the reading and pacing.
    #[derive(Default)]
    struct Counter {
        frames: u64,
        tcp: u64,
        first_ts: Option<f64>,
        last_ts: f64,
    }

    impl PacketModel for Counter {
        fn feed(&mut self, meta: &FrameMeta, pkt: &Packet<'_>) {
            assert_eq!(meta.number, self.frames + 1, "frames numbered from 1 in order");
            self.frames += 1;
            self.tcp += u64::from(pkt.tcp.is_some());
            self.first_ts.get_or_insert(meta.ts());
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
        let first = s.model().first_ts.unwrap();
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
        assert_eq!(e.to_string(), "/nonexistent/x.pcap: no such file");
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pcap");
        std::fs::write(&junk, b"this is not a capture").unwrap();
        let e = CaptureSource::open_file(&junk, Counter::default(), Pace::AllAtOnce).err().unwrap();
        assert!(e.to_string().contains("junk.pcap: not a capture file"), "{e}");
        let e = CaptureSource::open_live("no-such-iface0", Counter::default()).err().unwrap();
        assert!(e.to_string().starts_with("no-such-iface0: cannot capture"), "{e}");
    }
}
