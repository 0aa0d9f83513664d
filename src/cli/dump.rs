//! `mptcp-dump`: tcpdump's line for every frame with the MPTCP options
//! decoded and the connection analysis appended; `--json` for one JSON object
//! per frame; `--summary` for one block per MPTCP connection.

use crate::cli::plot::{ConnChoice, PlotError, PlotRequest, parse_conn};
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{ArgAction, Parser};

use crate::capture::{CaptureError, CaptureReader, OpenOptions, PcapWriter, Source};
use crate::dissect::analysis::{Analyzer, AnalyzerOptions};
use crate::dissect::packet::{FrameMeta, decode};
use crate::dissect::tcpdump::{PrintOptions, Printer, TimestampFormat};
use crate::dissect::{json, summary};

/// Decode Multipath TCP (RFC 8684) captures the way tcpdump prints them, with
/// the MPTCP options decoded and each connection analysed.
#[derive(Parser, Debug, Clone, Default)]
#[command(
    name = "mptcp-dump",
    version,
    after_help = "\
Examples:
  mptcp-dump capture.pcap                     one line per frame, analysis appended
  mptcp-dump -r capture.pcap tcp port 10000   the same, through a BPF filter
  mptcp-dump -v -# -tttt capture.pcapng       IP details, frame numbers, dates
  mptcp-dump --summary capture.pcap           one block per MPTCP connection
  mptcp-dump --json capture.pcap | jq .       one JSON object per frame
  mptcp-dump -i eth0 -c 10 -w out.pcap        capture 10 frames to a file

Frame numbers (-#, JSON `frame`) are positions in the file, as Wireshark
numbers them, also when a filter skips frames. A filter that starts with `-`
goes after `--`."
)]
pub struct DumpArgs {
    /// The capture file to read (pcap or pcapng), then an optional BPF filter
    /// (tcpdump syntax). With -r or -i, every word is filter.
    #[arg(value_name = "FILE [FILTER]")]
    pub args: Vec<String>,

    /// Read this capture file (as tcpdump -r); `-` reads standard input.
    #[arg(short = 'r', value_name = "FILE", conflicts_with = "interface")]
    pub read: Option<PathBuf>,

    /// Capture live on this interface.
    #[arg(short = 'i', value_name = "IFACE")]
    pub interface: Option<String>,

    /// Write the frames (after the filter) to this pcap file instead of
    /// printing them.
    #[arg(short = 'w', value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Stop after this many frames (that pass the filter); at least 1.
    #[arg(short = 'c', value_name = "N", value_parser = parse_count, allow_negative_numbers = true)]
    pub count: Option<u64>,

    /// Do not resolve addresses or ports (accepted for tcpdump habits;
    /// mptcp-dump never resolves).
    #[arg(short = 'n', action = ArgAction::Count)]
    pub numeric: u8,

    /// More detail: -v adds the IP header fields and the TCP checksum, -vv the
    /// sequence number of pure ACKs.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,

    /// Timestamps: -t none, -tt epoch seconds, -ttt since the previous frame,
    /// -tttt date and time, -ttttt since the first frame.
    #[arg(short = 't', action = ArgAction::Count)]
    pub timestamps: u8,

    /// Print the frame number first.
    #[arg(short = '#')]
    pub numbers: bool,

    /// Absolute TCP sequence numbers.
    #[arg(short = 'S')]
    pub absolute: bool,

    /// Live capture: bytes kept per frame.
    #[arg(short = 's', value_name = "SNAPLEN")]
    pub snaplen: Option<i32>,

    /// Live capture: do not put the interface in promiscuous mode.
    #[arg(short = 'p')]
    pub no_promisc: bool,

    /// One JSON object per frame (see the README for the fields).
    #[arg(long, conflicts_with = "summary")]
    pub json: bool,

    /// Only a summary per MPTCP connection after the last frame.
    #[arg(long)]
    pub summary: bool,

    /// Only tcpdump's part of each line, without the analysis. (`--summary`
    /// is the analysis: the two together could only print nothing.)
    #[arg(long, conflicts_with = "summary")]
    pub no_analysis: bool,

    /// Draw a picture of a connection instead of printing frames: `dsn`
    /// (data sequence against time per subflow) or `tput` (goodput per
    /// subflow). Needs -o FILE.svg, or --json for the series.
    #[arg(long, value_enum, value_name = "KIND", conflicts_with_all = ["summary", "write", "no_analysis"])]
    pub plot: Option<crate::plot::Kind>,

