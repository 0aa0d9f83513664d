//! mptcp-ss -r: the view reconstructed from a capture carries what the
//! kernel's ss printed on the client during that capture
//! (testdata two-subflows-join.ss-client.txt): tokens, ids, flags, ssnoff.
mod common;

use common::{bin, testdata};
use serde_json::Value;

#[test]
fn replay_matches_the_client_ss() {
    let pcap = testdata().join("captures/pcap/two-subflows-join.pcap");
    let out =
        std::process::Command::new(bin("mptcp-ss")).arg("-r").arg(&pcap).args(["--once", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = &v["connections"][0];
    assert_eq!(c["source"], format!("capture:{}", pcap.display()));
    // ss (client): mptcp ... token:f4558206; tcp ... token:0000(id:0)/f4558206(id:0) ssnoff:f8bae334 (Mmec)
    // and tcp 10.77.2.1%c2:53087 ... token:c059bd1d(id:0)/f4558206(id:2) ssnoff:d3961704 (Jjec)
    assert_eq!((c["token"].as_str(), c["local"].as_str()), (Some("0xf4558206"), Some("10.77.1.1:49122")));
    let sf = c["subflows"].as_array().unwrap();
    assert_eq!(sf.len(), 2);
    let want = [
        ("10.77.1.1:49122", "Mmec", "0x00000000", 0, 0, 0xf8bae334u64),
        ("10.77.2.1:53087", "Jjec", "0xc059bd1d", 0, 2, 0xd3961704),
    ];
    for (s, (local, flags, rem, id_rem, id_loc, ssnoff)) in sf.iter().zip(want) {
        assert_eq!(s["local"], local);
        assert_eq!(s["flags"], flags, "{local}");
        assert_eq!(s["token_loc"], "0xf4558206", "{local}");
        assert_eq!(s["token_rem"], rem, "{local}");
        assert_eq!((s["id_rem"].as_u64(), s["id_loc"].as_u64()), (Some(id_rem), Some(id_loc)), "{local}");
        assert_eq!(s["ssnoff"].as_u64(), Some(ssnoff), "{local}");
    }
}

/// `mptcp-ss -r FILE --events`: the analysis' events, as the kernel's
/// path-manager vocabulary names them, with the frame that shows each.
#[test]
fn replay_events_name_the_frames() {
    let pcap = testdata().join("captures/pcap/remove-addr.pcap");
    let run = |json: bool| {
        let mut c = std::process::Command::new(bin("mptcp-ss"));
        c.arg("-r").arg(&pcap).args(["--events", "--speed", "1000"]);
        if json {
            c.arg("--json");
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(false);
    let kinds: Vec<&str> = text.lines().map(|l| l.split_whitespace().nth(3).unwrap_or("")).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "announced",
            "sub_established",
            "established",
            "sub_established",
            "removed",
            "sub_closed",
            "reinjection",
            "reinjection",
            "removed",
            "sub_closed",
            "closed",
            "sub_closed"
        ],
        "{text}"
    );
    assert!(
        text.contains(
            "frame 8        sub_established  0x789a6f4c 10.77.2.1:37665 -> 10.77.2.2:10000 ids 2/5 (MP_JOIN HMACs verified)"
        ),
        "{text}"
    );
    assert!(text.contains(
        "frame 4        announced        0x789a6f4c -> 10.77.2.2 id_rem 5 (ADD_ADDR from the server, HMAC ok)"
    ));
    assert!(text.contains("(RST from the server after RM_ADDR id 2 from the client)"), "{text}");
    let first: Value = serde_json::from_str(run(true).lines().next().unwrap()).unwrap();
    assert_eq!((first["kind"].as_str(), first["frame"].as_u64()), (Some("created"), Some(3)));
    assert_eq!(first["source"], format!("capture:{}", pcap.display()));
    assert_eq!(first["token"], "0x789a6f4c");
}
