//! Which subflow carried which data sequence numbers, to recognise a
//! reinjection: the same DSN range sent again on another subflow
//! (RFC 8684 §3.3.6).
//!
//! Two structures, both sorted by DSN with a pruned prefix, both appended
//! to at their end by new data (the common case costs a comparison or two):
//!
//! - `pieces`: the DSN space sent so far as disjoint pieces, each labelled
//!   with the one subflow that sent it or with "several". A segment's bytes
//!   are new (in no piece), retransmitted (in pieces of its own subflow) or
//!   reinjected (in the others'), exactly as a per-byte map would say; the
//!   work is the pieces the segment overlaps, which copies of the same range
//!   do not multiply (sending `[a, b)` again relabels, never splits).
//! - per subflow, the distinct ranges it sent, each with the first frame
//!   that carried it and how many frames did; a range sent again only
//!   counts (and keeps up to [`FRAMES_NAMED`] frames). The frames a
//!   reinjection names come from here: at most [`FRAMES_NAMED`], and the
//!   count of the others.
//!
//! So a segment costs O(log n) plus the pieces and the distinct ranges it
//! overlaps, whatever the number of earlier copies. Entries far below the
//! peer's data ACK are pruned.

use crate::dissect::hash::WordMap;
use crate::seq::DataSeq;

/// At most this many frames are named by one event; the others are counted.
pub const FRAMES_NAMED: usize = 8;

/// Keep this much data below the data ACK: a copy sent before the ACK was
/// seen may still show up in the capture after it.
const SLACK: u64 = 32 << 20;

/// No segment is longer than this (an IPv4 packet is at most 64 KiB).
const MAX_SEG: u64 = 1 << 17;

/// Label of a piece sent on two subflows or more.
const SEVERAL: u32 = u32::MAX;

/// A run of DSN space and who sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    start: DataSeq,
    end: DataSeq,
    /// The subflow that sent it, or [`SEVERAL`].
    by: u32,
}

/// A DSN range one subflow sent, and in how many frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    start: DataSeq,
    end: DataSeq,
    /// The first frame that carried it.
    frame: u64,
    /// Frames that carried exactly this range.
    count: u64,
}

/// First index in `v[base..]` (as an absolute index) whose key is not
/// before `key`, galloping back from the end: the entries a new segment
/// concerns are near the end.
fn gallop<T>(v: &[T], base: usize, before: impl Fn(&T) -> bool) -> usize {
    let n = v.len();
    let mut hi = n;
    let mut step = 1;
    while hi > base && !before(&v[hi - 1]) {
        let lo = hi.saturating_sub(step).max(base);
        if !before(&v[lo]) {
            hi = lo;
            step *= 2;
            continue;
        }
        return lo + 1 + v[lo + 1..hi].partition_point(&before);
    }
    hi
}

/// The ranges of one subflow, sorted by start.
#[derive(Clone, Debug, Default)]
struct Ranges {
    v: Vec<Range>,
    base: usize,
    /// The longest range held: ranges overlapping `[a, b)` start after
    /// `a - longest`.
    longest: u64,
}

impl Ranges {
    /// Records `[start, end)` in `frame`; returns the index of the range
    /// when it was already there (sent again).
    fn add(&mut self, start: DataSeq, end: DataSeq, frame: u64) -> Option<usize> {
        let len = end - start;
        if let Some(last) = self.v[self.base..].last_mut() {
            if last.frame == frame && last.end == start && last.count == 1 {
                // The next piece of the same segment (it spanned two
                // mappings): one range per frame.
                last.end = end;
                self.longest = self.longest.max(end - last.start);
                return None;
            }
            if last.start < start {
                self.v.push(Range { start, end, frame, count: 1 });
                self.longest = self.longest.max(len);
                return None;
            }
        }
        let at = gallop(&self.v, self.base, |r| r.start < start);
        let mut i = at;
        while i < self.v.len() && self.v[i].start == start {
            if self.v[i].end == end {
                self.v[i].count += 1;
                return Some(i);
            }
            i += 1;
        }
        self.v.insert(i, Range { start, end, frame, count: 1 });
        self.longest = self.longest.max(len);
        None
    }

