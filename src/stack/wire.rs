//! IP and TCP framing for the stack: parse a whole IPv4/IPv6 packet into a
//! [`Segment`], and write one from a [`SegmentRepr`]. TCP options go through
//! the dissector's codec ([`crate::dissect::options`]): one codec for the
//! decoder and the stack.
//!
//! After smoltcp's `wire`: offsets live in the `field` modules, parsing checks
//! every length before reading, and the IP/TCP checksums (RFC 791, RFC 8200
//! §8.1, RFC 9293 §3.1) are computed and verified unless offloaded.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::buf::Slice;
use crate::checksum::InternetChecksum;
use crate::dissect::options::{MptcpOption, RawBytes, SackBlocks, TcpOption, emit_options, parse_options};
use crate::seq::SubflowSeq;

/// TCP flag bits (RFC 9293 §3.1).
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// Header field offsets: the one place they are written (the TUN driver's
/// coalescer reads its headers through them too).
pub(crate) mod field {
    pub mod ipv4 {
        pub const VER_IHL: usize = 0;
        pub const TOTAL_LEN: core::ops::Range<usize> = 2..4;
        pub const FRAG: core::ops::Range<usize> = 6..8;
        pub const TTL: usize = 8;
        pub const PROTO: usize = 9;
        pub const CHECKSUM: core::ops::Range<usize> = 10..12;
        pub const SRC: core::ops::Range<usize> = 12..16;
        pub const DST: core::ops::Range<usize> = 16..20;
        pub const HEADER_LEN: usize = 20;
    }
    pub mod ipv6 {
        pub const PAYLOAD_LEN: core::ops::Range<usize> = 4..6;
        pub const NEXT_HEADER: usize = 6;
        pub const HOP_LIMIT: usize = 7;
        pub const SRC: core::ops::Range<usize> = 8..24;
        pub const DST: core::ops::Range<usize> = 24..40;
        pub const HEADER_LEN: usize = 40;
    }
    pub mod tcp {
        pub const SRC_PORT: core::ops::Range<usize> = 0..2;
        pub const DST_PORT: core::ops::Range<usize> = 2..4;
        pub const SEQ: core::ops::Range<usize> = 4..8;
        pub const ACK: core::ops::Range<usize> = 8..12;
        pub const DATA_OFF: usize = 12;
        pub const FLAGS: usize = 13;
        pub const WINDOW: core::ops::Range<usize> = 14..16;
        pub const CHECKSUM: core::ops::Range<usize> = 16..18;
        pub const URGENT: core::ops::Range<usize> = 18..20;
        pub const HEADER_LEN: usize = 20;
    }
}

pub(crate) const PROTO_TCP: u8 = 6;

/// Why a packet could not be taken as a TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("packet too short: {len} bytes, need {need}")]
    Truncated { len: usize, need: usize },
    #[error("not IPv4 or IPv6 (version nibble {0})")]
    BadVersion(u8),
    #[error("IP protocol {0} is not TCP")]
    NotTcp(u8),
    #[error("IP fragment (not reassembled)")]
    Fragment,
    #[error("bad IPv4 header checksum")]
    BadIpChecksum,
    #[error("bad TCP checksum")]
    BadTcpChecksum,
    #[error("TCP data offset {0} words is invalid")]
    BadDataOffset(u8),
}

/// Why a segment could not be written. The stack budgets its options and
/// sizes its buffers so that none of these happens; they are errors, not
/// panics, so that a caller's mistake (a short buffer, a socket address of
/// the other family) cannot take the process down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    #[error(
        "TCP options of {len} bytes exceed the {max}-byte option space (RFC 9293 §3.1: data offset at most 15 words)"
    )]
    OptionSpace { len: usize, max: usize },
    #[error("a {need}-byte packet does not fit the {have}-byte buffer")]
    BufferTooSmall { need: usize, have: usize },
    #[error("address families differ: {src} -> {dst}")]
    MixedFamilies { src: SocketAddr, dst: SocketAddr },
    #[error("a {len}-byte TCP segment does not fit the IP length field")]
    TooLong { len: usize },
}

