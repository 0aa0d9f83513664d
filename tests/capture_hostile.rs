//! Crafted captures through both tools' command lines: timestamps that jump
//! (a first frame at 0, then 1.7e9 s), pcapng Simple Packet Blocks before
//! timestamped ones, a binary `if_tsresol`, `if_tsoffset` near ±2^63 and
//! huge timestamps, files cut mid-record, and pcapng block lengths that lie.
//! Every run finishes in bounded time without a panic; a file read to its
//! end exits 0, one cut short shows what was read, says why once, and
//! exits 1 (as tcpdump does).
mod capture_files;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use capture_files::{Case, Expect, cases};
use serde_json::Value;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run `tool` with `args` (TZ=UTC), failing the test past `secs` seconds.
fn run(tool: &str, args: &[&str], secs: u64) -> Output {
    let child = Command::new(common::bin(tool))
        .args(args)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    common::finish(child, &format!("{tool} {}", args.join(" ")), secs)
}

fn write_cases(dir: &Path) -> Vec<(Case, PathBuf)> {
    cases()
        .into_iter()
        .map(|c| {
            let p = dir.join(c.name);
            std::fs::write(&p, &c.bytes).unwrap();
            (c, p)
        })
        .collect()
}

/// The exit status and stderr a run must end with; `lines` is what it
/// printed, one per frame for the per-frame modes.
fn check(case: &Case, what: &str, out: &Output, frames_out: Option<usize>) {
    let err = text(&out.stderr);
    assert!(!err.contains("panicked"), "{} {what}: {err}", case.name);
    match case.expect {
        Expect::Whole => {
            assert_eq!(out.status.code(), Some(0), "{} {what}: {err}", case.name);
            if let Some(n) = frames_out {
                assert_eq!(n, 14, "{} {what}", case.name);
            }
        }
        Expect::Cut { frames, what: why } => {
            assert_eq!(out.status.code(), Some(1), "{} {what}: {err}", case.name);
            assert_eq!(err.lines().count(), 1, "{} {what}: one line: {err}", case.name);
            assert!(err.contains(why) && err.contains(case.name), "{} {what}: {err}", case.name);
            if let Some(n) = frames_out {
                assert_eq!(n, frames, "{} {what}: the frames before the fault are shown", case.name);
            }
        }
    }
}

#[test]
fn mptcp_dump_on_crafted_captures() {
    let dir = tempfile::tempdir().unwrap();
    for (case, path) in write_cases(dir.path()) {
        let p = path.to_str().unwrap();
        for mode in [&[][..], &["-tt"], &["-ttt"], &["-tttt"], &["-ttttt"], &["-v", "-#"], &["--json"]] {
            let mut args = mode.to_vec();
            args.push(p);
            let out = run("mptcp-dump", &args, 30);
            // -v continues a frame's line on the next.
            let lines = (mode != ["-v", "-#"]).then(|| text(&out.stdout).lines().count());
            check(&case, &args.join(" "), &out, lines);
            if mode == ["--json"] {
                for l in text(&out.stdout).lines() {
                    serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", case.name));
                }
            }
        }
        let out = run("mptcp-dump", &["--summary", p], 30);
        check(&case, "--summary", &out, None);
        if case.expect == Expect::Whole || matches!(case.expect, Expect::Cut { frames, .. } if frames > 0) {
            assert!(text(&out.stdout).contains("frames,"), "{}: {}", case.name, text(&out.stdout));
        }
    }
}

/// The JSON `ts` of each frame of a file.
fn json_ts(path: &Path) -> Vec<Value> {
    let out = run("mptcp-dump", &["--json", path.to_str().unwrap()], 30);
    text(&out.stdout).lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["ts"].clone()).collect()
}

/// The `ts` field as written (serde_json would round it to an f64).
fn json_ts_text(path: &Path) -> Vec<String> {
    let out = run("mptcp-dump", &["--json", path.to_str().unwrap()], 30);
    text(&out.stdout)
        .lines()
        .map(|l| {
            let at = l.find("\"ts\":").unwrap() + 5;
            l[at..].split([',', '}']).next().unwrap().to_string()
        })
        .collect()
}

