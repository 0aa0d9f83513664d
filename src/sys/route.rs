//! The kernel's route lookup over rtnetlink (`ip route get DST from SRC`):
//! one RTM_GETROUTE request, answered with the route the kernel would use,
//! of which we keep the outgoing interface's index.

use std::net::IpAddr;

use super::netlink::{self, NETLINK_ROUTE, NLM_F_REQUEST, NetlinkError, Request, Socket};

const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTA_DST: u16 = 1;
const RTA_SRC: u16 = 2;
const RTA_OIF: u16 = 4;
/// `struct rtmsg`.
const RTMSG_LEN: usize = 12;

/// What the lookup answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The route leaves through this interface index.
    Via(u32),
    /// No route: the kernel's errno (ENETUNREACH, EHOSTUNREACH, EINVAL...).
    Unreachable(i32),
}

/// The route from `src` to `dst`, as the kernel would choose it for a packet
/// this host sends.
pub fn lookup(sock: &mut Socket, src: IpAddr, dst: IpAddr) -> Result<Lookup, NetlinkError> {
    let (family, src_b, dst_b, bits) = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (libc::AF_INET, s.octets().to_vec(), d.octets().to_vec(), 32u8),
        (IpAddr::V6(s), IpAddr::V6(d)) => (libc::AF_INET6, s.octets().to_vec(), d.octets().to_vec(), 128u8),
        _ => return Ok(Lookup::Unreachable(libc::EAFNOSUPPORT)),
    };
    let mut rtm = [0u8; RTMSG_LEN];
    rtm[0] = family as u8;
    rtm[1] = bits; // rtm_dst_len
    rtm[2] = bits; // rtm_src_len
    let mut r = Request::new(RTM_GETROUTE, NLM_F_REQUEST);
    r.bytes(&rtm).attr(RTA_DST, &dst_b).attr(RTA_SRC, &src_b);
    let answers = match sock.transact("route lookup", &mut r) {
        Ok(a) => a,
        Err(NetlinkError::Kernel { errno, .. }) => return Ok(Lookup::Unreachable(errno)),
        Err(e) => return Err(e),
    };
    for m in answers.iter().filter(|m| m.ty == RTM_NEWROUTE) {
        let Some(attrs) = m.payload.get(RTMSG_LEN..) else { continue };
        if let Some(oif) = netlink::attrs(attrs).find(RTA_OIF).and_then(|a| a.u32()) {
            return Ok(Lookup::Via(oif));
        }
    }
    Ok(Lookup::Unreachable(libc::ENETUNREACH))
}

/// A socket for [`lookup`].
pub fn socket() -> Result<Socket, NetlinkError> {
    Socket::open(NETLINK_ROUTE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_route_leaves_through_lo() {
        let mut s = socket().unwrap();
        let lo = "127.0.0.1".parse().unwrap();
        // SAFETY: a constant NUL-terminated name.
        let lo_index = unsafe { libc::if_nametoindex(c"lo".as_ptr()) };
        assert_eq!(lookup(&mut s, lo, lo).unwrap(), Lookup::Via(lo_index));
        // A source address no interface holds is refused by the kernel.
        let bogus = "198.51.100.77".parse().unwrap();
        assert!(matches!(lookup(&mut s, bogus, lo).unwrap(), Lookup::Unreachable(_)));
    }
}
