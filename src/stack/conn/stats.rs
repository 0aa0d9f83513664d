//! What the connection tells about itself: state names, snapshots (in the
//! `ss` shape of [`crate::snapshot`]) and the debug dump.

use super::*;

/// What the subflows dropped from the list carried.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Gone {
    pub(super) retransmits: u64,
    pub(super) bytes_retrans: u64,
    pub(super) sent: u64,
    pub(super) received: u64,
    pub(super) acked: u64,
    pub(super) last_send: Instant,
    pub(super) last_recv: Instant,
}

impl Gone {
    pub(super) fn add(&mut self, sf: &Subflow) {
        self.retransmits += sf.tcb.stats.retransmits;
        self.bytes_retrans += sf.tcb.stats.bytes_retrans;
        self.sent += sf.data_bytes_sent;
        self.received += sf.data_bytes_received;
        self.acked += sf.tcb.stats.bytes_acked;
        self.last_send = self.last_send.max(sf.tcb.last_send);
        self.last_recv = self.last_recv.max(sf.tcb.last_recv);
    }
}

/// Connection-level counters (snapshots, `ss`).
#[derive(Debug, Default)]
pub(super) struct Stats {
    /// Counters of closed subflows no longer in `subflows`.
    pub(super) gone: Gone,
    pub(super) established_at: Option<Instant>,
    pub(super) retransmits: u64,
    pub(super) bytes_retrans: u64,
    pub(super) bytes_reinjected: u64,
    pub(super) subflows_total: u32,
}

impl Connection {
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
        let fin_sent = self.fin.app_closed;
        match (fin_sent, self.fin.dfin_acked, self.fin.peer_fin_done) {
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
            Some(m) => (m.dsn.0, sf.tcb.rel_rcv(m.ssn), m.len),
            None => (self.rcv.rx.nxt.0, 0, 0),
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
            ssnoff: sf.tcb.rcv_ssn_offset(),
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
        let g = self.stats.gone;
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
            subflows_total: Some(self.stats.subflows_total),
            write_seq: Some(self.snd.tx.tail.0),
            snd_una: Some(self.snd.snd_una.0),
            rcv_nxt: Some(self.data_ack().0),
            retransmits: Some(retrans),
            bytes_retrans: Some(bytes_retrans),
            bytes_sent: Some(sent),
            bytes_received: Some(recv),
            bytes_acked: Some(acked.min(self.snd.snd_una - self.snd.tx.head + self.snd.tx.len() as u64).max(acked)),
            bytes_reinjected: Some(self.stats.bytes_reinjected),
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
            self.snd.snd_una.0 % 100_000_000,
            self.snd.snd_nxt.0 % 100_000_000,
            self.snd.tx.tail.0 % 100_000_000,
            self.snd.tx.head.0 % 100_000_000,
            self.snd.snd_edge.0 % 100_000_000,
            self.snd.reinject.len(),
            self.rcv.rx.nxt.0 % 100_000_000,
            self.rcv.rx.read.0 % 100_000_000,
            self.rcv.rx.ooo.len()
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
}

/// "ADDR:PORT", IPv6 as "[ADDR]:PORT" (the snapshot contract).
fn fmt_addr(a: SocketAddr) -> String {
    a.to_string()
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::stack::{Config, Instant};

    #[test]
    fn the_snapshot_counts_subflows_and_bytes() {
        let mut p = pair(Config::default());
        second_path(&mut p);
        let (h, sh) = open(&mut p);
        let up = data(100_000);
        let _ = upload(&mut p, h, sh, &up, Instant::from_secs(3));
        let c = conn(&p.c, h);
        assert_eq!((c.stats.subflows_total, c.state_name()), (2, "ESTAB"));
        let snap = c.snapshot(p.now);
        assert_eq!(snap.subflows.len(), 2);
        let sent: u64 = c.subflows.iter().map(|s| s.data_bytes_sent).sum();
        assert_eq!(sent, up.len() as u64 + 1);
    }
}
