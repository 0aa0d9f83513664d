//! The tcpdump-style text printer: one line per frame, as `tcpdump -n`
//! prints it (tcpdump 4.99 for the IP and TCP parts), with the MPTCP options
//! printed as tcpdump's current development version prints them
//! (`capable v1 flags [H]`, `data_len=`, `tcprst flags [T] reason ...`).
//!
//! Pure: the printer takes decoded frames and their bytes and appends text to
//! a caller-owned buffer; it owns no I/O and no clock. The only state is what
//! tcpdump keeps too: the initial sequence numbers of each TCP conversation
//! (for relative seq/ack) and the previous and first timestamps (`-ttt`,
//! `-ttttt`).
//!
//! Options are walked from the raw bytes the way tcpdump's `tcp_print` walks
//! them, not through [`super::options`]: tcpdump has its own acceptance rules
//! (a known option with a wrong length is printed and flagged `[len N]`, which
//! can desynchronise the walk; an MPTCP option is checked against the TCP
//! flags; a bad option prints `[bad opt]` and ends the line; a field cut by
//! the snapshot length prints ` [|tcp]`). Reproducing those exactly needs the
//! bytes. The codec is the source of truth for what is valid; this module is
//! the source of truth for what tcpdump shows.
//!
//! Speed: no allocation per frame once the conversation table is warm,
//! integers formatted with `itoa`, no `format!`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use super::crypto::InternetChecksum;
use super::packet::{FrameMeta, IpInfo, Other, Packet, TcpSegment, Timestamp, linktype, tcp_flags};

/// How the timestamp at the start of a line is printed (tcpdump's `-t` flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TimestampFormat {
    /// `HH:MM:SS.ffffff`, local time (the default).
    #[default]
    Time,
    /// `-t`: no timestamp.
    None,
    /// `-tt`: seconds since the epoch, `1795344419.896253`.
    Epoch,
    /// `-ttt`: time since the previous frame, ` 00:00:00.000081`.
    SincePrevious,
    /// `-tttt`: date and time, `2026-11-22 10:46:59.896253`.
    Date,
    /// `-ttttt`: time since the first frame.
    SinceFirst,
}

impl TimestampFormat {
    /// The format selected by `n` repetitions of `-t`.
    pub fn from_t_count(n: u8) -> TimestampFormat {
        match n {
            0 => TimestampFormat::Time,
            1 => TimestampFormat::None,
            2 => TimestampFormat::Epoch,
            3 => TimestampFormat::SincePrevious,
            4 => TimestampFormat::Date,
            _ => TimestampFormat::SinceFirst,
        }
    }
}

/// What the printer shows (the tcpdump flags that change a line).
#[derive(Clone, Copy, Debug, Default)]
pub struct PrintOptions {
    /// `-v` count: 1 adds the IP header details and TCP checksum, 2 also the
    /// sequence number of pure ACKs.
    pub verbose: u8,
    pub timestamps: TimestampFormat,
    /// `-S`: absolute TCP sequence numbers.
    pub absolute_seq: bool,
    /// `-#`: the frame number first, as in tcpdump's test outputs.
    pub frame_numbers: bool,
}

/// Offset of local time from UTC, in seconds, at a given instant (seconds
/// since the epoch). The CLI passes the system's; the default is UTC.
pub type UtcOffset = fn(i64) -> i64;

fn utc(_: i64) -> i64 {
    0
}

/// The name of a network interface by index (tcpdump names the interface of
/// a Linux cooked v2 frame by looking its index up on the reading host).
pub type IfName = fn(u32) -> Option<String>;

/// The tcpdump-style printer. Keep one per capture: it remembers each TCP
/// conversation's initial sequence numbers, as tcpdump does.
pub struct Printer {
    opts: PrintOptions,
    utc_offset: UtcOffset,
    seqs: HashMap<SeqKey, SeqBase, BuildHasherDefault<FxHasher>>,
    /// The previous and the first frame's times (for -ttt and -ttttt).
    prev_ts: Option<Timestamp>,
    first_ts: Option<Timestamp>,
    /// The last second printed and its text (`YYYY-MM-DD HH:MM:SS`).
    clock_sec: i64,
    clock: [u8; 19],
    ifname: Option<IfName>,
    ifnames: HashMap<u32, Vec<u8>, BuildHasherDefault<FxHasher>>,
}

impl std::fmt::Debug for Printer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer").field("opts", &self.opts).field("conversations", &self.seqs.len()).finish()
    }
}

/// A conversation, keyed the way tcpdump keys it: addresses and ports in a
/// canonical order, so both directions share one entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct SeqKey {
    src: [u8; 16],
    dst: [u8; 16],
    ports: u32,
}

#[derive(Clone, Copy)]
struct SeqBase {
    seq: u32,
    ack: u32,
}

