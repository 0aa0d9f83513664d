//! What the analysis tells: per-packet notes, connection verdicts and the
//! end-of-capture report. Pure data with `Display` for the words the text,
//! JSON and summary outputs share.

use std::fmt;
use std::net::SocketAddr;

use crate::dissect::options::MpTcpRst;

pub use super::csum::CsumStatus;

/// One end of an MPTCP connection: the client sent the MP_CAPABLE SYN of
/// the initial subflow, the server answered it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a connection (or subflow) runs as plain TCP (RFC 8684 §3.1, §3.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallbackReason {
    /// The SYN carried no MP_CAPABLE: the client did not ask for MPTCP.
    NoMpCapableInSyn,
    /// The SYN/ACK carried no MP_CAPABLE: the server (or a middlebox on the
    /// way) does not do MPTCP.
    SynAckWithoutMpCapable,
    /// The SYN/ACK's MP_CAPABLE is a copy of the SYN's (same bytes, no key
    /// of its own): a middlebox reflected the option.
    SynAckEchoesSyn,
    /// The SYN/ACK's MP_CAPABLE is too short to carry the server's key.
    SynAckWithoutKey,
    /// A join's SYN/ACK carried no MP_JOIN (that subflow only).
    SynAckWithoutJoin,
    /// The client retransmitted its SYN without MP_CAPABLE: it gave up on
    /// MPTCP after unanswered MP_CAPABLE SYNs.
    SynRetransmittedWithoutMpCapable,
    /// A segment after the handshake carried no MPTCP option at all: a
    /// middlebox strips them, or that side fell back.
    OptionsMissing { from: Side },
    /// MP_FAIL without a reset: the sender saw a checksum failure and falls
    /// back to an infinite mapping (§3.7).
    MpFail { from: Side },
    /// A DSS with an infinite mapping (data-level length 0).
    InfiniteMapping { from: Side },
}

impl FallbackReason {
    /// What usually causes this fallback, in words for the person reading a
    /// summary (RFC 8684 §3.1 and §3.7 say when each side falls back).
    pub fn likely_cause(&self) -> &'static str {
        match self {
            FallbackReason::NoMpCapableInSyn => {
                "the client did not ask for MPTCP: its application opened a plain TCP socket (on Linux, \
                 IPPROTO_MPTCP or mptcpize), MPTCP is disabled there (net.mptcp.enabled=0), or a middlebox \
                 before this capture point removed the option"
            }
            FallbackReason::SynAckWithoutMpCapable => {
                "the server did not accept MPTCP: it listens on a plain TCP socket, has MPTCP disabled \
                 (net.mptcp.enabled=0), or a middlebox between the client and the server removed the option"
            }
            FallbackReason::SynAckEchoesSyn => {
                "a middlebox answered with the SYN's own options (an option-reflecting proxy or NAT)"
            }
            FallbackReason::SynAckWithoutKey => "the server's MP_CAPABLE is malformed or was truncated on the way",
            FallbackReason::SynAckWithoutJoin => {
                "the server refused this join (or a middlebox removed MP_JOIN from the SYN/ACK)"
            }
            FallbackReason::SynRetransmittedWithoutMpCapable => {
                "SYNs with MP_CAPABLE went unanswered: a firewall on the path drops SYNs with unknown options"
            }
            FallbackReason::OptionsMissing { .. } => {
                "a middlebox strips TCP options from data segments (RFC 8684 §3.7), or that side fell back \
                 on its own"
            }
            FallbackReason::MpFail { .. } | FallbackReason::InfiniteMapping { .. } => {
                "a DSS checksum failed: something on the path changed the payload (a rewriting middlebox), \
                 and with no other subflow the connection continues as plain TCP (RFC 8684 §3.7)"
            }
        }
    }
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FallbackReason::NoMpCapableInSyn => f.write_str("no MP_CAPABLE in the SYN"),
            FallbackReason::SynAckWithoutMpCapable => f.write_str("the SYN/ACK has no MP_CAPABLE"),
            FallbackReason::SynAckEchoesSyn => {
                f.write_str("the SYN/ACK's MP_CAPABLE only echoes the SYN's (a middlebox reflects options)")
            }
            FallbackReason::SynAckWithoutKey => f.write_str("the SYN/ACK's MP_CAPABLE carries no key"),
            FallbackReason::SynAckWithoutJoin => f.write_str("the SYN/ACK has no MP_JOIN"),
            FallbackReason::SynRetransmittedWithoutMpCapable => {
                f.write_str("the SYN was retransmitted without MP_CAPABLE (the client gave up on MPTCP)")
            }
            FallbackReason::OptionsMissing { from } => {
                write!(f, "MPTCP options gone after the handshake (a {from} segment without them)")
            }
            FallbackReason::MpFail { from } => {
                write!(f, "MP_FAIL from the {from} (checksum failure, infinite mapping)")
            }
            FallbackReason::InfiniteMapping { from } => write!(f, "infinite mapping from the {from}"),
        }
    }
}

