//! `--stack embedded`: the poll loop that drives the sans-IO
//! [`Endpoint`] with IP packets through a TUN device.
//!
//! One thread, one `poll(2)` over: the termination self-pipe, the TUN fd,
//! standard input, the pipes of `-e`/`-c` programs and the control socket,
//! with the stack's next wake-up ([`Endpoint::poll_timeout`]) as the poll
//! timeout. Every turn of the loop follows the stack's call order
//! (src/stack/mod.rs): packets in, timers, events and the application's
//! reaction, then every packet out.
//!
//! The session rules are `crate::session`'s, the same as `--stack
//! kernel`'s: each connection of the stack is the session's `Transport`.
//! Besides them:
//! - a -e/-c program's output is the connection's input, and what the
//!   connection receives goes to the program; its exit ends the session.
//! - once a connection's session has ended the loop lingers (at most
//!   [`LINGER`]) so the DATA_FIN and FIN exchanges complete before the
//!   process exits and the TUN device disappears.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, IoSlice, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use super::control_server::{ControlServer, EventLog};
use super::gso::Coalescer;
use super::pcap_tap::{Direction, PcapTap};
use crate::control::ControlEvent;
use crate::session::{self, ConnSession, End, Input, Log, Output, OutputError, Received, Rules, Stdout, Transport};
use crate::snapshot::{ConnSnapshot, Snapshot, token_hex};
use crate::stack::time::Instant;
use crate::stack::wire::PROTO_TCP;
use crate::stack::wire::field::{ipv4, ipv6, tcp};
use crate::stack::{
    AddrFlags, CloseReason, Config, ConnHandle, Endpoint, Event, FallbackReason, RecvError, StackError, SubflowInfo,
};
use crate::sys::signals::{self, Termination};
use crate::sys::tun::{Tun, TunError, TunOptions, VNET_HDR_LEN};
use crate::sys::{self, POLLIN, POLLOUT, PollFd, fmt_duration};

/// How long a finished connection may take to complete its close handshakes
/// before the process exits anyway.
pub const LINGER: StdDuration = StdDuration::from_secs(2);
/// Application read size (standard input, the stack's receive side).
const CHUNK: usize = 256 * 1024;
/// Packets read from the TUN per turn of the loop before the stack answers.
const TUN_BATCH: usize = 256;
/// Events kept for control-socket clients.
const EVENT_LOG: usize = 4096;

/// One `--local ADDR/PREFIX[,flags]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalAddress {
    pub addr: IpAddr,
    pub prefix: u8,
    pub flags: AddrFlags,
}

/// Client or server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Connect to `remote`, from `local` (else the primary address and a random port).
    Connect { remote: SocketAddr, local: Option<SocketAddr> },
    /// Accept connections on this address (an unspecified IP: any local address).
    Listen(SocketAddr),
}

/// Everything the embedded driver needs (built by `cli::cat` from the command line).
#[derive(Clone, Debug)]
pub struct Options {
    pub role: Role,
    /// TUN device name (created if missing, reused if persistent).
    pub tun: String,
    /// virtio-net header with checksum and TSO offloads on the TUN (falls
    /// back to a plain TUN when refused).
    pub tun_offload: bool,
    /// The stack's addresses; the first is the primary.
    pub locals: Vec<LocalAddress>,
    pub config: Config,
    /// RNG seed of the stack (keys, nonces, ISNs); `None`: from the OS.
    pub seed: Option<u64>,
    /// The ncat session flags (-k, --send-only, --recv-only,
    /// --no-shutdown, --abort, -i); whether standard input is a terminal is
    /// found out by the driver.
    pub rules: Rules,
    pub require_mptcp: bool,
    pub connect_timeout: Option<StdDuration>,
    pub verbose: u8,
    /// argv of the `-e`/`-c` program run for every connection.
    pub exec: Option<Vec<String>>,
    pub pcap: Option<PathBuf>,
    /// Serve snapshots and events on this process's control socket.
    pub control_socket: bool,
}

/// Why the embedded session failed (one line each).
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(transparent)]
    Tun(#[from] TunError),
    #[error("{0}")]
    Stack(#[from] StackError),
    #[error("{what}: {err}")]
    Io { what: String, err: io::Error },
    #[error(
        "--local {addr}: the kernel already has this address (on another interface), so packets to it would never reach the TUN; use an address the kernel does not own"
    )]
    AddressOwnedByKernel { addr: IpAddr },
    #[error("--local {addr}: {what}")]
    BadLocal { addr: IpAddr, what: String },
    #[error("-s {0} is not one of the --local addresses")]
    SourceNotLocal(IpAddr),
    #[error("connection to {remote} refused")]
    Refused { remote: SocketAddr },
    #[error("connection to {remote} timed out after {after} (-w)")]
    ConnectTimeout { remote: SocketAddr, after: String },
    #[error("connection to {remote} timed out: no answer to the SYNs")]
    SynTimeout { remote: SocketAddr },
    #[error("{remote} is unreachable ({detail}, reported by {from})")]
    Unreachable { remote: SocketAddr, detail: String, from: IpAddr },
    #[error("connection with {peer}: {what}")]
    Ended { peer: SocketAddr, what: String },
    #[error("fallback to plain TCP with {peer}: {reason} (--require-mptcp)")]
    Fallback { peer: SocketAddr, reason: FallbackReason },
    #[error("idle timeout: nothing sent or received for {0}")]
    Idle(String),
    #[error("the -e/-c program {0}")]
    Program(String),
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("interrupted by {0}")]
    Interrupted(&'static str),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> EmbeddedError {
    let what = what.into();
    move |err| EmbeddedError::Io { what, err }
}

pub(crate) fn note(msg: impl std::fmt::Display) {
    eprintln!("mptcp-cat: {msg}");
}

/// A seed from the OS for the stack's keys and ISN secret.
fn os_seed() -> u64 {
    let mut b = [0u8; 8];
    if sys::getrandom(&mut b) == 8 {
        u64::from_ne_bytes(b)
    } else {
        // Not expected on Linux >= 3.17; fall back on time and pid.
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        (t.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
    }
}

/// Whether the kernel owns `addr` (binding to it succeeds without
/// IP_FREEBIND only for a local address).
fn kernel_owns(addr: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(addr, 0)).is_ok()
}

/// A `-e`/`-c` program and its pipes.
struct ChildIo {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
}

/// One connection of the session.
struct Conn {
    h: ConnHandle,
    local: SocketAddr,
    peer: SocketAddr,
    client: bool,
    /// The handshake completed (Connected / Accepted).
    established: bool,
    /// The session: data from standard input (or the program) not yet
    /// taken by the stack, what was sent and received, the ends of stream.
    s: ConnSession,
    /// Data for the program's standard input not yet written.
    to_child: Vec<u8>,
    to_child_off: usize,
    /// The program's standard output reached EOF.
    child_eof: bool,
    deadline: Option<StdInstant>,
    child: Option<ChildIo>,
    fallback: Option<FallbackReason>,
    /// The stack's Closed event.
    closed: Option<CloseReason>,
    /// The session for this connection is over: lingering until `linger_until`.
    ending: Option<Result<(), EmbeddedError>>,
    linger_until: Option<StdInstant>,
    /// Every subflow seen, by id, and those reported closed.
    subflows: BTreeMap<u32, SubflowInfo>,
    subflows_down: BTreeSet<u32>,
    last_snapshot: Option<ConnSnapshot>,
    /// ICMP said the peer is unreachable.
    unreachable: Option<(String, IpAddr)>,
}