/// A small multiplicative hasher (the rustc "Fx" scheme) for the
/// conversation table: the keys are not attacker-chosen in a way that
/// matters for a decoder, and SipHash would cost more than the lookup.
#[derive(Default, Clone, Copy)]
struct FxHasher {
    hash: u64,
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        for &b in chunks.remainder() {
            self.add(b as u64);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.add(v as u64);
    }
    fn finish(&self) -> u64 {
        self.hash
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.hash = (self.hash.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// How far the TCP printer got: tcpdump ends the line early on a bad
/// option or a field the capture does not hold.
enum Stop {
    /// `[bad opt]`, then `]` if an option was printed before.
    BadOpt,
    /// A checked read past the capture: ` [|tcp]`, then `>` if an option was
    /// printed before (tcpdump 4.99 prints `>`, a leftover of its old format).
    Trunc,
    /// An unchecked read past the capture: ` [|tcp]` and nothing more.
    TruncJump,
}

impl Printer {
    pub fn new(opts: PrintOptions) -> Printer {
        Printer::with_utc_offset(opts, utc)
    }

    /// A printer whose wall-clock timestamps use `utc_offset` (tcpdump prints
    /// local time).
    pub fn with_utc_offset(opts: PrintOptions, utc_offset: UtcOffset) -> Printer {
        Printer {
            opts,
            utc_offset,
            seqs: HashMap::default(),
            prev_ts: None,
            first_ts: None,
            clock_sec: i64::MIN,
            clock: [b'0'; 19],
            ifname: None,
            ifnames: HashMap::default(),
        }
    }

    /// Name Linux cooked v2 interfaces with `f` (cached per index); without
    /// it, or when `f` knows no name, they print as `?`, as tcpdump does.
    pub fn with_ifname(mut self, f: IfName) -> Printer {
        self.ifname = Some(f);
        self
    }

    pub fn options(&self) -> &PrintOptions {
        &self.opts
    }

    /// Append tcpdump's text for one frame, without the final newline (the
    /// analysis note goes after it). `frame` is the captured bytes `pkt` was
    /// decoded from.
    pub fn write_packet(&mut self, out: &mut Vec<u8>, meta: &FrameMeta, pkt: &Packet<'_>, frame: &[u8]) {
        if self.opts.frame_numbers {
            pad_left(out, meta.number, 5, b' ');
            out.extend_from_slice(b"  ");
        }
        self.write_timestamp(out, meta);
        self.write_body(out, meta, pkt, frame);
    }

    fn write_timestamp(&mut self, out: &mut Vec<u8>, meta: &FrameMeta) {
        if self.opts.timestamps == TimestampFormat::None {
            return;
        }
        let Some(ts) = meta.ts else {
            // The file gives this frame no time (see `FrameMeta::ts`): said
            // in its place, and the frames around it keep their references.
            out.extend_from_slice(b"[no timestamp] ");
            return;
        };
        let (sec, usec) = (ts.secs(), ts.subsec_micros());
        match self.opts.timestamps {
            TimestampFormat::None => {}
            TimestampFormat::Time => {
                self.refresh_clock(sec);
                out.extend_from_slice(&self.clock[11..]);
                out.push(b'.');
                pad_left(out, usec as u64, 6, b'0');
                out.push(b' ');
            }
            TimestampFormat::Date => {
                self.refresh_clock(sec);
                out.extend_from_slice(&self.clock);
                out.push(b'.');
                pad_left(out, usec as u64, 6, b'0');
                out.push(b' ');
            }
            TimestampFormat::Epoch => {
                dec_i64(out, sec);
                out.push(b'.');
                pad_left(out, usec as u64, 6, b'0');
                out.push(b' ');
            }
            TimestampFormat::SincePrevious | TimestampFormat::SinceFirst => {
                let first = *self.first_ts.get_or_insert(ts);
                let reference = if self.opts.timestamps == TimestampFormat::SincePrevious {
                    self.prev_ts.unwrap_or(ts)
                } else {
                    first
                };
                // In microseconds, as tcpdump's timeval difference; in 128
                // bits, which hold the difference of any two times.
                let micros = |t: Timestamp| t.secs() as i128 * 1_000_000 + t.subsec_micros() as i128;
                let d = micros(ts) - micros(reference);
                out.push(if d < 0 { b'-' } else { b' ' });
                let d = d.unsigned_abs();
                let secs = d / 1_000_000;
                // tcpdump prints the hours modulo a day.
                pad_left(out, ((secs / 3600) % 24) as u64, 2, b'0');
                out.push(b':');
                pad_left(out, ((secs / 60) % 60) as u64, 2, b'0');
                out.push(b':');
                pad_left(out, (secs % 60) as u64, 2, b'0');
                out.push(b'.');
                pad_left(out, (d % 1_000_000) as u64, 6, b'0');
                out.push(b' ');
                self.prev_ts = Some(ts);
            }
        }
    }

    /// Recompute the `YYYY-MM-DD HH:MM:SS` text when the second changes.
    fn refresh_clock(&mut self, sec: i64) {
        if sec == self.clock_sec {
            return;
        }
        self.clock_sec = sec;
        let local = sec.saturating_add((self.utc_offset)(sec));
        let days = local.div_euclid(86_400);
        let tod = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let mut buf = [0u8; 19];
        let mut put = |at: usize, v: u64, w: usize| {
            let mut v = v;
            for i in (0..w).rev() {
                buf[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, y.clamp(0, 9999) as u64, 4);
        put(5, m as u64, 2);
        put(8, d as u64, 2);
        put(11, (tod / 3600) as u64, 2);
        put(14, (tod / 60 % 60) as u64, 2);
        put(17, (tod % 60) as u64, 2);
        buf[4] = b'-';
        buf[7] = b'-';
        buf[10] = b' ';
        buf[13] = b':';
        buf[16] = b':';
        self.clock = buf;
    }

    fn write_body(&mut self, out: &mut Vec<u8>, meta: &FrameMeta, pkt: &Packet<'_>, frame: &[u8]) {
        let net = net_offset(meta.linktype, frame);
        if meta.linktype == linktype::LINUX_SLL2 && frame.len() >= 20 {
            let index = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
            let resolver = self.ifname;
            // tcpdump's sll2 printer: the host's name for the index, or `?`,
            // as `%-5s `, then the direction.
            let name = self.ifnames.entry(index).or_insert_with(|| {
                let mut n = resolver.and_then(|f| f(index)).map_or_else(|| b"?".to_vec(), String::into_bytes);
                while n.len() < 5 {
                    n.push(b' ');
                }
                n.push(b' ');
                n
            });
            out.extend_from_slice(name);
            out.extend_from_slice(match frame[10] {
                0 => b"In  ",
                1 => b"B   ",
                2 => b"M   ",
                3 => b"P   ",
                _ => b"Out ",
            });
        }
        let Some(ip) = pkt.ip else {
            self.write_non_ip(out, meta, pkt, frame, net);
            return;
        };
        let hdr = net.and_then(|n| frame.get(n..)).unwrap_or(&[]);
        // The IP payload as captured, without link-layer padding.
        let start = (ip.header_len as usize).min(hdr.len());
        let end = (ip.total_len as usize).clamp(start, hdr.len());
        let l4 = &hdr[start..end];
        let mut with_addrs = true;
        match ip.src {
            IpAddr::V4(_) => {
                out.extend_from_slice(b"IP ");
                if self.opts.verbose > 0 {
                    ip4_verbose(out, &ip, hdr);
                }
            }
            IpAddr::V6(_) => {
                out.extend_from_slice(b"IP6 ");
                let first_nh = hdr.get(6).copied().unwrap_or(ip.protocol);
                if self.opts.verbose > 0 {
                    ip6_verbose(out, &ip, hdr, first_nh);
                }
                if first_nh != ip.protocol && ip.header_len > 40 {
                    // Extension headers: tcpdump prints the addresses, the
                    // headers, then the transport with ports only.
                    addr(out, ip.src);
                    out.extend_from_slice(b" > ");
                    addr(out, ip.dst);
                    out.extend_from_slice(b": ");
                    ip6_ext_names(out, hdr, first_nh, self.opts.verbose > 0);
                    with_addrs = false;
                }
            }
        }
        let fragmented = ip.more_fragments || ip.frag_offset != 0;
        if let Some(seg) = &pkt.tcp {
            self.write_tcp(out, &ip, seg, l4, fragmented, with_addrs);
            return;
        }
        match pkt.other {
            Some(Other::Udp { sport, dport, len }) => {
                endpoints(out, &ip, sport, dport, with_addrs);
                udp(out, &ip, sport, dport, len, l4, if fragmented { 0 } else { self.opts.verbose });
            }
            Some(Other::Icmp { v6, .. }) => {
                endpoints_noport(out, &ip, with_addrs);
                if v6 {
                    icmp6(out, &ip, l4, self.opts.verbose > 0);
                } else {
                    icmp4(out, &ip, l4, self.opts.verbose > 0);
                }
            }
            Some(Other::Ip { protocol }) => {
                endpoints_noport(out, &ip, with_addrs);
                out.extend_from_slice(b"ip-proto-");
                dec(out, protocol as u64);
                if ip.frag_offset == 0 {
                    out.push(b' ');
                    dec(out, ip.payload_len() as u64);
                }
            }
            _ => {
                if ip.protocol == 6 {
                    tcp_unreadable(out, &ip, l4, with_addrs);
                } else {
                    endpoints_noport(out, &ip, with_addrs);
                    out.extend_from_slice(b" [|ip]");
                }
            }
        }
    }

    fn write_non_ip(&self, out: &mut Vec<u8>, meta: &FrameMeta, pkt: &Packet<'_>, frame: &[u8], net: Option<usize>) {
        let body = net.and_then(|n| frame.get(n..)).unwrap_or(&[]);
        let link_len = net.unwrap_or(0) as u32;
        match pkt.other {
            Some(Other::Arp) => {
                arp(out, body, meta.len.saturating_sub(link_len), self.opts.verbose > 0);
                return;
            }
            Some(Other::EtherType(et)) if meta.linktype == linktype::ETHERNET && frame.len() >= 14 => {
                mac(out, &frame[6..12]);
                out.extend_from_slice(b" > ");
                mac(out, &frame[0..6]);
                out.extend_from_slice(b", ethertype Unknown (0x");
                hex_pad(out, et as u64, 4);
                out.extend_from_slice(b"), length ");
                dec(out, meta.len as u64);
                out.extend_from_slice(b": ");
                hexdump(out, body);
                return;
            }
            Some(Other::EtherType(et)) => {
                out.extend_from_slice(b"ethertype Unknown (0x");
                hex_pad(out, et as u64, 4);
                out.extend_from_slice(b"), length ");
                dec(out, meta.len as u64);
                return;
            }
            _ => {}
        }
        // Decoding stopped before IP: say where, as tcpdump does.
        match body.first().map(|b| b >> 4) {
            Some(4) => out.extend_from_slice(b"IP  [|ip]"),
            Some(6) => out.extend_from_slice(b"IP6  [|ip6]"),
            _ if net.is_none() || body.is_empty() => match meta.linktype {
                linktype::ETHERNET => out.extend_from_slice(b"[|ether]"),
                linktype::LINUX_SLL | linktype::LINUX_SLL2 => out.extend_from_slice(b"[|sll]"),
                linktype::NULL | linktype::LOOP => out.extend_from_slice(b"[|null]"),
                _ => out.extend_from_slice(b"[|ip]"),
            },
            Some(v) => {
                out.extend_from_slice(b"IP");
                if v != 4 {
                    out.extend_from_slice(b" bad version ");
                    dec(out, v as u64);
                }
            }
            None => out.extend_from_slice(b"[|ip]"),
        }
        if let Some(e) = &pkt.error
            && !matches!(e, super::packet::DecodeError::Truncated { .. })
        {
            out.extend_from_slice(b" [");
            out.extend_from_slice(e.to_string().as_bytes());
            out.push(b']');
        }
    }

    /// tcpdump 4.99's `tcp_print`.
    fn write_tcp(
        &mut self,
        out: &mut Vec<u8>,
        ip: &IpInfo,
        seg: &TcpSegment<'_>,
        raw: &[u8],
        fragmented: bool,
        with_addrs: bool,
    ) {
        endpoints(out, ip, seg.sport, seg.dport, with_addrs);
        let flags = seg.flags;
        out.extend_from_slice(b"Flags [");
        tcp_flag_letters(out, flags);
        out.push(b']');

        let hlen = seg.header_len as u32;
        let length = ip.payload_len();
        let (mut seq, mut ack) = (seg.seq, seg.ack);
        let (mut thseq, mut thack, mut rev) = (0u32, 0u32, false);
        if !self.opts.absolute_seq && flags & tcp_flags::ACK != 0 {
            let (src, dst) = (addr_bytes(ip.src), addr_bytes(ip.dst));
            let n = if ip.is_v6() { 16 } else { 4 };
            rev = seg.sport > seg.dport || (seg.sport == seg.dport && src[..n] > dst[..n]);
            let key = if rev {
                SeqKey { src: dst, dst: src, ports: (seg.dport as u32) << 16 | seg.sport as u32 }
            } else {
                SeqKey { src, dst, ports: (seg.sport as u32) << 16 | seg.dport as u32 }
            };
            let fresh = if rev {
                SeqBase { seq: ack.wrapping_sub(1), ack: seq }
            } else {
                SeqBase { seq, ack: ack.wrapping_sub(1) }
            };
            let base = match self.seqs.get_mut(&key) {
                Some(b) if flags & tcp_flags::SYN == 0 => {
                    if rev {
                        seq = seq.wrapping_sub(b.ack);
                        ack = ack.wrapping_sub(b.seq);
                    } else {
                        seq = seq.wrapping_sub(b.seq);
                        ack = ack.wrapping_sub(b.ack);
                    }
                    *b
                }
                Some(b) => {
                    // A SYN starts a new conversation on the same 4-tuple.
                    *b = fresh;
                    fresh
                }
                None => {
                    self.seqs.insert(key, fresh);
                    fresh
                }
            };
            thseq = base.seq;
            thack = base.ack;
        }
        if hlen > length {
            out.extend_from_slice(b" [bad hdr length ");
            dec(out, hlen as u64);
            out.extend_from_slice(b" - too long, > ");
            dec(out, length as u64);
            out.push(b']');
            return;
        }
        if self.opts.verbose > 0 && !fragmented && raw.len() as u64 >= length as u64 {
            let tcp_sum = seg.checksum;
            let sum = transport_checksum(ip, 6, &raw[..length as usize]);
            out.extend_from_slice(b", cksum 0x");
            hex_pad(out, tcp_sum as u64, 4);
            if sum != 0 {
                out.extend_from_slice(b" (incorrect -> 0x");
                hex_pad(out, cksum_shouldbe(tcp_sum, sum) as u64, 4);
                out.push(b')');
            } else {
                out.extend_from_slice(b" (correct)");
            }
        }
        let plen = length - hlen;
        if self.opts.verbose > 1 || plen > 0 || flags & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST) != 0 {
            out.extend_from_slice(b", seq ");
            dec(out, seq as u64);
            if plen > 0 {
                out.push(b':');
                dec(out, seq.wrapping_add(plen) as u64);
            }
        }
        if flags & tcp_flags::ACK != 0 {
            out.extend_from_slice(b", ack ");
            dec(out, ack as u64);
        }
        out.extend_from_slice(b", win ");
        dec(out, seg.window as u64);
        if flags & tcp_flags::URG != 0 {
            out.extend_from_slice(b", urg ");
            dec(out, seg.urgent as u64);
        }
        // tcpdump names the protocol in its truncation mark after the last
        // dissector it entered: once an MPTCP option was looked at, a cut is
        // ` [|mptcp]`.
        let mut walk = OptWalk {
            tcp_flags: flags,
            rev,
            thseq,
            thack,
            payload_captured: raw.len() as u64 >= length as u64,
            printed: false,
            saw_mptcp: false,
        };
        if hlen > 20 {
            out.extend_from_slice(b", options [");
            // tcpdump reads a length byte past the declared header when the
            // capture holds it (then rejects it as too long): give the walk
            // every captured byte and let `hlen` bound what is valid.
            let opts = &raw[20.min(raw.len())..];
            match tcp_options(out, opts, hlen - 20, &mut walk) {
                Ok(()) => out.push(b']'),
                Err(Stop::BadOpt) => {
                    out.extend_from_slice(b"[bad opt]");
                    if walk.printed {
                        out.push(b']');
                    }
                    return;
                }
                Err(Stop::Trunc) => {
                    trunc_mark(out, walk.saw_mptcp);
                    if walk.printed {
                        out.push(b'>');
                    }
                    return;
                }
                Err(Stop::TruncJump) => {
                    trunc_mark(out, walk.saw_mptcp);
                    return;
                }
            }
        }
        out.extend_from_slice(b", length ");
        dec(out, plen as u64);
        if plen == 0 {
            return;
        }
        if raw.len() < hlen as usize {
            // The header itself was cut: tcpdump stops before the payload.
            out.extend_from_slice(b" [remaining caplen(");
            dec(out, raw.len() as u64);
            out.extend_from_slice(b") < header length(");
            dec(out, hlen as u64);
            out.extend_from_slice(b")]");
            trunc_mark(out, walk.saw_mptcp);
            return;
        }
        let payload = raw.get(hlen as usize..).unwrap_or(&[]);
        if flags & tcp_flags::RST != 0 && self.opts.verbose > 0 {
            rst_data(out, payload, plen);
            return;
        }
        tcp_payload(out, seg.sport, seg.dport, payload, plen, self.opts.verbose > 0);
    }
}

/// tcpdump's truncation mark names the last dissector it entered: once an
/// MPTCP option was looked at, a cut is ` [|mptcp]`.
fn trunc_mark(out: &mut Vec<u8>, saw_mptcp: bool) {
    out.extend_from_slice(if saw_mptcp { b" [|mptcp]" } else { b" [|tcp]" });
}

/// Where the network layer starts for a link type, or `None` when the frame
/// is too short to say.
fn net_offset(lt: u32, frame: &[u8]) -> Option<usize> {
    match lt {
        linktype::ETHERNET => {
            let mut off = 12;
            loop {
                let et = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
                if matches!(et, 0x8100 | 0x88a8 | 0x9100) {
                    off += 4;
                } else {
                    return Some(off + 2);
                }
            }
        }
        linktype::LINUX_SLL => (frame.len() >= 16).then_some(16),
        linktype::LINUX_SLL2 => (frame.len() >= 20).then_some(20),
        linktype::NULL | linktype::LOOP => (frame.len() >= 4).then_some(4),
        _ => Some(0),
    }
}

/// `a.p > b.q: ` (or `p > q: ` after IPv6 extension headers).
fn endpoints(out: &mut Vec<u8>, ip: &IpInfo, sport: u16, dport: u16, with_addrs: bool) {
    if with_addrs {
        addr(out, ip.src);
        out.push(b'.');
    }
    dec(out, sport as u64);
    out.extend_from_slice(b" > ");
    if with_addrs {
        addr(out, ip.dst);
        out.push(b'.');
    }
    dec(out, dport as u64);
    out.extend_from_slice(b": ");
}

fn endpoints_noport(out: &mut Vec<u8>, ip: &IpInfo, with_addrs: bool) {
    if with_addrs {
        addr(out, ip.src);
        out.extend_from_slice(b" > ");
        addr(out, ip.dst);
        out.extend_from_slice(b": ");
    }
}

/// A TCP header the decoder could not read (cut short, or a data offset
/// below 5 words), printed as far as tcpdump gets.
fn tcp_unreadable(out: &mut Vec<u8>, ip: &IpInfo, raw: &[u8], with_addrs: bool) {
    if raw.len() < 4 {
        // Without ports tcpdump's tcp_print names the hosts itself, also
        // after IPv6 extension headers (`HBH a > b: [|tcp]`).
        addr(out, ip.src);
        out.extend_from_slice(b" > ");
        addr(out, ip.dst);
        out.push(b':');
        out.extend_from_slice(b" [|tcp]");
        return;
    }
    let sport = u16::from_be_bytes([raw[0], raw[1]]);
    let dport = u16::from_be_bytes([raw[2], raw[3]]);
    endpoints(out, ip, sport, dport, with_addrs);
    let hlen = raw.get(12).map_or(0, |b| (b >> 4) as u32 * 4);
    if raw.len() >= 13 && hlen < 20 {
        out.extend_from_slice(b" tcp ");
        dec(out, ip.payload_len().wrapping_sub(hlen) as u64);
        out.extend_from_slice(b" [bad hdr length ");
        dec(out, hlen as u64);
        out.extend_from_slice(b" - too short, < 20]");
        return;
    }
    out.extend_from_slice(b" [|tcp]");
}

/// tcpdump's TCP flag letters, in its table order; `none` when no bit is set.
pub fn tcp_flag_letters(out: &mut Vec<u8>, flags: u8) {
    const LETTERS: [(u8, u8); 8] = [
        (tcp_flags::FIN, b'F'),
        (tcp_flags::SYN, b'S'),
        (tcp_flags::RST, b'R'),
        (tcp_flags::PSH, b'P'),
        (tcp_flags::ACK, b'.'),
        (tcp_flags::URG, b'U'),
        (tcp_flags::ECE, b'E'),
        (tcp_flags::CWR, b'W'),
    ];
    if flags == 0 {
        out.extend_from_slice(b"none");
        return;
    }
    for (bit, c) in LETTERS {
        if flags & bit != 0 {
            out.push(c);
        }
    }
}

/// The option list, walked as tcpdump 4.99 walks it (print-tcp.c). `opts`
/// holds the captured option bytes, `hlen` how many the data offset
/// declares. `printed` becomes true once one option has been printed (tcpdump's
/// `ch`).
/// What the option walk needs from the segment, and what it reports back.
struct OptWalk {
    tcp_flags: u8,
    /// tcpdump's conversation direction and bases, for relative SACK edges.
    rev: bool,
    thseq: u32,
    thack: u32,
    /// The whole segment is in the capture (TCP-MD5 needs it).
    payload_captured: bool,
    /// An option was printed (tcpdump's `ch`): a separator is due.
    printed: bool,
    /// An MPTCP option was looked at: truncation marks say `mptcp`.
    saw_mptcp: bool,
}

fn tcp_options(out: &mut Vec<u8>, opts: &[u8], mut hlen: u32, w: &mut OptWalk) -> Result<(), Stop> {
    let OptWalk { tcp_flags, rev, thseq, thack, payload_captured, .. } = *w;
    let mut cp = 0usize;
    // A checked read of `l` bytes at `cp`: past the declared option space is
    // a bad option, past the capture a truncation.
    let lencheck = |cp: usize, hlen: u32, l: u32| -> Result<(), Stop> {
        if l > hlen {
            return Err(Stop::BadOpt);
        }
        if cp + l as usize > opts.len() {
            return Err(Stop::Trunc);
        }
        Ok(())
    };
    while hlen > 0 {
        if w.printed {
            out.push(b',');
        }
        let opt = *opts.get(cp).ok_or(Stop::TruncJump)?;
        cp += 1;
        let len: u32 = if opt == 0 || opt == 1 {
            1
        } else {
            let l = *opts.get(cp).ok_or(Stop::TruncJump)? as u32;
            cp += 1;
            if l < 2 || l > hlen {
                return Err(Stop::BadOpt);
            }
            hlen -= 1;
            l
        };
        hlen -= 1;
        out.extend_from_slice(option_name(opt));
        let mut datalen: u32 = 0;
        match opt {
            2 => {
                datalen = 2;
                lencheck(cp, hlen, datalen)?;
                out.push(b' ');
                dec(out, be16(opts, cp) as u64);
            }
            3 => {
                datalen = 1;
                lencheck(cp, hlen, datalen)?;
                out.push(b' ');
                dec(out, opts[cp] as u64);
            }
            5 => {
                datalen = len - 2;
                if datalen % 8 != 0 {
                    out.extend_from_slice(b" invalid sack");
                } else {
                    out.push(b' ');
                    dec(out, (datalen / 8) as u64);
                    out.push(b' ');
                    let mut i = 0;
                    while i < datalen {
                        lencheck(cp, hlen, i + 4)?;
                        let mut s = be32(opts, cp + i as usize);
                        lencheck(cp, hlen, i + 8)?;
                        let mut e = be32(opts, cp + i as usize + 4);
                        let base = if rev { thseq } else { thack };
                        s = s.wrapping_sub(base);
                        e = e.wrapping_sub(base);
                        out.push(b'{');
                        dec(out, s as u64);
                        out.push(b':');
                        dec(out, e as u64);
                        out.push(b'}');
                        i += 8;
                    }
                }
            }
            6 | 7 | 11 | 12 | 13 => {
                datalen = 4;
                lencheck(cp, hlen, datalen)?;
                out.push(b' ');
                dec(out, be32(opts, cp) as u64);
            }
            8 => {
                datalen = 8;
                lencheck(cp, hlen, datalen)?;
                out.extend_from_slice(b" val ");
                dec(out, be32(opts, cp) as u64);
                out.extend_from_slice(b" ecr ");
                dec(out, be32(opts, cp + 4) as u64);
            }
            19 => {
                datalen = 16;
                lencheck(cp, hlen, datalen)?;
                // What a libcrypto build of tcpdump prints without -M (it
                // first needs the whole segment to compute a signature).
                out.extend_from_slice(if payload_captured {
                    b" shared secret not supplied with -M, can't check - "
                } else {
                    b" snaplen too short, can't check - "
                });
                for &b in &opts[cp..cp + 16] {
                    hex_pad(out, b as u64, 2);
                }
            }
            20 => {
                datalen = 2;
                lencheck(cp, hlen, datalen)?;
                out.extend_from_slice(b" cap ");
                hex_pad(out, opts[cp] as u64, 2);
                out.extend_from_slice(b" id ");
                dec(out, opts[cp + 1] as u64);
            }
            29 => {
                datalen = len - 2;
                // RFC 5925 §2.2: the length is at least 4.
                if datalen < 2 {
                    out.extend_from_slice(b" (invalid)");
                } else {
                    lencheck(cp, hlen, 1)?;
                    out.extend_from_slice(b" keyid ");
                    dec(out, opts[cp] as u64);
                    lencheck(cp, hlen, 2)?;
                    out.extend_from_slice(b" rnextkeyid ");
                    dec(out, opts[cp + 1] as u64);
                    if datalen > 2 {
                        out.extend_from_slice(b" mac 0x");
                        for i in 2..datalen {
                            lencheck(cp, hlen, i + 1)?;
                            hex_pad(out, opts[cp + i as usize] as u64, 2);
                        }
                    }
                }
            }
            0 | 1 | 4 => {}
            28 => {
                datalen = 2;
                lencheck(cp, hlen, datalen)?;
                let v = be16(opts, cp);
                out.extend_from_slice(b" 0x");
                hex(out, v as u64);
                // RFC 5482 §3: granularity bit, minutes or seconds.
                let secs = if v & 1 != 0 { (v as u32 >> 1) * 60 } else { v as u32 >> 1 };
                out.push(b' ');
                dec(out, secs as u64);
            }
            30 => {
                datalen = len - 2;
                lencheck(cp, hlen, datalen)?;
                w.saw_mptcp = true;
                let whole = &opts[cp - 2..cp - 2 + len as usize];
                if !mptcp(out, whole, tcp_flags) {
                    return Err(Stop::BadOpt);
                }
            }
            34 => {
                datalen = len - 2;
                lencheck(cp, hlen, datalen)?;
                out.push(b' ');
                fastopen(out, &opts[cp..cp + datalen as usize], false);
            }
            254 => {
                datalen = len - 2;
                lencheck(cp, hlen, datalen)?;
                if datalen < 2 {
                    return Err(Stop::BadOpt);
                }
                let magic = be16(opts, cp);
                out.push(b'-');
                if magic == 0xf989 {
                    // RFC 7413 §4.1.1 before kind 34: the experimental kind.
                    fastopen(out, &opts[cp + 2..cp + datalen as usize], true);
                } else {
                    hex_pad(out, magic as u64, 4);
                }
            }
            _ => {
                datalen = len - 2;
                if datalen > 0 {
                    out.extend_from_slice(b" 0x");
                }
                for i in 0..datalen {
                    lencheck(cp, hlen, i + 1)?;
                    hex_pad(out, opts[cp + i as usize] as u64, 2);
                }
            }
        }
        cp += datalen as usize;
        hlen -= datalen;
        let consumed = datalen + if opt == 0 || opt == 1 { 1 } else { 2 };
        if consumed != len {
            out.extend_from_slice(b"[len ");
            dec(out, len as u64);
            out.push(b']');
        }
        w.printed = true;
        if opt == 0 {
            break;
        }
    }
    Ok(())
}

fn option_name(opt: u8) -> &'static [u8] {
    match opt {
        0 => b"eol",
        1 => b"nop",
        2 => b"mss",
        3 => b"wscale",
        4 => b"sackOK",
        5 => b"sack",
        6 => b"echo",
        7 => b"echoreply",
        8 => b"TS",
        11 => b"cc",
        12 => b"ccnew",
        13 => b"",
        19 => b"md5",
        20 => b"scps",
        28 => b"uto",
        29 => b"tcp-ao",
        30 => b"mptcp",
        34 => b"tfo",
        254 => b"exp",
        other => unknown_name(other),
    }
}

/// `unknown-N` for every kind tcpdump has no name for, built once.
fn unknown_name(kind: u8) -> &'static [u8] {
    static NAMES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| (0..=255u16).map(|k| format!("unknown-{k}").into_bytes()).collect());
    &names[kind as usize]
}

fn fastopen(out: &mut Vec<u8>, cookie: &[u8], exp: bool) {
    if exp {
        out.extend_from_slice(b"tfo");
    }
    if cookie.is_empty() {
        out.extend_from_slice(b" cookiereq");
    } else if cookie.len() % 2 != 0 || cookie.len() < 4 || cookie.len() > 16 {
        // RFC 7413 §4.1.1: 4 to 16 bytes, even.
        out.extend_from_slice(b" (invalid)");
    } else {
        out.extend_from_slice(b" cookie ");
        for &b in cookie {
            hex_pad(out, b as u64, 2);
        }
    }
}

/// One MPTCP option as tcpdump's development version prints it
/// (print-mptcp.c); `opt` is the whole option, kind and length included.
/// Returns false where tcpdump returns 0 (the caller prints `[bad opt]`).
/// Field layout per RFC 8684 §3 (v1) and RFC 6824 §3 (v0).
fn mptcp(out: &mut Vec<u8>, opt: &[u8], tcp_fl: u8) -> bool {
    let len = opt.len();
    if len < 3 {
        return false;
    }
    let subtype = opt[2] >> 4;
    out.push(b' ');
    dec(out, len as u64);
    out.push(b' ');
    out.extend_from_slice(match subtype {
        0 => b"capable",
        1 => b"join",
        2 => b"dss",
        3 => b"add-addr",
        4 => b"rem-addr",
        5 => b"prio",
        6 => b"fail",
        7 => b"fast-close",
        8 => b"tcprst",
        _ => b"unknown",
    });
    let syn = tcp_fl & tcp_flags::SYN != 0;
    let syn_ack = tcp_fl & (tcp_flags::SYN | tcp_flags::ACK);
    match subtype {
        // MP_CAPABLE (RFC 8684 §3.1): 4 or 12 bytes on a SYN, 20/22/24 on
        // the ACKs that follow.
        0 => {
            if !((len == 12 || len == 4) && syn) && !(matches!(len, 20 | 22 | 24) && syn_ack == tcp_flags::ACK) {
                return false;
            }
            let version = opt[2] & 0x0f;
            if version > 1 {
                out.extend_from_slice(b" Unknown Version (");
                dec(out, version as u64);
                out.push(b')');
                return true;
            }
            out.extend_from_slice(b" v");
            dec(out, version as u64);
            let flags = opt[3];
            out.extend_from_slice(b" flags [");
            bits(
                out,
                flags,
                &[
                    (0x80, b'A'),
                    (0x40, b'B'),
                    (0x20, b'C'),
                    (0x10, b'D'),
                    (0x08, b'E'),
                    (0x04, b'F'),
                    (0x02, b'G'),
                    (0x01, b'H'),
                ],
            );
            out.push(b']');
            let csum = flags & 0x80 != 0;
            if csum {
                out.extend_from_slice(b" csum");
            }
            if len == 12 || len >= 20 {
                out.extend_from_slice(b" {0x");
                hex(out, be64(opt, 4));
                if len >= 20 {
                    out.extend_from_slice(b",0x");
                    hex(out, be64(opt, 12));
                }
                if (len == 22 && !csum) || len == 24 {
                    out.extend_from_slice(b",data_len=");
                    dec(out, be16(opt, 20) as u64);
                }
                out.push(b'}');
            }
            true
        }
        // MP_JOIN (RFC 8684 §3.2): 12 on the SYN, 16 on the SYN/ACK, 24 on
        // the third ACK.
        1 => {
            let fits = match len {
                12 => syn,
                16 => syn_ack == tcp_flags::SYN | tcp_flags::ACK,
                24 => tcp_fl & tcp_flags::ACK != 0,
                _ => false,
            };
            if !fits {
                return false;
            }
            if len != 24 {
                if opt[2] & 0x01 != 0 {
                    out.extend_from_slice(b" backup");
                }
                out.extend_from_slice(b" id ");
                dec(out, opt[3] as u64);
            }
            match len {
                12 => {
                    out.extend_from_slice(b" token 0x");
                    hex(out, be32(opt, 4) as u64);
                    out.extend_from_slice(b" nonce 0x");
                    hex(out, be32(opt, 8) as u64);
                }
                16 => {
                    out.extend_from_slice(b" hmac 0x");
                    hex(out, be64(opt, 4));
                    out.extend_from_slice(b" nonce 0x");
                    hex(out, be32(opt, 12) as u64);
                }
                _ => {
                    out.extend_from_slice(b" hmac 0x");
                    for &b in &opt[4..24] {
                        hex_pad(out, b as u64, 2);
                    }
                }
            }
            true
        }
        // DSS (RFC 8684 §3.3): the flags say which fields follow; the
        // checksum is whatever 2 bytes remain. tcpdump prints each field as
        // it reads it, so a short option shows its first fields.
        2 => {
            if len < 4 || syn {
                return false;
            }
            let flags = opt[3];
            if flags & 0x10 != 0 {
                out.extend_from_slice(b" fin");
            }
            let mut p = 4;
            let left = |p: usize| len - p;
            if flags & 0x01 != 0 {
                out.extend_from_slice(b" ack ");
                if flags & 0x02 != 0 {
                    if left(p) < 8 {
                        return false;
                    }
                    dec(out, be64(opt, p));
                    p += 8;
                } else {
                    if left(p) < 4 {
                        return false;
                    }
                    dec(out, be32(opt, p) as u64);
                    p += 4;
                }
            }
            if flags & 0x04 != 0 {
                out.extend_from_slice(b" seq ");
                if flags & 0x08 != 0 {
                    if left(p) < 8 {
                        return false;
                    }
                    dec(out, be64(opt, p));
                    p += 8;
                } else {
                    if left(p) < 4 {
                        return false;
                    }
                    dec(out, be32(opt, p) as u64);
                    p += 4;
                }
                if left(p) < 4 {
                    return false;
                }
                out.extend_from_slice(b" subseq ");
                dec(out, be32(opt, p) as u64);
                p += 4;
                if left(p) < 2 {
                    return false;
                }
                out.extend_from_slice(b" len ");
                dec(out, be16(opt, p) as u64);
                p += 2;
                if left(p) >= 2 {
                    out.extend_from_slice(b" csum 0x");
                    hex(out, be16(opt, p) as u64);
                    p += 2;
                }
            }
            left(p) == 0
        }
        // ADD_ADDR (RFC 8684 §3.4.1, RFC 6824 §3.4.1): the length gives the
        // family, the port and the HMAC.
        3 => {
            if !matches!(len, 8 | 10 | 16 | 18 | 20 | 22 | 28 | 30) {
                return false;
            }
            out.extend_from_slice(match opt[2] & 0x0f {
                0x6 => b" v0-ip6",
                0x4 => b" v0-ip4",
                0x1 => b" v1-echo",
                0x0 => b" v1",
                _ => b" [bad version/echo]",
            });
            out.extend_from_slice(b" id ");
            dec(out, opt[3] as u64);
            out.push(b' ');
            let (alen, port, hmac) = match len {
                8 => (4, false, false),
                10 => (4, true, false),
                16 => (4, false, true),
                18 => (4, true, true),
                20 => (16, false, false),
                22 => (16, true, false),
                28 => (16, false, true),
                _ => (16, true, true),
            };
            if alen == 4 {
                ipv4(out, [opt[4], opt[5], opt[6], opt[7]]);
            } else {
                let mut a = [0u8; 16];
                a.copy_from_slice(&opt[4..20]);
                addr(out, IpAddr::V6(a.into()));
            }
            let mut p = 4 + alen;
            if port {
                out.push(b':');
                dec(out, be16(opt, p) as u64);
                p += 2;
            }
            if hmac {
                out.extend_from_slice(b" hmac 0x");
                hex(out, be64(opt, p));
            }
            true
        }
        // REMOVE_ADDR (RFC 8684 §3.4.2).
        4 => {
            if len < 4 {
                return false;
            }
            out.extend_from_slice(b" id");
            for &id in &opt[3..] {
                out.push(b' ');
                dec(out, id as u64);
            }
            true
        }
        // MP_PRIO (RFC 8684 §3.3.8; v0 adds an address id).
        5 => {
            if len != 3 && len != 4 {
                return false;
            }
            out.extend_from_slice(if opt[2] & 0x01 != 0 { b" backup" } else { b" non-backup" });
            if len == 4 {
                out.extend_from_slice(b" id ");
                dec(out, opt[3] as u64);
            }
            true
        }
        // MP_FAIL (RFC 8684 §3.7).
        6 => {
            if len != 12 {
                return false;
            }
            out.extend_from_slice(b" seq ");
            dec(out, be64(opt, 4));
            true
        }
        // MP_FASTCLOSE (RFC 8684 §3.5).
        7 => {
            if len != 12 {
                return false;
            }
            out.extend_from_slice(b" key 0x");
            hex(out, be64(opt, 4));
            true
        }
        // MP_TCPRST (RFC 8684 §3.6).
        8 => {
            if len != 4 {
                return false;
            }
            out.extend_from_slice(b" flags [");
            bits(out, opt[2], &[(0x08, b'U'), (0x04, b'V'), (0x02, b'W'), (0x01, b'T')]);
            out.extend_from_slice(b"] reason ");
            match tcprst_reason(opt[3]) {
                Some(name) => out.extend_from_slice(name.as_bytes()),
                None => {
                    out.extend_from_slice(b"unknown (0x");
                    hex_pad(out, opt[3] as u64, 2);
                    out.push(b')');
                }
            }
            true
        }
        _ => true,
    }
}

/// MP_TCPRST reason names as tcpdump prints them (RFC 8684 §3.6).
pub fn tcprst_reason(code: u8) -> Option<&'static str> {
    Some(match code {
        0 => "Unspecified error",
        1 => "MPTCP-specific error",
        2 => "Lack of resources",
        3 => "Administratively prohibited",
        4 => "Too much outstanding data",
        5 => "Unacceptable performance",
        6 => "Middlebox interference",
        _ => return None,
    })
}

