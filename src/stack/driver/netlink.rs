//! The netlink transport as the TUN set-up ([`super::tun`], rtnetlink)
//! calls it, in `io::Result` terms: a thin adapter over the crate's one
//! netlink layer, [`crate::sys::netlink`]. The path-manager client
//! ([`super::pm`]) uses that layer directly.

use std::io;

pub use crate::sys::netlink::{
    NETLINK_GENERIC, NETLINK_ROUTE, NLA_F_NESTED, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
    Request as Msg,
};

/// An open netlink socket whose errors are `io::Error`s (the kernel's
/// negative acknowledgement as its errno).
pub struct Socket(crate::sys::netlink::Socket);

impl Socket {
    pub fn open(protocol: i32) -> io::Result<Socket> {
        Ok(Socket(crate::sys::netlink::Socket::open(protocol)?))
    }

    /// Send `msg` and return the payloads (after the nlmsghdr) of every
    /// reply message until the acknowledgement or the end of a dump.
    pub fn request(&mut self, msg: &mut Msg) -> io::Result<Vec<Vec<u8>>> {
        Ok(self.0.transact("request", msg)?.into_iter().map(|m| m.payload).collect())
    }
}
