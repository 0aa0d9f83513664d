//! A test harness for the stack (after quinn-proto's `Pair`): two
//! [`Endpoint`]s wired back to back in virtual time, a one-way delay between
//! them, and every packet in flight kept in a queue the test may edit (drop,
//! reorder, duplicate, corrupt) between steps.
//!
//! [`Pair::step`] does one round: the application hook, both sides' output
//! onto the wire, then time jumps to the earliest wakeup (a packet's arrival
//! or a timer) and what is due is handled. [`Pair::drive`] repeats it until
//! nothing is due before a limit, and leaves the clock at that limit.
//!
//! Used by the integration tests (`tests/stack_*.rs`) and the unit tests of
//! `stack::conn` and `stack::endpoint`; not part of the stable API.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use super::endpoint::MAX_HEADERS;
use super::{AddrFlags, Config, ConnHandle, Duration, Endpoint, Event, Instant};

/// A packet on the wire between the two endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InFlight {
    /// When it arrives.
    pub at: Instant,
    /// Towards the server (sent by the client)?
    pub to_server: bool,
    /// The whole IP packet.
    pub packet: Vec<u8>,
}

/// Which packets the wire carries: `(from the client?, packet) -> keep?`.
pub type Keep = fn(bool, &[u8]) -> bool;

/// Rounds [`Pair::drive`] runs before it decides the two sides never go
/// quiet (a livelock is a bug the test should see, not a hang).
pub const MAX_STEPS: usize = 10_000_000;

/// Two endpoints and the wire between them.
pub struct Pair {
    /// The client side.
    pub c: Endpoint,
    /// The server side.
    pub s: Endpoint,
    /// The virtual clock, only moved forward.
    pub now: Instant,
    /// One-way delay of the wire (both directions).
    pub delay: Duration,
    /// Packets in flight, in arrival order (edit it to lose or reorder).
    pub wire: VecDeque<InFlight>,
    /// Every packet either side sent, kept or not: (from the client?, packet).
    pub log: Vec<(bool, Vec<u8>)>,
    /// Events taken from the endpoints so far: (client?, event).
    pub events: Vec<(bool, Event)>,
    /// Filter of what the wire carries (all by default).
    pub keep: Keep,
}

impl Pair {
    /// Two endpoints as given, no delay, the wire carrying everything.
    pub fn new(c: Endpoint, s: Endpoint) -> Pair {
        Pair {
            c,
            s,
            now: Instant::ZERO,
            delay: Duration::ZERO,
            wire: VecDeque::new(),
            log: Vec::new(),
            events: Vec::new(),
            keep: |_, _| true,
        }
    }

    /// IPv4: client 10.0.1.1 (seed 11), server 10.0.1.2 (seed 22) listening
    /// on port 80, both with `cfg`.
    pub fn v4(cfg: Config) -> Pair {
        let mut c = Endpoint::new(cfg.clone(), 11);
        let mut s = Endpoint::new(cfg, 22);
        let ok = c.add_address(IpAddr::from([10, 0, 1, 1]), AddrFlags::default()).is_ok()
            && s.add_address(IpAddr::from([10, 0, 1, 2]), AddrFlags::default()).is_ok()
            && s.listen(SocketAddr::from(([0, 0, 0, 0], 80))).is_ok();
        assert!(ok, "a fresh endpoint takes its first address and a listener");
        Pair::new(c, s)
    }

    /// The same pair with a one-way delay of `d`.
    pub fn with_delay(mut self, d: Duration) -> Pair {
        self.delay = d;
        self
    }

    /// Both sides' output onto the wire (headers into a buffer of exactly
    /// [`MAX_HEADERS`] bytes, the payload by reference, as the TUN driver and
    /// the simulator write it), then their events into `events`.
    pub fn flush(&mut self) {
        let mut buf = vec![0u8; MAX_HEADERS];
        for client in [true, false] {
            let ep = if client { &mut self.c } else { &mut self.s };
            while let Some((t, payload)) = ep.poll_transmit_parts(self.now, &mut buf) {
                let mut p = buf[..t.len].to_vec();
                if let Some(pl) = payload {
                    p.extend_from_slice(&pl);
                }
                self.log.push((client, p.clone()));
                if (self.keep)(client, &p) {
                    self.wire.push_back(InFlight { at: self.now + self.delay, to_server: client, packet: p });
                }
            }
        }
        self.take_events();
    }

    /// Move both endpoints' pending events into `events`.
    pub fn take_events(&mut self) {
        while let Some(e) = self.c.poll_event() {
            self.events.push((true, e));
        }
        while let Some(e) = self.s.poll_event() {
            self.events.push((false, e));
        }
    }

