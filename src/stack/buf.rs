//! Shared payload memory: the zero-copy data path.
//!
//! Application data is copied once into a [`Chunk`] of the connection's send
//! buffer; from then on it travels by reference. An outgoing segment's
//! payload is a [`Slice`] of that chunk (the simulator carries it to the
//! other endpoint, the TUN driver hands it to `writev(2)`); the receiver
//! keeps the slices it was given in its reassembly queue and copies once more,
//! into the application's buffer. That is two copies per byte, as a kernel
//! does (user to skb, skb to user), instead of four (application to send
//! ring, ring to packet, packet to receive ring, ring to application).
//!
//! A chunk is written by one [`Writer`], front to back, and never rewritten
//! while any [`Slice`] of it lives: a slice covers only bytes that were
//! written before it was made, and the writer only writes after them. A
//! chunk is freed when the last slice or writer goes; a writer whose chunk
//! has no other user can start over ([`Writer::reset`]).
//!
//! Freed chunk memory goes back to the [`Pool`] it came from, if any: one
//! per endpoint (its rings take chunks from it), no global state.

use std::fmt;
use std::ops::{Deref, Range};
use std::ptr::NonNull;
use std::sync::Arc;

/// A fixed-size block of bytes, written once from the front.
struct Chunk {
    ptr: NonNull<u8>,
    cap: usize,
    /// Where the memory goes back to when the chunk is freed.
    pool: Pool,
}

// SAFETY: a chunk is plain memory. Shared access (`&Chunk` through an `Arc`)
// only ever reads bytes below what its writer had published when a `Slice`
// was made; the single `Writer` (unique, `&mut self`) only writes above
// everything published. No byte is ever written while it can be read.
unsafe impl Send for Chunk {}
// SAFETY: see `Send`: concurrent readers and the writer touch disjoint bytes.
unsafe impl Sync for Chunk {}

impl Chunk {
    fn new(cap: usize, pool: &Pool) -> Arc<Chunk> {
        let cap = cap.max(1);
        let pool = pool.clone();
        if let Some(ptr) = pool.take(cap) {
            return Arc::new(Chunk { ptr, cap, pool });
        }
        let ptr = pool::alloc_block(cap);
        Arc::new(Chunk { ptr, cap, pool })
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if !self.pool.give(self.ptr, self.cap) {
            // SAFETY: allocated by `pool::alloc_block(self.cap)`, freed once.
            unsafe { pool::free_block(self.ptr, self.cap) }
        }
    }
}

/// Recycled chunk memory of the power-of-two sizes the buffers use, last
/// freed first (still in the cache). A handle: clones share the memory,
/// which is freed when the last handle and the last chunk from it go.
/// [`Pool::none`] recycles nothing.
#[derive(Clone)]
pub struct Pool(Option<Arc<pool::Shelves>>);

impl Pool {
    /// An empty pool.
    pub fn new() -> Pool {
        Pool(Some(Arc::new(pool::Shelves::default())))
    }

    /// No pool: chunks go back to the allocator.
    pub fn none() -> Pool {
        Pool(None)
    }

    /// Bytes kept for reuse now.
    pub fn kept_bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |s| s.kept_bytes())
    }

    fn take(&self, cap: usize) -> Option<NonNull<u8>> {
        self.0.as_ref()?.take(cap)
    }

    fn give(&self, ptr: NonNull<u8>, cap: usize) -> bool {
        self.0.as_ref().is_some_and(|s| s.give(ptr, cap))
    }
}

impl Default for Pool {
    /// An empty pool ([`Pool::new`]).
    fn default() -> Pool {
        Pool::new()
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pool({} bytes kept)", self.kept_bytes())
    }
}

/// The pool's shelves. Large blocks freed to the allocator go back to the
/// system and fault in again page by page when allocated: at tens of
/// Gbit/s that costs as much as the copies themselves.
mod pool {
    use std::alloc::{self, Layout};
    use std::ptr::NonNull;
    use std::sync::Mutex;

    /// Size classes 2^14 (16 KiB) to 2^20 (1 MiB).
    const MIN_SHIFT: u32 = 14;
    const CLASSES: usize = 7;
    /// Bytes kept per class at most.
    const KEEP_BYTES: usize = 16 << 20;

    struct Block(NonNull<u8>);
    // SAFETY: a free block of memory, owned by the shelves alone.
    unsafe impl Send for Block {}

    fn layout(cap: usize) -> Layout {
        Layout::array::<u8>(cap).expect("chunk size fits a layout")
    }

