//! The data-level receive side: mappings taken from DSS (RFC 8684 §3.3.1),
//! reassembly into the receive ring, DSS checksums (§3.3.1), DATA_ACKs and
//! the window we advertise (§3.3.4, §3.3.7).

use super::*;

/// A receive mapping (RFC 8684 §3.3.1), subflow sequence absolute.
#[derive(Clone, Copy, Debug)]
pub(super) struct RxMap {
    pub(super) ssn: SubflowSeq,
    pub(super) dsn: DataSeq,
    /// Payload bytes covered (DATA_FIN's unit excluded).
    pub(super) len: u32,
    pub(super) fin: bool,
    pub(super) csum: Option<u16>,
}

/// Staging of a checksummed mapping until it is complete and verified.
#[derive(Debug)]
pub(super) struct CsumStage {
    pub(super) map: RxMap,
    pub(super) data: Vec<u8>,
}

/// The data-level receive side (RFC 8684 §3.3).
#[derive(Debug)]
pub(super) struct RecvSide {
    pub(super) rx: RxRing,
    /// The mapping carried by the segment being processed.
    pub(super) seg_map: Option<RxMap>,
    pub(super) last_adv_edge: DataSeq,
    pub(super) readable_armed: bool,
}

impl Connection {
    pub fn recv(&mut self, out: &mut [u8], ctx: &mut Ctx<'_>) -> Result<Option<usize>, crate::stack::RecvError> {
        let n = self.rcv.rx.read(out);
        if n > 0 {
            self.maybe_window_update(ctx);
            if self.rcv.rx.readable() == 0 {
                self.rcv.readable_armed = true;
            }
            return Ok(Some(n));
        }
        self.rcv.readable_armed = true;
        if self.fin.peer_fin_done {
            return Ok(None);
        }
        match self.closed {
            Some(CloseReason::Normal) => Ok(None),
            Some(r) => Err(crate::stack::RecvError::Reset(r)),
            None => Err(crate::stack::RecvError::Blocked),
        }
    }

    pub fn readable(&self) -> usize {
        self.rcv.rx.readable()
    }

    /// After a read: announce a window that opened a lot (receiver SWS
    /// avoidance, RFC 9293 §3.8.6.2.2).
    pub(super) fn maybe_window_update(&mut self, _ctx: &mut Ctx<'_>) {
        let edge = self.rcv.rx.read + self.rcv.rx.capacity() as u64;
        let grown = edge.0.saturating_sub(self.rcv.last_adv_edge.0) as usize;
        let adv_left = self.rcv.last_adv_edge.0.saturating_sub(self.rcv.rx.nxt.0) as usize;
        if grown >= (self.rcv.rx.capacity() / 2).min(4 * self.mss_local) && adv_left < self.rcv.rx.capacity() / 2 {
            if let Some(sf) = self.subflows.iter_mut().find(|s| s.ready && s.alive() && s.tcb.state.synchronized()) {
                sf.tcb.request_ack();
            }
        }
    }

    /// A DATA_ACK (RFC 8684 §3.3.2) and the window it carries (§3.3.4).
    pub(super) fn on_data_ack(&mut self, a: WireSeq, window: u16, i: usize, ctx: &mut Ctx<'_>) {
        let ack = match a {
            WireSeq::U64(v) => DataSeq(v),
            WireSeq::U32(v) => DataSeq::extend(v, self.snd.snd_una),
        };
        // DATA_FIN takes one unit after the data.
        let max = self.snd.snd_nxt + (self.fin.app_closed && self.snd.snd_nxt == self.snd.tx.tail) as u64;
        if ack > max || ack < self.snd.snd_una - (1u64 << 31) {
            return;
        }
        if ack > self.snd.snd_una {
            self.snd.snd_una = ack.min(self.snd.tx.tail);
            while self.fail.csum_sent.front().is_some_and(|&(_, d, l)| d + l as u64 <= self.snd.snd_una) {
                self.fail.csum_sent.pop_front();
            }
            if self.fin.app_closed && ack == self.snd.tx.tail + 1u64 && !self.fin.dfin_acked {
                self.fin.dfin_acked = true;
                self.fin.dfin_due = false;
                self.timers.stop(Timer::DataFin);
            }
        }
        let edge = ack + ((window as u64) << self.subflows[i].tcb.snd_wscale);
        if edge > self.snd.snd_edge {
            self.snd.snd_edge = edge;
        }
        let _ = ctx;
    }

