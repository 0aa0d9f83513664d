//! Framing: link layer -> IP -> TCP, through etherparse for the link and IP
//! layers and a fixed-offset read of the TCP header (RFC 9293 §3.1).
//!
//! The decoder is lax in etherparse's sense: a truncated frame (snaplen 128)
//! still yields every layer it holds, with the lengths the headers claim, so
//! the options of a cut-off data segment are still read and the payload length
//! is the one on the wire. What stopped decoding is kept in
//! [`Packet::error`].

use std::fmt;
use std::net::IpAddr;

use etherparse::{LaxNetSlice, LaxSlicedPacket, LinkSlice};

use super::options::{Options, parse_options};

/// pcap link-layer header types (LINKTYPE_* from tcpdump.org's list), and the
/// DLT_* aliases some systems write.
pub mod linktype {
    /// BSD loopback: 4-byte address family in host byte order.
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    /// DLT_RAW as written by some BSDs.
    pub const RAW_12: u32 = 12;
    pub const RAW_14: u32 = 14;
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
    /// PPP (RFC 1661 §2): a 2-byte protocol (1 byte when compressed, RFC
    /// 1661 §6.5), after an optional 0xff 0x03 address and control.
    pub const PPP: u32 = 9;
    /// PPP in HDLC-like framing (RFC 1662 §3.1), or Cisco HDLC.
    pub const PPP_HDLC: u32 = 50;
    /// PPPoE (RFC 2516 §4): a 6-byte session header, then PPP's protocol.
    pub const PPP_ETHER: u32 = 51;
    /// Cisco HDLC: address, control, and an EtherType.
    pub const C_HDLC: u32 = 104;

    /// Whether [`super::decode`] understands this link type.
    pub fn supported(lt: u32) -> bool {
        matches!(
            lt,
            NULL | ETHERNET
                | RAW_12
                | RAW_14
                | RAW
                | LOOP
                | LINUX_SLL
                | IPV4
                | IPV6
                | LINUX_SLL2
                | PPP
                | PPP_HDLC
                | PPP_ETHER
                | C_HDLC
        )
    }

    pub fn name(lt: u32) -> &'static str {
        match lt {
            NULL => "NULL (BSD loopback)",
            ETHERNET => "EN10MB (Ethernet)",
            RAW_12 | RAW_14 | RAW => "RAW (raw IP)",
            LOOP => "LOOP (OpenBSD loopback)",
            LINUX_SLL => "LINUX_SLL (Linux cooked v1)",
            IPV4 => "IPV4 (raw IPv4)",
            IPV6 => "IPV6 (raw IPv6)",
            LINUX_SLL2 => "LINUX_SLL2 (Linux cooked v2)",
            PPP => "PPP",
            PPP_HDLC => "PPP_HDLC (PPP in HDLC-like framing)",
            PPP_ETHER => "PPP_ETHER (PPPoE)",
            C_HDLC => "C_HDLC (Cisco HDLC)",
            _ => "unsupported",
        }
    }
}

/// A capture time: seconds since the Unix epoch and nanoseconds within the
/// second, as a capture file states it. It holds every time a pcap or pcapng
/// file can state (pcapng's 64-bit units, any `if_tsresol`, any
/// `if_tsoffset`), and nothing built from it or computed with it panics or
/// wraps: conversions saturate at the ends of the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    sec: i64,
    /// Always below 1e9.
    nsec: u32,
}

const NANOS: i128 = 1_000_000_000;

impl Timestamp {
    pub const MIN: Timestamp = Timestamp { sec: i64::MIN, nsec: 0 };
    pub const MAX: Timestamp = Timestamp { sec: i64::MAX, nsec: 999_999_999 };

    /// `sec` seconds and `nsec` nanoseconds; whole seconds in `nsec` carry
    /// into `sec` (saturating).
    pub fn new(sec: i64, nsec: u32) -> Timestamp {
        if nsec < 1_000_000_000 {
            Timestamp { sec, nsec }
        } else {
            Timestamp::from_nanos(sec as i128 * NANOS + nsec as i128)
        }
    }

