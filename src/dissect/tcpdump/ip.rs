//! The link and network layers: where the IP header starts for each link
//! type, the Linux cooked v2 interface prefix, what tcpdump prints when
//! decoding stops before IP, the `-v` IPv4 and IPv6 header details, and the
//! pseudo-header checksum the transports share.

use std::net::IpAddr;

use super::arp::arp;
use super::fmt::{addr, dec, hex, hex_pad, hexdump, mac};
use crate::checksum::InternetChecksum;
use crate::dissect::hash::WordMap;
use crate::dissect::packet::{DecodeError, FrameMeta, IpInfo, Other, Packet, linktype, point_to_point};

/// The name of a network interface by index (tcpdump names the interface of
/// a Linux cooked v2 frame by looking its index up on the reading host).
pub type IfName = fn(u32) -> Option<String>;

/// The names of the interfaces Linux cooked v2 frames were captured on, as
/// `resolver` gives them, looked up once per index.
pub(super) struct Interfaces {
    resolver: Option<IfName>,
    /// Each index's text as printed, padded.
    names: WordMap<u32, Vec<u8>>,
}

impl Interfaces {
    pub(super) fn new(resolver: Option<IfName>) -> Interfaces {
        Interfaces { resolver, names: WordMap::default() }
    }

    /// tcpdump's sll2 printer: the host's name for the interface index, or
    /// `?`, as `%-5s `, then the direction. Other link types print nothing.
    pub(super) fn write_sll2(&mut self, out: &mut Vec<u8>, lt: u32, frame: &[u8]) {
        if lt != linktype::LINUX_SLL2 || frame.len() < 20 {
            return;
        }
        let index = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let resolver = self.resolver;
        let name = self.names.entry(index).or_insert_with(|| {
            let mut n = resolver.and_then(|f| f(index)).map_or_else(|| b"?".to_vec(), String::into_bytes);
            while n.len() < 5 {
                n.push(b' ');
            }
            n.push(b' ');
            n
        });
        out.extend_from_slice(name);
        out.extend_from_slice(match frame[10] {
            0 => b"In  ",
            1 => b"B   ",
            2 => b"M   ",
            3 => b"P   ",
            _ => b"Out ",
        });
    }
}

/// What tcpdump writes before the network layer of a point-to-point frame:
/// PPP in HDLC-like framing names the protocol (`IP: `), PPPoE its session
/// (`PPPoE  [ses 0x1] `); plain PPP and Cisco HDLC write nothing.
pub(super) fn point_to_point_prefix(out: &mut Vec<u8>, lt: u32, frame: &[u8]) {
    let Some((_, et)) = point_to_point(lt, frame) else { return };
    match lt {
        linktype::PPP_HDLC if frame.first() == Some(&0xff) => match et {
            0x0800 => out.extend_from_slice(b"IP: "),
            0x86dd => out.extend_from_slice(b"IP6: "),
            _ => {}
        },
        linktype::PPP_ETHER => {
            out.extend_from_slice(b"PPPoE  [ses 0x");
            hex(out, u64::from(u16::from_be_bytes([frame[2], frame[3]])));
            out.extend_from_slice(b"] ");
        }
        _ => {}
    }
}

