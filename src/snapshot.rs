//! Connection snapshots: the one shape in which every source (the kernel over
//! sock_diag, an embedded stack over its control socket, a capture replayed
//! through the analyzer) describes MPTCP connections and their subflows.
//!
//! It is the `mptcp-ss --json` contract (DESIGN.md) and the control-socket
//! line format: `{"connections": [{"source", "token", "local", "remote",
//! "state", "fallback", "subflows": [{"local", "remote", "flags", "token_loc",
//! "token_rem", "id_loc", "id_rem", "seq", "sfseq", "ssnoff", "maplen", ...}]}]}`.
//! Tokens are hex strings with `0x`; numbers are integers; a field a source
//! does not know is omitted.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Subflow flag bits as the kernel reports them in MPTCP_SUBFLOW_ATTR_FLAGS
/// (include/uapi/linux/mptcp.h), in the order `ss` prints their letters.
pub mod subflow_flags {
    pub const MCAP_REM: u32 = 1 << 0;
    pub const MCAP_LOC: u32 = 1 << 1;
    pub const JOIN_REM: u32 = 1 << 2;
    pub const JOIN_LOC: u32 = 1 << 3;
    pub const BKUP_REM: u32 = 1 << 4;
    pub const BKUP_LOC: u32 = 1 << 5;
    pub const FULLY_ESTABLISHED: u32 = 1 << 6;
    pub const CONNECTED: u32 = 1 << 7;
    pub const MAPVALID: u32 = 1 << 8;

    /// (bit, letter, meaning) in ss's order.
    pub const TABLE: [(u32, char, &str); 9] = [
        (MCAP_REM, 'M', "the peer sent MP_CAPABLE"),
        (MCAP_LOC, 'm', "we sent MP_CAPABLE"),
        (JOIN_REM, 'J', "the peer sent MP_JOIN"),
        (JOIN_LOC, 'j', "we sent MP_JOIN"),
        (BKUP_REM, 'B', "the peer marked this subflow backup"),
        (BKUP_LOC, 'b', "we marked this subflow backup"),
        (FULLY_ESTABLISHED, 'e', "fully established (the peer's key or HMAC was confirmed)"),
        (CONNECTED, 'c', "TCP connected"),
        (MAPVALID, 'v', "the current DSS mapping is valid"),
    ];

    /// The letters `ss` prints for these bits, e.g. "Mmec".
    pub fn letters(bits: u32) -> String {
        TABLE.iter().filter(|(b, _, _)| bits & b != 0).map(|(_, c, _)| *c).collect()
    }

    /// The bits for a letter string; unknown letters are ignored.
    pub fn from_letters(s: &str) -> u32 {
        s.chars().filter_map(|c| TABLE.iter().find(|(_, l, _)| *l == c).map(|(b, _, _)| *b)).fold(0, |a, b| a | b)
    }
}

/// Format a token as the contract wants it: `0x` and 8 hex digits.
pub fn token_hex(token: u32) -> String {
    format!("{token:#010x}")
}

/// A set of connections from one or more sources.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub connections: Vec<ConnSnapshot>,
    /// MIB counters by kernel name (e.g. "MPTcpExtMPCapableSYNRX"), for the
    /// sources that have them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mib: BTreeMap<String, u64>,
}

/// One MPTCP connection (or listener, with state "LISTEN").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnSnapshot {
    /// Where this came from: "kernel", "embedded:PID", "capture:FILE", "live:IFACE".
    pub source: String,
    /// The local token (the kernel reports only this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_token: Option<String>,
    /// "ADDR:PORT", IPv6 as "[ADDR]:PORT".
    pub local: String,
    pub remote: String,
    /// ss's state names: "ESTAB", "LISTEN", "SYN-SENT", "FIN-WAIT-1", ...
    pub state: String,
    pub fallback: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// The peer's key is known (mptcp_info flag bit 1; ss prints "remote_key").
    #[serde(default)]
    pub remote_key: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csum_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subflows_max: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_addr_signal: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_addr_accepted: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_addr_signal_max: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_addr_accepted_max: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_addr_used: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_addr_max: Option<u8>,
    /// Extra subflows the path manager counts against `subflows_max`
    /// (kernel mptcpi_subflows: the initial subflow is not counted; ss `subflows:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subflows_used: Option<u8>,
    /// Kernel mptcpi_endp_laminar_max / mptcpi_endp_fullmesh_max (6.18+).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endp_laminar_max: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endp_fullmesh_max: Option<u8>,
    /// Socket queues as ss prints them (Recv-Q, Send-Q; for a listener the
    /// accept backlog and its limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv_q: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_q: Option<u32>,
    /// Subflows ever created (kernel mptcpi_subflows_total).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subflows_total: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snd_una: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcv_nxt: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retransmits: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_retrans: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_acked: Option<u64>,
    /// Data-level bytes sent again on another subflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_reinjected: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_data_sent_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_data_recv_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ack_recv_ms: Option<u32>,
    /// Process-local identity of this connection, stable across snapshots,
    /// for rates and selection (e.g. the kernel inode or the stack's handle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub subflows: Vec<SubflowSnapshot>,
}