    /// Nanoseconds since the epoch, saturated to [`Self::MIN`]..=[`Self::MAX`].
    pub fn from_nanos(n: i128) -> Timestamp {
        let sec = n.div_euclid(NANOS);
        if sec > i64::MAX as i128 {
            Timestamp::MAX
        } else if sec < i64::MIN as i128 {
            Timestamp::MIN
        } else {
            Timestamp { sec: sec as i64, nsec: n.rem_euclid(NANOS) as u32 }
        }
    }

    /// Nanoseconds since the epoch (an i128 holds every timestamp exactly).
    pub fn as_nanos(self) -> i128 {
        self.sec as i128 * NANOS + self.nsec as i128
    }

    /// Whole seconds since the epoch (rounded down: -0.5 s is -1 s + 0.5e9 ns).
    pub fn secs(self) -> i64 {
        self.sec
    }

    pub fn subsec_nanos(self) -> u32 {
        self.nsec
    }

    pub fn subsec_micros(self) -> u32 {
        self.nsec / 1000
    }

    /// Seconds since the epoch as a float (exact to the nanosecond only
    /// near the epoch; always finite).
    pub fn as_secs_f64(self) -> f64 {
        self.sec as f64 + self.nsec as f64 * 1e-9
    }

    /// `self - earlier` in nanoseconds, negative when `earlier` is later
    /// (exact: the difference of two timestamps fits an i128).
    pub fn nanos_since(self, earlier: Timestamp) -> i128 {
        self.as_nanos() - earlier.as_nanos()
    }

    /// `self - earlier` as a duration: zero when `earlier` is later,
    /// [`Duration::MAX`](std::time::Duration::MAX) at most.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> std::time::Duration {
        let d = self.nanos_since(earlier).max(0);
        let secs = d / NANOS;
        if secs > u64::MAX as i128 {
            return std::time::Duration::MAX;
        }
        std::time::Duration::new(secs as u64, (d % NANOS) as u32)
    }
}

/// Per-frame capture metadata (from the pcap record header or the pcapng
/// packet block).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FrameMeta {
    /// 1-based frame number in the capture.
    pub number: u64,
    /// When the frame was captured; `None` when the file does not say (a
    /// pcapng Simple Packet Block carries no time: the reader gives it the
    /// time of the frame before it, and `None` only when there is none).
    pub ts: Option<Timestamp>,
    /// Bytes captured.
    pub caplen: u32,
    /// Bytes on the wire.
    pub len: u32,
    pub linktype: u32,
}

impl FrameMeta {
    /// Seconds since the epoch as a float, for the analysis' event times;
    /// NaN for a frame without a time (it compares false with every time,
    /// so no rule on time intervals fires on it).
    pub fn ts(&self) -> f64 {
        self.ts.map_or(f64::NAN, Timestamp::as_secs_f64)
    }
}

/// TCP header flag bits (byte 13), RFC 9293 §3.1 and RFC 3168 §23.2.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// The network-layer facts of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpInfo {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 TOS byte or IPv6 traffic class.
    pub tos: u8,
    /// IPv4 identification (0 for IPv6).
    pub id: u16,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units.
    pub frag_offset: u16,
    /// IPv6 flow label.
    pub flow_label: u32,
    /// The IP protocol / last next-header of the payload.
    pub protocol: u8,
    /// IPv4 total length, or 40 + IPv6 payload length, as the header claims.
    pub total_len: u32,
    /// Header length, IPv4 options and IPv6 extension headers included.
    pub header_len: u32,
    /// The IPv4 header checksum (0 for IPv6).
    pub checksum: u16,
}

impl IpInfo {
    pub fn is_v6(&self) -> bool {
        self.src.is_ipv6()
    }
    /// Length of the IP payload as the header claims it.
    pub fn payload_len(&self) -> u32 {
        self.total_len.saturating_sub(self.header_len)
    }
}

/// A TCP segment as read from the wire; slices borrow the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    /// Header length in bytes (data offset * 4).
    pub header_len: u8,
    /// Byte 13: CWR ECE URG ACK PSH RST SYN FIN (see [`tcp_flags`]).
    pub flags: u8,
    /// The AccECN / NS bit (byte 12, low bit).
    pub ns: bool,
    pub window: u16,
    pub checksum: u16,
    pub urgent: u16,
    /// The option bytes that were captured (may be cut short, see
    /// `options_truncated`).
    pub options_raw: &'a [u8],
    /// The capture ended inside the option space.
    pub options_truncated: bool,
    /// The payload bytes that were captured.
    pub payload: &'a [u8],
    /// The payload length on the wire (from the IP length).
    pub payload_len: u32,
}

