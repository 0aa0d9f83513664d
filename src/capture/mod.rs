//! The one capture room: every frame the tools read from a capture file or
//! an interface, and every pcap file they write, goes through here.
//!
//! - [`reader`]: [`CaptureReader`], frames from a file (classic pcap and
//!   pcapng read in place, libpcap for the rest), standard input or a live
//!   interface, through an optional BPF filter; `(FrameMeta, &[u8])` for
//!   the pure decoders in [`crate::dissect`].
//! - [`live`]: the live-capture handle the reader uses.
//! - [`writer`]: [`PcapWriter`], the one classic pcap writer (`mptcp-dump
//!   -w`, the simulator's `--pcap`, the TUN driver's tap).
//!
//! Errors are one [`CaptureError`] that names the file or interface and
//! says what is wrong with it.

mod bytes;
mod classic;
pub mod live;
mod pcapng;
pub mod reader;
pub mod writer;

pub use reader::{CaptureReader, OpenOptions, Polled, Source};
pub use writer::PcapWriter;

use crate::dissect::packet::linktype;

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
    /// A pcapng block that breaks the format.
    #[error("{file}: malformed pcapng{}: block at byte {offset}: {error}", after_frame(*.frames))]
    Format {
        file: String,
        frames: u64,
        offset: u64,
        #[source]
        error: FormatError,
    },
    #[error(
        "{file}: unsupported link type {linktype} ({name}); mptcp-dump reads Ethernet, Linux cooked (SLL, SLL2), raw IP and BSD loopback"
    )]
    UnsupportedLinkType { file: String, linktype: i32, name: String },
    #[error("{source_name}: bad filter expression `{expr}`: {reason}")]
    Filter { source_name: String, expr: String, reason: String },
    #[error("{iface}: cannot capture: {reason}")]
    Live { iface: String, reason: String },
    #[error("{file}: cannot write: {source}")]
    Write {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{source_name}: read error after {frames} frames: {reason}")]
    Read { source_name: String, frames: u64, reason: String },
}

impl CaptureError {
    /// Frames read before the error, for an error met while reading (0 for
    /// one met when opening).
    pub fn frames(&self) -> u64 {
        match self {
            CaptureError::Truncated { frames, .. }
            | CaptureError::Format { frames, .. }
            | CaptureError::Read { frames, .. } => *frames,
            _ => 0,
        }
    }
}

impl From<CaptureError> for std::io::Error {
    /// A write error as the I/O error it carries; any other as "other".
    fn from(e: CaptureError) -> std::io::Error {
        match e {
            CaptureError::Write { source, .. } => source,
            other => std::io::Error::other(other),
        }
    }
}

fn after_frame(frames: u64) -> String {
    if frames == 0 { String::new() } else { format!(" after frame {frames}") }
}

/// How a pcapng block breaks the format (draft-ietf-opsawg-pcapng).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the file does not start with a section header block")]
    NoSectionHeader,
    #[error("no interface description block before the first packet")]
    NoInterface,
    #[error("bad byte-order magic {magic:#010x} in the section header")]
    ByteOrderMagic { magic: u32 },
    #[error("unsupported pcapng version {major}.{minor}")]
    Version { major: u16, minor: u16 },
    #[error("block type {kind:#x} has a length of {len} bytes, below the minimum of {min}")]
    BlockTooShort { kind: u32, len: u32, min: u32 },
    #[error("block type {kind:#x} has a length of {len} bytes, not a multiple of 4")]
    BlockUnaligned { kind: u32, len: u32 },
    #[error("block type {kind:#x} has a length of {len} bytes, above the limit of {limit}")]
    BlockTooLarge { kind: u32, len: u32, limit: u32 },
    #[error("block type {kind:#x} has a length of {len} bytes at its start and {trailer} at its end")]
    BlockLengthMismatch { kind: u32, len: u32, trailer: u32 },
    #[error("a captured length of {caplen} bytes, but the block holds {room}")]
    CaplenBeyondBlock { caplen: u32, room: u32 },
    #[error("option {code} of {len} bytes runs past the end of its block")]
    OptionOverrun { code: u16, len: u16 },
    #[error("a packet of interface {id}, but the section defines {defined}")]
    UnknownInterface { id: u32, defined: usize },
    #[error("interface {interface} has link type {linktype}, the first one {first} (one link type per file)")]
    LinkTypeChange { interface: u32, linktype: u32, first: u32 },
    #[error("more than {limit} interfaces in one section")]
    TooManyInterfaces { limit: usize },
}

/// The link type as libpcap reports a file's (its DLT_ value): the files'
/// LINKTYPE_RAW (101) is DLT_RAW, 12 on Linux; the other types the
/// decoders read have one number for both.
pub(crate) fn dlt(file_linktype: u32) -> u32 {
    if file_linktype == linktype::RAW { linktype::RAW_12 } else { file_linktype }
}

/// A link type's name, for an error: ours when the decoders read it,
/// libpcap's otherwise.
/// libpcap's own message for an error, without the crate's wrapping.
fn pcap_msg(e: pcap::Error) -> String {
    match e {
        pcap::Error::PcapError(s) => s,
        other => other.to_string(),
    }
}

fn linktype_name(lt: i32) -> String {
    let known = linktype::name(lt.max(0) as u32);
    if known != "unsupported" {
        return known.to_string();
    }
    pcap::Linktype(lt).get_name().unwrap_or_else(|_| "unknown".to_string())
}
