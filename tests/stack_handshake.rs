//! Segment-level tests of the stack, two endpoints wired back to back with
//! no delay (smoltcp style: assert on the segments themselves), and crafted
//! segments for what a well-behaved peer never sends.

use std::net::SocketAddr;

use mptcp_tools::dissect::crypto::{Key, Version, join_ack_hmac};
use mptcp_tools::dissect::options::{MpCapable, MpJoin, MptcpOption, TcpOption};
use mptcp_tools::seq::SubflowSeq;
use mptcp_tools::stack::testing::Pair;
use mptcp_tools::stack::wire::{self, SegmentRepr, flags};
use mptcp_tools::stack::{AddrFlags, Config, ConnHandle, Endpoint, Event, Instant};

fn mptcp_opts(p: &[u8]) -> Vec<MptcpOption> {
    wire::parse(p, true).unwrap().opts.mptcp().copied().collect()
}

fn flags_of(p: &[u8]) -> u8 {
    wire::parse(p, true).unwrap().flags
}

#[test]
fn mp_capable_handshake_forms() {
    let mut p = Pair::v4(Config::default());
    let h = p.c.connect(p.now, None, "10.0.1.2:80".parse().unwrap()).unwrap();
    p.c.send(h, b"hello").unwrap();
    p.drive_now();
    // SYN: MP_CAPABLE, 4 bytes, v1, no key (RFC 8684 §3.1).
    let syn = &p.log[0];
    assert!(syn.0 && flags_of(&syn.1) == flags::SYN);
    let o = mptcp_opts(&syn.1);
    assert!(matches!(o[0], MptcpOption::MpCapable(MpCapable { version: 1, sender_key: None, .. })), "{o:?}");
    assert_eq!(o[0].buffer_len(), 4);
    // SYN/ACK: the server's key, 12 bytes.
    let sa = &p.log[1];
    assert!(!sa.0 && flags_of(&sa.1) == flags::SYN | flags::ACK);
    let MptcpOption::MpCapable(m) = mptcp_opts(&sa.1)[0] else { panic!() };
    let server_key = m.sender_key.expect("key in SYN/ACK");
    assert_eq!(mptcp_opts(&sa.1)[0].buffer_len(), 12);
    // Third ACK: both keys, 20 bytes; then data in the 22-byte form.
    let ack = &p.log[2];
    let MptcpOption::MpCapable(m3) = mptcp_opts(&ack.1)[0] else { panic!("{:?}", mptcp_opts(&ack.1)) };
    assert_eq!(m3.receiver_key, Some(server_key));
    assert_eq!(mptcp_opts(&ack.1)[0].buffer_len(), 20);
    let data = p.log.iter().find(|(c, pk)| *c && !wire::parse(pk, true).unwrap().payload.is_empty()).unwrap();
    let MptcpOption::MpCapable(md) = mptcp_opts(&data.1)[0] else { panic!() };
    assert_eq!(md.data_len, Some(5));
    assert_eq!(mptcp_opts(&data.1)[0].buffer_len(), 22);
    // The server has the data and answers with a DSS DATA_ACK = IDSN+1+5.
    let sh = p
        .events_of(false)
        .cloned()
        .collect::<Vec<_>>()
        .into_iter()
        .find_map(|e| if let Event::Accepted { conn, .. } = e { Some(conn) } else { None })
        .unwrap();
    let mut b = [0u8; 16];
    assert_eq!(p.s.recv(sh, &mut b), Ok(Some(5)));
    assert_eq!(&b[..5], b"hello");
    let client_key = m3.sender_key.unwrap();
    let idsn = Key(client_key).idsn(Version::V1).0;
    let dack = p
        .log
        .iter()
        .filter(|(c, _)| !*c)
        .find_map(|(_, pk)| {
            mptcp_opts(pk).into_iter().find_map(|o| match o {
                MptcpOption::Dss(d) => d.data_ack.map(|a| a.value()),
                _ => None,
            })
        })
        .unwrap();
    assert_eq!(dack, idsn.wrapping_add(6));
    // Tokens agree on both sides.
    let ci = p.c.info(h).unwrap();
    let si = p.s.info(sh).unwrap();
    assert!(ci.mptcp && si.mptcp && ci.fully_established && si.fully_established);
    assert_eq!(ci.remote_token, si.local_token);
    assert_eq!(si.remote_token, ci.local_token);
    assert_eq!(Key(server_key).token(Version::V1).0, si.local_token);
}

