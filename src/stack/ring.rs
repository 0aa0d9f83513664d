//! Connection-level byte buffers and range sets.
//!
//! Data lives once, at the connection level, indexed by data sequence number
//! (DSN): the send ring keeps bytes from the oldest one any subflow may still
//! have to (re)send up to the last byte the application wrote; the receive
//! ring keeps bytes from the application's read position up to the right edge
//! of the advertised window, out-of-order ranges tracked by a [`RangeSet`].
//! Subflows hold no payload of their own, only mappings onto these rings
//! (RFC 8684 §3.3.1), so a byte is copied once in and once out.

use crate::seq::{DataSeq, SubflowSeq};

/// Sequence types a [`RangeSet`] can hold: compared by wrapping distance.
pub trait SeqLike: Copy + PartialEq + core::fmt::Debug {
    /// Signed distance `self - other`.
    fn dist(self, other: Self) -> i64;
}

impl SeqLike for SubflowSeq {
    fn dist(self, other: Self) -> i64 {
        self.diff(other) as i64
    }
}

impl SeqLike for DataSeq {
    fn dist(self, other: Self) -> i64 {
        self.diff(other)
    }
}

/// A sorted set of disjoint, non-adjacent half-open ranges `[start, end)`,
/// at most `cap` of them (a segment that would need more is refused, as
/// smoltcp's assembler does).
#[derive(Clone, Debug)]
pub struct RangeSet<T: SeqLike> {
    ranges: Vec<(T, T)>,
    cap: usize,
}

impl<T: SeqLike> RangeSet<T> {
    pub fn new(cap: usize) -> Self {
        RangeSet { ranges: Vec::with_capacity(cap.min(64)), cap }
    }
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
    pub fn len(&self) -> usize {
        self.ranges.len()
    }
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &(T, T)> {
        self.ranges.iter()
    }
    pub fn first(&self) -> Option<(T, T)> {
        self.ranges.first().copied()
    }
    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    /// Insert `[start, end)`. Returns false (and changes nothing) when the set
    /// would exceed its capacity.
    pub fn insert(&mut self, start: T, end: T) -> bool {
        if end.dist(start) <= 0 {
            return true;
        }
        // First range whose end reaches start (overlap or adjacency).
        let i = self.ranges.iter().position(|r| r.1.dist(start) >= 0).unwrap_or(self.ranges.len());
        // Ranges [i, j) touch the new one.
        let mut j = i;
        let (mut s, mut e) = (start, end);
        while j < self.ranges.len() && self.ranges[j].0.dist(end) <= 0 {
            if self.ranges[j].0.dist(s) < 0 {
                s = self.ranges[j].0;
            }
            if self.ranges[j].1.dist(e) > 0 {
                e = self.ranges[j].1;
            }
            j += 1;
        }
        if i == j {
            if self.ranges.len() >= self.cap {
                return false;
            }
            self.ranges.insert(i, (s, e));
        } else {
            self.ranges[i] = (s, e);
            self.ranges.drain(i + 1..j);
        }
        true
    }

    /// If a range starts at or before `at` and ends after it, remove it and
    /// return its end (the new contiguous point); ranges wholly before `at`
    /// are dropped.
    pub fn pop_contiguous(&mut self, at: T) -> Option<T> {
        while let Some(&(s, e)) = self.ranges.first() {
            if e.dist(at) <= 0 {
                self.ranges.remove(0);
                continue;
            }
            if s.dist(at) <= 0 {
                self.ranges.remove(0);
                return Some(e);
            }
            return None;
        }
        None
    }

    /// Whether `[start, end)` is wholly inside one range.
    pub fn contains(&self, start: T, end: T) -> bool {
        self.ranges.iter().any(|r| r.0.dist(start) <= 0 && r.1.dist(end) >= 0)
    }

    /// The highest end, if any.
    pub fn last_end(&self) -> Option<T> {
        self.ranges.last().map(|r| r.1)
    }
}

/// Smallest allocation of a ring. Rings allocate on first use and double as
/// data needs room, up to their capacity, so an idle connection costs little.
const INITIAL_RING: usize = 16 * 1024;