    /// With --plot: the SVG file to write (with --conn all, one file per
    /// connection, FILE-connN.svg).
    #[arg(short = 'o', long = "output", value_name = "FILE", requires = "plot")]
    pub output: Option<PathBuf>,

    /// With --plot: the connection to draw (its number in the analysis, as
    /// `[mptcp conn N]`), or `all`; default: the one with the most data.
    #[arg(long, value_name = "N|all", value_parser = parse_conn, requires = "plot")]
    pub conn: Option<ConnChoice>,

    /// With --plot tput: the window in seconds (default: a fiftieth of the
    /// connection's duration).
    #[arg(long, value_name = "SECONDS", requires = "plot")]
    pub window: Option<f64>,
}

/// `-c N`: a positive count, refused otherwise in tcpdump's words.
fn parse_count(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("invalid packet count {s}")),
    }
}

/// Why mptcp-dump could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot write the output: {0}")]
    Output(#[source] io::Error),
}

/// How a run ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Frames read from the source (filtered-out ones included).
    pub frames_read: u64,
    /// Frames that passed the filter.
    pub frames_shown: u64,
    /// An error met after some frames were decoded (a truncated file): the
    /// output so far is good, the rest of the file is lost, and the run
    /// fails (exit status 1, as tcpdump's).
    pub warning: Option<CaptureError>,
    /// The output stopped accepting data (a closed pipe).
    pub output_closed: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Stop a live capture cleanly on SIGINT/SIGTERM, so the summary and the
