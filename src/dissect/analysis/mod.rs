//! Connection analysis (RFC 8684): TCP flows grouped into MPTCP connections,
//! DSN extension, mappings, reinjections, HMAC and checksum verification,
//! fallback verdicts.
//!
//! The analyzer is fed decoded packets in capture order and keeps, per TCP
//! flow (4-tuple), the subflow's sequence state and recent DSS mappings, and
//! per MPTCP connection the keys, tokens, IDSNs, the data-level state of
//! each direction and the verdicts. It never looks back: a packet's note
//! says what is known when it arrives, and [`Analyzer::finish`] gives the
//! full [`Report`].
//!
//! - Grouping (§3.1, §3.2): an MP_CAPABLE SYN starts a connection; the
//!   server's key (SYN/ACK) and the client's (third ACK, or the first data)
//!   give the tokens; an MP_JOIN SYN names the receiver's token and so joins
//!   the connection that owns it.
//! - Data sequence numbers (§3.3.1): 4-byte DSNs and data ACKs are extended
//!   to 64 bits against the last value seen in the same sequence space
//!   (starting from the IDSN); relative values count from the IDSN, so the
//!   first data byte is 1, as tshark's relative `mptcp.dsn`.
//! - Mappings: each direction of each subflow keeps its recent mappings
//!   (relative subflow sequence -> DSN); a segment is placed by its own
//!   sequence number, so segments that carry no mapping (or only a data ACK)
//!   are still placed. An MP_CAPABLE with data maps DSN = IDSN + 1 at
//!   subflow sequence 1 (§3.1).
//! - Reinjection (§3.3.6): the same DSNs on another subflow (the sent-DSN
//!   log of each direction, `sentlog.rs`).
//! - DSS checksum (§3.3.1): accumulated over every segment of a mapping in
//!   any order (`csum.rs`); when one fails and the data is sent again, the
//!   copy is compared segment by segment to name the corrupted frame.
//! - [`Analyzer::observe_frame`] is the summary path from raw frames
//!   (decode, then observe).
//! - HMACs: MP_JOIN SYN/ACK and third ACK (§3.2), ADD_ADDR (§3.4.1).
//! - Verdicts (§3.7 fallback, §3.5 fast close, §3.6 reset reasons, §3.4.2
//!   address removal) with the frame that shows them.
//! - Events (`events.rs`, opt-in): what happened to each connection, in the
//!   path-manager vocabulary, drained incrementally by live views.

mod csum;
mod events;
mod flows;
mod sentlog;
mod snapshot;
mod synonly;
mod types;

pub use events::{ConnClose, ConnEvent, ConnEventKind, SubflowClose};
pub use types::*;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use csum::{Localizer, MappingChecksum};
use flows::{FlowKey, FlowTable};
pub use sentlog::FRAMES_NAMED;
use sentlog::SentLog;
use synonly::{COMPACT, SynOnly};

use super::crypto::{self, Key, Version};
use super::hash::WordMap;
use super::options::{
    AddAddr, Dss, MpCapable, MpFail, MpFastclose, MpJoin, MpPrio, MpTcpRst, MptcpOption, RemoveAddr, WireSeq, kind,
    parse_dss, parse_mptcp, parse_options, subtype,
};
use super::packet::{self, FrameMeta, Packet, TcpSegment, tcp_flags};
use crate::seq::{DataSeq, SubflowSeq};

/// Options that change what the analyzer does. The default does
/// everything.
#[derive(Clone, Debug, Default)]
pub struct AnalyzerOptions {
    /// Do not verify DSS checksums.
    pub no_checksums: bool,
    /// Do not look for reinjections (saves the per-connection DSN log).
    pub no_reinjections: bool,
}

/// Feeds on decoded packets in capture order.
#[derive(Debug, Default)]
pub struct Analyzer {
    opts: AnalyzerOptions,
    table: FlowTable,
    flows: Vec<Flow>,
    conns: Vec<Conn>,
    /// Flows that have shown only their SYN (most of a SYN flood): a few
    /// words each until a second packet makes them a [`Flow`].
    syns: Vec<SynOnly>,
    /// Flow and connection numbers given so far (in order of the first
    /// packet, as the reports number them).
    numbered_flows: u32,
    numbered_conns: u32,
    /// Token -> (connection index, side that owns it).
    tokens: WordMap<u32, (u32, Side)>,
    frames: u64,
    tcp_segments: u64,
    /// The event log, when [`Analyzer::enable_events`] turned it on.
    events: Option<Box<events::EventLog>>,
}

/// What a TCP flow is to MPTCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// No MPTCP: the SYN had neither MP_CAPABLE nor MP_JOIN.
    Plain,
    /// The initial subflow of a connection (MP_CAPABLE SYN).
    Initial,
    /// An MP_JOIN subflow.
    Join,
    /// An MP_JOIN SYN with a token nobody owns.
    JoinUnknown,
    /// MPTCP options on a flow whose handshake is not in the capture.
    MidStream,
    /// No SYN seen and no MPTCP option (yet).
    Unknown,
}

/// One DSS mapping of one subflow direction.
#[derive(Debug)]
struct Mapping {
    dsn: Option<u64>,
    /// The DSN as it was on the wire, to recognise a repeated mapping.
    wire: u64,
    ssn: u32,
    /// Payload bytes mapped (`u32::MAX` for an infinite mapping).
    len: u32,
    data_len: u16,
    fin: bool,
    frame: u64,
    csum: Option<Box<MappingChecksum>>,
}

impl Mapping {
    fn covers(&self, rel: u32) -> bool {
        SubflowSeq(rel).in_range(SubflowSeq(self.ssn), self.len)
    }
}

/// Mappings kept per subflow direction: enough for retransmissions of the
/// last few mappings.
const MAX_MAPPINGS: usize = 16;

/// One direction of a TCP flow (0: client to server, 1: back).
#[derive(Debug, Default)]
struct FlowDir {
    isn: Option<u32>,
    /// One past the highest sequence number seen.
    high: Option<u32>,
    bytes: u64,
    retrans: u64,
    reinjected: u64,
    maps: VecDeque<Mapping>,
    truncated: bool,
    /// Payload carried by the SYN (TCP Fast Open).
    syn_data: u64,
    /// The SYN's payload, when the SYN/ACK acknowledged it: Linux counts
    /// the subflow's relative sequence numbers (the DSS mappings' SSNs,
    /// RFC 8684 §3.3.1) from after it (net/mptcp/fastopen.c).
    syn_data_acked: u32,
}

impl FlowDir {
    /// The sequence number that relative sequence number 0 stands for.
    fn ssn_base(&self) -> Option<u32> {
        self.isn.map(|i| i.wrapping_add(self.syn_data_acked))
    }
}

/// The MP_JOIN handshake of a subflow; index 0 is the initiator (A, the
/// flow's client), 1 the responder (B).
#[derive(Debug, Default)]
struct Join {
    nonce: [Option<u32>; 2],
    ack_frame: Option<u64>,
    /// B sent a segment after A's third ACK (the join is confirmed, §3.2).
    confirmed: bool,
}

#[derive(Debug)]
struct Flow {
    /// 1-based, in order of the first packet.
    number: u32,
    client: SocketAddr,
    server: SocketAddr,
    /// Whether the client is the key's canonical low endpoint.
    client_lo: bool,
    role: Role,
    conn: Option<u32>,
    /// Subflow number within the connection.
    sf: u32,
    /// Connection side of the sender of each flow direction.
    sides: [Side; 2],
    /// Address id and backup flag of each flow direction's sender.
    ids: [Option<u8>; 2],
    backup: [bool; 2],
    join: Option<Box<Join>>,
    syn_mpc: Option<MpCapable>,
    syn_frame: Option<u64>,
    synack_frame: Option<u64>,
    /// The SYN/ACK carried the expected MP_CAPABLE or MP_JOIN.
    synack_mptcp: bool,
    first_frame: u64,
    last_frame: u64,
    packets: u64,
    dirs: [FlowDir; 2],
    fin: [Option<u64>; 2],
    rst: Option<(u64, usize)>,
    /// The MPTCP signal the first RST carried.
    rst_signal: Option<CloseCause>,
    cause: Option<(u64, CloseCause)>,
    fallback: Option<(u64, FallbackReason)>,
    mpc_ack_frame: Option<u64>,
    /// The token of an MP_JOIN SYN nobody owns.
    unknown_token: Option<u32>,
}