/// Up to this many MPTCP options are kept from one segment (DSS, ADD_ADDR,
/// MP_PRIO... a 40-byte option space holds at most a handful).
pub const MAX_MPTCP_OPTS: usize = 4;

/// The TCP options of a segment, already interpreted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegOptions {
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    pub sack_permitted: bool,
    /// (TSval, TSecr)
    pub timestamps: Option<(u32, u32)>,
    pub sack: Option<SackBlocks>,
    /// The Fast Open option (RFC 7413 §4.1.1): empty, a cookie request;
    /// else the cookie as sent (its length checked by the user).
    pub fast_open: Option<RawBytes>,
    mptcp: [Option<MptcpOption>; MAX_MPTCP_OPTS],
    /// An MPTCP option that failed to parse was present.
    pub mptcp_malformed: bool,
}

impl SegOptions {
    pub fn mptcp(&self) -> impl Iterator<Item = &MptcpOption> {
        self.mptcp.iter().flatten()
    }
    pub fn has_mptcp(&self) -> bool {
        self.mptcp[0].is_some()
    }
    pub fn push_mptcp(&mut self, o: MptcpOption) {
        if let Some(slot) = self.mptcp.iter_mut().find(|s| s.is_none()) {
            *slot = Some(o);
        }
    }
}

/// A parsed TCP segment, borrowing its payload from the packet.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: SubflowSeq,
    pub ack: SubflowSeq,
    pub flags: u8,
    pub window: u16,
    pub opts: SegOptions,
    pub payload: &'a [u8],
    /// The payload by reference, when the packet came in two parts (see
    /// [`parse_parts`]): the receiver keeps it without copying.
    pub shared: Option<&'a Slice>,
}

impl Segment<'_> {
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
    /// Sequence space the segment takes: payload plus SYN and FIN.
    pub fn seq_len(&self) -> usize {
        self.payload.len() + self.has(flags::SYN) as usize + self.has(flags::FIN) as usize
    }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Parse an IPv4 or IPv6 packet carrying TCP. With `verify` the IPv4 header
/// checksum and the TCP checksum are checked.
pub fn parse(packet: &[u8], verify: bool) -> Result<Segment<'_>, WireError> {
    parse_split(packet, &[], verify)
}

/// Parse a packet given as its IP and TCP headers and, apart, its payload
/// (as [`emit_parts`] writes one); the segment keeps the payload by
/// reference in [`Segment::shared`].
pub fn parse_parts<'a>(headers: &'a [u8], payload: &'a Slice, verify: bool) -> Result<Segment<'a>, WireError> {
    let mut seg = parse_split(headers, payload, verify)?;
    if !payload.is_empty() {
        seg.shared = Some(payload);
    }
    Ok(seg)
}

/// The logical packet is `packet` followed by `extra`; a non-empty `extra`
/// must be the whole TCP payload (`packet` ends with the TCP header).
fn parse_split<'a>(packet: &'a [u8], extra: &'a [u8], verify: bool) -> Result<Segment<'a>, WireError> {
    let (src, dst, off, end) = ip_layer(packet, extra.len(), verify)?;
    let tcp = &packet[off..end];
    parse_tcp(src, dst, tcp, extra, verify)
}

