//! `mptcp-dump --plot KIND FILE -o OUT.svg`: the capture read through the
//! analysis, the series collected, one connection (or each) drawn; with
//! `--json` the series printed instead, for plotting elsewhere.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::capture::{CaptureError, CaptureReader, OpenOptions, Source};
use crate::dissect::analysis::{Analyzer, AnalyzerOptions};
use crate::dissect::packet::decode;
use crate::plot::series::{Collector, ConnSeries, throughput};
use crate::plot::{Kind, render};

/// `--conn`: one connection by number, or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnChoice {
    One(u32),
    All,
}

/// Parse `--conn N|all`.
pub fn parse_conn(s: &str) -> Result<ConnChoice, String> {
    if s == "all" {
        return Ok(ConnChoice::All);
    }
    match s.parse::<u32>() {
        Ok(n) if n > 0 => Ok(ConnChoice::One(n)),
        _ => Err(format!("{s:?} is neither a connection number (1, 2, ...) nor \"all\"")),
    }
}

/// What to draw, from mptcp-dump's command line.
#[derive(Clone, Debug)]
pub struct PlotRequest {
    pub kind: Kind,
    pub source: Source,
    pub filter: Option<String>,
    /// `-c N`: read at most N frames (those the filter passes).
    pub count: Option<u64>,
    /// `--json`: the series as JSON lines on `out` instead of a picture.
    pub json: bool,
    pub output: Option<PathBuf>,
    pub conn: Option<ConnChoice>,
    pub window: Option<f64>,
}

/// Why a plot was not drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
}

/// How a plot run read its capture.
#[derive(Debug, Default)]
pub struct PlotOutcome {
    pub frames_read: u64,
    pub frames_shown: u64,
    /// An error after some frames (a truncated file): drawn from what was read.
    pub warning: Option<CaptureError>,
}

/// Read the capture, analyse it, and draw (or print the series of) the
/// chosen connections.
pub fn run(args: &PlotRequest, out: &mut dyn Write) -> Result<PlotOutcome, PlotError> {
    let kind = args.kind;
    let output = match (&args.output, args.json) {
        (_, true) => None,
        (Some(p), false) => {
            match p.extension().and_then(|e| e.to_str()) {
                Some("svg") => {}
                Some("png") => {
                    return Err(PlotError::Usage(format!(
                        "{}: PNG output is not supported yet; write an .svg file (any browser or \
                         `rsvg-convert` turns it into PNG)",
                        p.display()
                    )));
                }
                _ => return Err(PlotError::Usage(format!("{}: the plot file must end in .svg", p.display()))),
            }
            Some(p.clone())
        }
        (None, false) => {
            return Err(PlotError::Usage("--plot needs -o FILE.svg (or --json for the series)".into()));
        }
    };
    let opts = OpenOptions { filter: args.filter.clone(), ..Default::default() };
    let mut reader = CaptureReader::open(&args.source, &opts)?;
    let mut analyzer = Analyzer::new(AnalyzerOptions::default());
    let mut collector = Collector::new();
    let mut outcome = PlotOutcome::default();
    let limit = args.count.unwrap_or(u64::MAX);
    let mut each = |meta: &crate::dissect::packet::FrameMeta, frame: &[u8]| {
        outcome.frames_shown += 1;
        let pkt = decode(meta.linktype, frame);
        let note = analyzer.on_packet(meta, &pkt);
        collector.add(meta, &note);
        if outcome.frames_shown >= limit { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    };
    if let Err(e) = reader.for_each_frame(&|| false, &mut each) {
        if outcome.frames_shown == 0 {
            return Err(e.into());
        }
        outcome.warning = Some(e);
    }
    outcome.frames_read = reader.frames_read();
    let report = analyzer.finish();
    // A connection without data (a fallback before any, say) has nothing
    // to draw.
    let mut all = collector.finish(&report);
    all.retain(|s| !s.data.is_empty());
    let chosen: Vec<&ConnSeries> = match args.conn {
        Some(ConnChoice::All) => all.iter().collect(),
        Some(ConnChoice::One(n)) => match all.iter().find(|s| s.conn == n) {
            Some(s) => vec![s],
            None => {
                return Err(PlotError::Usage(format!(
                    "no MPTCP connection {n} with data in this capture (it has {})",
                    all.len()
                )));
            }
        },
        // The largest: the most data.
        None => all
            .iter()
            .max_by_key(|s| (s.data.iter().map(|p| u64::from(p.len)).sum::<u64>(), s.conn))
            .into_iter()
            .collect(),
    };
    if chosen.is_empty() {
        return Err(PlotError::Usage("no MPTCP connection with data in this capture: nothing to plot".into()));
    }
    let window = args.window.unwrap_or(0.0);
    if args.json {
        for s in &chosen {
            let line = match kind {
                Kind::Dsn => serde_json::to_string(s),
                Kind::Tput => serde_json::to_string(&throughput(s, window)),
            }
            .map_err(|e| PlotError::Usage(format!("series as JSON: {e}")))?;
            writeln!(out, "{line}").map_err(PlotError::Output)?;
        }
        out.flush().map_err(PlotError::Output)?;
        return Ok(outcome);
    }
    let output = output.expect("checked above");
    for s in &chosen {
        let svg = match kind {
            Kind::Dsn => render::dsn_svg(s),
            Kind::Tput => render::tput_svg(s, &throughput(s, window)),
        }
        .map_err(|e| PlotError::Usage(e.to_string()))?;
        let path = if args.conn == Some(ConnChoice::All) { numbered(&output, s.conn) } else { output.clone() };
        std::fs::write(&path, svg).map_err(PlotError::Output)?;
        eprintln!("mptcp-dump: connection {} -> {}", s.conn, path.display());
    }
    Ok(outcome)
}

/// OUT.svg -> OUT-connN.svg.
fn numbered(p: &Path, conn: u32) -> PathBuf {
    let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    p.with_file_name(format!("{stem}-conn{conn}.svg"))
}
