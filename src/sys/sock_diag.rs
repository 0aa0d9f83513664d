//! The one sock_diag reader (NETLINK_SOCK_DIAG, include/uapi/linux/
//! inet_diag.h): requests for MPTCP and TCP sockets, the parse of each answer
//! (`struct inet_diag_msg` and its attributes), and the MPTCP subflow ULP
//! info of TCP subflows (MPTCP_SUBFLOW_ATTR_*, net/mptcp/diag.c
//! `subflow_get_info`).
//!
//! - A dump of MPTCP sockets carries the protocol 262 in the
//!   `INET_DIAG_REQ_PROTOCOL` (u32) request attribute, because it does not
//!   fit the u8 `sdiag_protocol`; each answer carries `struct mptcp_info` in
//!   `INET_DIAG_INFO` (net/mptcp/mptcp_diag.c).
//! - A dump (or an exact lookup) of TCP sockets carries `tcp_info` in
//!   `INET_DIAG_INFO` and, for MPTCP subflows, `INET_DIAG_ULP_INFO` ->
//!   `INET_ULP_INFO_MPTCP` -> `MPTCP_SUBFLOW_ATTR_*`.
//!
//! Since Linux 6.15 the sequence attributes (`RELWRITE_SEQ`, `MAP_SEQ`,
//! `MAP_SFSEQ`, `SSN_OFFSET`, `MAP_DATALEN`) go only to a CAP_NET_ADMIN
//! requester; tokens, ids and flags go to everybody.
//!
//! mptcp-ss dumps everything ([`dump`]); mptcp-cat -v looks up the subflow it
//! just saw open ([`lookup`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::mptcp_info::{MptcpInfo, TcpInfo, parse_mptcp_info, parse_tcp_info};
use super::netlink::{NLM_F_REQUEST, NetlinkError, Request, Socket, attrs, push_attr, read};

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
    let mut p = vec![0u8; INET_DIAG_REQ_LEN];
    p[0] = family;
    // The u8 field cannot hold 262; the kernel reads the attribute instead.
    p[1] = protocol as u8;
    p[2] = (1 << (INET_DIAG_INFO - 1)) | (1 << (INET_DIAG_CONG - 1));
    p[4..8].copy_from_slice(&STATES_WANTED.to_ne_bytes());
    push_attr(&mut p, INET_DIAG_REQ_PROTOCOL, &protocol.to_ne_bytes());
    p
}

/// Size of `struct inet_diag_req_v2`.
pub const INET_DIAG_REQ_LEN: usize = 56;

