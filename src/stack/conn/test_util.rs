//! Helpers of the unit tests of `conn`'s parts: a [`Pair`] brought to an
//! established connection, data moved over it, the connections looked at.

use crate::stack::testing::Pair;
use crate::stack::{AddrFlags, Config, ConnHandle, Duration, Endpoint, Instant};
use std::net::{IpAddr, SocketAddr};

use super::Connection;

pub(super) const SERVER: ([u8; 4], u16) = ([10, 0, 1, 2], 80);

/// The IPv4 pair of `stack::testing`, 5 ms apart.
pub(super) fn pair(cfg: Config) -> Pair {
    Pair::v4(cfg).with_delay(Duration::from_millis(5))
}

/// Give the client a second address it opens a join from.
pub(super) fn second_path(p: &mut Pair) {
    let f = AddrFlags { subflow: true, ..Default::default() };
    assert!(p.c.add_address(IpAddr::from([10, 0, 2, 1]), f).is_ok());
}

/// Connect, send one byte, run 300 ms: (client handle, server handle).
pub(super) fn open(p: &mut Pair) -> (ConnHandle, ConnHandle) {
    let h = p.c.connect(p.now, None, SocketAddr::from(SERVER)).unwrap_or_else(|e| panic!("connect: {e}"));
    assert_eq!(p.c.send(h, b"x"), Ok(1));
    p.drive(p.now + Duration::from_millis(300));
    let sh = p.accepted().unwrap_or_else(|| panic!("not accepted: {:?}", p.events));
    (h, sh)
}

/// Send `data` from the client until `limit`; what the server read.
pub(super) fn upload(p: &mut Pair, h: ConnHandle, sh: ConnHandle, data: &[u8], limit: Instant) -> Vec<u8> {
    let (mut sent, mut got, mut b) = (0, Vec::new(), vec![0u8; 65536]);
    p.drive_with(limit, |p| {
        if sent < data.len() {
            sent += p.c.send(h, &data[sent..]).unwrap_or(0);
        }
        while let Ok(Some(n)) = p.s.recv(sh, &mut b) {
            got.extend_from_slice(&b[..n]);
        }
    });
    got
}

pub(super) fn conn(ep: &Endpoint, h: ConnHandle) -> &Connection {
    ep.conn_ref(h).unwrap_or_else(|| panic!("no connection {h:?}"))
}

pub(super) fn data(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect()
}
