//! The connection-level timers: one [`Timer`] enum indexing one table, one
//! [`TimerTable::next_timeout`], and every deadline backed off by the one
//! rule, [`Duration::backed_off`] (RFC 6298 §5.5, clamped to the maximum RTO).
//!
//! Subflow timers (RTO, delayed ACK, TLP, TIME-WAIT) belong to each
//! subflow's `Tcb`; each ADD_ADDR waiting for its echo keeps its own resend
//! time in the path manager. [`super::Connection::next_timeout`] takes the
//! earliest of the three.

use super::*;

/// A timer of the connection itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// MP_FAIL sent and no infinite mapping yet (RFC 8684 §3.7): send it
    /// again, or reset after `MP_FAIL_TRIES`.
    MpFail = 0,
    /// DATA_FIN sent and not DATA_ACKed (RFC 8684 §3.3.3): send it again.
    DataFin = 1,
    /// Window probe (zero window, or data acked by the subflows but not by
    /// a DATA_ACK; RFC 9293 §3.8.6.1, RFC 8684 §3.3.6).
    Persist = 2,
    /// A Fast Open client holds its SYN for the application's first bytes
    /// (RFC 7413 §4.2.1); at expiry the SYN goes without them.
    FastOpenHold = 3,
}

impl Timer {
    /// Every timer, in table order.
    pub const ALL: [Timer; 4] = [Timer::MpFail, Timer::DataFin, Timer::Persist, Timer::FastOpenHold];
}

/// When each [`Timer`] expires, if it runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TimerTable {
    at: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    /// Run `t` to expire at `at` (replacing an earlier setting).
    pub fn set(&mut self, t: Timer, at: Instant) {
        self.at[t as usize] = Some(at);
    }

    /// Run `t` to expire `n` backoffs of `base` after `now` (at most `ceiling`).
    pub fn set_backed_off(&mut self, t: Timer, now: Instant, base: Duration, n: u32, ceiling: Duration) {
        self.set(t, now + base.backed_off(n, ceiling));
    }

    pub fn stop(&mut self, t: Timer) {
        self.at[t as usize] = None;
    }

    pub fn get(&self, t: Timer) -> Option<Instant> {
        self.at[t as usize]
    }

    pub fn is_running(&self, t: Timer) -> bool {
        self.get(t).is_some()
    }

    /// True once, when `t` runs and is due at `now`: it is stopped.
    pub fn expire(&mut self, t: Timer, now: Instant) -> bool {
        let due = self.get(t).is_some_and(|at| at <= now);
        if due {
            self.stop(t);
        }
        due
    }

    /// The earliest deadline of the table.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }
}

impl Connection {
    pub(super) fn on_subflow_rto(&mut self, now: Instant, j: usize, ctx: &mut Ctx<'_>) {
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
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::*;
    use crate::stack::{Config, Duration, Endpoint, Instant};

    #[test]
    fn the_data_fin_timer_runs_until_the_data_ack() {
        let mut p = pair(Config::default());
        let (h, sh) = open(&mut p);
        let _ = p.s.recv(sh, &mut [0u8; 8]);
        assert_eq!(p.c.close(h), Ok(()));
        p.flush();
        let c = conn(&p.c, h);
        assert!(c.timers.is_running(Timer::DataFin), "armed with the DATA_FIN: {:?}", c.timers);
        p.drive(p.now + Duration::from_millis(100));
        let c = conn(&p.c, h);
        assert!(c.fin.dfin_acked && !c.timers.is_running(Timer::DataFin));
        assert_eq!(c.fin.dfin_tries, 0, "no resend was needed");
    }

    #[test]
    fn the_persist_timer_backs_off_up_to_the_max_rto() {
        let mut p = pair(Config::default());
        p.c = Endpoint::new(Config { recv_buffer: 16 << 10, ..Config::default() }, 11);
        assert!(p.c.add_address("10.0.1.1".parse().unwrap_or_else(|e| panic!("{e}")), Default::default()).is_ok());
        let (_, sh) = open(&mut p);
        let down = data(1 << 20);
        let mut sent = 0;
        // The client never reads: the window shuts.
        p.drive_with(Instant::from_secs(300), |p| sent += p.s.send(sh, &down[sent..]).unwrap_or(0));
        let s = conn(&p.s, sh);
        let max_rto = s.tcb_params.max_rto;
        let at = s.timers.get(Timer::Persist).unwrap_or_else(|| panic!("probing: {:?}", s.timers));
        assert!(s.snd.persist_backoff >= 5, "{} probes", s.snd.persist_backoff);
        assert!(at.saturating_since(p.now) <= max_rto, "next probe in {:?}", at.saturating_since(p.now));
    }

    #[test]
    fn next_timeout_is_the_earliest_running_timer() {
        let mut t = TimerTable::default();
        assert_eq!(t.next_timeout(), None);
        t.set(Timer::Persist, Instant::from_millis(30));
        t.set(Timer::DataFin, Instant::from_millis(20));
        assert_eq!(t.next_timeout(), Some(Instant::from_millis(20)));
        t.stop(Timer::DataFin);
        assert_eq!(t.next_timeout(), Some(Instant::from_millis(30)));
        assert!(!t.is_running(Timer::MpFail) && t.is_running(Timer::Persist));
    }

    #[test]
    fn a_timer_expires_once_and_only_when_due() {
        let mut t = TimerTable::default();
        t.set(Timer::MpFail, Instant::from_millis(10));
        assert!(!t.expire(Timer::MpFail, Instant::from_millis(9)));
        assert!(t.expire(Timer::MpFail, Instant::from_millis(10)));
        assert!(!t.expire(Timer::MpFail, Instant::from_millis(11)));
        assert_eq!(t.get(Timer::MpFail), None);
    }

    #[test]
    fn backed_off_deadlines_double_up_to_the_ceiling() {
        let mut t = TimerTable::default();
        let (now, rto, max) = (Instant::from_secs(1), Duration::from_secs(1), Duration::from_secs(60));
        let at: Vec<u64> = (0..8)
            .map(|n| {
                t.set_backed_off(Timer::DataFin, now, rto, n, max);
                t.get(Timer::DataFin).map_or(0, |a| a.as_millis())
            })
            .collect();
        assert_eq!(at, vec![2000, 3000, 5000, 9000, 17000, 33000, 61000, 61000]);
    }
}
