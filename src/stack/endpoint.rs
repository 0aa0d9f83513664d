//! The endpoint: demultiplexes packets to connections by 4-tuple (and SYNs
//! with MP_JOIN by token, RFC 8684 §3.2), answers SYNs on listeners, owns the
//! local addresses, the event queue and the MIB counters.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::buf::{Pool, Slice};
use super::conn::{
    Connection, CookieSynAck, Ctx, EndpointEvent, LocalAddr, Passive, RstOut, TxOut, emit_cookie_synack, emit_rst,
    rst_reason,
};
use super::fastopen::{Cookie, CookieIssuer, SynCookie};
use super::mib::{Counter, Mib};
use super::syncookie::{CookieJar, SynParams};
use super::tcp::TcbParams;
use super::time::Instant;
use super::wire::{self, SegOptions, Segment, WireError, flags};
use super::{AddrFlags, Config, ConnHandle, Event, FallbackReason, RecvError, StackError, SubflowInfo};
use crate::dissect::crypto::Version;
use crate::dissect::options::{MpCapable, MpJoin, MptcpOption};
use crate::seq::SubflowSeq;
use crate::snapshot::{ConnSnapshot, Snapshot};

/// Room [`Endpoint::poll_transmit_parts`] needs for the headers: IPv6 (40),
/// TCP (20) and 40 bytes of options.
pub const MAX_HEADERS: usize = 100;

/// Stateless answers (RSTs, SYN/ACKs with cookies) queued at most, each:
/// a flood of segments between two polls cannot grow the queues.
const MAX_STATELESS: usize = 1024;

/// A packet `poll_transmit` wrote: `buf[..len]`, from `src` to `dst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub len: usize,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

/// What an endpoint holds, for tests and figures: every count here is
/// bounded whatever peers send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Connections held (released ones lingering in TIME-WAIT included).
    pub connections: usize,
    /// Of them, half-open passive ones (the SYN queue).
    pub half_open: usize,
    /// Subflows of all connections (closed ones kept for their stats included).
    pub subflows: usize,
    /// 4-tuples routed to a subflow.
    pub tuples: usize,
    /// Connection tokens known (for MP_JOIN).
    pub tokens: usize,
    /// Stateless answers (RSTs, cookie SYN/ACKs) waiting to be sent.
    pub stateless_queued: usize,
    /// Events the application has not taken yet.
    pub events_queued: usize,
}

/// What the application may ask about a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// MPTCP negotiated (false: plain TCP, see `fallback`).
    pub mptcp: bool,
    pub fallback: Option<FallbackReason>,
    pub fully_established: bool,
    pub local_token: u32,
    pub remote_token: u32,
    pub checksums: bool,
    /// Subflows alive now.
    pub subflows: Vec<SubflowInfo>,
    pub state: &'static str,
}

/// A sans-IO MPTCP endpoint. See the call order in [`crate::stack`].
pub struct Endpoint {
    cfg: Config,
    rng: ChaCha20Rng,
    isn_secret: [u8; 16],
    conns: Vec<Option<Connection>>,
    gens: Vec<u32>,
    free: Vec<usize>,
    tuples: HashMap<(SocketAddr, SocketAddr), (usize, u32)>,
    /// Changes the connection being called asked of `tuples` and `tokens`.
    endpoint_events: Vec<EndpointEvent>,
    /// Recycled memory of the connections' buffers (no global pool).
    pool: Pool,
    tokens: HashMap<u32, usize>,
    listeners: Vec<SocketAddr>,
    addrs: Vec<LocalAddr>,
    next_addr_id: u8,
    events: VecDeque<Event>,
    rsts: VecDeque<RstOut>,
    /// SYN/ACKs with cookies, sent from no state.
    synacks: VecDeque<CookieSynAck>,
    cookies: CookieJar,
    /// Fast Open cookies a listener issues (RFC 7413 §4.1.2).
    tfo_cookies: CookieIssuer,
    mib: Mib,
    rr: usize,
}

impl Endpoint {
    /// A new endpoint; `seed` drives every random choice (keys, nonces,
    /// ISN secret, ports), so the same inputs give the same outputs. For
    /// tests and the simulator; a driver on a real network uses
    /// [`Endpoint::with_seed`] with 32 bytes from the OS (keys must be
    /// unpredictable, RFC 8684 §3.1).
    pub fn new(cfg: Config, seed: u64) -> Endpoint {
        Endpoint::from_rng(cfg, ChaCha20Rng::seed_from_u64(seed))
    }

    /// A new endpoint whose ChaCha20 CSPRNG is seeded with `seed` (e.g. 32
    /// bytes of getrandom or /dev/urandom).
    pub fn with_seed(cfg: Config, seed: [u8; 32]) -> Endpoint {
        Endpoint::from_rng(cfg, ChaCha20Rng::from_seed(seed))
    }

