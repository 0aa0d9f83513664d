//! The TCP header as tcpdump 4.99's `tcp_print` prints it: flags, relative
//! sequence numbers, checksum, and the option list walked from the raw bytes
//! (the MPTCP option itself is [`super::mptcp`]'s).

use super::fmt::{addr, be16, be32, dec, hex, hex_pad};
use super::ip::{addr_bytes, cksum_shouldbe, endpoints, transport_checksum};
use super::mptcp::mptcp;
use super::payload::{rst_data, tcp_payload};
use crate::dissect::hash::WordMap;
use crate::dissect::options::kind;
use crate::dissect::packet::{IpInfo, TcpSegment, tcp_flags};

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

/// tcpdump's `tcp_seq_hash`: the initial sequence numbers of each TCP
/// conversation, so that seq and ack print relative to them.
#[derive(Default)]
struct Conversations {
    bases: WordMap<SeqKey, SeqBase>,
}

/// A segment's sequence numbers as printed, and what its SACK edges are
/// relative to.
struct Relative {
    seq: u32,
    ack: u32,
    /// The segment goes from the canonical second endpoint to the first.
    rev: bool,
    thseq: u32,
    thack: u32,
}

impl Relative {
    fn absolute(seg: &TcpSegment<'_>) -> Relative {
        Relative { seq: seg.seq, ack: seg.ack, rev: false, thseq: 0, thack: 0 }
    }
}

impl Conversations {
    /// Look the segment's conversation up (recording it the first time, and
    /// again on a SYN) and make its numbers relative. The first segment
    /// recorded prints absolute, as in tcpdump.
    fn relative(&mut self, ip: &IpInfo, seg: &TcpSegment<'_>) -> Relative {
        let (mut seq, mut ack) = (seg.seq, seg.ack);
        let (src, dst) = (addr_bytes(ip.src), addr_bytes(ip.dst));
        let n = if ip.is_v6() { 16 } else { 4 };
        let rev = seg.sport > seg.dport || (seg.sport == seg.dport && src[..n] > dst[..n]);
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
        let base = match self.bases.get_mut(&key) {
            Some(b) if seg.flags & tcp_flags::SYN == 0 => {
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
                self.bases.insert(key, fresh);
                fresh
            }
        };
        Relative { seq, ack, rev, thseq: base.seq, thack: base.ack }
    }
}

/// The TCP printer: the `-v` count, `-S`, and the conversations seen.
pub(super) struct TcpPrinter {
    verbose: u8,
    absolute_seq: bool,
    conversations: Conversations,
}

impl TcpPrinter {
    pub(super) fn new(verbose: u8, absolute_seq: bool) -> TcpPrinter {
        TcpPrinter { verbose, absolute_seq, conversations: Conversations::default() }
    }

    /// How many conversations the table holds.
    pub(super) fn conversations(&self) -> usize {
        self.conversations.bases.len()
    }

    /// tcpdump 4.99's `tcp_print`, after the IP layer: `raw` is the segment
    /// as captured.
    pub(super) fn write(
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
        let rel = if !self.absolute_seq && flags & tcp_flags::ACK != 0 {
            self.conversations.relative(ip, seg)
        } else {
            Relative::absolute(seg)
        };
        if hlen > length {
            out.extend_from_slice(b" [bad hdr length ");
            dec(out, hlen as u64);
            out.extend_from_slice(b" - too long, > ");
            dec(out, length as u64);
            out.push(b']');
            return;
        }
        let captured = raw.len() as u64 >= length as u64;
        if self.verbose > 0 && !fragmented && captured {
            tcp_checksum(out, ip, seg.checksum, &raw[..length as usize]);
        }
        let plen = length - hlen;
        if self.verbose > 1 || plen > 0 || flags & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST) != 0 {
            out.extend_from_slice(b", seq ");
            dec(out, rel.seq as u64);
            if plen > 0 {
                out.push(b':');
                dec(out, rel.seq.wrapping_add(plen) as u64);
            }
        }
        if flags & tcp_flags::ACK != 0 {
            out.extend_from_slice(b", ack ");
            dec(out, rel.ack as u64);
        }
        out.extend_from_slice(b", win ");
        dec(out, seg.window as u64);
        if flags & tcp_flags::URG != 0 {
            out.extend_from_slice(b", urg ");
            dec(out, seg.urgent as u64);
        }
        let mut walk = OptWalk {
            tcp_flags: flags,
            rev: rel.rev,
            thseq: rel.thseq,
            thack: rel.thack,
            payload_captured: captured,
            printed: false,
            saw_mptcp: false,
        };
        if hlen > 20 && !option_list(out, raw, hlen, &mut walk) {
            return;
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
        if flags & tcp_flags::RST != 0 && self.verbose > 0 {
            rst_data(out, payload, plen);
            return;
        }
        tcp_payload(out, seg.sport, seg.dport, payload, plen, self.verbose > 0);
    }
}

