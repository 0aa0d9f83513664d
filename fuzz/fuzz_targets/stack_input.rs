//! Feed arbitrary bytes, as IP packets, to a listening endpoint and to an
//! established MPTCP connection: no panic, whatever the network sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mptcp_tools::stack::{AddrFlags, Config, Endpoint, Instant};

fuzz_target!(|data: &[u8]| {
    // Checksums offloaded so that the bytes reach the TCP and MPTCP logic.
    let cfg = Config { offload_checksums: true, ..Default::default() };
    let mut s = Endpoint::new(cfg.clone(), 1);
    s.add_address("10.0.1.2".parse().unwrap(), AddrFlags::default()).unwrap();
    s.listen("0.0.0.0:80".parse().unwrap()).unwrap();
    let mut c = Endpoint::new(cfg, 2);
    c.add_address("10.0.1.1".parse().unwrap(), AddrFlags::default()).unwrap();
    let _ = c.connect(Instant::ZERO, None, "10.0.1.2:80".parse().unwrap());
    let mut buf = vec![0u8; 1500];
    // Handshake, then the fuzz input split into packets at 0xff bytes.
    for _ in 0..4 {
        while let Some(t) = c.poll_transmit(Instant::ZERO, &mut buf) {
            let p = buf[..t.len].to_vec();
            s.handle_packet(Instant::ZERO, &p);
        }
        while let Some(t) = s.poll_transmit(Instant::ZERO, &mut buf) {
            let p = buf[..t.len].to_vec();
            c.handle_packet(Instant::ZERO, &p);
        }
    }
    let mut now = Instant::ZERO;
    for chunk in data.split(|b| *b == 0xff) {
        now = now + mptcp_tools::stack::Duration::from_millis(1);
        s.handle_packet(now, chunk);
        c.handle_packet(now, chunk);
        s.handle_timeout(now);
        while s.poll_transmit(now, &mut buf).is_some() {}
        while c.poll_transmit(now, &mut buf).is_some() {}
        while s.poll_event().is_some() {}
        let _ = s.snapshot(now);
    }
});