    /// A fresh block of `cap` (> 0) bytes.
    pub(super) fn alloc_block(cap: usize) -> NonNull<u8> {
        let layout = layout(cap);
        // SAFETY: the layout has a non-zero size (callers pass cap >= 1).
        let p = unsafe { alloc::alloc(layout) };
        NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout))
    }

    /// # Safety
    /// `ptr` came from `alloc_block(cap)` and is freed once.
    pub(super) unsafe fn free_block(ptr: NonNull<u8>, cap: usize) {
        // SAFETY: as the caller promises.
        unsafe { alloc::dealloc(ptr.as_ptr(), layout(cap)) }
    }

    /// Free blocks by size class. (A mutex: the last slice of a chunk may
    /// be dropped on another thread than the endpoint's.)
    #[derive(Default)]
    pub(super) struct Shelves {
        free: Mutex<[Vec<Block>; CLASSES]>,
    }

    fn class(cap: usize) -> Option<usize> {
        if !cap.is_power_of_two() {
            return None;
        }
        let c = cap.trailing_zeros().checked_sub(MIN_SHIFT)? as usize;
        (c < CLASSES).then_some(c)
    }

    impl Shelves {
        pub(super) fn take(&self, cap: usize) -> Option<NonNull<u8>> {
            let c = class(cap)?;
            let mut p = self.free.lock().unwrap_or_else(|e| e.into_inner());
            p[c].pop().map(|b| b.0)
        }

        /// Keep a block of `cap` bytes; false when the caller must free it.
        pub(super) fn give(&self, ptr: NonNull<u8>, cap: usize) -> bool {
            let Some(c) = class(cap) else { return false };
            let mut p = self.free.lock().unwrap_or_else(|e| e.into_inner());
            if p[c].len() * cap >= KEEP_BYTES {
                return false;
            }
            p[c].push(Block(ptr));
            true
        }

        pub(super) fn kept_bytes(&self) -> usize {
            let p = self.free.lock().unwrap_or_else(|e| e.into_inner());
            p.iter().enumerate().map(|(c, v)| v.len() << (MIN_SHIFT as usize + c)).sum()
        }
    }

    impl Drop for Shelves {
        fn drop(&mut self) {
            let p = self.free.get_mut().unwrap_or_else(|e| e.into_inner());
            for (c, v) in p.iter_mut().enumerate() {
                for b in v.drain(..) {
                    // SAFETY: every kept block came from `alloc_block` of its
                    // class size and is owned by the shelves alone.
                    unsafe { free_block(b.0, 1 << (MIN_SHIFT as usize + c)) }
                }
            }
        }
    }
}

/// An immutable view of bytes in a chunk; cloning it shares the memory.
#[derive(Clone)]
pub struct Slice {
    chunk: Arc<Chunk>,
    off: usize,
    len: usize,
}

impl Deref for Slice {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: [off, off+len) lies within the chunk's allocation and was
        // initialized by the writer before this slice was made; nothing
        // writes there any more (module invariant).
        unsafe { std::slice::from_raw_parts(self.chunk.ptr.as_ptr().add(self.off), self.len) }
    }
}

impl AsRef<[u8]> for Slice {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for Slice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slice({} bytes at {}+{})", self.len, self.chunk.ptr.as_ptr() as usize, self.off)
    }
}

impl PartialEq for Slice {
    fn eq(&self, o: &Slice) -> bool {
        **self == **o
    }
}
impl Eq for Slice {}

impl Slice {
    /// A copy of `data` in a chunk of its own.
    pub fn copy_from(data: &[u8]) -> Slice {
        let mut w = Writer::new(data.len());
        w.append(data);
        w.slice(0, data.len())
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A sub-slice (`range` relative to this slice).
    ///
    /// # Panics
    /// If `range` is not within the slice.
    pub fn slice(&self, range: Range<usize>) -> Slice {
        assert!(range.start <= range.end && range.end <= self.len, "{range:?} out of a {}-byte slice", self.len);
        Slice { chunk: self.chunk.clone(), off: self.off + range.start, len: range.end - range.start }
    }

    /// Drop the first `n` bytes.
    pub fn advance(&mut self, n: usize) {
        assert!(n <= self.len);
        self.off += n;
        self.len -= n;
    }

    /// Keep the first `n` bytes.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Append `next` when it continues this slice in the same chunk (no copy).
    pub fn try_extend(&mut self, next: &Slice) -> bool {
        if Arc::ptr_eq(&self.chunk, &next.chunk) && self.off + self.len == next.off {
            self.len += next.len;
            true
        } else {
            false
        }
    }

    /// Whether `next` starts right where this slice ends, in the same memory.
    pub fn continues_into(&self, next: &Slice) -> bool {
        Arc::ptr_eq(&self.chunk, &next.chunk) && self.off + self.len == next.off
    }
}

/// The one writer of a chunk: appends after the bytes already published.
pub struct Writer {
    chunk: Arc<Chunk>,
    filled: usize,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Writer({}/{} bytes)", self.filled, self.chunk.cap)
    }
}

impl Writer {
    /// A new chunk of `cap` bytes, freed to the allocator in the end.
    pub fn new(cap: usize) -> Writer {
        Writer::pooled(cap, &Pool::none())
    }

