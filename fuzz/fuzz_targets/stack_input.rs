//! Random network input to a listening embedded stack: no panic, no
//! runaway, nothing emitted that our own parser rejects. The input is the
//! script described in `mptcp_tools::stack::driver::fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mptcp_tools::stack::driver::fuzz::run(data);
});
