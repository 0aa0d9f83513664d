//! Conformance with tshark 4.0.17 on every kernel capture in
//! testdata/captures/pcap: each frame's fields in NAME.tshark.tsv (see
//! testdata/captures/README.md for the export) are compared with our
//! decoding and analysis, wherever tshark shows the field.
//!
//! - Frame basics: addresses, ports, raw sequence and ACK numbers, flags,
//!   payload length, the TCP option kinds and lengths, TFO cookie fields.
//! - Every MPTCP option field tshark exports, in option order (tshark joins
//!   the values of several options of one frame with commas).
//! - The analysis: `tcp.stream` and `mptcp.stream` grouping (checked as a
//!   one-to-one correspondence), `mptcp.master`, `mptcp.analysis.subflows`,
//!   the expected token and IDSN of each key, the 64-bit DSN of each data
//!   segment (`mptcp.rawdsn64`), the 64-bit DSN of each mapping
//!   (`mptcp.dss.dsn`), the 64-bit data ACK (`mptcp.ack`), the mapping that
//!   covers a segment (`mptcp.related_mapping`), missing mappings, and the
//!   frames a segment reinjects (`mptcp.reinjection_of`).
//!
//! A disagreement fails the test unless it is one of the tshark quirks
//! listed in [`QUIRKS`], each explained there. The totals (fields compared,
//! agreeing, explained) are printed (`cargo test --test tshark_conformance
//! -- --nocapture`).

mod analysis_util;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use analysis_util::*;
use mptcp_tools::dissect::analysis::{Event, PacketNote, Report, Side};
use mptcp_tools::dissect::options::{MpJoin, MptcpOption, TcpOption, kind};
use mptcp_tools::dissect::packet::{Packet, decode};

/// Known tshark 4.0.17 behaviours that differ from ours on purpose.
const QUIRKS: &[(&str, &str)] = &[
    (
        "zero-length-dsn",
        "tshark gives a zero-length segment a `mptcp.rawdsn64` (the IDSN on a SYN/ACK, IDSN + 1 at relative \
         sequence 1, otherwise the DSN its sequence number falls on in a mapping); a segment without payload \
         carries no data sequence number, so we compare rawdsn64 on data segments only",
    ),
    (
        "mpc-data-repeat",
        "Linux repeats the MP_CAPABLE with data (22/24 bytes) on every segment of the first mapping; RFC 8684 \
         §3.1 maps it at subflow sequence 1 to IDSN + 1, so a segment at relative sequence n carries DSN \
         IDSN + n. tshark 4.0 registers each repetition as a new mapping and from the third segment on \
         places it one or more segments too low (checksum frame 6: both it and frame 5 at IDSN + 1425), \
         and those misplaced mappings also capture the first segments of the next DSS mapping (checksum \
         frames 32-35, whose related_mapping lists frames 5-8); counted here only when the segment is \
         ours under an MP_CAPABLE mapping or tshark names an MP_CAPABLE frame as its mapping",
    ),
    (
        "reinjection-missed",
        "tshark's interval lookup misses some overlapping segments (remove-addr frame 667 lists 357 but not 356, \
         whose DSN range, by tshark's own rawdsn64 and tcp.len, also overlaps); counted here only when \
         tshark's list is a subset of ours and every frame we add overlaps by tshark's own numbers, on \
         another subflow",
    ),
];

/// One frame of the TSV: field name -> value.
type Row = HashMap<String, String>;

fn read_tsv(path: &std::path::Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().expect("header").split('\t').map(str::to_string).collect();
    lines
        .map(|l| {
            header
                .iter()
                .zip(l.split('\t'))
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k.clone(), v.to_string()))
                .collect()
        })
        .collect()
}

#[derive(Default)]
struct Totals {
    compared: u64,
    agree: u64,
    explained: BTreeMap<&'static str, u64>,
    per_field: BTreeMap<String, (u64, u64)>,
    failures: Vec<String>,
}

