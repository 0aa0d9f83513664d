//! The stack against a hostile peer, in virtual time: two endpoints wired
//! back to back (a one-way delay, no loss), and crafted segments from a
//! "peer" that knows what a legitimate one knows (keys, tokens, sequence
//! numbers) but does what no legitimate one does. What is checked: nothing
//! panics, state and memory stay bounded, the MIB counts what was refused,
//! and the real connection goes on (or ends as the RFC says).

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use mptcp_tools::dissect::options::{AddAddr, MptcpOption, TcpOption};
use mptcp_tools::seq::SubflowSeq;
use mptcp_tools::stack::wire::{self, EmitError, SegmentRepr, flags};
use mptcp_tools::stack::{AddrFlags, Config, ConnHandle, Duration, Endpoint, Event, Instant, StackError};

/// Two endpoints with a one-way delay between them; every packet is kept
/// in `log` as (from the client?, bytes).
struct Pair {
    c: Endpoint,
    s: Endpoint,
    now: Instant,
    delay: Duration,
    /// (arrival, to the server?, packet)
    wire: VecDeque<(Instant, bool, Vec<u8>)>,
    log: Vec<(bool, Vec<u8>)>,
    /// Events taken from the endpoints so far: (client?, event).
    events: Vec<(bool, Event)>,
    /// Which packets the wire carries: (from the client?, packet) -> keep?
    /// (Spoofed sources' answers go nowhere.)
    keep: fn(bool, &[u8]) -> bool,
}

/// Keep what goes to the server or to the client's own address.
fn to_real_hosts(from_client: bool, p: &[u8]) -> bool {
    from_client || wire::parse(p, false).is_ok_and(|s| s.dst.ip() == "10.0.1.1".parse::<IpAddr>().unwrap())
}

impl Pair {
    fn new(c: Endpoint, s: Endpoint) -> Pair {
        Pair {
            c,
            s,
            now: Instant::ZERO,
            delay: Duration::from_millis(5),
            wire: VecDeque::new(),
            log: Vec::new(),
            events: Vec::new(),
            keep: |_, _| true,
        }
    }

    /// IPv4: client 10.0.1.1, server 10.0.1.2 listening on port 80.
    fn v4(cfg: Config) -> Pair {
        let mut c = Endpoint::new(cfg.clone(), 11);
        let mut s = Endpoint::new(cfg, 22);
        c.add_address("10.0.1.1".parse().unwrap(), AddrFlags::default()).unwrap();
        s.add_address("10.0.1.2".parse().unwrap(), AddrFlags::default()).unwrap();
        s.listen("0.0.0.0:80".parse().unwrap()).unwrap();
        Pair::new(c, s)
    }

    /// Both sides' output onto the wire, written as the TUN driver and the
    /// simulator have it written: headers into a buffer of exactly
    /// `MAX_HEADERS` bytes, the payload by reference.
    fn flush(&mut self) {
        let mut buf = vec![0u8; mptcp_tools::stack::endpoint::MAX_HEADERS];
        for client in [true, false] {
            let ep = if client { &mut self.c } else { &mut self.s };
            while let Some((t, payload)) = ep.poll_transmit_parts(self.now, &mut buf) {
                let mut p = buf[..t.len].to_vec();
                if let Some(pl) = payload {
                    p.extend_from_slice(&pl);
                }
                self.log.push((client, p.clone()));
                if (self.keep)(client, &p) {
                    self.wire.push_back((self.now + self.delay, client, p));
                }
            }
        }
        self.take_events();
    }

    fn take_events(&mut self) {
        while let Some(e) = self.c.poll_event() {
            self.events.push((true, e));
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push((false, e));
        }
    }