impl<'a> TcpSegment<'a> {
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
    /// Walk the options (see [`super::options`]).
    pub fn options(&self) -> Options<'a> {
        parse_options(self.options_raw)
    }
    /// Only the MPTCP options, the others stepped over unparsed (see
    /// [`Options::mptcp`](super::options::Options::mptcp)).
    pub fn mptcp_options(&self) -> super::options::MptcpOptions<'a> {
        parse_options(self.options_raw).mptcp()
    }
    /// The whole payload was captured.
    pub fn payload_complete(&self) -> bool {
        self.payload.len() as u32 >= self.payload_len
    }
}

/// Non-TCP traffic, described just enough to print a line about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Other {
    Udp {
        sport: u16,
        dport: u16,
        len: u16,
    },
    Icmp {
        v6: bool,
        type_: u8,
        code: u8,
    },
    /// Another IP protocol.
    Ip {
        protocol: u8,
    },
    Arp,
    /// An EtherType we do not decode.
    EtherType(u16),
}

/// Why decoding stopped before the TCP payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    UnsupportedLinkType(u32),
    /// The frame ended inside a header.
    Truncated {
        layer: &'static str,
        needed: usize,
        available: usize,
    },
    /// A header that does not parse (bad version, bad header length...).
    Malformed {
        layer: &'static str,
        detail: String,
    },
    /// A link layer that carries something other than IP (PPP's LCP, say).
    NotIp {
        layer: &'static str,
        protocol: u16,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::UnsupportedLinkType(lt) => write!(f, "unsupported link type {lt}"),
            DecodeError::Truncated { layer, needed, available } => {
                write!(f, "truncated {layer} header: {needed} bytes needed, {available} captured")
            }
            DecodeError::Malformed { layer, detail } => write!(f, "malformed {layer} header: {detail}"),
            DecodeError::NotIp { layer, protocol } => write!(f, "{layer} protocol {protocol:#06x}, not IP"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Packet<'a> {
    /// 802.1Q / 802.1ad VLAN ids, outermost first.
    pub vlans: Vec<u16>,
    pub ip: Option<IpInfo>,
    pub tcp: Option<TcpSegment<'a>>,
    pub other: Option<Other>,
    /// What stopped decoding, if anything did.
    pub error: Option<DecodeError>,
}

/// Decode a captured frame of link type `linktype`.
/// The link header of a point-to-point frame (the PPP family and Cisco
/// HDLC): where the network layer starts, and its protocol as an EtherType
/// (PPP's IPv4 0x0021 and IPv6 0x0057 as 0x0800 and 0x86dd; another PPP
/// protocol, LCP say, as `0x10000 | protocol`). `None` for other link
/// types or a frame too short to say.
pub fn point_to_point(lt: u32, frame: &[u8]) -> Option<(usize, u32)> {
    // RFC 1661 §2; a protocol with an odd first byte is compressed to one
    // byte (§6.5).
    let ppp = |at: usize| -> Option<(usize, u32)> {
        let first = *frame.get(at)?;
        let (proto, len) =
            if first & 1 == 1 { (u16::from(first), 1) } else { (u16::from_be_bytes([first, *frame.get(at + 1)?]), 2) };
        let et = match proto {
            0x0021 => 0x0800,
            0x0057 => 0x86dd,
            p => 0x10000 | u32::from(p),
        };
        Some((at + len, et))
    };
    let hdlc_address = |b: &[u8]| b.len() >= 2 && b[0] == 0xff && b[1] == 0x03;
    let cisco = |b: &[u8]| b.len() >= 4 && matches!(b[0], 0x0f | 0x8f);
    match lt {
        linktype::PPP => ppp(if hdlc_address(frame) { 2 } else { 0 }),
        linktype::PPP_HDLC if cisco(frame) => Some((4, u32::from(u16::from_be_bytes([frame[2], frame[3]])))),
        linktype::PPP_HDLC => ppp(if hdlc_address(frame) { 2 } else { 0 }),
        // RFC 2516 §4: VER/TYPE, CODE, SESSION_ID, LENGTH.
        linktype::PPP_ETHER => ppp(6).filter(|_| frame.len() >= 6),
        linktype::C_HDLC if frame.len() >= 4 => Some((4, u32::from(u16::from_be_bytes([frame[2], frame[3]])))),
        _ => None,
    }
}

pub fn decode(linktype: u32, frame: &[u8]) -> Packet<'_> {
    if let Some(p) = decode_common(linktype, frame) {
        return p;
    }
    decode_general(linktype, frame)
}

