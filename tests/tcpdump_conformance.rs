//! mptcp-dump's tcpdump part against tcpdump itself:
//!
//! 1. tcpdump's own MPTCP test suite (testdata/captures/tcpdump-tests): for
//!    every packet, the text inside `options [...]` and the whole line equal
//!    the `.out` files, printed by tcpdump's development version (`-# -tttt`,
//!    `-v` where the file shows it).
//! 2. The kernel captures (testdata/captures/pcap) against the bundled
//!    `tcpdump -nn -v` output of tcpdump 4.99.3, whole lines, after turning
//!    our development-version MPTCP text into 4.99.3's (which lacks the
//!    MP_CAPABLE flags and data_len, prints MP_TCPRST as `unknown` and
//!    rejects the 24-byte MP_CAPABLE).
//! 3. A differential run: seeded random TCP options, truncations, IPv6 and
//!    flags written to a pcap and printed by the installed tcpdump (4.99) and
//!    by us, compared line by line with the same conversion.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use mptcp_tools::capture::{CaptureReader, OpenOptions, PcapWriter};
use mptcp_tools::dissect::packet::{FrameMeta, Timestamp, decode, linktype};
use mptcp_tools::dissect::tcpdump::{PrintOptions, Printer, TimestampFormat};

/// Our tcpdump text for every frame of a capture, one string per frame (a
/// frame's text may span lines, as with -v).
fn our_lines(path: &Path, opts: PrintOptions) -> Vec<String> {
    let mut r = CaptureReader::open_file(path, &OpenOptions::default()).expect("open capture");
    // Interface names of Linux cooked v2 frames come from this host, as in
    // mptcp-dump and in tcpdump.
    let mut p = Printer::new(opts).with_ifname(mptcp_tools::cli::dump::interface_name);
    let mut v = Vec::new();
    let mut buf = Vec::new();
    while let Some((meta, frame)) = r.next_frame(&|| false).expect("read") {
        buf.clear();
        p.write_packet(&mut buf, &meta, &decode(meta.linktype, frame), frame);
        v.push(String::from_utf8(buf.clone()).expect("utf-8"));
    }
    v
}

/// Split a reference output into per-frame texts, using our line counts.
fn split_like(reference: &str, ours: &[String]) -> Vec<String> {
    let mut lines = reference.lines();
    ours.iter().map(|o| (0..o.lines().count()).filter_map(|_| lines.next()).collect::<Vec<_>>().join("\n")).collect()
}

/// The text between `options [` and the end of the option list.
fn options_text(line: &str) -> Option<&str> {
    let start = line.find("options [")? + "options [".len();
    let rest = &line[start..];
    let end = rest.find("], length ").unwrap_or_else(|| rest.trim_end_matches(']').len());
    Some(&rest[..end])
}

fn testdata(sub: &str) -> PathBuf {
    common::testdata().join("captures").join(sub)
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read testdata")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn tcpdump_test_suite_out_files() {
    let dir = testdata("tcpdump-tests");
    let (mut frames, mut opt_cmp, mut opt_eq, mut line_eq) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for pcap in files(&dir, "pcap") {
        let out = std::fs::read_to_string(pcap.with_extension("out")).expect("the .out beside the .pcap");
        let verbose = u8::from(out.contains("IP (tos "));
        let ours = our_lines(
            &pcap,
            PrintOptions { verbose, timestamps: TimestampFormat::Date, frame_numbers: true, ..Default::default() },
        );
        let theirs = split_like(&out, &ours);
        assert_eq!(out.lines().count(), ours.iter().map(|o| o.lines().count()).sum::<usize>(), "{pcap:?}");
        for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            frames += 1;
            let name = pcap.file_name().unwrap().to_string_lossy();
            match (options_text(o), options_text(t)) {
                (Some(a), Some(b)) => {
                    opt_cmp += 1;
                    if a == b {
                        opt_eq += 1;
                    } else {
                        failures.push(format!("{name} frame {}: options\n  ours:    {a}\n  tcpdump: {b}", i + 1));
                    }
                }
                (None, None) => {}
                _ => failures.push(format!("{name} frame {}: options present on one side only", i + 1)),
            }
            if o == t {
                line_eq += 1;
            } else {
                failures.push(format!("{name} frame {}:\n  ours:    {o}\n  tcpdump: {t}", i + 1));
            }
        }
    }
    eprintln!(
        "tcpdump test suite: {frames} frames; options compared {opt_cmp}, equal {opt_eq}; whole lines equal {line_eq}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(opt_cmp >= 300, "expected the whole suite, compared {opt_cmp}");
}

