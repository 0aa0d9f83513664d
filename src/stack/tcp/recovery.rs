//! Loss recovery of one subflow: the SACK scoreboard's counts (RFC 6675
//! §4), fast retransmit and the recovery point (RFC 5681 §3.2, RFC 6582
//! §3.2), and time-based marking after RACK (RFC 8985 §6.2, simplified).
//!
//! The retransmission queue stays the [`super::Tcb`]'s (the connection
//! reads it); every rule that marks its segments sacked or lost, and every
//! count of those bytes, is here. The congestion controller is the TCB's:
//! these methods say when it must react.

use std::collections::VecDeque;

use super::{RttEstimator, TxSeg};
use crate::dissect::options::SackBlocks;
use crate::seq::SubflowSeq;
use crate::stack::time::{Duration, Instant};

/// What a cumulative ACK did to a recovery episode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Advance {
    /// No episode runs: the controller grows.
    Open,
    /// The ACK passed the recovery point: the episode is over.
    Ended,
    /// A partial ACK inside the episode (RFC 6582 §3.2 (5)).
    Partial,
}

/// What the SACK and duplicate-ACK rules concluded from an ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LossSignal {
    None,
    /// A fast-recovery episode starts (RFC 5681 §3.2, RFC 6675 §5).
    Entered,
    /// A retransmission was lost too: the window is still too large for
    /// the path; reduce again (at most once a round trip).
    ReduceAgain,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Recovery {
    /// Bytes of the queue SACKed, and deemed lost (RFC 6675 pipe).
    sacked_bytes: usize,
    lost_bytes: usize,
    in_recovery: bool,
    /// RFC 6582 `recover`: no new episode before the ACK passes it.
    recover: SubflowSeq,
    recover_set: bool,
    /// Recovery episode counter (a segment resent in this one is not
    /// marked lost again by the same rules).
    epoch: u32,
    dupacks: u32,
    /// The first retransmission of a recovery goes regardless of cwnd.
    retx_now: bool,
    /// RACK: the latest send time of a delivered segment.
    rack_ts: Option<Instant>,
    /// When the window was last reduced for congestion.
    last_reduction: Instant,
}

impl Recovery {
    pub(super) fn new(iss: SubflowSeq, now: Instant) -> Recovery {
        Recovery {
            sacked_bytes: 0,
            lost_bytes: 0,
            in_recovery: false,
            recover: iss,
            recover_set: false,
            epoch: 0,
            dupacks: 0,
            retx_now: false,
            rack_ts: None,
            last_reduction: now,
        }
    }

    pub(super) fn in_recovery(&self) -> bool {
        self.in_recovery
    }
    pub(super) fn lost_bytes(&self) -> usize {
        self.lost_bytes
    }
    /// Bytes sent but not in flight: SACKed or deemed lost (RFC 6675 pipe).
    pub(super) fn not_in_flight(&self) -> usize {
        self.sacked_bytes + self.lost_bytes
    }

    /// The first segment deemed lost, if `pipe` and `cwnd` let it go
    /// (RFC 6675 §5 (C.1); a first retransmission on entering recovery
    /// always goes, RFC 5681 §3.2 (4)).
    pub(super) fn next_retransmit(&self, txq: &VecDeque<TxSeg>, pipe: usize, cwnd: usize) -> Option<usize> {
        if self.lost_bytes == 0 {
            return None;
        }
        let idx = txq.iter().position(|s| s.lost)?;
        if self.retx_now || pipe + txq[idx].len as usize <= cwnd || pipe == 0 { Some(idx) } else { None }
    }

    /// `s` was sent again: no longer lost, resent in this episode.
    pub(super) fn on_retransmitted(&mut self, s: &mut TxSeg) {
        if s.lost {
            s.lost = false;
            self.lost_bytes -= s.len as usize;
        }
        self.retx_now = false;
        s.epoch = self.epoch;
    }

    /// `k` bytes at the front of `s` were cumulatively acknowledged (all
    /// of it when `k == s.len`): they leave the counts.
    pub(super) fn on_acked_bytes(&mut self, s: &TxSeg, k: usize) {
        if s.sacked {
            self.sacked_bytes -= k;
        }
        if s.lost {
            self.lost_bytes -= k;
        }
    }

