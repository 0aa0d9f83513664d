//! Capture I/O through libpcap (the `pcap` crate): pcap and pcapng files,
//! live interfaces, BPF filters and writing pcap files. Yields
//! `(FrameMeta, &[u8])` records for the pure decoders in [`crate::dissect`].
//!
//! Errors name the file or interface and say what is wrong with it.

use std::fmt;
use std::ops::ControlFlow;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use pcap::{Active, BpfProgram, Capture, Linktype, Offline, Precision};

use crate::dissect::packet::{FrameMeta, linktype};

/// What went wrong reading or writing a capture.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{file}: no such file")]
    NotFound { file: String },
    #[error("{file}: is a directory, not a capture file")]
    IsDirectory { file: String },
    #[error("{file}: cannot read: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{file}: not a capture file (pcap or pcapng): {reason}")]
    NotACapture { file: String, reason: String },
    /// The file ends inside its header or a record.
    #[error("{file}: truncated capture{}: {reason}", after_frame(*.frames))]
    Truncated { file: String, frames: u64, reason: String },
    #[error(
        "{file}: unsupported link type {linktype} ({name}); mptcp-dump reads Ethernet, Linux cooked (SLL, SLL2), raw IP and BSD loopback"
    )]
    UnsupportedLinkType { file: String, linktype: i32, name: String },
    #[error("{source_name}: bad filter expression `{expr}`: {reason}")]
    Filter { source_name: String, expr: String, reason: String },
    #[error("{iface}: cannot capture: {reason}")]
    Live { iface: String, reason: String },
    #[error("{file}: cannot write: {reason}")]
    Write { file: String, reason: String },
    #[error("{source_name}: read error after {frames} frames: {reason}")]
    Read { source_name: String, frames: u64, reason: String },
}

fn after_frame(frames: u64) -> String {
    if frames == 0 { String::new() } else { format!(" after frame {frames}") }
}

/// Where frames come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Interface(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Interface(i) => write!(f, "{i}"),
        }
    }
}

/// How to open a source.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// A BPF filter expression (tcpdump syntax).
    pub filter: Option<String>,
    /// Live capture: bytes kept per frame (default 262144, as tcpdump).
    pub snaplen: Option<i32>,
    /// Live capture: put the interface in promiscuous mode.
    pub promisc: bool,
    /// Read classic pcap files through libpcap too (by default they are read
    /// directly, which is faster and gives the same frames).
    pub libpcap_only: bool,
}

enum Handle {
    File(Capture<Offline>),
    /// Non-blocking: the reader waits in poll(2) itself, so that a quiet
    /// interface still lets a stop request through.
    Live(Capture<Active>),
    /// A classic pcap file read directly (libpcap opened and checked it).
    Records(Box<PcapRecords>, Capture<Offline>),
}

/// A source of frames. Frame numbers count every frame of the file (as
/// Wireshark numbers them), also the ones a filter skips.
pub struct CaptureReader {
    handle: Handle,
    name: String,
    linktype: u32,
    /// Applied here rather than in libpcap so that frame numbers stay file
    /// positions.
    filter: Option<BpfProgram>,
    frames: u64,
    buf: Vec<u8>,
}

impl fmt::Debug for CaptureReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureReader").field("name", &self.name).field("linktype", &self.linktype).finish()
    }
}

/// Classify a libpcap message about a file it could not open.
fn open_error(file: &str, msg: String) -> CaptureError {
    if msg.contains("truncated dump file") {
        CaptureError::Truncated { file: file.to_string(), frames: 0, reason: msg }
    } else if msg.contains("unknown file format")
        || msg.contains("bad dump file format")
        || msg.contains("pcapng")
        || msg.contains("version")
    {
        CaptureError::NotACapture { file: file.to_string(), reason: msg }
    } else {
        CaptureError::Unreadable { file: file.to_string(), reason: msg }
    }
}

fn pcap_msg(e: pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(s) => s,
        other => other.to_string(),
    }
}

