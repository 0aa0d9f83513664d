//! Connection analysis (RFC 8684): flows grouped into MPTCP connections,
//! DSN extension, mappings, reinjections, HMAC and checksum verification,
//! fallback verdicts.
//!
//! INTERFACE STUB: the seam between the capture front end (mptcp-dump's text
//! printer and CLI) and the analysis. The analysis implementation replaces the
//! bodies; the signatures below are what callers use.

use super::packet::{FrameMeta, Packet};

/// Options that change what the analyzer does.
#[derive(Clone, Debug, Default)]
pub struct AnalyzerOptions {}

/// Feeds on decoded packets in capture order.
#[derive(Debug, Default)]
pub struct Analyzer {}

/// What the analysis says about one packet.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PacketNote {}

impl PacketNote {
    /// The text appended after tcpdump's part of the line (starting with a
    /// space when not empty, no newline).
    pub fn write_text(&self, _out: &mut Vec<u8>) {}
}

/// Everything known at the end of the capture, per MPTCP connection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {}

impl Analyzer {
    pub fn new(_opts: AnalyzerOptions) -> Analyzer {
        Analyzer {}
    }

    /// Feed one frame; returns the note for it.
    pub fn on_packet(&mut self, _meta: &FrameMeta, _pkt: &Packet<'_>) -> PacketNote {
        PacketNote {}
    }

    /// Feed one frame when no per-packet note is needed (the --summary fast path).
    pub fn observe(&mut self, meta: &FrameMeta, pkt: &Packet<'_>) {
        let _ = self.on_packet(meta, pkt);
    }

    pub fn finish(self) -> Report {
        Report {}
    }
}