    fn from_rng(cfg: Config, mut rng: ChaCha20Rng) -> Endpoint {
        let mut isn_secret = [0u8; 16];
        rng.fill_bytes(&mut isn_secret);
        // The cookie secret from the ISN secret, not from the RNG: the
        // random choices after this stay what they were.
        let cookie_secret: [u8; 32] = {
            use sha2::{Digest, Sha256};
            Sha256::new().chain_update(isn_secret).chain_update(b"syn cookies").finalize().into()
        };
        let tfo_secret: [u8; 32] = {
            use sha2::{Digest, Sha256};
            Sha256::new().chain_update(isn_secret).chain_update(b"fast open cookies").finalize().into()
        };
        let tfo_cookies = CookieIssuer::new(tfo_secret, cfg.fastopen.rotate);
        Endpoint {
            cfg,
            rng,
            isn_secret,
            conns: Vec::new(),
            gens: Vec::new(),
            free: Vec::new(),
            tuples: HashMap::new(),
            endpoint_events: Vec::new(),
            pool: Pool::new(),
            tokens: HashMap::new(),
            listeners: Vec::new(),
            addrs: Vec::new(),
            next_addr_id: 1,
            events: VecDeque::new(),
            rsts: VecDeque::new(),
            synacks: VecDeque::new(),
            cookies: CookieJar::new(cookie_secret),
            tfo_cookies,
            mib: Mib::default(),
            rr: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    fn params(&self, v6: bool) -> TcbParams {
        let ip = if v6 { 60 } else { 40 };
        let mut wscale = 0u8;
        while (self.cfg.recv_buffer >> wscale) > 65535 && wscale < 14 {
            wscale += 1;
        }
        TcbParams {
            mss: self.cfg.mtu.saturating_sub(ip).clamp(64, 65535),
            rcv_wscale: wscale,
            sack: self.cfg.sack,
            timestamps: self.cfg.timestamps,
            initial_rto: self.cfg.initial_rto,
            min_rto: self.cfg.min_rto,
            max_rto: self.cfg.max_rto,
            delack: self.cfg.delayed_ack,
            msl: self.cfg.msl,
        }
    }

    // ------------------------------------------------------------------
    // Addresses and listeners
    // ------------------------------------------------------------------

    /// Add a local address (the first one added is the primary). Returns its
    /// address ID (RFC 8684 §3.4.1; the initial subflow always uses ID 0).
    pub fn add_address(&mut self, addr: IpAddr, flags: AddrFlags) -> Result<u8, StackError> {
        if let Some(a) = self.addrs.iter_mut().find(|a| a.addr == addr) {
            a.flags = flags;
            return Ok(a.id);
        }
        if self.next_addr_id == u8::MAX {
            return Err(StackError::TooManyAddresses);
        }
        let id = self.next_addr_id;
        self.next_addr_id += 1;
        self.addrs.push(LocalAddr { id, addr, flags });
        Ok(id)
    }

    /// Remove a local address: its subflows are reset and REMOVE_ADDR sent.
    pub fn remove_address(&mut self, addr: IpAddr) -> Result<(), StackError> {
        let Some(pos) = self.addrs.iter().position(|a| a.addr == addr) else {
            return Err(StackError::UnknownAddress(addr));
        };
        let a = self.addrs.remove(pos);
        for i in 0..self.conns.len() {
            self.with_conn(i, |c, ctx| c.remove_local_address(addr, a.id, ctx));
        }
        Ok(())
    }

    /// Mark subflows on `addr` as backup (or not); MP_PRIO tells the peer.
    pub fn set_backup(&mut self, addr: IpAddr, backup: bool) -> Result<(), StackError> {
        let Some(a) = self.addrs.iter_mut().find(|a| a.addr == addr) else {
            return Err(StackError::UnknownAddress(addr));
        };
        a.flags.backup = backup;
        for c in self.conns.iter_mut().flatten() {
            c.set_backup(addr, backup);
        }
        Ok(())
    }

    pub fn addresses(&self) -> impl Iterator<Item = (u8, IpAddr, AddrFlags)> + '_ {
        self.addrs.iter().map(|a| (a.id, a.addr, a.flags))
    }

    /// Accept connections on `addr` (an unspecified IP accepts on any).
    pub fn listen(&mut self, addr: SocketAddr) -> Result<(), StackError> {
        if self.listeners.contains(&addr) {
            return Err(StackError::AddrInUse(addr));
        }
        self.listeners.push(addr);
        Ok(())
    }

    fn listener_for(&self, dst: SocketAddr) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|l| {
                l.port() == dst.port()
                    && (l.ip() == dst.ip() || (l.ip().is_unspecified() && l.is_ipv4() == dst.is_ipv4()))
            })
            .copied()
    }

    // ------------------------------------------------------------------
    // Connections
    // ------------------------------------------------------------------

    /// The connection behind a handle, for the unit tests of `conn`.
    #[cfg(test)]
    pub(crate) fn conn_ref(&self, h: ConnHandle) -> Option<&Connection> {
        self.conns.get(self.idx(h)?)?.as_ref()
    }

    fn alloc(&mut self) -> (usize, ConnHandle) {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.conns.push(None);
                self.gens.push(0);
                self.conns.len() - 1
            }
        };
        self.gens[idx] = self.gens[idx].wrapping_add(1);
        (idx, ConnHandle { idx: idx as u32, generation: self.gens[idx] })
    }

    fn idx(&self, h: ConnHandle) -> Option<usize> {
        let i = h.idx as usize;
        (self.gens.get(i) == Some(&h.generation)
            && self.conns.get(i).is_some_and(|c| c.as_ref().is_some_and(|c| !c.released)))
        .then_some(i)
    }

    fn with_conn<R>(&mut self, idx: usize, f: impl FnOnce(&mut Connection, &mut Ctx<'_>) -> R) -> Option<R> {
        let v6 = self.conns.get(idx)?.as_ref()?.local.is_ipv6();
        let tcb_params = self.params(v6);
        let Endpoint { cfg, mib, events, rng, tuples, endpoint_events, rsts, addrs, isn_secret, conns, pool, .. } =
            self;
        let conn = conns.get_mut(idx)?.as_mut()?;
        let mut ctx = Ctx { cfg, mib, events, rng, tuples, endpoint_events, rsts, addrs, isn_secret, pool, tcb_params };
        let r = f(conn, &mut ctx);
        self.apply_endpoint_events(idx);
        Some(r)
    }

    /// Apply, in order, what connection `idx` asked of the tables.
    fn apply_endpoint_events(&mut self, idx: usize) {
        for e in self.endpoint_events.drain(..) {
            match e {
                EndpointEvent::NewTuple { local, remote, subflow } => {
                    self.tuples.insert((local, remote), (idx, subflow));
                }
                EndpointEvent::RetiredTuple { local, remote } => {
                    self.tuples.remove(&(local, remote));
                }
                EndpointEvent::NewToken(t) => {
                    self.tokens.insert(t, idx);
                }
            }
        }
    }

    /// Open a connection to `remote` (SYN with MP_CAPABLE queued). Without
    /// `local`, the first local address of the same family and a random port.
    pub fn connect(
        &mut self,
        now: Instant,
        local: Option<SocketAddr>,
        remote: SocketAddr,
    ) -> Result<ConnHandle, StackError> {
        if let Some(l) = local
            && l.is_ipv4() != remote.is_ipv4()
        {
            return Err(StackError::FamilyMismatch { local: l, remote });
        }
        let ip = match local {
            Some(l) if !l.ip().is_unspecified() => l.ip(),
            _ => self
                .addrs
                .iter()
                .find(|a| a.addr.is_ipv4() == remote.is_ipv4())
                .map(|a| a.addr)
                .ok_or(StackError::NoLocalAddress(remote))?,
        };
        let port = match local.map(|l| l.port()) {
            Some(p) if p != 0 => {
                if self.tuples.contains_key(&(SocketAddr::new(ip, p), remote)) {
                    return Err(StackError::AddrInUse(SocketAddr::new(ip, p)));
                }
                p
            }
            _ => {
                let mut found = None;
                for _ in 0..256 {
                    let p = 32768 + (self.rng.next_u32() % 28232) as u16;
                    if !self.tuples.contains_key(&(SocketAddr::new(ip, p), remote)) {
                        found = Some(p);
                        break;
                    }
                }
                found.ok_or(StackError::NoPorts)?
            }
        };
        let local = SocketAddr::new(ip, port);
        let (idx, h) = self.alloc();
        let tcb_params = self.params(local.is_ipv6());
        let Endpoint { cfg, mib, events, rng, tuples, endpoint_events, rsts, addrs, isn_secret, tokens, pool, .. } =
            self;
        let mut ctx = Ctx { cfg, mib, events, rng, tuples, endpoint_events, rsts, addrs, isn_secret, pool, tcb_params };
        let used = |t: u32| tokens.contains_key(&t);
        let c = Connection::connect(h, now, local, remote, &mut ctx, &used);
        self.conns[idx] = Some(c);
        self.apply_endpoint_events(idx);
        Ok(h)
    }

    /// Queue data; returns the bytes taken (0 when the send buffer is full:
    /// wait for [`Event::Writable`]).
    pub fn send(&mut self, h: ConnHandle, data: &[u8]) -> Result<usize, StackError> {
        let i = self.idx(h).ok_or(StackError::InvalidHandle)?;
        self.conns[i].as_mut().expect("checked").send(data)
    }

    /// Read data: `Ok(Some(n))`, `Ok(None)` at the end of the stream,
    /// `Err(Blocked)` when nothing is there yet.
    pub fn recv(&mut self, h: ConnHandle, buf: &mut [u8]) -> Result<Option<usize>, RecvError> {
        let i = self.idx(h).ok_or(RecvError::InvalidHandle)?;
        self.with_conn(i, |c, ctx| c.recv(buf, ctx)).unwrap_or(Err(RecvError::InvalidHandle))
    }

    /// Bytes ready to read.
    pub fn readable(&self, h: ConnHandle) -> usize {
        self.idx(h).and_then(|i| self.conns[i].as_ref()).map_or(0, |c| c.readable())
    }

    /// Free space in the send buffer.
    pub fn send_capacity(&self, h: ConnHandle) -> usize {
        self.idx(h).and_then(|i| self.conns[i].as_ref()).map_or(0, |c| c.send_buffer_free())
    }

    /// Bytes sent by the application and not yet acknowledged by the peer.
    pub fn unacked(&self, h: ConnHandle) -> u64 {
        self.idx(h).and_then(|i| self.conns[i].as_ref()).map_or(0, |c| c.unacked())
    }

    /// End our side of the stream: DATA_FIN after the data (RFC 8684 §3.3.3).
    pub fn close(&mut self, h: ConnHandle) -> Result<(), StackError> {
        let i = self.idx(h).ok_or(StackError::InvalidHandle)?;
        self.conns[i].as_mut().expect("checked").close();
        Ok(())
    }

    /// Abort with MP_FASTCLOSE (RFC 8684 §3.5), or RST after a fallback.
    pub fn abort(&mut self, h: ConnHandle) -> Result<(), StackError> {
        let i = self.idx(h).ok_or(StackError::InvalidHandle)?;
        self.with_conn(i, |c, ctx| c.abort(ctx));
        Ok(())
    }

    /// The application is done with `h`; the connection lingers only for its
    /// close (TIME-WAIT) and then disappears.
    pub fn release(&mut self, h: ConnHandle) {
        if let Some(i) = self.idx(h) {
            if let Some(c) = self.conns[i].as_mut() {
                c.released = true;
            }
            self.reap(i);
        }
    }

    fn reap(&mut self, i: usize) {
        let done = self.conns[i].as_ref().is_some_and(|c| c.released && c.finished());
        if done {
            let c = self.conns[i].take().expect("present");
            self.tokens.remove(&c.mp.local_token);
            self.tuples.retain(|_, v| v.0 != i);
            self.free.push(i);
        }
    }

    pub fn info(&self, h: ConnHandle) -> Option<ConnInfo> {
        let c = self.conns.get(self.idx(h)?)?.as_ref()?;
        Some(ConnInfo {
            local: c.local,
            remote: c.remote,
            mptcp: c.mp.active(),
            fallback: c.mp.fallback,
            fully_established: c.mp.fully_established,
            local_token: c.mp.local_token,
            remote_token: c.mp.remote_token,
            checksums: c.mp.csum && c.mp.active(),
            subflows: c.subflows.iter().filter(|s| s.alive()).map(|s| s.info()).collect(),
            state: c.state_name(),
        })
    }

    /// Connection handles not yet released.
    pub fn connections(&self) -> Vec<ConnHandle> {
        self.conns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                c.as_ref().filter(|c| !c.released).map(|_| ConnHandle { idx: i as u32, generation: self.gens[i] })
            })
            .collect()
    }

    // ------------------------------------------------------------------
    // Input
    // ------------------------------------------------------------------

    /// Take one IP packet.
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        let verify = !self.cfg.offload_checksums;
        self.handle_parsed(now, wire::parse(packet, verify));
    }

    /// Take one IP packet in two parts, zero-copy: its IP and TCP headers,
    /// and its payload by reference (as [`Endpoint::poll_transmit_parts`]
    /// gives them). Data is kept without a copy until the application reads it.
    pub fn handle_packet_parts(&mut self, now: Instant, headers: &[u8], payload: &Slice) {
        let verify = !self.cfg.offload_checksums;
        self.handle_parsed(now, wire::parse_parts(headers, payload, verify));
    }

    fn handle_parsed(&mut self, now: Instant, seg: Result<Segment<'_>, WireError>) {
        let seg = match seg {
            Ok(s) => s,
            Err(WireError::BadTcpChecksum | WireError::BadIpChecksum) => {
                self.mib.inc(Counter::TcpInCsumErrors);
                self.mib.inc(Counter::TcpInErrs);
                return;
            }
            // Not TCP (ICMP, neighbour discovery on a TUN...): not ours.
            Err(WireError::NotTcp(_) | WireError::BadVersion(_) | WireError::Fragment) => return,
            Err(_) => {
                self.mib.inc(Counter::TcpInErrs);
                return;
            }
        };
        if let Some(&(ci, sid)) = self.tuples.get(&(seg.dst, seg.src)) {
            self.with_conn(ci, |c, ctx| c.on_segment(now, sid, &seg, ctx));
            self.reap(ci);
            return;
        }
        if seg.has(flags::RST) {
            return;
        }
        if seg.has(flags::ACK)
            && !seg.has(flags::SYN)
            && self.cookies.in_use(now)
            && let Some(l) = self.listener_for(seg.dst)
            && self.on_cookie_ack(now, &seg, l)
        {
            return;
        }
        if seg.has(flags::SYN) && !seg.has(flags::ACK) {
            let join = seg.opts.mptcp().find_map(|o| match o {
                MptcpOption::MpJoin(MpJoin::Syn { backup, addr_id, token, nonce }) => {
                    Some((*backup, *addr_id, *token, *nonce))
                }
                _ => None,
            });
            if let Some((backup, addr_id, token, nonce)) = join {
                self.on_join_syn(now, &seg, (backup, addr_id, token, nonce));
                return;
            }
            if let Some(l) = self.listener_for(seg.dst) {
                self.on_syn(now, &seg, l);
                return;
            }
        }
        self.reply_rst(&seg, None);
    }

    /// RFC 9293 §3.10.7.1: a RST for a segment no connection owns.
    fn reply_rst(&mut self, seg: &Segment<'_>, tcprst: Option<u8>) {
        if self.rsts.len() >= MAX_STATELESS {
            self.mib.inc(Counter::StatelessDrop);
            return;
        }
        let r = RstOut::reply(seg, tcprst);
        self.mib.inc(Counter::TcpOutRsts);
        if tcprst.is_some() {
            self.mib.inc(Counter::MpRstTx);
        }
        self.rsts.push_back(r);
    }

    /// Passive connections in the SYN queue (handshake not complete).
    fn half_open(&self) -> usize {
        self.conns.iter().flatten().filter(|c| c.half_open()).count()
    }

    /// A SYN for a listener: a half-open connection while the SYN queue has
    /// room; once it is full, a SYN cookie (RFC 4987 §3.6) or, with
    /// cookies off, nothing (the peer retries).
    fn on_syn(&mut self, now: Instant, seg: &Segment<'_>, listener: SocketAddr) {
        if self.half_open() >= self.cfg.syn_backlog {
            // Answered from no state: SYN data, which would need some, is
            // ignored (the client sends it again after the handshake).
            if self.cfg.syn_cookies {
                self.mib.inc(Counter::TcpReqQFullDoCookies);
                self.send_cookie(now, seg);
            } else {
                self.mib.inc(Counter::TcpReqQFullDrop);
            }
            return;
        }
        let (take_data, cookie) = self.fastopen_verdict(now, seg);
        let idx = self.open_passive(now, seg, listener, Passive::Fresh);
        if take_data || cookie.is_some() {
            self.with_conn(idx, |c, _| c.fastopen_accept(seg, take_data, cookie));
        }
    }

    /// A listener's answer to a SYN's Fast Open option (RFC 7413 §4.2.2):
    /// take its data on a valid cookie while fewer than
    /// `FastOpenConfig::max_pending` half-open connections hold some; send
    /// a cookie when asked for one or when the one given is not valid (its
    /// data ignored). Nothing without the option or with Fast Open off.
    fn fastopen_verdict(&mut self, now: Instant, syn: &Segment<'_>) -> (bool, Option<Cookie>) {
        let Some(opt) = syn.opts.fast_open.filter(|_| self.cfg.fastopen.server) else { return (false, None) };
        let client = syn.src.ip();
        match self.tfo_cookies.check(now, client, &opt) {
            SynCookie::Request => {
                self.mib.inc(Counter::TcpFastOpenCookieReqd);
                (false, Some(self.tfo_cookies.issue(now, client)))
            }
            SynCookie::Invalid => {
                self.mib.inc(Counter::TcpFastOpenPassiveFail);
                (false, Some(self.tfo_cookies.issue(now, client)))
            }
            SynCookie::Valid if syn.payload.is_empty() => (false, None),
            SynCookie::Valid => {
                let pending = self.conns.iter().flatten().filter(|c| c.holds_syn_data()).count();
                if pending >= self.cfg.fastopen.max_pending {
                    self.mib.inc(Counter::TcpFastOpenListenOverflow);
                    return (false, None);
                }
                self.mib.inc(Counter::TcpFastOpenPassive);
                (true, None)
            }
        }
    }

    fn open_passive(&mut self, now: Instant, syn: &Segment<'_>, listener: SocketAddr, mode: Passive) -> usize {
        let (idx, h) = self.alloc();
        let tcb_params = self.params(syn.dst.is_ipv6());
        let Endpoint { cfg, mib, events, rng, tuples, endpoint_events, rsts, addrs, isn_secret, tokens, pool, .. } =
            self;
        let mut ctx = Ctx { cfg, mib, events, rng, tuples, endpoint_events, rsts, addrs, isn_secret, pool, tcb_params };
        let used = |t: u32| tokens.contains_key(&t);
        let c = Connection::accept(h, now, syn, listener, mode, &mut ctx, &used);
        self.conns[idx] = Some(c);
        self.apply_endpoint_events(idx);
        idx
    }

    /// The Fast Open cookie a listener gives `client` now (unit tests).
    #[cfg(test)]
    pub(crate) fn fastopen_cookie_for(&self, now: Instant, client: IpAddr) -> Cookie {
        self.tfo_cookies.issue(now, client)
    }

    /// The MP_CAPABLE of a SYN that makes it an MPTCP v1 SYN we take
    /// (RFC 8684 §3.1: a v1 SYN carries no key).
    fn v1_syn(&self, seg: &Segment<'_>) -> Option<MpCapable> {
        seg.opts
            .mptcp()
            .find_map(|o| match o {
                MptcpOption::MpCapable(m) => Some(*m),
                _ => None,
            })
            .filter(|m| self.cfg.mptcp && m.version == 1 && m.sender_key.is_none())
    }

    /// Answer a SYN with a SYN/ACK whose ISN is a cookie, keeping nothing.
    fn send_cookie(&mut self, now: Instant, syn: &Segment<'_>) {
        if self.synacks.len() >= MAX_STATELESS {
            self.mib.inc(Counter::StatelessDrop);
            return;
        }
        let (local, remote) = (syn.dst, syn.src);
        let o = &syn.opts;
        let p = SynParams::of(o.mss, o.wscale, o.sack_permitted && self.cfg.sack);
        let iss = self.cookies.make(now, local, remote, syn.seq, p);
        let tp = self.params(local.is_ipv6());
        let ts_offset = self.cookies.ts_offset(local, remote);
        let mpc = self
            .v1_syn(syn)
            .map(|m| (self.cookies.key(local, remote, syn.seq, iss), self.cfg.checksum || m.checksum_required()));
        if mpc.is_some() {
            self.mib.inc(Counter::MpCapableSynRx);
        }
        self.synacks.push_back(CookieSynAck {
            src: local,
            dst: remote,
            iss,
            ack: syn.seq + 1u32,
            window: super::ring::capacity_for(self.cfg.recv_buffer).min(65535) as u16,
            mss: tp.mss,
            sack: p.sack,
            ts: o
                .timestamps
                .filter(|_| self.cfg.timestamps)
                .map(|(tsval, _)| (super::tcp::tsval(now, ts_offset), tsval)),
            wscale: o.wscale.map(|_| tp.rcv_wscale),
            mpc,
        });
        self.mib.inc(Counter::SyncookiesSent);
    }

    /// An ACK for a listener with no connection: the end of a handshake
    /// answered with a cookie? Then the connection is rebuilt from it, as
    /// if its SYN had been kept, and takes the ACK. Returns whether the
    /// segment was taken (false: the caller answers with a RST).
    fn on_cookie_ack(&mut self, now: Instant, seg: &Segment<'_>, listener: SocketAddr) -> bool {
        let (local, remote) = (seg.dst, seg.src);
        let peer_isn = seg.seq - 1u32;
        let iss = seg.ack - 1u32;
        let Some(p) = self.cookies.check(now, local, remote, peer_isn, iss) else {
            self.mib.inc(Counter::SyncookiesFailed);
            return false;
        };
        // RFC 8684 §3.1: the third ACK (or the first data) echoes both keys;
        // ours must be the one the SYN/ACK carried.
        let key = self.cookies.key(local, remote, peer_isn, iss);
        let mpc = seg.opts.mptcp().find_map(|o| match o {
            MptcpOption::MpCapable(m) => Some(*m),
            _ => None,
        });
        let mptcp = match mpc {
            Some(m) if m.receiver_key == Some(key.0) && m.sender_key.is_some() && self.cfg.mptcp => {
                let (token, _) = key.token_idsn(Version::V1);
                if self.tokens.contains_key(&token.0) {
                    // Our derived key's token is taken (2^-32 per connection).
                    self.mib.inc(Counter::SyncookiesFailed);
                    return false;
                }
                Some(m)
            }
            Some(_) => {
                self.mib.inc(Counter::SyncookiesFailed);
                return false;
            }
            None => None,
        };
        self.mib.inc(Counter::SyncookiesRecv);
        // The SYN the cookie stands for.
        let mut opts = SegOptions::default();
        opts.mss = Some(p.mss);
        opts.wscale = p.wscale;
        opts.sack_permitted = p.sack;
        opts.timestamps = seg.opts.timestamps.map(|(tsval, _)| (tsval, 0));
        if let Some(m) = mptcp {
            opts.push_mptcp(MptcpOption::MpCapable(MpCapable {
                version: 1,
                flags: (m.flags & MpCapable::FLAG_CHECKSUM) | MpCapable::FLAG_HMAC_SHA,
                ..Default::default()
            }));
        }
        let syn = Segment {
            src: remote,
            dst: local,
            seq: peer_isn,
            ack: SubflowSeq(0),
            flags: flags::SYN,
            window: seg.window,
            opts,
            payload: &[],
            shared: None,
        };
        let ts_offset = self.cookies.ts_offset(local, remote);
        let ci = self.open_passive(now, &syn, listener, Passive::Cookie { iss, ts_offset, key });
        self.with_conn(ci, |c, ctx| c.on_segment(now, 0, seg, ctx));
        self.reap(ci);
        true
    }

    /// A SYN with MP_JOIN: find the connection by token (RFC 8684 §3.2);
    /// refuse with RST + MP_TCPRST, keeping no state, when it cannot join.
    fn on_join_syn(&mut self, now: Instant, seg: &Segment<'_>, join: (bool, u8, u32, u32)) {
        let (backup, addr_id, token, nonce) = join;
        self.mib.inc(Counter::MpJoinSynRx);
        if backup {
            self.mib.inc(Counter::MpJoinSynBackupRx);
        }
        let Some(&ci) = self.tokens.get(&token) else {
            self.mib.inc(Counter::MpJoinNoTokenFound);
            self.reply_rst(seg, Some(rst_reason::MPTCP_ERROR));
            return;
        };
        let port_ok = self.conns[ci].as_ref().is_some_and(|c| c.local.port() == seg.dst.port())
            || self.addrs.iter().any(|a| a.flags.port == Some(seg.dst.port()))
            || self.listener_for(seg.dst).is_some();
        if !port_ok {
            self.reply_rst(seg, Some(rst_reason::MPTCP_ERROR));
            return;
        }
        match self.with_conn(ci, |c, ctx| c.accept_join(now, seg, (backup, addr_id, nonce), ctx)) {
            Some(Ok(())) => {}
            Some(Err(reason)) => self.reply_rst(seg, Some(reason)),
            None => self.reply_rst(seg, Some(rst_reason::MPTCP_ERROR)),
        }
    }

    /// Act on the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let due = self.conns[i].as_ref().and_then(|c| c.next_timeout()).is_some_and(|t| t <= now);
            if due {
                self.with_conn(i, |c, ctx| c.handle_timeout(now, ctx));
                self.reap(i);
            }
        }
    }

    // ------------------------------------------------------------------
    // Output
    // ------------------------------------------------------------------

    /// The next packet to send, written into `buf` (at least `Config::mtu` bytes).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let mut out = TxOut { buf, by_ref: false, payload: None };
        self.poll_out(now, &mut out)
    }

    /// The next packet to send, zero-copy: its IP and TCP headers written
    /// into `buf` (at least [`MAX_HEADERS`] bytes; `Transmit::len` is their
    /// length), its payload, if any, returned by reference: a slice of the
    /// connection's send buffer, the packet being `buf[..len]` followed by
    /// it. Checksums, when not offloaded, cover both parts.
    pub fn poll_transmit_parts(&mut self, now: Instant, buf: &mut [u8]) -> Option<(Transmit, Option<Slice>)> {
        let mut out = TxOut { buf, by_ref: true, payload: None };
        let t = self.poll_out(now, &mut out)?;
        Some((t, out.payload))
    }

    fn poll_out(&mut self, now: Instant, out: &mut TxOut<'_>) -> Option<Transmit> {
        if let Some(t) = self.pop_rst(out.buf) {
            return Some(t);
        }
        while let Some(c) = self.synacks.pop_front() {
            match emit_cookie_synack(&c, out.buf, !self.cfg.offload_checksums) {
                Ok(len) => return Some(Transmit { len, src: c.src, dst: c.dst }),
                Err(_) => self.mib.inc(Counter::EmitErrors),
            }
        }
        let n = self.conns.len();
        // Each connection in turn from where the last call left off (the
        // start read once: the turn moving on below must not skip one).
        let first = self.rr;
        for k in 0..n {
            let i = (first + k) % n;
            if let Some(Some((len, src, dst))) = self.with_conn(i, |c, ctx| c.poll_transmit(now, out, ctx)) {
                self.rr = i;
                return Some(Transmit { len, src, dst });
            }
            // Nothing from this one: let the next have the first turn.
            if k == 0 {
                self.rr = (i + 1) % n.max(1);
            }
        }
        self.pop_rst(out.buf)
    }

    fn pop_rst(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        while let Some(r) = self.rsts.pop_front() {
            match emit_rst(&r, buf, !self.cfg.offload_checksums) {
                Ok(len) => return Some(Transmit { len, src: r.src, dst: r.dst }),
                // A buffer too short for it: the RST is lost, as on the wire.
                Err(_) => self.mib.inc(Counter::EmitErrors),
            }
        }
        None
    }

    /// The next time `handle_timeout` has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.conns.iter().flatten().filter_map(|c| c.next_timeout()).min()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ------------------------------------------------------------------
    // Stats
    // ------------------------------------------------------------------

    pub fn mib(&self) -> &Mib {
        &self.mib
    }

    /// What the endpoint holds now.
    pub fn stats(&self) -> EndpointStats {
        let live = || self.conns.iter().flatten();
        EndpointStats {
            connections: live().count(),
            half_open: self.half_open(),
            subflows: live().map(|c| c.subflows.len()).sum(),
            tuples: self.tuples.len(),
            tokens: self.tokens.len(),
            stateless_queued: self.rsts.len() + self.synacks.len(),
            events_queued: self.events.len(),
        }
    }

    /// Every connection not yet released (closed ones included), with the MIB.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let mut s = Snapshot {
            connections: self.conns.iter().flatten().filter(|c| !c.released).map(|c| c.snapshot(now)).collect(),
            mib: self.mib.to_map(),
        };
        for l in &self.listeners {
            s.connections.push(ConnSnapshot {
                source: "embedded".into(),
                local: l.to_string(),
                remote: if l.is_ipv4() { "0.0.0.0:*".into() } else { "[::]:*".into() },
                state: "LISTEN".into(),
                ..Default::default()
            });
        }
        s
    }

    /// Internal state, one line per subflow, for debugging.
    #[doc(hidden)]
    pub fn debug_state(&self, h: ConnHandle) -> String {
        self.idx(h).and_then(|i| self.conns[i].as_ref()).map_or(String::new(), |c| c.debug_state())
    }

    /// One connection's snapshot.
    pub fn conn_snapshot(&self, h: ConnHandle, now: Instant) -> Option<ConnSnapshot> {
        Some(self.conns.get(self.idx(h)?)?.as_ref()?.snapshot(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::options::TcpOption;
    use crate::stack::Duration;
    use crate::stack::testing::Pair;
    use crate::stack::wire::{SegmentRepr, flags};

    const SERVER: ([u8; 4], u16) = ([10, 0, 1, 2], 80);

    fn established(p: &mut Pair) -> (ConnHandle, ConnHandle) {
        let h = p.c.connect(p.now, None, SocketAddr::from(SERVER)).unwrap_or_else(|e| panic!("{e}"));
        let _ = p.c.send(h, b"x");
        p.drive(p.now + Duration::from_millis(200));
        let sh = p.accepted().unwrap_or_else(|| panic!("accepted: {:?}", p.events));
        (h, sh)
    }

    fn parse(pk: &[u8]) -> Segment<'_> {
        wire::parse(pk, true).unwrap_or_else(|e| panic!("{e}"))
    }

    fn syn(to: SocketAddr) -> Vec<u8> {
        let opts = [TcpOption::Mss(1460)];
        let repr = SegmentRepr {
            src: SocketAddr::from(([10, 0, 1, 1], 40000)),
            dst: to,
            seq: SubflowSeq(7),
            ack: SubflowSeq(0),
            flags: flags::SYN,
            window: 65535,
            options: &opts,
        };
        let mut b = vec![0u8; 100];
        let n = wire::emit(&repr, 0, &mut b, true, |_| {}).unwrap_or_else(|e| panic!("{e}"));
        b.truncate(n);
        b
    }

    #[test]
    fn each_subflow_is_routed_by_its_four_tuple() {
        let mut p = Pair::v4(Config::default()).with_delay(Duration::from_millis(5));
        let _ = p.c.add_address(IpAddr::from([10, 0, 2, 1]), AddrFlags { subflow: true, ..Default::default() });
        let (h, sh) = established(&mut p);
        p.drive(p.now + Duration::from_millis(200));
        let si = p.s.idx(sh).unwrap_or(usize::MAX);
        let mut routes: Vec<(usize, u32)> = p.s.tuples.values().copied().collect();
        routes.sort();
        assert_eq!(routes, vec![(si, 0), (si, 1)], "the initial subflow and the join");
        // Each client subflow's 4-tuple, as the server sees it, is in the table.
        for sf in p.c.info(h).map(|i| i.subflows).unwrap_or_default() {
            assert!(p.s.tuples.contains_key(&(sf.remote, sf.local)), "{sf:?}");
        }
        // Both tokens are known to the side that issued them.
        let (ci, sinfo) = (p.c.info(h), p.s.info(sh));
        assert_eq!(p.c.tokens.get(&ci.map_or(0, |i| i.local_token)), p.c.idx(h).as_ref());
        assert_eq!(p.s.tokens.get(&sinfo.map_or(0, |i| i.local_token)), Some(&si));
    }

    #[test]
    fn a_segment_for_no_subflow_and_no_listener_gets_a_rst() {
        let mut p = Pair::v4(Config::default());
        // A SYN to a port nobody listens on.
        p.s.handle_packet(p.now, &syn(SocketAddr::from(([10, 0, 1, 2], 81))));
        p.flush();
        let out: Vec<_> = p.log.iter().filter(|(c, _)| !c).map(|(_, pk)| parse(pk)).collect();
        assert_eq!(out.len(), 1);
        assert!(out[0].has(flags::RST) && out[0].has(flags::ACK));
        assert_eq!(out[0].ack, SubflowSeq(8), "the RST acknowledges the SYN (RFC 9293 §3.10.7.1)");
        assert!(p.s.connections().is_empty() && p.s.tuples.is_empty());
    }

    #[test]
    fn listeners_take_syns_on_their_port_and_refuse_duplicates() {
        let mut p = Pair::v4(Config::default());
        assert_eq!(
            p.s.listen(SocketAddr::from(([0, 0, 0, 0], 80))),
            Err(StackError::AddrInUse("0.0.0.0:80".parse().unwrap_or_else(|e| panic!("{e}"))))
        );
        assert!(p.s.listen(SocketAddr::from(([10, 0, 1, 2], 8080))).is_ok());
        assert_eq!(
            p.s.listener_for(SocketAddr::from(([10, 0, 1, 2], 8080))),
            Some(SocketAddr::from(([10, 0, 1, 2], 8080)))
        );
        assert_eq!(p.s.listener_for(SocketAddr::from(([10, 9, 9, 9], 80))), Some(SocketAddr::from(([0, 0, 0, 0], 80))));
        assert_eq!(
            p.s.listener_for("[fd00::2]:80".parse().unwrap_or_else(|e| panic!("{e}"))),
            None,
            "0.0.0.0 is IPv4 only"
        );
        p.s.handle_packet(p.now, &syn(SocketAddr::from(([10, 0, 1, 2], 8080))));
        assert_eq!(p.s.half_open(), 1);
        assert_eq!(p.s.tuples.len(), 1, "the half-open subflow is routed");
    }

    #[test]
    fn a_released_connection_is_reaped_once_its_timers_end() {
        let mut p = Pair::v4(Config::default()).with_delay(Duration::from_millis(5));
        let (h, sh) = established(&mut p);
        let _ = (p.c.close(h), p.s.close(sh));
        p.drive(p.now + Duration::from_secs(1));
        p.c.release(h);
        p.s.release(sh);
        assert!(p.c.info(h).is_none(), "a released handle is invalid at once");
        // The active closer waits in TIME-WAIT: still routed, still in its slot.
        assert!(!p.c.tuples.is_empty() && p.c.conns.iter().any(Option::is_some));
        p.drive(p.now + Duration::from_secs(61));
        for ep in [&p.c, &p.s] {
            assert!(ep.tuples.is_empty() && ep.tokens.is_empty(), "{:?} {:?}", ep.tuples, ep.tokens);
            assert!(ep.conns.iter().all(Option::is_none));
            assert_eq!(ep.poll_timeout(), None);
        }
        // The slot is reused under a new generation: the old handle stays dead.
        let h2 = p.c.connect(p.now, None, SocketAddr::from(SERVER)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h2.idx, h.idx);
        assert_ne!(h2.generation, h.generation);
        assert!(p.c.info(h).is_none() && p.c.info(h2).is_some());
    }

    #[test]
    fn endpoint_events_apply_in_order() {
        let mut ep = Endpoint::new(Config::default(), 1);
        let (l, r) = (SocketAddr::from(([10, 0, 0, 1], 1)), SocketAddr::from(([10, 0, 0, 2], 2)));
        ep.endpoint_events.extend([
            EndpointEvent::NewTuple { local: l, remote: r, subflow: 3 },
            EndpointEvent::NewToken(42),
            EndpointEvent::RetiredTuple { local: l, remote: r },
            EndpointEvent::NewTuple { local: r, remote: l, subflow: 4 },
        ]);
        ep.apply_endpoint_events(7);
        assert!(ep.endpoint_events.is_empty());
        assert_eq!(ep.tuples.get(&(l, r)), None);
        assert_eq!(ep.tuples.get(&(r, l)), Some(&(7, 4)));
        assert_eq!(ep.tokens.get(&42), Some(&7));
    }
}
