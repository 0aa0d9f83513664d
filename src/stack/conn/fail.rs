//! MP_FAIL and fallback (RFC 8684 §3.7): a checksum failure, the infinite
//! mapping, and falling back to plain TCP.

use super::*;

/// A DSS checksum failed on the only subflow (RFC 8684 §3.7): we sent
/// MP_FAIL and wait for the peer's infinite mapping; in-order data before
/// it is acknowledged and dropped.
#[derive(Clone, Copy, Debug)]
pub(super) struct RxFail {
    /// DSN of the mapping that failed (what MP_FAIL carries).
    pub(super) dsn: DataSeq,
    /// The subflow it failed on.
    pub(super) sf_id: u32,
    /// The peer echoed MP_FAIL: no need to send it again.
    pub(super) echoed: bool,
    /// Expiries of [`Timer::MpFail`]: resend it, or give up after [`MP_FAIL_TRIES`].
    pub(super) tries: u32,
}

/// MP_FAIL timer expiries (with exponential backoff from the RTO) before
/// a receiver that got no infinite mapping gives up and resets.
pub(super) const MP_FAIL_TRIES: u32 = 5;

/// MP_FAIL and fallback state (RFC 8684 §3.7).
#[derive(Debug, Default)]
pub(super) struct Fail {
    /// Receive base after a fallback: (subflow seq, DSN).
    pub(super) fb_rx: Option<(SubflowSeq, DataSeq)>,
    /// DSS checksums on: the mappings sent and not yet DATA_ACKed, as
    /// (subflow id, DSN, length), which an MP_FAIL makes us resend even
    /// when the subflow's TCP acknowledged them (RFC 8684 §3.7).
    pub(super) csum_sent: VecDeque<(u32, DataSeq, u32)>,
    /// We detected a checksum failure on the only subflow (see [`RxFail`]).
    pub(super) rx_fail: Option<RxFail>,
    /// MP_FAIL to send on an ACK with a DSS: (subflow id, DSN).
    pub(super) mp_fail_out: Option<(u32, u64)>,
    /// The peer sent MP_FAIL on the only subflow: the next data segment
    /// carries an infinite mapping from this DSN (RFC 8684 §3.7).
    pub(super) tx_infinite: Option<DataSeq>,
    /// Sending was rewound to an MP_FAIL's DSN at this subflow sequence
    /// number: the segments before it carry data the peer dropped, and
    /// only those after it count at the data level.
    pub(super) rewound: Option<SubflowSeq>,
}

impl Connection {
    pub(super) fn fallback(&mut self, reason: FallbackReason, ctx: &mut Ctx<'_>) {
        if self.mp.fallback.is_some() {
            return;
        }
        self.mp.fallback = Some(reason);
        ctx.events.push_back(Event::Fallback { conn: self.handle, reason });
        self.fail.csum_sent.clear();
        if let Some(sf) = self.subflows.first_mut() {
            sf.ready = sf.tcb.state.synchronized();
            // Data continues in order from where the subflow stands. A
            // checksummed mapping half received is delivered as it is: no
            // checksum covers what follows a fallback either.
            let mut base = self.rcv.rx.nxt;
            if let Some(st) = sf.stage.take() {
                let w = self.rcv.rx.write(st.map.dsn, &st.data);
                if w.duplicate > 0 {
                    ctx.mib.inc(Counter::DuplicateData);
                }
                base = base.max(st.map.dsn + st.data.len() as u64);
            }
            self.fail.fb_rx = Some((sf.tcb.rcv_nxt, base));
        }
    }

    /// Whether a checksum failure on subflow `i` may end in a fallback to
    /// TCP (RFC 8684 §3.7) rather than a reset of the subflow: it is the
    /// initial subflow and no other one is left.
    pub(super) fn infinite_fallback_ok(&self, i: usize) -> bool {
        self.subflows[i].initial && self.subflows.iter().enumerate().all(|(j, s)| j == i || !s.alive())
    }

