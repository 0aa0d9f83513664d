//! The TCP engine of one subflow (RFC 9293): the state machine, sequence
//! variables, RTT estimation and the retransmission timer (RFC 6298),
//! loss detection with duplicate ACKs and SACK (RFC 5681, RFC 6582,
//! RFC 6675), delayed ACKs (RFC 9293 §3.8.6.3), timestamps (RFC 7323) and
//! the close states including TIME-WAIT.
//!
//! The engine holds no payload: each segment it has sent is a [`TxSeg`] that
//! says which data sequence numbers (DSN) it carried, and the connection
//! reads those bytes from its send ring when it must send them again. The
//! connection asks and tells, it never writes a field: an incoming segment
//! in a synchronized state goes through [`Tcb::handle_segment`] (up to the
//! ACK field, one [`SegmentOutcome`]), its payload through
//! [`Tcb::rx_span`] / [`Tcb::rx_mark`], and its end (FIN, the ACK to send)
//! through [`Tcb::end_segment`]; timers through [`Tcb::handle_timers`].
//! The rules with state of their own are small types: [`RttEstimator`],
//! loss recovery (`recovery`), the end of slow start (`hystart`).

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::cc::Controller;
use super::ring::RangeSet;
use super::time::{Duration, Instant};
use crate::dissect::options::SackBlocks;
use crate::seq::{DataSeq, SubflowSeq};

mod hystart;
mod recovery;

use hystart::HyStart;
use recovery::{Advance, LossSignal, Recovery};

/// TCP states (RFC 9293 §3.3.2). LISTEN lives in the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
    Closed,
}

impl TcpState {
    /// The name `ss` prints.
    pub fn ss_name(self) -> &'static str {
        match self {
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynReceived => "SYN-RECV",
            TcpState::Established => "ESTAB",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST-ACK",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Closed => "CLOSED",
        }
    }
    /// The handshake is complete and the connection not yet closed.
    pub fn synchronized(self) -> bool {
        !matches!(self, TcpState::SynSent | TcpState::SynReceived | TcpState::Closed)
    }
    /// We may still send data.
    pub fn can_send(self) -> bool {
        matches!(self, TcpState::Established | TcpState::CloseWait)
    }
}

/// TSval at `now` for a subflow whose offset is `offset`: a 1 ms clock
/// plus a per-connection offset (RFC 7323 §5.4).
pub fn tsval(now: Instant, offset: u32) -> u32 {
    (now.as_millis() as u32).wrapping_add(offset)
}

/// At most one ACK per [`AckLimiter::INTERVAL`] in answer to segments an
/// attacker may send blind, or that may be part of an ACK loop: RSTs and
/// SYNs in the window (the challenge ACK of RFC 5961 §3.2, §4, rate
/// limited as §7 asks) and pure ACKs out of the window (Linux's
/// tcp_invalid_ratelimit, 500 ms). Data out of the window is always
/// acknowledged (RFC 9293 §3.10.7.4): no ACK loop carries data.
#[derive(Clone, Copy, Debug, Default)]
pub struct AckLimiter {
    last: Option<Instant>,
}

impl AckLimiter {
    pub const INTERVAL: Duration = Duration::from_millis(500);

    /// Whether an ACK may go now (and, if so, it counts as sent).
    pub fn allow(&mut self, now: Instant) -> bool {
        if self.last.is_some_and(|t| now < t + Self::INTERVAL) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// RTT estimator and RTO (RFC 6298 §2), microsecond resolution.
#[derive(Clone, Copy, Debug)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    min_rto: Duration,
    max_rto: Duration,
    initial_rto: Duration,
    latest: Duration,
    min_rtt: Option<Duration>,
}

impl RttEstimator {
    pub fn new(initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            min_rto,
            max_rto,
            initial_rto,
            latest: Duration::ZERO,
            min_rtt: None,
        }
    }
    /// Feed one measurement (RFC 6298 §2.2, §2.3 with alpha 1/8, beta 1/4).
    pub fn sample(&mut self, r: Duration) {
        let r = r.max(Duration::from_micros(1));
        self.latest = r;
        self.min_rtt = Some(self.min_rtt.map_or(r, |m| m.min(r)));
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = Duration::from_micros(r.as_micros() / 2);
            }
            Some(s) => {
                let diff = s.as_micros().abs_diff(r.as_micros());
                self.rttvar = Duration::from_micros((3 * self.rttvar.as_micros() + diff) / 4);
                self.srtt = Some(Duration::from_micros((7 * s.as_micros() + r.as_micros()) / 8));
            }
        }
    }
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }
    /// RTO = SRTT + max(G, 4*RTTVAR), clamped (RFC 6298 §2.4, §2.5; the
    /// lower bound is configurable, Linux uses 200 ms).
    pub fn rto(&self) -> Duration {
        match self.srtt {
            None => self.initial_rto,
            Some(s) => (s + (self.rttvar * 4).max(Duration::from_millis(1))).max(self.min_rto).min(self.max_rto),
        }
    }
    pub fn max_rto(&self) -> Duration {
        self.max_rto
    }
}

/// The mapping a segment belongs to (RFC 8684 §3.3.1): sent again unchanged
/// on every retransmission of any byte of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxMap {
    pub dsn: DataSeq,
    /// Relative subflow sequence number (to the ISN).
    pub ssn: u32,
    pub len: u16,
    pub checksum: Option<u16>,
    /// Sent in the MP_CAPABLE data form (RFC 8684 §3.1, the 22/24-byte option).
    pub mpc: bool,
}

/// One segment on the retransmission queue, also the SACK scoreboard entry.
#[derive(Clone, Copy, Debug)]
pub struct TxSeg {
    pub seq: SubflowSeq,
    pub len: u32,
    /// DSN of the first byte.
    pub dsn: DataSeq,
    pub map: Option<TxMap>,
    /// When it was last sent.
    pub sent_at: Instant,
    /// Times sent (1 = never retransmitted).
    pub xmit: u16,
    pub sacked: bool,
    /// Deemed lost and not retransmitted since.
    pub lost: bool,
    /// Recovery episode of the last retransmission.
    epoch: u32,
    /// Already queued for reinjection on another subflow.
    pub reinjected: bool,
}

impl TxSeg {
    pub fn new(seq: SubflowSeq, len: u32, dsn: DataSeq, map: Option<TxMap>, now: Instant) -> TxSeg {
        TxSeg { seq, len, dsn, map, sent_at: now, xmit: 1, sacked: false, lost: false, epoch: 0, reinjected: false }
    }
    pub fn end(&self) -> SubflowSeq {
        self.seq + self.len
    }
}

/// What an incoming ACK did.
#[derive(Clone, Copy, Debug, Default)]
pub struct AckOutcome {
    /// Payload bytes newly cumulatively acknowledged.
    pub acked: usize,
    /// The ACK acknowledged something not yet sent: answer with an ACK, drop.
    pub invalid: bool,
    pub syn_acked: bool,
    pub fin_acked: bool,
    /// A fast-recovery episode started with this ACK.
    pub entered_recovery: bool,
    pub dupack: bool,
}

/// Why [`Tcb::handle_segment`] dropped a segment before its ACK field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// A RST or SYN in the window: a challenge ACK (RFC 5961 §3.2, §4),
    /// `sent` unless the rate limit held it back (§7).
    Challenge { sent: bool },
    /// A RST outside the window: dropped silently (RFC 5961 §3.2).
    RstOutside,
    /// Unacceptable (RFC 9293 §3.10.7.4 "first"): `acked` unless the rate
    /// limit held the ACK back.
    OutOfWindow { acked: bool },
    /// In TIME-WAIT (a retransmitted FIN is acknowledged, the wait restarted).
    TimeWait,
    /// No ACK flag (RFC 9293 §3.10.7.4 "fifth": drop).
    NoAck,
}

