//! The kernel as a source: sock_diag over NETLINK_SOCK_DIAG.
//!
//! Two dumps per address family (what iproute2's `ss -tiM` asks for):
//! - MPTCP sockets: `inet_diag_req_v2` with the protocol 262 carried in the
//!   `INET_DIAG_REQ_PROTOCOL` (u32) request attribute, because it does not fit
//!   the u8 `sdiag_protocol`; each answer carries `struct mptcp_info` in
//!   `INET_DIAG_INFO` (net/mptcp/mptcp_diag.c, sockopt.c `mptcp_diag_fill_info`).
//! - TCP sockets: `tcp_info` in `INET_DIAG_INFO` and, for MPTCP subflows,
//!   `INET_DIAG_ULP_INFO` -> `INET_ULP_INFO_MPTCP` -> `MPTCP_SUBFLOW_ATTR_*`
//!   (net/mptcp/diag.c `subflow_get_info`).
//!
//! Subflows are tied to their connection by token: the kernel fills
//! `MPTCP_SUBFLOW_ATTR_TOKEN_LOC` with the connection's own token (the one
//! `mptcp_info` reports) on every subflow, and `TOKEN_REM` with the peer's
//! token only on subflows it opened with MP_JOIN (the token sent in the
//! SYN), 0 otherwise. ss prints them remote first: `token:REM(id:R)/LOC(id:L)`,
//! which is why a client's MP_CAPABLE subflow reads `token:0000(id:0)/768f615c(id:0)`.
//!
//! Since Linux 6.15 the sequence attributes (`RELWRITE_SEQ`, `MAP_SEQ`,
//! `MAP_SFSEQ`, `SSN_OFFSET`, `MAP_DATALEN`) go only to a CAP_NET_ADMIN
//! requester; tokens, ids and flags go to everybody.
//!
//! Everything that parses is pure and bounds-checked; [`KernelSource`] is the
//! only part that does I/O.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::netlink::{self, NetlinkError, OwnedMessage, Socket, attrs, push_attr, read};
use super::{Note, Source, SourceUpdate, fmt_sockaddr, normalize_ip};
use crate::snapshot::{ConnSnapshot, Snapshot, SubflowSnapshot, subflow_flags, token_hex};

/// IPPROTO_MPTCP.
pub const IPPROTO_MPTCP: u32 = 262;
pub const IPPROTO_TCP: u32 = 6;
/// SOCK_DIAG_BY_FAMILY (include/uapi/linux/sock_diag.h).
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// Request attribute (enum inet_diag_req_attrs).
pub const INET_DIAG_REQ_PROTOCOL: u16 = 3;
/// Answer attributes (enum inet_diag_attr_ids).
pub const INET_DIAG_INFO: u16 = 2;
pub const INET_DIAG_CONG: u16 = 4;
pub const INET_DIAG_ULP_INFO: u16 = 19;
/// Nested in INET_DIAG_ULP_INFO (enum inet_ulp_info).
pub const INET_ULP_INFO_NAME: u16 = 1;
pub const INET_ULP_INFO_MPTCP: u16 = 3;

/// MPTCP_SUBFLOW_ATTR_* (include/uapi/linux/mptcp.h).
pub mod subflow_attr {
    pub const TOKEN_REM: u16 = 1;
    pub const TOKEN_LOC: u16 = 2;
    pub const RELWRITE_SEQ: u16 = 3;
    pub const MAP_SEQ: u16 = 4;
    pub const MAP_SFSEQ: u16 = 5;
    pub const SSN_OFFSET: u16 = 6;
    pub const MAP_DATALEN: u16 = 7;
    pub const FLAGS: u16 = 8;
    pub const ID_REM: u16 = 9;
    pub const ID_LOC: u16 = 10;
    pub const PAD: u16 = 11;
}

/// `mptcpi_flags` bits.
pub const MPTCP_INFO_FLAG_FALLBACK: u32 = 1 << 0;
pub const MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED: u32 = 1 << 1;

/// Kernel TCP states (include/net/tcp_states.h).
pub mod tcp_state {
    pub const ESTABLISHED: u8 = 1;
    pub const SYN_SENT: u8 = 2;
    pub const SYN_RECV: u8 = 3;
    pub const FIN_WAIT1: u8 = 4;
    pub const FIN_WAIT2: u8 = 5;
    pub const TIME_WAIT: u8 = 6;
    pub const CLOSE: u8 = 7;
    pub const CLOSE_WAIT: u8 = 8;
    pub const LAST_ACK: u8 = 9;
    pub const LISTEN: u8 = 10;
    pub const CLOSING: u8 = 11;
}

/// The state name ss prints (misc/ss.c `sstate_name`).
pub fn state_name(state: u8) -> &'static str {
    use tcp_state::*;
    match state {
        ESTABLISHED => "ESTAB",
        SYN_SENT => "SYN-SENT",
        SYN_RECV => "SYN-RECV",
        FIN_WAIT1 => "FIN-WAIT-1",
        FIN_WAIT2 => "FIN-WAIT-2",
        TIME_WAIT => "TIME-WAIT",
        CLOSE => "UNCONN",
        CLOSE_WAIT => "CLOSE-WAIT",
        LAST_ACK => "LAST-ACK",
        LISTEN => "LISTEN",
        CLOSING => "CLOSING",
        _ => "UNKNOWN",
    }
}

/// Every state but TIME-WAIT (time-wait sockets carry no ULP data).
pub const STATES_WANTED: u32 = 0xffe & !(1 << tcp_state::TIME_WAIT);