/// Move the bytes of `[from, from+len)` (indexed by DSN) from `old` into a
/// larger power-of-two buffer.
fn regrow(old: &[u8], new_len: usize, from: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; new_len];
    if old.is_empty() {
        return buf;
    }
    let (om, nm) = (old.len() - 1, new_len - 1);
    let mut pos = from;
    let mut left = len;
    while left > 0 {
        let o = pos as usize & om;
        let n = pos as usize & nm;
        let k = left.min(old.len() - o).min(new_len - n);
        buf[n..n + k].copy_from_slice(&old[o..o + k]);
        pos = pos.wrapping_add(k as u64);
        left -= k;
    }
    buf
}

/// The connection-level send buffer: a power-of-two ring indexed by DSN.
#[derive(Debug)]
pub struct TxRing {
    buf: Vec<u8>,
    mask: usize,
    cap: usize,
    /// Oldest byte kept (nothing before it may be needed again).
    pub head: DataSeq,
    /// One past the last byte written by the application.
    pub tail: DataSeq,
}

impl TxRing {
    /// A ring of at least `cap` bytes (rounded up to a power of two), starting at `start`.
    pub fn new(cap: usize, start: DataSeq) -> TxRing {
        let cap = cap.max(4096).next_power_of_two();
        TxRing { buf: Vec::new(), mask: 0, cap, head: start, tail: start }
    }
    pub fn capacity(&self) -> usize {
        self.cap
    }
    /// Bytes allocated now.
    pub fn allocated(&self) -> usize {
        self.buf.len()
    }
    fn reserve(&mut self, need: usize) {
        if need > self.buf.len() {
            let n = need.next_power_of_two().max(INITIAL_RING).min(self.cap);
            self.buf = regrow(&self.buf, n, self.head.0, self.len());
            self.mask = n - 1;
        }
    }
    pub fn len(&self) -> usize {
        (self.tail - self.head) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn free(&self) -> usize {
        self.capacity() - self.len()
    }
    /// Append as much of `data` as fits; returns the count.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        self.reserve(self.len() + n);
        let mut off = self.tail.0 as usize & self.mask;
        let mut src = &data[..n];
        while !src.is_empty() {
            let k = src.len().min(self.buf.len() - off);
            self.buf[off..off + k].copy_from_slice(&src[..k]);
            src = &src[k..];
            off = 0;
        }
        self.tail += n as u64;
        n
    }
    /// Copy `[dsn, dsn + out.len())` into `out`.
    ///
    /// # Panics
    /// In debug builds, if the range is not held (a logic error of the caller).
    pub fn read_at(&self, dsn: DataSeq, out: &mut [u8]) {
        debug_assert!(
            dsn >= self.head && dsn + out.len() <= self.tail,
            "{dsn:?}+{} not in {:?}..{:?}",
            out.len(),
            self.head,
            self.tail
        );
        let mut off = dsn.0 as usize & self.mask;
        let mut dst = out;
        while !dst.is_empty() {
            let k = dst.len().min(self.buf.len() - off);
            dst[..k].copy_from_slice(&self.buf[off..off + k]);
            dst = &mut dst[k..];
            off = 0;
        }
    }
    /// Feed `[dsn, dsn+len)` to `f` in at most two slices.
    pub fn with_slices(&self, dsn: DataSeq, len: usize, mut f: impl FnMut(&[u8])) {
        let off = dsn.0 as usize & self.mask;
        let k = len.min(self.buf.len() - off);
        f(&self.buf[off..off + k]);
        if k < len {
            f(&self.buf[..len - k]);
        }
    }
    /// Forget everything before `to`.
    pub fn release(&mut self, to: DataSeq) {
        if to > self.head {
            self.head = to.min(self.tail);
        }
    }
}

