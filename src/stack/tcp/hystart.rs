//! When slow start ends: HyStart++ delay increase detection (RFC 9406
//! §4.2, without its conservative slow-start phase) and Linux's HyStart
//! "ACK train" signal. The controller's window is the TCB's; this type
//! only says when to leave slow start.

use crate::seq::SubflowSeq;
use crate::stack::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub(super) struct HyStart {
    /// End of the current round (the highest sequence sent when it began).
    round_end: SubflowSeq,
    /// Minimum RTT of this round and of the last.
    cur_min: Option<Duration>,
    last_min: Option<Duration>,
    /// RTT samples this round.
    samples: u32,
    /// When the first ACK of the current round arrived (the ACK train).
    round_start: Instant,
    last_ack: Instant,
}

/// What one RTT sample in slow start needs to know of the subflow.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sample {
    pub rtt: Duration,
    /// The cumulative ACK that gave the sample.
    pub ack: SubflowSeq,
    pub snd_nxt: SubflowSeq,
    /// The minimum RTT seen, this sample included.
    pub min_rtt: Option<Duration>,
    pub cwnd: usize,
    pub mss: usize,
}

impl HyStart {
    pub(super) fn new(iss: SubflowSeq, now: Instant) -> HyStart {
        HyStart { round_end: iss, cur_min: None, last_min: None, samples: 0, round_start: now, last_ack: now }
    }

    /// An RTT sample taken in slow start at `now`. Returns whether slow
    /// start should end: this round's minimum RTT exceeds the last round's
    /// by max(4 ms, min(16 ms, last/8)) over 8 samples, or the ACK train
    /// of this round (ACKs at most 2 ms apart) already spans half the
    /// minimum RTT with a window of 16 segments (the window fills the path).
    pub(super) fn on_sample(&mut self, now: Instant, s: Sample) -> bool {
        if s.ack >= self.round_end {
            self.last_min = self.cur_min;
            self.cur_min = None;
            self.samples = 0;
            self.round_end = s.snd_nxt;
            self.round_start = now;
            self.last_ack = now;
        }
        if now - self.last_ack <= Duration::from_millis(2) {
            self.last_ack = now;
            if let Some(min) = s.min_rtt
                && s.cwnd >= 16 * s.mss
                && now - self.round_start >= Duration::from_micros(min.as_micros() / 2)
            {
                return true;
            }
        }
        self.cur_min = Some(self.cur_min.map_or(s.rtt, |m| m.min(s.rtt)));
        self.samples += 1;
        if self.samples >= 8
            && let (Some(cur), Some(last)) = (self.cur_min, self.last_min)
        {
            let thresh = Duration::from_micros((last.as_micros() / 8).clamp(4000, 16000));
            return cur >= last + thresh;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rtt_ms: u64, ack: u32, snd_nxt: u32) -> Sample {
        Sample {
            rtt: Duration::from_millis(rtt_ms),
            ack: SubflowSeq(ack),
            snd_nxt: SubflowSeq(snd_nxt),
            min_rtt: Some(Duration::from_millis(50)),
            cwnd: 10_000,
            mss: 1000,
        }
    }

    #[test]
    fn a_delay_increase_over_a_round_ends_slow_start() {
        let mut h = HyStart::new(SubflowSeq(0), Instant::ZERO);
        // Round 1: 8 samples at 50 ms, ACKs 10 ms apart (no ACK train).
        let mut t = Instant::from_millis(100);
        assert!(!h.on_sample(t, sample(50, 1, 100)), "a round begins");
        for k in 0..8 {
            t += Duration::from_millis(10);
            assert!(!h.on_sample(t, sample(50, 2 + k, 100)));
        }
        // Round 2 at 52 ms: below the 6.25 ms threshold.
        t += Duration::from_millis(10);
        assert!(!h.on_sample(t, sample(52, 100, 200)));
        for k in 0..7 {
            t += Duration::from_millis(10);
            assert!(!h.on_sample(t, sample(52, 101 + k, 200)), "sample {k}");
        }
        // Round 3 at 59 ms: 7 ms over round 2's 52 ms (threshold 6.5 ms):
        // the eighth sample of the round ends slow start.
        t += Duration::from_millis(10);
        assert!(!h.on_sample(t, sample(59, 200, 300)));
        for k in 0..6 {
            t += Duration::from_millis(10);
            assert!(!h.on_sample(t, sample(59, 201 + k, 300)), "sample {k}");
        }
        t += Duration::from_millis(10);
        assert!(h.on_sample(t, sample(59, 207, 300)), "eighth sample, 7 ms over");
    }

    #[test]
    fn an_ack_train_of_half_the_rtt_ends_slow_start() {
        let mut h = HyStart::new(SubflowSeq(0), Instant::ZERO);
        let start = Instant::from_millis(100);
        let sample = |rtt, ack, nxt| Sample { cwnd: 16_000, ..sample(rtt, ack, nxt) };
        assert!(!h.on_sample(start, sample(50, 1, 1000)));
        let mut t = start;
        // ACKs 1 ms apart: the train spans 25 ms (half of 50) after 25 of them.
        for k in 1..25 {
            t += Duration::from_millis(1);
            assert!(!h.on_sample(t, sample(50, 1 + k, 1000)), "{k} ms");
        }
        t += Duration::from_millis(1);
        assert!(h.on_sample(t, sample(50, 26, 1000)));
        // A small window never counts as a full path.
        let mut h = HyStart::new(SubflowSeq(0), Instant::ZERO);
        let small = |ack| Sample { cwnd: 15_000, ..sample(50, ack, 1000) };
        assert!(!h.on_sample(start, small(1)));
        for k in 1..40 {
            assert!(!h.on_sample(start + Duration::from_millis(k), small(1 + k as u32)));
        }
    }
}
