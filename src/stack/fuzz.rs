//! Feeds arbitrary network input to a listening embedded stack, as the TUN
//! driver would: the harness of the `stack_script` fuzz target
//! (fuzz/fuzz_targets/stack_script.rs) and of the proptest in
//! tests/cat_fuzz.rs. The property: nothing the network sends makes the
//! stack panic, loop, or emit a packet our own parser rejects.
//!
//! The input is a script. A valid peer first opens an MPTCP connection to
//! the listener (SYN with MP_CAPABLE v1, then the third ACK with both keys),
//! so the fuzzed segments reach an established connection and not only the
//! RST path; then each operation takes the next bytes of the input:
//!
//! - `0`: a raw IP packet (the next `len` bytes, as they are);
//! - `1`: a segment of the connection's subflow with fuzzed flags, sequence
//!   and acknowledgment offsets, window, raw TCP option bytes and payload;
//! - `2`: a data segment with a DSS option (fuzzed DSN offset, subflow
//!   offset, length, DATA_ACK, DATA_FIN);
//! - `3`: an MP_JOIN SYN from the peer's second address (right or wrong
//!   token), then its third ACK with a right or wrong HMAC;
//! - `4`: time passes (up to 25.5 s) and the timers run;
//! - `5`: the application reads, writes, closes or aborts;
//! - `6`: a segment carrying one structured MPTCP option (ADD_ADDR,
//!   REMOVE_ADDR, MP_PRIO, MP_FAIL, MP_FASTCLOSE, MP_TCPRST) with fuzzed fields.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::dissect::crypto::{self, Key, Version};
use crate::dissect::options::{
    AddAddr, Dss, DssMapping, MpCapable, MpFail, MpFastclose, MpJoin, MpPrio, MpTcpRst, MptcpOption, RawBytes,
    RemoveAddr, TcpOption, WireSeq,
};
use crate::seq::SubflowSeq;
use crate::stack::time::{Duration, Instant};
use crate::stack::wire::{self, SegmentRepr, flags};
use crate::stack::{AddrFlags, Config, ConnHandle, Endpoint, Event};

const PEER_KEY: u64 = 0x0123_4567_89ab_cdef;
/// More packets than this from one drain is a runaway.
const MAX_DRAIN: usize = 100_000;

/// A cursor over the fuzz input.
struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    fn u8(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes([self.u8()?, self.u8()?, self.u8()?, self.u8()?]))
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let end = (self.pos + n).min(self.data.len());
        let s = &self.data[self.pos..end];
        self.pos = end;
        s
    }
}

/// The peer's view of the connection.
struct Peer {
    us: SocketAddr,
    peer: SocketAddr,
    peer2: SocketAddr,
    /// Next sequence number the peer sends / the stack's next one.
    snd_nxt: SubflowSeq,
    rcv_nxt: SubflowSeq,
    iss: SubflowSeq,
    our_key: u64,
    peer_dsn: u64,
    conn: Option<ConnHandle>,
    outcome: Outcome,
}

/// How far a run got (for tests that the harness exercises the connection).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The listener accepted the peer's MPTCP connection.
    pub accepted: bool,
    /// Application bytes the stack delivered to `recv`.
    pub delivered: u64,
    /// Packets the stack sent.
    pub packets_out: u64,
}