/// A frame without an IP header: ARP, an unknown EtherType, or a frame
/// cut before IP, said as tcpdump says it.
pub(super) fn non_ip(
    out: &mut Vec<u8>,
    meta: &FrameMeta,
    pkt: &Packet<'_>,
    frame: &[u8],
    net: Option<usize>,
    verbose: bool,
) {
    let body = net.and_then(|n| frame.get(n..)).unwrap_or(&[]);
    let link_len = net.unwrap_or(0) as u32;
    match pkt.other {
        Some(Other::Arp) => {
            arp(out, body, meta.len.saturating_sub(link_len), verbose);
            return;
        }
        Some(Other::EtherType(et)) if meta.linktype == linktype::ETHERNET && frame.len() >= 14 => {
            mac(out, &frame[6..12]);
            out.extend_from_slice(b" > ");
            mac(out, &frame[0..6]);
            out.extend_from_slice(b", ethertype Unknown (0x");
            hex_pad(out, et as u64, 4);
            out.extend_from_slice(b"), length ");
            dec(out, meta.len as u64);
            out.extend_from_slice(b": ");
            hexdump(out, body);
            return;
        }
        Some(Other::EtherType(et)) => {
            out.extend_from_slice(b"ethertype Unknown (0x");
            hex_pad(out, et as u64, 4);
            out.extend_from_slice(b"), length ");
            dec(out, meta.len as u64);
            return;
        }
        _ => {}
    }
    if let Some(DecodeError::NotIp { layer, protocol }) = &pkt.error {
        // PPP's own protocols (LCP, IPCP, ...) are not decoded.
        out.extend_from_slice(layer.as_bytes());
        out.extend_from_slice(b" protocol 0x");
        hex_pad(out, u64::from(*protocol), 4);
        out.extend_from_slice(b", length ");
        dec(out, meta.len as u64);
        return;
    }
    // Decoding stopped before IP: say where, as tcpdump does.
    match body.first().map(|b| b >> 4) {
        Some(4) => out.extend_from_slice(b"IP  [|ip]"),
        Some(6) => out.extend_from_slice(b"IP6  [|ip6]"),
        _ if net.is_none() || body.is_empty() => match meta.linktype {
            linktype::ETHERNET => out.extend_from_slice(b"[|ether]"),
            linktype::LINUX_SLL | linktype::LINUX_SLL2 => out.extend_from_slice(b"[|sll]"),
            linktype::NULL | linktype::LOOP => out.extend_from_slice(b"[|null]"),
            linktype::PPP | linktype::PPP_HDLC | linktype::PPP_ETHER => out.extend_from_slice(b"[|ppp]"),
            linktype::C_HDLC => out.extend_from_slice(b"[|chdlc]"),
            _ => out.extend_from_slice(b"[|ip]"),
        },
        Some(v) => {
            out.extend_from_slice(b"IP");
            if v != 4 {
                out.extend_from_slice(b" bad version ");
                dec(out, v as u64);
            }
        }
        None => out.extend_from_slice(b"[|ip]"),
    }
    if let Some(e) = &pkt.error
        && !matches!(e, DecodeError::Truncated { .. })
    {
        out.extend_from_slice(b" [");
        out.extend_from_slice(e.to_string().as_bytes());
        out.push(b']');
    }
}

/// Where the network layer starts for a link type, or `None` when the frame
/// is too short to say.
pub(super) fn net_offset(lt: u32, frame: &[u8]) -> Option<usize> {
    match lt {
        linktype::ETHERNET => {
            let mut off = 12;
            loop {
                let et = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
                if matches!(et, 0x8100 | 0x88a8 | 0x9100) {
                    off += 4;
                } else {
                    return Some(off + 2);
                }
            }
        }
        linktype::LINUX_SLL => (frame.len() >= 16).then_some(16),
        linktype::LINUX_SLL2 => (frame.len() >= 20).then_some(20),
        linktype::NULL | linktype::LOOP => (frame.len() >= 4).then_some(4),
        linktype::PPP | linktype::PPP_HDLC | linktype::PPP_ETHER | linktype::C_HDLC => {
            point_to_point(lt, frame).map(|(at, _)| at)
        }
        _ => Some(0),
    }
}

/// `a.p > b.q: ` (or `p > q: ` after IPv6 extension headers).
pub(super) fn endpoints(out: &mut Vec<u8>, ip: &IpInfo, sport: u16, dport: u16, with_addrs: bool) {
    if with_addrs {
        addr(out, ip.src);
        out.push(b'.');
    }
    dec(out, sport as u64);
    out.extend_from_slice(b" > ");
    if with_addrs {
        addr(out, ip.dst);
        out.push(b'.');
    }
    dec(out, dport as u64);
    out.extend_from_slice(b": ");
}

