//! One MPTCP connection (RFC 8684) and its subflows.
//!
//! Data lives at the connection level in two rings indexed by data sequence
//! number; subflows carry mappings onto them. This module builds every
//! segment the connection sends (options through the dissector's codec) and
//! takes every segment its subflows receive, after [`Tcb`] did the TCP part.
//!
//! The surface (`connect`/`accept`, `on_segment`, `handle_timeout`,
//! `next_timeout`, `poll_transmit`, and the commands) is here; each part
//! with rules of its own has a room:
//! - `handshake`: SYN-SENT / SYN-RECEIVED, MP_CAPABLE keys, MP_JOIN checks;
//! - `pm`: the path manager (addresses, ADD_ADDR / REMOVE_ADDR, joins, limits);
//! - `send`: send ring, scheduler, new mappings, reinjection, persist;
//! - `recv`: mappings received, reassembly, checksums, DATA_ACK, window;
//! - `fail`: MP_FAIL and fallback to TCP;
//! - `close`: DATA_FIN, MP_FASTCLOSE, the end of the connection;
//! - `emit`: the segment builders (option budget, codec);
//! - `timer`: the connection's timer table and its one backoff rule;
//! - `stats`: state names, snapshots, counters of dropped subflows.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use rand_chacha::ChaCha20Rng;
use rand_core::Rng;

use super::buf::{Pool, Slice};
use super::mib::{Counter, Mib};
use super::optlist::OptList;
use super::ring::{RxRing, TxRing};
use super::scheduler::{Pick, Scheduler, SubflowView};
use super::tcp::{Dropped, SegmentOutcome, TcbParams, TcpState, TxMap, TxSeg};
use super::time::{Duration, Instant};
use super::wire::{self, Segment, SegmentRepr, flags};
use super::{AddrFlags, CloseReason, Config, ConnHandle, Event, FallbackReason, StackError, SubflowInfo};
use crate::dissect::crypto::{self, Key, Version, add_addr_hmac, join_ack_hmac, join_synack_hmac};
use crate::dissect::options::{
    AddAddr, Dss, DssMapping, MpCapable, MpFail, MpFastclose, MpJoin, MpPrio, MpTcpRst, MptcpOption, RawBytes,
    RemoveAddr, TcpOption, WireSeq,
};
use crate::seq::{DataSeq, SubflowSeq};
use crate::snapshot::{ConnSnapshot, SubflowSnapshot, subflow_flags, token_hex};

pub(crate) use super::tcp::Tcb;

mod close;
mod emit;
mod fail;
mod handshake;
mod pm;
mod recv;
mod send;
mod stats;
#[cfg(test)]
mod test_util;
mod timer;

use close::Fin;
pub(crate) use emit::{CookieSynAck, emit_cookie_synack, emit_rst};
use fail::{Fail, MP_FAIL_TRIES};
use pm::{Pm, REMOVE_ADDR_IDS_PER_ACK};
use recv::{CsumStage, RecvSide, RxMap};
use send::SendSide;
use stats::Stats;
use timer::{Timer, TimerTable};

/// MP_TCPRST reason codes (RFC 8684 §3.6).
pub mod rst_reason {
    pub const UNSPECIFIED: u8 = 0;
    pub const MPTCP_ERROR: u8 = 1;
    pub const PROHIBITED: u8 = 3;
    pub const MIDDLEBOX: u8 = 6;
}

/// A local address and its flags.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LocalAddr {
    pub id: u8,
    pub addr: IpAddr,
    pub flags: AddrFlags,
}

/// A RST to send after the state is gone (stateless answers, refused
/// joins, aborted subflows).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RstOut {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: SubflowSeq,
    pub ack: Option<SubflowSeq>,
    pub tcprst: Option<u8>,
    pub fastclose: Option<u64>,
    /// MP_FAIL with this DSN (RFC 8684 §3.7: a checksum failure on a
    /// subflow that cannot fall back).
    pub mp_fail: Option<u64>,
}

impl RstOut {
    /// RFC 9293 §3.10.7.1: the RST answering `seg`: at its ACK number when it
    /// has one, else at 0 acknowledging everything it occupies.
    pub fn reply(seg: &Segment<'_>, tcprst: Option<u8>) -> RstOut {
        let (seq, ack) =
            if seg.has(flags::ACK) { (seg.ack, None) } else { (SubflowSeq(0), Some(seg.seq + seg.seq_len())) };
        RstOut { src: seg.dst, dst: seg.src, seq, ack, tcprst, fastclose: None, mp_fail: None }
    }

    /// A RST on an open subflow, in its sequence space, with no MPTCP option.
    fn on(tcb: &super::tcp::Tcb) -> RstOut {
        RstOut {
            src: tcb.local,
            dst: tcb.remote,
            seq: tcb.seq_for_ack(),
            ack: Some(tcb.rcv_nxt),
            tcprst: None,
            fastclose: None,
            mp_fail: None,
        }
    }
}

/// What a connection needs from its endpoint while it works.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a Config,
    pub mib: &'a mut Mib,
    pub events: &'a mut VecDeque<Event>,
    pub rng: &'a mut ChaCha20Rng,
    /// The endpoint's 4-tuple table, read only: changes go through
    /// `endpoint_events`.
    pub tuples: &'a std::collections::HashMap<(SocketAddr, SocketAddr), (usize, u32)>,
    /// What the connection asks of the endpoint's tables, applied in order
    /// by the endpoint when the call returns.
    pub endpoint_events: &'a mut Vec<EndpointEvent>,
    pub rsts: &'a mut VecDeque<RstOut>,
    pub addrs: &'a [LocalAddr],
    pub isn_secret: &'a [u8; 16],
    /// The endpoint's buffer memory, for the connection's rings.
    pub pool: &'a Pool,
    pub tcb_params: TcbParams,
}