impl Conn {
    fn new(h: ConnHandle, local: SocketAddr, peer: SocketAddr, client: bool) -> Conn {
        let now = StdInstant::now();
        Conn {
            h,
            local,
            peer,
            client,
            established: false,
            s: ConnSession::new(now),
            to_child: Vec::new(),
            to_child_off: 0,
            child_eof: false,
            deadline: None,
            child: None,
            fallback: None,
            closed: None,
            ending: None,
            linger_until: None,
            subflows: BTreeMap::new(),
            subflows_down: BTreeSet::new(),
            last_snapshot: None,
            unreachable: None,
        }
    }

    /// After a fallback the single subflow is the connection: its end is
    /// reported as the connection's.
    fn fallback_quiet(&self) -> bool {
        self.fallback.is_some()
    }

    fn tag(&self, keep_open: bool) -> String {
        if keep_open { format!("[{}] ", self.peer) } else { String::new() }
    }

    /// Whether the connection takes standard input: established, and its
    /// session not over.
    fn takes_input(&self) -> bool {
        self.established && self.ending.is_none()
    }
}

/// One connection of our stack as the session's transport.
struct StackConn<'a> {
    ep: &'a mut Endpoint,
    h: ConnHandle,
    peer: SocketAddr,
    established: bool,
}

impl Transport for StackConn<'_> {
    type Error = EmbeddedError;

    fn send(&mut self, data: &[u8]) -> Result<usize, EmbeddedError> {
        self.ep.send(self.h, data).map_err(|e| {
            let what = match e {
                StackError::Reset(r) => close_reason_text(r),
                e => e.to_string(),
            };
            EmbeddedError::Ended { peer: self.peer, what }
        })
    }

    fn recv(&mut self, buf: &mut [u8]) -> Result<Received, EmbeddedError> {
        match self.ep.recv(self.h, buf) {
            Ok(Some(n)) => Ok(Received::Data(n)),
            Ok(None) => Ok(Received::Eof),
            Err(RecvError::Blocked) => Ok(Received::Blocked),
            Err(RecvError::Reset(r)) => Err(close_error(self.established, self.peer, r)),
            Err(RecvError::InvalidHandle) => {
                Err(EmbeddedError::Ended { peer: self.peer, what: "the connection vanished".into() })
            }
        }
    }

    fn half_close(&mut self) -> Result<(), EmbeddedError> {
        let _ = self.ep.close(self.h);
        Ok(())
    }

    fn unacked(&mut self) -> u64 {
        self.ep.unacked(self.h)
    }
}

/// What a connection with a -e/-c program receives goes to the program
/// (one chunk at a time; dropped once the program closed its input).
struct ToProgram<'a> {
    log: &'a mut dyn Log,
    to_child: &'a mut Vec<u8>,
    open: bool,
}

impl Output for ToProgram<'_> {
    fn record(&mut self, data: &[u8]) -> io::Result<()> {
        self.log.record(data)
    }
    fn deliver(&mut self, data: &[u8]) -> Result<bool, OutputError> {
        if self.open {
            self.to_child.extend_from_slice(data);
        }
        Ok(!self.open)
    }
    fn ready(&self) -> bool {
        self.to_child.is_empty()
    }
}

/// Run the embedded stack until the session ends.
pub fn run(opts: &Options, sink: &mut dyn Log, term: &Termination) -> Result<(), EmbeddedError> {
    let mut d = Driver::setup(opts, sink, term)?;
    let r = d.run();
    d.shutdown();
    if d.corrupt.enabled() {
        // The test hook reports what the stack counted (our side of the
        // MP_FAIL exchange), as `nstat` does for the kernel.
        let mib = serde_json::to_string(&d.ep.mib().nonzero()).unwrap_or_default();
        eprintln!("mptcp-cat: test hook: corrupted tx {} rx {}; mib {mib}", d.corrupt.tx_done, d.corrupt.rx_done);
    }
    r
}

/// Test hook (hidden): `MPTCP_CAT_TEST_CORRUPT_TX=N` flips one payload byte
/// of the Nth data segment we send, after the stack computed its DSS
/// checksum, and `MPTCP_CAT_TEST_CORRUPT_RX=N` of the Nth data segment we
/// receive, before the stack sees it; the TCP checksum is repaired (or left
/// to the offload), as a middlebox rewriting data would: only the DSS
/// checksum can tell (RFC 8684 §3.7 tests against the kernel).
#[derive(Debug, Default)]
struct CorruptHook {
    tx: Option<u64>,
    rx: Option<u64>,
    tx_seen: u64,
    rx_seen: u64,
    tx_done: u64,
    rx_done: u64,
}

impl CorruptHook {
    fn from_env() -> CorruptHook {
        let n = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok()).filter(|&n| n > 0);
        CorruptHook { tx: n("MPTCP_CAT_TEST_CORRUPT_TX"), rx: n("MPTCP_CAT_TEST_CORRUPT_RX"), ..Default::default() }
    }
    fn enabled(&self) -> bool {
        self.tx.is_some() || self.rx.is_some()
    }
    /// Whether this data segment (`payload` bytes) is the one to change.
    fn hit(want: Option<u64>, seen: &mut u64, payload: usize) -> bool {
        if want.is_none() || payload == 0 {
            return false;
        }
        *seen += 1;
        want == Some(*seen)
    }
}

struct Driver<'a> {
    opts: &'a Options,
    /// `opts.rules`, with whether standard input is a terminal.
    rules: Rules,
    sink: &'a mut dyn Log,
    term: &'a Termination,
    origin: StdInstant,
    ep: Endpoint,
    tun: Tun,
    tap: Option<PcapTap<BufWriter<File>>>,
    control: Option<ControlServer>,
    log: EventLog,
    conns: Vec<Conn>,
    stdin_eof: bool,
    served: usize,
    pid: u32,
    rxbuf: Vec<u8>,
    txbuf: Vec<u8>,
    appbuf: Vec<u8>,
    /// Bytes read from the TUN (packets, bytes).
    tun_in: (u64, u64),
    tun_stats: TunStats,
    gso: Coalescer,
    corrupt: CorruptHook,
}

/// What went into the TUN.
#[derive(Clone, Copy, Debug, Default)]
struct TunStats {
    packets: u64,
    bytes: u64,
    drops: u64,
}

