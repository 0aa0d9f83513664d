//! Transmit side of a TUN with a virtio-net header (`--tun-offload`): the
//! header every packet carries ([`offload_fixup`]: the IPv4 header checksum,
//! the TCP checksum left to the kernel), and segment coalescing: runs of
//! consecutive data segments the stack emits on
//! one subflow are merged into one TSO super-packet (GSO_TCPV4/6, checksum
//! left to the kernel), so the kernel takes 40 segments in one `write(2)` and
//! one pass through its receive path, as it takes a GRO packet from a NIC.
//!
//! Segments merge only when the result is what the stack would have sent as
//! one segment with a larger MSS: same addresses and ports, contiguous
//! sequence numbers, the same ACK, window and timestamps, and a DSS option
//! whose mapping (RFC 8684 §3.3.1) covers exactly the segment and continues
//! the previous one in both the data and the subflow sequence spaces; the
//! merged mapping then covers the whole payload. A mapping may span several
//! segments, so if the kernel ever resegments the super-packet (each segment
//! carrying a copy of the header) the result is still valid MPTCP. Segments
//! with a DSS checksum, a DATA_FIN, SYN/FIN/RST or other MPTCP options are
//! sent as they are.
//!
//! Nothing is copied: the stack gives each segment as headers plus a slice
//! of its send buffer ([`crate::stack::Endpoint::poll_transmit_parts`]); a
//! super-packet is the virtio-net header and the first segment's headers
//! (patched) in one small buffer, then the payload slices (neighbours in
//! the send buffer joined into one), handed to `writev(2)` together.

use std::io::IoSlice;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum::InternetChecksum;
use crate::dissect::options::{Dss, kind, subtype};
use crate::stack::buf::Slice;
use crate::stack::endpoint::MAX_HEADERS;
use crate::stack::wire::field::{ipv4, ipv6, tcp};
use crate::stack::wire::{self, PROTO_TCP, flags};
use crate::sys::tun::{VNET_HDR_LEN, VnetHdr};

/// Largest merged payload: the DSS data-level length is 16 bits.
const MAX_PAYLOAD: usize = 65_535 - 1024;

/// Payload pieces of one super-packet at most (segments whose payloads are
/// neighbours in the send buffer count as one).
const MAX_PARTS: usize = 64;

/// What a segment must share with the run it extends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    v6: bool,
    addrs: [u8; 32],
    ports: u32,
    ack: u32,
    window: u16,
    tsval: u32,
    tsecr: u32,
    dsn64: bool,
    data_ack: Option<u64>,
}

/// The facts of one coalescable segment.
#[derive(Clone, Copy, Debug)]
struct Seg {
    shape: Shape,
    seq: u32,
    dsn: u64,
    ssn: u32,
    hdr_len: usize,
    payload: usize,
    psh: bool,
    /// Offset of the DSS data-level length field in the packet.
    dss_len_at: usize,
}

