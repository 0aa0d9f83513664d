//! Shared by the analysis tests: read a capture with libpcap and run the
//! analyzer over it, building the outputs the CLI builds.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use mptcp_tools::dissect::analysis::{Analyzer, AnalyzerOptions, PacketNote, Report};
use mptcp_tools::dissect::json;
use mptcp_tools::dissect::packet::{FrameMeta, Timestamp, decode};
use mptcp_tools::dissect::summary;

pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// Every bundled capture: the kernel captures and tcpdump's test files.
pub fn captures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in ["captures/pcap", "captures/tcpdump-tests"] {
        for e in std::fs::read_dir(testdata().join(dir)).expect("testdata") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "pcap") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

/// A capture's frames: metadata and bytes.
pub fn frames(path: &Path) -> Vec<(FrameMeta, Vec<u8>)> {
    let mut cap = pcap::Capture::from_file(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lt = cap.get_datalink().0 as u32;
    let mut out = Vec::new();
    let mut n = 0u64;
    while let Ok(p) = cap.next_packet() {
        n += 1;
        let meta = FrameMeta {
            number: n,
            ts: Some(Timestamp::new(p.header.ts.tv_sec, (p.header.ts.tv_usec as u32) * 1000)),
            caplen: p.header.caplen,
            len: p.header.len,
            linktype: lt,
        };
        out.push((meta, p.data.to_vec()));
    }
    out
}

/// Notes for every frame, and the final report.
pub fn analyse(frames: &[(FrameMeta, Vec<u8>)]) -> (Vec<PacketNote>, Report) {
    let mut a = Analyzer::new(AnalyzerOptions::default());
    let notes = frames.iter().map(|(m, d)| a.on_packet(m, &decode(m.linktype, d))).collect();
    (notes, a.finish())
}

pub fn jsonl(frames: &[(FrameMeta, Vec<u8>)], notes: &[PacketNote]) -> Vec<u8> {
    let mut out = Vec::new();
    for ((m, d), n) in frames.iter().zip(notes) {
        json::write_packet(&mut out, m, &decode(m.linktype, d), n);
    }
    out
}

pub fn summary_text(report: &Report) -> Vec<u8> {
    let mut out = Vec::new();
    summary::write_summary(&mut out, report);
    out
}

/// Frame number and note text, one line per frame (for eyeballing).
pub fn note_lines(notes: &[PacketNote]) -> String {
    let mut s = String::new();
    for (i, n) in notes.iter().enumerate() {
        let mut t = Vec::new();
        n.write_text(&mut t);
        s.push_str(&format!("{}{}\n", i + 1, String::from_utf8_lossy(&t)));
    }
    s
}

pub fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}
