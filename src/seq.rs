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
    /// Bytes from `base` up to `self` counted forwards through the whole
    /// 32-bit space: the relative sequence number of `self` when `base` is
    /// the ISN (RFC 8684 §3.3.1's "relative subflow sequence number").
    /// Unlike `self - base` it never asserts: a relative number may exceed
    /// 2^31.
    pub fn offset_from(self, base: SubflowSeq) -> u32 {
        self.0.wrapping_sub(base.0)
    }
    /// Whether `self` lies in `[start, start + len)`, in wrapping space.
    pub fn in_range(self, start: SubflowSeq, len: u32) -> bool {
        self.offset_from(start) < len
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

    /// Bytes from `base` up to `self` counted forwards through the whole
    /// 64-bit space (a DSN relative to the IDSN); never asserts.
    pub fn offset_from(self, base: DataSeq) -> u64 {
        self.0.wrapping_sub(base.0)
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
    fn offsets_count_forwards() {
        let isn = SubflowSeq(u32::MAX - 9);
        assert_eq!((isn + 15u32).offset_from(isn), 15);
        // Past half the space a relative number is still a forward count.
        assert_eq!((isn + 0x9000_0000u32).offset_from(isn), 0x9000_0000);
        assert!(SubflowSeq(3).in_range(isn, 20));
        assert!(!SubflowSeq(10).in_range(isn, 20));
        assert!(!(isn - 1u32).in_range(isn, 20));
        let idsn = DataSeq(u64::MAX);
        assert_eq!(DataSeq(4).offset_from(idsn), 5);
    }

    proptest::proptest! {
        #[test]
        fn subflow_laws(a: u32, n: u32, m in 0u32..(1 << 31)) {
            let a = SubflowSeq(a);
            proptest::prop_assert_eq!((a + n).offset_from(a), n);
            proptest::prop_assert_eq!((a + m) - a, m as usize);
            proptest::prop_assert!((a + m) >= a);
            proptest::prop_assert_eq!((a + m).diff(a), m as i32);
            proptest::prop_assert_eq!((a + n).in_range(a, n), false);
            proptest::prop_assert!(n == 0 || a.in_range(a, n));
        }

        #[test]
        fn data_laws(a: u64, n: u64, m in 0u64..(1 << 63)) {
            let a = DataSeq(a);
            proptest::prop_assert_eq!((a + n).offset_from(a), n);
            proptest::prop_assert_eq!((a + m) - a, m);
            proptest::prop_assert!((a + m) >= a);
            proptest::prop_assert_eq!(a.max(a + m), a + m);
            proptest::prop_assert_eq!(a.min(a + m), a);
        }

        #[test]
        fn extension_inverts_low32(a: u64, d in -(1i64 << 31)..(1i64 << 31)) {
            // Any DSN within 2^31 of the reference is recovered from its low half.
            let r = DataSeq(a);
            let v = DataSeq(a.wrapping_add(d as u64));
            proptest::prop_assert_eq!(DataSeq::extend(v.low32(), r), v);
        }
    }

    #[test]
    fn dsn_compare_wraps() {
        assert!(DataSeq(5) > DataSeq(u64::MAX - 5));
        assert_eq!(DataSeq(5) - DataSeq(u64::MAX - 5), 11);
    }
}