/// The result of a verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Ok,
    Bad,
    /// Wrong, but equal to the leftmost 64 bits of the HMAC: the ADD_ADDR
    /// computation of Linux before 5.10, where RFC 8684 §3.4.1 says rightmost.
    BadLeftmost,
    /// The keys it needs were not seen.
    NoKeys,
}

impl Check {
    pub fn name(self) -> &'static str {
        match self {
            Check::Ok => "ok",
            Check::Bad => "BAD",
            Check::BadLeftmost => "BAD (the leftmost 64 bits: early Linux ADD_ADDR HMAC, the RFC says rightmost)",
            Check::NoKeys => "unverified (keys not seen)",
        }
    }
}

/// Which HMAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HmacKind {
    /// MP_JOIN SYN/ACK: truncated HMAC of the responder (RFC 8684 §3.2).
    JoinSynAck,
    /// MP_JOIN third ACK: HMAC of the initiator.
    JoinAck,
    /// ADD_ADDR truncated HMAC (§3.4.1).
    AddAddr,
}

impl HmacKind {
    pub fn name(self) -> &'static str {
        match self {
            HmacKind::JoinSynAck => "join syn/ack hmac",
            HmacKind::JoinAck => "join ack hmac",
            HmacKind::AddAddr => "add_addr hmac",
        }
    }
}

/// Why a subflow ended, beyond a plain FIN or RST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCause {
    /// The address it used was withdrawn with REMOVE_ADDR.
    RemoveAddr { by: Side, id: u8 },
    /// The connection was aborted with MP_FASTCLOSE.
    FastClose { by: Side },
    /// Reset with MP_TCPRST.
    TcpRst { by: Side, flags: u8, reason: u8 },
    /// Reset with MP_FAIL (a checksum failure on this subflow).
    MpFail { by: Side },
}

impl fmt::Display for CloseCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseCause::RemoveAddr { by, id } => write!(f, "RM_ADDR id {id} from the {by}"),
            CloseCause::FastClose { by } => write!(f, "MP_FASTCLOSE from the {by}"),
            CloseCause::TcpRst { by, flags, reason } => {
                write!(f, "RST with MP_TCPRST from the {by}: reason {reason} ({})", MpTcpRst::reason_name(*reason))?;
                if flags & MpTcpRst::FLAG_TRANSIENT != 0 {
                    f.write_str(", transient")?;
                }
                Ok(())
            }
            CloseCause::MpFail { by } => write!(f, "RST with MP_FAIL from the {by}"),
        }
    }
}

