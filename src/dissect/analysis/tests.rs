//! Synthetic packet sequences for cases the captures do not show: a
//! middlebox echoing MP_CAPABLE, options stripped after the handshake, an
//! infinite mapping, MP_FAIL without a reset, v0, joins refused or with bad
//! HMACs, 32-bit DSN wrap, cut payloads, the snapshot view.

use super::*;
use crate::dissect::crypto::{self, Key, Version, dss_checksum};
use crate::dissect::options::{
    Dss, DssMapping, MpCapable, MpFail, MpJoin, MpPrio, MpTcpRst, MptcpOption, TcpOption, WireSeq, emit_options,
};
use crate::dissect::packet::{FrameMeta, Timestamp, decode, linktype, tcp_flags::*};

const KC: u64 = 0x1122_3344_5566_7788;
const KS: u64 = 0x99aa_bbcc_ddee_ff00;
const ISN_C: u32 = 1000;
const ISN_S: u32 = 5000;

fn idsn(k: u64, v: Version) -> u64 {
    Key(k).idsn(v).0
}
fn token(k: u64, v: Version) -> u32 {
    Key(k).token(v).0
}

/// A raw IPv4 TCP segment.
#[allow(clippy::too_many_arguments)]
fn segment(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    opts: &[TcpOption],
    payload: &[u8],
) -> Vec<u8> {
    let mut ob = [0u8; 40];
    let olen = emit_options(opts, &mut ob);
    let tcp_len = 20 + olen;
    let total = (20 + tcp_len + payload.len()) as u16;
    let s: std::net::Ipv4Addr = src.parse().unwrap();
    let d: std::net::Ipv4Addr = dst.parse().unwrap();
    let mut f = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0];
    f[2..4].copy_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&s.octets());
    f.extend_from_slice(&d.octets());
    let mut t = [0u8; 20];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = ((tcp_len / 4) as u8) << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&1000u16.to_be_bytes());
    f.extend_from_slice(&t);
    f.extend_from_slice(&ob[..olen]);
    f.extend_from_slice(payload);
    f
}

/// Drives an analyzer with segments between a client and a server, on the
/// initial path (10.0.0.1:40000 <-> 10.0.0.2:80) or a second one.
struct Sim {
    a: Analyzer,
    frame: u64,
    notes: Vec<PacketNote>,
}

const C1: (&str, u16) = ("10.0.0.1", 40000);
const C2: (&str, u16) = ("10.0.1.1", 40001);
const S: (&str, u16) = ("10.0.0.2", 80);

fn mpc(version: u8, flags: u8, sk: Option<u64>, rk: Option<u64>, dl: Option<u16>, ck: Option<u16>) -> TcpOption {
    TcpOption::Mptcp(MptcpOption::MpCapable(MpCapable {
        version,
        flags,
        sender_key: sk,
        receiver_key: rk,
        data_len: dl,
        checksum: ck,
    }))
}

fn dss(ack: Option<WireSeq>, map: Option<(WireSeq, u32, u16, Option<u16>)>, fin: bool) -> TcpOption {
    TcpOption::Mptcp(MptcpOption::Dss(Dss {
        data_fin: fin,
        data_ack: ack,
        mapping: map.map(|(dsn, ssn, data_len, checksum)| DssMapping { dsn, ssn, data_len, checksum }),
    }))
}

impl Sim {
    fn new() -> Sim {
        Sim { a: Analyzer::new(AnalyzerOptions::default()), frame: 0, notes: Vec::new() }
    }

    fn feed(&mut self, bytes: &[u8], caplen: usize) -> &PacketNote {
        self.frame += 1;
        let cut = &bytes[..caplen.min(bytes.len())];
        let meta = FrameMeta {
            number: self.frame,
            ts: Some(Timestamp::new(0, 0)),
            caplen: cut.len() as u32,
            len: bytes.len() as u32,
            linktype: linktype::RAW,
        };
        let n = self.a.on_packet(&meta, &decode(linktype::RAW, cut));
        self.notes.push(n);
        self.notes.last().unwrap()
    }

    #[allow(clippy::too_many_arguments)]
    fn c2s(
        &mut self,
        path: (&str, u16),
        flags: u8,
        seq: u32,
        ack: u32,
        opts: &[TcpOption],
        payload: &[u8],
    ) -> &PacketNote {
        let b = segment(path.0, path.1, S.0, S.1, flags, seq, ack, opts, payload);
        self.feed(&b, usize::MAX)
    }

    #[allow(clippy::too_many_arguments)]
    fn s2c(
        &mut self,
        path: (&str, u16),
        flags: u8,
        seq: u32,
        ack: u32,
        opts: &[TcpOption],
        payload: &[u8],
    ) -> &PacketNote {
        let b = segment(S.0, S.1, path.0, path.1, flags, seq, ack, opts, payload);
        self.feed(&b, usize::MAX)
    }

    /// A v1 MP_CAPABLE handshake on the initial path, checksums as asked.
    fn handshake_v1(&mut self, csum: bool) {
        let fl = if csum { 0x81 } else { 0x01 };
        self.c2s(C1, SYN, ISN_C, 0, &[mpc(1, fl, None, None, None, None)], &[]);
        self.s2c(C1, SYN | ACK, ISN_S, ISN_C + 1, &[mpc(1, fl, Some(KS), None, None, None)], &[]);
        self.c2s(C1, ACK, ISN_C + 1, ISN_S + 1, &[mpc(1, fl, Some(KC), Some(KS), None, None)], &[]);
        // The server's first DSS acknowledges the keys.
        let ack = WireSeq::U64(idsn(KC, Version::V1) + 1);
        self.s2c(C1, ACK, ISN_S + 1, ISN_C + 1, &[dss(Some(ack), None, false)], &[]);
    }

