//! The bytes of a capture file, for the readers that parse it themselves
//! (classic pcap and pcapng): a regular file is mapped (mmap(2)) and read in
//! place; standard input, a pipe, or a file that cannot be mapped is read
//! through a buffer. A file that grows while it is read (a capture being
//! written) is read on past the end of its mapping.

use std::io::{Read, Seek};
use std::os::fd::AsRawFd;

/// Where the bytes come from.
pub(super) enum Input {
    File(std::fs::File),
    Stream(Box<dyn Read + Send>),
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Input::File(f) => f.read(buf),
            Input::Stream(s) => s.read(buf),
        }
    }
}

/// The readers' window on the file: `data()[pos..end]` are the bytes not yet
/// parsed. With a mapping, `data()` is the whole mapped file; without, a
/// buffer that [`ByteSource::fill`] refills.
pub(super) struct ByteSource {
    input: Input,
    map: Option<Mapping>,
    buf: Vec<u8>,
    pub(super) pos: usize,
    pub(super) end: usize,
    /// The file offset of `data()[0]`.
    base: u64,
    /// How far the prefetch got (see [`PREFETCH_AHEAD`]).
    fetched: usize,
    /// How far the mapping was faulted in (see [`POPULATE_WINDOW`]).
    populated: usize,
    eof: bool,
    /// The buffer's size when it is first needed: the largest record plus a
    /// block of read-ahead.
    buf_size: usize,
}

/// How much a buffered read asks for at once.
const BLOCK: usize = 1 << 20;

impl ByteSource {
    /// `largest` is the largest `need` the parser asks for in the common
    /// case (the buffer grows beyond it if a record needs more).
    pub(super) fn new(input: Input, largest: usize) -> ByteSource {
        let map = match &input {
            Input::File(f) => Mapping::new(f),
            Input::Stream(_) => None,
        };
        let end = map.as_ref().map_or(0, Mapping::len);
        ByteSource {
            input,
            map,
            buf: Vec::new(),
            pos: 0,
            end,
            base: 0,
            fetched: 0,
            populated: 0,
            eof: false,
            buf_size: BLOCK + largest,
        }
    }

    /// Whether the file is read in place.
    #[cfg(test)]
    pub(super) fn mapped(&self) -> bool {
        self.map.is_some()
    }

    /// The bytes `pos..end` index.
    #[inline(always)]
    pub(super) fn data(&self) -> &[u8] {
        match &self.map {
            Some(m) => m.bytes(),
            None => &self.buf,
        }
    }

    /// The file offset of `data()[at]` (for error messages).
    pub(super) fn offset(&self, at: usize) -> u64 {
        self.base.saturating_add(at as u64)
    }

    /// The bytes available at `pos`.
    #[inline(always)]
    pub(super) fn available(&self) -> usize {
        self.end - self.pos
    }

    /// Make `need` bytes available at `pos`; false if the file ends first
    /// (what there is stays available).
    #[inline(always)]
    pub(super) fn fill(&mut self, need: usize) -> std::io::Result<bool> {
        if self.end - self.pos >= need {
            return Ok(true);
        }
        self.refill(need)
    }