/// One TCP subflow of a connection.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubflowSnapshot {
    pub local: String,
    pub remote: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// ss's letters, see [`subflow_flags`].
    pub flags: String,
    pub token_loc: String,
    pub token_rem: String,
    pub id_loc: u8,
    pub id_rem: u8,
    /// Data sequence number of the current mapping (MAP_SEQ; ss `seq:`).
    pub seq: u64,
    /// Subflow sequence number of the current mapping, relative (ss `sfseq:`).
    pub sfseq: u32,
    /// The subflow's initial sequence number offset (ss `ssnoff:`).
    pub ssnoff: u32,
    /// Length of the current mapping (ss `maplen:`).
    pub maplen: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relwrite_seq: Option<u32>,
    /// The source withheld `seq`, `sfseq`, `ssnoff`, `maplen` and
    /// `relwrite_seq` (they read 0 here): Linux exports them over sock_diag
    /// only to a CAP_NET_ADMIN requester.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seq_withheld: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recv_q: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_q: Option<u32>,
    #[serde(default)]
    pub backup: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwnd: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssthresh: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_us: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rttvar_us: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mss: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_acked: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_retrans: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retransmits: Option<u64>,
    /// Bytes this subflow carried that had been sent on another one first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_reinjected: Option<u64>,
    /// Process-local identity, stable across snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
}

/// A [`Snapshot`] written in the bytes `serde_json::to_string_pretty`
/// gives for it, one connection at a time ([`PrettyJson::conn`]): the
/// `mptcp-ss --once --json` output of a large capture without holding every
/// connection.
#[derive(Debug)]
pub struct PrettyJson {
    first: bool,
}

impl PrettyJson {
    /// Start the document.
    pub fn begin(out: &mut String) -> PrettyJson {
        out.push_str("{\n  \"connections\": [");
        PrettyJson { first: true }
    }

    /// One element of `connections`.
    pub fn conn(&mut self, c: &ConnSnapshot, out: &mut String) -> serde_json::Result<()> {
        let text = serde_json::to_string_pretty(c)?;
        out.push_str(if self.first { "\n" } else { ",\n" });
        self.first = false;
        indent(&text, "    ", true, out);
        Ok(())
    }

    /// Close `connections`, add `mib` when there is one, end the document.
    pub fn end(self, mib: &BTreeMap<String, u64>, out: &mut String) -> serde_json::Result<()> {
        out.push_str(if self.first { "]" } else { "\n  ]" });
        if !mib.is_empty() {
            out.push_str(",\n  \"mib\": ");
            indent(&serde_json::to_string_pretty(mib)?, "  ", false, out);
        }
        out.push_str("\n}");
        Ok(())
    }
}

/// `text`'s lines joined by newlines, each after the first (or every one)
/// prefixed: JSON strings hold no raw newline, so lines are JSON's own.
fn indent(text: &str, prefix: &str, first_too: bool, out: &mut String) {
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if i > 0 || first_too {
            out.push_str(prefix);
        }
        out.push_str(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_letters_in_ss_order() {
        use subflow_flags::*;
        let bits = MCAP_REM | MCAP_LOC | FULLY_ESTABLISHED | CONNECTED;
        assert_eq!(letters(bits), "Mmec");
        assert_eq!(from_letters("Mmec"), bits);
        assert_eq!(letters(0), "");
    }

    #[test]
    fn json_contract_names() {
        let s = Snapshot {
            connections: vec![ConnSnapshot {
                source: "kernel".into(),
                token: Some(token_hex(0x768f615c)),
                local: "10.0.0.1:1".into(),
                remote: "10.0.0.2:2".into(),
                state: "ESTAB".into(),
                subflows: vec![SubflowSnapshot {
                    flags: "Mmec".into(),
                    // ss prints `token:REM(id)/LOC(id)`: a client's MP_CAPABLE
                    // subflow shows `0000(id:0)/768f615c(id:0)`.
                    token_rem: token_hex(0),
                    token_loc: token_hex(0x768f615c),
                    seq: 0x127af91ad1b321fb,
                    sfseq: 1,
                    ssnoff: 0xc7304b5f,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        let c = &v["connections"][0];
        assert_eq!(c["token"], "0x768f615c");
        assert_eq!(c["fallback"], false);
        let sf = &c["subflows"][0];
        for k in [
            "local",
            "remote",
            "flags",
            "token_loc",
            "token_rem",
            "id_loc",
            "id_rem",
            "seq",
            "sfseq",
            "ssnoff",
            "maplen",
        ] {
            assert!(sf.get(k).is_some(), "missing {k}");
        }
        assert_eq!(sf["seq"], 0x127af91ad1b321fbu64);
        assert_eq!(sf["token_rem"], "0x00000000");
        let back: Snapshot = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn pretty_json_streamed_is_serde_pretty() {
        let sub = SubflowSnapshot { local: "10.0.0.1:1".into(), flags: "Mmec".into(), ..Default::default() };
        let one = ConnSnapshot { source: "capture:x".into(), subflows: vec![sub.clone(), sub], ..Default::default() };
        let mut mib = BTreeMap::new();
        mib.insert("MPTcpExtMPCapableSYNRX".to_string(), 3);
        mib.insert("MPTcpExtMPJoinSynRx".to_string(), 0);
        for (n, mib) in [(0, BTreeMap::new()), (1, BTreeMap::new()), (3, BTreeMap::new()), (0, mib.clone()), (2, mib)] {
            let snap = Snapshot { connections: vec![one.clone(); n], mib };
            let mut out = String::new();
            let mut w = PrettyJson::begin(&mut out);
            for c in &snap.connections {
                w.conn(c, &mut out).unwrap();
            }
            w.end(&snap.mib, &mut out).unwrap();
            assert_eq!(out, serde_json::to_string_pretty(&snap).unwrap(), "{n} connections");
        }
    }
}