impl CaptureReader {
    /// Open a pcap or pcapng file.
    pub fn open_file(path: &Path, opts: &OpenOptions) -> Result<CaptureReader, CaptureError> {
        let name = path.display().to_string();
        // `-` is standard input, as for tcpdump -r - (libpcap reads it).
        let stdin = path == Path::new("-");
        match std::fs::metadata(path) {
            _ if stdin => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CaptureError::NotFound { file: name }),
            Err(e) => return Err(CaptureError::Unreadable { file: name, reason: e.to_string() }),
            Ok(m) if m.is_dir() => return Err(CaptureError::IsDirectory { file: name }),
            Ok(m) if m.len() == 0 => {
                return Err(CaptureError::NotACapture { file: name, reason: "the file is empty".into() });
            }
            Ok(_) => {}
        }
        if path.to_str().is_none() {
            return Err(CaptureError::Unreadable { file: name, reason: "the path is not valid UTF-8".into() });
        }
        let cap =
            Capture::from_file_with_precision(path, Precision::Nano).map_err(|e| open_error(&name, pcap_msg(e)))?;
        let lt = cap.get_datalink().0;
        if lt < 0 || !linktype::supported(lt as u32) {
            return Err(CaptureError::UnsupportedLinkType { file: name, linktype: lt, name: linktype_name(lt) });
        }
        // Classic pcap files (the common case, and what tcpdump -w writes)
        // are read directly: libpcap's stdio path costs more per frame than
        // decoding it. pcapng and the rarer pcap variants stay with libpcap.
        let direct = if opts.libpcap_only || stdin { Ok(None) } else { PcapRecords::open(path) };
        let handle = match direct {
            Ok(Some(r)) => Handle::Records(Box::new(r), cap),
            Ok(None) => Handle::File(cap),
            Err(e) => return Err(CaptureError::Unreadable { file: name, reason: e.to_string() }),
        };
        let mut r = CaptureReader {
            handle,
            name,
            linktype: lt as u32,
            filter: None,
            frames: 0,
            buf: Vec::with_capacity(65_536),
        };
        r.set_filter(opts.filter.as_deref())?;
        Ok(r)
    }

    /// Start a live capture on an interface.
    pub fn open_live(iface: &str, opts: &OpenOptions) -> Result<CaptureReader, CaptureError> {
        let live = |e: pcap::Error| CaptureError::Live { iface: iface.to_string(), reason: pcap_msg(e) };
        let cap = Capture::from_device(iface)
            .map_err(live)?
            .promisc(opts.promisc)
            .snaplen(opts.snaplen.unwrap_or(262_144))
            .immediate_mode(true)
            .timeout(100)
            .precision(Precision::Nano)
            .open()
            .map_err(live)?;
        let lt = cap.get_datalink().0;
        if lt < 0 || !linktype::supported(lt as u32) {
            return Err(CaptureError::UnsupportedLinkType {
                file: iface.to_string(),
                linktype: lt,
                name: linktype_name(lt),
            });
        }
        let cap = cap.setnonblock().map_err(live)?;
        let mut r = CaptureReader {
            handle: Handle::Live(cap),
            name: iface.to_string(),
            linktype: lt as u32,
            filter: None,
            frames: 0,
            buf: Vec::with_capacity(65_536),
        };
        r.set_filter(opts.filter.as_deref())?;
        Ok(r)
    }

    /// Open a file or an interface.
    pub fn open(source: &Source, opts: &OpenOptions) -> Result<CaptureReader, CaptureError> {
        match source {
            Source::File(p) => CaptureReader::open_file(p, opts),
            Source::Interface(i) => CaptureReader::open_live(i, opts),
        }
    }

    fn set_filter(&mut self, expr: Option<&str>) -> Result<(), CaptureError> {
        let Some(expr) = expr.filter(|e| !e.trim().is_empty()) else { return Ok(()) };
        let err = |e: pcap::Error, name: &str| CaptureError::Filter {
            source_name: name.to_string(),
            expr: expr.to_string(),
            reason: pcap_msg(e),
        };
        match &mut self.handle {
            Handle::File(c) | Handle::Records(_, c) => {
                self.filter = Some(c.compile(expr, true).map_err(|e| err(e, &self.name))?)
            }
            // Live: let the kernel drop what does not match.
            Handle::Live(c) => c.filter(expr, true).map_err(|e| err(e, &self.name))?,
        }
        Ok(())
    }

    /// The source's name (file path or interface).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// Frames read so far (filtered-out ones included).
    pub fn frames_read(&self) -> u64 {
        self.frames
    }

    /// [`Self::next_frame`] for a classic pcap file read directly.
    fn next_record(&mut self) -> Result<Option<(FrameMeta, &[u8])>, CaptureError> {
        let Handle::Records(r, _) = &mut self.handle else { return Ok(None) };
        let filter = self.filter.as_ref();
        match r.next_matching(&mut self.frames, &|data| filter.is_none_or(|f| f.filter(data))) {
            Ok(Some((mut meta, range))) => {
                meta.linktype = self.linktype;
                Ok(Some((meta, &r.data()[range])))
            }
            Ok(None) => Ok(None),
            Err(reason) => Err(record_error(&self.name, self.frames, reason)),
        }
    }

    /// Hands every frame that passes the filter to `f`, in order, until `f`
    /// breaks or the source ends: the frames [`Self::next_frame`] returns,
    /// with a classic pcap file's records given to `f` where they lie
    /// (nothing per frame is returned through a `Result`).
    pub fn for_each_frame<F>(&mut self, stop: &dyn Fn() -> bool, mut f: F) -> Result<(), CaptureError>
    where
        F: FnMut(&FrameMeta, &[u8]) -> ControlFlow<()>,
    {
        if let Handle::Records(r, _) = &mut self.handle {
            let filter = self.filter.as_ref();
            let keep = |data: &[u8]| filter.is_none_or(|fl| fl.filter(data));
            loop {
                match r.next_matching(&mut self.frames, &keep) {
                    Ok(Some((mut meta, range))) => {
                        meta.linktype = self.linktype;
                        if f(&meta, &r.data()[range]).is_break() {
                            return Ok(());
                        }
                    }
                    Ok(None) => return Ok(()),
                    Err(reason) => return Err(record_error(&self.name, self.frames, reason)),
                }
            }
        }
        while let Some((meta, frame)) = self.next_frame(stop)? {
            if f(&meta, frame).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The next frame that passes the filter, or `None` at the end of a file.
    /// A live capture returns `Ok(None)` only when `stop` says so; it polls
    /// `stop` every 100 ms while the interface is quiet.
    pub fn next_frame(&mut self, stop: &dyn Fn() -> bool) -> Result<Option<(FrameMeta, &[u8])>, CaptureError> {
        if matches!(self.handle, Handle::Records(..)) {
            return self.next_record();
        }
        loop {
            if stop() {
                return Ok(None);
            }
            let res = match &mut self.handle {
                Handle::File(c) | Handle::Records(_, c) => c.next_packet(),
                Handle::Live(c) => c.next_packet(),
            };
            match res {
                Ok(p) => {
                    self.frames += 1;
                    if let Some(f) = &self.filter
                        && !f.filter(p.data)
                    {
                        continue;
                    }
                    let meta = FrameMeta {
                        number: self.frames,
                        ts_sec: p.header.ts.tv_sec,
                        ts_nsec: p.header.ts.tv_usec.clamp(0, 999_999_999) as u32,
                        caplen: p.header.caplen,
                        len: p.header.len,
                        linktype: self.linktype,
                    };
                    // Copy out of libpcap's buffer: returning the borrow from
                    // inside this loop is what the borrow checker cannot
                    // follow, and one memcpy per frame is cheap.
                    self.buf.clear();
                    self.buf.extend_from_slice(p.data);
                    return Ok(Some((meta, &self.buf)));
                }
                Err(pcap::Error::NoMorePackets) => return Ok(None),
                Err(pcap::Error::TimeoutExpired) => {
                    if let Handle::Live(c) = &self.handle {
                        wait_readable(c.as_raw_fd(), 100);
                    }
                    continue;
                }
                Err(e) => {
                    let msg = pcap_msg(e);
                    return Err(if msg.contains("truncated dump file") {
                        CaptureError::Truncated { file: self.name.clone(), frames: self.frames, reason: msg }
                    } else {
                        CaptureError::Read { source_name: self.name.clone(), frames: self.frames, reason: msg }
                    });
                }
            }
        }
    }
}

/// A direct read's error, after `frames` frames of `name`.
fn record_error(name: &str, frames: u64, reason: String) -> CaptureError {
    if reason.contains("truncated dump file") {
        CaptureError::Truncated { file: name.to_string(), frames, reason }
    } else {
        CaptureError::Read { source_name: name.to_string(), frames, reason }
    }
}

/// Wait up to `ms` milliseconds for a live capture's descriptor to become
/// readable; a signal ends the wait early (the caller then checks its stop
/// flag).
fn wait_readable(fd: std::os::fd::RawFd, ms: i32) {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe {
        libc::poll(&mut p, 1, ms);
    }
}

/// The largest snapshot length libpcap accepts (MAXIMUM_SNAPLEN).
const MAX_SNAPLEN: u32 = 262_144;

/// A classic pcap file (the libpcap format: a 24-byte header, then a 16-byte
/// header per record). It follows libpcap's rules: a record longer than the
/// file's snapshot length is cut to it, a capture length beyond 262144 is an
/// error, a file that ends inside a record is a truncated dump file.
///
/// A regular file is mapped into memory and its frames are handed out in
/// place (no copy through read(2), which cost as much as decoding them);
/// what the file gains after it was opened (a capture still being written),
/// and files that cannot be mapped (pipes, special files), are read in large
/// blocks.
struct PcapRecords {
    file: std::fs::File,
    /// The file as it was when opened, while records remain in it.
    map: Option<Mapping>,
    /// The block buffer once the mapping is used up (or without one).
    buf: Vec<u8>,
    /// Parse position and end of valid data in the mapping or `buf`.
    pos: usize,
    end: usize,
    /// Where the cache lines prefetched so far end.
    fetched: usize,
    /// Where the pages of the mapping faulted in so far end.
    populated: usize,
    eof: bool,
    swapped: bool,
    nanos: bool,
    snaplen: u32,
}

impl PcapRecords {
    const BLOCK: usize = 1 << 20;

    /// `None` when the file is not a classic pcap with one of the four
    /// standard magic numbers.
    fn open(path: &Path) -> std::io::Result<Option<PcapRecords>> {
        use std::io::Read;
        let mut file = std::fs::File::open(path)?;
        let mut h = [0u8; 24];
        if file.read_exact(&mut h).is_err() {
            return Ok(None);
        }
        let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let (swapped, nanos) = match magic {
            0xa1b2_c3d4 => (false, false),
            0xd4c3_b2a1 => (true, false),
            0xa1b2_3c4d => (false, true),
            0x4d3c_b2a1 => (true, true),
            _ => return Ok(None),
        };
        let rd = |b: [u8; 4]| if swapped { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) };
        let snap = rd([h[16], h[17], h[18], h[19]]);
        let snaplen = if snap == 0 || snap > MAX_SNAPLEN { MAX_SNAPLEN } else { snap };
        let map = Mapping::new(&file);
        let (pos, end) = match &map {
            Some(m) => (24, m.len()),
            None => (0, 0),
        };
        Ok(Some(PcapRecords {
            file,
            map,
            buf: Vec::new(),
            pos,
            end,
            fetched: 0,
            populated: 0,
            eof: false,
            swapped,
            nanos,
            snaplen,
        }))
    }

    /// The bytes `pos..end` index.
    fn data(&self) -> &[u8] {
        match &self.map {
            Some(m) => m.bytes(),
            None => &self.buf,
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

    /// Make `need` bytes available at `pos`; false if the file ends first.
    #[inline(always)]
    fn fill(&mut self, need: usize) -> Result<bool, String> {
        if self.end - self.pos >= need {
            return Ok(true);
        }
        self.refill(need)
    }

    /// [`Self::fill`] when the bytes are not there yet.
    #[inline(never)]
    fn refill(&mut self, need: usize) -> Result<bool, String> {
        use std::io::{Read, Seek};
        if self.buf.is_empty() {
            self.buf = vec![0; Self::BLOCK + 16 + MAX_SNAPLEN as usize];
        }
        if let Some(m) = self.map.take() {
            // The mapping is used up: go on reading the file where it ends,
            // with the partial record that is left.
            let rest = &m.bytes()[self.pos..self.end];
            self.buf[..rest.len()].copy_from_slice(rest);
            self.file.seek(std::io::SeekFrom::Start(m.len() as u64)).map_err(|e| e.to_string())?;
            self.pos = 0;
            self.end = rest.len();
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        self.fetched = 0;
        while self.end < need && !self.eof {
            let upto = (self.end + Self::BLOCK).max(need).min(self.buf.len());
            match self.file.read(&mut self.buf[self.end..upto]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(self.end >= need)
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b: [u8; 4] = self.data()[at..at + 4].try_into().expect("4 bytes");
        if self.swapped { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    }

    /// The next record that `keep` accepts: its metadata (all but the link
    /// type) and where its bytes are in [`Self::data`]. `frames` counts
    /// every record.
    #[inline(always)]
    fn next_matching(
        &mut self,
        frames: &mut u64,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Option<(FrameMeta, std::ops::Range<usize>)>, String> {
        loop {
            if !self.fill(16)? {
                if self.end == self.pos {
                    return Ok(None);
                }
                return Err(format!(
                    "truncated dump file; tried to read 16 header bytes, only got {}",
                    self.end - self.pos
                ));
            }
            let p = self.pos;
            if p + POPULATE_WINDOW / 2 >= self.populated {
                self.populate_ahead();
            }
            while self.fetched < p + PREFETCH_AHEAD {
                prefetch(self.data(), self.fetched);
                self.fetched += 64;
            }
            let (sec, frac, caplen, len) =
                (self.u32_at(p), self.u32_at(p + 4), self.u32_at(p + 8), self.u32_at(p + 12));
            if caplen > MAX_SNAPLEN {
                return Err(format!("invalid packet capture length {caplen}, bigger than maximum of {MAX_SNAPLEN}"));
            }
            if !self.fill(16 + caplen as usize)? {
                return Err(format!(
                    "truncated dump file; tried to read {caplen} captured bytes, only got {}",
                    self.end - self.pos - 16
                ));
            }
            let start = self.pos + 16;
            self.pos = start + caplen as usize;
            *frames += 1;
            // libpcap hands out at most the file's snapshot length.
            let kept = caplen.min(self.snaplen);
            let range = start..start + kept as usize;
            if !keep(&self.data()[range.clone()]) {
                continue;
            }
            let meta = FrameMeta {
                number: *frames,
                ts_sec: sec as i64,
                ts_nsec: if self.nanos { frac.min(999_999_999) } else { frac.min(999_999) * 1000 },
                caplen: kept,
                len,
                linktype: 0,
            };
            return Ok(Some((meta, range)));
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

fn linktype_name(lt: i32) -> String {
    let known = linktype::name(lt.max(0) as u32);
    if known != "unsupported" {
        return known.to_string();
    }
    Linktype(lt).get_name().unwrap_or_else(|_| "unknown".to_string())
}

/// Writes frames to a classic pcap file (microsecond timestamps, snapshot
/// length 262144), as `tcpdump -w` does. The format is the documented
/// libpcap one (a 24-byte file header, a 16-byte header per record), written
/// here directly so that the snapshot length is tcpdump's and not
/// `pcap_open_dead`'s 65535.
pub struct CaptureWriter {
    file: String,
    out: std::io::BufWriter<std::fs::File>,
}

impl fmt::Debug for CaptureWriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureWriter").field("file", &self.file).finish()
    }
}

/// The snapshot length written into the file header.
pub const WRITE_SNAPLEN: u32 = 262_144;

impl CaptureWriter {
    pub fn create(path: &Path, linktype: u32) -> Result<CaptureWriter, CaptureError> {
        use std::io::Write;
        let file = path.display().to_string();
        let werr = |e: std::io::Error| CaptureError::Write { file: file.clone(), reason: e.to_string() };
        let f = std::fs::File::create(path).map_err(werr)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, f);
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&WRITE_SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&linktype.to_le_bytes());
        out.write_all(&h).map_err(werr)?;
        Ok(CaptureWriter { file, out })
    }

    pub fn write(&mut self, meta: &FrameMeta, data: &[u8]) -> Result<(), CaptureError> {
        use std::io::Write;
        let data = &data[..data.len().min(WRITE_SNAPLEN as usize)];
        let mut r = [0u8; 16];
        r[0..4].copy_from_slice(&(meta.ts_sec as u32).to_le_bytes());
        r[4..8].copy_from_slice(&(meta.ts_nsec / 1000).to_le_bytes());
        r[8..12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        r[12..16].copy_from_slice(&meta.len.max(data.len() as u32).to_le_bytes());
        self.out
            .write_all(&r)
            .and_then(|_| self.out.write_all(data))
            .map_err(|e| CaptureError::Write { file: self.file.clone(), reason: e.to_string() })
    }

    pub fn flush(&mut self) -> Result<(), CaptureError> {
        use std::io::Write;
        self.out.flush().map_err(|e| CaptureError::Write { file: self.file.clone(), reason: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A classic little-endian microsecond pcap: the file header, then
    /// records of the given bytes (raw IP link type).
    fn header() -> Vec<u8> {
        let mut h = vec![0u8; 24];
        h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&65535u32.to_le_bytes());
        h[20..24].copy_from_slice(&(linktype::RAW).to_le_bytes());
        h
    }

    fn record(i: u8, len: usize) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&(1000 + i as u32).to_le_bytes());
        r.extend_from_slice(&(i as u32).to_le_bytes());
        r.extend_from_slice(&(len as u32).to_le_bytes());
        r.extend_from_slice(&(len as u32).to_le_bytes());
        r.extend((0..len).map(|k| i.wrapping_mul(31).wrapping_add(k as u8)));
        r
    }

    fn read_all(r: &mut PcapRecords) -> Vec<(u64, i64, Vec<u8>)> {
        let mut frames = 0;
        let mut out = Vec::new();
        while let Some((meta, range)) = r.next_matching(&mut frames, &|_| true).unwrap() {
            out.push((meta.number, meta.ts_sec, r.data()[range].to_vec()));
        }
        out
    }

    #[test]
    fn mapped_file_gives_every_record_and_what_it_gains_after_opening() {
        let recs: Vec<Vec<u8>> = (0..5u8).map(|i| record(i, 40 + 7 * i as usize)).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing.pcap");
        // Opened while the third record is half written.
        let mut first = header();
        first.extend_from_slice(&recs[0]);
        first.extend_from_slice(&recs[1]);
        let half = recs[2].len() / 2;
        first.extend_from_slice(&recs[2][..half]);
        std::fs::write(&path, &first).unwrap();
        let mut r = PcapRecords::open(&path).unwrap().expect("a classic pcap");
        assert!(r.map.is_some(), "a regular file is mapped");
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&recs[2][half..]).unwrap();
        f.write_all(&recs[3]).unwrap();
        f.write_all(&recs[4]).unwrap();
        drop(f);
        let got = read_all(&mut r);
        assert_eq!(got.len(), 5);
        for (i, (n, ts, data)) in got.iter().enumerate() {
            assert_eq!((*n, *ts), (i as u64 + 1, 1000 + i as i64));
            assert_eq!(data[..], recs[i][16..]);
        }
    }

    #[test]
    fn truncated_record_in_a_mapped_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.pcap");
        let mut bytes = header();
        bytes.extend_from_slice(&record(0, 60));
        bytes.extend_from_slice(&record(1, 60)[..30]);
        std::fs::write(&path, &bytes).unwrap();
        let mut r = PcapRecords::open(&path).unwrap().unwrap();
        let mut frames = 0;
        assert!(r.next_matching(&mut frames, &|_| true).unwrap().is_some());
        let e = r.next_matching(&mut frames, &|_| true).unwrap_err();
        assert!(e.contains("truncated dump file"), "{e}");
        assert_eq!(frames, 1);
    }
}
