//! Which subflow carried which data sequence numbers, to recognise a
//! reinjection: the same DSN range sent again on another subflow
//! (RFC 8684 §3.3.6).
//!
//! Every segment's DSN range goes into a log sorted by first DSN; a new one
//! is compared with the entries it overlaps: bytes seen on another subflow
//! make it a reinjection (and name those frames), bytes seen only on its
//! own subflow a retransmission, the rest is new data. Entries far below
//! the peer's data ACK are pruned.

/// One segment's DSN range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sent {
    pub start: u64,
    pub end: u64,
    /// Subflow number within the connection.
    pub sf: u32,
    pub frame: u64,
}

/// Keep this much data below the data ACK: a copy sent before the ACK was
/// seen may still show up in the capture after it.
const SLACK: u64 = 32 << 20;

/// No segment is longer than this (an IPv4 packet is at most 64 KiB), so
/// entries overlapping `[a, b)` start after `a - MAX_SEG`.
const MAX_SEG: u64 = 1 << 17;

/// Segments sent in one direction of a connection, sorted by first DSN.
/// Subflows send their share of the data concurrently, so a new segment
/// usually lands at or near the end: the insertion point is searched
/// backwards from there.
#[derive(Clone, Debug, Default)]
pub(crate) struct SentLog {
    log: Vec<Sent>,
    /// Entries before this index are pruned (dropped in batches).
    base: usize,
    /// One past the highest DSN of any entry.
    max_end: Option<u64>,
}

/// Signed distance from `b` to `a` in DSN space.
fn d(a: u64, b: u64) -> i64 {
    a.wrapping_sub(b) as i64
}

/// What a segment is with respect to earlier ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Frames on other subflows that carried some of these DSNs.
    pub other_frames: Vec<u64>,
    /// Bytes of this segment already sent on another subflow.
    pub reinjected: u64,
    /// Bytes of this segment already sent on this same subflow (and on no
    /// other).
    pub retransmitted: u64,
    /// Bytes never sent before in this direction.
    pub new: u64,
}

/// Length of the union of intervals given sorted by start, clipped to
/// `[lo, hi)`.
struct Union {
    lo: u64,
    hi: u64,
    cur: Option<(u64, u64)>,
    total: u64,
}

impl Union {
    fn new(lo: u64, hi: u64) -> Union {
        Union { lo, hi, cur: None, total: 0 }
    }
    fn add(&mut self, s: u64, e: u64) {
        let s = if d(s, self.lo) > 0 { s } else { self.lo };
        let e = if d(e, self.hi) < 0 { e } else { self.hi };
        if d(e, s) <= 0 {
            return;
        }
        match &mut self.cur {
            Some((_, ce)) if d(s, *ce) <= 0 => {
                if d(e, *ce) > 0 {
                    *ce = e;
                }
            }
            _ => {
                self.flush();
                self.cur = Some((s, e));
            }
        }
    }
    fn flush(&mut self) {
        if let Some((s, e)) = self.cur.take() {
            self.total += d(e, s) as u64;
        }
    }
    fn total(mut self) -> u64 {
        self.flush();
        self.total
    }
}

impl SentLog {
    /// Records `[start, end)` sent on subflow `sf` in `frame`, and says how
    /// it relates to what was sent before.
    pub(crate) fn record(&mut self, start: u64, end: u64, sf: u32, frame: u64) -> Seen {
        let mut seen = Seen::default();
        if d(end, start) <= 0 {
            return seen;
        }
        let len = d(end, start) as u64;
        // Fast path: beyond everything logged (the leading subflow).
        if self.max_end.is_none_or(|m| d(start, m) >= 0) {
            self.log.push(Sent { start, end, sf, frame });
            self.max_end = Some(end);
            seen.new = len;
            return seen;
        }
        if d(end, self.max_end.unwrap_or(end)) > 0 {
            self.max_end = Some(end);
        }
        // Insertion point: after every entry starting at or before `start`.
        let live = &self.log[self.base..];
        let mut at = live.len();
        while at > 0 && d(live[at - 1].start, start) > 0 {
            at -= 1;
            if live.len() - at > 8 {
                at = live.partition_point(|s| d(s.start, start) <= 0);
                break;
            }
        }
        // Entries that can overlap start in (start - MAX_SEG, end).
        let lo = start.wrapping_sub(MAX_SEG);
        let from = live[..at].partition_point(|s| d(s.start, lo) <= 0);
        let mut any = Union::new(start, end);
        let mut other = Union::new(start, end);
        let mut frames: Vec<u64> = Vec::new();
        for s in &live[from..] {
            if d(s.start, end) >= 0 {
                break;
            }
            if d(s.end, start) <= 0 {
                continue;
            }
            any.add(s.start, s.end);
            if s.sf != sf {
                other.add(s.start, s.end);
                if !frames.contains(&s.frame) {
                    frames.push(s.frame);
                }
            }
        }
        let covered = any.total();
        seen.reinjected = other.total();
        seen.retransmitted = covered - seen.reinjected;
        seen.new = len - covered;
        frames.sort_unstable();
        seen.other_frames = frames;
        self.log.insert(self.base + at, Sent { start, end, sf, frame });
        seen
    }

    /// Forgets entries that end more than [`SLACK`] below `acked`.
    pub(crate) fn prune(&mut self, acked: u64) {
        let limit = acked.wrapping_sub(SLACK).wrapping_sub(MAX_SEG);
        while self.base < self.log.len() && d(self.log[self.base].start, limit) < 0 {
            self.base += 1;
        }
        if self.base > 4096 && self.base * 2 > self.log.len() {
            self.log.drain(..self.base);
            self.base = 0;
        }
    }

    /// Entries held (for tests and memory accounting).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.log.len() - self.base
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

    #[test]
    fn wraps_and_prunes() {
        let mut l = SentLog::default();
        let base = u64::MAX - 150;
        l.record(base, base.wrapping_add(100), 1, 1);
        l.record(base.wrapping_add(100), base.wrapping_add(300), 1, 2);
        let s = l.record(base.wrapping_add(120), base.wrapping_add(180), 2, 3);
        assert_eq!(s.other_frames, vec![2]);
        for i in 0..10_000u64 {
            l.record(1000 + i * 10, 1010 + i * 10, 1, 10 + i);
        }
        l.prune(1000 + 10_000 * 10 + SLACK + MAX_SEG);
        assert!(l.len() < 10_000);
    }
}