impl Totals {
    fn cmp(&mut self, cap: &str, frame: u64, field: &str, ours: &str, theirs: &str) {
        self.compared += 1;
        let e = self.per_field.entry(field.to_string()).or_default();
        e.0 += 1;
        if ours == theirs {
            self.agree += 1;
            e.1 += 1;
        } else if self.failures.len() < 40 {
            self.failures.push(format!("{cap} frame {frame} {field}: ours {ours:?}, tshark {theirs:?}"));
        } else {
            self.failures.push(String::new());
        }
    }
    fn quirk(&mut self, name: &'static str) {
        assert!(QUIRKS.iter().any(|(n, _)| *n == name), "unlisted quirk {name}");
        *self.explained.entry(name).or_default() += 1;
    }
}

fn b(v: bool) -> String {
    (v as u8).to_string()
}

/// The values tshark would show for each MPTCP option field, in option order.
fn option_fields(pkt: &Packet<'_>) -> (BTreeMap<&'static str, Vec<String>>, Vec<String>, Vec<String>) {
    let mut f: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut kinds = Vec::new();
    let mut lens = Vec::new();
    let Some(t) = &pkt.tcp else { return (f, kinds, lens) };
    let mut put = |k: &'static str, v: String| f.entry(k).or_default().push(v);
    for o in t.options() {
        let Ok(o) = o else { continue };
        kinds.push(o.kind().to_string());
        if !matches!(o, TcpOption::Nop | TcpOption::Eol) {
            lens.push(o.buffer_len().to_string());
        }
        match o {
            TcpOption::FastOpen { cookie, .. } => {
                if cookie.is_empty() {
                    put("tcp.options.tfo.request", "1".into());
                } else {
                    put("tcp.options.tfo.cookie", cookie.iter().map(|x| format!("{x:02x}")).collect());
                }
            }
            TcpOption::Mptcp(m) => {
                put("tcp.options.mptcp.subtype", m.subtype().to_string());
                match m {
                    MptcpOption::MpCapable(c) => {
                        put("tcp.options.mptcp.version", c.version.to_string());
                        put("tcp.options.mptcp.flags", format!("0x{:02x}", c.flags));
                        put("tcp.options.mptcp.checksumreq.flags", b(c.flags & 0x80 != 0));
                        put("tcp.options.mptcp.extensibility.flag", b(c.flags & 0x40 != 0));
                        put("tcp.options.mptcp.nomoresubflows.flag", b(c.flags & 0x20 != 0));
                        put("tcp.options.mptcp.sha256.flag", b(c.flags & 0x01 != 0));
                        if let Some(k) = c.sender_key {
                            put("tcp.options.mptcp.sendkey", k.to_string());
                        }
                        if let Some(k) = c.receiver_key {
                            put("tcp.options.mptcp.recvkey", k.to_string());
                        }
                        if let Some(l) = c.data_len {
                            put("tcp.options.mptcp.datalvllen", l.to_string());
                        }
                        if let Some(x) = c.checksum {
                            put("tcp.options.mptcp.checksum", format!("0x{x:04x}"));
                        }
                    }
                    MptcpOption::MpJoin(j) => match j {
                        MpJoin::Syn { backup, addr_id, token, nonce } => {
                            put("tcp.options.mptcp.flags", format!("0x{:02x}", 0x10 | backup as u8));
                            put("tcp.options.mptcp.backup.flag", b(backup));
                            put("tcp.options.mptcp.addrid", addr_id.to_string());
                            put("tcp.options.mptcp.recvtok", token.to_string());
                            put("tcp.options.mptcp.sendrand", nonce.to_string());
                        }
                        MpJoin::SynAck { backup, addr_id, hmac, nonce } => {
                            put("tcp.options.mptcp.flags", format!("0x{:02x}", 0x10 | backup as u8));
                            put("tcp.options.mptcp.backup.flag", b(backup));
                            put("tcp.options.mptcp.addrid", addr_id.to_string());
                            put("tcp.options.mptcp.sendtrunchmac", hmac.to_string());
                            put("tcp.options.mptcp.sendrand", nonce.to_string());
                        }
                        MpJoin::Ack { hmac } => {
                            put("tcp.options.mptcp.sendhmac", hmac.iter().map(|x| format!("{x:02x}")).collect());
                        }
                    },
                    MptcpOption::Dss(d) => {
                        put("tcp.options.mptcp.flags", format!("0x{:02x}", d.flags()));
                        put("tcp.options.mptcp.datafin.flag", b(d.data_fin));
                        put("tcp.options.mptcp.dseqn8.flag", b(d.mapping.is_some_and(|m| m.dsn.is_64())));
                        put("tcp.options.mptcp.dseqnpresent.flag", b(d.mapping.is_some()));
                        put("tcp.options.mptcp.dataack8.flag", b(d.data_ack.is_some_and(|a| a.is_64())));
                        put("tcp.options.mptcp.dataackpresent.flag", b(d.data_ack.is_some()));
                        if let Some(a) = d.data_ack {
                            put("tcp.options.mptcp.rawdataack", a.value().to_string());
                        }
                        if let Some(m) = d.mapping {
                            put("tcp.options.mptcp.rawdataseqno", m.dsn.value().to_string());
                            put("tcp.options.mptcp.subflowseqno", m.ssn.to_string());
                            put("tcp.options.mptcp.datalvllen", m.data_len.to_string());
                            if let Some(x) = m.checksum {
                                put("tcp.options.mptcp.checksum", format!("0x{x:04x}"));
                            }
                        }
                    }
                    MptcpOption::AddAddr(a) => {
                        if a.v0 {
                            put("tcp.options.mptcp.ipver", if a.addr.is_ipv4() { "4" } else { "6" }.into());
                        } else {
                            put("tcp.options.mptcp.echo", b(a.echo));
                        }
                        put("tcp.options.mptcp.addrid", a.addr_id.to_string());
                        match a.addr {
                            std::net::IpAddr::V4(v) => put("tcp.options.mptcp.ipv4", v.to_string()),
                            std::net::IpAddr::V6(v) => put("tcp.options.mptcp.ipv6", v.to_string()),
                        }
                        if let Some(p) = a.port {
                            put("tcp.options.mptcp.port", p.to_string());
                        }
                        if let Some(h) = a.hmac {
                            put("tcp.options.mptcp.addaddrtrunchmac", h.to_string());
                        }
                    }
                    MptcpOption::RemoveAddr(r) => {
                        put("mptcp.rm_addr.count", r.addr_ids.len().to_string());
                        for id in r.addr_ids.iter() {
                            put("tcp.options.mptcp.addrid", id.to_string());
                        }
                    }
                    MptcpOption::MpPrio(p) => {
                        put("tcp.options.mptcp.flags", format!("0x{:02x}", 0x50 | p.backup as u8));
                        put("tcp.options.mptcp.backup.flag", b(p.backup));
                        if let Some(id) = p.addr_id {
                            put("tcp.options.mptcp.addrid", id.to_string());
                        }
                    }
                    MptcpOption::MpFail(x) => put("tcp.options.mptcp.rawdataseqno", x.dsn.to_string()),
                    MptcpOption::MpFastclose(x) => put("tcp.options.mptcp.recvkey", x.receiver_key.to_string()),
                    MptcpOption::MpTcpRst(r) => {
                        put("tcp.options.mptcp.flags", format!("0x{:02x}", 0x80 | r.flags));
                        put("tcp.options.mptcp.flag_U.flag", b(r.flags & 0x8 != 0));
                        put("tcp.options.mptcp.flag_V.flag", b(r.flags & 0x4 != 0));
                        put("tcp.options.mptcp.flag_W.flag", b(r.flags & 0x2 != 0));
                        put("tcp.options.mptcp.flag_T.flag", b(r.flags & 0x1 != 0));
                        put("tcp.options.mptcp.rst_reason", format!("0x{:02x}", r.reason));
                    }
                    MptcpOption::Experimental { .. } | MptcpOption::Unknown { .. } => {}
                }
            }
            _ => {}
        }
    }
    (f, kinds, lens)
}