/// The IP layer of the logical packet `packet` followed by `extra` more
/// payload bytes held elsewhere: its addresses and where the TCP header
/// (and, when `extra` is 0, the payload) lies in `packet`,
/// `packet[off..end]`. With `verify`, the IPv4 header checksum is checked.
fn ip_layer(packet: &[u8], extra: usize, verify: bool) -> Result<(IpAddr, IpAddr, usize, usize), WireError> {
    if packet.is_empty() {
        return Err(WireError::Truncated { len: 0, need: 1 });
    }
    Ok(match packet[0] >> 4 {
        4 => {
            use field::ipv4 as f;
            if packet.len() < f::HEADER_LEN {
                return Err(WireError::Truncated { len: packet.len(), need: f::HEADER_LEN });
            }
            let ihl = (packet[f::VER_IHL] & 0xf) as usize * 4;
            let total = be16(&packet[f::TOTAL_LEN]) as usize;
            let have = packet.len() + extra;
            if ihl < f::HEADER_LEN || total < ihl || have < total || (extra != 0 && have != total) {
                return Err(WireError::Truncated { len: have, need: total.max(ihl).max(f::HEADER_LEN) });
            }
            // More-fragments flag or a non-zero offset (RFC 791 §3.1).
            if be16(&packet[f::FRAG]) & 0x3fff != 0 {
                return Err(WireError::Fragment);
            }
            if packet[f::PROTO] != PROTO_TCP {
                return Err(WireError::NotTcp(packet[f::PROTO]));
            }
            if verify {
                let mut c = InternetChecksum::new();
                c.add(&packet[..ihl]);
                if c.folded() != 0xffff {
                    return Err(WireError::BadIpChecksum);
                }
            }
            let s: [u8; 4] = packet[f::SRC].try_into().expect("4 bytes");
            let d: [u8; 4] = packet[f::DST].try_into().expect("4 bytes");
            let tcp_end = if extra == 0 { total } else { packet.len() };
            if ihl > tcp_end {
                return Err(WireError::Truncated { len: packet.len(), need: ihl });
            }
            (IpAddr::V4(Ipv4Addr::from(s)), IpAddr::V4(Ipv4Addr::from(d)), ihl, tcp_end)
        }
        6 => {
            use field::ipv6 as f;
            if packet.len() < f::HEADER_LEN {
                return Err(WireError::Truncated { len: packet.len(), need: f::HEADER_LEN });
            }
            let plen = be16(&packet[f::PAYLOAD_LEN]) as usize;
            let have = packet.len() + extra;
            if have < f::HEADER_LEN + plen || (extra != 0 && have != f::HEADER_LEN + plen) {
                return Err(WireError::Truncated { len: have, need: f::HEADER_LEN + plen });
            }
            let end = if extra == 0 { f::HEADER_LEN + plen } else { packet.len() };
            // Walk the extension headers we may meet (RFC 8200 §4).
            let mut next = packet[f::NEXT_HEADER];
            let mut off = f::HEADER_LEN;
            loop {
                match next {
                    PROTO_TCP => break,
                    0 | 43 | 60 => {
                        if off + 8 > end {
                            return Err(WireError::Truncated { len: end, need: off + 8 });
                        }
                        next = packet[off];
                        off += (packet[off + 1] as usize + 1) * 8;
                        if off > end {
                            return Err(WireError::Truncated { len: end, need: off });
                        }
                    }
                    44 => return Err(WireError::Fragment),
                    other => return Err(WireError::NotTcp(other)),
                }
            }
            let s: [u8; 16] = packet[f::SRC].try_into().expect("16 bytes");
            let d: [u8; 16] = packet[f::DST].try_into().expect("16 bytes");
            (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)), off, end)
        }
        v => return Err(WireError::BadVersion(v)),
    })
}

/// The TCP header length of `tcp` (a TCP header and maybe its payload),
/// checked against what is there; with `apart`, the payload is elsewhere
/// and the header must be all of `tcp`.
fn tcp_header_len(tcp: &[u8], apart: bool) -> Result<usize, WireError> {
    use field::tcp as t;
    if tcp.len() < t::HEADER_LEN {
        return Err(WireError::Truncated { len: tcp.len(), need: t::HEADER_LEN });
    }
    let doff = tcp[t::DATA_OFF] >> 4;
    let hlen = doff as usize * 4;
    if hlen < t::HEADER_LEN || hlen > tcp.len() || (apart && hlen != tcp.len()) {
        return Err(WireError::BadDataOffset(doff));
    }
    Ok(hlen)
}