/// A fact about one connection, with the frame that proves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub frame: u64,
    pub kind: VerdictKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerdictKind {
    /// MP_CAPABLE completed and the server sent a DSS: MPTCP runs.
    Established { version: u8 },
    /// MPTCP options on a connection whose handshake is not in the capture.
    InUse,
    /// The connection runs as plain TCP.
    Fallback(FallbackReason),
    /// A join was answered with a reset.
    JoinRefused { subflow: u32, by: Side, reason: Option<u8> },
    /// A join failed for another reason.
    JoinFailed { subflow: u32, why: JoinFailure },
    /// A subflow was closed by an MPTCP signal.
    SubflowClosed { subflow: u32, cause: CloseCause },
    /// An HMAC did not verify.
    HmacFailed { subflow: u32, kind: HmacKind },
    /// A mapping failed its DSS checksum; `corrupt` is the frame whose
    /// payload differs from the copy sent again later, when that was found.
    ChecksumFailed { subflow: u32, from: Side, dsn_rel: Option<u64>, corrupt: Option<u64> },
    /// MP_FAIL was sent.
    MpFail { subflow: u32, by: Side, dsn_rel: Option<u64> },
    /// MP_FASTCLOSE was sent.
    FastClose { by: Side },
    /// The MP_CAPABLE third ACK echoed a different key than the SYN/ACK's.
    KeyMismatch,
    /// DATA_FIN seen from both sides: a clean connection-level close.
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinFailure {
    /// The SYN/ACK carried no MP_JOIN.
    SynAckWithoutJoin,
    /// The MP_JOIN SYN named a token no connection in the capture has.
    UnknownToken { token: u32 },
    /// A segment without MPTCP options after the handshake.
    OptionsMissing { from: Side },
}

impl fmt::Display for VerdictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerdictKind::Established { version } => write!(f, "MPTCP v{version} established"),
            VerdictKind::InUse => f.write_str("MPTCP in use (the handshake is not in the capture)"),
            VerdictKind::Fallback(r) => write!(f, "fallback to TCP: {r}"),
            VerdictKind::JoinRefused { subflow, by, reason } => {
                write!(f, "join of subflow {subflow} refused by the {by}")?;
                match reason {
                    Some(r) => write!(f, ": RST with MP_TCPRST reason {r} ({})", MpTcpRst::reason_name(*r)),
                    None => f.write_str(": RST"),
                }
            }
            VerdictKind::JoinFailed { subflow, why } => {
                write!(f, "join of subflow {subflow} failed: ")?;
                match why {
                    JoinFailure::SynAckWithoutJoin => f.write_str("the SYN/ACK has no MP_JOIN"),
                    JoinFailure::UnknownToken { token } => write!(f, "unknown token {token:#010x}"),
                    JoinFailure::OptionsMissing { from } => {
                        write!(f, "MPTCP options gone after the handshake (from the {from})")
                    }
                }
            }
            VerdictKind::SubflowClosed { subflow, cause } => write!(f, "subflow {subflow} closed by {cause}"),
            VerdictKind::HmacFailed { subflow, kind } => {
                write!(f, "subflow {subflow}: {} does not verify", kind.name())
            }
            VerdictKind::ChecksumFailed { subflow, from, dsn_rel, corrupt } => {
                write!(f, "DSS checksum failed on subflow {subflow} ({from} data")?;
                if let Some(d) = dsn_rel {
                    write!(f, ", mapping at dsn {d}")?;
                }
                f.write_str(")")?;
                if let Some(c) = corrupt {
                    write!(f, "; frame {c} was corrupted (its payload differs from the data sent again)")?;
                }
                Ok(())
            }
            VerdictKind::MpFail { subflow, by, dsn_rel } => {
                write!(f, "MP_FAIL from the {by} on subflow {subflow}")?;
                if let Some(d) = dsn_rel {
                    write!(f, " for dsn {d}")?;
                }
                Ok(())
            }
            VerdictKind::FastClose { by } => write!(f, "connection aborted with MP_FASTCLOSE by the {by}"),
            VerdictKind::KeyMismatch => f.write_str("the third ACK echoes a key other than the server's"),
            VerdictKind::Closed => f.write_str("closed cleanly (DATA_FIN both ways)"),
        }
    }
}