/// `struct inet_diag_req_v2` (56 bytes) for a dump of `protocol` sockets of
/// `family`, asking for INET_DIAG_INFO (which also brings the ULP info), and
/// the congestion control name; `protocol` goes in INET_DIAG_REQ_PROTOCOL.
pub fn dump_request_payload(family: u8, protocol: u32) -> Vec<u8> {
    let mut p = vec![0u8; 56];
    p[0] = family;
    // The u8 field cannot hold 262; the kernel reads the attribute instead.
    p[1] = protocol as u8;
    p[2] = (1 << (INET_DIAG_INFO - 1)) | (1 << (INET_DIAG_CONG - 1));
    p[4..8].copy_from_slice(&STATES_WANTED.to_ne_bytes());
    push_attr(&mut p, INET_DIAG_REQ_PROTOCOL, &protocol.to_ne_bytes());
    p
}

/// `struct mptcp_info` as far as the kernel sent it: an older kernel sends a
/// shorter struct, and the fields past its end are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MptcpInfo {
    pub subflows: u8,
    pub add_addr_signal: u8,
    pub add_addr_accepted: u8,
    pub subflows_max: u8,
    pub add_addr_signal_max: u8,
    pub add_addr_accepted_max: u8,
    pub flags: u32,
    pub token: u32,
    pub write_seq: u64,
    pub snd_una: u64,
    pub rcv_nxt: u64,
    pub local_addr_used: Option<u8>,
    pub local_addr_max: Option<u8>,
    pub csum_enabled: Option<u8>,
    pub retransmits: Option<u32>,
    pub bytes_retrans: Option<u64>,
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
    pub bytes_acked: Option<u64>,
    pub subflows_total: Option<u8>,
    pub endp_laminar_max: Option<u8>,
    pub endp_fullmesh_max: Option<u8>,
    pub last_data_sent: Option<u32>,
    pub last_data_recv: Option<u32>,
    pub last_ack_recv: Option<u32>,
    /// How many bytes the kernel sent.
    pub len: usize,
}

/// Byte offsets in `struct mptcp_info` (include/uapi/linux/mptcp.h).
mod mi {
    pub const FLAGS: usize = 8;
    pub const TOKEN: usize = 12;
    pub const WRITE_SEQ: usize = 16;
    pub const SND_UNA: usize = 24;
    pub const RCV_NXT: usize = 32;
    pub const LOCAL_ADDR_USED: usize = 40;
    pub const LOCAL_ADDR_MAX: usize = 41;
    pub const CSUM_ENABLED: usize = 42;
    pub const RETRANSMITS: usize = 44;
    pub const BYTES_RETRANS: usize = 48;
    pub const BYTES_SENT: usize = 56;
    pub const BYTES_RECEIVED: usize = 64;
    pub const BYTES_ACKED: usize = 72;
    pub const SUBFLOWS_TOTAL: usize = 80;
    pub const ENDP_LAMINAR_MAX: usize = 81;
    pub const ENDP_FULLMESH_MAX: usize = 82;
    pub const LAST_DATA_SENT: usize = 84;
    pub const LAST_DATA_RECV: usize = 88;
    pub const LAST_ACK_RECV: usize = 92;
}

/// Parse the prefix of `struct mptcp_info` in `b` (missing fields read as 0
/// for the original v5.7 part, `None` for later additions).
pub fn parse_mptcp_info(b: &[u8]) -> MptcpInfo {
    let u8_ = |at| read::u8(b, at).unwrap_or(0);
    MptcpInfo {
        subflows: u8_(0),
        add_addr_signal: u8_(1),
        add_addr_accepted: u8_(2),
        subflows_max: u8_(3),
        add_addr_signal_max: u8_(4),
        add_addr_accepted_max: u8_(5),
        flags: read::u32(b, mi::FLAGS).unwrap_or(0),
        token: read::u32(b, mi::TOKEN).unwrap_or(0),
        write_seq: read::u64(b, mi::WRITE_SEQ).unwrap_or(0),
        snd_una: read::u64(b, mi::SND_UNA).unwrap_or(0),
        rcv_nxt: read::u64(b, mi::RCV_NXT).unwrap_or(0),
        local_addr_used: read::u8(b, mi::LOCAL_ADDR_USED),
        local_addr_max: read::u8(b, mi::LOCAL_ADDR_MAX),
        csum_enabled: read::u8(b, mi::CSUM_ENABLED),
        retransmits: read::u32(b, mi::RETRANSMITS),
        bytes_retrans: read::u64(b, mi::BYTES_RETRANS),
        bytes_sent: read::u64(b, mi::BYTES_SENT),
        bytes_received: read::u64(b, mi::BYTES_RECEIVED),
        bytes_acked: read::u64(b, mi::BYTES_ACKED),
        subflows_total: read::u8(b, mi::SUBFLOWS_TOTAL),
        endp_laminar_max: read::u8(b, mi::ENDP_LAMINAR_MAX),
        endp_fullmesh_max: read::u8(b, mi::ENDP_FULLMESH_MAX),
        last_data_sent: read::u32(b, mi::LAST_DATA_SENT),
        last_data_recv: read::u32(b, mi::LAST_DATA_RECV),
        last_ack_recv: read::u32(b, mi::LAST_ACK_RECV),
        len: b.len(),
    }
}

/// The parts of `struct tcp_info` (include/uapi/linux/tcp.h) the view uses;
/// `None` past what the kernel sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    pub state: u8,
    pub rto_us: Option<u32>,
    pub snd_mss: Option<u32>,
    pub rtt_us: Option<u32>,
    pub rttvar_us: Option<u32>,
    pub snd_ssthresh: Option<u32>,
    pub snd_cwnd: Option<u32>,
    pub total_retrans: Option<u32>,
    pub bytes_acked: Option<u64>,
    pub bytes_received: Option<u64>,
    pub bytes_sent: Option<u64>,
    pub bytes_retrans: Option<u64>,
}

