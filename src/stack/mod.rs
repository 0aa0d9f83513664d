//! The embedded MPTCP stack, sans-IO (RFC 8684 over RFC 9293 TCP).
pub mod driver;
