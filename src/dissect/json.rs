//! JSON lines output (DESIGN.md packet object contract).
//!
//! One object per frame, written by hand into the caller's buffer (no
//! intermediate values): `frame`, `ts`, `src`, `dst`, `sport`, `dport`,
//! `tcp` {`flags` (tcpdump's letters), `seq`, `ack`, `win`, `len`}, `mptcp`
//! (the MPTCP options in wire order) and `analysis` (see
//! [`PacketNote`]). Keys, tokens, nonces, HMACs and checksums are hex strings
//! with `0x`; sequence numbers, lengths, ids and ports are integers, as on
//! the wire (a 4-byte DSN stays 4-byte: the DSS `flags` byte tells the
//! widths); absent fields are omitted. An MPTCP option that does not parse
//! is `{"subtype": NAME, "len": N, "error": TEXT}`. A frame that is not TCP
//! carries what is known (`src`, `dst`, `proto`) and `error` when decoding
//! stopped.

use std::net::IpAddr;

use super::analysis::{Check, CsumStatus, Event, HmacKind, PacketNote, Side};
use super::options::{MpCapable, MpJoin, MptcpOption, OptionError, TcpOption, WireSeq, kind, subtype};
use super::packet::{FrameMeta, Other, Packet};
use super::tcpdump::tcp_flag_letters;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A tiny writer of JSON pieces into a byte buffer.
struct W<'a> {
    out: &'a mut Vec<u8>,
    /// Whether the current object or array needs a comma before the next item.
    comma: bool,
}

impl W<'_> {
    fn raw(&mut self, s: &[u8]) {
        self.out.extend_from_slice(s);
    }
    fn sep(&mut self) {
        if self.comma {
            self.out.push(b',');
        }
        self.comma = true;
    }
    fn key(&mut self, k: &str) {
        self.sep();
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }
    fn open(&mut self, k: &str, brace: u8) {
        self.key(k);
        self.out.push(brace);
        self.comma = false;
    }
    fn close(&mut self, brace: u8) {
        self.out.push(brace);
        self.comma = true;
    }
    fn u64(&mut self, k: &str, v: u64) {
        self.key(k);
        let mut b = itoa::Buffer::new();
        self.out.extend_from_slice(b.format(v).as_bytes());
    }
    fn num(&mut self, v: u64) {
        let mut b = itoa::Buffer::new();
        self.out.extend_from_slice(b.format(v).as_bytes());
    }
    fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.raw(if v { b"true" } else { b"false" });
    }
    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        string(self.out, v);
    }
    /// `"0x"` and `digits` hex digits of `v`.
    fn hex(&mut self, k: &str, v: u64, digits: usize) {
        self.key(k);
        self.out.extend_from_slice(b"\"0x");
        for i in (0..digits).rev() {
            self.out.push(HEX[((v >> (i * 4)) & 0xf) as usize]);
        }
        self.out.push(b'"');
    }
    fn hex_bytes(&mut self, k: &str, v: &[u8]) {
        self.key(k);
        self.out.extend_from_slice(b"\"0x");
        for b in v {
            self.out.push(HEX[(b >> 4) as usize]);
            self.out.push(HEX[(b & 0xf) as usize]);
        }
        self.out.push(b'"');
    }
    fn ip(&mut self, k: &str, a: IpAddr) {
        self.key(k);
        self.out.push(b'"');
        match a {
            IpAddr::V4(v4) => {
                for (i, o) in v4.octets().iter().enumerate() {
                    if i > 0 {
                        self.out.push(b'.');
                    }
                    self.num(*o as u64);
                }
            }
            IpAddr::V6(v6) => {
                use std::io::Write;
                let _ = write!(self.out, "{v6}");
            }
        }
        self.out.push(b'"');
    }
}

