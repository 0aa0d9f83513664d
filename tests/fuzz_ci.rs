//! Coverage-guided fuzzing as part of the suite, on the stable toolchain:
//! `cargo fuzz build` once, then every target of `mptcp_tools::fuzzing` for
//! MPTCP_TOOLS_FUZZ_SECS seconds (default 10) from its corpus in
//! testdata/fuzz/TARGET/, with libFuzzer's per-input time budget and memory
//! limit. A crasher fails the test with the command that reproduces it; keep
//! it as testdata/fuzz/TARGET/crash-NAME so tests/fuzz_regressions.rs replays
//! it for good. Longer runs: MPTCP_TOOLS_FUZZ_SECS=3600, or fuzz/long.sh.
//!
//! Needs cargo-fuzz (`.ci/setup` installs it); without it the test fails
//! and says so: fuzzing in CI never skips silently.

use std::path::{Path, PathBuf};
use std::process::Command;

use mptcp_tools::fuzzing::TARGETS;

/// libFuzzer's limits per input: seconds, and megabytes of resident memory.
/// Inputs are at most 64 KiB, so a harness that needs more than this holds
/// memory out of proportion to its input.
const TIMEOUT_SECS: u32 = 10;
const RSS_LIMIT_MB: u32 = 1024;
const MAX_LEN: u32 = 65_536;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

fn secs() -> u32 {
    match std::env::var("MPTCP_TOOLS_FUZZ_SECS") {
        Ok(s) => s.parse().unwrap_or_else(|_| panic!("MPTCP_TOOLS_FUZZ_SECS={s:?} is not a number of seconds")),
        Err(_) => 10,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a corpus directory");
    for e in std::fs::read_dir(from).expect("the seed corpus") {
        let p = e.expect("an entry").path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).expect("a corpus copy");
        }
    }
}

#[test]
fn every_fuzz_target_runs_clean() {
    let version = cargo().args(["fuzz", "--version"]).output();
    assert!(
        version.as_ref().is_ok_and(|o| o.status.success()),
        "fuzzing in the suite needs cargo-fuzz: cargo install cargo-fuzz --version 0.13.2 --locked (.ci/setup does)"
    );
    // Sanitizer none: the stable toolchain; libFuzzer still guides by coverage.
    let build = cargo().args(["fuzz", "build", "-O", "-s", "none"]).output().expect("cargo fuzz build");
    assert!(build.status.success(), "cargo fuzz build failed:\n{}", String::from_utf8_lossy(&build.stderr));

    let secs = secs();
    let work = root().join("fuzz/target/ci");
    let _ = std::fs::remove_dir_all(&work);
    let mut failures = Vec::new();
    for (name, _) in TARGETS {
        let seeds = root().join("testdata/fuzz").join(name);
        let corpus = work.join("corpus").join(name);
        let artifacts = work.join("artifacts").join(name);
        copy_dir(&seeds, &corpus);
        std::fs::create_dir_all(&artifacts).expect("an artifacts directory");
        let out = cargo()
            .args(["fuzz", "run", "-O", "-s", "none", name])
            .arg(&corpus)
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            .arg(format!("-timeout={TIMEOUT_SECS}"))
            .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
            .arg(format!("-malloc_limit_mb={RSS_LIMIT_MB}"))
            .arg(format!("-max_len={MAX_LEN}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .output()
            .expect("cargo fuzz run");
        let log = String::from_utf8_lossy(&out.stderr);
        let runs = log.lines().rev().find(|l| l.starts_with("Done ")).unwrap_or("(no summary)").to_owned();
        eprintln!("{name}: {runs}");
        if !out.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            failures.push(format!(
                "{name} failed; reproduce with: cargo fuzz run -O -s none {name} {}/<artifact>; artifacts in {}\n{}",
                artifacts.display(),
                artifacts.display(),
                tail.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
