//! The ncat session rules of `mptcp-cat`, written once for every mode that
//! moves data through a connection (`--stack kernel`, `--stack embedded`).
//!
//! Each mode keeps its own poll loop (the kernel's sockets or our stack's
//! TUN and events) and its own way of opening connections and reporting
//! them; at every turn it hands each connection's [`ConnSession`] a
//! [`Transport`] (the connection's byte stream) and an [`Output`] (where
//! received bytes go), with the time, and acts on the [`Turn`] it gets back.
//!
//! The rules (both roles):
//! - standard input goes to the connection (to every connection with -k),
//!   the connection to standard output; -o/-x log both directions.
//! - standard input at EOF: the write side is shut down (a DATA_FIN,
//!   RFC 8684 §3.3.3), unless --no-shutdown; with --abort the connection is
//!   instead closed abortively (MP_FASTCLOSE, RFC 8684 §3.5) once all data
//!   is acknowledged at the data level.
//! - a connection ends when the peer has closed and everything from
//!   standard input was sent (or at once on the peer's close when standard
//!   input is a terminal); --recv-only ends when the peer closes;
//!   --send-only once standard input is sent; with -e/-c when the program
//!   exits (the mode watches the program).
//! - -i: a connection with nothing sent or received for that long fails.
//! - without -k a listener serves one client and turns the others away.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::sys;
use crate::sys::signals::Termination;

/// The command line's session flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    pub keep_open: bool,
    pub send_only: bool,
    pub recv_only: bool,
    pub no_shutdown: bool,
    pub abort: bool,
    pub idle_timeout: Option<Duration>,
    /// Standard input is a terminal: the peer's close ends the session.
    pub stdin_tty: bool,
}

impl Rules {
    /// Whether a listener that has `served` clients takes another one.
    pub fn admits(&self, served: usize) -> bool {
        self.keep_open || served == 0
    }

    /// Whether the whole run is over: no connection left, and nothing more
    /// to wait for (a client's one connection, or a listener without -k
    /// that has served its client).
    pub fn run_over(&self, listening: bool, served: usize, open: usize) -> bool {
        open == 0 && (!listening || !self.admits(served))
    }

    /// Whether standard input is read at all (--recv-only: never).
    pub fn reads_stdin(&self) -> bool {
        !self.recv_only
    }

    /// Whether the session's data goes on reading standard input: it is not
    /// at its end, no program takes the connections' data, some connection
    /// still sends, and none holds `high_water` bytes or more unsent.
    /// `conns` are the connections that take data, with their sessions.
    pub fn wants_stdin<'a>(
        &self,
        stdin_eof: bool,
        exec: bool,
        conns: impl Iterator<Item = &'a ConnSession> + Clone,
        high_water: usize,
    ) -> bool {
        !stdin_eof
            && !exec
            && conns.clone().any(|c| !c.tx_closed)
            && conns.into_iter().all(|c| c.pending() < high_water)
    }
}

/// A chunk read from a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    Data(usize),
    /// The peer closed its side (FIN, or DATA_FIN at the data level).
    Eof,
    /// Nothing to read now.
    Blocked,
}

/// A connection's byte stream, as a mode provides it.
pub trait Transport {
    type Error;
    /// Hand bytes to the connection; `Ok(0)` when it takes nothing now.
    fn send(&mut self, data: &[u8]) -> Result<usize, Self::Error>;
    /// Take received bytes.
    fn recv(&mut self, buf: &mut [u8]) -> Result<Received, Self::Error>;
    /// Shut our sending side (RFC 8684 §3.3.3 DATA_FIN).
    fn half_close(&mut self) -> Result<(), Self::Error>;
    /// Bytes sent and not yet acknowledged (asked with --abort only).
    fn unacked(&mut self) -> u64;
}

