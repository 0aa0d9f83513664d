//! Bytes to typed values: the option codec, framing, crypto, analysis and
//! printers. Pure: no I/O, no clock (capture file and live reading live in
//! [`crate::cli`] and the drivers).
pub mod analysis;
pub mod crypto;
pub(crate) mod hash;
pub mod json;
pub mod options;
pub mod packet;
pub mod summary;
pub mod tcpdump;