/// Something the analysis says about one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The first proof that the connection runs MPTCP.
    Established,
    /// This packet shows that the connection or subflow runs as plain TCP.
    Fallback(FallbackReason),
    /// An HMAC in this packet was checked.
    Hmac {
        kind: HmacKind,
        result: Check,
    },
    /// MP_JOIN SYN with a token no connection in the capture has.
    UnknownToken {
        token: u32,
    },
    /// The key echoed in the MP_CAPABLE third ACK is not the server's.
    KeyMismatch {
        expected: u64,
        got: u64,
    },
    /// This packet completed (or gave up on) a mapping's DSS checksum.
    Checksum {
        status: CsumStatus,
        map_frame: u64,
    },
    /// These DSNs were already sent on another subflow, in these frames:
    /// at most [`super::FRAMES_NAMED`] named (the earliest), and `more`
    /// others.
    Reinjection {
        of: Vec<u64>,
        more: u64,
    },
    /// Comparing this packet with the original shows that frame N's
    /// payload was corrupted.
    Corrupted {
        frame: u64,
    },
    /// Payload not covered by any mapping seen.
    NoMapping,
    /// A DSS with an infinite mapping.
    InfiniteMapping,
    /// DATA_FIN at this relative DSN (or absolute when the IDSN is unknown).
    DataFin {
        dsn: u64,
    },
    MpFail {
        dsn: u64,
    },
    FastClose {
        key: Check,
    },
    /// RST with MP_TCPRST.
    TcpRst {
        flags: u8,
        reason: u8,
    },
    JoinRefused,
    /// REMOVE_ADDR closes these subflows.
    Removes {
        subflows: Vec<u32>,
    },
    /// MP_PRIO: the sender's backup preference for the subflow.
    Backup {
        on: bool,
    },
    /// Data in the SYN (TCP Fast Open): outside the data sequence space.
    SynData,
    /// An MPTCP option that does not parse.
    BadOption,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Established => f.write_str("established"),
            Event::Fallback(r) => write!(f, "fallback: {r}"),
            Event::Hmac { kind, result } => write!(f, "{} {}", kind.name(), result.name()),
            Event::UnknownToken { token } => write!(f, "unknown token {token:#010x}"),
            Event::KeyMismatch { expected, got } => {
                write!(f, "key mismatch: echoes {got:#018x}, server key {expected:#018x}")
            }
            Event::Checksum { status, map_frame } => match status {
                CsumStatus::Ok => write!(f, "dss checksum ok (mapping of frame {map_frame})"),
                CsumStatus::Bad => write!(f, "BAD dss checksum (mapping of frame {map_frame})"),
                CsumStatus::Truncated => {
                    write!(f, "dss checksum not verified: payload not captured (mapping of frame {map_frame})")
                }
                CsumStatus::Pending => write!(f, "dss checksum pending (mapping of frame {map_frame})"),
            },
            Event::Reinjection { of, more } => {
                f.write_str("reinjection of frame")?;
                if of.len() > 1 || *more > 0 {
                    f.write_str("s")?;
                }
                for (i, fr) in of.iter().enumerate() {
                    write!(f, "{}{fr}", if i == 0 { " " } else { "," })?;
                }
                if *more > 0 {
                    write!(f, " and {more} more")?;
                }
                Ok(())
            }
            Event::Corrupted { frame } => write!(f, "frame {frame} was corrupted (differs from this copy)"),
            Event::NoMapping => f.write_str("no mapping"),
            Event::InfiniteMapping => f.write_str("infinite mapping"),
            Event::DataFin { dsn } => write!(f, "data fin {dsn}"),
            Event::MpFail { dsn } => write!(f, "mp_fail dsn {dsn}"),
            Event::FastClose { key } => write!(f, "fastclose (key {})", key.name()),
            Event::TcpRst { flags, reason } => {
                write!(f, "reset reason {reason} ({})", MpTcpRst::reason_name(*reason))?;
                if flags & MpTcpRst::FLAG_TRANSIENT != 0 {
                    f.write_str(" transient")?;
                }
                Ok(())
            }
            Event::JoinRefused => f.write_str("join refused"),
            Event::Removes { subflows } => {
                f.write_str("removes subflow")?;
                if subflows.len() > 1 {
                    f.write_str("s")?;
                }
                for (i, s) in subflows.iter().enumerate() {
                    write!(f, "{}{s}", if i == 0 { " " } else { "," })?;
                }
                Ok(())
            }
            Event::Backup { on } => f.write_str(if *on { "backup on" } else { "backup off" }),
            Event::SynData => f.write_str("syn data outside the dsn space"),
            Event::BadOption => f.write_str("bad mptcp option"),
        }
    }
}

/// A mapping carried by a packet (DSS, or the implicit one of an
/// MP_CAPABLE with data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappingNote {
    /// 64-bit DSN of the mapping's first byte, when it could be extended.
    pub dsn: Option<u64>,
    pub dsn_rel: Option<u64>,
    /// Relative subflow sequence number.
    pub ssn: u32,
    /// Data-level length as on the wire (a DATA_FIN counts one).
    pub len: u16,
    pub data_fin: bool,
    /// From an MP_CAPABLE with data (RFC 8684 §3.1): DSN = IDSN + 1, ssn 1.
    pub implicit: bool,
}