/// Run the stack on `data` (see the module documentation). Panics only when
/// the stack misbehaves.
pub fn run(data: &[u8]) -> Outcome {
    // Small buffers: cheaper runs, and the window edges are within reach.
    let cfg = Config { offload_checksums: true, send_buffer: 64 << 10, recv_buffer: 64 << 10, ..Config::default() };
    let mut ep = Endpoint::new(cfg, 7);
    let us_ip = IpAddr::V4(Ipv4Addr::new(10, 200, 0, 2));
    ep.add_address(us_ip, AddrFlags::default()).expect("address");
    ep.add_address(IpAddr::V4(Ipv4Addr::new(10, 201, 0, 2)), AddrFlags { signal: true, ..Default::default() })
        .expect("address");
    ep.listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5000)).expect("listen");
    let mut now = Instant::from_secs(1);
    let mut out = vec![0u8; 65_536];
    let mut p = Peer {
        us: SocketAddr::new(us_ip, 5000),
        peer: "10.200.0.1:40000".parse().expect("addr"),
        peer2: "10.201.0.1:40001".parse().expect("addr"),
        snd_nxt: SubflowSeq(1000),
        rcv_nxt: SubflowSeq(0),
        iss: SubflowSeq(1000),
        our_key: 0,
        outcome: Outcome::default(),
        peer_dsn: crypto::Key(PEER_KEY).idsn(Version::V1).0.wrapping_add(1),
        conn: None,
    };
    // The handshake: SYN with MP_CAPABLE.
    let syn_opts = [
        TcpOption::Mss(1460),
        TcpOption::SackPermitted,
        TcpOption::Timestamps { tsval: 1, tsecr: 0 },
        TcpOption::WindowScale(7),
        TcpOption::Mptcp(MptcpOption::MpCapable(MpCapable {
            version: 1,
            flags: MpCapable::FLAG_HMAC_SHA,
            sender_key: None,
            receiver_key: None,
            data_len: None,
            checksum: None,
        })),
    ];
    send(&mut ep, now, &p, p.peer, p.snd_nxt, SubflowSeq(0), flags::SYN, &syn_opts, &[]);
    p.snd_nxt += 1u32;
    drain(&mut ep, now, &mut out, &mut p);
    let ack_opts = [
        TcpOption::Timestamps { tsval: 2, tsecr: 0 },
        TcpOption::Mptcp(MptcpOption::MpCapable(MpCapable {
            version: 1,
            flags: MpCapable::FLAG_HMAC_SHA,
            sender_key: Some(PEER_KEY),
            receiver_key: Some(p.our_key),
            data_len: None,
            checksum: None,
        })),
    ];
    send(&mut ep, now, &p, p.peer, p.snd_nxt, p.rcv_nxt, flags::ACK, &ack_opts, &[]);
    drain(&mut ep, now, &mut out, &mut p);

    let mut inp = Input { data, pos: 0 };
    let mut join_nonce = 1u32;
    while let Some(op) = inp.u8() {
        match op % 7 {
            0 => {
                let len = inp.u16().unwrap_or(0) as usize % 2048;
                let pkt = inp.bytes(len).to_vec();
                ep.handle_packet(now, &pkt);
            }
            1 => {
                let (Some(fl), Some(ds), Some(da), Some(win), Some(ol), Some(pl)) =
                    (inp.u8(), inp.u16(), inp.u16(), inp.u16(), inp.u8(), inp.u16())
                else {
                    break;
                };
                let opts = inp.bytes(usize::from(ol) % 41).to_vec();
                let payload = inp.bytes(usize::from(pl) % 4096).to_vec();
                let seq = p.snd_nxt + (ds as i16 as i32 as u32);
                let ack = p.rcv_nxt + (da as i16 as i32 as u32);
                let pkt = raw_segment(p.peer, p.us, seq, ack, fl, win, &opts, &payload);
                ep.handle_packet(now, &pkt);
                if fl & flags::RST == 0 && ds == 0 {
                    p.snd_nxt += payload.len() as u32;
                }
            }
            2 => {
                let (Some(dd), Some(sd), Some(len), Some(ack_d), Some(fl)) =
                    (inp.u16(), inp.u16(), inp.u16(), inp.u32(), inp.u8())
                else {
                    break;
                };
                let len = usize::from(len) % 3000;
                let payload = inp.bytes(len).to_vec();
                let dsn = p.peer_dsn.wrapping_add(dd as i16 as i64 as u64);
                let ssn = p.snd_nxt.0.wrapping_sub(p.irs_of_peer()).wrapping_add(sd as i16 as i32 as u32);
                let dss = Dss {
                    data_fin: fl & 1 != 0,
                    data_ack: (fl & 2 != 0).then_some(WireSeq::U64(u64::from(ack_d))),
                    mapping: (fl & 4 == 0).then_some(DssMapping {
                        dsn: if fl & 8 != 0 { WireSeq::U32(dsn as u32) } else { WireSeq::U64(dsn) },
                        ssn,
                        data_len: (payload.len() as u16).wrapping_add(u16::from(fl & 0x10 != 0)),
                        checksum: None,
                    }),
                };
                let opts = [TcpOption::Mptcp(MptcpOption::Dss(dss))];
                send(&mut ep, now, &p, p.peer, p.snd_nxt, p.rcv_nxt, flags::ACK, &opts, &payload);
                if sd == 0 {
                    p.snd_nxt += payload.len() as u32;
                }
                if dd == 0 {
                    p.peer_dsn = p.peer_dsn.wrapping_add(payload.len() as u64);
                }
            }
            3 => {
                let (Some(fl), Some(tok)) = (inp.u8(), inp.u32()) else { break };
                let our_token = Key(p.our_key).token(Version::V1).0;
                let token = if fl & 1 != 0 { tok } else { our_token };
                join_nonce = join_nonce.wrapping_add(1);
                let opts = [TcpOption::Mptcp(MptcpOption::MpJoin(MpJoin::Syn {
                    backup: fl & 2 != 0,
                    addr_id: fl >> 4,
                    token,
                    nonce: join_nonce,
                }))];
                let port = 40001 + u16::from(fl >> 2 & 3);
                let src = SocketAddr::new(p.peer2.ip(), port);
                send(&mut ep, now, &p, src, SubflowSeq(5000), SubflowSeq(0), flags::SYN, &opts, &[]);
                let synack = drain(&mut ep, now, &mut out, &mut p);
                if let Some((their_iss, their_nonce)) = synack {
                    let hmac =
                        crypto::join_ack_hmac(Version::V1, Key(PEER_KEY), Key(p.our_key), join_nonce, their_nonce);
                    let mut h = hmac;
                    if fl & 0x08 != 0 {
                        h[0] ^= 0xff;
                    }
                    let opts = [TcpOption::Mptcp(MptcpOption::MpJoin(MpJoin::Ack { hmac: h }))];
                    send(&mut ep, now, &p, src, SubflowSeq(5001), their_iss + 1u32, flags::ACK, &opts, &[]);
                }
            }
            4 => {
                let d = inp.u8().unwrap_or(0);
                now += Duration::from_millis(u64::from(d) * 100);
                ep.handle_timeout(now);
            }
            5 => {
                let what = inp.u8().unwrap_or(0);
                if let Some(h) = p.conn {
                    match what % 4 {
                        0 => {
                            let mut buf = [0u8; 8192];
                            while let Ok(Some(n)) = ep.recv(h, &mut buf) {
                                if n == 0 {
                                    break;
                                }
                                p.outcome.delivered += n as u64;
                            }
                        }
                        1 => {
                            let n = usize::from(what) * 64;
                            let _ = ep.send(h, &vec![0x5a; n]);
                        }
                        2 => {
                            let _ = ep.close(h);
                        }
                        _ => {
                            let _ = ep.abort(h);
                        }
                    }
                }
            }
            _ => {
                let (Some(kind), Some(a), Some(b)) = (inp.u8(), inp.u32(), inp.u32()) else { break };
                let o = match kind % 6 {
                    0 => MptcpOption::AddAddr(AddAddr {
                        v0: false,
                        echo: kind & 0x10 != 0,
                        addr_id: a as u8,
                        addr: IpAddr::V4(Ipv4Addr::from(b)),
                        port: (kind & 0x20 != 0).then_some((a >> 8) as u16),
                        hmac: (kind & 0x10 == 0).then_some(u64::from(a) << 32 | u64::from(b)),
                    }),
                    1 => MptcpOption::RemoveAddr(RemoveAddr {
                        addr_ids: RawBytes::new(&a.to_be_bytes()[..(b % 4 + 1) as usize]),
                    }),
                    2 => MptcpOption::MpPrio(MpPrio { backup: a & 1 != 0, addr_id: None }),
                    3 => MptcpOption::MpFail(MpFail { dsn: u64::from(a) << 32 | u64::from(b) }),
                    4 => MptcpOption::MpFastclose(MpFastclose {
                        receiver_key: if a & 1 != 0 { p.our_key } else { u64::from(b) },
                    }),
                    _ => MptcpOption::MpTcpRst(MpTcpRst { flags: (a & 0xf) as u8, reason: b as u8 }),
                };
                let fl = if kind & 0x40 != 0 { flags::RST | flags::ACK } else { flags::ACK };
                let opts = [TcpOption::Mptcp(o)];
                send(&mut ep, now, &p, p.peer, p.snd_nxt, p.rcv_nxt, fl, &opts, &[]);
            }
        }
        drain(&mut ep, now, &mut out, &mut p);
    }
    // Let every timer run out: the stack must come to rest.
    for _ in 0..64 {
        let Some(t) = ep.poll_timeout() else { break };
        now = now.max(t);
        ep.handle_timeout(now);
        drain(&mut ep, now, &mut out, &mut p);
    }
    p.outcome
}

