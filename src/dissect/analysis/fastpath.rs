//! A lean decoder for the summary path: Ethernet or raw IP, IPv4 without
//! fragmentation or IPv6 without extension headers, TCP. It reads the fixed
//! header fields in place (RFC 791 §3.1, RFC 8200 §3, RFC 9293 §3.1) and
//! yields exactly the [`Packet`] that [`packet::decode`] would; anything
//! else (VLAN tags, other link types, fragments, extension headers, a frame
//! cut inside a header, malformed headers) is left to the full decoder.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::dissect::packet::{self, FrameMeta, IpInfo, Packet, TcpSegment, linktype};

use super::Analyzer;

fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// The frame as the full decoder would see it, when this path can handle
/// it; `None` sends it to [`packet::decode`].
pub fn decode(lt: u32, frame: &[u8]) -> Option<Packet<'_>> {
    let ip = match lt {
        linktype::ETHERNET => {
            if frame.len() < 14 {
                return None;
            }
            match be16(frame, 12) {
                0x0800 | 0x86dd => &frame[14..],
                _ => return None,
            }
        }
        linktype::RAW | linktype::RAW_12 | linktype::RAW_14 | linktype::IPV4 | linktype::IPV6 => frame,
        _ => return None,
    };
    let (info, payload) = match ip.first()? >> 4 {
        4 => v4(ip)?,
        6 => v6(ip)?,
        _ => return None,
    };
    if info.protocol != 6 {
        return None;
    }
    let tcp = tcp(payload, info.payload_len())?;
    Some(Packet { vlans: Vec::new(), ip: Some(info), tcp: Some(tcp), other: None, error: None })
}

/// IPv4 header and the payload bytes the header's total length covers.
fn v4(b: &[u8]) -> Option<(IpInfo, &[u8])> {
    if b.len() < 20 {
        return None;
    }
    let hl = (b[0] & 0x0f) as usize * 4;
    let total = be16(b, 2) as usize;
    if hl < 20 || b.len() < hl || total < hl {
        return None;
    }
    let flags_frag = be16(b, 6);
    let (df, mf, off) = (flags_frag & 0x4000 != 0, flags_frag & 0x2000 != 0, flags_frag & 0x1fff);
    if mf || off != 0 || flags_frag & 0x8000 != 0 {
        return None;
    }
    let info = IpInfo {
        src: IpAddr::V4(Ipv4Addr::new(b[12], b[13], b[14], b[15])),
        dst: IpAddr::V4(Ipv4Addr::new(b[16], b[17], b[18], b[19])),
        ttl: b[8],
        tos: b[1],
        id: be16(b, 4),
        dont_fragment: df,
        more_fragments: false,
        frag_offset: 0,
        flow_label: 0,
        protocol: b[9],
        total_len: total as u32,
        header_len: hl as u32,
        checksum: be16(b, 10),
    };
    Some((info, &b[hl..total.min(b.len())]))
}

/// IPv6 header (no extension headers) and its payload.
fn v6(b: &[u8]) -> Option<(IpInfo, &[u8])> {
    if b.len() < 40 {
        return None;
    }
    let plen = be16(b, 4) as usize;
    if plen == 0 {
        return None;
    }
    let mut s = [0u8; 16];
    let mut d = [0u8; 16];
    s.copy_from_slice(&b[8..24]);
    d.copy_from_slice(&b[24..40]);
    let vtf = be32(b, 0);
    let info = IpInfo {
        src: IpAddr::V6(Ipv6Addr::from(s)),
        dst: IpAddr::V6(Ipv6Addr::from(d)),
        ttl: b[7],
        tos: (vtf >> 20) as u8,
        id: 0,
        dont_fragment: false,
        more_fragments: false,
        frag_offset: 0,
        flow_label: vtf & 0x000f_ffff,
        protocol: b[6],
        total_len: 40 + plen as u32,
        header_len: 40,
        checksum: 0,
    };
    Some((info, &b[40..(40 + plen).min(b.len())]))
}

fn tcp(data: &[u8], claimed: u32) -> Option<TcpSegment<'_>> {
    if data.len() < 20 {
        return None;
    }
    let header_len = (data[12] >> 4) * 4;
    if header_len < 20 {
        return None;
    }
    let hl = header_len as usize;
    Some(TcpSegment {
        sport: be16(data, 0),
        dport: be16(data, 2),
        seq: be32(data, 4),
        ack: be32(data, 8),
        header_len,
        flags: data[13],
        ns: data[12] & 0x01 != 0,
        window: be16(data, 14),
        checksum: be16(data, 16),
        urgent: be16(data, 18),
        options_raw: &data[20..hl.min(data.len())],
        options_truncated: data.len() < hl,
        payload: if data.len() > hl { &data[hl..] } else { &[] },
        payload_len: claimed.saturating_sub(header_len as u32),
    })
}

impl Analyzer {
    /// Feeds one captured frame on the summary fast path: decodes only what
    /// the analysis needs (the full decoder for anything unusual), no note.
    pub fn observe_frame(&mut self, meta: &FrameMeta, frame: &[u8]) {
        match decode(meta.linktype, frame) {
            Some(p) => self.observe(meta, &p),
            None => self.observe(meta, &packet::decode(meta.linktype, frame)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_the_full_decoder_on_cut_and_odd_frames() {
        // An Ethernet/IPv4/TCP frame with options and payload.
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let ip_tcp: Vec<u8> = {
            let mut ip = vec![0x45, 0xb8, 0, 0, 0x12, 0x34, 0x40, 0, 63, 6, 0xab, 0xcd, 10, 0, 0, 1, 10, 0, 0, 2];
            let mut t = vec![0u8; 20];
            t[0..2].copy_from_slice(&1234u16.to_be_bytes());
            t[2..4].copy_from_slice(&80u16.to_be_bytes());
            t[4..8].copy_from_slice(&7u32.to_be_bytes());
            t[12] = 7 << 4;
            t[13] = 0x18;
            t.extend_from_slice(&[1, 1, 30, 8, 0x20, 0x01, 0, 0, 0, 5]);
            t.extend_from_slice(&[0, 0]);
            t.extend_from_slice(b"payload!");
            let total = (20 + t.len()) as u16;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&t);
            ip
        };
        f.extend_from_slice(&ip_tcp);
        // With Ethernet padding too.
        let mut padded = f.clone();
        padded.extend_from_slice(&[0; 6]);
        for frame in [&f, &padded] {
            for cut in 0..=frame.len() {
                let full = packet::decode(linktype::ETHERNET, &frame[..cut]);
                if let Some(p) = decode(linktype::ETHERNET, &frame[..cut]) {
                    assert_eq!(p, full, "cut at {cut}");
                }
            }
        }
        // Fragments and other protocols go to the full decoder.
        let mut frag = f.clone();
        frag[14 + 6] = 0x20;
        assert!(decode(linktype::ETHERNET, &frag).is_none());
        let mut udp = f.clone();
        udp[14 + 9] = 17;
        assert!(decode(linktype::ETHERNET, &udp).is_none());
        assert!(decode(linktype::LINUX_SLL, &f).is_none());
        assert_eq!(decode(linktype::RAW, &f[14..]).unwrap(), packet::decode(linktype::RAW, &f[14..]));
    }
}
