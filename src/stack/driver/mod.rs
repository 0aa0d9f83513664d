//! Drivers of the embedded stack: the only stack code that owns file
//! descriptors and reads clocks. The host kernel's own interfaces they use
//! (the TUN device, signals, poll) are in [`crate::sys`].
//!
//! - [`tun_loop`]: the poll loop driving the embedded stack through the TUN
//!   (`--stack embedded`).
//! - [`gso`]: the virtio-net header of every packet written to the TUN, and
//!   the stack's segments merged into TSO super-packets.
//! - [`pcap_tap`]: a pcap writer for every packet the embedded stack sends
//!   and receives.
//! - [`control_server`]: serves [`crate::control`]'s protocol on a Unix socket.
pub mod control_server;
pub mod gso;
pub mod pcap_tap;
pub mod tun_loop;