    /// The peer sent MP_FAIL on subflow `i`, on a RST (`on_rst`) or on an
    /// ACK (RFC 8684 §3.7). Returns whether the connection fell back to TCP.
    /// Its DSN (the failed mapping) is not needed: whatever the peer did
    /// not DATA_ACK is sent again, which starts there.
    pub(super) fn on_mp_fail(&mut self, i: usize, on_rst: bool, ctx: &mut Ctx<'_>) -> bool {
        ctx.mib.inc(Counter::MpFailRx);
        if let Some(f) = self.fail.rx_fail.as_mut() {
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
        let p = self.snd.snd_una;
        self.snd.reinject.clear();
        for sf in self.subflows.iter_mut() {
            sf.redundant.clear();
        }
        self.fallback(FallbackReason::InfiniteMapping, ctx);
        if p < self.snd.snd_nxt {
            self.snd.snd_nxt = p;
        }
        self.snd.mpc_map = None;
        self.snd.mpc_map_done = true;
        self.fail.tx_infinite = Some(p);
        self.fail.rewound = Some(self.subflows[i].tcb.snd_nxt);
        // The answer carries, as Linux's does, the DSN where our own
        // receiving stands (MP_FAIL's DSN is in its sender's receive space).
        let sf = &mut self.subflows[i];
        self.fail.mp_fail_out = Some((sf.id, self.rcv.rx.nxt.0));
        sf.tcb.request_ack();
        true
    }

    /// Queue for reinjection what subflow `i` carried from `d` on, even
    /// what its TCP acknowledged: after an MP_FAIL the peer dropped the
    /// failed mapping (RFC 8684 §3.7).
    pub(super) fn resend_failed(&mut self, i: usize, d: DataSeq, ctx: &mut Ctx<'_>) {
        let id = self.subflows[i].id;
        let una = self.snd.snd_una;
        for &(sid, dsn, len) in self.fail.csum_sent.iter() {
            let end = dsn + len as u64;
            if sid != id || end <= d || end <= una {
                continue;
            }
            let start = dsn.max(una);
            self.snd.reinject.push_back((start, (end - start) as u32));
            ctx.mib.inc(Counter::MptcpRetrans);
        }
        self.subflows[i].tcb.take_reinjection();
    }

    /// A DSS checksum failed on subflow `i` for the mapping at `dsn`
    /// (RFC 8684 §3.7). Returns whether the subflow goes on (fallback).
    pub(super) fn on_checksum_failure(&mut self, i: usize, dsn: DataSeq, ctx: &mut Ctx<'_>) -> bool {
        ctx.mib.inc(Counter::DataCsumErr);
        if self.infinite_fallback_ok(i) {
            // The only subflow: MP_FAIL on an ACK with a DSS, then plain TCP
            // from the peer's infinite mapping on; the failed mapping is
            // not delivered, the peer sends it again.
            self.fallback(FallbackReason::ChecksumFailure, ctx);
            let sf = &mut self.subflows[i];
            self.fail.rx_fail = Some(RxFail { dsn, sf_id: sf.id, echoed: false, tries: 0 });
            self.timers.stop(Timer::MpFail);
            self.fail.mp_fail_out = Some((sf.id, dsn.0));
            sf.tcb.request_ack();
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
    pub(super) fn on_fail_options(&mut self, i: usize, seg: &Segment<'_>, ctx: &mut Ctx<'_>) {
        for o in seg.opts.mptcp() {
            match *o {
                MptcpOption::MpFail(_) => {
                    ctx.mib.inc(Counter::MpFailRx);
                    if let Some(f) = self.fail.rx_fail.as_mut() {
                        f.echoed = true;
                    }
                }
                MptcpOption::Dss(Dss { mapping: Some(m), .. }) if m.data_len == 0 => {
                    ctx.mib.inc(Counter::InfiniteMapRx);
                    let dsn = match m.dsn {
                        WireSeq::U64(v) => DataSeq(v),
                        WireSeq::U32(v) => DataSeq::extend(v, self.rcv.rx.nxt),
                    };
                    self.fail.rx_fail = None;
                    self.timers.stop(Timer::MpFail);
                    self.fail.mp_fail_out = None;
                    if dsn > self.rcv.rx.nxt {
                        // The peer goes on past data we never got: the
                        // stream cannot be whole any more.
                        self.reset_all(rst_reason::MIDDLEBOX, ctx);
                        return;
                    }
                    let ssn = self.subflows[i].tcb.abs_rcv(m.ssn);
                    self.fail.fb_rx = Some((ssn, dsn));
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::stack::{Config, Endpoint, FallbackReason};

    #[test]
    fn a_plain_tcp_peer_means_fallback_without_mptcp_state() {
        let mut p = pair(Config { checksum: true, ..Config::default() });
        p.s = Endpoint::new(Config { mptcp: false, ..Config::default() }, 22);
        assert!(p.s.add_address("10.0.1.2".parse().unwrap_or_else(|e| panic!("{e}")), Default::default()).is_ok());
        assert!(p.s.listen("0.0.0.0:80".parse().unwrap_or_else(|e| panic!("{e}"))).is_ok());
        let (h, _) = open(&mut p);
        let c = conn(&p.c, h);
        assert_eq!(c.mp.fallback, Some(FallbackReason::NoMpCapableInSynAck));
        assert!(c.is_fallback() && c.fail.csum_sent.is_empty() && c.fail.rx_fail.is_none());
        assert!(!c.timers.is_running(Timer::MpFail));
    }
}
