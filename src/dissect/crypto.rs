//! MPTCP crypto: keys, tokens, IDSNs, the MP_JOIN and ADD_ADDR HMACs and the
//! DSS checksum.
//!
//! - RFC 8684 §3.1 (v1): token = most significant 32 bits of SHA-256(key),
//!   IDSN = least significant 64 bits of SHA-256(key), key hashed as 8 bytes
//!   in network order. RFC 6824 §3.1 (v0): the same with SHA-1.
//! - RFC 8684 §3.2: MP_JOIN HMACs; §3.4.1: ADD_ADDR HMAC; §3.3.1: DSS checksum.

use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::fmt;
use std::net::IpAddr;

/// The DSS checksum is an Internet checksum ([`dss_checksum_start`] returns
/// one); its one implementation is [`crate::checksum`].
pub use crate::checksum::InternetChecksum;

/// The MPTCP protocol version a key belongs to; it selects the hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Default)]
pub enum Version {
    /// RFC 6824, SHA-1.
    V0,
    /// RFC 8684, SHA-256.
    #[default]
    V1,
}

impl Version {
    pub fn from_wire(v: u8) -> Option<Version> {
        match v {
            0 => Some(Version::V0),
            1 => Some(Version::V1),
            _ => None,
        }
    }
    pub fn number(self) -> u8 {
        match self {
            Version::V0 => 0,
            Version::V1 => 1,
        }
    }
}

/// A 64-bit MPTCP key (RFC 8684 §3.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Key(pub u64);

/// A 32-bit connection token.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Token(pub u32);

/// The initial data sequence number derived from a key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Idsn(pub u64);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:#018x})", self.0)
    }
}
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({:#010x})", self.0)
    }
}
impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}
impl fmt::Debug for Idsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Idsn({:#018x})", self.0)
    }
}
impl fmt::Display for Idsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

fn digest_key(key: Key, version: Version) -> [u8; 32] {
    // Large enough for SHA-256; SHA-1 fills the first 20 bytes.
    let mut out = [0u8; 32];
    match version {
        Version::V1 => out.copy_from_slice(&Sha256::digest(key.0.to_be_bytes())),
        Version::V0 => out[..20].copy_from_slice(&Sha1::digest(key.0.to_be_bytes())),
    }
    out
}

impl Key {
    /// The token: most significant 32 bits of the hash (RFC 8684 §3.1).
    pub fn token(self, version: Version) -> Token {
        let d = digest_key(self, version);
        Token(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))
    }

    /// The IDSN: least significant 64 bits of the hash (RFC 8684 §3.1).
    pub fn idsn(self, version: Version) -> Idsn {
        let d = digest_key(self, version);
        let n = match version {
            Version::V1 => 32,
            Version::V0 => 20,
        };
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[n - 8..n]);
        Idsn(u64::from_be_bytes(b))
    }

    /// Token and IDSN from one hash computation.
    pub fn token_idsn(self, version: Version) -> (Token, Idsn) {
        (self.token(version), self.idsn(version))
    }
}

/// Full HMAC over `key1 || key2` (both 8 bytes, network order) and `msg`:
/// 32 bytes for v1 (HMAC-SHA256), 20 bytes for v0 (HMAC-SHA1) followed by zeros.
pub fn hmac_keys(version: Version, key1: Key, key2: Key, msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&key1.0.to_be_bytes());
    k[8..].copy_from_slice(&key2.0.to_be_bytes());
    let mut out = [0u8; 32];
    match version {
        Version::V1 => {
            let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&k).expect("HMAC accepts keys of any length");
            m.update(msg);
            out.copy_from_slice(&m.finalize().into_bytes());
        }
        Version::V0 => {
            let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(&k).expect("HMAC accepts keys of any length");
            m.update(msg);
            out[..20].copy_from_slice(&m.finalize().into_bytes());
        }
    }
    out
}

fn nonces(n1: u32, n2: u32) -> [u8; 8] {
    let mut m = [0u8; 8];
    m[..4].copy_from_slice(&n1.to_be_bytes());
    m[4..].copy_from_slice(&n2.to_be_bytes());
    m
}

/// The truncated HMAC in the MP_JOIN SYN/ACK sent by B (the listener):
/// leftmost 64 bits of HMAC(Key=(Key-B, Key-A), Msg=(R-B, R-A)) (RFC 8684 §3.2).
pub fn join_synack_hmac(version: Version, key_b: Key, key_a: Key, nonce_b: u32, nonce_a: u32) -> u64 {
    let h = hmac_keys(version, key_b, key_a, &nonces(nonce_b, nonce_a));
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes"))
}

