//! Property tests of the option codec and the frame decoder:
//! - emit then parse gives back the same option, for every option type and
//!   every length form (MPTCP v0 and v1);
//! - a list of options survives emit_options + parse_options;
//! - parse on random bytes never panics, never reads past its input, and
//!   what it accepts re-emits to something that parses the same;
//! - decode() and the tcpdump printer never panic on random frames.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::prelude::*;

use mptcp_tools::dissect::options::*;
use mptcp_tools::dissect::packet::{FrameMeta, decode, decode_common, decode_general, linktype};
use mptcp_tools::dissect::tcpdump::{PrintOptions, Printer};

fn wire_seq() -> impl Strategy<Value = WireSeq> {
    prop_oneof![any::<u32>().prop_map(WireSeq::U32), any::<u64>().prop_map(WireSeq::U64)]
}

fn ip_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<[u8; 16]>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

/// MP_CAPABLE in each of its five lengths (RFC 8684 §3.1): 4, 12, 20, 22, 24.
fn mp_capable() -> impl Strategy<Value = MptcpOption> {
    (0u8..16, any::<u8>(), 0usize..5, any::<u64>(), any::<u64>(), any::<u16>(), any::<u16>()).prop_map(
        |(version, flags, form, sk, rk, dl, ck)| {
            MptcpOption::MpCapable(MpCapable {
                version,
                flags,
                sender_key: (form >= 1).then_some(sk),
                receiver_key: (form >= 2).then_some(rk),
                data_len: (form >= 3).then_some(dl),
                checksum: (form >= 4).then_some(ck),
            })
        },
    )
}

fn mp_join() -> impl Strategy<Value = MptcpOption> {
    prop_oneof![
        (any::<bool>(), any::<u8>(), any::<u32>(), any::<u32>())
            .prop_map(|(backup, addr_id, token, nonce)| MpJoin::Syn { backup, addr_id, token, nonce }),
        (any::<bool>(), any::<u8>(), any::<u64>(), any::<u32>())
            .prop_map(|(backup, addr_id, hmac, nonce)| MpJoin::SynAck { backup, addr_id, hmac, nonce }),
        any::<[u8; 20]>().prop_map(|hmac| MpJoin::Ack { hmac }),
    ]
    .prop_map(MptcpOption::MpJoin)
}

/// DSS with every combination of A/a, M/m, F and checksum (RFC 8684 §3.3).
fn dss() -> impl Strategy<Value = MptcpOption> {
    (
        any::<bool>(),
        proptest::option::of(wire_seq()),
        proptest::option::of((wire_seq(), any::<u32>(), any::<u16>(), proptest::option::of(any::<u16>()))),
    )
        .prop_map(|(data_fin, data_ack, m)| {
            MptcpOption::Dss(Dss {
                data_fin,
                data_ack,
                mapping: m.map(|(dsn, ssn, data_len, checksum)| DssMapping { dsn, ssn, data_len, checksum }),
            })
        })
}

/// ADD_ADDR: v1 (echo or not, with and without port and HMAC, IPv4/IPv6)
/// and v0 (IP version in the nibble, no HMAC).
fn add_addr() -> impl Strategy<Value = MptcpOption> {
    prop_oneof![
        (any::<bool>(), any::<u8>(), ip_addr(), proptest::option::of(any::<u16>()), proptest::option::of(any::<u64>()))
            .prop_map(|(echo, addr_id, addr, port, hmac)| AddAddr { v0: false, echo, addr_id, addr, port, hmac }),
        (any::<u8>(), ip_addr(), proptest::option::of(any::<u16>())).prop_map(|(addr_id, addr, port)| AddAddr {
            v0: true,
            echo: false,
            addr_id,
            addr,
            port,
            hmac: None
        }),
    ]
    .prop_map(MptcpOption::AddAddr)
}