    fn report(self) -> Report {
        self.a.finish()
    }
}

fn verdicts(r: &Report) -> Vec<VerdictKind> {
    r.connections[0].verdicts.iter().map(|v| v.kind.clone()).collect()
}

#[test]
fn established_v1_with_tokens_and_relative_dsns() {
    let mut s = Sim::new();
    s.handshake_v1(false);
    let ic = idsn(KC, Version::V1);
    let n = s
        .c2s(
            C1,
            ACK | PSH,
            ISN_C + 1,
            ISN_S + 1,
            &[dss(None, Some((WireSeq::U32((ic + 1) as u32), 1, 10, None)), false)],
            b"0123456789",
        )
        .clone();
    assert_eq!((n.conn, n.subflow, n.from), (Some(1), Some(1), Some(Side::Client)));
    assert_eq!((n.dsn, n.dsn_rel, n.dsn_len), (Some(ic + 1), Some(1), 10));
    let mut t = Vec::new();
    n.write_text(&mut t);
    assert_eq!(String::from_utf8(t).unwrap(), " [mptcp conn 1 sf 1 dsn 1:11 map 1:11 ssn 1]");
    let r = s.report();
    let c = &r.connections[0];
    assert_eq!(c.tokens, [Some(token(KC, Version::V1)), Some(token(KS, Version::V1))]);
    assert_eq!(c.data_bytes, [10, 0]);
    assert_eq!(verdicts(&r), vec![VerdictKind::Established { version: 1 }]);
    assert_eq!(r.connections[0].established().unwrap().frame, 4);
}

#[test]
fn middlebox_echo_of_the_syn_option() {
    // v1: the SYN/ACK carries the SYN's 4-byte option back.
    let mut s = Sim::new();
    s.c2s(C1, SYN, ISN_C, 0, &[mpc(1, 0x01, None, None, None, None)], &[]);
    let n = s.s2c(C1, SYN | ACK, ISN_S, ISN_C + 1, &[mpc(1, 0x01, None, None, None, None)], &[]).clone();
    assert!(n.fallback);
    assert_eq!(n.events, vec![Event::Fallback(FallbackReason::SynAckEchoesSyn)]);
    let r = s.report();
    assert_eq!(r.connections[0].fallback().unwrap().frame, 2);
    // v0: the SYN's key comes back in the SYN/ACK.
    let mut s = Sim::new();
    s.c2s(C1, SYN, ISN_C, 0, &[mpc(0, 0x81, Some(KC), None, None, None)], &[]);
    s.s2c(C1, SYN | ACK, ISN_S, ISN_C + 1, &[mpc(0, 0x81, Some(KC), None, None, None)], &[]);
    let r = s.report();
    assert_eq!(verdicts(&r), vec![VerdictKind::Fallback(FallbackReason::SynAckEchoesSyn)]);
    // And a SYN/ACK without the option at all.
    let mut s = Sim::new();
    s.c2s(C1, SYN, ISN_C, 0, &[mpc(1, 0x01, None, None, None, None)], &[]);
    s.s2c(C1, SYN | ACK, ISN_S, ISN_C + 1, &[TcpOption::Mss(1460)], &[]);
    s.c2s(C1, ACK | PSH, ISN_C + 1, ISN_S + 1, &[], b"plain");
    let r = s.report();
    assert_eq!(verdicts(&r), vec![VerdictKind::Fallback(FallbackReason::SynAckWithoutMpCapable)]);
    assert_eq!(r.connections[0].unmapped_segments, 0, "no mapping is expected after a fallback");
}

#[test]
fn syn_retransmitted_without_mp_capable() {
    let mut s = Sim::new();
    s.c2s(C1, SYN, ISN_C, 0, &[mpc(1, 0x01, None, None, None, None)], &[]);
    s.c2s(C1, SYN, ISN_C, 0, &[mpc(1, 0x01, None, None, None, None)], &[]);
    s.c2s(C1, SYN, ISN_C, 0, &[TcpOption::Mss(1460)], &[]);
    let r = s.report();
    assert_eq!(r.connections.len(), 1);
    let v = r.connections[0].fallback().unwrap();
    assert_eq!((v.frame, &v.kind), (3, &VerdictKind::Fallback(FallbackReason::SynRetransmittedWithoutMpCapable)));
}

#[test]
fn options_stripped_after_the_handshake() {
    let mut s = Sim::new();
    s.handshake_v1(false);
    // A middlebox removes the options from the first data segment.
    let n = s.c2s(C1, ACK | PSH, ISN_C + 1, ISN_S + 1, &[TcpOption::Nop, TcpOption::Nop], b"hello").clone();
    assert_eq!(n.events, vec![Event::Fallback(FallbackReason::OptionsMissing { from: Side::Client })]);
    let r = s.report();
    let v = r.connections[0].fallback().unwrap();
    assert_eq!(v.frame, 5);
}