/// A JSON string literal (RFC 8259 §7).
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Append one JSON object (and a newline) describing the frame.
pub fn write_packet(out: &mut Vec<u8>, meta: &FrameMeta, pkt: &Packet<'_>, note: &PacketNote) {
    let mut w = W { out, comma: false };
    w.raw(b"{");
    w.u64("frame", meta.number);
    w.key("ts");
    ts(w.out, meta);
    if let Some(ip) = &pkt.ip {
        w.ip("src", ip.src);
        w.ip("dst", ip.dst);
    }
    if let Some(t) = &pkt.tcp {
        w.u64("sport", t.sport as u64);
        w.u64("dport", t.dport as u64);
        w.open("tcp", b'{');
        w.key("flags");
        w.raw(b"\"");
        tcp_flag_letters(w.out, t.flags);
        w.raw(b"\"");
        w.u64("seq", t.seq as u64);
        w.u64("ack", t.ack as u64);
        w.u64("win", t.window as u64);
        w.u64("len", t.payload_len as u64);
        w.close(b'}');
        w.open("mptcp", b'[');
        for o in t.options() {
            match o {
                Ok(TcpOption::Mptcp(m)) => {
                    w.sep();
                    w.raw(b"{");
                    w.comma = false;
                    mptcp_option(&mut w, &m);
                    w.close(b'}');
                }
                Err(e) if e.kind == kind::MPTCP => {
                    w.sep();
                    w.raw(b"{");
                    w.comma = false;
                    option_error(&mut w, &e);
                    w.close(b'}');
                }
                _ => {}
            }
        }
        w.close(b']');
        analysis(&mut w, note);
    } else {
        match pkt.other {
            Some(Other::Udp { sport, dport, .. }) => {
                w.str("proto", "udp");
                w.u64("sport", sport as u64);
                w.u64("dport", dport as u64);
            }
            Some(Other::Icmp { v6, .. }) => w.str("proto", if v6 { "icmp6" } else { "icmp" }),
            Some(Other::Ip { protocol }) => w.u64("proto", protocol as u64),
            Some(Other::Arp) => w.str("proto", "arp"),
            Some(Other::EtherType(et)) => w.hex("ethertype", et as u64, 4),
            None => {}
        }
    }
    if let Some(e) = &pkt.error {
        w.str("error", &e.to_string());
    }
    w.raw(b"}\n");
}

/// Seconds with 6 decimals (microsecond captures) or 9; `null` for a frame
/// the file gives no time.
fn ts(out: &mut Vec<u8>, meta: &FrameMeta) {
    let Some(t) = meta.ts else {
        out.extend_from_slice(b"null");
        return;
    };
    let mut b = itoa::Buffer::new();
    out.extend_from_slice(b.format(t.secs()).as_bytes());
    out.push(b'.');
    let nsec = t.subsec_nanos();
    let (frac, digits) = if nsec % 1000 == 0 { (nsec / 1000, 6) } else { (nsec, 9) };
    let mut div = 10u32.pow(digits - 1);
    while div > 0 {
        out.push(b'0' + ((frac / div) % 10) as u8);
        div /= 10;
    }
}

fn seq(w: &mut W<'_>, k: &str, s: WireSeq) {
    w.u64(k, s.value());
}

fn mptcp_option(w: &mut W<'_>, m: &MptcpOption) {
    w.str("subtype", subtype::name(m.subtype()));
    w.u64("len", m.buffer_len() as u64);
    match m {
        MptcpOption::MpCapable(c) => {
            w.u64("version", c.version as u64);
            w.u64("flags", c.flags as u64);
            w.bool("checksum_required", c.checksum_required());
            w.bool("hmac_sha256", c.flags & MpCapable::FLAG_HMAC_SHA != 0);
            if let Some(k) = c.sender_key {
                w.hex("sender_key", k, 16);
            }
            if let Some(k) = c.receiver_key {
                w.hex("receiver_key", k, 16);
            }
            if let Some(l) = c.data_len {
                w.u64("data_len", l as u64);
            }
            if let Some(x) = c.checksum {
                w.hex("checksum", x as u64, 4);
            }
        }
        MptcpOption::MpJoin(j) => match j {
            MpJoin::Syn { backup, addr_id, token, nonce } => {
                w.bool("backup", *backup);
                w.u64("addr_id", *addr_id as u64);
                w.hex("token", *token as u64, 8);
                w.hex("nonce", *nonce as u64, 8);
            }
            MpJoin::SynAck { backup, addr_id, hmac, nonce } => {
                w.bool("backup", *backup);
                w.u64("addr_id", *addr_id as u64);
                w.hex("hmac", *hmac, 16);
                w.hex("nonce", *nonce as u64, 8);
            }
            MpJoin::Ack { hmac } => w.hex_bytes("hmac", hmac),
        },
        MptcpOption::Dss(d) => {
            w.u64("flags", d.flags() as u64);
            w.bool("data_fin", d.data_fin);
            if let Some(a) = d.data_ack {
                seq(w, "data_ack", a);
            }
            if let Some(map) = d.mapping {
                seq(w, "dsn", map.dsn);
                w.u64("ssn", map.ssn as u64);
                w.u64("data_len", map.data_len as u64);
                if let Some(c) = map.checksum {
                    w.hex("checksum", c as u64, 4);
                }
            }
        }
        MptcpOption::AddAddr(a) => {
            if a.v0 {
                w.u64("ipver", if a.addr.is_ipv4() { 4 } else { 6 });
            } else {
                w.bool("echo", a.echo);
            }
            w.u64("addr_id", a.addr_id as u64);
            w.ip("addr", a.addr);
            if let Some(p) = a.port {
                w.u64("port", p as u64);
            }
            if let Some(h) = a.hmac {
                w.hex("hmac", h, 16);
            }
        }
        MptcpOption::RemoveAddr(r) => {
            w.open("addr_ids", b'[');
            for id in r.addr_ids.iter() {
                w.sep();
                w.num(*id as u64);
            }
            w.close(b']');
        }
        MptcpOption::MpPrio(p) => {
            w.bool("backup", p.backup);
            if let Some(id) = p.addr_id {
                w.u64("addr_id", id as u64);
            }
        }
        MptcpOption::MpFail(f) => w.u64("dsn", f.dsn),
        MptcpOption::MpFastclose(f) => w.hex("receiver_key", f.receiver_key, 16),
        MptcpOption::MpTcpRst(r) => {
            w.u64("flags", r.flags as u64);
            w.u64("reason", r.reason as u64);
        }
        MptcpOption::Experimental { data } | MptcpOption::Unknown { data, .. } => w.hex_bytes("data", data),
    }
}

