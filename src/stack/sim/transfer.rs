//! A bulk transfer across the simulation: the client connects, writes its
//! input and closes (DATA_FIN); the server reads everything to its output
//! and closes when it sees the end. With [`Transfer::with_reverse`], the
//! server also writes an input of its own in the same connection, the
//! client reads it, and the server closes once that input is written.

use std::io::{self, Read, Write};

use super::{App, CLIENT, SERVER};
use crate::stack::time::{Duration, Instant};
use crate::stack::{ConnHandle, Endpoint, Event, RecvError};

pub struct Transfer<'a> {
    input: &'a mut dyn Read,
    output: &'a mut dyn Write,
    buf: Vec<u8>,
    rbuf: Vec<u8>,
    pending: std::ops::Range<usize>,
    input_done: bool,
    pub client: Option<ConnHandle>,
    pub server: Option<ConnHandle>,
    /// Bytes taken by the client stack.
    pub sent: u64,
    /// Bytes read from the server stack.
    pub received: u64,
    pub client_closed: bool,
    pub server_eof: bool,
    server_close_sent: bool,
    pub client_done: bool,
    pub server_done: bool,
    /// When the last byte arrived.
    pub done_at: Option<Instant>,
    pub events: Vec<(Instant, usize, Event)>,
    /// (time, bytes received so far), one sample per `sample_every`.
    pub timeline: Vec<(Instant, u64)>,
    pub sample_every: Duration,
    next_sample: Instant,
    started: bool,
    pub error: Option<String>,
    /// The server application reads nothing before this time.
    pub read_from: Instant,
    /// Server to client data, when both ways.
    reverse: Option<Reverse<'a>>,
}

/// The server-to-client half of a transfer both ways.
struct Reverse<'a> {
    input: &'a mut dyn Read,
    output: &'a mut dyn Write,
    buf: Vec<u8>,
    pending: std::ops::Range<usize>,
    input_done: bool,
    /// Bytes taken by the server stack.
    sent: u64,
    /// Bytes read from the client stack.
    received: u64,
    /// The client read the end of the server's stream.
    client_eof: bool,
}

