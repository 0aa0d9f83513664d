//! [`PcapWriter`]: the one classic pcap writer, for `mptcp-dump -w`, the
//! simulator's `--pcap` and the TUN driver's tap.
//!
//! The format is the documented libpcap one (a 24-byte file header, a
//! 16-byte header per record, microsecond timestamps), written here
//! directly so that the snapshot length is tcpdump's (262144) and not
//! `pcap_open_dead`'s 65535.

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::CaptureError;
use crate::dissect::packet::{FrameMeta, Timestamp};

/// The snapshot length written into the file header; longer records are cut.
pub const WRITE_SNAPLEN: u32 = 262_144;

/// Writes records to a classic pcap file.
pub struct PcapWriter<W: Write> {
    out: W,
    /// The file's name, for errors.
    file: String,
    records: u64,
}

impl<W: Write> fmt::Debug for PcapWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapWriter").field("file", &self.file).field("records", &self.records).finish()
    }
}

impl PcapWriter<BufWriter<File>> {
    /// Create (truncate) `path` and write the file header.
    pub fn create(path: &Path, linktype: u32) -> Result<Self, CaptureError> {
        let file = path.display().to_string();
        let f = File::create(path).map_err(|source| CaptureError::Write { file: file.clone(), source })?;
        PcapWriter::new(BufWriter::with_capacity(1 << 16, f), file, linktype)
    }
}

impl<W: Write> PcapWriter<W> {
    /// Write the file header to `out`; `file` names it in errors.
    pub fn new(mut out: W, file: impl Into<String>, linktype: u32) -> Result<Self, CaptureError> {
        let file = file.into();
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // 8..16: this zone's offset and the accuracy, both 0.
        h[16..20].copy_from_slice(&WRITE_SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&linktype.to_le_bytes());
        out.write_all(&h).map_err(|source| CaptureError::Write { file: file.clone(), source })?;
        Ok(PcapWriter { out, file, records: 0 })
    }

    /// One frame as it was read: its time and wire length from `meta`.
    pub fn write(&mut self, meta: &FrameMeta, data: &[u8]) -> Result<(), CaptureError> {
        // A frame without a time is written at the epoch: the format has no
        // way to say "none".
        let wire = meta.len.max(data.len().min(u32::MAX as usize) as u32);
        self.write_parts(meta.ts.unwrap_or_default(), wire, &[data])
    }

    /// One record made of `parts` in order (a link header and a packet, say),
    /// captured at `ts`, `wire_len` bytes long on the wire; the record is cut
    /// to [`WRITE_SNAPLEN`]. The format's seconds are unsigned 32 bits: a
    /// time outside 1970..2106 is held to the nearest end.
    pub fn write_parts(&mut self, ts: Timestamp, wire_len: u32, parts: &[&[u8]]) -> Result<(), CaptureError> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let incl = total.min(WRITE_SNAPLEN as usize);
        let (sec, usec) = if ts.secs() < 0 {
            (0, 0)
        } else if ts.secs() > u32::MAX as i64 {
            (u32::MAX, 999_999)
        } else {
            (ts.secs() as u32, ts.subsec_micros())
        };
        let mut r = [0u8; 16];
        r[0..4].copy_from_slice(&sec.to_le_bytes());
        r[4..8].copy_from_slice(&usec.to_le_bytes());
        r[8..12].copy_from_slice(&(incl as u32).to_le_bytes());
        r[12..16].copy_from_slice(&wire_len.max(incl as u32).to_le_bytes());
        let werr = |source| CaptureError::Write { file: self.file.clone(), source };
        self.out.write_all(&r).map_err(werr)?;
        let mut left = incl;
        for p in parts {
            let n = p.len().min(left);
            self.out.write_all(&p[..n]).map_err(|source| CaptureError::Write { file: self.file.clone(), source })?;
            left -= n;
        }
        self.records += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    pub fn flush(&mut self) -> Result<(), CaptureError> {
        self.out.flush().map_err(|source| CaptureError::Write { file: self.file.clone(), source })
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn header_and_records() {
        let mut w = PcapWriter::new(Vec::new(), "test", 1).unwrap();
        let meta = FrameMeta { ts: Some(Timestamp::new(1_700_000_000, 123_456_789)), len: 100, ..Default::default() };
        w.write(&meta, &[7; 60]).unwrap();
        w.write_parts(Timestamp::new(-5, 0), 3, &[&[1, 2], &[3, 4, 5]]).unwrap();
        w.write_parts(Timestamp::MAX, 0, &[&[9]]).unwrap();
        assert_eq!(w.records(), 3);
        let f = w.into_inner();
        assert_eq!((rd(&f, 0), rd(&f, 16), rd(&f, 20)), (0xa1b2_c3d4, WRITE_SNAPLEN, 1));
        let r = &f[24..];
        assert_eq!((rd(r, 0), rd(r, 4), rd(r, 8), rd(r, 12)), (1_700_000_000, 123_456, 60, 100));
        let r = &r[16 + 60..];
        // Before the epoch: held at 0; the wire length is at least what was kept.
        assert_eq!((rd(r, 0), rd(r, 4), rd(r, 8), rd(r, 12)), (0, 0, 5, 5));
        assert_eq!(&r[16..21], &[1, 2, 3, 4, 5]);
        let r = &r[21..];
        assert_eq!((rd(r, 0), rd(r, 4)), (u32::MAX, 999_999));
    }

    #[test]
    fn long_records_are_cut_to_the_snapshot_length() {
        let mut w = PcapWriter::new(Vec::new(), "test", 1).unwrap();
        let big = vec![1u8; WRITE_SNAPLEN as usize + 10];
        w.write_parts(Timestamp::default(), 0, &[&[0; 20], &big]).unwrap();
        let f = w.into_inner();
        assert_eq!((rd(&f, 24 + 8), rd(&f, 24 + 12)), (WRITE_SNAPLEN, WRITE_SNAPLEN));
        assert_eq!(f.len(), 24 + 16 + WRITE_SNAPLEN as usize);
    }
}