fn parse_tcp<'a>(
    src: IpAddr,
    dst: IpAddr,
    tcp: &'a [u8],
    extra: &'a [u8],
    verify: bool,
) -> Result<Segment<'a>, WireError> {
    use field::tcp as t;
    let hlen = tcp_header_len(tcp, !extra.is_empty())?;
    if verify && pseudo_sum(src, dst, tcp.len() + extra.len()).add_then(tcp).add_then(extra).folded() != 0xffff {
        return Err(WireError::BadTcpChecksum);
    }
    let mut opts = SegOptions::default();
    for o in parse_options(&tcp[t::HEADER_LEN..hlen]) {
        match o {
            Ok(TcpOption::Mss(m)) => opts.mss = Some(m),
            Ok(TcpOption::WindowScale(w)) => opts.wscale = Some(w),
            Ok(TcpOption::SackPermitted) => opts.sack_permitted = true,
            Ok(TcpOption::Timestamps { tsval, tsecr }) => opts.timestamps = Some((tsval, tsecr)),
            Ok(TcpOption::Sack(s)) => opts.sack = Some(s),
            Ok(TcpOption::FastOpen { cookie, .. }) => opts.fast_open = Some(cookie),
            Ok(TcpOption::Mptcp(m)) => opts.push_mptcp(m),
            Ok(_) => {}
            Err(e) => {
                if e.kind == crate::dissect::options::kind::MPTCP {
                    opts.mptcp_malformed = true;
                }
            }
        }
    }
    Ok(Segment {
        src: SocketAddr::new(src, be16(&tcp[t::SRC_PORT])),
        dst: SocketAddr::new(dst, be16(&tcp[t::DST_PORT])),
        seq: SubflowSeq(be32(&tcp[t::SEQ])),
        ack: SubflowSeq(be32(&tcp[t::ACK])),
        flags: tcp[t::FLAGS],
        window: be16(&tcp[t::WINDOW]),
        opts,
        payload: if extra.is_empty() { &tcp[hlen..] } else { extra },
        shared: None,
    })
}

trait AddThen {
    fn add_then(self, data: &[u8]) -> Self;
}
impl AddThen for InternetChecksum {
    fn add_then(mut self, data: &[u8]) -> Self {
        self.add(data);
        self
    }
}

/// The TCP pseudo-header sum (RFC 9293 §3.1; RFC 8200 §8.1 for IPv6).
pub(crate) fn pseudo_sum(src: IpAddr, dst: IpAddr, tcp_len: usize) -> InternetChecksum {
    let mut c = InternetChecksum::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            c.add(&s.octets());
            c.add(&d.octets());
            c.add(&[0, PROTO_TCP]);
            c.add(&(tcp_len as u16).to_be_bytes());
        }
        _ => {
            c.add(&v6(src).octets());
            c.add(&v6(dst).octets());
            c.add(&(tcp_len as u32).to_be_bytes());
            c.add(&[0, 0, 0, PROTO_TCP]);
        }
    }
    c
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// What to put in an outgoing segment's headers.
#[derive(Clone, Copy, Debug)]
pub struct SegmentRepr<'o> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: SubflowSeq,
    pub ack: SubflowSeq,
    pub flags: u8,
    pub window: u16,
    pub options: &'o [TcpOption],
}

/// IP + TCP header bytes for this address family and options.
pub fn header_len(src: SocketAddr, options: &[TcpOption]) -> usize {
    ip_header_len(src) + field::tcp::HEADER_LEN + crate::dissect::options::options_len(options)
}

pub fn ip_header_len(addr: SocketAddr) -> usize {
    if addr.is_ipv4() { field::ipv4::HEADER_LEN } else { field::ipv6::HEADER_LEN }
}

/// Write a packet: IP header, TCP header with `repr.options`, then
/// `payload_len` bytes that `fill` writes into the slice it is given. With
/// `checksum` the IP and TCP checksums are computed; without (offload) they
/// are left zero. Returns the packet length; nothing is written when the
/// options exceed the option space, `buf` is too short (size it from
/// [`header_len`]) or the two addresses are of different families.
pub fn emit(
    repr: &SegmentRepr<'_>,
    payload_len: usize,
    buf: &mut [u8],
    checksum: bool,
    fill: impl FnOnce(&mut [u8]),
) -> Result<usize, EmitError> {
    let h = check(repr, payload_len, buf.len(), true)?;
    write_headers(repr, h, payload_len, buf, checksum);
    let (hdr, rest) = buf.split_at_mut(h);
    let payload = &mut rest[..payload_len];
    fill(payload);
    if checksum {
        tcp_checksum(repr, hdr, payload);
    }
    Ok(h + payload_len)
}