/// `, cksum 0x1234 (correct)` or `(incorrect -> 0x5678)` (RFC 9293 §3.1).
fn tcp_checksum(out: &mut Vec<u8>, ip: &IpInfo, field: u16, segment: &[u8]) {
    let sum = transport_checksum(ip, 6, segment);
    out.extend_from_slice(b", cksum 0x");
    hex_pad(out, field as u64, 4);
    if sum != 0 {
        out.extend_from_slice(b" (incorrect -> 0x");
        hex_pad(out, cksum_shouldbe(field, sum) as u64, 4);
        out.push(b')');
    } else {
        out.extend_from_slice(b" (correct)");
    }
}

/// `, options [...]`, or the line's end where tcpdump stops inside the
/// list. Returns whether the line goes on (`, length N`).
fn option_list(out: &mut Vec<u8>, raw: &[u8], hlen: u32, walk: &mut OptWalk) -> bool {
    out.extend_from_slice(b", options [");
    // tcpdump reads a length byte past the declared header when the capture
    // holds it (then rejects it as too long): give the walk every captured
    // byte and let `hlen` bound what is valid.
    let opts = &raw[20.min(raw.len())..];
    match tcp_options(out, opts, hlen - 20, walk) {
        Ok(()) => {
            out.push(b']');
            true
        }
        Err(Stop::BadOpt) => {
            out.extend_from_slice(b"[bad opt]");
            if walk.printed {
                out.push(b']');
            }
            false
        }
        Err(Stop::Trunc) => {
            trunc_mark(out, walk.saw_mptcp);
            if walk.printed {
                out.push(b'>');
            }
            false
        }
        Err(Stop::TruncJump) => {
            trunc_mark(out, walk.saw_mptcp);
            false
        }
    }
}

/// tcpdump's truncation mark names the last dissector it entered: once an
/// MPTCP option was looked at, a cut is ` [|mptcp]`.
fn trunc_mark(out: &mut Vec<u8>, saw_mptcp: bool) {
    out.extend_from_slice(if saw_mptcp { b" [|mptcp]" } else { b" [|tcp]" });
}

/// A TCP header the decoder could not read (cut short, or a data offset
/// below 5 words), printed as far as tcpdump gets.
pub(super) fn tcp_unreadable(out: &mut Vec<u8>, ip: &IpInfo, raw: &[u8], with_addrs: bool) {
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

/// The option list, walked as tcpdump 4.99 walks it (print-tcp.c). `opts`
/// holds the captured option bytes, `hlen` how many the data offset
/// declares.
fn tcp_options(out: &mut Vec<u8>, opts: &[u8], mut hlen: u32, w: &mut OptWalk) -> Result<(), Stop> {
    let mut cp = 0usize;
    while hlen > 0 {
        if w.printed {
            out.push(b',');
        }
        let opt = *opts.get(cp).ok_or(Stop::TruncJump)?;
        cp += 1;
        let len: u32 = if opt == kind::EOL || opt == kind::NOP {
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
        let at = Opt { opts, cp, hlen, len };
        let datalen = option_body(out, opt, &at, w)?;
        cp += datalen as usize;
        hlen -= datalen;
        let consumed = datalen + if opt == kind::EOL || opt == kind::NOP { 1 } else { 2 };
        if consumed != len {
            out.extend_from_slice(b"[len ");
            dec(out, len as u64);
            out.push(b']');
        }
        w.printed = true;
        if opt == kind::EOL {
            break;
        }
    }
    Ok(())
}

/// Where the walk stands in one option: its data starts at `cp` in `opts`,
/// `hlen` bytes of declared option space are left, `len` is its length byte.
struct Opt<'a> {
    opts: &'a [u8],
    cp: usize,
    hlen: u32,
    len: u32,
}

impl Opt<'_> {
    /// tcpdump's `LENCHECK`: a checked read of `l` data bytes. Past the
    /// declared option space is a bad option, past the capture a truncation.
    fn check(&self, l: u32) -> Result<(), Stop> {
        if l > self.hlen {
            return Err(Stop::BadOpt);
        }
        if self.cp + l as usize > self.opts.len() {
            return Err(Stop::Trunc);
        }
        Ok(())
    }

    /// The data bytes as the length byte declares them (checked first).
    fn data(&self) -> &[u8] {
        &self.opts[self.cp..self.cp + (self.len - 2) as usize]
    }
}

