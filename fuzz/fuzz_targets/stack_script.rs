//! Scripted network input to a listening embedded stack: a valid MPTCP peer
//! opens a connection, then fuzzed segments, DSS mappings, joins, MPTCP
//! options, timers and application calls follow (the script is described in
//! `mptcp_tools::stack::fuzz`). No panic, no runaway, nothing emitted
//! that our own parser rejects.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mptcp_tools::stack::fuzz::run(data);
});