#[test]
fn infinite_mapping_falls_back_and_keeps_numbering() {
    let mut s = Sim::new();
    s.handshake_v1(false);
    let ic = idsn(KC, Version::V1);
    s.c2s(C1, ACK, ISN_C + 1, ISN_S + 1, &[dss(None, Some((WireSeq::U64(ic + 1), 1, 4, None)), false)], b"abcd");
    // Infinite mapping from subflow sequence 5 (DSN IDSN + 5) on.
    let n = s
        .c2s(C1, ACK, ISN_C + 5, ISN_S + 1, &[dss(None, Some((WireSeq::U64(ic + 5), 0, 0, None)), false)], b"efgh")
        .clone();
    assert!(n.events.contains(&Event::InfiniteMapping));
    assert_eq!(n.dsn_rel, Some(5));
    let n = s.c2s(C1, ACK, ISN_C + 9, ISN_S + 1, &[], b"ijkl").clone();
    assert_eq!(n.dsn_rel, Some(9), "bytes after an infinite mapping follow it one to one");
    assert!(n.fallback);
    let r = s.report();
    assert_eq!(
        r.connections[0].fallback().unwrap().kind,
        VerdictKind::Fallback(FallbackReason::InfiniteMapping { from: Side::Client })
    );
}

#[test]
fn mp_fail_without_reset_is_a_fallback() {
    let mut s = Sim::new();
    s.handshake_v1(true);
    let is = idsn(KS, Version::V1);
    let n = s
        .c2s(C1, ACK, ISN_C + 1, ISN_S + 1, &[TcpOption::Mptcp(MptcpOption::MpFail(MpFail { dsn: is + 1 }))], &[])
        .clone();
    assert!(n.events.contains(&Event::MpFail { dsn: 1 }));
    let r = s.report();
    let v = verdicts(&r);
    assert!(v.contains(&VerdictKind::MpFail { subflow: 1, by: Side::Client, dsn_rel: Some(1) }));
    assert!(v.contains(&VerdictKind::Fallback(FallbackReason::MpFail { from: Side::Client })));
}

#[test]
fn dss_checksum_across_segments_bad_and_cut() {
    let ic = idsn(KC, Version::V1);
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let good = dss_checksum(ic + 1, 1, 3000, &data);
    let map = |ck| dss(None, Some((WireSeq::U64(ic + 1), 1, 3000, Some(ck))), false);
    for (name, ck, caplen, want) in [
        ("good", good, usize::MAX, CsumStatus::Ok),
        ("bad", good ^ 0x0100, usize::MAX, CsumStatus::Bad),
        ("cut", good, 128, CsumStatus::Truncated),
    ] {
        let mut s = Sim::new();
        s.handshake_v1(true);
        // Out of order: the middle segment first, then the others.
        let segs = [(1000usize, 2000usize), (0, 1000), (2000, 3000)];
        let mut last = None;
        for (a, b) in segs {
            let bytes = segment(C1.0, C1.1, S.0, S.1, ACK, ISN_C + 1 + a as u32, ISN_S + 1, &[map(ck)], &data[a..b]);
            last = Some(s.feed(&bytes, caplen).clone());
            if want == CsumStatus::Truncated {
                break;
            }
        }
        let n = last.unwrap();
        assert!(
            n.events.iter().any(|e| matches!(e, Event::Checksum { status, map_frame: 5 } if *status == want)),
            "{name}: {:?}",
            n.events
        );
        let r = s.report();
        let t = r.connections[0].csum;
        match want {
            CsumStatus::Ok => assert_eq!((t.ok, t.bad, t.unverified), (1, 0, 0), "{name}"),
            CsumStatus::Bad => {
                assert_eq!((t.ok, t.bad), (0, 1), "{name}");
                assert!(matches!(verdicts(&r)[1], VerdictKind::ChecksumFailed { subflow: 1, from: Side::Client, .. }));
            }
            _ => {
                assert_eq!(t.unverified, 1, "{name}");
                assert!(r.connections[0].subflows[0].truncated);
            }
        }
    }
}

/// Joins a second subflow from the client; returns nothing, checks HMACs.
fn join(s: &mut Sim, version: Version, good: bool, backup: bool) {
    let (na, nb) = (0x0102_0304, 0x0a0b_0c0d);
    let tok = Key(KS).token(version).0;
    s.c2s(
        C2,
        SYN,
        7000,
        0,
        &[TcpOption::Mptcp(MptcpOption::MpJoin(MpJoin::Syn { backup, addr_id: 2, token: tok, nonce: na }))],
        &[],
    );
    let mut hb = crypto::join_synack_hmac(version, Key(KS), Key(KC), nb, na);
    if !good {
        hb ^= 1;
    }
    s.s2c(
        C2,
        SYN | ACK,
        9000,
        7001,
        &[TcpOption::Mptcp(MptcpOption::MpJoin(MpJoin::SynAck { backup: false, addr_id: 0, hmac: hb, nonce: nb }))],
        &[],
    );
    let ha = crypto::join_ack_hmac(version, Key(KC), Key(KS), na, nb);
    s.c2s(C2, ACK, 7001, 9001, &[TcpOption::Mptcp(MptcpOption::MpJoin(MpJoin::Ack { hmac: ha }))], &[]);
}

#[test]
fn join_hmacs_v1_and_a_bad_one() {
    let mut s = Sim::new();
    s.handshake_v1(false);
    join(&mut s, Version::V1, true, true);
    assert_eq!(s.notes[5].events, vec![Event::Hmac { kind: HmacKind::JoinSynAck, result: Check::Ok }]);
    assert_eq!(s.notes[6].events, vec![Event::Hmac { kind: HmacKind::JoinAck, result: Check::Ok }]);
    assert_eq!(s.notes[6].subflow, Some(2));
    let r = s.report();
    let c = &r.connections[0];
    assert_eq!(c.hmac, Tally { ok: 2, bad: 0, unverified: 0 });
    let sf = &c.subflows[1];
    assert_eq!(sf.kind, SubflowKind::Join { by: Side::Client });
    assert_eq!(sf.addr_ids, [Some(2), Some(0)]);
    assert_eq!(sf.backup, [true, false]);

    let mut s = Sim::new();
    s.handshake_v1(false);
    join(&mut s, Version::V1, false, false);
    let r = s.report();
    assert_eq!(r.connections[0].hmac, Tally { ok: 1, bad: 1, unverified: 0 });
    assert!(verdicts(&r).contains(&VerdictKind::HmacFailed { subflow: 2, kind: HmacKind::JoinSynAck }));
}