/// Rewrite tcpdump development-version MPTCP text as tcpdump 4.99.3 prints it.
fn as_tcpdump_4993(line: &str) -> String {
    let mut s = line.to_string();
    // `capable v1 flags [AH] csum {...}` -> `capable v1 csum {...}`
    let mut from = 0;
    while let Some(at) = s[from..].find("capable v").map(|i| from + i) {
        let flags_at = at + "capable v1".len();
        if s[flags_at..].starts_with(" flags [") {
            let end = s[flags_at + 8..].find(']').map(|e| flags_at + 8 + e + 1).expect("closing bracket");
            s.replace_range(flags_at..end, "");
        }
        from = flags_at.min(s.len());
    }
    // `,data_len=N}` -> `}`
    while let Some(i) = s.find(",data_len=") {
        let end = s[i..].find('}').map(|e| i + e).expect("closing brace");
        s.replace_range(i..end, "");
    }
    // `tcprst flags [T] reason Unspecified error` -> `unknown`
    while let Some(i) = s.find("tcprst flags [") {
        let Some(r) = s[i..].find("] reason ") else { break };
        let reason = i + r + "] reason ".len();
        // The reason runs to the next option or the end of the list.
        let end = s[reason..].find([',', ']']).map_or(s.len(), |e| reason + e);
        s.replace_range(i..end, "unknown");
    }
    // 4.99.3 rejects the 24-byte MP_CAPABLE (RFC 8684 §3.1, with checksum)
    // that the development version accepts on an ACK.
    if let Some(i) = s.find("mptcp 24 capable ") {
        let first = s[..i].ends_with("options [");
        s.truncate(i);
        s.push_str(if first { "mptcp 24 capable[bad opt]" } else { "mptcp 24 capable[bad opt]]" });
    }
    s
}

#[test]
fn conversion_to_4993_text() {
    assert_eq!(
        as_tcpdump_4993("x,mptcp 22 capable v1 flags [H] {0x1,0x2,data_len=16},nop,nop], length 12"),
        "x,mptcp 22 capable v1 {0x1,0x2},nop,nop], length 12"
    );
    assert_eq!(
        as_tcpdump_4993("[mptcp 4 tcprst flags [none] reason Unspecified error], length 0"),
        "[mptcp 4 unknown], length 0"
    );
    assert_eq!(
        as_tcpdump_4993("[nop,mptcp 4 tcprst flags [UT] reason unknown (0x09),eol], length 0"),
        "[nop,mptcp 4 unknown,eol], length 0"
    );
    assert_eq!(
        as_tcpdump_4993("[nop,nop,mptcp 24 capable v1 flags [AH] csum {0x1,0x2,data_len=1}], length 1"),
        "[nop,nop,mptcp 24 capable[bad opt]]"
    );
}