/// Parse a segment the stack emitted (its headers; `payload` bytes follow
/// them); `None` when it must go out alone.
fn parse(p: &[u8], payload: usize) -> Option<Seg> {
    let mut addrs = [0u8; 32];
    let (v6, ip_len) = match p.first()? >> 4 {
        4 => {
            let ihl = usize::from(p[ipv4::VER_IHL] & 0x0f) * 4;
            // No IP options, TCP, not a fragment (MF or an offset).
            if ihl != ipv4::HEADER_LEN
                || p.len() < ipv4::HEADER_LEN + tcp::HEADER_LEN
                || p[ipv4::PROTO] != PROTO_TCP
                || u16::from_be_bytes(p[ipv4::FRAG].try_into().ok()?) & 0x3fff != 0
            {
                return None;
            }
            addrs[..8].copy_from_slice(&p[ipv4::SRC.start..ipv4::DST.end]);
            (false, ipv4::HEADER_LEN)
        }
        6 => {
            if p.len() < ipv6::HEADER_LEN + tcp::HEADER_LEN || p[ipv6::NEXT_HEADER] != PROTO_TCP {
                return None;
            }
            addrs.copy_from_slice(&p[ipv6::SRC.start..ipv6::DST.end]);
            (true, ipv6::HEADER_LEN)
        }
        _ => return None,
    };
    let t = &p[ip_len..];
    let doff = usize::from(t[tcp::DATA_OFF] >> 4) * 4;
    if doff < tcp::HEADER_LEN || t.len() != doff {
        return None;
    }
    let tcp_flags = t[tcp::FLAGS];
    // ACK, optionally PSH; nothing else.
    if tcp_flags & !flags::PSH != flags::ACK {
        return None;
    }
    if payload == 0 {
        return None;
    }
    let mut ts = None;
    let mut dss = None;
    let mut i = tcp::HEADER_LEN;
    while i < doff {
        match t[i] {
            kind::EOL => break,
            kind::NOP => i += 1,
            k => {
                let len = usize::from(*t.get(i + 1)?);
                if len < 2 || i + len > doff {
                    return None;
                }
                let o = &t[i..i + len];
                match k {
                    // Kind, length, TSval, TSecr (RFC 7323 §3).
                    kind::TIMESTAMPS if len == 10 => {
                        ts = Some((
                            u32::from_be_bytes(o[2..6].try_into().ok()?),
                            u32::from_be_bytes(o[6..10].try_into().ok()?),
                        ))
                    }
                    kind::MPTCP if o.get(2).is_some_and(|b| b >> 4 == subtype::DSS) => dss = Some((i, len)),
                    _ => return None,
                }
                i += len;
            }
        }
    }
    // The DSS fields in their order (RFC 8684 §3.3, Figure 9): kind,
    // length, subtype, flags, then DATA_ACK, DSN, SSN, data-level length
    // and the checksum, each present or wide as the flags say.
    let (at, len) = dss?;
    let o = &t[at..at + len];
    let fl = o[3];
    // M must be set, F not.
    if fl & Dss::FLAG_MAPPING == 0 || fl & Dss::FLAG_DATA_FIN != 0 {
        return None;
    }
    let mut k = 4;
    let data_ack = if fl & Dss::FLAG_ACK != 0 {
        if fl & Dss::FLAG_ACK8 != 0 {
            let v = u64::from_be_bytes(o.get(k..k + 8)?.try_into().ok()?);
            k += 8;
            Some(v)
        } else {
            let v = u64::from(u32::from_be_bytes(o.get(k..k + 4)?.try_into().ok()?));
            k += 4;
            Some(v)
        }
    } else {
        None
    };
    let dsn64 = fl & Dss::FLAG_DSN8 != 0;
    let dsn = if dsn64 {
        let v = u64::from_be_bytes(o.get(k..k + 8)?.try_into().ok()?);
        k += 8;
        v
    } else {
        let v = u64::from(u32::from_be_bytes(o.get(k..k + 4)?.try_into().ok()?));
        k += 4;
        v
    };
    let ssn = u32::from_be_bytes(o.get(k..k + 4)?.try_into().ok()?);
    let dlen = u16::from_be_bytes(o.get(k + 4..k + 6)?.try_into().ok()?);
    // A checksum follows: the mapping cannot grow without recomputing it.
    if len != k + 6 || usize::from(dlen) != payload {
        return None;
    }
    let (tsval, tsecr) = ts.unwrap_or((0, 0));
    Some(Seg {
        shape: Shape {
            v6,
            addrs,
            ports: u32::from_be_bytes(t[tcp::SRC_PORT.start..tcp::DST_PORT.end].try_into().ok()?),
            ack: u32::from_be_bytes(t[tcp::ACK].try_into().ok()?),
            window: u16::from_be_bytes(t[tcp::WINDOW].try_into().ok()?),
            tsval,
            tsecr,
            dsn64,
            data_ack,
        },
        seq: u32::from_be_bytes(t[tcp::SEQ].try_into().ok()?),
        dsn,
        ssn,
        hdr_len: ip_len + doff,
        payload,
        psh: tcp_flags & flags::PSH != 0,
        dss_len_at: ip_len + at + k + 4,
    })
}