    /// The ranges that can overlap `[start, end)`: those starting in
    /// `[start - longest, end)`.
    fn window(&self, start: DataSeq, end: DataSeq) -> impl Iterator<Item = &Range> {
        let from = start - self.longest;
        let at = gallop(&self.v, self.base, |r| r.start < from);
        self.v[at..].iter().take_while(move |r| r.start < end)
    }

    fn prune(&mut self, limit: DataSeq) {
        while self.base < self.v.len() && self.v[self.base].start < limit {
            self.base += 1;
        }
        if self.base > 4096 && self.base * 2 > self.v.len() {
            self.v.drain(..self.base);
            self.base = 0;
        }
    }
}

/// The DSNs sent in one direction of a connection.
#[derive(Clone, Debug, Default)]
pub(crate) struct SentLog {
    pieces: Vec<Piece>,
    /// Pruned prefix of `pieces`.
    pbase: usize,
    subflows: Vec<(u32, Ranges)>,
    /// Later frames of a range sent more than once: (subflow, start, end)
    /// -> up to [`FRAMES_NAMED`] - 1 frames after the range's first.
    again: WordMap<(u32, DataSeq, DataSeq), Vec<u64>>,
    /// Pieces rebuilt where a segment overlaps (kept to reuse the memory).
    scratch: Vec<Piece>,
    /// Entries looked at by the last [`SentLog::record`] (for the test that
    /// the work per segment stays bounded).
    #[cfg(test)]
    touched: usize,
}

/// What a segment is with respect to earlier ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Some of the frames on other subflows that carried some of these
    /// DSNs: at most [`FRAMES_NAMED`], the earliest of those found, sorted.
    pub other_frames: Vec<u64>,
    /// How many frames on other subflows carried some of these DSNs
    /// (`other_frames` and the rest).
    pub other_count: u64,
    /// Bytes of this segment already sent on another subflow.
    pub reinjected: u64,
    /// Bytes of this segment already sent on this same subflow (and on no
    /// other).
    pub retransmitted: u64,
    /// Bytes never sent before in this direction.
    pub new: u64,
}

impl SentLog {
    /// Records `[start, end)` sent on subflow `sf` in `frame`, and says how
    /// it relates to what was sent before.
    pub(crate) fn record(&mut self, start: u64, end: u64, sf: u32, frame: u64) -> Seen {
        let (start, end) = (DataSeq(start), DataSeq(end));
        let mut seen = Seen::default();
        #[cfg(test)]
        {
            self.touched = 0;
        }
        if end <= start {
            return seen;
        }
        let old = self.label(start, end, sf, &mut seen);
        if old > 0 {
            self.name_frames(start, end, sf, &mut seen);
        }
        let si = match self.subflows.iter().position(|(s, _)| *s == sf) {
            Some(i) => i,
            None => {
                self.subflows.push((sf, Ranges::default()));
                self.subflows.len() - 1
            }
        };
        if let Some(i) = self.subflows[si].1.add(start, end, frame) {
            let r = self.subflows[si].1.v[i];
            let later = self.again.entry((sf, r.start, r.end)).or_default();
            if later.len() + 1 < FRAMES_NAMED {
                later.push(frame);
            }
        }
        seen
    }

