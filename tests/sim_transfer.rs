//! Transfers across the simulated network, in virtual time: what arrives is
//! byte for byte what was sent (sha256), under loss, reordering, duplication,
//! a path going down, and option stripping.

mod common;

use mptcp_tools::stack::sim::{PathSpec, Sim, SimConfig, Transfer};
use mptcp_tools::stack::{Event, FallbackReason, Instant};
use sha2::{Digest, Sha256};

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
    let input = common::pseudo_random_bytes(1 << 20, 1);
    let o = run(SimConfig::new(vec![PathSpec::clean()], 1), &input, 30);
    assert_eq!(o.out.len(), input.len());
    let mib = o.sim.hosts[1].mib();
    assert_eq!(mib.by_name("MPTcpExtMPCapableSYNRX"), Some(1));
    assert_eq!(mib.by_name("MPTcpExtMPCapableACKRX"), Some(1));
    assert!(o.done_at.is_some());
}

#[test]
fn two_paths_clean() {
    let input = common::pseudo_random_bytes(4 << 20, 2);
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
    let input = common::pseudo_random_bytes(3 << 20, 3);
    let p = spec("rate=50mbit,delay=10ms,loss=2%,reorder=2%,dup=1%,queue=100");
    let o = run(SimConfig::new(vec![p.clone(), p], 3), &input, 120);
    let st = &o.sim.paths[0].stats(0);
    assert!(st.lost > 0 && st.reordered > 0 && st.duplicated > 0, "{st:?}");
}

#[test]
fn three_paths_five_percent_loss_reorder_dup() {
    let input = common::pseudo_random_bytes(4 << 20, 14);
    let p = spec("rate=30mbit,delay=8ms,loss=5%,reorder=3%,dup=2%,queue=100");
    let o = run(SimConfig::new(vec![p.clone(), p.clone(), p], 14), &input, 300);
    let mib = o.sim.hosts[1].mib();
    assert_eq!(mib.by_name("MPTcpExtMPJoinAckRx"), Some(2));
}

#[test]
fn one_path_five_percent_loss() {
    let input = common::pseudo_random_bytes(2 << 20, 4);
    let p = spec("rate=20mbit,delay=5ms,loss=5%");
    run(SimConfig::new(vec![p], 4), &input, 300);
}

#[test]
fn option_stripping_falls_back_to_tcp() {
    let input = common::pseudo_random_bytes(1 << 20, 5);
    let o = run(SimConfig::new(vec![spec("rate=20mbit,delay=5ms,strip-options")], 5), &input, 60);
    let fb: Vec<_> = o.events.iter().filter(|e| matches!(e.2, Event::Fallback { .. })).collect();
    assert_eq!(fb.len(), 2, "both ends fall back: {fb:?}");
    assert!(matches!(
        fb.iter().find(|e| e.1 == 0).unwrap().2,
        Event::Fallback { reason: FallbackReason::NoMpCapableInSynAck, .. }
    ));
    assert!(matches!(
        fb.iter().find(|e| e.1 == 1).unwrap().2,
        Event::Fallback { reason: FallbackReason::NoMpCapableInSyn, .. }
    ));
    let snap = o.sim.hosts[0].snapshot(o.sim.now);
    assert!(snap.connections[0].fallback);
}

#[test]
fn stripped_second_path_refuses_the_join_and_data_flows_on_the_first() {
    let input = common::pseudo_random_bytes(2 << 20, 6);
    let o = run(
        SimConfig::new(vec![spec("rate=20mbit,delay=5ms"), spec("rate=20mbit,delay=5ms,strip-options")], 6),
        &input,
        60,
    );
    let c = o.sim.hosts[0].mib();
    assert_eq!(c.by_name("MPTcpExtMPJoinSynTx"), Some(1));
    assert_eq!(c.by_name("MPTcpExtMPJoinSynAckRx"), Some(0));
    assert!(c.by_name("MPTcpExtMPRstTx").unwrap() >= 1, "{:?}", c.nonzero());
    // The server's half-open plain-TCP attempt left nothing behind.
    assert_eq!(o.sim.hosts[1].connections().len(), 1);
    assert!(!o.sim.hosts[0].snapshot(o.sim.now).connections[0].fallback);
}

#[test]
fn path_down_mid_transfer_loses_and_doubles_nothing() {
    let input = common::pseudo_random_bytes(12 << 20, 7);
    let p1 = spec("rate=50mbit,delay=20ms,queue=100");
    let p2 = spec("rate=50mbit,delay=20ms,queue=100,down=1s-3s");
    let o = run(SimConfig::new(vec![p1, p2], 7), &input, 120);
    let c = o.sim.hosts[0].mib();
    assert!(c.by_name("MPTcpExtMPTCPRetrans").unwrap() > 0, "data reinjected: {:?}", c.nonzero());
    assert!(c.by_name("MPTcpExtSubflowStale").unwrap() > 0);
    assert!(o.sim.paths[1].stats(0).down_drops > 0);
}