#[test]
fn v0_connection_with_sha1_tokens_and_join() {
    let mut s = Sim::new();
    s.c2s(C1, SYN, ISN_C, 0, &[mpc(0, 0x81, Some(KC), None, None, None)], &[]);
    s.s2c(C1, SYN | ACK, ISN_S, ISN_C + 1, &[mpc(0, 0x81, Some(KS), None, None, None)], &[]);
    s.c2s(C1, ACK, ISN_C + 1, ISN_S + 1, &[mpc(0, 0x81, Some(KC), Some(KS), None, None)], &[]);
    let ic = idsn(KC, Version::V0);
    let payload = b"v0 data";
    let ck = dss_checksum(ic + 1, 1, 7, payload);
    let n = s
        .c2s(
            C1,
            ACK,
            ISN_C + 1,
            ISN_S + 1,
            &[dss(None, Some((WireSeq::U32((ic + 1) as u32), 1, 7, Some(ck))), false)],
            payload,
        )
        .clone();
    assert_eq!(n.dsn, Some(ic + 1));
    assert!(n.events.contains(&Event::Checksum { status: CsumStatus::Ok, map_frame: 4 }));
    s.s2c(C1, ACK, ISN_S + 1, ISN_C + 8, &[dss(Some(WireSeq::U32((ic + 8) as u32)), None, false)], &[]);
    join(&mut s, Version::V0, true, false);
    let r = s.report();
    let c = &r.connections[0];
    assert_eq!(c.version, Some(0));
    assert_eq!(c.tokens, [Some(token(KC, Version::V0)), Some(token(KS, Version::V0))]);
    assert_eq!(c.hmac, Tally { ok: 2, bad: 0, unverified: 0 });
    assert_eq!(c.established().unwrap().kind, VerdictKind::Established { version: 0 });
}

#[test]
fn join_refused_with_a_reason_and_unknown_tokens() {
    let mut s = Sim::new();
    s.handshake_v1(false);
    let tok = token(KS, Version::V1);
    s.c2s(
        C2,
        SYN,
        7000,
        0,
        &[TcpOption::Mptcp(MptcpOption::MpJoin(MpJoin::Syn { backup: false, addr_id: 2, token: tok, nonce: 1 }))],
        &[],
    );
    let rst = TcpOption::Mptcp(MptcpOption::MpTcpRst(MpTcpRst { flags: 0, reason: 3 }));
    let n = s.s2c(C2, RST | ACK, 0, 7001, &[rst], &[]).clone();
    assert!(n.events.contains(&Event::JoinRefused));
    // A join naming a token nobody owns.
    s.c2s(
        ("10.0.2.1", 41000),
        SYN,
        1,
        0,
        &[TcpOption::Mptcp(MptcpOption::MpJoin(MpJoin::Syn {
            backup: false,
            addr_id: 3,
            token: 0xdead_beef,
            nonce: 1,
        }))],
        &[],
    );
    let r = s.report();
    assert!(verdicts(&r).contains(&VerdictKind::JoinRefused { subflow: 2, by: Side::Server, reason: Some(3) }));
    assert_eq!(r.tcp_flows.len(), 1);
    assert_eq!(r.tcp_flows[0].kind, TcpFlowKind::JoinUnknownToken { token: 0xdead_beef });
}

#[test]
fn join_answered_without_mp_join() {
    let mut s = Sim::new();
    s.handshake_v1(false);
    let tok = token(KS, Version::V1);
    s.c2s(
        C2,
        SYN,
        7000,
        0,
        &[TcpOption::Mptcp(MptcpOption::MpJoin(MpJoin::Syn { backup: false, addr_id: 2, token: tok, nonce: 1 }))],
        &[],
    );
    s.s2c(C2, SYN | ACK, 9000, 7001, &[TcpOption::Mss(1400)], &[]);
    let r = s.report();
    assert!(verdicts(&r).contains(&VerdictKind::JoinFailed { subflow: 2, why: JoinFailure::SynAckWithoutJoin }));
    assert_eq!(r.connections[0].subflows[1].fallback, Some((6, FallbackReason::SynAckWithoutJoin)));
    assert!(r.connections[0].fallback().is_none(), "the connection itself still runs MPTCP");
}

#[test]
fn four_byte_dsns_extend_across_a_32_bit_boundary() {
    let mut s = Sim::new();
    s.handshake_v1(false);
    let hi = 0x0000_0007_0000_0000u64;
    s.c2s(
        C1,
        ACK,
        ISN_C + 1,
        ISN_S + 1,
        &[dss(None, Some((WireSeq::U64(hi | 0xffff_fff0), 1, 16, None)), false)],
        &[0; 16],
    );
    let n = s
        .c2s(C1, ACK, ISN_C + 17, ISN_S + 1, &[dss(None, Some((WireSeq::U32(0), 17, 8, None)), false)], &[0; 8])
        .clone();
    assert_eq!(n.dsn, Some(hi + (1 << 32)));
    // The server's 4-byte data ACK extends the same way.
    let n = s.s2c(C1, ACK, ISN_S + 1, ISN_C + 25, &[dss(Some(WireSeq::U32(8)), None, false)], &[]).clone();
    assert_eq!(n.data_ack, Some(hi + (1 << 32) + 8));
}