/// Write only the IP and TCP headers of a segment whose payload travels
/// apart (by reference, [`crate::stack::buf::Slice`]); the lengths and the
/// checksums cover `payload`. Returns the header length (errors as [`emit`]).
pub fn emit_parts(repr: &SegmentRepr<'_>, payload: &[u8], buf: &mut [u8], checksum: bool) -> Result<usize, EmitError> {
    let h = check(repr, payload.len(), buf.len(), false)?;
    write_headers(repr, h, payload.len(), buf, checksum);
    if checksum {
        tcp_checksum(repr, &mut buf[..h], payload);
    }
    Ok(h)
}

/// Whether `repr` with `payload_len` bytes can be written into `have`
/// bytes (the payload too when `inline`): the header length if so.
fn check(repr: &SegmentRepr<'_>, payload_len: usize, have: usize, inline: bool) -> Result<usize, EmitError> {
    if repr.src.is_ipv4() != repr.dst.is_ipv4() {
        return Err(EmitError::MixedFamilies { src: repr.src, dst: repr.dst });
    }
    let opt_len = crate::dissect::options::options_len(repr.options);
    if opt_len > crate::dissect::options::MAX_OPTION_SPACE {
        return Err(EmitError::OptionSpace { len: opt_len, max: crate::dissect::options::MAX_OPTION_SPACE });
    }
    let iph = ip_header_len(repr.src);
    let h = iph + field::tcp::HEADER_LEN + opt_len;
    // IPv4 total length (RFC 791), IPv6 payload length (RFC 8200 §3): 16 bits.
    let counted = if repr.src.is_ipv4() { h + payload_len } else { h - iph + payload_len };
    if counted > u16::MAX as usize {
        return Err(EmitError::TooLong { len: h - iph + payload_len });
    }
    let need = if inline { h + payload_len } else { h };
    if have < need {
        return Err(EmitError::BufferTooSmall { need, have });
    }
    Ok(h)
}

/// IP and TCP headers (`h` bytes, as [`check`] found) for `payload_len`
/// bytes of payload; the IPv4 header checksum with `checksum`, the TCP
/// checksum left zero.
fn write_headers(repr: &SegmentRepr<'_>, h: usize, payload_len: usize, buf: &mut [u8], checksum: bool) {
    let iph = ip_header_len(repr.src);
    let tcp_hlen = h - iph;
    let tcp_len = tcp_hlen + payload_len;
    let total = iph + tcp_len;
    let buf = &mut buf[..h];
    match (repr.src.ip(), repr.dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            use field::ipv4 as f;
            let h = &mut buf[..f::HEADER_LEN];
            h[f::VER_IHL] = 0x45;
            h[1] = 0;
            h[f::TOTAL_LEN].copy_from_slice(&(total as u16).to_be_bytes());
            h[4..6].copy_from_slice(&[0, 0]);
            h[f::FRAG].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
            h[f::TTL] = 64;
            h[f::PROTO] = PROTO_TCP;
            h[f::CHECKSUM].copy_from_slice(&[0, 0]);
            h[f::SRC].copy_from_slice(&s.octets());
            h[f::DST].copy_from_slice(&d.octets());
            if checksum {
                let mut c = InternetChecksum::new();
                c.add(h);
                let v = c.finish();
                h[f::CHECKSUM].copy_from_slice(&v.to_be_bytes());
            }
        }
        (s, d) => {
            // `check` made sure both are IPv6 here.
            use field::ipv6 as f;
            let h = &mut buf[..f::HEADER_LEN];
            h[..4].copy_from_slice(&[0x60, 0, 0, 0]);
            h[f::PAYLOAD_LEN].copy_from_slice(&(tcp_len as u16).to_be_bytes());
            h[f::NEXT_HEADER] = PROTO_TCP;
            h[f::HOP_LIMIT] = 64;
            h[f::SRC].copy_from_slice(&v6(s).octets());
            h[f::DST].copy_from_slice(&v6(d).octets());
        }
    }
    let tcp = &mut buf[iph..];
    use field::tcp as t;
    tcp[t::SRC_PORT].copy_from_slice(&repr.src.port().to_be_bytes());
    tcp[t::DST_PORT].copy_from_slice(&repr.dst.port().to_be_bytes());
    tcp[t::SEQ].copy_from_slice(&repr.seq.0.to_be_bytes());
    tcp[t::ACK].copy_from_slice(&repr.ack.0.to_be_bytes());
    tcp[t::DATA_OFF] = ((tcp_hlen / 4) as u8) << 4;
    tcp[t::FLAGS] = repr.flags;
    tcp[t::WINDOW].copy_from_slice(&repr.window.to_be_bytes());
    tcp[t::CHECKSUM].copy_from_slice(&[0, 0]);
    tcp[t::URGENT].copy_from_slice(&[0, 0]);
    emit_options(repr.options, &mut tcp[t::HEADER_LEN..tcp_hlen]);
}

