//! The simulator's tap: every packet the client sees, as a classic pcap
//! file of LINKTYPE_RAW (each record an IPv4 or IPv6 packet), timestamped
//! with the simulation's clock from the epoch. Written through the one pcap
//! writer, [`crate::capture::PcapWriter`].

use std::io::{self, Write};

use crate::capture::PcapWriter as Writer;
use crate::dissect::packet::Timestamp;
use crate::stack::time::Instant;

/// LINKTYPE_RAW.
pub const LINKTYPE_RAW: u32 = 101;

pub struct PcapWriter<W: Write> {
    out: Writer<W>,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header (microsecond timestamps, snaplen 262144).
    pub fn new(out: W) -> io::Result<PcapWriter<W>> {
        Ok(PcapWriter { out: Writer::new(out, "the simulator's pcap", LINKTYPE_RAW).map_err(io::Error::from)? })
    }

    pub fn write(&mut self, t: Instant, packet: &[u8]) -> io::Result<()> {
        let us = t.as_micros();
        let ts = Timestamp::new(i64::try_from(us / 1_000_000).unwrap_or(i64::MAX), (us % 1_000_000) as u32 * 1000);
        let wire = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        self.out.write_parts(ts, wire, &[packet]).map_err(io::Error::from)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush().map_err(io::Error::from)
    }
}