#[test]
fn kernel_captures_against_tcpdump_4993() {
    let dir = testdata("pcap");
    let (mut frames, mut equal, mut mptcp_frames) = (0, 0, 0);
    let mut failures = Vec::new();
    for pcap in files(&dir, "pcap") {
        let txt = pcap.with_extension("tcpdump.txt");
        let Ok(reference) = std::fs::read_to_string(&txt) else { continue };
        // The bundled text is local time of the machine that made it; print
        // time of day only and compare from the IP part on.
        let ours =
            our_lines(&pcap, PrintOptions { verbose: 1, timestamps: TimestampFormat::None, ..Default::default() });
        let ours: Vec<String> = ours.iter().map(|o| as_tcpdump_4993(o)).collect();
        let theirs = split_like(&reference, &ours);
        assert_eq!(reference.lines().count(), ours.iter().map(|o| o.lines().count()).sum::<usize>(), "{pcap:?}");
        for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            frames += 1;
            mptcp_frames += usize::from(o.contains("mptcp "));
            let t = t.split_once(' ').map(|x| x.1).unwrap_or(t); // drop the timestamp
            if o == t {
                equal += 1;
            } else if failures.len() < 20 {
                failures.push(format!(
                    "{:?} frame {}:\n  ours:    {o}\n  tcpdump: {t}",
                    pcap.file_name().unwrap(),
                    i + 1
                ));
            }
        }
    }
    eprintln!("kernel captures vs tcpdump 4.99.3 -nn -v: {frames} frames ({mptcp_frames} with MPTCP), {equal} equal");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(frames > 7_000);
}

/// A tiny seeded generator (xorshift64*), enough to pick bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// One option, usually well-formed, sometimes not.
fn random_option(r: &mut Rng) -> Vec<u8> {
    fn mptcp(r: &mut Rng, subtype: u8, len: usize) -> Vec<u8> {
        let mut o = vec![30, len as u8, subtype << 4 | (r.byte() & 0x0f)];
        o.extend(r.bytes(len.saturating_sub(3)));
        if subtype == 2 && len >= 4 {
            // DSS flags that mostly fit the length.
            o[3] = r.byte() & 0x1f;
        }
        if subtype == 0 && len > 3 && r.below(2) == 0 {
            o[2] = r.byte() & 0x01;
        }
        o
    }
    match r.below(22) {
        0 => vec![1],
        1 => vec![0],
        2 => vec![2, 4, r.byte(), r.byte()],
        3 => vec![3, 3, r.byte()],
        4 => vec![4, 2],
        5 => {
            let n = 1 + r.below(3) as usize;
            let mut o = vec![5, (2 + 8 * n) as u8];
            o.extend(r.bytes(8 * n));
            o
        }
        6 => {
            let mut o = vec![8, 10];
            o.extend(r.bytes(8));
            o
        }
        7 => {
            let n = [0usize, 4, 5, 8, 16][r.below(5) as usize];
            let mut o = vec![34, (2 + n) as u8];
            o.extend(r.bytes(n));
            o
        }
        8 => {
            let mut o = vec![254, 6, 0xf9, 0x89];
            if r.below(2) == 0 {
                o[2] = r.byte();
            }
            o.extend(r.bytes(2));
            o
        }
        9 => vec![28, 4, r.byte(), r.byte()],
        10 => {
            let mut o = vec![29, 6];
            o.extend(r.bytes(4));
            o
        }
        11 => {
            let k = [6u8, 7, 11, 12, 13, 19, 20, 99, 253][r.below(9) as usize];
            let len = if k == 19 {
                18
            } else if k == 20 {
                4
            } else {
                2 + r.below(6) as usize
            };
            let mut o = vec![k, len as u8];
            o.extend(r.bytes(len - 2));
            o
        }
        12 => {
            let st = 0;
            let len = [4usize, 12, 20, 22, 24, 13][r.below(6) as usize];
            mptcp(r, st, len)
        }
        13 => {
            let st = 1;
            let len = [12usize, 16, 24, 13][r.below(4) as usize];
            mptcp(r, st, len)
        }
        14 => {
            let st = 2;
            let len = 4 + 2 * r.below(12) as usize;
            mptcp(r, st, len)
        }
        15 => {
            let st = 3;
            let len = [8usize, 10, 16, 18, 20, 22, 28, 30, 9][r.below(9) as usize];
            mptcp(r, st, len)
        }
        16 => {
            let st = 4;
            let len = 3 + r.below(4) as usize;
            mptcp(r, st, len)
        }
        17 => {
            let st = 5 + r.below(3) as u8;
            let len = [3usize, 4, 12][r.below(3) as usize];
            mptcp(r, st, len)
        }
        18 => {
            let st = 8;
            let len = 4;
            mptcp(r, st, len)
        }
        19 => {
            let st = 9 + r.below(7) as u8;
            let len = 3 + r.below(5) as usize;
            mptcp(r, st, len)
        }
        // A wrong length byte.
        20 => vec![r.byte(), r.below(4) as u8],
        _ => {
            // Raw noise.
            let n = 1 + r.below(6) as usize;
            r.bytes(n)
        }
    }
}

