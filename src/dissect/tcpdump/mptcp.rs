//! The MPTCP option (kind 30) as tcpdump's development version prints it
//! (print-mptcp.c): one function per subtype, each checking the length
//! forms tcpdump accepts against the TCP flags. Field layouts per RFC 8684
//! §3 (v1) and RFC 6824 §3 (v0).
//!
//! Every function takes the whole option, kind and length included, and
//! returns false where tcpdump returns 0 (the caller prints `[bad opt]`).

use std::net::IpAddr;

use super::fmt::{addr, be16, be32, be64, bits, dec, hex, hex_pad, ipv4};
use crate::dissect::options::{Dss, MpCapable, subtype};
use crate::dissect::packet::tcp_flags;

/// ` LEN NAME ...` for one MPTCP option, `opt` holding at least its kind and
/// length bytes.
pub(super) fn mptcp(out: &mut Vec<u8>, opt: &[u8], tcp_fl: u8) -> bool {
    let len = opt.len();
    if len < 3 {
        return false;
    }
    let st = opt[2] >> 4;
    out.push(b' ');
    dec(out, len as u64);
    out.push(b' ');
    out.extend_from_slice(subtype_name(st));
    match st {
        subtype::MP_CAPABLE => mp_capable(out, opt, tcp_fl),
        subtype::MP_JOIN => mp_join(out, opt, tcp_fl),
        subtype::DSS => dss(out, opt, tcp_fl),
        subtype::ADD_ADDR => add_addr(out, opt),
        subtype::REMOVE_ADDR => remove_addr(out, opt),
        subtype::MP_PRIO => mp_prio(out, opt),
        subtype::MP_FAIL => mp_fail(out, opt),
        subtype::MP_FASTCLOSE => mp_fastclose(out, opt),
        subtype::MP_TCPRST => mp_tcprst(out, opt),
        // Experimental and unassigned subtypes: the name, nothing more.
        _ => true,
    }
}

fn subtype_name(st: u8) -> &'static [u8] {
    match st {
        subtype::MP_CAPABLE => b"capable",
        subtype::MP_JOIN => b"join",
        subtype::DSS => b"dss",
        subtype::ADD_ADDR => b"add-addr",
        subtype::REMOVE_ADDR => b"rem-addr",
        subtype::MP_PRIO => b"prio",
        subtype::MP_FAIL => b"fail",
        subtype::MP_FASTCLOSE => b"fast-close",
        subtype::MP_TCPRST => b"tcprst",
        _ => b"unknown",
    }
}

/// MP_CAPABLE (RFC 8684 §3.1): 4 or 12 bytes on a SYN, 20/22/24 on the ACKs
/// that follow; ` v1 flags [H] {0xkey,0xkey,data_len=N}`.
fn mp_capable(out: &mut Vec<u8>, opt: &[u8], tcp_fl: u8) -> bool {
    let len = opt.len();
    let syn = tcp_fl & tcp_flags::SYN != 0;
    let ack_only = tcp_fl & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::ACK;
    if !((len == 12 || len == 4) && syn) && !(matches!(len, 20 | 22 | 24) && ack_only) {
        return false;
    }
    let version = opt[2] & 0x0f;
    if version > 1 {
        out.extend_from_slice(b" Unknown Version (");
        dec(out, version as u64);
        out.push(b')');
        return true;
    }
    out.extend_from_slice(b" v");
    dec(out, version as u64);
    let flags = opt[3];
    out.extend_from_slice(b" flags [");
    bits(
        out,
        flags,
        &[
            (0x80, b'A'),
            (0x40, b'B'),
            (0x20, b'C'),
            (0x10, b'D'),
            (0x08, b'E'),
            (0x04, b'F'),
            (0x02, b'G'),
            (0x01, b'H'),
        ],
    );
    out.push(b']');
    let csum = flags & MpCapable::FLAG_CHECKSUM != 0;
    if csum {
        out.extend_from_slice(b" csum");
    }
    if len == 12 || len >= 20 {
        out.extend_from_slice(b" {0x");
        hex(out, be64(opt, 4));
        if len >= 20 {
            out.extend_from_slice(b",0x");
            hex(out, be64(opt, 12));
        }
        // RFC 8684 §3.1: with checksums the form carrying data is 24 bytes
        // (data length, checksum); tcpdump shows no data length in a 22-byte
        // option with the checksum flag.
        if (len == 22 && !csum) || len == 24 {
            out.extend_from_slice(b",data_len=");
            dec(out, be16(opt, 20) as u64);
        }
        out.push(b'}');
    }
    true
}