/// One option's data, printed after its name; returns how many data bytes
/// tcpdump consumed (a length byte that disagrees is flagged `[len N]`).
fn option_body(out: &mut Vec<u8>, opt: u8, o: &Opt<'_>, w: &mut OptWalk) -> Result<u32, Stop> {
    let (opts, cp) = (o.opts, o.cp);
    Ok(match opt {
        kind::MSS => number(out, o, 2)?,
        kind::WINDOW_SCALE => number(out, o, 1)?,
        kind::SACK => sack(out, o, w)?,
        // Echo, echo reply (RFC 1072) and T/TCP's CC options (RFC 1644).
        6 | 7 | 11 | 12 | 13 => number(out, o, 4)?,
        kind::TIMESTAMPS => {
            o.check(8)?;
            out.extend_from_slice(b" val ");
            dec(out, be32(opts, cp) as u64);
            out.extend_from_slice(b" ecr ");
            dec(out, be32(opts, cp + 4) as u64);
            8
        }
        kind::MD5 => {
            o.check(16)?;
            // What a libcrypto build of tcpdump prints without -M (it
            // first needs the whole segment to compute a signature).
            out.extend_from_slice(if w.payload_captured {
                b" shared secret not supplied with -M, can't check - "
            } else {
                b" snaplen too short, can't check - "
            });
            for &b in &opts[cp..cp + 16] {
                hex_pad(out, b as u64, 2);
            }
            16
        }
        // SCPS capabilities (CCSDS 714.0-B-2).
        20 => {
            o.check(2)?;
            out.extend_from_slice(b" cap ");
            hex_pad(out, opts[cp] as u64, 2);
            out.extend_from_slice(b" id ");
            dec(out, opts[cp + 1] as u64);
            2
        }
        kind::TCP_AO => tcp_ao(out, o)?,
        kind::EOL | kind::NOP | kind::SACK_PERMITTED => 0,
        kind::USER_TIMEOUT => {
            o.check(2)?;
            let v = be16(opts, cp);
            out.extend_from_slice(b" 0x");
            hex(out, v as u64);
            // RFC 5482 §3: granularity bit, minutes or seconds.
            let secs = if v & 1 != 0 { (v as u32 >> 1) * 60 } else { v as u32 >> 1 };
            out.push(b' ');
            dec(out, secs as u64);
            2
        }
        kind::MPTCP => {
            o.check(o.len - 2)?;
            w.saw_mptcp = true;
            if !mptcp(out, &opts[cp - 2..cp - 2 + o.len as usize], w.tcp_flags) {
                return Err(Stop::BadOpt);
            }
            o.len - 2
        }
        kind::FAST_OPEN => {
            o.check(o.len - 2)?;
            out.push(b' ');
            fastopen(out, o.data(), false);
            o.len - 2
        }
        kind::EXPERIMENTAL_254 => {
            let datalen = o.len - 2;
            o.check(datalen)?;
            if datalen < 2 {
                return Err(Stop::BadOpt);
            }
            let magic = be16(opts, cp);
            out.push(b'-');
            if magic == 0xf989 {
                // RFC 7413 §4.1.1 before kind 34: the experimental kind.
                fastopen(out, &o.data()[2..], true);
            } else {
                hex_pad(out, magic as u64, 4);
            }
            datalen
        }
        _ => {
            let datalen = o.len - 2;
            if datalen > 0 {
                out.extend_from_slice(b" 0x");
            }
            for i in 0..datalen {
                o.check(i + 1)?;
                hex_pad(out, opts[cp + i as usize] as u64, 2);
            }
            datalen
        }
    })
}

