//! The packets source on a live interface: libpcap on the loopback
//! interface sees a TCP connection this test makes, frame by frame, through
//! the same `Source` the view polls.
mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use mptcp_tools::diag::Source;
use mptcp_tools::diag::packets::{CaptureSource, PacketModel};
use mptcp_tools::dissect::packet::{FrameMeta, Packet, tcp_flags};
use mptcp_tools::snapshot::{ConnSnapshot, Snapshot};

/// (source port, destination port, TCP flags, payload length).
type Seg = (u16, u16, u8, usize);

/// Records the TCP segments it is fed; its snapshot is one pseudo
/// connection per SYN seen, enough to check what reaches the view.
#[derive(Default)]
struct Recorder {
    segments: Vec<Seg>,
    numbers: Vec<u64>,
}

impl PacketModel for Recorder {
    fn feed(&mut self, meta: &FrameMeta, pkt: &Packet<'_>) {
        self.numbers.push(meta.number);
        if let Some(t) = &pkt.tcp {
            self.segments.push((t.sport, t.dport, t.flags, t.payload.len()));
        }
    }
    fn snapshot(&self, source: &str) -> Snapshot {
        let connections = self
            .segments
            .iter()
            .filter(|s| s.2 == tcp_flags::SYN)
            .map(|s| ConnSnapshot {
                source: source.into(),
                local: format!("127.0.0.1:{}", s.0),
                remote: format!("127.0.0.1:{}", s.1),
                state: "SYN-SENT".into(),
                ..Default::default()
            })
            .collect();
        Snapshot { connections, ..Default::default() }
    }
}

#[test]
fn live_capture_on_loopback() {
    common::require_interop(&[]);
    let mut src = CaptureSource::open_live("lo", Recorder::default()).expect("capture on lo");
    assert_eq!(src.label(), "live:lo");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).unwrap();
        s.write_all(&buf).unwrap();
    });
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    c.read_exact(&mut back).unwrap();
    server.join().unwrap();
    drop(c);

    // Poll as the view does until the connection's segments came through.
    let start = Instant::now();
    let snap = loop {
        let u = src.poll(start.elapsed(), true);
        let snap = u.snapshot.expect("a capture source always has a snapshot");
        let seen = |f: &dyn Fn(&Seg) -> bool| src.model().segments.iter().any(f);
        let syn = seen(&|s| s.1 == port && s.2 == tcp_flags::SYN);
        let synack = seen(&|s| s.0 == port && s.2 == tcp_flags::SYN | tcp_flags::ACK);
        let data = seen(&|s| s.1 == port && s.3 == 5) && seen(&|s| s.0 == port && s.3 == 5);
        if syn && synack && data {
            break snap;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "not all segments seen: {:?}", src.model().segments);
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(src.frames() >= 5);
    assert!(!src.finished(), "a live capture never finishes");
    let n = &src.model().numbers;
    assert!(n.windows(2).all(|w| w[1] == w[0] + 1) && n[0] == 1, "frames numbered 1, 2, 3, ...");
    let c = snap.connections.iter().find(|c| c.remote == format!("127.0.0.1:{port}")).expect("the SYN's connection");
    assert_eq!(c.source, "live:lo");
}
