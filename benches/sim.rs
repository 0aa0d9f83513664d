//! Benchmarks of the embedded stack through the simulator (not tests).
//!
//! - Wall-clock throughput of application data, one core, 1, 2 and 4
//!   subflows, with what the kernel has over veth: 64 KB packets and
//!   checksum offload (criterion group `sim_throughput`).
//! - Bytes of memory per idle and per busy connection, from a counting
//!   global allocator (printed before the criterion groups run).
//!
//! `cargo bench --bench sim`; `benches/stack_vs_kernel.sh` runs it beside
//! the kernel's MPTCP over veth and prints the ratio. Environment:
//! `SIM_QUICK=PATHS,MIB` runs one timed transfer of MIB MiB and prints its
//! rate (for the script and for profiling); `SIM_REPORTS=1` prints the
//! memory and virtual-time reports only; `SIM_IO=BYTES` sets the size of
//! the application's reads and writes (default 128 KiB), `SIM_BUF=BYTES`
//! the send and receive buffers (default 4 MiB).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use criterion::{Criterion, Throughput};
use mptcp_tools::stack::sim::{App, PathSpec, SERVER, Sim, SimConfig, Transfer};
use mptcp_tools::stack::{Duration, Endpoint, Event, Instant};

struct Counting;
static CURRENT: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(l.size() as isize, Ordering::Relaxed) + l.size() as isize;
            PEAK.fetch_max(now.max(0) as usize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        CURRENT.fetch_sub(l.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            let now = CURRENT.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed) + new as isize
                - l.size() as isize;
            PEAK.fetch_max(now.max(0) as usize, Ordering::Relaxed);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn current() -> isize {
    CURRENT.load(Ordering::Relaxed)
}

/// Endless zeros, then EOF after `n` bytes (no per-byte work).
struct Source(u64);
impl Read for Source {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        let n = (b.len() as u64).min(self.0) as usize;
        self.0 -= n as u64;
        Ok(n)
    }
}
struct Sink;
impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Size of the application's writes and reads: iperf3's default (`-l`
/// 128 KB for TCP), so both sides of the comparison do the same I/O.
const APP_IO: usize = 128 * 1024;

/// The benchmark path: unlimited links with a 50 µs delay, 64 KB MTU,
/// checksum offload, 4 MB buffers (the kernel's tcp_wmem maximum, which its
/// autotuning reaches over veth: `ss -tm` shows tb4194304 on the sender).
fn fast_config(paths: usize) -> SimConfig {
    let spec = PathSpec { rate_bps: None, delay: Duration::from_micros(50), ..Default::default() };
    SimConfig::new(vec![spec; paths], 1).both(|c| {
        c.mtu = 65535;
        c.offload_checksums = true;
    })
}

fn transfer(paths: usize, bytes: u64) -> u64 {
    let mut cfg = fast_config(paths);
    if let Some(b) = std::env::var("SIM_BUF").ok().and_then(|x| x.parse::<usize>().ok()) {
        cfg = cfg.both(|c| {
            c.send_buffer = b;
            c.recv_buffer = b;
        });
    }
    let mut sim = Sim::new(cfg);
    let mut src = Source(bytes);
    let mut sink = Sink;
    let io: usize = std::env::var("SIM_IO").ok().and_then(|x| x.parse().ok()).unwrap_or(APP_IO);
    let mut t = Transfer::with_io_size(&mut src, &mut sink, io);
    let server = sim.server_addr();
    t.start(sim.now, &mut sim.hosts, server).unwrap();
    assert!(sim.run(&mut t, Instant::from_secs(3600)).unwrap());
    t.received
}

/// Opens `n` connections and leaves them idle.
struct Idle {
    n: usize,
    accepted: usize,
}
impl App for Idle {
    fn step(&mut self, _now: Instant, hosts: &mut [Endpoint; 2]) -> std::io::Result<()> {
        while let Some(ev) = hosts[SERVER].poll_event() {
            if matches!(ev, Event::Accepted { .. }) {
                self.accepted += 1;
            }
        }
        while hosts[0].poll_event().is_some() {}
        Ok(())
    }
    fn done(&self) -> bool {
        self.accepted == self.n
    }
}

fn memory_report() {
    // Idle: established connections, no data.
    let n = 200;
    let mut cfg = SimConfig::new(vec![PathSpec::clean()], 1);
    cfg.client_subflows = false;
    let mut sim = Sim::new(cfg);
    sim.run_until(Instant::from_millis(1));
    let base = current();
    let server = sim.server_addr();
    for _ in 0..n {
        sim.hosts[0].connect(sim.now, None, server).unwrap();
    }
    let mut app = Idle { n, accepted: 0 };
    assert!(sim.run(&mut app, Instant::from_secs(10)).unwrap());
    sim.run_until(sim.now + Duration::from_secs(1));
    let idle = (current() - base) as f64 / (2 * n) as f64;
    drop(sim);

    // Busy: one connection moving 64 MB over two paths at full speed.
    let before = current();
    PEAK.store(before.max(0) as usize, Ordering::Relaxed);
    transfer(2, 64 << 20);
    let busy = (PEAK.load(Ordering::Relaxed) as isize - before) as f64 / 2.0;
    println!(
        "memory: idle connection {idle:.0} bytes per endpoint side ({n} connections, both ends established, 1 subflow)"
    );
    println!(
        "memory: busy connection {busy:.0} bytes per endpoint side at peak (64 MB over 2 subflows, 4 MB send and receive buffers, simulator queues included)"
    );
}

/// Goodput of one long transfer in virtual time: (Mbit/s after the first
/// second, the 100 ms timeline in Mbit/s).
fn virtual_goodput(paths: &[&str], bytes: u64) -> (f64, Vec<f64>) {
    let specs: Vec<PathSpec> = paths.iter().map(|p| p.parse().unwrap()).collect();
    let mut sim = Sim::new(SimConfig::new(specs, 1));
    let mut src = Source(bytes);
    let mut sink = Sink;
    let mut t = Transfer::new(&mut src, &mut sink);
    let server = sim.server_addr();
    t.start(sim.now, &mut sim.hosts, server).unwrap();
    assert!(sim.run(&mut t, Instant::from_secs(3600)).unwrap());
    let tl: Vec<f64> = t.timeline.windows(2).map(|w| (w[1].1 - w[0].1) as f64 * 8.0 / 0.1 / 1e6).collect();
    let end = t.done_at.unwrap();
    let at1 = t.timeline.iter().find(|(at, _)| *at >= Instant::from_secs(1)).map_or(0, |x| x.1);
    let steady = (t.received - at1) as f64 * 8.0 / (end - Instant::from_secs(1)).as_secs_f64() / 1e6;
    (steady, tl)
}

fn aggregation_report() {
    let (two, _) =
        virtual_goodput(&["rate=50mbit,delay=10ms,queue=100", "rate=50mbit,delay=10ms,queue=100"], 120 << 20);
    println!(
        "aggregation: 2 x 50 Mbit/s (10 ms, queue 100): {two:.1} Mbit/s goodput after the first second (target >= 95)"
    );
    let (mixed, _) =
        virtual_goodput(&["rate=50mbit,delay=20ms,queue=100", "rate=10mbit,delay=80ms,queue=100"], 60 << 20);
    println!(
        "aggregation: 50 Mbit/s at 20 ms + 10 Mbit/s at 80 ms: {mixed:.1} Mbit/s = {:.1}% of the 60 Mbit/s sum (target >= 90%)",
        mixed / 60.0 * 100.0
    );
    // Path 2 fails for good at t=4s: how long until the remaining path
    // carries its full rate again (100 ms bins at >= 90% of 50 Mbit/s)?
    let (_, tl) = virtual_goodput(
        &["rate=50mbit,delay=10ms,queue=100", "rate=50mbit,delay=10ms,queue=100,down=4s-1000s"],
        60 << 20,
    );
    let fail_bin = 40;
    let recovered = tl.iter().enumerate().skip(fail_bin).find(|(_, g)| **g >= 45.0).map(|(i, _)| i);
    let before: f64 = tl[20..fail_bin].iter().sum::<f64>() / (fail_bin - 20) as f64;
    match recovered {
        Some(i) => println!(
            "failover: path 2 down at 4.0 s (goodput before {before:.1} Mbit/s); the remaining path back at >= 45 Mbit/s after {} ms (target <= 1000 ms); bins after the failure: {:?}",
            (i - fail_bin) * 100,
            tl[fail_bin..(fail_bin + 15).min(tl.len())].iter().map(|g| g.round() as u32).collect::<Vec<_>>()
        ),
        None => println!("failover: the remaining path never got back to 45 Mbit/s: {:?}", &tl[fail_bin..]),
    }
}

fn throughput(c: &mut Criterion) {
    let bytes: u64 = 512 << 20;
    let mut g = c.benchmark_group("sim_throughput");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(8));
    for paths in [1, 2, 4] {
        g.bench_function(format!("{paths}_subflows"), |b| b.iter(|| assert_eq!(transfer(paths, bytes), bytes)));
    }
    g.finish();
}

/// `SIM_QUICK=PATHS[,MIB]`: one timed transfer, for profiling (no criterion).
fn quick(spec: &str) {
    let mut it = spec.split(',');
    let paths: usize = it.next().and_then(|x| x.parse().ok()).unwrap_or(1);
    let mib: u64 = it.next().and_then(|x| x.parse().ok()).unwrap_or(2048);
    let t0 = std::time::Instant::now();
    let n = transfer(paths, mib << 20);
    let e = t0.elapsed().as_secs_f64();
    println!("quick: {paths} subflows, {n} bytes in {e:.3} s: {:.2} Gbit/s", n as f64 * 8.0 / e / 1e9);
}

fn main() {
    if let Ok(spec) = std::env::var("SIM_QUICK") {
        quick(&spec);
        return;
    }
    memory_report();
    aggregation_report();
    if std::env::var_os("SIM_REPORTS").is_some() {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    throughput(&mut c);
    c.final_summary();
}
