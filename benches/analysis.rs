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
//! Frames are held in one contiguous buffer, as a capture file read into
//! memory is. Groups (throughput in packets), each timed twice: `analysis`
//! in wall-clock time, `analysis-cpu` in this thread's CPU time (steadier
//! when other processes share the cores):
//! - `observe`: Analyzer::observe + finish on packets decoded beforehand
//!   (the analysis alone);
//! - `observe_frame`: Analyzer::observe_frame + finish on raw frames: the
//!   whole --summary path after libpcap (lean decoder, then the analysis);
//! - `decode+observe`: packet::decode (full) then observe;
//! - `json`: decode, on_packet and json::write_packet (the --json path
//!   after libpcap).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mptcp_tools::dissect::analysis::{Analyzer, AnalyzerOptions};
use mptcp_tools::dissect::json;
use mptcp_tools::dissect::packet::{FrameMeta, Timestamp, decode, linktype};

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
                ts: Some(Timestamp::new(p.header.ts.tv_sec, p.header.ts.tv_usec as u32 * 1000)),
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

/// This thread's CPU time (CLOCK_THREAD_CPUTIME_ID).
struct CpuTime(WallTime);

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

impl Measurement for CpuTime {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        thread_cpu()
    }
    fn end(&self, i: Duration) -> Duration {
        thread_cpu() - i
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.0.formatter()
    }
}

/// All frames in one buffer: (metadata, range).
struct Frames {
    buf: Vec<u8>,
    index: Vec<(FrameMeta, std::ops::Range<usize>)>,
}

impl Frames {
    fn iter(&self) -> impl Iterator<Item = (&FrameMeta, &[u8])> {
        self.index.iter().map(|(m, r)| (m, &self.buf[r.clone()]))
    }
}

fn contiguous(frames: Vec<(FrameMeta, Vec<u8>)>) -> Frames {
    let mut buf = Vec::with_capacity(frames.iter().map(|(_, f)| f.len()).sum());
    let mut index = Vec::with_capacity(frames.len());
    for (m, f) in frames {
        let at = buf.len();
        buf.extend_from_slice(&f);
        index.push((m, at..buf.len()));
    }
    Frames { buf, index }
}

fn bench<M: Measurement>(c: &mut Criterion<M>, group: &str) {
    let (name, frames) = frames();
    eprintln!("{name}: {} packets", frames.len());
    let frames = contiguous(frames);
    let decoded: Vec<_> = frames.iter().map(|(m, f)| (*m, decode(m.linktype, f))).collect();
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(frames.index.len() as u64));
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
    g.bench_function("observe_frame", |b| {
        b.iter(|| {
            let mut a = Analyzer::new(AnalyzerOptions::default());
            for (m, f) in frames.iter() {
                a.observe_frame(m, f);
            }
            black_box(a.finish())
        })
    });
    g.bench_function("decode+observe", |b| {
        b.iter(|| {
            let mut a = Analyzer::new(AnalyzerOptions::default());
            for (m, f) in frames.iter() {
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
            for (m, f) in frames.iter() {
                let p = decode(m.linktype, f);
                let n = a.on_packet(m, &p);
                json::write_packet(&mut out, m, &p, &n);
            }
            black_box(out.len())
        })
    });
    g.finish();
}

fn wall(c: &mut Criterion) {
    bench(c, "analysis");
}

fn cpu(c: &mut Criterion<CpuTime>) {
    bench(c, "analysis-cpu");
}

criterion_group!(wall_clock, wall);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(CpuTime(WallTime));
    targets = cpu
}
criterion_main!(wall_clock, cpu_time);
