//! A loss x subflows sweep through the simulator, pinned as a snapshot table
//! (testdata/stack/sim_sweep.txt). The runs are deterministic (seeded), so
//! any change in the stack's behaviour shows up as a diff here; regenerate
//! with MPTCP_TOOLS_BLESS=1 after checking the new figures.

use mptcp_tools::stack::Instant;
use mptcp_tools::stack::sim::{PathSpec, Sim, SimConfig, Transfer};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

const BYTES: usize = 1 << 20;

fn input() -> Vec<u8> {
    let mut x = 0x2545f4914f6cdd1du64;
    (0..BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn loss_by_subflows_table() {
    let data = input();
    let mut table = String::new();
    writeln!(table, "# 1 MiB over N paths of rate=20mbit,delay=10ms,queue=50,loss=L; seed 1; default scheduler, CUBIC")
        .unwrap();
    writeln!(
        table,
        "{:<5} {:>5} {:>10} {:>13} {:>8} {:>11} {:>8}",
        "paths", "loss", "time_ms", "goodput_mbit", "retrans", "reinjected", "timeouts"
    )
    .unwrap();
    for n in 1..=3 {
        for loss in ["0%", "1%", "2%", "5%"] {
            let spec: PathSpec = format!("rate=20mbit,delay=10ms,queue=50,loss={loss}").parse().unwrap();
            let mut sim = Sim::new(SimConfig::new(vec![spec; n], 1));
            let mut src: &[u8] = &data;
            let mut out = Vec::new();
            let mut t = Transfer::new(&mut src, &mut out);
            let server = sim.server_addr();
            t.start(sim.now, &mut sim.hosts, server).unwrap();
            assert!(sim.run(&mut t, Instant::from_secs(600)).unwrap(), "{n} paths, loss {loss}: did not finish");
            assert!(t.error.is_none(), "{:?}", t.error);
            let done = t.done_at.unwrap();
            drop(t);
            assert_eq!(Sha256::digest(&out), Sha256::digest(&data), "{n} paths, loss {loss}");
            let c = sim.hosts[0].snapshot(sim.now);
            let conn = &c.connections[0];
            let mib = sim.hosts[0].mib();
            writeln!(
                table,
                "{:<5} {:>5} {:>10} {:>13.2} {:>8} {:>11} {:>8}",
                n,
                loss,
                done.as_millis(),
                BYTES as f64 * 8.0 / done.as_secs_f64() / 1e6,
                conn.retransmits.unwrap(),
                conn.bytes_reinjected.unwrap(),
                mib.by_name("TcpExtTCPTimeouts").unwrap()
            )
            .unwrap();
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/stack/sim_sweep.txt");
    if std::env::var_os("MPTCP_TOOLS_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &table).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(table, expected, "sweep differs from {} (MPTCP_TOOLS_BLESS=1 to accept):\n{table}", path.display());
}