/// Set the TCP checksum of headers `hdr` (as `write_headers` left them) over `payload`.
fn tcp_checksum(repr: &SegmentRepr<'_>, hdr: &mut [u8], payload: &[u8]) {
    let iph = ip_header_len(repr.src);
    let tcp = &mut hdr[iph..];
    let v =
        pseudo_sum(repr.src.ip(), repr.dst.ip(), tcp.len() + payload.len()).add_then(tcp).add_then(payload).finish();
    tcp[field::tcp::CHECKSUM].copy_from_slice(&v.to_be_bytes());
}

/// Where the TCP header of a well-formed packet lies: `(offset, header
/// length)`, IPv6 extension headers walked; None for anything else.
fn tcp_span(packet: &[u8], payload: &[u8]) -> Option<(IpAddr, IpAddr, usize, usize)> {
    let (src, dst, off, end) = ip_layer(packet, payload.len(), false).ok()?;
    let hlen = tcp_header_len(&packet[off..end], !payload.is_empty()).ok()?;
    Some((src, dst, off, hlen))
}

/// Replace every MPTCP option (kind 30) of a packet by NOPs, as an
/// option-stripping middlebox does, and fix the TCP checksum if it was set.
/// Returns true when something was stripped.
pub fn strip_mptcp_options(packet: &mut [u8], checksum: bool) -> bool {
    strip_mptcp_options_parts(packet, &[], checksum)
}

/// [`strip_mptcp_options`] for a packet in two parts: headers (changed in
/// place) and payload (unchanged; the checksum covers it).
pub fn strip_mptcp_options_parts(packet: &mut [u8], payload: &[u8], checksum: bool) -> bool {
    let Ok(seg) = parse_split(packet, payload, false) else { return false };
    if !seg.opts.has_mptcp() && !seg.opts.mptcp_malformed {
        return false;
    }
    let Some((src, dst, off, hlen)) = tcp_span(packet, payload) else { return false };
    let opts = &mut packet[off + field::tcp::HEADER_LEN..off + hlen];
    let mut i = 0;
    let mut stripped = false;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            k => {
                let Some(&l) = opts.get(i + 1) else { break };
                let l = l as usize;
                if l < 2 || i + l > opts.len() {
                    break;
                }
                if k == crate::dissect::options::kind::MPTCP {
                    opts[i..i + l].fill(1);
                    stripped = true;
                }
                i += l;
            }
        }
    }
    if stripped && checksum {
        fix_tcp_checksum(packet, payload, src, dst, off);
    }
    stripped
}

/// Recompute the TCP checksum of the segment at `packet[off..]` + `payload`.
fn fix_tcp_checksum(packet: &mut [u8], payload: &[u8], src: IpAddr, dst: IpAddr, off: usize) {
    let c = off + field::tcp::CHECKSUM.start;
    let tcp_len = packet.len() - off + payload.len();
    packet[c..c + 2].copy_from_slice(&[0, 0]);
    let v = pseudo_sum(src, dst, tcp_len).add_then(&packet[off..]).add_then(payload).finish();
    packet[c..c + 2].copy_from_slice(&v.to_be_bytes());
}

/// Payload bytes of a TCP segment whose headers are in `packet` (with
/// part of its payload, maybe) and `extra` more payload bytes elsewhere
/// (0 for anything that is not a well-formed TCP segment).
pub fn tcp_payload_len(packet: &[u8], extra: usize) -> usize {
    let Ok((_, _, off, end)) = ip_layer(packet, extra, false) else { return 0 };
    let Ok(hlen) = tcp_header_len(&packet[off..end], extra != 0) else { return 0 };
    (end - off - hlen) + extra
}

