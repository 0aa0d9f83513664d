//! The connections seen so far as [`Snapshot`]s, the shape mptcp-ss shows
//! (kernel sock_diag, embedded stacks and captures alike).
//!
//! A capture has no "local" end: the connection's client (the sender of the
//! MP_CAPABLE SYN) is taken as local, and the fields are the ones `ss -tiM`
//! would print on the client: flag letters as the kernel sets them
//! (`MPTCP_SUBFLOW_FLAG_*`), `token_loc` the client's token and `token_rem`
//! the server's on join subflows (0 on the initial one, as the kernel has no
//! remote token there), `seq`/`sfseq`/`maplen` the last mapping received
//! from the server, `ssnoff` the server's ISN on the subflow (the kernel's
//! `ssn_offset`: the peer's initial sequence number).

use super::{Analyzer, Conn, Flow, Role, Side};
use crate::seq::{DataSeq, SubflowSeq};
use crate::snapshot::{ConnSnapshot, Snapshot, SubflowSnapshot, subflow_flags, token_hex};

impl Analyzer {
    /// The connections seen so far, from the client's point of view.
    /// `source` names where they come from ("capture:FILE", "live:IFACE").
    pub fn snapshot(&self, source: &str) -> Snapshot {
        let mut connections = Vec::new();
        self.each_connection(source, &mut |c| connections.push(c));
        Snapshot { connections, ..Default::default() }
    }

    /// The connections of [`Analyzer::snapshot`], in the same order, one at
    /// a time: a view of a large capture writes each as it comes instead of
    /// holding them all (100,000 connections are hundreds of MB as
    /// snapshots, a few MB as analysis state).
    pub fn each_connection(&self, source: &str, f: &mut dyn FnMut(ConnSnapshot)) {
        for item in self.conns_in_order() {
            f(match item {
                Ok(ci) => {
                    let c = &self.conns[ci as usize];
                    let flows: Vec<&Flow> = c.flows.iter().map(|&fi| &self.flows[fi as usize]).collect();
                    conn_snapshot(c, &flows, source)
                }
                Err(si) => {
                    // A connection that has shown only its SYN.
                    let (flow, c) = self.syns[si as usize].expand();
                    conn_snapshot(&c.expect("only MP_CAPABLE SYNs have a connection"), &[&flow], source)
                }
            });
        }
    }
}

/// One connection, its subflows' flows given.
fn conn_snapshot(c: &Conn, flows: &[&Flow], source: &str) -> ConnSnapshot {
    let cl = Side::Client.index();
    let sv = Side::Server.index();
    let subflows: Vec<SubflowSnapshot> = flows.iter().map(|f| subflow_snapshot(c, f)).collect();
    let state = if c.closed
        || c.verdicts.iter().any(|v| matches!(v.kind, super::VerdictKind::FastClose { .. }))
        || (!subflows.is_empty() && subflows.iter().all(|s| s.state.as_deref() == Some("CLOSED")))
    {
        "CLOSED"
    } else {
        match (c.dirs[cl].data_fin.is_some(), c.dirs[sv].data_fin.is_some()) {
            (true, false) => "FIN-WAIT-1",
            (false, true) => "CLOSE-WAIT",
            (true, true) => "CLOSED",
            (false, false) => {
                if flows.first().is_some_and(|f| f.synack_frame.is_none()) {
                    "SYN-SENT"
                } else {
                    "ESTAB"
                }
            }
        }
    };
    let reinjected: u64 = flows.iter().map(|f| f.dirs.iter().map(|d| d.reinjected).sum::<u64>()).sum();
    ConnSnapshot {
        source: source.to_string(),
        token: c.tokens[cl].map(token_hex),
        remote_token: c.tokens[sv].map(token_hex),
        local: c.client.to_string(),
        remote: c.server.to_string(),
        state: state.to_string(),
        fallback: c.fallback,
        fallback_reason: c.verdicts.iter().find_map(|v| match &v.kind {
            super::VerdictKind::Fallback(r) => Some(format!("{r} (frame {})", v.frame)),
            _ => None,
        }),
        remote_key: c.keys[sv].is_some(),
        csum_enabled: Some(c.checksum),
        subflows_total: Some(flows.len() as u32),
        snd_una: c.dirs[cl].acked,
        rcv_nxt: c.dirs[sv].log_end(),
        write_seq: c.dirs[cl].log_end(),
        bytes_sent: Some(c.dirs[cl].bytes),
        bytes_received: Some(c.dirs[sv].bytes),
        bytes_acked: match (c.dirs[cl].acked, c.dirs[cl].idsn) {
            (Some(a), Some(i)) => Some(DataSeq(a).offset_from(DataSeq(i)).saturating_sub(1)),
            _ => None,
        },
        bytes_reinjected: Some(reinjected),
        id: Some(c.id as u64),
        subflows,
        ..Default::default()
    }
}

