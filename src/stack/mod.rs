//! The embedded MPTCP stack, sans-IO (RFC 8684 over RFC 9293 TCP).
//!
//! A pure, deterministic core after smoltcp and quinn-proto: no clock reads,
//! no sockets, no global RNG. Time is the stack's own [`Instant`], always
//! passed in; randomness (keys, nonces, ISN secret, ports) comes from a
//! ChaCha RNG seeded by the caller. The [`Endpoint`] takes whole IPv4/IPv6
//! packets in and gives IP packets out; the simulator ([`sim`]) and the TUN
//! driver (`stack::driver`, owned by mptcp-cat) both carry IP packets.
//!
//! # Call order (the driver loop)
//!
//! ```text
//! let mut ep = Endpoint::with_seed(Config::default(), random_32_bytes); // Endpoint::new(cfg, u64) in tests
//! ep.add_address(local_ip, AddrFlags::default())?;   // the primary address first
//! ep.add_address(second_ip, AddrFlags { subflow: true, ..Default::default() })?;
//! ep.listen("0.0.0.0:5000".parse()?)?;                 // server, or:
//! let h = ep.connect(now, None, remote)?;              // client (SYN queued)
//! loop {
//!     // 1. input: every packet that arrived, then the timers
//!     for pkt in arrived { ep.handle_packet(now, &pkt); }
//!     if ep.poll_timeout().is_some_and(|t| t <= now) { ep.handle_timeout(now); }
//!     // 2. events, and the application's reaction to them
//!     while let Some(ev) = ep.poll_event() {
//!         match ev {
//!             Event::Readable(h) => while let Ok(Some(n)) = ep.recv(h, &mut buf) { .. }  // Ok(None) = EOF
//!             Event::Writable(h) => { ep.send(h, &data)?; }   // returns bytes taken, maybe 0
//!             Event::Closed { conn, .. } => { /* read stats */ ep.release(conn); }
//!             _ => {}
//!         }
//!     }
//!     // commands at any time: send, recv, close (DATA_FIN), abort (MP_FASTCLOSE),
//!     // add_address / remove_address / set_backup, snapshot, mib
//!     // 3. output: drain every packet the stack wants to send
//!     while let Some(tx) = ep.poll_transmit(now, &mut out) { write(&out[..tx.len]); }
//!     // 4. sleep until a packet arrives, the app has input, or the deadline
//!     let deadline = ep.poll_timeout();
//! }
//! ```
//!
//! Rules: `poll_transmit` must be drained after every input or command (it
//! returns one packet per call; `out` must hold `Config::mtu` bytes);
//! `poll_timeout` is only valid after that; `handle_timeout` may be called
//! early or late (it acts on what is due at `now`). Handles stay valid until
//! [`Endpoint::release`]; a closed connection keeps answering (TIME-WAIT)
//! after release until its timers end.
//!
//! # Layout
//! - [`wire`]: IP/TCP framing; options through [`crate::dissect::options`];
//!   `optlist`: the 40-byte option budget of every outgoing segment.
//! - [`tcp`]: the per-subflow TCP engine (state machine, RTT/RTO, SACK
//!   recovery, delayed ACKs, close states); [`cc`]: NewReno and CUBIC.
//! - `conn/`: the MPTCP connection, one room per part: `handshake` (keys,
//!   MP_JOIN checks), `pm` (addresses, ADD_ADDR/REMOVE_ADDR, joins, limits),
//!   `send` (send ring, scheduler, reinjection, persist), `recv` (mappings,
//!   reassembly, DATA_ACK, window), `fail` (MP_FAIL, fallback), `close`
//!   (DATA_FIN, MP_FASTCLOSE), `emit` (segment builders), `timer` (one timer
//!   table, one backoff rule), `stats`; it tells the endpoint what to change
//!   in its tables through `EndpointEvent`s. [`scheduler`]; [`ring`] and
//!   [`buf`]: data buffers, their memory from the endpoint's [`buf::Pool`].
//! - [`endpoint`]: demultiplexing by 4-tuple and token, listeners (a
//!   bounded SYN queue, then [`syncookie`]s), events; it owns the tables
//!   and applies the connections' endpoint events.
//! - [`testing`]: a `Pair` of endpoints in virtual time for tests.
//! - [`mib`]: kernel-style counters; snapshots in [`crate::snapshot`] shape.
//! - [`sim`]: the simulated network.