/// A change a connection asks of the endpoint's demultiplexing tables (as
/// quinn-proto's `EndpointEvent`): the connection never edits them itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EndpointEvent {
    /// Segments to this (local, remote) 4-tuple go to subflow `subflow`.
    NewTuple { local: SocketAddr, remote: SocketAddr, subflow: u32 },
    /// The subflow of this 4-tuple is gone: it routes nowhere any more.
    RetiredTuple { local: SocketAddr, remote: SocketAddr },
    /// Joins (MP_JOIN SYNs) with this token belong to the connection.
    NewToken(u32),
}

impl Ctx<'_> {
    /// Whether the 4-tuple routes to a subflow, counting the changes asked
    /// for during this call (the last one for the tuple decides).
    pub fn tuple_in_use(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        let pending = self.endpoint_events.iter().rev().find_map(|e| match *e {
            EndpointEvent::NewTuple { local: l, remote: r, .. } if (l, r) == (local, remote) => Some(true),
            EndpointEvent::RetiredTuple { local: l, remote: r } if (l, r) == (local, remote) => Some(false),
            _ => None,
        });
        pending.unwrap_or_else(|| self.tuples.contains_key(&(local, remote)))
    }

    /// An RFC 6528 initial sequence number: a 4 µs clock plus a keyed hash
    /// of the 4-tuple.
    pub fn isn(&self, now: Instant, local: SocketAddr, remote: SocketAddr) -> SubflowSeq {
        isn(self.isn_secret, now, local, remote)
    }
}

pub(crate) fn isn(secret: &[u8; 16], now: Instant, local: SocketAddr, remote: SocketAddr) -> SubflowSeq {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(secret);
    for a in [local, remote] {
        match a.ip() {
            IpAddr::V4(v) => h.update(v.octets()),
            IpAddr::V6(v) => h.update(v.octets()),
        }
        h.update(a.port().to_be_bytes());
    }
    let d = h.finalize();
    let f = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    SubflowSeq(f.wrapping_add((now.as_micros() / 4) as u32))
}

/// How a passive connection starts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Passive {
    /// From a SYN: our ISN, timestamp offset and key drawn now.
    Fresh,
    /// From the ACK of a SYN/ACK sent statelessly (a SYN cookie): ISN,
    /// timestamp offset and key are those the SYN/ACK carried.
    Cookie { iss: SubflowSeq, ts_offset: u32, key: Key },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    Server,
}

#[derive(Clone, Copy, Debug)]
struct JoinState {
    local_nonce: u32,
    remote_nonce: u32,
    /// Initiator: our third ACK must be acknowledged before data flows
    /// (RFC 8684 §3.2).
    ack_pending: bool,
    /// Initiator: the third ACK must be (re)sent.
    ack_due: bool,
}

/// Segments [`Connection::poll_transmit`] skips when they cannot be
/// written before it gives up for this call.
const MAX_EMIT_FAILURES: usize = 8;

#[derive(Debug)]
pub(crate) struct Subflow {
    pub id: u32,
    pub tcb: Tcb,
    pub local_id: u8,
    pub remote_id: u8,
    pub initial: bool,
    join: Option<JoinState>,
    pub mpc: bool,
    pub mpc_requested: bool,
    pub joined: bool,
    pub join_requested: bool,
    pub backup_loc: bool,
    pub backup_rem: bool,
    /// May carry data at the MPTCP level.
    pub ready: bool,
    pub stale: bool,
    /// We asked this subflow to close (FIN), or it is being torn down.
    pub closing: bool,
    rx_maps: VecDeque<RxMap>,
    cur_map: Option<RxMap>,
    redundant: VecDeque<(DataSeq, u32)>,
    pending_prio: Option<bool>,
    pub bytes_reinjected: u64,
    pub data_bytes_sent: u64,
    pub data_bytes_received: u64,
    up_reported: bool,
    pub down: Option<CloseReason>,
    stage: Option<CsumStage>,
    /// The third ACK of the handshake is sent on its own first, as Linux does.
    hs_ack_due: bool,
    /// Bytes of data-acked segments the send ring could not keep (stale subflow).
    spill: Vec<(DataSeq, Slice)>,
}

impl Subflow {
    fn new(id: u32, tcb: Tcb, initial: bool) -> Subflow {
        Subflow {
            id,
            tcb,
            local_id: 0,
            remote_id: 0,
            initial,
            join: None,
            mpc: false,
            mpc_requested: false,
            joined: false,
            join_requested: false,
            backup_loc: false,
            backup_rem: false,
            ready: false,
            stale: false,
            closing: false,
            rx_maps: VecDeque::new(),
            cur_map: None,
            redundant: VecDeque::new(),
            pending_prio: None,
            bytes_reinjected: 0,
            data_bytes_sent: 0,
            data_bytes_received: 0,
            up_reported: false,
            down: None,
            stage: None,
            hs_ack_due: false,
            spill: Vec::new(),
        }
    }

    pub fn info(&self) -> SubflowInfo {
        SubflowInfo {
            id: self.id,
            local: self.tcb.local,
            remote: self.tcb.remote,
            local_id: self.local_id,
            remote_id: self.remote_id,
            backup: self.backup_loc || self.backup_rem,
            join: !self.initial,
        }
    }

    pub fn alive(&self) -> bool {
        self.down.is_none() && self.tcb.state != TcpState::Closed
    }
}

/// Where an outgoing segment goes: its headers into `buf`, its payload
/// copied after them, or, with `by_ref`, handed over in `payload` (a slice
/// of the send buffer: the zero-copy path).
pub(crate) struct TxOut<'a> {
    pub buf: &'a mut [u8],
    pub by_ref: bool,
    pub payload: Option<Slice>,
}

/// A segment written into a [`TxOut`]: its length, source and
/// destination; or why it could not be (then it counts as lost on the
/// wire, and the timers send it again).
type Tx = Result<(usize, SocketAddr, SocketAddr), wire::EmitError>;

/// Where the bytes of an outgoing segment come from.
#[derive(Clone, Copy)]
enum Payload {
    None,
    /// From the send ring (or a subflow's spill) at this DSN.
    Data(DataSeq, usize),
}