/// tcpdump's `bittok2str_nosep(..., "none", v)`.
fn bits(out: &mut Vec<u8>, v: u8, table: &[(u8, u8)]) {
    let start = out.len();
    for &(bit, c) in table {
        if v & bit != 0 {
            out.push(c);
        }
    }
    if out.len() == start {
        out.extend_from_slice(b"none");
    }
}

/// ` [RST text]` (tcpdump prints up to 30 bytes of a reset's payload with -v).
fn rst_data(out: &mut Vec<u8>, payload: &[u8], wire_len: u32) {
    const MAX: usize = 30;
    out.extend_from_slice(if payload.len() as u64 >= wire_len as u64 { b" [RST" } else { b" [!RST" });
    let mut n = wire_len as usize;
    if n > MAX {
        n = MAX;
        out.push(b'+');
    }
    out.push(b' ');
    for &c in payload.iter().take(n) {
        print_char(out, c);
    }
    out.push(b']');
}

/// tcpdump's `fn_print_char`.
fn print_char(out: &mut Vec<u8>, mut c: u8) {
    if !c.is_ascii() {
        c &= 0x7f;
        out.extend_from_slice(b"M-");
    }
    if !(0x20..0x7f).contains(&c) {
        out.push(b'^');
        out.push(c ^ 0x40);
    } else {
        out.push(c);
    }
}

