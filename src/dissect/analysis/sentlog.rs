//! Which subflow carried which data sequence numbers, to recognise a
//! reinjection: the same DSN range sent again on another subflow
//! (RFC 8684 §3.3.6).
//!
//! Every segment's DSN range is recorded; a new one is compared with what
//! it overlaps: bytes seen on another subflow make it a reinjection (and
//! name those frames), bytes seen only on its own subflow a
//! retransmission, the rest is new data. Entries far below the peer's data
//! ACK are pruned.

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

/// Entries sorted by first DSN, with a pruned prefix.
#[derive(Clone, Debug, Default)]
struct Sorted {
    v: Vec<Sent>,
    /// Entries before this index are pruned (dropped in batches).
    base: usize,
}

impl Sorted {
    fn live(&self) -> &[Sent] {
        &self.v[self.base..]
    }

    /// Index of the first live entry whose start is after `key` (or, with
    /// `or_equal`, at or after it). Gallops back from the end: the entries
    /// a new segment concerns are near the end of the log.
    fn bound(&self, key: u64, or_equal: bool) -> usize {
        let live = self.live();
        let before = |s: &Sent| if or_equal { d(s.start, key) < 0 } else { d(s.start, key) <= 0 };
        let n = live.len();
        if n == 0 {
            return 0;
        }
        let mut step = 1;
        let mut hi = n;
        loop {
            let lo = hi.saturating_sub(step);
            if lo == 0 || before(&live[lo]) {
                // The answer is in (lo, hi]: entries before lo are before.
                let lo = if before(&live[lo]) { lo + 1 } else { lo };
                return lo + live[lo..hi].partition_point(|s| before(s));
            }
            hi = lo;
            step *= 2;
        }
    }

    /// Inserts keeping the order.
    fn insert(&mut self, e: Sent) {
        if self.live().last().is_none_or(|l| d(l.start, e.start) <= 0) {
            self.v.push(e);
            return;
        }
        let at = self.bound(e.start, false);
        self.v.insert(self.base + at, e);
    }

    /// Entries that can overlap `[start, end)`.
    fn around(&self, start: u64, end: u64) -> impl Iterator<Item = &Sent> {
        let live = self.live();
        let from = if live.is_empty() { 0 } else { self.bound(start.wrapping_sub(MAX_SEG), false) };
        live[from..].iter().take_while(move |s| d(s.start, end) < 0).filter(move |s| d(s.end, start) > 0)
    }

    fn prune(&mut self, limit: u64) {
        while self.base < self.v.len() && d(self.v[self.base].start, limit) < 0 {
            self.base += 1;
        }
        if self.base > 4096 && self.base * 2 > self.v.len() {
            self.v.drain(..self.base);
            self.base = 0;
        }
    }
}