/// Why received data could not be delivered, or a chunk not logged: the
/// process's own failures, not a connection's.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("writing the -o/-x log: {0}")]
    Log(io::Error),
    #[error("standard output was closed")]
    StdoutClosed,
    #[error("writing standard output: {0}")]
    Stdout(io::Error),
}

/// Where a connection's bytes are logged and delivered.
pub trait Output {
    /// ncat's -o/-x logs: every chunk, either way.
    fn record(&mut self, data: &[u8]) -> io::Result<()>;
    /// Received bytes to their destination; `false`: stop receiving for
    /// this turn (the destination is full).
    fn deliver(&mut self, data: &[u8]) -> Result<bool, OutputError>;
    /// Whether the destination takes data now.
    fn ready(&self) -> bool {
        true
    }
}

/// Standard output (nothing with --send-only) beside the -o/-x logs.
pub struct Stdout<'a, L: ?Sized> {
    pub log: &'a mut L,
    pub send_only: bool,
}

/// Where the session data is logged besides standard output (-o, -x).
pub trait Log {
    /// A chunk that went either way.
    fn record(&mut self, data: &[u8]) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

impl<L: Log + ?Sized> Output for Stdout<'_, L> {
    fn record(&mut self, data: &[u8]) -> io::Result<()> {
        self.log.record(data)
    }
    fn deliver(&mut self, data: &[u8]) -> Result<bool, OutputError> {
        if !self.send_only {
            write_stdout(data)?;
        }
        Ok(true)
    }
}

/// Write received bytes to standard output (giving up on a termination signal).
pub fn write_stdout(data: &[u8]) -> Result<(), OutputError> {
    sys::write_all_fd(1, data, &Termination::pending).map_err(|e| {
        if e.raw_os_error() == Some(libc::EPIPE) { OutputError::StdoutClosed } else { OutputError::Stdout(e) }
    })
}

/// What one read of standard input gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    Data(usize),
    Eof,
    Nothing,
}

/// Read standard input once (a closed descriptor is its end).
pub fn read_stdin(buf: &mut [u8]) -> io::Result<Input> {
    match sys::read_fd(0, buf) {
        Ok(0) => Ok(Input::Eof),
        Ok(n) => Ok(Input::Data(n)),
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => Ok(Input::Nothing),
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => Ok(Input::Eof),
        Err(e) => Err(e),
    }
}

/// How a connection's session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End<E> {
    /// By the rules above.
    Done,
    /// --abort: everything sent is acknowledged; close abortively now.
    Acknowledged,
    /// -i: nothing sent or received for this long.
    Idle(Duration),
    /// The transport failed.
    Failed(E),
}

/// What a turn of [`ConnSession::step`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Turn<E> {
    /// The write side was shut (or left open by --no-shutdown) in this turn.
    pub half_closed: bool,
    /// The peer's end of stream arrived in this turn.
    pub peer_closed: bool,
    pub end: Option<End<E>>,
}

impl<E> Turn<E> {
    fn new() -> Turn<E> {
        Turn { half_closed: false, peer_closed: false, end: None }
    }
    fn ended(mut self, end: End<E>) -> Turn<E> {
        self.end = Some(end);
        self
    }
}

/// One connection's session: what is queued for it, what it did.
#[derive(Clone, Debug)]
pub struct ConnSession {
    tx: Vec<u8>,
    tx_off: usize,
    /// The peer's end of stream was read.
    pub rx_eof: bool,
    /// The write side was dealt with (shut down, or left open by --no-shutdown).
    pub tx_closed: bool,
    pub sent: u64,
    pub received: u64,
    /// A -e/-c program runs for this connection: its exit, watched by the
    /// mode, ends the session, not these rules.
    pub program: bool,
    last_activity: Instant,
    started: Instant,
}

impl ConnSession {
    pub fn new(now: Instant) -> ConnSession {
        ConnSession {
            tx: Vec::new(),
            tx_off: 0,
            rx_eof: false,
            tx_closed: false,
            sent: 0,
            received: 0,
            program: false,
            last_activity: now,
            started: now,
        }
    }