/// The MPTCP-level state of a connection.
#[derive(Debug)]
pub(crate) struct Mptcp {
    /// MPTCP attempted or negotiated (false: plain TCP from the start).
    pub enabled: bool,
    pub fallback: Option<FallbackReason>,
    pub local_key: Key,
    pub remote_key: Option<Key>,
    pub local_token: u32,
    pub remote_token: u32,
    pub remote_idsn: u64,
    pub csum: bool,
    /// The peer has our key (client: it sent a DSS; server: it sent the third ACK).
    pub fully_established: bool,
    /// MP_CAPABLE was left out of retransmitted SYNs.
    syn_mpc_dropped: bool,
    /// A DSS was ever received.
    dss_seen: bool,
}

impl Mptcp {
    pub fn active(&self) -> bool {
        self.enabled && self.fallback.is_none()
    }
}

/// Closed subflows kept in a connection's list (for their stats) at most;
/// older ones are dropped, their counters kept in [`Gone`]: a peer that
/// opens and closes joins forever cannot grow the list.
const KEEP_CLOSED_SUBFLOWS: usize = 8;

#[derive(Debug)]
pub(crate) struct Connection {
    pub handle: ConnHandle,
    pub role: Role,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub listener: Option<SocketAddr>,
    pub mp: Mptcp,
    pub subflows: Vec<Subflow>,
    next_sf_id: u32,
    pm: Pm,
    /// The connection's own timers (MP_FAIL, DATA_FIN, persist).
    timers: TimerTable,
    pub connected_reported: bool,
    pub closed: Option<CloseReason>,
    pub released: bool,
    tcb_params: TcbParams,
    cfg_checksum_offload: bool,
    mss_local: usize,
    limits: super::Limits,
    stale_rtos: u32,
    max_rtos: u32,
    syn_retries: u32,
    mpc_syn_retries: u32,
    add_addr_timeout: Duration,
    /// DATA_FIN both ways (RFC 8684 §3.3.3).
    fin: Fin,
    /// MP_FAIL and fallback state (RFC 8684 §3.7).
    fail: Fail,
    /// Connection-level counters (snapshots, `ss`).
    stats: Stats,
    /// The data-level send side (RFC 8684 §3.3).
    snd: SendSide,
    /// The data-level receive side (RFC 8684 §3.3).
    rcv: RecvSide,
    /// Fast Open on the initial subflow (RFC 7413).
    tfo: handshake::Tfo,
}

fn new_key(rng: &mut ChaCha20Rng, tokens_in_use: &dyn Fn(u32) -> bool) -> (Key, u32, u64) {
    loop {
        let k = Key(rng.next_u64());
        let (t, i) = k.token_idsn(Version::V1);
        if !tokens_in_use(t.0) && t.0 != 0 {
            return (k, t.0, i.0);
        }
    }
}

impl Connection {
    #[allow(clippy::too_many_arguments)]
    fn base(
        handle: ConnHandle,
        role: Role,
        local: SocketAddr,
        remote: SocketAddr,
        cfg: &Config,
        key: (Key, u32, u64),
        enabled: bool,
        params: TcbParams,
        pool: &Pool,
    ) -> Connection {
        let (local_key, local_token, local_idsn) = key;
        let start = DataSeq(local_idsn.wrapping_add(1));
        Connection {
            handle,
            role,
            local,
            remote,
            listener: None,
            mp: Mptcp {
                enabled,
                fallback: if cfg.mptcp { None } else { Some(FallbackReason::Disabled) },
                local_key,
                remote_key: None,
                local_token,
                remote_token: 0,
                remote_idsn: 0,
                csum: cfg.checksum,
                fully_established: false,
                syn_mpc_dropped: false,
                dss_seen: false,
            },
            subflows: Vec::new(),
            next_sf_id: 0,
            pm: Pm::default(),
            timers: TimerTable::default(),
            rcv: RecvSide {
                rx: RxRing::with_pool(cfg.recv_buffer, DataSeq(0), pool.clone()),
                seg_map: None,
                last_adv_edge: DataSeq(0),
                readable_armed: true,
            },
            snd: SendSide {
                tx: TxRing::with_pool(cfg.send_buffer, start, pool.clone()),
                snd_una: start,
                snd_nxt: start,
                snd_edge: start,
                mpc_map: None,
                mpc_map_done: false,
                reinject: VecDeque::new(),
                sched: cfg.scheduler.build(),
                views: Vec::new(),
                persist_backoff: 0,
                writable_wanted: false,
                rr: 0,
            },
            stats: Stats::default(),
            fail: Fail::default(),
            fin: Fin::default(),
            connected_reported: false,
            closed: None,
            released: false,
            tcb_params: params,
            cfg_checksum_offload: cfg.offload_checksums,
            mss_local: params.mss,
            limits: cfg.limits,
            stale_rtos: cfg.stale_rtos.max(1),
            max_rtos: cfg.max_rtos,
            syn_retries: cfg.syn_retries,
            mpc_syn_retries: cfg.mpc_syn_retries,
            add_addr_timeout: cfg.add_addr_timeout,
            tfo: handshake::Tfo::default(),
        }
    }

    /// Active open: the initial subflow in SYN-SENT.
    pub fn connect(
        handle: ConnHandle,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        ctx: &mut Ctx<'_>,
        tokens_in_use: &dyn Fn(u32) -> bool,
    ) -> Connection {
        let key = new_key(ctx.rng, tokens_in_use);
        let mut c = Connection::base(
            handle,
            Role::Client,
            local,
            remote,
            ctx.cfg,
            key,
            ctx.cfg.mptcp,
            ctx.tcb_params,
            ctx.pool,
        );
        ctx.endpoint_events.push(EndpointEvent::NewToken(c.mp.local_token));
        let iss = ctx.isn(now, local, remote);
        let ts_off = ctx.rng.next_u32();
        let tcb = Tcb::client(local, remote, iss, ts_off, &ctx.tcb_params, ctx.cfg.cc.build(ctx.tcb_params.mss), now);
        let mut sf = Subflow::new(0, tcb, true);
        sf.mpc_requested = c.mp.enabled;
        sf.backup_loc = ctx.addrs.iter().any(|a| a.addr == local.ip() && a.flags.backup);
        c.next_sf_id = 1;
        c.stats.subflows_total = 1;
        c.subflows.push(sf);
        ctx.endpoint_events.push(EndpointEvent::NewTuple { local, remote, subflow: 0 });
        ctx.mib.inc(Counter::TcpActiveOpens);
        if c.mp.enabled {
            ctx.mib.inc(Counter::MpCapableSynTx);
        }
        c.fastopen_connect(now, ctx);
        c
    }

