//! `mptcp-dump --summary`: one block per MPTCP connection (keys, tokens,
//! IDSNs, version, checksums, subflows with their bytes and how they ended,
//! HMAC and checksum results, verdicts with frames), then one line per TCP
//! flow that never tried MPTCP.

use std::io::Write;

use super::options::MpTcpRst;

use super::analysis::{
    Analyzer, Check, CloseCause, ConnReport, FallbackReason, Report, ReportCounts, ReportPart, Side, SubflowKind,
    SubflowReport, Tally, TcpFlowKind, TcpFlowReport, VerdictKind,
};

/// Append the summary text of a finished analysis.
pub fn write_summary(out: &mut Vec<u8>, report: &Report) {
    let counts = ReportCounts {
        frames: report.frames,
        tcp_segments: report.tcp_segments,
        connections: report.connections.len(),
        tcp_flows: report.tcp_flows.len(),
    };
    let _ = header(out, &counts);
    for c in &report.connections {
        let _ = writeln!(out).and_then(|_| conn(out, c));
    }
    for (i, f) in report.tcp_flows.iter().enumerate() {
        let _ = flow(out, f, i == 0);
    }
}

/// Writes the summary of an analysis to `out` as [`write_summary`] of its
/// [`Analyzer::finish`] would, one connection at a time: the report is
/// never held whole, nor the text (it goes out in pieces of about 64 KiB),
/// so the memory stays the analyzer's.
pub fn write_analysis(out: &mut dyn Write, a: &Analyzer) -> std::io::Result<()> {
    const PIECE: usize = 1 << 16;
    let mut buf: Vec<u8> = Vec::with_capacity(2 * PIECE);
    let mut result = header(&mut buf, &a.report_counts());
    let mut first_flow = true;
    a.for_each_report(|part| {
        if result.is_err() {
            return;
        }
        result = match part {
            ReportPart::Conn(c) => writeln!(buf).and_then(|_| conn(&mut buf, c)),
            ReportPart::Flow(f) => flow(&mut buf, f, std::mem::take(&mut first_flow)),
        };
        if result.is_ok() && buf.len() >= PIECE {
            result = out.write_all(&buf);
            buf.clear();
        }
    });
    result?;
    out.write_all(&buf)
}

fn header(out: &mut Vec<u8>, r: &ReportCounts) -> std::io::Result<()> {
    writeln!(
        out,
        "{} frames, {} TCP segments, {} MPTCP connection{}, {} other TCP flow{}",
        r.frames,
        r.tcp_segments,
        r.connections,
        plural(r.connections),
        r.tcp_flows,
        plural(r.tcp_flows),
    )
}