    /// A segment sent at `sent_at` was delivered (RACK's clock).
    pub(super) fn on_delivered(&mut self, sent_at: Instant) {
        self.rack_ts = Some(self.rack_ts.map_or(sent_at, |r| r.max(sent_at)));
    }

    /// The cumulative ACK moved to `ack`.
    pub(super) fn on_advance(&mut self, txq: &mut VecDeque<TxSeg>, ack: SubflowSeq, sack_ok: bool) -> Advance {
        self.dupacks = 0;
        if !self.in_recovery {
            return Advance::Open;
        }
        if ack >= self.recover {
            self.in_recovery = false;
            return Advance::Ended;
        }
        if !sack_ok {
            // RFC 6582 §3.2 (5): a partial ACK; retransmit the next.
            self.mark_head_lost(txq);
        }
        Advance::Partial
    }

    /// RFC 5681 §2 duplicate ACK.
    pub(super) fn on_dupack(&mut self) {
        self.dupacks += 1;
    }

    /// After the ACK field and SACK blocks (`sack_changed`: new blocks
    /// marked): start an episode, or mark more losses inside one.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn detect(
        &mut self,
        txq: &mut VecDeque<TxSeg>,
        now: Instant,
        sack_changed: bool,
        sack_ok: bool,
        mss: usize,
        snd_una: SubflowSeq,
        snd_nxt: SubflowSeq,
        rtt: &RttEstimator,
    ) -> LossSignal {
        if !self.in_recovery && !txq.is_empty() {
            let trigger = self.dupacks >= 3 || (sack_ok && self.head_is_lost(txq, mss));
            // RFC 6582 §3.2 (2): no new recovery before `recover` is passed.
            let allowed = !self.recover_set || snd_una > self.recover || snd_una == self.recover;
            if trigger && allowed {
                self.in_recovery = true;
                self.recover = snd_nxt;
                self.recover_set = true;
                self.epoch += 1;
                self.last_reduction = now;
                if sack_ok {
                    self.mark_lost_sack(txq, mss);
                }
                // Always retransmit the head at once (RFC 5681 §3.2 (4)).
                self.mark_head_lost(txq);
                self.retx_now = true;
                return LossSignal::Entered;
            }
        } else if self.in_recovery && sack_changed {
            self.mark_lost_sack(txq, mss);
            if self.mark_lost_rack(txq, now, rtt) {
                return LossSignal::ReduceAgain;
            }
        }
        LossSignal::None
    }

    /// The window was reduced again at `now` ([`LossSignal::ReduceAgain`]).
    pub(super) fn reduced(&mut self, now: Instant, snd_nxt: SubflowSeq) {
        self.last_reduction = now;
        self.recover = snd_nxt;
    }

    /// RACK-style time-based loss marking (RFC 8985 §6.2, simplified): a
    /// segment sent more than a reordering window before one that was
    /// delivered is lost, even a retransmission. Returns whether a
    /// retransmission was lost and the last reduction is a round trip old.
    fn mark_lost_rack(&mut self, txq: &mut VecDeque<TxSeg>, now: Instant, rtt: &RttEstimator) -> bool {
        let Some(rack) = self.rack_ts else { return false };
        let reo = rtt.min_rtt().map_or(Duration::from_millis(1), |m| Duration::from_micros(m.as_micros() / 4));
        let mut added = 0;
        let mut relost = false;
        for s in txq.iter_mut() {
            if s.sent_at >= rack {
                break;
            }
            if !s.sacked && !s.lost && s.sent_at + reo < rack {
                s.lost = true;
                relost |= s.xmit > 1;
                added += s.len as usize;
            }
        }
        self.lost_bytes += added;
        relost && now - self.last_reduction >= rtt.srtt().unwrap_or(Duration::from_millis(100))
    }

    fn mark_head_lost(&mut self, txq: &mut VecDeque<TxSeg>) {
        let epoch = self.epoch;
        if let Some(s) = txq.front_mut()
            && !s.sacked
            && !s.lost
            && (s.epoch != epoch || s.xmit == 1)
        {
            s.lost = true;
            self.lost_bytes += s.len as usize;
        }
    }

    /// Whether the first unacknowledged segment is lost by RFC 6675's
    /// IsLost: DupThresh (3) SACKed segments above it, or more than
    /// (DupThresh-1)*SMSS SACKed bytes.
    fn head_is_lost(&self, txq: &VecDeque<TxSeg>, mss: usize) -> bool {
        if self.sacked_bytes == 0 {
            return false;
        }
        let mut n = 0;
        for s in txq.iter().skip(1) {
            if s.sacked {
                n += 1;
                if n >= 3 {
                    return true;
                }
            }
        }
        self.sacked_bytes > 2 * mss
    }

    /// Mark every segment IsLost says is lost (RFC 6675 §5 step 4 and the
    /// Update() of §4).
    fn mark_lost_sack(&mut self, txq: &mut VecDeque<TxSeg>, mss: usize) {
        let epoch = self.epoch;
        let mut sacked_above = 0usize;
        let mut sacked_segs = 0u32;
        let mut added = 0usize;
        for s in txq.iter_mut().rev() {
            if s.sacked {
                sacked_above += s.len as usize;
                sacked_segs += 1;
                continue;
            }
            if !s.lost && s.epoch != epoch && (sacked_segs >= 3 || sacked_above > 2 * mss) {
                s.lost = true;
                added += s.len as usize;
            }
        }
        self.lost_bytes += added;
    }

    /// Mark segments the peer SACKed (RFC 2018 §3), within
    /// `[snd_una, snd_nxt)`. Returns whether anything changed.
    pub(super) fn apply_sack(
        &mut self,
        txq: &mut VecDeque<TxSeg>,
        now: Instant,
        blocks: &SackBlocks,
        (snd_una, snd_nxt): (SubflowSeq, SubflowSeq),
        min_rtt: Option<Duration>,
    ) -> bool {
        let mut changed = false;
        for &(l, r) in blocks.as_slice() {
            let (l, r) = (SubflowSeq(l), SubflowSeq(r));
            if r <= snd_una || l >= snd_nxt || r <= l {
                continue;
            }
            let start = txq.partition_point(|s| s.end() <= l);
            for s in txq.iter_mut().skip(start) {
                if s.seq >= r {
                    break;
                }
                if s.seq >= l && s.end() <= r && !s.sacked {
                    if s.xmit == 1 || min_rtt.is_some_and(|m| now - s.sent_at >= m) {
                        self.rack_ts = Some(self.rack_ts.map_or(s.sent_at, |t| t.max(s.sent_at)));
                    }
                    s.sacked = true;
                    self.sacked_bytes += s.len as usize;
                    if s.lost {
                        s.lost = false;
                        self.lost_bytes -= s.len as usize;
                    }
                    changed = true;
                }
            }
        }
        changed
    }

    /// The retransmission timer fired with data outstanding (RFC 6298
    /// §5.4, RFC 6675 §5.1): every segment not SACKed is lost, the episode
    /// (if any) is over, and no fast recovery starts before `snd_nxt`.
    pub(super) fn on_rto(&mut self, txq: &mut VecDeque<TxSeg>, snd_nxt: SubflowSeq) {
        self.epoch += 1;
        self.in_recovery = false;
        self.recover = snd_nxt;
        self.recover_set = true;
        self.dupacks = 0;
        let mut added = 0;
        for s in txq.iter_mut() {
            if !s.sacked && !s.lost {
                s.lost = true;
                added += s.len as usize;
            }
        }
        self.lost_bytes += added;
    }

    /// The tail-loss probe fired (RFC 8985 §7.3): the last segment is
    /// sent again at once, unless already SACKed or lost.
    pub(super) fn on_probe(&mut self, txq: &mut VecDeque<TxSeg>) {
        if let Some(s) = txq.back_mut()
            && !s.sacked
            && !s.lost
        {
            s.lost = true;
            self.lost_bytes += s.len as usize;
            self.retx_now = true;
        }
    }

    /// The queue was emptied (the subflow is reset).
    pub(super) fn clear(&mut self) {
        self.sacked_bytes = 0;
        self.lost_bytes = 0;
    }
}
