//! Decoder and printer throughput on a real kernel capture held in memory
//! (two-subflows-join: 1606 frames, MPTCP with two subflows both ways).
//!
//! cargo bench --bench decode
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use mptcp_tools::capture::{CaptureReader, OpenOptions};
use mptcp_tools::dissect::packet::{FrameMeta, decode};
use mptcp_tools::dissect::tcpdump::{PrintOptions, Printer};

fn frames() -> Vec<(FrameMeta, Vec<u8>)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/captures/pcap/two-subflows-join.pcap");
    let mut r = CaptureReader::open_file(&path, &OpenOptions::default()).expect("capture");
    let mut v = Vec::new();
    while let Some((m, f)) = r.next_frame(&|| false).expect("read") {
        v.push((m, f.to_vec()));
    }
    v
}

fn bench(c: &mut Criterion) {
    let frames = frames();
    let mut g = c.benchmark_group("two-subflows-join");
    g.throughput(Throughput::Elements(frames.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| {
            for (m, f) in &frames {
                black_box(decode(m.linktype, f));
            }
        })
    });
    g.bench_function("decode+options", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for (m, f) in &frames {
                if let Some(t) = decode(m.linktype, f).tcp {
                    n += t.options().filter(|o| o.is_ok()).count();
                }
            }
            black_box(n)
        })
    });
    g.bench_function("decode+mptcp options", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for (m, f) in &frames {
                if let Some(t) = decode(m.linktype, f).tcp {
                    n += t.mptcp_options().filter(|o| o.is_ok()).count();
                }
            }
            black_box(n)
        })
    });
    g.bench_function("decode+print", |b| {
        let mut out = Vec::with_capacity(1 << 20);
        b.iter(|| {
            let mut p = Printer::new(PrintOptions::default());
            out.clear();
            for (m, f) in &frames {
                p.write_packet(&mut out, m, &decode(m.linktype, f), f);
                out.push(b'\n');
            }
            black_box(out.len())
        })
    });
    g.bench_function("decode+print -v", |b| {
        let mut out = Vec::with_capacity(1 << 20);
        b.iter(|| {
            let mut p = Printer::new(PrintOptions { verbose: 1, ..Default::default() });
            out.clear();
            for (m, f) in &frames {
                p.write_packet(&mut out, m, &decode(m.linktype, f), f);
                out.push(b'\n');
            }
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