    /// Passive open from a SYN (MP_CAPABLE or plain): a fresh one, or the
    /// SYN a cookie stood for (its ACK is handed to [`Connection::on_segment`]
    /// next).
    pub fn accept(
        handle: ConnHandle,
        now: Instant,
        syn: &Segment<'_>,
        listener: SocketAddr,
        mode: Passive,
        ctx: &mut Ctx<'_>,
        tokens_in_use: &dyn Fn(u32) -> bool,
    ) -> Connection {
        let mpc = syn.opts.mptcp().find_map(|o| match o {
            MptcpOption::MpCapable(m) => Some(*m),
            _ => None,
        });
        let key = match mode {
            Passive::Fresh => new_key(ctx.rng, tokens_in_use),
            Passive::Cookie { key, .. } => {
                let (t, i) = key.token_idsn(Version::V1);
                (key, t.0, i.0)
            }
        };
        // RFC 8684 §3.1: a v1 SYN carries no key; anything else is not v1.
        let v1 = mpc.is_some_and(|m| m.version == 1 && m.sender_key.is_none());
        let enabled = ctx.cfg.mptcp && v1;
        let mut c =
            Connection::base(handle, Role::Server, syn.dst, syn.src, ctx.cfg, key, enabled, ctx.tcb_params, ctx.pool);
        ctx.endpoint_events.push(EndpointEvent::NewToken(c.mp.local_token));
        c.listener = Some(listener);
        if ctx.cfg.mptcp && !v1 {
            c.mp.fallback = Some(FallbackReason::NoMpCapableInSyn);
        }
        if enabled {
            if matches!(mode, Passive::Fresh) {
                // A cookie's SYN was counted when it came.
                ctx.mib.inc(Counter::MpCapableSynRx);
            }
            if mpc.is_some_and(|m| m.checksum_required()) {
                c.mp.csum = true;
            }
        }
        let (iss, ts_off) = match mode {
            Passive::Fresh => (ctx.isn(now, syn.dst, syn.src), ctx.rng.next_u32()),
            Passive::Cookie { iss, ts_offset, .. } => (iss, ts_offset),
        };
        let mut tcb =
            Tcb::server(syn.dst, syn.src, iss, ts_off, &ctx.tcb_params, ctx.cfg.cc.build(ctx.tcb_params.mss), syn, now);
        if matches!(mode, Passive::Cookie { .. }) {
            tcb.syn_sent_statelessly();
        }
        let mut sf = Subflow::new(0, tcb, true);
        sf.mpc = enabled;
        sf.backup_loc = ctx.addrs.iter().any(|a| a.addr == syn.dst.ip() && a.flags.backup);
        c.rcv.rx = RxRing::with_pool(ctx.cfg.recv_buffer, DataSeq(0), ctx.pool.clone());
        c.next_sf_id = 1;
        c.stats.subflows_total = 1;
        c.subflows.push(sf);
        ctx.endpoint_events.push(EndpointEvent::NewTuple { local: syn.dst, remote: syn.src, subflow: 0 });
        ctx.mib.inc(Counter::TcpPassiveOpens);
        c
    }

    /// A passive connection whose handshake is not complete: it holds a
    /// place in the SYN queue, and the application has not seen it.
    pub fn half_open(&self) -> bool {
        self.role == Role::Server && !self.connected_reported
    }

    fn sf_index(&self, id: u32) -> Option<usize> {
        self.subflows.iter().position(|s| s.id == id)
    }

    pub fn is_fallback(&self) -> bool {
        self.mp.fallback.is_some()
    }

    /// DATA_ACK value we send: in-order data, plus the peer's DATA_FIN once consumed.
    fn data_ack(&self) -> DataSeq {
        self.rcv.rx.nxt + self.fin.peer_fin_done as u64
    }

    /// Reset every subflow and end the connection (our reason in MP_TCPRST).
    fn reset_all(&mut self, reason: u8, ctx: &mut Ctx<'_>) {
        let close = CloseReason::LocalReset { mptcp_reason: reason };
        for j in 0..self.subflows.len() {
            self.abort_subflow(j, reason, close, ctx);
        }
        self.finish(close, ctx);
    }

    /// Tear a subflow down: no more sending, data reinjected, tuple freed.
    fn kill_subflow(&mut self, i: usize, reason: CloseReason, ctx: &mut Ctx<'_>, reinject: bool) {
        if reinject && self.subflows[i].down.is_none() {
            if !self.fail.csum_sent.is_empty() && self.mp.active() {
                // DSS checksums: the peer may have dropped data its TCP
                // acknowledged (a mapping staged for its checksum, or one
                // that failed it), so everything this subflow carried that
                // is not DATA_ACKed goes again (RFC 8684 §3.7).
                let una = self.snd.snd_una;
                self.resend_failed(i, una, ctx);
            }
            self.reinject_from(i, ctx);
        }
        let sf = &mut self.subflows[i];
        if sf.down.is_some() {
            return;
        }
        sf.down = Some(reason);
        sf.ready = false;
        sf.tcb.reset();
        sf.spill.clear();
        sf.redundant.clear();
        ctx.endpoint_events.push(EndpointEvent::RetiredTuple { local: sf.tcb.local, remote: sf.tcb.remote });
        if sf.up_reported {
            ctx.events.push_back(Event::SubflowDown { conn: self.handle, subflow: sf.info(), reason });
        }
    }