pub mod buf;
pub mod cc;
mod conn;
/// The only stack code with file descriptors and clocks: the embedded poll
/// loop over the TUN, the pcap tap, the control socket (owned by mptcp-cat).
pub mod driver;
pub mod endpoint;
pub mod fastopen;
/// Arbitrary network input fed to a listening stack (the fuzz harness).
#[doc(hidden)]
pub mod fuzz;
pub mod mib;
mod optlist;
pub mod ring;
pub mod scheduler;
pub mod sim;
pub mod syncookie;
pub mod tcp;
/// The two-endpoint test harness (virtual time, editable wire); for tests.
#[doc(hidden)]
pub mod testing;
pub mod time;
pub mod wire;

pub use cc::CcKind;
pub use endpoint::{Endpoint, Transmit};
pub use fastopen::{CookieCache, FastOpenConfig};
pub use mib::{Counter, Mib};
pub use scheduler::SchedulerKind;
pub use time::{Duration, Instant};

use std::net::SocketAddr;

/// Per-endpoint limits, as `ip mptcp limits` sets them in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Additional subflows per connection (created as a client, accepted as a server).
    pub subflows: u8,
    /// ADD_ADDR announcements accepted per connection (each may open a subflow).
    pub add_addr_accepted: u8,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { subflows: 8, add_addr_accepted: 8 }
    }
}

/// Flags of a local address, as `ip mptcp endpoint` sets them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddrFlags {
    /// A client opens a subflow from this address once the connection is
    /// fully established.
    pub subflow: bool,
    /// Announced to the peer with ADD_ADDR.
    pub signal: bool,
    /// Subflows on this address are backups (MP_JOIN B flag / MP_PRIO).
    pub backup: bool,
    /// Port announced with ADD_ADDR (and accepted for joins).
    pub port: Option<u16>,
}

/// Stack configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Largest IP packet the link carries (bytes); sets the MSS we announce.
    pub mtu: usize,
    /// Connection-level send buffer (bytes).
    pub send_buffer: usize,
    /// Connection-level receive buffer and window (bytes, RFC 8684 §3.3.4).
    pub recv_buffer: usize,
    /// Offer MPTCP (MP_CAPABLE in our SYNs, accept it in theirs). Off: plain TCP.
    pub mptcp: bool,
    /// Ask for DSS checksums (RFC 8684 §3.3.1, flag A).
    pub checksum: bool,
    /// Neither compute nor verify IP/TCP checksums (a TUN with virtio-net
    /// offloads, or the benchmark path).
    pub offload_checksums: bool,
    pub timestamps: bool,
    pub sack: bool,
    pub cc: CcKind,
    pub scheduler: SchedulerKind,
    pub limits: Limits,
    pub initial_rto: Duration,
    pub min_rto: Duration,
    pub max_rto: Duration,
    pub delayed_ack: Duration,
    /// Maximum segment lifetime; TIME-WAIT lasts 2*MSL.
    pub msl: Duration,
    /// SYN retransmissions before giving up.
    pub syn_retries: u32,
    /// SYN retransmissions after which MP_CAPABLE is left out (the kernel's
    /// net.mptcp.syn_retrans_before_tcp_fallback).
    pub mpc_syn_retries: u32,
    /// RTOs in a row without progress before a subflow is deemed stale and
    /// its data reinjected elsewhere.
    pub stale_rtos: u32,
    /// RTOs in a row after which a subflow is given up (tcp_retries2).
    pub max_rtos: u32,
    /// ADD_ADDR retransmission interval until echoed.
    pub add_addr_timeout: Duration,
    /// Half-open passive connections (SYN received, handshake not
    /// complete) kept at most, over all listeners (Linux's
    /// tcp_max_syn_backlog): the SYN queue.
    pub syn_backlog: usize,
    /// When the SYN queue is full, answer SYNs with SYN cookies (RFC 4987
    /// §3.6, Linux's tcp_syncookies=1) instead of dropping them.
    pub syn_cookies: bool,
    /// TCP Fast Open (RFC 7413, RFC 8684 Appendix B): off unless asked for.
    pub fastopen: FastOpenConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            mtu: 1500,
            send_buffer: 4 << 20,
            recv_buffer: 4 << 20,
            mptcp: true,
            checksum: false,
            offload_checksums: false,
            timestamps: true,
            sack: true,
            cc: CcKind::Cubic,
            scheduler: SchedulerKind::Default,
            limits: Limits::default(),
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
            delayed_ack: Duration::from_millis(40),
            msl: Duration::from_secs(30),
            syn_retries: 6,
            mpc_syn_retries: 2,
            stale_rtos: 1,
            max_rtos: 15,
            add_addr_timeout: Duration::from_secs(2),
            syn_backlog: 256,
            syn_cookies: true,
            fastopen: FastOpenConfig::default(),
        }
    }
}

