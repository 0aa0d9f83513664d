//! [`CaptureReader`]: frames from a capture file, standard input or a live
//! interface, through an optional BPF filter.
//!
//! Classic pcap and pcapng files are read in place by this crate's own
//! readers (a mapped file, or a buffer for standard input and pipes), which
//! know what libpcap cannot say (that a pcapng Simple Packet Block has no
//! time) and check every length before reading behind it. Other formats
//! libpcap reads (the rare pcap variants) go through libpcap, as does
//! everything with [`OpenOptions::libpcap_only`]; live capture is libpcap's
//! (see [`super::live`]).

use std::fmt;
use std::ops::{ControlFlow, Range};
use std::path::{Path, PathBuf};

use pcap::{Active, BpfProgram, Capture, Linktype, Offline, Precision};

use super::bytes::{ByteSource, Input};
use super::classic::{self, ClassicRecords, HeaderError, MAX_SNAPLEN};
use super::pcapng::{self, PcapngRecords};
use super::{CaptureError, dlt, linktype_name, live, pcap_msg};
use crate::dissect::packet::{FrameMeta, Timestamp, linktype};

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
    /// Read files through libpcap, as it gives them (to compare the readers;
    /// libpcap gives a pcapng Simple Packet Block the time 0).
    pub libpcap_only: bool,
}

enum Handle {
    /// A classic pcap file read in place.
    Classic(Box<ClassicRecords>),
    /// A pcapng file read in place.
    Pcapng(Box<PcapngRecords>),
    /// A file libpcap reads.
    Libpcap(Capture<Offline>),
    /// Non-blocking: the reader waits in poll(2) itself.
    Live(Capture<Active>),
}

/// What [`CaptureReader::try_next_frame`] found.
#[derive(Debug)]
pub enum Polled<'a> {
    Frame(FrameMeta, &'a [u8]),
    /// A live capture has nothing queued now.
    Quiet,
    /// The end of a file.
    End,
}

/// One step of a reader: where the frame's bytes are.
enum Got {
    Frame(FrameMeta, Loc),
    Quiet,
    End,
}

enum Loc {
    /// In the in-place reader's data.
    Direct(Range<usize>),
    /// Copied into the reader's buffer (from libpcap's).
    Buf,
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

/// The pcapng block type of a Section Header Block, the file's first bytes.
const PCAPNG_MAGIC: u32 = 0x0a0d_0d0a;

impl CaptureReader {
    /// Open a pcap or pcapng file; `-` is standard input (as tcpdump -r -).
    pub fn open_file(path: &Path, opts: &OpenOptions) -> Result<CaptureReader, CaptureError> {
        let name = path.display().to_string();
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
        let handle =
            if opts.libpcap_only { Handle::Libpcap(libpcap_file(path, &name)?) } else { direct(path, &name, stdin)? };
        CaptureReader::with_handle(handle, name, opts)
    }

    /// Read a capture (pcap or pcapng) from any byte stream, with our own
    /// readers only: what the fuzz targets and in-memory tests use.
    pub fn from_reader(
        name: &str,
        input: Box<dyn std::io::Read + Send>,
        opts: &OpenOptions,
    ) -> Result<CaptureReader, CaptureError> {
        let handle = direct_input(Input::Stream(input), None, name)?;
        CaptureReader::with_handle(handle, name.to_string(), opts)
    }

    fn with_handle(handle: Handle, name: String, opts: &OpenOptions) -> Result<CaptureReader, CaptureError> {
        let linktype = match &handle {
            Handle::Classic(r) => r.linktype(),
            Handle::Pcapng(r) => r.linktype(),
            Handle::Libpcap(c) => c.get_datalink().0 as u32,
            Handle::Live(_) => 0,
        };
        let lt = linktype as i32;
        if lt < 0 || !linktype::supported(linktype) {
            return Err(CaptureError::UnsupportedLinkType { file: name, linktype: lt, name: linktype_name(lt) });
        }
        let mut r = CaptureReader { handle, name, linktype, filter: None, frames: 0, buf: Vec::with_capacity(65_536) };
        r.set_filter(opts.filter.as_deref())?;
        Ok(r)
    }

