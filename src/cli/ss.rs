//! `mptcp-ss`: a live view of MPTCP connections and their subflows.
//!
//! Sources: the kernel (sock_diag, and the path manager's events), the
//! control sockets of running embedded `mptcp-cat` processes, or packets
//! (`-r FILE`, `-i IFACE`). `--once` prints one snapshot the way `ss -tiM`
//! would, grouped connection -> subflows; `--json` prints it as the
//! snapshot contract; otherwise the TUI runs. Whatever it prints from a
//! source is escaped for the terminal ([`crate::tui::escape`]).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use crate::capture::CaptureError;
use crate::diag::embedded::EmbeddedSource;
use crate::diag::events::PmEvents;
use crate::diag::kernel::KernelSource;
use crate::diag::packets::{CaptureSource, Pace, PacketModel};
use crate::diag::{Level, Source, Sources, Unavailable};
use crate::snapshot::{ConnSnapshot, PrettyJson};
use crate::tui::app::{App, conn_matches};
use crate::tui::escape::{escaped, json_for_terminal};
use crate::tui::text::Columns;

#[derive(Debug, Parser)]
#[command(
    name = "mptcp-ss",
    version,
    about = "A live view of Multipath TCP connections and their subflows",
    long_about = "A live view of Multipath TCP connections and their subflows: the kernel's \
                  (sock_diag and path-manager events), those of running embedded mptcp-cat \
                  processes, or those seen in packets (-r FILE, -i IFACE). Without --once or \
                  --json it opens a terminal view; press ? in it for help."
)]
pub struct Args {
    /// Print one snapshot (connection -> subflows, ss's formats) and exit.
    #[arg(long)]
    pub once: bool,
    /// JSON: with --once (or alone) one snapshot (the mptcp-ss contract);
    /// with --events one object per event.
    #[arg(long)]
    pub json: bool,
    /// Print the event log as it happens, a line per event (path-manager
    /// events of the kernel, events of embedded stacks), until interrupted.
    #[arg(long, conflicts_with = "once")]
    pub events: bool,
    /// Seconds between snapshots.
    #[arg(long, default_value = "1", value_parser = parse_interval, value_name = "SECONDS")]
    pub interval: Duration,
    /// Reconstruct the view from a capture file (pcap or pcapng) instead.
    #[arg(short = 'r', long = "read", value_name = "FILE", conflicts_with = "iface")]
    pub read: Option<PathBuf>,
    /// Reconstruct the view from live traffic on an interface instead.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub iface: Option<String>,
    /// Replay speed for -r in the view (2 = twice the capture's pace).
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub speed: f64,
    /// Only connections matching this text (as `/` in the view).
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Leave out the kernel's connections.
    #[arg(long)]
    pub no_kernel: bool,
    /// Leave out the kernel's path-manager events.
    #[arg(long)]
    pub no_events: bool,
    /// Leave out embedded mptcp-cat processes.
    #[arg(long)]
    pub no_embedded: bool,
    /// The path-manager doctor: inspect this host's (this namespace's) MPTCP
    /// configuration and live state, and print each problem with the command
    /// that fixes it; exit status 1 when there is one. With --json, a list.
    #[arg(long, conflicts_with_all = ["once", "events", "read", "iface"])]
    pub check: bool,
    /// With --check: a port a server of this host should serve with MPTCP
    /// (repeatable).
    #[arg(long = "port", value_name = "PORT", requires = "check")]
    pub ports: Vec<u16>,
    /// With --check: a remote address to check the routes from each endpoint
    /// towards (repeatable; default: the peers of live connections, or the
    /// default route).
    #[arg(long = "peer", value_name = "ADDR", requires = "check")]
    pub peers: Vec<std::net::IpAddr>,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(0.05..=3600.0).contains(&v) {
        return Err(format!("{v} s is out of range (0.05 to 3600)"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// The model that turns packets into connections and events: the
/// dissector's analysis, with its event log on.
fn packet_model() -> anyhow::Result<crate::dissect::analysis::Analyzer> {
    let mut a = crate::dissect::analysis::Analyzer::new(Default::default());
    a.enable_events();
    Ok(a)
}

fn capture_sources<M: PacketModel + 'static>(args: &Args, model: M, once: bool) -> Result<Sources, CaptureError> {
    let mut s = Sources::new();
    if let Some(path) = &args.read {
        let pace = if once { Pace::AllAtOnce } else { Pace::Replay { speed: args.speed } };
        s.push(Box::new(CaptureSource::open_file(path, model, pace)?));
    } else if let Some(iface) = &args.iface {
        s.push(Box::new(CaptureSource::open_live(iface, model)?));
    }
    Ok(s)
}

/// The kernel and embedded sources, each either working or saying why not.
fn live_sources(args: &Args, once: bool) -> Sources {
    let mut s = Sources::new();
    if !args.no_kernel {
        match KernelSource::open() {
            Ok(k) => s.push(Box::new(k)),
            Err(e) => s.push(Box::new(Unavailable { label: "kernel".into(), reason: e.to_string() })),
        }
        if !args.no_events && !once {
            match PmEvents::subscribe() {
                Ok(ev) => s.push(Box::new(ev)),
                Err(e) => s.push(Box::new(Unavailable { label: "kernel events".into(), reason: e.to_string() })),
            }
        }
    }
    if !args.no_embedded {
        s.push(Box::new(EmbeddedSource::new()));
    }
    s
}

/// `--check`: the doctor's findings, then a failure when there is one.
fn check(args: &Args) -> anyhow::Result<()> {
    let host = crate::doctor::gather::gather(&args.ports, &args.peers).context("--check")?;
    let findings = crate::doctor::check(&host);
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::to_string(&findings).context("--check --json")?;
        writeln!(out, "{}", json_for_terminal(json))?;
    } else {
        let mut text = Vec::new();
        crate::doctor::write_text(&mut text, &findings)?;
        for line in String::from_utf8_lossy(&text).lines() {
            writeln!(out, "{}", escaped(line))?;
        }
    }
    out.flush()?;
    if !findings.is_empty() {
        bail!("{} problem(s) found", findings.len());
    }
    Ok(())
}

/// The binary: exit 0, or 1 with `mptcp-ss: reason` (`--check`: when it
/// found a problem).
pub fn main(argv: impl IntoIterator<Item = std::ffi::OsString>) -> std::process::ExitCode {
    crate::cli::main("mptcp-ss", argv, |args: Args| run(args).map(|()| 0).map_err(crate::cli::Failure::from))
}

/// Run mptcp-ss with these arguments.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.check {
        return check(&args);
    }
    let once = (args.once || args.json) && !args.events;
    if args.speed.is_nan() || args.speed <= 0.0 {
        bail!("--speed {}: must be positive", args.speed);
    }
    let mut sources = if once && args.read.is_some() {
        // Read by print_capture_once, one connection at a time.
        Sources::new()
    } else if args.read.is_some() || args.iface.is_some() {
        let input = args.read.as_ref().map(|p| p.display().to_string()).or(args.iface.clone()).unwrap_or_default();
        let model = packet_model().with_context(|| format!("{input}: cannot show connections from packets"))?;
        capture_sources(&args, model, once)?
    } else {
        live_sources(&args, once)
    };
    if args.events {
        return stream_events(&args, &mut sources);
    }
    if sources.is_empty() && !(once && args.read.is_some()) {
        bail!("no source left: --no-kernel and --no-embedded leave nothing to show");
    }
    if once {
        if let Some(path) = &args.read {
            return print_capture_once(&args, path);
        }
        return print_once(&args, &mut sources);
    }
    let mut app = App::new(args.interval);
    if let Some(f) = &args.filter {
        app.filter = f.clone();
    }
    crate::tui::run::run(sources, app).context("terminal")
}