    /// Bytes queued and not yet taken by the connection.
    pub fn pending(&self) -> usize {
        self.tx.len() - self.tx_off
    }

    /// Queue bytes (from standard input or the program) for sending.
    pub fn queue(&mut self, data: &[u8]) {
        if self.tx_off == self.tx.len() {
            self.tx.clear();
            self.tx_off = 0;
        }
        self.tx.extend_from_slice(data);
    }

    /// Count `now` as activity (the handshake completing, for -i).
    pub fn touch(&mut self, now: Instant) {
        self.last_activity = now;
    }

    /// How long since the session began.
    pub fn age(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// With -i, the time left before the idle timeout fires (at least 1 ms,
    /// for a poll timeout).
    pub fn idle_left(&self, rules: &Rules, now: Instant) -> Option<Duration> {
        let idle = rules.idle_timeout?;
        Some(idle.saturating_sub(now.saturating_duration_since(self.last_activity)).max(Duration::from_millis(1)))
    }

    /// Whether --abort waits for the acknowledgement of the last data (the
    /// mode polls closely then).
    pub fn awaiting_abort(&self, rules: &Rules, input_eof: bool) -> bool {
        rules.abort && input_eof && self.pending() == 0
    }

    /// One turn: send what is queued, shut the write side once the input is
    /// finished and sent, receive into `out`, and decide whether the
    /// session ended. `input_eof`: standard input (or the program's output)
    /// has ended. `buf` is scratch for receiving.
    pub fn step<T: Transport>(
        &mut self,
        rules: &Rules,
        t: &mut T,
        out: &mut dyn Output,
        buf: &mut [u8],
        input_eof: bool,
        now: Instant,
    ) -> Result<Turn<T::Error>, OutputError> {
        let mut turn = Turn::new();
        while self.pending() > 0 {
            match t.send(&self.tx[self.tx_off..]) {
                Ok(0) => break,
                Ok(n) => {
                    out.record(&self.tx[self.tx_off..self.tx_off + n]).map_err(OutputError::Log)?;
                    self.tx_off += n;
                    self.sent += n as u64;
                    self.last_activity = now;
                }
                Err(e) => return Ok(turn.ended(End::Failed(e))),
            }
        }
        if self.tx_off == self.tx.len() {
            self.tx.clear();
            self.tx_off = 0;
        }
        // Input finished and handed over: DATA_FIN (RFC 8684 §3.3.3).
        if input_eof && self.pending() == 0 && !self.tx_closed && !rules.abort {
            if !rules.no_shutdown && !rules.recv_only {
                if let Err(e) = t.half_close() {
                    return Ok(turn.ended(End::Failed(e)));
                }
            }
            self.tx_closed = true;
            turn.half_closed = true;
        }
        if !self.rx_eof && out.ready() {
            loop {
                match t.recv(buf) {
                    Ok(Received::Data(n)) => {
                        self.received += n as u64;
                        self.last_activity = now;
                        let data = &buf[..n];
                        out.record(data).map_err(OutputError::Log)?;
                        if !out.deliver(data)? {
                            break;
                        }
                    }
                    Ok(Received::Eof) => {
                        self.rx_eof = true;
                        turn.peer_closed = true;
                        break;
                    }
                    Ok(Received::Blocked) => break,
                    Err(e) => return Ok(turn.ended(End::Failed(e))),
                }
            }
        }
        if self.program {
            return Ok(turn);
        }
        if let Some(end) = self.end(rules, t, input_eof, now) {
            return Ok(turn.ended(end));
        }
        Ok(turn)
    }

    /// Whether the session ended by the rules, or by -i.
    fn end<T: Transport>(&self, rules: &Rules, t: &mut T, input_eof: bool, now: Instant) -> Option<End<T::Error>> {
        let send_done = rules.recv_only || (input_eof && self.pending() == 0 && self.tx_closed);
        if rules.abort {
            if input_eof && self.pending() == 0 && t.unacked() == 0 {
                return Some(End::Acknowledged);
            }
            if rules.recv_only && self.rx_eof {
                return Some(End::Done);
            }
        } else {
            let ended = if rules.send_only {
                send_done
            } else if rules.recv_only {
                self.rx_eof
            } else {
                self.rx_eof && (send_done || rules.stdin_tty)
            };
            if ended {
                return Some(End::Done);
            }
        }
        let idle = rules.idle_timeout?;
        (now.saturating_duration_since(self.last_activity) >= idle).then_some(End::Idle(idle))
    }
}

/// One subflow's counts in -v's report at the end of a connection.
#[derive(Clone, Debug, Default)]
pub struct SubflowTotals {
    pub id: u64,
    /// "LOCAL -> REMOTE".
    pub path: String,
    /// Bytes sent, retransmissions not counted.
    pub sent: u64,
    pub received: u64,
    pub retransmits: u64,
    pub rtt_us: u32,
    pub cwnd: u32,
}

/// -v's line for one subflow (retransmits when there were any or with
/// -vv; RTT and cwnd with -vv).
pub fn subflow_report(tag: &str, sf: &SubflowTotals, verbose: u8) -> String {
    let mut line =
        format!("{tag}subflow #{} {}: sent {} bytes, received {} bytes", sf.id, sf.path, sf.sent, sf.received);
    if sf.retransmits > 0 || verbose > 1 {
        line.push_str(&format!(", {} retransmits", sf.retransmits));
    }
    if verbose > 1 {
        line.push_str(&format!(", rtt {:.1}ms, cwnd {}", f64::from(sf.rtt_us) / 1000.0, sf.cwnd));
    }
    line
}

/// -v's line for a whole MPTCP connection (`token` as 0x%08x).
pub fn connection_report(tag: &str, token: &str, subflows: usize, sent: u64, received: u64) -> String {
    format!(
        "{tag}connection token {token}: {subflows} subflow{} used, {sent} bytes sent, {received} bytes received",
        if subflows == 1 { "" } else { "s" }
    )
}

/// -v's line for a connection that is plain TCP (a fallback).
pub fn tcp_report(tag: &str, local: SocketAddr, peer: SocketAddr, sent: u64, received: u64) -> String {
    format!("{tag}TCP {local} -> {peer}: sent {sent} bytes, received {received} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A connection in memory: what was sent, what the peer will send (then
    /// its close), how much it takes per call.
    #[derive(Default)]
    struct Fake {
        sent: Vec<u8>,
        incoming: VecDeque<Vec<u8>>,
        peer_closes: bool,
        half_closed: bool,
        window: Option<usize>,
        unacked: u64,
    }

    impl Transport for Fake {
        type Error = &'static str;
        fn send(&mut self, data: &[u8]) -> Result<usize, &'static str> {
            if self.half_closed {
                return Err("send after half-close");
            }
            let n = self.window.map_or(data.len(), |w| w.min(data.len()));
            self.sent.extend_from_slice(&data[..n]);
            if let Some(w) = &mut self.window {
                *w -= n;
            }
            Ok(n)
        }
        fn recv(&mut self, buf: &mut [u8]) -> Result<Received, &'static str> {
            match self.incoming.pop_front() {
                Some(d) => {
                    buf[..d.len()].copy_from_slice(&d);
                    Ok(Received::Data(d.len()))
                }
                None if self.peer_closes => Ok(Received::Eof),
                None => Ok(Received::Blocked),
            }
        }
        fn half_close(&mut self) -> Result<(), &'static str> {
            self.half_closed = true;
            Ok(())
        }
        fn unacked(&mut self) -> u64 {
            self.unacked
        }
    }

    #[derive(Default)]
    struct Out {
        log: Vec<u8>,
        delivered: Vec<u8>,
    }

    impl Output for Out {
        fn record(&mut self, data: &[u8]) -> io::Result<()> {
            self.log.extend_from_slice(data);
            Ok(())
        }
        fn deliver(&mut self, data: &[u8]) -> Result<bool, OutputError> {
            self.delivered.extend_from_slice(data);
            Ok(true)
        }
    }

    fn step(
        s: &mut ConnSession,
        rules: &Rules,
        t: &mut Fake,
        out: &mut Out,
        input_eof: bool,
        now: Instant,
    ) -> Turn<&'static str> {
        let mut buf = [0u8; 64];
        s.step(rules, t, out, &mut buf, input_eof, now).unwrap()
    }

    #[test]
    fn stdin_eof_half_closes_after_the_data_and_the_peer_close_ends() {
        let t0 = Instant::now();
        let rules = Rules::default();
        let mut s = ConnSession::new(t0);
        let mut t = Fake { window: Some(3), ..Default::default() };
        let mut out = Out::default();
        s.queue(b"hello");
        // Input at its end, but two bytes wait for the window: no DATA_FIN yet.
        let turn = step(&mut s, &rules, &mut t, &mut out, true, t0);
        assert_eq!((turn.half_closed, &t.sent[..], t.half_closed), (false, &b"hel"[..], false));
        assert_eq!(turn.end, None);
        t.window = Some(10);
        let turn = step(&mut s, &rules, &mut t, &mut out, true, t0);
        assert!(turn.half_closed && t.half_closed && s.tx_closed);
        assert_eq!(turn.end, None, "the peer has not closed yet");
        t.incoming.push_back(b"bye".to_vec());
        t.peer_closes = true;
        let turn = step(&mut s, &rules, &mut t, &mut out, true, t0);
        assert!(turn.peer_closed);
        assert_eq!(turn.end, Some(End::Done));
        assert_eq!((&out.delivered[..], &out.log[..]), (&b"bye"[..], &b"hellobye"[..]));
        assert_eq!((s.sent, s.received), (5, 3));
    }

    #[test]
    fn no_shutdown_leaves_the_write_side_open() {
        let t0 = Instant::now();
        let rules = Rules { no_shutdown: true, ..Default::default() };
        let mut s = ConnSession::new(t0);
        let mut t = Fake::default();
        let turn = step(&mut s, &rules, &mut t, &mut Out::default(), true, t0);
        assert!(turn.half_closed && s.tx_closed);
        assert!(!t.half_closed);
    }

    #[test]
    fn recv_only_never_sends_and_ends_on_the_peer_close() {
        let t0 = Instant::now();
        let rules = Rules { recv_only: true, ..Default::default() };
        assert!(!rules.reads_stdin());
        let mut s = ConnSession::new(t0);
        let mut t = Fake { incoming: VecDeque::from([b"data".to_vec()]), ..Default::default() };
        let mut out = Out::default();
        // --recv-only: standard input counts as ended from the start.
        let turn = step(&mut s, &rules, &mut t, &mut out, true, t0);
        assert!(t.sent.is_empty() && !t.half_closed, "no DATA_FIN either");
        assert_eq!(turn.end, None);
        t.peer_closes = true;
        let turn = step(&mut s, &rules, &mut t, &mut out, true, t0);
        assert_eq!(turn.end, Some(End::Done));
        assert_eq!(out.delivered, b"data");
    }

    #[test]
    fn send_only_ends_once_the_input_is_sent_and_delivers_nothing() {
        let t0 = Instant::now();
        let rules = Rules { send_only: true, ..Default::default() };
        let mut s = ConnSession::new(t0);
        let mut t = Fake { incoming: VecDeque::from([b"ignored".to_vec()]), ..Default::default() };
        struct Null;
        impl Log for Null {
            fn record(&mut self, _: &[u8]) -> io::Result<()> {
                Ok(())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut log = Null;
        let mut out = Stdout { log: &mut log, send_only: true };
        let mut buf = [0u8; 64];
        s.queue(b"abc");
        let turn = s.step(&rules, &mut t, &mut out, &mut buf, false, t0).unwrap();
        assert_eq!(turn.end, None, "standard input goes on");
        assert_eq!(s.received, 7, "read, but not written to standard output");
        let turn = s.step(&rules, &mut t, &mut out, &mut buf, true, t0).unwrap();
        assert!(t.half_closed);
        assert_eq!(turn.end, Some(End::Done));
        assert_eq!(t.sent, b"abc");
    }

    #[test]
    fn idle_timeout_fires_after_the_last_activity() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(2);
        let rules = Rules { idle_timeout: Some(idle), ..Default::default() };
        let mut s = ConnSession::new(t0);
        let mut t = Fake::default();
        let mut out = Out::default();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(step(&mut s, &rules, &mut t, &mut out, false, at(1500)).end, None);
        // Data at 1.5 s moves the deadline to 3.5 s.
        t.incoming.push_back(b"x".to_vec());
        assert_eq!(step(&mut s, &rules, &mut t, &mut out, false, at(1500)).end, None);
        assert_eq!(s.idle_left(&rules, at(3000)), Some(Duration::from_millis(500)));
        assert_eq!(step(&mut s, &rules, &mut t, &mut out, false, at(3499)).end, None);
        assert_eq!(step(&mut s, &rules, &mut t, &mut out, false, at(3500)).end, Some(End::Idle(idle)));
        assert_eq!(s.idle_left(&rules, at(9000)), Some(Duration::from_millis(1)));
    }

    #[test]
    fn abort_waits_for_the_acknowledgement() {
        let t0 = Instant::now();
        let rules = Rules { abort: true, ..Default::default() };
        let mut s = ConnSession::new(t0);
        let mut t = Fake { unacked: 4, ..Default::default() };
        s.queue(b"data");
        let turn = step(&mut s, &rules, &mut t, &mut Out::default(), true, t0);
        assert!(!turn.half_closed && !t.half_closed, "--abort sends no DATA_FIN");
        assert_eq!(turn.end, None);
        assert!(s.awaiting_abort(&rules, true));
        t.unacked = 0;
        assert_eq!(step(&mut s, &rules, &mut t, &mut Out::default(), true, t0).end, Some(End::Acknowledged));
    }

    #[test]
    fn a_terminal_ends_on_the_peer_close() {
        let t0 = Instant::now();
        let rules = Rules { stdin_tty: true, ..Default::default() };
        let mut s = ConnSession::new(t0);
        let mut t = Fake { peer_closes: true, ..Default::default() };
        s.queue(b"typed");
        t.window = Some(0);
        assert_eq!(step(&mut s, &rules, &mut t, &mut Out::default(), false, t0).end, Some(End::Done));
        // Not a terminal: the unsent input keeps the session open.
        let mut s = ConnSession::new(t0);
        s.queue(b"typed");
        let mut t = Fake { peer_closes: true, window: Some(0), ..Default::default() };
        assert_eq!(step(&mut s, &Rules::default(), &mut t, &mut Out::default(), false, t0).end, None);
    }

    #[test]
    fn a_failing_transport_ends_the_session() {
        let t0 = Instant::now();
        let mut s = ConnSession::new(t0);
        let mut t = Fake { half_closed: true, ..Default::default() };
        s.queue(b"x");
        assert_eq!(
            step(&mut s, &Rules::default(), &mut t, &mut Out::default(), false, t0).end,
            Some(End::Failed("send after half-close"))
        );
    }

    #[test]
    fn a_program_connection_is_ended_by_the_mode() {
        let t0 = Instant::now();
        let rules = Rules { recv_only: true, ..Default::default() };
        let mut s = ConnSession::new(t0);
        let mut t = Fake { peer_closes: true, ..Default::default() };
        s.program = true;
        let mut buf = [0u8; 8];
        let turn = s.step(&rules, &mut t, &mut Out::default(), &mut buf, true, t0).unwrap();
        assert!(turn.peer_closed);
        assert_eq!(turn.end, None);
    }

    #[test]
    fn keep_open_serves_two_clients_and_without_it_one() {
        let t0 = Instant::now();
        let k = Rules { keep_open: true, ..Default::default() };
        let one = Rules::default();
        assert!(k.admits(0) && k.admits(1) && k.admits(2));
        assert!(one.admits(0) && !one.admits(1));
        // The listener goes on after its first client with -k only.
        assert!(!k.run_over(true, 1, 0));
        assert!(one.run_over(true, 1, 0));
        assert!(!one.run_over(true, 0, 0), "still waiting for the first client");
        assert!(!one.run_over(true, 1, 1));
        assert!(one.run_over(false, 1, 0), "a client's connection ended");
        // Two clients of one -k listener: each gets standard input and ends on its own.
        let mut a = ConnSession::new(t0);
        let mut b = ConnSession::new(t0);
        assert!(k.wants_stdin(false, false, [&a, &b].into_iter(), 16));
        for c in [&mut a, &mut b] {
            c.queue(b"to both");
        }
        let mut ta = Fake { peer_closes: true, ..Default::default() };
        let mut tb = Fake::default();
        assert_eq!(step(&mut a, &k, &mut ta, &mut Out::default(), true, t0).end, Some(End::Done));
        assert_eq!(step(&mut b, &k, &mut tb, &mut Out::default(), true, t0).end, None);
        assert_eq!((&ta.sent[..], &tb.sent[..]), (&b"to both"[..], &b"to both"[..]));
        assert!(!k.wants_stdin(false, false, [&b].into_iter(), 16), "b's write side is closed");
    }

    #[test]
    fn report_lines() {
        let (a, b) = ("10.0.0.1:1".parse().unwrap(), "10.0.0.2:2".parse().unwrap());
        assert_eq!(tcp_report("", a, b, 1, 2), "TCP 10.0.0.1:1 -> 10.0.0.2:2: sent 1 bytes, received 2 bytes");
        let sf = SubflowTotals { id: 2, path: "a -> b".into(), sent: 10, received: 20, ..Default::default() };
        assert_eq!(subflow_report("", &sf, 1), "subflow #2 a -> b: sent 10 bytes, received 20 bytes");
        let sf = SubflowTotals { retransmits: 3, rtt_us: 1250, cwnd: 10, ..sf };
        assert_eq!(
            subflow_report("[p] ", &sf, 1),
            "[p] subflow #2 a -> b: sent 10 bytes, received 20 bytes, 3 retransmits"
        );
        assert_eq!(
            subflow_report("", &sf, 2),
            "subflow #2 a -> b: sent 10 bytes, received 20 bytes, 3 retransmits, rtt 1.2ms, cwnd 10"
        );
        assert_eq!(
            connection_report("", "0x000000ab", 1, 5, 6),
            "connection token 0x000000ab: 1 subflow used, 5 bytes sent, 6 bytes received"
        );
        assert_eq!(
            connection_report("", "0x00000001", 2, 0, 0),
            "connection token 0x00000001: 2 subflows used, 0 bytes sent, 0 bytes received"
        );
    }

    #[test]
    fn stdin_waits_while_a_connection_is_full() {
        let t0 = Instant::now();
        let rules = Rules::default();
        let mut a = ConnSession::new(t0);
        assert!(rules.wants_stdin(false, false, [&a].into_iter(), 4));
        assert!(!rules.wants_stdin(true, false, [&a].into_iter(), 4), "at its end");
        assert!(!rules.wants_stdin(false, true, [&a].into_iter(), 4), "a program takes the data");
        assert!(!rules.wants_stdin(false, false, std::iter::empty(), 4), "no connection yet");
        a.queue(b"full");
        assert!(!rules.wants_stdin(false, false, [&a].into_iter(), 4));
        assert!(rules.wants_stdin(false, false, [&a].into_iter(), 5));
    }
}