fn mptcp_option() -> impl Strategy<Value = MptcpOption> {
    prop_oneof![
        mp_capable(),
        mp_join(),
        dss(),
        add_addr(),
        vec(any::<u8>(), 1..=37).prop_map(|ids| MptcpOption::RemoveAddr(RemoveAddr { addr_ids: RawBytes::new(&ids) })),
        (any::<bool>(), proptest::option::of(any::<u8>()))
            .prop_map(|(backup, addr_id)| MptcpOption::MpPrio(MpPrio { backup, addr_id })),
        any::<u64>().prop_map(|dsn| MptcpOption::MpFail(MpFail { dsn })),
        any::<u64>().prop_map(|receiver_key| MptcpOption::MpFastclose(MpFastclose { receiver_key })),
        (0u8..16, any::<u8>()).prop_map(|(flags, reason)| MptcpOption::MpTcpRst(MpTcpRst { flags, reason })),
        (0u8..16, vec(any::<u8>(), 0..=37)).prop_map(|(low, rest)| {
            let mut data = vec![0xf0 | low];
            data.extend(rest);
            MptcpOption::Experimental { data: RawBytes::new(&data) }
        }),
        (9u8..15, 0u8..16, vec(any::<u8>(), 0..=37)).prop_map(|(st, low, rest)| {
            let mut data = vec![st << 4 | low];
            data.extend(rest);
            MptcpOption::Unknown { subtype: st, data: RawBytes::new(&data) }
        }),
    ]
}

fn tcp_option() -> impl Strategy<Value = TcpOption> {
    prop_oneof![
        Just(TcpOption::Nop),
        any::<u16>().prop_map(TcpOption::Mss),
        any::<u8>().prop_map(TcpOption::WindowScale),
        Just(TcpOption::SackPermitted),
        vec(any::<(u32, u32)>(), 1..=4).prop_map(|b| TcpOption::Sack(SackBlocks::new(&b))),
        any::<(u32, u32)>().prop_map(|(tsval, tsecr)| TcpOption::Timestamps { tsval, tsecr }),
        vec(any::<u8>(), 0..=16).prop_map(|c| TcpOption::FastOpen { cookie: RawBytes::new(&c), experimental: false }),
        vec(any::<u8>(), 0..=16).prop_map(|c| TcpOption::FastOpen { cookie: RawBytes::new(&c), experimental: true }),
        mptcp_option().prop_map(TcpOption::Mptcp),
        (any::<u8>(), vec(any::<u8>(), 0..=38))
            .prop_filter("a kind with its own type", |(k, _)| !matches!(k, 0..=5 | 8 | 30 | 34 | 254))
            .prop_map(|(kind, d)| TcpOption::Unknown { kind, data: RawBytes::new(&d) }),
    ]
}

