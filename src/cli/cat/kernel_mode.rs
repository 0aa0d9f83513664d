//! `--stack kernel`: client and server over the host's IPPROTO_MPTCP
//! sockets, with ncat's habits, and `-v` reports from MPTCP_INFO /
//! MPTCP_FULL_INFO (negotiation, token, subflows opening and closing,
//! per-subflow bytes at exit).
//!
//! The session rules are [`crate::session`]'s; here each connection's
//! socket is its [`Transport`], read and written once per readiness that
//! poll(2) reports. A -e/-c program gets the socket itself as its standard
//! input and output, so the session only waits for its exit.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};

use super::args::{CatArgs, Target};
use super::output::{SessionLog, note};
use super::pm_config::PmGuard;
use crate::session::{self, ConnSession, End, Input, Received, Rules, Stdout, Transport};
use crate::snapshot::token_hex;
use crate::sys::mptcp_socket::{self, FullInfo, SocketError, SocketOptions, SubflowInfo};
use crate::sys::signals::{self, Termination};
use crate::sys::{self, POLLIN, POLLOUT, PollFd};

const CHUNK: usize = 256 * 1024;
/// Stop reading standard input while a connection has this much unsent.
const TX_HIGH_WATER: usize = 1024 * 1024;
/// How often -v looks for subflows opening and closing.
const MONITOR_EVERY: Duration = Duration::from_millis(100);

/// Show IPv4-mapped IPv6 addresses as IPv4.
fn unmap(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => a,
        },
        _ => a,
    }
}

/// Resolve HOST PORT, honouring -4/-6.
pub(crate) fn resolve(host: &str, port: u16, v4: bool, v6: bool) -> anyhow::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {host}"))?
        .filter(|a| !(v4 && a.is_ipv6() || v6 && a.is_ipv4()))
        .collect();
    if addrs.is_empty() {
        bail!("{host} has no {} address", if v4 { "IPv4" } else { "IPv6" });
    }
    Ok(addrs)
}

pub fn run(args: &CatArgs, target: Target, term: &Termination) -> anyhow::Result<()> {
    let opts = SocketOptions { congestion: args.cc.clone(), fastopen: args.fastopen };
    let listen = matches!(target, Target::Listen { .. });
    let _pm = PmGuard::apply(args, listen)?;
    let mut s = Session::new(args, term)?;
    match target {
        Target::Connect { host, port } => {
            let remotes = resolve(&host, port, args.ipv4, args.ipv6)?;
            let (stream, remote) = connect_any(args, &remotes, &opts, term)?;
            s.add_conn(stream, true, Some(remote))?;
        }
        Target::Listen { addr, port } => {
            // Without an explicit ADDR the server listens on the wildcard
            // address, even with --local: MP_JOINs towards the addresses it
            // announces (ADD_ADDR) must find the listener too.
            let v6 = args.ipv6 || args.local.first().is_some_and(|l| l.addr.is_ipv6());
            let ip = match &addr {
                Some(a) => resolve(a, port, args.ipv4, args.ipv6)?[0].ip(),
                None if v6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            };
            let listener = mptcp_socket::listen(SocketAddr::new(ip, port), 64, &opts)?;
            listener.set_nonblocking(true).context("listener: O_NONBLOCK")?;
            if args.verbose > 0 {
                let at = listener.local_addr().map(|a| a.to_string()).unwrap_or_else(|_| format!("{ip}:{port}"));
                note(format!("listening on {at} (kernel MPTCP)"));
            }
            s.listener = Some(listener);
        }
    }
    s.run()
}