/// The decoder through etherparse, for every frame.
pub fn decode_general(linktype: u32, frame: &[u8]) -> Packet<'_> {
    let mut p = Packet::default();
    let sliced = match linktype {
        linktype::ETHERNET => match LaxSlicedPacket::from_ethernet(frame) {
            Ok(s) => s,
            Err(e) => {
                p.error = Some(DecodeError::Truncated { layer: "Ethernet", needed: e.required_len, available: e.len });
                return p;
            }
        },
        linktype::LINUX_SLL | linktype::LINUX_SLL2 => {
            // SLL: 16-byte header, protocol at 14; SLL2: 20 bytes, protocol at 0.
            let (hdr, proto_at) = if linktype == linktype::LINUX_SLL { (16, 14) } else { (20, 0) };
            if frame.len() < hdr {
                p.error = Some(DecodeError::Truncated { layer: "Linux cooked", needed: hdr, available: frame.len() });
                return p;
            }
            let et = u16::from_be_bytes([frame[proto_at], frame[proto_at + 1]]);
            LaxSlicedPacket::from_ether_type(etherparse::EtherType(et), &frame[hdr..])
        }
        linktype::RAW | linktype::RAW_12 | linktype::RAW_14 | linktype::IPV4 | linktype::IPV6 => match from_ip(frame) {
            Ok(s) => s,
            Err(e) => {
                p.error = Some(e);
                return p;
            }
        },
        linktype::NULL | linktype::LOOP => {
            if frame.len() < 4 {
                p.error = Some(DecodeError::Truncated { layer: "loopback", needed: 4, available: frame.len() });
                return p;
            }
            // The address family value differs between systems (AF_INET6 is
            // 10, 24, 28 or 30); the IP version nibble decides.
            match from_ip(&frame[4..]) {
                Ok(s) => s,
                Err(e) => {
                    p.error = Some(e);
                    return p;
                }
            }
        }
        linktype::PPP | linktype::PPP_HDLC | linktype::PPP_ETHER | linktype::C_HDLC => {
            match point_to_point(linktype, frame) {
                Some((at, et)) if et <= 0xffff => {
                    LaxSlicedPacket::from_ether_type(etherparse::EtherType(et as u16), &frame[at..])
                }
                Some((_, et)) => {
                    p.error = Some(DecodeError::NotIp { layer: "PPP", protocol: (et & 0xffff) as u16 });
                    return p;
                }
                None => {
                    p.error = Some(DecodeError::Truncated { layer: "PPP", needed: 4, available: frame.len() });
                    return p;
                }
            }
        }
        other => {
            p.error = Some(DecodeError::UnsupportedLinkType(other));
            return p;
        }
    };
    fill(&mut p, &sliced);
    p
}

fn from_ip(data: &[u8]) -> Result<LaxSlicedPacket<'_>, DecodeError> {
    LaxSlicedPacket::from_ip(data).map_err(|e| match e {
        etherparse::err::ip::LaxHeaderSliceError::Len(l) => {
            DecodeError::Truncated { layer: "IP", needed: l.required_len, available: l.len }
        }
        etherparse::err::ip::LaxHeaderSliceError::Content(c) => {
            DecodeError::Malformed { layer: "IP", detail: c.to_string() }
        }
    })
}