/// What the analysis says about one packet.
///
/// Text form (appended after tcpdump's part of the line), one bracket:
/// ` [mptcp conn C sf S FIELDS; EVENT; EVENT]` where FIELDS are, each only
/// when known: `fallback`, `dsn A:B` (relative DSNs of the payload, first
/// and one past the last, as tcpdump prints sequence numbers), `ack N`
/// (relative data ACK), `map A:B ssn N` (the mapping this packet carries);
/// values are relative to the sender's IDSN, and printed as `dsn64`,
/// `ack64`, `map64` with absolute 64-bit values when the IDSN is unknown.
/// Events are short phrases (`reinjection of frame 92`, `join syn/ack hmac
/// ok`, `BAD dss checksum (mapping of frame 580)`, ...). Plain TCP flows
/// get no text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PacketNote {
    /// 1-based MPTCP connection number.
    pub conn: Option<u32>,
    /// 1-based subflow number within the connection.
    pub subflow: Option<u32>,
    /// 1-based TCP flow number in the capture (also for plain TCP).
    pub flow: Option<u32>,
    /// Which end of the connection sent the packet.
    pub from: Option<Side>,
    /// The subflow runs as plain TCP.
    pub fallback: bool,
    /// 64-bit DSN of the first payload byte.
    pub dsn: Option<u64>,
    pub dsn_rel: Option<u64>,
    /// Payload bytes the DSN range covers.
    pub dsn_len: u32,
    /// Frame of the mapping that covers the payload.
    pub map_frame: Option<u64>,
    /// The data ACK, extended to 64 bits.
    pub data_ack: Option<u64>,
    pub data_ack_rel: Option<u64>,
    pub mapping: Option<MappingNote>,
    pub events: Vec<Event>,
}

impl PacketNote {
    /// Whether there is anything to say.
    pub fn is_empty(&self) -> bool {
        self.conn.is_none() && self.events.is_empty()
    }

    /// The text appended after the tcpdump part of the line (starting with
    /// a space when not empty, no newline).
    pub fn write_text(&self, out: &mut Vec<u8>) {
        use std::io::Write;
        if self.is_empty() {
            return;
        }
        out.extend_from_slice(b" [mptcp");
        if let Some(c) = self.conn {
            let _ = write!(out, " conn {c}");
        }
        if let Some(s) = self.subflow {
            let _ = write!(out, " sf {s}");
        }
        if self.fallback {
            out.extend_from_slice(b" fallback");
        }
        if let Some(d) = self.dsn {
            let (w, v) = match self.dsn_rel {
                Some(r) => ("dsn", r),
                None => ("dsn64", d),
            };
            let _ = write!(out, " {w} {v}:{}", v.wrapping_add(self.dsn_len as u64));
        }
        if let Some(a) = self.data_ack {
            match self.data_ack_rel {
                Some(r) => {
                    let _ = write!(out, " ack {r}");
                }
                None => {
                    let _ = write!(out, " ack64 {a}");
                }
            }
        }
        if let Some(m) = self.mapping {
            let data = (m.len as u64).saturating_sub(m.data_fin as u64);
            match (m.dsn_rel, m.dsn) {
                (Some(r), _) => {
                    let _ = write!(out, " map {r}:{} ssn {}", r.wrapping_add(data), m.ssn);
                }
                (None, Some(d)) => {
                    let _ = write!(out, " map64 {d}:{} ssn {}", d.wrapping_add(data), m.ssn);
                }
                (None, None) => {
                    let _ = write!(out, " map ? ssn {}", m.ssn);
                }
            }
        }
        for e in &self.events {
            let _ = write!(out, "; {e}");
        }
        out.push(b']');
    }
}

/// A tally of verifications.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub ok: u32,
    pub bad: u32,
    /// Could not be checked (keys not seen, payload not captured, mapping
    /// not complete in the capture).
    pub unverified: u32,
}

impl Tally {
    pub fn total(&self) -> u32 {
        self.ok + self.bad + self.unverified
    }
    pub(crate) fn add(&mut self, c: Check) {
        match c {
            Check::Ok => self.ok += 1,
            Check::Bad | Check::BadLeftmost => self.bad += 1,
            Check::NoKeys => self.unverified += 1,
        }
    }
}

/// How a subflow ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubflowEnd {
    /// FIN frames, by connection side.
    pub fin: [Option<u64>; 2],
    /// The first RST: frame and sender.
    pub rst: Option<(u64, Side)>,
    /// The MPTCP signal that RST carried (MP_TCPRST, MP_FASTCLOSE, MP_FAIL).
    pub rst_signal: Option<CloseCause>,
    /// The first MPTCP reason for the close (REMOVE_ADDR, MP_FASTCLOSE,
    /// MP_TCPRST, MP_FAIL), when there is one.
    pub cause: Option<(u64, CloseCause)>,
}

/// How a subflow began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubflowKind {
    /// The initial subflow (MP_CAPABLE).
    Initial,
    /// Added with MP_JOIN, by the given side.
    Join { by: Side },
    /// Its handshake is not in the capture.
    Unknown,
}