    /// Run until `limit`: packets, timers, and `app` after every step.
    fn run_with(&mut self, limit: Instant, mut app: impl FnMut(&mut Pair)) {
        loop {
            app(self);
            self.flush();
            let next = [self.wire.front().map(|w| w.0), self.c.poll_timeout(), self.s.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = next.filter(|t| *t <= limit) else {
                self.now = self.now.max(limit);
                return;
            };
            self.now = self.now.max(t);
            while self.wire.front().is_some_and(|w| w.0 <= self.now) {
                let (_, to_server, p) = self.wire.pop_front().unwrap();
                if to_server {
                    self.s.handle_packet(self.now, &p);
                } else {
                    self.c.handle_packet(self.now, &p);
                }
            }
            if self.c.poll_timeout().is_some_and(|x| x <= self.now) {
                self.c.handle_timeout(self.now);
            }
            if self.s.poll_timeout().is_some_and(|x| x <= self.now) {
                self.s.handle_timeout(self.now);
            }
        }
    }

    fn run(&mut self, limit: Instant) {
        self.run_with(limit, |_| {});
    }

    /// The server's accepted connection.
    fn accepted(&self) -> Option<ConnHandle> {
        self.events.iter().find_map(|(c, e)| match e {
            Event::Accepted { conn, .. } if !c => Some(*conn),
            _ => None,
        })
    }
}

fn mptcp_opts(p: &[u8]) -> Vec<MptcpOption> {
    wire::parse(p, true).unwrap().opts.mptcp().copied().collect()
}

/// A segment from `src` to `dst`, options as given.
fn segment(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    fl: u8,
    opts: &[TcpOption],
    payload: &[u8],
) -> Vec<u8> {
    let repr =
        SegmentRepr { src, dst, seq: SubflowSeq(seq), ack: SubflowSeq(ack), flags: fl, window: 65535, options: opts };
    let mut b = vec![0u8; 100 + payload.len()];
    let n = wire::emit(&repr, payload.len(), &mut b, true, |p| p.copy_from_slice(payload)).unwrap();
    b.truncate(n);
    b
}

// ----------------------------------------------------------------------
// Option space and framing (no emit path may panic)
// ----------------------------------------------------------------------

/// An IPv6 ADD_ADDR with a port is 30 bytes: with the 12 bytes of
/// timestamps it does not fit the 40-byte option space. The server sends
/// it on an ACK of its own, without the timestamps (as Linux sends it);
/// the client verifies its HMAC and opens a subflow to the port; the data
/// goes through. (This once sliced past the header buffer: exit 101.)
#[test]
fn ipv6_add_addr_with_port_goes_alone_without_timestamps() {
    let cfg = Config::default();
    let mut c = Endpoint::new(cfg.clone(), 3);
    let mut s = Endpoint::new(cfg, 4);
    c.add_address("fd00:1::1".parse().unwrap(), AddrFlags::default()).unwrap();
    s.add_address("fd00:1::2".parse().unwrap(), AddrFlags::default()).unwrap();
    s.add_address("fd00:2::2".parse().unwrap(), AddrFlags { signal: true, port: Some(5001), ..Default::default() })
        .unwrap();
    s.listen("[::]:80".parse().unwrap()).unwrap();
    let mut p = Pair::new(c, s);
    let h = p.c.connect(p.now, None, "[fd00:1::2]:80".parse().unwrap()).unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    assert_eq!(p.c.send(h, &data).unwrap(), data.len());
    p.c.close(h).unwrap();
    let mut got = Vec::new();
    let mut b = vec![0u8; 65536];
    p.run_with(Instant::from_secs(10), |p| {
        if let Some(sh) = p.accepted() {
            while let Ok(Some(n)) = p.s.recv(sh, &mut b) {
                got.extend_from_slice(&b[..n]);
            }
        }
    });
    assert_eq!(got, data);
    let add: Vec<&Vec<u8>> = p
        .log
        .iter()
        .filter(|(c, pk)| !c && mptcp_opts(pk).iter().any(|o| matches!(o, MptcpOption::AddAddr(a) if !a.echo)))
        .map(|(_, pk)| pk)
        .collect();
    assert!(!add.is_empty(), "the server announced its address: {:?} {:?}", p.s.mib().nonzero(), p.c.mib().nonzero());
    for pk in &add {
        let seg = wire::parse(pk, true).unwrap();
        assert_eq!(seg.opts.timestamps, None, "no room for the timestamps beside it");
        assert_eq!(seg.opts.mptcp().count(), 1, "alone on its ACK");
        let Some(MptcpOption::AddAddr(a)) = seg.opts.mptcp().next().copied() else { unreachable!() };
        assert_eq!((a.addr, a.port), ("fd00:2::2".parse::<IpAddr>().unwrap(), Some(5001)));
    }
    let (cm, sm) = (p.c.mib(), p.s.mib());
    assert_eq!(cm.by_name("MPTcpExtAddAddr"), Some(1), "{:?}", cm.nonzero());
    assert_eq!(cm.by_name("MPTcpExtPortAdd"), Some(1));
    assert_eq!(sm.by_name("MPTcpExtEchoAdd"), Some(1), "{:?}", sm.nonzero());
    assert_eq!(sm.by_name("MPTcpExtAddAddrTxDrop"), Some(0));
    assert_eq!(sm.by_name("MPTcpExtMPJoinAckRx"), Some(1), "the client joined the announced port");
    for m in [cm, sm] {
        assert_eq!(m.by_name("TcpExtOptionSpaceDrop"), Some(0));
        assert_eq!(m.by_name("TcpExtEmitErrors"), Some(0));
    }
}

/// Mixed address families are a typed error, from the command and from
/// the framing, never a panic.
#[test]
fn mixed_families_are_an_error() {
    let mut c = Endpoint::new(Config::default(), 1);
    c.add_address("10.0.1.1".parse().unwrap(), AddrFlags::default()).unwrap();
    c.add_address("fd00::1".parse().unwrap(), AddrFlags::default()).unwrap();
    let e = c.connect(Instant::ZERO, Some("[fd00::1]:0".parse().unwrap()), "10.0.1.2:80".parse().unwrap());
    assert!(matches!(e, Err(StackError::FamilyMismatch { .. })), "{e:?}");
    let e = c.connect(Instant::ZERO, Some("10.0.1.1:0".parse().unwrap()), "[fd00::2]:80".parse().unwrap());
    assert!(matches!(e, Err(StackError::FamilyMismatch { .. })), "{e:?}");
    let repr = SegmentRepr {
        src: "10.0.0.1:1".parse().unwrap(),
        dst: "[fd00::2]:2".parse().unwrap(),
        seq: SubflowSeq(0),
        ack: SubflowSeq(0),
        flags: flags::SYN,
        window: 0,
        options: &[],
    };
    let mut b = [0u8; 100];
    assert!(matches!(wire::emit(&repr, 0, &mut b, true, |_| {}), Err(EmitError::MixedFamilies { .. })));
}

/// Every way a segment cannot be written is an error: too many option
/// bytes, a short buffer, a payload past the IP length field.
#[test]
fn emit_refuses_what_cannot_be_written() {
    let src: SocketAddr = "[fd00::1]:1".parse().unwrap();
    let dst: SocketAddr = "[fd00::2]:2".parse().unwrap();
    let big = TcpOption::Mptcp(MptcpOption::AddAddr(AddAddr {
        v0: false,
        echo: false,
        addr_id: 1,
        addr: "fd00::9".parse().unwrap(),
        port: Some(1),
        hmac: Some(1),
    }));
    let ts = TcpOption::Timestamps { tsval: 1, tsecr: 1 };
    let opts = [TcpOption::Nop, TcpOption::Nop, ts, big];
    let repr =
        SegmentRepr { src, dst, seq: SubflowSeq(0), ack: SubflowSeq(0), flags: flags::ACK, window: 0, options: &opts };
    let mut b = vec![0u8; 200];
    assert_eq!(wire::emit(&repr, 0, &mut b, true, |_| {}), Err(EmitError::OptionSpace { len: 44, max: 40 }));
    let repr = SegmentRepr { options: &opts[3..], ..repr };
    assert!(wire::emit(&repr, 0, &mut b, true, |_| {}).is_ok());
    assert!(matches!(wire::emit(&repr, 0, &mut b[..80], true, |_| {}), Err(EmitError::BufferTooSmall { .. })));
    assert!(matches!(wire::emit(&repr, 150, &mut b, true, |_| {}), Err(EmitError::BufferTooSmall { .. })));
    assert!(matches!(wire::emit_parts(&repr, &vec![0; 70_000], &mut b, true), Err(EmitError::TooLong { .. })));
    // A transmit buffer too short for the stack's packets: nothing panics,
    // the MIB counts what could not be written.
    let mut p = Pair::v4(Config::default());
    let h = p.c.connect(p.now, None, "10.0.1.2:80".parse().unwrap()).unwrap();
    let mut tiny = [0u8; 30];
    assert!(p.c.poll_transmit(p.now, &mut tiny).is_none());
    assert!(p.c.mib().by_name("TcpExtEmitErrors").unwrap() >= 1);
    let _ = h;
}

// ----------------------------------------------------------------------
// SYN floods: a bounded SYN queue, cookies when it is full
// ----------------------------------------------------------------------

/// A spoofed MP_CAPABLE SYN, as Linux sends one (MSS, SACK, timestamps,
/// window scale, MP_CAPABLE v1 with no key).
fn spoofed_syn(i: u32, to: SocketAddr) -> Vec<u8> {
    let src = SocketAddr::new(
        IpAddr::V4(std::net::Ipv4Addr::new(10, 9, (i / 250 % 250) as u8, (i % 250) as u8 + 1)),
        1024 + (i % 60000) as u16,
    );
    let opts = [
        TcpOption::Mss(1460),
        TcpOption::SackPermitted,
        TcpOption::Timestamps { tsval: i, tsecr: 0 },
        TcpOption::Nop,
        TcpOption::WindowScale(7),
        TcpOption::Mptcp(MptcpOption::MpCapable(mptcp_tools::dissect::options::MpCapable {
            version: 1,
            flags: mptcp_tools::dissect::options::MpCapable::FLAG_HMAC_SHA,
            ..Default::default()
        })),
    ];
    segment(src, to, i.wrapping_mul(2654435761), 0, flags::SYN, &opts, &[])
}

/// Transfer `up` from the client and `down` from the server over `p`,
/// both closing after their data; returns what each side read.
fn exchange(p: &mut Pair, up: &[u8], down: &[u8], limit: Instant) -> (Vec<u8>, Vec<u8>) {
    let h = p.c.connect(p.now, None, "10.0.1.2:80".parse().unwrap()).unwrap();
    let (mut sent_up, mut sent_down, mut closed_down) = (0, 0, false);
    let (mut got_s, mut got_c) = (Vec::new(), Vec::new());
    let mut b = vec![0u8; 65536];
    p.run_with(limit, |p| {
        if sent_up < up.len() {
            sent_up += p.c.send(h, &up[sent_up..]).unwrap_or(0);
            if sent_up == up.len() {
                p.c.close(h).unwrap();
            }
        }
        while let Ok(Some(n)) = p.c.recv(h, &mut b) {
            got_c.extend_from_slice(&b[..n]);
        }
        if let Some(sh) = p.accepted() {
            if sent_down < down.len() {
                sent_down += p.s.send(sh, &down[sent_down..]).unwrap_or(0);
            }
            if sent_down == down.len() && !closed_down {
                closed_down = true;
                p.s.close(sh).unwrap();
            }
            while let Ok(Some(n)) = p.s.recv(sh, &mut b) {
                got_s.extend_from_slice(&b[..n]);
            }
        }
    });
    (got_s, got_c)
}

fn data(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(seed) >> 7) as u8).collect()
}