    /// A new chunk of `cap` bytes from `pool` (and back to it in the end).
    pub fn pooled(cap: usize, pool: &Pool) -> Writer {
        Writer { chunk: Chunk::new(cap, pool), filled: 0 }
    }

    pub fn capacity(&self) -> usize {
        self.chunk.cap
    }
    /// Bytes written so far.
    pub fn filled(&self) -> usize {
        self.filled
    }
    /// Bytes that can still be written.
    pub fn room(&self) -> usize {
        self.chunk.cap - self.filled
    }

    /// Append as much of `data` as fits; returns the count.
    pub fn append(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.room());
        // SAFETY: [filled, filled+n) is inside the allocation and above every
        // published byte, so no `Slice` can read it; `&mut self` makes this
        // the only writer; `data` cannot overlap it (no `&[u8]` of it exists).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.chunk.ptr.as_ptr().add(self.filled), n) };
        self.filled += n;
        n
    }

    /// Let `f` write into the unwritten part (at most `max` bytes, zeroed
    /// first) and keep the first bytes it says it wrote.
    pub fn append_with(&mut self, max: usize, f: impl FnOnce(&mut [u8]) -> usize) -> usize {
        let n = max.min(self.room());
        // SAFETY: as in `append`: [filled, filled+n) is unpublished and ours
        // alone; it is initialized (zeroed) before a `&mut [u8]` is made.
        let spare = unsafe {
            let p = self.chunk.ptr.as_ptr().add(self.filled);
            std::ptr::write_bytes(p, 0, n);
            std::slice::from_raw_parts_mut(p, n)
        };
        let k = f(spare).min(n);
        self.filled += k;
        k
    }

    /// A slice of written bytes `[off, off+len)`.
    ///
    /// # Panics
    /// If the range goes beyond what was written.
    pub fn slice(&self, off: usize, len: usize) -> Slice {
        assert!(off + len <= self.filled, "{off}+{len} beyond {} written bytes", self.filled);
        Slice { chunk: self.chunk.clone(), off, len }
    }

    /// The written bytes `[off, off+len)`, borrowed.
    pub fn bytes(&self, off: usize, len: usize) -> &[u8] {
        assert!(off + len <= self.filled, "{off}+{len} beyond {} written bytes", self.filled);
        // SAFETY: written bytes, never rewritten while borrowed (`&self`).
        unsafe { std::slice::from_raw_parts(self.chunk.ptr.as_ptr().add(off), len) }
    }

    /// Start over from the front if no slice of the chunk is alive.
    pub fn reset(&mut self) -> bool {
        if Arc::get_mut(&mut self.chunk).is_some() {
            self.filled = 0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_share_and_outlive_the_writer() {
        let mut w = Writer::new(16);
        assert_eq!(w.append(b"hello "), 6);
        let a = w.slice(0, 5);
        assert_eq!(w.append(b"world, and more"), 10);
        assert_eq!(w.room(), 0);
        let mut b = w.slice(5, 6);
        assert!(!w.reset(), "slices are alive");
        drop(w);
        assert_eq!(&*a, b"hello");
        assert_eq!(&*b, b" world");
        let mut c = a.clone();
        assert!(c.try_extend(&b));
        assert_eq!(&*c, b"hello world");
        assert!(!b.try_extend(&a));
        b.advance(1);
        b.truncate(3);
        assert_eq!(&*b, b"wor");
        assert_eq!(&*c.slice(6..11), b"world");
        assert_eq!(Slice::copy_from(b"xyz"), Slice::copy_from(b"xyz"));
        assert!(Slice::copy_from(b"").is_empty());
    }

    #[test]
    fn reset_only_when_unique() {
        let mut w = Writer::new(8);
        w.append(b"abcd");
        let s = w.slice(1, 2);
        assert!(!w.reset());
        drop(s);
        assert!(w.reset());
        assert_eq!(w.filled(), 0);
        assert_eq!(
            w.append_with(100, |b| {
                b[..3].copy_from_slice(b"xyz");
                3
            }),
            3
        );
        assert_eq!(w.bytes(0, 3), b"xyz");
    }

    #[test]
    fn freed_chunks_go_back_to_their_pool_only() {
        let (a, b) = (Pool::new(), Pool::new());
        let w = Writer::pooled(1 << 14, &a);
        let s = w.slice(0, 0);
        drop(w);
        assert_eq!(a.kept_bytes(), 0, "a slice still holds the chunk");
        drop(s);
        assert_eq!((a.kept_bytes(), b.kept_bytes()), (1 << 14, 0));
        // Taken again from the shelf; odd sizes and unpooled writers are not kept.
        let w2 = Writer::pooled(1 << 14, &a);
        assert_eq!(a.kept_bytes(), 0);
        drop((w2, Writer::pooled(1000, &a), Writer::new(1 << 14)));
        assert_eq!(a.kept_bytes(), 1 << 14);
        assert_eq!(Pool::none().kept_bytes(), 0);
    }
}