#[test]
fn reinjection_names_the_original_frame_and_counts_bytes() {
    let mut s = Sim::new();
    s.handshake_v1(false);
    join(&mut s, Version::V1, true, false);
    let ic = idsn(KC, Version::V1);
    // Data on the initial subflow (frame 8), then the same DSNs on the join.
    s.c2s(C1, ACK, ISN_C + 1, ISN_S + 1, &[dss(None, Some((WireSeq::U64(ic + 1), 1, 100, None)), false)], &[1; 100]);
    let n =
        s.c2s(C2, ACK, 7001, 9001, &[dss(None, Some((WireSeq::U64(ic + 1), 1, 100, None)), false)], &[1; 100]).clone();
    assert_eq!(n.events, vec![Event::Reinjection { of: vec![8], more: 0 }]);
    let r = s.report();
    let c = &r.connections[0];
    assert_eq!(c.data_bytes, [100, 0]);
    assert_eq!(c.subflows[1].reinjected, [100, 0]);
}

#[test]
fn mp_prio_and_snapshot_view() {
    let mut s = Sim::new();
    s.handshake_v1(false);
    join(&mut s, Version::V1, true, false);
    // The server confirms the join (fourth ACK), then asks for backup.
    let prio = TcpOption::Mptcp(MptcpOption::MpPrio(MpPrio { backup: true, addr_id: None }));
    s.s2c(C2, ACK, 9001, 7001, &[dss(Some(WireSeq::U64(idsn(KC, Version::V1) + 1)), None, false), prio], &[]);
    let is = idsn(KS, Version::V1);
    s.s2c(C1, ACK, ISN_S + 1, ISN_C + 1, &[dss(None, Some((WireSeq::U64(is + 1), 1, 50, None)), false)], &[2; 20]);
    let snap = s.a.snapshot("capture:test");
    let c = &snap.connections[0];
    assert_eq!(c.token.as_deref(), Some(format!("{:#010x}", token(KC, Version::V1)).as_str()));
    assert_eq!(c.local, "10.0.0.1:40000");
    assert_eq!(c.state, "ESTAB");
    assert_eq!(c.subflows.len(), 2);
    let sf1 = &c.subflows[0];
    // 20 of the mapping's 50 bytes arrived: the mapping is still valid.
    assert_eq!(sf1.flags, "Mmecv");
    assert_eq!((sf1.seq, sf1.sfseq, sf1.maplen, sf1.ssnoff), (is + 1, 1, 50, ISN_S));
    assert_eq!(sf1.token_rem, "0x00000000");
    let sf2 = &c.subflows[1];
    assert_eq!(sf2.flags, "JjBec");
    assert_eq!((sf2.id_loc, sf2.id_rem), (2, 0));
    assert_eq!(sf2.token_rem, format!("{:#010x}", token(KS, Version::V1)));
    assert_eq!(sf2.ssnoff, 9000);
    let r = s.report();
    assert_eq!(r.connections[0].subflows[1].backup, [false, true]);
}

#[test]
fn key_mismatch_and_fast_close() {
    let mut s = Sim::new();
    s.c2s(C1, SYN, ISN_C, 0, &[mpc(1, 0x01, None, None, None, None)], &[]);
    s.s2c(C1, SYN | ACK, ISN_S, ISN_C + 1, &[mpc(1, 0x01, Some(KS), None, None, None)], &[]);
    let n = s.c2s(C1, ACK, ISN_C + 1, ISN_S + 1, &[mpc(1, 0x01, Some(KC), Some(KS ^ 1), None, None)], &[]).clone();
    assert_eq!(n.events, vec![Event::KeyMismatch { expected: KS, got: KS ^ 1 }]);
    let fc = TcpOption::Mptcp(MptcpOption::MpFastclose(crate::dissect::options::MpFastclose { receiver_key: KS }));
    let n = s.c2s(C1, RST | ACK, ISN_C + 1, ISN_S + 1, &[fc], &[]).clone();
    assert!(n.events.contains(&Event::FastClose { key: Check::Ok }));
    let r = s.report();
    let v = verdicts(&r);
    assert!(v.contains(&VerdictKind::KeyMismatch));
    assert!(v.contains(&VerdictKind::FastClose { by: Side::Client }));
    assert!(v.contains(&VerdictKind::SubflowClosed { subflow: 1, cause: CloseCause::FastClose { by: Side::Client } }));
}

#[test]
fn midstream_capture_and_port_reuse() {
    // The capture starts after the handshake: DSS with 8-byte values.
    let mut s = Sim::new();
    let n = s
        .c2s(
            C1,
            ACK,
            500,
            600,
            &[dss(Some(WireSeq::U64(77)), Some((WireSeq::U64(1000), 10, 5, None)), false)],
            b"hello",
        )
        .clone();
    assert_eq!((n.conn, n.dsn, n.dsn_rel), (Some(1), Some(1000), None));
    let mut t = Vec::new();
    n.write_text(&mut t);
    assert_eq!(
        String::from_utf8(t).unwrap(),
        " [mptcp conn 1 sf 1 dsn64 1000:1005 ack64 77 map64 1000:1005 ssn 10; established]"
    );
    // Then a new connection on the same 4-tuple: a new flow, plain TCP.
    s.c2s(C1, SYN, 42, 0, &[], &[]);
    let r = s.report();
    assert_eq!(r.connections[0].established().unwrap().kind, VerdictKind::InUse);
    assert_eq!(r.tcp_flows.len(), 1);
    assert_eq!(r.tcp_flows[0].kind, TcpFlowKind::Plain);
}