impl Peer {
    /// The peer's initial sequence number (its SYN's).
    fn irs_of_peer(&self) -> u32 {
        self.iss.0
    }
}

#[allow(clippy::too_many_arguments)]
fn send(
    ep: &mut Endpoint,
    now: Instant,
    p: &Peer,
    src: SocketAddr,
    seq: SubflowSeq,
    ack: SubflowSeq,
    fl: u8,
    opts: &[TcpOption],
    payload: &[u8],
) {
    let repr = SegmentRepr { src, dst: p.us, seq, ack, flags: fl, window: 65535, options: opts };
    let mut buf = vec![0u8; wire::header_len(src, opts) + payload.len()];
    // The fuzzer builds options from arbitrary input: what cannot be
    // written (over 40 bytes of options) is not sent.
    if let Ok(n) = wire::emit(&repr, payload.len(), &mut buf, true, |b| b.copy_from_slice(payload)) {
        ep.handle_packet(now, &buf[..n]);
    }
}

/// An IPv4 packet with raw TCP option bytes (padded to a multiple of 4).
#[allow(clippy::too_many_arguments)]
fn raw_segment(
    src: SocketAddr,
    dst: SocketAddr,
    seq: SubflowSeq,
    ack: SubflowSeq,
    fl: u8,
    win: u16,
    opts: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let olen = opts.len().div_ceil(4) * 4;
    let tcp_len = 20 + olen;
    let total = 20 + tcp_len + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total.min(65535) as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    if let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) {
        p[12..16].copy_from_slice(&s.octets());
        p[16..20].copy_from_slice(&d.octets());
    }
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&src.port().to_be_bytes());
    t[2..4].copy_from_slice(&dst.port().to_be_bytes());
    t[4..8].copy_from_slice(&seq.0.to_be_bytes());
    t[8..12].copy_from_slice(&ack.0.to_be_bytes());
    t[12] = ((tcp_len / 4) as u8) << 4;
    t[13] = fl;
    t[14..16].copy_from_slice(&win.to_be_bytes());
    t[20..20 + opts.len()].copy_from_slice(opts);
    t[tcp_len..].copy_from_slice(payload);
    p
}

