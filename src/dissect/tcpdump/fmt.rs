//! Formatting helpers shared by the printers: integers as tcpdump's
//! `printf` formats them (without `format!`), addresses as `tcpdump -n`
//! prints them, and big-endian reads of bytes already bounds-checked by the
//! caller.

use std::net::IpAddr;

/// An address as tcpdump -n prints it (IPv6 per RFC 5952, as inet_ntop).
pub fn addr(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => ipv4(out, v4.octets()),
        IpAddr::V6(v6) => {
            use std::io::Write;
            // glibc's inet_ntop writes IPv4-compatible addresses (::a.b.c.d)
            // with a dotted quad, which Rust's Display no longer does.
            let o = v6.octets();
            if o[..12].iter().all(|&b| b == 0) && (o[12] != 0 || o[13] != 0) {
                out.extend_from_slice(b"::");
                ipv4(out, [o[12], o[13], o[14], o[15]]);
            } else {
                let _ = write!(out, "{v6}");
            }
        }
    }
}

pub(super) fn ipv4(out: &mut Vec<u8>, o: [u8; 4]) {
    for (i, b) in o.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        dec(out, *b as u64);
    }
}

pub(super) fn mac(out: &mut Vec<u8>, m: &[u8]) {
    for (i, b) in m.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        hex_pad(out, *b as u64, 2);
    }
}

#[inline]
pub(super) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(super) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
pub(super) fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Decimal, as `%u`.
#[inline]
pub fn dec(out: &mut Vec<u8>, v: u64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

pub(super) fn dec_i64(out: &mut Vec<u8>, v: i64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

/// Lower-case hex without padding, as `%x`.
#[inline]
pub fn hex(out: &mut Vec<u8>, v: u64) {
    let digits = if v == 0 { 1 } else { (64 - v.leading_zeros()).div_ceil(4) as usize };
    hex_pad(out, v, digits);
}

/// Lower-case hex, zero-padded to `width` digits, as `%0Nx`.
#[inline]
pub fn hex_pad(out: &mut Vec<u8>, v: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let n = width.max(if v == 0 { 1 } else { (64 - v.leading_zeros()).div_ceil(4) as usize });
    for i in (0..n).rev() {
        let shift = i * 4;
        out.push(if shift >= 64 { b'0' } else { DIGITS[((v >> shift) & 0xf) as usize] });
    }
}

/// Decimal right-aligned in `width` columns, padded with `fill`.
pub(super) fn pad_left(out: &mut Vec<u8>, v: u64, width: usize, fill: u8) {
    let mut b = itoa::Buffer::new();
    let s = b.format(v).as_bytes();
    for _ in s.len()..width {
        out.push(fill);
    }
    out.extend_from_slice(s);
}

/// tcpdump's `bittok2str_nosep(..., "none", v)`.
pub(super) fn bits(out: &mut Vec<u8>, v: u8, table: &[(u8, u8)]) {
    let start = out.len();
    for &(bit, c) in table {
        if v & bit != 0 {
            out.push(c);
        }
    }
    if out.len() == start {
        out.extend_from_slice(b"none");
    }
}

/// tcpdump's `fn_print_char`.
pub(super) fn print_char(out: &mut Vec<u8>, mut c: u8) {
    if !c.is_ascii() {
        c &= 0x7f;
        out.extend_from_slice(b"M-");
    }
    if !(0x20..0x7f).contains(&c) {
        out.push(b'^');
        out.push(c ^ 0x40);
    } else {
        out.push(c);
    }
}

/// tcpdump's `hex_and_ascii_print` with the `\n\t` prefix.
pub(super) fn hexdump(out: &mut Vec<u8>, data: &[u8]) {
    for (i, line) in data.chunks(16).enumerate() {
        out.extend_from_slice(b"\n\t0x");
        hex_pad(out, (i * 16) as u64, 4);
        out.extend_from_slice(b":  ");
        for pair in 0..8 {
            for j in 0..2 {
                match line.get(pair * 2 + j) {
                    Some(&b) => hex_pad(out, b as u64, 2),
                    None => out.extend_from_slice(b"  "),
                }
            }
            if pair < 7 {
                out.push(b' ');
            }
        }
        out.extend_from_slice(b"  ");
        for &b in line {
            out.push(if (0x20..0x7f).contains(&b) { b } else { b'.' });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_formatting() {
        let mut o = Vec::new();
        hex(&mut o, 0);
        o.push(b' ');
        hex(&mut o, 0x82f);
        o.push(b' ');
        hex(&mut o, u64::MAX);
        o.push(b' ');
        hex_pad(&mut o, 0x5, 4);
        assert_eq!(o, b"0 82f ffffffffffffffff 0005");
    }
}
