//! The printer end to end: frames built byte by byte, lines compared with
//! what tcpdump prints for them.

use super::*;
use crate::dissect::crypto::InternetChecksum;
use crate::dissect::packet::{Timestamp, decode, linktype};

fn line(p: &mut Printer, lt: u32, frame: &[u8]) -> String {
    let meta = FrameMeta {
        number: 1,
        ts: Some(Timestamp::new(1_582_742_655, 949_492_000)),
        caplen: frame.len() as u32,
        len: frame.len() as u32,
        linktype: lt,
    };
    let mut out = Vec::new();
    p.write_packet(&mut out, &meta, &decode(lt, frame), frame);
    String::from_utf8(out).unwrap()
}

/// A raw-IP TCP segment with the given flags and options.
fn seg(flags: u8, seq: u32, ack: u32, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut o = opts.to_vec();
    while o.len() % 4 != 0 {
        o.push(0);
    }
    let tl = 20 + o.len() + payload.len();
    let mut f = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    f[2..4].copy_from_slice(&((20 + tl) as u16).to_be_bytes());
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&10000u16.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = ((20 + o.len()) / 4) as u8 * 16;
    t[13] = flags;
    t[14..16].copy_from_slice(&512u16.to_be_bytes());
    f.extend_from_slice(&t);
    f.extend_from_slice(&o);
    f.extend_from_slice(payload);
    f
}

fn opts_of(l: &str) -> &str {
    let s = l.find("options [").map(|i| i + 9).unwrap_or(0);
    &l[s..]
}

#[test]
fn mptcp_capable_forms_print_like_tcpdump_dev() {
    let mut p = Printer::new(PrintOptions { timestamps: TimestampFormat::None, ..Default::default() });
    let l = line(&mut p, linktype::RAW, &seg(0x02, 1, 0, &[30, 4, 0x01, 0x01], &[]));
    assert_eq!(
        l,
        "IP 10.0.0.1.40000 > 10.0.0.2.10000: Flags [S], seq 1, win 512, options [mptcp 4 capable v1 flags [H]], length 0"
    );
    let mut o = vec![30, 22, 0x01, 0x81];
    o.extend_from_slice(&1u64.to_be_bytes());
    o.extend_from_slice(&0xabcu64.to_be_bytes());
    o.extend_from_slice(&16u16.to_be_bytes());
    let l = line(&mut p, linktype::RAW, &seg(0x10, 1, 1, &o, &[]));
    // 22 bytes with the checksum flag: no data_len (tcpdump: it must be 24).
    assert!(l.contains("mptcp 22 capable v1 flags [AH] csum {0x1,0xabc}"), "{l}");
    o[3] = 0x01;
    let l = line(&mut p, linktype::RAW, &seg(0x10, 1, 1, &o, &[]));
    assert!(l.contains("{0x1,0xabc,data_len=16}"), "{l}");
}

#[test]
fn bad_option_ends_the_line() {
    let mut p = Printer::new(PrintOptions { timestamps: TimestampFormat::None, ..Default::default() });
    // tcpdump's mptcp-dss-oobr: a 3-byte DSS after other options.
    let o = [2, 4, 0x40, 0x0c, 4, 2, 8, 10, 0x23, 0x97, 0x55, 0x34, 0, 0, 0, 0, 30, 3, 0x20, 0];
    let l = line(&mut p, linktype::RAW, &seg(0x02, 1, 0, &o, &[]));
    assert_eq!(opts_of(&l), "mss 16396,sackOK,TS val 597120308 ecr 0,mptcp 3 dss[bad opt]]");
    // A bad first option: no closing bracket, as tcpdump.
    let l = line(&mut p, linktype::RAW, &seg(0x02, 1, 0, &[30, 1, 0, 0], &[]));
    assert_eq!(opts_of(&l), "[bad opt]");
}

#[test]
fn tcprst_and_unknown_subtypes() {
    let mut p = Printer::new(PrintOptions { timestamps: TimestampFormat::None, ..Default::default() });
    let l = line(&mut p, linktype::RAW, &seg(0x14, 1, 1, &[30, 4, 0x81, 0x01], &[]));
    assert!(l.contains("mptcp 4 tcprst flags [T] reason MPTCP-specific error]"), "{l}");
    let l = line(&mut p, linktype::RAW, &seg(0x14, 1, 1, &[30, 4, 0x85, 0x09], &[]));
    assert!(l.contains("tcprst flags [VT] reason unknown (0x09)]"), "{l}");
    let l = line(&mut p, linktype::RAW, &seg(0x10, 1, 1, &[30, 4, 0xf0, 0x01], &[]));
    assert!(l.contains("mptcp 4 unknown]"), "{l}");
}

#[test]
fn relative_sequence_numbers_follow_tcpdump() {
    let mut p = Printer::new(PrintOptions { timestamps: TimestampFormat::None, ..Default::default() });
    let _ = line(&mut p, linktype::RAW, &seg(0x02, 1000, 0, &[], &[]));
    // First ACK-bearing segment: recorded, printed absolute. The port
    // order makes this the "reverse" direction: its seq becomes the base.
    let l = line(&mut p, linktype::RAW, &seg(0x10, 1001, 5001, &[], &[]));
    assert!(l.contains("ack 5001,"), "{l}");
    let l = line(&mut p, linktype::RAW, &seg(0x18, 1001, 5001, &[], b"abc"));
    assert!(l.contains("seq 0:3, ack 1, win 512, length 3"), "{l}");
    let mut s =
        Printer::new(PrintOptions { absolute_seq: true, timestamps: TimestampFormat::None, ..Default::default() });
    let l = line(&mut s, linktype::RAW, &seg(0x18, 1001, 5001, &[], b"abc"));
    assert!(l.contains("seq 1001:1004, ack 5001"), "{l}");
}

#[test]
fn timestamps() {
    let f = seg(0x02, 1, 0, &[], &[]);
    let mut p = Printer::new(PrintOptions { timestamps: TimestampFormat::Date, ..Default::default() });
    assert!(line(&mut p, linktype::RAW, &f).starts_with("2020-02-26 18:44:15.949492 IP "));
    let mut p =
        Printer::new(PrintOptions { timestamps: TimestampFormat::Time, frame_numbers: true, ..Default::default() });
    assert!(line(&mut p, linktype::RAW, &f).starts_with("    1  18:44:15.949492 IP "));
    let mut p = Printer::new(PrintOptions { timestamps: TimestampFormat::Epoch, ..Default::default() });
    assert!(line(&mut p, linktype::RAW, &f).starts_with("1582742655.949492 IP "));
    let mut p = Printer::new(PrintOptions { timestamps: TimestampFormat::SincePrevious, ..Default::default() });
    assert!(line(&mut p, linktype::RAW, &f).starts_with(" 00:00:00.000000 IP "));
}

#[test]
fn verbose_ipv4_and_checksum() {
    let mut p = Printer::new(PrintOptions { verbose: 1, timestamps: TimestampFormat::None, ..Default::default() });
    let mut f = seg(0x02, 1, 0, &[], &[]);
    // Fill in valid IP and TCP checksums.
    let mut c = InternetChecksum::new();
    c.add(&f[..20]);
    let s = c.finish();
    f[10..12].copy_from_slice(&s.to_be_bytes());
    let l = line(&mut p, linktype::RAW, &f);
    assert!(
        l.starts_with("IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), length 40)\n    10.0.0.1"),
        "{l}"
    );
    assert!(l.contains(", cksum 0x0000 (incorrect -> 0x"), "{l}");
}