/// The application protocols tcpdump recognises by port that show up next
/// to MPTCP: the SSH version banner and HTTP request/response lines.
fn tcp_payload(out: &mut Vec<u8>, sport: u16, dport: u16, payload: &[u8], wire_len: u32, verbose: bool) {
    let either = |p: u16| sport == p || dport == p;
    if either(22) {
        ssh_banner(out, payload, wire_len as usize);
    } else if either(80) || either(8080) {
        http(out, payload, wire_len as usize, verbose);
    }
}

/// tcpdump's `ssh_print`: the version line when the segment starts with
/// `SSH-` and holds a line end; reading past the capture ends the line with
/// ` [|ssh]`.
fn ssh_banner(out: &mut Vec<u8>, p: &[u8], len: usize) {
    let byte = |i: usize| p.get(i).copied();
    for (i, want) in b"SSH-".iter().enumerate() {
        match byte(i) {
            None => {
                out.extend_from_slice(b" [|ssh]");
                return;
            }
            Some(c) if c != *want => return,
            Some(_) => {}
        }
    }
    let mut i = 4;
    while i < len {
        let Some(c) = byte(i) else {
            out.extend_from_slice(b" [|ssh]");
            return;
        };
        if c == b'\n' {
            break;
        }
        if c == b'\r' {
            if i + 1 >= len {
                return;
            }
            match byte(i + 1) {
                None => {
                    out.extend_from_slice(b" [|ssh]");
                    return;
                }
                Some(b'\n') => break,
                Some(_) => return,
            }
        }
        if !(0x20..0x7f).contains(&c) {
            // Binary data, not a version line.
            return;
        }
        i += 1;
    }
    if i >= len {
        return;
    }
    out.extend_from_slice(b": SSH: ");
    out.extend_from_slice(&p[..i]);
}

