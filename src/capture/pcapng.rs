//! pcapng files (draft-ietf-opsawg-pcapng, "PCAP Now Generic"), read in
//! place: Section Header Blocks in either byte order, Interface Description
//! Blocks with `if_tsresol` (decimal and binary) and `if_tsoffset`, and the
//! packets of Enhanced, Simple and (obsolete) Packet Blocks. Every other
//! block (Name Resolution, Interface Statistics, Decryption Secrets, custom,
//! unknown) is stepped over.
//!
//! A Simple Packet Block carries no time (draft §4.4): its frame takes the
//! time of the frame before it, or none when no frame before it had one.
//! Block lengths are checked before anything is read inside a block; a
//! length that lies is a [`FormatError`], and no block larger than
//! [`MAX_BLOCK`] is buffered.

use std::ops::Range;

use super::FormatError;
use super::bytes::ByteSource;
use crate::dissect::packet::{FrameMeta, Timestamp};

/// Block types (draft §10.2).
const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 0x0000_0001;
const OPB: u32 = 0x0000_0002;
const SPB: u32 = 0x0000_0003;
const EPB: u32 = 0x0000_0006;

/// The byte-order magic of a Section Header Block (draft §4.1).
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;

/// IDB options (draft §4.2).
const OPT_ENDOFOPT: u16 = 0;
const IF_TSRESOL: u16 = 9;
const IF_TSOFFSET: u16 = 14;

/// The largest block read (libpcap's limit too): a packet of the largest
/// snapshot length fits many times over.
pub(super) const MAX_BLOCK: u32 = 16 << 20;

/// Interfaces a section may define; more is taken as a hostile file.
const MAX_INTERFACES: usize = 1 << 16;

/// Timestamp units per second, from `if_tsresol` (draft §4.2): the most
/// significant bit clear means 10^-n seconds, set means 2^-n.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Resolution {
    Decimal(u8),
    Binary(u8),
}

impl Resolution {
    fn from_option(b: u8) -> Resolution {
        if b & 0x80 == 0 { Resolution::Decimal(b) } else { Resolution::Binary(b & 0x7f) }
    }

    /// The time `units` of this resolution after the epoch, `offset`
    /// seconds added (`if_tsoffset`): computed in 128 bits, so that no
    /// resolution or offset overflows, then saturated to [`Timestamp`].
    pub(super) fn timestamp(self, units: u64, offset: i64) -> Timestamp {
        let u = units as u128;
        let (secs, nanos) = match self {
            Resolution::Decimal(n) if n <= 38 => {
                let per_sec = 10u128.pow(n as u32);
                // The remainder is below 2^64, so times 1e9 fits 128 bits.
                (u / per_sec, (u % per_sec) * 1_000_000_000 / per_sec)
            }
            // Finer than 10^-38 s: 2^64 units are far less than a nanosecond.
            Resolution::Decimal(_) => (0, 0),
            Resolution::Binary(n) => {
                let n = n as u32;
                if n >= 64 {
                    (0, (u * 1_000_000_000) >> n)
                } else {
                    (u >> n, ((u & ((1u128 << n) - 1)) * 1_000_000_000) >> n)
                }
            }
        };
        // secs < 2^64, so secs * 1e9 < 2^94: no overflow in i128.
        Timestamp::from_nanos(secs as i128 * 1_000_000_000 + nanos as i128 + offset as i128 * 1_000_000_000)
    }
}

/// What an Interface Description Block says.
#[derive(Clone, Copy, Debug)]
struct Interface {
    linktype: u32,
    snaplen: u32,
    resolution: Resolution,
    offset: i64,
}

/// Why reading stopped.
pub(super) enum ReadError {
    /// The file ends inside a block (what the message says).
    Truncated(String),
    /// A block that breaks the format, at this file offset.
    Format {
        offset: u64,
        error: FormatError,
    },
    Io(std::io::Error),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> ReadError {
        ReadError::Io(e)
    }
}

