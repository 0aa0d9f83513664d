//! SYN cookies (RFC 4987 §3.6) for a listener whose queue of half-open
//! connections is full: the SYN/ACK is answered from no state, and what
//! the connection needs of the SYN comes back in the ACK that completes
//! the handshake.
//!
//! - The TCP part travels in our initial sequence number, which the ACK
//!   acknowledges (ISN + 1): a keyed MAC over the 4-tuple, the peer's
//!   ISN, a 64-second time slot and the parameters, with the parameters
//!   in clear in the low bits: MSS (one of four values, as Linux's
//!   table), window scale, SACK permitted. Timestamps need no bit: the
//!   ACK carries them only if both SYN and SYN/ACK did. Our timestamp
//!   offset is a keyed hash of the 4-tuple, so the rebuilt connection's
//!   TSvals continue those of the SYN/ACK (RFC 7323 §5.4).
//! - The MPTCP part (RFC 8684 §3.1): in v1 the client's third ACK (or its
//!   first data segment) carries both keys, as Linux's syncookies rely on
//!   (net/mptcp/syncookies.c). We go one step further: our key is not
//!   random but derived from the secret, the 4-tuple and both ISNs, so the
//!   receiver key the ACK echoes is checked, and only a peer that saw our
//!   SYN/ACK can complete an MPTCP handshake.
//!
//! A cookie is accepted for two minutes (the current slot and the one
//! before it, as Linux's MAX_SYNCOOKIE_AGE), and only while cookies were
//! sent recently: a blind attacker has nothing to guess otherwise.

use std::net::{IpAddr, SocketAddr};

use sha2::{Digest, Sha256};

use super::time::{Duration, Instant};
use crate::dissect::crypto::Key;
use crate::seq::SubflowSeq;

/// MSS values a cookie can carry: the largest one not above the peer's MSS
/// is used (Linux's IPv4 table, RFC 4987 §3.6).
const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];

/// A time slot lasts 64 s; a cookie of the current or the previous slot is
/// good.
const SLOT_SECS: u64 = 64;

/// How long after the last cookie sent ACKs are still checked for one.
const ACCEPT_FOR: Duration = Duration::from_secs(2 * SLOT_SECS);

/// What a cookie keeps of the SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SynParams {
    /// The MSS to use (from the table, not above the peer's).
    pub mss: u16,
    /// The peer's window scale shift, if its SYN had the option.
    pub wscale: Option<u8>,
    pub sack: bool,
}

impl SynParams {
    /// The parameters of a SYN (its MSS option, absent: 536, RFC 9293 §3.7.1).
    pub fn of(mss: Option<u16>, wscale: Option<u8>, sack: bool) -> SynParams {
        let peer = mss.unwrap_or(536);
        let mss = MSS_TABLE.iter().rev().copied().find(|&m| m <= peer).unwrap_or(MSS_TABLE[0]);
        SynParams { mss, wscale: wscale.map(|w| w.min(14)), sack }
    }

    /// The 9 low bits of a cookie: MSS index (2), slot (2, added by the
    /// caller), SACK (1), window scale + 1 (4; 0: none).
    fn bits(self) -> u32 {
        let idx = MSS_TABLE.iter().position(|&m| m == self.mss).unwrap_or(0) as u32;
        let ws = self.wscale.map_or(0, |w| u32::from(w) + 1);
        (idx << 5) | (u32::from(self.sack) << 4) | ws
    }

    fn from_bits(b: u32) -> SynParams {
        let ws = b & 0xf;
        SynParams {
            mss: MSS_TABLE[((b >> 5) & 3) as usize],
            sack: (b >> 4) & 1 == 1,
            wscale: (ws != 0).then(|| (ws - 1).min(14) as u8),
        }
    }
}

/// The secret and what the listener needs to check cookies.
#[derive(Debug)]
pub(crate) struct CookieJar {
    secret: [u8; 32],
    /// When the last cookie went out: ACKs are checked for one until
    /// [`ACCEPT_FOR`] after it.
    last_sent: Option<Instant>,
}

fn hash_addr(h: &mut Sha256, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(v) => h.update(v.octets()),
        IpAddr::V6(v) => h.update(v.octets()),
    }
    h.update(a.port().to_be_bytes());
}

impl CookieJar {
    pub fn new(secret: [u8; 32]) -> CookieJar {
        CookieJar { secret, last_sent: None }
    }

    fn digest(&self, tag: u8, local: SocketAddr, remote: SocketAddr, rest: &[u8]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update([tag]);
        hash_addr(&mut h, local);
        hash_addr(&mut h, remote);
        h.update(rest);
        h.finalize().into()
    }

    fn slot(now: Instant) -> u64 {
        now.as_micros() / 1_000_000 / SLOT_SECS
    }

    fn mac(&self, slot: u64, local: SocketAddr, remote: SocketAddr, peer_isn: SubflowSeq, bits: u32) -> u32 {
        let mut m = [0u8; 16];
        m[..8].copy_from_slice(&slot.to_be_bytes());
        m[8..12].copy_from_slice(&peer_isn.0.to_be_bytes());
        m[12..].copy_from_slice(&bits.to_be_bytes());
        let d = self.digest(b'c', local, remote, &m);
        u32::from_be_bytes([d[0], d[1], d[2], d[3]]) >> 9
    }