/// With no room in the SYN queue every SYN is answered with a cookie, and
/// an MPTCP connection rebuilt from one works as any other: both keys
/// checked, options (MSS, window scale, SACK, timestamps) kept, data both
/// ways, a clean close; with DSS checksums too.
#[test]
fn syn_cookie_connection_carries_data_both_ways() {
    for checksum in [false, true] {
        let mut cfg = Config { syn_backlog: 0, ..Config::default() };
        cfg.checksum = checksum;
        let mut p = Pair::v4(cfg);
        let (up, down) = (data(500_000, 7), data(300_000, 13));
        let (got_s, got_c) = exchange(&mut p, &up, &down, Instant::from_secs(20));
        assert!(
            got_s == up && got_c == down,
            "checksum {checksum}: {} of {}, {} of {}",
            got_s.len(),
            up.len(),
            got_c.len(),
            down.len()
        );
        let m = p.s.mib();
        assert_eq!(m.by_name("TcpExtSyncookiesSent"), Some(1), "{:?}", m.nonzero());
        assert_eq!(m.by_name("TcpExtSyncookiesRecv"), Some(1));
        assert_eq!(m.by_name("TcpExtSyncookiesFailed"), Some(0));
        assert_eq!(m.by_name("MPTcpExtMPCapableSYNRX"), Some(1));
        assert_eq!(m.by_name("MPTcpExtMPCapableACKRX"), Some(1));
        assert_eq!(m.by_name("MPTcpExtMPCapableFallbackACK"), Some(0));
        let sh = p.accepted().unwrap();
        let snap = p.s.conn_snapshot(sh, p.now).unwrap();
        assert!(!snap.fallback && snap.csum_enabled == Some(checksum), "{snap:?}");
        // The SYN/ACK had every option the SYN asked for, and the
        // connection kept them: SACK blocks and timestamps in use.
        let synack = p.log.iter().find(|(c, pk)| !c && wire::parse(pk, true).unwrap().has(flags::SYN)).unwrap();
        let sa = wire::parse(&synack.1, true).unwrap();
        assert!(sa.opts.sack_permitted && sa.opts.timestamps.is_some() && sa.opts.wscale.is_some());
        assert_eq!(sa.opts.mss, Some(1460));
        let later = p.log.iter().rev().find(|(c, _)| !c).unwrap();
        assert!(wire::parse(&later.1, true).unwrap().opts.timestamps.is_some());
        assert!(
            p.events
                .iter()
                .any(|(c, e)| !c && matches!(e, Event::Closed { reason: mptcp_tools::stack::CloseReason::Normal, .. }))
        );
    }
}

