//! The simulated network: a client and a server endpoint joined by one or
//! more paths, each a pair of links (one per direction) with delay, rate,
//! a drop-tail queue, loss, reordering, duplication, corruption, option
//! stripping and down intervals. Everything is seeded; virtual time jumps
//! from one event to the next (after smoltcp's `tests/netsim.rs`).
//!
//! Path `i` joins client address `10.0.{i+1}.1` and server address
//! `10.0.{i+1}.2`; a packet takes the path of its client-side address, as
//! source routing on a multihomed host does (from the client's primary
//! address, the path of the server address). A pcap tap records what the
//! client's interfaces see: what it sends, when it sends it, and what it
//! receives, when it arrives.

pub mod pcap;
pub mod spec;
mod transfer;

pub use spec::{PathSpec, SpecError};
pub use transfer::Transfer;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::buf::Slice;
use super::time::{Duration, Instant};
use super::{AddrFlags, Config, Endpoint};

/// Host indices.
pub const CLIENT: usize = 0;
pub const SERVER: usize = 1;

/// The port the simulated server listens on.
pub const SERVER_PORT: u16 = 5201;

/// Counters of one link direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub packets: u64,
    pub bytes: u64,
    pub delivered: u64,
    pub lost: u64,
    pub queue_drops: u64,
    pub down_drops: u64,
    pub duplicated: u64,
    pub corrupted: u64,
    /// Data segments whose payload `corrupt-data` changed (TCP checksum repaired).
    pub data_corrupted: u64,
    pub reordered: u64,
    pub stripped: u64,
}

#[derive(Debug)]
struct Link {
    busy_until: Instant,
    /// Departure times of packets still queued.
    queue: VecDeque<Instant>,
    stats: LinkStats,
    /// Data segments seen (for `corrupt-data`).
    data_segs: u64,
}

impl Link {
    fn new() -> Link {
        Link { busy_until: Instant::ZERO, queue: VecDeque::new(), stats: LinkStats::default(), data_segs: 0 }
    }
}

/// One path: its spec, the client and server addresses, two links.
#[derive(Debug)]
pub struct Path {
    pub spec: PathSpec,
    pub client: IpAddr,
    pub server: IpAddr,
    /// Client to server, server to client.
    links: [Link; 2],
}

impl Path {
    pub fn stats(&self, dir: usize) -> LinkStats {
        self.links[dir].stats
    }
}

/// A packet on a link: its IP and TCP headers, and its payload by
/// reference (a slice of the sender's send buffer: the simulator moves
/// data without copying it, as a kernel moves skbs between namespaces).
struct InFlight {
    at: Instant,
    seq: u64,
    host: usize,
    buf: Vec<u8>,
    payload: Option<Slice>,
}

