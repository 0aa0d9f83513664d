//! Capture files made in the tests: classic pcap and pcapng (draft-ietf-
//! opsawg-pcapng) written byte by byte, so that a test can state every
//! timestamp, option and block length, lies included. The frames are those
//! of a bundled capture, read through the library's reader.
#![allow(dead_code)]

use std::path::Path;

use mptcp_tools::capture::{CaptureReader, OpenOptions};

/// The frames of a bundled capture (testdata/captures/pcap/NAME).
pub fn bundled_frames(name: &str) -> Vec<Vec<u8>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/captures/pcap").join(name);
    let mut r = CaptureReader::open_file(&path, &OpenOptions::default()).expect("bundled capture");
    let mut v = Vec::new();
    while let Some((_, f)) = r.next_frame(&|| false).expect("bundled capture reads") {
        v.push(f.to_vec());
    }
    v
}

/// A classic little-endian microsecond pcap of `linktype` with these
/// records (seconds, microseconds, bytes).
pub fn classic(linktype: u32, records: &[(u32, u32, &[u8])]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(0xa1b2_c3d4u32.to_le_bytes());
    f.extend(2u16.to_le_bytes());
    f.extend(4u16.to_le_bytes());
    f.extend([0; 8]);
    f.extend(262_144u32.to_le_bytes());
    f.extend(linktype.to_le_bytes());
    for (sec, usec, data) in records {
        f.extend(sec.to_le_bytes());
        f.extend(usec.to_le_bytes());
        f.extend((data.len() as u32).to_le_bytes());
        f.extend((data.len() as u32).to_le_bytes());
        f.extend_from_slice(data);
    }
    f
}

/// A pcapng file being written, in one byte order.
pub struct Ng {
    pub bytes: Vec<u8>,
    big_endian: bool,
}

/// An option (code, value) of an Interface Description Block.
pub type Opt = (u16, Vec<u8>);

impl Ng {
    /// A file that starts with a Section Header Block.
    pub fn new(big_endian: bool) -> Ng {
        let mut n = Ng { bytes: Vec::new(), big_endian };
        n.shb();
        n
    }

    pub fn u16(&self, v: u16) -> [u8; 2] {
        if self.big_endian { v.to_be_bytes() } else { v.to_le_bytes() }
    }

    pub fn u32(&self, v: u32) -> [u8; 4] {
        if self.big_endian { v.to_be_bytes() } else { v.to_le_bytes() }
    }

    /// A block of `kind` with `body` (padded to 32 bits), its lengths right.
    pub fn block(&mut self, kind: u32, body: &[u8]) -> &mut Ng {
        let mut body = body.to_vec();
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let len = 12 + body.len() as u32;
        self.raw_block(kind, len, &body, len)
    }

    /// A block with the lengths given, true or not.
    pub fn raw_block(&mut self, kind: u32, len: u32, body: &[u8], trailer: u32) -> &mut Ng {
        let (k, l, t) = (self.u32(kind), self.u32(len), self.u32(trailer));
        self.bytes.extend(k);
        self.bytes.extend(l);
        self.bytes.extend_from_slice(body);
        self.bytes.extend(t);
        self
    }

    /// A section header (version 1.0, unknown section length).
    pub fn shb(&mut self) -> &mut Ng {
        let mut body = Vec::new();
        body.extend(self.u32(0x1a2b_3c4d));
        body.extend(self.u16(1));
        body.extend(self.u16(0));
        body.extend([0xff; 8]);
        self.block(0x0a0d_0d0a, &body)
    }

    /// An Interface Description Block.
    pub fn idb(&mut self, linktype: u16, snaplen: u32, opts: &[Opt]) -> &mut Ng {
        let mut body = Vec::new();
        body.extend(self.u16(linktype));
        body.extend([0, 0]);
        body.extend(self.u32(snaplen));
        if !opts.is_empty() {
            for (code, v) in opts {
                body.extend(self.u16(*code));
                body.extend(self.u16(v.len() as u16));
                body.extend_from_slice(v);
                while body.len() % 4 != 0 {
                    body.push(0);
                }
            }
            body.extend([0; 4]);
        }
        self.block(1, &body)
    }

    /// `if_tsresol` (code 9).
    pub fn tsresol(v: u8) -> Opt {
        (9, vec![v])
    }

    /// `if_tsoffset` (code 14), in this file's byte order.
    pub fn tsoffset(&self, secs: i64) -> Opt {
        (14, if self.big_endian { secs.to_be_bytes() } else { secs.to_le_bytes() }.to_vec())
    }