/// output file are complete.
fn install_stop_handler() {
    let handler = on_signal as extern "C" fn(libc::c_int);
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

/// The local time zone's offset from UTC at `t` (tcpdump prints local time).
pub fn local_utc_offset(t: i64) -> i64 {
    let tt = t as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r writes only into `tm`.
    let ok = unsafe { !libc::localtime_r(&tt, &mut tm).is_null() };
    if ok { tm.tm_gmtoff } else { 0 }
}

/// An interface's name from its index on this host.
pub fn interface_name(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer holds IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

impl DumpArgs {
    /// The source and the filter, from -r/-i and the positional words.
    pub fn source_and_filter(&self) -> Result<(Source, Option<String>), DumpError> {
        let (source, words) = if let Some(iface) = &self.interface {
            (Source::Interface(iface.clone()), &self.args[..])
        } else if let Some(file) = &self.read {
            (Source::File(file.clone()), &self.args[..])
        } else if let Some(first) = self.args.first() {
            (Source::File(PathBuf::from(first)), &self.args[1..])
        } else {
            return Err(DumpError::Usage(
                "no capture to read: give a file (mptcp-dump FILE), -r FILE or -i IFACE".into(),
            ));
        };
        let filter = (!words.is_empty()).then(|| words.join(" "));
        Ok((source, filter))
    }

    pub fn print_options(&self) -> PrintOptions {
        PrintOptions {
            verbose: self.verbose,
            timestamps: TimestampFormat::from_t_count(self.timestamps),
            absolute_seq: self.absolute,
            frame_numbers: self.numbers,
        }
    }
}

/// `--plot`: the plot room's run, its outcome and errors in mptcp-dump's terms.
fn plot(args: &DumpArgs, kind: crate::plot::Kind, out: &mut dyn Write) -> Result<Outcome, DumpError> {
    let (source, filter) = args.source_and_filter()?;
    let req = PlotRequest {
        kind,
        source,
        filter,
        count: args.count,
        json: args.json,
        output: args.output.clone(),
        conn: args.conn,
        window: args.window,
    };
    match crate::cli::plot::run(&req, out) {
        Ok(p) => Ok(Outcome {
            frames_read: p.frames_read,
            frames_shown: p.frames_shown,
            warning: p.warning,
            ..Default::default()
        }),
        Err(PlotError::Capture(e)) => Err(DumpError::Capture(e)),
        Err(PlotError::Usage(m)) => Err(DumpError::Usage(m)),
        Err(PlotError::Output(e)) => Err(DumpError::Output(e)),
    }
}

/// Run mptcp-dump, writing to `out`.
pub fn run(args: &DumpArgs, out: &mut dyn Write) -> Result<Outcome, DumpError> {
    if let Some(kind) = args.plot {
        return plot(args, kind, out);
    }
    let (source, filter) = args.source_and_filter()?;
    let live = matches!(source, Source::Interface(_));
    let opts = OpenOptions { filter, snaplen: args.snaplen, promisc: !args.no_promisc, ..Default::default() };
    let mut reader = CaptureReader::open(&source, &opts)?;
    let mut writer = match &args.write {
        Some(p) => Some(PcapWriter::create(p, reader.linktype())?),
        None => None,
    };
    if live {
        STOP.store(false, Ordering::Relaxed);
        install_stop_handler();
        // As tcpdump does: this line also tells a script the capture runs.
        eprintln!(
            "listening on {}, link-type {}, snapshot length {} bytes",
            reader.name(),
            crate::dissect::packet::linktype::name(reader.linktype()),
            args.snaplen.unwrap_or(262_144)
        );
    }
    // With -w the frames go to the file; print only what was asked for.
    let text = !args.json && !args.summary && writer.is_none();
    let analyse = !args.no_analysis && (text || args.json || args.summary);
    let mut printer = Printer::with_utc_offset(args.print_options(), local_utc_offset).with_ifname(interface_name);
    let mut analyzer = Analyzer::new(AnalyzerOptions::default());
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 17);
    let mut outcome = Outcome::default();
    let stop = || STOP.load(Ordering::Relaxed);
    let limit = args.count.unwrap_or(u64::MAX);

    // An error of the output file, which ends the run.
    let mut failed: Option<DumpError> = None;
    let mut each = |meta: &FrameMeta, frame: &[u8]| {
        outcome.frames_shown += 1;
        if let Some(w) = &mut writer
            && let Err(e) = w.write(meta, frame)
        {
            failed = Some(e.into());
            return ControlFlow::Break(());
        }
        if args.summary {
            if analyse {
                analyzer.observe_frame(meta, frame);
            }
        } else if args.json {
            let pkt = decode(meta.linktype, frame);
            let note = if analyse { analyzer.on_packet(meta, &pkt) } else { Default::default() };
            json::write_packet(&mut buf, meta, &pkt, &note);
        } else if text {
            let pkt = decode(meta.linktype, frame);
            printer.write_packet(&mut buf, meta, &pkt, frame);
            if analyse {
                analyzer.on_packet(meta, &pkt).write_text(&mut buf);
            }
            buf.push(b'\n');
        }
        if buf.len() >= (1 << 16) || (live && !buf.is_empty()) {
            if flush(out, &mut buf).is_err() {
                outcome.output_closed = true;
                return ControlFlow::Break(());
            }
            if live {
                let _ = out.flush();
                if let Some(w) = &mut writer
                    && let Err(e) = w.flush()
                {
                    failed = Some(e.into());
                    return ControlFlow::Break(());
                }
            }
        }
        if outcome.frames_shown >= limit { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    };
    if let Err(e) = reader.for_each_frame(&stop, &mut each) {
        outcome.warning = Some(e);
    }
    if let Some(e) = failed {
        return Err(e);
    }
    outcome.frames_read = reader.frames_read();
    if let Some(w) = &mut writer {
        w.flush()?;
    }
    if !outcome.output_closed {
        // The summary goes out a connection at a time: never held whole.
        let summarised = if args.summary {
            flush(out, &mut buf).and_then(|_| summary::write_analysis(out, &analyzer))
        } else {
            Ok(())
        };
        if let Err(e) = summarised.and_then(|_| flush(out, &mut buf)).and_then(|_| out.flush()) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                outcome.output_closed = true;
            } else {
                return Err(DumpError::Output(e));
            }
        }
    }
    if outcome.frames_shown == 0
        && let Some(w) = outcome.warning.take()
    {
        // Nothing decoded: the error is the result.
        return Err(w.into());
    }
    Ok(outcome)
}

fn flush(out: &mut dyn Write, buf: &mut Vec<u8>) -> io::Result<()> {
    let r = out.write_all(buf);
    buf.clear();
    r
}

/// The binary: parse, run, report (exit 0; 1 on a failure, or when the
/// capture was not read to its end after what was read is out; 2 on a usage
/// error).
pub fn main(argv: impl IntoIterator<Item = std::ffi::OsString>) -> std::process::ExitCode {
    crate::cli::main("mptcp-dump", argv, |args: DumpArgs| {
        let stdout = io::stdout();
        let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
        let o = run(&args, &mut out).map_err(|e| {
            let status = if matches!(e, DumpError::Usage(_)) { 2 } else { 1 };
            crate::cli::Failure::with_status(status, e)
        })?;
        if matches!(args.source_and_filter(), Ok((Source::Interface(_), _))) {
            eprintln!("{} packets captured", o.frames_shown);
        }
        match &o.warning {
            // What was read is out; the capture was not read to its end.
            Some(w) => Err(crate::cli::Failure::new(w)),
            None => Ok(0),
        }
    })
}