impl PartialEq for InFlight {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, o: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for InFlight {
    fn cmp(&self, o: &Self) -> core::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// What a simulation runs: the application on both hosts.
pub trait App {
    /// Called after every batch of input: read events, send, receive.
    fn step(&mut self, now: Instant, hosts: &mut [Endpoint; 2]) -> io::Result<()>;
    /// Nothing more to do.
    fn done(&self) -> bool;
}

/// How to build a simulation.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub paths: Vec<PathSpec>,
    pub client: Config,
    pub server: Config,
    pub seed: u64,
    /// Client addresses after the first open subflows (`subflow` flag).
    pub client_subflows: bool,
    /// Server addresses after the first are announced (`signal` flag).
    pub server_signal: bool,
}

impl SimConfig {
    /// Two clean paths, default stack configuration.
    pub fn new(paths: Vec<PathSpec>, seed: u64) -> SimConfig {
        SimConfig {
            paths,
            client: Config::default(),
            server: Config::default(),
            seed,
            client_subflows: true,
            server_signal: false,
        }
    }
    /// Set the same configuration on both hosts.
    pub fn both(mut self, f: impl Fn(&mut Config)) -> SimConfig {
        f(&mut self.client);
        f(&mut self.server);
        self
    }
}

/// The simulated network and its two hosts.
pub struct Sim {
    pub now: Instant,
    pub hosts: [Endpoint; 2],
    pub paths: Vec<Path>,
    queue: BinaryHeap<Reverse<InFlight>>,
    seq: u64,
    pool: Vec<Vec<u8>>,
    rng: ChaCha20Rng,
    /// Room for one packet's headers.
    hdr_room: usize,
    tap: Option<pcap::PcapWriter<Box<dyn Write>>>,
    /// Whole packets for the tap.
    scratch: Vec<u8>,
    checksums: bool,
    /// Packets no path could carry.
    pub unrouted: u64,
}

impl Sim {
    pub fn new(cfg: SimConfig) -> Sim {
        assert!(!cfg.paths.is_empty(), "a simulation needs at least one path");
        let mut client = Endpoint::new(cfg.client.clone(), cfg.seed ^ 0x636c_6965_6e74);
        let mut server = Endpoint::new(cfg.server.clone(), cfg.seed ^ 0x7365_7276_6572);
        let mut paths = Vec::new();
        for (i, spec) in cfg.paths.iter().enumerate() {
            let c = IpAddr::V4(Ipv4Addr::new(10, 0, i as u8 + 1, 1));
            let s = IpAddr::V4(Ipv4Addr::new(10, 0, i as u8 + 1, 2));
            let cf = AddrFlags { subflow: i > 0 && cfg.client_subflows, ..Default::default() };
            let sf = AddrFlags { signal: i > 0 && cfg.server_signal, ..Default::default() };
            client.add_address(c, cf).expect("fresh endpoint");
            server.add_address(s, sf).expect("fresh endpoint");
            paths.push(Path { spec: spec.clone(), client: c, server: s, links: [Link::new(), Link::new()] });
        }
        server.listen(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), SERVER_PORT)).expect("fresh endpoint");
        Sim {
            now: Instant::ZERO,
            hosts: [client, server],
            paths,
            queue: BinaryHeap::new(),
            seq: 0,
            pool: Vec::new(),
            rng: ChaCha20Rng::seed_from_u64(cfg.seed),
            hdr_room: super::endpoint::MAX_HEADERS,
            tap: None,
            scratch: Vec::new(),
            checksums: !(cfg.client.offload_checksums || cfg.server.offload_checksums),
            unrouted: 0,
        }
    }

    /// The server's address on path 0, where clients connect.
    pub fn server_addr(&self) -> SocketAddr {
        SocketAddr::new(self.paths[0].server, SERVER_PORT)
    }

    /// Record what the client sees into a pcap stream.
    pub fn set_tap(&mut self, out: Box<dyn Write>) -> io::Result<()> {
        self.tap = Some(pcap::PcapWriter::new(out)?);
        Ok(())
    }

    pub fn flush_tap(&mut self) -> io::Result<()> {
        if let Some(t) = self.tap.as_mut() {
            t.flush()?;
        }
        Ok(())
    }

    /// The path a packet takes: the one of its client-side address, except
    /// for the client's primary address, which reaches every server address
    /// over that address's path (so a join from a second client address and
    /// a join to an announced server address both take the second path).
    fn path_of(&self, from: usize, src: SocketAddr, dst: SocketAddr) -> Option<usize> {
        let (c, s) = if from == CLIENT { (src.ip(), dst.ip()) } else { (dst.ip(), src.ip()) };
        if c != self.paths[0].client {
            return self.paths.iter().position(|p| p.client == c);
        }
        self.paths.iter().position(|p| p.server == s).or(Some(0))
    }

    /// The path index a subflow between these client and server addresses uses.
    pub fn route(&self, client: SocketAddr, server: SocketAddr) -> Option<usize> {
        self.path_of(CLIENT, client, server)
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() as f64 / u64::MAX as f64) < p
    }

    fn tap_write(&mut self, buf: &[u8], payload: Option<&Slice>) {
        let Some(t) = self.tap.as_mut() else { return };
        let pkt = match payload {
            Some(p) => {
                self.scratch.clear();
                self.scratch.extend_from_slice(buf);
                self.scratch.extend_from_slice(p);
                &self.scratch[..]
            }
            None => buf,
        };
        let _ = t.write(self.now, pkt);
    }

    /// Put a packet on the network.
    fn send(&mut self, from: usize, mut buf: Vec<u8>, mut payload: Option<Slice>, src: SocketAddr, dst: SocketAddr) {
        let Some(pi) = self.path_of(from, src, dst) else {
            self.unrouted += 1;
            self.pool.push(buf);
            return;
        };
        let now = self.now;
        if from == CLIENT {
            self.tap_write(&buf, payload.as_ref());
        }
        let total = buf.len() + payload.as_ref().map_or(0, |p| p.len());
        let dir = if from == CLIENT { 0 } else { 1 };
        let to = 1 - from;
        let spec = self.paths[pi].spec.clone();
        let link = &mut self.paths[pi].links[dir];
        link.stats.packets += 1;
        link.stats.bytes += total as u64;
        if spec.is_down(now) {
            link.stats.down_drops += 1;
            self.pool.push(buf);
            return;
        }
        // Drop-tail queue, then serialization at the link rate.
        while link.queue.front().is_some_and(|&d| d <= now) {
            link.queue.pop_front();
        }
        let depart = match spec.rate_bps {
            Some(rate) => {
                if link.queue.len() >= spec.queue {
                    link.stats.queue_drops += 1;
                    self.pool.push(buf);
                    return;
                }
                let tx = Duration::from_micros((total as u64 * 8 * 1_000_000).div_ceil(rate));
                let d = link.busy_until.max(now) + tx;
                link.busy_until = d;
                link.queue.push_back(d);
                d
            }
            None => now,
        };
        if self.chance(spec.loss) {
            self.paths[pi].links[dir].stats.lost += 1;
            self.pool.push(buf);
            return;
        }
        if spec.strip_options {
            let p: &[u8] = payload.as_deref().unwrap_or(&[]);
            if super::wire::strip_mptcp_options_parts(&mut buf, p, self.checksums) {
                self.paths[pi].links[dir].stats.stripped += 1;
            }
        }
        if let Some(n) = spec.corrupt_data {
            let plen = super::wire::tcp_payload_len(&buf, payload.as_ref().map_or(0, |p| p.len()));
            let link = &mut self.paths[pi].links[dir];
            if plen > 0 {
                link.data_segs += 1;
                if link.data_segs == n {
                    // The payload is the sender's memory: change a copy.
                    let mut v = payload.as_ref().map(|p| p.to_vec()).unwrap_or_default();
                    let at = self.rng.next_u64() as usize;
                    if super::wire::corrupt_payload_byte(&mut buf, &mut v, at, self.checksums) {
                        self.paths[pi].links[dir].stats.data_corrupted += 1;
                    }
                    if payload.is_some() {
                        payload = Some(Slice::copy_from(&v));
                    }
                }
            }
        }
        if self.chance(spec.corrupt) && total > 0 {
            let i = (self.rng.next_u64() % total as u64) as usize;
            let bit = 1 << (self.rng.next_u32() % 8);
            if i < buf.len() {
                buf[i] ^= bit;
            } else if let Some(p) = payload.as_mut() {
                // The payload is the sender's memory: corrupt a copy.
                let mut v = p.to_vec();
                v[i - buf.len()] ^= bit;
                *p = Slice::copy_from(&v);
            }
            self.paths[pi].links[dir].stats.corrupted += 1;
        }
        let mut at = depart + spec.delay;
        if self.chance(spec.reorder) {
            at += spec.reorder_gap.unwrap_or(Duration::from_micros((spec.delay.as_micros() / 2).max(1000)));
            self.paths[pi].links[dir].stats.reordered += 1;
        }
        if self.chance(spec.dup) {
            let mut copy = self.pool.pop().unwrap_or_default();
            copy.clear();
            copy.extend_from_slice(&buf);
            self.paths[pi].links[dir].stats.duplicated += 1;
            self.seq += 1;
            self.queue.push(Reverse(InFlight {
                at: at + Duration::from_micros(1),
                seq: self.seq,
                host: to,
                buf: copy,
                payload: payload.clone(),
            }));
        }
        self.seq += 1;
        self.paths[pi].links[dir].stats.delivered += 1;
        self.queue.push(Reverse(InFlight { at, seq: self.seq, host: to, buf, payload }));
    }

    /// Drain both hosts' output onto the links.
    pub fn flush(&mut self) {
        for h in 0..2 {
            loop {
                let mut buf = self.pool.pop().unwrap_or_default();
                if buf.len() < self.hdr_room {
                    buf.resize(self.hdr_room, 0);
                }
                match self.hosts[h].poll_transmit_parts(self.now, &mut buf[..self.hdr_room]) {
                    Some((t, payload)) => {
                        buf.truncate(t.len);
                        self.send(h, buf, payload, t.src, t.dst);
                    }
                    None => {
                        self.pool.push(buf);
                        break;
                    }
                }
            }
        }
    }

    /// The next event time (a delivery or a timer).
    pub fn next_event(&self) -> Option<Instant> {
        let d = self.queue.peek().map(|r| r.0.at);
        [d, self.hosts[0].poll_timeout(), self.hosts[1].poll_timeout()].into_iter().flatten().min()
    }

    /// Jump to `t` and process what is due then.
    pub fn advance_to(&mut self, t: Instant) {
        if t > self.now {
            self.now = t;
        }
        while self.queue.peek().is_some_and(|r| r.0.at <= self.now) {
            let Reverse(p) = self.queue.pop().expect("peeked");
            if p.host == CLIENT {
                self.tap_write(&p.buf, p.payload.as_ref());
            }
            match &p.payload {
                Some(pl) => self.hosts[p.host].handle_packet_parts(self.now, &p.buf, pl),
                None => self.hosts[p.host].handle_packet(self.now, &p.buf),
            }
            self.pool.push(p.buf);
        }
        for h in 0..2 {
            if self.hosts[h].poll_timeout().is_some_and(|x| x <= self.now) {
                self.hosts[h].handle_timeout(self.now);
            }
        }
    }

    /// Run `app` until it is done, nothing more can happen, or `limit`.
    /// Returns whether the app finished.
    pub fn run(&mut self, app: &mut dyn App, limit: Instant) -> io::Result<bool> {
        loop {
            app.step(self.now, &mut self.hosts)?;
            self.flush();
            if app.done() {
                return Ok(true);
            }
            match self.next_event() {
                Some(t) if t <= limit => self.advance_to(t),
                Some(_) => {
                    // Nothing before the limit: time still passes.
                    self.now = self.now.max(limit);
                    return Ok(false);
                }
                None => return Ok(false),
            }
        }
    }

    /// Run without an application until `limit` or quiet.
    pub fn run_until(&mut self, limit: Instant) {
        loop {
            self.flush();
            match self.next_event() {
                Some(t) if t <= limit => self.advance_to(t),
                _ => {
                    if limit > self.now && limit != Instant::from_micros(u64::MAX) {
                        self.now = limit;
                    }
                    return;
                }
            }
        }
    }
}