#[test]
fn plain_tcp_peer_means_fallback() {
    let mut cfg = Config::default();
    let mut p = Pair::v4(cfg.clone());
    cfg.mptcp = false;
    p.s = Endpoint::new(cfg, 5);
    p.s.add_address("10.0.1.2".parse().unwrap(), AddrFlags::default()).unwrap();
    p.s.listen("0.0.0.0:80".parse().unwrap()).unwrap();
    let h = p.c.connect(p.now, None, "10.0.1.2:80".parse().unwrap()).unwrap();
    p.c.send(h, b"plain").unwrap();
    p.drive_now();
    let ev = p.events_of(true).cloned().collect::<Vec<_>>();
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Fallback { reason: mptcp_tools::stack::FallbackReason::NoMpCapableInSynAck, .. }
        )),
        "{ev:?}"
    );
    assert!(!p.c.info(h).unwrap().mptcp);
    // No MPTCP option after the SYN.
    assert!(p.log.iter().skip(1).all(|(_, pk)| mptcp_opts(pk).is_empty()));
    assert_eq!(p.c.mib().by_name("MPTcpExtMPCapableFallbackSYNACK"), Some(1));
    let sh = p.s.connections()[0];
    let mut b = [0u8; 16];
    assert_eq!(p.s.recv(sh, &mut b), Ok(Some(5)));
}

/// An established MPTCP connection; returns (client handle, server handle).
fn established(p: &mut Pair) -> (ConnHandle, ConnHandle) {
    let h = p.c.connect(p.now, None, "10.0.1.2:80".parse().unwrap()).unwrap();
    p.c.send(h, b"x").unwrap();
    p.drive(Instant::from_millis(100));
    let sh = p.s.connections()[0];
    assert!(p.s.info(sh).unwrap().fully_established);
    (h, sh)
}

fn join_syn(token: u32, nonce: u32, from: SocketAddr) -> Vec<u8> {
    let opts = [
        TcpOption::Mss(1460),
        TcpOption::SackPermitted,
        TcpOption::Mptcp(MptcpOption::MpJoin(MpJoin::Syn { backup: false, addr_id: 7, token, nonce })),
    ];
    let repr = SegmentRepr {
        src: from,
        dst: "10.0.1.2:80".parse().unwrap(),
        seq: SubflowSeq(1000),
        ack: SubflowSeq(0),
        flags: flags::SYN,
        window: 65535,
        options: &opts,
    };
    let mut b = vec![0u8; 100];
    let n = wire::emit(&repr, 0, &mut b, true, |_| {}).unwrap();
    b.truncate(n);
    b
}

fn drain(ep: &mut Endpoint, now: Instant) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 2000];
    std::iter::from_fn(|| ep.poll_transmit(now, &mut buf).map(|t| buf[..t.len].to_vec())).collect()
}

#[test]
fn join_with_unknown_token_is_refused_without_state() {
    let mut p = Pair::v4(Config::default());
    let (_, sh) = established(&mut p);
    let from: SocketAddr = "10.0.2.1:40000".parse().unwrap();
    p.s.handle_packet(p.now, &join_syn(0xdeadbeef, 1, from));
    let out = drain(&mut p.s, p.now);
    assert_eq!(out.len(), 1);
    let rst = wire::parse(&out[0], true).unwrap();
    assert!(rst.has(flags::RST));
    assert!(matches!(rst.opts.mptcp().next(), Some(MptcpOption::MpTcpRst(r)) if r.reason == 1), "{:?}", rst.opts);
    assert_eq!(p.s.mib().by_name("MPTcpExtMPJoinNoTokenFound"), Some(1));
    assert_eq!(p.s.info(sh).unwrap().subflows.len(), 1);
}