/// The HMAC in the MP_JOIN third ACK sent by A (the initiator):
/// leftmost 160 bits of HMAC(Key=(Key-A, Key-B), Msg=(R-A, R-B)) (RFC 8684 §3.2).
pub fn join_ack_hmac(version: Version, key_a: Key, key_b: Key, nonce_a: u32, nonce_b: u32) -> [u8; 20] {
    let h = hmac_keys(version, key_a, key_b, &nonces(nonce_a, nonce_b));
    h[..20].try_into().expect("20 bytes")
}

/// The ADD_ADDR truncated HMAC: rightmost 64 bits of
/// HMAC-SHA256(Key=(Key-sender, Key-receiver), Msg=(Address ID, Address, Port))
/// with the port as two bytes, zero when absent (RFC 8684 §3.4.1; the Linux
/// kernel always hashes the two port bytes).
pub fn add_addr_hmac(key_sender: Key, key_receiver: Key, addr_id: u8, addr: IpAddr, port: Option<u16>) -> u64 {
    let mut msg = [0u8; 19];
    msg[0] = addr_id;
    let mut n = 1;
    match addr {
        IpAddr::V4(a) => {
            msg[n..n + 4].copy_from_slice(&a.octets());
            n += 4;
        }
        IpAddr::V6(a) => {
            msg[n..n + 16].copy_from_slice(&a.octets());
            n += 16;
        }
    }
    msg[n..n + 2].copy_from_slice(&port.unwrap_or(0).to_be_bytes());
    n += 2;
    let h = hmac_keys(Version::V1, key_sender, key_receiver, &msg[..n]);
    u64::from_be_bytes(h[24..32].try_into().expect("8 bytes"))
}

/// The DSS pseudo-header (RFC 8684 §3.3.1, Figure 7): DSN (64 bits, even when
/// the option carries 4), relative subflow sequence number, data-level length,
/// and a zero checksum field.
pub fn dss_pseudo_header(dsn: u64, ssn: u32, data_len: u16, checksum: u16) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(&dsn.to_be_bytes());
    h[8..12].copy_from_slice(&ssn.to_be_bytes());
    h[12..14].copy_from_slice(&data_len.to_be_bytes());
    h[14..16].copy_from_slice(&checksum.to_be_bytes());
    h
}

/// Starts a DSS checksum computation: feed the mapping's payload with
/// [`InternetChecksum::add`] and call [`InternetChecksum::finish`] for the value
/// to send.
pub fn dss_checksum_start(dsn: u64, ssn: u32, data_len: u16) -> InternetChecksum {
    let mut c = InternetChecksum::new();
    c.add(&dss_pseudo_header(dsn, ssn, data_len, 0));
    c
}

/// The DSS checksum of a mapping whose payload is in one slice.
pub fn dss_checksum(dsn: u64, ssn: u32, data_len: u16, payload: &[u8]) -> u16 {
    let mut c = dss_checksum_start(dsn, ssn, data_len);
    c.add(payload);
    c.finish()
}

/// Verify a received DSS checksum: the sum over the pseudo-header with the
/// received checksum in place, plus the payload, folds to 0xffff.
pub fn dss_checksum_ok(dsn: u64, ssn: u32, data_len: u16, checksum: u16, payload: &[u8]) -> bool {
    dss_checksum(dsn, ssn, data_len, payload) == checksum
}

#[cfg(test)]
mod tests {
    use super::*;

    // Golden vectors from PROTOCOL.md (a real Linux capture).
    #[test]
    fn golden_token_idsn() {
        let (t, i) = Key(0xbb206e3023b47a2d).token_idsn(Version::V1);
        assert_eq!(t, Token(0xb85a1ad2));
        assert_eq!(i, Idsn(0x127af91ad1b321fa));
        assert_eq!(i.0, 1331650533424046586);
        let (t, i) = Key(0x41923206b75835f5).token_idsn(Version::V1);
        assert_eq!(t, Token(0x768f615c));
        assert_eq!(i, Idsn(0x17c15fa7d0f7d6ef));
        assert_eq!(i.0 + 1 + 16, 1711754507747579648);
    }

    #[test]
    fn dss_checksum_verifies_itself() {
        let p = b"hello world\n";
        let c = dss_checksum(0x1122334455667788, 1, p.len() as u16, p);
        assert!(dss_checksum_ok(0x1122334455667788, 1, p.len() as u16, c, p));
        assert!(!dss_checksum_ok(0x1122334455667788, 1, p.len() as u16, c ^ 1, p));
    }
}
