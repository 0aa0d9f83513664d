//! The stack's own clock types: microseconds since an arbitrary origin chosen
//! by the driver. The protocol core never reads a clock; every entry point
//! takes `now: Instant`.

use core::fmt;
use core::ops::{Add, AddAssign, Mul, Sub};

/// A point in time, in microseconds since the driver's origin.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

/// A span of time, in microseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(u64);

impl Instant {
    pub const ZERO: Instant = Instant(0);

    pub const fn from_micros(us: u64) -> Instant {
        Instant(us)
    }
    pub const fn from_millis(ms: u64) -> Instant {
        Instant(ms * 1000)
    }
    pub const fn from_secs(s: u64) -> Instant {
        Instant(s * 1_000_000)
    }
    pub const fn as_micros(self) -> u64 {
        self.0
    }
    pub const fn as_millis(self) -> u64 {
        self.0 / 1000
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// `self - earlier`, or zero when `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    pub const ZERO: Duration = Duration(0);
    pub const MAX: Duration = Duration(u64::MAX);

    pub const fn from_micros(us: u64) -> Duration {
        Duration(us)
    }
    pub const fn from_millis(ms: u64) -> Duration {
        Duration(ms * 1000)
    }
    pub const fn from_secs(s: u64) -> Duration {
        Duration(s * 1_000_000)
    }
    pub const fn as_micros(self) -> u64 {
        self.0
    }
    pub const fn as_millis(self) -> u64 {
        self.0 / 1000
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    pub fn min(self, o: Duration) -> Duration {
        if self.0 <= o.0 { self } else { o }
    }
    pub fn max(self, o: Duration) -> Duration {
        if self.0 >= o.0 { self } else { o }
    }
    pub fn saturating_mul(self, k: u64) -> Duration {
        Duration(self.0.saturating_mul(k))
    }

    /// The one backoff rule of the stack's retransmission timers (RFC 6298
    /// §5.5: each expiry doubles the timeout; §2.5: a maximum may be placed
    /// on it, at least 60 s): `self * 2^n`, the doublings counted up to
    /// [`MAX_DOUBLINGS`], clamped to `ceiling`.
    pub fn backed_off(self, n: u32, ceiling: Duration) -> Duration {
        self.saturating_mul(1u64 << n.min(MAX_DOUBLINGS)).min(ceiling)
    }
}

/// Doublings [`Duration::backed_off`] counts at most (the clamp decides
/// long before with any sane base).
pub const MAX_DOUBLINGS: u32 = 16;

impl From<core::time::Duration> for Duration {
    fn from(d: core::time::Duration) -> Duration {
        Duration(d.as_micros().min(u64::MAX as u128) as u64)
    }
}

impl From<Duration> for core::time::Duration {
    fn from(d: Duration) -> core::time::Duration {
        core::time::Duration::from_micros(d.0)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }
}
impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        self.0 = self.0.saturating_add(d.0);
    }
}
impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(d.0))
    }
}
/// Saturates at zero when `rhs` is later.
impl Sub for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        Duration(self.0.saturating_sub(rhs.0))
    }
}
impl Add for Duration {
    type Output = Duration;
    fn add(self, d: Duration) -> Duration {
        Duration(self.0.saturating_add(d.0))
    }
}
impl Sub for Duration {
    type Output = Duration;
    fn sub(self, d: Duration) -> Duration {
        Duration(self.0.saturating_sub(d.0))
    }
}
impl Mul<u64> for Duration {
    type Output = Duration;
    fn mul(self, k: u64) -> Duration {
        Duration(self.0.saturating_mul(k))
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}
impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 % 1000 == 0 { write!(f, "{}ms", self.0 / 1000) } else { write!(f, "{}us", self.0) }
    }
}
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(5);
        assert_eq!(t + Duration::from_millis(1), Instant::from_micros(6000));
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(t - Instant::from_millis(2), Duration::from_millis(3));
        assert_eq!(format!("{:?}", Duration::from_millis(40)), "40ms");
    }

    #[test]
    fn backoff_doubles_then_clamps() {
        let (rto, max) = (Duration::from_millis(300), Duration::from_secs(60));
        let got: Vec<u64> = (0..10).map(|n| rto.backed_off(n, max).as_millis()).collect();
        assert_eq!(got, vec![300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 60000, 60000]);
        // The doublings stop counting at MAX_DOUBLINGS; nothing overflows.
        let tiny = Duration::from_micros(1);
        assert_eq!(tiny.backed_off(40, Duration::MAX), tiny.backed_off(MAX_DOUBLINGS, Duration::MAX));
        assert_eq!(Duration::MAX.backed_off(3, Duration::MAX), Duration::MAX);
    }
}