/// MP_JOIN (RFC 8684 §3.2): 12 bytes on the SYN (token, nonce), 16 on the
/// SYN/ACK (truncated HMAC, nonce), 24 on the third ACK (the whole HMAC).
fn mp_join(out: &mut Vec<u8>, opt: &[u8], tcp_fl: u8) -> bool {
    let len = opt.len();
    let fits = match len {
        12 => tcp_fl & tcp_flags::SYN != 0,
        16 => tcp_fl & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN | tcp_flags::ACK,
        24 => tcp_fl & tcp_flags::ACK != 0,
        _ => false,
    };
    if !fits {
        return false;
    }
    if len != 24 {
        if opt[2] & 0x01 != 0 {
            out.extend_from_slice(b" backup");
        }
        out.extend_from_slice(b" id ");
        dec(out, opt[3] as u64);
    }
    match len {
        12 => {
            out.extend_from_slice(b" token 0x");
            hex(out, be32(opt, 4) as u64);
            out.extend_from_slice(b" nonce 0x");
            hex(out, be32(opt, 8) as u64);
        }
        16 => {
            out.extend_from_slice(b" hmac 0x");
            hex(out, be64(opt, 4));
            out.extend_from_slice(b" nonce 0x");
            hex(out, be32(opt, 12) as u64);
        }
        _ => {
            out.extend_from_slice(b" hmac 0x");
            for &b in &opt[4..24] {
                hex_pad(out, b as u64, 2);
            }
        }
    }
    true
}

/// DSS (RFC 8684 §3.3): the flags say which fields follow; the checksum is
/// whatever 2 bytes remain. tcpdump prints each field as it reads it, so a
/// short option shows its first fields before it is rejected.
fn dss(out: &mut Vec<u8>, opt: &[u8], tcp_fl: u8) -> bool {
    let len = opt.len();
    if len < 4 || tcp_fl & tcp_flags::SYN != 0 {
        return false;
    }
    let flags = opt[3];
    if flags & Dss::FLAG_DATA_FIN != 0 {
        out.extend_from_slice(b" fin");
    }
    let mut p = 4;
    if flags & Dss::FLAG_ACK != 0 {
        out.extend_from_slice(b" ack ");
        let Some(n) = dss_number(out, opt, p, flags & Dss::FLAG_ACK8 != 0) else { return false };
        p += n;
    }
    if flags & Dss::FLAG_MAPPING != 0 {
        out.extend_from_slice(b" seq ");
        let Some(n) = dss_number(out, opt, p, flags & Dss::FLAG_DSN8 != 0) else { return false };
        p += n;
        if len - p < 4 {
            return false;
        }
        out.extend_from_slice(b" subseq ");
        dec(out, be32(opt, p) as u64);
        p += 4;
        if len - p < 2 {
            return false;
        }
        out.extend_from_slice(b" len ");
        dec(out, be16(opt, p) as u64);
        p += 2;
        if len - p >= 2 {
            out.extend_from_slice(b" csum 0x");
            hex(out, be16(opt, p) as u64);
            p += 2;
        }
    }
    len == p
}

/// A data ACK or data sequence number of 8 or 4 bytes at `p` (RFC 8684
/// §3.3, flags `a` and `m`); the bytes read, or `None` when they are not
/// there.
fn dss_number(out: &mut Vec<u8>, opt: &[u8], p: usize, wide: bool) -> Option<usize> {
    let n = if wide { 8 } else { 4 };
    if opt.len() - p < n {
        return None;
    }
    dec(out, if wide { be64(opt, p) } else { be32(opt, p) as u64 });
    Some(n)
}

/// ADD_ADDR (RFC 8684 §3.4.1, RFC 6824 §3.4.1): the length gives the
/// family, the port and the HMAC; ` v1 id N addr:port hmac 0x...`.
fn add_addr(out: &mut Vec<u8>, opt: &[u8]) -> bool {
    let (alen, port, hmac) = match opt.len() {
        8 => (4, false, false),
        10 => (4, true, false),
        16 => (4, false, true),
        18 => (4, true, true),
        20 => (16, false, false),
        22 => (16, true, false),
        28 => (16, false, true),
        30 => (16, true, true),
        _ => return false,
    };
    out.extend_from_slice(match opt[2] & 0x0f {
        0x6 => b" v0-ip6",
        0x4 => b" v0-ip4",
        0x1 => b" v1-echo",
        0x0 => b" v1",
        _ => b" [bad version/echo]",
    });
    out.extend_from_slice(b" id ");
    dec(out, opt[3] as u64);
    out.push(b' ');
    if alen == 4 {
        ipv4(out, [opt[4], opt[5], opt[6], opt[7]]);
    } else {
        let mut a = [0u8; 16];
        a.copy_from_slice(&opt[4..20]);
        addr(out, IpAddr::V6(a.into()));
    }
    let mut p = 4 + alen;
    if port {
        out.push(b':');
        dec(out, be16(opt, p) as u64);
        p += 2;
    }
    if hmac {
        out.extend_from_slice(b" hmac 0x");
        hex(out, be64(opt, p));
    }
    true
}