fn fill<'a>(p: &mut Packet<'a>, s: &LaxSlicedPacket<'a>) {
    for v in s.vlan_ids() {
        p.vlans.push(v.value());
    }
    let (ip, payload) = match &s.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let hl = h.ihl() as u32 * 4;
            let off = h.fragments_offset().value();
            let info = IpInfo {
                src: IpAddr::V4(h.source_addr()),
                dst: IpAddr::V4(h.destination_addr()),
                ttl: h.ttl(),
                tos: (h.dcp().value() << 2) | h.ecn().value(),
                id: h.identification(),
                dont_fragment: h.dont_fragment(),
                more_fragments: h.more_fragments(),
                frag_offset: off,
                flow_label: 0,
                protocol: v4.payload().ip_number.0,
                total_len: h.total_len() as u32,
                header_len: hl,
                checksum: h.header_checksum(),
            };
            (info, v4.payload())
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let ext_len = v6.extensions().slice().len() as u32;
            let info = IpInfo {
                src: IpAddr::V6(h.source_addr()),
                dst: IpAddr::V6(h.destination_addr()),
                ttl: h.hop_limit(),
                tos: h.traffic_class(),
                id: 0,
                dont_fragment: false,
                more_fragments: false,
                frag_offset: 0,
                flow_label: h.flow_label().value(),
                protocol: v6.payload().ip_number.0,
                total_len: 40 + h.payload_length() as u32,
                header_len: 40 + ext_len,
                checksum: 0,
            };
            (info, v6.payload())
        }
        Some(LaxNetSlice::Arp(_)) => {
            p.other = Some(Other::Arp);
            return;
        }
        None => {
            if let Some((err, layer)) = &s.stop_err {
                p.error = Some(stop_error(err, *layer));
            } else if let Some(LinkSlice::Ethernet2(e)) = &s.link {
                // Only an EtherType we do not decode gets here without an
                // error; an IP header that failed is reported as an error.
                p.other = Some(Other::EtherType(e.ether_type().0));
            }
            return;
        }
    };
    p.ip = Some(ip);
    if let Some((err, layer)) = &s.stop_err {
        // etherparse stopped in a layer after IP (e.g. a cut IPv6 extension
        // header); keep the fact but go on with what we have.
        if !matches!(layer, etherparse::err::Layer::TcpHeader) {
            p.error = Some(stop_error(err, *layer));
        }
    }
    if payload.fragmented && (ip.frag_offset != 0 || ip.is_v6()) {
        // A non-first IPv4 fragment has no transport header; IPv6 fragments
        // are not reassembled.
        p.other = Some(Other::Ip { protocol: ip.protocol });
        return;
    }
    let data = payload.payload;
    let claimed = ip.payload_len();
    match ip.protocol {
        6 => match tcp(data, claimed) {
            Ok(seg) => p.tcp = Some(seg),
            Err(e) => p.error = Some(e),
        },
        17 if data.len() >= 8 => {
            p.other = Some(Other::Udp {
                sport: u16::from_be_bytes([data[0], data[1]]),
                dport: u16::from_be_bytes([data[2], data[3]]),
                len: u16::from_be_bytes([data[4], data[5]]),
            })
        }
        1 | 58 if data.len() >= 2 => {
            p.other = Some(Other::Icmp { v6: ip.protocol == 58, type_: data[0], code: data[1] })
        }
        proto => p.other = Some(Other::Ip { protocol: proto }),
    }
}

/// What stopped etherparse: a cut header is a truncation (the snapshot
/// length), anything else a malformed header.
fn stop_error(err: &etherparse::err::packet::SliceError, layer: etherparse::err::Layer) -> DecodeError {
    match err {
        etherparse::err::packet::SliceError::Len(l) => {
            DecodeError::Truncated { layer: layer_name(layer), needed: l.required_len, available: l.len }
        }
        other => DecodeError::Malformed { layer: layer_name(layer), detail: other.to_string() },
    }
}

fn layer_name(l: etherparse::err::Layer) -> &'static str {
    use etherparse::err::Layer::*;
    match l {
        LinuxSllHeader => "Linux cooked",
        Ethernet2Header | EtherPayload => "Ethernet",
        VlanHeader => "VLAN",
        IpHeader => "IP",
        Ipv4Header | Ipv4Packet => "IPv4",
        IpAuthHeader => "IP authentication",
        Ipv6Header | Ipv6Packet => "IPv6",
        Arp => "ARP",
        Ipv6ExtHeader | Ipv6HopByHopHeader | Ipv6RouteHeader | Ipv6FragHeader | Ipv6DestOptionsHeader => {
            "IPv6 extension"
        }
        TcpHeader => "TCP",
        _ => "packet",
    }
}