/// HTTP request methods tcpdump recognises (print-http.c).
const HTTP_METHODS: [&[u8]; 38] = [
    b"GET",
    b"PUT",
    b"COPY",
    b"HEAD",
    b"LOCK",
    b"MOVE",
    b"POLL",
    b"POST",
    b"BCOPY",
    b"BMOVE",
    b"MKCOL",
    b"TRACE",
    b"LABEL",
    b"MERGE",
    b"DELETE",
    b"SEARCH",
    b"UNLOCK",
    b"REPORT",
    b"UPDATE",
    b"NOTIFY",
    b"BDELETE",
    b"CONNECT",
    b"OPTIONS",
    b"CHECKIN",
    b"PROPFIND",
    b"CHECKOUT",
    b"CCM_POST",
    b"SUBSCRIBE",
    b"PROPPATCH",
    b"BPROPFIND",
    b"BPROPPATCH",
    b"UNCHECKOUT",
    b"MKACTIVITY",
    b"MKWORKSPACE",
    b"UNSUBSCRIBE",
    b"RPC_CONNECT",
    b"VERSION-CONTROL",
    b"BASELINE-CONTROL",
];

/// tcpdump's `fetch_token`: the token at `idx` (printable ASCII up to
/// white space, at most 127 bytes) and the index after the white space that
/// follows it; `None` when there is no token.
fn fetch_token(p: &[u8], mut idx: usize, len: usize) -> Option<(&[u8], usize)> {
    let start = idx;
    while idx < len {
        let c = *p.get(idx)?;
        if !c.is_ascii() {
            return None;
        }
        if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
            break;
        }
        if !(0x20..0x7f).contains(&c) || idx - start + 2 > 129 {
            return None;
        }
        idx += 1;
    }
    if idx == start {
        return None;
    }
    let token = &p[start..idx];
    while idx < len {
        match p.get(idx) {
            Some(b' ' | b'\t') => idx += 1,
            _ => break,
        }
    }
    Some((token, idx))
}

/// Why a text line could not be printed whole.
enum TextEnd {
    /// The next line starts here.
    Next(usize),
    /// Binary data or a line cut by the segment: stop quietly.
    Stop,
    /// The capture ended first: tcpdump's ` [|proto]`.
    Trunc,
}

/// tcpdump's `print_txt_line`: one line of text at `idx`, after `prefix`.
fn txt_line(out: &mut Vec<u8>, prefix: &[u8], p: &[u8], idx: usize, len: usize) -> TextEnd {
    let start = idx;
    let mut i = idx;
    while i < len {
        let Some(&c) = p.get(i) else { return TextEnd::Trunc };
        match c {
            b'\n' => {
                out.extend_from_slice(prefix);
                out.extend_from_slice(&p[start..i]);
                return TextEnd::Next(i + 1);
            }
            b'\r' => {
                if i + 1 >= len {
                    return TextEnd::Stop;
                }
                return match p.get(i + 1) {
                    None => TextEnd::Trunc,
                    Some(b'\n') => {
                        out.extend_from_slice(prefix);
                        out.extend_from_slice(&p[start..i]);
                        TextEnd::Next(i + 2)
                    }
                    Some(_) => TextEnd::Stop,
                };
            }
            c if !(0x20..0x7f).contains(&c) && c != b'\t' => return TextEnd::Stop,
            _ => i += 1,
        }
    }
    // Printable to the end of the segment, with no line end: tcpdump
    // prints it and marks it cut.
    out.extend_from_slice(prefix);
    out.extend_from_slice(&p[start..i]);
    TextEnd::Trunc
}