/// One TCP subflow of an MPTCP connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubflowReport {
    /// 1-based within the connection.
    pub id: u32,
    /// 1-based TCP flow number in the capture.
    pub flow: u32,
    /// The TCP client (SYN sender) and server of this subflow.
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub kind: SubflowKind,
    /// Address ids, by connection side.
    pub addr_ids: [Option<u8>; 2],
    /// Backup requested by each connection side (MP_JOIN B flag, MP_PRIO).
    pub backup: [bool; 2],
    /// Payload bytes sent by each connection side on this subflow (first
    /// transmissions on the subflow, reinjections included).
    pub bytes: [u64; 2],
    /// Of those, bytes that had been sent on another subflow first.
    pub reinjected: [u64; 2],
    /// Bytes retransmitted on this subflow.
    pub retransmitted: [u64; 2],
    pub first_frame: u64,
    pub last_frame: u64,
    pub packets: u64,
    /// Frame of the SYN, SYN/ACK (when seen).
    pub syn_frame: Option<u64>,
    pub end: SubflowEnd,
    /// The subflow falls back to TCP (with the frame).
    pub fallback: Option<(u64, FallbackReason)>,
    /// Some payload was not captured (snaplen).
    pub truncated: bool,
    /// Payload in the SYN (TCP Fast Open): not in the data sequence space.
    pub syn_data: u64,
}

/// An ADD_ADDR announcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    pub frame: u64,
    pub by: Side,
    pub id: u8,
    pub addr: std::net::IpAddr,
    pub port: Option<u16>,
    /// `None` for v0 (no HMAC).
    pub hmac: Option<Check>,
    pub echo_frame: Option<u64>,
}

/// A REMOVE_ADDR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    pub frame: u64,
    pub by: Side,
    pub ids: Vec<u8>,
}

/// One MPTCP connection (or attempt: a fallback is still reported).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnReport {
    /// 1-based, in order of the first packet.
    pub id: u32,
    /// Negotiated version (the SYN/ACK's, or the SYN's when unanswered).
    pub version: Option<u8>,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// By side: keys, tokens and IDSNs.
    pub keys: [Option<u64>; 2],
    pub tokens: [Option<u32>; 2],
    pub idsns: [Option<u64>; 2],
    /// DSS checksums negotiated (the A flag in the SYN or SYN/ACK).
    pub checksum: bool,
    pub first_frame: u64,
    pub last_frame: u64,
    pub subflows: Vec<SubflowReport>,
    /// Connection-level bytes each side sent (DSN space, no copies).
    pub data_bytes: [u64; 2],
    pub hmac: Tally,
    pub csum: Tally,
    pub announced: Vec<Announcement>,
    pub removed: Vec<Removal>,
    pub verdicts: Vec<Verdict>,
    /// Payload segments carried by no mapping seen.
    pub unmapped_segments: u64,
}

impl ConnReport {
    /// The fallback verdict, if any.
    pub fn fallback(&self) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| matches!(v.kind, VerdictKind::Fallback(_)))
    }
    /// The established verdict, if any.
    pub fn established(&self) -> Option<&Verdict> {
        self.verdicts.iter().find(|v| matches!(v.kind, VerdictKind::Established { .. } | VerdictKind::InUse))
    }
}

/// A TCP flow that never tried MPTCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpFlowReport {
    pub flow: u32,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub first_frame: u64,
    pub last_frame: u64,
    pub packets: u64,
    /// Payload bytes client->server and server->client.
    pub bytes: [u64; 2],
    /// The SYN without MP_CAPABLE, when seen.
    pub syn_frame: Option<u64>,
    pub kind: TcpFlowKind,
}

/// What a TCP flow without an MPTCP connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpFlowKind {
    /// Its SYN carried no MPTCP option.
    Plain,
    /// Its handshake is not in the capture and it carries no MPTCP option.
    NoHandshake,
    /// An MP_JOIN SYN to a token no connection in the capture owns.
    JoinUnknownToken { token: u32 },
}

/// The totals of a [`Report`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportCounts {
    pub frames: u64,
    pub tcp_segments: u64,
    pub connections: usize,
    pub tcp_flows: usize,
}

/// One part of a [`Report`], as [`super::Analyzer::for_each_report`]
/// hands them out.
#[derive(Clone, Copy, Debug)]
pub enum ReportPart<'a> {
    Conn(&'a ConnReport),
    Flow(&'a TcpFlowReport),
}

/// Everything known at the end of the capture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Frames fed to the analyzer.
    pub frames: u64,
    /// Of those, TCP segments.
    pub tcp_segments: u64,
    pub connections: Vec<ConnReport>,
    pub tcp_flows: Vec<TcpFlowReport>,
}