    /// Start a live capture on an interface.
    pub fn open_live(iface: &str, opts: &OpenOptions) -> Result<CaptureReader, CaptureError> {
        let expr = opts.filter.as_deref().filter(|e| !e.trim().is_empty());
        let (cap, linktype) = live::open(iface, opts.snaplen, opts.promisc, expr)?;
        Ok(CaptureReader {
            handle: Handle::Live(cap),
            name: iface.to_string(),
            linktype,
            filter: None,
            frames: 0,
            buf: Vec::with_capacity(65_536),
        })
    }

    /// Open a file or an interface.
    pub fn open(source: &Source, opts: &OpenOptions) -> Result<CaptureReader, CaptureError> {
        match source {
            Source::File(p) => CaptureReader::open_file(p, opts),
            Source::Interface(i) => CaptureReader::open_live(i, opts),
        }
    }

    /// Compile a file's filter (a live one is in the kernel already).
    fn set_filter(&mut self, expr: Option<&str>) -> Result<(), CaptureError> {
        let Some(expr) = expr.filter(|e| !e.trim().is_empty()) else { return Ok(()) };
        let err = |e: pcap::Error| CaptureError::Filter {
            source_name: self.name.clone(),
            expr: expr.to_string(),
            reason: pcap_msg(e),
        };
        let prog = match &self.handle {
            Handle::Libpcap(c) => c.compile(expr, true).map_err(err)?,
            Handle::Classic(_) | Handle::Pcapng(_) => {
                let dead =
                    Capture::dead_with_precision(Linktype(self.linktype as i32), Precision::Nano).map_err(err)?;
                dead.compile(expr, true).map_err(err)?
            }
            Handle::Live(_) => return Ok(()),
        };
        self.filter = Some(prog);
        Ok(())
    }

    /// The source's name (file path or interface).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The link type (libpcap's DLT_ number).
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    pub fn is_live(&self) -> bool {
        matches!(self.handle, Handle::Live(_))
    }

    /// Frames read so far (filtered-out ones included).
    pub fn frames_read(&self) -> u64 {
        self.frames
    }

    /// Read one frame (or learn there is none now).
    fn step(&mut self) -> Result<Got, CaptureError> {
        let filter = self.filter.as_ref();
        let keep = |data: &[u8]| filter.is_none_or(|f| f.filter(data));
        match &mut self.handle {
            Handle::Classic(r) => {
                return match r.next_matching(&mut self.frames, &keep) {
                    Ok(Some((meta, range))) => Ok(Got::Frame(meta, Loc::Direct(range))),
                    Ok(None) => Ok(Got::End),
                    Err(reason) => Err(record_error(&self.name, self.frames, reason)),
                };
            }
            Handle::Pcapng(r) => {
                return match r.next_matching(&mut self.frames, &keep) {
                    Ok(Some((meta, range))) => Ok(Got::Frame(meta, Loc::Direct(range))),
                    Ok(None) => Ok(Got::End),
                    Err(e) => Err(pcapng_error(&self.name, self.frames, e)),
                };
            }
            Handle::Libpcap(_) | Handle::Live(_) => {}
        }
        let live = self.is_live();
        loop {
            let res = match &mut self.handle {
                Handle::Libpcap(c) => c.next_packet(),
                Handle::Live(c) => c.next_packet(),
                Handle::Classic(_) | Handle::Pcapng(_) => return Ok(Got::End),
            };
            match res {
                Ok(p) => {
                    self.frames += 1;
                    if !keep(p.data) {
                        // Counted; a file reads on, a live capture says what
                        // it has now.
                        if live {
                            return Ok(Got::Quiet);
                        }
                        continue;
                    }
                    let meta = FrameMeta {
                        number: self.frames,
                        // Opened with nanosecond precision: tv_usec holds nanoseconds.
                        ts: Some(Timestamp::new(p.header.ts.tv_sec, p.header.ts.tv_usec.clamp(0, 999_999_999) as u32)),
                        caplen: p.header.caplen,
                        len: p.header.len,
                        linktype: self.linktype,
                    };
                    // Copy out of libpcap's buffer: returning the borrow
                    // through the callers' loops is what the borrow checker
                    // cannot follow, and one memcpy per frame is cheap.
                    self.buf.clear();
                    self.buf.extend_from_slice(p.data);
                    return Ok(Got::Frame(meta, Loc::Buf));
                }
                Err(pcap::Error::NoMorePackets) => return Ok(Got::End),
                Err(pcap::Error::TimeoutExpired) => return Ok(Got::Quiet),
                Err(e) => return Err(record_error(&self.name, self.frames, pcap_msg(e))),
            }
        }
    }