/// tcpdump's `txtproto_print` for HTTP: the first request or response line,
/// or with -v every text line on a line of its own.
fn http(out: &mut Vec<u8>, p: &[u8], len: usize, verbose: bool) {
    out.extend_from_slice(b": HTTP");
    let mut print_this = false;
    if let Some((token, idx)) = fetch_token(p, 0, len) {
        print_this = HTTP_METHODS.iter().any(|m| token.eq_ignore_ascii_case(m));
        // The response code is the second token (`HTTP/1.1 200 OK`).
        if let Some((code, _)) = fetch_token(p, idx, len) {
            print_this |= code.len() == 3 && code.iter().all(|c| c.is_ascii_digit());
        }
    }
    if !print_this {
        return;
    }
    if verbose {
        out.extend_from_slice(b", length: ");
        dec(out, len as u64);
        let mut idx = 0;
        while idx < len {
            match txt_line(out, b"\n\t", p, idx, len) {
                TextEnd::Next(n) => idx = n,
                TextEnd::Stop => return,
                TextEnd::Trunc => {
                    out.extend_from_slice(b" [|http]");
                    return;
                }
            }
        }
    } else if let TextEnd::Trunc = txt_line(out, b": ", p, 0, len) {
        out.extend_from_slice(b" [|http]");
    }
}

/// The one's-complement sum of the pseudo-header and `segment`: 0 when the
/// checksum in it is right (RFC 9293 §3.1, RFC 8200 §8.1).
fn transport_checksum(ip: &IpInfo, proto: u8, segment: &[u8]) -> u16 {
    let mut c = InternetChecksum::new();
    match (ip.src, ip.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            c.add(&s.octets());
            c.add(&d.octets());
            c.add(&[0, proto]);
            c.add(&(segment.len() as u16).to_be_bytes());
        }
        (s, d) => {
            c.add(&addr_bytes(s));
            c.add(&addr_bytes(d));
            c.add(&(segment.len() as u32).to_be_bytes());
            c.add(&[0, 0, 0, proto]);
        }
    }
    c.add(segment);
    c.finish()
}

/// What the checksum field should hold, given the one it holds and the sum
/// computed over the segment (RFC 1624 §3, tcpdump's `in_cksum_shouldbe`).
fn cksum_shouldbe(sum: u16, computed: u16) -> u16 {
    let mut s = sum as u32 + computed as u32;
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

fn ip_proto_name(p: u8) -> &'static [u8] {
    match p {
        0 => b"Options",
        1 => b"ICMP",
        2 => b"IGMP",
        4 => b"IPIP",
        6 => b"TCP",
        17 => b"UDP",
        33 => b"DCCP",
        41 => b"IPv6",
        43 => b"Routing",
        44 => b"Frag",
        46 => b"RSVP",
        47 => b"GRE",
        50 => b"ESP",
        51 => b"AH",
        58 => b"ICMPv6",
        59 => b"NONE",
        // 60 (destination options) has no name in tcpdump 4.99's protocol
        // table: `next-header unknown (60)`.
        89 => b"OSPF",
        103 => b"PIM",
        112 => b"VRRP",
        132 => b"SCTP",
        135 => b"Mobility",
        _ => b"unknown",
    }
}

