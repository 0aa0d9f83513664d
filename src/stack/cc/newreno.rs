//! NewReno (RFC 5681 slow start and congestion avoidance, RFC 6582 recovery
//! window), counting bytes (RFC 3465 appropriate byte counting, L = 2*SMSS).

use super::{Controller, initial_window};
use crate::stack::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct NewReno {
    mss: usize,
    cwnd: usize,
    ssthresh: usize,
    /// Bytes acknowledged since cwnd last grew in congestion avoidance.
    acc: usize,
}

impl NewReno {
    pub fn new(mss: usize) -> NewReno {
        NewReno { mss, cwnd: initial_window(mss), ssthresh: usize::MAX, acc: 0 }
    }
}

impl Controller for NewReno {
    fn on_ack(&mut self, _now: Instant, acked: usize, _srtt: Option<Duration>, in_flight: usize) {
        // RFC 7661 spirit: do not grow a window the sender is not using.
        if in_flight + 3 * self.mss < self.cwnd && self.cwnd >= self.ssthresh {
            return;
        }
        if self.cwnd < self.ssthresh {
            // RFC 5681 §3.1 (3.2) with RFC 3465 L=2*SMSS... for large ACKs
            // that cover a whole flight we grow by what was acked.
            self.cwnd += acked.min(self.cwnd);
        } else {
            // cwnd += SMSS per cwnd of bytes acked (RFC 5681 §3.1 (3.3) alternative).
            self.acc += acked;
            while self.acc >= self.cwnd {
                self.acc -= self.cwnd;
                self.cwnd += self.mss;
            }
        }
    }

    fn on_congestion(&mut self, _now: Instant, in_flight: usize) {
        // RFC 5681 (4): ssthresh = max(FlightSize / 2, 2*SMSS).
        self.ssthresh = (in_flight / 2).max(2 * self.mss);
        self.cwnd = self.ssthresh;
        self.acc = 0;
    }

    fn on_rto(&mut self, _now: Instant, in_flight: usize) {
        self.ssthresh = (in_flight / 2).max(2 * self.mss);
        self.cwnd = self.mss;
        self.acc = 0;
    }

    fn on_recovery_end(&mut self, _now: Instant) {
        // RFC 6582 §3.2 (3): deflate to ssthresh.
        self.cwnd = self.ssthresh.max(2 * self.mss);
    }

    fn window(&self) -> usize {
        self.cwnd
    }
    fn ssthresh(&self) -> usize {
        self.ssthresh
    }
    fn set_mss(&mut self, mss: usize) {
        if self.cwnd == initial_window(self.mss) {
            self.cwnd = initial_window(mss);
        }
        self.mss = mss;
    }
    fn exit_slow_start(&mut self) {
        self.ssthresh = self.cwnd;
    }
    fn name(&self) -> &'static str {
        "newreno"
    }
}
