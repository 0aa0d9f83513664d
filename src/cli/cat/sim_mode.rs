//! `mptcp-cat --sim`: a client and a server, both our stack, across a
//! simulated network in one process and in virtual time. Standard input goes
//! into the client, what the server receives goes to standard output, and
//! per-subflow statistics go to standard error at the end.
//!
//! `mptcp-cat --sim [--path SPEC]... [--pcap FILE] [--scheduler NAME]
//! [--cc NAME] [--seed N]`; SPEC is `rate=50mbit,delay=20ms,loss=1%,
//! reorder=1%,dup=0.1%,corrupt=0.1%,queue=100,strip-options,down=1s-4s`
//! (see [`crate::stack::sim::spec`]). Without `--path`, two clean paths.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::stack::sim::{CLIENT, PathSpec, SERVER, Sim, SimConfig, Transfer};
use crate::stack::{CcKind, Event, Instant, SchedulerKind};

/// `mptcp-cat --sim` options.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "mptcp-cat --sim",
    about = "Run an MPTCP client and server (both the embedded stack) over a simulated network in virtual time: stdin in, stdout out, statistics on stderr"
)]
pub struct SimArgs {
    /// Use the simulated network (required; it selects this mode).
    #[arg(long)]
    pub sim: bool,
    /// One path (repeatable): rate=50mbit,delay=20ms,loss=1%,reorder=1%,dup=0.1%,corrupt=0.1%,queue=100,strip-options,corrupt-data=N,down=1s-4s
    #[arg(long = "path", value_name = "SPEC", value_parser = parse_path)]
    pub paths: Vec<PathSpec>,
    /// Write every packet the client sees to this pcap file (raw IP).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<std::path::PathBuf>,
    /// Packet scheduler: default (lowest RTT), roundrobin, redundant.
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub scheduler: SchedulerKind,
    /// Congestion control: cubic, newreno.
    #[arg(long, value_name = "NAME", default_value = "cubic")]
    pub cc: CcKind,
    /// Seed of every random choice (keys, ISNs, losses).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Link MTU in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 1500, value_parser = clap::value_parser!(u32).range(576..=65535))]
    pub mtu: u32,
    /// Ask for DSS checksums.
    #[arg(long)]
    pub checksum: bool,
    /// Plain TCP on both sides (no MP_CAPABLE).
    #[arg(long)]
    pub no_mptcp: bool,
    /// The server announces its other addresses (ADD_ADDR) instead of the
    /// client opening subflows from its own.
    #[arg(long)]
    pub signal: bool,
    /// Stop after this much virtual time (seconds).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub time_limit: u64,
    /// Print connection events (subflows, fallback, close) to stderr as they happen.
    #[arg(short, long)]
    pub verbose: bool,
}

fn parse_path(s: &str) -> Result<PathSpec, String> {
    s.parse::<PathSpec>().map_err(|e| e.to_string())
}

impl SimArgs {
    pub fn sim_config(&self) -> SimConfig {
        let paths = if self.paths.is_empty() { vec![PathSpec::clean(), PathSpec::clean()] } else { self.paths.clone() };
        let mut c = SimConfig::new(paths, self.seed).both(|c| {
            c.scheduler = self.scheduler;
            c.cc = self.cc;
            c.mtu = self.mtu as usize;
            c.checksum = self.checksum;
            c.mptcp = !self.no_mptcp;
        });
        c.client_subflows = !self.signal;
        c.server_signal = self.signal;
        c
    }
}

/// The result of a run, for callers that want numbers rather than text.
#[derive(Clone, Debug)]
pub struct SimReport {
    pub bytes: u64,
    pub duration_s: f64,
    pub goodput_bps: f64,
    pub mptcp: bool,
    pub fallback: Option<String>,
    pub subflows: Vec<SubflowReport>,
}

#[derive(Clone, Debug)]
pub struct SubflowReport {
    pub local: String,
    pub remote: String,
    pub path: Option<usize>,
    pub data_bytes: u64,
    pub share: f64,
    pub goodput_bps: f64,
    pub retransmits: u64,
    pub reinjected_bytes: u64,
    pub rtt_us: Option<u32>,
    pub state: String,
}