#[test]
fn add_addr_signal_leads_to_a_join() {
    let input = common::pseudo_random_bytes(1 << 20, 8);
    let mut cfg = SimConfig::new(vec![PathSpec::clean(), PathSpec::clean()], 8);
    cfg.client_subflows = false;
    cfg.server_signal = true;
    let o = run(cfg, &input, 60);
    let (c, s) = (o.sim.hosts[0].mib(), o.sim.hosts[1].mib());
    assert_eq!(s.by_name("MPTcpExtAddAddrTx"), Some(1));
    assert_eq!(c.by_name("MPTcpExtAddAddr"), Some(1));
    assert_eq!(c.by_name("MPTcpExtEchoAddTx"), Some(1));
    assert_eq!(s.by_name("MPTcpExtEchoAdd"), Some(1));
    assert_eq!(s.by_name("MPTcpExtMPJoinAckRx"), Some(1));
    assert!(
        o.events
            .iter()
            .any(|e| matches!(&e.2, Event::AddressAnnounced { addr, .. } if addr.ip().to_string() == "10.0.2.2"))
    );
}

#[test]
fn dss_checksums_under_loss() {
    let input = common::pseudo_random_bytes(2 << 20, 9);
    let p = spec("rate=20mbit,delay=5ms,loss=1%,reorder=1%");
    let o = run(SimConfig::new(vec![p.clone(), p], 9).both(|c| c.checksum = true), &input, 120);
    let snap = o.sim.hosts[1].snapshot(o.sim.now);
    assert_eq!(snap.connections[0].csum_enabled, Some(true));
    assert_eq!(o.sim.hosts[1].mib().by_name("MPTcpExtDataCsumErr"), Some(0));
}

#[test]
fn newreno_and_roundrobin_and_redundant() {
    let input = common::pseudo_random_bytes(1 << 20, 10);
    let p = spec("rate=20mbit,delay=5ms,loss=1%");
    for sched in ["roundrobin", "redundant"] {
        let o = run(
            SimConfig::new(vec![p.clone(), p.clone()], 10).both(|c| {
                c.cc = "newreno".parse().unwrap();
                c.scheduler = sched.parse().unwrap();
            }),
            &input,
            120,
        );
        let snap = o.sim.hosts[0].snapshot(o.sim.now);
        let sent: Vec<u64> = snap.connections[0].subflows.iter().map(|s| s.bytes_acked.unwrap()).collect();
        assert!(sent.iter().all(|&b| b > 100_000), "{sched}: every subflow carries data: {sent:?}");
        if sched == "redundant" {
            assert!(sent.iter().sum::<u64>() > input.len() as u64 * 3 / 2, "{sent:?}");
        }
    }
}

#[test]
fn backup_subflow_idles_until_priority_changes() {
    let input = common::pseudo_random_bytes(4 << 20, 11);
    let mut cfg = SimConfig::new(vec![PathSpec::clean(), PathSpec::clean()], 11);
    cfg.client.send_buffer = 1 << 20;
    let mut sim = Sim::new(cfg);
    sim.hosts[0].set_backup("10.0.2.1".parse().unwrap(), true).unwrap();
    let mut src: &[u8] = &input;
    let mut out = Vec::new();
    let mut t = Transfer::new(&mut src, &mut out);
    let server = sim.server_addr();
    t.start(sim.now, &mut sim.hosts, server).unwrap();
    // Half a second with the backup in place: it carries nothing.
    assert!(!sim.run(&mut t, Instant::from_millis(500)).unwrap());
    let snap = sim.hosts[0].snapshot(sim.now);
    let sfs = &snap.connections[0].subflows;
    assert_eq!(sfs.len(), 2);
    assert!(sfs[1].flags.contains('b'), "{}", sfs[1].flags);
    assert_eq!(sfs[1].bytes_acked, Some(0), "backup carried data");
    assert_eq!(sim.hosts[1].mib().by_name("MPTcpExtMPJoinSynBackupRx"), Some(1));
    // Now a regular subflow: MP_PRIO tells the peer, and it carries data.
    sim.hosts[0].set_backup("10.0.2.1".parse().unwrap(), false).unwrap();
    assert!(sim.run(&mut t, Instant::from_secs(60)).unwrap());
    drop(t);
    assert_eq!(Sha256::digest(&out), Sha256::digest(&input));
    assert_eq!(sim.hosts[0].mib().by_name("MPTcpExtMPPrioTx"), Some(1));
    assert_eq!(sim.hosts[1].mib().by_name("MPTcpExtMPPrioRx"), Some(1));
    let snap = sim.hosts[0].snapshot(sim.now);
    assert!(snap.connections[0].subflows[1].bytes_acked.unwrap() > 100_000);
}