    /// Labels `[start, end)` as sent by `sf`; fills the byte counts of
    /// `seen` and returns the bytes sent before.
    fn label(&mut self, start: DataSeq, end: DataSeq, sf: u32, seen: &mut Seen) -> u64 {
        let len = end - start;
        let p = &mut self.pieces;
        // First piece ending after `start`.
        let i = gallop(p, self.pbase, |x| x.end <= start);
        if i == p.len() || p[i].start >= end {
            // Disjoint from everything sent: new data, the common case.
            seen.new = len;
            let joins_prev = i > self.pbase && p[i - 1].end == start && p[i - 1].by == sf;
            let joins_next = i < p.len() && p[i].start == end && p[i].by == sf;
            match (joins_prev, joins_next) {
                (true, true) => {
                    p[i - 1].end = p[i].end;
                    p.remove(i);
                }
                (true, false) => p[i - 1].end = end,
                (false, true) => p[i].start = start,
                (false, false) => p.insert(i, Piece { start, end, by: sf }),
            }
            return 0;
        }
        // Overlapping: walk the pieces, count, and rebuild the span with the
        // new labels.
        let out = &mut self.scratch;
        out.clear();
        let mut push = |x: Piece| {
            if x.end <= x.start {
                return;
            }
            match out.last_mut() {
                Some(l) if l.by == x.by && l.end == x.start => l.end = x.end,
                _ => out.push(x),
            }
        };
        let mut j = i;
        let mut pos = start;
        while j < p.len() && p[j].start < end {
            let x = p[j];
            #[cfg(test)]
            {
                self.touched += 1;
            }
            // What lies before this piece in the segment was never sent.
            if x.start > pos {
                seen.new += x.start - pos;
                push(Piece { start: pos, end: x.start, by: sf });
            }
            // The piece's part before the segment keeps its label.
            if x.start < start {
                push(Piece { start: x.start, end: start, by: x.by });
            }
            let lo = x.start.max(start);
            let hi = x.end.min(end);
            let n = hi - lo;
            if x.by == sf {
                seen.retransmitted += n;
            } else {
                seen.reinjected += n;
            }
            push(Piece { start: lo, end: hi, by: if x.by == sf { sf } else { SEVERAL } });
            if x.end > end {
                push(Piece { start: end, end: x.end, by: x.by });
            }
            pos = hi;
            j += 1;
        }
        if end > pos {
            seen.new += end - pos;
            push(Piece { start: pos, end, by: sf });
        }
        // Merge with the neighbours when the labels continue.
        let mut from = i;
        if from > self.pbase
            && let Some(f) = out.first_mut()
            && p[from - 1].end == f.start
            && p[from - 1].by == f.by
        {
            f.start = p[from - 1].start;
            from -= 1;
        }
        if j < p.len()
            && let Some(l) = out.last_mut()
            && p[j].start == l.end
            && p[j].by == l.by
        {
            l.end = p[j].end;
            j += 1;
        }
        p.splice(from..j, out.drain(..));
        len - seen.new
    }

    /// Names the frames on other subflows that carried some of
    /// `[start, end)`, and counts them.
    fn name_frames(&mut self, start: DataSeq, end: DataSeq, sf: u32, seen: &mut Seen) {
        let mut frames: Vec<u64> = Vec::new();
        let mut count = 0u64;
        #[cfg(test)]
        let mut touched = 0;
        for (s, ranges) in &self.subflows {
            if *s == sf {
                continue;
            }
            for r in ranges.window(start, end) {
                #[cfg(test)]
                {
                    touched += 1;
                }
                if r.end <= start {
                    continue;
                }
                count += r.count;
                frames.push(r.frame);
                if r.count > 1
                    && let Some(later) = self.again.get(&(*s, r.start, r.end))
                {
                    frames.extend_from_slice(later);
                }
                if frames.len() > 4 * FRAMES_NAMED {
                    // Keep the earliest: the list stays short.
                    frames.sort_unstable();
                    frames.dedup();
                    frames.truncate(FRAMES_NAMED);
                }
            }
        }
        #[cfg(test)]
        {
            self.touched += touched;
        }
        frames.sort_unstable();
        frames.dedup();
        frames.truncate(FRAMES_NAMED);
        seen.other_frames = frames;
        seen.other_count = count.max(seen.other_frames.len() as u64);
    }