/// What [`Tcb::handle_segment`] made of a segment in a synchronized state.
#[derive(Clone, Copy, Debug)]
pub enum SegmentOutcome {
    /// A RST at RCV.NXT, or any RST in TIME-WAIT: the peer reset the
    /// subflow (RFC 9293 §3.10.7.4 "second", RFC 5961 §3.2). The TCB is
    /// untouched: the connection tears it down.
    Reset,
    /// Dropped before the ACK field; any ACK it calls for is requested.
    Dropped(Dropped),
    /// The ACK field was processed (`invalid`: it acknowledged something
    /// not yet sent, an ACK is due and the rest of the segment is dropped).
    /// The close states moved on; the payload and FIN follow with
    /// [`Tcb::rx_span`], [`Tcb::rx_mark`] and [`Tcb::end_segment`].
    Acked(AckOutcome),
}

/// Per-subflow TCP counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpStats {
    pub segs_out: u64,
    pub segs_in: u64,
    pub bytes_sent: u64,
    pub bytes_retrans: u64,
    pub retransmits: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub timeouts: u64,
    pub fast_recoveries: u64,
}

/// The transmission control block.
#[derive(Debug)]
pub struct Tcb {
    pub state: TcpState,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    // Send sequence space (RFC 9293 §3.3.1).
    pub iss: SubflowSeq,
    pub snd_una: SubflowSeq,
    /// Highest sequence sent + 1 (retransmissions do not move it).
    pub snd_nxt: SubflowSeq,
    pub snd_wnd: u32,
    snd_wl1: SubflowSeq,
    snd_wl2: SubflowSeq,
    /// The peer's window scale shift (0 if not negotiated).
    pub snd_wscale: u8,
    /// Our window scale shift as announced in our SYN.
    pub rcv_wscale: u8,
    pub wscale_ok: bool,
    /// Maximum segment payload without options (the peer's MSS, capped by ours).
    pub mss: usize,
    pub sack_ok: bool,
    pub ts_ok: bool,
    pub ts_recent: u32,
    ts_offset: u32,
    /// Bytes of our SYN the peer took (Fast Open, RFC 7413): relative
    /// sequence numbers count from after them (RFC 8684 Appendix B, as
    /// Linux maps SYN data).
    pub snd_syn_data: u32,
    /// Bytes of the peer's SYN we took, likewise.
    pub rcv_syn_data: u32,
    // Receive sequence space.
    pub irs: SubflowSeq,
    pub rcv_nxt: SubflowSeq,
    pub ooo: RangeSet<SubflowSeq>,
    /// Most recently received out-of-order block (first SACK block, RFC 2018 §4).
    last_ooo: Option<(SubflowSeq, SubflowSeq)>,
    /// The peer's FIN, when it arrived before all data.
    fin_pending: Option<SubflowSeq>,
    pub fin_received: bool,
    /// Right edge of the window last advertised.
    pub rcv_adv: SubflowSeq,
    // Transmission.
    pub txq: VecDeque<TxSeg>,
    /// Loss recovery: the SACK scoreboard's counts, fast recovery, RACK.
    recovery: Recovery,
    /// We must send a FIN after the data (close requested).
    pub fin_queued: bool,
    /// Sequence number our FIN took, once sent.
    pub fin_seq: Option<SubflowSeq>,
    /// The FIN must be (re)sent.
    pub fin_due: bool,
    /// The SYN (or SYN/ACK) must be (re)sent.
    pub syn_due: bool,
    pub syn_sent_at: Option<Instant>,
    pub syn_retries: u32,
    pub rtt: RttEstimator,
    pub cc: Box<dyn Controller>,
    /// When slow start ends (HyStart++, RFC 9406 §4.2).
    hystart: HyStart,
    /// RTO backoff exponent.
    pub backoff: u32,
    /// Consecutive RTOs without progress.
    pub rto_count: u32,
    // Timers.
    pub rto_at: Option<Instant>,
    pub delack_at: Option<Instant>,
    pub timewait_at: Option<Instant>,
    /// Tail loss probe (RFC 8985 §7): fires before the RTO when the last
    /// segments of a flight may be lost with nothing after them to tell.
    pub tlp_at: Option<Instant>,
    tlp_done: bool,
    /// An ACK must go out now.
    pub ack_now: bool,
    /// Answers to out-of-window and challenge-worthy segments.
    pub oow: AckLimiter,
    /// Full segments received since our last ACK.
    unacked_segs: u32,
    delack: Duration,
    msl: Duration,
    pub stats: TcpStats,
    pub last_recv: Instant,
    pub last_send: Instant,
}

/// What [`Tcb::handle_timers`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerOutcome {
    /// The delayed ACK fired: an ACK is due.
    pub delayed_ack: bool,
    /// TIME-WAIT ended: the subflow is CLOSED.
    pub time_wait_over: bool,
    /// The retransmission timer is due (the connection acts on it).
    pub rto_due: bool,
}

/// Parameters a TCB is created with.
#[derive(Clone, Copy, Debug)]
pub struct TcbParams {
    pub mss: usize,
    pub rcv_wscale: u8,
    pub sack: bool,
    pub timestamps: bool,
    pub initial_rto: Duration,
    pub min_rto: Duration,
    pub max_rto: Duration,
    pub delack: Duration,
    pub msl: Duration,
}

impl Tcb {
    #[allow(clippy::too_many_arguments)]
    fn new(
        local: SocketAddr,
        remote: SocketAddr,
        iss: SubflowSeq,
        ts_offset: u32,
        p: &TcbParams,
        cc: Box<dyn Controller>,
        state: TcpState,
        now: Instant,
    ) -> Tcb {
        Tcb {
            state,
            local,
            remote,
            iss,
            snd_una: iss,
            snd_nxt: iss + 1u32,
            snd_wnd: 0,
            snd_wl1: SubflowSeq(0),
            snd_wl2: SubflowSeq(0),
            snd_wscale: 0,
            rcv_wscale: p.rcv_wscale,
            wscale_ok: false,
            mss: p.mss,
            sack_ok: p.sack,
            ts_ok: p.timestamps,
            ts_recent: 0,
            ts_offset,
            snd_syn_data: 0,
            rcv_syn_data: 0,
            irs: SubflowSeq(0),
            rcv_nxt: SubflowSeq(0),
            ooo: RangeSet::new(128),
            last_ooo: None,
            fin_pending: None,
            fin_received: false,
            rcv_adv: SubflowSeq(0),
            txq: VecDeque::new(),
            recovery: Recovery::new(iss, now),
            fin_queued: false,
            fin_seq: None,
            fin_due: false,
            syn_due: true,
            syn_sent_at: None,
            syn_retries: 0,
            rtt: RttEstimator::new(p.initial_rto, p.min_rto, p.max_rto),
            cc,
            hystart: HyStart::new(iss, now),
            backoff: 0,
            rto_count: 0,
            rto_at: None,
            delack_at: None,
            timewait_at: None,
            tlp_at: None,
            tlp_done: false,
            ack_now: false,
            oow: AckLimiter::default(),
            unacked_segs: 0,
            delack: p.delack,
            msl: p.msl,
            stats: TcpStats::default(),
            last_recv: now,
            last_send: now,
        }
    }

    /// Active open: SYN-SENT, the SYN to be sent.
    pub fn client(
        local: SocketAddr,
        remote: SocketAddr,
        iss: SubflowSeq,
        ts_offset: u32,
        p: &TcbParams,
        cc: Box<dyn Controller>,
        now: Instant,
    ) -> Tcb {
        Tcb::new(local, remote, iss, ts_offset, p, cc, TcpState::SynSent, now)
    }