#[test]
fn removing_an_address_mid_transfer() {
    let input = common::pseudo_random_bytes(4 << 20, 12);
    let mut sim = Sim::new(SimConfig::new(vec![PathSpec::clean(), PathSpec::clean()], 12));
    let mut src: &[u8] = &input;
    let mut out = Vec::new();
    let mut t = Transfer::new(&mut src, &mut out);
    let server = sim.server_addr();
    t.start(sim.now, &mut sim.hosts, server).unwrap();
    assert!(!sim.run(&mut t, Instant::from_millis(300)).unwrap());
    sim.hosts[0].remove_address("10.0.2.1".parse().unwrap()).unwrap();
    assert!(sim.run(&mut t, Instant::from_secs(60)).unwrap());
    assert!(t.error.is_none(), "{:?}", t.error);
    drop(t);
    assert_eq!(Sha256::digest(&out), Sha256::digest(&input));
    assert_eq!(sim.hosts[0].mib().by_name("MPTcpExtRmAddrTx"), Some(1));
    assert_eq!(sim.hosts[1].mib().by_name("MPTcpExtRmAddr"), Some(1));
    let snap = sim.hosts[0].snapshot(sim.now);
    assert_eq!(snap.connections[0].subflows[1].state.as_deref(), Some("CLOSED"));
}

/// A receiver that stops reading: the window closes, the sender probes, and
/// the transfer finishes once the reader comes back.
#[test]
fn zero_window_then_reader_returns() {
    let input = common::pseudo_random_bytes(300_000, 13);
    let mut cfg = SimConfig::new(vec![PathSpec::clean()], 13);
    cfg.server.recv_buffer = 16 * 1024;
    let mut sim = Sim::new(cfg);
    let mut src: &[u8] = &input;
    let mut out = Vec::new();
    let mut t = Transfer::new(&mut src, &mut out);
    t.read_from = Instant::from_secs(3);
    let server = sim.server_addr();
    t.start(sim.now, &mut sim.hosts, server).unwrap();
    assert!(!sim.run(&mut t, Instant::from_millis(2900)).unwrap());
    assert_eq!(t.received, 0);
    let h = t.client.unwrap();
    let unacked = sim.hosts[0].unacked(h);
    assert!(unacked >= 300_000 - 16 * 1024, "the window held the data back: {unacked}");
    assert!(sim.run(&mut t, Instant::from_secs(120)).unwrap());
    drop(t);
    assert_eq!(Sha256::digest(&out), Sha256::digest(&input));
    assert!(sim.hosts[0].mib().by_name("MPTcpExtWinProbe").unwrap() > 0, "{:?}", sim.hosts[0].mib().nonzero());
}

/// Empty input (the client closes before it has sent a byte) ends cleanly
/// on both sides, also when the third ACK, its repetition or the answer to
/// it are lost: the client repeats its MP_CAPABLE ACK on a backed-off
/// timer until a DATA_ACK shows the server has its key (RFC 8684 §3.1).
#[test]
fn empty_input_closes_cleanly_under_loss() {
    for seed in 0..12 {
        let p = spec("rate=50mbit,delay=10ms,loss=25%");
        let mut o = run(SimConfig::new(vec![p], 100 + seed), b"", 600);
        // The server's own close follows the client's: let it finish.
        let until = o.sim.now + mptcp_tools::stack::Duration::from_secs(300);
        o.sim.run_until(until);
        for h in 0..2 {
            while let Some(ev) = o.sim.hosts[h].poll_event() {
                o.events.push((o.sim.now, h, ev));
            }
        }
        for h in 0..2 {
            let closed = o.events.iter().filter(|e| e.1 == h).find_map(|e| match e.2 {
                Event::Closed { reason, .. } => Some(reason),
                _ => None,
            });
            assert_eq!(closed, Some(mptcp_tools::stack::CloseReason::Normal), "seed {seed} host {h}");
        }
        // Lost SYNs may make the client leave MP_CAPABLE out (as Linux does
        // after net.mptcp.syn_retrans_before_tcp_fallback), and the server
        // follows; no other fallback is right here.
        let fb = |h: usize| {
            o.events.iter().filter(|e| e.1 == h).find_map(|e| match e.2 {
                Event::Fallback { reason, .. } => Some(reason),
                _ => None,
            })
        };
        match (fb(0), fb(1)) {
            (None, None) => {}
            (Some(FallbackReason::SynRetransmissions), Some(FallbackReason::NoMpCapableInSyn))
            | (Some(FallbackReason::SynRetransmissions), Some(FallbackReason::NoMpCapableInAck)) => {}
            other => panic!("seed {seed}: fallbacks {other:?}"),
        }
    }
}