fn print_once(args: &Args, sources: &mut Sources) -> anyhow::Result<()> {
    let mut now = Duration::ZERO;
    if args.iface.is_some() {
        // A live capture needs time to see something: watch one interval.
        sources.poll(now, false);
        std::thread::sleep(args.interval);
        now = args.interval;
    }
    let update = sources.poll(now, true);
    let failures = sources.failures();
    let mut failed = 0;
    for n in &update.notes {
        if n.level == Level::Warn {
            failed += 1;
            // A failure is said once, last, as the run's error.
            if !failures.iter().any(|(l, f)| *l == n.source && *f == n.text) {
                eprintln!("mptcp-ss: {}: {}", escaped(&n.source), escaped(&n.text));
            }
        }
    }
    let mut snap = update.snapshot.unwrap_or_default();
    if let Some(f) = &args.filter {
        let f = f.to_lowercase();
        snap.connections.retain(|c| conn_matches(c, &f));
    }
    let mut out = String::new();
    if args.json {
        out = json_for_terminal(serde_json::to_string_pretty(&snap)?);
        out.push('\n');
    } else {
        crate::tui::text::write_snapshot(&snap, &mut out);
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes()).context("stdout")?;
    if update.sources_with_snapshot == 0 {
        // Nothing came through at all: a failure, not an empty view.
        bail!("no source could be read ({failed} warning{})", if failed == 1 { "" } else { "s" });
    }
    // What was read is shown; a capture cut short still fails the run (as
    // tcpdump exits 1 on a truncated file).
    failure(&failures)
}

