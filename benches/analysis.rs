//! Analysis speed (mptcp-dump --summary and --json paths), over the bundled
//! captures repeated in memory, or over a big capture named by
//! MPTCP_BENCH_PCAP (e.g. the one `testdata/captures/gen.sh big` makes).
//!
//! Each repetition of the bundled captures gets its ports shifted, so the
//! analyzer sees distinct connections, as in a long capture.
//!
//!   cargo bench --bench analysis
//!   MPTCP_BENCH_PCAP=/path/big.pcap cargo bench --bench analysis
//!
//! Groups (throughput in packets):
//! - `observe`: Analyzer::observe + finish on decoded packets (the analysis alone);
//! - `decode+observe`: packet::decode, then observe (the whole --summary path after libpcap);
//! - `json`: decode, on_packet and json::write_packet (the --json path after libpcap).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mptcp_tools::dissect::analysis::{Analyzer, AnalyzerOptions};
use mptcp_tools::dissect::json;
use mptcp_tools::dissect::packet::{FrameMeta, decode, linktype};

fn read(path: &Path) -> Vec<(FrameMeta, Vec<u8>)> {
    let mut cap = pcap::Capture::from_file(path).expect("capture");
    let lt = cap.get_datalink().0 as u32;
    let mut out = Vec::new();
    let mut n = 0;
    while let Ok(p) = cap.next_packet() {
        n += 1;
        out.push((
            FrameMeta {
                number: n,
                ts_sec: p.header.ts.tv_sec,
                ts_nsec: p.header.ts.tv_usec as u32 * 1000,
                caplen: p.header.caplen,
                len: p.header.len,
                linktype: lt,
            },
            p.data.to_vec(),
        ));
    }
    out
}

/// Offset of the TCP header in an Ethernet frame (IPv4 or IPv6 without
/// extension headers, as in the bundled captures).
fn tcp_offset(f: &[u8]) -> Option<usize> {
    match u16::from_be_bytes([f[12], f[13]]) {
        0x0800 => Some(14 + (f[14] & 0x0f) as usize * 4),
        0x86dd if f[20] == 6 => Some(54),
        _ => None,
    }
}

fn frames() -> (String, Vec<(FrameMeta, Vec<u8>)>) {
    if let Some(p) = std::env::var_os("MPTCP_BENCH_PCAP") {
        let p = PathBuf::from(p);
        return (p.display().to_string(), read(&p));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/captures/pcap");
    let mut caps: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    caps.sort();
    let base: Vec<(FrameMeta, Vec<u8>)> = caps.iter().flat_map(|p| read(p)).collect();
    let reps = 40u16;
    let mut out = Vec::with_capacity(base.len() * reps as usize);
    for r in 0..reps {
        for (m, f) in &base {
            let mut f = f.clone();
            if m.linktype == linktype::ETHERNET
                && let Some(o) = tcp_offset(&f)
                && f.len() >= o + 4
            {
                // Shift both ports the same way: both directions of a flow
                // stay one flow, each repetition is a new one.
                for i in [o, o + 2] {
                    let port = u16::from_be_bytes([f[i], f[i + 1]]) ^ (r << 4);
                    f[i..i + 2].copy_from_slice(&port.to_be_bytes());
                }
            }
            let mut m = *m;
            m.number = out.len() as u64 + 1;
            out.push((m, f));
        }
    }
    (format!("bundled captures x{reps}"), out)
}

fn bench(c: &mut Criterion) {
    let (name, frames) = frames();
    eprintln!("{name}: {} packets", frames.len());
    let decoded: Vec<_> = frames.iter().map(|(m, f)| (*m, decode(m.linktype, f))).collect();
    let mut g = c.benchmark_group("analysis");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("observe", |b| {
        b.iter(|| {
            let mut a = Analyzer::new(AnalyzerOptions::default());
            for (m, p) in &decoded {
                a.observe(m, p);
            }
            black_box(a.finish())
        })
    });
    g.bench_function("decode+observe", |b| {
        b.iter(|| {
            let mut a = Analyzer::new(AnalyzerOptions::default());
            for (m, f) in &frames {
                a.observe(m, &decode(m.linktype, f));
            }
            black_box(a.finish())
        })
    });
    g.bench_function("json", |b| {
        let mut out = Vec::with_capacity(64 << 20);
        b.iter(|| {
            out.clear();
            let mut a = Analyzer::new(AnalyzerOptions::default());
            for (m, f) in &frames {
                let p = decode(m.linktype, f);
                let n = a.on_packet(m, &p);
                json::write_packet(&mut out, m, &p, &n);
            }
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