/// REMOVE_ADDR (RFC 8684 §3.4.2): one or more address ids.
fn remove_addr(out: &mut Vec<u8>, opt: &[u8]) -> bool {
    if opt.len() < 4 {
        return false;
    }
    out.extend_from_slice(b" id");
    for &id in &opt[3..] {
        out.push(b' ');
        dec(out, id as u64);
    }
    true
}

/// MP_PRIO (RFC 8684 §3.3.8): the backup bit; RFC 6824's form adds an
/// address id.
fn mp_prio(out: &mut Vec<u8>, opt: &[u8]) -> bool {
    let len = opt.len();
    if len != 3 && len != 4 {
        return false;
    }
    out.extend_from_slice(if opt[2] & 0x01 != 0 { b" backup" } else { b" non-backup" });
    if len == 4 {
        out.extend_from_slice(b" id ");
        dec(out, opt[3] as u64);
    }
    true
}

/// MP_FAIL (RFC 8684 §3.7): the 64-bit data sequence number of the failure.
fn mp_fail(out: &mut Vec<u8>, opt: &[u8]) -> bool {
    if opt.len() != 12 {
        return false;
    }
    out.extend_from_slice(b" seq ");
    dec(out, be64(opt, 4));
    true
}

/// MP_FASTCLOSE (RFC 8684 §3.5): the receiver's key.
fn mp_fastclose(out: &mut Vec<u8>, opt: &[u8]) -> bool {
    if opt.len() != 12 {
        return false;
    }
    out.extend_from_slice(b" key 0x");
    hex(out, be64(opt, 4));
    true
}

/// MP_TCPRST (RFC 8684 §3.6): the flags (U, V, W, T) and the reason.
fn mp_tcprst(out: &mut Vec<u8>, opt: &[u8]) -> bool {
    if opt.len() != 4 {
        return false;
    }
    out.extend_from_slice(b" flags [");
    bits(out, opt[2], &[(0x08, b'U'), (0x04, b'V'), (0x02, b'W'), (0x01, b'T')]);
    out.extend_from_slice(b"] reason ");
    match tcprst_reason(opt[3]) {
        Some(name) => out.extend_from_slice(name.as_bytes()),
        None => {
            out.extend_from_slice(b"unknown (0x");
            hex_pad(out, opt[3] as u64, 2);
            out.push(b')');
        }
    }
    true
}

