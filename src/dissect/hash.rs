//! The crate's one hasher for tables keyed by capture contents (flow
//! 4-tuples, tokens, the printer's conversations and interface names).
//!
//! A multiply-add word hasher in the style of rustc's FxHasher: the keys are
//! capture contents, not attacker-chosen table keys of a server, and SipHash
//! would cost more than the rest of the per-packet work. No table hashed with
//! it is iterated in an order that reaches an output.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default, Clone, Copy)]
pub(crate) struct WordHasher(u64);

const SEED: u64 = 0xf135_7aea_2e62_a9c5;

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        // The multiply leaves its best-mixed bits at the top; hashbrown takes
        // its bucket index from the bottom.
        self.0.rotate_left(26)
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, w: u64) {
        self.0 = self.0.wrapping_add(w).wrapping_mul(SEED);
    }
    fn write_u32(&mut self, w: u32) {
        self.write_u64(w as u64);
    }
    fn write_u8(&mut self, w: u8) {
        self.write_u64(w as u64);
    }
    fn write_usize(&mut self, w: usize) {
        self.write_u64(w as u64);
    }
}

/// A `HashMap` hashed with [`WordHasher`].
pub(crate) type WordMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    fn hash_of<T: Hash>(v: &T) -> u64 {
        let mut h = WordHasher::default();
        v.hash(&mut h);
        h.finish()
    }

    #[test]
    fn bytes_hash_as_padded_words() {
        // A byte string is its little-endian words, the last one zero-padded.
        let mut a = WordHasher::default();
        a.write(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let mut b = WordHasher::default();
        b.write_u64(u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8]));
        b.write_u64(9);
        assert_eq!(a.finish(), b.finish());
    }

    #[test]
    fn nearby_keys_land_in_different_low_bits() {
        // Ports one apart must not share a bucket in a small table.
        let low = |p: u32| hash_of(&p) & 0xff;
        let distinct: std::collections::HashSet<u64> = (40_000..40_064).map(low).collect();
        assert!(distinct.len() > 32, "{} distinct buckets of 64", distinct.len());
    }
}