/// A connection, stable until [`Endpoint::release`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnHandle {
    pub(crate) idx: u32,
    pub(crate) generation: u32,
}

impl ConnHandle {
    /// A process-local identity (for snapshots).
    pub fn id(self) -> u64 {
        ((self.generation as u64) << 32) | self.idx as u64
    }
}

/// A subflow as events and stats describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubflowInfo {
    /// Unique within the connection, in creation order (0 = initial subflow).
    pub id: u32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub local_id: u8,
    pub remote_id: u8,
    pub backup: bool,
    /// Created by MP_JOIN (else the MP_CAPABLE or fallback subflow).
    pub join: bool,
}

/// Why a connection runs as plain TCP (RFC 8684 §3.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallbackReason {
    /// MPTCP is off in our configuration.
    Disabled,
    /// The peer's SYN had no MP_CAPABLE (we are the server).
    NoMpCapableInSyn,
    /// The SYN/ACK had no MP_CAPABLE (the peer does not speak MPTCP, or a
    /// middlebox stripped the option).
    NoMpCapableInSynAck,
    /// Our SYNs with MP_CAPABLE went unanswered; the one that was answered had none.
    SynRetransmissions,
    /// The third ACK had no MP_CAPABLE.
    NoMpCapableInAck,
    /// Data arrived, or was acknowledged, without a DSS: options stripped
    /// after the handshake.
    NoDss,
    /// An infinite mapping or MP_FAIL.
    InfiniteMapping,
    /// A DSS checksum failed on the only subflow (MP_FAIL sent).
    ChecksumFailure,
    /// The peer's DSS mappings contradicted each other or did not cover
    /// its data, on the only subflow (RFC 8684 §3.3.1, §3.7).
    BadMapping,
}

impl FallbackReason {
    pub fn describe(self) -> &'static str {
        match self {
            FallbackReason::Disabled => "MPTCP disabled locally",
            FallbackReason::NoMpCapableInSyn => "the peer's SYN had no MP_CAPABLE",
            FallbackReason::NoMpCapableInSynAck => "the SYN/ACK had no MP_CAPABLE",
            FallbackReason::SynRetransmissions => "SYNs with MP_CAPABLE went unanswered",
            FallbackReason::NoMpCapableInAck => "the third ACK had no MP_CAPABLE",
            FallbackReason::NoDss => "data without DSS (options stripped after the handshake)",
            FallbackReason::InfiniteMapping => "the peer sent an infinite mapping or MP_FAIL",
            FallbackReason::ChecksumFailure => "a DSS checksum failed",
            FallbackReason::BadMapping => "the peer's DSS mappings were invalid",
        }
    }
}

