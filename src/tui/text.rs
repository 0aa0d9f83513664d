//! Snapshots as text in `ss -tiM`'s formats (iproute2 misc/ss.c
//! `mptcp_stats_print` and `mptcp_subflow_info`), grouped connection ->
//! subflows: `mptcp-ss --once` and the view's detail pane.
//!
//! The field formats are those of the ss that ships with the system here
//! (iproute2 6.1): the MPTCP-level `token:%x`, `write_seq`, `snd_una`,
//! `rcv_nxt` and the subflow `seq`, `sfseq`, `ssnoff`, `maplen` in hex,
//! subflow tokens as `token:%04x(id:%u)/%04x(id:%u)`, remote first. A field
//! is printed only when non-zero, as ss does.

use std::fmt::Write;

use super::escape::escaped;
use crate::snapshot::{ConnSnapshot, Snapshot, SubflowSnapshot};

/// The hex digits of a "0x%08x" token string, as u32.
pub fn token_value(s: &str) -> u32 {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(0)
}

/// Milliseconds from microseconds, as ss's `%g` prints them ("0.144", "40.086", "1").
pub fn ms(us: u32) -> String {
    format!("{}", f64::from(us) / 1000.0)
}

/// " name:v" for a known, non-zero value (ss prints only those).
fn nz(s: &mut String, name: &str, v: Option<u64>) {
    if let Some(v) = v.filter(|&v| v != 0) {
        let _ = write!(s, " {name}:{v}");
    }
}

/// " name:v" in hex for a known, non-zero value.
fn nz_hex(s: &mut String, name: &str, v: Option<u64>) {
    if let Some(v) = v.filter(|&v| v != 0) {
        let _ = write!(s, " {name}:{v:x}");
    }
}

/// The words after the `mptcp` line, ss order, non-zero fields only;
/// text from the source escaped ([`super::escape`]).
pub fn conn_fields(c: &ConnSnapshot) -> String {
    let mut s = String::new();
    let small = |v: Option<u8>| v.map(u64::from);
    nz(&mut s, "subflows", small(c.subflows_used));
    nz(&mut s, "add_addr_signal", small(c.add_addr_signal));
    nz(&mut s, "add_addr_accepted", small(c.add_addr_accepted));
    nz(&mut s, "subflows_max", small(c.subflows_max));
    nz(&mut s, "add_addr_signal_max", small(c.add_addr_signal_max));
    nz(&mut s, "add_addr_accepted_max", small(c.add_addr_accepted_max));
    if c.fallback {
        s.push_str(" fallback");
    }
    if c.remote_key {
        s.push_str(" remote_key");
    }
    nz_hex(&mut s, "token", c.token.as_deref().map(|t| u64::from(token_value(t))));
    nz_hex(&mut s, "write_seq", c.write_seq);
    nz_hex(&mut s, "snd_una", c.snd_una);
    nz_hex(&mut s, "rcv_nxt", c.rcv_nxt);
    nz(&mut s, "local_addr_used", small(c.local_addr_used));
    nz(&mut s, "local_addr_max", small(c.local_addr_max));
    nz(&mut s, "csum_enabled", c.csum_enabled.map(u64::from));
    nz(&mut s, "retransmits", c.retransmits);
    nz(&mut s, "bytes_retrans", c.bytes_retrans);
    nz(&mut s, "bytes_sent", c.bytes_sent);
    nz(&mut s, "bytes_received", c.bytes_received);
    nz(&mut s, "bytes_acked", c.bytes_acked);
    nz(&mut s, "subflows_total", c.subflows_total.map(u64::from));
    nz(&mut s, "endp_laminar_max", small(c.endp_laminar_max));
    nz(&mut s, "endp_fullmesh_max", small(c.endp_fullmesh_max));
    nz(&mut s, "last_data_sent", c.last_data_sent_ms.map(u64::from));
    nz(&mut s, "last_data_recv", c.last_data_recv_ms.map(u64::from));
    nz(&mut s, "last_ack_recv", c.last_ack_recv_ms.map(u64::from));
    // Facts a source other than the kernel may know.
    nz(&mut s, "bytes_reinjected", c.bytes_reinjected);
    nz_hex(&mut s, "remote_token", c.remote_token.as_deref().map(|t| u64::from(token_value(t))));
    if let Some(r) = &c.fallback_reason {
        let _ = write!(s, " fallback_reason:\"{r}\"");
    }
    escaped(s.trim_start())
}