    pub fn on_segment(&mut self, now: Instant, sf_id: u32, seg: &Segment<'_>, ctx: &mut Ctx<'_>) {
        let Some(i) = self.sf_index(sf_id) else { return };
        {
            let sf = &mut self.subflows[i];
            sf.tcb.count_segment_in(now);
        }
        match self.subflows[i].tcb.state {
            TcpState::SynSent => self.on_syn_sent(now, i, seg, ctx),
            TcpState::SynReceived => self.on_syn_received(now, i, seg, ctx),
            TcpState::Closed => {}
            _ => {
                self.on_synchronized(now, i, seg, ctx);
                self.answer_repeated_mpc_ack(now, i, seg);
            }
        }
        self.after_input(now, ctx);
    }

    /// Send a RST with MP_TCPRST on a subflow and forget it.
    fn reset_subflow(&mut self, i: usize, reason: u8, seg: &Segment<'_>, ctx: &mut Ctx<'_>) {
        ctx.rsts.push_back(RstOut::reply(seg, self.mp.active().then_some(reason)));
        ctx.mib.inc(Counter::TcpOutRsts);
        if self.mp.active() {
            ctx.mib.inc(Counter::MpRstTx);
        }
        self.kill_subflow(i, CloseReason::LocalReset { mptcp_reason: reason }, ctx, true);
    }

    /// Reset a synchronized subflow from our side (dead, removed, bad mapping).
    fn abort_subflow(&mut self, i: usize, reason: u8, close: CloseReason, ctx: &mut Ctx<'_>) {
        let sf = &self.subflows[i];
        if !sf.alive() {
            return;
        }
        ctx.rsts.push_back(RstOut { tcprst: self.mp.active().then_some(reason), ..RstOut::on(&sf.tcb) });
        ctx.mib.inc(Counter::TcpOutRsts);
        if self.mp.active() {
            ctx.mib.inc(Counter::MpRstTx);
        }
        self.kill_subflow(i, close, ctx, true);
    }

    fn on_synchronized(&mut self, now: Instant, i: usize, seg: &Segment<'_>, ctx: &mut Ctx<'_>) {
        self.rcv.seg_map = None;
        let wnd = self.rx_window();
        let out = match self.subflows[i].tcb.handle_segment(now, seg, wnd) {
            SegmentOutcome::Reset => return self.on_rst(i, seg, ctx),
            SegmentOutcome::Dropped(why) => {
                match why {
                    Dropped::Challenge { sent: true } => ctx.mib.inc(Counter::TcpChallengeAck),
                    Dropped::Challenge { sent: false } => ctx.mib.inc(Counter::TcpAckSkippedChallenge),
                    Dropped::OutOfWindow { acked: false } => ctx.mib.inc(Counter::TcpAckSkippedSeq),
                    _ => {}
                }
                return;
            }
            SegmentOutcome::Acked(out) => out,
        };
        // Join responder: a retransmitted third ACK means ours to it was
        // lost; A waits for it before sending data (RFC 8684 §3.2).
        if !self.subflows[i].initial && seg.opts.mptcp().any(|o| matches!(o, MptcpOption::MpJoin(MpJoin::Ack { .. }))) {
            self.subflows[i].tcb.request_ack();
        }
        // Join initiator: any ACK from B after our third ACK confirms it.
        {
            let sf = &mut self.subflows[i];
            if let Some(j) = sf.join.as_mut()
                && j.ack_pending
            {
                j.ack_pending = false;
                j.ack_due = false;
                sf.ready = true;
                sf.tcb.stop_rto_if_idle();
                ctx.mib.inc(Counter::MpJoinAckRx);
                sf.up_reported = true;
                ctx.events.push_back(Event::SubflowUp { conn: self.handle, subflow: sf.info() });
            }
        }
        if out.invalid {
            return;
        }
        if out.entered_recovery {
            ctx.mib.inc(if self.subflows[i].tcb.sack_ok { Counter::TcpSackRecovery } else { Counter::TcpRenoRecovery });
        }
        if out.acked > 0 && self.subflows[i].stale {
            self.subflows[i].stale = false;
            ctx.mib.inc(Counter::SubflowRecover);
        }
        if self.mp.active() {
            self.on_mptcp_options(now, i, seg, out.acked, ctx);
            if !self.subflows.get(i).is_some_and(|s| s.alive()) || self.closed.is_some() {
                return;
            }
        } else if out.acked > 0 || self.is_fallback() || !self.mp.enabled {
            if self.fail.rx_fail.is_some() {
                self.on_fail_options(i, seg, ctx);
                if self.closed.is_some() {
                    return;
                }
            }
            // Plain TCP: the data level follows the subflow (after a rewind
            // to an MP_FAIL's DSN, segments from before it have higher DSNs).
            let sf = &self.subflows[i];
            let una = match self.fail.rewound {
                Some(at) => sf.tcb.txq.iter().find(|s| s.seq >= at).map(|s| s.dsn),
                None => sf.tcb.txq.front().map(|s| s.dsn),
            }
            .unwrap_or(self.snd.snd_nxt);
            if una > self.snd.snd_una {
                self.snd.snd_una = una;
            }
            let edge = self.snd.snd_una + sf.tcb.snd_wnd as u64;
            if edge > self.snd.snd_edge {
                self.snd.snd_edge = edge;
            }
        }
        // Payload.
        let mut all_taken = true;
        if !seg.payload.is_empty() {
            all_taken = self.take_payload(now, i, seg, ctx);
        }
        if !self.subflows.get(i).is_some_and(|s| s.alive()) {
            return;
        }
        let fin = (seg.has(flags::FIN) && all_taken).then(|| seg.seq + seg.payload.len());
        self.subflows[i].tcb.end_segment(now, fin);
        let sf = &mut self.subflows[i];
        if fin.is_some() && sf.tcb.fin_received {
            if self.mp.active() {
                // The peer closes this subflow: close ours too, and
                // resend elsewhere what it still held.
                if !sf.closing {
                    sf.closing = true;
                    sf.ready = false;
                    sf.tcb.close();
                    self.reinject_from(i, ctx);
                }
            } else if !self.fin.peer_fin_done {
                // Plain TCP: the FIN is the end of the data stream.
                self.fin.peer_fin_done = true;
                ctx.events.push_back(Event::PeerClosed(self.handle));
                ctx.events.push_back(Event::Readable(self.handle));
            }
        }
        // Plain TCP: a FIN that came before the end of the data is taken
        // once the hole before it fills (by this segment).
        if !self.mp.active() && !self.fin.peer_fin_done && self.subflows[i].tcb.fin_received {
            self.fin.peer_fin_done = true;
            ctx.events.push_back(Event::PeerClosed(self.handle));
            ctx.events.push_back(Event::Readable(self.handle));
        }
    }

