//! Golden outputs of the analysis on every bundled capture:
//! testdata/expected/NAME.summary.txt (`--summary`) and NAME.jsonl
//! (`--json`). `MPTCP_TOOLS_BLESS=1 cargo test --test analysis_golden` rewrites them
//! after a deliberate change; review the diff.

mod analysis_util;

use analysis_util::*;

fn check(name: &str, got: &[u8]) {
    let path = testdata().join("expected").join(name);
    if std::env::var_os("MPTCP_TOOLS_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with MPTCP_TOOLS_BLESS=1 to create)", path.display()));
    if want != got {
        let (w, g) = (String::from_utf8_lossy(&want), String::from_utf8_lossy(got));
        let line =
            w.lines().zip(g.lines()).position(|(a, b)| a != b).unwrap_or(w.lines().count().min(g.lines().count()));
        panic!(
            "{name} differs from the golden file at line {}:\n  want: {}\n  got:  {}",
            line + 1,
            w.lines().nth(line).unwrap_or("<end>"),
            g.lines().nth(line).unwrap_or("<end>")
        );
    }
}

#[test]
fn summaries_and_json_match_golden_files() {
    for cap in captures() {
        let name = stem(&cap);
        let frames = frames(&cap);
        let (notes, report) = analyse(&frames);
        let json = jsonl(&frames, &notes);
        // Every line is one valid JSON object.
        for (i, line) in json.split(|b| *b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            let v: serde_json::Value = serde_json::from_slice(line).unwrap_or_else(|e| {
                panic!("{name} frame {}: invalid JSON: {e}\n{}", i + 1, String::from_utf8_lossy(line))
            });
            assert_eq!(v["frame"], i as u64 + 1, "{name}");
        }
        check(&format!("{name}.jsonl"), &json);
        check(&format!("{name}.summary.txt"), &summary_text(&report));
        if std::env::var_os("NOTES").is_some() {
            std::fs::write(std::env::temp_dir().join(format!("{name}.notes.txt")), note_lines(&notes)).unwrap();
        }
    }
}

#[test]
fn summary_path_gives_the_same_report() {
    use mptcp_tools::dissect::analysis::{Analyzer, AnalyzerOptions};
    for cap in captures() {
        let frames = frames(&cap);
        let (_, full) = analyse(&frames);
        let mut a = Analyzer::new(AnalyzerOptions::default());
        for (m, f) in &frames {
            a.observe_frame(m, f);
        }
        assert_eq!(a.finish(), full, "{}", stem(&cap));
    }
}

#[test]
fn snaplen_128_keeps_the_analysis_and_says_what_it_could_not_check() {
    use mptcp_tools::dissect::analysis::VerdictKind;
    for cap in captures() {
        let frames = frames(&cap);
        let (_, full) = analyse(&frames);
        let cut: Vec<_> = frames
            .iter()
            .map(|(m, f)| {
                let mut m = *m;
                m.caplen = m.caplen.min(128);
                (m, f[..f.len().min(128)].to_vec())
            })
            .collect();
        let (_, short) = analyse(&cut);
        let name = stem(&cap);
        assert_eq!(short.connections.len(), full.connections.len(), "{name}");
        for (s, f) in short.connections.iter().zip(&full.connections) {
            assert_eq!(s.tokens, f.tokens, "{name}");
            assert_eq!(s.data_bytes, f.data_bytes, "{name}");
            let keep =
                |v: &&mptcp_tools::dissect::analysis::Verdict| !matches!(v.kind, VerdictKind::ChecksumFailed { .. });
            assert_eq!(
                s.verdicts.iter().filter(keep).collect::<Vec<_>>(),
                f.verdicts.iter().filter(keep).collect::<Vec<_>>(),
                "{name}"
            );
            for (ss, fs) in s.subflows.iter().zip(&f.subflows) {
                assert_eq!((ss.bytes, ss.reinjected), (fs.bytes, fs.reinjected), "{name}");
            }
            // Checksums over cut payloads are not verified, and counted as
            // such; bare DATA_FINs and payloads that fit in 128 bytes still verify.
            assert_eq!(s.csum.total(), f.csum.total(), "{name}");
            assert_eq!(s.csum.bad, 0, "{name}");
            if name == "checksum" || name == "mp-fail-reset" {
                assert!(s.csum.unverified >= 18, "{name}: {:?}", s.csum);
            }
        }
        if name == "checksum" {
            let text = String::from_utf8(summary_text(&short)).unwrap();
            assert!(text.contains("payload cut by the snaplen"), "{text}");
        }
    }
}