impl Flow {
    /// A flow before its first packet is looked at.
    fn new(number: u32, client: SocketAddr, server: SocketAddr, client_lo: bool, frame: u64) -> Flow {
        Flow {
            number,
            client,
            server,
            client_lo,
            role: Role::Unknown,
            conn: None,
            sf: 0,
            sides: [Side::Client, Side::Server],
            ids: [None; 2],
            backup: [false; 2],
            join: None,
            syn_mpc: None,
            syn_frame: None,
            synack_frame: None,
            synack_mptcp: false,
            first_frame: frame,
            last_frame: frame,
            packets: 0,
            dirs: Default::default(),
            fin: [None; 2],
            rst: None,
            rst_signal: None,
            cause: None,
            fallback: None,
            mpc_ack_frame: None,
            unknown_token: None,
        }
    }

    fn closed(&self) -> bool {
        self.rst.is_some() || self.fin.iter().any(Option::is_some)
    }
}

/// One direction of an MPTCP connection: the data a side sends.
#[derive(Debug, Default)]
struct ConnDir {
    idsn: Option<u64>,
    /// Last 64-bit value seen in this sequence space (DSN or data ACK).
    reference: Option<u64>,
    log: SentLog,
    data_fin: Option<(u64, u64)>,
    /// Highest data ACK the peer sent for it.
    acked: Option<u64>,
    /// Failed mappings whose data may be sent again.
    failed: Vec<(u32, Localizer, usize)>,
    bytes: u64,
    /// One past the highest DSN sent.
    high_end: Option<u64>,
}

#[derive(Debug)]
struct Conn {
    id: u32,
    version: Option<u8>,
    client: SocketAddr,
    server: SocketAddr,
    keys: [Option<u64>; 2],
    tokens: [Option<u32>; 2],
    checksum: bool,
    flows: Vec<u32>,
    dirs: [ConnDir; 2],
    verdicts: Vec<Verdict>,
    established: bool,
    fallback: bool,
    closed: bool,
    hmac: Tally,
    csum: Tally,
    announced: Vec<Announcement>,
    removed: Vec<Removal>,
    first_frame: u64,
    last_frame: u64,
    unmapped: u64,
    /// How far the event log has looked at this connection.
    ev: events::EventCursor,
}

impl Conn {
    /// A connection whose first packet is `frame`, with no subflow yet.
    fn new(id: u32, client: SocketAddr, server: SocketAddr, frame: u64) -> Conn {
        Conn {
            id,
            version: None,
            client,
            server,
            keys: [None; 2],
            tokens: [None; 2],
            checksum: false,
            flows: Vec::new(),
            dirs: Default::default(),
            verdicts: Vec::new(),
            established: false,
            fallback: false,
            closed: false,
            hmac: Tally::default(),
            csum: Tally::default(),
            announced: Vec::new(),
            removed: Vec::new(),
            first_frame: frame,
            last_frame: frame,
            unmapped: 0,
            ev: Default::default(),
        }
    }

    fn hash_version(&self) -> Version {
        if self.version == Some(0) { Version::V0 } else { Version::V1 }
    }

    fn verdict(&mut self, frame: u64, kind: VerdictKind) {
        self.verdicts.push(Verdict { frame, kind });
    }

    fn rel(&self, side: Side, v: u64) -> Option<u64> {
        self.dirs[side.index()].idsn.map(|i| DataSeq(v).offset_from(DataSeq(i)))
    }
}

/// The MPTCP options of one segment: the DSS inline, the options of
/// handshakes and signals (rare next to data segments) boxed, so that the
/// per-segment value stays small.
#[derive(Default)]
struct Opts {
    any: bool,
    bad: bool,
    dss: Option<Dss>,
    rare: Option<Box<RareOpts>>,
}

/// The first of each kind of MPTCP option but DSS.
#[derive(Default)]
struct RareOpts {
    mpc: Option<MpCapable>,
    join: Option<MpJoin>,
    add_addr: Option<AddAddr>,
    rm: Option<RemoveAddr>,
    prio: Option<MpPrio>,
    fail: Option<MpFail>,
    fastclose: Option<MpFastclose>,
    tcprst: Option<MpTcpRst>,
}

impl Opts {
    /// The MPTCP options of a segment, through the codec's MPTCP-only walk
    /// (other kinds are skipped by their length, RFC 9293 §3.2 framing).
    /// A DSS, the option of nearly every segment, is parsed straight into
    /// its field.
    /// Fills an empty `Opts` in place (built where it is used, not copied
    /// there).
    fn collect(&mut self, tcp: &TcpSegment<'_>) {
        let o = self;
        for r in parse_options(tcp.options_raw).mptcp_raw() {
            let whole = match r {
                Ok(w) => w,
                Err(e) => {
                    if e.kind == kind::MPTCP {
                        o.any = true;
                        o.bad = true;
                    }
                    // A framing error ends the walk.
                    continue;
                }
            };
            o.any = true;
            if whole.get(2).is_some_and(|b| b >> 4 == subtype::DSS) {
                match parse_dss(whole) {
                    Ok(d) => {
                        o.dss.get_or_insert(d);
                    }
                    Err(_) => o.bad = true,
                }
                continue;
            }
            match parse_mptcp(whole) {
                Ok(m) => o.add(m),
                Err(_) => o.bad = true,
            }
        }
    }

    #[cold]
    fn add(&mut self, m: MptcpOption) {
        if let MptcpOption::Dss(d) = m {
            self.dss.get_or_insert(d);
            return;
        }
        if matches!(m, MptcpOption::Experimental { .. } | MptcpOption::Unknown { .. }) {
            return;
        }
        let r = self.rare.get_or_insert_with(Box::default);
        match m {
            MptcpOption::MpCapable(c) => r.mpc = r.mpc.or(Some(c)),
            MptcpOption::MpJoin(j) => r.join = r.join.or(Some(j)),
            MptcpOption::AddAddr(a) => r.add_addr = r.add_addr.or(Some(a)),
            MptcpOption::RemoveAddr(x) => r.rm = r.rm.or(Some(x)),
            MptcpOption::MpPrio(p) => r.prio = r.prio.or(Some(p)),
            MptcpOption::MpFail(f) => r.fail = r.fail.or(Some(f)),
            MptcpOption::MpFastclose(f) => r.fastclose = r.fastclose.or(Some(f)),
            MptcpOption::MpTcpRst(t) => r.tcprst = r.tcprst.or(Some(t)),
            MptcpOption::Dss(_) | MptcpOption::Experimental { .. } | MptcpOption::Unknown { .. } => {}
        }
    }

    fn mpc(&self) -> Option<MpCapable> {
        self.rare.as_ref()?.mpc
    }
    fn join(&self) -> Option<MpJoin> {
        self.rare.as_ref()?.join
    }
    fn add_addr(&self) -> Option<AddAddr> {
        self.rare.as_ref()?.add_addr
    }
    fn rm(&self) -> Option<RemoveAddr> {
        self.rare.as_ref()?.rm
    }
    fn prio(&self) -> Option<MpPrio> {
        self.rare.as_ref()?.prio
    }
    fn fail(&self) -> Option<MpFail> {
        self.rare.as_ref()?.fail
    }
    fn fastclose(&self) -> Option<MpFastclose> {
        self.rare.as_ref()?.fastclose
    }
    fn tcprst(&self) -> Option<MpTcpRst> {
        self.rare.as_ref()?.tcprst
    }
}

fn extend(w: WireSeq, reference: Option<u64>) -> Option<u64> {
    match w {
        WireSeq::U64(v) => Some(v),
        WireSeq::U32(v) => reference.map(|r| DataSeq::extend(v, DataSeq(r)).0),
    }
}

/// `a` is after `b` in 64-bit DSN space.
fn dsn_after(a: u64, b: u64) -> bool {
    DataSeq(a) > DataSeq(b)
}

/// Pushes an event only when a note is being built.
macro_rules! ev {
    ($note:expr, $want:expr, $e:expr) => {
        if $want {
            $note.events.push($e);
        }
    };
}

impl Analyzer {
    pub fn new(opts: AnalyzerOptions) -> Analyzer {
        Analyzer { opts, ..Analyzer::default() }
    }

    /// Feed one frame; returns the note for it.
    pub fn on_packet(&mut self, meta: &FrameMeta, pkt: &Packet<'_>) -> PacketNote {
        let mut note = PacketNote::default();
        self.process::<true>(meta, pkt, &mut note);
        note
    }

    /// Feed one frame when no per-packet note is needed (the --summary fast path).
    pub fn observe(&mut self, meta: &FrameMeta, pkt: &Packet<'_>) {
        let mut note = PacketNote::default();
        self.process::<false>(meta, pkt, &mut note);
    }

    /// Feed one captured frame on the summary path (no note): what
    /// [`Self::observe`] of [`packet::decode`] does, with the common frames'
    /// IP and TCP facts handed over as they are decoded
    /// ([`packet::decode_common_tcp`]).
    pub fn observe_frame(&mut self, meta: &FrameMeta, frame: &[u8]) {
        match packet::decode_common_tcp(meta.linktype, frame) {
            Some((ip, tcp)) => {
                self.frames += 1;
                let mut note = PacketNote::default();
                self.process_tcp::<false>(meta, ip.src, ip.dst, &tcp, &mut note);
            }
            None => self.observe(meta, &packet::decode_general(meta.linktype, frame)),
        }
    }