/// The frames of a pcapng file.
pub(super) struct PcapngRecords {
    src: ByteSource,
    /// The current section is big-endian.
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// The first interface's link type (one per file, as libpcap requires).
    linktype: Option<u32>,
    /// The time of the last frame that had one (a Simple Packet Block's).
    last_ts: Option<Timestamp>,
}

/// What one block gave.
enum Step {
    Frame(FrameMeta, Range<usize>),
    Other,
    End,
}

/// One block, located.
struct Block {
    kind: u32,
    /// The body: after type and length, before the trailing length.
    body: Range<usize>,
    /// The block's file offset.
    offset: u64,
}

impl PcapngRecords {
    /// Reads the Section Header Block and the blocks up to the first
    /// Interface Description Block, whose link type is then
    /// [`Self::linktype`].
    pub(super) fn open(src: ByteSource) -> Result<PcapngRecords, ReadError> {
        let mut r = PcapngRecords { src, big_endian: false, interfaces: Vec::new(), linktype: None, last_ts: None };
        let mut frames = 0;
        // The first block must be a section header.
        if !r.src.fill(4)? || r.u32_raw_le(r.src.pos) != SHB {
            return Err(ReadError::Format { offset: 0, error: FormatError::NoSectionHeader });
        }
        while r.linktype.is_none() {
            match r.step(&mut frames, &|_| true)? {
                Step::Other => {}
                // A packet block names an interface, so none comes first;
                // and a file without an interface has no link type.
                Step::Frame(..) | Step::End => {
                    return Err(ReadError::Format { offset: r.src.offset(r.src.pos), error: FormatError::NoInterface });
                }
            }
        }
        Ok(r)
    }

    pub(super) fn linktype(&self) -> u32 {
        self.linktype.unwrap_or(0)
    }

    /// The bytes a returned range indexes.
    pub(super) fn data(&self) -> &[u8] {
        self.src.data()
    }

