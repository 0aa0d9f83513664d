//! `mptcp-dump --plot`: the bundled captures' plots render; the SVG holds one
//! series per subflow with as many points as the series in `--json`, and
//! those series agree with the packets mptcp-dump prints.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{bin, testdata};
use serde_json::Value;

const CAPTURES: &[&str] =
    &["mp-fail-reset", "two-subflows-join", "backup-prio", "ipv6-two-subflows", "add-addr-signal", "remove-addr"];

/// The plot palette, as the SVG writes the colours.
const COLOURS: [&str; 8] = ["#1F77B4", "#D62728", "#2CA02C", "#FF7F0E", "#9467BD", "#8C564B", "#E377C2", "#17BECF"];

fn dump(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin("mptcp-dump")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn capture(name: &str) -> String {
    testdata().join(format!("captures/pcap/{name}.pcap")).display().to_string()
}

/// The `<circle>` elements of this fill colour.
fn dots_in(svg: &str, colour: &str) -> usize {
    let fill = format!("fill=\"{colour}\"");
    svg.split("<circle").skip(1).filter(|c| c.split('>').next().is_some_and(|tag| tag.contains(&fill))).count()
}

/// Per subflow: (count, first DSN, last DSN) of the data segments.
type PerSubflow = BTreeMap<u64, (usize, u64, u64)>;

fn tally<'a>(points: impl Iterator<Item = (u64, u64)> + 'a) -> PerSubflow {
    let mut m = PerSubflow::new();
    for (sf, dsn) in points {
        let e = m.entry(sf).or_insert((0, dsn, dsn));
        e.0 += 1;
        e.2 = dsn;
    }
    m
}

#[test]
fn dsn_series_agree_with_the_packets_and_the_svg() {
    let dir = tempfile::tempdir().unwrap();
    for name in CAPTURES {
        let file = capture(name);
        let (code, json, err) = dump(&["--plot", "dsn", "--json", &file]);
        assert_eq!(code, 0, "{name}: {err}");
        let series: Value = serde_json::from_str(json.trim()).unwrap();
        let conn = series["conn"].as_u64().unwrap();
        let sender = series["sender"].as_str().unwrap();
        let data = series["data"].as_array().unwrap();
        assert!(!data.is_empty(), "{name}: no data points");

        // The packets: every frame of that connection from that side with
        // a DSN and payload, in order.
        let (_, packets, _) = dump(&["--json", &file]);
        let from_packets = tally(packets.lines().filter_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            let a = &v["analysis"];
            (a["conn"].as_u64() == Some(conn) && a["from"] == sender && a["dsn_len"].as_u64() > Some(0))
                .then(|| (a["subflow"].as_u64().unwrap(), a["dsn_rel"].as_u64().unwrap()))
        }));
        let from_series = tally(data.iter().map(|p| (p["subflow"].as_u64().unwrap(), p["dsn"].as_u64().unwrap())));
        assert_eq!(from_series, from_packets, "{name}: series vs packets (count, first, last DSN per subflow)");

        // The SVG: one colour per subflow, a dot per first transmission.
        let svg_path = dir.path().join(format!("{name}.svg"));
        let (code, _, err) = dump(&["--plot", "dsn", &file, "-o", svg_path.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {err}");
        let svg = std::fs::read_to_string(&svg_path).unwrap();
        assert!(svg.starts_with("<svg"), "{name}: not an SVG");
        let subflows = series["subflows"].as_array().unwrap();
        for (i, sf) in subflows.iter().enumerate() {
            let id = sf["id"].as_u64().unwrap();
            let want = data.iter().filter(|p| p["subflow"] == id && p["reinjection"] == false).count();
            let got = svg.matches("<circle").count();
            let in_colour = dots_in(&svg, COLOURS[i]);
            assert_eq!(in_colour, want, "{name}: sf {id} dots in the SVG ({got} circles in all)");
            let label = sf["label"].as_str().unwrap();
            assert!(svg.contains(&label.replace('>', "&gt;")), "{name}: legend lacks {label:?}");
        }
        // Dots of no subflow's colour: none.
        let total: usize = (0..subflows.len()).map(|i| dots_in(&svg, COLOURS[i])).sum();
        assert_eq!(svg.matches("<circle").count(), total, "{name}: stray dots");
        assert!(svg.contains("time (s)") && svg.contains("DATA_ACK"), "{name}: axis or ack line missing");
    }
}