    fn bytes(&self, loc: Loc) -> &[u8] {
        match (loc, &self.handle) {
            (Loc::Direct(r), Handle::Classic(c)) => &c.data()[r],
            (Loc::Direct(r), Handle::Pcapng(c)) => &c.data()[r],
            _ => &self.buf,
        }
    }

    /// The next frame that passes the filter, without waiting: a live
    /// capture may have none now.
    pub fn try_next_frame(&mut self) -> Result<Polled<'_>, CaptureError> {
        Ok(match self.step()? {
            Got::Frame(meta, loc) => Polled::Frame(meta, self.bytes(loc)),
            Got::Quiet => Polled::Quiet,
            Got::End => Polled::End,
        })
    }

    /// The next frame that passes the filter, or `None` at the end of a file.
    /// A live capture returns `Ok(None)` only when `stop` says so; it polls
    /// `stop` every 100 ms while the interface is quiet.
    pub fn next_frame(&mut self, stop: &dyn Fn() -> bool) -> Result<Option<(FrameMeta, &[u8])>, CaptureError> {
        loop {
            if stop() {
                return Ok(None);
            }
            match self.step()? {
                Got::Frame(meta, loc) => return Ok(Some((meta, self.bytes(loc)))),
                Got::Quiet => {
                    if let Handle::Live(c) = &self.handle {
                        live::wait_readable(c, 100);
                    }
                }
                Got::End => return Ok(None),
            }
        }
    }

    /// Hands every frame that passes the filter to `f`, in order, until `f`
    /// breaks or the source ends: the frames [`Self::next_frame`] returns,
    /// with a file read in place given to `f` where its records lie (nothing
    /// per frame is returned through a `Result`).
    pub fn for_each_frame<F>(&mut self, stop: &dyn Fn() -> bool, mut f: F) -> Result<(), CaptureError>
    where
        F: FnMut(&FrameMeta, &[u8]) -> ControlFlow<()>,
    {
        let filter = self.filter.as_ref();
        let keep = |data: &[u8]| filter.is_none_or(|fl| fl.filter(data));
        match &mut self.handle {
            Handle::Classic(r) => loop {
                match r.next_matching(&mut self.frames, &keep) {
                    Ok(Some((meta, range))) => {
                        if f(&meta, &r.data()[range]).is_break() {
                            return Ok(());
                        }
                    }
                    Ok(None) => return Ok(()),
                    Err(reason) => return Err(record_error(&self.name, self.frames, reason)),
                }
            },
            Handle::Pcapng(r) => loop {
                match r.next_matching(&mut self.frames, &keep) {
                    Ok(Some((meta, range))) => {
                        if f(&meta, &r.data()[range]).is_break() {
                            return Ok(());
                        }
                    }
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(pcapng_error(&self.name, self.frames, e)),
                }
            },
            Handle::Libpcap(_) | Handle::Live(_) => {}
        }
        while let Some((meta, frame)) = self.next_frame(stop)? {
            if f(&meta, frame).is_break() {
                break;
            }
        }
        Ok(())
    }
}