/// Run the simulation: `input` into the client, the server's data into
/// `output`, statistics into `stats`.
pub fn run(
    args: &SimArgs,
    input: &mut dyn Read,
    output: &mut dyn Write,
    stats: &mut dyn Write,
) -> anyhow::Result<SimReport> {
    let cfg = args.sim_config();
    let mut sim = Sim::new(cfg);
    if let Some(p) = &args.pcap {
        let f = std::fs::File::create(p).with_context(|| format!("--pcap {}: cannot create", p.display()))?;
        sim.set_tap(Box::new(std::io::BufWriter::new(f)))
            .with_context(|| format!("--pcap {}: cannot write", p.display()))?;
    }
    let server = sim.server_addr();
    let mut t = Transfer::new(input, output);
    t.start(sim.now, &mut sim.hosts, server).map_err(|e| anyhow::anyhow!("connect: {e}"))?;
    let limit = Instant::from_secs(args.time_limit);
    let mut shown = 0;
    let finished = loop {
        // Run in slices so that -v can print events as they come.
        let slice = (sim.now + crate::stack::Duration::from_millis(100)).min(limit);
        let done = sim.run(&mut t, slice).context("simulation I/O")?;
        if args.verbose {
            for (at, host, ev) in &t.events[shown..] {
                if let Some(line) = describe(*at, *host, ev) {
                    writeln!(stats, "{line}")?;
                }
            }
            shown = t.events.len();
        }
        if done {
            break true;
        }
        if sim.now >= limit || sim.next_event().is_none() {
            break false;
        }
    };
    sim.flush_tap().context("--pcap: write")?;
    let bytes = t.received;
    let start = t.events.iter().find(|e| matches!(e.2, Event::Connected(_))).map_or(Instant::ZERO, |e| e.0);
    let end = t.done_at.unwrap_or(sim.now);
    let err = t.error.clone();
    let client = t.client;
    drop(t);
    let duration_s = (end - start).as_secs_f64().max(1e-6);
    let snap = client.and_then(|h| sim.hosts[CLIENT].conn_snapshot(h, sim.now));
    let mut report = SimReport {
        bytes,
        duration_s,
        goodput_bps: bytes as f64 * 8.0 / duration_s,
        mptcp: snap.as_ref().is_some_and(|s| !s.fallback),
        fallback: snap.as_ref().and_then(|s| s.fallback_reason.clone()),
        subflows: Vec::new(),
    };
    if let Some(s) = &snap {
        let total: u64 = s.subflows.iter().map(|f| f.bytes_acked.unwrap_or(0)).sum();
        for f in &s.subflows {
            let data = f.bytes_acked.unwrap_or(0);
            let path = match (f.local.parse(), f.remote.parse()) {
                (Ok(l), Ok(r)) => sim.route(l, r),
                _ => None,
            };
            report.subflows.push(SubflowReport {
                local: f.local.clone(),
                remote: f.remote.clone(),
                path,
                data_bytes: data,
                share: if total > 0 { data as f64 / total as f64 } else { 0.0 },
                goodput_bps: data as f64 * 8.0 / duration_s,
                retransmits: f.retransmits.unwrap_or(0),
                reinjected_bytes: f.bytes_reinjected.unwrap_or(0),
                rtt_us: f.rtt_us,
                state: f.state.clone().unwrap_or_default(),
            });
        }
    }
    write_report(stats, &report, &sim)?;
    if let Some(e) = err {
        anyhow::bail!("{e}");
    }
    if !finished {
        anyhow::bail!(
            "the transfer did not finish within {} s of virtual time ({} bytes arrived)",
            args.time_limit,
            bytes
        );
    }
    Ok(report)
}