    fn u32_raw_le(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.src.data()[at..at + 4].try_into().expect("4 bytes"))
    }

    fn u16_at(&self, at: usize) -> u16 {
        let b = [self.src.data()[at], self.src.data()[at + 1]];
        if self.big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b: [u8; 4] = self.src.data()[at..at + 4].try_into().expect("4 bytes");
        if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    }

    fn format(&self, offset: u64, error: FormatError) -> ReadError {
        ReadError::Format { offset, error }
    }

    /// The next block, its lengths checked (draft §3.1: a total length of
    /// at least 12, a multiple of 4, the same at both ends); `None` at the
    /// end of the file.
    fn next_block(&mut self) -> Result<Option<Block>, ReadError> {
        if !self.src.fill(8)? {
            let left = self.src.available();
            if left == 0 {
                return Ok(None);
            }
            return Err(ReadError::Truncated(format!(
                "the file ends inside a block header at byte {} ({left} of 8 bytes)",
                self.src.offset(self.src.pos)
            )));
        }
        let at = self.src.pos;
        let offset = self.src.offset(at);
        let kind = self.u32_raw_le(at);
        if kind == SHB {
            // The section's byte order is that of its byte-order magic.
            if !self.src.fill(12)? {
                return Err(ReadError::Truncated(format!(
                    "the file ends inside a section header at byte {offset} ({} of 12 bytes)",
                    self.src.available()
                )));
            }
            self.big_endian = match self.u32_raw_le(at + 8) {
                BYTE_ORDER_MAGIC => false,
                m if m.swap_bytes() == BYTE_ORDER_MAGIC => true,
                magic => return Err(self.format(offset, FormatError::ByteOrderMagic { magic })),
            };
        }
        let kind = if kind == SHB { SHB } else { self.u32_at(at) };
        let len = self.u32_at(at + 4);
        if len < 12 {
            return Err(self.format(offset, FormatError::BlockTooShort { kind, len, min: 12 }));
        }
        if len % 4 != 0 {
            return Err(self.format(offset, FormatError::BlockUnaligned { kind, len }));
        }
        if len > MAX_BLOCK {
            return Err(self.format(offset, FormatError::BlockTooLarge { kind, len, limit: MAX_BLOCK }));
        }
        if !self.src.fill(len as usize)? {
            return Err(ReadError::Truncated(format!(
                "the file ends inside a block at byte {offset} of {len} bytes ({} there)",
                self.src.available()
            )));
        }
        let at = self.src.pos;
        let trailer = self.u32_at(at + len as usize - 4);
        if trailer != len {
            return Err(self.format(offset, FormatError::BlockLengthMismatch { kind, len, trailer }));
        }
        self.src.pos += len as usize;
        Ok(Some(Block { kind, body: at + 8..at + len as usize - 4, offset }))
    }

    /// The next frame that `keep` accepts, with where its bytes are in
    /// [`Self::data`]; `frames` counts every packet block.
    #[inline]
    pub(super) fn next_matching(
        &mut self,
        frames: &mut u64,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Option<(FrameMeta, Range<usize>)>, ReadError> {
        loop {
            match self.step(frames, keep)? {
                Step::Frame(meta, range) => return Ok(Some((meta, range))),
                Step::Other => {}
                Step::End => return Ok(None),
            }
        }
    }

    /// One block: a frame that `keep` accepts, or anything else.
    fn step(&mut self, frames: &mut u64, keep: &dyn Fn(&[u8]) -> bool) -> Result<Step, ReadError> {
        self.src.prepare();
        let Some(b) = self.next_block()? else { return Ok(Step::End) };
        let need = |min: usize| {
            if b.body.len() < min {
                let (len, min) = (b.body.len() as u32 + 12, min as u32 + 12);
                Err(ReadError::Format {
                    offset: b.offset,
                    error: FormatError::BlockTooShort { kind: b.kind, len, min },
                })
            } else {
                Ok(())
            }
        };
        let (iface, ts, caplen, len, data_at) = match b.kind {
            SHB => {
                need(16)?;
                let (major, minor) = (self.u16_at(b.body.start + 4), self.u16_at(b.body.start + 6));
                if major != 1 {
                    return Err(self.format(b.offset, FormatError::Version { major, minor }));
                }
                // A new section: its interfaces are numbered from 0 again.
                self.interfaces.clear();
                return Ok(Step::Other);
            }
            IDB => {
                need(8)?;
                self.interface(&b)?;
                return Ok(Step::Other);
            }
            EPB | OPB => {
                need(20)?;
                let s = b.body.start;
                let id = if b.kind == EPB { self.u32_at(s) } else { self.u16_at(s) as u32 };
                let units = (self.u32_at(s + 4) as u64) << 32 | self.u32_at(s + 8) as u64;
                let (caplen, len) = (self.u32_at(s + 12), self.u32_at(s + 16));
                let iface = self.iface(id, b.offset)?;
                (iface, Some(iface.resolution.timestamp(units, iface.offset)), caplen, len, s + 20)
            }
            SPB => {
                need(4)?;
                let s = b.body.start;
                let len = self.u32_at(s);
                let iface = self.iface(0, b.offset)?;
                // draft §4.4: the captured length is what the block holds of
                // the original length, at most the snapshot length. It has no
                // time: the frame before it lends its own.
                let mut caplen = len.min(b.body.len() as u32 - 4);
                if iface.snaplen > 0 {
                    caplen = caplen.min(iface.snaplen);
                }
                (iface, self.last_ts, caplen, len, s + 4)
            }
            // Name resolution, statistics, secrets, custom, unknown.
            _ => return Ok(Step::Other),
        };
        let room = b.body.end - data_at;
        if caplen as usize > room {
            return Err(self.format(b.offset, FormatError::CaplenBeyondBlock { caplen, room: room as u32 }));
        }
        *frames += 1;
        if ts.is_some() {
            self.last_ts = ts;
        }
        let range = data_at..data_at + caplen as usize;
        if !keep(&self.src.data()[range.clone()]) {
            return Ok(Step::Other);
        }
        Ok(Step::Frame(FrameMeta { number: *frames, ts, caplen, len, linktype: iface.linktype }, range))
    }

    fn iface(&self, id: u32, offset: u64) -> Result<Interface, ReadError> {
        self.interfaces.get(id as usize).copied().ok_or(ReadError::Format {
            offset,
            error: FormatError::UnknownInterface { id, defined: self.interfaces.len() },
        })
    }

    /// An Interface Description Block (draft §4.2): link type, snapshot
    /// length, and the options that set the time base.
    fn interface(&mut self, b: &Block) -> Result<(), ReadError> {
        let s = b.body.start;
        let linktype = super::dlt(self.u16_at(s) as u32);
        let mut iface =
            Interface { linktype, snaplen: self.u32_at(s + 4), resolution: Resolution::Decimal(6), offset: 0 };
        // Options (draft §3.5): code, length, value padded to 32 bits.
        let mut at = s + 8;
        while at + 4 <= b.body.end {
            let (code, olen) = (self.u16_at(at), self.u16_at(at + 2) as usize);
            let value = at + 4;
            if value + olen > b.body.end {
                return Err(self.format(b.offset, FormatError::OptionOverrun { code, len: olen as u16 }));
            }
            match code {
                OPT_ENDOFOPT => break,
                IF_TSRESOL if olen >= 1 => iface.resolution = Resolution::from_option(self.src.data()[value]),
                IF_TSOFFSET if olen >= 8 => {
                    let b: [u8; 8] = self.src.data()[value..value + 8].try_into().expect("8 bytes");
                    iface.offset = if self.big_endian { i64::from_be_bytes(b) } else { i64::from_le_bytes(b) };
                }
                _ => {}
            }
            at = value + olen.div_ceil(4) * 4;
        }
        match self.linktype {
            None => self.linktype = Some(linktype),
            Some(first) if first != linktype => {
                return Err(self.format(
                    b.offset,
                    FormatError::LinkTypeChange { interface: self.interfaces.len() as u32, linktype, first },
                ));
            }
            Some(_) => {}
        }
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(self.format(b.offset, FormatError::TooManyInterfaces { limit: MAX_INTERFACES }));
        }
        self.interfaces.push(iface);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions() {
        let d6 = Resolution::Decimal(6);
        assert_eq!(d6.timestamp(1_700_000_000_123_456, 0), Timestamp::new(1_700_000_000, 123_456_000));
        assert_eq!(Resolution::Decimal(9).timestamp(1_500_000_001, 0), Timestamp::new(1, 500_000_001));
        assert_eq!(Resolution::Decimal(0).timestamp(5, -10), Timestamp::new(-5, 0));
        // 0x8a: 2^-10 s; 1536 units are 1.5 s.
        assert_eq!(Resolution::from_option(0x8a), Resolution::Binary(10));
        assert_eq!(Resolution::Binary(10).timestamp(1536, 0), Timestamp::new(1, 500_000_000));
        assert_eq!(Resolution::Binary(0).timestamp(7, 0), Timestamp::new(7, 0));
        // The extremes saturate or vanish, never overflow.
        assert_eq!(Resolution::Decimal(0).timestamp(u64::MAX, i64::MAX), Timestamp::MAX);
        assert_eq!(Resolution::Decimal(0).timestamp(0, i64::MIN), Timestamp::new(i64::MIN, 0));
        assert_eq!(Resolution::Decimal(127).timestamp(u64::MAX, 0), Timestamp::new(0, 0));
        assert_eq!(Resolution::Binary(127).timestamp(u64::MAX, 0), Timestamp::new(0, 0));
        assert_eq!(Resolution::Binary(64).timestamp(u64::MAX, 0), Timestamp::new(0, 999_999_999));
        assert_eq!(Resolution::Decimal(19).timestamp(u64::MAX, 0), Timestamp::new(1, 844_674_407));
    }
}