fn connect_any(
    args: &CatArgs,
    remotes: &[SocketAddr],
    opts: &SocketOptions,
    term: &Termination,
) -> anyhow::Result<(TcpStream, SocketAddr)> {
    let mut last: Option<SocketError> = None;
    for remote in remotes {
        let src_ip = args.source.or_else(|| args.local.first().map(|l| l.addr));
        let src_port = args.source_port.or_else(|| args.local.first().and_then(|l| l.port));
        let local = match (src_ip, src_port) {
            (None, None) => None,
            (ip, port) => {
                let ip = ip.unwrap_or(if remote.is_ipv6() {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                });
                if ip.is_ipv6() != remote.is_ipv6() {
                    continue;
                }
                Some(SocketAddr::new(ip, port.unwrap_or(0)))
            }
        };
        match mptcp_socket::connect(*remote, local, opts, args.connect_timeout, Some(term.fd())) {
            Ok(s) => return Ok((s, *remote)),
            Err(e @ (SocketError::MptcpDisabled | SocketError::MptcpUnsupported | SocketError::Interrupted)) => {
                return Err(e.into());
            }
            Err(e) => {
                if args.verbose > 0 && remotes.len() > 1 {
                    note(&e);
                }
                last = Some(e);
            }
        }
    }
    Err(match last {
        Some(e) => e.into(),
        None => anyhow!("no address of the target matches the source address family"),
    })
}

/// -v's view of one MPTCP connection's subflows.
struct Monitor {
    tag: String,
    token: u32,
    live: BTreeMap<u32, SubflowInfo>,
    gone: Vec<SubflowInfo>,
    last_poll: Instant,
}

fn fmt_pair(s: &SubflowInfo) -> String {
    let a = |x: Option<SocketAddr>| x.map(|a| unmap(a).to_string()).unwrap_or_else(|| "?".into());
    format!("{} -> {}", a(s.local), a(s.remote))
}

/// " (address ids local 1, remote 0; flags Jjec)" from sock_diag, when it answers.
fn ulp_note(sf: &SubflowInfo) -> String {
    match (sf.local, sf.remote) {
        (Some(l), Some(r)) => match mptcp_socket::subflow_ulp(l, r) {
            Some(u) => format!(
                " (address ids local {}, remote {}; flags {})",
                u.id_loc,
                u.id_rem,
                crate::snapshot::subflow_flags::letters(u.flags)
            ),
            None => String::new(),
        },
        _ => String::new(),
    }
}

impl Monitor {
    fn new(tag: String, info: FullInfo, verbose: u8) -> Monitor {
        let mut m =
            Monitor { tag, token: info.info.token, live: BTreeMap::new(), gone: Vec::new(), last_poll: Instant::now() };
        m.update(info, verbose);
        m
    }

    fn update(&mut self, info: FullInfo, verbose: u8) {
        if info.info.token != 0 {
            self.token = info.info.token;
        }
        // Once the connection is closed the kernel may list a detached first
        // subflow with id 0 and no peer port: not a subflow of the connection.
        let subflows: Vec<&SubflowInfo> =
            info.subflows.iter().filter(|s| s.id != 0 && s.remote.is_some_and(|r| r.port() != 0)).collect();
        let ids: Vec<u32> = subflows.iter().map(|s| s.id).collect();
        for sf in subflows {
            match self.live.get_mut(&sf.id) {
                Some(old) => {
                    // Counters only grow; a closing socket reports zeros.
                    // (None, from a kernel that does not count, is below any count.)
                    if sf.tcp.bytes_sent >= old.tcp.bytes_sent && sf.tcp.bytes_received >= old.tcp.bytes_received {
                        *old = sf.clone();
                    }
                }
                None => {
                    if verbose > 0 {
                        note(format!("{}subflow #{} open: {}{}", self.tag, sf.id, fmt_pair(sf), ulp_note(sf)));
                    }
                    self.live.insert(sf.id, sf.clone());
                }
            }
        }
        let closed: Vec<u32> = self.live.keys().filter(|id| !ids.contains(id)).copied().collect();
        for id in closed {
            if let Some(sf) = self.live.remove(&id) {
                if verbose > 0 {
                    note(format!("{}subflow #{} closed: {}", self.tag, sf.id, fmt_pair(&sf)));
                }
                self.gone.push(sf);
            }
        }
    }

    fn poll(&mut self, fd: i32, verbose: u8, force: bool) {
        if !force && self.last_poll.elapsed() < Duration::from_millis(5) {
            return;
        }
        self.last_poll = Instant::now();
        if let Ok(Some(info)) = mptcp_socket::snapshot(fd) {
            self.update(info, verbose);
        }
    }

