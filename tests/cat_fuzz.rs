//! The embedded stack takes anything the network sends: the fuzz target's
//! harness (`stack::fuzz::run`) under proptest, with random scripts
//! and with scripts biased towards well-formed operations. No root needed.

use mptcp_tools::stack::fuzz;
use proptest::prelude::*;

/// One operation of the harness's script, with room for its arguments.
fn op() -> impl Strategy<Value = Vec<u8>> {
    (0u8..7, prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(code, mut args)| {
        args.insert(0, code);
        args
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_do_not_break_a_listening_stack(data in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = fuzz::run(&data);
    }

    #[test]
    fn scripted_operations_do_not_break_a_listening_stack(ops in prop::collection::vec(op(), 0..40)) {
        let data: Vec<u8> = ops.concat();
        let _ = fuzz::run(&data);
    }
}

#[test]
fn the_harness_reaches_an_established_connection() {
    // Data with a DSS mapping, the application reads it, writes, closes:
    // the harness must get this far for the fuzzing to mean anything.
    let mut s = vec![2u8, 0, 0, 0, 0, 0, 100, 0, 0, 0, 0, 0];
    s.extend(std::iter::repeat_n(0x41, 100));
    s.extend_from_slice(&[5, 0, 5, 9, 5, 2, 4, 50]);
    let o = fuzz::run(&s);
    assert!(o.accepted, "{o:?}");
    assert_eq!(o.delivered, 100, "{o:?}");
    assert!(o.packets_out >= 3, "{o:?}");
}

/// Inputs the fuzz target found; each once made the stack panic.
#[test]
fn fuzz_regressions() {
    // A DSS with DATA_FIN and a data-level length of 0 (1 - 1 underflowed).
    let _ = fuzz::run(&[0x41, 0, 0, 0, 0, 0, 0, 0, 0x0b, 0x0b, 0xff, 0x0b]);
}
