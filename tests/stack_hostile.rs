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
                self.wire.push_back((self.now + self.delay, client, p));
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