    /// An Enhanced Packet Block: interface, timestamp units, frame.
    pub fn epb(&mut self, iface: u32, units: u64, data: &[u8]) -> &mut Ng {
        let mut body = Vec::new();
        body.extend(self.u32(iface));
        body.extend(self.u32((units >> 32) as u32));
        body.extend(self.u32(units as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend_from_slice(data);
        self.block(6, &body)
    }

    /// A Simple Packet Block (no interface, no time).
    pub fn spb(&mut self, data: &[u8]) -> &mut Ng {
        let mut body = Vec::new();
        body.extend(self.u32(data.len() as u32));
        body.extend_from_slice(data);
        self.block(3, &body)
    }

    /// An obsolete Packet Block.
    pub fn opb(&mut self, iface: u16, units: u64, data: &[u8]) -> &mut Ng {
        let mut body = Vec::new();
        body.extend(self.u16(iface));
        body.extend(self.u16(0));
        body.extend(self.u32((units >> 32) as u32));
        body.extend(self.u32(units as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend(self.u32(data.len() as u32));
        body.extend_from_slice(data);
        self.block(2, &body)
    }

    /// A Name Resolution Block (one IPv4 record) and an Interface
    /// Statistics Block: blocks a reader steps over.
    pub fn nrb_and_isb(&mut self) -> &mut Ng {
        // One IPv4 record (draft §4.5): type 1, the address and a name.
        let mut nrb = Vec::new();
        nrb.extend(self.u16(1));
        nrb.extend(self.u16(11));
        nrb.extend([10, 77, 1, 1]);
        nrb.extend(b"client\0");
        nrb.push(0);
        nrb.extend([0; 4]);
        self.block(4, &nrb);
        let mut isb = Vec::new();
        isb.extend(self.u32(0));
        isb.extend([0; 8]);
        self.block(5, &isb)
    }
}

/// A second count as pcapng's default microsecond units.
pub fn micros(sec: u64, usec: u64) -> u64 {
    sec * 1_000_000 + usec
}

/// What reading a crafted file must end in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Read to its end: exit status 0.
    Whole,
    /// Cut short after `frames` frames, the error saying `what`: the frames
    /// are shown, then exit status 1.
    Cut { frames: usize, what: &'static str },
}

/// A crafted capture file.
pub struct Case {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub expect: Expect,
}

const ETHERNET: u16 = 1;
const T0: u64 = 1_700_000_000;

/// A pcapng of `frames` as EPBs of one Ethernet interface, 10 ms apart.
fn plain_ng(frames: &[Vec<u8>]) -> Ng {
    let mut n = Ng::new(false);
    n.idb(ETHERNET, 0, &[]);
    for (i, f) in frames.iter().enumerate() {
        n.epb(0, micros(T0, i as u64 * 10_000), f);
    }
    n
}

/// A pcapng whose block after `good` packets has these lengths.
fn lying(frames: &[Vec<u8>], good: usize, len: u32, body: &[u8], trailer: u32) -> Vec<u8> {
    let mut n = plain_ng(&frames[..good]);
    n.raw_block(6, len, body, trailer);
    for f in &frames[good..] {
        n.epb(0, micros(T0 + 1, 0), f);
    }
    n.bytes
}

/// Every crafted case, from the frames of single-subflow.pcap (14 frames
/// of one MPTCP connection, 0.11 s of traffic).
pub fn cases() -> Vec<Case> {
    let fr = bundled_frames("single-subflow.pcap");
    assert_eq!(fr.len(), 14);
    let mut v = Vec::new();

    // Classic pcap: the first frame at time 0, the rest 1.7e9 s later.
    let recs: Vec<(u32, u32, &[u8])> = fr
        .iter()
        .enumerate()
        .map(|(i, f)| if i == 0 { (0, 0, &f[..]) } else { (T0 as u32, i as u32 * 10_000, &f[..]) })
        .collect();
    v.push(Case { name: "first-at-zero.pcap", bytes: classic(1, &recs), expect: Expect::Whole });

    // Simple Packet Blocks (no time) before the first timestamped frame,
    // and one between two.
    let mut n = Ng::new(false);
    n.idb(ETHERNET, 0, &[]).spb(&fr[0]).spb(&fr[1]);
    for (i, f) in fr.iter().enumerate().take(12).skip(2) {
        n.epb(0, micros(T0, i as u64 * 10_000), f);
    }
    n.spb(&fr[12]).epb(0, micros(T0, 130_000), &fr[13]);
    v.push(Case { name: "spb-first.pcapng", bytes: n.bytes, expect: Expect::Whole });

    // Binary resolution 0x8a (2^-10 s), big-endian, with blocks to step
    // over and an obsolete Packet Block.
    let mut n = Ng::new(true);
    n.idb(ETHERNET, 262_144, &[Ng::tsresol(0x8a)]);
    for (i, f) in fr.iter().enumerate() {
        let units = (T0 << 10) + i as u64 * 256;
        if i == 5 {
            n.nrb_and_isb();
            n.opb(0, units, f);
        } else {
            n.epb(0, units, f);
        }
    }
    v.push(Case { name: "binary-resol.pcapng", bytes: n.bytes, expect: Expect::Whole });

    // if_tsoffset near +2^63 (seconds resolution): the times saturate.
    let mut n = Ng::new(false);
    let off = n.tsoffset(i64::MAX - 5);
    n.idb(ETHERNET, 0, &[Ng::tsresol(0), off]);
    for (i, f) in fr.iter().enumerate() {
        n.epb(0, i as u64, f);
    }
    v.push(Case { name: "offset-near-max.pcapng", bytes: n.bytes, expect: Expect::Whole });

    // if_tsoffset near -2^63 (nanoseconds).
    let mut n = Ng::new(false);
    let off = n.tsoffset(i64::MIN + 3);
    n.idb(ETHERNET, 0, &[Ng::tsresol(9), off]);
    for (i, f) in fr.iter().enumerate() {
        n.epb(0, i as u64 * 500_000_000, f);
    }
    v.push(Case { name: "offset-near-min.pcapng", bytes: n.bytes, expect: Expect::Whole });

    // The whole range in one file: offset -2^63 s, then 2^64 - 1 s later,
    // and back (a span no Duration or f64 conversion takes).
    let mut n = Ng::new(false);
    let off = n.tsoffset(i64::MIN);
    n.idb(ETHERNET, 0, &[Ng::tsresol(0), off]);
    for (i, f) in fr.iter().enumerate() {
        n.epb(0, if i % 2 == 0 { 0 } else { u64::MAX }, f);
    }
    v.push(Case { name: "offset-span.pcapng", bytes: n.bytes, expect: Expect::Whole });

    // Huge timestamps: 2^64 - 1 seconds, back to 0 and up again, and the
    // finest binary resolution on a second interface of the same type.
    let mut n = Ng::new(false);
    n.idb(ETHERNET, 0, &[Ng::tsresol(0)]).idb(ETHERNET, 0, &[Ng::tsresol(0xff)]);
    for (i, f) in fr.iter().enumerate() {
        match i % 3 {
            0 => n.epb(0, u64::MAX - i as u64, f),
            1 => n.epb(0, 0, f),
            _ => n.epb(1, u64::MAX, f),
        };
    }
    v.push(Case { name: "huge-timestamps.pcapng", bytes: n.bytes, expect: Expect::Whole });

    // A classic pcap cut in the middle of the 8th record.
    let whole = classic(1, &fr.iter().enumerate().map(|(i, f)| (T0 as u32, i as u32, &f[..])).collect::<Vec<_>>());
    let eighth: usize = 24 + fr[..7].iter().map(|f| 16 + f.len()).sum::<usize>();
    let bytes = whole[..eighth + 16 + fr[7].len() / 2].to_vec();
    v.push(Case {
        name: "cut-mid-record.pcap",
        bytes,
        expect: Expect::Cut { frames: 7, what: "truncated capture after frame 7" },
    });

    // A pcapng cut in the middle of its 9th packet block.
    let whole = plain_ng(&fr).bytes;
    let ninth = 28 + 20 + fr[..8].iter().map(|f| 32 + f.len().div_ceil(4) * 4).sum::<usize>();
    v.push(Case {
        name: "cut-mid-block.pcapng",
        bytes: whole[..ninth + 20].to_vec(),
        expect: Expect::Cut { frames: 8, what: "truncated capture after frame 8" },
    });

    // Block lengths that lie, after five good frames.
    let lies: [(&'static str, u32, Vec<u8>, u32, &'static str); 6] = [
        ("length-below-12.pcapng", 8, vec![], 8, "a length of 8 bytes, below the minimum of 12"),
        ("length-short-for-epb.pcapng", 16, vec![0; 4], 16, "a length of 16 bytes, below the minimum of 32"),
        ("length-unaligned.pcapng", 30, vec![0; 18], 30, "a length of 30 bytes, not a multiple of 4"),
        ("length-huge.pcapng", 0xffff_fff0, vec![0; 16], 0xffff_fff0, "above the limit of 16777216"),
        ("length-mismatch.pcapng", 36, vec![0; 24], 40, "a length of 36 bytes at its start and 40 at its end"),
        ("caplen-lies.pcapng", 36, caplen_lie(), 36, "a captured length of 1000 bytes, but the block holds 4"),
    ];
    for (name, len, body, trailer, what) in lies {
        v.push(Case { name, bytes: lying(&fr, 5, len, &body, trailer), expect: Expect::Cut { frames: 5, what } });
    }
    // A length past the end of the file (within the limit): the file is
    // truncated, and no buffer of that size is made.
    v.push(Case {
        name: "length-past-end.pcapng",
        bytes: lying(&fr, 5, 8 << 20, &[0; 24], 0),
        expect: Expect::Cut { frames: 5, what: "truncated capture after frame 5" },
    });
    // The interface block lies: nothing can be read.
    let mut n = Ng::new(false);
    n.raw_block(1, 7, &[1, 0, 0, 0], 7);
    v.push(Case {
        name: "first-block-lies.pcapng",
        bytes: n.bytes,
        expect: Expect::Cut { frames: 0, what: "malformed pcapng: block at byte 28" },
    });
    v
}

/// An EPB body whose captured length (1000) is more than it holds (4).
fn caplen_lie() -> Vec<u8> {
    let mut b = Vec::new();
    for x in [0u32, 0, 0, 1000, 1000] {
        b.extend(x.to_le_bytes());
    }
    b.extend([0; 4]);
    b
}
