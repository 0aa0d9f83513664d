//! The kernel as a source: sock_diag over NETLINK_SOCK_DIAG, through the
//! crate's one sock_diag reader ([`crate::sys::sock_diag`]).
//!
//! Two dumps per address family (what iproute2's `ss -tiM` asks for): MPTCP
//! sockets with their `struct mptcp_info`, and TCP sockets with `tcp_info`
//! and, for MPTCP subflows, their ULP info.
//!
//! Subflows are tied to their connection by token: the kernel fills
//! `MPTCP_SUBFLOW_ATTR_TOKEN_LOC` with the connection's own token (the one
//! `mptcp_info` reports) on every subflow, and `TOKEN_REM` with the peer's
//! token only on subflows it opened with MP_JOIN (the token sent in the
//! SYN), 0 otherwise. ss prints them remote first: `token:REM(id:R)/LOC(id:L)`,
//! which is why a client's MP_CAPABLE subflow reads `token:0000(id:0)/768f615c(id:0)`.
//!
//! Since Linux 6.15 the sequence attributes go only to a CAP_NET_ADMIN
//! requester; tokens, ids and flags go to everybody.
//!
//! The grouping is pure; [`KernelSource`] is the only part that does I/O.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use super::{Note, Source, SourceUpdate, fmt_sockaddr, normalize_ip};
use crate::snapshot::{ConnSnapshot, Snapshot, SubflowSnapshot, subflow_flags, token_hex};
use crate::sys::netlink::{self, NetlinkError, Socket};
use crate::sys::sock_diag::{self, DiagSock, IPPROTO_MPTCP, IPPROTO_TCP, state_name, tcp_state};

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
        c.fallback = i.fallback();
        c.remote_key = i.remote_key_received();
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

    /// Dump MPTCP and TCP sockets of both families and group them.
    pub fn scan(&mut self) -> Result<KernelScan, KernelError> {
        let mut scan = KernelScan::default();
        let mut msks = Vec::new();
        let mut tcps = Vec::new();
        for (family, fname) in [(libc::AF_INET, "IPv4"), (libc::AF_INET6, "IPv6")] {
            for (proto, list, what) in [(IPPROTO_MPTCP, &mut msks, "MPTCP"), (IPPROTO_TCP, &mut tcps, "TCP")] {
                let answers = match sock_diag::dump(&mut self.sock, family, proto)
                    .map_err(|source| KernelError::Dump { what, source })
                {
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
                for a in answers {
                    match a {
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
    use crate::sys::netlink::{NLA_F_NESTED, push_attr};
    use crate::sys::sock_diag::parse_diag_msg;
    use crate::sys::sock_diag::tests::{diag_msg, msk_attrs, subflow_attrs};
    use crate::sys::sock_diag::{INET_DIAG_ULP_INFO, INET_ULP_INFO_NAME};

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
    fn netstat_mib() {
        let t = "TcpExt: A B\nTcpExt: 1 2\nMPTcpExt: MPCapableSYNRX MPJoinSynRx\nMPTcpExt: 3 4\n";
        let m = parse_netstat_mptcp(t);
        assert_eq!(m.get("MPTcpExtMPCapableSYNRX"), Some(&3));
        assert_eq!(m.get("MPTcpExtMPJoinSynRx"), Some(&4));
        assert_eq!(m.len(), 2);
    }
}
