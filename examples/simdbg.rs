use mptcp_tools::stack::Instant;
use mptcp_tools::stack::sim::{App, PathSpec, Sim, SimConfig, Transfer};
fn main() {
    let n: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(8 << 20);
    let input: Vec<u8> = (0..n).map(|i| ((i * 7 + i / 251) % 256) as u8).collect();
    let np: usize = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(2);
    let spec: PathSpec = std::env::args().nth(3).map(|s| s.parse().unwrap()).unwrap_or(PathSpec::clean());
    let cc = std::env::args().nth(4).unwrap_or("cubic".into());
    let mut sim = Sim::new(SimConfig::new(vec![spec; np], 1).both(|c| c.cc = cc.parse().unwrap()));
    let mut src: &[u8] = &input;
    let mut out = Vec::new();
    let mut t = Transfer::new(&mut src, &mut out);
    let server = sim.server_addr();
    t.start(sim.now, &mut sim.hosts, server).unwrap();
    let mut iters = 0u64;
    let mut last = Instant::ZERO;
    let mut same = 0;
    loop {
        t.step(sim.now, &mut sim.hosts).unwrap();
        sim.flush();
        if t.done() {
            println!(
                "done at {:?} recv {} goodput {:.1} Mbit/s",
                sim.now,
                t.received,
                t.received as f64 * 8.0 / sim.now.as_secs_f64() / 1e6
            );
            for h in 0..1 {
                for c in sim.hosts[h].snapshot(sim.now).connections {
                    for f in c.subflows {
                        println!("mib {:?}", sim.hosts[0].mib().nonzero());
                        println!(
                            "timeline {:?}",
                            t.timeline
                                .windows(2)
                                .map(|w| ((w[1].1 - w[0].1) as f64 * 8.0 / 0.1 / 1e6) as u32)
                                .collect::<Vec<_>>()
                        );
                        println!(
                            "  sf retrans {:?} cwnd {:?} rtt {:?} acked {:?}",
                            f.retransmits, f.cwnd, f.rtt_us, f.bytes_acked
                        );
                    }
                }
            }
            drop(t);
            let bad = out.iter().zip(input.iter()).position(|(a, b)| a != b);
            println!("first mismatch {:?} of {}", bad, out.len());
            if let Some(b) = bad {
                println!("got {:?} want {:?}", &out[b..b + 16], &input[b..b + 16]);
                let nb = out[b..].iter().zip(input[b..].iter()).take_while(|(a, b)| a != b).count();
                println!("bad run {nb}");
            }
            break;
        }
        let Some(nx) = sim.next_event() else {
            println!("quiet at {:?}", sim.now);
            break;
        };
        if nx == last {
            same += 1;
        } else {
            same = 0;
            last = nx;
        }
        if same > 1000 {
            println!("stuck at {:?}: recv {} sent {}", nx, t.received, t.sent);
            println!("c timeout {:?} s timeout {:?}", sim.hosts[0].poll_timeout(), sim.hosts[1].poll_timeout());
            for h in 0..2 {
                println!("{}", serde_json::to_string(&sim.hosts[h].snapshot(sim.now).connections).unwrap());
            }
            break;
        }
        if nx.as_secs_f64() > 60.0 && iters < u64::MAX / 2 {
            println!("stall at {:?}: recv {} sent {}", nx, t.received, t.sent);
            for h in 0..2 {
                println!("{}", serde_json::to_string_pretty(&sim.hosts[h].snapshot(sim.now).connections).unwrap());
            }
            for h in 0..2 {
                println!("mib{h} {:?}", sim.hosts[h].mib().nonzero());
            }
            break;
        }
        if nx.as_micros() / 1_000_000 != sim.now.as_micros() / 1_000_000 {
            for c in sim.hosts[0].snapshot(sim.now).connections {
                for f in c.subflows {
                    print!(" [cwnd {:?} ss {:?} rtt {:?} acked {:?}]", f.cwnd, f.ssthresh, f.rtt_us, f.bytes_acked);
                }
            }
            println!(" t={:?} unacked {} ", sim.now, sim.hosts[0].unacked(t.client.unwrap()));
            println!("{}", sim.hosts[0].debug_state(t.client.unwrap()));
            if let Some(sh) = t.server {
                println!("server {}", sim.hosts[1].debug_state(sh));
            }
        }
        sim.advance_to(nx);
        iters += 1;
        if iters % 1000000 == 0 {
            println!("{iters} now {:?} recv {}", sim.now, t.received);
        }
    }
}