fn checksum(data: &[u8]) -> u16 {
    let mut c = mptcp_tools::checksum::InternetChecksum::new();
    c.add(data);
    c.finish()
}

/// An Ethernet frame with a TCP segment over IPv4 or IPv6.
fn random_frame(r: &mut Rng) -> (Vec<u8>, u32) {
    let mut opts = Vec::new();
    let n = r.below(6);
    for _ in 0..n {
        opts.extend(random_option(r));
    }
    opts.truncate(40);
    while opts.len() % 4 != 0 {
        opts.push(if r.below(3) == 0 { 0 } else { 1 });
    }
    let plen = [0usize, 0, 1, 17, 100][r.below(5) as usize];
    let mut payload = r.bytes(plen);
    if r.below(6) == 0 {
        // Text the port-based printers look at (SSH banner, HTTP lines).
        let texts: [&[u8]; 6] = [
            b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
            b"SSH-2.0-x\n",
            b"SSH-2.0-bad\rX",
            b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n",
            b"POST /x HTTP/1.0\n",
        ];
        payload = texts[r.below(6) as usize].to_vec();
    }
    let mut tcp = Vec::new();
    let ports = [10000u16, 40000, 22, 80, 1234][r.below(5) as usize];
    tcp.extend(ports.to_be_bytes());
    tcp.extend([10000u16, 35000, 443][r.below(3) as usize].to_be_bytes());
    tcp.extend((r.below(4) as u32 * 1000).to_be_bytes());
    tcp.extend((r.below(4) as u32 * 7000 + 1).to_be_bytes());
    tcp.push(((20 + opts.len()) / 4) as u8 * 16);
    tcp.push([0x02, 0x12, 0x10, 0x18, 0x11, 0x14, 0x04, r.byte()][r.below(8) as usize]);
    tcp.extend((r.below(65536) as u16).to_be_bytes());
    tcp.extend([0, 0]);
    tcp.extend((r.below(3) as u16).to_be_bytes());
    tcp.extend(&opts);
    tcp.extend(&payload);
    let v6 = r.below(4) == 0;
    let mut frame = vec![2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4];
    let (src, dst): (Vec<u8>, Vec<u8>) = if v6 {
        (
            vec![0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1],
            vec![0xfd, 0x77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2],
        )
    } else {
        (vec![10, 77, 1, 1], vec![10, 77, 1, 2])
    };
    // Pseudo-header checksum, usually right.
    let mut ph = Vec::new();
    ph.extend(&src);
    ph.extend(&dst);
    if v6 {
        ph.extend((tcp.len() as u32).to_be_bytes());
        ph.extend([0, 0, 0, 6]);
    } else {
        ph.extend([0, 6]);
        ph.extend((tcp.len() as u16).to_be_bytes());
    }
    ph.extend(&tcp);
    let mut sum = checksum(&ph);
    if r.below(8) == 0 {
        sum ^= 0x0101;
    }
    tcp[16..18].copy_from_slice(&sum.to_be_bytes());
    if v6 {
        frame.extend([0x86, 0xdd]);
        frame.extend([0x60, 0x01, 0x23, 0x45]);
        frame.extend((tcp.len() as u16).to_be_bytes());
        frame.extend([6, 64]);
        frame.extend(&src);
        frame.extend(&dst);
    } else {
        frame.extend([0x08, 0x00]);
        let mut ip = vec![0x45, [0u8, 2, 0x10][r.below(3) as usize], 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0];
        ip[2..4].copy_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
        ip.extend(&src);
        ip.extend(&dst);
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        frame.extend(&ip);
    }
    frame.extend(&tcp);
    let wire = frame.len() as u32;
    // Sometimes the snapshot length cuts the frame.
    if r.below(6) == 0 {
        let hdr = if v6 { 54 } else { 34 };
        let cut = hdr + r.below((frame.len() - hdr) as u64 + 1) as usize;
        frame.truncate(cut);
    }
    (frame, wire)
}

