//! JSON lines output (DESIGN.md packet object contract).
//!
//! INTERFACE STUB: replaced by the analysis/JSON implementation.

use super::analysis::PacketNote;
use super::packet::{FrameMeta, Packet};

/// Append one JSON object (and a newline) describing the frame.
pub fn write_packet(out: &mut Vec<u8>, meta: &FrameMeta, _pkt: &Packet<'_>, _note: &PacketNote) {
    out.extend_from_slice(format!("{{\"frame\":{}}}\n", meta.number).as_bytes());
}
