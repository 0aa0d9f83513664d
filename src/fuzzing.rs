//! Harnesses of the fuzz targets (fuzz/fuzz_targets/*.rs), here so that the
//! crashers they find replay as ordinary tests (tests/fuzz_regressions.rs)
//! without cargo-fuzz. Each takes arbitrary bytes and asserts what the tools
//! promise for any input: no panic, no hang (work bounded by the input), and
//! output and memory bounded by the input.
//!
//! - [`capture`]: the bytes as a capture file (pcap or pcapng), read by our
//!   readers and put through everything mptcp-dump does with a frame: the
//!   tcpdump printer, the analysis, the JSON printer, the summary, the plot
//!   series.
//! - [`frames`]: the bytes as a list of frames of any link type, with
//!   timestamps, through the same steps: reaches the analysis more directly
//!   than through a capture's framing.
//! - [`replay`]: the bytes as a capture replayed the way mptcp-ss replays one
//!   (paced, in virtual time): it must end within a time bounded by its frames.
//! - [`control`]: the bytes as requests to a control server and as replies to
//!   a control client.

use std::io::{Cursor, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::capture::{CaptureReader, OpenOptions};
use crate::control::{self, ControlClient, ControlEvent, EventBatch};
use crate::diag::Source;
use crate::diag::packets::{CaptureSource, MAX_GAP, Pace};
use crate::dissect::analysis::{Analyzer, AnalyzerOptions};
use crate::dissect::packet::{FrameMeta, Timestamp, decode, linktype};
use crate::dissect::tcpdump::{PrintOptions, Printer, TimestampFormat};
use crate::dissect::{json, summary};
use crate::plot::series::Collector;
use crate::snapshot::Snapshot;

/// The most output one frame may produce, text and JSON together: an event
/// names a bounded number of frames, so a frame's lines are bounded too.
const MAX_OUTPUT_PER_FRAME: usize = 32 * 1024;

/// Everything mptcp-dump does with frames, with bounded output per frame.
struct Pipeline {
    printer: Printer,
    analyzer: Analyzer,
    collector: Collector,
    out: Vec<u8>,
    frames: u64,
}

impl Pipeline {
    fn new(verbose: u8) -> Pipeline {
        let opts = PrintOptions {
            verbose,
            timestamps: TimestampFormat::from_t_count(verbose % 6),
            absolute_seq: verbose & 1 == 1,
            frame_numbers: true,
        };
        Pipeline {
            printer: Printer::new(opts),
            analyzer: Analyzer::new(AnalyzerOptions::default()),
            collector: Collector::new(),
            out: Vec::new(),
            frames: 0,
        }
    }

    fn frame(&mut self, meta: &FrameMeta, frame: &[u8]) {
        self.frames += 1;
        self.out.clear();
        let pkt = decode(meta.linktype, frame);
        self.printer.write_packet(&mut self.out, meta, &pkt, frame);
        let note = self.analyzer.on_packet(meta, &pkt);
        note.write_text(&mut self.out);
        json::write_packet(&mut self.out, meta, &pkt, &note);
        self.collector.add(meta, &note);
        assert!(
            self.out.len() <= MAX_OUTPUT_PER_FRAME + 4 * frame.len(),
            "frame {} of {} bytes gave {} bytes of output",
            meta.number,
            frame.len(),
            self.out.len()
        );
    }

    fn finish(self, input_len: usize) {
        let mut sink = Vec::new();
        summary::write_analysis(&mut sink, &self.analyzer).expect("a Vec takes every write");
        assert!(
            sink.len() <= 64 * 1024 + 512 * input_len,
            "a summary of {} bytes for {input_len} bytes of input",
            sink.len()
        );
        let _ = self.analyzer.snapshot("fuzz");
        let report = self.analyzer.finish();
        let series = self.collector.finish(&report);
        let points: usize = series.iter().map(|s| s.data.len() + s.acks.len()).sum();
        assert!(points as u64 <= 2 * self.frames, "{points} plot points from {} frames", self.frames);
    }
}

/// The bytes as a capture file: see the module's docs.
pub fn capture(data: &[u8]) {
    let verbose = data.first().map_or(0, |b| b % 3);
    let input: Box<dyn Read + Send> = Box::new(Cursor::new(data.to_vec()));
    let Ok(mut reader) = CaptureReader::from_reader("fuzz", input, &OpenOptions::default()) else { return };
    let mut p = Pipeline::new(verbose);
    let mut frames = 0u64;
    // A read error after some frames ends the file, as it ends mptcp-dump.
    while let Ok(Some((meta, frame))) = reader.next_frame(&|| false) {
        frames += 1;
        // A record is at least 8 bytes (a pcapng Simple Packet Block's
        // header): more frames than that would mean frames out of nothing.
        assert!(frames as usize <= data.len() / 8 + 1, "{frames} frames from {} bytes", data.len());
        let meta = meta;
        let frame = frame.to_vec();
        p.frame(&meta, &frame);
    }
    p.finish(data.len());
}

/// The link types the frame harness picks from.
const LINKTYPES: [u32; 8] = [
    linktype::ETHERNET,
    linktype::RAW,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::NULL,
    linktype::IPV6,
    linktype::IPV4,
    147,
];

/// The bytes as frames: a link type selector, then per frame a time step
/// (2 bytes, in ms; 0xffff is a frame without a timestamp), a length (2
/// bytes) and the frame's bytes.
pub fn frames(data: &[u8]) {
    let Some((&sel, mut rest)) = data.split_first() else { return };
    let lt = LINKTYPES[sel as usize % LINKTYPES.len()];
    let mut p = Pipeline::new(sel % 3);
    let mut ns: i128 = 1_700_000_000 * 1_000_000_000;
    let mut number = 0;
    while rest.len() >= 4 {
        let dt = u16::from_be_bytes([rest[0], rest[1]]);
        let len = (u16::from_be_bytes([rest[2], rest[3]]) as usize).min(rest.len() - 4);
        let frame = &rest[4..4 + len];
        rest = &rest[4 + len..];
        number += 1;
        let ts = if dt == 0xffff {
            None
        } else {
            ns += i128::from(dt) * 1_000_000;
            Some(Timestamp::from_nanos(ns))
        };
        let meta = FrameMeta { number, ts, caplen: len as u32, len: len as u32 + u32::from(sel >> 5), linktype: lt };
        p.frame(&meta, frame);
    }
    p.finish(data.len());
}

/// The bytes as a capture replayed by mptcp-ss at its pace, in virtual
/// time: it must end after at most one [`MAX_GAP`] per frame (plus a
/// second), whatever the timestamps say.
pub fn replay(data: &[u8]) {
    let input: Box<dyn Read + Send> = Box::new(Cursor::new(data.to_vec()));
    let Ok(reader) = CaptureReader::from_reader("fuzz", input, &OpenOptions::default()) else { return };
    let model = {
        let mut a = Analyzer::new(AnalyzerOptions::default());
        a.enable_events();
        a
    };
    let mut src = CaptureSource::from_reader("capture:fuzz".into(), reader, model, Pace::Replay { speed: 1.0 });
    let step = Duration::from_millis(250);
    let mut now = Duration::ZERO;
    let mut events = 0usize;
    loop {
        let u = src.poll(now, true);
        events += u.events.len();
        let snap = u.snapshot.expect("asked for a snapshot");
        let _ = serde_json::to_string(&snap).expect("a snapshot is JSON");
        if src.finished() {
            break;
        }
        let frames = src.frames();
        // Every frame is due at most MAX_GAP after the one before it.
        let bound = MAX_GAP * (frames as u32 + 2) + Duration::from_secs(1);
        assert!(now <= bound, "replay of {frames} frames not done after {now:?}");
        now += step;
    }
    assert!(events <= 16 * (src.frames() as usize + 1), "{events} events from {} frames", src.frames());
}

/// The bytes as control traffic: each line a request to the server side;
/// the whole input as what a server answers the client side.
pub fn control(data: &[u8]) {
    for line in String::from_utf8_lossy(data).lines().take(64) {
        let reply = control::reply(line, Snapshot::default, EventBatch::default);
        assert!(reply.ends_with('\n') && reply.len() <= 256 + 2 * line.len(), "reply {reply:?}");
    }
    let mut log = crate::stack::driver::control_server::EventLog::new(8);
    for (i, b) in data.iter().take(64).enumerate() {
        match b % 3 {
            0 => log.push(ControlEvent::default()),
            _ => {
                let (batch, _) = log.since(u64::from(*b) * i as u64);
                assert!(batch.events.len() <= 8);
            }
        }
    }
    let (ours, theirs) = UnixStream::pair().expect("a socket pair");
    let bytes = data.to_vec();
    let writer = std::thread::spawn(move || {
        let mut theirs = theirs;
        let _ = theirs.write_all(&bytes);
    });
    let mut client = ControlClient::over_stream(ours, Duration::from_millis(200));
    client.set_reply_limit(4096);
    for _ in 0..64 {
        let ok = if data.len() % 2 == 0 { client.snapshot().is_ok() } else { client.events().is_ok() };
        assert!(client.buffered() <= 4096 + 1, "{} bytes held past a 4096-byte limit", client.buffered());
        if !ok {
            break;
        }
    }
    drop(client);
    writer.join().expect("the writer thread");
}
