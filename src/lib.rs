//! mptcp-tools: a Multipath TCP (RFC 8684) toolbox.
//!
//! - [`capture`]: capture files and live capture in, pcap files out (the one
//!   reader and the one writer every tool uses).
//! - [`checksum`]: the Internet checksum (RFC 1071), the one the IP/TCP
//!   framing, the printers and the DSS checksum use.
//! - [`dissect`]: the option codec, framing, crypto, connection analysis and printers.
//! - [`stack`]: the embedded sans-IO MPTCP stack, its simulator and drivers.
//! - [`diag`]: connection sources for mptcp-ss (kernel, embedded stacks, packets).
//! - [`tui`]: the mptcp-ss terminal UI.
//! - [`snapshot`]: the connection/subflow snapshot shared by all of them.
//! - [`cli`]: the command lines of the four tools.
//! - [`control`]: the control-socket protocol of embedded mptcp-cat processes.
//! - [`sys`]: the OS edge both mptcp-cat's drivers and mptcp-ss's sources use:
//!   libc wrappers, the one netlink layer, generic netlink, sock_diag.
pub mod capture;
pub mod checksum;
pub mod cli;
pub mod control;
pub mod diag;
pub mod dissect;
pub mod doctor;
#[doc(hidden)]
pub mod fuzzing;
pub mod plot;
pub mod seq;
pub mod session;
pub mod snapshot;
pub mod stack;
pub mod sys;
pub mod tui;
