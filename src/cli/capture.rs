//! Capture I/O through libpcap (the `pcap` crate): pcap and pcapng files,
//! live interfaces, BPF filters and writing pcap files. Yields
//! `(FrameMeta, &[u8])` records for the pure decoders in [`crate::dissect`].
//!
//! Errors name the file or interface and say what is wrong with it.

use std::fmt;
use std::path::{Path, PathBuf};

use pcap::{Activated, BpfProgram, Capture, Linktype, Offline, Precision};

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
}

enum Handle {
    File(Capture<Offline>),
    Live(Capture<dyn Activated>),
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
        match std::fs::metadata(path) {
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
        let mut r = CaptureReader {
            handle: Handle::File(cap),
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
        let cap: Capture<dyn Activated> = cap.into();
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
            Handle::File(c) => self.filter = Some(c.compile(expr, true).map_err(|e| err(e, &self.name))?),
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

    /// The next frame that passes the filter, or `None` at the end of a file.
    /// A live capture returns `Ok(None)` only when `stop` says so; it polls
    /// `stop` every 100 ms while the interface is quiet.
    pub fn next_frame(&mut self, stop: &dyn Fn() -> bool) -> Result<Option<(FrameMeta, &[u8])>, CaptureError> {
        loop {
            if stop() {
                return Ok(None);
            }
            let res = match &mut self.handle {
                Handle::File(c) => c.next_packet(),
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
                Err(pcap::Error::TimeoutExpired) => continue,
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