fn option_error(w: &mut W<'_>, e: &OptionError) {
    w.str("subtype", e.subtype.map_or("unknown", subtype::name));
    if let Some(l) = e.len {
        w.u64("len", l as u64);
    }
    w.str("error", &e.to_string());
}

fn side(s: Side) -> &'static str {
    s.name()
}

fn analysis(w: &mut W<'_>, n: &PacketNote) {
    w.open("analysis", b'{');
    if let Some(f) = n.flow {
        w.u64("flow", f as u64);
    }
    if let Some(c) = n.conn {
        w.u64("conn", c as u64);
    }
    if let Some(s) = n.subflow {
        w.u64("subflow", s as u64);
    }
    if let Some(s) = n.from {
        w.str("from", side(s));
    }
    if n.conn.is_some() {
        w.bool("fallback", n.fallback);
    }
    if let Some(d) = n.dsn {
        w.u64("dsn", d);
        if let Some(r) = n.dsn_rel {
            w.u64("dsn_rel", r);
        }
        w.u64("dsn_len", n.dsn_len as u64);
    }
    if let Some(f) = n.map_frame {
        w.u64("map_frame", f);
    }
    if let Some(a) = n.data_ack {
        w.u64("data_ack", a);
        if let Some(r) = n.data_ack_rel {
            w.u64("data_ack_rel", r);
        }
    }
    if let Some(m) = &n.mapping {
        w.open("mapping", b'{');
        if let Some(d) = m.dsn {
            w.u64("dsn", d);
        }
        if let Some(r) = m.dsn_rel {
            w.u64("dsn_rel", r);
        }
        w.u64("ssn", m.ssn as u64);
        w.u64("len", m.len as u64);
        w.bool("data_fin", m.data_fin);
        w.bool("implicit", m.implicit);
        w.close(b'}');
    }
    if !n.events.is_empty() {
        w.open("events", b'[');
        for e in &n.events {
            w.sep();
            w.raw(b"{");
            w.comma = false;
            event(w, e);
            w.close(b'}');
        }
        w.close(b']');
    }
    w.close(b'}');
}

fn check(c: Check) -> &'static str {
    match c {
        Check::Ok => "ok",
        Check::Bad => "bad",
        Check::BadLeftmost => "bad_leftmost",
        Check::NoKeys => "no_keys",
    }
}