/// Byte offsets in `struct tcp_info`.
mod ti {
    pub const RTO: usize = 8;
    pub const SND_MSS: usize = 16;
    pub const RTT: usize = 68;
    pub const RTTVAR: usize = 72;
    pub const SND_SSTHRESH: usize = 76;
    pub const SND_CWND: usize = 80;
    pub const TOTAL_RETRANS: usize = 100;
    pub const BYTES_ACKED: usize = 120;
    pub const BYTES_RECEIVED: usize = 128;
    pub const BYTES_SENT: usize = 200;
    pub const BYTES_RETRANS: usize = 208;
}

pub fn parse_tcp_info(b: &[u8]) -> TcpInfo {
    TcpInfo {
        state: read::u8(b, 0).unwrap_or(0),
        rto_us: read::u32(b, ti::RTO),
        snd_mss: read::u32(b, ti::SND_MSS),
        rtt_us: read::u32(b, ti::RTT),
        rttvar_us: read::u32(b, ti::RTTVAR),
        snd_ssthresh: read::u32(b, ti::SND_SSTHRESH),
        snd_cwnd: read::u32(b, ti::SND_CWND),
        total_retrans: read::u32(b, ti::TOTAL_RETRANS),
        bytes_acked: read::u64(b, ti::BYTES_ACKED),
        bytes_received: read::u64(b, ti::BYTES_RECEIVED),
        bytes_sent: read::u64(b, ti::BYTES_SENT),
        bytes_retrans: read::u64(b, ti::BYTES_RETRANS),
    }
}

/// The MPTCP subflow ULP info of a TCP socket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubflowInfo {
    pub token_rem: u32,
    pub token_loc: u32,
    pub flags: u32,
    pub id_rem: u8,
    pub id_loc: u8,
    /// The sequence attributes; `None` when the kernel withheld them.
    pub relwrite_seq: Option<u32>,
    pub map_seq: Option<u64>,
    pub map_sfseq: Option<u32>,
    pub ssn_offset: Option<u32>,
    pub map_datalen: Option<u16>,
}

/// Parse the attributes nested in INET_ULP_INFO_MPTCP. Malformed tails are
/// ignored (what was read is kept).
pub fn parse_subflow_info(b: &[u8]) -> SubflowInfo {
    use subflow_attr::*;
    let mut s = SubflowInfo::default();
    for a in attrs(b).map_while(Result::ok) {
        match a.ty {
            TOKEN_REM => s.token_rem = a.u32().unwrap_or(0),
            TOKEN_LOC => s.token_loc = a.u32().unwrap_or(0),
            RELWRITE_SEQ => s.relwrite_seq = a.u32(),
            MAP_SEQ => s.map_seq = a.u64(),
            MAP_SFSEQ => s.map_sfseq = a.u32(),
            SSN_OFFSET => s.ssn_offset = a.u32(),
            MAP_DATALEN => s.map_datalen = a.u16(),
            FLAGS => s.flags = a.u32().unwrap_or(0),
            ID_REM => s.id_rem = a.u8().unwrap_or(0),
            ID_LOC => s.id_loc = a.u8().unwrap_or(0),
            _ => {} // PAD and attributes newer than this code
        }
    }
    s
}

/// One socket from a sock_diag answer (`struct inet_diag_msg` + attributes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiagSock {
    pub family: u8,
    pub state: u8,
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    pub ifindex: u32,
    pub cookie: u64,
    pub inode: u32,
    pub rqueue: u32,
    pub wqueue: u32,
    /// INET_DIAG_INFO of an MPTCP socket.
    pub mptcp: Option<MptcpInfo>,
    /// INET_DIAG_INFO of a TCP socket.
    pub tcp: Option<TcpInfo>,
    pub cong: Option<String>,
    /// INET_ULP_INFO_NAME ("mptcp" for subflows).
    pub ulp: Option<String>,
    pub subflow: Option<SubflowInfo>,
}

impl DiagSock {
    pub fn is_mptcp_subflow(&self) -> bool {
        self.ulp.as_deref() == Some("mptcp")
    }
}

/// Size of `struct inet_diag_msg`.
pub const INET_DIAG_MSG_LEN: usize = 72;