/// Write one packet, given in pieces (`hdr` bytes of virtio-net header
/// first), to the TUN; a full queue or a refused packet is a drop, as on a
/// link; other errors are kept in `err` for the caller.
fn write_tun(tun: &Tun, p: &[IoSlice<'_>], hdr: usize, stats: &mut TunStats, err: &mut Option<io::Error>) {
    if err.is_some() {
        return;
    }
    match tun.send_vectored(p) {
        Ok(n) => {
            stats.packets += 1;
            stats.bytes += (n - hdr) as u64;
        }
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => stats.drops += 1,
        // The kernel refused this one packet (e.g. the link went down).
        Err(e) if matches!(e.raw_os_error(), Some(libc::EIO) | Some(libc::EINVAL)) => stats.drops += 1,
        Err(e) => *err = Some(e),
    }
}

impl<'a> Driver<'a> {
    fn setup(opts: &'a Options, sink: &'a mut dyn Log, term: &'a Termination) -> Result<Driver<'a>, EmbeddedError> {
        if opts.locals.is_empty() {
            return Err(EmbeddedError::Io {
                what: "--stack embedded".into(),
                err: io::Error::new(io::ErrorKind::InvalidInput, "needs at least one --local ADDR/PREFIX"),
            });
        }
        for l in &opts.locals {
            if kernel_owns(l.addr) {
                return Err(EmbeddedError::AddressOwnedByKernel { addr: l.addr });
            }
        }
        let tun = match Tun::open(&opts.tun, TunOptions { vnet_hdr: opts.tun_offload }) {
            // A kernel or device that refuses the virtio-net header or the
            // offloads: the plain device works too, only slower.
            Err(e @ (TunError::Mismatch { .. } | TunError::Io { .. })) if opts.tun_offload => {
                if opts.verbose > 0 {
                    note(format!("{e}; using the TUN without offloads"));
                }
                Tun::open(&opts.tun, TunOptions { vnet_hdr: false })?
            }
            r => r?,
        };
        let prefixes: Vec<(IpAddr, u8)> = opts.locals.iter().map(|l| (l.addr, l.prefix)).collect();
        let given = tun.give_kernel_side(&prefixes)?;
        tun.set_nonblocking(true)?;
        let mut config = opts.config.clone();
        if tun.vnet_hdr() {
            // The kernel hands over partial checksums and TSO super-packets
            // (virtio-net header), and takes ours with NEEDS_CSUM.
            config.offload_checksums = true;
        }
        let mut ep = Endpoint::new(config, opts.seed.unwrap_or_else(os_seed));
        for l in &opts.locals {
            ep.add_address(l.addr, l.flags)?;
        }
        if opts.verbose > 0 {
            let k: Vec<String> = given.iter().map(|(a, p)| format!("{a}/{p}")).collect();
            let ours: Vec<String> = opts.locals.iter().map(|l| format!("{}/{}", l.addr, l.prefix)).collect();
            note(format!(
                "embedded stack on TUN {} ({}): ours {}, kernel side {}",
                tun.name(),
                if tun.vnet_hdr() { "virtio-net header, TSO/checksum offloads" } else { "plain" },
                ours.join(" "),
                k.join(" ")
            ));
        }
        let tap = match &opts.pcap {
            Some(p) => Some(
                // Interface index 0: the TUN's index means nothing where the
                // file is read (tcpdump would print another interface's name).
                PcapTap::create(p, 0).map_err(io_err(format!("--pcap {}: cannot create", p.display())))?,
            ),
            None => None,
        };
        let control = if opts.control_socket {
            match ControlServer::bind_default() {
                Ok(c) => {
                    if opts.verbose > 1 {
                        note(format!("control socket {}", c.path().display()));
                    }
                    Some(c)
                }
                Err(e) => {
                    note(format!(
                        "no control socket in {} ({e}); mptcp-ss will not see this process",
                        crate::control::runtime_dir().display()
                    ));
                    None
                }
            }
        } else {
            None
        };
        let rules = Rules { stdin_tty: sys::stdin_is_tty(), ..opts.rules };
        Ok(Driver {
            opts,
            rules,
            sink,
            term,
            origin: StdInstant::now(),
            ep,
            tun,
            tap,
            control,
            log: EventLog::new(EVENT_LOG),
            conns: Vec::new(),
            stdin_eof: !rules.reads_stdin(),
            served: 0,
            pid: std::process::id(),
            rxbuf: vec![0; 65536 + VNET_HDR_LEN],
            txbuf: vec![0; crate::stack::endpoint::MAX_HEADERS],
            appbuf: vec![0; CHUNK],
            tun_in: (0, 0),
            tun_stats: TunStats::default(),
            gso: Coalescer::new(),
            corrupt: CorruptHook::from_env(),
        })
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.origin.elapsed().as_micros() as u64)
    }

    fn exec_mode(&self) -> bool {
        self.opts.exec.is_some()
    }

    // ------------------------------------------------------------------
    // The loop
    // ------------------------------------------------------------------

    fn run(&mut self) -> Result<(), EmbeddedError> {
        let now = self.now();
        match self.opts.role {
            Role::Listen(addr) => {
                self.ep.listen(addr)?;
                if self.opts.verbose > 0 {
                    note(format!("listening on {addr} (embedded MPTCP)"));
                }
            }
            Role::Connect { remote, local } => {
                if let Some(l) = local {
                    if !l.ip().is_unspecified() && !self.opts.locals.iter().any(|x| x.addr == l.ip()) {
                        return Err(EmbeddedError::SourceNotLocal(l.ip()));
                    }
                }
                let h = self.ep.connect(now, local, remote)?;
                let info = self.ep.info(h);
                let mut c = Conn::new(h, info.map_or(SocketAddr::new(remote.ip(), 0), |i| i.local), remote, true);
                c.deadline = self.opts.connect_timeout.map(|t| StdInstant::now() + t);
                self.push_event(ControlEvent {
                    kind: "created".into(),
                    local: Some(c.local.to_string()),
                    remote: Some(remote.to_string()),
                    ..Default::default()
                });
                self.conns.push(c);
                self.served += 1;
            }
        }
        let mut failure: Option<EmbeddedError> = None;
        loop {
            if let Some(sig) = self.term.received() {
                self.abort_all();
                return Err(EmbeddedError::Interrupted(signals::name(sig)));
            }
            let now = self.now();
            self.read_tun(now)?;
            if self.ep.poll_timeout().is_some_and(|t| t <= now) {
                self.ep.handle_timeout(now);
            }
            self.process_events(now);
            self.service_conns()?;
            self.process_events(now);
            if let Some(e) = self.reap(now) {
                if !self.rules.keep_open && failure.is_none() {
                    failure = Some(e);
                }
            }
            self.flush_tx(now)?;
            let listening = matches!(self.opts.role, Role::Listen(_));
            if self.rules.run_over(listening, self.served, self.conns.len())
                || (self.conns.is_empty() && failure.is_some())
            {
                self.sink.flush().map_err(io_err("writing the -o/-x log"))?;
                return match failure {
                    Some(e) => Err(e),
                    None => Ok(()),
                };
            }
            self.wait(now)?;
        }
    }

    /// Sleep in poll(2) until something can be done, then handle standard
    /// input and the control socket.
    fn wait(&mut self, now: Instant) -> Result<(), EmbeddedError> {
        let mut fds = vec![PollFd::raw(self.term.fd(), POLLIN), PollFd::new(&self.tun, POLLIN)];
        let si = self.want_stdin().then(|| {
            fds.push(PollFd::raw(0, POLLIN));
            fds.len() - 1
        });
        let mut timeout: Option<StdDuration> = None;
        let mut shorten = |d: StdDuration| timeout = Some(timeout.map_or(d, |t: StdDuration| t.min(d)));
        if let Some(t) = self.ep.poll_timeout() {
            shorten(StdDuration::from_micros(t.saturating_since(now).as_micros()));
        }
        let rules = self.rules;
        let stdin_eof = self.stdin_eof;
        let wall = StdInstant::now();
        for c in &self.conns {
            if let Some(d) = c.deadline.filter(|_| !c.established) {
                shorten(d.saturating_duration_since(StdInstant::now()));
            }
            if let Some(d) = c.linger_until {
                shorten(d.saturating_duration_since(StdInstant::now()).max(StdDuration::from_millis(1)));
            }
            if let Some(left) = c.s.idle_left(&rules, wall).filter(|_| c.ending.is_none()) {
                shorten(left);
            }
            if c.s.awaiting_abort(&rules, stdin_eof || c.child_eof) && c.ending.is_none() {
                shorten(StdDuration::from_millis(10));
            }
            if let Some(ch) = &c.child {
                // The program's exit is noticed by polling its status.
                shorten(StdDuration::from_millis(20));
                if let Some(out) = &ch.stdout {
                    if c.established && c.s.pending() < CHUNK && c.ending.is_none() {
                        fds.push(PollFd::new(out, POLLIN));
                    }
                }
                if let Some(inp) = &ch.stdin {
                    if c.to_child.len() > c.to_child_off {
                        fds.push(PollFd::new(inp, POLLOUT));
                    }
                }
            }
        }
        let first_control = fds.len();
        if let Some(cs) = &self.control {
            fds.extend(cs.poll_fds());
        }
        sys::poll(&mut fds, timeout).map_err(io_err("poll"))?;
        if let Some(i) = si {
            if fds[i].readable() {
                self.read_stdin()?;
            }
        }
        if self.control.is_some() {
            let ready = fds[first_control..].to_vec();
            let now = self.now();
            let pid = self.pid;
            let ep = &self.ep;
            let log = &self.log;
            let mut snap = || {
                let mut s: Snapshot = ep.snapshot(now);
                for c in &mut s.connections {
                    c.source = format!("embedded:{pid}");
                }
                s
            };
            if let Some(cs) = &mut self.control {
                cs.service_log(&ready, &mut snap, log);
            }
        }
        Ok(())
    }

    /// Standard input is read only while every connection that takes it
    /// has taken all of the last chunk.
    fn want_stdin(&self) -> bool {
        let live = self.conns.iter().filter(|c| c.takes_input()).map(|c| &c.s);
        self.rules.wants_stdin(self.stdin_eof, self.exec_mode(), live, 1)
    }

    fn read_stdin(&mut self) -> Result<(), EmbeddedError> {
        match session::read_stdin(&mut self.appbuf).map_err(io_err("reading standard input"))? {
            Input::Eof => self.stdin_eof = true,
            Input::Data(n) => {
                for c in self.conns.iter_mut().filter(|c| c.takes_input() && !c.s.tx_closed) {
                    c.s.queue(&self.appbuf[..n]);
                }
            }
            Input::Nothing => {}
        }
        Ok(())
    }

    // ------------------------------------------------------------------
    // Packets
    // ------------------------------------------------------------------

    fn read_tun(&mut self, now: Instant) -> Result<(), EmbeddedError> {
        for _ in 0..TUN_BATCH {
            let n = match self.tun.recv(&mut self.rxbuf) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => break,
                Err(e) => return Err(EmbeddedError::Io { what: format!("reading TUN {}", self.tun.name()), err: e }),
            };
            let off = if self.tun.vnet_hdr() { VNET_HDR_LEN.min(n) } else { 0 };
            self.tun_in.0 += 1;
            self.tun_in.1 += (n - off) as u64;
            if self.corrupt.rx.is_some() {
                let pkt = &mut self.rxbuf[off..n];
                let plen = crate::stack::wire::tcp_payload_len(pkt, 0);
                if CorruptHook::hit(self.corrupt.rx, &mut self.corrupt.rx_seen, plen) {
                    let fix = !self.ep.config().offload_checksums;
                    if crate::stack::wire::corrupt_payload_byte(pkt, &mut [], plen / 2, fix) {
                        self.corrupt.rx_done += 1;
                    }
                }
            }
            let pkt = &self.rxbuf[off..n];
            if let Some(tap) = &mut self.tap {
                tap.write(pkt, Direction::In).map_err(io_err("writing the --pcap file"))?;
            }
            if let Some((inner_src, inner_dst, detail, from)) = icmp_unreachable(pkt) {
                for c in self.conns.iter_mut().filter(|c| !c.established) {
                    if c.local == inner_src && c.peer == inner_dst {
                        c.unreachable = Some((detail.clone(), from));
                    }
                }
                continue;
            }
            self.ep.handle_packet(now, pkt);
        }
        Ok(())
    }

    /// Drain every packet the stack wants to send into the TUN (merged into
    /// TSO super-packets with --tun-offload, see [`super::gso`]). Zero-copy:
    /// headers from the stack, payloads as slices of its send buffer, one
    /// `writev(2)` per packet.
    fn flush_tx(&mut self, now: Instant) -> Result<(), EmbeddedError> {
        let offload = self.tun.vnet_hdr();
        let mut err: Option<io::Error> = None;
        while let Some((t, mut payload)) = self.ep.poll_transmit_parts(now, &mut self.txbuf) {
            if self.corrupt.tx.is_some() {
                let pl = payload.as_ref().map_or(0, |p| p.len());
                let plen = crate::stack::wire::tcp_payload_len(&self.txbuf[..t.len], pl);
                if CorruptHook::hit(self.corrupt.tx, &mut self.corrupt.tx_seen, plen) {
                    // The payload is the send buffer: change a copy.
                    let mut v = payload.as_ref().map(|p| p.to_vec()).unwrap_or_default();
                    let fix = !self.ep.config().offload_checksums;
                    if crate::stack::wire::corrupt_payload_byte(&mut self.txbuf[..t.len], &mut v, plen / 2, fix) {
                        self.corrupt.tx_done += 1;
                    }
                    if payload.is_some() {
                        payload = Some(crate::stack::buf::Slice::copy_from(&v));
                    }
                }
            }
            let hdr = &self.txbuf[..t.len];
            if let Some(tap) = &mut self.tap {
                let whole: Vec<u8>;
                let pkt = match &payload {
                    Some(p) => {
                        whole = [hdr, &p[..]].concat();
                        &whole[..]
                    }
                    None => hdr,
                };
                tap.write(pkt, Direction::Out).map_err(io_err("writing the --pcap file"))?;
            }
            let (tun, stats) = (&self.tun, &mut self.tun_stats);
            if offload {
                self.gso.push(hdr, payload.as_ref(), &mut |p| write_tun(tun, p, VNET_HDR_LEN, stats, &mut err));
            } else {
                let pl: &[u8] = payload.as_deref().unwrap_or(&[]);
                write_tun(tun, &[IoSlice::new(hdr), IoSlice::new(pl)], 0, stats, &mut err);
            }
        }
        if offload {
            let (tun, stats) = (&self.tun, &mut self.tun_stats);
            self.gso.flush(&mut |p| write_tun(tun, p, VNET_HDR_LEN, stats, &mut err));
        }
        match err {
            Some(e) => Err(EmbeddedError::Io { what: format!("writing TUN {}", self.tun.name()), err: e }),
            None => Ok(()),
        }
    }

    // ------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------

    fn push_event(&mut self, mut ev: ControlEvent) {
        ev.time_ms = self.origin.elapsed().as_millis() as u64;
        self.log.push(ev);
    }

    fn conn_index(&self, h: ConnHandle) -> Option<usize> {
        self.conns.iter().position(|c| c.h == h)
    }

    fn process_events(&mut self, now: Instant) {
        while let Some(ev) = self.ep.poll_event() {
            self.on_event(now, ev);
        }
    }

    fn token_of(&self, h: ConnHandle) -> Option<String> {
        self.ep.info(h).filter(|i| i.mptcp).map(|i| token_hex(i.local_token))
    }

    fn on_event(&mut self, now: Instant, ev: Event) {
        let v = self.opts.verbose;
        let keep_open = self.rules.keep_open;
        match ev {
            Event::Connected(h) => {
                let token = self.token_of(h);
                if let Some(k) = self.conn_index(h) {
                    let c = &mut self.conns[k];
                    c.established = true;
                    c.s.touch(StdInstant::now());
                    if let Some(i) = self.ep.info(h) {
                        c.local = i.local;
                    }
                    if v > 0 {
                        note(format!(
                            "connected to {} from {} (embedded MPTCP, TUN {})",
                            c.peer,
                            c.local,
                            self.tun.name()
                        ));
                    }
                    let (local, peer) = (c.local, c.peer);
                    self.negotiation(k);
                    self.push_event(ControlEvent {
                        kind: "established".into(),
                        token,
                        local: Some(local.to_string()),
                        remote: Some(peer.to_string()),
                        ..Default::default()
                    });
                }
            }
            Event::Accepted { conn, .. } => {
                let Some(info) = self.ep.info(conn) else { return };
                if !self.rules.admits(self.served) {
                    // ncat: without -k, one client and no more (joins of the
                    // client being served still reach it by token).
                    if v > 0 {
                        note(format!("turned away {} (already serving a client; -k serves several)", info.remote));
                    }
                    let _ = self.ep.abort(conn);
                    self.ep.release(conn);
                    return;
                }
                self.served += 1;
                let mut c = Conn::new(conn, info.local, info.remote, false);
                c.established = true;
                if v > 0 {
                    note(format!("connection from {} to {}", info.remote, info.local));
                }
                if let Some(argv) = &self.opts.exec {
                    match spawn(argv) {
                        Ok(ch) => {
                            c.child = Some(ch);
                            c.s.program = true;
                        }
                        Err(e) => {
                            let _ = self.ep.abort(conn);
                            c.ending = Some(Err(EmbeddedError::Program(format!("could not start: {e}"))));
                        }
                    }
                }
                let token = info.mptcp.then(|| token_hex(info.local_token));
                self.conns.push(c);
                let k = self.conns.len() - 1;
                self.push_event(ControlEvent {
                    kind: "created".into(),
                    token: token.clone(),
                    local: Some(info.local.to_string()),
                    remote: Some(info.remote.to_string()),
                    ..Default::default()
                });
                self.negotiation(k);
                self.push_event(ControlEvent {
                    kind: "established".into(),
                    token,
                    local: Some(info.local.to_string()),
                    remote: Some(info.remote.to_string()),
                    ..Default::default()
                });
            }
            Event::SubflowUp { conn, subflow } => {
                let token = self.token_of(conn);
                if let Some(k) = self.conn_index(conn) {
                    let c = &mut self.conns[k];
                    let new = !c.subflows.contains_key(&subflow.id);
                    if v > 0 && new && (subflow.join || c.established) {
                        note(format!(
                            "{}subflow #{} open: {}",
                            c.tag(keep_open),
                            subflow.id,
                            describe_subflow(&subflow)
                        ));
                    }
                    c.subflows.insert(subflow.id, subflow);
                }
                if subflow.join {
                    self.push_event(ControlEvent {
                        kind: "sub_established".into(),
                        token,
                        local: Some(subflow.local.to_string()),
                        remote: Some(subflow.remote.to_string()),
                        id_loc: Some(subflow.local_id),
                        id_rem: Some(subflow.remote_id),
                        backup: Some(subflow.backup),
                        ..Default::default()
                    });
                }
            }
            Event::SubflowDown { conn, subflow, reason } => {
                let token = self.token_of(conn);
                if let Some(k) = self.conn_index(conn) {
                    let c = &mut self.conns[k];
                    if c.subflows_down.insert(subflow.id) && v > 0 && !c.fallback_quiet() {
                        note(format!(
                            "{}subflow #{} closed: {} -> {} ({reason})",
                            c.tag(keep_open),
                            subflow.id,
                            subflow.local,
                            subflow.remote
                        ));
                    }
                }
                self.push_event(ControlEvent {
                    kind: "sub_closed".into(),
                    token,
                    local: Some(subflow.local.to_string()),
                    remote: Some(subflow.remote.to_string()),
                    id_loc: Some(subflow.local_id),
                    id_rem: Some(subflow.remote_id),
                    reason: Some(reason.to_string()),
                    ..Default::default()
                });
            }
            Event::Fallback { conn, reason } => {
                if let Some(k) = self.conn_index(conn) {
                    let c = &mut self.conns[k];
                    c.fallback = Some(reason);
                    // Before the handshake completes, `negotiation` reports it.
                    if c.established && c.ending.is_none() {
                        let peer = c.peer;
                        if self.opts.require_mptcp {
                            let _ = self.ep.abort(conn);
                            c.ending = Some(Err(EmbeddedError::Fallback { peer, reason }));
                        } else if v > 0 {
                            note(format!("{}fallback to plain TCP: {reason}", c.tag(keep_open)));
                        }
                    }
                }
                self.push_event(ControlEvent {
                    kind: "fallback".into(),
                    reason: Some(reason.to_string()),
                    ..Default::default()
                });
            }
            Event::FullyEstablished(h) => {
                if v > 1 {
                    if let Some(c) = self.conn_index(h).map(|k| &self.conns[k]) {
                        note(format!("{}MPTCP fully established (the peer has our key)", c.tag(keep_open)));
                    }
                }
            }
            Event::AddressAnnounced { conn, addr_id, addr } => {
                let token = self.token_of(conn);
                if v > 0 {
                    if let Some(c) = self.conn_index(conn).map(|k| &self.conns[k]) {
                        note(format!("{}peer announced address id {addr_id}: {addr}", c.tag(keep_open)));
                    }
                }
                self.push_event(ControlEvent {
                    kind: "announced".into(),
                    token,
                    remote: Some(addr.to_string()),
                    id_rem: Some(addr_id),
                    ..Default::default()
                });
            }
            Event::AddressRemoved { conn, addr_id } => {
                let token = self.token_of(conn);
                if v > 0 {
                    if let Some(c) = self.conn_index(conn).map(|k| &self.conns[k]) {
                        note(format!("{}peer removed address id {addr_id}", c.tag(keep_open)));
                    }
                }
                self.push_event(ControlEvent {
                    kind: "removed".into(),
                    token,
                    id_rem: Some(addr_id),
                    ..Default::default()
                });
            }
            Event::Closed { conn, reason } => {
                let token = self.token_of(conn);
                let snap = self.ep.conn_snapshot(conn, now);
                if let Some(k) = self.conn_index(conn) {
                    let c = &mut self.conns[k];
                    c.closed = Some(reason);
                    if snap.is_some() {
                        c.last_snapshot = snap;
                    }
                    // A normal close may leave data to read: `service`
                    // drains it and ends the session at the end of the stream.
                    if c.ending.is_none() && reason != CloseReason::Normal {
                        c.ending = Some(Err(close_error(c.established, c.peer, reason)));
                    }
                }
                self.push_event(ControlEvent {
                    kind: "closed".into(),
                    token,
                    reason: Some(reason.to_string()),
                    ..Default::default()
                });
            }
            Event::Readable(_) | Event::Writable(_) | Event::PeerClosed(_) => {}
        }
    }

    /// Report (and with --require-mptcp enforce) what the handshake negotiated.
    fn negotiation(&mut self, k: usize) {
        let opts = self.opts;
        let c = &mut self.conns[k];
        let Some(info) = self.ep.info(c.h) else { return };
        let tag = c.tag(self.rules.keep_open);
        if info.mptcp {
            if opts.verbose > 0 {
                note(format!(
                    "{tag}MPTCP established: token {} (peer's {}), {}",
                    token_hex(info.local_token),
                    token_hex(info.remote_token),
                    if info.checksums { "DSS checksums on" } else { "no DSS checksums" }
                ));
                for sf in &info.subflows {
                    note(format!("{tag}subflow #{} open: {}", sf.id, describe_subflow(sf)));
                }
            }
        } else {
            let reason = info.fallback.or(c.fallback);
            let who = if c.client { "the server" } else { "the client" };
            let why = reason.map_or_else(|| format!("{who} did not negotiate MPTCP"), |r| r.to_string());
            if opts.require_mptcp {
                let _ = self.ep.abort(c.h);
                c.ending = Some(Err(EmbeddedError::Fallback {
                    peer: c.peer,
                    reason: reason.unwrap_or(FallbackReason::NoMpCapableInSynAck),
                }));
                return;
            }
            if opts.verbose > 0 {
                note(format!("{tag}fallback to plain TCP: {why}"));
            }
        }
        for sf in &info.subflows {
            c.subflows.insert(sf.id, *sf);
        }
    }

    // ------------------------------------------------------------------
    // The application side
    // ------------------------------------------------------------------

    fn service_conns(&mut self) -> Result<(), EmbeddedError> {
        for k in 0..self.conns.len() {
            self.service(k)?;
        }
        Ok(())
    }

    /// Move data for connection `k` and decide whether its session ended.
    /// Errors are the process's own (standard output); a connection's
    /// failure goes into its `ending`.
    fn service(&mut self, k: usize) -> Result<(), EmbeddedError> {
        let opts = self.opts;
        let rules = self.rules;
        let stdin_eof = self.stdin_eof;
        let wall = StdInstant::now();
        let c = &mut self.conns[k];
        if c.ending.is_some() {
            return Ok(());
        }
        if !c.established {
            if let Some((detail, from)) = c.unreachable.take() {
                let _ = self.ep.abort(c.h);
                c.ending = Some(Err(EmbeddedError::Unreachable { remote: c.peer, detail, from }));
            } else if c.deadline.is_some_and(|d| StdInstant::now() >= d) {
                let _ = self.ep.abort(c.h);
                let after = fmt_duration(opts.connect_timeout.unwrap_or_default());
                c.ending = Some(Err(EmbeddedError::ConnectTimeout { remote: c.peer, after }));
            }
            return Ok(());
        }
        // The program: its output becomes our input, its exit ends the session.
        if let Some(ch) = &mut c.child {
            if let Some(out) = &mut ch.stdout {
                if c.s.pending() < CHUNK {
                    match out.read(&mut self.appbuf) {
                        Ok(0) => {
                            ch.stdout = None;
                            c.child_eof = true;
                        }
                        Ok(n) => c.s.queue(&self.appbuf[..n]),
                        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
                        Err(_) => {
                            ch.stdout = None;
                            c.child_eof = true;
                        }
                    }
                }
            }
            if let Some(inp) = &mut ch.stdin {
                while c.to_child_off < c.to_child.len() {
                    match inp.write(&c.to_child[c.to_child_off..]) {
                        Ok(n) => c.to_child_off += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            // The program closed its input: drop what it will not read.
                            ch.stdin = None;
                            c.to_child_off = c.to_child.len();
                            break;
                        }
                    }
                }
                if c.to_child_off == c.to_child.len() {
                    c.to_child.clear();
                    c.to_child_off = 0;
                    if c.s.rx_eof {
                        ch.stdin = None;
                    }
                }
            }
        }
        let input_eof = if c.child.is_some() { c.child_eof } else { stdin_eof };
        let mut conn = StackConn { ep: &mut self.ep, h: c.h, peer: c.peer, established: c.established };
        let mut stdout = Stdout { log: &mut *self.sink, send_only: rules.send_only };
        let mut program;
        let out: &mut dyn Output = match &c.child {
            Some(ch) => {
                program = ToProgram { log: stdout.log, to_child: &mut c.to_child, open: ch.stdin.is_some() };
                &mut program
            }
            None => &mut stdout,
        };
        let turn = c.s.step(&rules, &mut conn, out, &mut self.appbuf, input_eof, wall)?;
        if turn.peer_closed && c.to_child.is_empty() {
            if let Some(ch) = &mut c.child {
                ch.stdin = None;
            }
        }
        if let Some(End::Failed(e)) = turn.end {
            c.ending = Some(Err(e));
            return Ok(());
        }
        // Has the session ended?
        if let Some(ch) = &mut c.child {
            match ch.child.try_wait() {
                // Its exit ends the session once what it wrote before
                // exiting was read to EOF and handed to the connection:
                // the pipe can still hold its last output.
                Ok(Some(st)) if c.child_eof && c.s.pending() == 0 => {
                    c.ending = Some(if st.success() { Ok(()) } else { Err(EmbeddedError::Program(st.to_string())) });
                }
                Ok(Some(_)) | Ok(None) => {}
                Err(e) => c.ending = Some(Err(EmbeddedError::Program(format!("cannot be waited for: {e}")))),
            }
            return Ok(());
        }
        if c.closed.is_some() && c.s.rx_eof {
            // The stack closed the connection and everything was read.
            c.ending = Some(Ok(()));
            return Ok(());
        }
        c.ending = match turn.end {
            None => None,
            Some(End::Done) => Some(Ok(())),
            Some(End::Acknowledged) => {
                let _ = self.ep.abort(c.h);
                Some(Ok(()))
            }
            Some(End::Idle(idle)) => {
                let _ = self.ep.abort(c.h);
                Some(Err(EmbeddedError::Idle(fmt_duration(idle))))
            }
            Some(End::Failed(e)) => Some(Err(e)),
        };
        Ok(())
    }

    /// Connections whose session ended: close them, let them linger until
    /// their close handshakes are done, report and release them. Returns the
    /// first failure.
    fn reap(&mut self, now: Instant) -> Option<EmbeddedError> {
        let mut failure = None;
        let mut k = 0;
        while k < self.conns.len() {
            let c = &mut self.conns[k];
            let Some(ending) = &c.ending else {
                k += 1;
                continue;
            };
            if c.linger_until.is_none() {
                c.linger_until = Some(StdInstant::now() + LINGER);
                if ending.is_ok() && c.closed.is_none() && !self.rules.abort {
                    // Our side is done: DATA_FIN, if not sent yet (not with
                    // --no-shutdown: the peer decides when it ends).
                    if !self.rules.no_shutdown || c.s.rx_eof {
                        let _ = self.ep.close(c.h);
                    }
                }
                if let Some(ch) = &mut c.child {
                    ch.stdin = None;
                }
            }
            if let Some(s) = self.ep.conn_snapshot(c.h, now) {
                c.last_snapshot = Some(s);
            }
            let done = c.linger_until.is_some_and(|t| StdInstant::now() >= t) || self.close_complete(k);
            if !done {
                k += 1;
                continue;
            }
            let mut c = self.conns.remove(k);
            self.report(&mut c);
            if let Some(mut ch) = c.child.take() {
                let _ = ch.child.kill();
                let _ = ch.child.wait();
            }
            // Still open (a failure, or a peer that did not close within
            // LINGER): this process and its TUN are going away, so tell the
            // peer now (MP_FASTCLOSE, or RST after a fallback) rather than
            // leave it to its timeouts.
            if c.closed.is_none() {
                let _ = self.ep.abort(c.h);
            }
            self.ep.release(c.h);
            if let Some(Err(e)) = c.ending.take() {
                if self.rules.keep_open {
                    note(format!("{}{e}", c.tag(true)));
                } else if failure.is_none() {
                    failure = Some(e);
                }
            }
            if let Err(e) = self.sink.flush() {
                note(format!("writing the -o/-x log: {e}"));
            }
        }
        failure
    }

    /// Whether the connection's close is complete enough to let go: the
    /// stack reported it closed and no subflow is still exchanging FINs.
    fn close_complete(&self, k: usize) -> bool {
        let c = &self.conns[k];
        if matches!(c.ending, Some(Err(_))) && !c.established {
            return true;
        }
        if c.closed.is_none() {
            // A failed session is aborted, which closes at once; a clean one
            // waits for the DATA_FIN exchange.
            return false;
        }
        c.last_snapshot.as_ref().is_none_or(|s| {
            s.subflows.iter().all(|sf| matches!(sf.state.as_deref(), Some("TIME-WAIT") | Some("CLOSED") | None))
        })
    }

    /// -v at the end of a connection: bytes per subflow, then the total.
    fn report(&self, c: &mut Conn) {
        let opts = self.opts;
        if opts.verbose == 0 {
            return;
        }
        let tag = c.tag(self.rules.keep_open);
        // Subflows still open when the connection ended close with it.
        if !c.fallback_quiet() {
            for (id, sf) in &c.subflows {
                if !c.subflows_down.contains(id) {
                    note(format!("{tag}subflow #{id} closed: {} -> {} (with the connection)", sf.local, sf.remote));
                }
            }
        }
        match &c.last_snapshot {
            Some(s) => {
                for sf in s.subflows.iter().filter(|_| !s.fallback) {
                    let totals = session::SubflowTotals {
                        id: sf.id.unwrap_or(0),
                        path: format!("{} -> {}", sf.local, sf.remote),
                        sent: sf.bytes_sent.unwrap_or(0).saturating_sub(sf.bytes_retrans.unwrap_or(0)),
                        received: sf.bytes_received.unwrap_or(0),
                        retransmits: sf.retransmits.unwrap_or(0),
                        rtt_us: sf.rtt_us.unwrap_or(0),
                        cwnd: sf.cwnd.unwrap_or(0),
                    };
                    note(session::subflow_report(&tag, &totals, opts.verbose));
                }
                let n = s.subflows.len();
                match &s.token {
                    Some(t) if !s.fallback => note(session::connection_report(&tag, t, n, c.s.sent, c.s.received)),
                    _ => note(session::tcp_report(&tag, c.local, c.peer, c.s.sent, c.s.received)),
                }
            }
            None => note(session::tcp_report(&tag, c.local, c.peer, c.s.sent, c.s.received)),
        }
        let how = match (&c.ending, c.closed) {
            (_, Some(CloseReason::Aborted)) => " (abortive close: MP_FASTCLOSE)",
            _ => "",
        };
        note(format!("{tag}closed after {:.2}s{how}", c.s.age(StdInstant::now()).as_secs_f64()));
        if opts.verbose > 1 {
            note(format!(
                "TUN {}: {} packets ({} bytes) in, {} packets ({} bytes) out, {} dropped{}",
                self.tun.name(),
                self.tun_in.0,
                self.tun_in.1,
                self.tun_stats.packets,
                self.tun_stats.bytes,
                self.tun_stats.drops,
                if self.tun.vnet_hdr() {
                    format!(" ({} segments of the stack merged into {} packets)", self.gso.segments, self.gso.packets)
                } else {
                    String::new()
                }
            ));
        }
    }

    /// On a termination signal: abort every connection (MP_FASTCLOSE or
    /// RST) so the kernel peer does not wait for us, and send that out.
    fn abort_all(&mut self) {
        let now = self.now();
        for c in &mut self.conns {
            let _ = self.ep.abort(c.h);
            if let Some(ch) = &mut c.child {
                let _ = ch.child.kill();
                let _ = ch.child.wait();
            }
        }
        let _ = self.flush_tx(now);
        let _ = self.sink.flush();
    }

    fn shutdown(&mut self) {
        if let Some(tap) = &mut self.tap {
            if let Err(e) = tap.flush() {
                note(format!("writing the --pcap file: {e}"));
            }
        }
    }
}