#[test]
fn join_with_bad_hmac_is_refused_without_state() {
    let mut p = Pair::v4(Config::default());
    let (ch, sh) = established(&mut p);
    let token = p.s.info(sh).unwrap().local_token;
    let from: SocketAddr = "10.0.2.1:40000".parse().unwrap();
    p.s.handle_packet(p.now, &join_syn(token, 0x1234, from));
    let out = drain(&mut p.s, p.now);
    assert_eq!(out.len(), 1, "one SYN/ACK");
    let sa = wire::parse(&out[0], true).unwrap();
    assert_eq!(sa.flags, flags::SYN | flags::ACK);
    let Some(MptcpOption::MpJoin(MpJoin::SynAck { nonce, .. })) = sa.opts.mptcp().next().copied() else { panic!() };
    // A's real HMAC would be over (Key-A, Key-B); send a wrong one.
    let ck = p.c.info(ch).unwrap();
    let _ = (ck, nonce, join_ack_hmac);
    let bad = [0x5au8; 20];
    let opts = [TcpOption::Mptcp(MptcpOption::MpJoin(MpJoin::Ack { hmac: bad }))];
    let repr = SegmentRepr {
        src: from,
        dst: "10.0.1.2:80".parse().unwrap(),
        seq: SubflowSeq(1001),
        ack: sa.seq + 1u32,
        flags: flags::ACK,
        window: 65535,
        options: &opts,
    };
    let mut b = vec![0u8; 100];
    let n = wire::emit(&repr, 0, &mut b, true, |_| {}).unwrap();
    p.s.handle_packet(p.now, &b[..n]);
    let out = drain(&mut p.s, p.now);
    let rst = out.iter().map(|o| wire::parse(o, true).unwrap()).find(|s| s.has(flags::RST)).expect("a RST");
    assert!(matches!(rst.opts.mptcp().next(), Some(MptcpOption::MpTcpRst(r)) if r.reason == 3), "{:?}", rst.opts);
    assert_eq!(p.s.mib().by_name("MPTcpExtMPJoinAckHMacFailure"), Some(1));
    assert_eq!(p.s.mib().by_name("MPTcpExtMPJoinAckRx"), Some(0));
    // No state is left: one subflow, and the 4-tuple is unknown again (a
    // further segment from it gets a plain RST).
    assert_eq!(p.s.info(sh).unwrap().subflows.len(), 1);
    assert_eq!(p.s.snapshot(p.now).connections[0].subflows.len(), 1);
    p.s.handle_packet(p.now, &b[..n]);
    let again = drain(&mut p.s, p.now);
    let r2 = wire::parse(&again[0], true).unwrap();
    assert!(r2.has(flags::RST) && r2.opts.mptcp().next().is_none());
}

#[test]
fn join_with_good_hmac_is_accepted() {
    let mut p = Pair::v4(Config::default());
    p.c.add_address("10.0.2.1".parse().unwrap(), AddrFlags { subflow: true, ..Default::default() }).unwrap();
    let (ch, sh) = established(&mut p);
    p.drive_now();
    assert_eq!(p.c.info(ch).unwrap().subflows.len(), 2);
    assert_eq!(p.s.info(sh).unwrap().subflows.len(), 2);
    let m = p.s.mib();
    assert_eq!((m.by_name("MPTcpExtMPJoinSynRx"), m.by_name("MPTcpExtMPJoinAckRx")), (Some(1), Some(1)));
    assert_eq!(p.c.mib().by_name("MPTcpExtMPJoinSynAckRx"), Some(1));
    let snap = p.c.snapshot(p.now);
    let flags: Vec<&str> = snap.connections[0].subflows.iter().map(|s| s.flags.as_str()).collect();
    assert_eq!(flags, vec!["Mmec", "Jjec"]);
}

#[test]
fn subflow_limit_refuses_extra_joins() {
    let mut cfg = Config::default();
    cfg.limits.subflows = 0;
    let mut p = Pair::v4(cfg);
    let (_, sh) = established(&mut p);
    let token = p.s.info(sh).unwrap().local_token;
    p.s.handle_packet(p.now, &join_syn(token, 9, "10.0.2.1:40000".parse().unwrap()));
    let out = drain(&mut p.s, p.now);
    let rst = wire::parse(&out[0], true).unwrap();
    assert!(rst.has(flags::RST));
    assert!(matches!(rst.opts.mptcp().next(), Some(MptcpOption::MpTcpRst(r)) if r.reason == 3));
    assert_eq!(p.s.mib().by_name("MPTcpExtMPJoinRejected"), Some(1));
}

#[test]
fn fastclose_both_ways() {
    let mut p = Pair::v4(Config::default());
    let (ch, sh) = established(&mut p);
    p.c.abort(ch).unwrap();
    p.drive_now();
    let fc = p.log.iter().rev().find(|(c, pk)| *c && flags_of(pk) & flags::RST != 0).expect("RST");
    let ck = mptcp_opts(&fc.1);
    assert!(matches!(ck[0], MptcpOption::MpFastclose(_)), "{ck:?}");
    let ev = p.events_of(false).cloned().collect::<Vec<_>>();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Closed { reason: mptcp_tools::stack::CloseReason::PeerFastClose, .. })),
        "{ev:?}"
    );
    assert_eq!(p.s.mib().by_name("MPTcpExtMPFastcloseRx"), Some(1));
    assert_eq!(p.c.mib().by_name("MPTcpExtMPFastcloseTx"), Some(1));
    let _ = sh;
}

