//! `mptcp-cat --sim` through its library entry point: stdin in, stdout out,
//! statistics on stderr, in virtual time.

mod common;

use clap::Parser;
use mptcp_tools::cli::cat::sim_mode::{SimArgs, SimReport, run};
use sha2::{Digest, Sha256};

fn sim(argv: &[&str], input: &[u8]) -> (Vec<u8>, String, anyhow::Result<SimReport>) {
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
    let input = common::pseudo_random_bytes(8 << 20, 0x9e3779b97f4a7c15);
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
    let input = common::pseudo_random_bytes(20 << 20, 0x9e3779b97f4a7c15);
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

/// The pcap of a run decodes in tshark with no malformed packet and no
/// error-level expert info. (mptcp-dump's HMAC verification of the same file
/// is `pcap_hmacs_verify_in_mptcp_dump`, enabled once the analysis lands.)
#[test]
fn pcap_decodes_cleanly_in_tshark() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sim.pcap");
    let input = common::pseudo_random_bytes(1 << 20, 0x9e3779b97f4a7c15);
    let (out, stats, r) = sim(
        &[
            "--pcap",
            pcap.to_str().unwrap(),
            "--path",
            "rate=20mbit,delay=5ms,loss=1%",
            "--path",
            "rate=20mbit,delay=8ms",
            "--signal",
        ],
        &input,
    );
    r.unwrap_or_else(|e| panic!("{e}\n{stats}"));
    assert_eq!(out.len(), input.len());
    let tshark = std::process::Command::new("tshark")
        .args([
            "-n",
            "-r",
            pcap.to_str().unwrap(),
            "-o",
            "mptcp.analyze_mappings:TRUE",
            "-o",
            "tcp.analyze_sequence_numbers:TRUE",
        ])
        .args([
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "_ws.expert.severity",
            "-e",
            "_ws.malformed",
            "-e",
            "tcp.option_kind",
        ])
        .output()
        .expect("tshark is installed (.ci/run installs it)");
    assert!(tshark.status.success(), "tshark failed: {}", String::from_utf8_lossy(&tshark.stderr));
    let text = String::from_utf8(tshark.stdout).unwrap();
    let frames = text.lines().count();
    assert!(frames > 500, "{frames} frames");
    // Severity values: 8388608 error, 6291456 warning, 4194304 note, 2097152 chat.
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert!(!f.get(1).is_some_and(|s| s.split(',').any(|v| v == "8388608")), "error-level expert info: {line}");
        assert!(f.get(2).is_none_or(|s| s.is_empty()), "malformed: {line}");
    }
    let mptcp_frames =
        text.lines().filter(|l| l.split('\t').nth(3).is_some_and(|s| s.split(',').any(|k| k == "30"))).count();
    assert!(mptcp_frames * 10 > frames * 9, "MPTCP options in most frames: {mptcp_frames}/{frames}");
}

/// mptcp-dump verifies every MP_JOIN and ADD_ADDR HMAC of a sim capture.
#[test]
fn pcap_hmacs_verify_in_mptcp_dump() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("sim.pcap");
    let input = common::pseudo_random_bytes(1 << 20, 0x9e3779b97f4a7c15);
    let (_, stats, r) = sim(
        &[
            "--pcap",
            pcap.to_str().unwrap(),
            "--signal",
            "--path",
            "rate=20mbit,delay=5ms",
            "--path",
            "rate=20mbit,delay=5ms",
            "--path",
            "rate=20mbit,delay=5ms",
        ],
        &input,
    );
    r.unwrap_or_else(|e| panic!("{e}\n{stats}"));
    let out = std::process::Command::new(common::bin("mptcp-dump")).arg("--summary").arg(&pcap).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    // "hmacs: verified N of M": two joins (SYN/ACK and ACK HMACs each) and
    // the announced addresses, every one verified.
    let line = text.lines().find(|l| l.trim_start().starts_with("hmacs:")).unwrap_or_else(|| panic!("{text}"));
    let nums: Vec<u64> = line.split(|c: char| !c.is_ascii_digit()).filter_map(|w| w.parse().ok()).collect();
    assert!(nums.len() >= 2 && nums[0] == nums[1] && nums[1] >= 4, "not every HMAC verified: {line}\n{text}");
    for bad in ["mismatch", "invalid", "failed", "bad hmac"] {
        assert!(!text.contains(bad), "HMAC problem ({bad}):\n{text}");
    }
}

/// `mptcp-cat --sim < /dev/null`: nothing to send. The client's DATA_FIN
/// waits for the server to confirm its key, so the client repeats its
/// MP_CAPABLE third ACK, the server answers it with a DATA_ACK (RFC 8684
/// §3.1), and both DATA_FINs follow: done in a few round trips, not after
/// the virtual hour of repeated third ACKs it once took.
#[test]
fn empty_input_ends_in_a_few_round_trips() {
    let (out, stats, r) = sim(&["--path", "rate=50mbit,delay=10ms"], b"");
    let r = r.unwrap_or_else(|e| panic!("{e}\n{stats}"));
    assert!(out.is_empty());
    assert!(r.mptcp, "{stats}");
    // One path of 10 ms each way: the handshake, the repeated third ACK
    // and its answer, the two DATA_FINs: about 4 RTTs.
    let secs: f64 = stats
        .split_whitespace()
        .skip_while(|w| *w != "in")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {stats}"));
    assert!(secs < 0.2, "took {secs} s of virtual time:\n{stats}");
}