fn addr(family: u8, b: &[u8]) -> IpAddr {
    if i32::from(family) == libc::AF_INET6 {
        let mut a = [0u8; 16];
        a.copy_from_slice(&b[..16]);
        IpAddr::V6(Ipv6Addr::from(a))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
}

/// Parse one answer of a dump of `protocol` sockets.
pub fn parse_diag_msg(payload: &[u8], protocol: u32) -> Result<DiagSock, NetlinkError> {
    let Some(h) = payload.get(..INET_DIAG_MSG_LEN) else {
        return Err(NetlinkError::Malformed {
            what: "inet_diag_msg",
            detail: format!("{} bytes, a header needs {INET_DIAG_MSG_LEN}", payload.len()),
        });
    };
    let family = h[0];
    let u32_at = |at| read::u32(h, at).unwrap_or(0);
    let mut s = DiagSock {
        family,
        state: h[1],
        local: (addr(family, &h[8..24]), read::be16(h, 4).unwrap_or(0)),
        remote: (addr(family, &h[24..40]), read::be16(h, 6).unwrap_or(0)),
        ifindex: u32_at(40),
        cookie: u64::from(u32_at(44)) | (u64::from(u32_at(48)) << 32),
        rqueue: u32_at(56),
        wqueue: u32_at(60),
        inode: u32_at(68),
        mptcp: None,
        tcp: None,
        cong: None,
        ulp: None,
        subflow: None,
    };
    for a in attrs(&payload[INET_DIAG_MSG_LEN..]) {
        let a = a?;
        match a.ty {
            INET_DIAG_INFO if protocol == IPPROTO_MPTCP => s.mptcp = Some(parse_mptcp_info(a.data)),
            INET_DIAG_INFO => s.tcp = Some(parse_tcp_info(a.data)),
            INET_DIAG_CONG => s.cong = Some(a.str()),
            INET_DIAG_ULP_INFO => {
                for u in a.nested().map_while(Result::ok) {
                    match u.ty {
                        INET_ULP_INFO_NAME => s.ulp = Some(u.str()),
                        INET_ULP_INFO_MPTCP => s.subflow = Some(parse_subflow_info(u.data)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(s)
}

fn opt_nonzero<T: Default + PartialEq>(v: T) -> Option<T> {
    if v == T::default() { None } else { Some(v) }
}

fn conn_from_msk(m: &DiagSock) -> ConnSnapshot {
    let mut c = ConnSnapshot {
        source: "kernel".into(),
        local: fmt_sockaddr(m.local.0, m.local.1),
        remote: fmt_sockaddr(m.remote.0, m.remote.1),
        state: state_name(m.state).into(),
        id: Some(m.cookie),
        recv_q: Some(m.rqueue),
        send_q: Some(m.wqueue),
        ..Default::default()
    };
    if let Some(i) = &m.mptcp {
        c.token = opt_nonzero(i.token).map(token_hex);
        c.fallback = i.flags & MPTCP_INFO_FLAG_FALLBACK != 0;
        c.remote_key = i.flags & MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED != 0;
        c.subflows_used = Some(i.subflows);
        c.subflows_max = Some(i.subflows_max);
        c.add_addr_signal = Some(i.add_addr_signal);
        c.add_addr_accepted = Some(i.add_addr_accepted);
        c.add_addr_signal_max = Some(i.add_addr_signal_max);
        c.add_addr_accepted_max = Some(i.add_addr_accepted_max);
        c.write_seq = Some(i.write_seq);
        c.snd_una = Some(i.snd_una);
        c.rcv_nxt = Some(i.rcv_nxt);
        c.local_addr_used = i.local_addr_used;
        c.local_addr_max = i.local_addr_max;
        c.csum_enabled = i.csum_enabled.map(|v| v != 0);
        c.retransmits = i.retransmits.map(u64::from);
        c.bytes_retrans = i.bytes_retrans;
        c.bytes_sent = i.bytes_sent;
        c.bytes_received = i.bytes_received;
        c.bytes_acked = i.bytes_acked;
        c.subflows_total = i.subflows_total.map(u32::from);
        c.endp_laminar_max = i.endp_laminar_max;
        c.endp_fullmesh_max = i.endp_fullmesh_max;
        c.last_data_sent_ms = i.last_data_sent;
        c.last_data_recv_ms = i.last_data_recv;
        c.last_ack_recv_ms = i.last_ack_recv;
    }
    c
}

fn subflow_from_tcp(t: &DiagSock) -> SubflowSnapshot {
    let mut s = SubflowSnapshot {
        local: fmt_sockaddr(t.local.0, t.local.1),
        remote: fmt_sockaddr(t.remote.0, t.remote.1),
        state: Some(state_name(t.state).into()),
        token_loc: token_hex(0),
        token_rem: token_hex(0),
        id: Some(t.cookie),
        recv_q: Some(t.rqueue),
        send_q: Some(t.wqueue),
        ..Default::default()
    };
    if let Some(sf) = &t.subflow {
        s.flags = subflow_flags::letters(sf.flags);
        s.token_loc = token_hex(sf.token_loc);
        s.token_rem = token_hex(sf.token_rem);
        s.id_loc = sf.id_loc;
        s.id_rem = sf.id_rem;
        s.backup = sf.flags & (subflow_flags::BKUP_LOC | subflow_flags::BKUP_REM) != 0;
        s.seq_withheld = sf.map_seq.is_none() && sf.ssn_offset.is_none();
        s.seq = sf.map_seq.unwrap_or(0);
        s.sfseq = sf.map_sfseq.unwrap_or(0);
        s.ssnoff = sf.ssn_offset.unwrap_or(0);
        s.maplen = sf.map_datalen.map(u32::from).unwrap_or(0);
        s.relwrite_seq = sf.relwrite_seq;
    }
    if let Some(i) = &t.tcp {
        s.cwnd = i.snd_cwnd;
        // tcp_info reports "no threshold yet" as a huge value (TCP_INFINITE_SSTHRESH).
        s.ssthresh = i.snd_ssthresh.filter(|&v| v < 0xffff);
        s.rtt_us = i.rtt_us;
        s.rttvar_us = i.rttvar_us;
        s.mss = i.snd_mss;
        s.bytes_sent = i.bytes_sent;
        s.bytes_received = i.bytes_received;
        s.bytes_acked = i.bytes_acked;
        s.bytes_retrans = i.bytes_retrans;
        s.retransmits = i.total_retrans.map(u64::from);
    }
    s
}

/// An address and port.
type Endpoint = (IpAddr, u16);

/// Whether a subflow opened with MP_JOIN (either side).
fn is_join(s: &SubflowSnapshot) -> bool {
    s.flags.contains('J') || s.flags.contains('j')
}

/// Group MPTCP sockets and TCP subflows into connections (see the module
/// comment for how they are tied together). TCP sockets that are not MPTCP
/// subflows are ignored. A subflow whose connection is not in the dump gets
/// a connection of its own with state "ORPHAN".
pub fn group(msks: &[DiagSock], tcps: &[DiagSock]) -> Vec<ConnSnapshot> {
    let mut conns: Vec<ConnSnapshot> = msks.iter().map(conn_from_msk).collect();
    let mut by_token: HashMap<u32, usize> = HashMap::new();
    let mut by_tuple: HashMap<(Endpoint, Endpoint), usize> = HashMap::new();
    let mut listeners: HashMap<Endpoint, usize> = HashMap::new();
    let norm = |(ip, port): Endpoint| (normalize_ip(ip), port);
    for (i, m) in msks.iter().enumerate() {
        if m.state == tcp_state::LISTEN {
            listeners.insert(norm(m.local), i);
            continue;
        }
        if let Some(t) = m.mptcp.as_ref().map(|i| i.token).filter(|&t| t != 0) {
            by_token.insert(t, i);
        }
        by_tuple.insert((norm(m.local), norm(m.remote)), i);
    }
    let mut orphans: BTreeMap<u32, usize> = BTreeMap::new();
    for t in tcps.iter().filter(|t| t.is_mptcp_subflow()) {
        let sf = subflow_from_tcp(t);
        let target = if t.state == tcp_state::LISTEN {
            listeners.get(&norm(t.local)).copied()
        } else {
            let tok = t.subflow.as_ref().map(|s| s.token_loc).unwrap_or(0);
            by_token
                .get(&tok)
                .filter(|_| tok != 0)
                .copied()
                .or_else(|| by_tuple.get(&(norm(t.local), norm(t.remote))).copied())
        };
        let idx = match target {
            Some(i) => i,
            None => {
                let tok = t.subflow.as_ref().map(|s| s.token_loc).unwrap_or(0);
                *orphans.entry(tok).or_insert_with(|| {
                    conns.push(ConnSnapshot {
                        source: "kernel".into(),
                        token: opt_nonzero(tok).map(token_hex),
                        local: sf.local.clone(),
                        remote: sf.remote.clone(),
                        state: if t.state == tcp_state::LISTEN { "LISTEN".into() } else { "ORPHAN".into() },
                        ..Default::default()
                    });
                    conns.len() - 1
                })
            }
        };
        conns[idx].subflows.push(sf);
    }
    for c in &mut conns {
        // The initial (MP_CAPABLE) subflow first, then joins in address order.
        c.subflows.sort_by(|a, b| (is_join(a), &a.local, &a.remote).cmp(&(is_join(b), &b.local, &b.remote)));
        if c.remote_token.is_none() {
            // The peer's token is what our joins sent in their SYN.
            c.remote_token = c.subflows.iter().find(|s| s.token_rem != token_hex(0)).map(|s| s.token_rem.clone());
        }
    }
    conns
}

/// MPTcpExt counters from /proc/net/netstat text ("MPTcpExt: names" then
/// "MPTcpExt: values"), named as nstat names them ("MPTcpExtMPCapableSYNRX").
pub fn parse_netstat_mptcp(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        let Some(names) = l.strip_prefix("MPTcpExt:") else { continue };
        let Some(values) = lines.next().and_then(|v| v.strip_prefix("MPTcpExt:")) else { break };
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(v) = v.parse() {
                out.insert(format!("MPTcpExt{n}"), v);
            }
        }
    }
    out
}

/// Whether this process has CAP_NET_ADMIN (bit 12 of CapEff in
/// /proc/self/status): without it the kernel withholds subflow sequence
/// numbers and path-manager events.
pub fn has_net_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 12) != 0)
}

/// Errors of the kernel source.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("sock_diag: cannot open a NETLINK_SOCK_DIAG socket: {0}")]
    Open(#[source] NetlinkError),
    #[error("sock_diag dump of {what} sockets: {source}{}", hint(source))]
    Dump { what: &'static str, source: NetlinkError },
}

fn hint(e: &NetlinkError) -> &'static str {
    match e.errno() {
        Some(libc::ENOENT) => " (no MPTCP sock_diag in this kernel: modprobe mptcp_diag, or MPTCP is off)",
        Some(libc::EPERM) | Some(libc::EACCES) => " (permission denied)",
        _ => "",
    }
}

/// What one scan found: the snapshot and what went wrong on the way
/// (a malformed answer is reported and the others still count).
#[derive(Debug, Default)]
pub struct KernelScan {
    pub snapshot: Snapshot,
    pub problems: Vec<String>,
}

/// The kernel as a connection source.
pub struct KernelSource {
    sock: Socket,
    net_admin: bool,
}

impl KernelSource {
    pub fn open() -> Result<KernelSource, KernelError> {
        let sock = Socket::open(netlink::NETLINK_SOCK_DIAG).map_err(KernelError::Open)?;
        Ok(KernelSource { sock, net_admin: has_net_admin() })
    }

    /// Whether the kernel will show us subflow sequence numbers.
    pub fn net_admin(&self) -> bool {
        self.net_admin
    }

    fn dump(&mut self, what: &'static str, family: i32, protocol: u32) -> Result<Vec<OwnedMessage>, KernelError> {
        self.sock
            .dump(what, SOCK_DIAG_BY_FAMILY, &dump_request_payload(family as u8, protocol))
            .map_err(|source| KernelError::Dump { what, source })
    }

    /// Dump MPTCP and TCP sockets of both families and group them.
    pub fn scan(&mut self) -> Result<KernelScan, KernelError> {
        let mut scan = KernelScan::default();
        let mut msks = Vec::new();
        let mut tcps = Vec::new();
        for (family, fname) in [(libc::AF_INET, "IPv4"), (libc::AF_INET6, "IPv6")] {
            for (proto, list, what) in [(IPPROTO_MPTCP, &mut msks, "MPTCP"), (IPPROTO_TCP, &mut tcps, "TCP")] {
                let answers = match self.dump(what, family, proto) {
                    Ok(a) => a,
                    // Only the IPv4 TCP dump is essential: a kernel without
                    // IPv6 or without mptcp_diag still shows what it has
                    // (subflows without their MPTCP socket show as ORPHAN).
                    Err(e) if family == libc::AF_INET6 || proto == IPPROTO_MPTCP => {
                        if !scan.problems.iter().any(|p| p.ends_with(&e.to_string())) {
                            scan.problems.push(format!("{fname} {e}"));
                        }
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                for m in answers.iter().filter(|m| m.ty == SOCK_DIAG_BY_FAMILY) {
                    match parse_diag_msg(&m.payload, proto) {
                        Ok(s) => list.push(s),
                        Err(e) => scan.problems.push(format!("{fname} {what} answer skipped: {e}")),
                    }
                }
            }
        }
        scan.snapshot.connections = group(&msks, &tcps);
        if let Ok(text) = std::fs::read_to_string("/proc/net/netstat") {
            scan.snapshot.mib = parse_netstat_mptcp(&text);
        }
        Ok(scan)
    }
}

impl Source for KernelSource {
    fn label(&self) -> String {
        "kernel".into()
    }

    fn poll(&mut self, _now: Duration, snapshot: bool) -> SourceUpdate {
        let mut u = SourceUpdate::default();
        if !snapshot {
            return u;
        }
        match self.scan() {
            Ok(scan) => {
                u.snapshot = Some(scan.snapshot);
                u.notes.extend(scan.problems.into_iter().map(|p| Note::warn("kernel", p)));
            }
            Err(e) => u.notes.push(Note::warn("kernel", e.to_string())),
        }
        if !self.net_admin {
            u.notes.push(Note::warn(
                "kernel",
                "not CAP_NET_ADMIN: the kernel withholds subflow seq, sfseq, ssnoff and maplen (run as root to see them)",
            ));
        }
        u
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::netlink::{NLA_F_NESTED, message_bytes, messages};

    fn info_bytes(len: usize) -> Vec<u8> {
        let mut b = vec![0u8; 96];
        b[0] = 1; // subflows
        b[3] = 2; // subflows_max
        b[mi::FLAGS..mi::FLAGS + 4].copy_from_slice(&2u32.to_ne_bytes());
        b[mi::TOKEN..mi::TOKEN + 4].copy_from_slice(&0xf4558206u32.to_ne_bytes());
        b[mi::WRITE_SEQ..mi::WRITE_SEQ + 8].copy_from_slice(&0xf1bd89048a0dfeb2u64.to_ne_bytes());
        b[mi::LOCAL_ADDR_MAX] = 1;
        b[mi::BYTES_SENT..mi::BYTES_SENT + 8].copy_from_slice(&49152u64.to_ne_bytes());
        b[mi::SUBFLOWS_TOTAL] = 2;
        b[mi::LAST_ACK_RECV..mi::LAST_ACK_RECV + 4].copy_from_slice(&4u32.to_ne_bytes());
        b.truncate(len);
        b
    }

    #[test]
    fn mptcp_info_full_and_prefixes() {
        let full = parse_mptcp_info(&info_bytes(96));
        assert_eq!((full.subflows, full.subflows_max, full.token), (1, 2, 0xf4558206));
        assert_eq!(full.flags, MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED);
        assert_eq!(full.write_seq, 0xf1bd89048a0dfeb2);
        assert_eq!(full.bytes_sent, Some(49152));
        assert_eq!(full.subflows_total, Some(2));
        assert_eq!(full.last_ack_recv, Some(4));
        // v5.7..v5.11: 40 bytes, nothing after rcv_nxt.
        let old = parse_mptcp_info(&info_bytes(40));
        assert_eq!(old.token, 0xf4558206);
        assert_eq!((old.local_addr_max, old.bytes_sent, old.subflows_total), (None, None, None));
        // v5.13..v6.4: 43/44 bytes (csum_enabled and padding).
        let mid = parse_mptcp_info(&info_bytes(44));
        assert_eq!((mid.local_addr_max, mid.csum_enabled, mid.retransmits), (Some(1), Some(0), None));
        // v6.5..v6.9: up to subflows_total and its padding.
        let v65 = parse_mptcp_info(&info_bytes(84));
        assert_eq!((v65.subflows_total, v65.last_ack_recv), (Some(2), None));
        // A cut inside a field leaves it out, not half-read.
        let cut = parse_mptcp_info(&info_bytes(60));
        assert_eq!((cut.bytes_retrans, cut.bytes_sent), (Some(0), None));
        // Nothing at all.
        assert_eq!(parse_mptcp_info(&[]).token, 0);
    }

    #[test]
    fn tcp_info_fields() {
        let mut b = vec![0u8; 232];
        b[0] = 1;
        b[ti::SND_MSS..ti::SND_MSS + 4].copy_from_slice(&1448u32.to_ne_bytes());
        b[ti::RTT..ti::RTT + 4].copy_from_slice(&144u32.to_ne_bytes());
        b[ti::SND_CWND..ti::SND_CWND + 4].copy_from_slice(&34u32.to_ne_bytes());
        b[ti::BYTES_SENT..ti::BYTES_SENT + 8].copy_from_slice(&49152u64.to_ne_bytes());
        let t = parse_tcp_info(&b);
        assert_eq!((t.state, t.snd_mss, t.rtt_us, t.snd_cwnd), (1, Some(1448), Some(144), Some(34)));
        assert_eq!(t.bytes_sent, Some(49152));
        // An old kernel's 104-byte tcp_info: no byte counters.
        let t = parse_tcp_info(&b[..104]);
        assert_eq!((t.snd_cwnd, t.bytes_acked, t.bytes_sent), (Some(34), None, None));
    }

    /// Build an inet_diag_msg answer the way the kernel does.
    fn diag_msg(family: u8, state: u8, local: (&str, u16), remote: (&str, u16), cookie: u64, extra: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; INET_DIAG_MSG_LEN];
        h[0] = family;
        h[1] = state;
        h[4..6].copy_from_slice(&local.1.to_be_bytes());
        h[6..8].copy_from_slice(&remote.1.to_be_bytes());
        for (at, a) in [(8, local.0), (24, remote.0)] {
            match a.parse::<IpAddr>().unwrap() {
                IpAddr::V4(v) => h[at..at + 4].copy_from_slice(&v.octets()),
                IpAddr::V6(v) => h[at..at + 16].copy_from_slice(&v.octets()),
            }
        }
        h[44..48].copy_from_slice(&(cookie as u32).to_ne_bytes());
        h[48..52].copy_from_slice(&((cookie >> 32) as u32).to_ne_bytes());
        h[56..60].copy_from_slice(&7u32.to_ne_bytes());
        h.extend_from_slice(extra);
        h
    }

    fn subflow_attrs(flags: &str, rem: u32, loc: u32, id_rem: u8, id_loc: u8, seqs: bool) -> Vec<u8> {
        use subflow_attr::*;
        let mut sf = Vec::new();
        push_attr(&mut sf, TOKEN_REM, &rem.to_ne_bytes());
        push_attr(&mut sf, TOKEN_LOC, &loc.to_ne_bytes());
        if seqs {
            push_attr(&mut sf, RELWRITE_SEQ, &0u32.to_ne_bytes());
            push_attr(&mut sf, PAD, &[]);
            push_attr(&mut sf, MAP_SEQ, &0x8a030cc9cb1ce209u64.to_ne_bytes());
            push_attr(&mut sf, MAP_SFSEQ, &1u32.to_ne_bytes());
            push_attr(&mut sf, SSN_OFFSET, &0xf8bae334u32.to_ne_bytes());
            push_attr(&mut sf, MAP_DATALEN, &0x4230u16.to_ne_bytes());
        }
        push_attr(&mut sf, FLAGS, &subflow_flags::from_letters(flags).to_ne_bytes());
        push_attr(&mut sf, ID_REM, &[id_rem]);
        push_attr(&mut sf, ID_LOC, &[id_loc]);
        let mut ulp = Vec::new();
        push_attr(&mut ulp, INET_ULP_INFO_NAME, b"mptcp\0");
        push_attr(&mut ulp, INET_ULP_INFO_MPTCP | NLA_F_NESTED, &sf);
        let mut out = Vec::new();
        let mut tinfo = vec![0u8; 232];
        tinfo[ti::SND_CWND..ti::SND_CWND + 4].copy_from_slice(&10u32.to_ne_bytes());
        tinfo[ti::SND_SSTHRESH..ti::SND_SSTHRESH + 4].copy_from_slice(&0x7fffffffu32.to_ne_bytes());
        push_attr(&mut out, INET_DIAG_INFO, &tinfo);
        push_attr(&mut out, INET_DIAG_CONG, b"cubic\0");
        push_attr(&mut out, INET_DIAG_ULP_INFO | NLA_F_NESTED, &ulp);
        out
    }

    fn msk_attrs(token: u32) -> Vec<u8> {
        let mut info = info_bytes(96);
        info[mi::TOKEN..mi::TOKEN + 4].copy_from_slice(&token.to_ne_bytes());
        let mut out = Vec::new();
        push_attr(&mut out, INET_DIAG_INFO, &info);
        out
    }

    #[test]
    fn request_layout() {
        let p = dump_request_payload(libc::AF_INET as u8, IPPROTO_MPTCP);
        assert_eq!(p.len(), 56 + 8);
        assert_eq!(p[0] as i32, libc::AF_INET);
        assert_eq!(p[2], 0b1010, "INET_DIAG_INFO and INET_DIAG_CONG");
        assert_eq!(read::u32(&p, 4), Some(STATES_WANTED));
        let a = attrs(&p[56..]).find(INET_DIAG_REQ_PROTOCOL).unwrap();
        assert_eq!(a.u32(), Some(262));
        let m = message_bytes(SOCK_DIAG_BY_FAMILY, netlink::NLM_F_REQUEST | netlink::NLM_F_DUMP, 5, &p);
        let m = messages(&m).next().unwrap().unwrap();
        assert_eq!(m.payload.len(), 64);
    }

    /// The client side of testdata two-subflows-join.ss-client.txt, rebuilt
    /// as kernel answers: one MPTCP socket and two subflows.
    fn client_sockets(seqs: bool) -> (Vec<DiagSock>, Vec<DiagSock>) {
        let af = libc::AF_INET as u8;
        let msk = diag_msg(af, 1, ("10.77.1.1", 49122), ("10.77.1.2", 10000), 0x1111, &msk_attrs(0xf4558206));
        let sf1 = diag_msg(
            af,
            1,
            ("10.77.1.1", 49122),
            ("10.77.1.2", 10000),
            0x2222,
            &subflow_attrs("Mmec", 0, 0xf4558206, 0, 0, seqs),
        );
        let sf2 = diag_msg(
            af,
            1,
            ("10.77.2.1", 53087),
            ("10.77.1.2", 10000),
            0x3333,
            &subflow_attrs("Jjec", 0xc059bd1d, 0xf4558206, 0, 2, seqs),
        );
        // A plain TCP socket: ignored.
        let plain = diag_msg(af, 1, ("10.77.1.1", 22), ("10.77.1.9", 5555), 0x4444, &[]);
        let m = vec![parse_diag_msg(&msk, IPPROTO_MPTCP).unwrap()];
        let t = [sf2, plain, sf1].iter().map(|b| parse_diag_msg(b, IPPROTO_TCP).unwrap()).collect();
        (m, t)
    }

    #[test]
    fn grouping_by_token() {
        let (m, t) = client_sockets(true);
        assert_eq!(m[0].mptcp.as_ref().unwrap().token, 0xf4558206);
        assert_eq!(t[0].cong.as_deref(), Some("cubic"));
        let conns = group(&m, &t);
        assert_eq!(conns.len(), 1);
        let c = &conns[0];
        assert_eq!(c.token.as_deref(), Some("0xf4558206"));
        assert_eq!(c.remote_token.as_deref(), Some("0xc059bd1d"));
        assert_eq!(
            (c.state.as_str(), c.local.as_str(), c.remote.as_str()),
            ("ESTAB", "10.77.1.1:49122", "10.77.1.2:10000")
        );
        assert!(c.remote_key && !c.fallback);
        assert_eq!((c.subflows_used, c.subflows_max, c.id), (Some(1), Some(2), Some(0x1111)));
        assert_eq!(c.subflows.len(), 2);
        let (a, b) = (&c.subflows[0], &c.subflows[1]);
        assert_eq!(
            (a.flags.as_str(), a.token_rem.as_str(), a.token_loc.as_str()),
            ("Mmec", "0x00000000", "0xf4558206")
        );
        assert_eq!((b.flags.as_str(), b.token_rem.as_str(), b.id_loc, b.id_rem), ("Jjec", "0xc059bd1d", 2, 0));
        assert_eq!((a.seq, a.sfseq, a.ssnoff, a.maplen), (0x8a030cc9cb1ce209, 1, 0xf8bae334, 0x4230));
        assert!(!a.seq_withheld);
        assert_eq!((a.cwnd, a.ssthresh, a.recv_q), (Some(10), None, Some(7)));
    }

    #[test]
    fn withheld_sequence_numbers() {
        let (m, t) = client_sockets(false);
        let c = &group(&m, &t)[0];
        assert_eq!(c.subflows.len(), 2, "tokens still group without CAP_NET_ADMIN");
        assert!(c.subflows.iter().all(|s| s.seq_withheld && s.ssnoff == 0));
    }

    #[test]
    fn listeners_orphans_and_v4_mapped() {
        let (af, af6) = (libc::AF_INET as u8, libc::AF_INET6 as u8);
        let lmsk = diag_msg(af6, tcp_state::LISTEN, ("::", 10000), ("::", 0), 1, &msk_attrs(0));
        let mut ulp = Vec::new();
        push_attr(&mut ulp, INET_ULP_INFO_NAME, b"mptcp\0");
        let mut la = Vec::new();
        push_attr(&mut la, INET_DIAG_ULP_INFO | NLA_F_NESTED, &ulp);
        let ltcp = diag_msg(af6, tcp_state::LISTEN, ("::", 10000), ("::", 0), 2, &la);
        // An IPv6 MPTCP socket accepting an IPv4 peer, whose token is 0
        // (e.g. before the handshake finished): matched by addresses.
        let emsk = diag_msg(af6, 1, ("::ffff:10.0.0.1", 80), ("::ffff:10.0.0.2", 4000), 3, &msk_attrs(0));
        let esf = diag_msg(af, 1, ("10.0.0.1", 80), ("10.0.0.2", 4000), 4, &subflow_attrs("Mec", 0, 0, 0, 0, true));
        // A subflow whose connection is gone.
        let osf = diag_msg(af, 8, ("10.0.0.1", 81), ("10.0.0.3", 4001), 5, &subflow_attrs("Mec", 0, 0xabc, 0, 0, true));
        let m: Vec<_> = [lmsk, emsk].iter().map(|b| parse_diag_msg(b, IPPROTO_MPTCP).unwrap()).collect();
        let t: Vec<_> = [ltcp, esf, osf].iter().map(|b| parse_diag_msg(b, IPPROTO_TCP).unwrap()).collect();
        let conns = group(&m, &t);
        assert_eq!(conns.len(), 3);
        assert_eq!(
            (conns[0].state.as_str(), conns[0].local.as_str(), conns[0].token.as_deref()),
            ("LISTEN", "[::]:10000", None)
        );
        assert_eq!(conns[0].subflows.len(), 1);
        assert_eq!(conns[0].subflows[0].state.as_deref(), Some("LISTEN"));
        assert_eq!(conns[1].local, "[::ffff:10.0.0.1]:80");
        assert_eq!(conns[1].subflows.len(), 1);
        assert_eq!(conns[1].subflows[0].local, "10.0.0.1:80");
        assert_eq!((conns[2].state.as_str(), conns[2].token.as_deref()), ("ORPHAN", Some("0x00000abc")));
        assert_eq!(conns[2].subflows[0].state.as_deref(), Some("CLOSE-WAIT"));
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        assert!(parse_diag_msg(&[0u8; 10], IPPROTO_TCP).is_err());
        let mut b = diag_msg(2, 1, ("1.2.3.4", 1), ("5.6.7.8", 2), 1, &[]);
        b.extend_from_slice(&[200, 0, 2, 0, 1, 2]); // attribute claims 200 bytes
        assert!(parse_diag_msg(&b, IPPROTO_TCP).is_err());
        // Truncated nested subflow info: what was read is kept.
        let mut sf = Vec::new();
        push_attr(&mut sf, subflow_attr::TOKEN_LOC, &9u32.to_ne_bytes());
        sf.extend_from_slice(&[40, 0, 8, 0]);
        assert_eq!(parse_subflow_info(&sf).token_loc, 9);
        // Random bytes never panic.
        let mut x = 0x12345678u32;
        for len in 0..300 {
            let v: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = parse_diag_msg(&v, IPPROTO_MPTCP);
            let _ = parse_diag_msg(&v, IPPROTO_TCP);
            let _ = parse_subflow_info(&v);
        }
    }

    #[test]
    fn netstat_mib() {
        let t = "TcpExt: A B\nTcpExt: 1 2\nMPTcpExt: MPCapableSYNRX MPJoinSynRx\nMPTcpExt: 3 4\n";
        let m = parse_netstat_mptcp(t);
        assert_eq!(m.get("MPTcpExtMPCapableSYNRX"), Some(&3));
        assert_eq!(m.get("MPTcpExtMPJoinSynRx"), Some(&4));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn state_names() {
        assert_eq!(state_name(1), "ESTAB");
        assert_eq!(state_name(10), "LISTEN");
        assert_eq!(state_name(7), "UNCONN");
        assert_eq!(state_name(99), "UNKNOWN");
    }
}