/// `--once -r FILE`: the whole capture analysed, then the table (or JSON)
/// written one connection at a time from the analysis, so a capture of
/// 100,000 connections never becomes 100,000 snapshots in memory. The same
/// bytes as [`print_once`] prints from the capture's snapshot.
fn print_capture_once(args: &Args, path: &std::path::Path) -> anyhow::Result<()> {
    let mut src = CaptureSource::open_file(path, packet_model()?, Pace::AllAtOnce)?;
    src.poll(Duration::ZERO, false);
    let label = src.label();
    let (model, label) = (src.model(), label.as_str());
    let filter = args.filter.as_ref().map(|f| f.to_lowercase());
    let shown = |c: &ConnSnapshot| filter.as_ref().is_none_or(|f| conn_matches(c, f));
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut chunk = String::new();
    let mut written: std::io::Result<()> = Ok(());
    let mut flush = |chunk: &mut String, json: bool| {
        if written.is_ok() {
            let text = if json { json_for_terminal(std::mem::take(chunk)) } else { std::mem::take(chunk) };
            written = stdout.write_all(text.as_bytes());
        }
        chunk.clear();
    };
    if args.json {
        let mut doc = PrettyJson::begin(&mut chunk);
        let mut bad = None;
        model.each_connection(label, &mut |c| {
            if shown(&c) {
                if let Err(e) = doc.conn(&c, &mut chunk) {
                    bad.get_or_insert(e);
                }
                flush(&mut chunk, true);
            }
        });
        if let Some(e) = bad {
            return Err(e.into());
        }
        doc.end(&Default::default(), &mut chunk)?;
        chunk.push('\n');
        flush(&mut chunk, true);
    } else {
        let mut cols = Columns::default();
        model.each_connection(label, &mut |c| {
            if shown(&c) {
                cols.fit(&c);
            }
        });
        cols.write_header(&mut chunk);
        model.each_connection(label, &mut |c| {
            if shown(&c) {
                cols.write_conn(&c, &mut chunk);
                flush(&mut chunk, false);
            }
        });
        flush(&mut chunk, false);
    }
    written.and_then(|()| stdout.flush()).context("stdout")?;
    // What was read is shown; a capture cut short still fails the run (as
    // tcpdump exits 1 on a truncated file).
    match src.failure() {
        Some(f) => bail!("{}", escaped(&f)),
        None => Ok(()),
    }
}

/// The run's error when a source failed (see `Source::failure`): its own
/// words, which name the file.
fn failure(failures: &[(String, String)]) -> anyhow::Result<()> {
    match failures.first() {
        Some((_, f)) => bail!("{}", escaped(f)),
        None => Ok(()),
    }
}

/// `--events`: print events as they come until stdout closes.
fn stream_events(args: &Args, sources: &mut Sources) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    let mut stdout = std::io::stdout().lock();
    let mut first = true;
    let mut said: Vec<(String, String)> = Vec::new();
    let mut last = false;
    loop {
        // The first poll takes a snapshot too, for the sources' notes (why
        // events may be missing); its events count like any others. Once
        // every source is finished, a last one gathers the notes of the end
        // (gaps a replay shortened, a capture cut short).
        let u = sources.poll(start.elapsed(), std::mem::take(&mut first) || last);
        let failures = sources.failures();
        for n in u.notes.iter().filter(|n| n.level == Level::Warn) {
            let key = (n.source.clone(), n.text.clone());
            if !said.contains(&key) && !failures.contains(&key) {
                eprintln!("mptcp-ss: {}: {}", escaped(&n.source), escaped(&n.text));
                said.push(key);
            }
        }
        for e in u.events {
            let line = if args.json {
                let mut v = serde_json::to_value(&e.event)?;
                if let Some(o) = v.as_object_mut() {
                    o.insert("at".into(), serde_json::json!(e.at.as_secs_f64()));
                    o.insert("source".into(), serde_json::json!(e.source));
                }
                json_for_terminal(v.to_string())
            } else {
                crate::tui::view::event_text(&e)
            };
            if writeln!(stdout, "{line}").and_then(|_| stdout.flush()).is_err() {
                // The reader went away (a closed pipe): done.
                return Ok(());
            }
        }
        if last {
            return failure(&failures);
        }
        if sources.finished() {
            last = true;
            continue;
        }
        std::thread::sleep(crate::tui::run::TICK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let a = Args::try_parse_from(["mptcp-ss", "--once", "--interval", "0.5"]).unwrap();
        assert!(a.once && !a.json);
        assert_eq!(a.interval, Duration::from_millis(500));
        assert!(Args::try_parse_from(["mptcp-ss", "--interval", "0"]).is_err());
        assert!(Args::try_parse_from(["mptcp-ss", "--interval", "x"]).is_err());
        assert!(Args::try_parse_from(["mptcp-ss", "-r", "a.pcap", "-i", "eth0"]).is_err());
        assert!(Args::try_parse_from(["mptcp-ss", "--events", "--once"]).is_err());
        let a = Args::try_parse_from(["mptcp-ss", "-r", "a.pcap", "--json"]).unwrap();
        assert_eq!(a.read.as_deref(), Some(std::path::Path::new("a.pcap")));
    }
}