/// Our text against the installed tcpdump's for every frame of `path`, at
/// -v levels 0, 1 and 2: (compared, equal, skipped, first failures).
fn compare_with_tcpdump(path: &Path, count: usize) -> (usize, usize, usize, Vec<String>) {
    let (mut compared, mut equal, mut skipped) = (0, 0, 0);
    let mut failures = Vec::new();
    for verbose in [0u8, 1, 2] {
        let mut cmd = Command::new("tcpdump");
        cmd.args(["-nn", "-t", "-r"]).arg(path);
        if verbose > 0 {
            cmd.arg(format!("-{}", "v".repeat(verbose as usize)));
        }
        let out = cmd.output().expect("run tcpdump");
        let reference = String::from_utf8_lossy(&out.stdout).to_string();
        let ours = our_lines(path, PrintOptions { verbose, timestamps: TimestampFormat::None, ..Default::default() });
        assert_eq!(ours.len(), count);
        // Convert first: the conversion can drop lines (a frame that 4.99.3
        // ends at `[bad opt]` has no payload lines).
        let ours: Vec<String> = ours.iter().map(|o| as_tcpdump_4993(o)).collect();
        let theirs = split_like(&reference, &ours);
        for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
            // tcpdump 4.99.3 prints every MP_TCPRST as `unknown`; the
            // development version rejects one of the wrong length, a line
            // the conversion cannot rebuild.
            if o.contains("tcprst[bad opt]") {
                skipped += 1;
                continue;
            }
            compared += 1;
            if o == t {
                equal += 1;
            } else if failures.len() < 15 {
                failures.push(format!("-v x{verbose} frame {}:\n  ours:    {o}\n  tcpdump: {t}", i + 1));
            }
        }
    }
    (compared, equal, skipped, failures)
}

fn tcpdump_version() -> String {
    let out = Command::new("tcpdump").arg("--version").output().unwrap_or_else(|e| {
        panic!(
            "this test compares with tcpdump, which could not run ({e}); .ci/run installs it (apt-get install tcpdump)"
        )
    });
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    text.lines().next().unwrap_or_default().to_string()
}