/// The frames that make up nearly every MPTCP capture, decoded without
/// etherparse: no VLAN tag, an IPv4 header (options allowed, not a
/// fragment) or an IPv6 header without extension headers, carrying TCP with
/// its 20 fixed bytes captured. Gives exactly what [`decode_general`] gives
/// (a property test holds them together); `None` sends the frame there.
/// etherparse's general slicing moves large structs per layer, which cost as
/// much as reading the capture.
pub fn decode_common(lt: u32, frame: &[u8]) -> Option<Packet<'_>> {
    let (info, seg) = decode_common_tcp(lt, frame)?;
    Some(Packet { vlans: Vec::new(), ip: Some(info), tcp: Some(seg), other: None, error: None })
}

/// [`decode_common`]'s IP and TCP layers, without the [`Packet`] around
/// them: for a consumer that needs no more (the summary), the frame's facts
/// go where they are used instead of through a large struct.
#[inline(always)]
pub fn decode_common_tcp(lt: u32, frame: &[u8]) -> Option<(IpInfo, TcpSegment<'_>)> {
    // The EtherType, where the link layer has one, must agree with the IP
    // version (etherparse trusts the EtherType).
    let ether_version = |et: u16| match et {
        0x0800 => Some(4),
        0x86dd => Some(6),
        _ => None,
    };
    let (ip, want) = match lt {
        linktype::ETHERNET => {
            (frame.get(14..)?, ether_version(u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]))?)
        }
        linktype::LINUX_SLL => {
            (frame.get(16..)?, ether_version(u16::from_be_bytes([*frame.get(14)?, *frame.get(15)?]))?)
        }
        linktype::LINUX_SLL2 => {
            (frame.get(20..)?, ether_version(u16::from_be_bytes([*frame.first()?, *frame.get(1)?]))?)
        }
        linktype::NULL | linktype::LOOP => (frame.get(4..)?, frame.get(4)? >> 4),
        linktype::PPP | linktype::PPP_HDLC | linktype::PPP_ETHER | linktype::C_HDLC => {
            let (at, et) = point_to_point(lt, frame)?;
            (frame.get(at..)?, ether_version(u16::try_from(et).ok()?)?)
        }
        linktype::RAW | linktype::RAW_12 | linktype::RAW_14 | linktype::IPV4 | linktype::IPV6 => {
            (frame, frame.first()? >> 4)
        }
        _ => return None,
    };
    let be16 = |b: &[u8], i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let version = ip.first()? >> 4;
    if version != want {
        return None;
    }
    let (info, data) = match version {
        // RFC 791 §3.1.
        4 => {
            if ip.len() < 20 {
                return None;
            }
            let hl = (ip[0] & 0x0f) as usize * 4;
            let total = be16(ip, 2) as usize;
            let frag = be16(ip, 6);
            if hl < 20 || ip.len() < hl || total < hl || frag & 0x3fff != 0 || ip[9] != 6 {
                return None;
            }
            let info = IpInfo {
                src: IpAddr::V4([ip[12], ip[13], ip[14], ip[15]].into()),
                dst: IpAddr::V4([ip[16], ip[17], ip[18], ip[19]].into()),
                ttl: ip[8],
                tos: ip[1],
                id: be16(ip, 4),
                dont_fragment: frag & 0x4000 != 0,
                more_fragments: false,
                frag_offset: 0,
                flow_label: 0,
                protocol: 6,
                total_len: total as u32,
                header_len: hl as u32,
                checksum: be16(ip, 10),
            };
            (info, &ip[hl..total.min(ip.len())])
        }
        // RFC 8200 §3.
        6 => {
            if ip.len() < 40 || ip[6] != 6 {
                return None;
            }
            let plen = be16(ip, 4) as usize;
            if plen == 0 {
                // A jumbogram or a TSO capture: let the general path judge.
                return None;
            }
            let mut s = [0u8; 16];
            let mut d = [0u8; 16];
            s.copy_from_slice(&ip[8..24]);
            d.copy_from_slice(&ip[24..40]);
            let info = IpInfo {
                src: IpAddr::V6(s.into()),
                dst: IpAddr::V6(d.into()),
                ttl: ip[7],
                tos: (ip[0] & 0x0f) << 4 | ip[1] >> 4,
                id: 0,
                dont_fragment: false,
                more_fragments: false,
                frag_offset: 0,
                flow_label: u32::from_be_bytes([0, ip[1] & 0x0f, ip[2], ip[3]]),
                protocol: 6,
                total_len: 40 + plen as u32,
                header_len: 40,
                checksum: 0,
            };
            (info, &ip[40..(40 + plen).min(ip.len())])
        }
        _ => return None,
    };
    if data.len() < 20 || data[12] >> 4 < 5 {
        return None;
    }
    let seg = tcp_header(data, info.payload_len());
    Some((info, seg))
}