#[test]
fn data_fin_both_ways_and_time_wait() {
    let mut p = Pair::v4(Config::default());
    let (ch, sh) = established(&mut p);
    p.c.close(ch).unwrap();
    p.drive_now();
    let ev = p.events_of(false).cloned().collect::<Vec<_>>();
    assert!(ev.iter().any(|e| matches!(e, Event::PeerClosed(_))));
    let mut b = [0u8; 8];
    assert_eq!(p.s.recv(sh, &mut b), Ok(Some(1)));
    assert_eq!(p.s.recv(sh, &mut b), Ok(None));
    p.s.close(sh).unwrap();
    p.drive_now();
    // DATA_FIN on a zero-length segment, subflow sequence 0, length 1 (as Linux).
    let dfin = p
        .log
        .iter()
        .filter_map(|(c, pk)| {
            mptcp_opts(pk).into_iter().find_map(|o| match o {
                MptcpOption::Dss(d) if d.data_fin => Some((*c, d)),
                _ => None,
            })
        })
        .collect::<Vec<_>>();
    assert!(dfin.iter().any(|(c, d)| *c && d.mapping.is_some_and(|m| m.ssn == 0 && m.data_len == 1)));
    assert!(dfin.iter().any(|(c, _)| !*c));
    // Subflow FINs after both DATA_FINs; the active closer waits in TIME-WAIT.
    assert!(p.log.iter().any(|(c, pk)| *c && flags_of(pk) & flags::FIN != 0));
    assert!(p.log.iter().any(|(c, pk)| !*c && flags_of(pk) & flags::FIN != 0));
    let cs = p.c.snapshot(p.now);
    let ss = p.s.snapshot(p.now);
    let states: Vec<_> = cs.connections[0]
        .subflows
        .iter()
        .chain(ss.connections[0].subflows.iter())
        .map(|s| s.state.clone().unwrap())
        .collect();
    assert!(states.contains(&"TIME-WAIT".to_string()), "{states:?}");
    let cev = p.events_of(true).cloned().collect::<Vec<_>>();
    assert!(
        cev.iter().any(|e| matches!(e, Event::Closed { reason: mptcp_tools::stack::CloseReason::Normal, .. })),
        "{cev:?}"
    );
    // TIME-WAIT ends after 2*MSL.
    p.now = Instant::from_secs(61);
    p.c.handle_timeout(p.now);
    p.s.handle_timeout(p.now);
    p.c.release(ch);
    p.s.release(sh);
    assert!(p.c.connections().is_empty());
    assert!(p.c.poll_timeout().is_none() && p.s.poll_timeout().is_none());
}

#[test]
fn ipv6_connection_with_a_join() {
    let cfg = Config::default();
    let mut c = Endpoint::new(cfg.clone(), 3);
    let mut s = Endpoint::new(cfg, 4);
    c.add_address("fd00:1::1".parse().unwrap(), AddrFlags::default()).unwrap();
    c.add_address("fd00:2::1".parse().unwrap(), AddrFlags { subflow: true, ..Default::default() }).unwrap();
    s.add_address("fd00:1::2".parse().unwrap(), AddrFlags::default()).unwrap();
    s.listen("[::]:80".parse().unwrap()).unwrap();
    let mut p = Pair::new(c, s);
    let h = p.c.connect(p.now, None, "[fd00:1::2]:80".parse().unwrap()).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(p.c.send(h, &data).unwrap(), data.len());
    p.c.close(h).unwrap();
    p.drive(Instant::from_secs(5));
    let sh = p.s.connections()[0];
    let mut got = Vec::new();
    let mut b = vec![0u8; 65536];
    while let Ok(Some(n)) = p.s.recv(sh, &mut b) {
        got.extend_from_slice(&b[..n]);
        p.drive(Instant::from_secs(5));
    }
    assert_eq!(got, data);
    let syn = wire::parse(&p.log[0].1, true).unwrap();
    assert!(syn.src.is_ipv6());
    assert_eq!(syn.opts.mss, Some(1440), "MSS for IPv6 at MTU 1500");
    assert_eq!(p.s.mib().by_name("MPTcpExtMPJoinAckRx"), Some(1));
}