    /// [`Self::fill`] when the bytes are not there yet.
    #[inline(never)]
    fn refill(&mut self, need: usize) -> std::io::Result<bool> {
        if let Some(m) = self.map.take() {
            // The mapping is used up: go on reading the file where it ends,
            // with the partial record that is left.
            let rest = &m.bytes()[self.pos..self.end];
            self.buf = vec![0; self.buf_size.max(rest.len() + BLOCK)];
            self.buf[..rest.len()].copy_from_slice(rest);
            if let Input::File(f) = &mut self.input {
                f.seek(std::io::SeekFrom::Start(m.len() as u64))?;
            }
            self.base = self.base.saturating_add(self.pos as u64);
            self.pos = 0;
            self.end = rest.len();
        }
        if self.buf.len() < need {
            // A record larger than any before (the parser bounds `need`).
            self.buf.resize(need.max(self.buf_size), 0);
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.base = self.base.saturating_add(self.pos as u64);
        self.end -= self.pos;
        self.pos = 0;
        self.fetched = 0;
        while self.end < need && !self.eof {
            let upto = (self.end + BLOCK).max(need).min(self.buf.len());
            match self.input.read(&mut self.buf[self.end..upto]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end >= need)
    }

    /// Before reading a record at `pos`: fault in the mapping ahead of it
    /// and prefetch the next records into the cache.
    #[inline(always)]
    pub(super) fn prepare(&mut self) {
        let p = self.pos;
        if p + POPULATE_WINDOW / 2 >= self.populated {
            self.populate_ahead();
        }
        while self.fetched < p + PREFETCH_AHEAD {
            prefetch(self.data(), self.fetched);
            self.fetched += 64;
        }
    }

    /// Faults in the mapping's next window (see [`POPULATE_WINDOW`]).
    #[cold]
    fn populate_ahead(&mut self) {
        match &self.map {
            Some(m) if self.populated < m.len() => {
                let to = (self.pos + POPULATE_WINDOW).max(self.populated + POPULATE_WINDOW / 2);
                m.populate(self.populated, to);
                self.populated = to;
            }
            _ => self.populated = usize::MAX,
        }
    }
}

/// The mapping is faulted in by windows of this size, the next one when the
/// reader is half-way through the current: a few calls for a whole file,
/// without reading a file larger than memory in full before the first frame.
const POPULATE_WINDOW: usize = 32 << 20;

/// How far ahead of the record being read its successors are prefetched
/// into the cache: records are read once, in order, so every cache line of
/// the file is a miss unless it was asked for in time (a few records ahead).
const PREFETCH_AHEAD: usize = 2048;

/// Asks the CPU to bring `data[at]` into the cache (a hint; nothing when `at`
/// is out of bounds or the architecture has no prefetch instruction here).
#[inline(always)]
fn prefetch(data: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if at < data.len() {
        // SAFETY: a prefetch reads nothing architecturally and cannot fault;
        // the address is inside `data` anyway.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(data.as_ptr().add(at).cast());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, at);
}

/// A regular file mapped read-only (mmap(2), MAP_PRIVATE).
///
/// The file must not shrink while it is mapped (reading a page past its new
/// end raises SIGBUS), the usual condition of reading a file in place; a
/// capture being written only grows.
struct Mapping {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// `None` when the file is not a regular file, is empty, or cannot be
    /// mapped: the caller reads it instead.
    fn new(file: &std::fs::File) -> Option<Mapping> {
        let meta = file.metadata().ok()?;
        let len = usize::try_from(meta.len()).ok()?;
        if !meta.is_file() || len == 0 {
            return None;
        }
        // SAFETY: a fresh read-only private mapping of an open descriptor; no
        // Rust object aliases it.
        let p =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(Mapping { ptr: std::ptr::NonNull::new(p.cast())?, len })
    }

    /// Faults in `from..to` (clipped to the file) in one call, which costs
    /// less than a page fault every few frames; a hint, so a kernel without
    /// MADV_POPULATE_READ (before 5.14) still reads the file, page by page.
    fn populate(&self, from: usize, to: usize) {
        let to = to.min(self.len);
        if from >= to {
            return;
        }
        // SAFETY: advice on a range inside the mapping.
        unsafe {
            libc::madvise(self.ptr.as_ptr().add(from).cast(), to - from, libc::MADV_POPULATE_READ);
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `len` bytes are mapped readable for the life of `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

// SAFETY: the mapping is read-only memory owned by the value; sharing or
// moving it across threads is as safe as for a `Box<[u8]>`.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only gives out `&[u8]`.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the range mmap returned; no borrow of it
        // outlives `self` (`bytes` borrows `self`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}
