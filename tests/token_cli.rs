//! mptcp-token against PROTOCOL.md's golden vectors and against values the
//! Linux kernel put on the wire in the bundled captures.
mod common;

use std::process::Command;

fn token(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(common::bin("mptcp-token")).args(args).output().expect("run mptcp-token");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8(out.stderr).expect("utf-8"),
    )
}

#[test]
fn golden_vectors_from_protocol_md() {
    let (rc, out, _) = token(&["0xbb206e3023b47a2d", "41923206b75835f5"]);
    assert_eq!(rc, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "key 0xbb206e3023b47a2d  token 0xb85a1ad2  idsn 1331650533424046586 (0x127af91ad1b321fa)");
    assert_eq!(lines[1], "key 0x41923206b75835f5  token 0x768f615c  idsn 1711754507747579631 (0x17c15fa7d0f7d6ef)");
    // The DSS of the 17th..32nd data bytes carries IDSN + 1 + 16.
    assert_eq!(1711754507747579631u64 + 1 + 16, 1711754507747579648);
}

#[test]
fn json_output() {
    let (rc, out, _) = token(&["--json", "0xbb206e3023b47a2d"]);
    assert_eq!(rc, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["token"], "0xb85a1ad2");
    assert_eq!(v["idsn"], 1331650533424046586u64);
    assert_eq!(v["idsn_hex"], "0x127af91ad1b321fa");
    assert_eq!(v["version"], 1);
}

/// two-subflows-join.pcap: client key A, server key B, and the MP_JOIN
/// exchange from 10.77.2.1 (tcpdump: `join id 2 token 0xc059bd1d nonce
/// 0x13fbfa0b`, `join id 0 hmac 0xd39221ae84e9bbe2 nonce 0x1aeb0e38`,
/// `join hmac 0x2a85ab0a...`).
const JOIN: [&str; 8] =
    ["join", "--key-a", "0xe3f862fede42546c", "--key-b", "0x1f68f07472879e3a", "--nonce-a", "0x13fbfa0b", "--nonce-b"];

#[test]
fn join_hmacs_match_the_kernel() {
    let mut args = JOIN.to_vec();
    args.extend([
        "0x1aeb0e38",
        "--expect-synack",
        "0xd39221ae84e9bbe2",
        "--expect-ack",
        "2a85ab0aada61f163dc23b049849eb414b718c15",
    ]);
    let (rc, out, err) = token(&args);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("token of B 0xc059bd1d"), "{out}");
    assert!(out.contains("0xd39221ae84e9bbe2  ok"), "{out}");
    assert!(out.contains("0x2a85ab0aada61f163dc23b049849eb414b718c15  ok"), "{out}");
    // JSON says the same.
    args.push("--json");
    let (rc, out, _) = token(&args);
    assert_eq!(rc, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["synack_ok"], true);
    assert_eq!(v["ack_ok"], true);
    assert_eq!(v["token_b"], "0xc059bd1d");
}

#[test]
fn join_mismatch_fails() {
    let mut args = JOIN.to_vec();
    // Swapped nonces: the HMACs change and the expected ones no longer match.
    args.extend(["0x13fbfa0b", "--expect-synack", "0xd39221ae84e9bbe2"]);
    let (rc, out, _) = token(&args);
    assert_eq!(rc, 1, "{out}");
    assert!(out.contains("MISMATCH (expected 0xd39221ae84e9bbe2)"), "{out}");
}

/// mptcp-v0.pcap (tcpdump's test suite, RFC 6824 with SHA-1).
#[test]
fn v0_join_and_idsn_match_the_capture() {
    let (rc, out, err) = token(&[
        "--v0",
        "join",
        "--key-a",
        "0x9c9eabd1e46a33b2",
        "--key-b",
        "0x967d2770b6960552",
        "--nonce-a",
        "0x1b665a18",
        "--nonce-b",
        "0x33abe9d5",
        "--expect-synack",
        "0x5ab680c7884af03d",
        "--expect-ack",
        "0xcb7b87f5e5f0502f43b535fb70ef6607df2e6c7a",
    ]);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("token of B 0xe47f0142"), "{out}");
    // The server's first data ACK is the client's IDSN + 1 (32 bits on the
    // wire in v0: `dss ack 3576348362`).
    let (_, out, _) = token(&["--v0", "--json", "0x9c9eabd1e46a33b2"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((v["idsn"].as_u64().unwrap() + 1) as u32, 3576348362);
}

/// add-addr-signal.pcap: the server (key 0x5c32...) announces id 5
/// 10.77.2.2 with `hmac 0x4c7e159318f1de85`.
#[test]
fn add_addr_hmac_matches_the_kernel() {
    let base = ["add-addr", "--key-sender", "0x5c3212923828b4ef", "--key-receiver", "0xb6efbdcdf9499c0b", "--id", "5"];
    let mut args = base.to_vec();
    args.extend(["--addr", "10.77.2.2", "--expect", "0x4c7e159318f1de85"]);
    let (rc, out, err) = token(&args);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.ends_with("0x4c7e159318f1de85  ok\n"), "{out}");
    // Keys swapped: a different HMAC, reported as a mismatch.
    let (rc, out, _) = token(&[
        "add-addr",
        "--key-sender",
        "0xb6efbdcdf9499c0b",
        "--key-receiver",
        "0x5c3212923828b4ef",
        "--id",
        "5",
        "--addr",
        "10.77.2.2",
        "--expect",
        "0x4c7e159318f1de85",
    ]);
    assert_eq!(rc, 1, "{out}");
    // A port changes the message (RFC 8684 §3.4.1).
    let mut args = base.to_vec();
    args.extend(["--addr", "10.77.2.2", "--port", "10100", "--json"]);
    let (rc, out, _) = token(&args);
    assert_eq!(rc, 0);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_ne!(v["hmac"], "0x4c7e159318f1de85");
    assert_eq!(v["port"], 10100);
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    for args in [
        &["zz"][..],
        &["0x1234567890abcdef0"],
        &["join", "--key-a", "1", "--key-b", "2", "--nonce-a", "123456789", "--nonce-b", "1"],
        &["join", "--key-a", "1", "--key-b", "2", "--nonce-a", "1", "--nonce-b", "1", "--expect-ack", "abc"],
        &["--v0", "add-addr", "--key-sender", "1", "--key-receiver", "2", "--id", "1", "--addr", "10.0.0.1"],
    ] {
        let (rc, out, err) = token(args);
        assert_eq!(rc, 2, "{args:?}: {out}{err}");
        assert!(out.is_empty());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("mptcp-token: "), "{err}");
    }
}

#[test]
fn a_misspelt_command_is_named_with_what_was_meant() {
    for (arg, meant) in [("jion", "join"), ("joni", "join"), ("addaddr", "add-addr"), ("add_addr", "add-addr")] {
        let (rc, out, err) = token(&[arg]);
        assert_eq!(rc, 2, "{arg}: {out}{err}");
        assert_eq!(err.trim(), format!("mptcp-token: unknown command `{arg}`: did you mean `{meant}`?"));
    }
    // A hex-looking key stays a key.
    let (rc, _, err) = token(&["abcdefab"]);
    assert_eq!(rc, 0, "{err}");
}

#[test]
fn help_example_is_the_output() {
    let (_, help, _) = token(&["--help"]);
    let (_, out, _) = token(&["0xbb206e3023b47a2d"]);
    assert!(help.contains(out.trim()), "the help's example is not what mptcp-token prints: {out}");
}
