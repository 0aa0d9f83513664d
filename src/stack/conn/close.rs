//! Closing: DATA_FIN both ways (RFC 8684 §3.3.3), MP_FASTCLOSE (§3.5), and
//! when the connection is done.

use super::*;

/// DATA_FIN both ways (RFC 8684 §3.3.3).
#[derive(Debug, Default)]
pub(super) struct Fin {
    /// The application closed: DATA_FIN at `tx.tail`.
    pub(super) app_closed: bool,
    pub(super) dfin_due: bool,
    pub(super) dfin_tries: u32,
    pub(super) dfin_acked: bool,
    /// The peer's DATA_FIN (its DSN).
    pub(super) peer_fin: Option<DataSeq>,
    pub(super) peer_fin_done: bool,
}

impl Connection {
    pub fn close(&mut self) {
        if self.fin.app_closed || self.closed.is_some() {
            return;
        }
        self.fin.app_closed = true;
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

    pub(super) fn finish(&mut self, reason: CloseReason, ctx: &mut Ctx<'_>) {
        if self.closed.is_some() {
            return;
        }
        if self.mp.active() && self.mp.fully_established && self.stats.established_at.is_some() {
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

    pub(super) fn peer_fastclose(&mut self, ctx: &mut Ctx<'_>) {
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

    pub(super) fn on_peer_data_fin(&mut self, dsn: DataSeq, ctx: &mut Ctx<'_>) {
        if self.fin.peer_fin_done {
            // A retransmitted DATA_FIN: acknowledge again.
            if let Some(sf) = self.subflows.iter_mut().find(|s| s.ready && s.alive()) {
                sf.tcb.request_ack();
            }
            return;
        }
        self.fin.peer_fin = Some(dsn);
        self.check_peer_fin(ctx);
    }

    pub(super) fn check_peer_fin(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(f) = self.fin.peer_fin
            && !self.fin.peer_fin_done
            && self.rcv.rx.nxt == f
        {
            self.fin.peer_fin_done = true;
            ctx.events.push_back(Event::PeerClosed(self.handle));
            ctx.events.push_back(Event::Readable(self.handle));
            self.rcv.readable_armed = false;
            // RFC 8684 §3.3.3: DATA_ACK the DATA_FIN at once.
            if let Some(sf) = self.subflows.iter_mut().find(|s| s.ready && s.alive() && s.tcb.state.synchronized()) {
                sf.tcb.request_ack();
            }
        }
    }

    /// Move the data-level close on (RFC 8684 §3.3.3).
    pub(super) fn check_close(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        if self.closed.is_some() {
            return;
        }
        // Plain TCP (fallback): the application closed and all its data is
        // on the subflow: the FIN goes after it (RFC 9293 §3.10.4).
        if !self.mp.active() && self.fin.app_closed && self.snd.snd_nxt >= self.snd.tx.tail {
            if let Some(sf) = self.subflows.first_mut() {
                if sf.alive() && !sf.closing && sf.tcb.state.synchronized() {
                    sf.closing = true;
                    sf.tcb.close();
                }
            }
        }
        if self.mp.active() && self.fin.dfin_acked && self.fin.peer_fin_done {
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
                ctx.endpoint_events.push(EndpointEvent::RetiredTuple { local: sf.tcb.local, remote: sf.tcb.remote });
                if sf.up_reported {
                    ctx.events.push_back(Event::SubflowDown { conn: self.handle, subflow: sf.info(), reason });
                }
            }
        }
        let data_done = if self.mp.active() {
            self.fin.dfin_acked && self.fin.peer_fin_done
        } else {
            self.fin.peer_fin_done
                && self.fin.app_closed
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

    /// Whether everything is over: closed and every subflow past TIME-WAIT.
    pub fn finished(&self) -> bool {
        self.closed.is_some()
            && self
                .subflows
                .iter()
                .all(|s| s.tcb.state == TcpState::Closed || s.down.is_some() && s.tcb.timewait_at.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::stack::{CloseReason, Config, Duration};

    #[test]
    fn data_fin_both_ways_walks_the_states() {
        let mut p = pair(Config::default());
        let (h, sh) = open(&mut p);
        let _ = p.s.recv(sh, &mut [0u8; 8]);
        assert_eq!((conn(&p.c, h).state_name(), conn(&p.s, sh).state_name()), ("ESTAB", "ESTAB"));
        assert_eq!(p.c.close(h), Ok(()));
        p.drive(p.now + Duration::from_millis(100));
        let (c, s) = (conn(&p.c, h), conn(&p.s, sh));
        assert_eq!((c.state_name(), s.state_name()), ("FIN-WAIT-2", "CLOSE-WAIT"));
        assert!(c.fin.app_closed && c.fin.dfin_acked && s.fin.peer_fin.is_some());
        assert_eq!(p.s.recv(sh, &mut [0u8; 8]), Ok(None), "the end of the stream");
        assert!(conn(&p.s, sh).fin.peer_fin_done);
        assert_eq!(p.s.close(sh), Ok(()));
        p.drive(p.now + Duration::from_millis(100));
        let (c, s) = (conn(&p.c, h), conn(&p.s, sh));
        assert_eq!((c.closed, s.closed), (Some(CloseReason::Normal), Some(CloseReason::Normal)));
        assert!(!c.finished(), "the active closer's subflow waits in TIME-WAIT");
    }

    #[test]
    fn abort_is_a_fastclose_for_both_sides() {
        let mut p = pair(Config::default());
        let (h, sh) = open(&mut p);
        assert_eq!(p.c.abort(h), Ok(()));
        p.drive(p.now + Duration::from_millis(100));
        assert_eq!(conn(&p.s, sh).closed, Some(CloseReason::PeerFastClose));
        assert!(conn(&p.c, h).closed.is_some() && conn(&p.c, h).finished());
    }
}