/// For a packet sent with the virtio-net header: the IPv4 header checksum
/// (the kernel always verifies it) and a NEEDS_CSUM header asking the kernel
/// to treat the TCP checksum as offloaded (CHECKSUM_PARTIAL, which local
/// delivery accepts without computing it). `pkt` holds the headers and
/// `more` payload bytes follow it.
pub(crate) fn offload_fixup(pkt: &mut [u8], more: usize) -> VnetHdr {
    let mut hdr = VnetHdr::default();
    let Some(&v) = pkt.first() else { return hdr };
    let v6 = match v >> 4 {
        4 => false,
        6 => true,
        _ => return hdr,
    };
    let ip_len = if v6 {
        ipv6::HEADER_LEN
    } else {
        let ihl = usize::from(v & 0x0f) * 4;
        if pkt.len() < ihl || ihl < ipv4::HEADER_LEN {
            return hdr;
        }
        pkt[ipv4::CHECKSUM].fill(0);
        let mut c = InternetChecksum::new();
        c.add(&pkt[..ihl]);
        pkt[ipv4::CHECKSUM].copy_from_slice(&c.finish().to_be_bytes());
        ihl
    };
    if pkt.len() >= ip_len + tcp::HEADER_LEN {
        // Seed the TCP checksum with the pseudo-header sum, as a NIC expects.
        let (src, dst) = addresses(pkt, v6);
        let seed = wire::pseudo_sum(src, dst, pkt.len() - ip_len + more).folded();
        let at = ip_len + tcp::CHECKSUM.start;
        pkt[at..at + 2].copy_from_slice(&seed.to_be_bytes());
        hdr.flags = VnetHdr::NEEDS_CSUM;
        hdr.csum_start = ip_len as u16;
        hdr.csum_offset = tcp::CHECKSUM.start as u16;
    }
    hdr
}

/// Source and destination of an IP header at least as long as its fixed part.
fn addresses(pkt: &[u8], v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        let a = |r: core::ops::Range<usize>| -> IpAddr {
            let mut o = [0u8; 16];
            o.copy_from_slice(&pkt[r]);
            Ipv6Addr::from(o).into()
        };
        (a(ipv6::SRC), a(ipv6::DST))
    } else {
        let a = |r: core::ops::Range<usize>| -> IpAddr {
            let mut o = [0u8; 4];
            o.copy_from_slice(&pkt[r]);
            Ipv4Addr::from(o).into()
        };
        (a(ipv4::SRC), a(ipv4::DST))
    }
}

/// Builds super-packets: the virtio-net header and the first segment's
/// headers in `head`, the payloads as slices.
pub struct Coalescer {
    head: [u8; VNET_HDR_LEN + MAX_HEADERS],
    /// Packet header bytes after the virtio-net header (0: nothing pending).
    hdr_len: usize,
    parts: Vec<Slice>,
    /// Payload bytes pending.
    len: usize,
    first: Option<Seg>,
    next_seq: u32,
    next_dsn: u64,
    next_ssn: u32,
    count: usize,
    last_payload: usize,
    /// Packets written and segments merged into them (for -vv).
    pub packets: u64,
    pub segments: u64,
}

impl Default for Coalescer {
    fn default() -> Self {
        Coalescer::new()
    }
}

impl Coalescer {
    pub fn new() -> Coalescer {
        Coalescer {
            head: [0; VNET_HDR_LEN + MAX_HEADERS],
            hdr_len: 0,
            parts: Vec::with_capacity(64),
            len: 0,
            first: None,
            next_seq: 0,
            next_dsn: 0,
            next_ssn: 0,
            count: 0,
            last_payload: 0,
            packets: 0,
            segments: 0,
        }
    }

    fn add_part(&mut self, p: &Slice) {
        match self.parts.last_mut() {
            Some(last) if last.continues_into(p) => {
                last.try_extend(p);
            }
            _ => self.parts.push(p.clone()),
        }
        self.len += p.len();
    }