/// Open a file through libpcap.
fn libpcap_file(path: &Path, name: &str) -> Result<Capture<Offline>, CaptureError> {
    Capture::from_file_with_precision(path, Precision::Nano).map_err(|e| open_error(name, pcap_msg(e)))
}

/// Open a file with this crate's readers, or libpcap for a format they
/// leave to it (a regular file only: standard input cannot be read twice).
fn direct(path: &Path, name: &str, stdin: bool) -> Result<Handle, CaptureError> {
    if stdin {
        return direct_input(Input::Stream(Box::new(std::io::stdin())), None, name);
    }
    let file =
        std::fs::File::open(path).map_err(|e| CaptureError::Unreadable { file: name.into(), reason: e.to_string() })?;
    direct_input(Input::File(file), Some(path), name)
}

/// Read `input` with our own readers; a file (`path`) that they do not take
/// goes to libpcap, a stream (no path) is refused.
fn direct_input(input: Input, path: Option<&Path>, name: &str) -> Result<Handle, CaptureError> {
    let stdin = path.is_none();
    let unreadable = |e: std::io::Error| CaptureError::Unreadable { file: name.into(), reason: e.to_string() };
    let mut src = ByteSource::new(input, 16 + MAX_SNAPLEN as usize);
    let libpcap = || libpcap_file(path.expect("only files go to libpcap"), name).map(Handle::Libpcap);
    if !src.fill(4).map_err(unreadable)? {
        if !stdin {
            return libpcap();
        }
        let got = src.available();
        return Err(if got == 0 {
            CaptureError::NotACapture { file: name.into(), reason: "the input is empty".into() }
        } else {
            CaptureError::Truncated {
                file: name.into(),
                frames: 0,
                reason: format!("truncated dump file; tried to read 4 file header bytes, only got {got}"),
            }
        });
    }
    let at = src.pos;
    let magic = u32::from_le_bytes(src.data()[at..at + 4].try_into().expect("4 bytes"));
    if magic == PCAPNG_MAGIC {
        return match PcapngRecords::open(src) {
            Ok(r) => Ok(Handle::Pcapng(Box::new(r))),
            Err(e) => Err(pcapng_error(name, 0, e)),
        };
    }
    if classic::magic(magic).is_some() {
        return match classic::header(&mut src) {
            Ok(h) => {
                let lt = dlt(h.linktype);
                Ok(Handle::Classic(Box::new(ClassicRecords::new(src, &h, lt))))
            }
            Err(HeaderError::Version(reason)) => Err(CaptureError::NotACapture { file: name.into(), reason }),
            Err(HeaderError::Short(_) | HeaderError::NotClassic) if !stdin => libpcap(),
            Err(HeaderError::Short(got)) => Err(CaptureError::Truncated {
                file: name.into(),
                frames: 0,
                reason: format!("truncated dump file; tried to read 24 file header bytes, only got {got}"),
            }),
            Err(HeaderError::NotClassic) => {
                Err(CaptureError::NotACapture { file: name.into(), reason: "unknown file format".into() })
            }
        };
    }
    if stdin {
        return Err(CaptureError::NotACapture { file: name.into(), reason: "unknown file format".into() });
    }
    libpcap()
}

/// A classic reader's error (libpcap's words), after `frames` frames.
fn record_error(name: &str, frames: u64, reason: String) -> CaptureError {
    if reason.contains("truncated dump file") {
        CaptureError::Truncated { file: name.to_string(), frames, reason }
    } else {
        CaptureError::Read { source_name: name.to_string(), frames, reason }
    }
}

fn pcapng_error(name: &str, frames: u64, e: pcapng::ReadError) -> CaptureError {
    let file = name.to_string();
    match e {
        pcapng::ReadError::Truncated(reason) => CaptureError::Truncated { file, frames, reason },
        pcapng::ReadError::Format { offset, error } => CaptureError::Format { file, frames, offset, error },
        pcapng::ReadError::Io(e) => CaptureError::Read { source_name: file, frames, reason: e.to_string() },
    }
}