/// The line of a TCP flow that never tried MPTCP (after the list's heading
/// when it is the first).
fn flow(out: &mut Vec<u8>, f: &TcpFlowReport, first: bool) -> std::io::Result<()> {
    {
        if first {
            writeln!(out)?;
            writeln!(out, "TCP flows without MPTCP:")?;
        }
        {
            write!(out, "  flow {}: {} -> {}: ", f.flow, f.client, f.server)?;
            match (f.kind, f.syn_frame) {
                (TcpFlowKind::Plain, Some(s)) => {
                    write!(out, "plain TCP, {} (frame {s})", FallbackReason::NoMpCapableInSyn)?
                }
                (TcpFlowKind::Plain, None) | (TcpFlowKind::NoHandshake, _) => {
                    write!(out, "handshake not in the capture, no MPTCP option")?
                }
                (TcpFlowKind::JoinUnknownToken { token }, s) => {
                    write!(out, "MP_JOIN to unknown token {token:#010x}")?;
                    if let Some(s) = s {
                        write!(out, " (frame {s})")?;
                    }
                }
            }
            writeln!(
                out,
                "; {} packets, {} bytes client->server, {} bytes server->client",
                f.packets, f.bytes[0], f.bytes[1]
            )?;
        }
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn dir_name(s: Side) -> &'static str {
    match s {
        Side::Client => "client->server",
        Side::Server => "server->client",
    }
}

fn conn(out: &mut Vec<u8>, c: &ConnReport) -> std::io::Result<()> {
    write!(out, "MPTCP connection {}: {} -> {}", c.id, c.client, c.server)?;
    match c.version {
        Some(v) => write!(out, ", version {v}")?,
        None => write!(out, ", version unknown")?,
    }
    writeln!(out, ", frames {}-{}", c.first_frame, c.last_frame)?;
    // The headline: fallback first, then established, else what is missing.
    if let Some(v) = c.fallback() {
        writeln!(out, "  verdict: {} (frame {})", v.kind, v.frame)?;
        if let VerdictKind::Fallback(r) = &v.kind {
            writeln!(out, "  likely cause: {}", r.likely_cause())?;
        }
    } else if let Some(v) = c.established() {
        writeln!(out, "  verdict: {} (frame {})", v.kind, v.frame)?;
    } else if c.keys[1].is_some() {
        writeln!(out, "  verdict: MP_CAPABLE handshake seen, no DSS from the server yet")?;
    } else {
        writeln!(out, "  verdict: MPTCP not established (no SYN/ACK with MP_CAPABLE in the capture)")?;
    }
    for (side, name) in [(Side::Client, "client"), (Side::Server, "server")] {
        let i = side.index();
        write!(out, "  {name}:")?;
        match c.keys[i] {
            Some(k) => write!(out, " key {k:#018x}")?,
            None => write!(out, " key not seen")?,
        }
        if let Some(t) = c.tokens[i] {
            write!(out, ", token {t:#010x}")?;
        }
        if let Some(d) = c.idsns[i] {
            write!(out, ", idsn {d}")?;
        }
        writeln!(out)?;
    }
    if c.checksum {
        write!(out, "  dss checksums: negotiated, ")?;
        tally(out, &c.csum, "not verifiable")?;
    } else {
        write!(out, "  dss checksums: not negotiated")?;
        if c.csum.total() > 0 {
            write!(out, ", but present: ")?;
            tally(out, &c.csum, "not verifiable")?;
        }
    }
    writeln!(out)?;
    write!(out, "  hmacs: ")?;
    if c.hmac.total() == 0 {
        write!(out, "none in the capture")?;
    } else {
        tally(out, &c.hmac, "keys not seen")?;
    }
    writeln!(out)?;
    writeln!(out, "  data: {} bytes client->server, {} bytes server->client", c.data_bytes[0], c.data_bytes[1])?;
    if c.unmapped_segments > 0 {
        writeln!(out, "  segments with no mapping seen: {}", c.unmapped_segments)?;
    }
    let totals = [0, 1].map(|i| c.subflows.iter().map(|s| s.bytes[i]).sum::<u64>());
    for s in &c.subflows {
        subflow(out, c, s, totals)?;
    }
    for a in &c.announced {
        write!(out, "  add_addr: id {} {}", a.id, a.addr)?;
        if let Some(p) = a.port {
            write!(out, " port {p}")?;
        }
        write!(out, " from the {} (frame {})", a.by, a.frame)?;
        match a.hmac {
            Some(Check::NoKeys) => write!(out, ", hmac not verifiable (keys not seen)")?,
            Some(c) => write!(out, ", hmac {}", c.name())?,
            None => write!(out, ", no hmac (v0)")?,
        }
        match a.echo_frame {
            Some(e) => write!(out, ", echoed (frame {e})")?,
            None => write!(out, ", no echo seen")?,
        }
        writeln!(out)?;
    }
    for rm in &c.removed {
        write!(out, "  rm_addr: id")?;
        for (i, id) in rm.ids.iter().enumerate() {
            write!(out, "{}{id}", if i == 0 { " " } else { "," })?;
        }
        writeln!(out, " from the {} (frame {})", rm.by, rm.frame)?;
    }
    if !c.verdicts.is_empty() {
        writeln!(out, "  events:")?;
        for v in &c.verdicts {
            writeln!(out, "    frame {}: {}", v.frame, v.kind)?;
        }
    }
    Ok(())
}

/// What an RST carried, in a few words.
fn signal(c: CloseCause) -> String {
    match c {
        CloseCause::TcpRst { reason, flags, .. } => {
            let mut s = format!("MP_TCPRST reason {reason} ({})", MpTcpRst::reason_name(reason));
            if flags & MpTcpRst::FLAG_TRANSIENT != 0 {
                s.push_str(", transient");
            }
            s
        }
        CloseCause::FastClose { .. } => "MP_FASTCLOSE".into(),
        CloseCause::MpFail { .. } => "MP_FAIL".into(),
        CloseCause::RemoveAddr { id, .. } => format!("RM_ADDR id {id}"),
    }
}

fn tally(out: &mut Vec<u8>, t: &Tally, unverified: &str) -> std::io::Result<()> {
    write!(out, "verified {} of {}", t.ok, t.total())?;
    if t.bad > 0 {
        write!(out, ", {} BAD", t.bad)?;
    }
    if t.unverified > 0 {
        write!(out, ", {} {unverified}", t.unverified)?;
    }
    Ok(())
}

fn subflow(out: &mut Vec<u8>, c: &ConnReport, s: &SubflowReport, totals: [u64; 2]) -> std::io::Result<()> {
    write!(out, "  subflow {}: {} -> {}, ", s.id, s.client, s.server)?;
    match s.kind {
        SubflowKind::Initial => write!(out, "initial")?,
        SubflowKind::Join { by } => write!(out, "joined by the {by}")?,
        SubflowKind::Unknown => write!(out, "handshake not captured")?,
    }
    let id = |o: Option<u8>| o.map_or("?".to_string(), |v| v.to_string());
    write!(out, ", address ids client {} server {}", id(s.addr_ids[0]), id(s.addr_ids[1]))?;
    match s.backup {
        [false, false] => {}
        [true, false] => write!(out, ", backup (client)")?,
        [false, true] => write!(out, ", backup (server)")?,
        [true, true] => write!(out, ", backup (both)")?,
    }
    writeln!(out, ", flow {}", s.flow)?;
    write!(out, "   ")?;
    for side in [Side::Client, Side::Server] {
        let i = side.index();
        let share =
            if totals[i] > 0 { format!("{:.1}%", s.bytes[i] as f64 * 100.0 / totals[i] as f64) } else { "-".into() };
        write!(out, " {} {} bytes ({share})", dir_name(side), s.bytes[i])?;
        if s.reinjected[i] > 0 {
            write!(out, ", {} reinjected", s.reinjected[i])?;
        }
        if s.retransmitted[i] > 0 {
            write!(out, ", {} retransmitted", s.retransmitted[i])?;
        }
        write!(out, "{}", if side == Side::Client { ";" } else { "" })?;
    }
    writeln!(out)?;
    if let Some((fr, r)) = s.fallback
        && c.fallback().is_none_or(|v| v.frame != fr)
    {
        writeln!(out, "    fallback: {r} (frame {fr})")?;
    }
    if s.truncated {
        writeln!(out, "    payload cut by the snaplen: DSS checksums not verifiable")?;
    }
    if s.syn_data > 0 {
        writeln!(out, "    {} bytes of data in the SYN (TCP Fast Open), outside the data sequence space", s.syn_data)?;
    }
    // How it ended, in the order things happened.
    let e = &s.end;
    let mut steps: Vec<(u64, String)> = Vec::new();
    if let Some((fr, cause @ CloseCause::RemoveAddr { .. })) = e.cause {
        steps.push((fr, format!("address removed by {cause} (frame {fr})")));
    }
    for sd in [Side::Client, Side::Server] {
        if let Some(fr) = e.fin[sd.index()] {
            steps.push((fr, format!("FIN from the {sd} (frame {fr})")));
        }
    }
    if let Some((fr, by)) = e.rst {
        let mut t = format!("RST from the {by} (frame {fr})");
        match (e.rst_signal, e.cause) {
            (Some(sig), _) => t.push_str(&format!(" with {}", signal(sig))),
            (None, Some((_, cause @ CloseCause::FastClose { .. }))) => {
                t.push_str(&format!(" after {cause}"));
            }
            _ => {}
        }
        steps.push((fr, t));
    }
    steps.sort_by_key(|(f, _)| *f);
    write!(out, "    ended: ")?;
    if steps.is_empty() {
        write!(out, "still open at the end of the capture")?;
    }
    for (i, (_, t)) in steps.iter().enumerate() {
        write!(out, "{}{t}", if i == 0 { "" } else { ", then " })?;
    }
    writeln!(out)?;
    Ok(())
}
