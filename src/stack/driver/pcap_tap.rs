//! `--pcap FILE`: every packet the embedded stack sends and receives, in a
//! classic pcap file (microsecond timestamps) with link type LINUX_SLL2 (276),
//! whose header carries the direction: tcpdump prints `In` / `Out`, tshark
//! `sll.pkttype`, and mptcp-dump decodes it like any capture.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::capture::PcapWriter;
use crate::dissect::packet::Timestamp;

pub const LINKTYPE_LINUX_SLL2: u32 = 276;
const SLL2_LEN: usize = 20;
const ARPHRD_NONE: u16 = 0xfffe;
/// Snap length written in the header; longer packets are cut (a TSO
/// super-packet from the TUN can be up to 64 KiB).
pub const SNAPLEN: u32 = crate::capture::writer::WRITE_SNAPLEN;

/// Which way a packet went, from the stack's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Received by the stack (from the kernel through the TUN).
    In,
    /// Sent by the stack.
    Out,
}

impl Direction {
    /// SLL packet type: 0 PACKET_HOST, 4 PACKET_OUTGOING.
    fn pkttype(self) -> u8 {
        match self {
            Direction::In => 0,
            Direction::Out => 4,
        }
    }
}

/// A pcap writer for raw IP packets, each behind an SLL2 header.
pub struct PcapTap<W: Write> {
    w: PcapWriter<W>,
    ifindex: u32,
}

impl PcapTap<BufWriter<File>> {
    /// Create (truncate) `path` and write the file header.
    pub fn create(path: &Path, ifindex: u32) -> io::Result<Self> {
        PcapTap::new(BufWriter::new(File::create(path)?), ifindex)
    }
}

impl<W: Write> PcapTap<W> {
    /// Write the file header to `w`. `ifindex` goes into every record (the
    /// TUN's index, or 0).
    pub fn new(w: W, ifindex: u32) -> io::Result<Self> {
        Ok(PcapTap { w: PcapWriter::new(w, "--pcap", LINKTYPE_LINUX_SLL2).map_err(io::Error::from)?, ifindex })
    }

    /// Record `pkt` (an IPv4 or IPv6 packet) now.
    pub fn write(&mut self, pkt: &[u8], dir: Direction) -> io::Result<()> {
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        self.write_at(ts, pkt, dir)
    }

    /// Record `pkt` with timestamp `ts` (since the Unix epoch).
    pub fn write_at(&mut self, ts: Duration, pkt: &[u8], dir: Direction) -> io::Result<()> {
        let proto: u16 = match pkt.first().map(|b| b >> 4) {
            Some(6) => 0x86dd,
            _ => 0x0800,
        };
        // SLL2 header (big-endian fields).
        let mut h = [0u8; SLL2_LEN];
        h[0..2].copy_from_slice(&proto.to_be_bytes());
        h[4..8].copy_from_slice(&self.ifindex.to_be_bytes());
        h[8..10].copy_from_slice(&ARPHRD_NONE.to_be_bytes());
        h[10] = dir.pkttype();
        let orig = u32::try_from(SLL2_LEN + pkt.len()).unwrap_or(u32::MAX);
        let ts = Timestamp::new(i64::try_from(ts.as_secs()).unwrap_or(i64::MAX), ts.subsec_nanos());
        self.w.write_parts(ts, orig, &[&h, pkt]).map_err(io::Error::from)
    }

    pub fn packets(&self) -> u64 {
        self.w.records()
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush().map_err(io::Error::from)
    }

    pub fn into_inner(self) -> W {
        self.w.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::packet::decode;

    fn tcp_syn() -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&40u16.to_be_bytes());
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 200, 0, 2]);
        p[16..20].copy_from_slice(&[10, 200, 0, 1]);
        p[20..22].copy_from_slice(&40000u16.to_be_bytes());
        p[22..24].copy_from_slice(&5000u16.to_be_bytes());
        p[32] = 0x50;
        p[33] = 0x02;
        p
    }

    #[test]
    fn records_decode_with_direction() {
        let mut tap = PcapTap::new(Vec::new(), 7).unwrap();
        tap.write_at(Duration::from_micros(1_500_000), &tcp_syn(), Direction::Out).unwrap();
        tap.write_at(Duration::from_micros(2_000_001), &tcp_syn(), Direction::In).unwrap();
        assert_eq!(tap.packets(), 2);
        let f = tap.into_inner();
        assert_eq!(&f[0..4], &0xa1b2_c3d4u32.to_le_bytes());
        assert_eq!(u32::from_le_bytes(f[20..24].try_into().unwrap()), LINKTYPE_LINUX_SLL2);
        let rec = &f[24..];
        assert_eq!(u32::from_le_bytes(rec[0..4].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(rec[4..8].try_into().unwrap()), 500_000);
        let len = u32::from_le_bytes(rec[8..12].try_into().unwrap()) as usize;
        assert_eq!(len, 60);
        let frame = &rec[16..16 + len];
        assert_eq!(frame[10], 4, "outgoing");
        let pkt = decode(LINKTYPE_LINUX_SLL2, frame);
        assert!(pkt.error.is_none(), "{:?}", pkt.error);
        let ip = pkt.ip.expect("IP decoded");
        assert_eq!(ip.src.to_string(), "10.200.0.2");
        assert_eq!(ip.dst.to_string(), "10.200.0.1");
        assert!(pkt.tcp.is_some());
        let second = &rec[16 + len..];
        assert_eq!(second[16 + 10], 0, "incoming");
    }
}