#[test]
fn crafted_timestamps_as_printed() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_cases(dir.path());
    let path = |name: &str| files.iter().find(|(c, _)| c.name == name).unwrap().1.clone();

    let ts = json_ts_text(&path("first-at-zero.pcap"));
    assert_eq!((ts[0].as_str(), ts[1].as_str()), ("0.000000", "1700000000.010000"));
    let out = run("mptcp-dump", &["-tt", path("first-at-zero.pcap").to_str().unwrap()], 30);
    let lines: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    assert!(lines[0].starts_with("0.000000 IP ") && lines[1].starts_with("1700000000.010000 IP "), "{lines:?}");

    // No time before the first timestamped frame; the neighbour's after.
    let p = path("spb-first.pcapng");
    let ts = json_ts(&p);
    assert_eq!((&ts[0], &ts[1]), (&Value::Null, &Value::Null));
    assert_eq!(ts[12], ts[11], "an SPB takes the time of the frame before it");
    assert!(ts[2].as_f64().unwrap() > 1.7e9);
    for t in ["-tt", "-ttt", "-tttt", "-ttttt"] {
        let out = run("mptcp-dump", &[t, p.to_str().unwrap()], 30);
        let first = text(&out.stdout).lines().next().unwrap().to_string();
        assert!(first.starts_with("[no timestamp] IP 10.77.1.1."), "{t}: {first}");
    }
    let out = run("mptcp-dump", &["-ttttt", p.to_str().unwrap()], 30);
    let third = text(&out.stdout).lines().nth(2).unwrap().to_string();
    assert!(third.starts_with(" 00:00:00.000000 IP "), "the first frame with a time is the reference: {third}");

    let ts = json_ts_text(&path("binary-resol.pcapng"));
    assert_eq!(
        (ts[0].as_str(), ts[1].as_str(), ts[13].as_str()),
        ("1700000000.000000", "1700000000.250000", "1700000003.250000")
    );

    let ts = json_ts_text(&path("offset-near-max.pcapng"));
    assert_eq!(ts[0], "9223372036854775802.000000");
    assert_eq!(ts[13], "9223372036854775807.999999999", "saturated, not wrapped");
    let ts = json_ts_text(&path("offset-near-min.pcapng"));
    assert_eq!((ts[0].as_str(), ts[1].as_str()), ("-9223372036854775805.000000", "-9223372036854775805.500000"));
    let ts = json_ts_text(&path("offset-span.pcapng"));
    assert_eq!((ts[0].as_str(), ts[1].as_str()), ("-9223372036854775808.000000", "9223372036854775807.000000"));
    let ts = json_ts_text(&path("huge-timestamps.pcapng"));
    assert_eq!(
        (ts[0].as_str(), ts[1].as_str(), ts[2].as_str()),
        ("9223372036854775807.999999999", "0.000000", "0.000000")
    );
}

/// tshark reads the binary resolution and the byte order as we do.
#[test]
fn binary_resolution_agrees_with_tshark() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_cases(dir.path());
    let p = &files.iter().find(|(c, _)| c.name == "binary-resol.pcapng").unwrap().1;
    let out = Command::new("tshark")
        .args(["-r", p.to_str().unwrap(), "-T", "fields", "-e", "frame.time_epoch"])
        .output()
        .expect("tshark (Wireshark's command line) on PATH");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let theirs: Vec<(i64, u32)> = text(&out.stdout).lines().map(split_secs).collect();
    let ours: Vec<(i64, u32)> = json_ts_text(p).iter().map(|s| split_secs(s)).collect();
    assert_eq!(ours.len(), 14);
    assert_eq!(ours, theirs);
}

/// "S.F" as seconds and nanoseconds.
fn split_secs(s: &str) -> (i64, u32) {
    let (a, b) = s.trim().split_once('.').unwrap();
    (a.parse().unwrap(), format!("{b:0<9}")[..9].parse().unwrap())
}

