//! ICMP (RFC 792) and ICMPv6 (RFC 4443, RFC 4861): the common messages by
//! name, the checksum with `-v`.

use std::net::IpAddr;

use super::fmt::{addr, be16, dec, hex, hex_pad, ipv4};
use super::ip::{cksum_shouldbe, transport_checksum};
use crate::dissect::crypto::InternetChecksum;
use crate::dissect::packet::IpInfo;

/// The ICMP or ICMPv6 checksum, printed only when wrong (tcpdump's wording
/// differs by family). Returns whether it was right or not checkable.
fn icmp_check(out: &mut Vec<u8>, raw: &[u8], len: u32, sum: impl Fn(&[u8]) -> u16, v6: bool) -> bool {
    if raw.len() < len as usize || len < 4 {
        return true;
    }
    let s = sum(&raw[..len as usize]);
    if s == 0 {
        return true;
    }
    let field = be16(raw, 2);
    if v6 {
        out.extend_from_slice(b"[bad icmp6 cksum 0x");
        hex_pad(out, field as u64, 4);
        out.extend_from_slice(b" -> 0x");
        hex_pad(out, cksum_shouldbe(field, s) as u64, 4);
        out.extend_from_slice(b"!] ");
    } else {
        out.extend_from_slice(b" (wrong icmp cksum ");
        hex(out, field as u64);
        out.extend_from_slice(b" (->");
        hex(out, cksum_shouldbe(field, s) as u64);
        out.extend_from_slice(b")!)");
    }
    false
}

/// ICMP (RFC 792): echo, unreachable, time exceeded; others by number.
pub(super) fn icmp4(out: &mut Vec<u8>, ip: &IpInfo, raw: &[u8], verbose: bool) {
    let len = ip.payload_len();
    let (t, code) = (raw.first().copied().unwrap_or(0), raw.get(1).copied().unwrap_or(0));
    out.extend_from_slice(b"ICMP ");
    match t {
        0 | 8 if raw.len() >= 8 => echo(out, raw, t == 8),
        3 => {
            // The offending datagram's header follows the 8-byte ICMP header.
            let inner = raw.get(8..).unwrap_or(&[]);
            let ihl = inner.first().map_or(0, |b| (b & 0x0f) as usize * 4);
            if code == 3 && inner.len() >= ihl + 4 && ihl >= 20 {
                ipv4(out, [inner[16], inner[17], inner[18], inner[19]]);
                out.extend_from_slice(match inner[9] {
                    6 => b" tcp port ",
                    17 => b" udp port ",
                    _ => b" port ",
                });
                dec(out, be16(inner, ihl + 2) as u64);
                out.extend_from_slice(b" unreachable");
            } else if inner.len() >= 20 {
                ipv4(out, [inner[16], inner[17], inner[18], inner[19]]);
                out.extend_from_slice(match code {
                    0 => b" net unreachable",
                    1 => b" host unreachable",
                    2 => b" protocol unreachable",
                    4 => b" unreachable - need to frag",
                    _ => b" unreachable",
                });
            } else {
                out.extend_from_slice(b"unreachable");
            }
        }
        11 => {
            out.extend_from_slice(if code == 0 { b"time exceeded in-transit" } else { b"ip reassembly time exceeded" })
        }
        _ => {
            out.extend_from_slice(b"type-#");
            dec(out, t as u64);
        }
    }
    out.extend_from_slice(b", length ");
    dec(out, len as u64);
    if verbose {
        icmp_check(out, raw, len, ones, false);
    }
}

fn ones(seg: &[u8]) -> u16 {
    let mut c = InternetChecksum::new();
    c.add(seg);
    c.finish()
}

/// ICMPv6 (RFC 4443, RFC 4861): the common messages by name.
pub(super) fn icmp6(out: &mut Vec<u8>, ip: &IpInfo, raw: &[u8], verbose: bool) {
    let len = ip.payload_len();
    if verbose {
        let v6 = *ip;
        icmp_check(out, raw, len, |seg| transport_checksum(&v6, 58, seg), true);
    }
    out.extend_from_slice(b"ICMP6, ");
    let t = raw.first().copied().unwrap_or(0);
    let target = |out: &mut Vec<u8>| {
        if raw.len() >= 24 {
            let mut a = [0u8; 16];
            a.copy_from_slice(&raw[8..24]);
            addr(out, IpAddr::V6(a.into()));
        }
    };
    match t {
        128 | 129 if raw.len() >= 8 => {
            echo(out, raw, t == 128);
            if verbose {
                return;
            }
        }
        1 => out.extend_from_slice(b"destination unreachable"),
        2 => out.extend_from_slice(b"packet too big"),
        3 => out.extend_from_slice(b"time exceeded in-transit"),
        133 => out.extend_from_slice(b"router solicitation"),
        134 => out.extend_from_slice(b"router advertisement"),
        135 => {
            out.extend_from_slice(b"neighbor solicitation, who has ");
            target(out);
        }
        136 => {
            out.extend_from_slice(b"neighbor advertisement, tgt is ");
            target(out);
        }
        143 => out.extend_from_slice(b"multicast listener report v2"),
        _ => {
            out.extend_from_slice(b"type-#");
            dec(out, t as u64);
        }
    }
    out.extend_from_slice(b", length ");
    dec(out, len as u64);
}

/// `echo request, id N, seq M`: ICMP (RFC 792) and ICMPv6 (RFC 4443 §4)
/// lay an echo out alike; `raw` holds at least its 8 header bytes.
fn echo(out: &mut Vec<u8>, raw: &[u8], request: bool) {
    out.extend_from_slice(if request { b"echo request, id " } else { b"echo reply, id " });
    dec(out, be16(raw, 4) as u64);
    out.extend_from_slice(b", seq ");
    dec(out, be16(raw, 6) as u64);
}