/// The words after a subflow's `tcp` line: a few tcp_info fields in ss's
/// order, then `tcp-ulp-mptcp` and the MPTCP subflow fields; text from the
/// source escaped ([`super::escape`]).
pub fn subflow_fields(sf: &SubflowSnapshot) -> String {
    let mut s = String::new();
    if let Some(rtt) = sf.rtt_us.filter(|&r| r != 0) {
        let _ = write!(s, " rtt:{}/{}", ms(rtt), ms(sf.rttvar_us.unwrap_or(0)));
    }
    nz(&mut s, "mss", sf.mss.map(u64::from));
    nz(&mut s, "cwnd", sf.cwnd.map(u64::from));
    nz(&mut s, "ssthresh", sf.ssthresh.map(u64::from));
    nz(&mut s, "bytes_sent", sf.bytes_sent);
    nz(&mut s, "bytes_retrans", sf.bytes_retrans);
    nz(&mut s, "bytes_acked", sf.bytes_acked);
    nz(&mut s, "bytes_received", sf.bytes_received);
    nz(&mut s, "bytes_reinjected", sf.bytes_reinjected);
    if let Some(r) = sf.retransmits.filter(|&r| r != 0) {
        let _ = write!(s, " retrans:0/{r}");
    }
    s.push_str(" tcp-ulp-mptcp");
    if !sf.flags.is_empty() {
        let _ = write!(s, " flags:{}", sf.flags);
    }
    if sf.state.as_deref() == Some("LISTEN") {
        return escaped(s.trim_start());
    }
    let _ = write!(
        s,
        " token:{:04x}(id:{})/{:04x}(id:{})",
        token_value(&sf.token_rem),
        sf.id_rem,
        token_value(&sf.token_loc),
        sf.id_loc
    );
    if !sf.seq_withheld {
        let _ = write!(s, " seq:{:x} sfseq:{:x} ssnoff:{:x} maplen:{:x}", sf.seq, sf.sfseq, sf.ssnoff, sf.maplen);
    }
    escaped(s.trim_start())
}

struct Row {
    netid: &'static str,
    state: String,
    recv_q: String,
    send_q: String,
    local: String,
    remote: String,
    source: String,
    info: String,
}

/// The rows of one connection: its `mptcp` row, then a `tcp` row per subflow.
fn rows(c: &ConnSnapshot) -> impl Iterator<Item = Row> + '_ {
    let queue = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let conn = Row {
        netid: "mptcp",
        state: escaped(&c.state),
        recv_q: queue(c.recv_q),
        send_q: queue(c.send_q),
        local: escaped(&c.local),
        remote: escaped(&c.remote),
        source: escaped(&c.source),
        info: conn_fields(c),
    };
    std::iter::once(conn).chain(c.subflows.iter().map(move |sf| Row {
        netid: "`-tcp",
        state: sf.state.as_deref().map_or_else(|| "-".into(), escaped),
        recv_q: queue(sf.recv_q),
        send_q: queue(sf.send_q),
        local: escaped(&sf.local),
        remote: escaped(&sf.remote),
        source: String::new(),
        info: subflow_fields(sf),
    }))
}

/// The widths of the aligned columns, grown by every connection shown
/// ([`Columns::fit`]) before any is written: the table can be written one
/// connection at a time ([`Columns::write_conn`]) from a source that gives
/// its connections twice, without holding them all.
#[derive(Clone, Copy, Debug)]
pub struct Columns {
    state: usize,
    recv_q: usize,
    send_q: usize,
    local: usize,
    remote: usize,
}

impl Default for Columns {
    fn default() -> Columns {
        // The header's own widths.
        Columns { state: 5, recv_q: 6, send_q: 6, local: 18, remote: 17 }
    }
}

impl Columns {
    /// Widen the columns to hold this connection's rows.
    pub fn fit(&mut self, c: &ConnSnapshot) {
        for r in rows(c) {
            self.state = self.state.max(r.state.len());
            self.recv_q = self.recv_q.max(r.recv_q.len());
            self.send_q = self.send_q.max(r.send_q.len());
            self.local = self.local.max(r.local.len());
            self.remote = self.remote.max(r.remote.len());
        }
    }

    pub fn write_header(&self, out: &mut String) {
        let Columns { state: ws, recv_q: wr, send_q: wq, local: wl, remote: wp } = *self;
        let _ = writeln!(
            out,
            "{:<5} {:<ws$} {:<wr$} {:<wq$} {:<wl$} {:<wp$} Source",
            "Netid", "State", "Recv-Q", "Send-Q", "Local Address:Port", "Peer Address:Port"
        );
    }

    /// The connection's lines: each row, followed by a tab-indented line of
    /// its fields.
    pub fn write_conn(&self, c: &ConnSnapshot, out: &mut String) {
        let Columns { state: ws, recv_q: wr, send_q: wq, local: wl, remote: wp } = *self;
        for r in rows(c) {
            let line = format!(
                "{:<5} {:<ws$} {:<wr$} {:<wq$} {:<wl$} {:<wp$} {}",
                r.netid, r.state, r.recv_q, r.send_q, r.local, r.remote, r.source
            );
            let _ = writeln!(out, "{}", line.trim_end());
            if !r.info.is_empty() {
                let _ = writeln!(out, "\t {}", r.info);
            }
        }
    }
}

