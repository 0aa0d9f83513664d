//! DSS checksum verification over a mapping that spans several segments
//! (RFC 8684 §3.3.1).
//!
//! The checksum is the Internet checksum (RFC 1071) of a pseudo-header (the
//! 64-bit DSN, the relative subflow sequence number, the data-level length
//! and the checksum field) followed by the payload the mapping covers. The
//! one's-complement sum is commutative, and a chunk that starts at an odd
//! offset contributes its sum byte-swapped (RFC 1071 §2, "byte order
//! independence"), so each segment can be summed on its own and added in
//! whatever order the capture shows it; only which bytes were already
//! counted needs tracking (a retransmission must not count twice, a segment
//! missing from the capture leaves the mapping unverifiable).

use crate::checksum::{InternetChecksum, fold};
use crate::dissect::crypto::dss_pseudo_header;
use crate::seq::DataSeq;

/// One's-complement sum of `data` as if it started at an even offset,
/// folded to 16 bits.
fn chunk_sum(data: &[u8]) -> u16 {
    let mut c = InternetChecksum::new();
    c.add(data);
    c.folded()
}

/// Disjoint byte ranges `[start, end)` already seen, sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Coverage {
    ranges: Vec<(u32, u32)>,
}

impl Coverage {
    /// Calls `f` with each part of `[a, b)` not yet covered, then covers it.
    pub(crate) fn add(&mut self, a: u32, b: u32, mut f: impl FnMut(u32, u32)) {
        if a >= b {
            return;
        }
        // Fast path: appending to the one contiguous range.
        if let [(s, e)] = self.ranges.as_mut_slice()
            && *s <= a
            && a <= *e
        {
            if b > *e {
                f(*e, b);
                *e = b;
            }
            return;
        }
        let mut pos = a;
        for &(s, e) in &self.ranges {
            if e <= pos {
                continue;
            }
            if s >= b {
                break;
            }
            if s > pos {
                f(pos, s.min(b));
            }
            pos = pos.max(e);
            if pos >= b {
                break;
            }
        }
        if pos < b {
            f(pos, b);
        }
        // Insert and merge.
        self.ranges.push((a, b));
        self.ranges.sort_unstable();
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(self.ranges.len());
        for &(s, e) in &self.ranges {
            match out.last_mut() {
                Some((_, le)) if s <= *le => *le = (*le).max(e),
                _ => out.push((s, e)),
            }
        }
        self.ranges = out;
    }

    /// Whether `[0, len)` is covered.
    pub(crate) fn complete(&self, len: u32) -> bool {
        matches!(self.ranges.as_slice(), [(0, e)] if *e >= len) || len == 0
    }

    /// Bytes covered.
    #[cfg(test)]
    pub(crate) fn covered(&self) -> u64 {
        self.ranges.iter().map(|(s, e)| (e - s) as u64).sum()
    }
}

/// The outcome of a mapping's checksum check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsumStatus {
    /// Not all of the mapping's payload has been seen yet.
    Pending,
    Ok,
    Bad,
    /// Part of the payload was not captured (snaplen): not verifiable.
    Truncated,
}

/// A segment's contribution, kept to find the corrupted one when a mapping
/// fails and its data is sent again (see [`Localizer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegSum {
    /// Offset within the mapping's payload.
    pub off: u32,
    pub len: u32,
    /// Sum of these bytes as if at an even offset.
    pub sum: u16,
    pub frame: u64,
}

/// The running check of one mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MappingChecksum {
    /// The pseudo-header with the received checksum in place, summed.
    header_sum: u16,
    /// Payload bytes the mapping covers (its data-level length without the
    /// DATA_FIN's one unit).
    payload_len: u32,
    acc: u64,
    covered: Coverage,
    pub segs: Vec<SegSum>,
    pub status: CsumStatus,
}

impl MappingChecksum {
    /// `data_len` is the data-level length as on the wire (a DATA_FIN
    /// included), `payload_len` the bytes of payload it maps.
    pub(crate) fn new(dsn: u64, ssn: u32, data_len: u16, checksum: u16, payload_len: u32) -> MappingChecksum {
        MappingChecksum {
            header_sum: chunk_sum(&dss_pseudo_header(dsn, ssn, data_len, checksum)),
            payload_len,
            acc: 0,
            covered: Coverage::default(),
            segs: Vec::new(),
            status: CsumStatus::Pending,
        }
    }