impl core::fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why a connection or subflow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// DATA_FIN both ways (or FIN both ways after fallback).
    Normal,
    /// The peer reset (with its MP_TCPRST reason if it sent one).
    Reset { mptcp_reason: Option<u8> },
    /// The peer sent MP_FASTCLOSE.
    PeerFastClose,
    /// We aborted (MP_FASTCLOSE sent).
    Aborted,
    /// Retransmissions went unanswered.
    Timeout,
    /// Our SYN was answered by a RST.
    Refused,
    /// We reset it: the reason code we put in MP_TCPRST.
    LocalReset { mptcp_reason: u8 },
    /// The address it used was removed (REMOVE_ADDR, ours or the peer's).
    AddressRemoved,
}

impl core::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use crate::dissect::options::MpTcpRst;
        match self {
            CloseReason::Normal => write!(f, "closed"),
            CloseReason::Reset { mptcp_reason: Some(r) } => write!(f, "reset by peer ({})", MpTcpRst::reason_name(*r)),
            CloseReason::Reset { mptcp_reason: None } => write!(f, "reset by peer"),
            CloseReason::PeerFastClose => write!(f, "peer sent MP_FASTCLOSE"),
            CloseReason::Aborted => write!(f, "aborted (MP_FASTCLOSE)"),
            CloseReason::Timeout => write!(f, "timed out"),
            CloseReason::Refused => write!(f, "connection refused"),
            CloseReason::LocalReset { mptcp_reason } => write!(f, "reset ({})", MpTcpRst::reason_name(*mptcp_reason)),
            CloseReason::AddressRemoved => write!(f, "address removed"),
        }
    }
}

/// What happened, for the driver and the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Our connection is established (MPTCP, or plain TCP after a fallback,
    /// which a [`Event::Fallback`] before this one tells).
    Connected(ConnHandle),
    /// A listener accepted a connection.
    Accepted {
        conn: ConnHandle,
        listener: SocketAddr,
    },
    /// New data (or the end of the stream) can be read.
    Readable(ConnHandle),
    /// Send buffer space freed after a short `send`.
    Writable(ConnHandle),
    SubflowUp {
        conn: ConnHandle,
        subflow: SubflowInfo,
    },
    SubflowDown {
        conn: ConnHandle,
        subflow: SubflowInfo,
        reason: CloseReason,
    },
    Fallback {
        conn: ConnHandle,
        reason: FallbackReason,
    },
    /// The MPTCP handshake is fully established (the peer has our key).
    FullyEstablished(ConnHandle),
    /// The peer announced an address (ADD_ADDR with a valid HMAC).
    AddressAnnounced {
        conn: ConnHandle,
        addr_id: u8,
        addr: SocketAddr,
    },
    /// The peer withdrew an address (REMOVE_ADDR).
    AddressRemoved {
        conn: ConnHandle,
        addr_id: u8,
    },
    /// The peer finished sending (DATA_FIN, or FIN after fallback).
    PeerClosed(ConnHandle),
    /// The connection ended; stats stay readable until `release`.
    Closed {
        conn: ConnHandle,
        reason: CloseReason,
    },
}

/// Errors of the commands.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StackError {
    #[error("no such connection (closed and released?)")]
    InvalidHandle,
    #[error("no local address of the same family as {0}: add one with add_address")]
    NoLocalAddress(SocketAddr),
    #[error("local address {local} and remote address {remote} are of different families")]
    FamilyMismatch { local: SocketAddr, remote: SocketAddr },
    #[error("address {0} is already in use")]
    AddrInUse(SocketAddr),
    #[error("no free local port")]
    NoPorts,
    #[error("address {0} is not a local address")]
    UnknownAddress(std::net::IpAddr),
    #[error("at most 255 addresses")]
    TooManyAddresses,
    #[error("the connection is closing: no more data can be sent")]
    Closing,
    #[error("the connection was reset: {0}")]
    Reset(CloseReason),
}

/// Why `recv` had nothing to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    #[error("no data yet")]
    Blocked,
    #[error("no such connection")]
    InvalidHandle,
    #[error("the connection was reset: {0}")]
    Reset(CloseReason),
}