#[test]
fn reinjections_and_events_are_marked() {
    let file = capture("mp-fail-reset");
    let (_, json, _) = dump(&["--plot", "dsn", "--json", &file]);
    let v: Value = serde_json::from_str(json.trim()).unwrap();
    let re = v["data"].as_array().unwrap().iter().filter(|p| p["reinjection"] == true).count();
    assert!(re > 0, "the MP_FAIL capture reinjects data");
    let labels: Vec<&str> = v["markers"].as_array().unwrap().iter().map(|m| m["label"].as_str().unwrap()).collect();
    assert!(labels.iter().any(|l| l.starts_with("MP_FAIL")), "{labels:?}");
    assert!(labels.iter().any(|l| l.starts_with("RST") && l.contains("middlebox interference")), "{labels:?}");
    assert!(labels.iter().any(|l| l.starts_with("join sf 2")), "{labels:?}");
    let (_, json, _) = dump(&["--plot", "dsn", "--json", &capture("add-addr-signal")]);
    assert!(json.contains("ADD_ADDR id"), "{json}");
    let (_, json, _) = dump(&["--plot", "dsn", "--json", &capture("remove-addr")]);
    assert!(json.contains("RM_ADDR ids"), "{json}");
}

#[test]
fn throughput_adds_up_to_the_bytes_sent() {
    for name in CAPTURES {
        let file = capture(name);
        let (_, dsn, _) = dump(&["--plot", "dsn", "--json", &file]);
        let d: Value = serde_json::from_str(dsn.trim()).unwrap();
        let (code, tput, err) = dump(&["--plot", "tput", "--json", "--window", "0.01", &file]);
        assert_eq!(code, 0, "{name}: {err}");
        let t: Value = serde_json::from_str(tput.trim()).unwrap();
        assert_eq!(t["window"].as_f64(), Some(0.01));
        for pair in t["subflows"].as_array().unwrap() {
            let id = pair[0].as_u64().unwrap();
            let bits: f64 = pair[1].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).sum::<f64>() * 0.01;
            let bytes: u64 = d["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["subflow"] == id && p["reinjection"] == false)
                .map(|p| p["len"].as_u64().unwrap())
                .sum();
            assert!(
                (bits / 8.0 - bytes as f64).abs() < 1e-3 * (bytes as f64 + 1.0),
                "{name} sf {id}: {bits} bits vs {bytes} bytes"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.svg");
        let (code, _, err) = dump(&["--plot", "tput", &file, "-o", out.to_str().unwrap()]);
        assert_eq!(code, 0, "{name}: {err}");
        assert!(std::fs::read_to_string(&out).unwrap().contains("goodput (bit/s)"));
    }
}

#[test]
fn plot_usage_errors() {
    let file = capture("mp-fail-reset");
    let (code, _, err) = dump(&["--plot", "dsn", &file]);
    assert_eq!((code, err.trim()), (2, "mptcp-dump: --plot needs -o FILE.svg (or --json for the series)"));
    let (code, _, err) = dump(&["--plot", "dsn", &file, "-o", "/tmp/x.png"]);
    assert_eq!(code, 2);
    assert!(err.contains("PNG output is not supported yet"), "{err}");
    let (code, _, err) = dump(&["--plot", "dsn", "--json", "--conn", "9", &file]);
    assert_eq!(code, 2);
    assert!(err.contains("no MPTCP connection 9"), "{err}");
    let (code, _, err) = dump(&["--plot", "dsn", "--json", &capture("fallback-tcp")]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = dump(&["--plot", "dsn", "--summary", &file]);
    assert_eq!(code, 2);
}

#[test]
fn every_connection_gets_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.svg");
    let (code, _, err) =
        dump(&["--plot", "dsn", "--conn", "all", &capture("two-subflows-join"), "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(dir.path().join("p-conn1.svg").exists(), "{err}");
}