    /// Adds payload at `off` within the mapping; `bytes` is what the
    /// capture holds, `len` the length on the wire. Returns the new status
    /// when this call decided it.
    pub(crate) fn add(&mut self, off: u32, bytes: &[u8], len: u32, frame: u64) -> Option<CsumStatus> {
        if self.status != CsumStatus::Pending {
            return None;
        }
        let end = off.saturating_add(len).min(self.payload_len);
        if off >= end {
            return None;
        }
        if (bytes.len() as u64) < (end - off) as u64 {
            self.status = CsumStatus::Truncated;
            return Some(CsumStatus::Truncated);
        }
        let (acc, segs) = (&mut self.acc, &mut self.segs);
        self.covered.add(off, end, |a, b| {
            let s = chunk_sum(&bytes[(a - off) as usize..(b - off) as usize]);
            *acc += if a % 2 == 1 { s.swap_bytes() } else { s } as u64;
            segs.push(SegSum { off: a, len: b - a, sum: s, frame });
        });
        if self.covered.complete(self.payload_len) {
            let total = fold(self.acc + self.header_sum as u64);
            self.status = if total == 0xffff { CsumStatus::Ok } else { CsumStatus::Bad };
            return Some(self.status);
        }
        None
    }

    /// For a mapping with no payload (a bare DATA_FIN): decide at once.
    pub(crate) fn check_empty(&mut self) -> CsumStatus {
        if self.status == CsumStatus::Pending && self.payload_len == 0 {
            self.status = if self.header_sum == 0xffff { CsumStatus::Ok } else { CsumStatus::Bad };
        }
        self.status
    }
}

/// After a mapping failed its checksum: compares each of its segments with
/// the same data sent again later (a reinjection carries the same DSNs), to
/// name the segment that was corrupted on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Localizer {
    /// DSN of the mapping's first payload byte.
    pub dsn: DataSeq,
    pub segs: Vec<LocSeg>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LocSeg {
    pub dsn: DataSeq,
    pub len: u32,
    pub sum: u16,
    pub frame: u64,
    acc: u64,
    next: u32,
    /// The frames of the copy.
    pub copy_frames: Vec<u64>,
    /// Decided: `Some(true)` when the copy's sum differs.
    pub differs: Option<bool>,
}

impl Localizer {
    pub(crate) fn new(dsn: DataSeq, mc: &MappingChecksum) -> Localizer {
        let mut segs: Vec<LocSeg> = mc
            .segs
            .iter()
            .map(|s| LocSeg {
                dsn: dsn + s.off as u64,
                len: s.len,
                sum: s.sum,
                frame: s.frame,
                acc: 0,
                next: 0,
                copy_frames: Vec::new(),
                differs: None,
            })
            .collect();
        segs.sort_by_key(|s| s.dsn - dsn);
        Localizer { dsn, segs }
    }

    /// Feeds later payload carrying DSNs `[dsn, dsn + bytes.len())`.
    /// Returns the frames found corrupt by this call.
    pub(crate) fn feed(&mut self, dsn: DataSeq, bytes: &[u8], frame: u64) -> Vec<u64> {
        let mut found = Vec::new();
        let end = dsn + bytes.len();
        for s in &mut self.segs {
            if s.differs.is_some() {
                continue;
            }
            let s_end = s.dsn + s.len as u64;
            // Intersection, in wrapping DSN space.
            let lo = dsn.max(s.dsn);
            let hi = end.min(s_end);
            if hi <= lo {
                continue;
            }
            let off = (lo - s.dsn) as u32;
            if off != s.next {
                // Only contiguous copies are compared.
                continue;
            }
            let from = (lo - dsn) as usize;
            let to = (hi - dsn) as usize;
            let part = chunk_sum(&bytes[from..to]);
            s.acc += if off % 2 == 1 { part.swap_bytes() } else { part } as u64;
            s.next += (to - from) as u32;
            if s.copy_frames.last() != Some(&frame) {
                s.copy_frames.push(frame);
            }
            if s.next >= s.len {
                let differs = fold(s.acc) != s.sum;
                s.differs = Some(differs);
                if differs {
                    found.push(s.frame);
                }
            }
        }
        found
    }

