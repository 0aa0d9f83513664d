//! Packet schedulers: which subflow carries the next chunk of new data
//! (RFC 8684 §3.3.8 leaves the policy to the implementation).
//!
//! - `default`: the lowest smoothed RTT among subflows with congestion-window
//!   room; backup subflows only when no regular subflow is usable at all
//!   (the Linux kernel's default scheduler works this way).
//! - `roundrobin`: usable subflows in turn, one segment each.
//! - `redundant`: every chunk goes out on every usable subflow.

/// What a scheduler sees of a subflow.
#[derive(Clone, Copy, Debug)]
pub struct SubflowView {
    /// Index in the connection's subflow list.
    pub index: usize,
    /// Smoothed RTT in microseconds (None before the first sample).
    pub srtt_us: Option<u64>,
    /// Congestion-window room in bytes.
    pub room: usize,
    /// Backup (either side asked, RFC 8684 §3.3.8).
    pub backup: bool,
    /// Established, MPTCP-ready and not stale.
    pub usable: bool,
}

/// The scheduler's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Send on this subflow.
    One(usize),
    /// Send on this subflow and queue copies for every other usable one.
    Redundant(usize),
    /// Nothing can be sent now.
    None,
}

/// A scheduler.
pub trait Scheduler: core::fmt::Debug + Send {
    fn pick(&mut self, subflows: &[SubflowView]) -> Pick;
    fn name(&self) -> &'static str;
}

/// Which scheduler a connection gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SchedulerKind {
    #[default]
    Default,
    RoundRobin,
    Redundant,
}

impl SchedulerKind {
    pub fn build(self) -> Box<dyn Scheduler> {
        match self {
            SchedulerKind::Default => Box::new(LowestRtt),
            SchedulerKind::RoundRobin => Box::new(RoundRobin { next: 0 }),
            SchedulerKind::Redundant => Box::new(Redundant),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            SchedulerKind::Default => "default",
            SchedulerKind::RoundRobin => "roundrobin",
            SchedulerKind::Redundant => "redundant",
        }
    }
}

impl core::str::FromStr for SchedulerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<SchedulerKind, String> {
        match s.to_ascii_lowercase().as_str() {
            "default" | "lowrtt" | "minrtt" => Ok(SchedulerKind::Default),
            "roundrobin" | "rr" | "round-robin" => Ok(SchedulerKind::RoundRobin),
            "redundant" => Ok(SchedulerKind::Redundant),
            other => Err(format!("unknown scheduler {other:?} (known: default, roundrobin, redundant)")),
        }
    }
}

/// The candidates of the tier to use: regular subflows, or backups when no
/// regular subflow is usable.
fn tier(subflows: &[SubflowView]) -> impl Iterator<Item = &SubflowView> {
    let any_regular = subflows.iter().any(|s| s.usable && !s.backup);
    subflows.iter().filter(move |s| s.usable && s.backup != any_regular)
}

#[derive(Debug)]
pub struct LowestRtt;

impl Scheduler for LowestRtt {
    fn pick(&mut self, subflows: &[SubflowView]) -> Pick {
        tier(subflows)
            .filter(|s| s.room > 0)
            .min_by_key(|s| (s.srtt_us.unwrap_or(u64::MAX), s.index))
            .map_or(Pick::None, |s| Pick::One(s.index))
    }
    fn name(&self) -> &'static str {
        "default"
    }
}

#[derive(Debug)]
pub struct RoundRobin {
    next: usize,
}

impl Scheduler for RoundRobin {
    fn pick(&mut self, subflows: &[SubflowView]) -> Pick {
        // The first candidate with room at or after `next`, wrapping around.
        let cands = || tier(subflows).filter(|s| s.room > 0).map(|s| s.index);
        let pick = cands().filter(|&i| i >= self.next).min().or_else(|| cands().min());
        match pick {
            Some(i) => {
                self.next = i + 1;
                Pick::One(i)
            }
            None => Pick::None,
        }
    }
    fn name(&self) -> &'static str {
        "roundrobin"
    }
}

#[derive(Debug)]
pub struct Redundant;

impl Scheduler for Redundant {
    fn pick(&mut self, subflows: &[SubflowView]) -> Pick {
        tier(subflows)
            .filter(|s| s.room > 0)
            .min_by_key(|s| (s.srtt_us.unwrap_or(u64::MAX), s.index))
            .map_or(Pick::None, |s| Pick::Redundant(s.index))
    }
    fn name(&self) -> &'static str {
        "redundant"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(index: usize, rtt: u64, room: usize, backup: bool) -> SubflowView {
        SubflowView { index, srtt_us: Some(rtt), room, backup, usable: true }
    }

    #[test]
    fn default_prefers_low_rtt_with_room_and_avoids_backup() {
        let mut s = LowestRtt;
        let subs = [v(0, 50, 1000, false), v(1, 10, 1000, false), v(2, 1, 1000, true)];
        assert_eq!(s.pick(&subs), Pick::One(1));
        let subs = [v(0, 50, 1000, false), v(1, 10, 0, false), v(2, 1, 1000, true)];
        assert_eq!(s.pick(&subs), Pick::One(0));
        // Regular subflows exist but are full: wait rather than use the backup.
        let subs = [v(0, 50, 0, false), v(2, 1, 1000, true)];
        assert_eq!(s.pick(&subs), Pick::None);
        // No regular subflow usable: the backup carries data.
        let mut dead = v(0, 50, 1000, false);
        dead.usable = false;
        assert_eq!(s.pick(&[dead, v(2, 1, 1000, true)]), Pick::One(2));
    }

    #[test]
    fn roundrobin_rotates() {
        let mut s = RoundRobin { next: 0 };
        let subs = [v(0, 50, 1000, false), v(1, 10, 1000, false)];
        assert_eq!(s.pick(&subs), Pick::One(0));
        assert_eq!(s.pick(&subs), Pick::One(1));
        assert_eq!(s.pick(&subs), Pick::One(0));
    }
}