    /// Passive open from a SYN: SYN-RECEIVED, the SYN/ACK to be sent.
    #[allow(clippy::too_many_arguments)]
    pub fn server(
        local: SocketAddr,
        remote: SocketAddr,
        iss: SubflowSeq,
        ts_offset: u32,
        p: &TcbParams,
        cc: Box<dyn Controller>,
        syn: &super::wire::Segment<'_>,
        now: Instant,
    ) -> Tcb {
        let mut t = Tcb::new(local, remote, iss, ts_offset, p, cc, TcpState::SynReceived, now);
        t.take_syn_options(syn);
        t.irs = syn.seq;
        t.rcv_nxt = syn.seq + 1u32;
        t.snd_wnd = syn.window as u32;
        t.snd_wl1 = syn.seq;
        t.snd_wl2 = iss;
        t
    }

    /// Negotiate from the peer's SYN or SYN/ACK options (RFC 7323 §2.2, §3.2;
    /// RFC 2018 §2; RFC 9293 §3.7.1).
    fn take_syn_options(&mut self, syn: &super::wire::Segment<'_>) {
        let o = &syn.opts;
        self.mss = self.mss.min(o.mss.map_or(536, |m| m as usize)).max(64);
        match o.wscale {
            Some(s) => {
                self.wscale_ok = true;
                self.snd_wscale = s.min(14);
            }
            None => {
                self.wscale_ok = false;
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        self.sack_ok &= o.sack_permitted;
        match o.timestamps {
            Some((tsval, _)) if self.ts_ok => self.ts_recent = tsval,
            _ => self.ts_ok = false,
        }
        self.cc.set_mss(self.mss);
    }

    /// The SYN/ACK arrived in SYN-SENT and acknowledges our SYN.
    pub fn on_synack(&mut self, now: Instant, seg: &super::wire::Segment<'_>) {
        self.take_syn_options(seg);
        self.irs = seg.seq;
        self.rcv_nxt = seg.seq + 1u32;
        if seg.ack > self.snd_nxt {
            // It acknowledges data of our SYN (RFC 7413 §4.2.1); what it
            // does not acknowledge is sent again as new data.
            self.snd_syn_data = (seg.ack - self.snd_nxt) as u32;
            self.snd_nxt = seg.ack;
            self.stats.bytes_sent += self.snd_syn_data as u64;
            self.stats.bytes_acked += self.snd_syn_data as u64;
        }
        // The window is never scaled in a SYN (RFC 7323 §2.2).
        self.establish(now, seg, seg.window as u32);
        self.ack_now = true;
    }

    /// Our SYN/ACK was acknowledged in SYN-RECEIVED.
    pub fn on_handshake_ack(&mut self, now: Instant, seg: &super::wire::Segment<'_>) {
        self.establish(now, seg, (seg.window as u32) << self.snd_wscale);
    }

    /// The handshake's SYN is acknowledged by `seg`: the send window from it,
    /// an RTT sample unless the SYN was retransmitted (Karn, RFC 6298 §3),
    /// the timer stopped, ESTABLISHED.
    fn establish(&mut self, now: Instant, seg: &super::wire::Segment<'_>, window: u32) {
        self.snd_una = seg.ack;
        self.snd_wnd = window;
        self.snd_wl1 = seg.seq;
        self.snd_wl2 = seg.ack;
        self.syn_due = false;
        if let Some(t) = self.syn_sent_at
            && self.syn_retries == 0
        {
            self.rtt.sample(now - t);
        }
        self.rto_at = None;
        self.backoff = 0;
        self.state = TcpState::Established;
    }

    /// TSval to send: milliseconds plus a random per-subflow offset (RFC 7323 §5.4).
    pub fn tsval(&self, now: Instant) -> u32 {
        tsval(now, self.ts_offset)
    }

    /// Relative sequence number (the DSS subflow sequence, RFC 8684 §3.3.1),
    /// counted after the SYN data the peer took.
    pub fn rel(&self, seq: SubflowSeq) -> u32 {
        seq.0.wrapping_sub(self.iss.0).wrapping_sub(self.snd_syn_data)
    }
    /// Absolute receive sequence from a peer's relative one.
    pub fn abs_rcv(&self, rel: u32) -> SubflowSeq {
        SubflowSeq(self.irs.0.wrapping_add(self.rcv_syn_data).wrapping_add(rel))
    }
    /// The peer's relative sequence number of `seq` (the inverse of [`Tcb::abs_rcv`]).
    pub fn rel_rcv(&self, seq: SubflowSeq) -> u32 {
        seq.0.wrapping_sub(self.irs.0).wrapping_sub(self.rcv_syn_data)
    }
    /// Where the peer's relative sequence numbers start (`ss`'s ssnoff).
    pub fn rcv_ssn_offset(&self) -> u32 {
        self.irs.0.wrapping_add(self.rcv_syn_data)
    }

    /// Server: the `len` bytes of the peer's SYN are taken (RFC 7413
    /// §4.2.2): the SYN/ACK acknowledges them.
    pub fn take_syn_data(&mut self, len: u32) {
        self.rcv_nxt += len;
        self.rcv_syn_data = len;
        self.stats.bytes_received += len as u64;
    }

    /// RFC 6675 pipe: bytes believed in flight.
    pub fn pipe(&self) -> usize {
        let out = self.snd_nxt - self.snd_una;
        out.saturating_sub(self.recovery.not_in_flight())
    }
    /// Bytes outstanding (sent and not cumulatively acked), SYN/FIN excluded.
    pub fn outstanding(&self) -> usize {
        self.txq.iter().map(|s| s.len as usize).sum()
    }
    pub fn has_outstanding(&self) -> bool {
        !self.txq.is_empty() || (self.fin_seq.is_some() && self.snd_una <= self.fin_seq.unwrap_or(self.snd_una))
    }
    /// Room the congestion window leaves.
    pub fn cwnd_room(&self) -> usize {
        self.cc.window().saturating_sub(self.pipe())
    }
    pub fn in_recovery(&self) -> bool {
        self.recovery.in_recovery()
    }
    pub fn lost_bytes(&self) -> usize {
        self.recovery.lost_bytes()
    }

    /// Record a newly sent segment (new data).
    pub fn on_sent_new(&mut self, now: Instant, seg: TxSeg) {
        debug_assert_eq!(seg.seq, self.snd_nxt);
        self.snd_nxt += seg.len;
        self.stats.bytes_sent += seg.len as u64;
        self.txq.push_back(seg);
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.current_rto());
        }
        self.arm_tlp(now);
        self.last_send = now;
    }

    /// The RTO with the backoff applied (RFC 6298 §5.5, the one rule).
    fn current_rto(&self) -> Duration {
        self.rtt.rto().backed_off(self.backoff, self.rtt.max_rto())
    }