/// Flip every bit of the payload byte at `index` (modulo the payload
/// length) of a TCP segment whose headers are in `packet` and whose payload
/// follows them there or is `payload`, and repair the TCP checksum (when
/// `checksum`): a middlebox that rewrites data and keeps TCP happy, which
/// only the DSS checksum can catch (RFC 8684 §3.3.1). Returns whether a
/// payload byte was changed.
pub fn corrupt_payload_byte(packet: &mut [u8], payload: &mut [u8], index: usize, checksum: bool) -> bool {
    let Some((src, dst, off, hlen)) = tcp_span(packet, payload) else { return false };
    let inline = packet.len().saturating_sub(off + hlen);
    let total = inline + payload.len();
    if total == 0 {
        return false;
    }
    let i = index % total;
    if i < inline {
        packet[off + hlen + i] ^= 0xff;
    } else {
        payload[i - inline] ^= 0xff;
    }
    if checksum {
        fix_tcp_checksum(packet, payload, src, dst, off);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::options::{Dss, DssMapping, WireSeq};

    fn roundtrip(src: &str, dst: &str) {
        let dss = TcpOption::Mptcp(MptcpOption::Dss(Dss {
            data_fin: false,
            data_ack: Some(WireSeq::U64(77)),
            mapping: Some(DssMapping { dsn: WireSeq::U64(1000), ssn: 1, data_len: 5, checksum: None }),
        }));
        let opts = [TcpOption::Timestamps { tsval: 1, tsecr: 2 }, dss];
        let repr = SegmentRepr {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            seq: SubflowSeq(100),
            ack: SubflowSeq(200),
            flags: flags::ACK | flags::PSH,
            window: 512,
            options: &opts,
        };
        let mut buf = [0u8; 200];
        let n = emit(&repr, 5, &mut buf, true, |p| p.copy_from_slice(b"hello")).unwrap();
        assert_eq!(n, header_len(repr.src, &opts) + 5);
        let s = parse(&buf[..n], true).unwrap();
        assert_eq!(s.src, repr.src);
        assert_eq!(s.dst, repr.dst);
        assert_eq!(s.seq, SubflowSeq(100));
        assert_eq!(s.ack, SubflowSeq(200));
        assert_eq!(s.window, 512);
        assert_eq!(s.payload, b"hello");
        assert_eq!(s.opts.timestamps, Some((1, 2)));
        assert_eq!(s.opts.mptcp().count(), 1);
        // Cross-check with the dissector's etherparse-based decoder.
        let p = crate::dissect::packet::decode(crate::dissect::packet::linktype::RAW, &buf[..n]);
        assert!(p.error.is_none(), "{:?}", p.error);
        // A flipped payload bit fails the TCP checksum.
        buf[n - 1] ^= 1;
        assert_eq!(parse(&buf[..n], true).unwrap_err(), WireError::BadTcpChecksum);
        assert!(parse(&buf[..n], false).is_ok());
        buf[n - 1] ^= 1;
        // Stripping keeps a valid checksum and removes the DSS.
        assert!(strip_mptcp_options(&mut buf[..n], true));
        let s = parse(&buf[..n], true).unwrap();
        assert!(!s.opts.has_mptcp());
        assert_eq!(s.opts.timestamps, Some((1, 2)));
        // A middlebox rewriting one payload byte keeps the TCP checksum valid,
        // with the payload inline and with the payload apart.
        assert_eq!(tcp_payload_len(&buf[..n], 0), 5);
        assert!(corrupt_payload_byte(&mut buf[..n], &mut [], 7, true));
        let s = parse(&buf[..n], true).unwrap();
        assert_eq!(s.payload, b"he\x93lo");
        let h = n - 5;
        let mut payload = b"hello".to_vec();
        assert_eq!(tcp_payload_len(&buf[..h], 5), 5);
        assert!(corrupt_payload_byte(&mut buf[..h], &mut payload, 0, true));
        assert_eq!(payload, b"\x97ello");
        assert!(parse_split(&buf[..h], &payload, true).is_ok());
        assert!(!corrupt_payload_byte(&mut buf[..h], &mut [], 0, true), "no payload, nothing changed");
    }

    #[test]
    fn v4_roundtrip() {
        roundtrip("10.0.0.1:1000", "10.0.0.2:80");
    }

    #[test]
    fn v6_roundtrip() {
        roundtrip("[fd00::1]:1000", "[fd00::2]:80");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for len in 0..64 {
            let b: Vec<u8> = (0..len).map(|i| (i * 37 + 0x45) as u8).collect();
            let _ = parse(&b, true);
            let _ = parse(&b, false);
        }
        assert_eq!(parse(&[0x45], false).unwrap_err(), WireError::Truncated { len: 1, need: 20 });
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        /// Bytes that look enough like a packet to get past the first checks.
        fn packetish() -> impl Strategy<Value = Vec<u8>> {
            (
                prop_oneof![Just(0x45u8), Just(0x46), Just(0x4f), Just(0x60), any::<u8>()],
                proptest::collection::vec(any::<u8>(), 0..160),
            )
                .prop_map(|(v, mut rest)| {
                    rest.insert(0, v);
                    if rest.len() > 9 && v >> 4 == 4 {
                        rest[9] = PROTO_TCP;
                    }
                    if rest.len() > 6 && v >> 4 == 6 {
                        rest[6] = PROTO_TCP;
                    }
                    rest
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

            /// Whatever the bytes (headers and a payload apart), the parser
            /// and the middlebox helpers return, never panic.
            #[test]
            fn any_bytes_are_handled(mut p in packetish(), mut extra in proptest::collection::vec(any::<u8>(), 0..40), at in any::<usize>()) {
                let _ = parse(&p, true);
                let _ = parse_split(&p, &extra, false);
                let _ = tcp_payload_len(&p, extra.len());
                let _ = strip_mptcp_options_parts(&mut p, &extra, true);
                let _ = corrupt_payload_byte(&mut p, &mut extra, at, true);
                let _ = corrupt_payload_byte(&mut p, &mut [], at, false);
            }

            /// Whatever the options and the buffer, emit writes a packet the
            /// parser takes back, or says why it cannot.
            #[test]
            fn emit_never_panics(n_ts in 0usize..5, n_sack in 0usize..5, nops in 0usize..45, buf_len in 0usize..200, plen in 0usize..100, v6 in any::<bool>(), mixed in any::<bool>()) {
                let mut opts = vec![TcpOption::Nop; nops];
                opts.extend(std::iter::repeat_n(TcpOption::Timestamps { tsval: 1, tsecr: 2 }, n_ts));
                if n_sack > 0 {
                    let blocks: Vec<(u32, u32)> = (0..n_sack as u32).map(|i| (i * 10, i * 10 + 5)).collect();
                    opts.push(TcpOption::Sack(SackBlocks::new(&blocks)));
                }
                let (src, dst) = match (v6, mixed) {
                    (false, false) => ("10.0.0.1:1", "10.0.0.2:2"),
                    (true, false) => ("[fd00::1]:1", "[fd00::2]:2"),
                    (false, true) => ("10.0.0.1:1", "[fd00::2]:2"),
                    (true, true) => ("[fd00::1]:1", "10.0.0.2:2"),
                };
                let repr = SegmentRepr {
                    src: src.parse().unwrap(),
                    dst: dst.parse().unwrap(),
                    seq: SubflowSeq(1),
                    ack: SubflowSeq(2),
                    flags: flags::ACK,
                    window: 3,
                    options: &opts,
                };
                let mut buf = vec![0u8; buf_len];
                match emit(&repr, plen, &mut buf, true, |p| p.fill(7)) {
                    Ok(n) => {
                        let s = parse(&buf[..n], true).unwrap();
                        prop_assert_eq!(s.payload.len(), plen);
                    }
                    Err(EmitError::MixedFamilies { .. }) => prop_assert!(mixed),
                    Err(EmitError::OptionSpace { len, .. }) => prop_assert!(len > 40),
                    Err(EmitError::BufferTooSmall { need, have }) => prop_assert!(need > have),
                    Err(EmitError::TooLong { .. }) => prop_assert!(false, "short payloads fit"),
                }
            }
        }
    }
}
