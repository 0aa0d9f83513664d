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
//! - [`options`]: the bytes as a TCP option list, through the option codec
//!   (parse, emit, parse again).
//! - [`decode`]: the bytes as one frame of a chosen link type, through the
//!   decoder and the tcpdump printer.
//! - [`stack_input`]: the bytes as IP packets from the network, to a
//!   listening endpoint and to an established connection.
//! - [`stack_script`]: the bytes as a script of a hostile MPTCP peer (see
//!   `stack::fuzz`).
//!
//! [`TARGETS`] names them all, for the fuzz crate and the regression test.

use std::io::{Cursor, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::capture::{CaptureReader, OpenOptions};
use crate::control::{self, ControlClient, ControlEvent, EventBatch};
use crate::diag::Source;
use crate::diag::packets::{CaptureSource, MAX_GAP, Pace};
use crate::dissect::analysis::{Analyzer, AnalyzerOptions};
use crate::dissect::options::{parse_mptcp, parse_options};
use crate::dissect::packet::{FrameMeta, Timestamp, decode as decode_frame, linktype};
use crate::dissect::tcpdump::{PrintOptions, Printer, TimestampFormat};
use crate::dissect::{json, summary};
use crate::plot::series::Collector;
use crate::snapshot::Snapshot;
use crate::stack::{AddrFlags, Config, Endpoint, Instant};

/// A harness: arbitrary bytes in, a panic when a promise is broken.
pub type Harness = fn(&[u8]);

/// Every fuzz target, by the name of its file in fuzz/fuzz_targets/ and of
/// its corpus folder in testdata/fuzz/.
pub const TARGETS: &[(&str, Harness)] = &[
    ("options", options),
    ("decode", decode),
    ("capture", capture),
    ("frames", frames),
    ("replay", replay),
    ("control", control),
    ("stack_input", stack_input),
    ("stack_script", stack_script),
];

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
        let pkt = decode_frame(meta.linktype, frame);
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
        let frame = frame.to_vec();
        p.frame(&meta, &frame);
    }
    p.finish(data.len());
}

/// The link types the frame harness picks from.
const LINKTYPES: [u32; 12] = [
    linktype::ETHERNET,
    linktype::RAW,
    linktype::LINUX_SLL,
    linktype::LINUX_SLL2,
    linktype::NULL,
    linktype::IPV6,
    linktype::IPV4,
    linktype::PPP,
    linktype::PPP_HDLC,
    linktype::PPP_ETHER,
    linktype::C_HDLC,
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
        // An unknown request is quoted back, at most 32 characters of it, each
        // at worst `\\u{10ffff}` inside a JSON string.
        assert!(reply.ends_with('\n') && reply.len() <= 256 + 32 * 12, "reply {reply:?}");
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

/// The bytes as a TCP option list: parse never panics; every option it
/// accepts emits to bytes that parse to the same option; every error points
/// inside the input.
pub fn options(data: &[u8]) {
    let mut walked = 0usize;
    for item in parse_options(data) {
        match item {
            Ok(opt) => {
                walked += opt.buffer_len();
                let mut buf = [0u8; 64];
                let n = opt.emit(&mut buf);
                assert_eq!(n, opt.buffer_len());
                let again = parse_options(&buf[..n]).next().expect("one option");
                assert_eq!(again, Ok(opt));
            }
            Err(e) => {
                assert!(e.offset + e.raw.len() <= data.len());
                walked = if e.is_framing() { data.len() } else { walked + e.raw.len() };
            }
        }
        assert!(walked <= data.len());
    }
    // The MPTCP body parser on its own, with a framed length.
    if data.len() >= 3 && data.len() <= 40 {
        let mut whole = data.to_vec();
        whole[0] = 30;
        whole[1] = whole.len() as u8;
        if let Ok(m) = parse_mptcp(&whole) {
            assert_eq!(m.buffer_len(), whole.len());
        }
    }
}

/// The bytes as one frame: the first byte picks the link type, the rest is
/// the frame, decoded and printed at a verbosity the byte also picks.
pub fn decode(data: &[u8]) {
    let Some((&sel, frame)) = data.split_first() else { return };
    let lt = LINKTYPES[sel as usize % LINKTYPES.len()];
    let pkt = decode_frame(lt, frame);
    if let Some(tcp) = &pkt.tcp {
        for o in tcp.options() {
            let _ = o;
        }
    }
    let meta = FrameMeta {
        number: 1,
        caplen: frame.len() as u32,
        len: frame.len() as u32 + (u32::from(sel) >> 4),
        linktype: lt,
        ..Default::default()
    };
    let mut out = Vec::with_capacity(256);
    Printer::new(PrintOptions { verbose: sel % 3, ..Default::default() }).write_packet(&mut out, &meta, &pkt, frame);
    assert!(out.len() <= MAX_OUTPUT_PER_FRAME + 4 * frame.len(), "{} bytes printed for one frame", out.len());
}

/// The bytes as IP packets (split at 0xff bytes) to a listening endpoint
/// and to an established connection, a millisecond apart: no panic,
/// whatever the network sends.
pub fn stack_input(data: &[u8]) {
    // Checksums offloaded so that the bytes reach the TCP and MPTCP logic.
    let cfg = Config { offload_checksums: true, ..Default::default() };
    let mut s = Endpoint::new(cfg.clone(), 1);
    s.add_address([10, 0, 1, 2].into(), AddrFlags::default()).expect("an address");
    s.listen(([0, 0, 0, 0], 80).into()).expect("a listener");
    let mut c = Endpoint::new(cfg, 2);
    c.add_address([10, 0, 1, 1].into(), AddrFlags::default()).expect("an address");
    let _ = c.connect(Instant::ZERO, None, ([10, 0, 1, 2], 80).into());
    let mut buf = vec![0u8; 1500];
    for _ in 0..4 {
        while let Some(t) = c.poll_transmit(Instant::ZERO, &mut buf) {
            let p = buf[..t.len].to_vec();
            s.handle_packet(Instant::ZERO, &p);
        }
        while let Some(t) = s.poll_transmit(Instant::ZERO, &mut buf) {
            let p = buf[..t.len].to_vec();
            c.handle_packet(Instant::ZERO, &p);
        }
    }
    let mut now = Instant::ZERO;
    for chunk in data.split(|b| *b == 0xff) {
        now += crate::stack::Duration::from_millis(1);
        s.handle_packet(now, chunk);
        c.handle_packet(now, chunk);
        s.handle_timeout(now);
        // Each input packet may be answered, but never with a storm.
        let mut sent = 0;
        while s.poll_transmit(now, &mut buf).is_some() {
            sent += 1;
            assert!(sent <= 4096, "the server sent {sent} packets for one input packet");
        }
        while c.poll_transmit(now, &mut buf).is_some() {}
        while s.poll_event().is_some() {}
        let _ = s.snapshot(now);
    }
}

/// The bytes as a hostile peer's script against a listening endpoint.
pub fn stack_script(data: &[u8]) {
    let _ = crate::stack::fuzz::run(data);
}