/// The MPTCP subflow ULP info of a TCP socket.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubflowUlp {
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
pub fn parse_subflow_ulp(b: &[u8]) -> SubflowUlp {
    use subflow_attr::*;
    let mut s = SubflowUlp::default();
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
    pub subflow: Option<SubflowUlp>,
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
                        INET_ULP_INFO_MPTCP => s.subflow = Some(parse_subflow_ulp(u.data)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(s)
}

/// The `struct inet_diag_sockid` of the TCP socket `local` -> `remote` in a
/// request for exactly that socket (no cookie: INET_DIAG_NOCOOKIE).
pub fn exact_request_payload(local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    let mut p = vec![0u8; INET_DIAG_REQ_LEN];
    p[0] = if local.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 } as u8;
    p[1] = IPPROTO_TCP as u8;
    p[2] = 1 << (INET_DIAG_INFO - 1);
    p[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
    p[8..10].copy_from_slice(&local.port().to_be_bytes());
    p[10..12].copy_from_slice(&remote.port().to_be_bytes());
    for (at, a) in [(12, local.ip()), (28, remote.ip())] {
        match a {
            IpAddr::V4(v) => p[at..at + 4].copy_from_slice(&v.octets()),
            IpAddr::V6(v) => p[at..at + 16].copy_from_slice(&v.octets()),
        }
    }
    p[48..56].copy_from_slice(&[0xff; 8]);
    p
}

/// Dump every socket of `protocol` (IPPROTO_MPTCP or IPPROTO_TCP) and
/// `family` (AF_INET, AF_INET6) that is not in TIME-WAIT. Each answer is
/// parsed on its own: a malformed one is an `Err` in the list and the others
/// still count.
pub fn dump(
    sock: &mut Socket,
    family: i32,
    protocol: u32,
) -> Result<Vec<Result<DiagSock, NetlinkError>>, NetlinkError> {
    let what =
        if protocol == IPPROTO_MPTCP { "sock_diag dump of MPTCP sockets" } else { "sock_diag dump of TCP sockets" };
    let answers = sock.dump(what, SOCK_DIAG_BY_FAMILY, &dump_request_payload(family as u8, protocol))?;
    Ok(answers.iter().filter(|m| m.ty == SOCK_DIAG_BY_FAMILY).map(|m| parse_diag_msg(&m.payload, protocol)).collect())
}

/// The TCP socket `local` -> `remote`, with its tcp_info and (for an MPTCP
/// subflow) its ULP info. `Ok(None)` when there is no such socket.
pub fn lookup(sock: &mut Socket, local: SocketAddr, remote: SocketAddr) -> Result<Option<DiagSock>, NetlinkError> {
    if local.is_ipv4() != remote.is_ipv4() {
        return Ok(None);
    }
    let mut r = Request::new(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST);
    r.bytes(&exact_request_payload(local, remote));
    let answers = match sock.transact("sock_diag lookup", &mut r) {
        Ok(a) => a,
        Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    answers.iter().find(|m| m.ty == SOCK_DIAG_BY_FAMILY).map(|m| parse_diag_msg(&m.payload, IPPROTO_TCP)).transpose()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::snapshot::subflow_flags;
    use crate::sys::mptcp_info::tests::info_bytes;
    use crate::sys::mptcp_info::{mi, ti};
    use crate::sys::netlink::{NLA_F_NESTED, NLM_F_DUMP, message_bytes, messages};

    /// An inet_diag_msg answer built the way the kernel does.
    pub(crate) fn diag_msg(
        family: u8,
        state: u8,
        local: (&str, u16),
        remote: (&str, u16),
        cookie: u64,
        extra: &[u8],
    ) -> Vec<u8> {
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

    /// The attributes of a TCP subflow answer: tcp_info, congestion
    /// control and the MPTCP ULP info (with or without the sequence numbers).
    pub(crate) fn subflow_attrs(flags: &str, rem: u32, loc: u32, id_rem: u8, id_loc: u8, seqs: bool) -> Vec<u8> {
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

    /// The attributes of an MPTCP socket answer with `token`.
    pub(crate) fn msk_attrs(token: u32) -> Vec<u8> {
        let mut info = info_bytes(96);
        info[mi::TOKEN..mi::TOKEN + 4].copy_from_slice(&token.to_ne_bytes());
        let mut out = Vec::new();
        push_attr(&mut out, INET_DIAG_INFO, &info);
        out
    }

    #[test]
    fn request_layouts() {
        let p = dump_request_payload(libc::AF_INET as u8, IPPROTO_MPTCP);
        assert_eq!(p.len(), INET_DIAG_REQ_LEN + 8);
        assert_eq!(p[0] as i32, libc::AF_INET);
        assert_eq!(p[2], 0b1010, "INET_DIAG_INFO and INET_DIAG_CONG");
        assert_eq!(read::u32(&p, 4), Some(STATES_WANTED));
        let a = attrs(&p[INET_DIAG_REQ_LEN..]).find(INET_DIAG_REQ_PROTOCOL).unwrap();
        assert_eq!(a.u32(), Some(262));
        let m = message_bytes(SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 5, &p);
        let m = messages(&m).next().unwrap().unwrap();
        assert_eq!(m.payload.len(), 64);

        let l: SocketAddr = "[fd00::1]:4000".parse().unwrap();
        let r: SocketAddr = "[fd00::2]:80".parse().unwrap();
        let p = exact_request_payload(l, r);
        assert_eq!(p.len(), INET_DIAG_REQ_LEN);
        assert_eq!((p[0] as i32, p[1]), (libc::AF_INET6, 6));
        assert_eq!((read::be16(&p, 8), read::be16(&p, 10)), (Some(4000), Some(80)));
        assert_eq!(p[12..28], "fd00::1".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(p[28..44], "fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(p[48..56], [0xff; 8], "INET_DIAG_NOCOOKIE");
    }

    #[test]
    fn subflow_answer() {
        let b = diag_msg(
            libc::AF_INET as u8,
            1,
            ("10.77.2.1", 53087),
            ("10.77.1.2", 10000),
            0x3333,
            &subflow_attrs("Jjec", 0xc059bd1d, 0xf4558206, 0, 2, true),
        );
        let s = parse_diag_msg(&b, IPPROTO_TCP).unwrap();
        assert_eq!(s.local, ("10.77.2.1".parse().unwrap(), 53087));
        assert_eq!((s.state, s.cookie, s.rqueue), (1, 0x3333, 7));
        assert!(s.is_mptcp_subflow());
        assert_eq!(s.cong.as_deref(), Some("cubic"));
        assert_eq!(s.tcp.as_ref().and_then(|t| t.snd_cwnd), Some(10));
        let u = s.subflow.unwrap();
        assert_eq!((u.token_rem, u.token_loc, u.id_rem, u.id_loc), (0xc059bd1d, 0xf4558206, 0, 2));
        assert_eq!(subflow_flags::letters(u.flags), "Jjec");
        assert_eq!(
            (u.map_seq, u.ssn_offset, u.map_datalen),
            (Some(0x8a030cc9cb1ce209), Some(0xf8bae334), Some(0x4230))
        );
        let m = parse_diag_msg(&diag_msg(2, 1, ("1.2.3.4", 1), ("5.6.7.8", 2), 9, &msk_attrs(0xabc)), IPPROTO_MPTCP);
        assert_eq!(m.unwrap().mptcp.unwrap().token, 0xabc);
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
        assert_eq!(parse_subflow_ulp(&sf).token_loc, 9);
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
            let _ = parse_subflow_ulp(&v);
        }
    }

    #[test]
    fn state_names() {
        assert_eq!(state_name(1), "ESTAB");
        assert_eq!(state_name(10), "LISTEN");
        assert_eq!(state_name(7), "UNCONN");
        assert_eq!(state_name(99), "UNKNOWN");
    }
}