/// The DSNs sent in one direction of a connection.
///
/// `covered` is the union of everything sent, as disjoint intervals: a new
/// segment that lies beyond it or in one of its holes (a subflow filling
/// its share while another ran ahead) is new data, found with a few
/// comparisons at the end of a short list. Only a segment overlapping
/// `covered` (a retransmission or a reinjection) needs the per-segment
/// records, kept per subflow for new data (each in its subflow's sending
/// order, so appended) and in `again` for copies.
#[derive(Clone, Debug, Default)]
pub(crate) struct SentLog {
    covered: Vec<(u64, u64)>,
    /// Pruned prefix of `covered`.
    cbase: usize,
    subflows: Vec<(u32, Sorted)>,
    again: Sorted,
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
        let e = Sent { start, end, sf, frame };
        let overlap = self.cover(start, end);
        seen.new = len - overlap;
        if overlap > 0 {
            self.compare(&e, &mut seen);
        }
        if seen.new > 0 {
            let list = match self.subflows.iter_mut().position(|(s, _)| *s == sf) {
                Some(i) => &mut self.subflows[i].1,
                None => {
                    self.subflows.push((sf, Sorted::default()));
                    &mut self.subflows.last_mut().expect("just pushed").1
                }
            };
            list.insert(e);
        } else {
            self.again.insert(e);
        }
        seen
    }

    /// Adds `[start, end)` to the covered set; returns how many of its
    /// bytes were already covered.
    fn cover(&mut self, start: u64, end: u64) -> u64 {
        let c = &mut self.covered;
        let base = self.cbase;
        // First interval (after the pruned prefix) ending after `start`,
        // galloping back from the end: new data is at or near the end.
        let n = c.len();
        let mut i = n;
        let mut step = 1;
        while i > base && d(c[i - 1].1, start) > 0 {
            let lo = i.saturating_sub(step).max(base);
            if d(c[lo].1, start) > 0 {
                i = lo;
                step *= 2;
                continue;
            }
            i = lo + 1 + c[lo + 1..i].partition_point(|x| d(x.1, start) <= 0);
            break;
        }
        // Common cases: disjoint from everything covered.
        if i == n || d(c[i].0, end) >= 0 {
            let touches_prev = i > base && c[i - 1].1 == start;
            match (touches_prev, i < n && c[i].0 == end) {
                (true, true) => {
                    c[i - 1].1 = c[i].1;
                    c.remove(i);
                }
                (true, false) => c[i - 1].1 = end,
                (false, true) => c[i].0 = start,
                (false, false) => c.insert(i, (start, end)),
            }
            return 0;
        }
        // Overlapping: count the covered bytes and merge.
        let mut overlap = 0u64;
        let mut j = i;
        let mut lo = start;
        let mut hi = end;
        while j < n && d(c[j].0, end) <= 0 {
            let (s, e) = c[j];
            let a = if d(s, start) > 0 { s } else { start };
            let b = if d(e, end) < 0 { e } else { end };
            if d(b, a) > 0 {
                overlap += d(b, a) as u64;
            }
            if d(s, lo) < 0 {
                lo = s;
            }
            if d(e, hi) > 0 {
                hi = e;
            }
            j += 1;
        }
        if i > base && c[i - 1].1 == lo {
            lo = c[i - 1].0;
            i -= 1;
        }
        c.splice(i..j, [(lo, hi)]);
        overlap
    }

    /// Which earlier segments `e` repeats: frames on other subflows, and
    /// the bytes already sent on another subflow or on its own.
    fn compare(&self, e: &Sent, seen: &mut Seen) {
        let mut hits: Vec<&Sent> = self
            .subflows
            .iter()
            .flat_map(|(_, l)| l.around(e.start, e.end))
            .chain(self.again.around(e.start, e.end))
            .collect();
        hits.sort_by(|a, b| d(a.start, b.start).cmp(&0));
        let mut any = Union::new(e.start, e.end);
        let mut other = Union::new(e.start, e.end);
        let mut frames: Vec<u64> = Vec::new();
        for s in hits {
            any.add(s.start, s.end);
            if s.sf != e.sf {
                other.add(s.start, s.end);
                if !frames.contains(&s.frame) {
                    frames.push(s.frame);
                }
            }
        }
        let len = d(e.end, e.start) as u64;
        let covered = (len - seen.new).max(any.total());
        seen.reinjected = other.total().min(covered);
        seen.retransmitted = covered - seen.reinjected;
        frames.sort_unstable();
        seen.other_frames = frames;
    }

    /// Forgets entries that end more than [`SLACK`] below `acked`.
    pub(crate) fn prune(&mut self, acked: u64) {
        let limit = acked.wrapping_sub(SLACK).wrapping_sub(MAX_SEG);
        for (_, l) in &mut self.subflows {
            l.prune(limit);
        }
        self.again.prune(limit);
        while self.cbase + 1 < self.covered.len() && d(self.covered[self.cbase].1, limit) < 0 {
            self.cbase += 1;
        }
        if self.cbase > 1024 && self.cbase * 2 > self.covered.len() {
            self.covered.drain(..self.cbase);
            self.cbase = 0;
        }
    }

    /// Entries held (for tests and memory accounting).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.subflows.iter().map(|(_, l)| l.live().len()).sum::<usize>() + self.again.live().len()
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
        let mut v = Sorted::default();
        let mut x = 7u64;
        for i in 0..300u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            v.v.push(Sent { start: i * 10 + (x >> 62), end: i * 10 + 20, sf: 1, frame: i });
        }
        v.v.sort_by_key(|s| s.start);
        for key in 0..3100u64 {
            for or_equal in [false, true] {
                let want = v.live().partition_point(|s| if or_equal { s.start < key } else { s.start <= key });
                assert_eq!(v.bound(key, or_equal), want, "key {key} {or_equal}");
            }
        }
        assert_eq!(Sorted::default().bound(5, false), 0);
    }

    #[test]
    fn covered_set_against_a_byte_map() {
        // Random segments on three subflows: new/old byte counts must match
        // a plain byte map, whatever the order.
        let mut l = SentLog::default();
        let mut seen = vec![0u8; 4000];
        let mut x = 12345u64;
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
            let s = l.record(start, end, sf, frame);
            assert_eq!(s.new, want_new, "frame {frame}");
            assert_eq!(s.reinjected, want_other, "frame {frame}");
            assert_eq!(s.new + s.reinjected + s.retransmitted, end - start);
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
