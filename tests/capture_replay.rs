//! The replay's pace in virtual time: `CaptureSource::poll(now)` is given
//! the time, and what it feeds follows the gap between each frame and the
//! one before it, a gap longer than 1 s shortened to 1 s (and said so), a
//! frame without a time following the one before it at once.
mod capture_files;

use std::path::{Path, PathBuf};
use std::time::Duration;

use capture_files::cases;
use mptcp_tools::diag::Source;
use mptcp_tools::diag::packets::{CaptureSource, MAX_GAP, Pace, PacketModel};
use mptcp_tools::dissect::packet::{FrameMeta, Packet};
use mptcp_tools::snapshot::Snapshot;

/// Records the frames fed.
#[derive(Default)]
struct Fed(Vec<FrameMeta>);

impl PacketModel for Fed {
    fn feed(&mut self, meta: &FrameMeta, _pkt: &Packet<'_>) {
        self.0.push(*meta);
    }
    fn snapshot(&self, _source: &str) -> Snapshot {
        Snapshot::default()
    }
}

fn case_file(dir: &Path, name: &str) -> PathBuf {
    let c = cases().into_iter().find(|c| c.name == name).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, c.bytes).unwrap();
    p
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Poll at `at` (since the replay started at 10 s) and count what was fed.
fn fed_at(s: &mut CaptureSource<Fed>, at: Duration) -> usize {
    s.poll(Duration::from_secs(10) + at, false);
    s.model().0.len()
}

#[test]
fn a_jump_of_the_clock_is_one_second() {
    let dir = tempfile::tempdir().unwrap();
    let p = case_file(dir.path(), "first-at-zero.pcap");
    let mut s = CaptureSource::open_file(&p, Fed::default(), Pace::Replay { speed: 1.0 }).unwrap();
    assert_eq!(fed_at(&mut s, ms(0)), 1, "the first frame at once");
    assert_eq!(fed_at(&mut s, ms(999)), 1, "the 1.7e9 s gap is waited for, one second of it");
    assert_eq!(fed_at(&mut s, ms(1000)), 2);
    // Then 10 ms a frame, as in the capture.
    assert_eq!(fed_at(&mut s, ms(1035)), 5);
    assert!(!s.finished());
    assert_eq!(fed_at(&mut s, ms(1120)), 14);
    assert!(s.finished());
    let u = s.poll(Duration::from_secs(12), true);
    assert_eq!(u.clock, Some(ms(1120)), "the replay's clock, not 1.7e9 s");
    let note = u.notes.iter().find(|n| n.text.contains("shortened")).expect("a note on the gap");
    assert_eq!(note.text, "gap of 1700000000 s in the capture shortened to 1 s (before frame 2)");
    assert_eq!(MAX_GAP, Duration::from_secs(1));
}

#[test]
fn replay_speed_scales_the_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let p = case_file(dir.path(), "binary-resol.pcapng");
    let mut s = CaptureSource::open_file(&p, Fed::default(), Pace::Replay { speed: 2.0 }).unwrap();
    // 0.25 s a frame (2^-10 s units), replayed twice as fast.
    assert_eq!(fed_at(&mut s, ms(0)), 1);
    assert_eq!(fed_at(&mut s, ms(124)), 1);
    assert_eq!(fed_at(&mut s, ms(125)), 2);
    assert_eq!(fed_at(&mut s, ms(625)), 6);
    assert_eq!(fed_at(&mut s, ms(1625)), 14);
    assert!(s.finished());
    assert!(s.poll(Duration::from_secs(20), true).notes.iter().all(|n| !n.text.contains("shortened")));
}

#[test]
fn frames_without_a_time_follow_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = case_file(dir.path(), "spb-first.pcapng");
    let mut s = CaptureSource::open_file(&p, Fed::default(), Pace::Replay { speed: 1.0 }).unwrap();
    // Two SPBs, then the first frame with a time: none is a gap from 0.
    assert_eq!(fed_at(&mut s, ms(0)), 3);
    let fed = &s.model().0;
    assert_eq!((fed[0].ts, fed[1].ts), (None, None));
    // Then 10 ms a frame.
    assert_eq!(fed_at(&mut s, ms(89)), 11);
    // Frame 13, an SPB, takes frame 12's time, so comes with it; frame 14
    // is 20 ms later.
    assert_eq!(fed_at(&mut s, ms(90)), 13);
    assert_eq!(s.model().0[12].ts, s.model().0[11].ts);
    assert_eq!(fed_at(&mut s, ms(109)), 13);
    assert_eq!(fed_at(&mut s, ms(110)), 14);
    let u = s.poll(Duration::from_secs(11), true);
    assert!(u.notes.iter().all(|n| !n.text.contains("shortened")), "{:?}", u.notes);
}

#[test]
fn the_whole_timestamp_range_replays_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["offset-span.pcapng", "huge-timestamps.pcapng", "offset-near-max.pcapng", "offset-near-min.pcapng"] {
        let p = case_file(dir.path(), name);
        let mut s = CaptureSource::open_file(&p, Fed::default(), Pace::Replay { speed: 1.0 }).unwrap();
        let mut t = ms(0);
        while !s.finished() {
            s.poll(Duration::from_secs(10) + t, false);
            t += ms(100);
            assert!(t <= Duration::from_secs(14), "{name}: 13 gaps of at most 1 s");
        }
        assert_eq!(s.model().0.len(), 14, "{name}");
        let u = s.poll(Duration::from_secs(30), true);
        assert!(u.clock.is_some_and(|c| c <= Duration::from_secs(13)), "{name}: {:?}", u.clock);
    }
}

#[test]
fn all_at_once_takes_no_time_and_a_cut_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let p = case_file(dir.path(), "cut-mid-record.pcap");
    let mut s = CaptureSource::open_file(&p, Fed::default(), Pace::AllAtOnce).unwrap();
    let u = s.poll(Duration::ZERO, true);
    assert_eq!(s.model().0.len(), 7);
    assert!(s.finished());
    let e = s.error().expect("the read error");
    assert!(e.to_string().contains("truncated capture after frame 7"), "{e}");
    assert_eq!(s.failure(), Some(e.to_string()));
    assert!(u.notes[0].text.contains("7 frames, capture cut short"), "{:?}", u.notes);
}