mod garbage {
    use super::*;
    use proptest::prelude::*;

    /// A segment between a few endpoints with random flags, numbers and
    /// option bytes (often well-formed MPTCP options, sometimes not).
    fn seg() -> impl Strategy<Value = Vec<u8>> {
        (
            0usize..4,
            any::<bool>(),
            any::<u8>(),
            prop_oneof![Just(1000u32), Just(5000u32), any::<u32>()],
            any::<u32>(),
            prop::collection::vec(any::<u8>(), 0..6),
            prop::collection::vec(any::<u8>(), 0..40),
            0usize..64,
        )
            .prop_map(|(path, dir, flags, seq, ack, mptcp, raw, payload)| {
                let p = [("10.0.0.1", 40000), ("10.0.1.1", 40001), ("10.0.0.1", 40002), ("10.0.0.9", 1)][path];
                // Mostly valid MPTCP options built from the random bytes.
                let mut opts = Vec::new();
                for (i, b) in mptcp.iter().enumerate() {
                    let k = KC.rotate_left(*b as u32);
                    let o = match b % 9 {
                        0 => mpc(1, 1, Some(k), (b & 1 == 1).then_some(KS), (b & 2 == 2).then_some(*b as u16), None),
                        1 => TcpOption::Mptcp(MptcpOption::MpJoin(MpJoin::Syn {
                            backup: b & 1 == 1,
                            addr_id: *b,
                            token: token(KS, Version::V1) ^ (i as u32 & 1),
                            nonce: k as u32,
                        })),
                        2 => TcpOption::Mptcp(MptcpOption::MpJoin(MpJoin::SynAck {
                            backup: false,
                            addr_id: *b,
                            hmac: k,
                            nonce: 3,
                        })),
                        3 | 4 => dss(
                            Some(if b & 1 == 1 { WireSeq::U32(k as u32) } else { WireSeq::U64(k) }),
                            (b & 2 == 2).then_some((
                                if b & 4 == 4 { WireSeq::U32(k as u32) } else { WireSeq::U64(k) },
                                (*b as u32) * 100,
                                (*b as u16) % 4 * 30,
                                (b & 8 == 8).then_some(k as u16),
                            )),
                            b & 16 == 16,
                        ),
                        5 => TcpOption::Mptcp(MptcpOption::MpFail(MpFail { dsn: k })),
                        6 => TcpOption::Mptcp(MptcpOption::MpPrio(MpPrio { backup: true, addr_id: Some(*b) })),
                        7 => TcpOption::Mptcp(MptcpOption::MpTcpRst(MpTcpRst { flags: b & 15, reason: *b })),
                        _ => TcpOption::Mptcp(MptcpOption::MpFastclose(crate::dissect::options::MpFastclose {
                            receiver_key: k,
                        })),
                    };
                    if opts.iter().map(|o: &TcpOption| o.buffer_len()).sum::<usize>() + o.buffer_len() <= 40 {
                        opts.push(o);
                    }
                }
                let payload = vec![0x5a; payload];
                let (s, d) = if dir { (p, S) } else { (S, p) };
                let mut f = segment(s.0, s.1, d.0, d.1, flags, seq, ack, &opts, &payload);
                // Sometimes raw garbage instead of the options (same length,
                // so the header stays framed).
                if !raw.is_empty() && raw[0] % 4 == 0 {
                    let start = 40;
                    let n = f.len().min(start + raw.len().min(opts.iter().map(|o| o.buffer_len()).sum()));
                    f[start..n].copy_from_slice(&raw[..n - start]);
                }
                f
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_and_always_writes_valid_json(segs in prop::collection::vec(seg(), 1..60), cut in 20usize..200) {
            let mut s = Sim::new();
            s.handshake_v1(true);
            let mut out = Vec::new();
            for (i, b) in segs.iter().enumerate() {
                let caplen = if i % 3 == 0 { cut } else { usize::MAX };
                let note = s.feed(b, caplen).clone();
                let mut t = Vec::new();
                note.write_text(&mut t);
                let meta = FrameMeta { number: i as u64 + 1, ts: Some(Timestamp::new(1, 0)), caplen: 0, len: 0, linktype: linktype::RAW };
                out.clear();
                crate::dissect::json::write_packet(&mut out, &meta, &decode(linktype::RAW, &b[..caplen.min(b.len())]), &note);
                prop_assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok(), "{}", String::from_utf8_lossy(&out));
            }
            let snap = s.a.snapshot("x");
            prop_assert!(!snap.connections.is_empty());
            let r = s.report();
            let mut text = Vec::new();
            crate::dissect::summary::write_summary(&mut text, &r);
            prop_assert!(!text.is_empty());
        }
    }
}

/// The event log (`events.rs`) on the synthetic cases the captures lack.
fn event_lines(s: &mut Sim) -> Vec<String> {
    s.a.drain_events().iter().map(|e| format!("{} {} {:?}: {}", e.frame, e.kind.name(), e.subflow, e.kind)).collect()
}

#[test]
fn events_for_bad_hmacs_refused_and_failed_joins() {
    let mut s = Sim::new();
    s.a.enable_events();
    s.handshake_v1(false);
    join(&mut s, Version::V1, false, false);
    assert_eq!(
        event_lines(&mut s),
        [
            "3 created None: MPTCP v1",
            "4 established None: MPTCP v1",
            "6 hmac_failed Some(2): join syn/ack hmac does not verify",
            "7 sub_established Some(2): an MP_JOIN HMAC does not verify",
        ]
    );
    // A refused join: its reset, with the MP_TCPRST reason in words.
    let tok = token(KS, Version::V1);
    let syn = MpJoin::Syn { backup: false, addr_id: 3, token: tok, nonce: 1 };
    s.c2s(("10.0.3.1", 43000), SYN, 1, 0, &[TcpOption::Mptcp(MptcpOption::MpJoin(syn))], &[]);
    let rst = TcpOption::Mptcp(MptcpOption::MpTcpRst(MpTcpRst { flags: 0, reason: 3 }));
    let b = segment(S.0, S.1, "10.0.3.1", 43000, RST | ACK, 0, 2, &[rst], &[]);
    s.feed(&b, usize::MAX);
    assert_eq!(
        event_lines(&mut s),
        ["9 sub_closed Some(3): join refused by the server: MP_TCPRST reason 3 (administratively prohibited)"]
    );
    // A join answered without MP_JOIN runs without MPTCP.
    let syn = MpJoin::Syn { backup: true, addr_id: 4, token: tok, nonce: 1 };
    s.c2s(("10.0.4.1", 44000), SYN, 1, 0, &[TcpOption::Mptcp(MptcpOption::MpJoin(syn))], &[]);
    let b = segment(S.0, S.1, "10.0.4.1", 44000, SYN | ACK, 9, 2, &[TcpOption::Mss(1400)], &[]);
    s.feed(&b, usize::MAX);
    let e = s.a.drain_events();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].kind.to_string(), "join failed: the SYN/ACK has no MP_JOIN");
    assert_eq!((e[0].kind.name(), e[0].id_loc, e[0].backup), ("fallback", Some(4), Some(true)));
    assert_eq!(e[0].local, Some("10.0.4.1:44000".parse().unwrap()));
}