    /// Forgets entries that end more than [`SLACK`] below `acked`.
    pub(crate) fn prune(&mut self, acked: u64) {
        let limit = DataSeq(acked) - SLACK - MAX_SEG;
        let mut compacted = false;
        for (_, l) in &mut self.subflows {
            let before = l.v.len();
            l.prune(limit);
            compacted |= l.v.len() != before;
        }
        if compacted && !self.again.is_empty() {
            self.again.retain(|(_, s, _), _| *s >= limit);
        }
        while self.pbase + 1 < self.pieces.len() && self.pieces[self.pbase].end < limit {
            self.pbase += 1;
        }
        if self.pbase > 1024 && self.pbase * 2 > self.pieces.len() {
            self.pieces.drain(..self.pbase);
            self.pbase = 0;
        }
    }

    /// Entries held (for tests and memory accounting).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.subflows.iter().map(|(_, l)| l.v.len() - l.base).sum::<usize>() + self.pieces.len() - self.pbase
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_data_retransmission_and_reinjection() {
        let mut l = SentLog::default();
        assert_eq!(l.record(100, 200, 1, 1).new, 100);
        assert_eq!(l.record(200, 300, 2, 2).new, 100);
        assert_eq!(l.record(300, 400, 1, 3).new, 100);
        // Same subflow again: a retransmission.
        let s = l.record(100, 200, 1, 4);
        assert_eq!((s.retransmitted, s.reinjected), (100, 0));
        assert!(s.other_frames.is_empty());
        // The second subflow's data sent on the first: a reinjection.
        let s = l.record(150, 250, 1, 5);
        assert_eq!(s.other_frames, vec![2]);
        assert_eq!(s.reinjected, 50);
        // A third subflow finds both the original and the earlier copy.
        let s = l.record(200, 260, 3, 6);
        assert_eq!(s.other_frames, vec![2, 5]);
        assert_eq!(s.reinjected, 60);
        // Partly new data: only the old part is compared.
        let s = l.record(350, 450, 2, 7);
        assert_eq!(s.other_frames, vec![3]);
        assert_eq!((s.reinjected, s.new), (50, 50));
        assert_eq!(l.record(450, 500, 2, 8).new, 50);
    }