    /// The events one side has given so far.
    pub fn events_of(&self, client: bool) -> impl Iterator<Item = &Event> + '_ {
        self.events.iter().filter(move |(c, _)| *c == client).map(|(_, e)| e)
    }

    /// The earliest wakeup: the next arrival or either side's timer.
    pub fn next_wakeup(&self) -> Option<Instant> {
        [self.wire.front().map(|w| w.at), self.c.poll_timeout(), self.s.poll_timeout()].into_iter().flatten().min()
    }

    /// One round: `app`, output onto the wire, then the jump to the earliest
    /// wakeup if it is at or before `limit`, delivering what has arrived and
    /// running the timers that are due. Returns false (clock untouched) when
    /// nothing is due by `limit`.
    pub fn step_with(&mut self, limit: Instant, app: &mut impl FnMut(&mut Pair)) -> bool {
        app(self);
        self.flush();
        let Some(t) = self.next_wakeup().filter(|t| *t <= limit) else {
            return false;
        };
        self.now = self.now.max(t);
        while self.wire.front().is_some_and(|w| w.at <= self.now) {
            let Some(w) = self.wire.pop_front() else { break };
            if w.to_server {
                self.s.handle_packet(self.now, &w.packet);
            } else {
                self.c.handle_packet(self.now, &w.packet);
            }
        }
        if self.c.poll_timeout().is_some_and(|x| x <= self.now) {
            self.c.handle_timeout(self.now);
        }
        if self.s.poll_timeout().is_some_and(|x| x <= self.now) {
            self.s.handle_timeout(self.now);
        }
        true
    }

    /// [`Pair::step_with`] without an application.
    pub fn step(&mut self, limit: Instant) -> bool {
        self.step_with(limit, &mut |_| {})
    }

    /// Run until nothing is due by `limit`, calling `app` before every
    /// round; the clock ends at `limit` (or later, if it already was).
    /// Panics after [`MAX_STEPS`] rounds.
    pub fn drive_with(&mut self, limit: Instant, mut app: impl FnMut(&mut Pair)) {
        for _ in 0..MAX_STEPS {
            if !self.step_with(limit, &mut app) {
                self.now = self.now.max(limit);
                return;
            }
        }
        panic!("no quiet point in {MAX_STEPS} rounds (now {:?})", self.now);
    }

    /// Run packets and timers until nothing is due by `limit`.
    pub fn drive(&mut self, limit: Instant) {
        self.drive_with(limit, |_| {});
    }

    /// Exchange packets at the current instant until both sides are quiet.
    pub fn drive_now(&mut self) {
        let now = self.now;
        self.drive(now);
    }

    /// Drop every packet in flight for which `lose` says so; returns how many.
    pub fn lose(&mut self, mut lose: impl FnMut(&InFlight) -> bool) -> usize {
        let before = self.wire.len();
        self.wire.retain(|w| !lose(w));
        before - self.wire.len()
    }

    /// Swap two packets in flight (their arrival times stay in place, so the
    /// queue stays sorted): a reorder. False if either index is out of range.
    pub fn swap(&mut self, i: usize, j: usize) -> bool {
        if i >= self.wire.len() || j >= self.wire.len() {
            return false;
        }
        let (a, b) = (self.wire[i].at, self.wire[j].at);
        self.wire.swap(i, j);
        self.wire[i].at = a;
        self.wire[j].at = b;
        true
    }

    /// The server's first accepted connection.
    pub fn accepted(&self) -> Option<ConnHandle> {
        self.events_of(false).find_map(|e| match e {
            Event::Accepted { conn, .. } => Some(*conn),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(p: &mut Pair) -> ConnHandle {
        let h = p.c.connect(p.now, None, SocketAddr::from(([10, 0, 1, 2], 80)));
        h.unwrap_or_else(|e| panic!("connect: {e}"))
    }

    #[test]
    fn a_handshake_takes_one_and_a_half_round_trips() {
        let mut p = Pair::v4(Config::default()).with_delay(Duration::from_millis(10));
        let h = connect(&mut p);
        p.drive(Instant::from_millis(100));
        assert_eq!(p.now, Instant::from_millis(100), "the clock ends at the limit");
        assert!(p.c.info(h).is_some_and(|i| i.mptcp));
        assert!(p.accepted().is_some());
        // SYN at 0, SYN/ACK at 10, third ACK at 20: three packets, no more.
        assert_eq!(p.log.len(), 3, "{} packets", p.log.len());
        assert!(p.wire.is_empty());
    }

    #[test]
    fn a_lost_syn_is_sent_again_after_the_initial_rto() {
        let mut p = Pair::v4(Config::default()).with_delay(Duration::from_millis(10));
        connect(&mut p);
        p.flush();
        assert_eq!(p.lose(|w| w.to_server), 1);
        // Nothing reaches the server before the SYN's retransmission (RFC 6298: 1 s).
        p.drive(Instant::from_millis(999));
        assert!(p.accepted().is_none() && p.log.len() == 1);
        p.drive(Instant::from_millis(1100));
        assert!(p.accepted().is_some());
        assert_eq!(p.log.iter().filter(|(c, _)| *c).count(), 2 + 1, "SYN, SYN again, third ACK");
    }

    #[test]
    fn swap_keeps_arrival_times_in_order() {
        let mut p = Pair::v4(Config::default()).with_delay(Duration::from_millis(10));
        for (i, at) in [5u64, 7].into_iter().enumerate() {
            p.wire.push_back(InFlight { at: Instant::from_millis(at), to_server: true, packet: vec![i as u8] });
        }
        assert!(p.swap(0, 1) && !p.swap(0, 2));
        let got: Vec<_> = p.wire.iter().map(|w| (w.at.as_millis(), w.packet[0])).collect();
        assert_eq!(got, vec![(5, 1), (7, 0)]);
    }
}