    /// Our ISN for a SYN answered statelessly (and note that cookies are in use).
    pub fn make(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        peer_isn: SubflowSeq,
        p: SynParams,
    ) -> SubflowSeq {
        self.last_sent = Some(now);
        let slot = Self::slot(now);
        let bits = p.bits() | (((slot & 3) as u32) << 7);
        SubflowSeq((self.mac(slot, local, remote, peer_isn, bits) << 9) | bits)
    }

    /// Whether ACKs without a connection should be checked for a cookie.
    pub fn in_use(&self, now: Instant) -> bool {
        self.last_sent.is_some_and(|t| now < t + ACCEPT_FOR)
    }

    /// The parameters of a valid cookie: `cookie` is the ACK's
    /// acknowledgment number less one, `peer_isn` its sequence number less one.
    pub fn check(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        peer_isn: SubflowSeq,
        cookie: SubflowSeq,
    ) -> Option<SynParams> {
        let c = cookie.0;
        let bits = c & 0x1ff;
        let cur = Self::slot(now);
        let slot = (0..2).map(|age| cur.wrapping_sub(age)).find(|s| (s & 3) as u32 == (bits >> 7) & 3)?;
        (self.mac(slot, local, remote, peer_isn, bits) == c >> 9).then(|| SynParams::from_bits(bits & 0x7f))
    }

    /// Our MPTCP key for this handshake (RFC 8684 §3.1: keys must be
    /// unpredictable; this one is, to anyone without the secret).
    pub fn key(&self, local: SocketAddr, remote: SocketAddr, peer_isn: SubflowSeq, iss: SubflowSeq) -> Key {
        let mut m = [0u8; 8];
        m[..4].copy_from_slice(&peer_isn.0.to_be_bytes());
        m[4..].copy_from_slice(&iss.0.to_be_bytes());
        let d = self.digest(b'k', local, remote, &m);
        Key(u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]))
    }

    /// Our timestamp offset for this 4-tuple (RFC 7323 §5.4), the same for
    /// the SYN/ACK and the connection rebuilt from its cookie.
    pub fn ts_offset(&self, local: SocketAddr, remote: SocketAddr) -> u32 {
        let d = self.digest(b't', local, remote, &[]);
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jar() -> CookieJar {
        CookieJar::new([7; 32])
    }

    #[test]
    fn a_cookie_comes_back_with_its_parameters() {
        let mut j = jar();
        let (l, r): (SocketAddr, SocketAddr) = ("10.0.0.2:80".parse().unwrap(), "10.0.0.9:4000".parse().unwrap());
        let now = Instant::from_secs(1000);
        for p in [
            SynParams::of(Some(1460), Some(7), true),
            SynParams::of(Some(1400), None, false),
            SynParams::of(None, Some(14), true),
            SynParams::of(Some(9000), Some(0), false),
        ] {
            let isn = j.make(now, l, r, SubflowSeq(5), p);
            assert_eq!(j.check(now + Duration::from_secs(30), l, r, SubflowSeq(5), isn), Some(p));
            // Another tuple, another peer ISN, a flipped bit: refused.
            assert_eq!(j.check(now, l, "10.0.0.9:4001".parse().unwrap(), SubflowSeq(5), isn), None);
            assert_eq!(j.check(now, l, r, SubflowSeq(6), isn), None);
            for bit in 0..32 {
                assert_eq!(j.check(now, l, r, SubflowSeq(5), SubflowSeq(isn.0 ^ (1 << bit))), None, "bit {bit}");
            }
        }
        assert_eq!(SynParams::of(Some(1400), None, false).mss, 1300);
        assert_eq!(SynParams::of(Some(100), None, false).mss, 536);
    }

    #[test]
    fn a_cookie_expires_after_two_slots() {
        let mut j = jar();
        let (l, r): (SocketAddr, SocketAddr) = ("[fd00::2]:80".parse().unwrap(), "[fd00::9]:4000".parse().unwrap());
        let now = Instant::from_secs(64 * 100 + 63);
        let p = SynParams::of(Some(1440), Some(7), true);
        let isn = j.make(now, l, r, SubflowSeq(99), p);
        assert!(j.in_use(now));
        assert_eq!(j.check(now + Duration::from_secs(64), l, r, SubflowSeq(99), isn), Some(p));
        assert_eq!(j.check(now + Duration::from_secs(130), l, r, SubflowSeq(99), isn), None);
        assert!(!j.in_use(now + Duration::from_secs(129)));
    }

    #[test]
    fn keys_and_offsets_are_per_tuple() {
        let j = jar();
        let (l, r): (SocketAddr, SocketAddr) = ("10.0.0.2:80".parse().unwrap(), "10.0.0.9:4000".parse().unwrap());
        let r2: SocketAddr = "10.0.0.9:4001".parse().unwrap();
        assert_eq!(j.key(l, r, SubflowSeq(1), SubflowSeq(2)), j.key(l, r, SubflowSeq(1), SubflowSeq(2)));
        assert_ne!(j.key(l, r, SubflowSeq(1), SubflowSeq(2)), j.key(l, r2, SubflowSeq(1), SubflowSeq(2)));
        assert_ne!(j.key(l, r, SubflowSeq(1), SubflowSeq(2)), j.key(l, r, SubflowSeq(1), SubflowSeq(3)));
        assert_ne!(j.ts_offset(l, r), j.ts_offset(l, r2));
        assert_ne!(CookieJar::new([8; 32]).ts_offset(l, r), j.ts_offset(l, r));
    }
}