    fn on_rst(&mut self, i: usize, seg: &Segment<'_>, ctx: &mut Ctx<'_>) {
        let reason = tcprst_reason(seg);
        if reason.is_some() {
            ctx.mib.inc(Counter::MpRstRx);
        }
        let fastclose =
            seg.opts.mptcp().any(|o| matches!(o, MptcpOption::MpFastclose(f) if f.receiver_key == self.mp.local_key.0));
        if fastclose && self.mp.active() {
            ctx.mib.inc(Counter::MpFastcloseRx);
            self.peer_fastclose(ctx);
            return;
        }
        // RFC 8684 §3.7: a RST with MP_FAIL (Linux adds MP_TCPRST 0x06):
        // the peer dropped the mapping at that DSN.
        let fail = seg.opts.mptcp().find_map(|o| match o {
            MptcpOption::MpFail(f) => Some(f.dsn),
            _ => None,
        });
        if fail.is_some() {
            self.on_mp_fail(i, true, ctx);
        }
        let close = CloseReason::Reset { mptcp_reason: reason };
        self.kill_subflow(i, close, ctx, true);
        let left = self.subflows.iter().any(|s| s.alive());
        if !left || !self.mp.active() {
            for j in 0..self.subflows.len() {
                self.kill_subflow(j, close, ctx, false);
            }
            self.finish(close, ctx);
        }
    }

    /// The MPTCP options of a segment on a synchronized subflow of an MPTCP connection.
    fn on_mptcp_options(&mut self, now: Instant, i: usize, seg: &Segment<'_>, acked: usize, ctx: &mut Ctx<'_>) {
        let mut saw_dss = false;
        for o in seg.opts.mptcp() {
            match *o {
                MptcpOption::Dss(d) => {
                    saw_dss = true;
                    if let Some(a) = d.data_ack {
                        self.on_data_ack(a, seg.window, i, ctx);
                    }
                    if let Some(m) = d.mapping {
                        self.on_mapping(i, m, d.data_fin, (seg.seq, seg.payload.len()), ctx);
                        if !self.subflows[i].alive() || self.is_fallback() {
                            return;
                        }
                    }
                }
                MptcpOption::MpCapable(m) => {
                    // Server: the MP_CAPABLE data form carries the first mapping
                    // (RFC 8684 §3.1): DSN = IDSN+1, subflow sequence 1.
                    if self.role == Role::Server
                        && let Some(len) = m.data_len
                        && self.subflows[i].initial
                    {
                        let map = DssMapping {
                            dsn: WireSeq::U64(self.mp.remote_idsn.wrapping_add(1)),
                            ssn: 1,
                            data_len: len,
                            checksum: m.checksum,
                        };
                        self.on_mapping(i, map, false, (seg.seq, seg.payload.len()), ctx);
                    }
                }
                MptcpOption::AddAddr(a) => self.on_add_addr(now, a, ctx),
                MptcpOption::RemoveAddr(r) => self.on_remove_addr(&r, ctx),
                MptcpOption::MpPrio(p) => {
                    ctx.mib.inc(Counter::MpPrioRx);
                    self.subflows[i].backup_rem = p.backup;
                }
                MptcpOption::MpFastclose(f) if f.receiver_key == self.mp.local_key.0 => {
                    ctx.mib.inc(Counter::MpFastcloseRx);
                    self.peer_fastclose(ctx);
                    return;
                }
                MptcpOption::MpFail(_) => {
                    self.on_mp_fail(i, false, ctx);
                    if !self.subflows[i].alive() || !self.mp.active() {
                        return;
                    }
                }
                _ => {}
            }
        }
        if saw_dss {
            self.mp.dss_seen = true;
            if !self.mp.fully_established {
                // Client: the peer's DSS shows it has our key (RFC 8684 §3.1).
                self.mp.fully_established = true;
                ctx.mib.inc(Counter::MpCurrEstab);
                ctx.events.push_back(Event::FullyEstablished(self.handle));
                self.pm_start(now, ctx);
                // A DATA_FIN held back while the third ACK was being
                // repeated goes now (RFC 8684 §3.3.3).
                if self.fin.app_closed && !self.fin.dfin_acked {
                    self.fin.dfin_due = true;
                }
            }
        } else if self.subflows[i].initial
            && !self.mp.dss_seen
            && self.subflows.iter().filter(|s| s.alive()).count() == 1
        {
            // RFC 8684 §3.7: data, or an acknowledgment of our data, with
            // no DSS before any DSS was seen: options are being stripped.
            let data_without_map = !seg.payload.is_empty() && !seg.opts.has_mptcp();
            let ack_without_dss = acked > 0 && !seg.opts.has_mptcp() && self.role == Role::Client;
            if data_without_map || ack_without_dss {
                ctx.mib.inc(Counter::MpCapableDataFallback);
                if self.rcv.rx.nxt == DataSeq(self.mp.remote_idsn.wrapping_add(1)) && self.rcv.rx.readable() == 0 {
                    // Keep the receive DSN space; the subflow continues from here.
                }
                self.fallback(FallbackReason::NoDss, ctx);
                // What was sent counts as acknowledged by the subflow from now on.
                let sf = &self.subflows[i];
                let una = sf.tcb.txq.front().map_or(self.snd.snd_nxt, |s| s.dsn);
                if una > self.snd.snd_una {
                    self.snd.snd_una = una;
                }
                self.snd.snd_edge = self.snd.snd_una + sf.tcb.snd_wnd as u64;
            }
        }
    }

