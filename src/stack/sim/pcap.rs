//! A classic pcap writer (LINKTYPE_RAW: each record is an IPv4 or IPv6
//! packet), for the simulator's tap.

use std::io::{self, Write};

use crate::stack::time::Instant;

/// LINKTYPE_RAW.
pub const LINKTYPE_RAW: u32 = 101;

pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header (microsecond timestamps, snaplen 262144).
    pub fn new(mut out: W) -> io::Result<PcapWriter<W>> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&0xa1b2c3d4u32.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes());
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        h[16..20].copy_from_slice(&262144u32.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_RAW.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    pub fn write(&mut self, t: Instant, packet: &[u8]) -> io::Result<()> {
        let us = t.as_micros();
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(packet.len() as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(packet.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(packet)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