    #[test]
    fn galloping_bound_matches_binary_search() {
        let mut x = 7u64;
        let mut v: Vec<u64> = (0..300u64)
            .map(|i| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                i * 10 + (x >> 62)
            })
            .collect();
        v.sort_unstable();
        for base in [0, 1, 17, 299, 300] {
            for key in 0..3100u64 {
                let want = base + v[base..].partition_point(|s| *s < key);
                assert_eq!(gallop(&v, base, |s| *s < key), want, "key {key} base {base}");
            }
        }
        assert_eq!(gallop(&[] as &[u64], 0, |s| *s < 5), 0);
    }

    /// Random segments on three subflows against a plain byte map and a
    /// list of every segment: new, reinjected and retransmitted bytes and
    /// the frames named must match, whatever the order.
    #[test]
    fn against_a_byte_map_and_a_segment_list() {
        for seed in [12345u64, 7, 99] {
            let mut l = SentLog::default();
            let mut seen = vec![0u8; 4000];
            let mut all: Vec<(u64, u64, u32, u64)> = Vec::new();
            let mut x = seed;
            for frame in 0..3000u64 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let start = (x >> 33) % 3900;
                let len = 1 + (x >> 20) % 100;
                let sf = 1 + (x >> 10) as u32 % 3;
                let end = (start + len).min(4000);
                let want_new = (start..end).filter(|&i| seen[i as usize] == 0).count() as u64;
                let want_other = (start..end).filter(|&i| seen[i as usize] & !(1 << sf) != 0).count() as u64;
                for i in start..end {
                    seen[i as usize] |= 1 << sf;
                }
                let mut want_frames: Vec<u64> =
                    all.iter().filter(|s| s.2 != sf && s.0 < end && s.1 > start).map(|s| s.3).collect();
                let want_count = want_frames.len() as u64;
                want_frames.truncate(FRAMES_NAMED);
                all.push((start, end, sf, frame));
                let s = l.record(start, end, sf, frame);
                assert_eq!(s.new, want_new, "frame {frame}");
                assert_eq!(s.reinjected, want_other, "frame {frame}");
                assert_eq!(s.new + s.reinjected + s.retransmitted, end - start);
                assert_eq!(s.other_frames, want_frames, "frame {frame}");
                assert_eq!(s.other_count, want_count, "frame {frame}");
            }
        }
    }

    #[test]
    fn subflows_sending_concurrently_is_new_data() {
        let mut l = SentLog::default();
        assert_eq!(l.record(0, 100, 1, 1).new, 100);
        assert_eq!(l.record(200, 300, 2, 2).new, 100);
        let s = l.record(100, 200, 1, 3);
        assert_eq!((s.new, s.reinjected, s.retransmitted), (100, 0, 0));
        let s = l.record(50, 250, 3, 4);
        assert_eq!((s.new, s.reinjected), (0, 200));
        assert_eq!(s.other_frames, vec![1, 2, 3]);
    }

    /// The same range sent again and again, on one subflow or alternating
    /// between two: each copy touches a bounded number of entries, the log
    /// does not grow, and the counts stay exact.
    #[test]
    fn repeats_cost_a_bounded_number_of_entries() {
        for subflows in [1u32, 2, 3] {
            let mut l = SentLog::default();
            // Some history before, so that the log is not trivially small.
            for i in 0..1000u64 {
                l.record(i * 1000, i * 1000 + 1000, 1 + (i % subflows as u64) as u32, i);
            }
            let held = l.len();
            let mut max_touched = 0;
            let n = 20_000u64;
            for k in 0..n {
                let sf = 1 + (k % subflows as u64) as u32;
                let s = l.record(500_000, 501_000, sf, 1000 + k);
                max_touched = max_touched.max(l.touched);
                assert_eq!(s.new, 0);
                assert_eq!(s.new + s.reinjected + s.retransmitted, 1000);
                assert!(s.other_frames.len() <= FRAMES_NAMED);
                if subflows > 1 && k >= subflows as u64 {
                    // Every earlier copy on another subflow, plus the
                    // original frame 500 when it was on another subflow.
                    let others = (0..k).filter(|j| 1 + (j % subflows as u64) as u32 != sf).count() as u64;
                    let orig = u64::from(1 + (500 % subflows) != sf);
                    assert_eq!(s.other_count, others + orig, "copy {k}");
                    assert_eq!(s.reinjected, 1000);
                }
            }
            // A piece and a range or two per subflow, not one per copy.
            assert!(max_touched <= 2 + 2 * subflows as usize, "{subflows} subflows: touched {max_touched}");
            assert!(l.len() <= held + 2 + subflows as usize, "{} entries after {n} copies", l.len());
        }
    }

    #[test]
    fn wraps_and_prunes() {
        let mut l = SentLog::default();
        let base = u64::MAX - 150;
        l.record(base, base.wrapping_add(100), 1, 1);
        l.record(base.wrapping_add(100), base.wrapping_add(300), 1, 2);
        let s = l.record(base.wrapping_add(120), base.wrapping_add(180), 2, 3);
        assert_eq!(s.other_frames, vec![2]);
        assert_eq!((s.reinjected, s.new), (60, 0));
        for i in 0..10_000u64 {
            l.record(1000 + i * 10, 1010 + i * 10, 1 + (i % 2) as u32, 10 + i);
        }
        let before = l.len();
        l.prune(1000 + 10_000 * 10 + SLACK + MAX_SEG);
        assert!(l.len() < before / 2, "{} of {before}", l.len());
    }
}