/// The one-line failure for a connection with `peer` the stack closed with
/// `r` (before or after the handshake completed).
fn close_error(established: bool, peer: SocketAddr, r: CloseReason) -> EmbeddedError {
    if !established {
        match r {
            CloseReason::Refused => return EmbeddedError::Refused { remote: peer },
            CloseReason::Timeout => return EmbeddedError::SynTimeout { remote: peer },
            _ => {}
        }
    }
    EmbeddedError::Ended { peer, what: close_reason_text(r) }
}

fn close_reason_text(r: CloseReason) -> String {
    match r {
        CloseReason::Timeout => "timed out (peer unreachable)".into(),
        CloseReason::PeerFastClose => "aborted by the peer (MP_FASTCLOSE)".into(),
        r => r.to_string(),
    }
}

fn describe_subflow(sf: &SubflowInfo) -> String {
    format!(
        "{} -> {} (address ids local {}, remote {}{}{})",
        sf.local,
        sf.remote,
        sf.local_id,
        sf.remote_id,
        if sf.join { "; MP_JOIN" } else { "" },
        if sf.backup { "; backup" } else { "" }
    )
}

fn spawn(argv: &[String]) -> io::Result<ChildIo> {
    let (prog, rest) =
        argv.split_first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let mut child = Command::new(prog).args(rest).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    if let Some(s) = &stdin {
        sys::set_nonblocking(s.as_raw_fd(), true)?;
    }
    if let Some(s) = &stdout {
        sys::set_nonblocking(s.as_raw_fd(), true)?;
    }
    Ok(ChildIo { child, stdin, stdout })
}