fn event(w: &mut W<'_>, e: &Event) {
    match e {
        Event::Established => w.str("type", "established"),
        Event::Fallback(_) => w.str("type", "fallback"),
        Event::Hmac { kind, result } => {
            w.str("type", "hmac");
            w.str(
                "kind",
                match kind {
                    HmacKind::JoinSynAck => "join_synack",
                    HmacKind::JoinAck => "join_ack",
                    HmacKind::AddAddr => "add_addr",
                },
            );
            w.str("result", check(*result));
        }
        Event::UnknownToken { token } => {
            w.str("type", "unknown_token");
            w.hex("token", *token as u64, 8);
        }
        Event::KeyMismatch { expected, got } => {
            w.str("type", "key_mismatch");
            w.hex("expected", *expected, 16);
            w.hex("got", *got, 16);
        }
        Event::Checksum { status, map_frame } => {
            w.str("type", "dss_checksum");
            w.str(
                "result",
                match status {
                    CsumStatus::Ok => "ok",
                    CsumStatus::Bad => "bad",
                    CsumStatus::Truncated => "not_captured",
                    CsumStatus::Pending => "pending",
                },
            );
            w.u64("map_frame", *map_frame);
        }
        Event::Reinjection { of, more } => {
            w.str("type", "reinjection");
            w.open("of", b'[');
            for f in of {
                w.sep();
                w.num(*f);
            }
            w.close(b']');
            // The frames `of` leaves out (at most FRAMES_NAMED are named).
            if *more > 0 {
                w.u64("more", *more);
            }
        }
        Event::Corrupted { frame } => {
            w.str("type", "corrupted");
            w.u64("frame", *frame);
        }
        Event::NoMapping => w.str("type", "no_mapping"),
        Event::InfiniteMapping => w.str("type", "infinite_mapping"),
        Event::DataFin { dsn } => {
            w.str("type", "data_fin");
            w.u64("dsn", *dsn);
        }
        Event::MpFail { dsn } => {
            w.str("type", "mp_fail");
            w.u64("dsn", *dsn);
        }
        Event::FastClose { key } => {
            w.str("type", "fastclose");
            w.str("key", check(*key));
        }
        Event::TcpRst { flags, reason } => {
            w.str("type", "tcprst");
            w.u64("flags", *flags as u64);
            w.u64("reason", *reason as u64);
        }
        Event::JoinRefused => w.str("type", "join_refused"),
        Event::Removes { subflows } => {
            w.str("type", "removes");
            w.open("subflows", b'[');
            for s in subflows {
                w.sep();
                w.num(*s as u64);
            }
            w.close(b']');
        }
        Event::Backup { on } => {
            w.str("type", "backup");
            w.bool("on", *on);
        }
        Event::SynData => w.str("type", "syn_data"),
        Event::BadOption => w.str("type", "bad_option"),
    }
    w.str("text", &e.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::packet::{Timestamp, decode, linktype, tcp_flags};

    fn frame_with_options(opts: &[u8], flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let tcp_len = 20 + opts.len();
        let total = (20 + tcp_len + payload.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&1234u16.to_be_bytes());
        t[2..4].copy_from_slice(&80u16.to_be_bytes());
        t[4..8].copy_from_slice(&1000u32.to_be_bytes());
        t[12] = ((tcp_len / 4) as u8) << 4;
        t[13] = flags;
        t[14..16].copy_from_slice(&512u16.to_be_bytes());
        f.extend_from_slice(&t);
        f.extend_from_slice(opts);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn contract_fields_and_valid_json() {
        // DSS: 4-byte ack, 8-byte DSN, mapping with checksum; a bad MP_JOIN.
        let mut opts = vec![30, 22, 0x20, 0x0d];
        opts.extend_from_slice(&7u32.to_be_bytes());
        opts.extend_from_slice(&(1u64 << 40).to_be_bytes());
        opts.extend_from_slice(&1u32.to_be_bytes());
        opts.extend_from_slice(&3u16.to_be_bytes());
        opts.extend_from_slice(&[30, 5, 0x10, 0, 0, 1, 1, 1, 1, 1]);
        let f = frame_with_options(&opts, tcp_flags::ACK | tcp_flags::PSH, b"abc");
        let pkt = decode(linktype::ETHERNET, &f);
        let meta =
            FrameMeta { number: 3, ts: Some(Timestamp::new(1_700_000_000, 5_000)), caplen: 0, len: 0, linktype: 1 };
        let mut out = Vec::new();
        write_packet(&mut out, &meta, &pkt, &PacketNote::default());
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["frame"], 3);
        assert_eq!(v["ts"].as_f64().unwrap(), 1_700_000_000.000005);
        assert_eq!(v["src"], "10.0.0.1");
        assert_eq!(v["tcp"]["flags"], "P.");
        assert_eq!(v["tcp"]["len"], 3);
        let dss = &v["mptcp"][0];
        assert_eq!(dss["subtype"], "dss");
        assert_eq!(dss["data_ack"], 7);
        assert_eq!(dss["dsn"], 1u64 << 40);
        assert_eq!(dss["ssn"], 1);
        assert_eq!(dss["data_len"], 3);
        assert!(dss.get("checksum").is_none());
        assert_eq!(v["mptcp"][1]["subtype"], "mp_join");
        assert!(v["mptcp"][1]["error"].as_str().unwrap().contains("length 5"));
    }

    #[test]
    fn flag_letters_follow_tcpdump() {
        let mut s = Vec::new();
        tcp_flag_letters(&mut s, tcp_flags::SYN | tcp_flags::ACK);
        assert_eq!(s, b"S.");
        s.clear();
        tcp_flag_letters(&mut s, tcp_flags::FIN | tcp_flags::PSH | tcp_flags::ACK);
        assert_eq!(s, b"FP.");
        s.clear();
        tcp_flag_letters(&mut s, 0);
        assert_eq!(s, b"none");
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = Vec::new();
        string(&mut out, "a\"b\\c\n");
        assert_eq!(out, br#""a\"b\\c\u000a""#);
    }
}