    fn report(&self, verbose: u8, sent: u64, received: u64) {
        let mut all: Vec<&SubflowInfo> = self.gone.iter().chain(self.live.values()).collect();
        all.sort_by_key(|s| s.id);
        for sf in all {
            let t = &sf.tcp;
            let totals = session::SubflowTotals {
                id: u64::from(sf.id),
                path: fmt_pair(sf),
                sent: t.bytes_sent.unwrap_or(0).saturating_sub(t.bytes_retrans.unwrap_or(0)),
                received: t.bytes_received.unwrap_or(0),
                retransmits: u64::from(t.total_retrans.unwrap_or(0)),
                rtt_us: t.rtt_us.unwrap_or(0),
                cwnd: t.snd_cwnd.unwrap_or(0),
            };
            note(session::subflow_report(&self.tag, &totals, verbose));
        }
        note(session::connection_report(
            &self.tag,
            &token_hex(self.token),
            self.gone.len() + self.live.len(),
            sent,
            received,
        ));
    }
}

struct Conn {
    id: usize,
    stream: TcpStream,
    local: SocketAddr,
    peer: SocketAddr,
    client: bool,
    /// The handshake result was reported (deferred with TCP Fast Open).
    negotiated: bool,
    s: ConnSession,
    monitor: Option<Monitor>,
    child: Option<Child>,
}

impl Conn {
    fn tag(&self, keep_open: bool) -> String {
        if keep_open { format!("[{}] ", self.peer) } else { String::new() }
    }
}

/// A kernel MPTCP socket as the session's transport: one read and one
/// write for each readiness poll(2) reported in this turn.
struct Socket<'a> {
    stream: &'a TcpStream,
    readable: bool,
    writable: bool,
}

fn would_block(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

impl Transport for Socket<'_> {
    type Error = io::Error;

    fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        if !std::mem::take(&mut self.writable) {
            return Ok(0);
        }
        match self.stream.write(data) {
            Err(e) if would_block(&e) => Ok(0),
            r => r,
        }
    }

    fn recv(&mut self, buf: &mut [u8]) -> io::Result<Received> {
        if !std::mem::take(&mut self.readable) {
            return Ok(Received::Blocked);
        }
        match self.stream.read(buf) {
            Ok(0) => Ok(Received::Eof),
            Ok(n) => Ok(Received::Data(n)),
            Err(e) if would_block(&e) => Ok(Received::Blocked),
            Err(e) => Err(e),
        }
    }

    fn half_close(&mut self) -> io::Result<()> {
        match self.stream.shutdown(Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Err(e),
            _ => Ok(()),
        }
    }

    fn unacked(&mut self) -> u64 {
        mptcp_socket::unacked_bytes(self.stream.as_raw_fd()).map_or(0, u64::from)
    }
}

enum ConnEnd {
    Done,
    Failed(anyhow::Error),
}

struct Session<'a> {
    args: &'a CatArgs,
    rules: Rules,
    term: &'a Termination,
    log: SessionLog,
    listener: Option<TcpListener>,
    conns: Vec<Conn>,
    stdin_eof: bool,
    next_id: usize,
    served: usize,
    buf: Vec<u8>,
}

