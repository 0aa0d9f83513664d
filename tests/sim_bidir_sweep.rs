//! A loss x reordering x duplication x subflow-count sweep through the
//! simulator, data both ways in each run (client to server and server to
//! client in the same connection), with the initial subflow's path going
//! down mid-transfer (for a while, or for good) in half of the runs: every
//! byte arrives once and in order, each way
//! (sha256 asserted), and the table of runs is pinned
//! (testdata/stack/sim_bidir_sweep.txt): the runs are seeded, so a change in
//! the stack's behaviour shows as a diff. Regenerate with MPTCP_TOOLS_BLESS=1
//! after checking the new figures.

use std::fmt::Write as _;

use mptcp_tools::stack::Instant;
use mptcp_tools::stack::sim::{PathSpec, Sim, SimConfig, Transfer};
use sha2::{Digest, Sha256};

const UP: usize = 384 << 10;
const DOWN: usize = 256 << 10;

fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn hex8(d: &[u8]) -> String {
    Sha256::digest(d)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

struct Run {
    paths: usize,
    loss: &'static str,
    reorder: &'static str,
    dup: &'static str,
    /// The first path (the initial subflow's) is down for this interval.
    down: Option<&'static str>,
}

fn runs() -> Vec<Run> {
    let mut v = Vec::new();
    for down in [None, Some("down")] {
        for paths in 1..=3 {
            for loss in ["0%", "1%", "4%"] {
                for reorder in ["0%", "3%"] {
                    for dup in ["0%", "2%"] {
                        // One path alone goes down for less time than with
                        // others to take over (it must recover by itself).
                        let down = down.map(|_| if paths == 1 { "100ms-400ms" } else { "100ms-900ms" });
                        v.push(Run { paths, loss, reorder, dup, down });
                    }
                }
            }
        }
    }
    // The path never comes back: the others carry everything, and the
    // dead subflow is given up after its retransmissions.
    for paths in 2..=3 {
        for loss in ["0%", "1%", "4%"] {
            v.push(Run { paths, loss, reorder: "0%", dup: "0%", down: Some("100ms-100000s") });
        }
    }
    v
}

#[test]
fn loss_reorder_dup_subflows_both_ways_table() {
    let up = bytes(UP, 0x5eed_0001);
    let down = bytes(DOWN, 0x5eed_0002);
    let mut table = String::new();
    writeln!(
        table,
        "# {UP} bytes client->server and {DOWN} server->client in one connection; N paths of \
         rate=20mbit,delay=10ms,queue=50 plus loss/reorder/dup; down: path 1 (the initial subflow's) down \
         mid-transfer; seed = run number; default scheduler, CUBIC"
    )
    .unwrap();
    writeln!(
        table,
        "{:>3} {:<5} {:>4} {:>7} {:>4} {:<13} {:>8} {:<16} {:<16} {:>7} {:>10} {:>8}",
        "run",
        "paths",
        "loss",
        "reorder",
        "dup",
        "down",
        "time_ms",
        "sha256_up",
        "sha256_down",
        "retrans",
        "reinjected",
        "timeouts"
    )
    .unwrap();
    let all = runs();
    assert!(all.len() >= 60, "{} runs", all.len());
    for (k, r) in all.iter().enumerate() {
        let mut spec = format!("rate=20mbit,delay=10ms,queue=50,loss={},reorder={},dup={}", r.loss, r.reorder, r.dup);
        let mut paths: Vec<PathSpec> = vec![spec.parse().unwrap(); r.paths];
        if let Some(d) = r.down {
            spec.push_str(&format!(",down={d}"));
            paths[0] = spec.parse().unwrap();
        }
        let seed = k as u64 + 1;
        let mut sim = Sim::new(SimConfig::new(paths, seed));
        let (mut up_src, mut down_src): (&[u8], &[u8]) = (&up, &down);
        let (mut up_out, mut down_out) = (Vec::new(), Vec::new());
        let mut t = Transfer::new(&mut up_src, &mut up_out).with_reverse(&mut down_src, &mut down_out);
        let server = sim.server_addr();
        t.start(sim.now, &mut sim.hosts, server).unwrap();
        let what = format!(
            "run {k}: {} paths, loss {}, reorder {}, dup {}, down {:?}",
            r.paths, r.loss, r.reorder, r.dup, r.down
        );
        let finished = sim.run(&mut t, Instant::from_secs(3600)).unwrap();
        assert!(finished, "{what}: did not finish ({} of {UP} up, {:?} down)", t.received, t.reverse_bytes());
        assert!(t.error.is_none(), "{what}: {:?}", t.error);
        let done = t.done_at.unwrap();
        drop(t);
        assert_eq!(up_out.len(), UP, "{what}: client to server length");
        assert_eq!(down_out.len(), DOWN, "{what}: server to client length");
        assert_eq!(Sha256::digest(&up_out), Sha256::digest(&up), "{what}: client to server sha256");
        assert_eq!(Sha256::digest(&down_out), Sha256::digest(&down), "{what}: server to client sha256");
        let snap = sim.hosts[0].snapshot(sim.now);
        let c = &snap.connections[0];
        let timeouts = sim.hosts[0].mib().by_name("TcpExtTCPTimeouts").unwrap()
            + sim.hosts[1].mib().by_name("TcpExtTCPTimeouts").unwrap();
        writeln!(
            table,
            "{:>3} {:<5} {:>4} {:>7} {:>4} {:<13} {:>8} {:<16} {:<16} {:>7} {:>10} {:>8}",
            k,
            r.paths,
            r.loss,
            r.reorder,
            r.dup,
            r.down.unwrap_or("-"),
            done.as_millis(),
            hex8(&up_out),
            hex8(&down_out),
            c.retransmits.unwrap_or(0),
            c.bytes_reinjected.unwrap_or(0),
            timeouts
        )
        .unwrap();
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/stack/sim_bidir_sweep.txt");
    if std::env::var_os("MPTCP_TOOLS_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &table).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(table, expected, "sweep differs from {} (MPTCP_TOOLS_BLESS=1 to accept):\n{table}", path.display());
}