    /// Take one packet the stack emitted: `hdr` (its IP and TCP headers)
    /// and its payload. Whatever must go out before it is passed to `out`
    /// as the pieces of one packet (virtio-net header first).
    pub fn push(&mut self, hdr: &[u8], payload: Option<&Slice>, out: &mut dyn FnMut(&[IoSlice<'_>])) {
        let plen = payload.map_or(0, |p| p.len());
        let seg = if hdr.len() <= MAX_HEADERS { parse(hdr, plen) } else { None };
        if let (Some(s), Some(f), Some(p)) = (seg, self.first, payload) {
            let fits = s.shape == f.shape
                && s.seq == self.next_seq
                && s.dsn == (if f.shape.dsn64 { self.next_dsn } else { self.next_dsn & 0xffff_ffff })
                && s.ssn == self.next_ssn
                && s.hdr_len == f.hdr_len
                && s.payload <= f.payload
                && self.last_payload == f.payload
                && self.len + s.payload <= MAX_PAYLOAD
                && self.parts.len() < MAX_PARTS;
            if fits {
                self.add_part(p);
                self.next_seq = self.next_seq.wrapping_add(s.payload as u32);
                self.next_dsn = self.next_dsn.wrapping_add(s.payload as u64);
                self.next_ssn = self.next_ssn.wrapping_add(s.payload as u32);
                self.count += 1;
                self.last_payload = s.payload;
                if s.psh {
                    let at = VNET_HDR_LEN + if f.shape.v6 { ipv6::HEADER_LEN } else { ipv4::HEADER_LEN };
                    self.head[at + tcp::FLAGS] |= flags::PSH;
                }
                return;
            }
        }
        self.flush(out);
        if hdr.len() > MAX_HEADERS {
            // Not a packet of ours (too many headers): as it is.
            let vh = VnetHdr::default().emit();
            let pl: &[u8] = payload.map_or(&[], |p| p);
            self.packets += 1;
            self.segments += 1;
            out(&[IoSlice::new(&vh), IoSlice::new(hdr), IoSlice::new(pl)]);
            return;
        }
        self.head[VNET_HDR_LEN..VNET_HDR_LEN + hdr.len()].copy_from_slice(hdr);
        self.hdr_len = hdr.len();
        if let Some(p) = payload {
            self.add_part(p);
        }
        match seg {
            Some(s) => {
                self.first = Some(s);
                self.next_seq = s.seq.wrapping_add(s.payload as u32);
                self.next_dsn = s.dsn.wrapping_add(s.payload as u64);
                self.next_ssn = s.ssn.wrapping_add(s.payload as u32);
                self.count = 1;
                self.last_payload = s.payload;
            }
            None => {
                // Alone: written at once.
                self.count = 1;
                self.emit(None, out);
            }
        }
    }

    /// Write out the pending super-packet, if any.
    pub fn flush(&mut self, out: &mut dyn FnMut(&[IoSlice<'_>])) {
        let Some(f) = self.first.take() else { return };
        self.emit(Some(f), out);
    }

    fn emit(&mut self, f: Option<Seg>, out: &mut dyn FnMut(&[IoSlice<'_>])) {
        let n = self.hdr_len;
        let payload = self.len;
        let merged = f.filter(|_| self.count > 1);
        let h = &mut self.head[VNET_HDR_LEN..VNET_HDR_LEN + n];
        if let Some(f) = merged {
            if f.shape.v6 {
                h[ipv6::PAYLOAD_LEN].copy_from_slice(&((n + payload - ipv6::HEADER_LEN) as u16).to_be_bytes());
            } else {
                h[ipv4::TOTAL_LEN].copy_from_slice(&((n + payload) as u16).to_be_bytes());
            }
            h[f.dss_len_at..f.dss_len_at + 2].copy_from_slice(&(payload as u16).to_be_bytes());
        }
        let mut vh = offload_fixup(h, payload);
        if let Some(f) = merged {
            vh.gso_type = if f.shape.v6 { VnetHdr::GSO_TCPV6 } else { VnetHdr::GSO_TCPV4 };
            vh.gso_size = f.payload as u16;
            vh.hdr_len = f.hdr_len as u16;
        }
        self.head[..VNET_HDR_LEN].copy_from_slice(&vh.emit());
        self.packets += 1;
        self.segments += self.count as u64;
        {
            let mut iov = [IoSlice::new(&[]); MAX_PARTS + 1];
            iov[0] = IoSlice::new(&self.head[..VNET_HDR_LEN + n]);
            for (i, p) in self.parts.iter().enumerate() {
                iov[i + 1] = IoSlice::new(p);
            }
            out(&iov[..self.parts.len() + 1]);
        }
        self.parts.clear();
        self.len = 0;
        self.hdr_len = 0;
        self.count = 0;
        self.first = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::options::{Dss, DssMapping, MptcpOption, TcpOption, WireSeq};
    use crate::seq::SubflowSeq;
    use crate::stack::wire::{self, SegmentRepr, flags};

    /// Headers and payload of a segment, as `poll_transmit_parts` gives them.
    fn seg(seq: u32, dsn: u64, ssn: u32, payload: &[u8], csum: bool) -> (Vec<u8>, Slice) {
        let opts = [
            TcpOption::Nop,
            TcpOption::Nop,
            TcpOption::Timestamps { tsval: 7, tsecr: 9 },
            TcpOption::Mptcp(MptcpOption::Dss(Dss {
                data_fin: false,
                data_ack: Some(WireSeq::U64(1000)),
                mapping: Some(DssMapping {
                    dsn: WireSeq::U64(dsn),
                    ssn,
                    data_len: payload.len() as u16,
                    checksum: csum.then_some(0x1234),
                }),
            })),
        ];
        let repr = SegmentRepr {
            src: "10.200.0.2:40000".parse().unwrap(),
            dst: "10.200.0.1:5000".parse().unwrap(),
            seq: SubflowSeq(seq),
            ack: SubflowSeq(55),
            flags: flags::ACK,
            window: 1000,
            options: &opts,
        };
        let mut b = vec![0u8; MAX_HEADERS];
        let n = wire::emit_parts(&repr, payload, &mut b, false).unwrap();
        b.truncate(n);
        (b, Slice::copy_from(payload))
    }

    fn whole(parts: &[IoSlice<'_>]) -> Vec<u8> {
        parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    #[test]
    fn contiguous_segments_merge_into_one_gso_packet_with_one_mapping() {
        let mut c = Coalescer::new();
        let mut outs: Vec<Vec<u8>> = Vec::new();
        let a = vec![1u8; 1000];
        let b = vec![2u8; 1000];
        let d = vec![3u8; 500];
        for (i, p) in [&a, &b, &d].iter().enumerate() {
            let off = 1000 * i as u32;
            let (h, pl) = seg(100 + off, 5000 + u64::from(off), 1 + off, p, false);
            c.push(&h, Some(&pl), &mut |x| outs.push(whole(x)));
        }
        assert!(outs.is_empty());
        c.flush(&mut |x| outs.push(whole(x)));
        assert_eq!(outs.len(), 1);
        let h = VnetHdr::parse(&outs[0]).unwrap();
        assert_eq!(h.gso_type, VnetHdr::GSO_TCPV4);
        assert_eq!(h.gso_size, 1000);
        let pkt = &outs[0][VNET_HDR_LEN..];
        let s = wire::parse(pkt, false).unwrap();
        assert_eq!(s.payload.len(), 2500);
        assert_eq!(&s.payload[..1000], &a[..]);
        assert_eq!(&s.payload[2000..], &d[..]);
        let m = s.opts.mptcp().find_map(|o| match o {
            MptcpOption::Dss(d) => d.mapping,
            _ => None,
        });
        let m = m.unwrap();
        assert_eq!((m.dsn.value(), m.ssn, m.data_len), (5000, 1, 2500));
        assert_eq!(c.segments, 3);
    }

    #[test]
    fn gaps_checksums_and_short_middles_are_not_merged() {
        let mut c = Coalescer::new();
        let mut n = 0;
        let p = vec![0u8; 1000];
        let push = |c: &mut Coalescer, (h, pl): (Vec<u8>, Slice), n: &mut usize| {
            c.push(&h, Some(&pl), &mut |_| *n += 1);
        };
        // A DSS checksum: never merged.
        push(&mut c, seg(100, 5000, 1, &p, true), &mut n);
        push(&mut c, seg(1100, 6000, 1001, &p, true), &mut n);
        assert_eq!(n, 2);
        // A DSN gap starts a new run.
        push(&mut c, seg(100, 5000, 1, &p, false), &mut n);
        push(&mut c, seg(1100, 9000, 1001, &p, false), &mut n);
        assert_eq!(n, 3);
        // After a short segment, nothing more joins the run.
        push(&mut c, seg(2100, 10000, 2001, &p[..10], false), &mut n);
        push(&mut c, seg(2110, 10010, 2011, &p, false), &mut n);
        c.flush(&mut |_| n += 1);
        assert_eq!(n, 5);
    }

    #[test]
    fn neighbouring_payloads_go_as_one_piece() {
        // Three segments whose payloads are neighbours in one send buffer.
        let data = Slice::copy_from(&[7u8; 3000]);
        let mut c = Coalescer::new();
        let mut pieces = Vec::new();
        for i in 0..3u32 {
            let (h, _) = seg(100 + 1000 * i, 5000 + u64::from(1000 * i), 1 + 1000 * i, &[7; 1000], false);
            let pl = data.slice(1000 * i as usize..1000 * (i as usize + 1));
            c.push(&h, Some(&pl), &mut |x| pieces.push(x.len()));
        }
        c.flush(&mut |x| pieces.push(x.len()));
        assert_eq!(pieces, [2], "headers, then one payload piece");
    }

    #[test]
    fn offload_fixup_sets_ip_checksum_and_partial_tcp() {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&40u16.to_be_bytes());
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 200, 0, 2]);
        p[16..20].copy_from_slice(&[10, 200, 0, 1]);
        p[32] = 0x50;
        let h = offload_fixup(&mut p, 0);
        assert_eq!(h.flags, VnetHdr::NEEDS_CSUM);
        assert_eq!((h.csum_start, h.csum_offset), (20, 16));
        let mut c = InternetChecksum::new();
        c.add(&p[..20]);
        assert_eq!(c.folded(), 0xffff, "IPv4 header checksum verifies");
        // The seed: 0a c8 00 02 + 0a c8 00 01 + protocol 6 + TCP length 20.
        assert_eq!(u16::from_be_bytes([p[36], p[37]]), 0x0ac8 + 0x0002 + 0x0ac8 + 0x0001 + 6 + 20);
    }

    #[test]
    fn offload_fixup_completed_as_the_kernel_does_verifies() {
        // What the kernel does with NEEDS_CSUM: sum from csum_start to the
        // end (the seed in place), store the inverted sum at csum_offset.
        for (src, dst) in [("10.200.0.2:40000", "10.200.0.1:5000"), ("[2001:db8::2]:40000", "[2001:db8::1]:5000")] {
            let pl = Slice::copy_from(&[0x5a; 333]);
            let repr = SegmentRepr {
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
                seq: SubflowSeq(100),
                ack: SubflowSeq(55),
                flags: flags::ACK,
                window: 1000,
                options: &[],
            };
            let mut h = vec![0u8; MAX_HEADERS];
            let n = wire::emit_parts(&repr, &pl, &mut h, false).unwrap();
            h.truncate(n);
            let vh = offload_fixup(&mut h, pl.len());
            let mut pkt = [&h[..], &pl[..]].concat();
            let (start, at) = (usize::from(vh.csum_start), usize::from(vh.csum_start + vh.csum_offset));
            let mut c = InternetChecksum::new();
            c.add(&pkt[start..]);
            pkt[at..at + 2].copy_from_slice(&c.finish().to_be_bytes());
            let s = wire::parse(&pkt, true).unwrap();
            assert_eq!(s.payload, &[0x5a; 333][..], "{src}");
        }
    }
}
