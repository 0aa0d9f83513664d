//! Connection-level byte buffers and range sets.
//!
//! Data lives once, at the connection level, indexed by data sequence number
//! (DSN): the send ring keeps bytes from the oldest one any subflow may still
//! have to (re)send up to the last byte the application wrote; the receive
//! ring keeps bytes from the application's read position up to the right edge
//! of the advertised window, out-of-order ranges tracked by a [`RangeSet`].
//! Subflows hold no payload of their own, only mappings onto these buffers
//! (RFC 8684 §3.3.1). The bytes live in shared chunks ([`super::buf`]): a
//! byte is copied once in (the application's `send`) and once out (the
//! peer application's `recv`); in between it travels by reference.

use std::collections::{BTreeMap, VecDeque};

use super::buf::{Pool, Slice, Writer};
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
    /// An empty set; it allocates on its first range (a connection that
    /// never sees a hole costs nothing here).
    pub fn new(cap: usize) -> Self {
        RangeSet { ranges: Vec::new(), cap }
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

/// The capacity a buffer asked for `cap` bytes gets: at least 4 KiB,
/// rounded up to a power of two.
pub fn capacity_for(cap: usize) -> usize {
    cap.max(4096).next_power_of_two()
}

/// Smallest chunk of a buffer. Buffers allocate on first use and take
/// larger chunks as data flows, up to [`MAX_CHUNK`], so an idle connection
/// costs little.
const INITIAL_CHUNK: usize = 16 * 1024;
/// Largest chunk. A segment whose bytes straddle two chunks is copied into
/// one of its own (one 64 KB segment in 16 at most, none at 1500 bytes).
pub const MAX_CHUNK: usize = 1 << 20;

/// One chunk of the send buffer: the bytes its writer holds are the DSNs
/// `[start, start + filled)`; those before `head` are released.
#[derive(Debug)]
struct TxChunk {
    start: DataSeq,
    w: Writer,
}

/// The connection-level send buffer, indexed by DSN: chunks written once by
/// the application's `send`, read by reference ([`TxRing::slice`]) for the
/// segments, released from the front as the peer acknowledges.
#[derive(Debug)]
pub struct TxRing {
    chunks: VecDeque<TxChunk>,
    /// A released chunk nothing else uses, kept for the next write.
    spare: Option<Writer>,
    next_chunk: usize,
    cap: usize,
    /// Oldest byte kept (nothing before it may be needed again).
    pub head: DataSeq,
    /// One past the last byte written by the application.
    pub tail: DataSeq,
    /// Where chunks come from.
    pool: Pool,
}

impl TxRing {
    /// A buffer of at least `cap` bytes (rounded up to a power of two), starting at `start`.
    pub fn new(cap: usize, start: DataSeq) -> TxRing {
        TxRing::with_pool(cap, start, Pool::none())
    }
    /// The same, its chunks taken from (and freed to) `pool`.
    pub fn with_pool(cap: usize, start: DataSeq, pool: Pool) -> TxRing {
        let cap = capacity_for(cap);
        TxRing { chunks: VecDeque::new(), spare: None, next_chunk: INITIAL_CHUNK, cap, head: start, tail: start, pool }
    }
    pub fn capacity(&self) -> usize {
        self.cap
    }
    /// The pool the chunks come from.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
    /// Bytes allocated now.
    pub fn allocated(&self) -> usize {
        self.chunks.iter().map(|c| c.w.capacity()).sum::<usize>() + self.spare.as_ref().map_or(0, |w| w.capacity())
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
        let mut src = &data[..n];
        while !src.is_empty() {
            if self.chunks.back().is_none_or(|c| c.w.room() == 0) {
                self.new_chunk();
            }
            let c = self.chunks.back_mut().expect("a chunk with room");
            let k = c.w.append(src);
            src = &src[k..];
            self.tail += k as u64;
        }
        n
    }
    fn new_chunk(&mut self) {
        let w = match self.spare.take() {
            Some(w) => w,
            None => {
                let size = self.next_chunk.min(self.cap).min(MAX_CHUNK);
                self.next_chunk = (self.next_chunk * 2).min(MAX_CHUNK);
                Writer::pooled(size, &self.pool)
            }
        };
        self.chunks.push_back(TxChunk { start: self.tail, w });
    }
    /// The chunk holding `dsn`.
    fn find(&self, dsn: DataSeq) -> Option<&TxChunk> {
        self.chunks.iter().find(|c| dsn >= c.start && dsn < c.start + c.w.filled() as u64)
    }
    /// `[dsn, dsn + len)` by reference: a slice of the chunk holding it, or,
    /// when it straddles two chunks, a copy of its own.
    ///
    /// # Panics
    /// If the range is not held (a logic error of the caller).
    pub fn slice(&self, dsn: DataSeq, len: usize) -> Slice {
        if len == 0 {
            return Slice::copy_from(&[]);
        }
        let c = self.find(dsn).unwrap_or_else(|| panic!("{dsn:?} not in {:?}..{:?}", self.head, self.tail));
        let off = (dsn - c.start) as usize;
        if off + len <= c.w.filled() {
            return c.w.slice(off, len);
        }
        // A pooled size: the copy does not fault fresh pages in.
        let mut w = Writer::pooled(len.next_power_of_two().max(INITIAL_CHUNK), &self.pool);
        self.with_slices(dsn, len, |p| {
            w.append(p);
        });
        w.slice(0, len)
    }
    /// Copy `[dsn, dsn + out.len())` into `out`.
    ///
    /// # Panics
    /// If the range is not held (a logic error of the caller).
    pub fn read_at(&self, dsn: DataSeq, out: &mut [u8]) {
        let mut at = 0;
        self.with_slices(dsn, out.len(), |p| {
            out[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        });
    }
    /// Feed `[dsn, dsn+len)` to `f`, one piece per chunk.
    pub fn with_slices(&self, dsn: DataSeq, len: usize, mut f: impl FnMut(&[u8])) {
        assert!(
            dsn >= self.head && dsn + len as u64 <= self.tail,
            "{dsn:?}+{len} not in {:?}..{:?}",
            self.head,
            self.tail
        );
        let mut pos = dsn;
        let mut left = len;
        for c in self.chunks.iter() {
            if left == 0 {
                break;
            }
            let end = c.start + c.w.filled() as u64;
            if pos >= end {
                continue;
            }
            let off = (pos - c.start) as usize;
            let k = left.min(c.w.filled() - off);
            f(c.w.bytes(off, k));
            pos += k as u64;
            left -= k;
        }
    }
    /// Number the bytes held from `start` on (nothing may refer to their
    /// DSNs yet): Fast Open moves the bytes a SYN carried before the
    /// data-level sequence space (RFC 8684 Appendix B).
    pub fn renumber(&mut self, start: DataSeq) {
        let delta = start.0.wrapping_sub(self.head.0);
        for c in self.chunks.iter_mut() {
            c.start = DataSeq(c.start.0.wrapping_add(delta));
        }
        self.head = start;
        self.tail = DataSeq(self.tail.0.wrapping_add(delta));
    }
    /// Forget everything before `to`.
    pub fn release(&mut self, to: DataSeq) {
        if to > self.head {
            self.head = to.min(self.tail);
        }
        let want = self.next_chunk.min(self.cap).min(MAX_CHUNK);
        while let Some(c) = self.chunks.front_mut() {
            if c.start + c.w.filled() as u64 > self.head {
                break;
            }
            if c.w.room() > 0 {
                // The chunk being written, all of it released: start it over
                // from the front unless a segment or the receiver still
                // reads it (then writing goes on after its bytes).
                if c.w.reset() {
                    c.start = self.tail;
                }
                break;
            }
            let mut c = self.chunks.pop_front().expect("front exists");
            // Keep one full chunk nothing else reads any more for the next write.
            if self.spare.is_none() && c.w.capacity() >= want && c.w.reset() {
                self.spare = Some(c.w);
            }
        }
    }
}

/// The connection-level receive buffer, indexed by DSN: the bytes that
/// arrived, as slices (of the sender's chunks when a segment came by
/// reference, of our own when it came in a packet), from the application's
/// read position up to the right edge of the advertised window;
/// out-of-order ranges tracked by a [`RangeSet`]. Each byte is held once.
#[derive(Debug)]
pub struct RxRing {
    cap: usize,
    /// The application's read position.
    pub read: DataSeq,
    /// Everything before this has arrived (the DATA_ACK we send).
    pub nxt: DataSeq,
    /// Out-of-order ranges after `nxt`.
    pub ooo: RangeSet<DataSeq>,
    /// In-order data `[read, nxt)`.
    ready: VecDeque<Slice>,
    /// Out-of-order data after `nxt`, by offset from `origin`, disjoint.
    held: BTreeMap<u64, Slice>,
    origin: DataSeq,
    /// Where copied-in data goes.
    writer: Option<Writer>,
    next_chunk: usize,
    /// Where chunks come from.
    pool: Pool,
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
        RxRing::with_pool(cap, start, Pool::none())
    }
    /// The same, its chunks taken from (and freed to) `pool`.
    pub fn with_pool(cap: usize, start: DataSeq, pool: Pool) -> RxRing {
        let cap = capacity_for(cap);
        RxRing {
            pool,
            cap,
            read: start,
            nxt: start,
            ooo: RangeSet::new(256),
            ready: VecDeque::new(),
            held: BTreeMap::new(),
            origin: start,
            writer: None,
            next_chunk: INITIAL_CHUNK,
        }
    }
    pub fn capacity(&self) -> usize {
        self.cap
    }
    /// The pool the chunks come from.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
    /// Bytes of the chunk copied-in data goes to (slices held of other
    /// chunks not counted).
    pub fn allocated(&self) -> usize {
        self.writer.as_ref().map_or(0, |w| w.capacity())
    }
    /// Readable bytes.
    pub fn readable(&self) -> usize {
        (self.nxt - self.read) as usize
    }
    /// The window to advertise, relative to `nxt`.
    pub fn window(&self) -> usize {
        self.capacity() - self.readable()
    }
    /// Store a copy of `data` at `dsn`: what lies before `nxt` or already
    /// held is a duplicate, what lies beyond the window is refused.
    pub fn write(&mut self, dsn: DataSeq, data: &[u8]) -> RxWrite {
        self.write_from(dsn, data, None)
    }
    /// As [`RxRing::write`]; with `shared = Some((slice, off))`, `data` is
    /// `slice[off..off + data.len()]` and is kept by reference, not copied.
    pub fn write_from(&mut self, dsn: DataSeq, data: &[u8], shared: Option<(&Slice, usize)>) -> RxWrite {
        let mut w = RxWrite::default();
        let mut start = dsn;
        let mut skip = 0usize;
        let mut data = data;
        if start < self.nxt {
            skip = ((self.nxt - start) as usize).min(data.len());
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
        if self.ooo.contains(start, end) {
            w.duplicate += data.len();
            return w;
        }
        if start != self.nxt && !self.ooo.insert(start, end) {
            // Too many holes: refuse, the sender will retransmit.
            w.beyond += data.len();
            return w;
        }
        let shared = shared.map(|(s, off)| (s, off + skip));
        self.hold(start, data, shared);
        if start == self.nxt {
            self.nxt = end;
            w.advanced = true;
            while let Some(e) = self.ooo.pop_contiguous(self.nxt) {
                self.nxt = self.nxt.max(e);
            }
            self.promote();
        } else {
            w.ooo = true;
        }
        w
    }
    /// Keep the bytes of `[start, start + data.len())` not held yet.
    fn hold(&mut self, start: DataSeq, data: &[u8], shared: Option<(&Slice, usize)>) {
        let s = start - self.origin;
        let e = s + data.len() as u64;
        // The gaps between the pieces already held in [s, e).
        let mut gaps: [(u64, u64); 4] = [(0, 0); 4];
        let mut ngaps = 0;
        let mut extra: Vec<(u64, u64)> = Vec::new();
        let mut pos = s;
        let first = self.held.range(..s).next_back().map(|(&k, v)| k + v.len() as u64).filter(|&x| x > s);
        if let Some(x) = first {
            pos = x.min(e);
        }
        for (&k, v) in self.held.range(s..e) {
            if k > pos {
                if ngaps < gaps.len() {
                    gaps[ngaps] = (pos, k);
                    ngaps += 1;
                } else {
                    extra.push((pos, k));
                }
            }
            pos = pos.max(k + v.len() as u64);
        }
        if pos < e {
            if ngaps < gaps.len() {
                gaps[ngaps] = (pos, e);
                ngaps += 1;
            } else {
                extra.push((pos, e));
            }
        }
        for &(a, b) in gaps[..ngaps].iter().chain(extra.iter()) {
            let (i, j) = ((a - s) as usize, (b - s) as usize);
            match shared {
                Some((sl, off)) => {
                    self.held.insert(a, sl.slice(off + i..off + j));
                }
                None => self.copy_in(a, &data[i..j]),
            }
        }
    }
    /// Copy `data` (for offset `at`) into our own chunks.
    fn copy_in(&mut self, mut at: u64, mut data: &[u8]) {
        while !data.is_empty() {
            if self.writer.as_ref().is_none_or(|w| w.room() == 0) {
                let size = self.next_chunk.min(self.cap).min(MAX_CHUNK);
                self.next_chunk = (self.next_chunk * 2).min(MAX_CHUNK);
                self.writer = Some(Writer::pooled(size, &self.pool));
            }
            let w = self.writer.as_mut().expect("writer set");
            let off = w.filled();
            let k = w.append(data);
            self.held.insert(at, w.slice(off, k));
            at += k as u64;
            data = &data[k..];
        }
    }
    /// Move the pieces now in order to the readable queue.
    fn promote(&mut self) {
        let nxt = self.nxt - self.origin;
        while let Some(e) = self.held.first_entry() {
            let k = *e.key();
            if k >= nxt {
                break;
            }
            let mut v = e.remove();
            let end = k + v.len() as u64;
            if end > nxt {
                // Only possible if the range set and the pieces disagree.
                debug_assert!(false, "a held piece crosses nxt");
                v.truncate((nxt - k) as usize);
            }
            match self.ready.back_mut() {
                Some(b) if b.continues_into(&v) => {
                    b.try_extend(&v);
                }
                _ => self.ready.push_back(v),
            }
        }
    }
    /// Whether `[dsn, dsn+len)` has fully arrived.
    pub fn has(&self, dsn: DataSeq, len: usize) -> bool {
        dsn + len as u64 <= self.nxt || self.ooo.contains(dsn.max(self.nxt), dsn + len as u64)
    }
    /// Copy readable bytes out.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.readable());
        let mut at = 0;
        while at < n {
            let Some(front) = self.ready.front_mut() else { break };
            let k = (n - at).min(front.len());
            out[at..at + k].copy_from_slice(&front[..k]);
            at += k;
            if k == front.len() {
                self.ready.pop_front();
            } else {
                front.advance(k);
            }
        }
        self.read += at as u64;
        if self.ready.is_empty() && self.held.is_empty() {
            // Nothing of our chunk is held: write it again from the front
            // (it is still in the cache).
            if let Some(w) = self.writer.as_mut() {
                w.reset();
            }
        }
        at
    }
    /// The readable bytes, by reference, in order (up to `max`), consumed.
    pub fn read_slices(&mut self, max: usize, mut f: impl FnMut(Slice)) -> usize {
        let n = max.min(self.readable());
        let mut at = 0;
        while at < n {
            let Some(front) = self.ready.front_mut() else { break };
            let k = (n - at).min(front.len());
            if k == front.len() {
                f(self.ready.pop_front().expect("front exists"));
            } else {
                f(front.slice(0..k));
                front.advance(k);
            }
            at += k;
        }
        self.read += at as u64;
        at
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

    #[test]
    fn tx_slices_share_the_buffer_and_straddles_are_copied() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut t = TxRing::new(1 << 20, DataSeq(10));
        assert_eq!(t.write(&data), data.len());
        // 16 KiB then 32 KiB chunks: [10, 16394) is the first.
        let a = t.slice(DataSeq(10 + 100), 1000);
        assert_eq!(&*a, &data[100..1100]);
        let b = t.slice(DataSeq(10 + 1100), 1000);
        assert!(a.continues_into(&b), "neighbours in one chunk are one memory");
        let c = t.slice(DataSeq(10 + 16_000), 1000);
        assert_eq!(&*c, &data[16_000..17_000]);
        assert!(!b.continues_into(&c));
        // Releasing keeps what slices hold alive.
        t.release(DataSeq(10 + 90_000));
        assert_eq!(&*a, &data[100..1100]);
        assert_eq!(&*c, &data[16_000..17_000]);
        assert_eq!(&*t.slice(DataSeq(10 + 95_000), 5000), &data[95_000..]);
    }

    #[test]
    fn tx_ring_reuses_its_chunk_once_everything_is_released() {
        let mut t = TxRing::new(1 << 20, DataSeq(0));
        t.write(&[1; 1000]);
        let held = t.slice(DataSeq(0), 10);
        t.release(DataSeq(1000));
        t.write(&[2; 1000]);
        // A slice was alive: writing went on after it.
        assert_eq!(&*held, &[1; 10]);
        assert_eq!(&*t.slice(DataSeq(1000), 1000), &[2; 1000][..]);
        drop(held);
        t.release(DataSeq(2000));
        t.write(&[3; 500]);
        assert_eq!(&*t.slice(DataSeq(2000), 500), &[3; 500][..]);
        assert_eq!(t.allocated(), INITIAL_CHUNK);
    }

    #[test]
    fn rx_ring_keeps_shared_slices_and_each_byte_once() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let sl = Slice::copy_from(&data);
        let mut r = RxRing::new(1 << 16, DataSeq(0));
        // Out of order by reference, then an overlapping copy, then the start.
        assert!(r.write_from(DataSeq(4000), &data[4000..6000], Some((&sl, 4000))).ooo);
        assert!(r.write_from(DataSeq(8000), &data[8000..9000], Some((&sl, 8000))).ooo);
        let w = r.write(DataSeq(3000), &data[3000..8500]);
        assert!(w.ooo);
        assert_eq!(r.ooo.len(), 1);
        let w = r.write_from(DataSeq(0), &data[..3500], Some((&sl, 0)));
        assert!(w.advanced);
        assert_eq!(r.nxt, DataSeq(9000));
        let mut out = vec![0; 10_000];
        assert_eq!(r.read(&mut out[..100]), 100);
        let mut got = Vec::new();
        assert_eq!(r.read_slices(usize::MAX, |s| got.extend_from_slice(&s)), 8900);
        assert_eq!(&got[..], &data[100..9000]);
        // A duplicate of delivered data changes nothing.
        assert_eq!(r.write(DataSeq(10), &data[10..20]).duplicate, 10);
        assert_eq!(r.readable(), 0);
    }
}
