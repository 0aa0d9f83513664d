//! The libc wrappers the drivers use, now shared with mptcp-ss's sources:
//! see [`crate::sys`] (this path is kept for the driver modules and tests
//! that name it).
pub use crate::sys::*;