    /// A DSS mapping (RFC 8684 §3.3.1): remember it for the subflow's data.
    pub(super) fn on_mapping(
        &mut self,
        i: usize,
        m: DssMapping,
        data_fin: bool,
        seg: (SubflowSeq, usize),
        ctx: &mut Ctx<'_>,
    ) {
        let dsn = match m.dsn {
            WireSeq::U64(v) => DataSeq(v),
            WireSeq::U32(v) => DataSeq::extend(v, self.rcv.rx.nxt),
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
            if dsn <= self.rcv.rx.nxt {
                self.fail.fb_rx = Some((ssn, dsn));
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
        if data_fin && self.fin.peer_fin.is_none() {
            self.fin.peer_fin = Some(dsn + len as u64);
        }
        self.rcv.seg_map = Some(map);
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
    pub(super) fn mapping_error(&mut self, i: usize, ctx: &mut Ctx<'_>) -> bool {
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

    /// The receive window we advertise (connection level, RFC 8684 §3.3.4).
    pub(super) fn rx_window(&self) -> usize {
        self.rcv.rx.window()
    }

    /// Place a segment's new payload at the data level. Returns whether all
    /// of it was taken (so a FIN after it may be processed).
    pub(super) fn take_payload(&mut self, now: Instant, i: usize, seg: &Segment<'_>, ctx: &mut Ctx<'_>) -> bool {
        let wnd = self.rx_window();
        let Some((off, len)) = self.subflows[i].tcb.rx_span(seg.seq, seg.payload.len(), wnd.max(1) + 65535) else {
            // Old duplicate: ACK at once (RFC 9293).
            self.subflows[i].tcb.request_ack();
            return true;
        };
        let start = seg.seq + off;
        let data = &seg.payload[off..off + len];
        let mut taken = 0usize;
        let mut unmapped = false;
        if self.fail.rx_fail.is_some() {
            // MP_FAIL sent, no infinite mapping yet: in-order data was sent
            // before the peer rewound; acknowledge and drop it (RFC 8684 §3.7).
            taken = if start == self.subflows[i].tcb.rcv_nxt { len } else { 0 };
        } else if !self.mp.active() {
            // Plain TCP: DSN follows the subflow sequence from the fallback point.
            let (bseq, bdsn) = self.fail.fb_rx.unwrap_or((self.subflows[i].tcb.rcv_nxt, self.rcv.rx.nxt));
            let dsn = bdsn + (start.diff(bseq) as i64 as u64);
            let w = self.rcv.rx.write_from(dsn, data, seg.shared.map(|s| (s, off)));
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
                let Some(m) =
                    self.rcv.seg_map.filter(covers).or_else(|| sf.rx_maps.iter().find(|m| covers(m)).copied())
                else {
                    ctx.mib.inc(Counter::DssNoMatchTcp);
                    unmapped = true;
                    break;
                };
                let piece_end = end.min(m.ssn + m.len);
                let k = piece_end - pos;
                let dsn = m.dsn + (pos - m.ssn) as u64;
                let d = &data[pos - start..pos - start + k];
                let w = self.rcv.rx.write_from(dsn, d, seg.shared.map(|s| (s, off + (pos - start))));
                if w.duplicate > 0 {
                    ctx.mib.add(Counter::DuplicateData, 1);
                }
                if dsn + d.len() as u64 > self.rcv.rx.read + self.rcv.rx.capacity() as u64 {
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
            self.subflows[i].tcb.request_ack();
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
                        self.fin.peer_fin = Some(m.dsn + m.len as u64);
                    }
                }
            }
        }
        if self.rcv.rx.readable() > 0 && self.rcv.readable_armed {
            self.rcv.readable_armed = false;
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
    pub(super) fn take_checksummed(&mut self, i: usize, start: SubflowSeq, data: &[u8], ctx: &mut Ctx<'_>) -> usize {
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
                let ok =
                    m.csum.is_some_and(|c| crypto::dss_checksum_ok(m.dsn.0, sf.tcb.rel_rcv(m.ssn), dl, c, &st.data));
                if !ok {
                    // RFC 8684 §3.7: the mapping is not delivered. The
                    // only subflow falls back (what follows in this
                    // segment is dropped until the infinite mapping);
                    // otherwise it is reset.
                    return if self.on_checksum_failure(i, m.dsn, ctx) { data.len() } else { 0 };
                }
                let w = self.rcv.rx.write(m.dsn, &st.data);
                if w.duplicate > 0 {
                    ctx.mib.inc(Counter::DuplicateData);
                }
                self.subflows[i].cur_map = Some(m);
            }
        }
        pos - start
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

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::stack::{Config, Instant};

    #[test]
    fn reordered_segments_are_reassembled_in_order() {
        let mut p = pair(Config::default());
        let (h, sh) = open(&mut p);
        let up = data(40_000);
        assert_eq!(p.c.send(h, &up), Ok(up.len()));
        p.flush();
        let n = p.wire.len();
        assert!(n >= 4, "{n} in flight");
        // Reverse the flight (arrival times stay in order).
        for i in 0..n / 2 {
            assert!(p.swap(i, n - 1 - i));
        }
        let got = upload(&mut p, h, sh, &[], Instant::from_secs(2));
        assert!(got.len() == up.len() + 1 && got[1..] == up[..]);
        let s = conn(&p.s, sh);
        assert_eq!(s.rcv.rx.readable(), 0, "all read");
        assert!(s.rcv.last_adv_edge >= s.rcv.rx.nxt, "the window advertised covers what arrived");
    }
}