/// A one-to-one correspondence between our numbering and tshark's.
#[derive(Default)]
struct Bijection {
    fwd: HashMap<u64, u64>,
    back: HashMap<u64, u64>,
}

impl Bijection {
    /// Whether `ours` and `theirs` are consistent with what was seen.
    fn check(&mut self, ours: u64, theirs: u64) -> bool {
        match (self.fwd.get(&ours), self.back.get(&theirs)) {
            (None, None) => {
                self.fwd.insert(ours, theirs);
                self.back.insert(theirs, ours);
                true
            }
            (Some(t), Some(o)) => *t == theirs && *o == ours,
            _ => false,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn analysis_fields(
    t: &mut Totals,
    cap: &str,
    frame: u64,
    row: &Row,
    pkt: &Packet<'_>,
    note: &PacketNote,
    report: &Report,
    streams: &mut Bijection,
    conns: &mut Bijection,
    flow_members: &mut HashMap<u32, BTreeSet<u32>>,
    mappings: &HashMap<u64, (Option<u64>, u32, u16, bool)>,
    tsv: &[Row],
) {
    let len = pkt.tcp.as_ref().map_or(0, |t| t.payload_len);
    // TCP flow grouping.
    if let (Some(f), Some(s)) = (note.flow, row.get("tcp.stream")) {
        let ok = streams.check(f as u64, s.parse().unwrap());
        t.cmp(cap, frame, "tcp.stream", if ok { "consistent" } else { "inconsistent" }, "consistent");
    }
    if let Some(c) = note.conn {
        flow_members.entry(c).or_default().insert(note.flow.unwrap());
    }
    let Some(s) = row.get("mptcp.stream") else { return };
    let Some(c) = note.conn else {
        t.cmp(cap, frame, "mptcp.stream", "none", s);
        return;
    };
    let ok = conns.check(c as u64, s.parse().unwrap());
    t.cmp(cap, frame, "mptcp.stream", if ok { "consistent" } else { "inconsistent" }, "consistent");
    if let Some(m) = row.get("mptcp.master") {
        t.cmp(cap, frame, "mptcp.master", &b(note.subflow == Some(1)), m);
    }
    if let Some(list) = row.get("mptcp.analysis.subflows") {
        let theirs: BTreeSet<u64> = list.split_whitespace().map(|x| x.parse().unwrap()).collect();
        let ours: BTreeSet<u64> =
            flow_members[&c].iter().filter_map(|f| streams.fwd.get(&(*f as u64)).copied()).collect();
        t.cmp(cap, frame, "mptcp.analysis.subflows", &format!("{ours:?}"), &format!("{theirs:?}"));
    }
    let conn = &report.connections[c as usize - 1];
    let from = note.from.unwrap_or(Side::Client);
    if let Some(tok) = row.get("mptcp.expected_token") {
        // tshark computes it from the option's sender key.
        let ours = conn.tokens[from.index()].map_or("none".into(), |v| v.to_string());
        t.cmp(cap, frame, "mptcp.expected_token", &ours, tok);
    }
    if let Some(i) = row.get("mptcp.expected_idsn") {
        let ours = conn.idsns[from.index()].map_or("none".into(), |v| v.to_string());
        t.cmp(cap, frame, "mptcp.expected_idsn", &ours, i);
    }
    if let Some(d) = row.get("mptcp.rawdsn64") {
        if len == 0 {
            t.quirk("zero-length-dsn");
        } else {
            let ours = note.dsn.map_or("none".into(), |v| v.to_string());
            let implicit = note.map_frame.is_some_and(|f| mappings.get(&f).is_some_and(|m| m.3))
                || row.get("mptcp.related_mapping").is_some_and(|rm| {
                    rm.split(',').any(|f| mappings.get(&f.parse::<u64>().unwrap()).is_some_and(|m| m.3))
                });
            if implicit && ours != *d {
                t.quirk("mpc-data-repeat");
            } else {
                t.cmp(cap, frame, "mptcp.rawdsn64", &ours, d);
            }
        }
    } else if let Some(ours) = note.dsn.filter(|_| len > 0 && row.get("mptcp.dss.missing_mapping").is_none()) {
        t.cmp(cap, frame, "mptcp.rawdsn64", &ours.to_string(), "none");
    }
    if let Some(d) = row.get("mptcp.dss.dsn") {
        let ours = note.mapping.filter(|m| !m.implicit).and_then(|m| m.dsn).map_or("none".into(), |v| v.to_string());
        t.cmp(cap, frame, "mptcp.dss.dsn", &ours, d);
    }
    if let Some(a) = row.get("mptcp.ack") {
        let ours = note.data_ack.map_or("none".into(), |v| v.to_string());
        t.cmp(cap, frame, "mptcp.ack", &ours, a);
    }
    if len > 0 {
        let missing = row.get("mptcp.dss.missing_mapping").is_some();
        let ours_missing = note.dsn.is_none();
        t.cmp(cap, frame, "mptcp.dss.missing_mapping", &b(ours_missing), &b(missing));
        if let Some(rm) = row.get("mptcp.related_mapping") {
            // Linux repeats a mapping on every segment it covers; tshark
            // names the latest frame that carried it, we the first. Agree
            // when the frames carry the same mapping.
            let same = |a: u64, b: u64| mappings.get(&a).is_some_and(|m| Some(m) == mappings.get(&b));
            let ours = note.map_frame;
            let ok = rm.split(',').any(|f| ours.is_some_and(|o| same(o, f.parse().unwrap())));
            let ours = ours.map_or("none".into(), |f| f.to_string());
            t.cmp(
                cap,
                frame,
                "mptcp.related_mapping",
                if ok { "same mapping" } else { &ours },
                if ok { "same mapping" } else { rm },
            );
        }
    }
    let ours_reinj: BTreeSet<u64> = note
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Reinjection { of, .. } => Some(of.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    let theirs_reinj: BTreeSet<u64> =
        row.get("mptcp.reinjection_of").map(|s| s.split(',').map(|x| x.parse().unwrap()).collect()).unwrap_or_default();
    if len > 0 && (!ours_reinj.is_empty() || !theirs_reinj.is_empty() || row.contains_key("mptcp.rawdsn64")) {
        // tshark's own DSN range of a frame, and its TCP stream.
        let range = |r: &Row| -> Option<(u64, u64, String)> {
            let d: u64 = r.get("mptcp.rawdsn64")?.parse().ok()?;
            let l: u64 = r.get("tcp.len")?.parse().ok()?;
            Some((d, d + l, r.get("tcp.stream")?.clone()))
        };
        let missed_by_tshark = theirs_reinj.is_subset(&ours_reinj)
            && theirs_reinj != ours_reinj
            && range(row).is_some_and(|(a, b, st)| {
                ours_reinj
                    .difference(&theirs_reinj)
                    .all(|f| range(&tsv[*f as usize - 1]).is_some_and(|(c, d, st2)| st2 != st && c < b && a < d))
            });
        if missed_by_tshark {
            t.quirk("reinjection-missed");
        } else {
            t.cmp(cap, frame, "mptcp.reinjection_of", &format!("{ours_reinj:?}"), &format!("{theirs_reinj:?}"));
        }
    }
}

#[test]
fn fields_agree_with_tshark() {
    let mut t = Totals::default();
    let mut per_capture = String::new();
    let dir = testdata().join("captures/pcap");
    let mut caps: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    caps.sort();
    assert!(!caps.is_empty());
    for cap in caps {
        let name = stem(&cap);
        let tsv = read_tsv(&dir.join(format!("{name}.tshark.tsv")));
        let frames = frames(&cap);
        assert_eq!(frames.len(), tsv.len(), "{name}: frame count");
        let (notes, report) = analyse(&frames);
        let before = (t.compared, t.agree);
        let mut streams = Bijection::default();
        let mut conns = Bijection::default();
        let mut members = HashMap::new();
        // The mapping each frame carries: 64-bit DSN, subflow seq, length.
        let mappings: HashMap<u64, (Option<u64>, u32, u16, bool)> = notes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.mapping.map(|m| (i as u64 + 1, (m.dsn, m.ssn, m.len, m.implicit))))
            .collect();
        for (((meta, data), note), row) in frames.iter().zip(&notes).zip(&tsv) {
            let frame = meta.number;
            assert_eq!(row["frame.number"], frame.to_string());
            let pkt = decode(meta.linktype, data);
            let ip = pkt.ip.expect("every frame is IP");
            let tcp = pkt.tcp.expect("every frame is TCP");
            let (src, dst) = if ip.is_v6() { ("ipv6.src", "ipv6.dst") } else { ("ip.src", "ip.dst") };
            t.cmp(&name, frame, src, &ip.src.to_string(), &row[src]);
            t.cmp(&name, frame, dst, &ip.dst.to_string(), &row[dst]);
            t.cmp(&name, frame, "tcp.srcport", &tcp.sport.to_string(), &row["tcp.srcport"]);
            t.cmp(&name, frame, "tcp.dstport", &tcp.dport.to_string(), &row["tcp.dstport"]);
            t.cmp(&name, frame, "tcp.seq_raw", &tcp.seq.to_string(), &row["tcp.seq_raw"]);
            t.cmp(&name, frame, "tcp.ack_raw", &tcp.ack.to_string(), &row["tcp.ack_raw"]);
            let flags = tcp.flags as u16 | (tcp.ns as u16) << 8;
            t.cmp(&name, frame, "tcp.flags", &format!("0x{flags:04x}"), &row["tcp.flags"]);
            t.cmp(&name, frame, "tcp.len", &tcp.payload_len.to_string(), &row["tcp.len"]);
            let (fields, kinds, lens) = option_fields(&pkt);
            if let Some(k) = row.get("tcp.option_kind") {
                t.cmp(&name, frame, "tcp.option_kind", &kinds.join(","), k);
            }
            if let Some(l) = row.get("tcp.option_len") {
                t.cmp(&name, frame, "tcp.option_len", &lens.join(","), l);
            }
            // Every MPTCP option field tshark shows.
            for (k, v) in row.iter() {
                if !(k.starts_with("tcp.options.") || k == "mptcp.rm_addr.count") {
                    continue;
                }
                let ours = fields.get(k.as_str()).map(|v| v.join(",")).unwrap_or_else(|| "<absent>".into());
                t.cmp(&name, frame, k, &ours, v);
            }
            // And no MPTCP option field of ours is missing from tshark's row,
            // except the DSS checksum, which tshark 4.0 does not export.
            for (k, v) in &fields {
                if !row.contains_key(*k) && *k != "tcp.options.mptcp.checksum" {
                    t.cmp(&name, frame, k, &v.join(","), "<absent>");
                }
            }
            if tcp.options_raw.contains(&kind::MPTCP) || note.conn.is_some() || note.flow.is_some() {
                analysis_fields(
                    &mut t,
                    &name,
                    frame,
                    row,
                    &pkt,
                    note,
                    &report,
                    &mut streams,
                    &mut conns,
                    &mut members,
                    &mappings,
                    &tsv,
                );
            }
        }
        let _ =
            writeln!(per_capture, "  {name}: {} fields compared, {} agree", t.compared - before.0, t.agree - before.1);
    }
    println!("tshark conformance: {} fields compared, {} agree", t.compared, t.agree);
    print!("{per_capture}");
    println!("by field (compared, agree):");
    for (k, (c, a)) in &t.per_field {
        println!("  {k}: {c} {a}");
    }
    for (q, n) in &t.explained {
        let why = QUIRKS.iter().find(|(x, _)| x == q).unwrap().1;
        println!("not compared, {n} times: {q}: {why}");
    }
    let failures: Vec<&String> = t.failures.iter().filter(|s| !s.is_empty()).collect();
    assert!(
        t.failures.is_empty(),
        "{} disagreements with tshark, first ones:\n{}",
        t.failures.len(),
        failures.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
}