/// Read a TCP header at a fixed offset (RFC 9293 §3.1, Figure 1). `data` is
/// what was captured of the IP payload, `claimed` its length on the wire.
fn tcp(data: &[u8], claimed: u32) -> Result<TcpSegment<'_>, DecodeError> {
    if data.len() < 20 {
        return Err(DecodeError::Truncated { layer: "TCP", needed: 20, available: data.len() });
    }
    if data[12] >> 4 < 5 {
        return Err(DecodeError::Malformed {
            layer: "TCP",
            detail: format!("data offset {} is below the minimum of 5 words", data[12] >> 4),
        });
    }
    Ok(tcp_header(data, claimed))
}

/// [`tcp`] once its checks passed: `data` holds the 20 fixed bytes and the
/// data offset is at least 5 words.
#[inline(always)]
fn tcp_header(data: &[u8], claimed: u32) -> TcpSegment<'_> {
    let be16 = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
    let be32 = |i: usize| u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let header_len = (data[12] >> 4) * 4;
    let hl = header_len as usize;
    let opt_end = hl.min(data.len());
    let payload = if data.len() > hl { &data[hl..] } else { &[][..] };
    TcpSegment {
        sport: be16(0),
        dport: be16(2),
        seq: be32(4),
        ack: be32(8),
        header_len,
        flags: data[13],
        ns: data[12] & 0x01 != 0,
        window: be16(14),
        checksum: be16(16),
        urgent: be16(18),
        options_raw: &data[20..opt_end],
        options_truncated: data.len() < hl,
        payload,
        payload_len: claimed.saturating_sub(header_len as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/TCP SYN with MSS and MP_CAPABLE.
    fn syn() -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let tcp_opts = [2, 4, 0x05, 0xb4, 30, 4, 0x01, 0x01];
        let tcp_len = 20 + tcp_opts.len();
        let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        let total = (20 + tcp_len) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&1234u16.to_be_bytes());
        t[2..4].copy_from_slice(&80u16.to_be_bytes());
        t[4..8].copy_from_slice(&1000u32.to_be_bytes());
        t[12] = ((tcp_len / 4) as u8) << 4;
        t[13] = tcp_flags::SYN;
        t[14..16].copy_from_slice(&65535u16.to_be_bytes());
        f.extend_from_slice(&t);
        f.extend_from_slice(&tcp_opts);
        f
    }

    #[test]
    fn decodes_ethernet_ipv4_tcp() {
        let f = syn();
        let p = decode(linktype::ETHERNET, &f);
        assert_eq!(p.error, None);
        let ip = p.ip.unwrap();
        assert_eq!(ip.src.to_string(), "10.0.0.1");
        assert!(ip.dont_fragment);
        let t = p.tcp.unwrap();
        assert_eq!((t.sport, t.dport, t.seq), (1234, 80, 1000));
        assert!(t.has(tcp_flags::SYN));
        assert_eq!(t.options().count(), 2);
        assert_eq!(t.payload_len, 0);
    }

    #[test]
    fn truncated_frame_keeps_headers() {
        let f = syn();
        // Cut inside the options: the header fields remain, options are cut.
        let p = decode(linktype::ETHERNET, &f[..f.len() - 3]);
        let t = p.tcp.expect("tcp header still decoded");
        assert!(t.options_truncated);
        // Cut inside the TCP header.
        let p = decode(linktype::ETHERNET, &f[..14 + 20 + 10]);
        assert!(p.tcp.is_none());
        assert!(matches!(p.error, Some(DecodeError::Truncated { layer: "TCP", .. })));
        // Garbage never panics.
        for n in 0..f.len() {
            let _ = decode(linktype::ETHERNET, &f[..n]);
            let _ = decode(linktype::RAW, &f[14..14 + n.min(f.len() - 14)]);
        }
    }

    #[test]
    fn unsupported_link_type() {
        let p = decode(147, &[1, 2, 3]);
        assert_eq!(p.error, Some(DecodeError::UnsupportedLinkType(147)));
    }
}
