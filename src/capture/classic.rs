//! Classic pcap files (the libpcap format: a 24-byte file header, then a
//! 16-byte header per record), read in place. The rules are libpcap's: a
//! record longer than the file's snapshot length is cut to it, a capture
//! length beyond 262144 is an error, a file that ends inside a record is a
//! truncated dump file.
//!
//! A regular file is mapped and its frames are handed out in place (no copy
//! through read(2), which cost as much as decoding them).

use std::ops::Range;

use super::bytes::ByteSource;
use crate::dissect::packet::{FrameMeta, Timestamp};

/// The largest snapshot length libpcap accepts (MAXIMUM_SNAPLEN).
pub(super) const MAX_SNAPLEN: u32 = 262_144;

/// The four standard magic numbers, as read little-endian: whether the
/// file's fields are big-endian, whether its fractions are nanoseconds.
pub(super) fn magic(m: u32) -> Option<(bool, bool)> {
    match m {
        0xa1b2_c3d4 => Some((false, false)),
        0xd4c3_b2a1 => Some((true, false)),
        0xa1b2_3c4d => Some((false, true)),
        0x4d3c_b2a1 => Some((true, true)),
        _ => None,
    }
}

/// What a classic pcap header says.
pub(super) struct Header {
    pub swapped: bool,
    pub nanos: bool,
    /// The link type field's low 16 bits (the upper ones hold FCS flags).
    pub linktype: u32,
    pub snaplen: u32,
}

/// Why a header is not one this reader takes.
pub(super) enum HeaderError {
    /// Fewer than 24 bytes.
    Short(usize),
    /// A variant this reader leaves to libpcap (an unknown magic).
    NotClassic,
    /// A version libpcap refuses too (its words).
    Version(String),
}