/// Drain events and packets; learn the handshake values from what the stack
/// sends. Returns a join SYN/ACK's (ISN, nonce) if one went out.
fn drain(ep: &mut Endpoint, now: Instant, out: &mut [u8], p: &mut Peer) -> Option<(SubflowSeq, u32)> {
    let mut synack = None;
    for _ in 0..4 {
        while let Some(ev) = ep.poll_event() {
            if let Event::Accepted { conn, .. } = ev {
                p.conn.get_or_insert(conn);
                p.outcome.accepted = true;
            }
            if let Event::Closed { conn, .. } = ev {
                ep.release(conn);
                if p.conn == Some(conn) {
                    p.conn = None;
                }
            }
        }
        let mut n = 0;
        while let Some(t) = ep.poll_transmit(now, out) {
            n += 1;
            p.outcome.packets_out += 1;
            assert!(n < MAX_DRAIN, "the stack keeps sending: {n} packets in one drain");
            assert!(t.len <= out.len(), "transmit longer than the buffer");
            let seg = wire::parse(&out[..t.len], false)
                .unwrap_or_else(|e| panic!("the stack emitted a packet its own parser rejects: {e}"));
            assert_eq!((seg.src, seg.dst), (t.src, t.dst), "Transmit addresses differ from the packet's");
            assert!(!seg.opts.mptcp_malformed, "the stack emitted a malformed MPTCP option");
            if seg.dst == p.peer && seg.has(flags::SYN) && seg.has(flags::ACK) {
                p.rcv_nxt = seg.seq + 1u32;
                for o in seg.opts.mptcp() {
                    if let MptcpOption::MpCapable(m) = o {
                        if let Some(k) = m.sender_key {
                            p.our_key = k;
                        }
                    }
                }
            } else if seg.dst == p.peer {
                let end = seg.seq + seg.payload.len() as u32;
                if end > p.rcv_nxt {
                    p.rcv_nxt = end;
                }
            }
            if seg.dst.ip() == p.peer2.ip() && seg.has(flags::SYN) {
                for o in seg.opts.mptcp() {
                    if let MptcpOption::MpJoin(MpJoin::SynAck { nonce, .. }) = o {
                        synack = Some((seg.seq, *nonce));
                    }
                }
            }
        }
    }
    synack
}
