//! Flows that have shown nothing but their SYN, held in a few words.
//!
//! A capture of a SYN flood (or of a scan, or of a server that never
//! answers) is mostly such flows: a [`Flow`] and, for an MP_CAPABLE SYN, a
//! [`Conn`] each would cost far more memory than the packet itself. A SYN
//! whose facts fit in a [`SynOnly`] (no payload, and no MPTCP option but a
//! plain v1 MP_CAPABLE, RFC 8684 §3.1, which carries no key in the SYN) is
//! kept as one; its second packet makes it the [`Flow`] (and [`Conn`]) the
//! SYN would have made ([`SynOnly::expand`]), and the reports and
//! snapshots expand the ones still held when they are asked for.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::flows::FlowKey;
use super::{Conn, Flow, Opts, Role};
use crate::dissect::options::MpCapable;
use crate::dissect::packet::TcpSegment;
use crate::seq::SubflowSeq;

/// Flow table values with this bit set index [`super::Analyzer::syns`].
pub(super) const COMPACT: u32 = 1 << 31;

/// A flow that has shown only its SYN.
#[derive(Clone, Copy, Debug)]
pub(super) struct SynOnly {
    pub key: FlowKey,
    pub frame: u64,
    /// The flow's number.
    pub number: u32,
    /// The connection's number, 0 for a SYN without MP_CAPABLE.
    pub conn: u32,
    pub isn: u32,
    /// The MP_CAPABLE's version and flags.
    pub version: u8,
    pub flags: u8,
    /// Bit 0: the client is the key's low endpoint; bit 1: IPv6.
    pub bits: u8,
}

impl SynOnly {
    /// Whether a flow's first segment, a SYN, can be held as a [`SynOnly`]:
    /// `Some(None)` for a plain SYN, `Some(Some((version, flags)))` for an
    /// MP_CAPABLE one that carries nothing more.
    pub fn fits(o: &Opts, tcp: &TcpSegment<'_>) -> Option<Option<(u8, u8)>> {
        if tcp.payload_len > 0 || o.bad {
            return None;
        }
        if !o.any {
            return Some(None);
        }
        let r = o.rare.as_deref()?;
        let m = r.mpc?;
        let only_mpc = o.dss.is_none()
            && r.join.is_none()
            && r.add_addr.is_none()
            && r.rm.is_none()
            && r.prio.is_none()
            && r.fail.is_none()
            && r.fastclose.is_none()
            && r.tcprst.is_none();
        (only_mpc && m == syn_option(m.version, m.flags)).then_some(Some((m.version, m.flags)))
    }

    fn mptcp(&self) -> bool {
        self.conn != 0
    }

    /// The client's and the server's addresses.
    fn ends(&self) -> (SocketAddr, SocketAddr) {
        let (lo, hi) = self.key.ends();
        let v6 = self.bits & 2 != 0;
        let addr = |(bits, port): (u128, u16)| {
            let ip = match Ipv6Addr::from(bits).to_ipv4_mapped() {
                Some(v4) if !v6 => IpAddr::V4(v4),
                _ if !v6 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                _ => IpAddr::V6(Ipv6Addr::from(bits)),
            };
            SocketAddr::new(ip, port)
        };
        if self.bits & 1 != 0 { (addr(lo), addr(hi)) } else { (addr(hi), addr(lo)) }
    }

    /// The flow (and connection, without its subflow list) the SYN made.
    pub fn expand(&self) -> (Flow, Option<Conn>) {
        let (client, server) = self.ends();
        let mut f = Flow::new(self.number, client, server, self.bits & 1 != 0, self.frame);
        f.packets = 1;
        f.syn_frame = Some(self.frame);
        f.dirs[0].isn = Some(self.isn);
        f.dirs[0].high = Some((SubflowSeq(self.isn) + 1u32).0);
        if !self.mptcp() {
            f.role = Role::Plain;
            return (f, None);
        }
        f.role = Role::Initial;
        f.sf = 1;
        f.ids = [Some(0), Some(0)];
        let m = syn_option(self.version, self.flags);
        f.syn_mpc = Some(m);
        let mut c = Conn::new(self.conn, client, server, self.frame);
        c.version = Some(m.version);
        c.checksum = m.checksum_required();
        (f, Some(c))
    }
}

/// The MP_CAPABLE of a SYN that carries no key (v1, RFC 8684 §3.1).
fn syn_option(version: u8, flags: u8) -> MpCapable {
    MpCapable { version, flags, sender_key: None, receiver_key: None, data_len: None, checksum: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syn_only_flow_is_a_few_words() {
        // The key (two addresses as 128 bits, two ports), a frame number and
        // a few small fields.
        assert!(std::mem::size_of::<SynOnly>() <= 64, "{}", std::mem::size_of::<SynOnly>());
        assert!(std::mem::size_of::<SynOnly>() * 4 < std::mem::size_of::<Flow>());
    }

    #[test]
    fn ends_come_back_as_they_were() {
        for (c, s) in
            [("10.0.0.1:1000", "10.0.0.2:80"), ("10.0.0.9:1000", "10.0.0.2:80"), ("[fd00::1]:5", "[::ffff:1.2.3.4]:6")]
        {
            let c: SocketAddr = c.parse().unwrap();
            let s: SocketAddr = s.parse().unwrap();
            let (key, lo) = FlowKey::new(c.ip(), c.port(), s.ip(), s.port());
            let rec = SynOnly {
                key,
                frame: 1,
                number: 1,
                conn: 0,
                isn: 0,
                version: 1,
                flags: 1,
                bits: lo as u8 | (c.is_ipv6() as u8) << 1,
            };
            assert_eq!(rec.ends(), (c, s));
        }
    }
}