impl<'a> Transfer<'a> {
    pub fn new(input: &'a mut dyn Read, output: &'a mut dyn Write) -> Transfer<'a> {
        Transfer::with_io_size(input, output, 1 << 20)
    }

    /// As [`Transfer::new`], reading the input and the server's data `io`
    /// bytes at a time (the size of the application's reads and writes).
    pub fn with_io_size(input: &'a mut dyn Read, output: &'a mut dyn Write, io: usize) -> Transfer<'a> {
        Transfer {
            input,
            output,
            buf: vec![0; io.max(1)],
            rbuf: vec![0; io.max(1)],
            pending: 0..0,
            input_done: false,
            client: None,
            server: None,
            sent: 0,
            received: 0,
            client_closed: false,
            server_eof: false,
            server_close_sent: false,
            client_done: false,
            server_done: false,
            done_at: None,
            events: Vec::new(),
            timeline: Vec::new(),
            sample_every: Duration::from_millis(100),
            next_sample: Instant::ZERO,
            started: false,
            error: None,
            read_from: Instant::ZERO,
            reverse: None,
        }
    }

    /// Also send `input` from the server to the client, which reads it
    /// into `output`: data both ways in one connection.
    pub fn with_reverse(mut self, input: &'a mut dyn Read, output: &'a mut dyn Write) -> Transfer<'a> {
        let io = self.buf.len();
        self.reverse = Some(Reverse {
            input,
            output,
            buf: vec![0; io],
            pending: 0..0,
            input_done: false,
            sent: 0,
            received: 0,
            client_eof: false,
        });
        self
    }

    /// Server-to-client bytes: (taken by the server stack, read by the client).
    pub fn reverse_bytes(&self) -> (u64, u64) {
        self.reverse.as_ref().map_or((0, 0), |r| (r.sent, r.received))
    }

    /// Connect the client to `server` now (call before running).
    pub fn start(
        &mut self,
        now: Instant,
        hosts: &mut [Endpoint; 2],
        server: std::net::SocketAddr,
    ) -> Result<(), crate::stack::StackError> {
        self.client = Some(hosts[CLIENT].connect(now, None, server)?);
        self.started = true;
        Ok(())
    }

    fn pump_input(&mut self, ep: &mut Endpoint) -> io::Result<()> {
        let Some(h) = self.client else { return Ok(()) };
        if self.client_closed {
            return Ok(());
        }
        loop {
            if self.pending.is_empty() {
                if self.input_done {
                    break;
                }
                let n = self.input.read(&mut self.buf)?;
                if n == 0 {
                    self.input_done = true;
                    break;
                }
                self.pending = 0..n;
            }
            match ep.send(h, &self.buf[self.pending.clone()]) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    self.pending.start += n;
                    self.sent += n as u64;
                }
                Err(e) => {
                    self.error = Some(e.to_string());
                    return Ok(());
                }
            }
        }
        if self.input_done && self.pending.is_empty() {
            let _ = ep.close(h);
            self.client_closed = true;
        }
        Ok(())
    }

    /// The server's own data (both ways only); it closes once all is written.
    fn pump_reverse(&mut self, ep: &mut Endpoint) -> io::Result<()> {
        let (Some(h), Some(r)) = (self.server, self.reverse.as_mut()) else { return Ok(()) };
        if self.server_close_sent {
            return Ok(());
        }
        loop {
            if r.pending.is_empty() {
                if r.input_done {
                    break;
                }
                let n = r.input.read(&mut r.buf)?;
                if n == 0 {
                    r.input_done = true;
                    break;
                }
                r.pending = 0..n;
            }
            match ep.send(h, &r.buf[r.pending.clone()]) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    r.pending.start += n;
                    r.sent += n as u64;
                }
                Err(e) => {
                    self.error = Some(e.to_string());
                    return Ok(());
                }
            }
        }
        if r.input_done && r.pending.is_empty() {
            self.server_close_sent = true;
            let _ = ep.close(h);
        }
        Ok(())
    }

    /// What the client reads of the server's data (both ways only).
    fn drain_reverse(&mut self, now: Instant, ep: &mut Endpoint) -> io::Result<()> {
        let (Some(h), Some(r)) = (self.client, self.reverse.as_mut()) else { return Ok(()) };
        loop {
            match ep.recv(h, &mut self.rbuf) {
                Ok(Some(n)) => {
                    r.output.write_all(&self.rbuf[..n])?;
                    r.received += n as u64;
                    self.done_at = Some(now);
                }
                Ok(None) => {
                    r.client_eof = true;
                    break;
                }
                Err(RecvError::Blocked) => break,
                Err(e) => {
                    self.error = Some(e.to_string());
                    break;
                }
            }
        }
        Ok(())
    }

    fn drain_output(&mut self, now: Instant, ep: &mut Endpoint) -> io::Result<()> {
        let Some(h) = self.server else { return Ok(()) };
        loop {
            match ep.recv(h, &mut self.rbuf) {
                Ok(Some(n)) => {
                    self.output.write_all(&self.rbuf[..n])?;
                    self.received += n as u64;
                    self.done_at = Some(now);
                }
                Ok(None) => {
                    self.server_eof = true;
                    // Both ways, the server closes when its own data is written.
                    if !self.server_close_sent && self.reverse.is_none() {
                        self.server_close_sent = true;
                        let _ = ep.close(h);
                    }
                    break;
                }
                Err(RecvError::Blocked) => break,
                Err(e) => {
                    self.error = Some(e.to_string());
                    self.server_done = true;
                    break;
                }
            }
        }
        Ok(())
    }
}

impl App for Transfer<'_> {
    fn step(&mut self, now: Instant, hosts: &mut [Endpoint; 2]) -> io::Result<()> {
        for (h, ep) in hosts.iter_mut().enumerate() {
            while let Some(ev) = ep.poll_event() {
                match &ev {
                    Event::Accepted { conn, .. } if h == SERVER && self.server.is_none() => self.server = Some(*conn),
                    Event::Closed { conn, reason } => {
                        if h == CLIENT && Some(*conn) == self.client {
                            self.client_done = true;
                            if *reason != crate::stack::CloseReason::Normal && self.error.is_none() {
                                self.error = Some(format!("client connection: {reason}"));
                            }
                        }
                        if h == SERVER && Some(*conn) == self.server {
                            self.server_done = true;
                        }
                    }
                    _ => {}
                }
                self.events.push((now, h, ev));
            }
        }
        let [c, s] = hosts;
        self.pump_input(c)?;
        if now >= self.read_from {
            self.drain_output(now, s)?;
        }
        if self.reverse.is_some() {
            self.pump_reverse(s)?;
            self.drain_reverse(now, c)?;
        }
        while now >= self.next_sample {
            self.timeline.push((self.next_sample, self.received));
            self.next_sample += self.sample_every;
        }
        Ok(())
    }

    fn done(&self) -> bool {
        let reverse_done = self.reverse.as_ref().is_none_or(|r| r.client_eof);
        self.client_done && (self.server_done || self.server_eof || self.error.is_some()) && reverse_done
            || self.error.is_some() && self.client_done
    }
}