fn subflow_snapshot(c: &Conn, f: &Flow) -> SubflowSnapshot {
    use subflow_flags::*;
    // Flow direction the client (local) sends in, and the server's.
    let lo = if f.sides[0] == Side::Client { 0 } else { 1 };
    let re = 1 - lo;
    let (local, remote) = if lo == 0 { (f.client, f.server) } else { (f.server, f.client) };
    let mut flags = 0u32;
    let initiator = lo == 0;
    match f.role {
        Role::Initial => {
            if f.synack_mptcp {
                flags |= MCAP_REM;
            }
            if initiator {
                flags |= MCAP_LOC;
            }
            if c.established {
                flags |= FULLY_ESTABLISHED;
            }
        }
        Role::Join => {
            if f.synack_mptcp || !initiator {
                flags |= JOIN_REM;
            }
            if initiator {
                flags |= JOIN_LOC;
            }
            if f.join.as_ref().is_some_and(|j| j.confirmed) {
                flags |= FULLY_ESTABLISHED;
            }
        }
        _ => {
            if c.established {
                flags |= FULLY_ESTABLISHED;
            }
        }
    }
    if f.backup[re] {
        flags |= BKUP_REM;
    }
    if f.backup[lo] {
        flags |= BKUP_LOC;
    }
    if f.synack_frame.is_some() {
        flags |= CONNECTED;
    }
    let inbound = &f.dirs[re];
    let last = inbound.maps.back();
    if let (Some(m), Some(isn), Some(high)) = (last, inbound.isn, inbound.high) {
        let end = SubflowSeq(isn) + m.ssn + m.len;
        if m.len == u32::MAX || SubflowSeq(high) < end {
            flags |= MAPVALID;
        }
    }
    // The kernel's map_data_len counts payload only (a DATA_FIN's unit
    // is not in it); before any mapping it shows the connection's
    // receive position, subflow sequence 1 on the initial subflow.
    let (seq, sfseq, maplen) = match last {
        Some(m) => (m.dsn.unwrap_or(m.wire), m.ssn, if m.len == u32::MAX { 0 } else { m.len }),
        None => (
            c.dirs[Side::Server.index()].acked.or(c.dirs[Side::Server.index()].reference).unwrap_or(0),
            (f.role == Role::Initial) as u32,
            0,
        ),
    };
    let state = if f.rst.is_some() || (f.fin[lo].is_some() && f.fin[re].is_some()) {
        "CLOSED"
    } else if f.fin[lo].is_some() {
        "FIN-WAIT-1"
    } else if f.fin[re].is_some() {
        "CLOSE-WAIT"
    } else if f.synack_frame.is_none() && f.syn_frame.is_some() {
        if initiator { "SYN-SENT" } else { "SYN-RECV" }
    } else {
        "ESTAB"
    };
    let cl = Side::Client.index();
    let sv = Side::Server.index();
    SubflowSnapshot {
        local: local.to_string(),
        remote: remote.to_string(),
        state: Some(state.to_string()),
        flags: letters(flags),
        token_loc: token_hex(c.tokens[cl].unwrap_or(0)),
        token_rem: token_hex(if f.role == Role::Join { c.tokens[sv].unwrap_or(0) } else { 0 }),
        id_loc: f.ids[lo].unwrap_or(0),
        id_rem: f.ids[re].unwrap_or(0),
        seq,
        sfseq,
        ssnoff: inbound.isn.unwrap_or(0),
        maplen,
        backup: f.backup[lo],
        bytes_sent: Some(f.dirs[lo].bytes),
        bytes_received: Some(f.dirs[re].bytes),
        bytes_retrans: Some(f.dirs[lo].retrans),
        bytes_reinjected: Some(f.dirs[lo].reinjected),
        id: Some(f.key_id()),
        ..Default::default()
    }
}

impl Flow {
    /// A stable identity for the flow: its first frame.
    fn key_id(&self) -> u64 {
        self.first_frame
    }
}

impl super::ConnDir {
    /// One past the highest DSN sent, when known.
    fn log_end(&self) -> Option<u64> {
        self.high_end
    }
}