/// The ICMP and ICMPv6 fields an unreachable message is read by (RFC 792,
/// RFC 4443 §2.1 and §3.1); the IP and TCP headers around them go through
/// [`crate::stack::wire`]'s offsets.
mod icmp {
    pub const PROTO_ICMP: u8 = 1;
    pub const PROTO_ICMPV6: u8 = 58;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    /// Type, code, checksum and 4 unused bytes; the offending packet follows.
    pub const HEADER_LEN: usize = 8;
    pub const V4_DEST_UNREACHABLE: u8 = 3;
    pub const V6_DEST_UNREACHABLE: u8 = 1;
}

/// An ICMP/ICMPv6 destination-unreachable about one of our TCP segments:
/// (the segment's source, its destination, what ICMP said, who said it).
pub fn icmp_unreachable(pkt: &[u8]) -> Option<(SocketAddr, SocketAddr, String, IpAddr)> {
    let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
    match pkt.first()? >> 4 {
        4 => {
            let ihl = usize::from(pkt[ipv4::VER_IHL] & 0x0f) * 4;
            // Anything may come from the kernel side (a raw socket there):
            // lengths first, then fields.
            if ihl < ipv4::HEADER_LEN || pkt.len() < ihl + icmp::HEADER_LEN || pkt[ipv4::PROTO] != icmp::PROTO_ICMP {
                return None;
            }
            let from = ipv4_at(pkt, ipv4::SRC)?;
            let msg = &pkt[ihl..];
            if msg[icmp::TYPE] != icmp::V4_DEST_UNREACHABLE {
                return None;
            }
            let detail = match msg[icmp::CODE] {
                0 => "network unreachable",
                1 => "host unreachable",
                2 => "protocol unreachable",
                3 => "port unreachable",
                4 => "fragmentation needed",
                9 | 10 | 13 => "administratively prohibited",
                _ => "destination unreachable",
            };
            let inner = &msg[icmp::HEADER_LEN..];
            if inner.len() < ipv4::HEADER_LEN || inner[ipv4::VER_IHL] >> 4 != 4 || inner[ipv4::PROTO] != PROTO_TCP {
                return None;
            }
            let iihl = usize::from(inner[ipv4::VER_IHL] & 0x0f) * 4;
            let t = inner.get(iihl..iihl + tcp::DST_PORT.end)?;
            let src = SocketAddr::new(ipv4_at(inner, ipv4::SRC)?, port(&t[tcp::SRC_PORT]));
            let dst = SocketAddr::new(ipv4_at(inner, ipv4::DST)?, port(&t[tcp::DST_PORT]));
            Some((src, dst, detail.to_string(), from))
        }
        6 => {
            if pkt.len() < ipv6::HEADER_LEN + icmp::HEADER_LEN || pkt[ipv6::NEXT_HEADER] != icmp::PROTO_ICMPV6 {
                return None;
            }
            let from = ipv6_at(pkt, ipv6::SRC)?;
            let msg = &pkt[ipv6::HEADER_LEN..];
            if msg[icmp::TYPE] != icmp::V6_DEST_UNREACHABLE {
                return None;
            }
            let detail = match msg[icmp::CODE] {
                0 => "no route to destination",
                1 => "administratively prohibited",
                3 => "address unreachable",
                4 => "port unreachable",
                _ => "destination unreachable",
            };
            let inner = &msg[icmp::HEADER_LEN..];
            if inner.len() < ipv6::HEADER_LEN + tcp::DST_PORT.end
                || inner[0] >> 4 != 6
                || inner[ipv6::NEXT_HEADER] != PROTO_TCP
            {
                return None;
            }
            let t = &inner[ipv6::HEADER_LEN..];
            let src = SocketAddr::new(ipv6_at(inner, ipv6::SRC)?, port(&t[tcp::SRC_PORT]));
            let dst = SocketAddr::new(ipv6_at(inner, ipv6::DST)?, port(&t[tcp::DST_PORT]));
            Some((src, dst, detail.to_string(), from))
        }
        _ => None,
    }
}