impl<'a> Session<'a> {
    fn new(args: &'a CatArgs, term: &'a Termination) -> anyhow::Result<Session<'a>> {
        let log = SessionLog::open(args.output.as_deref(), args.hex_dump.as_deref())?;
        let rules = args.session_rules(sys::stdin_is_tty());
        Ok(Session {
            args,
            rules,
            term,
            log,
            listener: None,
            conns: Vec::new(),
            stdin_eof: !rules.reads_stdin(),
            next_id: 1,
            served: 0,
            buf: vec![0; CHUNK],
        })
    }

    fn exec_mode(&self) -> bool {
        self.args.exec.is_some() || self.args.sh_exec.is_some()
    }

    /// Take a freshly connected or accepted stream into the session.
    fn add_conn(&mut self, stream: TcpStream, client: bool, remote: Option<SocketAddr>) -> anyhow::Result<()> {
        let args = self.args;
        let local = unmap(stream.local_addr().context("getsockname")?);
        // With TCP Fast Open the SYN leaves with the first data: until then
        // the socket has no peer and nothing is negotiated yet. An accepted
        // connection the peer already reset has no peer either: accept(2)
        // told us who it was, and the first read reports the reset.
        let (peer, deferred) = match (stream.peer_addr(), remote) {
            (Ok(p), _) => (unmap(p), false),
            (Err(e), Some(r)) if e.raw_os_error() == Some(libc::ENOTCONN) => (unmap(r), client),
            (Err(e), _) => return Err(anyhow!("getpeername: {e}")),
        };
        if args.verbose > 0 {
            if client {
                let how = if deferred { " (TCP Fast Open: the SYN carries the first data)" } else { "" };
                note(format!("connected to {peer} from {local} (kernel MPTCP){how}"));
            } else {
                note(format!("connection from {peer} to {local}"));
            }
        }
        let child = if self.exec_mode() {
            Some(spawn_exec(args, &stream).context("cannot start the -e/-c program")?)
        } else {
            stream.set_nonblocking(true).context("O_NONBLOCK")?;
            None
        };
        let mut c = Conn {
            id: self.next_id,
            stream,
            local,
            peer,
            client,
            negotiated: false,
            s: ConnSession::new(Instant::now()),
            monitor: None,
            child,
        };
        if !deferred {
            negotiation(args, &mut c)?;
        }
        self.conns.push(c);
        self.next_id += 1;
        self.served += 1;
        Ok(())
    }

    fn want_stdin(&self) -> bool {
        self.rules.wants_stdin(self.stdin_eof, self.exec_mode(), self.conns.iter().map(|c| &c.s), TX_HIGH_WATER)
    }

    fn run(&mut self) -> anyhow::Result<()> {
        loop {
            if let Some(sig) = self.term.received() {
                self.finish_all();
                bail!("interrupted by {}", signals::name(sig));
            }
            // Build the poll set: [term, listener?, stdin?, conns...]
            let mut fds = vec![PollFd::raw(self.term.fd(), POLLIN)];
            let li = self.listener.as_ref().map(|l| {
                fds.push(PollFd::new(l, POLLIN));
                fds.len() - 1
            });
            let si = self.want_stdin().then(|| {
                fds.push(PollFd::raw(0, POLLIN));
                fds.len() - 1
            });
            let first_conn = fds.len();
            let mut timeout: Option<Duration> = None;
            let mut shorten = |d: Duration| timeout = Some(timeout.map_or(d, |t: Duration| t.min(d)));
            let now = Instant::now();
            for c in &self.conns {
                let mut ev = 0;
                if c.child.is_none() {
                    if !c.s.rx_eof {
                        ev |= POLLIN;
                    }
                    if c.s.pending() > 0 {
                        ev |= POLLOUT;
                    }
                } else {
                    shorten(Duration::from_millis(20));
                }
                if c.monitor.is_some() && self.args.verbose > 0 {
                    // Closely while the connection ends, so the per-subflow
                    // byte counts at exit are the final ones.
                    shorten(if c.s.tx_closed || c.s.rx_eof { Duration::from_millis(5) } else { MONITOR_EVERY });
                }
                if c.s.awaiting_abort(&self.rules, self.stdin_eof) {
                    shorten(Duration::from_millis(10));
                }
                if let Some(left) = c.s.idle_left(&self.rules, now) {
                    shorten(left);
                }
                fds.push(PollFd::new(&c.stream, ev));
            }
            sys::poll(&mut fds, timeout).context("poll")?;

            if let Some(i) = li {
                if fds[i].readable() {
                    self.accept_ready()?;
                }
            }
            if let Some(i) = si {
                if fds[i].readable() {
                    self.read_stdin()?;
                }
            }
            // Service connections; collect ends.
            let mut ends: Vec<(usize, ConnEnd)> = Vec::new();
            for (k, fd) in fds[first_conn..].iter().enumerate() {
                if let Some(end) = self.service(k, fd)? {
                    ends.push((k, end));
                }
            }
            // Connections that ended: newest index first so indices stay valid.
            for (k, end) in ends.into_iter().rev() {
                let c = self.conns.remove(k);
                let failed = self.close_conn(c, end);
                if let Some(e) = failed {
                    if !self.args.keep_open {
                        return Err(e);
                    }
                }
            }
            if self.rules.run_over(self.listener.is_some(), self.served, self.conns.len()) {
                self.log.flush().context("writing the -o/-x log")?;
                return Ok(());
            }
        }
    }

    fn accept_ready(&mut self) -> anyhow::Result<()> {
        let Some(l) = &self.listener else { return Ok(()) };
        match l.accept() {
            Ok((stream, peer)) => {
                if !self.rules.admits(self.served) {
                    // ncat: without -k, one client and no more. The listening
                    // socket stays open while that client is served, because
                    // the kernel accepts MP_JOIN subflows (RFC 8684 §3.2)
                    // through it; later clients are turned away.
                    if self.args.verbose > 0 {
                        note(format!("turned away {} (already serving a client; -k serves several)", unmap(peer)));
                    }
                    let _ = mptcp_socket::set_abortive_close(stream.as_raw_fd());
                    return Ok(());
                }
                if let Err(e) = self.add_conn(stream, false, Some(peer)) {
                    if self.args.keep_open {
                        note(format!("{e:#}"));
                    } else {
                        return Err(e);
                    }
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
            Err(e) => return Err(anyhow!("accept: {e}")),
        }
        Ok(())
    }

    fn read_stdin(&mut self) -> anyhow::Result<()> {
        match session::read_stdin(&mut self.buf).context("reading standard input")? {
            Input::Eof => self.stdin_eof = true,
            Input::Data(n) => {
                for c in self.conns.iter_mut().filter(|c| !c.s.tx_closed && c.child.is_none()) {
                    c.s.queue(&self.buf[..n]);
                }
            }
            Input::Nothing => {}
        }
        Ok(())
    }

    /// Move data for connection `k`; `Some` when it has ended.
    fn service(&mut self, k: usize, fd: &PollFd) -> anyhow::Result<Option<ConnEnd>> {
        let args = self.args;
        let rules = self.rules;
        let stdin_eof = self.stdin_eof;
        let c = &mut self.conns[k];
        if let Some(m) = &mut c.monitor {
            if c.s.tx_closed || c.s.rx_eof || m.last_poll.elapsed() >= MONITOR_EVERY {
                m.poll(c.stream.as_raw_fd(), args.verbose, false);
            }
        }
        if let Some(child) = &mut c.child {
            return Ok(match child.try_wait() {
                Ok(Some(st)) if st.success() => Some(ConnEnd::Done),
                Ok(Some(st)) => Some(ConnEnd::Failed(anyhow!("the -e/-c program {st}"))),
                Ok(None) => None,
                Err(e) => Some(ConnEnd::Failed(anyhow!("waiting for the -e/-c program: {e}"))),
            });
        }
        let peer = c.peer;
        let conn_err = |e: io::Error| -> ConnEnd {
            ConnEnd::Failed(match e.raw_os_error() {
                Some(libc::ECONNRESET) => anyhow!("connection with {peer} reset by peer"),
                Some(libc::EPIPE) => anyhow!("connection with {peer} closed by the peer while sending"),
                Some(libc::ETIMEDOUT) => anyhow!("connection with {peer} timed out (peer unreachable)"),
                _ => anyhow!("connection with {peer}: {e}"),
            })
        };
        let mut socket = Socket { stream: &c.stream, readable: fd.readable(), writable: fd.writable() };
        let mut out = Stdout { log: &mut self.log, send_only: rules.send_only };
        let turn = c.s.step(&rules, &mut socket, &mut out, &mut self.buf, stdin_eof, Instant::now())?;
        if turn.half_closed || turn.peer_closed {
            if let Some(m) = &mut c.monitor {
                m.poll(c.stream.as_raw_fd(), args.verbose, true);
            }
        }
        if let Some(End::Failed(e)) = turn.end {
            return Ok(Some(conn_err(e)));
        }
        if !c.negotiated && (c.s.sent > 0 || c.s.received > 0 || c.s.rx_eof) {
            if let Err(e) = negotiation(args, c) {
                return Ok(Some(ConnEnd::Failed(e)));
            }
        }
        Ok(turn.end.map(|end| match end {
            End::Done | End::Acknowledged => ConnEnd::Done,
            End::Idle(idle) => {
                ConnEnd::Failed(anyhow!("idle timeout: nothing sent or received for {}", sys::fmt_duration(idle)))
            }
            End::Failed(e) => conn_err(e),
        }))
    }

    /// Final report and close; returns the failure, if any.
    fn close_conn(&mut self, mut c: Conn, end: ConnEnd) -> Option<anyhow::Error> {
        let args = self.args;
        let tag = c.tag(args.keep_open);
        if let Some(m) = &mut c.monitor {
            m.poll(c.stream.as_raw_fd(), args.verbose, true);
        }
        if args.verbose > 0 {
            match &c.monitor {
                Some(m) => m.report(args.verbose, c.s.sent, c.s.received),
                None => note(session::tcp_report(&tag, c.local, c.peer, c.s.sent, c.s.received)),
            }
            note(format!(
                "{tag}closed after {:.2}s{}",
                c.s.age(Instant::now()).as_secs_f64(),
                if args.abort { " (abortive close: MP_FASTCLOSE)" } else { "" }
            ));
        }
        if args.abort {
            if let Err(e) = mptcp_socket::set_abortive_close(c.stream.as_raw_fd()) {
                note(format!("SO_LINGER: {e}"));
            }
        }
        let _ = c.id;
        if let Err(e) = self.log.flush() {
            note(format!("writing the -o/-x log: {e}"));
        }
        match end {
            ConnEnd::Done => None,
            ConnEnd::Failed(e) => {
                if args.keep_open {
                    note(format!("{tag}{e:#}"));
                }
                Some(e)
            }
        }
    }

    fn finish_all(&mut self) {
        let conns: Vec<Conn> = self.conns.drain(..).collect();
        for mut c in conns {
            if let Some(ch) = &mut c.child {
                let _ = ch.kill();
                let _ = ch.wait();
            }
            let _ = self.close_conn(c, ConnEnd::Done);
        }
        let _ = self.log.flush();
    }
}

/// Report (and with --require-mptcp enforce) what the handshake negotiated.
fn negotiation(args: &CatArgs, c: &mut Conn) -> anyhow::Result<()> {
    c.negotiated = true;
    let tag = c.tag(args.keep_open);
    match mptcp_socket::snapshot(c.stream.as_raw_fd()).context("MPTCP_FULL_INFO")? {
        Some(info) => {
            if args.verbose > 0 {
                note(format!(
                    "{tag}MPTCP established: token {:#010x}, {} subflow{} (limit {} additional), {}",
                    info.info.token,
                    info.subflows.len().max(1),
                    if info.subflows.len() > 1 { "s" } else { "" },
                    info.info.subflows_max,
                    if info.info.csum_enabled.unwrap_or(0) != 0 { "DSS checksums on" } else { "no DSS checksums" }
                ));
            }
            c.monitor = Some(Monitor::new(tag, info, args.verbose));
        }
        None => {
            let msg = format!(
                "{tag}fallback to plain TCP: {} did not negotiate MPTCP",
                if c.client { "the server" } else { "the client" }
            );
            if args.require_mptcp {
                bail!("{msg} (--require-mptcp)");
            }
            if args.verbose > 0 {
                note(msg);
            }
        }
    }
    Ok(())
}

fn spawn_exec(args: &CatArgs, stream: &TcpStream) -> io::Result<Child> {
    let mut cmd = if let Some(e) = &args.exec {
        let mut it = e.split_whitespace();
        let prog = it.next().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty -e program"))?;
        let mut c = Command::new(prog);
        c.args(it);
        c
    } else {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(args.sh_exec.as_deref().unwrap_or_default());
        c
    };
    let inp: OwnedFd = stream.try_clone()?.into();
    let out: OwnedFd = stream.try_clone()?.into();
    cmd.stdin(Stdio::from(inp)).stdout(Stdio::from(out));
    cmd.spawn()
}
