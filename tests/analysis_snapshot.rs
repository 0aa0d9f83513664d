//! `Analyzer::snapshot` against the kernel's own view: the captures
//! `single-subflow` and `two-subflows-join` come with `ss -ntiM` taken by the
//! client during the transfer (testdata/captures/pcap/*.ss-client.txt). Fed
//! the capture up to the moment ss ran, the snapshot must show what ss
//! showed for each subflow: flags (but `v`, which follows what the
//! application has read, not the wire), tokens, address ids, ssnoff, and the
//! current mapping (seq, sfseq, maplen).

mod analysis_util;

use analysis_util::*;
use mptcp_tools::dissect::analysis::{Analyzer, AnalyzerOptions};
use mptcp_tools::dissect::packet::decode;

/// One subflow line of ss: local address and its `tcp-ulp-mptcp` fields.
#[derive(Debug)]
struct SsSubflow {
    local: String,
    fields: Vec<(String, String)>,
}

/// (unix time, subflows) for each snapshot in an ss file.
fn parse_ss(text: &str) -> Vec<(f64, Vec<SsSubflow>)> {
    let mut out: Vec<(f64, Vec<SsSubflow>)> = Vec::new();
    let mut local = None;
    for line in text.lines() {
        if let Some(t) = line.split("unix time ").nth(1) {
            out.push((t.trim().parse().unwrap(), Vec::new()));
        } else if line.starts_with("tcp ") {
            // "tcp ESTAB 0 0 10.77.2.1%c2:53087 10.77.1.2:10000"
            let l = line.split_whitespace().nth(4).unwrap();
            local = Some(match l.split_once('%') {
                Some((a, rest)) => format!("{a}:{}", rest.rsplit(':').next().unwrap()),
                None => l.to_string(),
            });
        } else if let Some(ulp) = line.split("tcp-ulp-mptcp ").nth(1) {
            let fields = ulp
                .split_whitespace()
                .filter_map(|kv| kv.split_once(':').map(|(k, v)| (k.to_string(), v.to_string())))
                .collect();
            out.last_mut().unwrap().1.push(SsSubflow { local: local.take().unwrap(), fields });
        }
    }
    out
}

#[test]
fn snapshot_matches_ss_on_the_client() {
    let mut compared = 0;
    for name in ["single-subflow", "two-subflows-join"] {
        let dir = testdata().join("captures/pcap");
        let ss = parse_ss(&std::fs::read_to_string(dir.join(format!("{name}.ss-client.txt"))).unwrap());
        let frames = frames(&dir.join(format!("{name}.pcap")));
        assert!(!ss.is_empty());
        for (t, subflows) in ss {
            let mut a = Analyzer::new(AnalyzerOptions::default());
            for (m, f) in frames.iter().take_while(|(m, _)| m.ts() <= t) {
                a.observe(m, &decode(m.linktype, f));
            }
            let snap = a.snapshot("capture:test");
            let conn = &snap.connections[0];
            assert_eq!(conn.subflows.len(), subflows.len(), "{name} at {t}");
            for want in subflows {
                let got =
                    conn.subflows.iter().find(|s| s.local == want.local).unwrap_or_else(|| {
                        panic!("{name} at {t}: no subflow from {} in {:?}", want.local, conn.subflows)
                    });
                let f = |k: &str| want.fields.iter().find(|(x, _)| x == k).map(|(_, v)| v.clone()).unwrap();
                assert_eq!(got.flags, f("flags").replace('v', ""), "{name} at {t} {}", want.local);
                // token:REM(id:R)/LOC(id:L)
                let tok = f("token");
                let (rem, loc) = tok.split_once('/').unwrap();
                let parse = |s: &str| {
                    let (t, id) = s.split_once("(id:").unwrap();
                    (u32::from_str_radix(t, 16).unwrap(), id.trim_end_matches(')').parse::<u8>().unwrap())
                };
                let (tr, ir) = parse(rem);
                let (tl, il) = parse(loc);
                assert_eq!(got.token_rem, format!("{tr:#010x}"), "{name} at {t}");
                assert_eq!(got.token_loc, format!("{tl:#010x}"), "{name} at {t}");
                assert_eq!((got.id_rem, got.id_loc), (ir, il), "{name} at {t}");
                let hex = |k: &str| u64::from_str_radix(&f(k), 16).unwrap();
                assert_eq!(got.ssnoff as u64, hex("ssnoff"), "{name} at {t}");
                assert_eq!(
                    (got.seq, got.sfseq as u64, got.maplen as u64),
                    (hex("seq"), hex("sfseq"), hex("maplen")),
                    "{name} at {t} {}",
                    want.local
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 5);
}
