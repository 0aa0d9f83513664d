//! Sequence-number arithmetic, in one place.
//!
//! TCP subflow sequence numbers are 32-bit and wrap (RFC 9293 §3.4); MPTCP data
//! sequence numbers are 64-bit but travel as 32 or 64 bits on the wire
//! (RFC 8684 §3.3.1), so a receiver extends a 32-bit DSN to 64 bits against a
//! reference it already knows. Both newtypes compare by wrapping distance, so
//! `a < b` means "b is after a" as long as they are less than half the space apart.

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A 32-bit subflow (TCP) sequence number with wrapping arithmetic.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubflowSeq(pub u32);

impl SubflowSeq {
    /// Signed distance from `other` to `self` (positive when `self` is later).
    pub fn diff(self, other: SubflowSeq) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }
    pub fn max(self, other: SubflowSeq) -> SubflowSeq {
        if self >= other { self } else { other }
    }
    pub fn min(self, other: SubflowSeq) -> SubflowSeq {
        if self <= other { self } else { other }
    }
}

impl fmt::Debug for SubflowSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubflowSeq({})", self.0)
    }
}

impl fmt::Display for SubflowSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Add<u32> for SubflowSeq {
    type Output = SubflowSeq;
    fn add(self, rhs: u32) -> SubflowSeq {
        SubflowSeq(self.0.wrapping_add(rhs))
    }
}

impl Add<usize> for SubflowSeq {
    type Output = SubflowSeq;
    fn add(self, rhs: usize) -> SubflowSeq {
        SubflowSeq(self.0.wrapping_add(rhs as u32))
    }
}

impl AddAssign<u32> for SubflowSeq {
    fn add_assign(&mut self, rhs: u32) {
        self.0 = self.0.wrapping_add(rhs);
    }
}

impl AddAssign<usize> for SubflowSeq {
    fn add_assign(&mut self, rhs: usize) {
        self.0 = self.0.wrapping_add(rhs as u32);
    }
}

impl Sub<u32> for SubflowSeq {
    type Output = SubflowSeq;
    fn sub(self, rhs: u32) -> SubflowSeq {
        SubflowSeq(self.0.wrapping_sub(rhs))
    }
}

/// `a - b` is the number of bytes from `b` up to `a`; panics in debug builds if
/// `b` is after `a` (a logic error in the caller, never reachable from input).
impl Sub for SubflowSeq {
    type Output = usize;
    fn sub(self, rhs: SubflowSeq) -> usize {
        let d = self.diff(rhs);
        debug_assert!(d >= 0, "sequence subtraction underflow: {self:?} - {rhs:?}");
        d.max(0) as usize
    }
}

impl PartialOrd for SubflowSeq {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

/// A 64-bit MPTCP data sequence number (DSN) with wrapping arithmetic.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DataSeq(pub u64);

impl DataSeq {
    pub fn diff(self, other: DataSeq) -> i64 {
        self.0.wrapping_sub(other.0) as i64
    }

    /// The low 32 bits, as sent in a 4-byte DSN or data ACK.
    pub fn low32(self) -> u32 {
        self.0 as u32
    }

    /// Extend a 32-bit wire value to the 64-bit DSN nearest `reference`
    /// (RFC 8684 §3.3.1: "the receiver MUST be able to infer the upper 32 bits").
    pub fn extend(low: u32, reference: DataSeq) -> DataSeq {
        // The answer is within +-2^31 of the reference: add the signed 32-bit
        // distance between the low halves.
        let delta = low.wrapping_sub(reference.0 as u32) as i32;
        DataSeq(reference.0.wrapping_add(delta as i64 as u64))
    }

    pub fn max(self, other: DataSeq) -> DataSeq {
        if self >= other { self } else { other }
    }
    pub fn min(self, other: DataSeq) -> DataSeq {
        if self <= other { self } else { other }
    }
}

impl fmt::Debug for DataSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataSeq({})", self.0)
    }
}

impl fmt::Display for DataSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Add<u64> for DataSeq {
    type Output = DataSeq;
    fn add(self, rhs: u64) -> DataSeq {
        DataSeq(self.0.wrapping_add(rhs))
    }
}

impl Add<usize> for DataSeq {
    type Output = DataSeq;
    fn add(self, rhs: usize) -> DataSeq {
        DataSeq(self.0.wrapping_add(rhs as u64))
    }
}

impl AddAssign<u64> for DataSeq {
    fn add_assign(&mut self, rhs: u64) {
        self.0 = self.0.wrapping_add(rhs);
    }
}

impl AddAssign<usize> for DataSeq {
    fn add_assign(&mut self, rhs: usize) {
        self.0 = self.0.wrapping_add(rhs as u64);
    }
}

impl Sub<u64> for DataSeq {
    type Output = DataSeq;
    fn sub(self, rhs: u64) -> DataSeq {
        DataSeq(self.0.wrapping_sub(rhs))
    }
}

/// Bytes from `rhs` up to `self`; debug-asserts that `rhs` is not after `self`.
impl Sub for DataSeq {
    type Output = u64;
    fn sub(self, rhs: DataSeq) -> u64 {
        let d = self.diff(rhs);
        debug_assert!(d >= 0, "data sequence subtraction underflow: {self:?} - {rhs:?}");
        d.max(0) as u64
    }
}

impl PartialOrd for DataSeq {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subflow_wraps() {
        let a = SubflowSeq(u32::MAX - 1);
        let b = a + 4u32;
        assert_eq!(b.0, 2);
        assert!(b > a);
        assert_eq!(b - a, 4);
        assert_eq!(a.diff(b), -4);
    }

    #[test]
    fn dsn_extension_picks_nearest() {
        let r = DataSeq(0x1_ffff_fff0);
        assert_eq!(DataSeq::extend(0xffff_fff8, r), DataSeq(0x1_ffff_fff8));
        // Crossing the 32-bit boundary forwards.
        assert_eq!(DataSeq::extend(0x10, r), DataSeq(0x2_0000_0010));
        // And backwards.
        let r = DataSeq(0x2_0000_0010);
        assert_eq!(DataSeq::extend(0xffff_fff0, r), DataSeq(0x1_ffff_fff0));
    }

    #[test]
    fn dsn_compare_wraps() {
        assert!(DataSeq(5) > DataSeq(u64::MAX - 5));
        assert_eq!(DataSeq(5) - DataSeq(u64::MAX - 5), 11);
    }
}