    pub(crate) fn end_dsn(&self) -> DataSeq {
        self.segs.iter().map(|s| s.dsn + s.len as u64).max_by_key(|e| *e - self.dsn).unwrap_or(self.dsn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::crypto::dss_checksum;

    #[test]
    fn coverage_reports_only_new_bytes() {
        let mut c = Coverage::default();
        let mut seen = Vec::new();
        c.add(0, 10, |a, b| seen.push((a, b)));
        c.add(5, 15, |a, b| seen.push((a, b)));
        c.add(20, 30, |a, b| seen.push((a, b)));
        c.add(0, 40, |a, b| seen.push((a, b)));
        assert_eq!(seen, vec![(0, 10), (10, 15), (20, 30), (15, 20), (30, 40)]);
        assert!(c.complete(40));
        assert_eq!(c.covered(), 40);
    }

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + 7) as u8).collect()
    }

    #[test]
    fn out_of_order_odd_segments_verify() {
        let p = payload(1001);
        let (dsn, ssn) = (0x1122_3344_5566_7788, 1);
        let ck = dss_checksum(dsn, ssn, p.len() as u16, &p);
        let mut m = MappingChecksum::new(dsn, ssn, p.len() as u16, ck, p.len() as u32);
        // Odd-length pieces, out of order, one sent twice.
        assert_eq!(m.add(333, &p[333..700], 367, 2), None);
        assert_eq!(m.add(0, &p[..333], 333, 1), None);
        assert_eq!(m.add(0, &p[..333], 333, 3), None);
        assert_eq!(m.add(700, &p[700..], 301, 4), Some(CsumStatus::Ok));
        // A flipped byte fails.
        let mut bad = p.clone();
        bad[500] ^= 0x40;
        let mut m = MappingChecksum::new(dsn, ssn, p.len() as u16, ck, p.len() as u32);
        assert_eq!(m.add(0, &bad[..600], 600, 1), None);
        assert_eq!(m.add(600, &bad[600..], 401, 2), Some(CsumStatus::Bad));
        // Cut payload: not verifiable.
        let mut m = MappingChecksum::new(dsn, ssn, p.len() as u16, ck, p.len() as u32);
        assert_eq!(m.add(0, &p[..50], 600, 1), Some(CsumStatus::Truncated));
    }

    #[test]
    fn data_fin_counts_in_the_length_not_the_payload() {
        let p = payload(100);
        let (dsn, ssn) = (77, 5);
        let ck = dss_checksum(dsn, ssn, 101, &p);
        let mut m = MappingChecksum::new(dsn, ssn, 101, ck, 100);
        assert_eq!(m.add(0, &p, 100, 1), Some(CsumStatus::Ok));
        let ck = dss_checksum(dsn, 0, 1, &[]);
        let mut m = MappingChecksum::new(dsn, 0, 1, ck, 0);
        assert_eq!(m.check_empty(), CsumStatus::Ok);
    }

    #[test]
    fn localizer_names_the_corrupted_segment() {
        let p = payload(3000);
        let dsn = 1000;
        let ck = dss_checksum(dsn, 1, 3000, &p);
        let mut bad = p.clone();
        bad[1500] ^= 1;
        let mut m = MappingChecksum::new(dsn, 1, 3000, ck, 3000);
        m.add(0, &bad[..1000], 1000, 10);
        m.add(1000, &bad[1000..2000], 1000, 11);
        assert_eq!(m.add(2000, &bad[2000..], 1000, 12), Some(CsumStatus::Bad));
        let mut l = Localizer::new(DataSeq(dsn), &m);
        assert_eq!(l.end_dsn(), DataSeq(4000));
        // The copy comes in differently cut pieces.
        let mut found = Vec::new();
        for (a, b, f) in [(0, 1421, 50), (1421, 2842, 51), (2842, 3000, 52)] {
            found.extend(l.feed(DataSeq(dsn) + a, &p[a..b], f));
        }
        assert_eq!(found, vec![11]);
        assert_eq!(l.segs[1].copy_frames, vec![50, 51]);
        assert_eq!(l.segs[0].differs, Some(false));
    }

    #[test]
    fn localizer_works_across_the_dsn_wrap() {
        // The mapping starts 1500 bytes below 2^64: its middle segment holds
        // the wrap, the corrupted byte is past it.
        let p = payload(3000);
        let dsn = u64::MAX - 1499;
        let ck = dss_checksum(dsn, 1, 3000, &p);
        let mut bad = p.clone();
        bad[1700] ^= 1;
        let mut m = MappingChecksum::new(dsn, 1, 3000, ck, 3000);
        m.add(0, &bad[..1000], 1000, 10);
        m.add(1000, &bad[1000..2000], 1000, 11);
        assert_eq!(m.add(2000, &bad[2000..], 1000, 12), Some(CsumStatus::Bad));
        let mut l = Localizer::new(DataSeq(dsn), &m);
        assert_eq!(l.end_dsn(), DataSeq(1500));
        let mut found = Vec::new();
        // The copy's first piece starts before the mapping (a reinjection
        // that covers more), its last ends after it.
        let mut copy = payload(3100);
        copy[100..].copy_from_slice(&p);
        for (a, b, f) in [(0, 1700, 50), (1700, 3100, 51)] {
            found.extend(l.feed(DataSeq(dsn) - 100 + a, &copy[a..b], f));
        }
        assert_eq!(found, vec![11]);
        assert_eq!(l.segs.iter().map(|s| s.differs).collect::<Vec<_>>(), vec![Some(false), Some(true), Some(false)]);
    }
}