/// An ACK with a forged cookie, or a valid cookie whose MP_CAPABLE does
/// not echo the key our SYN/ACK carried, is refused with a RST and builds
/// nothing.
#[test]
fn forged_cookies_are_refused() {
    let cfg = Config { syn_backlog: 0, ..Config::default() };
    let mut p = Pair::v4(cfg);
    let srv: SocketAddr = "10.0.1.2:80".parse().unwrap();
    let syn = spoofed_syn(1, srv);
    p.s.handle_packet(p.now, &syn);
    p.flush();
    let synack = p.log.iter().rev().find(|(c, _)| !c).unwrap().1.clone();
    let sa = wire::parse(&synack, true).unwrap();
    let Some(MptcpOption::MpCapable(m)) = sa.opts.mptcp().next().copied() else { panic!("no MP_CAPABLE") };
    let their_key = m.sender_key.unwrap();
    let ack = |ack: u32, recv_key: u64| {
        let mpc = mptcp_tools::dissect::options::MpCapable {
            version: 1,
            flags: mptcp_tools::dissect::options::MpCapable::FLAG_HMAC_SHA,
            sender_key: Some(0x1122334455667788),
            receiver_key: Some(recv_key),
            ..Default::default()
        };
        let opts = [TcpOption::Mptcp(MptcpOption::MpCapable(mpc))];
        segment(sa.dst, srv, sa.ack.0, ack, flags::ACK, &opts, &[])
    };
    p.s.handle_packet(p.now, &ack(sa.seq.0.wrapping_add(2), their_key));
    p.s.handle_packet(p.now, &ack(sa.seq.0.wrapping_add(1), their_key ^ 1));
    assert_eq!(p.s.mib().by_name("TcpExtSyncookiesFailed"), Some(2));
    assert_eq!(p.s.stats().connections, 0);
    let rsts = p.s.stats().stateless_queued;
    assert_eq!(rsts, 2, "each refused with a RST");
    // The right one builds the connection.
    p.s.handle_packet(p.now, &ack(sa.seq.0.wrapping_add(1), their_key));
    assert_eq!(p.s.mib().by_name("TcpExtSyncookiesRecv"), Some(1));
    assert_eq!(p.s.stats().connections, 1);
    assert_eq!(p.s.mib().by_name("MPTcpExtMPCapableACKRX"), Some(1));
}