/// The whole snapshot, ss style: a header, then for each connection its
/// `mptcp` line and the `tcp` lines of its subflows, each followed by a
/// tab-indented line of fields. Text from the sources is escaped
/// ([`super::escape`]), so a line is one line and nothing reaches the terminal raw.
pub fn write_snapshot(snap: &Snapshot, out: &mut String) {
    let mut cols = Columns::default();
    for c in &snap.connections {
        cols.fit(c);
    }
    cols.write_header(out);
    for c in &snap.connections {
        cols.write_conn(c, out);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::snapshot::token_hex;

    /// testdata two-subflows-join.ss-client.txt (mid upload), as a snapshot.
    pub(crate) fn client_snapshot() -> Snapshot {
        Snapshot {
            connections: vec![ConnSnapshot {
                source: "kernel".into(),
                token: Some(token_hex(0xf4558206)),
                local: "10.77.1.1:49122".into(),
                remote: "10.77.1.2:10000".into(),
                state: "ESTAB".into(),
                remote_key: true,
                subflows_used: Some(1),
                subflows_max: Some(2),
                add_addr_signal: Some(0),
                write_seq: Some(0xf1bd89048a0dfeb2),
                snd_una: Some(0xf1bd89048a0a7eb2),
                rcv_nxt: Some(0x8a030cc9cb1ce209),
                recv_q: Some(0),
                send_q: Some(0),
                subflows: vec![
                    SubflowSnapshot {
                        local: "10.77.1.1:49122".into(),
                        remote: "10.77.1.2:10000".into(),
                        state: Some("ESTAB".into()),
                        flags: "Mmec".into(),
                        token_loc: token_hex(0xf4558206),
                        token_rem: token_hex(0),
                        seq: 0x8a030cc9cb1ce209,
                        sfseq: 1,
                        ssnoff: 0xf8bae334,
                        maplen: 0,
                        rtt_us: Some(144),
                        rttvar_us: Some(17),
                        mss: Some(1448),
                        cwnd: Some(34),
                        bytes_sent: Some(49152),
                        bytes_acked: Some(32769),
                        recv_q: Some(0),
                        send_q: Some(16384),
                        ..Default::default()
                    },
                    SubflowSnapshot {
                        local: "10.77.2.1:53087".into(),
                        remote: "10.77.1.2:10000".into(),
                        state: Some("ESTAB".into()),
                        flags: "Jjec".into(),
                        token_loc: token_hex(0xf4558206),
                        token_rem: token_hex(0xc059bd1d),
                        id_loc: 2,
                        seq: 0x8a030cc9cb1ce209,
                        sfseq: 0,
                        ssnoff: 0xd3961704,
                        rtt_us: Some(411),
                        rttvar_us: Some(222),
                        mss: Some(1448),
                        cwnd: Some(34),
                        bytes_sent: Some(49152),
                        bytes_acked: Some(32769),
                        recv_q: Some(0),
                        send_q: Some(16384),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn fields_as_ss_prints_them() {
        let snap = client_snapshot();
        let c = &snap.connections[0];
        // ss: "subflows:1 subflows_max:2 remote_key token:f4558206 write_seq:f1bd89048a0dfeb2 ..."
        assert_eq!(
            conn_fields(c),
            "subflows:1 subflows_max:2 remote_key token:f4558206 write_seq:f1bd89048a0dfeb2 \
             snd_una:f1bd89048a0a7eb2 rcv_nxt:8a030cc9cb1ce209"
        );
        // ss: "... tcp-ulp-mptcp flags:Mmec token:0000(id:0)/f4558206(id:0) seq:8a030cc9cb1ce209 sfseq:1 ssnoff:f8bae334 maplen:0"
        let f = subflow_fields(&c.subflows[0]);
        assert!(
            f.ends_with(
                "tcp-ulp-mptcp flags:Mmec token:0000(id:0)/f4558206(id:0) seq:8a030cc9cb1ce209 sfseq:1 ssnoff:f8bae334 maplen:0"
            ),
            "{f}"
        );
        assert!(f.starts_with("rtt:0.144/0.017 mss:1448 cwnd:34 bytes_sent:49152 bytes_acked:32769"), "{f}");
        let f = subflow_fields(&c.subflows[1]);
        assert!(f.contains("flags:Jjec token:c059bd1d(id:0)/f4558206(id:2) seq:8a030cc9cb1ce209 sfseq:0"), "{f}");
        let mut w = c.subflows[1].clone();
        w.seq_withheld = true;
        assert!(subflow_fields(&w).ends_with("token:c059bd1d(id:0)/f4558206(id:2)"));
    }

    #[test]
    fn whole_snapshot() {
        let mut out = String::new();
        write_snapshot(&client_snapshot(), &mut out);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[0], "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Source");
        assert_eq!(lines[1], "mptcp ESTAB 0      0      10.77.1.1:49122    10.77.1.2:10000   kernel");
        assert!(lines[2].starts_with("\t subflows:1 subflows_max:2 remote_key token:f4558206"));
        assert_eq!(lines[3], "`-tcp ESTAB 0      16384  10.77.1.1:49122    10.77.1.2:10000");
        assert!(lines[4].starts_with("\t rtt:0.144/0.017"));
        assert_eq!(lines[5], "`-tcp ESTAB 0      16384  10.77.2.1:53087    10.77.1.2:10000");
    }

    #[test]
    fn ms_like_percent_g() {
        assert_eq!(ms(144), "0.144");
        assert_eq!(ms(40086), "40.086");
        assert_eq!(ms(1000), "1");
    }
}