    /// Connections tracked so far.
    pub fn connection_count(&self) -> usize {
        self.numbered_conns as usize
    }

    fn process<const NOTE: bool>(&mut self, meta: &FrameMeta, pkt: &Packet<'_>, note: &mut PacketNote) {
        self.frames += 1;
        if let (Some(ip), Some(tcp)) = (pkt.ip.as_ref(), pkt.tcp.as_ref()) {
            self.process_tcp::<NOTE>(meta, ip.src, ip.dst, tcp, note);
        }
    }

    /// A TCP segment from `src` to `dst` (the frame already counted).
    fn process_tcp<const NOTE: bool>(
        &mut self,
        meta: &FrameMeta,
        src: IpAddr,
        dst: IpAddr,
        tcp: &TcpSegment<'_>,
        note: &mut PacketNote,
    ) {
        self.tcp_segments += 1;
        let frame = meta.number;
        let mut o = Opts::default();
        o.collect(tcp);
        let (key, src_lo) = FlowKey::new(src, tcp.sport, dst, tcp.dport);
        match self.table.get(&key) {
            Some(v) if v & COMPACT != 0 => self.promote(v & !COMPACT),
            None if tcp.has(tcp_flags::SYN) && !tcp.has(tcp_flags::ACK) => {
                if let Some(mpc) = SynOnly::fits(&o, tcp) {
                    self.add_syn::<NOTE>(key, src_lo, src.is_ipv6(), tcp, mpc, frame, note);
                    return;
                }
            }
            _ => {}
        }
        let fi = self.flow_for(key, src_lo, src, dst, tcp, frame);
        let d = {
            let f = &mut self.flows[fi];
            f.last_frame = frame;
            f.packets += 1;
            if src_lo == f.client_lo { 0 } else { 1 }
        };
        let reinjected = if self.events.is_some() { self.reinjected_bytes(fi) } else { 0 };
        let syn = tcp.has(tcp_flags::SYN);
        let ack = tcp.has(tcp_flags::ACK);
        if syn && !ack {
            self.on_syn::<NOTE>(fi, tcp, &o, frame, note);
        } else if syn {
            self.on_synack::<NOTE>(fi, d, tcp, &o, frame, note);
        } else {
            self.on_segment::<NOTE>(fi, d, tcp, &o, frame, note);
        }
        let f = &self.flows[fi];
        if NOTE {
            note.flow = Some(f.number);
            if let Some(ci) = f.conn {
                note.conn = Some(self.conns[ci as usize].id);
                note.subflow = Some(f.sf);
                note.from = Some(f.sides[d]);
                note.fallback = f.fallback.is_some() || self.conns[ci as usize].fallback;
            }
            if o.bad {
                note.events.push(Event::BadOption);
            }
        }
        if let Some(ci) = f.conn {
            self.conns[ci as usize].last_frame = frame;
        }
        if self.events.is_some() {
            self.derive_events(fi, d, o.prio().map(|p| p.backup), frame, meta.ts(), reinjected);
        }
    }

    /// The flow a segment belongs to, made when new. A SYN on a known
    /// 4-tuple starts a new flow (port reuse) when its ISN is new, or when the
    /// old flow already closed: a SYN can only be retransmitted before the
    /// connection ends (RFC 9293 §3.10.7.3), so a same-ISN SYN after a FIN or
    /// RST is a new connection (e.g. a capture replayed with `mergecap -a`).
    #[inline(always)]
    fn flow_for(
        &mut self,
        key: FlowKey,
        src_lo: bool,
        src: IpAddr,
        dst: IpAddr,
        tcp: &TcpSegment<'_>,
        frame: u64,
    ) -> usize {
        let syn_only = tcp.has(tcp_flags::SYN) && !tcp.has(tcp_flags::ACK);
        if let Some(fi) = self.table.get(&key) {
            let f = &self.flows[fi as usize];
            if !syn_only {
                return fi as usize;
            }
            let from_client = src_lo == f.client_lo;
            if from_client && f.dirs[0].isn == Some(tcp.seq) && !f.closed() {
                return fi as usize;
            }
        }
        self.new_flow(key, src_lo, src, dst, tcp, frame)
    }