#[test]
fn events_for_key_mismatch_and_infinite_mapping() {
    let mut s = Sim::new();
    s.a.enable_events();
    s.c2s(C1, SYN, ISN_C, 0, &[mpc(1, 1, None, None, None, None)], &[]);
    s.s2c(C1, SYN | ACK, ISN_S, ISN_C + 1, &[mpc(1, 1, Some(KS), None, None, None)], &[]);
    s.c2s(C1, ACK, ISN_C + 1, ISN_S + 1, &[mpc(1, 1, Some(KC), Some(KS ^ 1), None, None)], &[]);
    let ack = WireSeq::U64(idsn(KC, Version::V1) + 1);
    s.s2c(
        C1,
        ACK,
        ISN_S + 1,
        ISN_C + 1,
        &[dss(Some(ack), Some((WireSeq::U64(idsn(KS, Version::V1) + 1), 1, 0, None)), false)],
        &[],
    );
    let got = event_lines(&mut s);
    assert_eq!(
        got,
        [
            "3 created None: MPTCP v1",
            "3 key_mismatch None: the third ACK echoes a key other than the server's",
            "4 established None: MPTCP v1",
            "4 fallback None: infinite mapping from the server",
        ],
        "{got:#?}"
    );
}

/// The same DSN range sent thousands of times, alternating between two
/// subflows: each copy's event names at most FRAMES_NAMED frames and counts
/// the others exactly, in the text and in the JSON, and the byte counts
/// stay right.
#[test]
fn thousands_of_copies_name_at_most_the_bound() {
    let mut s = Sim::new();
    s.handshake_v1(false);
    join(&mut s, Version::V1, true, false);
    let ic = idsn(KC, Version::V1);
    let map = [dss(None, Some((WireSeq::U64(ic + 1), 1, 100, None)), false)];
    let copies = 3000u64;
    let first = s.frame + 1;
    let mut last = (Vec::new(), PacketNote::default());
    for k in 0..copies {
        let b = if k % 2 == 0 {
            segment(C1.0, C1.1, S.0, S.1, ACK, ISN_C + 1, ISN_S + 1, &map, &[7; 100])
        } else {
            segment(C2.0, C2.1, S.0, S.1, ACK, 7001, 9001, &map, &[7; 100])
        };
        let n = s.feed(&b, usize::MAX).clone();
        let Some(Event::Reinjection { of, more }) = n.events.first() else {
            assert_eq!(k, 0, "copy {k}: {:?}", n.events);
            continue;
        };
        // Every earlier copy on the other subflow: frames first+j for the
        // j of the other parity.
        let others: Vec<u64> = (0..k).filter(|j| j % 2 != k % 2).map(|j| first + j).collect();
        assert!(of.len() <= FRAMES_NAMED);
        assert_eq!(of[..], others[..others.len().min(FRAMES_NAMED)], "copy {k}");
        assert_eq!(*more, (others.len() - of.len()) as u64, "copy {k}");
        last = (b, n);
    }
    let (bytes, note) = last;
    let mut text = Vec::new();
    note.write_text(&mut text);
    let text = String::from_utf8(text).unwrap();
    let named: Vec<String> = (0..FRAMES_NAMED as u64).map(|j| (first + 2 * j).to_string()).collect();
    let want = format!("reinjection of frames {} and {} more]", named.join(","), copies / 2 - FRAMES_NAMED as u64);
    assert!(text.ends_with(&want), "{text}");
    let meta =
        FrameMeta { number: s.frame, ts: Some(Timestamp::new(0, 0)), caplen: 0, len: 0, linktype: linktype::RAW };
    let mut js = Vec::new();
    crate::dissect::json::write_packet(&mut js, &meta, &decode(linktype::RAW, &bytes), &note);
    let v: serde_json::Value = serde_json::from_slice(&js).unwrap();
    let ev = &v["analysis"]["events"][0];
    assert_eq!(ev["type"], "reinjection");
    assert_eq!(ev["of"].as_array().unwrap().len(), FRAMES_NAMED);
    assert_eq!(ev["more"], copies / 2 - FRAMES_NAMED as u64);
    let r = s.report();
    let c = &r.connections[0];
    assert_eq!(c.data_bytes, [100, 0]);
    assert_eq!(c.subflows[1].reinjected, [100, 0]);
}

