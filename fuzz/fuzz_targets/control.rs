//! cargo-fuzz target `control`: the harness is `mptcp_tools::fuzzing::control`
//! (documented there), so that its crashers replay as ordinary tests in
//! tests/fuzz_regressions.rs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mptcp_tools::fuzzing::control(data));