    /// A flow's first packet is a SYN that [`SynOnly`] holds: keep that.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn add_syn<const NOTE: bool>(
        &mut self,
        key: FlowKey,
        src_lo: bool,
        v6: bool,
        tcp: &TcpSegment<'_>,
        mpc: Option<(u8, u8)>,
        frame: u64,
        note: &mut PacketNote,
    ) {
        self.numbered_flows += 1;
        let conn = match mpc {
            Some(_) => {
                self.numbered_conns += 1;
                self.numbered_conns
            }
            None => 0,
        };
        let (version, flags) = mpc.unwrap_or_default();
        let rec = SynOnly {
            key,
            frame,
            number: self.numbered_flows,
            conn,
            isn: tcp.seq,
            version,
            flags,
            bits: (src_lo as u8) | (v6 as u8) << 1,
        };
        self.table.set(key, COMPACT | self.syns.len() as u32);
        self.syns.push(rec);
        if NOTE {
            note.flow = Some(rec.number);
            if mpc.is_some() {
                note.conn = Some(conn);
                note.subflow = Some(1);
                note.from = Some(Side::Client);
            }
        }
    }

    /// A flow held as [`SynOnly`] shows a second packet: it becomes a
    /// [`Flow`] (and its connection a [`Conn`]) as if they had been made at
    /// the SYN.
    #[cold]
    fn promote(&mut self, idx: u32) {
        let rec = self.syns.swap_remove(idx as usize);
        if let Some(moved) = self.syns.get(idx as usize) {
            self.table.set(moved.key, COMPACT | idx);
        }
        let fi = self.flows.len();
        let (mut flow, conn) = rec.expand();
        if let Some(mut c) = conn {
            c.flows = vec![fi as u32];
            flow.conn = Some(self.conns.len() as u32);
            self.conns.push(c);
        }
        self.flows.push(flow);
        self.table.set(rec.key, fi as u32);
    }

    /// A new flow on the 4-tuple (see [`Self::flow_for`]).
    #[inline(never)]
    fn new_flow(
        &mut self,
        key: FlowKey,
        src_lo: bool,
        src: IpAddr,
        dst: IpAddr,
        tcp: &TcpSegment<'_>,
        frame: u64,
    ) -> usize {
        let synack = tcp.has(tcp_flags::SYN) && tcp.has(tcp_flags::ACK);
        let (client, server, client_lo) = if synack {
            (SocketAddr::new(dst, tcp.dport), SocketAddr::new(src, tcp.sport), !src_lo)
        } else {
            (SocketAddr::new(src, tcp.sport), SocketAddr::new(dst, tcp.dport), src_lo)
        };
        let idx = self.flows.len();
        self.numbered_flows += 1;
        self.flows.push(Flow::new(self.numbered_flows, client, server, client_lo, frame));
        self.table.set(key, idx as u32);
        idx
    }

    fn new_conn(&mut self, fi: usize, frame: u64) -> u32 {
        let ci = self.conns.len() as u32;
        let f = &mut self.flows[fi];
        self.numbered_conns += 1;
        let mut c = Conn::new(self.numbered_conns, f.client, f.server, frame);
        c.flows.push(fi as u32);
        self.conns.push(c);
        f.conn = Some(ci);
        f.sf = 1;
        ci
    }

    /// Records a key for a side: token and IDSN, and the token in the
    /// lookup table for joins.
    fn learn_key(&mut self, ci: u32, side: Side, key: u64) {
        let c = &mut self.conns[ci as usize];
        if c.keys[side.index()].is_some() {
            return;
        }
        let (t, i) = Key(key).token_idsn(c.hash_version());
        c.keys[side.index()] = Some(key);
        c.tokens[side.index()] = Some(t.0);
        let dir = &mut c.dirs[side.index()];
        dir.idsn = Some(i.0);
        // The SYN takes one unit of data sequence space (§3.3.1): the first
        // byte is IDSN + 1.
        dir.reference.get_or_insert((DataSeq(i.0) + 1u64).0);
        self.tokens.insert(t.0, (ci, side));
    }

    fn on_syn<const NOTE: bool>(
        &mut self,
        fi: usize,
        tcp: &TcpSegment<'_>,
        o: &Opts,
        frame: u64,
        note: &mut PacketNote,
    ) {
        let retransmission = self.flows[fi].syn_frame.is_some();
        if retransmission {
            let f = &mut self.flows[fi];
            if f.role == Role::Initial && o.mpc().is_none() && f.synack_frame.is_none() && f.fallback.is_none() {
                let r = FallbackReason::SynRetransmittedWithoutMpCapable;
                f.fallback = Some((frame, r));
                let ci = f.conn.expect("initial subflows have a connection");
                let c = &mut self.conns[ci as usize];
                if !c.fallback {
                    c.fallback = true;
                    c.verdict(frame, VerdictKind::Fallback(r));
                }
                ev!(note, NOTE, Event::Fallback(r));
            }
            return;
        }
        {
            let f = &mut self.flows[fi];
            f.syn_frame = Some(frame);
            f.dirs[0].isn = Some(tcp.seq);
            f.dirs[0].high = Some((SubflowSeq(tcp.seq) + 1u32 + tcp.payload_len).0);
            f.dirs[0].bytes += tcp.payload_len as u64;
            f.dirs[0].syn_data = tcp.payload_len as u64;
        }
        if let Some(m) = o.mpc() {
            let ci = self.new_conn(fi, frame);
            let f = &mut self.flows[fi];
            f.role = Role::Initial;
            f.syn_mpc = Some(m);
            f.ids = [Some(0), Some(0)];
            let c = &mut self.conns[ci as usize];
            c.version = Some(m.version);
            c.checksum = m.checksum_required();
            if let Some(k) = m.sender_key {
                // v0: the SYN carries the client's key (RFC 6824 §3.1).
                self.learn_key(ci, Side::Client, k);
            }
            if tcp.payload_len > 0 {
                ev!(note, NOTE, Event::SynData);
            }
        } else if let Some(MpJoin::Syn { backup, addr_id, token, nonce }) = o.join() {
            let f = &mut self.flows[fi];
            f.ids[0] = Some(addr_id);
            f.backup[0] = backup;
            f.join = Some(Box::new(Join { nonce: [Some(nonce), None], ..Join::default() }));
            match self.tokens.get(&token).copied() {
                Some((ci, owner)) => {
                    f.role = Role::Join;
                    f.conn = Some(ci);
                    f.sides = [owner.other(), owner];
                    let c = &mut self.conns[ci as usize];
                    c.flows.push(fi as u32);
                    f.sf = c.flows.len() as u32;
                }
                None => {
                    f.role = Role::JoinUnknown;
                    f.unknown_token = Some(token);
                    ev!(note, NOTE, Event::UnknownToken { token });
                }
            }
        } else {
            self.flows[fi].role = Role::Plain;
        }
    }

    fn on_synack<const NOTE: bool>(
        &mut self,
        fi: usize,
        d: usize,
        tcp: &TcpSegment<'_>,
        o: &Opts,
        frame: u64,
        note: &mut PacketNote,
    ) {
        let f = &mut self.flows[fi];
        if d != 1 || f.synack_frame.is_some() {
            // A retransmitted SYN/ACK, or a simultaneous open: nothing new.
            return;
        }
        f.synack_frame = Some(frame);
        if let Some(isn) = f.dirs[0].isn
            && f.dirs[0].syn_data > 0
            && tcp.ack == isn.wrapping_add(1).wrapping_add(f.dirs[0].syn_data as u32)
        {
            // RFC 7413 §4.2: the server took the SYN's data (TCP Fast Open).
            f.dirs[0].syn_data_acked = f.dirs[0].syn_data as u32;
        }
        f.dirs[1].isn = Some(tcp.seq);
        f.dirs[1].high = Some((SubflowSeq(tcp.seq) + 1u32 + tcp.payload_len).0);
        if f.role == Role::Unknown {
            // The SYN is not in the capture.
            f.role = if o.mpc().is_some() || o.join().is_some() { Role::MidStream } else { Role::Plain };
            if f.role == Role::MidStream {
                let ci = self.new_conn(fi, frame);
                let f = &mut self.flows[fi];
                f.ids = [Some(0), Some(0)];
                if let Some(m) = o.mpc() {
                    f.role = Role::Initial;
                    self.conns[ci as usize].version = Some(m.version);
                    self.conns[ci as usize].checksum = m.checksum_required();
                    if let Some(k) = m.sender_key {
                        self.flows[fi].synack_mptcp = true;
                        self.learn_key(ci, Side::Server, k);
                    }
                }
            }
            return;
        }
        match f.role {
            Role::Initial => {
                let ci = f.conn.expect("initial subflows have a connection");
                let syn = f.syn_mpc.unwrap_or_default();
                let verdict = match o.mpc() {
                    None => Err(FallbackReason::SynAckWithoutMpCapable),
                    Some(m) if m == syn => Err(FallbackReason::SynAckEchoesSyn),
                    Some(m) if m.sender_key.is_none() => Err(FallbackReason::SynAckWithoutKey),
                    Some(m) => Ok(m),
                };
                match verdict {
                    Ok(m) => {
                        f.synack_mptcp = true;
                        let c = &mut self.conns[ci as usize];
                        c.version = Some(m.version);
                        c.checksum |= m.checksum_required();
                        self.learn_key(ci, Side::Server, m.sender_key.expect("checked above"));
                    }
                    Err(r) => {
                        f.fallback = Some((frame, r));
                        let c = &mut self.conns[ci as usize];
                        c.fallback = true;
                        c.verdict(frame, VerdictKind::Fallback(r));
                        ev!(note, NOTE, Event::Fallback(r));
                    }
                }
            }
            Role::Join => {
                let ci = f.conn.expect("joins have a connection");
                let sf = f.sf;
                match o.join() {
                    Some(MpJoin::SynAck { backup, addr_id, hmac, nonce }) => {
                        f.synack_mptcp = true;
                        f.ids[1] = Some(addr_id);
                        f.backup[1] = backup;
                        let j = f.join.get_or_insert_with(Box::default);
                        j.nonce[1] = Some(nonce);
                        let nonce_a = j.nonce[0].unwrap_or(0);
                        let (a, b) = (f.sides[0], f.sides[1]);
                        let c = &mut self.conns[ci as usize];
                        let r = match (c.keys[a.index()], c.keys[b.index()]) {
                            (Some(ka), Some(kb)) => {
                                let want = crypto::join_synack_hmac(c.hash_version(), Key(kb), Key(ka), nonce, nonce_a);
                                if want == hmac { Check::Ok } else { Check::Bad }
                            }
                            _ => Check::NoKeys,
                        };
                        c.hmac.add(r);
                        if r == Check::Bad {
                            c.verdict(frame, VerdictKind::HmacFailed { subflow: sf, kind: HmacKind::JoinSynAck });
                        }
                        ev!(note, NOTE, Event::Hmac { kind: HmacKind::JoinSynAck, result: r });
                    }
                    _ => {
                        let why = JoinFailure::SynAckWithoutJoin;
                        f.fallback = Some((frame, FallbackReason::SynAckWithoutJoin));
                        self.conns[ci as usize].verdict(frame, VerdictKind::JoinFailed { subflow: sf, why });
                    }
                }
            }
            _ => {}
        }
    }

    fn on_segment<const NOTE: bool>(
        &mut self,
        fi: usize,
        d: usize,
        tcp: &TcpSegment<'_>,
        o: &Opts,
        frame: u64,
        note: &mut PacketNote,
    ) {
        if self.flows[fi].role == Role::Unknown && o.any {
            self.adopt_midstream(fi, d, o, frame);
        }
        let f = &self.flows[fi];
        let Some(ci) = f.conn else {
            // Plain TCP (or a join nobody owns): count bytes, nothing more.
            let f = &mut self.flows[fi];
            count_bytes(&mut f.dirs[d], tcp);
            self.close_flags(fi, d, tcp, o, frame);
            return;
        };
        let role = f.role;
        let sender = f.sides[d];
        let rst = tcp.has(tcp_flags::RST);

        // MP_CAPABLE after the SYN/ACK: the third ACK and the first data
        // carry both keys (§3.1).
        if let Some(m) = o.mpc()
            && matches!(role, Role::Initial)
            && sender == Side::Client
        {
            self.on_mpc_ack::<NOTE>(fi, ci, tcp, m, frame, note);
        }
        // MP_JOIN third ACK: the initiator's HMAC (§3.2).
        if let (Role::Join, Some(MpJoin::Ack { hmac })) = (role, o.join())
            && d == 0
        {
            let f = &mut self.flows[fi];
            let sf = f.sf;
            let j = f.join.get_or_insert_with(Box::default);
            if j.ack_frame.is_none() {
                j.ack_frame = Some(frame);
                let (na, nb) = (j.nonce[0], j.nonce[1]);
                let (a, b) = (f.sides[0], f.sides[1]);
                let c = &mut self.conns[ci as usize];
                let r = match (c.keys[a.index()], c.keys[b.index()], na, nb) {
                    (Some(ka), Some(kb), Some(na), Some(nb)) => {
                        let want = crypto::join_ack_hmac(c.hash_version(), Key(ka), Key(kb), na, nb);
                        if want == hmac { Check::Ok } else { Check::Bad }
                    }
                    _ => Check::NoKeys,
                };
                c.hmac.add(r);
                if r == Check::Bad {
                    c.verdict(frame, VerdictKind::HmacFailed { subflow: sf, kind: HmacKind::JoinAck });
                }
                ev!(note, NOTE, Event::Hmac { kind: HmacKind::JoinAck, result: r });
            }
        } else if role == Role::Join && d == 1 && !rst {
            let f = &mut self.flows[fi];
            if let Some(j) = f.join.as_mut()
                && j.ack_frame.is_some()
            {
                j.confirmed = true;
            }
        }

        self.check_options_present::<NOTE>(fi, ci, d, tcp, o, frame, note);

        if let Some(dss) = &o.dss {
            self.on_dss::<NOTE>(fi, ci, d, tcp, dss, frame, note);
        }
        if tcp.payload_len > 0 {
            self.on_payload::<NOTE>(fi, ci, d, tcp, frame, note);
        } else {
            count_bytes(&mut self.flows[fi].dirs[d], tcp);
        }
        self.on_signals::<NOTE>(fi, ci, d, o, rst, frame, note);
        self.close_flags(fi, d, tcp, o, frame);
        if rst {
            self.on_reset::<NOTE>(fi, ci, d, o, frame, note);
        }
    }

    /// A flow whose handshake is not in the capture shows MPTCP options.
    fn adopt_midstream(&mut self, fi: usize, d: usize, o: &Opts, frame: u64) {
        let ci = self.new_conn(fi, frame);
        let f = &mut self.flows[fi];
        f.role = Role::MidStream;
        f.synack_mptcp = true;
        if let Some(m) = o.mpc() {
            // A 20/22/24-byte MP_CAPABLE comes from the client with both keys.
            f.role = Role::Initial;
            f.ids = [Some(0), Some(0)];
            if d == 1 {
                f.sides = [Side::Server, Side::Client];
                let c = &mut self.conns[ci as usize];
                std::mem::swap(&mut c.client, &mut c.server);
            }
            self.conns[ci as usize].version = Some(m.version);
            self.conns[ci as usize].checksum = m.checksum_required();
            if let (Some(ks), Some(kr)) = (m.sender_key, m.receiver_key) {
                self.learn_key(ci, Side::Client, ks);
                self.learn_key(ci, Side::Server, kr);
            }
        }
    }

    fn on_mpc_ack<const NOTE: bool>(
        &mut self,
        fi: usize,
        ci: u32,
        tcp: &TcpSegment<'_>,
        m: MpCapable,
        frame: u64,
        note: &mut PacketNote,
    ) {
        if let Some(k) = m.sender_key {
            self.learn_key(ci, Side::Client, k);
        }
        let c = &mut self.conns[ci as usize];
        if let (Some(got), Some(expected)) = (m.receiver_key, c.keys[Side::Server.index()])
            && got != expected
        {
            if !c.verdicts.iter().any(|v| v.kind == VerdictKind::KeyMismatch) {
                c.verdict(frame, VerdictKind::KeyMismatch);
            }
            ev!(note, NOTE, Event::KeyMismatch { expected, got });
        }
        if m.receiver_key.is_none() && m.sender_key.is_some() && c.version == Some(0) {
            // v0 third ACK is 20 bytes too; nothing else to learn.
        }
        let f = &mut self.flows[fi];
        if tcp.payload_len == 0 && f.mpc_ack_frame.is_none() {
            f.mpc_ack_frame = Some(frame);
        }
        // MP_CAPABLE with data: an implicit mapping, DSN = IDSN + 1 at
        // subflow sequence 1 (RFC 8684 §3.1).
        if let Some(dl) = m.data_len {
            let idsn = self.conns[ci as usize].dirs[Side::Client.index()].idsn;
            let dsn = idsn.map(|i| (DataSeq(i) + 1u64).0);
            let map = Mapping {
                dsn,
                wire: dsn.unwrap_or(0),
                ssn: 1,
                len: dl as u32,
                data_len: dl,
                fin: false,
                frame,
                csum: None,
            };
            let csum = m.checksum;
            self.add_mapping(fi, ci, 0, map, csum);
            if NOTE {
                let c = &self.conns[ci as usize];
                note.mapping = Some(MappingNote {
                    dsn,
                    dsn_rel: dsn.and_then(|v| c.rel(Side::Client, v)),
                    ssn: 1,
                    len: dl,
                    data_fin: false,
                    implicit: true,
                });
            }
        }
    }

    /// Adds a mapping to a subflow direction unless it repeats the last one
    /// (Linux repeats a mapping on every segment it covers).
    fn add_mapping(&mut self, fi: usize, ci: u32, d: usize, mut map: Mapping, csum: Option<u16>) {
        let checksums = !self.opts.no_checksums;
        let conn = &mut self.conns[ci as usize];
        let dir = &mut self.flows[fi].dirs[d];
        if let Some(last) = dir.maps.back()
            && last.wire == map.wire
            && last.ssn == map.ssn
            && last.data_len == map.data_len
            && last.fin == map.fin
        {
            return;
        }
        if let (Some(ck), true, Some(dsn)) = (csum, checksums, map.dsn)
            && map.len != u32::MAX
        {
            map.csum = Some(Box::new(MappingChecksum::new(dsn, map.ssn, map.data_len, ck, map.len)));
        }
        if dir.maps.len() == MAX_MAPPINGS
            && let Some(old) = dir.maps.pop_front()
            && let Some(cs) = old.csum
            && cs.status == CsumStatus::Pending
        {
            conn.csum.unverified += 1;
        }
        dir.maps.push_back(map);
    }

    /// After the handshake every MPTCP segment carries an option (a DSS at
    /// least); one without any shows that options are being stripped or
    /// that its sender fell back (RFC 8684 §3.7).
    #[allow(clippy::too_many_arguments)]
    fn check_options_present<const NOTE: bool>(
        &mut self,
        fi: usize,
        ci: u32,
        d: usize,
        tcp: &TcpSegment<'_>,
        o: &Opts,
        frame: u64,
        note: &mut PacketNote,
    ) {
        let f = &mut self.flows[fi];
        if o.any
            || tcp.has(tcp_flags::RST)
            || !f.synack_mptcp
            || f.fallback.is_some()
            || f.closed()
            || !matches!(f.role, Role::Initial | Role::Join)
        {
            return;
        }
        let c = &mut self.conns[ci as usize];
        if c.fallback || c.closed {
            return;
        }
        let from = f.sides[d];
        let r = FallbackReason::OptionsMissing { from };
        f.fallback = Some((frame, r));
        if f.role == Role::Initial && !c.established {
            c.fallback = true;
            c.verdict(frame, VerdictKind::Fallback(r));
        } else if f.role == Role::Initial {
            // After MPTCP data has flowed only an infinite mapping may
            // switch to TCP (§3.7): still, the options are gone.
            c.fallback = true;
            c.verdict(frame, VerdictKind::Fallback(r));
        } else {
            let sf = f.sf;
            c.verdict(frame, VerdictKind::JoinFailed { subflow: sf, why: JoinFailure::OptionsMissing { from } });
        }
        ev!(note, NOTE, Event::Fallback(r));
    }

    #[allow(clippy::too_many_arguments)]
    fn on_dss<const NOTE: bool>(
        &mut self,
        fi: usize,
        ci: u32,
        d: usize,
        tcp: &TcpSegment<'_>,
        dss: &Dss,
        frame: u64,
        note: &mut PacketNote,
    ) {
        let sender = self.flows[fi].sides[d];
        let peer = sender.other();
        {
            let role = self.flows[fi].role;
            let c = &mut self.conns[ci as usize];
            if !c.established && !c.fallback && (sender == Side::Server || role == Role::MidStream) {
                c.established = true;
                let kind = match (role, c.version) {
                    (Role::MidStream, _) | (_, None) => VerdictKind::InUse,
                    (_, Some(version)) => VerdictKind::Established { version },
                };
                c.verdict(frame, kind);
                ev!(note, NOTE, Event::Established);
            }
        }
        if let Some(a) = dss.data_ack {
            let c = &mut self.conns[ci as usize];
            let dir = &mut c.dirs[peer.index()];
            if let Some(v) = extend(a, dir.reference) {
                dir.reference = Some(v);
                if dir.acked.is_none_or(|x| dsn_after(v, x)) {
                    dir.acked = Some(v);
                    dir.log.prune(v);
                }
                if NOTE {
                    note.data_ack = Some(v);
                    note.data_ack_rel = c.rel(peer, v);
                }
            }
        }
        let Some(m) = dss.mapping else { return };
        let (dsn, rel_note) = {
            let c = &mut self.conns[ci as usize];
            let dir = &mut c.dirs[sender.index()];
            let dsn = extend(m.dsn, dir.reference);
            if let Some(v) = dsn {
                dir.reference = Some(v);
            }
            (dsn, dsn.and_then(|v| c.rel(sender, v)))
        };
        if NOTE {
            note.mapping = Some(MappingNote {
                dsn,
                dsn_rel: rel_note,
                ssn: m.ssn,
                len: m.data_len,
                data_fin: dss.data_fin,
                implicit: false,
            });
        }
        if m.data_len == 0 && !dss.data_fin {
            // Infinite mapping (§3.3.1, §3.7): from this segment on, the
            // subflow's bytes follow the DSN one to one.
            let f = &mut self.flows[fi];
            let rel = f.dirs[d].ssn_base().map(|i| SubflowSeq(tcp.seq).offset_from(SubflowSeq(i))).unwrap_or(m.ssn);
            let r = FallbackReason::InfiniteMapping { from: sender };
            if f.fallback.is_none() {
                f.fallback = Some((frame, r));
            }
            let map = Mapping {
                dsn,
                wire: m.dsn.value(),
                ssn: rel,
                len: u32::MAX,
                data_len: 0,
                fin: false,
                frame,
                csum: None,
            };
            self.add_mapping(fi, ci, d, map, None);
            let c = &mut self.conns[ci as usize];
            if !c.fallback {
                c.fallback = true;
                c.verdict(frame, VerdictKind::Fallback(r));
            }
            ev!(note, NOTE, Event::InfiniteMapping);
            return;
        }
        let payload = (m.data_len as u32).saturating_sub(dss.data_fin as u32);
        if dss.data_fin {
            let c = &mut self.conns[ci as usize];
            let fin_dsn = dsn.map(|v| (DataSeq(v) + payload as u64).0);
            if let Some(v) = fin_dsn {
                if c.dirs[sender.index()].data_fin.is_none() {
                    c.dirs[sender.index()].data_fin = Some((frame, v));
                    let other = c.dirs[peer.index()].data_fin.is_some();
                    if other && !c.closed && !c.fallback {
                        c.closed = true;
                        c.verdict(frame, VerdictKind::Closed);
                    }
                }
                ev!(note, NOTE, Event::DataFin { dsn: c.rel(sender, v).unwrap_or(v) });
            }
        }
        let f = &mut self.flows[fi];
        if f.dirs[d].isn.is_none() && tcp.payload_len > 0 {
            // Handshake not captured: assume this segment starts the mapping.
            f.dirs[d].isn = Some((SubflowSeq(tcp.seq) - m.ssn).0);
        }
        if payload == 0 {
            // A bare DATA_FIN: its checksum covers the pseudo-header only.
            if let (Some(ck), Some(v), false) = (m.checksum, dsn, self.opts.no_checksums) {
                let mut mc = MappingChecksum::new(v, m.ssn, m.data_len, ck, 0);
                let st = mc.check_empty();
                let c = &mut self.conns[ci as usize];
                c.csum.add(if st == CsumStatus::Ok { Check::Ok } else { Check::Bad });
                ev!(note, NOTE, Event::Checksum { status: st, map_frame: frame });
            }
            return;
        }
        let map = Mapping {
            dsn,
            wire: m.dsn.value(),
            ssn: m.ssn,
            len: payload,
            data_len: m.data_len,
            fin: dss.data_fin,
            frame,
            csum: None,
        };
        self.add_mapping(fi, ci, d, map, m.checksum);
    }

    fn on_payload<const NOTE: bool>(
        &mut self,
        fi: usize,
        ci: u32,
        d: usize,
        tcp: &TcpSegment<'_>,
        frame: u64,
        note: &mut PacketNote,
    ) {
        let (new_bytes, sf, sender) = {
            let f = &mut self.flows[fi];
            (count_bytes(&mut f.dirs[d], tcp), f.sf, f.sides[d])
        };
        let fallback = self.conns[ci as usize].fallback || self.flows[fi].fallback.is_some();
        let Some(isn) = self.flows[fi].dirs[d].ssn_base() else {
            if !fallback {
                self.conns[ci as usize].unmapped += 1;
                ev!(note, NOTE, Event::NoMapping);
            }
            return;
        };
        let mut rel = SubflowSeq(tcp.seq).offset_from(SubflowSeq(isn));
        let mut left = tcp.payload_len;
        let mut captured = tcp.payload;
        let mut first = true;
        // Frames on other subflows this payload repeats (named) and their count.
        let mut reinjected: (Vec<u64>, u64) = (Vec::new(), 0);
        // DSNs not yet given to the sent log.
        let mut run: Option<(u64, u64)> = None;
        while left > 0 {
            let f = &mut self.flows[fi];
            let Some(mi) = f.dirs[d].maps.iter().rposition(|m| m.covers(rel)) else {
                if !fallback {
                    self.conns[ci as usize].unmapped += 1;
                    ev!(note, NOTE, Event::NoMapping);
                }
                break;
            };
            let m = &mut f.dirs[d].maps[mi];
            let off = SubflowSeq(rel).offset_from(SubflowSeq(m.ssn));
            let take = left.min(m.len - off);
            let (here, rest) = captured.split_at(captured.len().min(take as usize));
            let dsn = m.dsn.map(|v| (DataSeq(v) + off as u64).0);
            if first {
                first = false;
                if NOTE {
                    note.map_frame = Some(m.frame);
                    note.dsn = dsn;
                    note.dsn_len = take;
                    note.dsn_rel = dsn.and_then(|v| self.conns[ci as usize].rel(sender, v));
                }
            } else if NOTE {
                note.dsn_len += take;
            }
            // DSS checksum.
            if let Some(cs) = m.csum.as_mut()
                && let Some(st) = cs.add(off, here, take, frame)
            {
                let map_frame = m.frame;
                let map_dsn = m.dsn;
                let c = &mut self.conns[ci as usize];
                match st {
                    CsumStatus::Ok => c.csum.ok += 1,
                    CsumStatus::Bad => {
                        c.csum.bad += 1;
                        let dsn_rel = map_dsn.and_then(|v| c.rel(sender, v));
                        c.verdict(
                            frame,
                            VerdictKind::ChecksumFailed { subflow: sf, from: sender, dsn_rel, corrupt: None },
                        );
                        if let Some(v) = map_dsn {
                            let loc = Localizer::new(DataSeq(v), cs);
                            let vi = c.verdicts.len() - 1;
                            c.dirs[sender.index()].failed.push((sf, loc, vi));
                        }
                    }
                    CsumStatus::Truncated | CsumStatus::Pending => c.csum.unverified += 1,
                }
                ev!(note, NOTE, Event::Checksum { status: st, map_frame });
                if st != CsumStatus::Pending {
                    m.csum = None;
                }
            }
            if let Some(v) = dsn {
                let end = (DataSeq(v) + take as u64).0;
                if !self.opts.no_reinjections {
                    // DSN-contiguous parts of the segment (it spans two
                    // mappings) go to the log as one range.
                    match run {
                        Some((a, e)) if e == v => run = Some((a, end)),
                        _ => {
                            if let Some((a, e)) = run {
                                self.log_sent(fi, d, ci, (a, e), frame, new_bytes, &mut reinjected);
                            }
                            run = Some((v, end));
                        }
                    }
                }
                let c = &mut self.conns[ci as usize];
                let cd = &mut c.dirs[sender.index()];
                if cd.high_end.is_none_or(|h| dsn_after(end, h)) {
                    cd.high_end = Some(end);
                }
                if self.opts.no_reinjections && cd.reference.is_none_or(|r| !dsn_after(r, end)) {
                    cd.bytes += take as u64;
                }
                // Compare with failed mappings' segments (the copy names the
                // corrupted one).
                if !cd.failed.is_empty() && here.len() == take as usize {
                    let mut found = Vec::new();
                    for (_, loc, vi) in cd.failed.iter_mut() {
                        if DataSeq(end) > loc.dsn && loc.end_dsn() > DataSeq(v) {
                            for fr in loc.feed(DataSeq(v), here, frame) {
                                found.push((fr, *vi));
                            }
                        }
                    }
                    for (fr, vi) in found {
                        if let VerdictKind::ChecksumFailed { corrupt, .. } = &mut c.verdicts[vi].kind
                            && corrupt.is_none()
                        {
                            *corrupt = Some(fr);
                        }
                        ev!(note, NOTE, Event::Corrupted { frame: fr });
                    }
                }
            }
            rel = (SubflowSeq(rel) + take).0;
            left -= take;
            captured = rest;
        }
        if let Some(r) = run {
            self.log_sent(fi, d, ci, r, frame, new_bytes, &mut reinjected);
        }
        let (mut of, count) = reinjected;
        if !of.is_empty() {
            of.sort_unstable();
            of.truncate(FRAMES_NAMED);
            let more = count.saturating_sub(of.len() as u64);
            ev!(note, NOTE, Event::Reinjection { of, more });
        }
    }

    /// Records DSNs `[a, b)` of a payload segment in the sent log of its
    /// direction: the connection's new bytes, the subflow's reinjected
    /// bytes, and in `acc` the frames on other subflows it repeats (named,
    /// at most [`FRAMES_NAMED`]) and their count.
    #[allow(clippy::too_many_arguments)]
    fn log_sent(
        &mut self,
        fi: usize,
        d: usize,
        ci: u32,
        (a, b): (u64, u64),
        frame: u64,
        new_bytes: u32,
        acc: &mut (Vec<u64>, u64),
    ) {
        let f = &self.flows[fi];
        let (sf, sender) = (f.sf, f.sides[d]);
        let cd = &mut self.conns[ci as usize].dirs[sender.index()];
        let seen = cd.log.record(a, b, sf, frame);
        cd.bytes += seen.new;
        if !seen.other_frames.is_empty() {
            acc.1 += seen.other_count;
            for fr in seen.other_frames {
                if !acc.0.contains(&fr) {
                    acc.0.push(fr);
                }
            }
            if new_bytes > 0 {
                self.flows[fi].dirs[d].reinjected += seen.reinjected.min(new_bytes as u64);
            }
        }
    }

    /// ADD_ADDR, REMOVE_ADDR, MP_PRIO, MP_FAIL, MP_FASTCLOSE.
    #[allow(clippy::too_many_arguments)]
    fn on_signals<const NOTE: bool>(
        &mut self,
        fi: usize,
        ci: u32,
        d: usize,
        o: &Opts,
        rst: bool,
        frame: u64,
        note: &mut PacketNote,
    ) {
        let sender = self.flows[fi].sides[d];
        let peer = sender.other();
        if let Some(a) = o.add_addr() {
            let c = &mut self.conns[ci as usize];
            if a.echo {
                if let Some(an) = c
                    .announced
                    .iter_mut()
                    .find(|an| an.by == peer && an.id == a.addr_id && an.addr == a.addr && an.echo_frame.is_none())
                {
                    an.echo_frame = Some(frame);
                }
            } else {
                let hmac = a.hmac.map(|h| match (c.keys[sender.index()], c.keys[peer.index()]) {
                    (Some(ks), Some(kr)) => add_addr_check(ks, kr, &a, h),
                    _ => Check::NoKeys,
                });
                if let Some(r) = hmac {
                    c.hmac.add(r);
                    let sf = self.flows[fi].sf;
                    if matches!(r, Check::Bad | Check::BadLeftmost) {
                        c.verdict(frame, VerdictKind::HmacFailed { subflow: sf, kind: HmacKind::AddAddr });
                    }
                    ev!(note, NOTE, Event::Hmac { kind: HmacKind::AddAddr, result: r });
                }
                c.announced.push(Announcement {
                    frame,
                    by: sender,
                    id: a.addr_id,
                    addr: a.addr,
                    port: a.port,
                    hmac,
                    echo_frame: None,
                });
            }
        }
        if let Some(rm) = o.rm() {
            let ids: Vec<u8> = rm.addr_ids.to_vec();
            let mut hit = Vec::new();
            let c = &mut self.conns[ci as usize];
            c.removed.push(Removal { frame, by: sender, ids: ids.clone() });
            for &sfi in &c.flows {
                let f = &mut self.flows[sfi as usize];
                let di = if f.sides[0] == sender { 0 } else { 1 };
                if let Some(id) = f.ids[di]
                    && ids.contains(&id)
                    && !f.closed()
                {
                    let cause = CloseCause::RemoveAddr { by: sender, id };
                    if f.cause.is_none() {
                        f.cause = Some((frame, cause));
                    }
                    hit.push((f.sf, cause));
                }
            }
            for (sf, cause) in &hit {
                c.verdict(frame, VerdictKind::SubflowClosed { subflow: *sf, cause: *cause });
            }
            ev!(note, NOTE, Event::Removes { subflows: hit.iter().map(|(s, _)| *s).collect() });
        }
        if let Some(p) = o.prio() {
            match p.addr_id {
                None => self.flows[fi].backup[d] = p.backup,
                Some(id) => {
                    // v0 (RFC 6824 §3.3.8): the sender's address id.
                    for &sfi in &self.conns[ci as usize].flows {
                        let f = &mut self.flows[sfi as usize];
                        let di = if f.sides[0] == sender { 0 } else { 1 };
                        if f.ids[di] == Some(id) {
                            f.backup[di] = p.backup;
                        }
                    }
                }
            }
            ev!(note, NOTE, Event::Backup { on: p.backup });
        }
        if let Some(fail) = o.fail() {
            // The sender saw bad data from the peer: the DSN is in the
            // peer's sequence space.
            let f = &mut self.flows[fi];
            let sf = f.sf;
            let c = &mut self.conns[ci as usize];
            let dsn_rel = c.rel(peer, fail.dsn);
            c.verdict(frame, VerdictKind::MpFail { subflow: sf, by: sender, dsn_rel });
            ev!(note, NOTE, Event::MpFail { dsn: dsn_rel.unwrap_or(fail.dsn) });
            if !rst && !c.fallback {
                // MP_FAIL on a segment that is not a reset: the connection
                // falls back to an infinite mapping (§3.7).
                let r = FallbackReason::MpFail { from: sender };
                c.fallback = true;
                c.verdict(frame, VerdictKind::Fallback(r));
                ev!(note, NOTE, Event::Fallback(r));
            }
        }
        if let Some(fc) = o.fastclose() {
            let c = &mut self.conns[ci as usize];
            let key = match c.keys[peer.index()] {
                Some(k) if k == fc.receiver_key => Check::Ok,
                Some(_) => Check::Bad,
                None => Check::NoKeys,
            };
            if !c.verdicts.iter().any(|v| matches!(v.kind, VerdictKind::FastClose { .. })) {
                c.verdict(frame, VerdictKind::FastClose { by: sender });
            }
            ev!(note, NOTE, Event::FastClose { key });
        }
    }

    /// FIN and RST flags, for every flow.
    fn close_flags(&mut self, fi: usize, d: usize, tcp: &TcpSegment<'_>, o: &Opts, frame: u64) {
        let f = &mut self.flows[fi];
        if tcp.has(tcp_flags::FIN) && f.fin[d].is_none() {
            f.fin[d] = Some(frame);
        }
        if tcp.has(tcp_flags::RST) && f.rst.is_none() {
            f.rst = Some((frame, d));
            let by = f.sides[d];
            let cause = if o.fastclose().is_some() {
                Some(CloseCause::FastClose { by })
            } else if let Some(r) = o.tcprst() {
                Some(CloseCause::TcpRst { by, flags: r.flags, reason: r.reason })
            } else if o.fail().is_some() {
                Some(CloseCause::MpFail { by })
            } else {
                None
            };
            f.rst_signal = cause;
            if f.cause.is_none() {
                f.cause = cause.map(|c| (frame, c));
            }
        }
    }

    fn on_reset<const NOTE: bool>(
        &mut self,
        fi: usize,
        ci: u32,
        d: usize,
        o: &Opts,
        frame: u64,
        note: &mut PacketNote,
    ) {
        let f = &self.flows[fi];
        if f.rst.map(|(fr, _)| fr) != Some(frame) {
            // Not the first reset of this subflow.
            if let Some(r) = o.tcprst() {
                ev!(note, NOTE, Event::TcpRst { flags: r.flags, reason: r.reason });
            }
            return;
        }
        let by = f.sides[d];
        let sf = f.sf;
        let reason = o.tcprst().map(|r| r.reason);
        // A reset after the connection was fast-closed answers the
        // MP_FASTCLOSE (RFC 8684 §3.5), whatever else it carries.
        let set_here = f.cause.is_none_or(|(fr, _)| fr == frame);
        if set_here
            && let Some(fc_by) = self.conns[ci as usize].verdicts.iter().find_map(|v| match v.kind {
                VerdictKind::FastClose { by } => Some(by),
                _ => None,
            })
        {
            self.flows[fi].cause = Some((frame, CloseCause::FastClose { by: fc_by }));
        }
        let f = &self.flows[fi];
        if let Some(r) = o.tcprst() {
            ev!(note, NOTE, Event::TcpRst { flags: r.flags, reason: r.reason });
        }
        // A join reset by the responder before it confirmed the join.
        let refused = f.role == Role::Join && d == 1 && f.join.as_ref().is_some_and(|j| !j.confirmed);
        let c = &mut self.conns[ci as usize];
        if refused {
            c.verdict(frame, VerdictKind::JoinRefused { subflow: sf, by, reason });
            ev!(note, NOTE, Event::JoinRefused);
            return;
        }
        if let Some((_, cause)) = f.cause
            && !matches!(cause, CloseCause::RemoveAddr { .. })
        {
            c.verdict(frame, VerdictKind::SubflowClosed { subflow: sf, cause });
        }
    }

    /// Everything known at the end of the capture.
    pub fn finish(self) -> Report {
        let counts = self.report_counts();
        let mut report = Report { frames: counts.frames, tcp_segments: counts.tcp_segments, ..Report::default() };
        self.for_each_report(|part| match part {
            ReportPart::Conn(c) => report.connections.push(c.clone()),
            ReportPart::Flow(f) => report.tcp_flows.push(f.clone()),
        });
        report
    }

    /// The totals of [`Self::finish`]'s report, without building it.
    pub fn report_counts(&self) -> ReportCounts {
        let syn_conns = self.syns.iter().filter(|r| r.conn != 0).count();
        ReportCounts {
            frames: self.frames,
            tcp_segments: self.tcp_segments,
            connections: self.conns.len() + syn_conns,
            tcp_flows: self.flows.iter().filter(|f| f.conn.is_none()).count() + self.syns.len() - syn_conns,
        }
    }

    /// The parts of [`Self::finish`]'s report one at a time, in order (the
    /// connections, then the TCP flows without MPTCP), so that a caller can
    /// write them out without holding them all.
    pub fn for_each_report(&self, mut out: impl FnMut(ReportPart<'_>)) {
        for item in self.conns_in_order() {
            match item {
                Ok(ci) => {
                    let c = &self.conns[ci as usize];
                    let flows: Vec<&Flow> = c.flows.iter().map(|&fi| &self.flows[fi as usize]).collect();
                    out(ReportPart::Conn(&self.conn_report(c, &flows)));
                }
                Err(si) => {
                    let (f, c) = self.syns[si as usize].expand();
                    let c = c.expect("only MP_CAPABLE SYNs have a connection");
                    out(ReportPart::Conn(&self.conn_report(&c, &[&f])));
                }
            }
        }
        let mut order: Vec<(u32, Result<u32, u32>)> = self
            .flows
            .iter()
            .enumerate()
            .filter(|(_, f)| f.conn.is_none())
            .map(|(i, f)| (f.number, Ok(i as u32)))
            .chain(self.syns.iter().enumerate().filter(|(_, r)| r.conn == 0).map(|(i, r)| (r.number, Err(i as u32))))
            .collect();
        order.sort_unstable_by_key(|(n, _)| *n);
        for (_, item) in order {
            let held;
            let f = match item {
                Ok(fi) => &self.flows[fi as usize],
                Err(si) => {
                    held = self.syns[si as usize].expand().0;
                    &held
                }
            };
            out(ReportPart::Flow(&TcpFlowReport {
                flow: f.number,
                client: f.client,
                server: f.server,
                first_frame: f.first_frame,
                last_frame: f.last_frame,
                packets: f.packets,
                bytes: [f.dirs[0].bytes, f.dirs[1].bytes],
                syn_frame: f.syn_frame,
                kind: match (f.unknown_token, f.syn_frame) {
                    (Some(token), _) => TcpFlowKind::JoinUnknownToken { token },
                    (None, Some(_)) => TcpFlowKind::Plain,
                    (None, None) => TcpFlowKind::NoHandshake,
                },
            }));
        }
    }

    /// The connections by number: `Ok` indexes `conns`, `Err` `syns`.
    fn conns_in_order(&self) -> Vec<Result<u32, u32>> {
        let mut order: Vec<(u32, Result<u32, u32>)> = self
            .conns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id, Ok(i as u32)))
            .chain(self.syns.iter().enumerate().filter(|(_, r)| r.conn != 0).map(|(i, r)| (r.conn, Err(i as u32))))
            .collect();
        order.sort_unstable_by_key(|(n, _)| *n);
        order.into_iter().map(|(_, i)| i).collect()
    }

    fn conn_report(&self, c: &Conn, flows: &[&Flow]) -> ConnReport {
        let mut csum = c.csum;
        let mut subflows = Vec::new();
        for f in flows {
            for dir in &f.dirs {
                csum.unverified += dir
                    .maps
                    .iter()
                    .filter(|m| m.csum.as_ref().is_some_and(|cs| cs.status == CsumStatus::Pending))
                    .count() as u32;
            }
            let by_side = |v: [u64; 2]| -> [u64; 2] {
                let mut out = [0; 2];
                out[f.sides[0].index()] = v[0];
                out[f.sides[1].index()] = v[1];
                out
            };
            let mut ids = [None; 2];
            let mut backup = [false; 2];
            let mut fin = [None; 2];
            for di in 0..2 {
                ids[f.sides[di].index()] = f.ids[di];
                backup[f.sides[di].index()] = f.backup[di];
                fin[f.sides[di].index()] = f.fin[di];
            }
            subflows.push(SubflowReport {
                id: f.sf,
                flow: f.number,
                client: f.client,
                server: f.server,
                kind: match f.role {
                    Role::Initial => SubflowKind::Initial,
                    Role::Join => SubflowKind::Join { by: f.sides[0] },
                    _ => SubflowKind::Unknown,
                },
                addr_ids: ids,
                backup,
                bytes: by_side([f.dirs[0].bytes, f.dirs[1].bytes]),
                reinjected: by_side([f.dirs[0].reinjected, f.dirs[1].reinjected]),
                retransmitted: by_side([f.dirs[0].retrans, f.dirs[1].retrans]),
                first_frame: f.first_frame,
                last_frame: f.last_frame,
                packets: f.packets,
                syn_frame: f.syn_frame,
                end: SubflowEnd {
                    fin,
                    rst: f.rst.map(|(fr, d)| (fr, f.sides[d])),
                    rst_signal: f.rst_signal,
                    cause: f.cause,
                },
                fallback: f.fallback,
                truncated: f.dirs[0].truncated || f.dirs[1].truncated,
                syn_data: f.dirs[0].syn_data,
            });
        }
        ConnReport {
            id: c.id,
            version: c.version,
            client: c.client,
            server: c.server,
            keys: c.keys,
            tokens: c.tokens,
            idsns: [c.dirs[0].idsn, c.dirs[1].idsn],
            checksum: c.checksum,
            first_frame: c.first_frame,
            last_frame: c.last_frame,
            subflows,
            data_bytes: [c.dirs[0].bytes, c.dirs[1].bytes],
            hmac: c.hmac,
            csum,
            announced: c.announced.clone(),
            removed: c.removed.clone(),
            verdicts: c.verdicts.clone(),
            unmapped_segments: c.unmapped,
        }
    }
}

