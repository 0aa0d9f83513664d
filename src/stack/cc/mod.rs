//! Congestion control, per subflow: a small trait with NewReno (RFC 5681,
//! RFC 6582) and CUBIC (RFC 9438) behind it. The TCP engine owns loss
//! detection and recovery (RFC 6675); a controller only sizes the window.

mod cubic;
mod newreno;

pub use cubic::Cubic;
pub use newreno::NewReno;

use super::time::{Duration, Instant};

/// Initial window: min(10*MSS, max(2*MSS, 14600)) (RFC 6928 §2).
pub fn initial_window(mss: usize) -> usize {
    (10 * mss).min((2 * mss).max(14600))
}

/// A congestion controller. Windows are in bytes.
pub trait Controller: core::fmt::Debug + Send {
    /// New data was cumulatively acknowledged outside recovery.
    /// `in_flight` is what was outstanding before this ACK.
    fn on_ack(&mut self, now: Instant, acked: usize, srtt: Option<Duration>, in_flight: usize);
    /// Loss detected by duplicate ACKs or SACK: a fast-recovery episode
    /// starts. Sets ssthresh and cwnd (RFC 5681 §3.2 step 2, RFC 9438 §4.6).
    fn on_congestion(&mut self, now: Instant, in_flight: usize);
    /// The retransmission timer fired (RFC 5681 §3.1: cwnd to one segment).
    fn on_rto(&mut self, now: Instant, in_flight: usize);
    /// Fast recovery ended (a full ACK, RFC 6582 §3.2 step 3).
    fn on_recovery_end(&mut self, now: Instant);
    /// The congestion window.
    fn window(&self) -> usize;
    fn ssthresh(&self) -> usize;
    fn set_mss(&mut self, mss: usize);
    fn name(&self) -> &'static str;
    /// HyStart++ (RFC 9406) saw the RTT rise in slow start: leave it
    /// (ssthresh = cwnd) before the queue overflows.
    fn exit_slow_start(&mut self);
    fn in_slow_start(&self) -> bool {
        self.window() < self.ssthresh()
    }
}

/// Which controller a subflow gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CcKind {
    NewReno,
    #[default]
    Cubic,
}

impl CcKind {
    pub fn build(self, mss: usize) -> Box<dyn Controller> {
        match self {
            CcKind::NewReno => Box::new(NewReno::new(mss)),
            CcKind::Cubic => Box::new(Cubic::new(mss)),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            CcKind::NewReno => "newreno",
            CcKind::Cubic => "cubic",
        }
    }
}

impl core::str::FromStr for CcKind {
    type Err = String;
    fn from_str(s: &str) -> Result<CcKind, String> {
        match s.to_ascii_lowercase().as_str() {
            "newreno" | "reno" => Ok(CcKind::NewReno),
            "cubic" => Ok(CcKind::Cubic),
            other => Err(format!("unknown congestion control {other:?} (known: newreno, cubic)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(cc: &mut dyn Controller, mss: usize) {
        let mut now = Instant::ZERO;
        let rtt = Some(Duration::from_millis(50));
        let w0 = cc.window();
        assert_eq!(w0, initial_window(mss));
        // Slow start doubles per RTT.
        let w = cc.window();
        cc.on_ack(now, w, rtt, w);
        assert_eq!(cc.window(), 2 * w);
        cc.on_congestion(now, cc.window());
        let after = cc.window();
        assert!(after < 2 * w && after >= 2 * mss, "{} after loss", cc.name());
        assert_eq!(cc.ssthresh(), after);
        // Congestion avoidance grows slowly.
        for _ in 0..10 {
            now += Duration::from_millis(50);
            let w = cc.window();
            cc.on_ack(now, w, rtt, w);
        }
        assert!(cc.window() > after, "{} grows in CA", cc.name());
        cc.on_rto(now, cc.window());
        assert_eq!(cc.window(), mss);
    }

    #[test]
    fn newreno_and_cubic_basics() {
        drive(&mut NewReno::new(1000), 1000);
        drive(&mut Cubic::new(1000), 1000);
    }

    #[test]
    fn names_parse() {
        assert_eq!("reno".parse::<CcKind>().unwrap(), CcKind::NewReno);
        assert_eq!("CUBIC".parse::<CcKind>().unwrap(), CcKind::Cubic);
        assert!("bbr".parse::<CcKind>().is_err());
    }
}
