//! Transfers across the simulated network, in virtual time: what arrives is
//! byte for byte what was sent (sha256), under loss, reordering, duplication,
//! a path going down, and option stripping.

use mptcp_tools::stack::sim::{PathSpec, Sim, SimConfig, Transfer};
use mptcp_tools::stack::{Event, Instant};
use sha2::{Digest, Sha256};

fn data(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Outcome {
    sim: Sim,
    out: Vec<u8>,
    events: Vec<(Instant, usize, Event)>,
    done_at: Option<Instant>,
}

fn run(cfg: SimConfig, input: &[u8], limit_s: u64) -> Outcome {
    let mut sim = Sim::new(cfg);
    let mut src: &[u8] = input;
    let mut out = Vec::new();
    let mut t = Transfer::new(&mut src, &mut out);
    let server = sim.server_addr();
    t.start(sim.now, &mut sim.hosts, server).unwrap();
    let finished = sim.run(&mut t, Instant::from_secs(limit_s)).unwrap();
    if !finished {
        for (t, h, e) in &t.events {
            eprintln!("{t:?} host{h} {e:?}");
        }
        drop(t);
        for h in 0..2 {
            eprintln!("host{h}: {}", serde_json::to_string_pretty(&sim.hosts[h].snapshot(sim.now)).unwrap());
        }
        panic!("transfer did not finish by {limit_s}s");
    }
    assert!(t.error.is_none(), "{:?}", t.error);
    let events = std::mem::take(&mut t.events);
    let done_at = t.done_at;
    drop(t);
    assert_eq!(out.len(), input.len(), "length");
    assert_eq!(Sha256::digest(&out), Sha256::digest(input), "sha256 of what arrived");
    Outcome { sim, out, events, done_at }
}

#[test]
fn one_path_clean() {
    let input = data(1 << 20, 1);
    let o = run(SimConfig::new(vec![PathSpec::clean()], 1), &input, 30);
    assert_eq!(o.out.len(), input.len());
    let mib = o.sim.hosts[1].mib();
    assert_eq!(mib.by_name("MPTcpExtMPCapableSYNRX"), Some(1));
    assert_eq!(mib.by_name("MPTcpExtMPCapableACKRX"), Some(1));
    assert!(o.done_at.is_some());
}

#[test]
fn two_paths_clean() {
    let input = data(4 << 20, 2);
    let o = run(SimConfig::new(vec![PathSpec::clean(), PathSpec::clean()], 2), &input, 30);
    let mib = o.sim.hosts[1].mib();
    assert_eq!(mib.by_name("MPTcpExtMPJoinAckRx"), Some(1), "{:?}", mib.nonzero());
    assert!(o.events.iter().filter(|e| matches!(e.2, Event::SubflowUp { .. })).count() >= 4);
}

fn spec(s: &str) -> PathSpec {
    s.parse().unwrap()
}

#[test]
fn two_paths_lossy_reordered_duplicated() {
    let input = data(3 << 20, 3);
    let p = spec("rate=50mbit,delay=10ms,loss=2%,reorder=2%,dup=1%,queue=100");
    let o = run(SimConfig::new(vec![p.clone(), p], 3), &input, 120);
    let st = &o.sim.paths[0].stats(0);
    assert!(st.lost > 0 && st.reordered > 0 && st.duplicated > 0, "{st:?}");
}

#[test]
fn one_path_five_percent_loss() {
    let input = data(2 << 20, 4);
    let p = spec("rate=20mbit,delay=5ms,loss=5%");
    run(SimConfig::new(vec![p], 4), &input, 300);
}
