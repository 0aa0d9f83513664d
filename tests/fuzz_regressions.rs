//! Every input kept under testdata/fuzz/TARGET/ (the seeds, and every crasher
//! a fuzzer ever found, named `crash-*` or after the defect) replayed through
//! its harness in `mptcp_tools::fuzzing`, without cargo-fuzz: no panic, and
//! each input done within a time budget. The harnesses carry the promises
//! (bounded output, frames, events, replay time and buffered bytes).

use std::path::Path;
use std::time::{Duration, Instant};

use mptcp_tools::fuzzing::TARGETS;

/// Per input, in a debug build, on a loaded CI machine: generous, yet far
/// below what the defects took (years of replay, minutes of analysis).
const BUDGET: Duration = Duration::from_secs(20);

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fuzz").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (every fuzz target keeps a corpus there)", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).expect("a corpus file")))
        .collect()
}

#[test]
fn every_target_replays_its_corpus_within_budget() {
    let mut failures = Vec::new();
    for (name, run) in TARGETS {
        let inputs = corpus(name);
        assert!(!inputs.is_empty(), "testdata/fuzz/{name}/ holds no input");
        for (file, data) in inputs {
            let started = Instant::now();
            let outcome = std::panic::catch_unwind(|| run(&data));
            let took = started.elapsed();
            match outcome {
                Err(_) => failures.push(format!("{name}/{file}: panicked")),
                Ok(()) if took > BUDGET => failures.push(format!("{name}/{file}: took {took:?}")),
                Ok(()) => {}
            }
        }
    }
    assert!(failures.is_empty(), "fuzz regressions:\n{}", failures.join("\n"));
}

#[test]
fn every_target_has_a_fuzz_target_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in TARGETS {
        let file = dir.join("fuzz_targets").join(format!("{name}.rs"));
        let body = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            body.contains(&format!("mptcp_tools::fuzzing::{name}(")),
            "{} does not call its harness",
            file.display()
        );
        assert!(manifest.contains(&format!("name = \"{name}\"")), "fuzz/Cargo.toml has no [[bin]] {name}");
    }
}