#[test]
fn differential_against_installed_tcpdump() {
    let version = tcpdump_version();
    assert!(
        version.contains("tcpdump version 4.99"),
        "this test expects tcpdump 4.99.x (Debian 12's); found `{version}`"
    );
    let dir = tempfile::tempdir().unwrap();
    // MPTCP_TOOLS_KEEP_DIFF_PCAP=PATH keeps the generated capture for a look.
    let path =
        std::env::var_os("MPTCP_TOOLS_KEEP_DIFF_PCAP").map_or_else(|| dir.path().join("random.pcap"), PathBuf::from);
    let mut r = Rng(std::env::var("DIFF_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_1234_abcd_0001));
    let mut w = PcapWriter::create(&path, linktype::ETHERNET).unwrap();
    let count = std::env::var("DIFF_COUNT").ok().and_then(|s| s.parse().ok()).unwrap_or(4000);
    for i in 0..count {
        let (frame, wire) = random_frame(&mut r);
        let meta = FrameMeta {
            number: i + 1,
            ts: Some(Timestamp::new(1_700_000_000 + i as i64, 0)),
            caplen: frame.len() as u32,
            len: wire,
            linktype: linktype::ETHERNET,
        };
        w.write(&meta, &frame).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let (compared, equal, skipped, failures) = compare_with_tcpdump(&path, count as usize);
    eprintln!(
        "differential vs {version}: {compared} frames compared, {equal} equal, {skipped} skipped (MP_TCPRST of a bad length)"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The IP packet of a [`random_frame`] (the Ethernet header stripped), with
/// IPv4 options or IPv6 extension headers added half of the time; lengths
/// and the IPv4 header checksum are fixed up. Returns the packet, whether it
/// is IPv6, and its length on the wire.
fn random_ip_packet(r: &mut Rng) -> (Vec<u8>, bool, u32) {
    let (frame, wire) = random_frame(r);
    let mut ip = frame[14..].to_vec();
    let mut wire = wire - 14;
    let v6 = ip[0] >> 4 == 6;
    match (v6, r.below(4)) {
        (false, 1) | (false, 2) => {
            // RFC 791 §3.1 options: NOP NOP NOP EOL, or a router alert
            // (RFC 2113).
            let opts: [u8; 4] = if r.below(2) == 0 { [1, 1, 1, 0] } else { [0x94, 4, 0, 0] };
            ip.splice(20..20, opts);
            ip[0] = 0x46;
            let total = u16::from_be_bytes([ip[2], ip[3]]) + 4;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[10..12].copy_from_slice(&[0, 0]);
            let c = checksum(&ip[..24]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            wire += 4;
        }
        (true, 1) | (true, 2) => {
            // RFC 8200 §4.3/§4.6: a hop-by-hop or destination options
            // header holding one PadN option, before TCP.
            let kind = if r.below(2) == 0 { 0u8 } else { 60 };
            let ext = [6u8, 0, 1, 4, 0, 0, 0, 0];
            ip.splice(40..40, ext);
            ip[6] = kind;
            let plen = u16::from_be_bytes([ip[4], ip[5]]) + 8;
            ip[4..6].copy_from_slice(&plen.to_be_bytes());
            wire += 8;
        }
        _ => {}
    }
    (ip, v6, wire)
}

/// The same random TCP/IP traffic (IPv4 options and IPv6 extension headers
/// included) under every link type the decoder supports, each compared with
/// the installed tcpdump at -v levels 0 to 2: Ethernet with 0, 1 or 2 VLAN
/// tags (802.1Q, 802.1ad), Linux cooked v1 and v2, raw IP and BSD loopback.
#[test]
fn differential_link_types_and_ip_extensions() {
    let version = tcpdump_version();
    assert!(version.contains("tcpdump version 4.99"), "this test expects tcpdump 4.99.x; found `{version}`");
    let dir = tempfile::tempdir().unwrap();
    let count = 600;
    let mut total = (0, 0, 0);
    let mut failures = Vec::new();
    for (name, lt) in [
        ("ethernet+vlan", linktype::ETHERNET),
        ("sll", linktype::LINUX_SLL),
        ("sll2", linktype::LINUX_SLL2),
        ("raw", linktype::RAW),
        ("null", linktype::NULL),
        ("ppp", linktype::PPP),
        ("ppp-hdlc", linktype::PPP_HDLC),
        ("pppoe", linktype::PPP_ETHER),
        ("chdlc", linktype::C_HDLC),
    ] {
        let path = dir.path().join(format!("{name}.pcap"));
        let mut r = Rng(0x11a7_0000 + lt as u64);
        let mut w = PcapWriter::create(&path, lt).unwrap();
        for i in 0..count {
            let (ip, v6, wire) = random_ip_packet(&mut r);
            let ethertype: [u8; 2] = if v6 { [0x86, 0xdd] } else { [0x08, 0x00] };
            let mut frame = Vec::new();
            match lt {
                linktype::ETHERNET => {
                    frame.extend([2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4]);
                    match i % 3 {
                        1 => frame.extend([0x81, 0x00, 0x00, 0x64]),
                        2 => frame.extend([0x88, 0xa8, 0x00, 0x0a, 0x81, 0x00, 0x20, 0x64]),
                        _ => {}
                    }
                    frame.extend(ethertype);
                }
                linktype::LINUX_SLL => {
                    // Packet type (0 to us, 4 sent by us), ARPHRD_ETHER, address.
                    frame.extend([0, if i % 2 == 0 { 0 } else { 4 }, 0, 1, 0, 6]);
                    frame.extend([2, 2, 2, 2, 2, 2, 0, 0]);
                    frame.extend(ethertype);
                }
                linktype::LINUX_SLL2 => {
                    // Protocol, reserved, ifindex 1 (lo on any host), ARPHRD_ETHER,
                    // packet type, address length, address.
                    frame.extend(ethertype);
                    frame.extend([0, 0, 0, 0, 0, 1, 0, 1, if i % 2 == 0 { 0 } else { 4 }, 6]);
                    frame.extend([2, 2, 2, 2, 2, 2, 0, 0]);
                }
                linktype::NULL => {
                    // Host byte order; 24 is AF_INET6 on the BSDs (tcpdump's
                    // null printer knows it, not Linux's 10).
                    frame.extend(if v6 { 24u32 } else { 2u32 }.to_ne_bytes());
                }
                linktype::PPP | linktype::PPP_HDLC => {
                    // RFC 1662 §3.1 address and control on every other frame
                    // (PPP_HDLC: Cisco HDLC on the others), then RFC 1661's
                    // protocol: 0x0021 IPv4, 0x0057 IPv6.
                    let proto: [u8; 2] = if v6 { [0x00, 0x57] } else { [0x00, 0x21] };
                    match (lt, i % 2) {
                        (_, 0) => frame.extend([0xff, 0x03]),
                        (linktype::PPP_HDLC, _) => {
                            frame.extend([0x0f, 0x00]);
                            frame.extend(ethertype);
                        }
                        _ => {}
                    }
                    if lt == linktype::PPP || i % 2 == 0 {
                        frame.extend(proto);
                    }
                }
                linktype::PPP_ETHER => {
                    // RFC 2516 §4: version/type, code 0 (session), session
                    // id, the PPP payload's length; then the protocol.
                    frame.extend([0x11, 0x00]);
                    frame.extend(((i % 7) as u16 + 1).to_be_bytes());
                    frame.extend(u16::try_from(wire + 2).unwrap_or(u16::MAX).to_be_bytes());
                    frame.extend(if v6 { [0x00, 0x57] } else { [0x00, 0x21] });
                }
                linktype::C_HDLC => {
                    frame.extend([if i % 2 == 0 { 0x0f } else { 0x8f }, 0x00]);
                    frame.extend(ethertype);
                }
                _ => {}
            }
            let link = frame.len() as u32;
            frame.extend(&ip);
            let meta = FrameMeta {
                number: i + 1,
                ts: Some(Timestamp::new(1_700_000_000 + i as i64, 0)),
                caplen: frame.len() as u32,
                len: link + wire,
                linktype: lt,
            };
            w.write(&meta, &frame).unwrap();
        }
        w.flush().unwrap();
        drop(w);
        let (c, e, s, f) = compare_with_tcpdump(&path, count as usize);
        eprintln!("{name}: {c} frames compared, {e} equal, {s} skipped");
        total = (total.0 + c, total.1 + e, total.2 + s);
        failures.extend(f.into_iter().take(4).map(|f| format!("[{name}] {f}")));
    }
    eprintln!("link types vs {version}: {} compared, {} equal, {} skipped", total.0, total.1, total.2);
    assert!(total.0 >= 9 * 3 * 500, "too few frames compared: {}", total.0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
