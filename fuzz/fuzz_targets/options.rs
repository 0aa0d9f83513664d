//! The option codec on arbitrary bytes: parse never panics; every option it
//! accepts emits to bytes that parse to the same option; every error points
//! inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mptcp_tools::dissect::options::{parse_mptcp, parse_options};

fuzz_target!(|data: &[u8]| {
    let mut walked = 0usize;
    for item in parse_options(data) {
        match item {
            Ok(opt) => {
                walked += opt.buffer_len();
                let mut buf = [0u8; 64];
                let n = opt.emit(&mut buf);
                assert_eq!(n, opt.buffer_len());
                let again = parse_options(&buf[..n]).next().expect("one option");
                assert_eq!(again, Ok(opt));
            }
            Err(e) => {
                assert!(e.offset + e.raw.len() <= data.len());
                walked = if e.is_framing() { data.len() } else { walked + e.raw.len() };
            }
        }
        assert!(walked <= data.len());
    }
    // The MPTCP body parser on its own, with a framed length.
    if data.len() >= 3 && data.len() <= 40 {
        let mut whole = data.to_vec();
        whole[0] = 30;
        whole[1] = whole.len() as u8;
        if let Ok(m) = parse_mptcp(&whole) {
            assert_eq!(m.buffer_len(), whole.len());
        }
    }
});
