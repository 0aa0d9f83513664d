//! UDP (RFC 768) as tcpdump 4.99's `udp_print` prints it, with the DNS
//! queries (RFC 1035) tcpdump decodes on port 53.

use super::fmt::{be16, dec, hex_pad, print_char};
use super::ip::{cksum_shouldbe, transport_checksum};
use crate::dissect::packet::IpInfo;

/// tcpdump 4.99's `udp_print`: the checksum with -v for IPv6, with -vv for
/// IPv4 (where 0 means none was computed).
pub(super) fn udp(out: &mut Vec<u8>, ip: &IpInfo, sport: u16, dport: u16, ulen: u16, raw: &[u8], verbose: u8) {
    let check = if ip.is_v6() { verbose > 0 } else { verbose > 1 };
    if check && raw.len() >= ulen as usize && ulen >= 8 {
        let field = u16::from_be_bytes([raw[6], raw[7]]);
        if field == 0 && !ip.is_v6() {
            out.extend_from_slice(b"[no cksum] ");
        } else {
            let sum = transport_checksum(ip, 17, &raw[..ulen as usize]);
            if sum == 0 {
                out.extend_from_slice(b"[udp sum ok] ");
            } else {
                out.extend_from_slice(b"[bad udp cksum 0x");
                hex_pad(out, field as u64, 4);
                out.extend_from_slice(b" -> 0x");
                hex_pad(out, cksum_shouldbe(field, sum) as u64, 4);
                out.extend_from_slice(b"!] ");
            }
        }
    }
    let payload = raw.get(8..).unwrap_or(&[]);
    if (sport == 53 || dport == 53) && dns(out, payload) {
        out.extend_from_slice(b" (");
        dec(out, ulen.saturating_sub(8) as u64);
        out.push(b')');
        return;
    }
    out.extend_from_slice(b"UDP, length ");
    dec(out, ulen.saturating_sub(8) as u64);
}

/// A DNS query (RFC 1035 §4.1) as tcpdump prints it: `61359+ A? name.`
/// Returns false for what this printer does not handle (responses, several
/// questions), which fall back to the plain UDP line.
fn dns(out: &mut Vec<u8>, m: &[u8]) -> bool {
    if m.len() < 12 {
        return false;
    }
    let id = be16(m, 0);
    let flags = be16(m, 2);
    let qd = be16(m, 4);
    if flags & 0x8000 != 0 || qd != 1 || flags & 0x7800 != 0 {
        return false;
    }
    let mut name = Vec::with_capacity(64);
    let mut p = 12;
    loop {
        let Some(&l) = m.get(p) else { return false };
        p += 1;
        if l == 0 {
            break;
        }
        if l & 0xc0 != 0 || p + l as usize > m.len() {
            return false;
        }
        name.extend_from_slice(&m[p..p + l as usize]);
        name.push(b'.');
        p += l as usize;
    }
    if name.is_empty() {
        name.push(b'.');
    }
    if p + 4 > m.len() {
        return false;
    }
    let qtype = be16(m, p);
    let qclass = be16(m, p + 2);
    dec(out, id as u64);
    if flags & 0x0100 != 0 {
        out.push(b'+');
    }
    if flags & 0x0010 != 0 {
        out.push(b'%');
    }
    for (count, tag) in [(be16(m, 6), b'a'), (be16(m, 8), b'n')] {
        if count != 0 {
            out.extend_from_slice(b" [");
            dec(out, count as u64);
            out.push(tag);
            out.push(b']');
        }
    }
    let ar = be16(m, 10);
    if ar != 0 {
        out.extend_from_slice(b" [");
        dec(out, ar as u64);
        out.extend_from_slice(b"au]");
    }
    out.push(b' ');
    match qtype {
        1 => out.extend_from_slice(b"A"),
        2 => out.extend_from_slice(b"NS"),
        5 => out.extend_from_slice(b"CNAME"),
        6 => out.extend_from_slice(b"SOA"),
        12 => out.extend_from_slice(b"PTR"),
        15 => out.extend_from_slice(b"MX"),
        16 => out.extend_from_slice(b"TXT"),
        28 => out.extend_from_slice(b"AAAA"),
        33 => out.extend_from_slice(b"SRV"),
        65 => out.extend_from_slice(b"HTTPS"),
        255 => out.extend_from_slice(b"ANY"),
        t => {
            out.extend_from_slice(b"Type");
            dec(out, t as u64);
        }
    }
    if qclass != 1 {
        out.extend_from_slice(b" (Class ");
        dec(out, qclass as u64);
        out.push(b')');
    }
    out.extend_from_slice(b"? ");
    for &c in &name {
        print_char(out, c);
    }
    true
}
