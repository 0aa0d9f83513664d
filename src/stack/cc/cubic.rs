//! CUBIC (RFC 9438): W_cubic(t) = C*(t-K)^3 + W_max in segments, t in
//! seconds, C = 0.4, beta = 0.7, with fast convergence (§4.7) and the
//! Reno-friendly region (§4.3).

use super::{Controller, initial_window};
use crate::stack::time::{Duration, Instant};

const C: f64 = 0.4;
const BETA: f64 = 0.7;

#[derive(Debug, Clone)]
pub struct Cubic {
    mss: usize,
    cwnd: usize,
    ssthresh: usize,
    /// W_max in segments.
    w_max: f64,
    /// W_max before the last reduction (fast convergence).
    w_last_max: f64,
    k: f64,
    epoch: Option<Instant>,
    /// The Reno-friendly estimate W_est, in segments (§4.3).
    w_est: f64,
    cwnd_at_epoch: f64,
    acc: usize,
}

impl Cubic {
    pub fn new(mss: usize) -> Cubic {
        Cubic {
            mss,
            cwnd: initial_window(mss),
            ssthresh: usize::MAX,
            w_max: 0.0,
            w_last_max: 0.0,
            k: 0.0,
            epoch: None,
            w_est: 0.0,
            cwnd_at_epoch: 0.0,
            acc: 0,
        }
    }

    fn segs(&self) -> f64 {
        self.cwnd as f64 / self.mss as f64
    }

    fn reduce(&mut self) {
        let cwnd = self.segs();
        // §4.7 fast convergence.
        if cwnd < self.w_last_max {
            self.w_last_max = cwnd;
            self.w_max = cwnd * (1.0 + BETA) / 2.0;
        } else {
            self.w_last_max = cwnd;
            self.w_max = cwnd;
        }
        self.ssthresh = ((cwnd * BETA) as usize * self.mss).max(2 * self.mss);
        self.epoch = None;
        self.acc = 0;
    }
}

impl Controller for Cubic {
    fn on_ack(&mut self, now: Instant, acked: usize, srtt: Option<Duration>, in_flight: usize) {
        if in_flight + 3 * self.mss < self.cwnd && self.cwnd >= self.ssthresh {
            // Application-limited (§5.8): do not grow, and restart the epoch.
            self.epoch = None;
            return;
        }
        if self.cwnd < self.ssthresh {
            self.cwnd += acked.min(self.cwnd);
            return;
        }
        let epoch = match self.epoch {
            Some(e) => e,
            None => {
                self.epoch = Some(now);
                if self.w_max < self.segs() {
                    self.w_max = self.segs();
                    self.k = 0.0;
                } else {
                    self.k = (self.w_max * (1.0 - BETA) / C).cbrt();
                }
                self.w_est = self.segs();
                self.cwnd_at_epoch = self.segs();
                now
            }
        };
        let rtt = srtt.map_or(0.1, |d| d.as_secs_f64());
        let t = (now - epoch).as_secs_f64() + rtt;
        let target = C * (t - self.k).powi(3) + self.w_max;
        let acked_segs = acked as f64 / self.mss as f64;
        // §4.3: W_est += alpha * segments_acked / cwnd.
        let alpha = 3.0 * (1.0 - BETA) / (1.0 + BETA);
        self.w_est += alpha * acked_segs / self.segs();
        let cwnd = self.segs();
        let next = if self.w_est > target {
            self.w_est
        } else {
            // §4.4/4.5: grow by (target - cwnd)/cwnd per acked segment,
            // at most 1.5x per RTT.
            let t = target.min(1.5 * cwnd);
            if t > cwnd { cwnd + (t - cwnd) / cwnd * acked_segs } else { cwnd }
        };
        let bytes = (next * self.mss as f64) as usize;
        if bytes > self.cwnd {
            self.cwnd = bytes;
        }
    }

    fn on_congestion(&mut self, _now: Instant, _in_flight: usize) {
        let slow_start = self.cwnd < self.ssthresh;
        self.reduce();
        if slow_start {
            // A loss in slow start: the window overshot by up to twice the
            // path; halve it (RFC 5681's FlightSize/2) rather than take 30%.
            self.ssthresh = (self.cwnd / 2).max(2 * self.mss);
            self.w_max = self.ssthresh as f64 / self.mss as f64;
            self.w_last_max = self.w_max;
        }
        self.cwnd = self.ssthresh;
    }

    fn on_rto(&mut self, _now: Instant, _in_flight: usize) {
        self.reduce();
        self.cwnd = self.mss;
    }

    fn on_recovery_end(&mut self, _now: Instant) {
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
        self.epoch = None;
        self.w_max = self.segs();
        self.w_last_max = self.segs();
    }
    fn name(&self) -> &'static str {
        "cubic"
    }
}
