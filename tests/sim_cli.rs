//! `mptcp-cat --sim` through its library entry point: stdin in, stdout out,
//! statistics on stderr, in virtual time.

use clap::Parser;
use mptcp_tools::cli::cat_sim::{SimArgs, run};
use sha2::{Digest, Sha256};

fn data(n: usize) -> Vec<u8> {
    let mut x = 0x9e3779b97f4a7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn sim(argv: &[&str], input: &[u8]) -> (Vec<u8>, String, anyhow::Result<mptcp_tools::cli::cat_sim::SimReport>) {
    let mut full = vec!["mptcp-cat", "--sim"];
    full.extend_from_slice(argv);
    let args = SimArgs::try_parse_from(full).unwrap();
    let mut src = input;
    let mut out = Vec::new();
    let mut err = Vec::new();
    let r = run(&args, &mut src, &mut out, &mut err);
    (out, String::from_utf8(err).unwrap(), r)
}

#[test]
fn default_two_clean_paths() {
    let input = data(8 << 20);
    let (out, stats, r) = sim(&[], &input);
    eprintln!("{stats}");
    let r = r.unwrap();
    assert_eq!(Sha256::digest(&out), Sha256::digest(&input));
    assert!(r.mptcp);
    assert_eq!(r.subflows.len(), 2);
    assert!(stats.contains("goodput"), "{stats}");
}

#[test]
fn path_down_mid_transfer() {
    let input = data(20 << 20);
    let (out, stats, r) = sim(
        &["--path", "rate=50mbit,delay=20ms,queue=100", "--path", "rate=50mbit,delay=20ms,queue=100,down=1s-3s", "-v"],
        &input,
    );
    eprintln!("{stats}");
    r.unwrap();
    assert_eq!(Sha256::digest(&out), Sha256::digest(&input));
}

#[test]
fn bad_path_spec_names_the_token() {
    let e = SimArgs::try_parse_from(["mptcp-cat", "--sim", "--path", "rate=50mbit,delay=soon"]).unwrap_err();
    assert!(e.to_string().contains("delay=soon"), "{e}");
}
