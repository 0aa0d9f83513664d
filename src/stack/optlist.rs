//! The TCP options of one outgoing segment, budgeted: the option space is
//! 40 bytes (RFC 9293 §3.1: the data offset counts at most 15 32-bit
//! words, 5 of them the fixed header), and an option that does not fit is
//! refused here, never written past it. Callers decide what gives way: a
//! lone ADD_ADDR goes without timestamps (as Linux sends an IPv6 ADD_ADDR
//! with a port), SACK blocks take only the room left (RFC 2018 §3), and a
//! REMOVE_ADDR list is split over several ACKs.

use super::tcp::Tcb;
use super::time::Instant;
use crate::dissect::options::{MAX_OPTION_SPACE, TcpOption};

/// Entries one segment can carry (the SYN has six, a pure ACK at most nine).
const MAX_ENTRIES: usize = 10;

#[derive(Clone, Copy)]
pub(crate) struct OptList {
    v: [TcpOption; MAX_ENTRIES],
    n: usize,
    /// Bytes used, before padding (the space is a multiple of 4, so
    /// `used <= 40` is the whole rule).
    used: usize,
    /// Options refused for lack of room.
    refused: u8,
}

impl OptList {
    pub fn new() -> OptList {
        OptList { v: [TcpOption::Nop; MAX_ENTRIES], n: 0, used: 0, refused: 0 }
    }

    /// Add `o` if it fits; otherwise leave the list as it is, count the
    /// refusal and return false.
    pub fn push(&mut self, o: TcpOption) -> bool {
        self.push_all(&[o])
    }

    /// Add all of `opts` or none of them.
    pub fn push_all(&mut self, opts: &[TcpOption]) -> bool {
        let len: usize = opts.iter().map(|o| o.buffer_len()).sum();
        if self.n + opts.len() > MAX_ENTRIES || self.used + len > MAX_OPTION_SPACE {
            self.refused = self.refused.saturating_add(opts.len() as u8);
            return false;
        }
        for o in opts {
            self.v[self.n] = *o;
            self.n += 1;
        }
        self.used += len;
        true
    }

    /// Bytes still free.
    pub fn room(&self) -> usize {
        MAX_OPTION_SPACE - self.used
    }

    /// Options refused so far.
    pub fn refused(&self) -> u8 {
        self.refused
    }

    pub fn as_slice(&self) -> &[TcpOption] {
        &self.v[..self.n]
    }

    /// Wire length, padding included (never more than 40).
    pub fn bytes(&self) -> usize {
        crate::dissect::options::options_len(self.as_slice())
    }

    /// Timestamps (RFC 7323 §3.2: on every segment once negotiated), when
    /// the subflow uses them.
    pub fn timestamps(&mut self, tcb: &Tcb, now: Instant) {
        if tcb.ts_ok {
            self.push_all(&[
                TcpOption::Nop,
                TcpOption::Nop,
                TcpOption::Timestamps { tsval: tcb.tsval(now), tsecr: tcb.ts_recent },
            ]);
        }
    }

    /// SACK blocks in what room is left (RFC 2018 §3: as many as fit).
    pub fn sack(&mut self, tcb: &Tcb) {
        let room = self.room();
        if room < 2 + 2 + 8 {
            return;
        }
        let max = (room - 4) / 8;
        if let Some(b) = tcb.sack_blocks(max) {
            self.push_all(&[TcpOption::Nop, TcpOption::Nop, TcpOption::Sack(b)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::options::{AddAddr, MptcpOption};

    fn add_addr6_port() -> TcpOption {
        TcpOption::Mptcp(MptcpOption::AddAddr(AddAddr {
            v0: false,
            echo: false,
            addr_id: 1,
            addr: "fd00::2".parse().unwrap(),
            port: Some(5001),
            hmac: Some(7),
        }))
    }

    #[test]
    fn an_option_that_does_not_fit_is_refused_not_written() {
        let mut o = OptList::new();
        assert!(o.push_all(&[TcpOption::Nop, TcpOption::Nop, TcpOption::Timestamps { tsval: 1, tsecr: 2 }]));
        assert_eq!(add_addr6_port().buffer_len(), 30);
        assert!(!o.push(add_addr6_port()), "12 + 30 > 40");
        assert_eq!(o.refused(), 1);
        assert_eq!(o.as_slice().len(), 3);
        assert_eq!(o.room(), 28);
        // Alone it fits.
        let mut o = OptList::new();
        assert!(o.push(add_addr6_port()));
        assert_eq!(o.bytes(), 32);
    }

    #[test]
    fn never_more_than_the_entries_or_the_space() {
        let mut o = OptList::new();
        for _ in 0..40 {
            o.push(TcpOption::Nop);
        }
        assert_eq!(o.as_slice().len(), MAX_ENTRIES);
        assert_eq!(o.refused(), 30);
        assert!(o.bytes() <= MAX_OPTION_SPACE);
    }
}