    fn after_input(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        self.release_tx(ctx);
        self.check_close(now, ctx);
        self.prune_subflows();
    }

    /// Drop the oldest closed joins beyond [`KEEP_CLOSED_SUBFLOWS`] (the
    /// initial subflow stays: it is the fallback's and the snapshot's).
    fn prune_subflows(&mut self) {
        let dead = |s: &Subflow| !s.initial && s.down.is_some() && s.tcb.state == TcpState::Closed;
        let mut excess = self.subflows.iter().filter(|s| dead(s)).count().saturating_sub(KEEP_CLOSED_SUBFLOWS);
        if excess == 0 {
            return;
        }
        let gone = &mut self.stats.gone;
        self.subflows.retain(|s| {
            if excess > 0 && dead(s) {
                excess -= 1;
                gone.add(s);
                return false;
            }
            true
        });
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        let mut t = self.timers.next_timeout();
        for sf in &self.subflows {
            if sf.down.is_none()
                && let Some(x) = sf.tcb.next_timeout()
            {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        }
        for (_, at, _) in &self.pm.announce {
            if let Some(x) = at {
                t = Some(t.map_or(*x, |t| t.min(*x)));
            }
        }
        t
    }

    pub fn handle_timeout(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        for j in 0..self.subflows.len() {
            if self.subflows[j].down.is_some() {
                continue;
            }
            let fired = self.subflows[j].tcb.handle_timers(now);
            if fired.delayed_ack {
                ctx.mib.inc(Counter::TcpDelayedAcks);
            }
            if fired.time_wait_over {
                ctx.mib.inc(Counter::TcpTimeWaited);
            }
            if fired.rto_due {
                self.on_subflow_rto(now, j, ctx);
            }
        }
        let max_rto = self.tcb_params.max_rto;
        if let Some(f) = self.fail.rx_fail.as_mut()
            && self.timers.expire(Timer::MpFail, now)
        {
            // No infinite mapping came: MP_FAIL again (unless echoed), and
            // give up in the end, as Linux does after its MP_FAIL timeout.
            f.tries += 1;
            if f.tries > MP_FAIL_TRIES {
                self.fail.rx_fail = None;
                self.reset_all(rst_reason::MIDDLEBOX, ctx);
                return;
            }
            let (id, dsn, echoed) = (f.sf_id, f.dsn, f.echoed);
            if echoed {
                let rto = self.subflows.iter().find(|s| s.id == id).map_or(Duration::from_secs(1), |s| s.tcb.rtt.rto());
                self.timers.set_backed_off(Timer::MpFail, now, rto, f.tries, max_rto);
            } else {
                self.fail.mp_fail_out = Some((id, dsn.0));
            }
        }
        // The Fast Open hold is over: the SYN goes at the next poll.
        self.timers.expire(Timer::FastOpenHold, now);
        // (`expire` first: it stops the timer whatever the rest says.)
        if self.timers.expire(Timer::DataFin, now) && !self.fin.dfin_acked && self.closed.is_none() {
            self.fin.dfin_due = true;
            self.fin.dfin_tries += 1;
        }
        if self.timers.expire(Timer::Persist, now) {
            self.snd.persist_backoff += 1;
            if let Some(sf) = self.subflows.iter_mut().find(|s| s.ready && s.alive()) {
                // A window probe: an ACK with an old sequence number makes
                // the peer answer with its window (RFC 9293 §3.8.6.1).
                sf.tcb.request_ack();
                ctx.mib.inc(Counter::WinProbe);
            }
        }
        for (_, at, tries) in self.pm.announce.iter_mut() {
            if at.is_some_and(|t| t <= now) && *tries > 0 {
                // Not echoed: send it again.
                *at = Some(now);
            }
        }
        self.after_input(now, ctx);
    }

    /// One segment, if anything is due.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        out: &mut TxOut<'_>,
        ctx: &mut Ctx<'_>,
    ) -> Option<(usize, SocketAddr, SocketAddr)> {
        // A segment that could not be written (a buffer too short for it)
        // counts as lost on the wire, its state moved on as if sent: try
        // the next one, a bounded number of times.
        for _ in 0..MAX_EMIT_FAILURES {
            match self.poll_one(now, out, ctx)? {
                Ok(t) => return Some(t),
                Err(_) => ctx.mib.inc(Counter::EmitErrors),
            }
        }
        None
    }

