//! The Internet checksum (RFC 1071): the 16-bit one's-complement sum of
//! 16-bit big-endian words, inverted. The one implementation for the IPv4
//! header (RFC 791 §3.1), TCP with its pseudo-header (RFC 9293 §3.1, RFC
//! 8200 §8.1), UDP and ICMP as the printers verify them, and the MPTCP DSS
//! checksum over its pseudo-header (RFC 8684 §3.3.1,
//! [`crate::dissect::crypto::dss_checksum`]).
//!
//! Data may come in chunks of any length ([`InternetChecksum::add`] keeps
//! track of a chunk that ends mid-word), as a DSS mapping spans several
//! segments. Sums of chunks taken apart combine by one's-complement
//! addition ([`fold`]), a chunk that starts at an odd offset contributing
//! its sum byte-swapped (RFC 1071 §2(B), byte order independence).

/// An incremental Internet checksum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InternetChecksum {
    sum: u64,
    odd: bool,
}

impl InternetChecksum {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, mut data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.odd {
            // The previous chunk ended mid-word: this byte is the low half.
            self.sum += data[0] as u64;
            data = &data[1..];
            self.odd = false;
        }
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_be_bytes(c.try_into().expect("8 bytes"));
            self.sum += (w >> 48) + ((w >> 32) & 0xffff) + ((w >> 16) & 0xffff) + (w & 0xffff);
        }
        let rest = chunks.remainder();
        let mut pairs = rest.chunks_exact(2);
        for p in &mut pairs {
            self.sum += u16::from_be_bytes([p[0], p[1]]) as u64;
        }
        if let [b] = pairs.remainder() {
            self.sum += (*b as u64) << 8;
            self.odd = true;
        }
        // Keep headroom: fold once the high bits start filling.
        if self.sum > (1 << 62) {
            self.sum = (self.sum & 0xffff_ffff) + (self.sum >> 32);
        }
    }

    /// The one's-complement sum folded to 16 bits (not inverted).
    pub fn folded(&self) -> u16 {
        fold(self.sum)
    }

    /// The checksum value to put on the wire: the inverted folded sum.
    pub fn finish(&self) -> u16 {
        !self.folded()
    }
}

/// A wide sum of 16-bit words folded to 16 bits by adding the carries back
/// in (RFC 1071 §4.1): the one's-complement sum of the words.
pub fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_chunking_is_alignment_independent() {
        let data: Vec<u8> = (0..1001u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut whole = InternetChecksum::new();
        whole.add(&data);
        for split in [1, 2, 3, 7, 8, 9, 500, 1000] {
            let mut c = InternetChecksum::new();
            c.add(&data[..split]);
            c.add(&data[split..]);
            assert_eq!(c.folded(), whole.folded(), "split at {split}");
        }
    }

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 §3 numerical example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let mut c = InternetChecksum::new();
        c.add(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
        assert_eq!(c.folded(), 0xddf2);
        assert_eq!(c.finish(), !0xddf2);
    }

    #[test]
    fn sums_taken_apart_fold_to_the_whole() {
        // RFC 1071 §3's words summed one by one, the carries folded at the end.
        assert_eq!(fold(0x0001 + 0xf203 + 0xf4f5 + 0xf6f7), 0xddf2);
        assert_eq!(fold(0x1_fffe), 0xffff);
        assert_eq!(fold(0), 0);
        // An odd-offset chunk counts byte-swapped (RFC 1071 §2(B)).
        let data = [0x12u8, 0x34, 0x56, 0x78, 0x9a];
        let mut whole = InternetChecksum::new();
        whole.add(&data);
        let mut tail = InternetChecksum::new();
        tail.add(&data[1..]);
        let head = u64::from(data[0]) << 8;
        assert_eq!(fold(head + u64::from(tail.folded().swap_bytes())), whole.folded());
    }
}
