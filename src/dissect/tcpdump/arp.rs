//! ARP (RFC 826) for IPv4 over Ethernet.

use super::fmt::{be16, dec, ipv4, mac};

/// `ARP, Request who-has A tell B, length N` (`-v` adds the address
/// types); other hardware or protocols by length only.
pub(super) fn arp(out: &mut Vec<u8>, a: &[u8], len: u32, verbose: bool) {
    out.extend_from_slice(b"ARP, ");
    if a.len() < 28 || be16(a, 0) != 1 || be16(a, 2) != 0x0800 || a[4] != 6 || a[5] != 4 {
        out.extend_from_slice(b"unknown hardware or protocol, length ");
        dec(out, len as u64);
        return;
    }
    if verbose {
        out.extend_from_slice(b"Ethernet (len 6), IPv4 (len 4), ");
    }
    let sha = &a[8..14];
    let spa = [a[14], a[15], a[16], a[17]];
    let tha = &a[18..24];
    let tpa = [a[24], a[25], a[26], a[27]];
    match be16(a, 6) {
        1 => {
            out.extend_from_slice(b"Request who-has ");
            ipv4(out, tpa);
            if tha.iter().any(|&b| b != 0) {
                out.extend_from_slice(b" (");
                mac(out, tha);
                out.push(b')');
            }
            out.extend_from_slice(b" tell ");
            ipv4(out, spa);
        }
        2 => {
            out.extend_from_slice(b"Reply ");
            ipv4(out, spa);
            out.extend_from_slice(b" is-at ");
            mac(out, sha);
        }
        op => {
            out.extend_from_slice(b"op ");
            dec(out, op as u64);
        }
    }
    out.extend_from_slice(b", length ");
    dec(out, len as u64);
}
