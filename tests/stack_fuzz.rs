//! Property tests: whatever the network sends, the stack does not panic and
//! keeps answering. Packets are random bytes, or real segments of a
//! connection with random bytes changed (checksums off so that they reach
//! the TCP and MPTCP code). The cargo-fuzz target `stack_input` does the same
//! with coverage guidance.

use mptcp_tools::stack::testing::Pair;
use mptcp_tools::stack::{AddrFlags, Config, Duration, Endpoint, Instant};
use proptest::prelude::*;

fn pair() -> (Endpoint, Endpoint, Vec<Vec<u8>>) {
    let cfg = Config { offload_checksums: true, ..Default::default() };
    let mut s = Endpoint::new(cfg.clone(), 1);
    s.add_address("10.0.1.2".parse().unwrap(), AddrFlags::default()).unwrap();
    s.listen("0.0.0.0:80".parse().unwrap()).unwrap();
    let mut c = Endpoint::new(cfg, 2);
    c.add_address("10.0.1.1".parse().unwrap(), AddrFlags::default()).unwrap();
    c.add_address("10.0.2.1".parse().unwrap(), AddrFlags { subflow: true, ..Default::default() }).unwrap();
    let h = c.connect(Instant::ZERO, None, "10.0.1.2:80".parse().unwrap()).unwrap();
    c.send(h, &[7u8; 5000]).unwrap();
    // Both sides exchange at t=0 until quiet (the handshake, the join, the
    // data); every packet either sent is a seed for the mutations.
    let mut p = Pair::new(c, s);
    p.drive_now();
    let seen = p.log.iter().map(|(_, pk)| pk.clone()).collect();
    (p.c, p.s, seen)
}

fn feed(c: &mut Endpoint, s: &mut Endpoint, packets: &[Vec<u8>]) {
    let mut buf = vec![0u8; 1500];
    let mut now = Instant::ZERO;
    for p in packets {
        now += Duration::from_millis(3);
        s.handle_packet(now, p);
        c.handle_packet(now, p);
        s.handle_timeout(now);
        c.handle_timeout(now);
        while s.poll_transmit(now, &mut buf).is_some() {}
        while c.poll_transmit(now, &mut buf).is_some() {}
        while s.poll_event().is_some() {}
        while c.poll_event().is_some() {}
    }
    let _ = s.snapshot(now);
    let _ = c.snapshot(now);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 1..20)) {
        let (mut c, mut s, _) = pair();
        feed(&mut c, &mut s, &packets);
    }

    #[test]
    fn mutated_segments_never_panic(picks in proptest::collection::vec((any::<prop::sample::Index>(), proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)), 1..30)) {
        let (mut c, mut s, seen) = pair();
        let packets: Vec<Vec<u8>> = picks
            .iter()
            .map(|(i, edits)| {
                let mut p = seen[i.index(seen.len())].clone();
                for (at, b) in edits {
                    let k = at.index(p.len());
                    p[k] = *b;
                }
                p
            })
            .collect();
        feed(&mut c, &mut s, &packets);
    }
}