/// Verifies an ADD_ADDR truncated HMAC: the rightmost 64 bits of
/// HMAC-SHA256(Key-sender || Key-receiver, id || address || port) (RFC 8684
/// §3.4.1, the port as 2 bytes, zero when absent, as Linux hashes it).
fn add_addr_check(key_sender: u64, key_receiver: u64, a: &AddAddr, hmac: u64) -> Check {
    if crypto::add_addr_hmac(Key(key_sender), Key(key_receiver), a.addr_id, a.addr, a.port) == hmac {
        return Check::Ok;
    }
    let mut msg = Vec::with_capacity(19);
    msg.push(a.addr_id);
    match a.addr {
        IpAddr::V4(v4) => msg.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => msg.extend_from_slice(&v6.octets()),
    }
    msg.extend_from_slice(&a.port.unwrap_or(0).to_be_bytes());
    let full = crypto::hmac_keys(Version::V1, Key(key_sender), Key(key_receiver), &msg);
    if u64::from_be_bytes(full[..8].try_into().expect("8 bytes")) == hmac { Check::BadLeftmost } else { Check::Bad }
}

/// Counts a segment's payload as new or retransmitted on its subflow;
/// returns the new bytes.
fn count_bytes(dir: &mut FlowDir, tcp: &TcpSegment<'_>) -> u32 {
    let len = tcp.payload_len;
    if len == 0 {
        return 0;
    }
    if !tcp.payload_complete() {
        dir.truncated = true;
    }
    let end = SubflowSeq(tcp.seq) + len;
    let new = match dir.high {
        None => len,
        Some(h) if end <= SubflowSeq(h) => 0,
        Some(h) if SubflowSeq(tcp.seq) >= SubflowSeq(h) => len,
        Some(h) => end.offset_from(SubflowSeq(h)),
    };
    if dir.high.is_none_or(|h| end > SubflowSeq(h)) {
        dir.high = Some(end.0);
    }
    dir.bytes += new as u64;
    dir.retrans += (len - new) as u64;
    new
}

#[cfg(test)]
mod tests;