/// `(tos 0x0, ttl 64, id 43546, offset 0, flags [DF], proto TCP (6), length 64)`
/// and the line break tcpdump -v puts after it.
fn ip4_verbose(out: &mut Vec<u8>, ip: &IpInfo, hdr: &[u8]) {
    out.extend_from_slice(b"(tos 0x");
    hex(out, ip.tos as u64);
    match ip.tos & 0x03 {
        1 => out.extend_from_slice(b",ECT(1)"),
        2 => out.extend_from_slice(b",ECT(0)"),
        3 => out.extend_from_slice(b",CE"),
        _ => {}
    }
    if ip.ttl >= 1 {
        out.extend_from_slice(b", ttl ");
        dec(out, ip.ttl as u64);
    }
    out.extend_from_slice(b", id ");
    dec(out, ip.id as u64);
    out.extend_from_slice(b", offset ");
    dec(out, ip.frag_offset as u64 * 8);
    out.extend_from_slice(b", flags [");
    let reserved = hdr.get(6).is_some_and(|b| b & 0x80 != 0);
    let mut any = false;
    for (set, name) in [(ip.more_fragments, &b"+"[..]), (ip.dont_fragment, b"DF"), (reserved, b"rsvd")] {
        if set {
            if any {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(name);
            any = true;
        }
    }
    if !any {
        out.extend_from_slice(b"none");
    }
    out.extend_from_slice(b"], proto ");
    out.extend_from_slice(ip_proto_name(ip.protocol));
    out.extend_from_slice(b" (");
    dec(out, ip.protocol as u64);
    out.extend_from_slice(b"), length ");
    dec(out, ip.total_len as u64);
    let hl = ip.header_len as usize;
    if hl > 20 && hdr.len() >= hl {
        out.extend_from_slice(b", options (");
        ip4_options(out, &hdr[20..hl]);
        out.push(b')');
    }
    if hdr.len() >= hl {
        let mut c = InternetChecksum::new();
        c.add(&hdr[..hl]);
        let sum = c.finish();
        if sum != 0 {
            out.extend_from_slice(b", bad cksum ");
            hex(out, ip.checksum as u64);
            out.extend_from_slice(b" (->");
            hex(out, cksum_shouldbe(ip.checksum, sum) as u64);
            out.extend_from_slice(b")!");
        }
    }
    out.extend_from_slice(b")\n    ");
}

/// IPv4 options (RFC 791 §3.1), named as tcpdump names them.
fn ip4_options(out: &mut Vec<u8>, mut o: &[u8]) {
    let mut first = true;
    while let Some(&kind) = o.first() {
        if !first {
            out.push(b',');
        }
        first = false;
        let len = if kind <= 1 { 1 } else { o.get(1).copied().unwrap_or(0) as usize };
        out.extend_from_slice(match kind {
            0 => b"EOL",
            1 => b"NOP",
            7 => b"RR",
            68 => b"TS",
            130 => b"security",
            131 => b"LSRR",
            137 => b"SSRR",
            148 => b"RA",
            _ => b"unknown",
        });
        if kind == 0 {
            break;
        }
        if len < 1 || len > o.len() {
            out.extend_from_slice(b" [bad length]");
            break;
        }
        o = &o[len..];
    }
}

/// `(flowlabel 0xa6192, hlim 64, next-header TCP (6) payload length: 44) `
fn ip6_verbose(out: &mut Vec<u8>, ip: &IpInfo, hdr: &[u8], first_nh: u8) {
    out.push(b'(');
    if ip.tos != 0 {
        out.extend_from_slice(b"class 0x");
        hex_pad(out, ip.tos as u64, 2);
        out.extend_from_slice(b", ");
    }
    if ip.flow_label != 0 {
        out.extend_from_slice(b"flowlabel 0x");
        hex_pad(out, ip.flow_label as u64, 5);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(b"hlim ");
    dec(out, ip.ttl as u64);
    out.extend_from_slice(b", next-header ");
    out.extend_from_slice(ip_proto_name(first_nh));
    out.extend_from_slice(b" (");
    dec(out, first_nh as u64);
    out.extend_from_slice(b") payload length: ");
    let plen = hdr.get(4..6).map_or(ip.total_len.saturating_sub(40), |b| u16::from_be_bytes([b[0], b[1]]) as u32);
    dec(out, plen as u64);
    out.extend_from_slice(b") ");
}

/// The IPv6 extension headers between the fixed header and the transport
/// (RFC 8200 §4), by name.
fn ip6_ext_names(out: &mut Vec<u8>, hdr: &[u8], mut nh: u8, verbose: bool) {
    let mut off = 40;
    for _ in 0..8 {
        let name: &[u8] = match nh {
            0 => b"HBH",
            43 => b"srcrt",
            44 => b"frag",
            60 => b"DSTOPT",
            51 => b"AH",
            _ => return,
        };
        out.extend_from_slice(name);
        if verbose && (nh == 0 || nh == 60) {
            out.extend_from_slice(b" (padn)");
        }
        out.push(b' ');
        let Some(&next) = hdr.get(off) else { return };
        let len = if nh == 44 {
            8
        } else if nh == 51 {
            (hdr.get(off + 1).copied().unwrap_or(0) as usize + 2) * 4
        } else {
            (hdr.get(off + 1).copied().unwrap_or(0) as usize + 1) * 8
        };
        off += len;
        nh = next;
    }
}

/// tcpdump 4.99's `udp_print`: the checksum with -v for IPv6, with -vv for
/// IPv4 (where 0 means none was computed).
fn udp(out: &mut Vec<u8>, ip: &IpInfo, sport: u16, dport: u16, ulen: u16, raw: &[u8], verbose: u8) {
    let check = if ip.is_v6() { verbose > 0 } else { verbose > 1 };
    if check && raw.len() >= ulen as usize && ulen >= 8 {
        let field = u16::from_be_bytes([raw[6], raw[7]]);
        if field == 0 && !ip.is_v6() {
            out.extend_from_slice(b"[no cksum] ");
        } else {
            let sum = transport_checksum(ip, 17, &raw[..ulen as usize]);
            if sum == 0 {
                out.extend_from_slice(b"[udp sum ok] ");
            } else {
                out.extend_from_slice(b"[bad udp cksum 0x");
                hex_pad(out, field as u64, 4);
                out.extend_from_slice(b" -> 0x");
                hex_pad(out, cksum_shouldbe(field, sum) as u64, 4);
                out.extend_from_slice(b"!] ");
            }
        }
    }
    let payload = raw.get(8..).unwrap_or(&[]);
    if (sport == 53 || dport == 53) && dns(out, payload) {
        out.extend_from_slice(b" (");
        dec(out, ulen.saturating_sub(8) as u64);
        out.push(b')');
        return;
    }
    out.extend_from_slice(b"UDP, length ");
    dec(out, ulen.saturating_sub(8) as u64);
}

/// A DNS query (RFC 1035 §4.1) as tcpdump prints it: `61359+ A? name.`
/// Returns false for what this printer does not handle (responses, several
/// questions), which fall back to the plain UDP line.
fn dns(out: &mut Vec<u8>, m: &[u8]) -> bool {
    if m.len() < 12 {
        return false;
    }
    let id = be16(m, 0);
    let flags = be16(m, 2);
    let qd = be16(m, 4);
    if flags & 0x8000 != 0 || qd != 1 || flags & 0x7800 != 0 {
        return false;
    }
    let mut name = Vec::with_capacity(64);
    let mut p = 12;
    loop {
        let Some(&l) = m.get(p) else { return false };
        p += 1;
        if l == 0 {
            break;
        }
        if l & 0xc0 != 0 || p + l as usize > m.len() {
            return false;
        }
        name.extend_from_slice(&m[p..p + l as usize]);
        name.push(b'.');
        p += l as usize;
    }
    if name.is_empty() {
        name.push(b'.');
    }
    if p + 4 > m.len() {
        return false;
    }
    let qtype = be16(m, p);
    let qclass = be16(m, p + 2);
    dec(out, id as u64);
    if flags & 0x0100 != 0 {
        out.push(b'+');
    }
    if flags & 0x0010 != 0 {
        out.push(b'%');
    }
    for (count, tag) in [(be16(m, 6), b'a'), (be16(m, 8), b'n')] {
        if count != 0 {
            out.extend_from_slice(b" [");
            dec(out, count as u64);
            out.push(tag);
            out.push(b']');
        }
    }
    let ar = be16(m, 10);
    if ar != 0 {
        out.extend_from_slice(b" [");
        dec(out, ar as u64);
        out.extend_from_slice(b"au]");
    }
    out.push(b' ');
    match qtype {
        1 => out.extend_from_slice(b"A"),
        2 => out.extend_from_slice(b"NS"),
        5 => out.extend_from_slice(b"CNAME"),
        6 => out.extend_from_slice(b"SOA"),
        12 => out.extend_from_slice(b"PTR"),
        15 => out.extend_from_slice(b"MX"),
        16 => out.extend_from_slice(b"TXT"),
        28 => out.extend_from_slice(b"AAAA"),
        33 => out.extend_from_slice(b"SRV"),
        65 => out.extend_from_slice(b"HTTPS"),
        255 => out.extend_from_slice(b"ANY"),
        t => {
            out.extend_from_slice(b"Type");
            dec(out, t as u64);
        }
    }
    if qclass != 1 {
        out.extend_from_slice(b" (Class ");
        dec(out, qclass as u64);
        out.push(b')');
    }
    out.extend_from_slice(b"? ");
    for &c in &name {
        print_char(out, c);
    }
    true
}

fn icmp_check(out: &mut Vec<u8>, raw: &[u8], len: u32, sum: impl Fn(&[u8]) -> u16, v6: bool) -> bool {
    if raw.len() < len as usize || len < 4 {
        return true;
    }
    let s = sum(&raw[..len as usize]);
    if s == 0 {
        return true;
    }
    let field = be16(raw, 2);
    if v6 {
        out.extend_from_slice(b"[bad icmp6 cksum 0x");
        hex_pad(out, field as u64, 4);
        out.extend_from_slice(b" -> 0x");
        hex_pad(out, cksum_shouldbe(field, s) as u64, 4);
        out.extend_from_slice(b"!] ");
    } else {
        out.extend_from_slice(b" (wrong icmp cksum ");
        hex(out, field as u64);
        out.extend_from_slice(b" (->");
        hex(out, cksum_shouldbe(field, s) as u64);
        out.extend_from_slice(b")!)");
    }
    false
}

/// ICMP (RFC 792): echo, unreachable, time exceeded; others by number.
fn icmp4(out: &mut Vec<u8>, ip: &IpInfo, raw: &[u8], verbose: bool) {
    let len = ip.payload_len();
    let (t, code) = (raw.first().copied().unwrap_or(0), raw.get(1).copied().unwrap_or(0));
    out.extend_from_slice(b"ICMP ");
    match t {
        0 | 8 if raw.len() >= 8 => {
            out.extend_from_slice(if t == 8 { b"echo request, id " } else { b"echo reply, id " });
            dec(out, be16(raw, 4) as u64);
            out.extend_from_slice(b", seq ");
            dec(out, be16(raw, 6) as u64);
        }
        3 => {
            // The offending datagram's header follows the 8-byte ICMP header.
            let inner = raw.get(8..).unwrap_or(&[]);
            let ihl = inner.first().map_or(0, |b| (b & 0x0f) as usize * 4);
            if code == 3 && inner.len() >= ihl + 4 && ihl >= 20 {
                ipv4(out, [inner[16], inner[17], inner[18], inner[19]]);
                out.extend_from_slice(match inner[9] {
                    6 => b" tcp port ",
                    17 => b" udp port ",
                    _ => b" port ",
                });
                dec(out, be16(inner, ihl + 2) as u64);
                out.extend_from_slice(b" unreachable");
            } else if inner.len() >= 20 {
                ipv4(out, [inner[16], inner[17], inner[18], inner[19]]);
                out.extend_from_slice(match code {
                    0 => b" net unreachable",
                    1 => b" host unreachable",
                    2 => b" protocol unreachable",
                    4 => b" unreachable - need to frag",
                    _ => b" unreachable",
                });
            } else {
                out.extend_from_slice(b"unreachable");
            }
        }
        11 => {
            out.extend_from_slice(if code == 0 { b"time exceeded in-transit" } else { b"ip reassembly time exceeded" })
        }
        _ => {
            out.extend_from_slice(b"type-#");
            dec(out, t as u64);
        }
    }
    out.extend_from_slice(b", length ");
    dec(out, len as u64);
    if verbose {
        icmp_check(out, raw, len, ones, false);
    }
}

fn ones(seg: &[u8]) -> u16 {
    let mut c = InternetChecksum::new();
    c.add(seg);
    c.finish()
}

/// ICMPv6 (RFC 4443, RFC 4861): the common messages by name.
fn icmp6(out: &mut Vec<u8>, ip: &IpInfo, raw: &[u8], verbose: bool) {
    let len = ip.payload_len();
    if verbose {
        let v6 = *ip;
        icmp_check(out, raw, len, |seg| transport_checksum(&v6, 58, seg), true);
    }
    out.extend_from_slice(b"ICMP6, ");
    let t = raw.first().copied().unwrap_or(0);
    let target = |out: &mut Vec<u8>| {
        if raw.len() >= 24 {
            let mut a = [0u8; 16];
            a.copy_from_slice(&raw[8..24]);
            addr(out, IpAddr::V6(a.into()));
        }
    };
    match t {
        128 | 129 if raw.len() >= 8 => {
            out.extend_from_slice(if t == 128 { b"echo request, id " } else { b"echo reply, id " });
            dec(out, be16(raw, 4) as u64);
            out.extend_from_slice(b", seq ");
            dec(out, be16(raw, 6) as u64);
            if verbose {
                return;
            }
        }
        1 => out.extend_from_slice(b"destination unreachable"),
        2 => out.extend_from_slice(b"packet too big"),
        3 => out.extend_from_slice(b"time exceeded in-transit"),
        133 => out.extend_from_slice(b"router solicitation"),
        134 => out.extend_from_slice(b"router advertisement"),
        135 => {
            out.extend_from_slice(b"neighbor solicitation, who has ");
            target(out);
        }
        136 => {
            out.extend_from_slice(b"neighbor advertisement, tgt is ");
            target(out);
        }
        143 => out.extend_from_slice(b"multicast listener report v2"),
        _ => {
            out.extend_from_slice(b"type-#");
            dec(out, t as u64);
        }
    }
    out.extend_from_slice(b", length ");
    dec(out, len as u64);
}

/// ARP for IPv4 over Ethernet (RFC 826).
fn arp(out: &mut Vec<u8>, a: &[u8], len: u32, verbose: bool) {
    out.extend_from_slice(b"ARP, ");
    if a.len() < 28 || be16(a, 0) != 1 || be16(a, 2) != 0x0800 || a[4] != 6 || a[5] != 4 {
        out.extend_from_slice(b"unknown hardware or protocol, length ");
        dec(out, len as u64);
        return;
    }
    if verbose {
        out.extend_from_slice(b"Ethernet (len 6), IPv4 (len 4), ");
    }
    let sha = &a[8..14];
    let spa = [a[14], a[15], a[16], a[17]];
    let tha = &a[18..24];
    let tpa = [a[24], a[25], a[26], a[27]];
    match be16(a, 6) {
        1 => {
            out.extend_from_slice(b"Request who-has ");
            ipv4(out, tpa);
            if tha.iter().any(|&b| b != 0) {
                out.extend_from_slice(b" (");
                mac(out, tha);
                out.push(b')');
            }
            out.extend_from_slice(b" tell ");
            ipv4(out, spa);
        }
        2 => {
            out.extend_from_slice(b"Reply ");
            ipv4(out, spa);
            out.extend_from_slice(b" is-at ");
            mac(out, sha);
        }
        op => {
            out.extend_from_slice(b"op ");
            dec(out, op as u64);
        }
    }
    out.extend_from_slice(b", length ");
    dec(out, len as u64);
}

/// tcpdump's `hex_and_ascii_print` with the `\n\t` prefix.
fn hexdump(out: &mut Vec<u8>, data: &[u8]) {
    for (i, line) in data.chunks(16).enumerate() {
        out.extend_from_slice(b"\n\t0x");
        hex_pad(out, (i * 16) as u64, 4);
        out.extend_from_slice(b":  ");
        for pair in 0..8 {
            for j in 0..2 {
                match line.get(pair * 2 + j) {
                    Some(&b) => hex_pad(out, b as u64, 2),
                    None => out.extend_from_slice(b"  "),
                }
            }
            if pair < 7 {
                out.push(b' ');
            }
        }
        out.extend_from_slice(b"  ");
        for &b in line {
            out.push(if (0x20..0x7f).contains(&b) { b } else { b'.' });
        }
    }
}

fn addr_bytes(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&v4.octets());
            b
        }
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// An address as tcpdump -n prints it (IPv6 per RFC 5952, as inet_ntop).
pub fn addr(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(v4) => ipv4(out, v4.octets()),
        IpAddr::V6(v6) => {
            use std::io::Write;
            // glibc's inet_ntop writes IPv4-compatible addresses (::a.b.c.d)
            // with a dotted quad, which Rust's Display no longer does.
            let o = v6.octets();
            if o[..12].iter().all(|&b| b == 0) && (o[12] != 0 || o[13] != 0) {
                out.extend_from_slice(b"::");
                ipv4(out, [o[12], o[13], o[14], o[15]]);
            } else {
                let _ = write!(out, "{v6}");
            }
        }
    }
}