fn ipv4_at(b: &[u8], r: std::ops::Range<usize>) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(b.get(r)?).ok()?)))
}

fn ipv6_at(b: &[u8], r: std::ops::Range<usize>) -> Option<IpAddr> {
    Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(b.get(r)?).ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icmp_unreachable_takes_any_bytes() {
        // Short and garbage packets of both versions: no panic, no match.
        for len in 0..100 {
            for first in [0x40u8, 0x45, 0x4f, 0x60, 0x00, 0xff] {
                let mut p: Vec<u8> = (0..len).map(|i| (i * 29 + 7) as u8).collect();
                if let Some(b) = p.first_mut() {
                    *b = first;
                }
                if len > 9 {
                    p[9] = 1;
                }
                if len > 6 {
                    p[6] = 58;
                }
                let _ = icmp_unreachable(&p);
            }
        }
        assert!(icmp_unreachable(&[0x40, 0, 0, 0, 0, 0, 0, 0, 0]).is_none());
    }

    #[test]
    fn icmp_unreachable_is_matched_to_the_segment() {
        // ICMP host unreachable from 10.200.0.1 about 10.200.0.2:40000 -> 10.9.0.1:5000.
        let mut inner = vec![0u8; 28];
        inner[0] = 0x45;
        inner[9] = 6;
        inner[12..16].copy_from_slice(&[10, 200, 0, 2]);
        inner[16..20].copy_from_slice(&[10, 9, 0, 1]);
        inner[20..22].copy_from_slice(&40000u16.to_be_bytes());
        inner[22..24].copy_from_slice(&5000u16.to_be_bytes());
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[9] = 1;
        p[12..16].copy_from_slice(&[10, 200, 0, 1]);
        p[16..20].copy_from_slice(&[10, 200, 0, 2]);
        p.extend_from_slice(&[3, 1, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&inner);
        let (src, dst, detail, from) = icmp_unreachable(&p).unwrap();
        assert_eq!(src, "10.200.0.2:40000".parse().unwrap());
        assert_eq!(dst, "10.9.0.1:5000".parse().unwrap());
        assert_eq!(detail, "host unreachable");
        assert_eq!(from.to_string(), "10.200.0.1");
        // Not ICMP, or an echo request: nothing.
        p[9] = 6;
        assert!(icmp_unreachable(&p).is_none());
        p[9] = 1;
        p[20] = 8;
        assert!(icmp_unreachable(&p).is_none());
        assert!(icmp_unreachable(&[]).is_none());
        assert!(icmp_unreachable(&[0x45, 0, 0]).is_none());
    }

    #[test]
    fn icmpv6_unreachable_is_matched_to_the_segment() {
        // ICMPv6 address unreachable from 2001:db8::1 about
        // [2001:db8::2]:40000 -> [2001:db8:9::1]:5000.
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap().octets();
        let mut inner = vec![0u8; 48];
        inner[0] = 0x60;
        inner[6] = 6;
        inner[8..24].copy_from_slice(&a("2001:db8::2"));
        inner[24..40].copy_from_slice(&a("2001:db8:9::1"));
        inner[40..42].copy_from_slice(&40000u16.to_be_bytes());
        inner[42..44].copy_from_slice(&5000u16.to_be_bytes());
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[6] = 58;
        p[8..24].copy_from_slice(&a("2001:db8::1"));
        p[24..40].copy_from_slice(&a("2001:db8::2"));
        p.extend_from_slice(&[1, 3, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&inner);
        let (src, dst, detail, from) = icmp_unreachable(&p).unwrap();
        assert_eq!(src, "[2001:db8::2]:40000".parse().unwrap());
        assert_eq!(dst, "[2001:db8:9::1]:5000".parse().unwrap());
        assert_eq!(detail, "address unreachable");
        assert_eq!(from.to_string(), "2001:db8::1");
        // An echo request, or the offending packet cut before its ports: nothing.
        p[40] = 128;
        assert!(icmp_unreachable(&p).is_none());
        p[40] = 1;
        assert!(icmp_unreachable(&p[..p.len() - 5]).is_none());
    }
}