/// MP_TCPRST reason names as tcpdump prints them (RFC 8684 §3.6).
pub fn tcprst_reason(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "Unspecified error",
        1 => "MPTCP-specific error",
        2 => "Lack of resources",
        3 => "Administratively prohibited",
        4 => "Too much outstanding data",
        5 => "Unacceptable performance",
        6 => "Middlebox interference",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYN: u8 = tcp_flags::SYN;
    const ACK: u8 = tcp_flags::ACK;

    /// The text after `mptcp`, or `None` where tcpdump says `[bad opt]`.
    fn print(opt: &[u8], flags: u8) -> Option<String> {
        let mut out = Vec::new();
        mptcp(&mut out, opt, flags).then(|| String::from_utf8(out).unwrap())
    }

    fn opt(subtype_byte: u8, byte3: u8, rest: &[u8]) -> Vec<u8> {
        let mut o = vec![30, (4 + rest.len()) as u8, subtype_byte, byte3];
        o.extend_from_slice(rest);
        o
    }

    #[test]
    fn mp_capable_versions_and_lengths() {
        let key = 0x0123_4567_89ab_cdefu64.to_be_bytes();
        assert_eq!(
            print(&opt(0x00, 0x81, &key), SYN).as_deref(),
            Some(" 12 capable v0 flags [AH] csum {0x123456789abcdef}")
        );
        assert_eq!(print(&opt(0x02, 0x01, &[]), SYN).as_deref(), Some(" 4 capable Unknown Version (2)"));
        // A 12-byte form belongs on a SYN, the 20-byte one on a bare ACK.
        assert_eq!(print(&opt(0x01, 0x01, &key), ACK), None);
        assert_eq!(print(&opt(0x01, 0x01, &[key, key].concat()), SYN | ACK), None);
    }

    #[test]
    fn mp_join_three_forms() {
        let syn = opt(0x11, 2, &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]);
        assert_eq!(print(&syn, SYN).as_deref(), Some(" 12 join backup id 2 token 0xdeadbeef nonce 0x1020304"));
        let syn_ack = opt(0x10, 5, &[1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0xa]);
        assert_eq!(print(&syn_ack, SYN | ACK).as_deref(), Some(" 16 join id 5 hmac 0x102030405060708 nonce 0xa"));
        assert_eq!(print(&syn_ack, SYN), None);
        let ack = opt(0x10, 0, &[0xab; 20]);
        assert_eq!(print(&ack, ACK).as_deref(), Some(format!(" 24 join hmac 0x{}", "ab".repeat(20)).as_str()));
    }

    #[test]
    fn dss_prints_fields_as_it_reads_them() {
        let mut rest = Vec::new();
        rest.extend_from_slice(&100u32.to_be_bytes());
        rest.extend_from_slice(&200u32.to_be_bytes());
        rest.extend_from_slice(&1u32.to_be_bytes());
        rest.extend_from_slice(&1000u16.to_be_bytes());
        rest.extend_from_slice(&0xabcdu16.to_be_bytes());
        let full = opt(0x20, Dss::FLAG_ACK | Dss::FLAG_MAPPING, &rest);
        assert_eq!(print(&full, ACK).as_deref(), Some(" 20 dss ack 100 seq 200 subseq 1 len 1000 csum 0xabcd"));
        assert_eq!(print(&full, SYN | ACK), None);
        // An 8-byte data ACK announced, 2 bytes there: the name and `ack `
        // are out before tcpdump gives up.
        let mut out = Vec::new();
        assert!(!mptcp(&mut out, &opt(0x20, Dss::FLAG_ACK | Dss::FLAG_ACK8, &[0, 0]), ACK));
        assert_eq!(out, b" 6 dss ack ");
        // Bytes left over after the fields are a bad option too.
        assert_eq!(print(&opt(0x20, Dss::FLAG_DATA_FIN, &[0]), ACK), None);
        assert_eq!(print(&opt(0x20, Dss::FLAG_DATA_FIN, &[]), ACK).as_deref(), Some(" 4 dss fin"));
    }

    #[test]
    fn add_addr_lengths_give_family_port_and_hmac() {
        let mut rest = vec![10, 0, 0, 3, 0x1f, 0x90];
        rest.extend_from_slice(&0x1122_3344_5566_7788u64.to_be_bytes());
        assert_eq!(
            print(&opt(0x30, 2, &rest), ACK).as_deref(),
            Some(" 18 add-addr v1 id 2 10.0.0.3:8080 hmac 0x1122334455667788")
        );
        let v6 = opt(0x31, 9, &std::net::Ipv6Addr::LOCALHOST.octets());
        assert_eq!(print(&v6, ACK).as_deref(), Some(" 20 add-addr v1-echo id 9 ::1"));
        assert_eq!(print(&opt(0x30, 2, &[10, 0, 0, 3, 0]), ACK), None);
    }

    #[test]
    fn remove_addr_prio_fail_fastclose() {
        assert_eq!(print(&opt(0x40, 3, &[4]), ACK).as_deref(), Some(" 5 rem-addr id 3 4"));
        assert_eq!(print(&[30, 3, 0x40], ACK), None);
        assert_eq!(print(&[30, 3, 0x51], ACK).as_deref(), Some(" 3 prio backup"));
        assert_eq!(print(&opt(0x50, 7, &[]), ACK).as_deref(), Some(" 4 prio non-backup id 7"));
        assert_eq!(print(&opt(0x50, 7, &[0]), ACK), None);
        assert_eq!(print(&opt(0x60, 0, &500u64.to_be_bytes()), ACK).as_deref(), Some(" 12 fail seq 500"));
        assert_eq!(print(&opt(0x60, 0, &[0; 4]), ACK), None);
        assert_eq!(print(&opt(0x70, 0, &0xabcu64.to_be_bytes()), ACK).as_deref(), Some(" 12 fast-close key 0xabc"));
        assert_eq!(print(&opt(0x70, 0, &[]), ACK), None);
    }

    #[test]
    fn tcprst_unknown_and_too_short() {
        assert_eq!(
            print(&opt(0x82, 4, &[]), ACK).as_deref(),
            Some(" 4 tcprst flags [W] reason Too much outstanding data")
        );
        assert_eq!(print(&opt(0x80, 0, &[0]), ACK), None);
        assert_eq!(print(&opt(0xf0, 0, &[1, 2]), ACK).as_deref(), Some(" 6 unknown"));
        assert_eq!(print(&[30, 2], ACK), None);
    }
}
