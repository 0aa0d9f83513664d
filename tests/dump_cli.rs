//! mptcp-dump's command line: bad input, filters, -c/-r/-w/-t/-#, --json and
//! --summary wiring. Bad capture files are made here with tempfile.
mod capture_files;
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mptcp_tools::capture::PcapWriter;
use mptcp_tools::dissect::packet::{FrameMeta, Timestamp, linktype};

fn dump(args: &[&str]) -> Output {
    Command::new(common::bin("mptcp-dump")).args(args).env("TZ", "UTC").output().expect("run mptcp-dump")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn capture(name: &str) -> String {
    common::testdata().join("captures/pcap").join(name).to_string_lossy().into_owned()
}

/// A one-line error that names `file`, a given exit status, no panic.
fn assert_error(out: &Output, file: &str, what: &str, code: i32) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.starts_with("mptcp-dump: "), "{err}");
    assert!(err.contains(file), "the error names the file: {err}");
    assert!(err.contains(what), "expected `{what}` in: {err}");
    assert!(!err.contains("panicked"));
}

/// An IPv4/TCP Ethernet frame with the given options.
fn tcp_frame(opts: &[u8], flags: u8) -> Vec<u8> {
    let mut o = opts.to_vec();
    while o.len() % 4 != 0 {
        o.push(1);
    }
    let mut f = vec![2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 0x08, 0x00];
    let tl = 20 + 20 + o.len();
    f.extend([0x45, 0, (tl >> 8) as u8, tl as u8, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend([
        0x9c,
        0x40,
        0x27,
        0x10,
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        ((20 + o.len()) / 4 * 16) as u8,
        flags,
        1,
        0,
        0,
        0,
        0,
        0,
    ]);
    f.extend(o);
    f
}

fn write_pcap(path: &Path, lt: u32, frames: &[Vec<u8>]) {
    let mut w = PcapWriter::create(path, lt).unwrap();
    for (i, f) in frames.iter().enumerate() {
        let meta = FrameMeta {
            number: i as u64 + 1,
            ts: Some(Timestamp::new(1_700_000_000, i as u32 * 1000)),
            caplen: f.len() as u32,
            len: f.len() as u32,
            linktype: lt,
        };
        w.write(&meta, f).unwrap();
    }
    w.flush().unwrap();
}

fn tmp(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn missing_file() {
    let out = dump(&["/nonexistent/capture.pcap"]);
    assert_error(&out, "/nonexistent/capture.pcap", "no such file", 1);
    assert!(out.stdout.is_empty());
}

#[test]
fn directory() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().to_string_lossy().into_owned();
    assert_error(&dump(&[&p]), &p, "is a directory", 1);
}

#[test]
fn not_a_capture() {
    let d = tempfile::tempdir().unwrap();
    let p = tmp(&d, "notes.txt");
    std::fs::write(&p, "these are notes, not packets\n".repeat(10)).unwrap();
    let ps = p.to_string_lossy().into_owned();
    assert_error(&dump(&[&ps]), &ps, "not a capture file", 1);
    let e = tmp(&d, "empty.pcap");
    std::fs::write(&e, b"").unwrap();
    let es = e.to_string_lossy().into_owned();
    assert_error(&dump(&[&es]), &es, "the file is empty", 1);
}

#[test]
fn truncated_captures() {
    let d = tempfile::tempdir().unwrap();
    let full = std::fs::read(capture("single-subflow.pcap")).unwrap();
    // Cut inside the file header: nothing decodes.
    let p = tmp(&d, "cut-header.pcap");
    std::fs::write(&p, &full[..10]).unwrap();
    let ps = p.to_string_lossy().into_owned();
    assert_error(&dump(&[&ps]), &ps, "truncated capture", 1);
    // Cut inside the first record header: still nothing.
    std::fs::write(&p, &full[..30]).unwrap();
    assert_error(&dump(&[&ps]), &ps, "truncated capture", 1);
    // Cut in the middle of the file: the frames before the cut print, an
    // error names the file and where it stopped, exit 1 (as tcpdump).
    let p = tmp(&d, "cut-middle.pcap");
    std::fs::write(&p, &full[..full.len() / 2]).unwrap();
    let ps = p.to_string_lossy().into_owned();
    let out = dump(&[&ps]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let n = text(&out.stdout).lines().count();
    assert!((3..14).contains(&n), "{n} frames before the cut");
    assert!(err.contains(&ps) && err.contains(&format!("truncated capture after frame {n}")), "{err}");
}

#[test]
fn unsupported_link_type() {
    let d = tempfile::tempdir().unwrap();
    let p = tmp(&d, "usb.pcap");
    write_pcap(&p, 189, &[vec![0u8; 64]]);
    let ps = p.to_string_lossy().into_owned();
    assert_error(&dump(&[&ps]), &ps, "unsupported link type 189", 1);
}

#[test]
fn garbage_options_and_frames_still_decode() {
    let d = tempfile::tempdir().unwrap();
    let p = tmp(&d, "garbage.pcap");
    let frames = vec![
        // A DSS of 3 bytes, then a 1-byte length: [bad opt] ends the list.
        tcp_frame(&[30, 3, 0x20, 1, 30, 1, 0xff, 0xff], 0x10),
        // Noise for options.
        tcp_frame(&[0xde, 0xad, 0xbe, 0xef, 0x13, 0x37, 0, 0], 0x10),
        // A cut Ethernet frame.
        vec![2, 2, 2, 2, 2],
        // An IPv4 header that claims 60 bytes of header.
        {
            let mut f = tcp_frame(&[], 0x02);
            f[14] = 0x4f;
            f
        },
        // A valid frame after all that.
        tcp_frame(&[30, 4, 0x01, 0x01], 0x02),
    ];
    write_pcap(&p, linktype::ETHERNET, &frames);
    let ps = p.to_string_lossy().into_owned();
    // Only the tcpdump part: the analysis note would follow the line ends.
    let out = dump(&["-#", "--no-analysis", &ps]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let lines: Vec<&str> = s.lines().collect();
    assert_eq!(lines.len(), 5, "{s}");
    assert!(lines[0].contains("options [mptcp 3 dss[bad opt]"), "{}", lines[0]);
    // 0xde claims 173 bytes: a bad first option, no closing bracket.
    assert!(lines[1].ends_with("options [[bad opt]"), "{}", lines[1]);
    assert!(lines[2].contains("[|ether]"), "{}", lines[2]);
    assert!(lines[4].ends_with("options [mptcp 4 capable v1 flags [H]], length 0"), "{}", lines[4]);
    assert!(lines[4].starts_with("    5  2023-11-14") || lines[4].starts_with("    5  22:13:20"), "{}", lines[4]);
    assert!(out.stderr.is_empty());
}

#[test]
fn bad_filter_and_usage() {
    let f = capture("single-subflow.pcap");
    let out = dump(&[&f, "tcp", "port", "notaport"]);
    assert_error(&out, &f, "bad filter expression `tcp port notaport`", 1);
    let out = dump(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no capture to read"));
}

#[test]
fn filter_count_and_frame_numbers() {
    let f = capture("two-subflows-join.pcap");
    let filter = ["tcp", "and", "src", "host", "10.77.2.1"];
    let mut args = vec!["-r", &f, "-#"];
    args.extend(filter);
    let out = dump(&args);
    assert!(out.status.success());
    let ours = text(&out.stdout);
    let theirs = Command::new("tcpdump").args(["-nn", "-r", &f]).args(filter).output().expect("tcpdump");
    assert_eq!(ours.lines().count(), text(&theirs.stdout).lines().count());
    // Frame numbers are file positions: the join's SYN is not frame 1.
    let first: u64 = ours.split_whitespace().next().unwrap().parse().unwrap();
    assert!(first > 1, "{ours}");
    assert!(ours.lines().all(|l| l.contains(" IP 10.77.2.1.")));
    // -c stops after N shown frames; no count is refused, as tcpdump does.
    let out = dump(&["-c", "3", &f]);
    assert_eq!(text(&out.stdout).lines().count(), 3);
    for bad in ["0", "-1", "x"] {
        let out = dump(&["-c", bad, &f]);
        assert_eq!(out.status.code(), Some(2), "-c {bad}");
        assert!(text(&out.stderr).contains(&format!("invalid packet count {bad}")), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty());
    }
    // The positional file and -r agree, and `-r -` reads standard input.
    assert_eq!(dump(&[&f]).stdout, dump(&["-r", &f]).stdout);
    let piped = Command::new(common::bin("mptcp-dump"))
        .args(["-r", "-"])
        .env("TZ", "UTC")
        .stdin(std::fs::File::open(&f).unwrap())
        .output()
        .unwrap();
    assert_eq!(piped.stdout, dump(&[&f]).stdout);
}

#[test]
fn timestamp_flags() {
    let f = capture("single-subflow.pcap");
    let first = |args: &[&str]| text(&dump(args).stdout).lines().next().unwrap().to_string();
    assert!(first(&["-t", &f]).starts_with("IP 10.77.1.1."));
    let tt = first(&["-tt", &f]);
    assert!(tt.split(' ').next().unwrap().split('.').next().unwrap().len() >= 10, "{tt}");
    assert!(first(&["-ttt", &f]).starts_with(" 00:00:00.000000 IP "));
    let tttt = first(&["-tttt", &f]);
    assert_eq!(&tttt[4..5], "-");
    assert!(first(&["-ttttt", &f]).starts_with(" 00:00:00.000000 IP "));
    let s = first(&["-S", &f]);
    assert!(s.contains("seq 2038288392"), "{s}");
    let v = text(&dump(&["-v", &f]).stdout);
    assert!(v.starts_with("10:46:59.896253 IP (tos 0x0, ttl 64"), "{v}");
}

#[test]
fn json_and_summary_modes() {
    let f = capture("single-subflow.pcap");
    let out = dump(&["--json", &f]);
    assert!(out.status.success());
    let s = text(&out.stdout);
    assert_eq!(s.lines().count(), 14);
    for (i, l) in s.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert_eq!(v["frame"], i as u64 + 1);
    }
    // --summary prints no per-frame line.
    let out = dump(&["--summary", &f]);
    assert!(out.status.success());
    assert!(!text(&out.stdout).contains("Flags ["), "{}", text(&out.stdout));
    // They do not combine.
    assert_eq!(dump(&["--summary", "--json", &f]).status.code(), Some(2));
}

#[test]
fn write_filtered_copy() {
    let d = tempfile::tempdir().unwrap();
    let f = capture("two-subflows-join.pcap");
    let w = tmp(&d, "join.pcap");
    let ws = w.to_string_lossy().into_owned();
    let out = dump(&["-r", &f, "-w", &ws, "tcp", "port", "53087"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "-w prints nothing");
    // tcpdump reads it back, frame for frame.
    let back = Command::new("tcpdump").args(["-nn", "-r", &ws]).output().expect("tcpdump");
    assert!(back.status.success(), "{}", text(&back.stderr));
    let orig = Command::new("tcpdump").args(["-nn", "-r", &f, "tcp", "port", "53087"]).output().unwrap();
    assert_eq!(text(&back.stdout), text(&orig.stdout));
    assert!(text(&back.stdout).contains("mptcp 12 join id 2 token 0xc059bd1d"));
}

/// Classic pcap files are read directly, not through libpcap: both paths
/// must give the same frames, also for byte-swapped and nanosecond files, a
/// record longer than the snapshot length, and a cut file.
#[test]
fn direct_pcap_reader_matches_libpcap() {
    use mptcp_tools::capture::{CaptureReader, OpenOptions};
    let read_all = |p: &Path, libpcap_only: bool| {
        let mut r = CaptureReader::open_file(p, &OpenOptions { libpcap_only, ..Default::default() }).unwrap();
        let mut v = Vec::new();
        let err = loop {
            match r.next_frame(&|| false) {
                Ok(Some((m, f))) => v.push((m, f.to_vec())),
                Ok(None) => break None,
                Err(e) => break Some(e.to_string()),
            }
        };
        (v, err)
    };
    let d = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = ["pcap", "tcpdump-tests"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(common::testdata().join("captures").join(sub)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    // A byte-swapped nanosecond variant of a capture.
    let src = std::fs::read(capture("single-subflow.pcap")).unwrap();
    let mut swapped = Vec::new();
    let w32 = |v: &mut Vec<u8>, x: u32| v.extend(x.to_be_bytes());
    w32(&mut swapped, 0xa1b2_3c4d);
    swapped.extend([0, 2, 0, 4]);
    swapped.extend([0u8; 8]);
    w32(&mut swapped, 80); // snaplen: records above it are cut
    w32(&mut swapped, 1);
    let mut at = 24;
    while at + 16 <= src.len() {
        let rd = |i: usize| u32::from_le_bytes(src[i..i + 4].try_into().unwrap());
        let (sec, usec, cap, len) = (rd(at), rd(at + 4), rd(at + 8), rd(at + 12));
        w32(&mut swapped, sec);
        w32(&mut swapped, usec * 1000 + 7);
        w32(&mut swapped, cap);
        w32(&mut swapped, len);
        swapped.extend(&src[at + 16..at + 16 + cap as usize]);
        at += 16 + cap as usize;
    }
    let p = tmp(&d, "swapped-ns.pcap");
    std::fs::write(&p, &swapped).unwrap();
    files.push(p);
    let p = tmp(&d, "cut.pcap");
    std::fs::write(&p, &src[..src.len() - 20]).unwrap();
    files.push(p);
    for f in files {
        let (direct, e1) = read_all(&f, false);
        let (libpcap, e2) = read_all(&f, true);
        assert_eq!(direct.len(), libpcap.len(), "{f:?}");
        assert!(direct == libpcap, "{f:?}: frames differ");
        assert_eq!(e1, e2, "{f:?}");
    }
}

/// The five timestamp formats as tcpdump prints them (TZ=UTC), on every
/// bundled capture and on one whose clock jumps forth and back by years.
#[test]
fn timestamp_formats_match_tcpdump() {
    let d = tempfile::tempdir().unwrap();
    let frames = capture_files::bundled_frames("single-subflow.pcap");
    // Not (0, 0): tcpdump takes a -ttt/-ttttt reference of exactly 0.000000
    // as "not set yet" and restarts from the next frame; a time of 0 is a
    // time to us, so the relative times differ on such a file by design.
    let times: [(u32, u32); 6] =
        [(0, 1), (1_700_000_000, 999_999), (1_600_000_000, 5), (86_399, 1), (2_000_000_000, 0), (1_700_000_000, 0)];
    let recs: Vec<(u32, u32, &[u8])> = times.iter().zip(&frames).map(|(t, f)| (t.0, t.1, &f[..])).collect();
    let jumps = tmp(&d, "jumps.pcap");
    std::fs::write(&jumps, capture_files::classic(1, &recs)).unwrap();
    let mut files: Vec<String> = ["pcap", "tcpdump-tests"]
        .iter()
        .flat_map(|sub| std::fs::read_dir(common::testdata().join("captures").join(sub)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.push(jumps.to_string_lossy().into_owned());
    // The time is what comes before the first " IP".
    let stamps = |out: &[u8]| -> Vec<String> {
        text(out).lines().filter_map(|l| l.find(" IP").map(|at| l[..at].to_string())).collect()
    };
    for f in &files {
        for t in ["-tt", "-ttt", "-tttt", "-ttttt", "-nn"] {
            let ours = stamps(&dump(&[t, "--no-analysis", f]).stdout);
            let theirs = Command::new("tcpdump").args([t, "-nn", "-r", f]).env("TZ", "UTC").output().expect("tcpdump");
            let theirs = stamps(&theirs.stdout);
            assert!(!ours.is_empty(), "{f} {t}");
            assert_eq!(ours, theirs, "{f} {t}");
        }
    }
}

/// A capture moved from Ethernet to each point-to-point link type (PPP,
/// PPP in HDLC-like framing, PPPoE, Cisco HDLC) gives the same analysis,
/// frame for frame: the link layer is read, then forgotten.
#[test]
fn point_to_point_link_types_analyse_as_ethernet() {
    use mptcp_tools::capture::{CaptureReader, OpenOptions};
    let src = capture("two-subflows-join.pcap");
    let want = text(&dump(&["--summary", &src]).stdout);
    assert!(want.contains("MPTCP v1 established"), "{want}");
    let dir = tempfile::tempdir().unwrap();
    for (lt, name) in [
        (linktype::PPP, "ppp"),
        (linktype::PPP_HDLC, "ppp-hdlc"),
        (linktype::PPP_ETHER, "pppoe"),
        (linktype::C_HDLC, "chdlc"),
    ] {
        let path = dir.path().join(format!("{name}.pcap"));
        let mut w = PcapWriter::create(&path, lt).unwrap();
        let mut r = CaptureReader::open_file(Path::new(&src), &OpenOptions::default()).unwrap();
        while let Some((meta, frame)) = r.next_frame(&|| false).unwrap() {
            let v6 = frame[12..14] == [0x86, 0xdd];
            let ip = &frame[14..];
            let mut f = match lt {
                linktype::PPP | linktype::PPP_HDLC => vec![0xff, 0x03, 0x00, if v6 { 0x57 } else { 0x21 }],
                linktype::PPP_ETHER => {
                    let mut h = vec![0x11, 0x00, 0x00, 0x2a];
                    h.extend((ip.len() as u16 + 2).to_be_bytes());
                    h.extend([0x00, if v6 { 0x57 } else { 0x21 }]);
                    h
                }
                _ => vec![0x0f, 0x00, frame[12], frame[13]],
            };
            let link = f.len() as u32;
            f.extend_from_slice(ip);
            let m = FrameMeta { caplen: f.len() as u32, len: meta.len - 14 + link, linktype: lt, ..meta };
            w.write(&m, &f).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let got = text(&dump(&["--summary", path.to_str().unwrap()]).stdout);
        assert_eq!(got, want, "{name}");
    }
}

/// `--summary --no-analysis` cannot answer anything: refused as a usage
/// error (exit 2), not "0 frames ... 0 MPTCP connections" and exit 0.
#[test]
fn summary_without_analysis_is_refused() {
    let out = dump(&["--summary", "--no-analysis", &capture("single-subflow.pcap")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--no-analysis"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}