/// Parse the 24-byte file header at `src.pos` (and step over it).
pub(super) fn header(src: &mut ByteSource) -> Result<Header, HeaderError> {
    let ok = src.fill(24).map_err(|_| HeaderError::Short(src.available()))?;
    if !ok {
        return Err(HeaderError::Short(src.available()));
    }
    let h = &src.data()[src.pos..src.pos + 24];
    let (swapped, nanos) = magic(u32::from_le_bytes([h[0], h[1], h[2], h[3]])).ok_or(HeaderError::NotClassic)?;
    let rd16 =
        |i: usize| if swapped { u16::from_be_bytes([h[i], h[i + 1]]) } else { u16::from_le_bytes([h[i], h[i + 1]]) };
    let rd32 = |i: usize| {
        let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
        if swapped { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    };
    let (major, minor) = (rd16(4), rd16(6));
    if major < 2 {
        return Err(HeaderError::Version("archaic pcap savefile format".into()));
    }
    // libpcap takes 2.0 to 2.4, and DG/UX tcpdump's 543.0.
    if !((major == 2 && minor <= 4) || (major == 543 && minor == 0)) {
        return Err(HeaderError::Version(format!("unsupported pcap savefile version {major}.{minor}")));
    }
    let snap = rd32(16);
    let header = Header {
        swapped,
        nanos,
        linktype: rd32(20) & 0xffff,
        snaplen: if snap == 0 || snap > MAX_SNAPLEN { MAX_SNAPLEN } else { snap },
    };
    src.pos += 24;
    Ok(header)
}

/// The records of a classic pcap file after its header.
pub(super) struct ClassicRecords {
    pub(super) src: ByteSource,
    swapped: bool,
    nanos: bool,
    snaplen: u32,
    linktype: u32,
}

impl ClassicRecords {
    pub(super) fn new(src: ByteSource, h: &Header, linktype: u32) -> ClassicRecords {
        ClassicRecords { src, swapped: h.swapped, nanos: h.nanos, snaplen: h.snaplen, linktype }
    }

    pub(super) fn linktype(&self) -> u32 {
        self.linktype
    }

    /// The bytes a returned range indexes.
    #[inline(always)]
    pub(super) fn data(&self) -> &[u8] {
        self.src.data()
    }

    #[inline(always)]
    fn u32_at(&self, at: usize) -> u32 {
        let b: [u8; 4] = self.src.data()[at..at + 4].try_into().expect("4 bytes");
        if self.swapped { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    }

    /// The next record that `keep` accepts: its metadata and where its bytes
    /// are in [`Self::data`]. `frames` counts every record. The error is
    /// libpcap's message for the same fault.
    #[inline(always)]
    pub(super) fn next_matching(
        &mut self,
        frames: &mut u64,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Option<(FrameMeta, Range<usize>)>, String> {
        loop {
            if !self.src.fill(16).map_err(|e| e.to_string())? {
                if self.src.available() == 0 {
                    return Ok(None);
                }
                return Err(format!(
                    "truncated dump file; tried to read 16 header bytes, only got {}",
                    self.src.available()
                ));
            }
            self.src.prepare();
            let p = self.src.pos;
            let (sec, frac, caplen, len) =
                (self.u32_at(p), self.u32_at(p + 4), self.u32_at(p + 8), self.u32_at(p + 12));
            if caplen > MAX_SNAPLEN {
                return Err(format!("invalid packet capture length {caplen}, bigger than maximum of {MAX_SNAPLEN}"));
            }
            if !self.src.fill(16 + caplen as usize).map_err(|e| e.to_string())? {
                return Err(format!(
                    "truncated dump file; tried to read {caplen} captured bytes, only got {}",
                    self.src.available() - 16
                ));
            }
            let start = self.src.pos + 16;
            self.src.pos = start + caplen as usize;
            *frames += 1;
            // libpcap hands out at most the file's snapshot length.
            let kept = caplen.min(self.snaplen);
            let range = start..start + kept as usize;
            if !keep(&self.src.data()[range.clone()]) {
                continue;
            }
            // The seconds field is unsigned (the pcap format's definition);
            // a fraction beyond one second is held to just under it.
            let nsec = if self.nanos { frac.min(999_999_999) } else { frac.min(999_999) * 1000 };
            let meta = FrameMeta {
                number: *frames,
                ts: Some(Timestamp::new(sec as i64, nsec)),
                caplen: kept,
                len,
                linktype: self.linktype,
            };
            return Ok(Some((meta, range)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::bytes::Input;
    use crate::dissect::packet::linktype;
    use std::io::Write;
    use std::path::Path;

    /// A classic little-endian microsecond pcap: the file header, then
    /// records of the given bytes (raw IP link type).
    fn header_bytes() -> Vec<u8> {
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

    fn open(path: &Path) -> ClassicRecords {
        let mut src = ByteSource::new(Input::File(std::fs::File::open(path).unwrap()), 16 + MAX_SNAPLEN as usize);
        let h = header(&mut src).ok().expect("a classic pcap");
        ClassicRecords::new(src, &h, h.linktype)
    }

    fn read_all(r: &mut ClassicRecords) -> Vec<(u64, i64, Vec<u8>)> {
        let mut frames = 0;
        let mut out = Vec::new();
        while let Some((meta, range)) = r.next_matching(&mut frames, &|_| true).unwrap() {
            out.push((meta.number, meta.ts.unwrap().secs(), r.data()[range].to_vec()));
        }
        out
    }

    #[test]
    fn mapped_file_gives_every_record_and_what_it_gains_after_opening() {
        let recs: Vec<Vec<u8>> = (0..5u8).map(|i| record(i, 40 + 7 * i as usize)).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing.pcap");
        // Opened while the third record is half written.
        let mut first = header_bytes();
        first.extend_from_slice(&recs[0]);
        first.extend_from_slice(&recs[1]);
        let half = recs[2].len() / 2;
        first.extend_from_slice(&recs[2][..half]);
        std::fs::write(&path, &first).unwrap();
        let mut r = open(&path);
        assert!(r.src.mapped(), "a regular file is mapped");
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
        let mut bytes = header_bytes();
        bytes.extend_from_slice(&record(0, 60));
        bytes.extend_from_slice(&record(1, 60)[..30]);
        std::fs::write(&path, &bytes).unwrap();
        let mut r = open(&path);
        let mut frames = 0;
        assert!(r.next_matching(&mut frames, &|_| true).unwrap().is_some());
        let e = r.next_matching(&mut frames, &|_| true).unwrap_err();
        assert!(e.contains("truncated dump file"), "{e}");
        assert_eq!(frames, 1);
    }
}
