//! Which subflow carried which data sequence numbers, to recognise a
//! reinjection: the same DSN range sent again on another subflow
//! (RFC 8684 §3.3.6).
//!
//! New data (beyond everything sent so far in this direction) is appended to
//! a log that stays sorted by DSN, which is the common case and costs a
//! comparison and a push. Data below that edge is either a retransmission
//! on the same subflow or a reinjection; it is looked up by binary search
//! and kept in a second, sorted list so a later copy on a third subflow
//! still finds every earlier one. Entries far below the peer's data ACK are
//! pruned.

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

#[derive(Clone, Debug, Default)]
pub(crate) struct SentLog {
    log: Vec<Sent>,
    base: usize,
    /// End of the highest DSN logged.
    max_end: Option<u64>,
    again: Vec<Sent>,
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
    /// Bytes of this segment already sent on this same subflow.
    pub retransmitted: u64,
    /// Bytes beyond everything sent before in this direction.
    pub new: u64,
}

impl SentLog {
    /// Records `[start, end)` sent on subflow `sf` in `frame`, and says how
    /// it relates to what was sent before.
    pub(crate) fn record(&mut self, start: u64, end: u64, sf: u32, frame: u64) -> Seen {
        let mut seen = Seen::default();
        if d(end, start) <= 0 {
            return seen;
        }
        let new_from = match self.max_end {
            None => start,
            Some(m) if d(start, m) >= 0 => start,
            Some(m) if d(end, m) <= 0 => end,
            Some(m) => m,
        };
        if d(new_from, start) > 0 {
            // Some (or all) of it was sent before.
            let old_end = new_from;
            let mut other = 0u64;
            let mut same = 0u64;
            let mut frames: Vec<u64> = Vec::new();
            let mut visit = |s: &Sent| {
                let lo = if d(s.start, start) > 0 { s.start } else { start };
                let hi = if d(s.end, old_end) < 0 { s.end } else { old_end };
                if d(hi, lo) <= 0 {
                    return;
                }
                if s.sf != sf {
                    other += d(hi, lo) as u64;
                    if !frames.contains(&s.frame) {
                        frames.push(s.frame);
                    }
                } else {
                    same += d(hi, lo) as u64;
                }
            };
            let live = &self.log[self.base..];
            let i = live.partition_point(|s| d(s.end, start) <= 0);
            for s in &live[i..] {
                if d(s.start, old_end) >= 0 {
                    break;
                }
                visit(s);
            }
            // `again` is sorted by start; its entries are at most 64 KiB
            // long, but be exact: scan from the first that can overlap.
            let j = self.again.partition_point(|s| d(s.start, start.wrapping_sub(1 << 20)) < 0);
            for s in &self.again[j..] {
                if d(s.start, old_end) >= 0 {
                    break;
                }
                visit(s);
            }
            let span = d(old_end, start) as u64;
            // Bytes logged twice (by a copy and its original) are counted
            // once per kind; clamp to the span.
            seen.reinjected = other.min(span);
            seen.retransmitted = same.min(span - seen.reinjected);
            frames.sort_unstable();
            seen.other_frames = frames;
            let entry = Sent { start, end: old_end, sf, frame };
            let k = self.again.partition_point(|s| d(s.start, start) <= 0);
            self.again.insert(k, entry);
        }
        if d(end, new_from) > 0 {
            self.log.push(Sent { start: new_from, end, sf, frame });
            self.max_end = Some(end);
            seen.new = d(end, new_from) as u64;
        }
        seen
    }

    /// Forgets entries that end more than [`SLACK`] below `acked`.
    pub(crate) fn prune(&mut self, acked: u64) {
        let limit = acked.wrapping_sub(SLACK);
        while self.base < self.log.len() && d(self.log[self.base].end, limit) < 0 {
            self.base += 1;
        }
        if self.base > 4096 && self.base * 2 > self.log.len() {
            self.log.drain(..self.base);
            self.base = 0;
        }
        // `again` is sorted by start and its entries are single segments
        // (under 64 KiB): those starting 1 MiB below the limit end below it.
        let m = self.again.partition_point(|s| d(s.start, limit.wrapping_sub(1 << 20)) < 0);
        self.again.drain(..m);
    }

    /// Entries held (for tests and memory accounting).
    pub(crate) fn len(&self) -> usize {
        self.log.len() - self.base + self.again.len()
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
        l.prune(1000 + 10_000 * 10 + SLACK);
        assert!(l.len() < 10_000);
    }
}