pub(super) fn endpoints_noport(out: &mut Vec<u8>, ip: &IpInfo, with_addrs: bool) {
    if with_addrs {
        addr(out, ip.src);
        out.extend_from_slice(b" > ");
        addr(out, ip.dst);
        out.extend_from_slice(b": ");
    }
}

pub(super) fn addr_bytes(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            b
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The one's-complement sum of the pseudo-header and `segment`: 0 when the
/// checksum in it is right (RFC 9293 §3.1, RFC 8200 §8.1).
pub(super) fn transport_checksum(ip: &IpInfo, proto: u8, segment: &[u8]) -> u16 {
    let mut c = InternetChecksum::new();
    match (ip.src, ip.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            c.add(&s.octets());
            c.add(&d.octets());
            c.add(&[0, proto]);
            c.add(&(segment.len() as u16).to_be_bytes());
        }
        (s, d) => {
            c.add(&addr_bytes(s));
            c.add(&addr_bytes(d));
            c.add(&(segment.len() as u32).to_be_bytes());
            c.add(&[0, 0, 0, proto]);
        }
    }
    c.add(segment);
    c.finish()
}

/// What the checksum field should hold, given the one it holds and the sum
/// computed over the segment (RFC 1624 §3, tcpdump's `in_cksum_shouldbe`).
pub(super) fn cksum_shouldbe(sum: u16, computed: u16) -> u16 {
    let mut s = sum as u32 + computed as u32;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

fn ip_proto_name(p: u8) -> &'static [u8] {
    match p {
        0 => b"Options",
        1 => b"ICMP",
        2 => b"IGMP",
        4 => b"IPIP",
        6 => b"TCP",
        17 => b"UDP",
        33 => b"DCCP",
        41 => b"IPv6",
        43 => b"Routing",
        44 => b"Frag",
        46 => b"RSVP",
        47 => b"GRE",
        50 => b"ESP",
        51 => b"AH",
        58 => b"ICMPv6",
        59 => b"NONE",
        // 60 (destination options) has no name in tcpdump 4.99's protocol
        // table: `next-header unknown (60)`.
        89 => b"OSPF",
        103 => b"PIM",
        112 => b"VRRP",
        132 => b"SCTP",
        135 => b"Mobility",
        _ => b"unknown",
    }
}