    /// Start the retransmission timer unless it runs (a SYN just sent).
    pub fn arm_rto_if_idle(&mut self, now: Instant) {
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.current_rto());
        }
    }

    /// A SYN or SYN/ACK was written: it is no longer due, its send time is
    /// kept for the RTT sample (a first send, or each resend: RFC 6298 §3,
    /// Karn), and the timer runs.
    pub fn on_syn_sent(&mut self, now: Instant) {
        self.syn_due = false;
        if self.syn_sent_at.is_none() || self.syn_retries > 0 {
            self.syn_sent_at = Some(now);
        }
        self.arm_rto_if_idle(now);
    }

    /// Send the SYN (or SYN/ACK) again at the next poll.
    pub fn resend_syn(&mut self) {
        self.syn_due = true;
    }

    /// The SYN/ACK went out statelessly (a SYN cookie): nothing to send or time.
    pub fn syn_sent_statelessly(&mut self) {
        self.syn_due = false;
    }

    /// A segment the connection sends without data of the TCP's own (the
    /// MP_JOIN third ACK) was written: time it with the plain RTO unless
    /// the timer runs.
    pub fn arm_plain_rto_if_idle(&mut self, now: Instant) {
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rtt.rto());
        }
    }

    /// Stop the retransmission timer when nothing is outstanding (the
    /// MP_JOIN third ACK was acknowledged).
    pub fn stop_rto_if_idle(&mut self) {
        if !self.has_outstanding() {
            self.rto_at = None;
        }
    }

    /// Whether an ACK the peer provoked (out of window, a challenge, a
    /// repeated handshake ACK) may go now (RFC 5961 §7 rate limit).
    pub fn allow_ack(&mut self, now: Instant) -> bool {
        self.oow.allow(now)
    }

    /// Mark every queued segment as reinjected; returns the data ranges of
    /// those not marked before, as (DSN, length) (RFC 8684 §3.3.6).
    pub fn take_reinjection(&mut self) -> Vec<(DataSeq, u32)> {
        let mut out = Vec::new();
        for seg in self.txq.iter_mut() {
            if !seg.reinjected {
                seg.reinjected = true;
                out.push((seg.dsn, seg.len));
            }
        }
        out
    }

    /// Go without SACK (our SYN/ACK had no room for SACK permitted beside
    /// a Fast Open cookie: RFC 2018 §2, it is off unless both sent it).
    pub fn forgo_sack(&mut self) {
        self.sack_ok = false;
    }

    /// Send an ACK at the next poll.
    pub fn request_ack(&mut self) {
        self.ack_now = true;
    }

    /// No ACK of its own is due (the connection sends one itself).
    pub fn cancel_ack(&mut self) {
        self.ack_now = false;
    }

    /// Count a segment written on this subflow.
    pub fn count_segment_out(&mut self) {
        self.stats.segs_out += 1;
    }

    /// Count a segment received on this subflow.
    pub fn count_segment_in(&mut self, now: Instant) {
        self.stats.segs_in += 1;
        self.last_recv = now;
    }

    /// Run the subflow's own timers due at `now`: the delayed ACK (RFC 9293
    /// §3.8.6.3), the end of TIME-WAIT (§3.10.7.5), the tail-loss probe.
    /// The retransmission timer is the connection's to act on (its rules
    /// depend on the other subflows): `rto_due` says whether it is due.
    pub fn handle_timers(&mut self, now: Instant) -> TimerOutcome {
        let mut o = TimerOutcome::default();
        if self.delack_at.is_some_and(|t| t <= now) {
            self.delack_at = None;
            self.ack_now = true;
            o.delayed_ack = true;
        }
        if self.timewait_at.is_some_and(|t| t <= now) {
            self.timewait_at = None;
            self.state = TcpState::Closed;
            o.time_wait_over = true;
        }
        if self.tlp_at.is_some_and(|t| t <= now) {
            self.on_tlp(now);
        }
        o.rto_due = self.rto_at.is_some_and(|t| t <= now);
        o
    }

    /// A timeout of something the connection resends on this subflow by
    /// itself (the MP_JOIN third ACK, RFC 8684 §3.2): back off and restart
    /// the timer. Returns the expiries so far.
    pub fn back_off(&mut self, now: Instant) -> u32 {
        self.backoff += 1;
        self.rto_count += 1;
        self.rto_at = Some(now + self.current_rto());
        self.rto_count
    }

    /// The first segment deemed lost, if the window lets it go.
    pub fn next_retransmit(&self) -> Option<usize> {
        self.recovery.next_retransmit(&self.txq, self.pipe(), self.cc.window())
    }

    /// Record the retransmission of `txq[idx]`.
    pub fn on_retransmitted(&mut self, now: Instant, idx: usize) {
        let s = &mut self.txq[idx];
        self.recovery.on_retransmitted(s);
        s.xmit = s.xmit.saturating_add(1);
        s.sent_at = now;
        self.stats.retransmits += 1;
        self.stats.bytes_retrans += s.len as u64;
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.current_rto());
        }
        self.last_send = now;
    }

    /// Process the ACK field, window and SACK blocks of a segment in a
    /// synchronized state (RFC 9293 §3.10.7.4 "fifth, check the ACK field").
    fn on_ack(&mut self, now: Instant, seg: &super::wire::Segment<'_>) -> AckOutcome {
        let mut out = AckOutcome::default();
        let ack = seg.ack;
        if ack > self.snd_nxt {
            out.invalid = true;
            self.ack_now = true;
            return out;
        }
        let in_flight = self.pipe();
        // Window update (RFC 9293 §3.10.7.4: SND.WL1/WL2).
        let wnd = (seg.window as u32) << self.snd_wscale;
        let old_wnd = self.snd_wnd;
        if self.snd_wl1 < seg.seq || (self.snd_wl1 == seg.seq && self.snd_wl2 <= ack) {
            self.snd_wnd = wnd;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = ack;
        }
        if ack > self.snd_una {
            let mut sample = None;
            let mut delivered_ts: Option<Instant> = None;
            while let Some(front) = self.txq.front_mut() {
                if front.end() <= ack {
                    let s = self.txq.pop_front().expect("front exists");
                    self.recovery.on_acked_bytes(&s, s.len as usize);
                    if s.xmit == 1 {
                        sample = Some(s.sent_at);
                    }
                    if s.xmit == 1 || self.rtt.min_rtt().is_some_and(|m| now - s.sent_at >= m) {
                        delivered_ts = Some(delivered_ts.map_or(s.sent_at, |d: Instant| d.max(s.sent_at)));
                    }
                    out.acked += s.len as usize;
                } else if front.seq < ack {
                    // Partial ACK of a segment: trim it.
                    let k = ack - front.seq;
                    let k32 = k as u32;
                    self.recovery.on_acked_bytes(front, k);
                    front.seq = ack;
                    front.len -= k32;
                    front.dsn += k as u64;
                    out.acked += k;
                    break;
                } else {
                    break;
                }
            }
            if let Some(f) = self.fin_seq
                && ack == f + 1u32
            {
                out.fin_acked = true;
                self.fin_due = false;
            }
            self.snd_una = ack;
            self.backoff = 0;
            self.rto_count = 0;
            if let Some(t) = sample {
                self.rtt.sample(now - t);
                self.hystart(now, now - t, ack);
            }
            if let Some(t) = delivered_ts {
                self.recovery.on_delivered(t);
            }
            self.stats.bytes_acked += out.acked as u64;
            // RFC 6298 §5.2, §5.3.
            self.rto_at = if self.has_outstanding() { Some(now + self.current_rto()) } else { None };
            self.tlp_done = false;
            self.tlp_at = None;
            self.arm_tlp(now);
            match self.recovery.on_advance(&mut self.txq, ack, self.sack_ok) {
                Advance::Ended => self.cc.on_recovery_end(now),
                Advance::Open if out.acked > 0 => {
                    let srtt = self.rtt.srtt();
                    self.cc.on_ack(now, out.acked, srtt, in_flight);
                }
                _ => {}
            }
        } else if ack == self.snd_una
            && seg.payload.is_empty()
            && !seg.has(super::wire::flags::FIN)
            && wnd == old_wnd
            && !self.txq.is_empty()
        {
            // RFC 5681 §2 duplicate ACK.
            self.recovery.on_dupack();
            out.dupack = true;
        }
        let mut sack_changed = false;
        if self.sack_ok
            && let Some(blocks) = seg.opts.sack
        {
            let min_rtt = self.rtt.min_rtt();
            sack_changed = self.recovery.apply_sack(&mut self.txq, now, &blocks, (self.snd_una, self.snd_nxt), min_rtt);
        }
        let signal = self.recovery.detect(
            &mut self.txq,
            now,
            sack_changed,
            self.sack_ok,
            self.mss,
            self.snd_una,
            self.snd_nxt,
            &self.rtt,
        );
        match signal {
            LossSignal::Entered => {
                self.cc.on_congestion(now, in_flight);
                self.stats.fast_recoveries += 1;
                out.entered_recovery = true;
            }
            LossSignal::ReduceAgain => {
                let pipe = self.pipe();
                self.cc.on_congestion(now, pipe);
                self.recovery.reduced(now, self.snd_nxt);
                self.stats.fast_recoveries += 1;
            }
            LossSignal::None => {}
        }
        out
    }

    /// A segment in a synchronized state, up to its ACK field (RFC 9293
    /// §3.10.7.4 "first" to "fifth"): RST, TIME-WAIT, acceptability
    /// against `wnd` (the window we advertise), SYN, timestamps, the ACK
    /// with window and SACK, and the close states an acknowledged FIN
    /// moves on.
    pub fn handle_segment(&mut self, now: Instant, seg: &super::wire::Segment<'_>, wnd: usize) -> SegmentOutcome {
        use super::wire::flags;
        if seg.has(flags::RST) {
            if seg.seq == self.rcv_nxt || self.state == TcpState::TimeWait {
                return SegmentOutcome::Reset;
            }
            if self.acceptable(seg.seq, 0, wnd) {
                return SegmentOutcome::Dropped(self.challenge(now));
            }
            return SegmentOutcome::Dropped(Dropped::RstOutside);
        }
        if self.state == TcpState::TimeWait {
            if seg.has(flags::FIN) {
                // A retransmitted FIN: ACK it and restart the 2MSL wait.
                self.enter_timewait(now);
                self.ack_now = true;
            }
            return SegmentOutcome::Dropped(Dropped::TimeWait);
        }
        if !self.acceptable(seg.seq, seg.seq_len(), wnd) {
            // Unacceptable: send an ACK and drop; rate limited unless it
            // carries data (no ACK loop does).
            let data = !seg.payload.is_empty() && !seg.has(flags::SYN);
            let acked = data || self.allow_ack(now);
            if acked {
                self.ack_now = true;
            }
            return SegmentOutcome::Dropped(Dropped::OutOfWindow { acked });
        }
        if seg.has(flags::SYN) {
            // RFC 5961 §4: challenge ACK.
            return SegmentOutcome::Dropped(self.challenge(now));
        }
        if !seg.has(flags::ACK) {
            return SegmentOutcome::Dropped(Dropped::NoAck);
        }
        self.on_timestamp(seg);
        let out = self.on_ack(now, seg);
        if !out.invalid {
            self.after_ack(now, out.fin_acked);
        }
        SegmentOutcome::Acked(out)
    }

    /// A challenge ACK (RFC 5961 §3.2, §4), at most one per
    /// [`AckLimiter::INTERVAL`] (§7).
    fn challenge(&mut self, now: Instant) -> Dropped {
        let sent = self.allow_ack(now);
        if sent {
            self.ack_now = true;
        }
        Dropped::Challenge { sent }
    }

    /// The end of a segment [`Tcb::handle_segment`] accepted, after its
    /// payload was taken: the peer's FIN at `fin` when it came with all of
    /// the payload taken (RFC 9293 §3.10.7.4 "eighth"), then the ACK for
    /// what arrived, at once or delayed.
    pub fn end_segment(&mut self, now: Instant, fin: Option<SubflowSeq>) {
        if let Some(f) = fin {
            self.on_fin(f);
            self.after_ack(now, false);
        }
        self.schedule_ack(now);
    }

    /// An RTT sample from a cumulative ACK: in slow start, HyStart++
    /// decides whether it ends (RFC 9406 §4.2).
    fn hystart(&mut self, now: Instant, rtt: Duration, ack: SubflowSeq) {
        if !self.cc.in_slow_start() {
            return;
        }
        let sample = hystart::Sample {
            rtt,
            ack,
            snd_nxt: self.snd_nxt,
            min_rtt: self.rtt.min_rtt(),
            cwnd: self.cc.window(),
            mss: self.mss,
        };
        if self.hystart.on_sample(now, sample) {
            self.cc.exit_slow_start();
        }
    }

    /// The retransmission timer fired (RFC 6298 §5.4-5.6, RFC 5681 §3.1,
    /// RFC 6675 §5.1). Returns false when nothing was outstanding.
    pub fn on_rto(&mut self, now: Instant) -> bool {
        self.rto_at = None;
        self.tlp_at = None;
        match self.state {
            TcpState::SynSent | TcpState::SynReceived => {
                self.syn_due = true;
                self.syn_retries += 1;
                self.backoff += 1;
                self.rto_count += 1;
                self.stats.timeouts += 1;
                self.rto_at = Some(now + self.current_rto());
                return true;
            }
            TcpState::Closed | TcpState::TimeWait => return false,
            _ => {}
        }
        if !self.has_outstanding() {
            return false;
        }
        self.stats.timeouts += 1;
        let in_flight = self.pipe();
        self.cc.on_rto(now, in_flight);
        self.recovery.on_rto(&mut self.txq, self.snd_nxt);
        if self.txq.is_empty() && self.fin_seq.is_some() {
            self.fin_due = true;
        }
        self.backoff += 1;
        self.rto_count += 1;
        self.rto_at = Some(now + self.current_rto());
        true
    }

    /// The part of a segment's payload that is new and inside the window we
    /// advertised: `(offset into payload, length)`.
    pub fn rx_span(&self, seq: SubflowSeq, len: usize, wnd: usize) -> Option<(usize, usize)> {
        let end = seq + len;
        if end <= self.rcv_nxt {
            return None;
        }
        let start = seq.max(self.rcv_nxt);
        let limit = self.rcv_nxt + (wnd.max(1) as u32);
        let end = end.min(limit);
        if end <= start {
            return None;
        }
        Some((start - seq, end - start))
    }

    /// Whether a segment is acceptable (RFC 9293 §3.10.7.4 "first, check
    /// sequence number"), given the current receive window.
    fn acceptable(&self, seq: SubflowSeq, seq_len: usize, wnd: usize) -> bool {
        let wnd = wnd as u32;
        let in_wnd = |s: SubflowSeq| s >= self.rcv_nxt && s < self.rcv_nxt + wnd.max(1);
        if seq_len == 0 {
            if wnd == 0 { seq == self.rcv_nxt } else { in_wnd(seq) || seq == self.rcv_nxt }
        } else if wnd == 0 {
            false
        } else {
            in_wnd(seq)
                || in_wnd(seq + (seq_len as u32 - 1))
                || (seq < self.rcv_nxt && seq + seq_len as u32 > self.rcv_nxt)
        }
    }

    /// Bytes `[start, start+len)` were taken by the connection. Returns
    /// false when they could not be recorded (too many holes).
    pub fn rx_mark(&mut self, start: SubflowSeq, len: usize) -> bool {
        if len == 0 {
            return true;
        }
        let end = start + len;
        if start == self.rcv_nxt {
            self.rcv_nxt = end;
            let had_holes = !self.ooo.is_empty();
            while let Some(e) = self.ooo.pop_contiguous(self.rcv_nxt) {
                self.rcv_nxt = self.rcv_nxt.max(e);
            }
            self.stats.bytes_received += len as u64;
            if had_holes {
                // Filling a hole: ACK at once (RFC 5681 §4.2).
                self.ack_now = true;
            } else {
                self.unacked_segs += 1;
            }
            self.check_fin_pending();
            true
        } else {
            if !self.ooo.insert(start, end) {
                return false;
            }
            self.last_ooo = Some((start, end));
            self.stats.bytes_received += len as u64;
            // Out of order: ACK at once with SACK (RFC 5681 §4.2).
            self.ack_now = true;
            true
        }
    }

    /// Schedule the ACK for received data: at once after two full segments,
    /// else after the delayed-ACK timeout (RFC 9293 §3.8.6.3, RFC 5681 §4.2).
    fn schedule_ack(&mut self, now: Instant) {
        // Quick ACKs at the start, as Linux does (helps slow start and lets
        // an MPTCP client see the first DSS at once).
        let quick = self.unacked_segs > 0 && self.stats.segs_in <= 16;
        if quick || self.unacked_segs >= 2 {
            self.ack_now = true;
        } else if self.unacked_segs > 0 && self.delack_at.is_none() {
            self.delack_at = Some(now + self.delack);
        }
    }

    /// The peer's FIN at `seq` (after the payload).
    fn on_fin(&mut self, fin_seq: SubflowSeq) {
        if self.fin_received {
            self.ack_now = true;
            return;
        }
        self.fin_pending = Some(fin_seq);
        self.check_fin_pending();
        self.ack_now = true;
    }

    fn check_fin_pending(&mut self) {
        if let Some(f) = self.fin_pending
            && f == self.rcv_nxt
        {
            self.fin_pending = None;
            self.fin_received = true;
            self.rcv_nxt += 1u32;
            self.ack_now = true;
            self.state = match self.state {
                TcpState::Established => TcpState::CloseWait,
                TcpState::FinWait1 => TcpState::Closing,
                TcpState::FinWait2 => TcpState::TimeWait,
                s => s,
            };
        }
    }

    /// After an ACK: move the close states on (RFC 9293 §3.10.7.4).
    fn after_ack(&mut self, now: Instant, fin_acked: bool) {
        if fin_acked {
            self.state = match self.state {
                TcpState::FinWait1 => TcpState::FinWait2,
                TcpState::Closing => TcpState::TimeWait,
                TcpState::LastAck => TcpState::Closed,
                s => s,
            };
        }
        if self.state == TcpState::TimeWait && self.timewait_at.is_none() {
            self.enter_timewait(now);
        }
        if self.state == TcpState::Closed {
            self.clear_timers();
        }
    }

    /// TIME-WAIT for 2*MSL (RFC 9293 §3.6.1); restarted by a retransmitted FIN.
    pub fn enter_timewait(&mut self, now: Instant) {
        self.state = TcpState::TimeWait;
        self.rto_at = None;
        self.timewait_at = Some(now + self.msl * 2);
    }

    /// Request a FIN after all data (application close of this subflow).
    pub fn close(&mut self) {
        match self.state {
            TcpState::Established | TcpState::SynReceived => {
                self.fin_queued = true;
                self.state = TcpState::FinWait1;
            }
            TcpState::CloseWait => {
                self.fin_queued = true;
                self.state = TcpState::LastAck;
            }
            TcpState::SynSent => self.state = TcpState::Closed,
            _ => {}
        }
    }

    /// New data may still go out: established, or closing with our FIN not
    /// yet sent (it follows the data).
    pub fn may_send_data(&self) -> bool {
        self.state.can_send()
            || (matches!(self.state, TcpState::FinWait1 | TcpState::LastAck) && self.fin_seq.is_none())
    }

    /// Whether the FIN should be sent now.
    pub fn fin_ready(&self) -> bool {
        (self.fin_queued && self.fin_seq.is_none()) || self.fin_due
    }

    /// Record our FIN as sent.
    pub fn on_fin_sent(&mut self, now: Instant) {
        if self.fin_seq.is_none() {
            self.fin_seq = Some(self.snd_nxt);
            self.snd_nxt += 1u32;
        } else {
            self.stats.retransmits += 1;
        }
        self.fin_due = false;
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.current_rto());
        }
    }

    /// The sequence number to put in a segment carrying no new data.
    pub fn seq_for_ack(&self) -> SubflowSeq {
        match self.fin_seq {
            Some(f) if self.snd_una <= f => f + 1u32,
            _ => self.snd_nxt,
        }
    }

    /// An ACK went out: clear the ACK debt.
    pub fn on_ack_sent(&mut self, now: Instant, wnd_right: SubflowSeq) {
        self.ack_now = false;
        self.delack_at = None;
        self.unacked_segs = 0;
        self.rcv_adv = wnd_right.max(self.rcv_adv);
        self.last_send = now;
    }

    /// SACK blocks to send (RFC 2018 §4): the most recent first.
    pub fn sack_blocks(&self, max: usize) -> Option<SackBlocks> {
        if !self.sack_ok || self.ooo.is_empty() || max == 0 {
            return None;
        }
        let mut v: [(u32, u32); 4] = [(0, 0); 4];
        let mut n = 0;
        if let Some((s, e)) = self.last_ooo
            && let Some(r) = self.ooo.iter().find(|r| r.0 <= s && r.1 >= e)
        {
            v[0] = (r.0.0, r.1.0);
            n = 1;
        }
        for r in self.ooo.iter() {
            if n >= max.min(4) {
                break;
            }
            if n > 0 && v[0] == (r.0.0, r.1.0) {
                continue;
            }
            v[n] = (r.0.0, r.1.0);
            n += 1;
        }
        Some(SackBlocks::new(&v[..n.min(max)]))
    }

    /// Timestamp handling of an incoming segment (RFC 7323 §4.3): remember
    /// TSval when the segment covers our last ACK point.
    fn on_timestamp(&mut self, seg: &super::wire::Segment<'_>) {
        if !self.ts_ok {
            return;
        }
        if let Some((tsval, _)) = seg.opts.timestamps
            && seg.seq <= self.rcv_nxt
            && (tsval.wrapping_sub(self.ts_recent) as i32) >= 0
        {
            self.ts_recent = tsval;
        }
    }

    /// PTO = 2*SRTT (+ the delayed-ACK allowance for a single segment),
    /// not after the RTO (RFC 8985 §7.2).
    fn arm_tlp(&mut self, now: Instant) {
        if self.tlp_done || self.recovery.in_recovery() || self.txq.is_empty() || self.tlp_at.is_some() {
            return;
        }
        let Some(srtt) = self.rtt.srtt() else { return };
        let mut pto = srtt * 2;
        if self.txq.len() == 1 {
            pto = pto + self.delack;
        }
        let pto = pto.max(Duration::from_millis(10));
        let at = now + pto;
        if self.rto_at.is_none_or(|r| at < r) {
            self.tlp_at = Some(at);
        }
    }

    /// The probe timer fired: resend the last segment (RFC 8985 §7.3) so
    /// that its ACK, with SACK, reveals what was lost.
    pub fn on_tlp(&mut self, now: Instant) -> bool {
        self.tlp_at = None;
        if self.tlp_done || self.txq.is_empty() || !self.state.synchronized() {
            return false;
        }
        self.tlp_done = true;
        self.recovery.on_probe(&mut self.txq);
        let _ = now;
        true
    }

    pub fn clear_timers(&mut self) {
        self.rto_at = None;
        self.delack_at = None;
        self.tlp_at = None;
    }

    /// The earliest timer.
    pub fn next_timeout(&self) -> Option<Instant> {
        [self.rto_at, self.delack_at, self.timewait_at, self.tlp_at].into_iter().flatten().min()
    }

    /// Abort: CLOSED, nothing more to send.
    pub fn reset(&mut self) {
        self.state = TcpState::Closed;
        self.clear_timers();
        self.timewait_at = None;
        self.syn_due = false;
        self.fin_due = false;
        self.ack_now = false;
        self.txq.clear();
        self.recovery.clear();
    }

    /// Lowest DSN still on the retransmission queue.
    pub fn lowest_dsn(&self) -> Option<DataSeq> {
        self.txq.iter().map(|s| s.dsn).reduce(DataSeq::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::cc::NewReno;
    use crate::stack::wire::{SegOptions, Segment, flags};

    fn params() -> TcbParams {
        TcbParams {
            mss: 1000,
            rcv_wscale: 7,
            sack: true,
            timestamps: true,
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            delack: Duration::from_millis(40),
            msl: Duration::from_secs(30),
        }
    }

    fn seg(seq: u32, ack: u32, fl: u8, payload: &[u8]) -> Segment<'_> {
        Segment {
            src: "10.0.0.2:80".parse().unwrap(),
            dst: "10.0.0.1:1000".parse().unwrap(),
            seq: SubflowSeq(seq),
            ack: SubflowSeq(ack),
            flags: fl,
            window: 1000,
            opts: SegOptions::default(),
            payload,
            shared: None,
        }
    }

    fn established() -> Tcb {
        let p = params();
        let mut t = Tcb::client(
            "10.0.0.1:1000".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
            SubflowSeq(100),
            0,
            &p,
            Box::new(NewReno::new(1000)),
            Instant::ZERO,
        );
        t.syn_sent_at = Some(Instant::ZERO);
        let mut s = seg(5000, 101, flags::SYN | flags::ACK, &[]);
        s.opts.mss = Some(1000);
        s.opts.sack_permitted = true;
        s.opts.wscale = Some(0);
        t.on_synack(Instant::from_millis(100), &s);
        t
    }

    fn send(t: &mut Tcb, now: Instant, n: usize) {
        for _ in 0..n {
            let seq = t.snd_nxt;
            let dsn = DataSeq(seq.0 as u64);
            t.on_sent_new(now, TxSeg::new(seq, 1000, dsn, None, now));
        }
    }

    #[test]
    fn handshake_samples_rtt() {
        let t = established();
        assert_eq!(t.state, TcpState::Established);
        assert_eq!(t.rtt.srtt(), Some(Duration::from_millis(100)));
        assert_eq!(t.rcv_nxt, SubflowSeq(5001));
        assert!(t.sack_ok && !t.ts_ok);
    }

    #[test]
    fn rto_fires_and_backs_off() {
        let mut t = established();
        let now = Instant::from_millis(200);
        send(&mut t, now, 1);
        // RTO = srtt + 4*rttvar = 100 + 200 = 300 ms.
        assert_eq!(t.rto_at, Some(now + Duration::from_millis(300)));
        assert!(t.on_rto(Instant::from_millis(500)));
        assert_eq!(t.next_retransmit(), Some(0));
        assert_eq!(t.cc.window(), 1000);
        t.on_retransmitted(Instant::from_millis(500), 0);
        // Backed off: 600 ms.
        assert_eq!(t.rto_at, Some(Instant::from_millis(1100)));
        assert!(t.next_retransmit().is_none());
        let a = seg(5001, 1101, flags::ACK, &[]);
        let o = t.on_ack(Instant::from_millis(600), &a);
        assert_eq!(o.acked, 1000);
        assert!(t.rto_at.is_none());
        assert_eq!(t.backoff, 0);
    }

    #[test]
    fn three_dupacks_start_recovery() {
        let mut t = established();
        let now = Instant::from_millis(200);
        send(&mut t, now, 6);
        let mut s = seg(5001, 101, flags::ACK, &[]);
        for i in 0..3 {
            let o = t.on_ack(now, &s);
            assert!(o.dupack);
            assert_eq!(o.entered_recovery, i == 2);
        }
        assert!(t.in_recovery());
        assert_eq!(t.next_retransmit(), Some(0));
        t.on_retransmitted(now, 0);
        // A full ACK ends recovery.
        s.ack = t.snd_nxt;
        let o = t.on_ack(now, &s);
        assert_eq!(o.acked, 6000);
        assert!(!t.in_recovery());
    }

    #[test]
    fn sack_marks_lost_segments() {
        let mut t = established();
        let now = Instant::from_millis(200);
        send(&mut t, now, 8);
        // Segments 0 and 2 lost; 1, 3, 4, 5 SACKed.
        let mut s = seg(5001, 101, flags::ACK, &[]);
        s.opts.sack = Some(SackBlocks::new(&[(1101, 2101), (3101, 6101)]));
        let o = t.on_ack(now, &s);
        assert!(o.entered_recovery);
        assert!(t.txq[0].lost && t.txq[2].lost && !t.txq[1].lost);
        assert_eq!(t.lost_bytes(), 2000);
        assert_eq!(t.pipe(), 8000 - 4000 - 2000);
    }

    #[test]
    fn receive_reorders_and_acks() {
        let mut t = established();
        let now = Instant::from_millis(200);
        assert!(t.rx_mark(SubflowSeq(6001), 1000));
        assert!(t.ack_now);
        assert_eq!(t.sack_blocks(4).unwrap().as_slice(), &[(6001, 7001)]);
        t.on_ack_sent(now, SubflowSeq(9000));
        assert!(t.rx_mark(SubflowSeq(5001), 1000));
        assert_eq!(t.rcv_nxt, SubflowSeq(7001));
        assert!(t.ack_now);
        // In-order data past the quick-ACK start: the second segment forces the ACK.
        t.stats.segs_in = 100;
        t.on_ack_sent(now, SubflowSeq(9000));
        t.rx_mark(SubflowSeq(7001), 1000);
        t.schedule_ack(now);
        assert!(!t.ack_now);
        assert_eq!(t.delack_at, Some(now + Duration::from_millis(40)));
        t.rx_mark(SubflowSeq(8001), 1000);
        t.schedule_ack(now);
        assert!(t.ack_now);
    }

    #[test]
    fn close_states_reach_timewait() {
        let mut t = established();
        let now = Instant::from_millis(200);
        t.close();
        assert_eq!(t.state, TcpState::FinWait1);
        assert!(t.fin_ready());
        t.on_fin_sent(now);
        let a = seg(5001, 102, flags::ACK, &[]);
        let o = t.on_ack(now, &a);
        assert!(o.fin_acked);
        t.after_ack(now, o.fin_acked);
        assert_eq!(t.state, TcpState::FinWait2);
        t.on_fin(SubflowSeq(5001));
        assert_eq!(t.state, TcpState::TimeWait);
        t.after_ack(now, false);
        assert_eq!(t.timewait_at, Some(now + Duration::from_secs(60)));
    }

    #[test]
    fn handle_timers_reports_what_fired() {
        let mut t = established();
        let now = Instant::from_millis(200);
        send(&mut t, now, 2);
        let rto_at = t.rto_at.unwrap_or_else(|| panic!("armed"));
        assert_eq!(t.handle_timers(now), TimerOutcome::default(), "nothing due yet");
        let o = t.handle_timers(rto_at);
        assert!(o.rto_due && !o.delayed_ack && !o.time_wait_over, "{o:?}");
        // TIME-WAIT ends with its timer (2 MSL).
        t.close();
        t.on_fin_sent(now);
        let a = seg(5001, t.snd_nxt.0, flags::ACK, &[]);
        let acked = t.on_ack(now, &a).fin_acked;
        t.after_ack(now, acked);
        t.on_fin(SubflowSeq(5001));
        t.after_ack(now, false);
        let end = now + Duration::from_secs(60);
        assert!(!t.handle_timers(end - Duration::from_millis(1)).time_wait_over);
        assert!(t.handle_timers(end).time_wait_over);
        assert_eq!(t.state, TcpState::Closed);
    }

    #[test]
    fn reinjection_takes_each_segment_once() {
        let mut t = established();
        send(&mut t, Instant::from_millis(200), 3);
        let first = t.take_reinjection();
        assert_eq!(first.len(), 3);
        assert!(first.iter().all(|&(_, len)| len == 1000));
        assert!(t.take_reinjection().is_empty(), "already taken");
    }

    #[test]
    fn rsts_reset_exactly_and_are_challenged_in_the_window() {
        let mut t = established();
        let now = Instant::from_millis(200);
        // In the window but not at RCV.NXT: a challenge ACK, then the rate limit.
        let r = seg(5100, 101, flags::RST, &[]);
        let o = t.handle_segment(now, &r, 10_000);
        assert!(matches!(o, SegmentOutcome::Dropped(Dropped::Challenge { sent: true })), "{o:?}");
        assert!(t.ack_now);
        t.on_ack_sent(now, SubflowSeq(20_000));
        let o = t.handle_segment(now + Duration::from_millis(499), &r, 10_000);
        assert!(matches!(o, SegmentOutcome::Dropped(Dropped::Challenge { sent: false })), "{o:?}");
        assert!(!t.ack_now);
        // Outside the window: silence.
        let far = seg(90_000, 101, flags::RST, &[]);
        assert!(matches!(t.handle_segment(now, &far, 10_000), SegmentOutcome::Dropped(Dropped::RstOutside)));
        // At RCV.NXT: the peer reset us, the TCB is left to the connection.
        let exact = seg(5001, 101, flags::RST, &[]);
        assert!(matches!(t.handle_segment(now, &exact, 10_000), SegmentOutcome::Reset));
        assert_eq!(t.state, TcpState::Established);
    }

    #[test]
    fn unacceptable_segments_are_acked_rate_limited_unless_they_carry_data() {
        let mut t = established();
        let now = Instant::from_millis(200);
        let old_ack = seg(4000, 101, flags::ACK, &[]);
        let o = t.handle_segment(now, &old_ack, 10_000);
        assert!(matches!(o, SegmentOutcome::Dropped(Dropped::OutOfWindow { acked: true })), "{o:?}");
        t.on_ack_sent(now, SubflowSeq(20_000));
        let o = t.handle_segment(now, &old_ack, 10_000);
        assert!(matches!(o, SegmentOutcome::Dropped(Dropped::OutOfWindow { acked: false })), "{o:?}");
        assert!(!t.ack_now);
        let old_data = seg(4000, 101, flags::ACK, &[1; 10]);
        let o = t.handle_segment(now, &old_data, 10_000);
        assert!(matches!(o, SegmentOutcome::Dropped(Dropped::OutOfWindow { acked: true })), "{o:?}");
        assert!(t.ack_now);
        // A SYN in the window is challenged; a segment without ACK dropped.
        t.on_ack_sent(now + Duration::from_secs(1), SubflowSeq(20_000));
        let syn = seg(5001, 101, flags::SYN | flags::ACK, &[]);
        let o = t.handle_segment(now + Duration::from_secs(1), &syn, 10_000);
        assert!(matches!(o, SegmentOutcome::Dropped(Dropped::Challenge { sent: true })), "{o:?}");
        let bare = seg(5001, 0, 0, &[1; 10]);
        assert!(matches!(t.handle_segment(now, &bare, 10_000), SegmentOutcome::Dropped(Dropped::NoAck)));
        assert_eq!(t.rcv_nxt, SubflowSeq(5001), "nothing taken");
    }

    #[test]
    fn one_segment_in_and_out_through_the_engine() {
        let mut t = established();
        let now = Instant::from_millis(200);
        send(&mut t, now, 2);
        // The peer acknowledges both segments and sends 100 bytes with its FIN.
        let payload = [7u8; 100];
        let s = seg(5001, t.snd_nxt.0, flags::ACK | flags::FIN, &payload);
        let SegmentOutcome::Acked(a) = t.handle_segment(now + Duration::from_millis(50), &s, 10_000) else {
            panic!("accepted")
        };
        assert_eq!(a.acked, 2000);
        assert!(!a.invalid && !a.fin_acked);
        assert!(t.rto_at.is_none(), "nothing outstanding");
        assert_eq!(t.rx_span(s.seq, payload.len(), 10_000), Some((0, 100)));
        assert!(t.rx_mark(s.seq, 100));
        t.end_segment(now, Some(s.seq + 100usize));
        assert_eq!(t.state, TcpState::CloseWait);
        assert_eq!(t.rcv_nxt, SubflowSeq(5102), "data and FIN");
        assert!(t.fin_received && t.ack_now);
        // Our close, its ACK: LAST-ACK, then CLOSED.
        t.close();
        t.on_fin_sent(now);
        let a = seg(5102, t.snd_nxt.0, flags::ACK, &[]);
        let SegmentOutcome::Acked(o) = t.handle_segment(now, &a, 10_000) else { panic!("accepted") };
        assert!(o.fin_acked);
        assert_eq!(t.state, TcpState::Closed);
        assert_eq!(t.next_timeout(), None);
    }

    #[test]
    fn a_fin_again_in_time_wait_restarts_the_wait() {
        let mut t = established();
        let now = Instant::from_millis(200);
        t.close();
        t.on_fin_sent(now);
        let fin = seg(5001, t.snd_nxt.0, flags::ACK | flags::FIN, &[]);
        let SegmentOutcome::Acked(o) = t.handle_segment(now, &fin, 10_000) else { panic!("accepted") };
        assert!(o.fin_acked);
        t.end_segment(now, Some(fin.seq));
        assert_eq!(t.state, TcpState::TimeWait);
        assert_eq!(t.timewait_at, Some(now + Duration::from_secs(60)));
        let later = now + Duration::from_secs(10);
        t.on_ack_sent(later, SubflowSeq(20_000));
        let o = t.handle_segment(later, &fin, 10_000);
        assert!(matches!(o, SegmentOutcome::Dropped(Dropped::TimeWait)), "{o:?}");
        assert!(t.ack_now, "the FIN is acknowledged again");
        assert_eq!(t.timewait_at, Some(later + Duration::from_secs(60)));
    }

    #[test]
    fn a_partial_ack_without_sack_resends_the_next_segment() {
        let mut t = established();
        t.sack_ok = false;
        let now = Instant::from_millis(200);
        send(&mut t, now, 6);
        let dup = seg(5001, 101, flags::ACK, &[]);
        for _ in 0..3 {
            t.on_ack(now, &dup);
        }
        assert!(t.in_recovery());
        t.on_retransmitted(now, 0);
        assert_eq!(t.next_retransmit(), None);
        // The resend fills the first hole only (RFC 6582 §3.2 (5)).
        let partial = seg(5001, 1101, flags::ACK, &[]);
        let o = t.on_ack(now, &partial);
        assert_eq!(o.acked, 1000);
        assert!(t.in_recovery(), "recovery point not reached");
        assert!(t.txq[0].lost, "the new head is deemed lost");
        assert_eq!(t.lost_bytes(), 1000);
    }

    #[test]
    fn a_join_ack_timeout_backs_off_with_the_one_rule() {
        let mut t = established();
        let now = Instant::from_millis(200);
        let rto = t.rtt.rto();
        assert_eq!(t.back_off(now), 1);
        assert_eq!(t.rto_at, Some(now + rto.backed_off(1, t.rtt.max_rto())));
        for _ in 0..20 {
            t.back_off(now);
        }
        assert_eq!(t.rto_at, Some(now + t.rtt.max_rto()), "clamped");
    }
}