/// SYNs that are never answered stay a SynOnly each (no Flow, no Conn),
/// and the report, the snapshot and the notes say what they said when
/// every SYN made a Flow: compared with the same SYNs each followed by a
/// retransmission, which makes them full flows.
#[test]
fn unanswered_syns_are_held_small_and_reported_as_before() {
    let syn = |i: u32, mptcp: bool, again: bool| {
        let opts = if mptcp { vec![mpc(1, 0x01, None, None, None, None)] } else { Vec::new() };
        let src = format!("10.3.{}.{}", i >> 8, i & 0xff);
        let seg = segment(&src, 1024 + i as u16, S.0, S.1, SYN, 77 + i, 0, &opts, &[]);
        if again { vec![seg.clone(), seg] } else { vec![seg] }
    };
    let n = 600u32;
    let mut held = Sim::new();
    let mut notes = Vec::new();
    for i in 0..n {
        for b in syn(i, i % 3 != 0, false) {
            notes.push(held.feed(&b, usize::MAX).clone());
        }
    }
    assert_eq!((held.a.syns.len(), held.a.flows.len(), held.a.conns.len()), (n as usize, 0, 0));
    assert_eq!(held.a.connection_count(), 400);
    assert_eq!(notes[1].conn, Some(1));
    assert_eq!((notes[1].flow, notes[1].subflow, notes[1].from), (Some(2), Some(1), Some(Side::Client)));
    assert_eq!((notes[3].flow, notes[3].conn), (Some(4), None));
    let snap = held.a.snapshot("test");
    // Retransmitted SYNs: every flow full (a retransmission says nothing new).
    let mut full = Sim::new();
    for i in 0..n {
        for b in syn(i, i % 3 != 0, true) {
            full.feed(&b, usize::MAX);
        }
    }
    assert_eq!((full.a.syns.len(), full.a.flows.len()), (0, n as usize));
    let mut want_snap = full.a.snapshot("test");
    let mut snap = snap;
    for (c, w) in snap.connections.iter_mut().zip(want_snap.connections.iter_mut()) {
        // The retransmissions are the only difference: the subflow's id is
        // its first frame.
        assert_eq!(w.subflows.len(), 1);
        (c.subflows[0].id, w.subflows[0].id) = (None, None);
    }
    assert_eq!(snap, want_snap);
    let (r, mut want) = (held.report(), full.report());
    for c in &mut want.connections {
        c.last_frame = c.first_frame;
        for sf in &mut c.subflows {
            (sf.last_frame, sf.packets) = (sf.first_frame, 1);
        }
    }
    for f in &mut want.tcp_flows {
        (f.last_frame, f.packets) = (f.first_frame, 1);
    }
    // Frame numbers differ (two frames per flow there): compare by flow.
    let frames = |v: &mut Report| {
        for c in &mut v.connections {
            c.first_frame = 0;
            c.last_frame = 0;
            for sf in &mut c.subflows {
                (sf.first_frame, sf.last_frame, sf.syn_frame) = (0, 0, None);
            }
        }
        for f in &mut v.tcp_flows {
            (f.first_frame, f.last_frame, f.syn_frame) = (0, 0, None);
        }
        v.frames = 0;
        v.tcp_segments = 0;
    };
    let (mut r, mut want) = (r, want);
    assert_eq!(r.connections.len(), 400);
    assert_eq!(r.tcp_flows.len(), 200);
    assert_eq!(r.connections[5].subflows[0].syn_frame, Some(r.connections[5].first_frame));
    frames(&mut r);
    frames(&mut want);
    assert_eq!(r, want);
}

/// A SYN-only flow that shows a second packet continues as if it had been
/// a full flow from the start: the handshake completes and the flow and
/// connection numbers stay in order of the first packet.
#[test]
fn a_held_syn_grows_into_a_full_flow() {
    let mut s = Sim::new();
    // Flow 1: an unanswered plain SYN; flow 2, connection 1: a real one.
    s.feed(&segment("10.9.9.9", 5555, S.0, S.1, SYN, 1, 0, &[], &[]), usize::MAX);
    s.handshake_v1(false);
    // Flow 3, connection 2: another unanswered MP_CAPABLE SYN.
    s.feed(&segment("10.9.9.8", 5556, S.0, S.1, SYN, 1, 0, &[mpc(1, 1, None, None, None, None)], &[]), usize::MAX);
    assert_eq!((s.a.syns.len(), s.a.flows.len(), s.a.conns.len()), (2, 1, 1));
    // The server's first DSS (frame 5).
    let n = s.notes[4].clone();
    assert_eq!((n.flow, n.conn), (Some(2), Some(1)));
    assert!(n.events.contains(&Event::Established));
    let r = s.report();
    assert_eq!(r.connections.iter().map(|c| c.id).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(r.connections[0].subflows[0].flow, 2);
    assert_eq!(r.connections[1].subflows[0].flow, 3);
    assert!(r.connections[0].established().is_some());
    assert_eq!(r.tcp_flows.len(), 1);
    assert_eq!((r.tcp_flows[0].flow, r.tcp_flows[0].kind), (1, TcpFlowKind::Plain));
}
