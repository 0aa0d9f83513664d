//! One MPTCP connection (RFC 8684) and its subflows.
//!
//! Data lives at the connection level in two rings indexed by data sequence
//! number; subflows carry mappings onto them. This module builds every
//! segment the connection sends (options through the dissector's codec) and
//! takes every segment its subflows receive, after [`Tcb`] did the TCP part.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use rand_chacha::ChaCha20Rng;
use rand_core::Rng;

use super::buf::Slice;
use super::mib::{Counter, Mib};
use super::optlist::OptList;
use super::ring::{RxRing, TxRing};
use super::scheduler::{Pick, Scheduler, SubflowView};
use super::tcp::{TcbParams, TcpState, TxMap, TxSeg};
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

mod timer;

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
    pub tuples: &'a mut std::collections::HashMap<(SocketAddr, SocketAddr), (usize, u32)>,
    pub rsts: &'a mut VecDeque<RstOut>,
    pub addrs: &'a [LocalAddr],
    pub isn_secret: &'a [u8; 16],
    pub conn_idx: usize,
    pub tcb_params: TcbParams,
}

impl Ctx<'_> {
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

/// A receive mapping (RFC 8684 §3.3.1), subflow sequence absolute.
#[derive(Clone, Copy, Debug)]
struct RxMap {
    ssn: SubflowSeq,
    dsn: DataSeq,
    /// Payload bytes covered (DATA_FIN's unit excluded).
    len: u32,
    fin: bool,
    csum: Option<u16>,
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

/// A DSS checksum failed on the only subflow (RFC 8684 §3.7): we sent
/// MP_FAIL and wait for the peer's infinite mapping; in-order data before
/// it is acknowledged and dropped.
#[derive(Clone, Copy, Debug)]
struct RxFail {
    /// DSN of the mapping that failed (what MP_FAIL carries).
    dsn: DataSeq,
    /// The subflow it failed on.
    sf_id: u32,
    /// The peer echoed MP_FAIL: no need to send it again.
    echoed: bool,
    /// Expiries of [`Timer::MpFail`]: resend it, or give up after [`MP_FAIL_TRIES`].
    tries: u32,
}

/// Segments [`Connection::poll_transmit`] skips when they cannot be
/// written before it gives up for this call.
const MAX_EMIT_FAILURES: usize = 8;

/// Address IDs one REMOVE_ADDR carries: 40 bytes of option space, less
/// the timestamps (12) and an MP_CAPABLE ACK (20), less its own 3 bytes.
const REMOVE_ADDR_IDS_PER_ACK: usize = 5;

/// MP_FAIL timer expiries (with exponential backoff from the RTO) before
/// a receiver that got no infinite mapping gives up and resets.
const MP_FAIL_TRIES: u32 = 5;

/// Staging of a checksummed mapping until it is complete and verified.
#[derive(Debug)]
struct CsumStage {
    map: RxMap,
    data: Vec<u8>,
}

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

/// ADD_ADDR echoes waiting to be sent, at most.
const MAX_PENDING_ECHOES: usize = 8;

/// Addresses the peer announced that a connection remembers, at most.
const MAX_REMOTE_ADDRS: usize = 16;

/// Closed subflows kept in a connection's list (for their stats) at most;
/// older ones are dropped, their counters kept in [`Gone`]: a peer that
/// opens and closes joins forever cannot grow the list.
const KEEP_CLOSED_SUBFLOWS: usize = 8;

/// What the subflows dropped from the list carried.
#[derive(Clone, Copy, Debug, Default)]
struct Gone {
    retransmits: u64,
    bytes_retrans: u64,
    sent: u64,
    received: u64,
    acked: u64,
    last_send: Instant,
    last_recv: Instant,
}

impl Gone {
    fn add(&mut self, sf: &Subflow) {
        self.retransmits += sf.tcb.stats.retransmits;
        self.bytes_retrans += sf.tcb.stats.bytes_retrans;
        self.sent += sf.data_bytes_sent;
        self.received += sf.data_bytes_received;
        self.acked += sf.tcb.stats.bytes_acked;
        self.last_send = self.last_send.max(sf.tcb.last_send);
        self.last_recv = self.last_recv.max(sf.tcb.last_recv);
    }
}

/// Path-manager state of a connection.
#[derive(Debug, Default)]
struct Pm {
    /// ADD_ADDR to send, and those sent waiting for their echo: (option, next send time, tries).
    announce: Vec<(AddAddr, Option<Instant>, u32)>,
    /// Echoes to send.
    echo: VecDeque<AddAddr>,
    /// REMOVE_ADDR ids to send.
    remove: Vec<u8>,
    /// Addresses the peer announced: (id, address).
    remote_addrs: Vec<(u8, SocketAddr)>,
    add_addr_accepted: u8,
    joins_created: u8,
    started: bool,
    signals_sent: u8,
}

#[derive(Debug)]
pub(crate) struct Connection {
    pub handle: ConnHandle,
    pub role: Role,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub listener: Option<SocketAddr>,
    pub mp: Mptcp,
    pub subflows: Vec<Subflow>,
    /// Counters of closed subflows no longer in `subflows`.
    gone: Gone,
    next_sf_id: u32,
    tx: TxRing,
    pub snd_una: DataSeq,
    pub snd_nxt: DataSeq,
    /// Right edge of the peer's connection-level window (RFC 8684 §3.3.4).
    snd_edge: DataSeq,
    rx: RxRing,
    /// The first mapping of a client, sent in the MP_CAPABLE data form:
    /// (start, len, next offset to send).
    mpc_map: Option<(DataSeq, u32, u32)>,
    mpc_map_done: bool,
    /// Data ranges to send again on any subflow.
    reinject: VecDeque<(DataSeq, u32)>,
    /// The mapping carried by the segment being processed.
    seg_map: Option<RxMap>,
    sched: Box<dyn Scheduler>,
    views: Vec<SubflowView>,
    pm: Pm,
    /// The application closed: DATA_FIN at `tx.tail`.
    pub app_closed: bool,
    dfin_due: bool,
    dfin_tries: u32,
    pub dfin_acked: bool,
    /// The peer's DATA_FIN (its DSN).
    peer_fin: Option<DataSeq>,
    pub peer_fin_done: bool,
    /// Receive base after a fallback: (subflow seq, DSN).
    fb_rx: Option<(SubflowSeq, DataSeq)>,
    /// DSS checksums on: the mappings sent and not yet DATA_ACKed, as
    /// (subflow id, DSN, length), which an MP_FAIL makes us resend even
    /// when the subflow's TCP acknowledged them (RFC 8684 §3.7).
    csum_sent: VecDeque<(u32, DataSeq, u32)>,
    /// We detected a checksum failure on the only subflow (see [`RxFail`]).
    rx_fail: Option<RxFail>,
    /// MP_FAIL to send on an ACK with a DSS: (subflow id, DSN).
    mp_fail_out: Option<(u32, u64)>,
    /// The peer sent MP_FAIL on the only subflow: the next data segment
    /// carries an infinite mapping from this DSN (RFC 8684 §3.7).
    tx_infinite: Option<DataSeq>,
    /// Sending was rewound to an MP_FAIL's DSN at this subflow sequence
    /// number: the segments before it carry data the peer dropped, and
    /// only those after it count at the data level.
    rewound: Option<SubflowSeq>,
    persist_backoff: u32,
    /// The connection's own timers (MP_FAIL, DATA_FIN, persist).
    timers: TimerTable,
    last_adv_edge: DataSeq,
    readable_armed: bool,
    writable_wanted: bool,
    pub connected_reported: bool,
    pub closed: Option<CloseReason>,
    pub released: bool,
    pub established_at: Option<Instant>,
    pub retransmits: u64,
    pub bytes_retrans: u64,
    pub bytes_reinjected: u64,
    pub subflows_total: u32,
    rr: usize,
    tcb_params: TcbParams,
    cfg_checksum_offload: bool,
    mss_local: usize,
    limits: super::Limits,
    stale_rtos: u32,
    max_rtos: u32,
    syn_retries: u32,
    mpc_syn_retries: u32,
    add_addr_timeout: Duration,
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
            gone: Gone::default(),
            next_sf_id: 0,
            tx: TxRing::new(cfg.send_buffer, start),
            snd_una: start,
            snd_nxt: start,
            snd_edge: start,
            rx: RxRing::new(cfg.recv_buffer, DataSeq(0)),
            mpc_map: None,
            mpc_map_done: false,
            reinject: VecDeque::new(),
            seg_map: None,
            sched: cfg.scheduler.build(),
            views: Vec::new(),
            pm: Pm::default(),
            app_closed: false,
            dfin_due: false,
            dfin_tries: 0,
            dfin_acked: false,
            peer_fin: None,
            peer_fin_done: false,
            fb_rx: None,
            csum_sent: VecDeque::new(),
            rx_fail: None,
            mp_fail_out: None,
            tx_infinite: None,
            rewound: None,
            persist_backoff: 0,
            timers: TimerTable::default(),
            last_adv_edge: DataSeq(0),
            readable_armed: true,
            writable_wanted: false,
            connected_reported: false,
            closed: None,
            released: false,
            established_at: None,
            retransmits: 0,
            bytes_retrans: 0,
            bytes_reinjected: 0,
            subflows_total: 0,
            rr: 0,
            tcb_params: params,
            cfg_checksum_offload: cfg.offload_checksums,
            mss_local: params.mss,
            limits: cfg.limits,
            stale_rtos: cfg.stale_rtos.max(1),
            max_rtos: cfg.max_rtos,
            syn_retries: cfg.syn_retries,
            mpc_syn_retries: cfg.mpc_syn_retries,
            add_addr_timeout: cfg.add_addr_timeout,
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
        let mut c = Connection::base(handle, Role::Client, local, remote, ctx.cfg, key, ctx.cfg.mptcp, ctx.tcb_params);
        let iss = ctx.isn(now, local, remote);
        let ts_off = ctx.rng.next_u32();
        let tcb = Tcb::client(local, remote, iss, ts_off, &ctx.tcb_params, ctx.cfg.cc.build(ctx.tcb_params.mss), now);
        let mut sf = Subflow::new(0, tcb, true);
        sf.mpc_requested = c.mp.enabled;
        sf.backup_loc = ctx.addrs.iter().any(|a| a.addr == local.ip() && a.flags.backup);
        c.next_sf_id = 1;
        c.subflows_total = 1;
        c.subflows.push(sf);
        ctx.tuples.insert((local, remote), (ctx.conn_idx, 0));
        ctx.mib.inc(Counter::TcpActiveOpens);
        if c.mp.enabled {
            ctx.mib.inc(Counter::MpCapableSynTx);
        }
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
        let mut c = Connection::base(handle, Role::Server, syn.dst, syn.src, ctx.cfg, key, enabled, ctx.tcb_params);
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
            // The SYN/ACK went out statelessly: nothing to send or time.
            tcb.syn_due = false;
        }
        let mut sf = Subflow::new(0, tcb, true);
        sf.mpc = enabled;
        sf.backup_loc = ctx.addrs.iter().any(|a| a.addr == syn.dst.ip() && a.flags.backup);
        c.rx = RxRing::new(ctx.cfg.recv_buffer, DataSeq(0));
        c.next_sf_id = 1;
        c.subflows_total = 1;
        c.subflows.push(sf);
        ctx.tuples.insert((syn.dst, syn.src), (ctx.conn_idx, 0));
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
        self.rx.nxt + self.peer_fin_done as u64
    }

    fn fallback(&mut self, reason: FallbackReason, ctx: &mut Ctx<'_>) {
        if self.mp.fallback.is_some() {
            return;
        }
        self.mp.fallback = Some(reason);
        ctx.events.push_back(Event::Fallback { conn: self.handle, reason });
        self.csum_sent.clear();
        if let Some(sf) = self.subflows.first_mut() {
            sf.ready = sf.tcb.state.synchronized();
            // Data continues in order from where the subflow stands. A
            // checksummed mapping half received is delivered as it is: no
            // checksum covers what follows a fallback either.
            let mut base = self.rx.nxt;
            if let Some(st) = sf.stage.take() {
                let w = self.rx.write(st.map.dsn, &st.data);
                if w.duplicate > 0 {
                    ctx.mib.inc(Counter::DuplicateData);
                }
                base = base.max(st.map.dsn + st.data.len() as u64);
            }
            self.fb_rx = Some((sf.tcb.rcv_nxt, base));
        }
    }

    /// Whether a checksum failure on subflow `i` may end in a fallback to
    /// TCP (RFC 8684 §3.7) rather than a reset of the subflow: it is the
    /// initial subflow and no other one is left.
    fn infinite_fallback_ok(&self, i: usize) -> bool {
        self.subflows[i].initial && self.subflows.iter().enumerate().all(|(j, s)| j == i || !s.alive())
    }

    /// The peer sent MP_FAIL on subflow `i`, on a RST (`on_rst`) or on an
    /// ACK (RFC 8684 §3.7). Returns whether the connection fell back to TCP.
    /// Its DSN (the failed mapping) is not needed: whatever the peer did
    /// not DATA_ACK is sent again, which starts there.
    fn on_mp_fail(&mut self, i: usize, on_rst: bool, ctx: &mut Ctx<'_>) -> bool {
        ctx.mib.inc(Counter::MpFailRx);
        if let Some(f) = self.rx_fail.as_mut() {
            // The echo of our own MP_FAIL.
            f.echoed = true;
            return false;
        }
        if !self.mp.active() {
            return false;
        }
        if on_rst || !self.subflows[i].initial {
            // The subflow goes away (the RST is here, or we send it), and
            // what it carried from the failed mapping on goes on the others
            // (`kill_subflow`).
            if !on_rst {
                self.abort_subflow(
                    i,
                    rst_reason::MIDDLEBOX,
                    CloseReason::LocalReset { mptcp_reason: rst_reason::MIDDLEBOX },
                    ctx,
                );
            }
            return false;
        }
        // MP_FAIL on an ACK of the initial subflow: the peer saw it as the
        // only one and asks for a fallback. Subflows it did not count go.
        for j in 0..self.subflows.len() {
            if j != i && self.subflows[j].alive() {
                self.abort_subflow(j, rst_reason::UNSPECIFIED, CloseReason::LocalReset { mptcp_reason: 0 }, ctx);
            }
        }
        // Answer with MP_FAIL, fall back, and send again from the first
        // byte the peer lacks under an infinite mapping: the failed DSN
        // itself when the peer DATA_ACKed everything before it (as a
        // receiver that drops the failed mapping does).
        let p = self.snd_una;
        self.reinject.clear();
        for sf in self.subflows.iter_mut() {
            sf.redundant.clear();
        }
        self.fallback(FallbackReason::InfiniteMapping, ctx);
        if p < self.snd_nxt {
            self.snd_nxt = p;
        }
        self.mpc_map = None;
        self.mpc_map_done = true;
        self.tx_infinite = Some(p);
        self.rewound = Some(self.subflows[i].tcb.snd_nxt);
        // The answer carries, as Linux's does, the DSN where our own
        // receiving stands (MP_FAIL's DSN is in its sender's receive space).
        let sf = &mut self.subflows[i];
        self.mp_fail_out = Some((sf.id, self.rx.nxt.0));
        sf.tcb.ack_now = true;
        true
    }

    /// Queue for reinjection what subflow `i` carried from `d` on, even
    /// what its TCP acknowledged: after an MP_FAIL the peer dropped the
    /// failed mapping (RFC 8684 §3.7).
    fn resend_failed(&mut self, i: usize, d: DataSeq, ctx: &mut Ctx<'_>) {
        let id = self.subflows[i].id;
        let una = self.snd_una;
        for &(sid, dsn, len) in self.csum_sent.iter() {
            let end = dsn + len as u64;
            if sid != id || end <= d || end <= una {
                continue;
            }
            let start = dsn.max(una);
            self.reinject.push_back((start, (end - start) as u32));
            ctx.mib.inc(Counter::MptcpRetrans);
        }
        for seg in self.subflows[i].tcb.txq.iter_mut() {
            seg.reinjected = true;
        }
    }

    /// A DSS checksum failed on subflow `i` for the mapping at `dsn`
    /// (RFC 8684 §3.7). Returns whether the subflow goes on (fallback).
    fn on_checksum_failure(&mut self, i: usize, dsn: DataSeq, ctx: &mut Ctx<'_>) -> bool {
        ctx.mib.inc(Counter::DataCsumErr);
        if self.infinite_fallback_ok(i) {
            // The only subflow: MP_FAIL on an ACK with a DSS, then plain TCP
            // from the peer's infinite mapping on; the failed mapping is
            // not delivered, the peer sends it again.
            self.fallback(FallbackReason::ChecksumFailure, ctx);
            let sf = &mut self.subflows[i];
            self.rx_fail = Some(RxFail { dsn, sf_id: sf.id, echoed: false, tries: 0 });
            self.timers.stop(Timer::MpFail);
            self.mp_fail_out = Some((sf.id, dsn.0));
            sf.tcb.ack_now = true;
            return true;
        }
        // Several subflows: reset this one with MP_FAIL and MP_TCPRST
        // "middlebox interference", as Linux does; the peer resends the
        // mapping elsewhere.
        let sf = &self.subflows[i];
        ctx.rsts.push_back(RstOut { tcprst: Some(rst_reason::MIDDLEBOX), mp_fail: Some(dsn.0), ..RstOut::on(&sf.tcb) });
        ctx.mib.inc(Counter::TcpOutRsts);
        ctx.mib.inc(Counter::MpRstTx);
        ctx.mib.inc(Counter::MpFailTx);
        self.kill_subflow(i, CloseReason::LocalReset { mptcp_reason: rst_reason::MIDDLEBOX }, ctx, true);
        false
    }

    /// Options of a segment while we wait for the infinite mapping that
    /// answers our MP_FAIL (the connection already fell back).
    fn on_fail_options(&mut self, i: usize, seg: &Segment<'_>, ctx: &mut Ctx<'_>) {
        for o in seg.opts.mptcp() {
            match *o {
                MptcpOption::MpFail(_) => {
                    ctx.mib.inc(Counter::MpFailRx);
                    if let Some(f) = self.rx_fail.as_mut() {
                        f.echoed = true;
                    }
                }
                MptcpOption::Dss(Dss { mapping: Some(m), .. }) if m.data_len == 0 => {
                    ctx.mib.inc(Counter::InfiniteMapRx);
                    let dsn = match m.dsn {
                        WireSeq::U64(v) => DataSeq(v),
                        WireSeq::U32(v) => DataSeq::extend(v, self.rx.nxt),
                    };
                    self.rx_fail = None;
                    self.timers.stop(Timer::MpFail);
                    self.mp_fail_out = None;
                    if dsn > self.rx.nxt {
                        // The peer goes on past data we never got: the
                        // stream cannot be whole any more.
                        self.reset_all(rst_reason::MIDDLEBOX, ctx);
                        return;
                    }
                    let ssn = self.subflows[i].tcb.abs_rcv(m.ssn);
                    self.fb_rx = Some((ssn, dsn));
                }
                _ => {}
            }
        }
    }

    /// Reset every subflow and end the connection (our reason in MP_TCPRST).
    fn reset_all(&mut self, reason: u8, ctx: &mut Ctx<'_>) {
        let close = CloseReason::LocalReset { mptcp_reason: reason };
        for j in 0..self.subflows.len() {
            self.abort_subflow(j, reason, close, ctx);
        }
        self.finish(close, ctx);
    }

    // ------------------------------------------------------------------
    // Commands
    // ------------------------------------------------------------------

    pub fn send(&mut self, data: &[u8]) -> Result<usize, StackError> {
        if let Some(r) = self.closed {
            return Err(StackError::Reset(r));
        }
        if self.app_closed {
            return Err(StackError::Closing);
        }
        let n = self.tx.write(data);
        if n < data.len() {
            self.writable_wanted = true;
        }
        Ok(n)
    }

    pub fn recv(&mut self, out: &mut [u8], ctx: &mut Ctx<'_>) -> Result<Option<usize>, super::RecvError> {
        let n = self.rx.read(out);
        if n > 0 {
            self.maybe_window_update(ctx);
            if self.rx.readable() == 0 {
                self.readable_armed = true;
            }
            return Ok(Some(n));
        }
        self.readable_armed = true;
        if self.peer_fin_done {
            return Ok(None);
        }
        match self.closed {
            Some(CloseReason::Normal) => Ok(None),
            Some(r) => Err(super::RecvError::Reset(r)),
            None => Err(super::RecvError::Blocked),
        }
    }

    pub fn readable(&self) -> usize {
        self.rx.readable()
    }

    pub fn send_buffer_free(&self) -> usize {
        self.tx.free()
    }

    /// Bytes written by the application and not yet acknowledged at the data level.
    pub fn unacked(&self) -> u64 {
        self.tx.tail - self.snd_una
    }

    /// After a read: announce a window that opened a lot (receiver SWS
    /// avoidance, RFC 9293 §3.8.6.2.2).
    fn maybe_window_update(&mut self, _ctx: &mut Ctx<'_>) {
        let edge = self.rx.read + self.rx.capacity() as u64;
        let grown = edge.0.saturating_sub(self.last_adv_edge.0) as usize;
        let adv_left = self.last_adv_edge.0.saturating_sub(self.rx.nxt.0) as usize;
        if grown >= (self.rx.capacity() / 2).min(4 * self.mss_local) && adv_left < self.rx.capacity() / 2 {
            if let Some(sf) = self.subflows.iter_mut().find(|s| s.ready && s.alive() && s.tcb.state.synchronized()) {
                sf.tcb.ack_now = true;
            }
        }
    }

    pub fn close(&mut self) {
        if self.app_closed || self.closed.is_some() {
            return;
        }
        self.app_closed = true;
        if self.is_fallback() || !self.mp.enabled {
            // Plain TCP: the FIN follows the data; `check_close` queues it
            // once every byte of the send buffer went to the subflow.
            if let Some(sf) = self.subflows.first_mut() {
                if sf.tcb.state == TcpState::SynSent {
                    sf.closing = true;
                    sf.tcb.reset();
                }
            }
        }
    }

    /// MP_FASTCLOSE (RFC 8684 §3.5, "option R": a RST carrying it on every subflow).
    pub fn abort(&mut self, ctx: &mut Ctx<'_>) {
        if self.closed.is_some() {
            return;
        }
        let fast = self.mp.active() && self.mp.remote_key.is_some();
        for i in 0..self.subflows.len() {
            let sf = &self.subflows[i];
            if !sf.alive() {
                continue;
            }
            if sf.tcb.state != TcpState::SynSent {
                ctx.rsts.push_back(RstOut {
                    fastclose: if fast { self.mp.remote_key.map(|k| k.0) } else { None },
                    ..RstOut::on(&sf.tcb)
                });
                ctx.mib.inc(Counter::TcpOutRsts);
                if fast {
                    ctx.mib.inc(Counter::MpFastcloseTx);
                }
            }
            self.kill_subflow(i, CloseReason::Aborted, ctx, false);
        }
        self.finish(CloseReason::Aborted, ctx);
    }

    fn finish(&mut self, reason: CloseReason, ctx: &mut Ctx<'_>) {
        if self.closed.is_some() {
            return;
        }
        if self.mp.active() && self.mp.fully_established && self.established_at.is_some() {
            ctx.mib.dec(Counter::MpCurrEstab);
        }
        self.closed = Some(reason);
        if self.half_open() {
            // Never handed to the application (it timed out or was reset in
            // SYN-RECEIVED): nobody will release it, so it is released
            // here and the endpoint frees it at once.
            self.released = true;
            return;
        }
        ctx.events.push_back(Event::Closed { conn: self.handle, reason });
        if !self.connected_reported && self.role == Role::Client {
            self.connected_reported = true;
        }
    }

    /// Tear a subflow down: no more sending, data reinjected, tuple freed.
    fn kill_subflow(&mut self, i: usize, reason: CloseReason, ctx: &mut Ctx<'_>, reinject: bool) {
        if reinject && self.subflows[i].down.is_none() {
            if !self.csum_sent.is_empty() && self.mp.active() {
                // DSS checksums: the peer may have dropped data its TCP
                // acknowledged (a mapping staged for its checksum, or one
                // that failed it), so everything this subflow carried that
                // is not DATA_ACKed goes again (RFC 8684 §3.7).
                let una = self.snd_una;
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
        ctx.tuples.remove(&(sf.tcb.local, sf.tcb.remote));
        if sf.up_reported {
            ctx.events.push_back(Event::SubflowDown { conn: self.handle, subflow: sf.info(), reason });
        }
    }

    /// Queue a subflow's unacknowledged data for the other subflows
    /// (RFC 8684 §3.3.6: data outstanding on a failed subflow is resent).
    fn reinject_from(&mut self, i: usize, ctx: &mut Ctx<'_>) {
        let una = self.snd_una;
        let others = self.subflows.iter().enumerate().any(|(j, s)| j != i && s.ready && s.alive() && !s.stale);
        if !others || !self.mp.active() {
            return;
        }
        for seg in self.subflows[i].tcb.txq.iter_mut() {
            if seg.reinjected {
                continue;
            }
            seg.reinjected = true;
            let end = seg.dsn + seg.len as u64;
            if end <= una {
                continue;
            }
            let start = seg.dsn.max(una);
            let len = (end - start) as u32;
            self.reinject.push_back((start, len));
            ctx.mib.inc(Counter::MptcpRetrans);
        }
    }

    // ------------------------------------------------------------------
    // Input
    // ------------------------------------------------------------------

    pub fn on_segment(&mut self, now: Instant, sf_id: u32, seg: &Segment<'_>, ctx: &mut Ctx<'_>) {
        let Some(i) = self.sf_index(sf_id) else { return };
        {
            let sf = &mut self.subflows[i];
            sf.tcb.stats.segs_in += 1;
            sf.tcb.last_recv = now;
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

    fn on_syn_sent(&mut self, now: Instant, i: usize, seg: &Segment<'_>, ctx: &mut Ctx<'_>) {
        let iss = self.subflows[i].tcb.iss;
        let ack_ok = seg.has(flags::ACK) && seg.ack == iss + 1u32;
        if seg.has(flags::RST) {
            if ack_ok {
                let reason = tcprst_reason(seg);
                if reason.is_some() {
                    ctx.mib.inc(Counter::MpRstRx);
                }
                if self.subflows[i].initial {
                    self.kill_subflow(i, CloseReason::Refused, ctx, false);
                    self.finish(CloseReason::Refused, ctx);
                } else {
                    self.kill_subflow(i, CloseReason::Reset { mptcp_reason: reason }, ctx, false);
                }
            }
            return;
        }
        if !(seg.has(flags::SYN) && ack_ok) {
            // RFC 9293 §3.10.7.3: an unacceptable ACK gets a RST.
            if seg.has(flags::ACK) && !ack_ok {
                ctx.rsts.push_back(RstOut::reply(seg, None));
            }
            return;
        }
        if self.subflows[i].initial {
            let mpc = seg.opts.mptcp().find_map(|o| match o {
                MptcpOption::MpCapable(m) => Some(*m),
                _ => None,
            });
            self.subflows[i].tcb.on_synack(now, seg);
            if self.mp.enabled && self.mp.fallback.is_none() {
                match mpc {
                    Some(m) if m.version == 1 && m.sender_key.is_some() && !self.mp.syn_mpc_dropped => {
                        let k = Key(m.sender_key.unwrap_or(0));
                        let (t, idsn) = k.token_idsn(Version::V1);
                        self.mp.remote_key = Some(k);
                        self.mp.remote_token = t.0;
                        self.mp.remote_idsn = idsn.0;
                        self.mp.csum |= m.checksum_required();
                        self.rx = RxRing::new(self.rx.capacity(), DataSeq(idsn.0.wrapping_add(1)));
                        self.last_adv_edge = self.rx.nxt;
                        let sf = &mut self.subflows[i];
                        sf.mpc = true;
                        sf.ready = true;
                        ctx.mib.inc(Counter::MpCapableSynAckRx);
                    }
                    _ => {
                        let reason = if self.mp.syn_mpc_dropped {
                            FallbackReason::SynRetransmissions
                        } else {
                            ctx.mib.inc(Counter::MpCapableFallbackSynAck);
                            FallbackReason::NoMpCapableInSynAck
                        };
                        self.rx = RxRing::new(self.rx.capacity(), DataSeq(0));
                        self.fallback(reason, ctx);
                    }
                }
            } else {
                self.rx = RxRing::new(self.rx.capacity(), DataSeq(0));
                self.fb_rx = Some((self.subflows[i].tcb.rcv_nxt, self.rx.nxt));
                self.subflows[i].ready = true;
            }
            // The peer's SYN/ACK window (never scaled) bounds our first flight.
            self.snd_edge = self.snd_una + seg.window as u64;
            self.established_at = Some(now);
            self.connected_reported = true;
            let sf = &mut self.subflows[i];
            sf.up_reported = true;
            sf.hs_ack_due = true;
            ctx.events.push_back(Event::Connected(self.handle));
            ctx.events.push_back(Event::SubflowUp { conn: self.handle, subflow: sf.info() });
            return;
        }
        // A join: verify B's HMAC (RFC 8684 §3.2).
        let synack = seg.opts.mptcp().find_map(|o| match o {
            MptcpOption::MpJoin(MpJoin::SynAck { backup, addr_id, hmac, nonce }) => {
                Some((*backup, *addr_id, *hmac, *nonce))
            }
            _ => None,
        });
        let Some((backup, addr_id, hmac, nonce)) = synack else {
            // RFC 8684 §3.2: a SYN/ACK without MP_JOIN: close the subflow.
            self.reset_subflow(i, rst_reason::MPTCP_ERROR, seg, ctx);
            return;
        };
        ctx.mib.inc(Counter::MpJoinSynAckRx);
        if backup {
            ctx.mib.inc(Counter::MpJoinSynAckBackupRx);
        }
        let (Some(rk), Some(js)) = (self.mp.remote_key, self.subflows[i].join) else { return };
        let expect = join_synack_hmac(Version::V1, rk, self.mp.local_key, nonce, js.local_nonce);
        if expect != hmac {
            ctx.mib.inc(Counter::MpJoinSynAckHmacFailure);
            self.reset_subflow(i, rst_reason::MPTCP_ERROR, seg, ctx);
            return;
        }
        let sf = &mut self.subflows[i];
        sf.tcb.on_synack(now, seg);
        sf.tcb.ack_now = false;
        sf.remote_id = addr_id;
        sf.backup_rem = backup;
        sf.joined = true;
        if let Some(j) = sf.join.as_mut() {
            j.remote_nonce = nonce;
            j.ack_pending = true;
            j.ack_due = true;
        }
    }

    fn on_syn_received(&mut self, now: Instant, i: usize, seg: &Segment<'_>, ctx: &mut Ctx<'_>) {
        let (iss, irs) = (self.subflows[i].tcb.iss, self.subflows[i].tcb.irs);
        if seg.has(flags::RST) {
            if seg.seq == irs + 1u32 || seg.seq == self.subflows[i].tcb.rcv_nxt {
                let initial = self.subflows[i].initial;
                self.kill_subflow(i, CloseReason::Reset { mptcp_reason: tcprst_reason(seg) }, ctx, false);
                if initial {
                    self.finish(CloseReason::Reset { mptcp_reason: None }, ctx);
                }
            }
            return;
        }
        if seg.has(flags::SYN) {
            if seg.seq == irs {
                self.subflows[i].tcb.syn_due = true;
            }
            return;
        }
        if !seg.has(flags::ACK) {
            return;
        }
        if seg.ack != iss + 1u32 {
            ctx.rsts.push_back(RstOut::reply(seg, None));
            return;
        }
        if self.subflows[i].initial {
            if self.mp.active() {
                let mpc = seg.opts.mptcp().find_map(|o| match o {
                    MptcpOption::MpCapable(m) => Some(*m),
                    _ => None,
                });
                match mpc {
                    Some(m) if m.sender_key.is_some() && m.receiver_key == Some(self.mp.local_key.0) => {
                        let k = Key(m.sender_key.unwrap_or(0));
                        self.set_remote_key(k);
                        self.mp.csum |= m.checksum_required();
                        ctx.mib.inc(Counter::MpCapableAckRx);
                        self.subflows[i].ready = true;
                        self.mp.fully_established = true;
                        ctx.mib.inc(Counter::MpCurrEstab);
                        ctx.events.push_back(Event::FullyEstablished(self.handle));
                    }
                    _ => {
                        ctx.mib.inc(Counter::MpCapableFallbackAck);
                        self.rx = RxRing::new(self.rx.capacity(), DataSeq(0));
                        self.last_adv_edge = self.rx.nxt;
                        self.fallback(FallbackReason::NoMpCapableInAck, ctx);
                    }
                }
            } else {
                self.fb_rx = Some((self.subflows[i].tcb.rcv_nxt, self.rx.nxt));
                self.subflows[i].ready = true;
            }
            self.subflows[i].tcb.on_handshake_ack(now, seg);
            self.snd_edge = self.snd_una + ((seg.window as u64) << self.subflows[i].tcb.snd_wscale);
            self.established_at = Some(now);
            self.connected_reported = true;
            let listener = self.listener.unwrap_or(self.local);
            if let Some(FallbackReason::NoMpCapableInSyn) = self.mp.fallback {
                ctx.events.push_back(Event::Fallback { conn: self.handle, reason: FallbackReason::NoMpCapableInSyn });
            }
            ctx.events.push_back(Event::Accepted { conn: self.handle, listener });
            let sf = &mut self.subflows[i];
            sf.up_reported = true;
            ctx.events.push_back(Event::SubflowUp { conn: self.handle, subflow: sf.info() });
            if self.mp.fully_established {
                self.pm_start(now, ctx);
            }
            // The segment may carry data (MP_CAPABLE data form) and more.
            self.on_synchronized(now, i, seg, ctx);
            return;
        }
        // Third ACK of a join: A's HMAC (RFC 8684 §3.2).
        let hmac = seg.opts.mptcp().find_map(|o| match o {
            MptcpOption::MpJoin(MpJoin::Ack { hmac }) => Some(*hmac),
            _ => None,
        });
        let (Some(rk), Some(js)) = (self.mp.remote_key, self.subflows[i].join) else { return };
        let expect = join_ack_hmac(Version::V1, rk, self.mp.local_key, js.remote_nonce, js.local_nonce);
        if hmac != Some(expect) {
            ctx.mib.inc(Counter::MpJoinAckHmacFailure);
            self.reset_subflow(i, rst_reason::PROHIBITED, seg, ctx);
            // Nothing of it stays.
            self.subflows.remove(i);
            return;
        }
        ctx.mib.inc(Counter::MpJoinAckRx);
        let sf = &mut self.subflows[i];
        sf.tcb.on_handshake_ack(now, seg);
        sf.ready = true;
        sf.joined = true;
        // RFC 8684 §3.2: acknowledge the third ACK at once.
        sf.tcb.ack_now = true;
        sf.up_reported = true;
        ctx.events.push_back(Event::SubflowUp { conn: self.handle, subflow: sf.info() });
        self.on_synchronized(now, i, seg, ctx);
    }

    /// Server: a pure ACK with MP_CAPABLE on an established initial
    /// subflow is the client repeating its third ACK: it has seen no DSS
    /// from us yet, and the third ACK is reliable until one shows it
    /// arrived (RFC 8684 §3.1). Answer at once with a DATA_ACK (the first
    /// one, in SYN-RECEIVED, needs no answer: data or the client's next
    /// ACK follows it). At most one answer per [`super::tcp::AckLimiter`]
    /// interval: a peer that repeats it whatever we say gets no ACK loop.
    fn answer_repeated_mpc_ack(&mut self, now: Instant, i: usize, seg: &Segment<'_>) {
        if self.role != Role::Server || !self.mp.active() || !seg.payload.is_empty() {
            return;
        }
        let Some(sf) = self.subflows.get_mut(i).filter(|s| s.initial && s.alive()) else { return };
        let repeated = seg.opts.mptcp().any(|o| {
            matches!(o, MptcpOption::MpCapable(m) if m.data_len.is_none() && m.receiver_key == Some(self.mp.local_key.0))
        });
        if repeated && sf.tcb.state.synchronized() && sf.tcb.oow.allow(now) {
            sf.tcb.ack_now = true;
        }
    }

    fn set_remote_key(&mut self, k: Key) {
        let (t, idsn) = k.token_idsn(Version::V1);
        self.mp.remote_key = Some(k);
        self.mp.remote_token = t.0;
        self.mp.remote_idsn = idsn.0;
        let start = DataSeq(idsn.0.wrapping_add(1));
        if self.rx.nxt != start && self.rx.readable() == 0 && self.rx.ooo.is_empty() {
            self.rx = RxRing::new(self.rx.capacity(), start);
            self.last_adv_edge = start;
        }
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
        self.seg_map = None;
        let wnd = self.rx_window();
        // RST (RFC 9293 §3.10.7.4 second; RFC 5961 §3.2: an exact match
        // resets, one in the window gets a challenge ACK, rate limited;
        // one outside it is dropped silently).
        if seg.has(flags::RST) {
            let sf = &mut self.subflows[i];
            if seg.seq == sf.tcb.rcv_nxt || (sf.tcb.state == TcpState::TimeWait) {
                self.on_rst(i, seg, ctx);
            } else if sf.tcb.acceptable(seg.seq, 0, wnd) {
                challenge_ack(&mut sf.tcb, now, ctx);
            }
            return;
        }
        let seq_len = seg.seq_len();
        {
            let sf = &mut self.subflows[i];
            if sf.tcb.state == TcpState::TimeWait {
                if seg.has(flags::FIN) {
                    // A retransmitted FIN: ACK it and restart the 2MSL wait.
                    sf.tcb.enter_timewait(now);
                    sf.tcb.ack_now = true;
                }
                return;
            }
            if !sf.tcb.acceptable(seg.seq, seq_len, wnd) {
                // RFC 9293 §3.10.7.4: unacceptable, send an ACK and drop;
                // rate limited unless it carries data (no ACK loop does).
                let data = !seg.payload.is_empty() && !seg.has(flags::SYN);
                if data || sf.tcb.oow.allow(now) {
                    sf.tcb.ack_now = true;
                } else {
                    ctx.mib.inc(Counter::TcpAckSkippedSeq);
                }
                return;
            }
            if seg.has(flags::SYN) {
                // RFC 5961 §4: challenge ACK.
                challenge_ack(&mut sf.tcb, now, ctx);
                return;
            }
            if !seg.has(flags::ACK) {
                return;
            }
            sf.tcb.on_timestamp(seg);
        }
        // Join responder: a retransmitted third ACK means ours to it was
        // lost; A waits for it before sending data (RFC 8684 §3.2).
        if !self.subflows[i].initial && seg.opts.mptcp().any(|o| matches!(o, MptcpOption::MpJoin(MpJoin::Ack { .. }))) {
            self.subflows[i].tcb.ack_now = true;
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
                sf.tcb.rto_at = if sf.tcb.has_outstanding() { sf.tcb.rto_at } else { None };
                ctx.mib.inc(Counter::MpJoinAckRx);
                sf.up_reported = true;
                ctx.events.push_back(Event::SubflowUp { conn: self.handle, subflow: sf.info() });
            }
        }
        let out = self.subflows[i].tcb.on_ack(now, seg);
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
        self.subflows[i].tcb.after_ack(now, out.fin_acked);
        if self.mp.active() {
            self.on_mptcp_options(now, i, seg, out.acked, ctx);
            if !self.subflows.get(i).is_some_and(|s| s.alive()) || self.closed.is_some() {
                return;
            }
        } else if out.acked > 0 || self.is_fallback() || !self.mp.enabled {
            if self.rx_fail.is_some() {
                self.on_fail_options(i, seg, ctx);
                if self.closed.is_some() {
                    return;
                }
            }
            // Plain TCP: the data level follows the subflow (after a rewind
            // to an MP_FAIL's DSN, segments from before it have higher DSNs).
            let sf = &self.subflows[i];
            let una = match self.rewound {
                Some(at) => sf.tcb.txq.iter().find(|s| s.seq >= at).map(|s| s.dsn),
                None => sf.tcb.txq.front().map(|s| s.dsn),
            }
            .unwrap_or(self.snd_nxt);
            if una > self.snd_una {
                self.snd_una = una;
            }
            let edge = self.snd_una + sf.tcb.snd_wnd as u64;
            if edge > self.snd_edge {
                self.snd_edge = edge;
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
        if seg.has(flags::FIN) && all_taken {
            let fin_seq = seg.seq + seg.payload.len();
            let sf = &mut self.subflows[i];
            sf.tcb.on_fin(fin_seq);
            if sf.tcb.fin_received {
                if self.mp.active() {
                    // The peer closes this subflow: close ours too, and
                    // resend elsewhere what it still held.
                    if !sf.closing {
                        sf.closing = true;
                        sf.ready = false;
                        sf.tcb.close();
                        self.reinject_from(i, ctx);
                    }
                } else if !self.peer_fin_done {
                    // Plain TCP: the FIN is the end of the data stream.
                    self.peer_fin_done = true;
                    ctx.events.push_back(Event::PeerClosed(self.handle));
                    ctx.events.push_back(Event::Readable(self.handle));
                }
            }
            self.subflows[i].tcb.after_ack(now, false);
        }
        // Plain TCP: a FIN that came before the end of the data is taken
        // once the hole before it fills (by this segment).
        if !self.mp.active() && !self.peer_fin_done && self.subflows[i].tcb.fin_received {
            self.peer_fin_done = true;
            ctx.events.push_back(Event::PeerClosed(self.handle));
            ctx.events.push_back(Event::Readable(self.handle));
        }
        self.subflows[i].tcb.schedule_ack(now);
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

    fn peer_fastclose(&mut self, ctx: &mut Ctx<'_>) {
        // RFC 8684 §3.5: reset every subflow and drop the connection.
        for j in 0..self.subflows.len() {
            let sf = &self.subflows[j];
            if sf.alive() {
                ctx.rsts.push_back(RstOut::on(&sf.tcb));
            }
            self.kill_subflow(j, CloseReason::PeerFastClose, ctx, false);
        }
        self.finish(CloseReason::PeerFastClose, ctx);
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
                if self.app_closed && !self.dfin_acked {
                    self.dfin_due = true;
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
                if self.rx.nxt == DataSeq(self.mp.remote_idsn.wrapping_add(1)) && self.rx.readable() == 0 {
                    // Keep the receive DSN space; the subflow continues from here.
                }
                self.fallback(FallbackReason::NoDss, ctx);
                // What was sent counts as acknowledged by the subflow from now on.
                let sf = &self.subflows[i];
                let una = sf.tcb.txq.front().map_or(self.snd_nxt, |s| s.dsn);
                if una > self.snd_una {
                    self.snd_una = una;
                }
                self.snd_edge = self.snd_una + sf.tcb.snd_wnd as u64;
            }
        }
    }

    /// A DATA_ACK (RFC 8684 §3.3.2) and the window it carries (§3.3.4).
    fn on_data_ack(&mut self, a: WireSeq, window: u16, i: usize, ctx: &mut Ctx<'_>) {
        let ack = match a {
            WireSeq::U64(v) => DataSeq(v),
            WireSeq::U32(v) => DataSeq::extend(v, self.snd_una),
        };
        // DATA_FIN takes one unit after the data.
        let max = self.snd_nxt + (self.app_closed && self.snd_nxt == self.tx.tail) as u64;
        if ack > max || ack < self.snd_una - (1u64 << 31) {
            return;
        }
        if ack > self.snd_una {
            self.snd_una = ack.min(self.tx.tail);
            while self.csum_sent.front().is_some_and(|&(_, d, l)| d + l as u64 <= self.snd_una) {
                self.csum_sent.pop_front();
            }
            if self.app_closed && ack == self.tx.tail + 1u64 && !self.dfin_acked {
                self.dfin_acked = true;
                self.dfin_due = false;
                self.timers.stop(Timer::DataFin);
            }
        }
        let edge = ack + ((window as u64) << self.subflows[i].tcb.snd_wscale);
        if edge > self.snd_edge {
            self.snd_edge = edge;
        }
        let _ = ctx;
    }

    /// A DSS mapping (RFC 8684 §3.3.1): remember it for the subflow's data.
    fn on_mapping(&mut self, i: usize, m: DssMapping, data_fin: bool, seg: (SubflowSeq, usize), ctx: &mut Ctx<'_>) {
        let dsn = match m.dsn {
            WireSeq::U64(v) => DataSeq(v),
            WireSeq::U32(v) => DataSeq::extend(v, self.rx.nxt),
        };
        if m.data_len == 0 {
            // RFC 8684 §3.7: an infinite mapping (with a DATA_FIN too: the
            // DATA_FIN is counted in the length, so it cannot be 0 otherwise,
            // and the kernel also takes length 0 as infinite). Only the
            // one subflow left may fall back; on any other it is a
            // protocol error.
            ctx.mib.inc(Counter::InfiniteMapRx);
            if !self.infinite_fallback_ok(i) {
                self.mapping_error(i, ctx);
                return;
            }
            self.fallback(FallbackReason::InfiniteMapping, ctx);
            // Plain TCP from the mapping's subflow sequence number at its DSN
            // (unless that leaves a hole: then from where we stand, as Linux).
            let ssn = self.subflows[i].tcb.abs_rcv(m.ssn);
            if dsn <= self.rx.nxt {
                self.fb_rx = Some((ssn, dsn));
            }
            return;
        }
        if m.ssn == 0 && data_fin && m.data_len == 1 {
            // DATA_FIN on a segment with no data (RFC 8684 §3.3.3).
            self.on_peer_data_fin(dsn, ctx);
            return;
        }
        let len = m.data_len as u32 - data_fin as u32;
        let sf = &mut self.subflows[i];
        let ssn = sf.tcb.abs_rcv(m.ssn);
        let map = RxMap { ssn, dsn, len, fin: data_fin, csum: m.checksum };
        if data_fin && self.peer_fin.is_none() {
            self.peer_fin = Some(dsn + len as u64);
        }
        self.seg_map = Some(map);
        let sf = &mut self.subflows[i];
        // A mapping may repeat one already known, or a part of one, never
        // contradict it (RFC 8684 §3.3.1: a byte has one DSN).
        if sf.rx_maps.iter().any(|e| map_conflict(e, &map)) {
            ctx.mib.inc(Counter::DssNotMatching);
            self.mapping_error(i, ctx);
            return;
        }
        if sf.rx_maps.iter().any(|e| e.ssn == ssn) {
            return;
        }
        if (ssn + len) <= sf.tcb.rcv_nxt && len > 0 {
            // Old: all its data has arrived already.
            if data_fin {
                let f = dsn + len as u64;
                self.on_peer_data_fin(f, ctx);
            }
            return;
        }
        // A mapping that covers exactly this segment's payload needs no
        // memory: the segment carries it. Keep those that reach further
        // (a sender mapping several segments at once, as Linux does).
        let (pseq, plen) = seg;
        let covers_only_this = ssn == pseq && len as usize == plen;
        if !covers_only_this || self.mp.csum {
            let pos = sf.rx_maps.partition_point(|e| e.ssn < ssn);
            if sf.rx_maps.len() >= 1024 {
                sf.rx_maps.pop_back();
            }
            let pos = pos.min(sf.rx_maps.len());
            sf.rx_maps.insert(pos, map);
        }
        if len == 0 && data_fin {
            self.on_peer_data_fin(dsn, ctx);
        }
    }

    /// A DSS mapping that cannot be right on subflow `i` (RFC 8684 §3.3.1):
    /// one contradicting another, an infinite one beside other subflows,
    /// data no mapping covers. As Linux does: the initial subflow, when it
    /// is the only one, falls back to TCP (RFC 8684 §3.7); any other is
    /// reset with MP_TCPRST "MPTCP-specific error", and the connection
    /// ends with its last subflow. Returns whether the subflow goes on.
    fn mapping_error(&mut self, i: usize, ctx: &mut Ctx<'_>) -> bool {
        if self.infinite_fallback_ok(i) {
            self.fallback(FallbackReason::BadMapping, ctx);
            return true;
        }
        let reason = CloseReason::LocalReset { mptcp_reason: rst_reason::MPTCP_ERROR };
        self.abort_subflow(i, rst_reason::MPTCP_ERROR, reason, ctx);
        if !self.subflows.iter().any(|s| s.alive()) {
            self.finish(reason, ctx);
        }
        false
    }

    fn on_peer_data_fin(&mut self, dsn: DataSeq, ctx: &mut Ctx<'_>) {
        if self.peer_fin_done {
            // A retransmitted DATA_FIN: acknowledge again.
            if let Some(sf) = self.subflows.iter_mut().find(|s| s.ready && s.alive()) {
                sf.tcb.ack_now = true;
            }
            return;
        }
        self.peer_fin = Some(dsn);
        self.check_peer_fin(ctx);
    }

    fn check_peer_fin(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(f) = self.peer_fin
            && !self.peer_fin_done
            && self.rx.nxt == f
        {
            self.peer_fin_done = true;
            ctx.events.push_back(Event::PeerClosed(self.handle));
            ctx.events.push_back(Event::Readable(self.handle));
            self.readable_armed = false;
            // RFC 8684 §3.3.3: DATA_ACK the DATA_FIN at once.
            if let Some(sf) = self.subflows.iter_mut().find(|s| s.ready && s.alive() && s.tcb.state.synchronized()) {
                sf.tcb.ack_now = true;
            }
        }
    }

    /// The receive window we advertise (connection level, RFC 8684 §3.3.4).
    fn rx_window(&self) -> usize {
        self.rx.window()
    }

    /// Place a segment's new payload at the data level. Returns whether all
    /// of it was taken (so a FIN after it may be processed).
    fn take_payload(&mut self, now: Instant, i: usize, seg: &Segment<'_>, ctx: &mut Ctx<'_>) -> bool {
        let wnd = self.rx_window();
        let Some((off, len)) = self.subflows[i].tcb.rx_span(seg.seq, seg.payload.len(), wnd.max(1) + 65535) else {
            // Old duplicate: ACK at once (RFC 9293).
            self.subflows[i].tcb.ack_now = true;
            return true;
        };
        let start = seg.seq + off;
        let data = &seg.payload[off..off + len];
        let mut taken = 0usize;
        let mut unmapped = false;
        if self.rx_fail.is_some() {
            // MP_FAIL sent, no infinite mapping yet: in-order data was sent
            // before the peer rewound; acknowledge and drop it (RFC 8684 §3.7).
            taken = if start == self.subflows[i].tcb.rcv_nxt { len } else { 0 };
        } else if !self.mp.active() {
            // Plain TCP: DSN follows the subflow sequence from the fallback point.
            let (bseq, bdsn) = self.fb_rx.unwrap_or((self.subflows[i].tcb.rcv_nxt, self.rx.nxt));
            let dsn = bdsn + (start.diff(bseq) as i64 as u64);
            let w = self.rx.write_from(dsn, data, seg.shared.map(|s| (s, off)));
            taken = len - w.beyond;
        } else if self.mp.csum {
            taken = self.take_checksummed(i, start, data, ctx);
        } else {
            // Walk the mappings that cover [start, start+len).
            let mut pos = start;
            let end = start + len;
            while pos < end {
                let sf = &self.subflows[i];
                let covers = |m: &RxMap| m.ssn <= pos && pos < m.ssn + m.len;
                let Some(m) = self.seg_map.filter(covers).or_else(|| sf.rx_maps.iter().find(|m| covers(m)).copied())
                else {
                    ctx.mib.inc(Counter::DssNoMatchTcp);
                    unmapped = true;
                    break;
                };
                let piece_end = end.min(m.ssn + m.len);
                let k = piece_end - pos;
                let dsn = m.dsn + (pos - m.ssn) as u64;
                let d = &data[pos - start..pos - start + k];
                let w = self.rx.write_from(dsn, d, seg.shared.map(|s| (s, off + (pos - start))));
                if w.duplicate > 0 {
                    ctx.mib.add(Counter::DuplicateData, 1);
                }
                if dsn + d.len() as u64 > self.rx.read + self.rx.capacity() as u64 {
                    // Past the window we advertised (RFC 8684 §3.3.4): not
                    // kept, not acknowledged.
                    ctx.mib.inc(Counter::NoDssInWindow);
                }
                if w.ooo {
                    ctx.mib.inc(Counter::OfoQueue);
                }
                let took = k - w.beyond;
                taken += took;
                self.subflows[i].cur_map = Some(m);
                if took < k {
                    break;
                }
                pos = piece_end;
            }
        }
        if taken < len {
            // Refused (no window, no mapping, too many holes): tell the peer
            // where we stand at once.
            self.subflows[i].tcb.ack_now = true;
        }
        if taken > 0 {
            let sf = &mut self.subflows[i];
            let in_order = start == sf.tcb.rcv_nxt;
            if !sf.tcb.rx_mark(start, taken) {
                taken = 0;
            } else {
                sf.data_bytes_received += taken as u64;
                if !in_order {
                    ctx.mib.inc(Counter::TcpOfoQueue);
                }
                // Mappings wholly behind rcv_nxt are done.
                let nxt = sf.tcb.rcv_nxt;
                while sf.rx_maps.front().is_some_and(|m| m.ssn + m.len <= nxt && m.len > 0) {
                    let m = sf.rx_maps.pop_front().expect("front exists");
                    if m.fin {
                        self.peer_fin = Some(m.dsn + m.len as u64);
                    }
                }
            }
        }
        if self.rx.readable() > 0 && self.readable_armed {
            self.readable_armed = false;
            ctx.events.push_back(Event::Readable(self.handle));
        }
        self.check_peer_fin(ctx);
        if unmapped {
            // Data no mapping covers: every segment of a mapping carries
            // it (as Linux and we send them), so the peer lies about its
            // lengths (Linux: MPTcpExtDSSNoMatchTCP, a mapping error).
            self.mapping_error(i, ctx);
            return false;
        }
        let _ = now;
        taken == seg.payload.len() - off
    }

    /// DSS checksums on (RFC 8684 §3.3.1): data is taken in subflow order
    /// only, staged per mapping, and delivered once the checksum verifies.
    fn take_checksummed(&mut self, i: usize, start: SubflowSeq, data: &[u8], ctx: &mut Ctx<'_>) -> usize {
        if start != self.subflows[i].tcb.rcv_nxt {
            return 0;
        }
        let mut pos = start;
        let end = start + data.len();
        while pos < end {
            let sf = &mut self.subflows[i];
            if sf.stage.as_ref().is_none_or(|s| s.data.len() as u32 == s.map.len) {
                let Some(m) = sf.rx_maps.iter().find(|m| m.ssn <= pos && pos < m.ssn + m.len).copied() else {
                    ctx.mib.inc(Counter::DssNoMatchTcp);
                    break;
                };
                if m.ssn != pos {
                    break;
                }
                sf.stage = Some(CsumStage { map: m, data: Vec::with_capacity(m.len as usize) });
            }
            let st = sf.stage.as_mut().expect("stage set");
            let want = (st.map.len as usize - st.data.len()).min(end - pos);
            let off = pos - start;
            st.data.extend_from_slice(&data[off..off + want]);
            pos += want;
            if st.data.len() as u32 == st.map.len {
                let st = sf.stage.take().expect("stage set");
                let m = st.map;
                let dl = (m.len + m.fin as u32) as u16;
                let ok = m.csum.is_some_and(|c| {
                    crypto::dss_checksum_ok(m.dsn.0, m.ssn.0.wrapping_sub(sf.tcb.irs.0), dl, c, &st.data)
                });
                if !ok {
                    // RFC 8684 §3.7: the mapping is not delivered. The
                    // only subflow falls back (what follows in this
                    // segment is dropped until the infinite mapping);
                    // otherwise it is reset.
                    return if self.on_checksum_failure(i, m.dsn, ctx) { data.len() } else { 0 };
                }
                let w = self.rx.write(m.dsn, &st.data);
                if w.duplicate > 0 {
                    ctx.mib.inc(Counter::DuplicateData);
                }
                self.subflows[i].cur_map = Some(m);
            }
        }
        pos - start
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
        let gone = &mut self.gone;
        self.subflows.retain(|s| {
            if excess > 0 && dead(s) {
                excess -= 1;
                gone.add(s);
                return false;
            }
            true
        });
    }

    /// Free send-ring space no subflow needs (RFC 8684 §3.3.2: data may be
    /// freed once DATA_ACKed; a subflow may still have to resend its bytes).
    fn release_tx(&mut self, ctx: &mut Ctx<'_>) {
        let mut to = self.snd_una;
        for sf in &self.subflows {
            if sf.alive()
                && let Some(d) = sf.tcb.lowest_dsn()
                && d < to
            {
                to = to.min(d.max(self.tx.head));
            }
        }
        // A stale subflow must not pin the ring: when the ring is short of
        // space, copy out what it still needs and let the ring move on.
        if to < self.snd_una && self.tx.free() < self.tx.capacity() / 4 {
            let una = self.snd_una;
            let head = self.tx.head;
            for sf in self.subflows.iter_mut().filter(|s| s.alive() && s.stale) {
                for seg in sf.tcb.txq.iter() {
                    if seg.dsn >= head && seg.dsn < una && !sf.spill.iter().any(|(d, _)| *d == seg.dsn) {
                        let n = (seg.len as usize).min((self.tx.tail - seg.dsn) as usize);
                        sf.spill.push((seg.dsn, self.tx.slice(seg.dsn, n)));
                    }
                }
            }
            to = self.snd_una;
            for sf in &self.subflows {
                if sf.alive()
                    && !sf.stale
                    && let Some(d) = sf.tcb.lowest_dsn()
                {
                    to = to.min(d.max(self.tx.head));
                }
            }
        }
        let before = self.tx.free();
        self.tx.release(to);
        for sf in self.subflows.iter_mut() {
            let lo = sf.tcb.lowest_dsn();
            sf.spill.retain(|(d, _)| lo.is_some_and(|l| *d >= l));
        }
        if self.writable_wanted && self.tx.free() > before.max(self.tx.capacity() / 8) {
            self.writable_wanted = false;
            ctx.events.push_back(Event::Writable(self.handle));
        }
    }

    /// Move the data-level close on (RFC 8684 §3.3.3).
    fn check_close(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        if self.closed.is_some() {
            return;
        }
        // Plain TCP (fallback): the application closed and all its data is
        // on the subflow: the FIN goes after it (RFC 9293 §3.10.4).
        if !self.mp.active() && self.app_closed && self.snd_nxt >= self.tx.tail {
            if let Some(sf) = self.subflows.first_mut() {
                if sf.alive() && !sf.closing && sf.tcb.state.synchronized() {
                    sf.closing = true;
                    sf.tcb.close();
                }
            }
        }
        if self.mp.active() && self.dfin_acked && self.peer_fin_done {
            // Both DATA_FINs are through: close the subflows.
            for sf in self.subflows.iter_mut() {
                if sf.alive() && !sf.closing && sf.tcb.state.synchronized() {
                    sf.closing = true;
                    sf.ready = false;
                    sf.tcb.close();
                }
            }
        }
        // Subflows that finished their close.
        for j in 0..self.subflows.len() {
            let sf = &self.subflows[j];
            if sf.down.is_none() && sf.tcb.state == TcpState::Closed {
                let reason = CloseReason::Normal;
                let sf = &mut self.subflows[j];
                sf.down = Some(reason);
                ctx.tuples.remove(&(sf.tcb.local, sf.tcb.remote));
                if sf.up_reported {
                    ctx.events.push_back(Event::SubflowDown { conn: self.handle, subflow: sf.info(), reason });
                }
            }
        }
        let data_done = if self.mp.active() {
            self.dfin_acked && self.peer_fin_done
        } else {
            self.peer_fin_done
                && self.app_closed
                && self.subflows.first().is_none_or(|s| s.tcb.fin_seq.is_some_and(|f| s.tcb.snd_una > f))
        };
        let subflows_done = self
            .subflows
            .iter()
            .all(|s| matches!(s.tcb.state, TcpState::Closed | TcpState::TimeWait) || s.down.is_some());
        if data_done && subflows_done {
            self.finish(CloseReason::Normal, ctx);
        }
        let _ = now;
    }

    // ------------------------------------------------------------------
    // Path manager
    // ------------------------------------------------------------------

    /// Fully established: announce `signal` addresses, open `subflow` ones.
    fn pm_start(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        if self.pm.started || !self.mp.active() {
            return;
        }
        self.pm.started = true;
        let primary = self.local.ip();
        for a in ctx.addrs {
            if a.flags.signal && a.addr != primary && a.addr.is_ipv4() == primary.is_ipv4() {
                let port = a.flags.port;
                let rk = self.mp.remote_key.unwrap_or_default();
                let hmac = add_addr_hmac(self.mp.local_key, rk, a.id, a.addr, port);
                self.pm.announce.push((
                    AddAddr { v0: false, echo: false, addr_id: a.id, addr: a.addr, port, hmac: Some(hmac) },
                    Some(now),
                    0,
                ));
            }
        }
        if self.role == Role::Client {
            let subflow_addrs: Vec<LocalAddr> = ctx
                .addrs
                .iter()
                .filter(|a| a.flags.subflow && a.addr != primary && a.addr.is_ipv4() == self.remote.is_ipv4())
                .copied()
                .collect();
            for a in subflow_addrs {
                if self.pm.joins_created >= self.limits.subflows {
                    break;
                }
                self.open_join(now, a, self.remote, ctx);
            }
        }
    }

    /// Open a subflow with MP_JOIN from `from` to `to` (RFC 8684 §3.2).
    fn open_join(&mut self, now: Instant, from: LocalAddr, to: SocketAddr, ctx: &mut Ctx<'_>) {
        let mut port = 0;
        for _ in 0..64 {
            let p = 32768 + (ctx.rng.next_u32() % 28232) as u16;
            if !ctx.tuples.contains_key(&(SocketAddr::new(from.addr, p), to)) {
                port = p;
                break;
            }
        }
        if port == 0 {
            return;
        }
        let local = SocketAddr::new(from.addr, port);
        let iss = ctx.isn(now, local, to);
        let ts_off = ctx.rng.next_u32();
        let tcb = Tcb::client(local, to, iss, ts_off, &self.tcb_params, ctx.cfg.cc.build(self.tcb_params.mss), now);
        let id = self.next_sf_id;
        self.next_sf_id += 1;
        let mut sf = Subflow::new(id, tcb, false);
        sf.local_id = from.id;
        sf.backup_loc = from.flags.backup;
        sf.join_requested = true;
        sf.join =
            Some(JoinState { local_nonce: ctx.rng.next_u32(), remote_nonce: 0, ack_pending: false, ack_due: false });
        self.subflows.push(sf);
        self.subflows_total += 1;
        self.pm.joins_created += 1;
        ctx.tuples.insert((local, to), (ctx.conn_idx, id));
        ctx.mib.inc(Counter::MpJoinSynTx);
        ctx.mib.inc(Counter::TcpActiveOpens);
    }

    /// A SYN with MP_JOIN for this connection (we are B, RFC 8684 §3.2).
    /// Returns false when it is refused (the caller sends the RST).
    pub fn accept_join(
        &mut self,
        now: Instant,
        syn: &Segment<'_>,
        join: (bool, u8, u32),
        ctx: &mut Ctx<'_>,
    ) -> Result<(), u8> {
        let (backup, addr_id, nonce) = join;
        let joins = self.subflows.iter().filter(|s| !s.initial && s.alive()).count();
        if !self.mp.active()
            || !self.mp.fully_established
            || self.closed.is_some()
            || self.app_closed && self.dfin_acked
        {
            return Err(rst_reason::MPTCP_ERROR);
        }
        if joins >= self.limits.subflows as usize {
            ctx.mib.inc(Counter::MpJoinRejected);
            return Err(rst_reason::PROHIBITED);
        }
        let iss = ctx.isn(now, syn.dst, syn.src);
        let ts_off = ctx.rng.next_u32();
        let tcb = Tcb::server(
            syn.dst,
            syn.src,
            iss,
            ts_off,
            &self.tcb_params,
            ctx.cfg.cc.build(self.tcb_params.mss),
            syn,
            now,
        );
        let id = self.next_sf_id;
        self.next_sf_id += 1;
        let mut sf = Subflow::new(id, tcb, false);
        let local = ctx.addrs.iter().find(|a| a.addr == syn.dst.ip()).copied();
        sf.local_id = if syn.dst.ip() == self.local.ip() { 0 } else { local.map_or(0, |a| a.id) };
        sf.backup_loc = local.is_some_and(|a| a.flags.backup);
        sf.remote_id = addr_id;
        sf.backup_rem = backup;
        sf.joined = true;
        sf.join = Some(JoinState {
            local_nonce: ctx.rng.next_u32(),
            remote_nonce: nonce,
            ack_pending: false,
            ack_due: false,
        });
        self.subflows.push(sf);
        self.subflows_total += 1;
        ctx.tuples.insert((syn.dst, syn.src), (ctx.conn_idx, id));
        ctx.mib.inc(Counter::TcpPassiveOpens);
        Ok(())
    }

    fn on_add_addr(&mut self, now: Instant, a: AddAddr, ctx: &mut Ctx<'_>) {
        if a.echo {
            ctx.mib.inc(Counter::EchoAdd);
            self.pm.announce.retain(|(x, _, _)| !(x.addr_id == a.addr_id && x.addr == a.addr));
            return;
        }
        let rk = self.mp.remote_key.unwrap_or_default();
        let ok = a.hmac == Some(add_addr_hmac(rk, self.mp.local_key, a.addr_id, a.addr, a.port));
        if !ok {
            ctx.mib.inc(Counter::AddAddrDrop);
            return;
        }
        ctx.mib.inc(Counter::AddAddr);
        if a.port.is_some() {
            ctx.mib.inc(Counter::PortAdd);
        }
        // RFC 8684 §3.4.1: echo it; one echo queued per announcement, and
        // a few at most (the peer repeats what is not echoed).
        let echo = AddAddr { echo: true, hmac: None, ..a };
        if !self.pm.echo.contains(&echo) {
            if self.pm.echo.len() < MAX_PENDING_ECHOES {
                self.pm.echo.push_back(echo);
            } else {
                ctx.mib.inc(Counter::EchoAddTxDrop);
            }
        }
        let port = a.port.unwrap_or(self.remote.port());
        let addr = SocketAddr::new(a.addr, port);
        // An address ID names one address (RFC 8684 §3.4.1): a new one for
        // a known ID replaces it; a list of a few at most is kept.
        let known = self.pm.remote_addrs.len();
        match self.pm.remote_addrs.iter_mut().find(|(id, _)| *id == a.addr_id) {
            Some((_, x)) if *x == addr => return,
            Some((_, x)) => *x = addr,
            None if known >= MAX_REMOTE_ADDRS => {
                ctx.mib.inc(Counter::AddAddrDrop);
                return;
            }
            None => self.pm.remote_addrs.push((a.addr_id, addr)),
        }
        ctx.events.push_back(Event::AddressAnnounced { conn: self.handle, addr_id: a.addr_id, addr });
        if self.role == Role::Client
            && self.pm.add_addr_accepted < self.limits.add_addr_accepted
            && self.pm.joins_created < self.limits.subflows
            && a.addr.is_ipv4() == self.local.is_ipv4()
        {
            self.pm.add_addr_accepted += 1;
            let from = LocalAddr { id: 0, addr: self.local.ip(), flags: AddrFlags::default() };
            if !self.subflows.iter().any(|s| s.alive() && s.tcb.remote == addr) {
                self.open_join(now, from, addr, ctx);
            }
        }
    }

    fn on_remove_addr(&mut self, r: &RemoveAddr, ctx: &mut Ctx<'_>) {
        for &id in r.addr_ids.iter() {
            ctx.mib.inc(Counter::RmAddr);
            self.pm.remote_addrs.retain(|(x, _)| *x != id);
            ctx.events.push_back(Event::AddressRemoved { conn: self.handle, addr_id: id });
            for j in 0..self.subflows.len() {
                let sf = &self.subflows[j];
                if sf.alive() && sf.remote_id == id && !(sf.initial && id == 0 && self.subflows.len() == 1) {
                    ctx.mib.inc(Counter::RmSubflow);
                    self.abort_subflow(j, rst_reason::UNSPECIFIED, CloseReason::AddressRemoved, ctx);
                }
            }
        }
    }

    /// The local address `addr` (id `id`) goes away.
    pub fn remove_local_address(&mut self, addr: IpAddr, id: u8, ctx: &mut Ctx<'_>) {
        if !self.mp.active() {
            return;
        }
        let announced = self.pm.announce.iter().any(|(a, _, _)| a.addr == addr) || self.pm.signals_sent > 0;
        let users: Vec<usize> = (0..self.subflows.len())
            .filter(|&j| self.subflows[j].alive() && self.subflows[j].tcb.local.ip() == addr)
            .collect();
        self.pm.announce.retain(|(a, _, _)| a.addr != addr);
        if !users.is_empty() || announced {
            let rid = if users.iter().any(|&j| self.subflows[j].initial) { 0 } else { id };
            self.pm.remove.push(rid);
        }
        for j in users {
            ctx.mib.inc(Counter::RmSubflow);
            self.abort_subflow(j, rst_reason::UNSPECIFIED, CloseReason::AddressRemoved, ctx);
        }
    }

    /// MP_PRIO for the subflows on `addr` (RFC 8684 §3.3.8).
    pub fn set_backup(&mut self, addr: IpAddr, backup: bool) {
        for sf in self.subflows.iter_mut().filter(|s| s.alive() && s.tcb.local.ip() == addr) {
            if sf.backup_loc != backup {
                sf.backup_loc = backup;
                if self.mp.fallback.is_none() && self.mp.enabled {
                    sf.pending_prio = Some(backup);
                }
            }
        }
    }

    // ------------------------------------------------------------------
    // Timers
    // ------------------------------------------------------------------

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
            let tcb = &mut self.subflows[j].tcb;
            if tcb.delack_at.is_some_and(|t| t <= now) {
                tcb.delack_at = None;
                tcb.ack_now = true;
                ctx.mib.inc(Counter::TcpDelayedAcks);
            }
            if tcb.timewait_at.is_some_and(|t| t <= now) {
                tcb.timewait_at = None;
                tcb.state = TcpState::Closed;
                ctx.mib.inc(Counter::TcpTimeWaited);
            }
            if tcb.tlp_at.is_some_and(|t| t <= now) {
                tcb.on_tlp(now);
            }
            if self.subflows[j].tcb.rto_at.is_some_and(|t| t <= now) {
                self.on_subflow_rto(now, j, ctx);
            }
        }
        let max_rto = self.tcb_params.max_rto;
        if let Some(f) = self.rx_fail.as_mut()
            && self.timers.expire(Timer::MpFail, now)
        {
            // No infinite mapping came: MP_FAIL again (unless echoed), and
            // give up in the end, as Linux does after its MP_FAIL timeout.
            f.tries += 1;
            if f.tries > MP_FAIL_TRIES {
                self.rx_fail = None;
                self.reset_all(rst_reason::MIDDLEBOX, ctx);
                return;
            }
            let (id, dsn, echoed) = (f.sf_id, f.dsn, f.echoed);
            if echoed {
                let rto = self.subflows.iter().find(|s| s.id == id).map_or(Duration::from_secs(1), |s| s.tcb.rtt.rto());
                self.timers.set_backed_off(Timer::MpFail, now, rto, f.tries, max_rto);
            } else {
                self.mp_fail_out = Some((id, dsn.0));
            }
        }
        // (`expire` first: it stops the timer whatever the rest says.)
        if self.timers.expire(Timer::DataFin, now) && !self.dfin_acked && self.closed.is_none() {
            self.dfin_due = true;
            self.dfin_tries += 1;
        }
        if self.timers.expire(Timer::Persist, now) {
            self.persist_backoff += 1;
            if let Some(sf) = self.subflows.iter_mut().find(|s| s.ready && s.alive()) {
                // A window probe: an ACK with an old sequence number makes
                // the peer answer with its window (RFC 9293 §3.8.6.1).
                sf.tcb.ack_now = true;
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

    fn on_subflow_rto(&mut self, now: Instant, j: usize, ctx: &mut Ctx<'_>) {
        let state = self.subflows[j].tcb.state;
        let initial = self.subflows[j].initial;
        if matches!(state, TcpState::SynSent | TcpState::SynReceived) {
            let sf = &mut self.subflows[j];
            sf.tcb.on_rto(now);
            if sf.tcb.syn_retries > self.syn_retries {
                if initial {
                    self.kill_subflow(j, CloseReason::Timeout, ctx, false);
                    self.finish(CloseReason::Timeout, ctx);
                } else {
                    self.kill_subflow(j, CloseReason::Timeout, ctx, false);
                }
                return;
            }
            if initial
                && state == TcpState::SynSent
                && self.mp.enabled
                && sf.tcb.syn_retries >= self.mpc_syn_retries
                && !self.mp.syn_mpc_dropped
            {
                // Leave MP_CAPABLE out from now on (a middlebox may drop it).
                self.mp.syn_mpc_dropped = true;
                ctx.mib.inc(Counter::MpCapableSynTxDrop);
            }
            return;
        }
        // The initiator's join third ACK was not acknowledged.
        if let Some(js) = self.subflows[j].join.as_mut()
            && js.ack_pending
        {
            js.ack_due = true;
            if self.subflows[j].tcb.back_off(now) > self.max_rtos {
                self.abort_subflow(j, rst_reason::MPTCP_ERROR, CloseReason::Timeout, ctx);
            }
            return;
        }
        let fired = self.subflows[j].tcb.on_rto(now);
        if !fired {
            return;
        }
        ctx.mib.inc(Counter::TcpTimeouts);
        let sf = &mut self.subflows[j];
        if sf.tcb.rto_count > self.max_rtos {
            let alive_others = self.subflows.iter().enumerate().any(|(k, s)| k != j && s.alive());
            self.abort_subflow(j, rst_reason::UNSPECIFIED, CloseReason::Timeout, ctx);
            if !alive_others {
                self.finish(CloseReason::Timeout, ctx);
            }
            return;
        }
        if sf.tcb.rto_count >= self.stale_rtos && self.mp.active() {
            let others = self.subflows.iter().enumerate().any(|(k, s)| k != j && s.ready && s.alive() && !s.stale);
            if others {
                if !self.subflows[j].stale {
                    self.subflows[j].stale = true;
                    ctx.mib.inc(Counter::SubflowStale);
                }
                self.reinject_from(j, ctx);
            }
        }
    }

    // ------------------------------------------------------------------
    // Output
    // ------------------------------------------------------------------

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
            let j = (self.rr + k) % n;
            if let Some(t) = self.poll_control(now, j, out, ctx) {
                self.rr = (j + 1) % n;
                return Some(t);
            }
        }
        // 2. New data, as the scheduler says.
        if let Some(t) = self.poll_data(now, out, ctx) {
            return Some(t);
        }
        // 3. ACKs and signals.
        for k in 0..n {
            let j = (self.rr + k) % n;
            if let Some(t) = self.poll_ack(now, j, out, ctx) {
                return Some(t);
            }
        }
        self.arm_persist(now);
        None
    }

    fn arm_persist(&mut self, now: Instant) {
        let window_blocked =
            self.snd_nxt < self.tx.tail && self.snd_edge <= self.snd_nxt && self.snd_una == self.snd_nxt;
        // Data every subflow's TCP has acknowledged but the DATA_ACK has not
        // covered yet: no subflow timer runs, and the peer may not send an
        // ACK by itself once it moves the data on (Linux sends none unless
        // its window doubles), so a stall with our window used up would
        // last forever. Probe as for a zero window (RFC 8684 §3.3.6: the
        // connection level must recover what the subflows do not).
        let data_ack_lag = self.mp.active()
            && self.snd_una < self.snd_nxt
            && self.subflows.iter().all(|s| !s.alive() || s.tcb.txq.is_empty());
        let blocked = window_blocked || data_ack_lag;
        if blocked {
            if !self.timers.is_running(Timer::Persist) {
                let rto = self
                    .subflows
                    .iter()
                    .filter(|s| s.alive())
                    .map(|s| s.tcb.rtt.rto())
                    .max()
                    .unwrap_or(Duration::from_secs(1));
                let max_rto = self.tcb_params.max_rto;
                self.timers.set_backed_off(Timer::Persist, now, rto, self.persist_backoff, max_rto);
            }
        } else {
            self.timers.stop(Timer::Persist);
            self.persist_backoff = 0;
        }
    }

    fn poll_control(&mut self, now: Instant, j: usize, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Option<Tx> {
        let sf = &self.subflows[j];
        if sf.down.is_some() {
            return None;
        }
        let tcb = &sf.tcb;
        if tcb.syn_due && matches!(tcb.state, TcpState::SynSent | TcpState::SynReceived) {
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
        if let Some((id, dsn)) = self.mp_fail_out
            && sf.id == id
        {
            self.mp_fail_out = None;
            if let Some(f) = self.rx_fail {
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
            let data_pending = !self.mp.active() && (self.snd_nxt < self.tx.tail);
            if !data_pending && tcb.lost_bytes() == 0 {
                return Some(self.emit_fin(now, j, out, ctx));
            }
        }
        None
    }

    /// Payload room of a data segment on subflow `j`.
    fn seg_max(&self, j: usize) -> usize {
        let sf = &self.subflows[j];
        let mut opt = if sf.tcb.ts_ok { 12 } else { 0 };
        if self.mp.active() {
            // DSS with 4-byte DATA_ACK and DSN (RFC 8684 §3.3: the receiver
            // extends them), 20 bytes padded; the MP_CAPABLE data form, 24.
            opt += if self.role == Role::Client && !self.mp.fully_established { 24 } else { 20 };
        } else if self.tx_infinite.is_some() {
            // The infinite mapping: DSS with a 4-byte DATA_ACK, an 8-byte
            // DSN and the checksum field.
            opt += 24;
        }
        sf.tcb.mss.saturating_sub(opt).max(1)
    }

    fn build_views(&mut self) {
        self.views.clear();
        // Room counts only when a segment fits (sender SWS avoidance,
        // RFC 9293 §3.8.6.2.1): a full one, or all the data there is.
        let pending = ((self.tx.tail - self.snd_nxt) as usize).max(1);
        for (j, sf) in self.subflows.iter().enumerate() {
            let need = self.seg_max(j).min(pending);
            let usable = sf.ready
                && sf.alive()
                && !sf.closing
                && sf.tcb.may_send_data()
                && !sf.stale
                && sf.tcb.lost_bytes() == 0;
            self.views.push(SubflowView {
                index: j,
                srtt_us: sf.tcb.rtt.srtt().map(|d| d.as_micros()),
                room: if usable && sf.tcb.cwnd_room() >= need { sf.tcb.cwnd_room() } else { 0 },
                backup: sf.backup_loc || sf.backup_rem,
                usable,
            });
        }
        // With every subflow stale, use them anyway rather than stop.
        if !self.views.iter().any(|v| v.usable) {
            for v in self.views.iter_mut() {
                let sf = &self.subflows[v.index];
                if sf.ready && sf.alive() && !sf.closing && sf.tcb.may_send_data() && sf.tcb.lost_bytes() == 0 {
                    v.usable = true;
                    v.room = sf.tcb.cwnd_room();
                }
            }
        }
    }

    fn poll_data(&mut self, now: Instant, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Option<Tx> {
        if self.closed.is_some() || self.subflows.is_empty() {
            return None;
        }
        if !self.subflows.iter().any(|s| s.ready) {
            return None;
        }
        self.build_views();
        // The client's first mapping, in the MP_CAPABLE data form.
        if self.mp.active() && self.role == Role::Client && !self.mp.fully_established {
            return self.poll_mpc_data(now, out, ctx);
        }
        if let Some((s, len, off)) = self.mpc_map
            && off < len
        {
            let j = 0;
            if self.views.get(j).is_some_and(|v| v.usable) {
                let want = ((len - off) as usize).min(self.seg_max(j));
                if self.views[j].room >= want {
                    let dsn = s + off as u64;
                    self.mpc_map = Some((s, len, off + want as u32));
                    let map = TxMap { dsn: s, ssn: 1, len: len as u16, checksum: self.mpc_checksum(s, len), mpc: true };
                    return Some(self.emit_new(now, j, dsn, want, Some(map), out, ctx, false));
                }
            }
            return None;
        }
        // Redundant copies owed to particular subflows.
        for j in 0..self.subflows.len() {
            if !self.views[j].usable {
                continue;
            }
            while let Some(&(d, l)) = self.subflows[j].redundant.front() {
                let end = d + l as u64;
                if end <= self.snd_una {
                    self.subflows[j].redundant.pop_front();
                    continue;
                }
                let start = d.max(self.snd_una);
                let want = ((end - start) as usize).min(self.seg_max(j));
                if self.views[j].room < want {
                    break;
                }
                let rest = (end - (start + want as u64)) as u32;
                self.subflows[j].redundant.pop_front();
                if rest > 0 {
                    self.subflows[j].redundant.push_front((start + want as u64, rest));
                }
                return Some(self.emit_new(now, j, start, want, None, out, ctx, true));
            }
        }
        // Reinjections.
        while let Some(&(d, l)) = self.reinject.front() {
            let end = d + l as u64;
            if end <= self.snd_una || self.mp.fallback.is_some() {
                self.reinject.pop_front();
                continue;
            }
            let start = d.max(self.snd_una);
            let pick = self.sched.pick(&self.views);
            let j = match pick {
                Pick::One(j) | Pick::Redundant(j) => j,
                Pick::None => break,
            };
            let want = ((end - start) as usize).min(self.seg_max(j));
            if self.views[j].room < want.min(self.seg_max(j)) {
                break;
            }
            self.reinject.pop_front();
            let rest = (end - (start + want as u64)) as u32;
            if rest > 0 {
                self.reinject.push_front((start + want as u64, rest));
            }
            return Some(self.emit_new(now, j, start, want, None, out, ctx, true));
        }
        // New data.
        let avail = (self.tx.tail - self.snd_nxt) as usize;
        let wnd = if self.snd_edge > self.snd_nxt { (self.snd_edge - self.snd_nxt) as usize } else { 0 };
        let can = avail.min(wnd);
        if can == 0 {
            return None;
        }
        let pick = self.sched.pick(&self.views);
        let (j, redundant) = match pick {
            Pick::One(j) => (j, false),
            Pick::Redundant(j) => (j, true),
            Pick::None => return None,
        };
        let want = can.min(self.seg_max(j));
        // Sender SWS avoidance: a partial segment only at the end of the data.
        if self.views[j].room < want {
            return None;
        }
        let dsn = self.snd_nxt;
        self.snd_nxt += want as u64;
        if redundant {
            for k in 0..self.subflows.len() {
                if k != j && self.views[k].usable {
                    self.subflows[k].redundant.push_back((dsn, want as u32));
                }
            }
        }
        Some(self.emit_new(now, j, dsn, want, None, out, ctx, false))
    }

    fn mpc_checksum(&self, s: DataSeq, len: u32) -> Option<u16> {
        if !self.mp.csum {
            return None;
        }
        let mut c = crypto::dss_checksum_start(s.0, 1, len as u16);
        self.tx.with_slices(s, len as usize, |p| c.add(p));
        Some(c.finish())
    }

    /// Client before the peer confirmed our key: only the first mapping,
    /// in the MP_CAPABLE data form (RFC 8684 §3.1).
    fn poll_mpc_data(&mut self, now: Instant, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Option<Tx> {
        let j = 0;
        if !self.views.first().is_some_and(|v| v.usable) {
            return None;
        }
        if self.mpc_map.is_none() && !self.mpc_map_done {
            let avail = (self.tx.tail - self.snd_nxt) as usize;
            let wnd = if self.snd_edge > self.snd_nxt { (self.snd_edge - self.snd_nxt) as usize } else { 0 };
            let len = avail.min(wnd).min(65535).min(self.subflows[j].tcb.cc.window());
            if len == 0 {
                return None;
            }
            self.mpc_map = Some((self.snd_nxt, len as u32, 0));
            self.mpc_map_done = true;
            self.snd_nxt += len as u64;
        }
        let (s, len, off) = self.mpc_map?;
        if off >= len {
            return None;
        }
        let want = ((len - off) as usize).min(self.seg_max(j));
        if self.views[j].room < want {
            return None;
        }
        self.mpc_map = Some((s, len, off + want as u32));
        let map = TxMap { dsn: s, ssn: 1, len: len as u16, checksum: self.mpc_checksum(s, len), mpc: true };
        Some(self.emit_new(now, j, s + off as u64, want, Some(map), out, ctx, false))
    }

    fn poll_ack(&mut self, now: Instant, j: usize, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Option<Tx> {
        let sf = &self.subflows[j];
        if sf.down.is_some() || !sf.tcb.state.synchronized() {
            return None;
        }
        // The infinite mapping with no data left to carry it.
        if let Some(p) = self.tx_infinite
            && p >= self.tx.tail
        {
            self.tx_infinite = None;
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
            if self.app_closed
                && !self.dfin_acked
                && self.snd_nxt == self.tx.tail
                && (self.dfin_due || !self.timers.is_running(Timer::DataFin))
            {
                // Before the peer confirmed our key (client, no DSS seen),
                // `emit_ack` repeats the MP_CAPABLE third ACK instead, on
                // this same backed-off timer, until the server's DATA_ACK
                // shows it arrived (RFC 8684 §3.1); the DATA_FIN follows.
                self.dfin_due = false;
                let rto = self.subflows[j].tcb.rtt.rto();
                self.timers.set_backed_off(Timer::DataFin, now, rto, self.dfin_tries, self.tcb_params.max_rto);
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

    // ------------------------------------------------------------------
    // Segment builders
    // ------------------------------------------------------------------

    fn window_field(&self, tcb: &Tcb, syn: bool) -> u16 {
        let w = self.rx_window();
        if syn { w.min(65535) as u16 } else { (w >> tcb.rcv_wscale).min(65535) as u16 }
    }

    fn dss_ack(&self) -> Dss {
        Dss { data_fin: false, data_ack: Some(WireSeq::U64(self.data_ack().0)), mapping: None }
    }

    #[allow(clippy::too_many_arguments)]
    fn write(
        &mut self,
        now: Instant,
        j: usize,
        out: &mut TxOut<'_>,
        seq: SubflowSeq,
        fl: u8,
        opts: &OptList,
        payload: Payload,
        ctx: &mut Ctx<'_>,
    ) -> Tx {
        let syn = fl & flags::SYN != 0;
        let window = self.window_field(&self.subflows[j].tcb, syn);
        let Connection { subflows, tx, .. } = self;
        let sf = &mut subflows[j];
        let ack = if fl & flags::ACK != 0 { sf.tcb.rcv_nxt } else { SubflowSeq(0) };
        let repr = SegmentRepr {
            src: sf.tcb.local,
            dst: sf.tcb.remote,
            seq,
            ack,
            flags: fl,
            window,
            options: opts.as_slice(),
        };
        let plen = match payload {
            Payload::None => 0,
            Payload::Data(_, l) => l,
        };
        let checksum = !self.cfg_checksum_offload;
        let spill = &sf.spill;
        let n = match payload {
            Payload::Data(dsn, len) if out.by_ref && len > 0 => {
                // Zero-copy: the payload goes by reference.
                let data = if dsn >= tx.head {
                    tx.slice(dsn, len)
                } else if let Some((d, v)) =
                    spill.iter().find(|(d, v)| *d <= dsn && dsn + len as u64 <= *d + v.len() as u64)
                {
                    let off = (dsn - *d) as usize;
                    v.slice(off..off + len)
                } else {
                    // Not held any more: only reachable for data the peer
                    // already acknowledged at the data level.
                    Slice::copy_from(&vec![0; len])
                };
                let h = wire::emit_parts(&repr, &data, out.buf, checksum);
                if h.is_ok() {
                    out.payload = Some(data);
                }
                h
            }
            _ => wire::emit(&repr, plen, out.buf, checksum, |p| {
                if let Payload::Data(dsn, _) = payload {
                    if dsn >= tx.head {
                        tx.read_at(dsn, p);
                    } else if let Some((d, v)) =
                        spill.iter().find(|(d, v)| *d <= dsn && dsn + p.len() as u64 <= *d + v.len() as u64)
                    {
                        let off = (dsn - *d) as usize;
                        p.copy_from_slice(&v[off..off + p.len()]);
                    } else {
                        // Not held any more: only reachable for data the peer
                        // already acknowledged at the data level.
                        p.fill(0);
                    }
                }
            }),
        };
        if opts.refused() > 0 {
            ctx.mib.add(Counter::OptionSpaceDrop, u64::from(opts.refused()));
        }
        sf.tcb.stats.segs_out += 1;
        if fl & flags::ACK != 0 {
            let right = sf.tcb.rcv_nxt + ((window as u32) << if syn { 0 } else { sf.tcb.rcv_wscale });
            sf.tcb.on_ack_sent(now, right);
            let adv = self.rx.nxt + ((window as u64) << if syn { 0 } else { self.subflows[j].tcb.rcv_wscale });
            if adv > self.last_adv_edge {
                self.last_adv_edge = adv;
            }
        }
        let sf = &self.subflows[j];
        n.map(|n| (n, sf.tcb.local, sf.tcb.remote))
    }

    fn emit_syn(&mut self, now: Instant, j: usize, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Tx {
        let sf = &self.subflows[j];
        let tcb = &sf.tcb;
        let server = tcb.state == TcpState::SynReceived;
        let mut o = syn_options(
            self.mss_local,
            tcb.sack_ok,
            tcb.ts_ok.then(|| (tcb.tsval(now), if server { tcb.ts_recent } else { 0 })),
            (!server || tcb.wscale_ok).then_some(tcb.rcv_wscale),
        );
        let csum_flag = if self.mp.csum { MpCapable::FLAG_CHECKSUM } else { 0 };
        if sf.initial {
            if self.mp.active() && (server || !self.mp.syn_mpc_dropped) {
                let m = MpCapable {
                    version: 1,
                    flags: csum_flag | MpCapable::FLAG_HMAC_SHA,
                    sender_key: if server { Some(self.mp.local_key.0) } else { None },
                    ..Default::default()
                };
                o.push(TcpOption::Mptcp(MptcpOption::MpCapable(m)));
            }
        } else if let Some(js) = sf.join {
            let opt = if server {
                let rk = self.mp.remote_key.unwrap_or_default();
                MpJoin::SynAck {
                    backup: sf.backup_loc,
                    addr_id: sf.local_id,
                    hmac: join_synack_hmac(Version::V1, self.mp.local_key, rk, js.local_nonce, js.remote_nonce),
                    nonce: js.local_nonce,
                }
            } else {
                MpJoin::Syn {
                    backup: sf.backup_loc,
                    addr_id: sf.local_id,
                    token: self.mp.remote_token,
                    nonce: js.local_nonce,
                }
            };
            o.push(TcpOption::Mptcp(MptcpOption::MpJoin(opt)));
        }
        let fl = if server { flags::SYN | flags::ACK } else { flags::SYN };
        let seq = tcb.iss;
        let t = self.write(now, j, out, seq, fl, &o, Payload::None, ctx);
        let tcb = &mut self.subflows[j].tcb;
        tcb.syn_due = false;
        if tcb.syn_sent_at.is_none() || tcb.syn_retries > 0 {
            tcb.syn_sent_at = Some(now);
        }
        tcb.arm_rto_if_idle(now);
        t
    }

    fn emit_join_ack(&mut self, now: Instant, j: usize, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Tx {
        let sf = &self.subflows[j];
        let js = sf.join.expect("join state");
        let rk = self.mp.remote_key.unwrap_or_default();
        let hmac = join_ack_hmac(Version::V1, self.mp.local_key, rk, js.local_nonce, js.remote_nonce);
        let mut o = OptList::new();
        o.timestamps(&sf.tcb, now);
        o.push(TcpOption::Mptcp(MptcpOption::MpJoin(MpJoin::Ack { hmac })));
        let seq = sf.tcb.snd_nxt;
        let t = self.write(now, j, out, seq, flags::ACK, &o, Payload::None, ctx);
        let sf = &mut self.subflows[j];
        if let Some(js) = sf.join.as_mut() {
            js.ack_due = false;
        }
        if sf.tcb.rto_at.is_none() {
            sf.tcb.rto_at = Some(now + sf.tcb.rtt.rto());
        }
        t
    }

    /// The MPTCP option of a data segment.
    fn data_option(&self, map: &TxMap, data_fin: bool) -> MptcpOption {
        if map.mpc && !self.mp.fully_established && self.role == Role::Client {
            MptcpOption::MpCapable(MpCapable {
                version: 1,
                flags: if self.mp.csum { MpCapable::FLAG_CHECKSUM } else { 0 } | MpCapable::FLAG_HMAC_SHA,
                sender_key: Some(self.mp.local_key.0),
                receiver_key: self.mp.remote_key.map(|k| k.0),
                data_len: Some(map.len),
                checksum: map.checksum,
            })
        } else {
            MptcpOption::Dss(Dss {
                data_fin,
                data_ack: Some(WireSeq::U32(self.data_ack().low32())),
                mapping: Some(DssMapping {
                    // The infinite mapping with the full DSN, as Linux sends it.
                    dsn: if map.len == 0 { WireSeq::U64(map.dsn.0) } else { WireSeq::U32(map.dsn.low32()) },
                    ssn: map.ssn,
                    data_len: map.len,
                    checksum: map.checksum,
                }),
            })
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_new(
        &mut self,
        now: Instant,
        j: usize,
        dsn: DataSeq,
        len: usize,
        map: Option<TxMap>,
        out: &mut TxOut<'_>,
        ctx: &mut Ctx<'_>,
        reinjection: bool,
    ) -> Tx {
        let seq = self.subflows[j].tcb.snd_nxt;
        let mptcp = self.mp.active();
        let mut map = map.or_else(|| {
            mptcp.then(|| {
                let ssn = self.subflows[j].tcb.rel(seq);
                let checksum = self.mp.csum.then(|| {
                    let mut c = crypto::dss_checksum_start(dsn.0, ssn, len as u16);
                    self.tx.with_slices(dsn, len, |p| c.add(p));
                    c.finish()
                });
                TxMap { dsn, ssn, len: len as u16, checksum, mpc: false }
            })
        });
        if self.mp.csum && mptcp {
            self.csum_sent.push_back((self.subflows[j].id, dsn, len as u32));
        }
        if !mptcp && self.tx_infinite == Some(dsn) {
            // RFC 8684 §3.7: after MP_FAIL, the first data carries the
            // infinite mapping (data-level length 0) from the DSN we resume at.
            self.tx_infinite = None;
            ctx.mib.inc(Counter::InfiniteMapTx);
            let ssn = self.subflows[j].tcb.rel(seq);
            map = Some(TxMap { dsn, ssn, len: 0, checksum: self.mp.csum.then_some(0), mpc: false });
        }
        let mut o = OptList::new();
        o.timestamps(&self.subflows[j].tcb, now);
        if let Some(m) = &map {
            o.push(TcpOption::Mptcp(self.data_option(m, false)));
        }
        debug_assert!(o.bytes() <= 40);
        let fl = flags::ACK | if dsn + len as u64 == self.tx.tail { flags::PSH } else { 0 };
        let t = self.write(now, j, out, seq, fl, &o, Payload::Data(dsn, len), ctx);
        let sf = &mut self.subflows[j];
        sf.tcb.on_sent_new(now, TxSeg::new(seq, len as u32, dsn, map, now));
        sf.data_bytes_sent += len as u64;
        if reinjection {
            sf.bytes_reinjected += len as u64;
            self.bytes_reinjected += len as u64;
        }
        let _ = ctx;
        t
    }

    fn emit_retransmit(&mut self, now: Instant, j: usize, idx: usize, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Tx {
        let seg = self.subflows[j].tcb.txq[idx];
        let mut o = OptList::new();
        o.timestamps(&self.subflows[j].tcb, now);
        if let Some(m) = &seg.map
            && (self.mp.active() || m.len == 0)
        {
            // The infinite mapping goes again with its data.
            o.push(TcpOption::Mptcp(self.data_option(m, false)));
        }
        let t = self.write(now, j, out, seg.seq, flags::ACK, &o, Payload::Data(seg.dsn, seg.len as usize), ctx);
        self.subflows[j].tcb.on_retransmitted(now, idx);
        self.retransmits += 1;
        self.bytes_retrans += seg.len as u64;
        ctx.mib.inc(Counter::TcpRetransSegs);
        if self.subflows[j].tcb.in_recovery() {
            ctx.mib.inc(Counter::TcpFastRetrans);
        }
        t
    }

    fn emit_fin(&mut self, now: Instant, j: usize, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Tx {
        let mut o = OptList::new();
        o.timestamps(&self.subflows[j].tcb, now);
        if self.mp.active() {
            o.push(TcpOption::Mptcp(MptcpOption::Dss(self.dss_ack())));
        }
        let tcb = &self.subflows[j].tcb;
        let seq = tcb.fin_seq.unwrap_or(tcb.snd_nxt);
        let t = self.write(now, j, out, seq, flags::FIN | flags::ACK, &o, Payload::None, ctx);
        self.subflows[j].tcb.on_fin_sent(now);
        t
    }

    /// A pure ACK: DSS with DATA_ACK (or the MP_CAPABLE keys while not yet
    /// confirmed), an extra option, a DATA_FIN, SACK blocks.
    fn emit_ack(
        &mut self,
        now: Instant,
        j: usize,
        out: &mut TxOut<'_>,
        extra: Option<MptcpOption>,
        data_fin: bool,
        ctx: &mut Ctx<'_>,
    ) -> Tx {
        let sf = &self.subflows[j];
        let mut o = OptList::new();
        o.timestamps(&sf.tcb, now);
        if self.mp.active() {
            if sf.initial && self.role == Role::Client && !self.mp.fully_established {
                o.push(TcpOption::Mptcp(MptcpOption::MpCapable(MpCapable {
                    version: 1,
                    flags: if self.mp.csum { MpCapable::FLAG_CHECKSUM } else { 0 } | MpCapable::FLAG_HMAC_SHA,
                    sender_key: Some(self.mp.local_key.0),
                    receiver_key: self.mp.remote_key.map(|k| k.0),
                    data_len: None,
                    checksum: None,
                })));
            } else if sf.ready || sf.initial {
                let mut d = self.dss_ack();
                if data_fin {
                    let fin = self.tx.tail;
                    d.data_fin = true;
                    d.mapping = Some(DssMapping {
                        dsn: WireSeq::U64(fin.0),
                        ssn: 0,
                        data_len: 1,
                        checksum: self.mp.csum.then(|| crypto::dss_checksum(fin.0, 0, 1, &[])),
                    });
                }
                o.push(TcpOption::Mptcp(MptcpOption::Dss(d)));
            }
            if let Some(x) = extra {
                o.push(TcpOption::Mptcp(x));
            }
        }
        o.sack(&self.subflows[j].tcb);
        let tcb = &self.subflows[j].tcb;
        // A window probe uses an old sequence number (RFC 9293 §3.8.6.1).
        let seq = if self.persist_backoff > 0 && !self.timers.is_running(Timer::Persist) {
            tcb.seq_for_ack() - 1u32
        } else {
            tcb.seq_for_ack()
        };
        self.write(now, j, out, seq, flags::ACK, &o, Payload::None, ctx)
    }

    /// A pure ACK carrying `opts` after the timestamps: ADD_ADDR (and its
    /// echo) on an ACK of its own as Linux sends them, or MP_FAIL with a DSS
    /// DATA_ACK (RFC 8684 §3.7). When they do not fit beside the timestamps
    /// (an IPv6 ADD_ADDR with a port is 30 bytes, the timestamps 12), the
    /// ACK goes without them, the options alone, as Linux sends that
    /// ADD_ADDR. None when they do not fit at all: nothing is sent.
    fn emit_options(
        &mut self,
        now: Instant,
        j: usize,
        out: &mut TxOut<'_>,
        opts: &[MptcpOption],
        ctx: &mut Ctx<'_>,
    ) -> Option<Tx> {
        let mut list = [TcpOption::Nop; 4];
        if opts.len() > list.len() {
            return None;
        }
        for (d, o) in list.iter_mut().zip(opts) {
            *d = TcpOption::Mptcp(*o);
        }
        let list = &list[..opts.len()];
        let mut o = OptList::new();
        o.timestamps(&self.subflows[j].tcb, now);
        if !o.push_all(list) {
            o = OptList::new();
            if !o.push_all(list) {
                return None;
            }
        }
        let seq = self.subflows[j].tcb.seq_for_ack();
        Some(self.write(now, j, out, seq, flags::ACK, &o, Payload::None, ctx))
    }

    // ------------------------------------------------------------------
    // Stats
    // ------------------------------------------------------------------

    pub fn state_name(&self) -> &'static str {
        if self.closed.is_some() {
            return "CLOSED";
        }
        let Some(sf) = self.subflows.first() else { return "CLOSED" };
        match sf.tcb.state {
            TcpState::SynSent => return "SYN-SENT",
            TcpState::SynReceived if !self.connected_reported => return "SYN-RECV",
            _ => {}
        }
        let fin_sent = self.app_closed;
        match (fin_sent, self.dfin_acked, self.peer_fin_done) {
            (false, _, false) => "ESTAB",
            (false, _, true) => "CLOSE-WAIT",
            (true, false, false) => "FIN-WAIT-1",
            (true, true, false) => "FIN-WAIT-2",
            (true, false, true) => "LAST-ACK",
            (true, true, true) => "TIME-WAIT",
        }
    }

    pub fn subflow_snapshot(&self, sf: &Subflow) -> SubflowSnapshot {
        let mut bits = 0;
        if sf.mpc {
            bits |= subflow_flags::MCAP_REM;
        }
        if sf.mpc_requested && self.mp.enabled && sf.initial {
            bits |= subflow_flags::MCAP_LOC;
        }
        if sf.joined {
            bits |= subflow_flags::JOIN_REM;
        }
        if sf.join_requested {
            bits |= subflow_flags::JOIN_LOC;
        }
        if sf.backup_rem {
            bits |= subflow_flags::BKUP_REM;
        }
        if sf.backup_loc {
            bits |= subflow_flags::BKUP_LOC;
        }
        if self.mp.active() && self.mp.fully_established && sf.ready {
            bits |= subflow_flags::FULLY_ESTABLISHED;
        }
        if sf.tcb.state.synchronized() && sf.down.is_none() {
            bits |= subflow_flags::CONNECTED;
        }
        let (seq, sfseq, maplen) = match sf.cur_map {
            Some(m) => (m.dsn.0, m.ssn.0.wrapping_sub(sf.tcb.irs.0), m.len),
            None => (self.rx.nxt.0, 0, 0),
        };
        if sf.cur_map.is_some_and(|m| sf.tcb.rcv_nxt < m.ssn + m.len) {
            bits |= subflow_flags::MAPVALID;
        }
        let st = &sf.tcb.stats;
        SubflowSnapshot {
            local: fmt_addr(sf.tcb.local),
            remote: fmt_addr(sf.tcb.remote),
            state: Some(match sf.down {
                Some(_) if sf.tcb.state != TcpState::TimeWait => "CLOSED".to_string(),
                _ => sf.tcb.state.ss_name().to_string(),
            }),
            flags: subflow_flags::letters(bits),
            token_loc: token_hex(if self.mp.enabled { self.mp.local_token } else { 0 }),
            token_rem: token_hex(if self.mp.enabled { self.mp.remote_token } else { 0 }),
            id_loc: sf.local_id,
            id_rem: sf.remote_id,
            seq,
            sfseq,
            ssnoff: sf.tcb.irs.0,
            maplen,
            relwrite_seq: None,
            backup: sf.backup_loc || sf.backup_rem,
            cwnd: Some((sf.tcb.cc.window() / sf.tcb.mss.max(1)) as u32),
            ssthresh: (sf.tcb.cc.ssthresh() != usize::MAX).then(|| (sf.tcb.cc.ssthresh() / sf.tcb.mss.max(1)) as u32),
            rtt_us: sf.tcb.rtt.srtt().map(|d| d.as_micros().min(u32::MAX as u64) as u32),
            rttvar_us: sf.tcb.rtt.srtt().map(|_| sf.tcb.rtt.rttvar().as_micros().min(u32::MAX as u64) as u32),
            mss: Some(sf.tcb.mss as u32),
            bytes_sent: Some(st.bytes_sent + st.bytes_retrans),
            bytes_received: Some(st.bytes_received),
            bytes_acked: Some(st.bytes_acked),
            bytes_retrans: Some(st.bytes_retrans),
            retransmits: Some(st.retransmits),
            bytes_reinjected: Some(sf.bytes_reinjected),
            id: Some(sf.id as u64),
            ..Default::default()
        }
    }

    pub fn snapshot(&self, now: Instant) -> ConnSnapshot {
        let g = self.gone;
        let mut retrans = g.retransmits;
        let mut bytes_retrans = g.bytes_retrans;
        let mut sent = g.sent;
        let mut recv = g.received;
        let mut acked = g.acked;
        let mut last_send = g.last_send;
        let mut last_recv = g.last_recv;
        for sf in &self.subflows {
            retrans += sf.tcb.stats.retransmits;
            bytes_retrans += sf.tcb.stats.bytes_retrans;
            sent += sf.data_bytes_sent;
            recv += sf.data_bytes_received;
            acked += sf.tcb.stats.bytes_acked;
            last_send = last_send.max(sf.tcb.last_send);
            last_recv = last_recv.max(sf.tcb.last_recv);
        }
        let ms = |t: Instant| ((now - t).as_millis()).min(u32::MAX as u64) as u32;
        ConnSnapshot {
            source: "embedded".into(),
            token: self.mp.enabled.then(|| token_hex(self.mp.local_token)),
            remote_token: (self.mp.remote_key.is_some()).then(|| token_hex(self.mp.remote_token)),
            local: fmt_addr(self.local),
            remote: fmt_addr(self.remote),
            state: self.state_name().to_string(),
            fallback: self.mp.fallback.is_some(),
            fallback_reason: self.mp.fallback.map(|r| r.describe().to_string()),
            remote_key: self.mp.remote_key.is_some(),
            csum_enabled: Some(self.mp.csum && self.mp.active()),
            subflows_max: Some(self.limits.subflows),
            add_addr_signal: Some(self.pm.signals_sent),
            add_addr_accepted: Some(self.pm.add_addr_accepted),
            add_addr_signal_max: None,
            add_addr_accepted_max: Some(self.limits.add_addr_accepted),
            local_addr_used: None,
            local_addr_max: None,
            subflows_total: Some(self.subflows_total),
            write_seq: Some(self.tx.tail.0),
            snd_una: Some(self.snd_una.0),
            rcv_nxt: Some(self.data_ack().0),
            retransmits: Some(retrans),
            bytes_retrans: Some(bytes_retrans),
            bytes_sent: Some(sent),
            bytes_received: Some(recv),
            bytes_acked: Some(acked.min(self.snd_una - self.tx.head + self.tx.len() as u64).max(acked)),
            bytes_reinjected: Some(self.bytes_reinjected),
            last_data_sent_ms: Some(ms(last_send)),
            last_data_recv_ms: Some(ms(last_recv)),
            last_ack_recv_ms: Some(ms(last_recv)),
            id: Some(self.handle.id()),
            subflows: self.subflows.iter().map(|s| self.subflow_snapshot(s)).collect(),
            ..Default::default()
        }
    }

    pub fn debug_state(&self) -> String {
        let mut out = format!(
            "una {} nxt {} tail {} head {} edge {} reinj {} rx.nxt {} rx.read {} ooo {}\n",
            self.snd_una.0 % 100_000_000,
            self.snd_nxt.0 % 100_000_000,
            self.tx.tail.0 % 100_000_000,
            self.tx.head.0 % 100_000_000,
            self.snd_edge.0 % 100_000_000,
            self.reinject.len(),
            self.rx.nxt.0 % 100_000_000,
            self.rx.read.0 % 100_000_000,
            self.rx.ooo.len()
        );
        for sf in &self.subflows {
            let t = &sf.tcb;
            out += &format!(
                "  sf{} {:?} ready {} stale {} cwnd {} pipe {} lost {} rec {} txq {} una {} nxt {} rto {:?} backoff {} lowdsn {:?} rcv_nxt {} ooo {}\n",
                sf.id,
                t.state,
                sf.ready,
                sf.stale,
                t.cc.window(),
                t.pipe(),
                t.lost_bytes(),
                t.in_recovery(),
                t.txq.len(),
                t.snd_una.0,
                t.snd_nxt.0,
                t.rto_at,
                t.backoff,
                t.lowest_dsn().map(|d| d.0 % 100_000_000),
                t.rcv_nxt.0,
                t.ooo.len()
            );
        }
        out
    }

    /// Whether everything is over: closed and every subflow past TIME-WAIT.
    pub fn finished(&self) -> bool {
        self.closed.is_some()
            && self
                .subflows
                .iter()
                .all(|s| s.tcb.state == TcpState::Closed || s.down.is_some() && s.tcb.timewait_at.is_none())
    }
}

/// A challenge ACK (RFC 5961 §3.2, §4), at most one per
/// [`super::tcp::AckLimiter::INTERVAL`] (§7).
fn challenge_ack(tcb: &mut Tcb, now: Instant, ctx: &mut Ctx<'_>) {
    if tcb.oow.allow(now) {
        tcb.ack_now = true;
        ctx.mib.inc(Counter::TcpChallengeAck);
    } else {
        ctx.mib.inc(Counter::TcpAckSkippedChallenge);
    }
}

/// Whether two receive mappings give one subflow byte two DSNs, or give
/// one start two lengths.
fn map_conflict(a: &RxMap, b: &RxMap) -> bool {
    let (a_end, b_end) = (a.ssn + a.len, b.ssn + b.len);
    if a.ssn == b.ssn {
        return a.dsn != b.dsn || a.len != b.len;
    }
    if a_end <= b.ssn || b_end <= a.ssn {
        return false;
    }
    let (first, second) = if a.ssn < b.ssn { (a, b) } else { (b, a) };
    first.dsn + (second.ssn - first.ssn) as u64 != second.dsn
}

fn tcprst_reason(seg: &Segment<'_>) -> Option<u8> {
    seg.opts.mptcp().find_map(|o| match o {
        MptcpOption::MpTcpRst(r) => Some(r.reason),
        _ => None,
    })
}

/// "ADDR:PORT", IPv6 as "[ADDR]:PORT" (the snapshot contract).
pub(crate) fn fmt_addr(a: SocketAddr) -> String {
    a.to_string()
}

/// Write a RST (RFC 9293 §3.10.7.1) with optional MP_TCPRST / MP_FASTCLOSE.
/// The TCP options of a SYN or SYN/ACK, in Linux's order: MSS, SACK
/// permitted, timestamps (TSval, TSecr), window scale (RFC 9293 §3.7.1,
/// RFC 2018 §2, RFC 7323 §2.2, §3.2). The MPTCP option follows.
pub(crate) fn syn_options(mss: usize, sack: bool, ts: Option<(u32, u32)>, wscale: Option<u8>) -> OptList {
    let mut o = OptList::new();
    o.push(TcpOption::Mss(mss.min(65535) as u16));
    if sack {
        o.push(TcpOption::SackPermitted);
    }
    if let Some((tsval, tsecr)) = ts {
        o.push(TcpOption::Timestamps { tsval, tsecr });
    }
    if let Some(w) = wscale {
        o.push_all(&[TcpOption::Nop, TcpOption::WindowScale(w)]);
    }
    o
}

/// A SYN/ACK answered statelessly, its ISN a SYN cookie (RFC 4987 §3.6).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CookieSynAck {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub iss: SubflowSeq,
    pub ack: SubflowSeq,
    pub window: u16,
    pub mss: usize,
    pub sack: bool,
    pub ts: Option<(u32, u32)>,
    pub wscale: Option<u8>,
    /// MP_CAPABLE with our key (RFC 8684 §3.1), and the checksum flag.
    pub mpc: Option<(Key, bool)>,
}

pub(crate) fn emit_cookie_synack(c: &CookieSynAck, buf: &mut [u8], checksum: bool) -> Result<usize, wire::EmitError> {
    let mut o = syn_options(c.mss, c.sack, c.ts, c.wscale);
    if let Some((key, csum)) = c.mpc {
        let m = MpCapable {
            version: 1,
            flags: if csum { MpCapable::FLAG_CHECKSUM } else { 0 } | MpCapable::FLAG_HMAC_SHA,
            sender_key: Some(key.0),
            ..Default::default()
        };
        o.push(TcpOption::Mptcp(MptcpOption::MpCapable(m)));
    }
    let repr = SegmentRepr {
        src: c.src,
        dst: c.dst,
        seq: c.iss,
        ack: c.ack,
        flags: flags::SYN | flags::ACK,
        window: c.window,
        options: o.as_slice(),
    };
    wire::emit(&repr, 0, buf, checksum, |_| {})
}

/// MP_FAIL, MP_TCPRST and MP_FASTCLOSE together take 28 of the 40 bytes.
pub(crate) fn emit_rst(r: &RstOut, buf: &mut [u8], checksum: bool) -> Result<usize, wire::EmitError> {
    let mut o = OptList::new();
    if let Some(dsn) = r.mp_fail {
        o.push(TcpOption::Mptcp(MptcpOption::MpFail(MpFail { dsn })));
    }
    if let Some(reason) = r.tcprst {
        o.push(TcpOption::Mptcp(MptcpOption::MpTcpRst(MpTcpRst { flags: 0, reason })));
    }
    if let Some(k) = r.fastclose {
        o.push(TcpOption::Mptcp(MptcpOption::MpFastclose(MpFastclose { receiver_key: k })));
    }
    let (fl, ack) = match r.ack {
        Some(a) => (flags::RST | flags::ACK, a),
        None => (flags::RST, SubflowSeq(0)),
    };
    let repr = SegmentRepr { src: r.src, dst: r.dst, seq: r.seq, ack, flags: fl, window: 0, options: o.as_slice() };
    wire::emit(&repr, 0, buf, checksum, |_| {})
}
