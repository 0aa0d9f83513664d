//! The data-level send side: the send ring, the scheduler's picks, the
//! mappings of new data (RFC 8684 §3.3.1), reinjection of data a subflow
//! lost (§3.3.6), the connection-level window and its persist timer.

use super::*;

/// The data-level send side (RFC 8684 §3.3).
#[derive(Debug)]
pub(super) struct SendSide {
    pub(super) tx: TxRing,
    pub(super) snd_una: DataSeq,
    pub(super) snd_nxt: DataSeq,
    /// Right edge of the peer's connection-level window (RFC 8684 §3.3.4).
    pub(super) snd_edge: DataSeq,
    /// The first mapping of a client, sent in the MP_CAPABLE data form:
    /// (start, len, next offset to send).
    pub(super) mpc_map: Option<(DataSeq, u32, u32)>,
    pub(super) mpc_map_done: bool,
    /// Data ranges to send again on any subflow.
    pub(super) reinject: VecDeque<(DataSeq, u32)>,
    pub(super) sched: Box<dyn Scheduler>,
    pub(super) views: Vec<SubflowView>,
    pub(super) persist_backoff: u32,
    pub(super) writable_wanted: bool,
    pub(super) rr: usize,
}

impl Connection {
    pub fn send(&mut self, data: &[u8]) -> Result<usize, StackError> {
        if let Some(r) = self.closed {
            return Err(StackError::Reset(r));
        }
        if self.fin.app_closed {
            return Err(StackError::Closing);
        }
        let n = self.snd.tx.write(data);
        if n < data.len() {
            self.snd.writable_wanted = true;
        }
        Ok(n)
    }

    pub fn send_buffer_free(&self) -> usize {
        self.snd.tx.free()
    }

    /// Bytes written by the application and not yet acknowledged at the data level.
    pub fn unacked(&self) -> u64 {
        self.snd.tx.tail - self.snd.snd_una
    }

    /// Queue a subflow's unacknowledged data for the other subflows
    /// (RFC 8684 §3.3.6: data outstanding on a failed subflow is resent).
    pub(super) fn reinject_from(&mut self, i: usize, ctx: &mut Ctx<'_>) {
        let una = self.snd.snd_una;
        let others = self.subflows.iter().enumerate().any(|(j, s)| j != i && s.ready && s.alive() && !s.stale);
        if !others || !self.mp.active() {
            return;
        }
        for (dsn, len) in self.subflows[i].tcb.take_reinjection() {
            let end = dsn + len as u64;
            if end <= una {
                continue;
            }
            let start = dsn.max(una);
            let len = (end - start) as u32;
            self.snd.reinject.push_back((start, len));
            ctx.mib.inc(Counter::MptcpRetrans);
        }
    }

    /// Free send-ring space no subflow needs (RFC 8684 §3.3.2: data may be
    /// freed once DATA_ACKed; a subflow may still have to resend its bytes).
    pub(super) fn release_tx(&mut self, ctx: &mut Ctx<'_>) {
        let mut to = self.snd.snd_una;
        for sf in &self.subflows {
            if sf.alive()
                && let Some(d) = sf.tcb.lowest_dsn()
                && d < to
            {
                to = to.min(d.max(self.snd.tx.head));
            }
        }
        // A stale subflow must not pin the ring: when the ring is short of
        // space, copy out what it still needs and let the ring move on.
        if to < self.snd.snd_una && self.snd.tx.free() < self.snd.tx.capacity() / 4 {
            let una = self.snd.snd_una;
            let head = self.snd.tx.head;
            for sf in self.subflows.iter_mut().filter(|s| s.alive() && s.stale) {
                for seg in sf.tcb.txq.iter() {
                    if seg.dsn >= head && seg.dsn < una && !sf.spill.iter().any(|(d, _)| *d == seg.dsn) {
                        let n = (seg.len as usize).min((self.snd.tx.tail - seg.dsn) as usize);
                        sf.spill.push((seg.dsn, self.snd.tx.slice(seg.dsn, n)));
                    }
                }
            }
            to = self.snd.snd_una;
            for sf in &self.subflows {
                if sf.alive()
                    && !sf.stale
                    && let Some(d) = sf.tcb.lowest_dsn()
                {
                    to = to.min(d.max(self.snd.tx.head));
                }
            }
        }
        let before = self.snd.tx.free();
        self.snd.tx.release(to);
        for sf in self.subflows.iter_mut() {
            let lo = sf.tcb.lowest_dsn();
            sf.spill.retain(|(d, _)| lo.is_some_and(|l| *d >= l));
        }
        if self.snd.writable_wanted && self.snd.tx.free() > before.max(self.snd.tx.capacity() / 8) {
            self.snd.writable_wanted = false;
            ctx.events.push_back(Event::Writable(self.handle));
        }
    }