fn ipv4(out: &mut Vec<u8>, o: [u8; 4]) {
    for (i, b) in o.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        dec(out, *b as u64);
    }
}

fn mac(out: &mut Vec<u8>, m: &[u8]) {
    for (i, b) in m.iter().enumerate() {
        if i > 0 {
            out.push(b':');
        }
        hex_pad(out, *b as u64, 2);
    }
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Decimal, as `%u`.
#[inline]
pub fn dec(out: &mut Vec<u8>, v: u64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

fn dec_i64(out: &mut Vec<u8>, v: i64) {
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(v).as_bytes());
}

/// Lower-case hex without padding, as `%x`.
#[inline]
pub fn hex(out: &mut Vec<u8>, v: u64) {
    let digits = if v == 0 { 1 } else { (64 - v.leading_zeros()).div_ceil(4) as usize };
    hex_pad(out, v, digits);
}

/// Lower-case hex, zero-padded to `width` digits, as `%0Nx`.
#[inline]
pub fn hex_pad(out: &mut Vec<u8>, v: u64, width: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let n = width.max(if v == 0 { 1 } else { (64 - v.leading_zeros()).div_ceil(4) as usize });
    for i in (0..n).rev() {
        let shift = i * 4;
        out.push(if shift >= 64 { b'0' } else { DIGITS[((v >> shift) & 0xf) as usize] });
    }
}

/// Decimal right-aligned in `width` columns, padded with `fill`.
fn pad_left(out: &mut Vec<u8>, v: u64, width: usize, fill: u8) {
    let mut b = itoa::Buffer::new();
    let s = b.format(v).as_bytes();
    for _ in s.len()..width {
        out.push(fill);
    }
    out.extend_from_slice(s);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::packet::decode;

    fn line(p: &mut Printer, lt: u32, frame: &[u8]) -> String {
        let meta = FrameMeta {
            number: 1,
            ts: Some(Timestamp::new(1_582_742_655, 949_492_000)),
            caplen: frame.len() as u32,
            len: frame.len() as u32,
            linktype: lt,
        };
        let mut out = Vec::new();
        p.write_packet(&mut out, &meta, &decode(lt, frame), frame);
        String::from_utf8(out).unwrap()
    }

    /// A raw-IP TCP segment with the given flags and options.
    fn seg(flags: u8, seq: u32, ack: u32, opts: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut o = opts.to_vec();
        while o.len() % 4 != 0 {
            o.push(0);
        }
        let tl = 20 + o.len() + payload.len();
        let mut f = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        f[2..4].copy_from_slice(&((20 + tl) as u16).to_be_bytes());
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&40000u16.to_be_bytes());
        t[2..4].copy_from_slice(&10000u16.to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[8..12].copy_from_slice(&ack.to_be_bytes());
        t[12] = ((20 + o.len()) / 4) as u8 * 16;
        t[13] = flags;
        t[14..16].copy_from_slice(&512u16.to_be_bytes());
        f.extend_from_slice(&t);
        f.extend_from_slice(&o);
        f.extend_from_slice(payload);
        f
    }

    fn opts_of(l: &str) -> &str {
        let s = l.find("options [").map(|i| i + 9).unwrap_or(0);
        &l[s..]
    }

    #[test]
    fn mptcp_capable_forms_print_like_tcpdump_dev() {
        let mut p = Printer::new(PrintOptions { timestamps: TimestampFormat::None, ..Default::default() });
        let l = line(&mut p, linktype::RAW, &seg(0x02, 1, 0, &[30, 4, 0x01, 0x01], &[]));
        assert_eq!(
            l,
            "IP 10.0.0.1.40000 > 10.0.0.2.10000: Flags [S], seq 1, win 512, options [mptcp 4 capable v1 flags [H]], length 0"
        );
        let mut o = vec![30, 22, 0x01, 0x81];
        o.extend_from_slice(&1u64.to_be_bytes());
        o.extend_from_slice(&0xabcu64.to_be_bytes());
        o.extend_from_slice(&16u16.to_be_bytes());
        let l = line(&mut p, linktype::RAW, &seg(0x10, 1, 1, &o, &[]));
        // 22 bytes with the checksum flag: no data_len (tcpdump: it must be 24).
        assert!(l.contains("mptcp 22 capable v1 flags [AH] csum {0x1,0xabc}"), "{l}");
        o[3] = 0x01;
        let l = line(&mut p, linktype::RAW, &seg(0x10, 1, 1, &o, &[]));
        assert!(l.contains("{0x1,0xabc,data_len=16}"), "{l}");
    }

    #[test]
    fn bad_option_ends_the_line() {
        let mut p = Printer::new(PrintOptions { timestamps: TimestampFormat::None, ..Default::default() });
        // tcpdump's mptcp-dss-oobr: a 3-byte DSS after other options.
        let o = [2, 4, 0x40, 0x0c, 4, 2, 8, 10, 0x23, 0x97, 0x55, 0x34, 0, 0, 0, 0, 30, 3, 0x20, 0];
        let l = line(&mut p, linktype::RAW, &seg(0x02, 1, 0, &o, &[]));
        assert_eq!(opts_of(&l), "mss 16396,sackOK,TS val 597120308 ecr 0,mptcp 3 dss[bad opt]]");
        // A bad first option: no closing bracket, as tcpdump.
        let l = line(&mut p, linktype::RAW, &seg(0x02, 1, 0, &[30, 1, 0, 0], &[]));
        assert_eq!(opts_of(&l), "[bad opt]");
    }

    #[test]
    fn tcprst_and_unknown_subtypes() {
        let mut p = Printer::new(PrintOptions { timestamps: TimestampFormat::None, ..Default::default() });
        let l = line(&mut p, linktype::RAW, &seg(0x14, 1, 1, &[30, 4, 0x81, 0x01], &[]));
        assert!(l.contains("mptcp 4 tcprst flags [T] reason MPTCP-specific error]"), "{l}");
        let l = line(&mut p, linktype::RAW, &seg(0x14, 1, 1, &[30, 4, 0x85, 0x09], &[]));
        assert!(l.contains("tcprst flags [VT] reason unknown (0x09)]"), "{l}");
        let l = line(&mut p, linktype::RAW, &seg(0x10, 1, 1, &[30, 4, 0xf0, 0x01], &[]));
        assert!(l.contains("mptcp 4 unknown]"), "{l}");
    }

    #[test]
    fn relative_sequence_numbers_follow_tcpdump() {
        let mut p = Printer::new(PrintOptions { timestamps: TimestampFormat::None, ..Default::default() });
        let _ = line(&mut p, linktype::RAW, &seg(0x02, 1000, 0, &[], &[]));
        // First ACK-bearing segment: recorded, printed absolute. The port
        // order makes this the "reverse" direction: its seq becomes the base.
        let l = line(&mut p, linktype::RAW, &seg(0x10, 1001, 5001, &[], &[]));
        assert!(l.contains("ack 5001,"), "{l}");
        let l = line(&mut p, linktype::RAW, &seg(0x18, 1001, 5001, &[], b"abc"));
        assert!(l.contains("seq 0:3, ack 1, win 512, length 3"), "{l}");
        let mut s =
            Printer::new(PrintOptions { absolute_seq: true, timestamps: TimestampFormat::None, ..Default::default() });
        let l = line(&mut s, linktype::RAW, &seg(0x18, 1001, 5001, &[], b"abc"));
        assert!(l.contains("seq 1001:1004, ack 5001"), "{l}");
    }

    #[test]
    fn timestamps() {
        let f = seg(0x02, 1, 0, &[], &[]);
        let mut p = Printer::new(PrintOptions { timestamps: TimestampFormat::Date, ..Default::default() });
        assert!(line(&mut p, linktype::RAW, &f).starts_with("2020-02-26 18:44:15.949492 IP "));
        let mut p =
            Printer::new(PrintOptions { timestamps: TimestampFormat::Time, frame_numbers: true, ..Default::default() });
        assert!(line(&mut p, linktype::RAW, &f).starts_with("    1  18:44:15.949492 IP "));
        let mut p = Printer::new(PrintOptions { timestamps: TimestampFormat::Epoch, ..Default::default() });
        assert!(line(&mut p, linktype::RAW, &f).starts_with("1582742655.949492 IP "));
        let mut p = Printer::new(PrintOptions { timestamps: TimestampFormat::SincePrevious, ..Default::default() });
        assert!(line(&mut p, linktype::RAW, &f).starts_with(" 00:00:00.000000 IP "));
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(18_318), (2020, 2, 26));
    }

    #[test]
    fn hex_formatting() {
        let mut o = Vec::new();
        hex(&mut o, 0);
        o.push(b' ');
        hex(&mut o, 0x82f);
        o.push(b' ');
        hex(&mut o, u64::MAX);
        o.push(b' ');
        hex_pad(&mut o, 0x5, 4);
        assert_eq!(o, b"0 82f ffffffffffffffff 0005");
    }

    #[test]
    fn verbose_ipv4_and_checksum() {
        let mut p = Printer::new(PrintOptions { verbose: 1, timestamps: TimestampFormat::None, ..Default::default() });
        let mut f = seg(0x02, 1, 0, &[], &[]);
        // Fill in valid IP and TCP checksums.
        let mut c = InternetChecksum::new();
        c.add(&f[..20]);
        let s = c.finish();
        f[10..12].copy_from_slice(&s.to_be_bytes());
        let l = line(&mut p, linktype::RAW, &f);
        assert!(
            l.starts_with("IP (tos 0x0, ttl 64, id 1, offset 0, flags [DF], proto TCP (6), length 40)\n    10.0.0.1"),
            "{l}"
        );
        assert!(l.contains(", cksum 0x0000 (incorrect -> 0x"), "{l}");
    }
}