    fn poll_one(&mut self, now: Instant, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Option<Tx> {
        if self.subflows.is_empty() {
            return None;
        }
        self.check_close(now, ctx);
        let n = self.subflows.len();
        // 1. Handshakes, retransmissions, FINs.
        for k in 0..n {
            let j = (self.snd.rr + k) % n;
            if let Some(t) = self.poll_control(now, j, out, ctx) {
                self.snd.rr = (j + 1) % n;
                return Some(t);
            }
        }
        // 2. New data, as the scheduler says.
        if let Some(t) = self.poll_data(now, out, ctx) {
            return Some(t);
        }
        // 3. ACKs and signals.
        for k in 0..n {
            let j = (self.snd.rr + k) % n;
            if let Some(t) = self.poll_ack(now, j, out, ctx) {
                return Some(t);
            }
        }
        self.arm_persist(now);
        None
    }

    fn poll_control(&mut self, now: Instant, j: usize, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Option<Tx> {
        let sf = &self.subflows[j];
        if sf.down.is_some() {
            return None;
        }
        let tcb = &sf.tcb;
        if tcb.syn_due && matches!(tcb.state, TcpState::SynSent | TcpState::SynReceived) {
            if self.syn_held(j) {
                return None;
            }
            return Some(self.emit_syn(now, j, out, ctx));
        }
        if let Some(js) = sf.join
            && js.ack_due
            && js.ack_pending
        {
            return Some(self.emit_join_ack(now, j, out, ctx));
        }
        if !tcb.state.synchronized() {
            return None;
        }
        if sf.hs_ack_due {
            self.subflows[j].hs_ack_due = false;
            return Some(self.emit_ack(now, j, out, None, false, ctx));
        }
        // MP_FAIL (RFC 8684 §3.7), ours or the echo of the peer's, before any
        // data (the infinite mapping follows it), on an ACK with a DSS even
        // when the connection already fell back, as Linux sends it.
        if let Some((id, dsn)) = self.fail.mp_fail_out
            && sf.id == id
        {
            self.fail.mp_fail_out = None;
            if let Some(f) = self.fail.rx_fail {
                let rto = self.subflows[j].tcb.rtt.rto();
                self.timers.set_backed_off(Timer::MpFail, now, rto, f.tries, self.tcb_params.max_rto);
            }
            // 12 + 12 bytes: always fits beside the timestamps.
            let opts = [MptcpOption::Dss(self.dss_ack()), MptcpOption::MpFail(MpFail { dsn })];
            if let Some(t) = self.emit_options(now, j, out, &opts, ctx) {
                ctx.mib.inc(Counter::MpFailTx);
                return Some(t);
            }
        }
        let tcb = &self.subflows[j].tcb;
        if let Some(idx) = tcb.next_retransmit() {
            return Some(self.emit_retransmit(now, j, idx, out, ctx));
        }
        if tcb.fin_ready() {
            // Plain TCP: the FIN waits for the data.
            let data_pending = !self.mp.active() && (self.snd.snd_nxt < self.snd.tx.tail);
            if !data_pending && tcb.lost_bytes() == 0 {
                return Some(self.emit_fin(now, j, out, ctx));
            }
        }
        None
    }

    fn poll_ack(&mut self, now: Instant, j: usize, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Option<Tx> {
        let sf = &self.subflows[j];
        if sf.down.is_some() || !sf.tcb.state.synchronized() {
            return None;
        }
        // The infinite mapping with no data left to carry it.
        if let Some(p) = self.fail.tx_infinite
            && p >= self.snd.tx.tail
        {
            self.fail.tx_infinite = None;
            ctx.mib.inc(Counter::InfiniteMapTx);
            let ssn = sf.tcb.rel(sf.tcb.snd_nxt);
            let map = TxMap { dsn: p, ssn, len: 0, checksum: self.mp.csum.then_some(0), mpc: false };
            let opt = self.data_option(&map, false);
            let mut o = OptList::new();
            o.timestamps(&self.subflows[j].tcb, now);
            o.push(TcpOption::Mptcp(opt));
            let seq = self.subflows[j].tcb.seq_for_ack();
            return Some(self.write(now, j, out, seq, flags::ACK, &o, Payload::None, ctx));
        }
        let mptcp = self.mp.active();
        // MP_PRIO on this subflow.
        if mptcp && sf.pending_prio.is_some() && sf.ready {
            let b = sf.pending_prio.unwrap_or(false);
            self.subflows[j].pending_prio = None;
            ctx.mib.inc(Counter::MpPrioTx);
            let opt = MptcpOption::MpPrio(MpPrio { backup: b, addr_id: None });
            return Some(self.emit_ack(now, j, out, Some(opt), false, ctx));
        }
        let signal_here = mptcp && sf.ready && self.subflows.iter().position(|s| s.ready && s.alive()) == Some(j);
        if signal_here {
            if self.fin.app_closed
                && !self.fin.dfin_acked
                && self.snd.snd_nxt == self.snd.tx.tail
                && (self.fin.dfin_due || !self.timers.is_running(Timer::DataFin))
            {
                // Before the peer confirmed our key (client, no DSS seen),
                // `emit_ack` repeats the MP_CAPABLE third ACK instead, on
                // this same backed-off timer, until the server's DATA_ACK
                // shows it arrived (RFC 8684 §3.1); the DATA_FIN follows.
                self.fin.dfin_due = false;
                let rto = self.subflows[j].tcb.rtt.rto();
                self.timers.set_backed_off(Timer::DataFin, now, rto, self.fin.dfin_tries, self.tcb_params.max_rto);
                return Some(self.emit_ack(now, j, out, None, true, ctx));
            }
            if let Some(e) = self.pm.echo.pop_front() {
                match self.emit_options(now, j, out, &[MptcpOption::AddAddr(e)], ctx) {
                    Some(t) => {
                        ctx.mib.inc(Counter::EchoAddTx);
                        return Some(t);
                    }
                    None => ctx.mib.inc(Counter::EchoAddTxDrop),
                }
            }
            if let Some(k) = self.pm.announce.iter().position(|(_, at, _)| at.is_some_and(|t| t <= now)) {
                let timeout = self.add_addr_timeout;
                let (a, at, tries) = &mut self.pm.announce[k];
                let a = *a;
                *tries += 1;
                *at = if *tries < 4 { Some(now + timeout) } else { None };
                match self.emit_options(now, j, out, &[MptcpOption::AddAddr(a)], ctx) {
                    Some(t) => {
                        self.pm.signals_sent = self.pm.signals_sent.saturating_add(1);
                        ctx.mib.inc(Counter::AddAddrTx);
                        return Some(t);
                    }
                    None => ctx.mib.inc(Counter::AddAddrTxDrop),
                }
            }
            if !self.pm.remove.is_empty() {
                // As many IDs as fit beside the timestamps and the largest
                // other option of a pure ACK (the 20-byte MP_CAPABLE ACK);
                // the rest go on the next ACK.
                let k = self.pm.remove.len().min(REMOVE_ADDR_IDS_PER_ACK);
                let ids: Vec<u8> = self.pm.remove.drain(..k).collect();
                ctx.mib.inc(Counter::RmAddrTx);
                let opt = MptcpOption::RemoveAddr(RemoveAddr { addr_ids: RawBytes::new(&ids) });
                return Some(self.emit_ack(now, j, out, Some(opt), false, ctx));
            }
        }
        let sf = &self.subflows[j];
        if sf.tcb.ack_now {
            return Some(self.emit_ack(now, j, out, None, false, ctx));
        }
        None
    }
}

fn tcprst_reason(seg: &Segment<'_>) -> Option<u8> {
    seg.opts.mptcp().find_map(|o| match o {
        MptcpOption::MpTcpRst(r) => Some(r.reason),
        _ => None,
    })
}
