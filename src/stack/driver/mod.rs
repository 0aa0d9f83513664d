//! Drivers: the only code that owns file descriptors and reads clocks.
//!
//! - [`kernel`]: the host kernel's MPTCP sockets (`--stack kernel`) and the
//!   SOL_MPTCP getsockopts that report what was negotiated.
//! - [`pm`]: the kernel path manager over generic netlink (`ip mptcp
//!   endpoint` / `limits`), used by `--local` / `--limits` with the kernel stack.
//! - [`netlink`]: the small netlink transport `pm` and `tun` share.
//! - [`tun`]: the TUN device the embedded stack talks through.
//! - [`pcap_tap`]: a pcap writer for every packet the embedded stack sends
//!   and receives.
//! - [`embedded`]: the poll loop driving the embedded stack through the TUN
//!   (`--stack embedded`).
//! - [`gso`]: merging the stack's segments into TSO super-packets for the TUN.
//! - [`fuzz`]: arbitrary network input fed to a listening stack (the fuzz
//!   target's and the proptest's harness).
//! - [`control_server`]: serves [`crate::control`]'s protocol on a Unix socket.
//! - [`signals`]: SIGINT/SIGTERM/SIGHUP as a pollable fd, so every loop ends
//!   cleanly and destructors undo what was set up.
//! - [`sys`]: the shared libc wrappers.
pub mod control_server;
pub mod embedded;
pub mod fuzz;
pub mod gso;
pub mod kernel;
pub mod netlink;
pub mod pcap_tap;
pub mod pm;
pub mod signals;
pub mod sys;
pub mod tun;