/// `(tos 0x0, ttl 64, id 43546, offset 0, flags [DF], proto TCP (6), length 64)`
/// and the line break tcpdump -v puts after it.
pub(super) fn ip4_verbose(out: &mut Vec<u8>, ip: &IpInfo, hdr: &[u8]) {
    out.extend_from_slice(b"(tos 0x");
    hex(out, ip.tos as u64);
    match ip.tos & 0x03 {
        1 => out.extend_from_slice(b",ECT(1)"),
        2 => out.extend_from_slice(b",ECT(0)"),
        3 => out.extend_from_slice(b",CE"),
        _ => {}
    }
    if ip.ttl >= 1 {
        out.extend_from_slice(b", ttl ");
        dec(out, ip.ttl as u64);
    }
    out.extend_from_slice(b", id ");
    dec(out, ip.id as u64);
    out.extend_from_slice(b", offset ");
    dec(out, ip.frag_offset as u64 * 8);
    out.extend_from_slice(b", flags [");
    let reserved = hdr.get(6).is_some_and(|b| b & 0x80 != 0);
    let mut any = false;
    for (set, name) in [(ip.more_fragments, &b"+"[..]), (ip.dont_fragment, b"DF"), (reserved, b"rsvd")] {
        if set {
            if any {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(name);
            any = true;
        }
    }
    if !any {
        out.extend_from_slice(b"none");
    }
    out.extend_from_slice(b"], proto ");
    out.extend_from_slice(ip_proto_name(ip.protocol));
    out.extend_from_slice(b" (");
    dec(out, ip.protocol as u64);
    out.extend_from_slice(b"), length ");
    dec(out, ip.total_len as u64);
    let hl = ip.header_len as usize;
    if hl > 20 && hdr.len() >= hl {
        out.extend_from_slice(b", options (");
        ip4_options(out, &hdr[20..hl]);
        out.push(b')');
    }
    if hdr.len() >= hl {
        let mut c = InternetChecksum::new();
        c.add(&hdr[..hl]);
        let sum = c.finish();
        if sum != 0 {
            out.extend_from_slice(b", bad cksum ");
            hex(out, ip.checksum as u64);
            out.extend_from_slice(b" (->");
            hex(out, cksum_shouldbe(ip.checksum, sum) as u64);
            out.extend_from_slice(b")!");
        }
    }
    out.extend_from_slice(b")\n    ");
}

/// IPv4 options (RFC 791 §3.1), named as tcpdump names them.
fn ip4_options(out: &mut Vec<u8>, mut o: &[u8]) {
    let mut first = true;
    while let Some(&kind) = o.first() {
        if !first {
            out.push(b',');
        }
        first = false;
        let len = if kind <= 1 { 1 } else { o.get(1).copied().unwrap_or(0) as usize };
        out.extend_from_slice(match kind {
            0 => b"EOL",
            1 => b"NOP",
            7 => b"RR",
            68 => b"TS",
            130 => b"security",
            131 => b"LSRR",
            137 => b"SSRR",
            148 => b"RA",
            _ => b"unknown",
        });
        if kind == 0 {
            break;
        }
        if len < 1 || len > o.len() {
            out.extend_from_slice(b" [bad length]");
            break;
        }
        o = &o[len..];
    }
}

/// `(flowlabel 0xa6192, hlim 64, next-header TCP (6) payload length: 44) `
pub(super) fn ip6_verbose(out: &mut Vec<u8>, ip: &IpInfo, hdr: &[u8], first_nh: u8) {
    out.push(b'(');
    if ip.tos != 0 {
        out.extend_from_slice(b"class 0x");
        hex_pad(out, ip.tos as u64, 2);
        out.extend_from_slice(b", ");
    }
    if ip.flow_label != 0 {
        out.extend_from_slice(b"flowlabel 0x");
        hex_pad(out, ip.flow_label as u64, 5);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(b"hlim ");
    dec(out, ip.ttl as u64);
    out.extend_from_slice(b", next-header ");
    out.extend_from_slice(ip_proto_name(first_nh));
    out.extend_from_slice(b" (");
    dec(out, first_nh as u64);
    out.extend_from_slice(b") payload length: ");
    let plen = hdr.get(4..6).map_or(ip.total_len.saturating_sub(40), |b| u16::from_be_bytes([b[0], b[1]]) as u32);
    dec(out, plen as u64);
    out.extend_from_slice(b") ");
}

/// The IPv6 extension headers between the fixed header and the transport
/// (RFC 8200 §4), by name.
pub(super) fn ip6_ext_names(out: &mut Vec<u8>, hdr: &[u8], mut nh: u8, verbose: bool) {
    let mut off = 40;
    for _ in 0..8 {
        let name: &[u8] = match nh {
            0 => b"HBH",
            43 => b"srcrt",
            44 => b"frag",
            60 => b"DSTOPT",
            51 => b"AH",
            _ => return,
        };
        out.extend_from_slice(name);
        if verbose && (nh == 0 || nh == 60) {
            out.extend_from_slice(b" (padn)");
        }
        out.push(b' ');
        let Some(&next) = hdr.get(off) else { return };
        let len = if nh == 44 {
            8
        } else if nh == 51 {
            (hdr.get(off + 1).copied().unwrap_or(0) as usize + 2) * 4
        } else {
            (hdr.get(off + 1).copied().unwrap_or(0) as usize + 1) * 8
        };
        off += len;
        nh = next;
    }
}
