//! Golden outputs: `mptcp-dump FILE` on every bundled capture equals
//! testdata/expected/NAME.txt. Regenerate deliberately with
//! `MPTCP_TOOLS_BLESS=1 cargo test --test dump_golden` and review the diff.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn captures() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in ["pcap", "tcpdump-tests"] {
        let d = common::testdata().join("captures").join(dir);
        for e in std::fs::read_dir(&d).expect("testdata") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "pcap") {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

fn dump(file: &Path) -> String {
    let out = Command::new(common::bin("mptcp-dump"))
        .arg(file)
        // tcpdump prints local time; the expected files are UTC.
        .env("TZ", "UTC")
        .output()
        .expect("run mptcp-dump");
    assert!(out.status.success(), "{file:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn expected_outputs() {
    let update = std::env::var_os("MPTCP_TOOLS_BLESS").is_some_and(|v| v == "1");
    let dir = common::testdata().join("expected");
    let mut mismatched = Vec::new();
    let files = captures();
    assert!(files.len() >= 18, "bundled captures missing: {files:?}");
    for file in files {
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let expected_path = dir.join(format!("{name}.txt"));
        let ours = dump(&file);
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&expected_path, &ours).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{expected_path:?}: {e} (MPTCP_TOOLS_BLESS=1 writes it)"));
        if ours != expected {
            let first = ours
                .lines()
                .zip(expected.lines())
                .enumerate()
                .find(|(_, (a, b))| a != b)
                .map(|(i, (a, b))| format!("line {}:\n  now:      {a}\n  expected: {b}", i + 1))
                .unwrap_or_else(|| {
                    format!("{} lines now, {} expected", ours.lines().count(), expected.lines().count())
                });
            mismatched.push(format!("{name}: {first}"));
        }
    }
    assert!(mismatched.is_empty(), "outputs changed (MPTCP_TOOLS_BLESS=1 to accept):\n{}", mismatched.join("\n"));
}