/// Real frames from the bundled captures, to mutate.
fn real_frames() -> &'static [(u32, Vec<u8>)] {
    static FRAMES: std::sync::OnceLock<Vec<(u32, Vec<u8>)>> = std::sync::OnceLock::new();
    FRAMES.get_or_init(|| {
        use mptcp_tools::capture::{CaptureReader, OpenOptions};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/captures");
        let mut v = Vec::new();
        for f in [
            "pcap/single-subflow.pcap",
            "pcap/ipv6-two-subflows.pcap",
            "tcpdump-tests/mptcp-v1.pcap",
            "tcpdump-tests/mptcp-tcprst.pcap",
            "tcpdump-tests/mptcp-fclose.pcap",
            "pcap/fastopen.pcap",
        ] {
            let mut r = CaptureReader::open_file(&dir.join(f), &OpenOptions::default()).unwrap();
            while let Some((m, d)) = r.next_frame(&|| false).unwrap() {
                if v.len() % 3 == 0 || d.len() < 200 {
                    v.push((m.linktype, d.to_vec()));
                }
                if v.len() > 400 {
                    break;
                }
            }
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// The fast path for common frames gives exactly what the etherparse
    /// path gives, on real frames with bytes changed, cut or extended.
    #[test]
    fn fast_decode_equals_general_decode(
        pick in any::<prop::sample::Index>(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        extra in vec(any::<u8>(), 0..8),
        as_raw in any::<bool>(),
    ) {
        let (lt, frame) = pick.get(real_frames());
        let mut f = frame.clone();
        for (at, b) in &edits {
            // Mostly in the headers, where the decisions are.
            let i = at.index(f.len().min(80));
            f[i] = *b;
        }
        let keep = cut.index(f.len() + 1);
        f.truncate(keep.max(f.len() / 2));
        f.extend(&extra);
        let (lt, data): (u32, &[u8]) = if as_raw && *lt == linktype::ETHERNET && f.len() > 14 {
            (linktype::RAW, &f[14..])
        } else {
            (*lt, &f)
        };
        if let Some(fast) = decode_common(lt, data) {
            prop_assert_eq!(fast, decode_general(lt, data));
        }
    }

    #[test]
    fn emit_then_parse_gives_back_the_option(opt in tcp_option()) {
        let mut buf = [0u8; 64];
        let n = opt.emit(&mut buf);
        prop_assert_eq!(n, opt.buffer_len());
        let mut it = parse_options(&buf[..n]);
        let back = it.next().expect("one option");
        prop_assert_eq!(back, Ok(opt));
        prop_assert_eq!(it.next(), None);
    }

    #[test]
    fn mptcp_emit_then_parse(m in mptcp_option()) {
        let opt = TcpOption::Mptcp(m);
        let mut buf = [0u8; 64];
        let n = opt.emit(&mut buf);
        prop_assert_eq!(parse_mptcp(&buf[..n]), Ok(m));
    }

    #[test]
    fn option_lists_survive_emit_and_parse(opts in vec(tcp_option(), 0..6)) {
        let total = options_len(&opts);
        prop_assume!(total <= 40);
        let mut buf = [0u8; 64];
        let n = emit_options(&opts, &mut buf);
        prop_assert_eq!(n, total);
        prop_assert_eq!(n % 4, 0);
        let back: Vec<_> = parse_options(&buf[..n]).collect::<Result<_, _>>().expect("all parse");
        // The emitter pads with NOPs.
        let without_pad: Vec<_> = back.iter().take(opts.len()).cloned().collect();
        prop_assert_eq!(&without_pad, &opts);
        prop_assert!(back[opts.len()..].iter().all(|o| *o == TcpOption::Nop));
    }

    /// Random bytes: no panic, every item framed inside the input, and what
    /// parses re-emits to bytes that parse to the same option.
    #[test]
    fn parse_random_bytes(data in vec(any::<u8>(), 0..=60)) {
        let mut seen = 0usize;
        let mut it = parse_options(&data);
        for item in &mut it {
            match item {
                Ok(o) => {
                    seen += o.buffer_len();
                    let mut buf = [0u8; 64];
                    let n = o.emit(&mut buf);
                    let again = parse_options(&buf[..n]).next().expect("one");
                    prop_assert_eq!(again, Ok(o));
                }
                Err(e) => {
                    prop_assert!(e.offset < data.len());
                    prop_assert!(e.offset + e.raw.len() <= data.len());
                    prop_assert_eq!(&data[e.offset..e.offset + e.raw.len()], e.raw.as_slice());
                    if e.is_framing() {
                        seen = data.len();
                    } else {
                        seen += e.raw.len();
                    }
                }
            }
            prop_assert!(seen <= data.len(), "walked {} of {} bytes", seen, data.len());
        }
        prop_assert!(it.remainder().len() <= data.len());
    }

    /// The MPTCP-only walk yields exactly the full walk's MPTCP options and
    /// its framing errors.
    #[test]
    fn mptcp_walk_matches_full_walk(data in vec(any::<u8>(), 0..=40), mptcp in vec(mptcp_option(), 0..3)) {
        let mut bytes = Vec::new();
        for m in &mptcp {
            let mut b = [0u8; 64];
            let n = TcpOption::Mptcp(*m).emit(&mut b);
            bytes.extend(&b[..n]);
        }
        bytes.extend(&data);
        let fast: Vec<_> = parse_options(&bytes).mptcp().collect();
        let full: Vec<_> = parse_options(&bytes)
            .filter_map(|o| match o {
                Ok(TcpOption::Mptcp(m)) => Some(Ok(m)),
                Err(e) if e.kind == kind::MPTCP || e.is_framing() => Some(Err(e)),
                _ => None,
            })
            .collect();
        prop_assert_eq!(fast, full);
    }

    /// Random MPTCP bodies: parse_mptcp never panics and accepts only the
    /// lengths RFC 8684 allows for the subtype.
    #[test]
    fn parse_mptcp_random(st in 0u8..16, rest in vec(any::<u8>(), 0..=38)) {
        let mut whole = vec![30, 0, st << 4];
        whole.extend(rest);
        let len = whole.len();
        whole[1] = len as u8;
        if let Ok(m) = parse_mptcp(&whole) {
            prop_assert_eq!(m.buffer_len(), len);
            let ok_len = match st {
                0 => matches!(len, 4 | 12 | 20 | 22 | 24),
                1 => matches!(len, 12 | 16 | 24),
                2 => (4..=28).contains(&len),
                3 => matches!(len, 8 | 10 | 16 | 18 | 20 | 22 | 28 | 30),
                4 => len >= 4,
                5 => len == 3 || len == 4,
                6 | 7 => len == 12,
                8 => len == 4,
                _ => true,
            };
            prop_assert!(ok_len, "subtype {} accepted with length {}", st, len);
        }
    }

    /// decode() and the printer never panic, whatever the link type and bytes.
    #[test]
    fn decode_and_print_random_frames(
        lt in prop::sample::select(vec![
            linktype::ETHERNET, linktype::RAW, linktype::LINUX_SLL, linktype::LINUX_SLL2,
            linktype::NULL, linktype::IPV6, 147,
        ]),
        data in vec(any::<u8>(), 0..200),
        verbose in 0u8..3,
    ) {
        let pkt = decode(lt, &data);
        let mut p = Printer::new(PrintOptions { verbose, ..Default::default() });
        let meta = FrameMeta { number: 1, caplen: data.len() as u32, len: data.len() as u32 + 7, linktype: lt, ..Default::default() };
        let mut out = Vec::new();
        p.write_packet(&mut out, &meta, &pkt, &data);
        prop_assert!(!out.is_empty() || lt == 147);
        if let Some(tcp) = pkt.tcp {
            for o in tcp.options() {
                let _ = o;
            }
        }
    }

    /// Mostly valid IPv4/IPv6 TCP frames with random options and cuts.
    #[test]
    fn decode_structured_frames(v6 in any::<bool>(), opts in vec(any::<u8>(), 0..=40), cut in 0usize..120, hl_words in 0u8..16) {
        let mut tcp = vec![0x9c, 0x40, 0x27, 0x10, 0, 0, 0, 1, 0, 0, 0, 2, hl_words << 4, 0x12, 1, 0, 0, 0, 0, 0];
        tcp.extend(&opts);
        let mut f = if v6 {
            let mut h = vec![0x60, 0, 0, 0, 0, tcp.len() as u8, 6, 64];
            h.extend([0u8; 32]);
            h
        } else {
            let tl = 20 + tcp.len();
            vec![0x45, 0, 0, tl as u8, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        };
        f.extend(&tcp);
        f.truncate(cut.min(f.len()));
        let pkt = decode(linktype::RAW, &f);
        if let Some(t) = pkt.tcp {
            prop_assert!(t.options_raw.len() <= 40);
            prop_assert!(t.payload.len() <= f.len());
            let _: Vec<_> = t.options().collect();
        }
        let mut out = Vec::new();
        let meta = FrameMeta { number: 1, linktype: linktype::RAW, len: f.len() as u32, caplen: f.len() as u32, ..Default::default() };
        Printer::new(PrintOptions { verbose: 2, ..Default::default() }).write_packet(&mut out, &meta, &pkt, &f);
    }
}

/// The fast path takes nearly every frame of a real capture, and agrees with
/// the general decoder on all of them.
#[test]
fn fast_decode_covers_real_captures() {
    let frames = real_frames();
    let fast = frames.iter().filter(|(lt, f)| decode_common(*lt, f).is_some()).count();
    for (lt, f) in frames {
        if let Some(p) = decode_common(*lt, f) {
            assert_eq!(p, decode_general(*lt, f));
        }
    }
    assert!(fast * 10 >= frames.len() * 9, "fast path took {fast} of {}", frames.len());
}