    pub(super) fn arm_persist(&mut self, now: Instant) {
        let window_blocked = self.snd.snd_nxt < self.snd.tx.tail
            && self.snd.snd_edge <= self.snd.snd_nxt
            && self.snd.snd_una == self.snd.snd_nxt;
        // Data every subflow's TCP has acknowledged but the DATA_ACK has not
        // covered yet: no subflow timer runs, and the peer may not send an
        // ACK by itself once it moves the data on (Linux sends none unless
        // its window doubles), so a stall with our window used up would
        // last forever. Probe as for a zero window (RFC 8684 §3.3.6: the
        // connection level must recover what the subflows do not).
        let data_ack_lag = self.mp.active()
            && self.snd.snd_una < self.snd.snd_nxt
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
                self.timers.set_backed_off(Timer::Persist, now, rto, self.snd.persist_backoff, max_rto);
            }
        } else {
            self.timers.stop(Timer::Persist);
            self.snd.persist_backoff = 0;
        }
    }

    /// Payload room of a data segment on subflow `j`.
    pub(super) fn seg_max(&self, j: usize) -> usize {
        let sf = &self.subflows[j];
        let mut opt = if sf.tcb.ts_ok { 12 } else { 0 };
        if self.mp.active() {
            // DSS with 4-byte DATA_ACK and DSN (RFC 8684 §3.3: the receiver
            // extends them), 20 bytes padded; the MP_CAPABLE data form, 24.
            opt += if self.role == Role::Client && !self.mp.fully_established { 24 } else { 20 };
        } else if self.fail.tx_infinite.is_some() {
            // The infinite mapping: DSS with a 4-byte DATA_ACK, an 8-byte
            // DSN and the checksum field.
            opt += 24;
        }
        sf.tcb.mss.saturating_sub(opt).max(1)
    }

    pub(super) fn build_views(&mut self) {
        self.snd.views.clear();
        // Room counts only when a segment fits (sender SWS avoidance,
        // RFC 9293 §3.8.6.2.1): a full one, or all the data there is.
        let pending = ((self.snd.tx.tail - self.snd.snd_nxt) as usize).max(1);
        for (j, sf) in self.subflows.iter().enumerate() {
            let need = self.seg_max(j).min(pending);
            let usable = sf.ready
                && sf.alive()
                && !sf.closing
                && sf.tcb.may_send_data()
                && !sf.stale
                && sf.tcb.lost_bytes() == 0;
            self.snd.views.push(SubflowView {
                index: j,
                srtt_us: sf.tcb.rtt.srtt().map(|d| d.as_micros()),
                room: if usable && sf.tcb.cwnd_room() >= need { sf.tcb.cwnd_room() } else { 0 },
                backup: sf.backup_loc || sf.backup_rem,
                usable,
            });
        }
        // With every subflow stale, use them anyway rather than stop.
        if !self.snd.views.iter().any(|v| v.usable) {
            for v in self.snd.views.iter_mut() {
                let sf = &self.subflows[v.index];
                if sf.ready && sf.alive() && !sf.closing && sf.tcb.may_send_data() && sf.tcb.lost_bytes() == 0 {
                    v.usable = true;
                    v.room = sf.tcb.cwnd_room();
                }
            }
        }
    }

    pub(super) fn poll_data(&mut self, now: Instant, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Option<Tx> {
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
        if let Some((s, len, off)) = self.snd.mpc_map
            && off < len
        {
            let j = 0;
            if self.snd.views.get(j).is_some_and(|v| v.usable) {
                let want = ((len - off) as usize).min(self.seg_max(j));
                if self.snd.views[j].room >= want {
                    let dsn = s + off as u64;
                    self.snd.mpc_map = Some((s, len, off + want as u32));
                    let map = TxMap { dsn: s, ssn: 1, len: len as u16, checksum: self.mpc_checksum(s, len), mpc: true };
                    return Some(self.emit_new(now, j, dsn, want, Some(map), out, ctx, false));
                }
            }
            return None;
        }
        // Redundant copies owed to particular subflows.
        for j in 0..self.subflows.len() {
            if !self.snd.views[j].usable {
                continue;
            }
            while let Some(&(d, l)) = self.subflows[j].redundant.front() {
                let end = d + l as u64;
                if end <= self.snd.snd_una {
                    self.subflows[j].redundant.pop_front();
                    continue;
                }
                let start = d.max(self.snd.snd_una);
                let want = ((end - start) as usize).min(self.seg_max(j));
                if self.snd.views[j].room < want {
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
        while let Some(&(d, l)) = self.snd.reinject.front() {
            let end = d + l as u64;
            if end <= self.snd.snd_una || self.mp.fallback.is_some() {
                self.snd.reinject.pop_front();
                continue;
            }
            let start = d.max(self.snd.snd_una);
            let pick = self.snd.sched.pick(&self.snd.views);
            let j = match pick {
                Pick::One(j) | Pick::Redundant(j) => j,
                Pick::None => break,
            };
            let want = ((end - start) as usize).min(self.seg_max(j));
            if self.snd.views[j].room < want.min(self.seg_max(j)) {
                break;
            }
            self.snd.reinject.pop_front();
            let rest = (end - (start + want as u64)) as u32;
            if rest > 0 {
                self.snd.reinject.push_front((start + want as u64, rest));
            }
            return Some(self.emit_new(now, j, start, want, None, out, ctx, true));
        }
        // New data.
        let avail = (self.snd.tx.tail - self.snd.snd_nxt) as usize;
        let wnd =
            if self.snd.snd_edge > self.snd.snd_nxt { (self.snd.snd_edge - self.snd.snd_nxt) as usize } else { 0 };
        let can = avail.min(wnd);
        if can == 0 {
            return None;
        }
        let pick = self.snd.sched.pick(&self.snd.views);
        let (j, redundant) = match pick {
            Pick::One(j) => (j, false),
            Pick::Redundant(j) => (j, true),
            Pick::None => return None,
        };
        let want = can.min(self.seg_max(j));
        // Sender SWS avoidance: a partial segment only at the end of the data.
        if self.snd.views[j].room < want {
            return None;
        }
        let dsn = self.snd.snd_nxt;
        self.snd.snd_nxt += want as u64;
        if redundant {
            for k in 0..self.subflows.len() {
                if k != j && self.snd.views[k].usable {
                    self.subflows[k].redundant.push_back((dsn, want as u32));
                }
            }
        }
        Some(self.emit_new(now, j, dsn, want, None, out, ctx, false))
    }

    pub(super) fn mpc_checksum(&self, s: DataSeq, len: u32) -> Option<u16> {
        if !self.mp.csum {
            return None;
        }
        let mut c = crypto::dss_checksum_start(s.0, 1, len as u16);
        self.snd.tx.with_slices(s, len as usize, |p| c.add(p));
        Some(c.finish())
    }

    /// Client before the peer confirmed our key: only the first mapping,
    /// in the MP_CAPABLE data form (RFC 8684 §3.1).
    pub(super) fn poll_mpc_data(&mut self, now: Instant, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Option<Tx> {
        let j = 0;
        if !self.snd.views.first().is_some_and(|v| v.usable) {
            return None;
        }
        if self.snd.mpc_map.is_none() && !self.snd.mpc_map_done {
            let avail = (self.snd.tx.tail - self.snd.snd_nxt) as usize;
            let wnd =
                if self.snd.snd_edge > self.snd.snd_nxt { (self.snd.snd_edge - self.snd.snd_nxt) as usize } else { 0 };
            let len = avail.min(wnd).min(65535).min(self.subflows[j].tcb.cc.window());
            if len == 0 {
                return None;
            }
            self.snd.mpc_map = Some((self.snd.snd_nxt, len as u32, 0));
            self.snd.mpc_map_done = true;
            self.snd.snd_nxt += len as u64;
        }
        let (s, len, off) = self.snd.mpc_map?;
        if off >= len {
            return None;
        }
        let want = ((len - off) as usize).min(self.seg_max(j));
        if self.snd.views[j].room < want {
            return None;
        }
        self.snd.mpc_map = Some((s, len, off + want as u32));
        let map = TxMap { dsn: s, ssn: 1, len: len as u16, checksum: self.mpc_checksum(s, len), mpc: true };
        Some(self.emit_new(now, j, s + off as u64, want, Some(map), out, ctx, false))
    }

    /// The MPTCP option of a data segment.
    pub(super) fn data_option(&self, map: &TxMap, data_fin: bool) -> MptcpOption {
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
    pub(super) fn emit_new(
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
                    self.snd.tx.with_slices(dsn, len, |p| c.add(p));
                    c.finish()
                });
                TxMap { dsn, ssn, len: len as u16, checksum, mpc: false }
            })
        });
        if self.mp.csum && mptcp {
            self.fail.csum_sent.push_back((self.subflows[j].id, dsn, len as u32));
        }
        if !mptcp && self.fail.tx_infinite == Some(dsn) {
            // RFC 8684 §3.7: after MP_FAIL, the first data carries the
            // infinite mapping (data-level length 0) from the DSN we resume at.
            self.fail.tx_infinite = None;
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
        let fl = flags::ACK | if dsn + len as u64 == self.snd.tx.tail { flags::PSH } else { 0 };
        let t = self.write(now, j, out, seq, fl, &o, Payload::Data(dsn, len), ctx);
        let sf = &mut self.subflows[j];
        sf.tcb.on_sent_new(now, TxSeg::new(seq, len as u32, dsn, map, now));
        sf.data_bytes_sent += len as u64;
        if reinjection {
            sf.bytes_reinjected += len as u64;
            self.stats.bytes_reinjected += len as u64;
        }
        let _ = ctx;
        t
    }

    pub(super) fn emit_retransmit(
        &mut self,
        now: Instant,
        j: usize,
        idx: usize,
        out: &mut TxOut<'_>,
        ctx: &mut Ctx<'_>,
    ) -> Tx {
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
        self.stats.retransmits += 1;
        self.stats.bytes_retrans += seg.len as u64;
        ctx.mib.inc(Counter::TcpRetransSegs);
        if self.subflows[j].tcb.in_recovery() {
            ctx.mib.inc(Counter::TcpFastRetrans);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::stack::{Config, Instant};

    #[test]
    fn everything_sent_over_two_paths_is_data_acked() {
        let mut p = pair(Config::default());
        second_path(&mut p);
        let (h, sh) = open(&mut p);
        let up = data(300_000);
        let got = upload(&mut p, h, sh, &up, Instant::from_secs(5));
        assert_eq!(got.len(), up.len() + 1);
        assert!(got[1..] == up[..]);
        let c = conn(&p.c, h);
        assert!(
            c.snd.snd_una == c.snd.snd_nxt && c.snd.snd_nxt == c.snd.tx.tail,
            "{:?}",
            (c.snd.snd_una, c.snd.snd_nxt)
        );
        assert!(
            c.snd.reinject.is_empty() && c.subflows.iter().all(|s| s.data_bytes_sent > 0),
            "both paths carried data"
        );
    }

    #[test]
    fn lost_data_is_sent_again() {
        let mut p = pair(Config::default());
        let (h, sh) = open(&mut p);
        let up = data(50_000);
        assert_eq!(p.c.send(h, &up), Ok(up.len()));
        p.flush();
        // Lose every second data segment of the first flight.
        let mut k = 0;
        let lost = p.lose(|w| {
            w.to_server && w.packet.len() > 1000 && {
                k += 1;
                k % 2 == 0
            }
        });
        assert!(lost >= 2, "{lost}");
        let got = upload(&mut p, h, sh, &[], Instant::from_secs(5));
        assert!(got.len() == up.len() + 1 && got[1..] == up[..]);
        let c = conn(&p.c, h);
        assert!(c.subflows[0].tcb.stats.retransmits >= lost as u64);
        assert_eq!(c.snd.snd_una, c.snd.tx.tail);
    }
}