/// ` N`: one big-endian number of `width` data bytes (MSS, window scale,
/// echo, CC).
fn number(out: &mut Vec<u8>, o: &Opt<'_>, width: u32) -> Result<u32, Stop> {
    o.check(width)?;
    let v = o.opts[o.cp..o.cp + width as usize].iter().fold(0u64, |v, &b| v << 8 | b as u64);
    out.push(b' ');
    dec(out, v);
    Ok(width)
}

/// SACK blocks (RFC 2018 §3), edges relative to the conversation's base.
fn sack(out: &mut Vec<u8>, o: &Opt<'_>, w: &OptWalk) -> Result<u32, Stop> {
    let datalen = o.len - 2;
    if datalen % 8 != 0 {
        out.extend_from_slice(b" invalid sack");
        return Ok(datalen);
    }
    out.push(b' ');
    dec(out, (datalen / 8) as u64);
    out.push(b' ');
    let base = if w.rev { w.thseq } else { w.thack };
    let mut i = 0;
    while i < datalen {
        o.check(i + 4)?;
        let s = be32(o.opts, o.cp + i as usize).wrapping_sub(base);
        o.check(i + 8)?;
        let e = be32(o.opts, o.cp + i as usize + 4).wrapping_sub(base);
        out.push(b'{');
        dec(out, s as u64);
        out.push(b':');
        dec(out, e as u64);
        out.push(b'}');
        i += 8;
    }
    Ok(datalen)
}

/// TCP-AO (RFC 5925 §2.2): key ids, then the MAC.
fn tcp_ao(out: &mut Vec<u8>, o: &Opt<'_>) -> Result<u32, Stop> {
    let (opts, cp, datalen) = (o.opts, o.cp, o.len - 2);
    // RFC 5925 §2.2: the length is at least 4.
    if datalen < 2 {
        out.extend_from_slice(b" (invalid)");
        return Ok(datalen);
    }
    o.check(1)?;
    out.extend_from_slice(b" keyid ");
    dec(out, opts[cp] as u64);
    o.check(2)?;
    out.extend_from_slice(b" rnextkeyid ");
    dec(out, opts[cp + 1] as u64);
    if datalen > 2 {
        out.extend_from_slice(b" mac 0x");
        for i in 2..datalen {
            o.check(i + 1)?;
            hex_pad(out, opts[cp + i as usize] as u64, 2);
        }
    }
    Ok(datalen)
}

fn option_name(opt: u8) -> &'static [u8] {
    match opt {
        kind::EOL => b"eol",
        kind::NOP => b"nop",
        kind::MSS => b"mss",
        kind::WINDOW_SCALE => b"wscale",
        kind::SACK_PERMITTED => b"sackOK",
        kind::SACK => b"sack",
        6 => b"echo",
        7 => b"echoreply",
        kind::TIMESTAMPS => b"TS",
        11 => b"cc",
        12 => b"ccnew",
        13 => b"",
        kind::MD5 => b"md5",
        20 => b"scps",
        kind::USER_TIMEOUT => b"uto",
        kind::TCP_AO => b"tcp-ao",
        kind::MPTCP => b"mptcp",
        kind::FAST_OPEN => b"tfo",
        kind::EXPERIMENTAL_254 => b"exp",
        other => unknown_name(other),
    }
}

/// `unknown-N` for every kind tcpdump has no name for, built once.
fn unknown_name(kind: u8) -> &'static [u8] {
    static NAMES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| (0..=255u16).map(|k| format!("unknown-{k}").into_bytes()).collect());
    &names[kind as usize]
}

/// TCP Fast Open (RFC 7413 §4.1.1): a cookie request or a cookie.
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