/// 30,000 spoofed MP_CAPABLE SYNs: the SYN queue stays at its bound, the
/// rest are answered with cookies and cost nothing; a real client
/// connecting in the middle of the flood is served (its SYN gets a
/// cookie); once the half-open connections time out, all of them are
/// freed.
#[test]
fn syn_flood_leaves_bounded_state_and_serves_a_real_client() {
    let cfg = Config::default();
    let backlog = cfg.syn_backlog;
    let mut p = Pair::v4(cfg);
    p.keep = to_real_hosts;
    let srv: SocketAddr = "10.0.1.2:80".parse().unwrap();
    let mut max = mptcp_tools::stack::endpoint::EndpointStats::default();
    for i in 0..15_000 {
        p.s.handle_packet(p.now, &spoofed_syn(i, srv));
        if i % 100 == 0 {
            p.flush();
        }
    }
    let st = p.s.stats();
    assert_eq!(st.half_open, backlog, "{st:?}");
    max.connections = st.connections;
    // A real client in the middle of the flood.
    let (up, down) = (data(200_000, 3), data(100_000, 5));
    let mut flood = 15_000u32;
    let (mut sent, mut got_s, mut got_c) = (0, Vec::new(), Vec::new());
    let h = p.c.connect(p.now, None, srv).unwrap();
    let mut b = vec![0u8; 65536];
    let mut server_sent = 0;
    p.run_with(Instant::from_secs(10), |p| {
        for _ in 0..1000 {
            if flood < 30_000 {
                p.s.handle_packet(p.now, &spoofed_syn(flood, srv));
                flood += 1;
            }
        }
        let st = p.s.stats();
        max.connections = max.connections.max(st.connections);
        max.half_open = max.half_open.max(st.half_open);
        max.stateless_queued = max.stateless_queued.max(st.stateless_queued);
        if sent < up.len() {
            sent += p.c.send(h, &up[sent..]).unwrap_or(0);
            if sent == up.len() {
                p.c.close(h).unwrap();
            }
        }
        while let Ok(Some(n)) = p.c.recv(h, &mut b) {
            got_c.extend_from_slice(&b[..n]);
        }
        if let Some(sh) = p.accepted() {
            if server_sent < down.len() {
                server_sent += p.s.send(sh, &down[server_sent..]).unwrap_or(0);
                if server_sent == down.len() {
                    p.s.close(sh).unwrap();
                }
            }
            while let Ok(Some(n)) = p.s.recv(sh, &mut b) {
                got_s.extend_from_slice(&b[..n]);
            }
        }
    });
    assert_eq!(flood, 30_000);
    assert!(
        got_s == up && got_c == down,
        "served during the flood: {} of {}, {} of {}",
        got_s.len(),
        up.len(),
        got_c.len(),
        down.len()
    );
    let m = p.s.mib();
    assert!(m.by_name("TcpExtSyncookiesSent").unwrap() >= 29_000, "{:?}", m.nonzero());
    assert_eq!(m.by_name("TcpExtSyncookiesRecv"), Some(1), "the real client came through a cookie");
    assert!(max.half_open <= backlog && max.connections <= backlog + 1, "{max:?}");
    assert!(max.stateless_queued <= 1024, "{max:?}");
    let sh = p.accepted().unwrap();
    assert!(p.s.conn_snapshot(sh, p.now).is_some_and(|s| !s.fallback));
    // The half-open ones time out (SYN/ACK retransmissions) and are freed,
    // not kept as CLOSED connections nobody releases.
    p.s.release(sh);
    p.c.release(h);
    p.run(Instant::from_secs(400));
    let st = p.s.stats();
    assert_eq!((st.connections, st.half_open, st.tuples, st.tokens), (0, 0, 0, 0), "{st:?}");
    assert!(
        !p.events.iter().any(|(c, e)| !c && matches!(e, Event::Closed { conn, .. } if *conn != sh)),
        "no event for connections the application never saw"
    );
}

/// Cookies off: a full SYN queue drops SYNs (the peer retries), counted.
#[test]
fn full_syn_queue_without_cookies_drops() {
    let cfg = Config { syn_backlog: 4, syn_cookies: false, ..Config::default() };
    let mut p = Pair::v4(cfg);
    let srv: SocketAddr = "10.0.1.2:80".parse().unwrap();
    for i in 0..10 {
        p.s.handle_packet(p.now, &spoofed_syn(i, srv));
    }
    assert_eq!(p.s.stats().half_open, 4);
    assert_eq!(p.s.mib().by_name("TcpExtTCPReqQFullDrop"), Some(6));
    assert_eq!(p.s.mib().by_name("TcpExtSyncookiesSent"), Some(0));
}