fn describe(at: Instant, host: usize, ev: &Event) -> Option<String> {
    let who = if host == SERVER { "server" } else { "client" };
    let t = at.as_secs_f64();
    Some(match ev {
        Event::Connected(_) => format!("[{t:9.6}] {who}: connected"),
        Event::Accepted { .. } => format!("[{t:9.6}] {who}: accepted"),
        Event::FullyEstablished(_) => format!("[{t:9.6}] {who}: MPTCP fully established"),
        Event::Fallback { reason, .. } => format!("[{t:9.6}] {who}: fallback to TCP: {reason}"),
        Event::SubflowUp { subflow, .. } => format!(
            "[{t:9.6}] {who}: subflow {} up {} -> {} (ids {}/{}{}{})",
            subflow.id,
            subflow.local,
            subflow.remote,
            subflow.local_id,
            subflow.remote_id,
            if subflow.join { ", join" } else { "" },
            if subflow.backup { ", backup" } else { "" }
        ),
        Event::SubflowDown { subflow, reason, .. } => {
            format!("[{t:9.6}] {who}: subflow {} down {} -> {}: {reason}", subflow.id, subflow.local, subflow.remote)
        }
        Event::AddressAnnounced { addr_id, addr, .. } => {
            format!("[{t:9.6}] {who}: peer announced {addr} (id {addr_id})")
        }
        Event::AddressRemoved { addr_id, .. } => format!("[{t:9.6}] {who}: peer removed address id {addr_id}"),
        Event::PeerClosed(_) => format!("[{t:9.6}] {who}: peer finished sending"),
        Event::Closed { reason, .. } => format!("[{t:9.6}] {who}: connection {reason}"),
        _ => return None,
    })
}

fn mbit(bps: f64) -> String {
    format!("{:.2} Mbit/s", bps / 1e6)
}

fn write_report(w: &mut dyn Write, r: &SimReport, sim: &Sim) -> std::io::Result<()> {
    let mode =
        if r.mptcp { "MPTCP".to_string() } else { format!("TCP (fallback: {})", r.fallback.as_deref().unwrap_or("-")) };
    writeln!(
        w,
        "mptcp-cat --sim: {} bytes in {:.3} s of virtual time, goodput {}, {mode}",
        r.bytes,
        r.duration_s,
        mbit(r.goodput_bps)
    )?;
    writeln!(
        w,
        "{:<4} {:<4} {:<44} {:>12} {:>6} {:>14} {:>8} {:>11} {:>9} state",
        "sf", "path", "client -> server", "data bytes", "share", "goodput", "retrans", "reinjected", "srtt"
    )?;
    for (i, s) in r.subflows.iter().enumerate() {
        writeln!(
            w,
            "{:<4} {:<4} {:<44} {:>12} {:>5.1}% {:>14} {:>8} {:>11} {:>9} {}",
            i,
            s.path.map_or("-".to_string(), |p| (p + 1).to_string()),
            format!("{} -> {}", s.local, s.remote),
            s.data_bytes,
            s.share * 100.0,
            mbit(s.goodput_bps),
            s.retransmits,
            s.reinjected_bytes,
            s.rtt_us.map_or("-".to_string(), |u| format!("{:.1}ms", u as f64 / 1000.0)),
            s.state
        )?;
    }
    for (i, p) in sim.paths.iter().enumerate() {
        let (up, down) = (p.stats(0), p.stats(1));
        writeln!(
            w,
            "path {} [{}]: {} packets out ({} lost, {} queue drops, {} while down), {} back ({} lost, {} queue drops, {} while down)",
            i + 1,
            p.spec,
            up.packets,
            up.lost,
            up.queue_drops,
            up.down_drops,
            down.packets,
            down.lost,
            down.queue_drops,
            down.down_drops
        )?;
    }
    Ok(())
}

/// `mptcp-cat --sim ...` as a whole program: parse `argv` (the `--sim` flag
/// included), run on stdin/stdout/stderr, map the outcome to an exit status.
pub fn main(argv: Vec<OsString>) -> ExitCode {
    let args = match SimArgs::try_parse_from(&argv) {
        Ok(a) => a,
        Err(e) => {
            let code = e.exit_code();
            let _ = e.print();
            return ExitCode::from(code.clamp(0, 255) as u8);
        }
    };
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let stdout = std::io::stdout();
    let mut output = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut stats = std::io::stderr();
    let r = run(&args, &mut input, &mut output, &mut stats);
    let flushed = output.flush();
    match (r, flushed) {
        (Ok(_), Ok(())) => ExitCode::SUCCESS,
        (Err(e), _) => {
            eprintln!("mptcp-cat --sim: {e:#}");
            ExitCode::FAILURE
        }
        (_, Err(e)) => {
            eprintln!("mptcp-cat --sim: writing standard output: {e}");
            ExitCode::FAILURE
        }
    }
}
