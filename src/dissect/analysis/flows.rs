//! The flow table: TCP 4-tuples to flow indices, built for the summary fast
//! path (one hash of four words per packet, a one-entry cache in front).

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use crate::dissect::hash::WordMap;

/// An address as 128 bits (IPv4 mapped into IPv6, RFC 4291 §2.5.5.2), so a
/// key is four words and two ports whatever the family.
pub(crate) fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => 0xffff_0000_0000u128 | u32::from(v4) as u128,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// A TCP connection's 4-tuple with the two endpoints in a canonical order,
/// so both directions find the same entry. The addresses are kept as 64-bit
/// halves (high first): 40 bytes aligned to 8, where `u128`s would make 48
/// (a table entry and a [`super::synonly::SynOnly`] are this key and a few
/// words).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct FlowKey {
    lo_addr: [u64; 2],
    hi_addr: [u64; 2],
    lo_port: u16,
    hi_port: u16,
}

fn halves(a: u128) -> [u64; 2] {
    [(a >> 64) as u64, a as u64]
}

fn whole(h: [u64; 2]) -> u128 {
    (h[0] as u128) << 64 | h[1] as u128
}

impl FlowKey {
    /// The key and whether the source is the canonical "low" endpoint.
    #[inline]
    pub(crate) fn new(src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> (FlowKey, bool) {
        let (s, d) = (addr_bits(src), addr_bits(dst));
        if (s, sport) <= (d, dport) {
            (FlowKey { lo_addr: halves(s), hi_addr: halves(d), lo_port: sport, hi_port: dport }, true)
        } else {
            (FlowKey { lo_addr: halves(d), hi_addr: halves(s), lo_port: dport, hi_port: sport }, false)
        }
    }
}

impl FlowKey {
    /// The low and the high endpoint (address bits as [`addr_bits`] makes
    /// them, port).
    pub(crate) fn ends(&self) -> ((u128, u16), (u128, u16)) {
        ((whole(self.lo_addr), self.lo_port), (whole(self.hi_addr), self.hi_port))
    }
}

impl Hash for FlowKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.lo_addr[1]);
        state.write_u64(self.lo_addr[0]);
        state.write_u64(self.hi_addr[1]);
        state.write_u64(self.hi_addr[0]);
        state.write_u32((self.lo_port as u32) << 16 | self.hi_port as u32);
    }
}

/// 4-tuple -> index of the current flow on it, with the last hit cached.
#[derive(Debug, Default)]
pub(crate) struct FlowTable {
    map: WordMap<FlowKey, u32>,
    last: Option<(FlowKey, u32)>,
}

impl FlowTable {
    #[inline]
    pub(crate) fn get(&mut self, key: &FlowKey) -> Option<u32> {
        if let Some((k, v)) = self.last
            && k == *key
        {
            return Some(v);
        }
        let v = *self.map.get(key)?;
        self.last = Some((*key, v));
        Some(v)
    }

    /// Points the 4-tuple at a (new) flow.
    pub(crate) fn set(&mut self, key: FlowKey, idx: u32) {
        self.map.insert(key, idx);
        self.last = Some((key, idx));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_share_a_key() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let (k1, lo1) = FlowKey::new(a, 1000, b, 80);
        let (k2, lo2) = FlowKey::new(b, 80, a, 1000);
        assert_eq!(k1, k2);
        assert_ne!(lo1, lo2);
        // Same addresses, ports swapped: a different flow.
        let (k3, _) = FlowKey::new(a, 80, b, 1000);
        assert_ne!(k1, k3);
        // IPv4 and its mapped IPv6 form are the same endpoint; a different
        // IPv6 address is not.
        let c: IpAddr = "fd00::1".parse().unwrap();
        let (k4, _) = FlowKey::new(c, 1000, b, 80);
        assert_ne!(k1, k4);
    }

    #[test]
    fn table_caches_and_overwrites() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "fd00::2".parse().unwrap();
        let mut t = FlowTable::default();
        let (k, _) = FlowKey::new(a, 1, b, 2);
        assert_eq!(t.get(&k), None);
        t.set(k, 7);
        assert_eq!(t.get(&k), Some(7));
        t.set(k, 9);
        assert_eq!(t.get(&k), Some(9));
        assert_eq!(t.len(), 1);
    }
}