/// The connection-level receive buffer: a power-of-two ring indexed by DSN.
#[derive(Debug)]
pub struct RxRing {
    buf: Vec<u8>,
    mask: usize,
    cap: usize,
    /// The application's read position.
    pub read: DataSeq,
    /// Everything before this has arrived (the DATA_ACK we send).
    pub nxt: DataSeq,
    /// Out-of-order ranges after `nxt`.
    pub ooo: RangeSet<DataSeq>,
}

/// What [`RxRing::write`] did with a range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxWrite {
    /// Bytes that had already arrived.
    pub duplicate: usize,
    /// Bytes beyond the window, refused.
    pub beyond: usize,
    /// The in-order point advanced.
    pub advanced: bool,
    /// Stored out of order.
    pub ooo: bool,
}

impl RxRing {
    pub fn new(cap: usize, start: DataSeq) -> RxRing {
        let cap = cap.max(4096).next_power_of_two();
        RxRing { buf: Vec::new(), mask: 0, cap, read: start, nxt: start, ooo: RangeSet::new(256) }
    }
    pub fn capacity(&self) -> usize {
        self.cap
    }
    /// Bytes allocated now.
    pub fn allocated(&self) -> usize {
        self.buf.len()
    }
    /// Readable bytes.
    pub fn readable(&self) -> usize {
        (self.nxt - self.read) as usize
    }
    /// The window to advertise, relative to `nxt`.
    pub fn window(&self) -> usize {
        self.capacity() - self.readable()
    }
    /// Store `data` at `dsn`: what lies before `nxt` or already held is a
    /// duplicate, what lies beyond the window is refused.
    pub fn write(&mut self, dsn: DataSeq, data: &[u8]) -> RxWrite {
        let mut w = RxWrite::default();
        let mut start = dsn;
        let mut data = data;
        if start < self.nxt {
            let skip = ((self.nxt - start) as usize).min(data.len());
            w.duplicate += skip;
            data = &data[skip..];
            start = self.nxt;
        }
        let limit = self.read + self.capacity() as u64;
        let room = if limit > start { (limit - start) as usize } else { 0 };
        if data.len() > room {
            w.beyond = data.len() - room;
            data = &data[..room];
        }
        if data.is_empty() {
            return w;
        }
        let end = start + data.len() as u64;
        let need = (end - self.read) as usize;
        if need > self.buf.len() {
            let n = need.next_power_of_two().max(INITIAL_RING).min(self.cap);
            let old = self.buf.len();
            self.buf = regrow(&self.buf, n, self.read.0, old);
            self.mask = n - 1;
        }
        if self.ooo.contains(start, end) {
            w.duplicate += data.len();
            return w;
        }
        if start != self.nxt && !self.ooo.insert(start, end) {
            // Too many holes: refuse, the sender will retransmit.
            w.beyond += data.len();
            return w;
        }
        let mut off = start.0 as usize & self.mask;
        let mut src = data;
        while !src.is_empty() {
            let k = src.len().min(self.buf.len() - off);
            self.buf[off..off + k].copy_from_slice(&src[..k]);
            src = &src[k..];
            off = 0;
        }
        if start == self.nxt {
            self.nxt = end;
            w.advanced = true;
            while let Some(e) = self.ooo.pop_contiguous(self.nxt) {
                self.nxt = self.nxt.max(e);
            }
        } else {
            w.ooo = true;
        }
        w
    }
    /// Whether `[dsn, dsn+len)` has fully arrived.
    pub fn has(&self, dsn: DataSeq, len: usize) -> bool {
        dsn + len as u64 <= self.nxt || self.ooo.contains(dsn.max(self.nxt), dsn + len as u64)
    }
    /// Copy readable bytes out.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.readable());
        let mut off = self.read.0 as usize & self.mask;
        let mut dst = &mut out[..n];
        while !dst.is_empty() {
            let k = dst.len().min(self.buf.len() - off);
            dst[..k].copy_from_slice(&self.buf[off..off + k]);
            dst = &mut dst[k..];
            off = 0;
        }
        self.read += n as u64;
        n
    }
    /// Skip `n` in-order bytes that are not data (DATA_FIN's sequence unit).
    pub fn advance_nxt(&mut self, n: u64) {
        self.nxt += n;
        self.read += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rangeset_merges() {
        let mut r: RangeSet<SubflowSeq> = RangeSet::new(4);
        assert!(r.insert(SubflowSeq(10), SubflowSeq(20)));
        assert!(r.insert(SubflowSeq(30), SubflowSeq(40)));
        assert!(r.insert(SubflowSeq(20), SubflowSeq(30)));
        assert_eq!(r.len(), 1);
        assert_eq!(r.first(), Some((SubflowSeq(10), SubflowSeq(40))));
        assert!(r.insert(SubflowSeq(50), SubflowSeq(60)));
        assert!(r.insert(SubflowSeq(5), SubflowSeq(55)));
        assert_eq!(r.first(), Some((SubflowSeq(5), SubflowSeq(60))));
        assert_eq!(r.pop_contiguous(SubflowSeq(5)), Some(SubflowSeq(60)));
        assert!(r.is_empty());
    }

    #[test]
    fn rangeset_wraps_and_caps() {
        let mut r: RangeSet<SubflowSeq> = RangeSet::new(2);
        let b = SubflowSeq(u32::MAX - 5);
        assert!(r.insert(b, b + 10u32));
        assert!(r.insert(b + 20u32, b + 30u32));
        assert!(!r.insert(b + 40u32, b + 50u32));
        assert!(r.contains(b + 1u32, b + 9u32));
        assert_eq!(r.last_end(), Some(b + 30u32));
    }

    #[test]
    fn tx_ring_wraps() {
        let mut t = TxRing::new(4096, DataSeq(100));
        let data: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        assert_eq!(t.write(&data), 4096);
        assert_eq!(t.write(b"x"), 0);
        t.release(DataSeq(100 + 1000));
        assert_eq!(t.write(&data[..1000]), 1000);
        let mut out = vec![0; 2000];
        t.read_at(DataSeq(100 + 3000), &mut out);
        assert_eq!(&out[..1096], &data[3000..]);
        assert_eq!(&out[1096..], &data[..904]);
    }

    #[test]
    fn rings_grow_on_demand_and_keep_their_bytes() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
        let mut t = TxRing::new(1 << 20, DataSeq(u64::MAX - 5000));
        assert_eq!(t.allocated(), 0);
        for c in data.chunks(7000) {
            assert_eq!(t.write(c), c.len());
        }
        t.release(DataSeq(u64::MAX - 5000) + 1000u64);
        let mut out = vec![0; 299_000];
        t.read_at(DataSeq(u64::MAX - 5000) + 1000u64, &mut out);
        assert_eq!(&out[..], &data[1000..]);
        assert!(t.allocated() >= 300_000 && t.allocated() <= 1 << 20);
        // Receive: out-of-order first, then the start; growth in between.
        let mut r = RxRing::new(1 << 20, DataSeq(7));
        assert!(r.write(DataSeq(7) + 100_000u64, &data[100_000..200_000]).ooo);
        assert!(r.write(DataSeq(7), &data[..100_000]).advanced);
        assert_eq!(r.nxt, DataSeq(7) + 200_000u64);
        let mut out = vec![0; 200_000];
        assert_eq!(r.read(&mut out), 200_000);
        assert_eq!(&out[..], &data[..200_000]);
    }

    #[test]
    fn rx_ring_reorders() {
        let mut r = RxRing::new(4096, DataSeq(1));
        let w = r.write(DataSeq(11), b"world");
        assert!(w.ooo && !w.advanced);
        let w = r.write(DataSeq(1), b"hello12345");
        assert!(w.advanced);
        assert_eq!(r.nxt, DataSeq(16));
        let w = r.write(DataSeq(5), b"o1234");
        assert_eq!(w.duplicate, 5);
        let mut out = [0u8; 32];
        let n = r.read(&mut out);
        assert_eq!(&out[..n], b"hello12345world");
        // Window limit.
        let big = vec![7u8; 5000];
        let w = r.write(DataSeq(16), &big);
        assert_eq!(w.beyond, 5000 - 4096);
        assert_eq!(r.window(), 0);
    }
}
