//! Golden outputs of the analysis on every bundled capture:
//! testdata/expected/NAME.summary.txt (`--summary`) and NAME.jsonl
//! (`--json`). `BLESS=1 cargo test --test analysis_golden` rewrites them
//! after a deliberate change; review the diff.

mod analysis_util;

use analysis_util::*;

fn check(name: &str, got: &[u8]) {
    let path = testdata().join("expected").join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1 to create)", path.display()));
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