#[test]
fn mptcp_ss_on_crafted_captures() {
    let dir = tempfile::tempdir().unwrap();
    for (case, path) in write_cases(dir.path()) {
        let p = path.to_str().unwrap();
        let out = run("mptcp-ss", &["-r", p, "--once"], 30);
        check(&case, "--once", &out, None);
        let out = run("mptcp-ss", &["-r", p, "--once", "--json"], 30);
        check(&case, "--once --json", &out, None);
        if case.expect == Expect::Whole || matches!(case.expect, Expect::Cut { frames, .. } if frames > 0) {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(v["connections"].as_array().map(Vec::len), Some(1), "{}: {v}", case.name);
        }
        // Fast, so that every case runs in a moment; the pace itself is
        // tested in capture_replay.rs and below.
        for json in [false, true] {
            let mut args = vec!["-r", p, "--events", "--speed", "50"];
            if json {
                args.push("--json");
            }
            let out = run("mptcp-ss", &args, 30);
            let err = text(&out.stderr);
            // A replay whose gaps were shortened says so (a warning line
            // besides the error, if any).
            let is_gap = |l: &&str| l.contains("in the capture") && l.contains("shortened");
            let gap_lines = err.lines().filter(is_gap).count();
            let without = err.lines().filter(|l| !is_gap(l)).collect::<Vec<_>>().join("\n");
            let rest = Output { status: out.status, stdout: out.stdout.clone(), stderr: without.into_bytes() };
            check(&case, &args.join(" "), &rest, None);
            let jumps = ["first-at-zero.pcap", "offset-span.pcapng", "huge-timestamps.pcapng"];
            assert_eq!(gap_lines, usize::from(jumps.contains(&case.name)), "{}: {err}", case.name);
            if json && case.expect == Expect::Whole {
                let ats: Vec<f64> = text(&out.stdout)
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap()["at"].as_f64().unwrap())
                    .collect();
                assert!(!ats.is_empty(), "{}: events", case.name);
                // At most 1 s per gap: 14 frames are within 14 s of the first.
                assert!(ats.iter().all(|a| (0.0..=14.0).contains(a)), "{}: {ats:?}", case.name);
            }
        }
    }
}

/// The replay at the capture's own pace (speed 1) of a capture whose first
/// frame is at 0 and the next 1.7e9 s later: it used to wait for 54 years;
/// now the gap is one second and the whole replay a little more.
#[test]
fn replay_at_speed_one_of_a_jumping_clock_ends() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_cases(dir.path());
    let p = &files.iter().find(|(c, _)| c.name == "first-at-zero.pcap").unwrap().1;
    let start = std::time::Instant::now();
    let out = run("mptcp-ss", &["-r", p.to_str().unwrap(), "--events"], 20);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(start.elapsed() >= std::time::Duration::from_secs(1), "the shortened gap is still waited for");
    let err = text(&out.stderr);
    assert!(err.contains("gap of 1700000000 s in the capture shortened to 1 s (before frame 2)"), "{err}");
    let kinds: Vec<String> =
        text(&out.stdout).lines().map(|l| l.split_whitespace().nth(3).unwrap_or("").to_string()).collect();
    assert!(kinds.contains(&"created".to_string()) && kinds.contains(&"closed".to_string()), "{kinds:?}");
}

/// Standard input is read by the same reader: a lying length is caught
/// there too, without a buffer of that length.
#[test]
fn hostile_pcapng_on_standard_input() {
    for name in ["length-past-end.pcapng", "length-huge.pcapng", "spb-first.pcapng"] {
        let case = cases().into_iter().find(|c| c.name == name).unwrap();
        let mut child = Command::new(common::bin("mptcp-dump"))
            .args(["-r", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let bytes = case.bytes.clone();
        let feeder = std::thread::spawn(move || {
            use std::io::Write;
            let _ = stdin.write_all(&bytes);
        });
        let out = common::finish(child, name, 30);
        feeder.join().unwrap();
        let err = text(&out.stderr);
        let lines = text(&out.stdout).lines().count();
        match case.expect {
            Expect::Whole => assert_eq!((out.status.code(), lines), (Some(0), 14), "{name}: {err}"),
            Expect::Cut { frames, what } => {
                assert_eq!((out.status.code(), lines), (Some(1), frames), "{name}: {err}");
                assert!(
                    err.starts_with("mptcp-dump: -: ") && err.contains(what.split(" after").next().unwrap()),
                    "{err}"
                );
            }
        }
    }
}
