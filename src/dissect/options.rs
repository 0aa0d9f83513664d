//! The TCP option codec: one nom-based parser and one emitter for every TCP
//! option we care about, MPTCP (kind 30) in all its subtypes and length forms,
//! v1 (RFC 8684 §3) and v0 (RFC 6824 §3).
//!
//! The decoder and the embedded stack both use this module, so what we print is
//! what we send.
//!
//! Contract (after smoltcp's `wire` and tls-parser):
//! - Framing first: an option is `kind` (1 byte), then for every kind but EOL
//!   and NOP a `length` byte covering the whole option. The body parser gets
//!   exactly `length - 2` bytes and therefore cannot over-read.
//! - A framing error (length < 2, or past the end of the option space) ends
//!   the walk: the rest of the bytes have no trustworthy boundaries.
//! - A body that does not fit its kind or subtype (a DSS of 3 bytes, an
//!   MP_JOIN of 13) is an [`OptionError`] that keeps the raw bytes, and the
//!   walk goes on with the next option.
//! - Unknown kinds and unknown MPTCP subtypes are kept as raw bytes, not rejected.
//! - [`TcpOption::emit`] writes exactly [`TcpOption::buffer_len`] bytes; for
//!   every option the parser returns, emit followed by parse gives it back.

use core::fmt;
use core::ops::Deref;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nom::IResult;
use nom::Parser;
use nom::bytes::complete::take;
use nom::combinator::cond;
use nom::number::complete::{be_u8, be_u16, be_u32, be_u64};

/// TCP option kinds (IANA "TCP Option Kind Numbers").
pub mod kind {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
    pub const MD5: u8 = 19;
    pub const USER_TIMEOUT: u8 = 28;
    pub const TCP_AO: u8 = 29;
    pub const MPTCP: u8 = 30;
    pub const FAST_OPEN: u8 = 34;
    /// RFC 6994 shared experimental kind; TFO used it with magic 0xF989
    /// before kind 34 was assigned.
    pub const EXPERIMENTAL_254: u8 = 254;
}

/// MPTCP option subtypes (RFC 8684 §7.2, IANA "MPTCP Option Subtypes").
pub mod subtype {
    pub const MP_CAPABLE: u8 = 0x0;
    pub const MP_JOIN: u8 = 0x1;
    pub const DSS: u8 = 0x2;
    pub const ADD_ADDR: u8 = 0x3;
    pub const REMOVE_ADDR: u8 = 0x4;
    pub const MP_PRIO: u8 = 0x5;
    pub const MP_FAIL: u8 = 0x6;
    pub const MP_FASTCLOSE: u8 = 0x7;
    pub const MP_TCPRST: u8 = 0x8;
    pub const MP_EXPERIMENTAL: u8 = 0xf;

    /// The contract name of a subtype (DESIGN.md JSON `subtype`).
    pub fn name(st: u8) -> &'static str {
        match st {
            MP_CAPABLE => "mp_capable",
            MP_JOIN => "mp_join",
            DSS => "dss",
            ADD_ADDR => "add_addr",
            REMOVE_ADDR => "remove_addr",
            MP_PRIO => "mp_prio",
            MP_FAIL => "mp_fail",
            MP_FASTCLOSE => "mp_fastclose",
            MP_TCPRST => "mp_tcprst",
            MP_EXPERIMENTAL => "mp_experimental",
            _ => "unknown",
        }
    }
}

/// The largest a TCP option space can be (RFC 9293 §3.1: data offset <= 15 words).
pub const MAX_OPTION_SPACE: usize = 40;

/// Up to 40 bytes held inline, for raw option bodies: an option never exceeds
/// the 40-byte option space, so this never allocates.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawBytes {
    len: u8,
    buf: [u8; MAX_OPTION_SPACE],
}

impl RawBytes {
    /// Copies `data`, keeping at most 40 bytes.
    pub fn new(data: &[u8]) -> RawBytes {
        let n = data.len().min(MAX_OPTION_SPACE);
        let mut buf = [0u8; MAX_OPTION_SPACE];
        buf[..n].copy_from_slice(&data[..n]);
        RawBytes { len: n as u8, buf }
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }
}

impl Default for RawBytes {
    fn default() -> Self {
        RawBytes::new(&[])
    }
}

impl Deref for RawBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl fmt::Debug for RawBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawBytes(")?;
        for b in self.as_slice() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// One TCP option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpOption {
    /// End of option list (kind 0).
    Eol,
    /// No-operation (kind 1).
    Nop,
    /// Maximum segment size (kind 2, length 4).
    Mss(u16),
    /// Window scale shift count (kind 3, length 3; RFC 7323 §2).
    WindowScale(u8),
    /// SACK permitted (kind 4, length 2; RFC 2018).
    SackPermitted,
    /// SACK blocks (kind 5, length 2 + 8n; RFC 2018 §3).
    Sack(SackBlocks),
    /// Timestamps (kind 8, length 10; RFC 7323 §3).
    Timestamps { tsval: u32, tsecr: u32 },
    /// TCP Fast Open (RFC 7413 §4.1.1): kind 34, or kind 254 with magic 0xF989.
    /// An empty cookie is a cookie request.
    FastOpen { cookie: RawBytes, experimental: bool },
    /// Multipath TCP (kind 30).
    Mptcp(MptcpOption),
    /// Any other kind, body kept (bytes after the length byte).
    Unknown { kind: u8, data: RawBytes },
}

/// Up to four SACK blocks, each `(left edge, right edge)`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct SackBlocks {
    n: u8,
    blocks: [(u32, u32); 4],
}

impl SackBlocks {
    /// At most four blocks are kept (40 bytes of option space hold four).
    pub fn new(blocks: &[(u32, u32)]) -> SackBlocks {
        let mut s = SackBlocks::default();
        for b in blocks.iter().take(4) {
            s.blocks[s.n as usize] = *b;
            s.n += 1;
        }
        s
    }
    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.blocks[..self.n as usize]
    }
}

impl fmt::Debug for SackBlocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// An MPTCP option (kind 30), RFC 8684 §3 and RFC 6824 §3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MptcpOption {
    MpCapable(MpCapable),
    MpJoin(MpJoin),
    Dss(Dss),
    AddAddr(AddAddr),
    RemoveAddr(RemoveAddr),
    MpPrio(MpPrio),
    MpFail(MpFail),
    MpFastclose(MpFastclose),
    MpTcpRst(MpTcpRst),
    /// Subtype 0xf: opaque; `data` is everything after the length byte
    /// (the subtype nibble included).
    Experimental {
        data: RawBytes,
    },
    /// A subtype this codec does not know; `data` as for `Experimental`.
    Unknown {
        subtype: u8,
        data: RawBytes,
    },
}

/// MP_CAPABLE (RFC 8684 §3.1, Figure 4).
///
/// The wire length follows from the fields present: 4 (no key: v1 SYN),
/// 12 (sender key: v1 SYN/ACK, v0 SYN and SYN/ACK), 20 (both keys: third
/// ACK), 22 (both keys and data-level length: v1 first data), 24 (and the DSS
/// checksum when checksums are negotiated). Each field needs the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MpCapable {
    /// Low nibble of byte 2: 0 or 1.
    pub version: u8,
    /// Byte 3: A (0x80) checksum required, B (0x40) extensibility, C (0x20) do
    /// not join my source address, D..G reserved, H (0x01) HMAC-SHA256 (v1) /
    /// HMAC-SHA1 (v0).
    pub flags: u8,
    pub sender_key: Option<u64>,
    pub receiver_key: Option<u64>,
    pub data_len: Option<u16>,
    pub checksum: Option<u16>,
}

impl MpCapable {
    pub const FLAG_CHECKSUM: u8 = 0x80;
    pub const FLAG_EXTENSIBILITY: u8 = 0x40;
    pub const FLAG_NO_JOIN_SRC: u8 = 0x20;
    pub const FLAG_HMAC_SHA: u8 = 0x01;

    pub fn checksum_required(&self) -> bool {
        self.flags & Self::FLAG_CHECKSUM != 0
    }

    fn wire_len(&self) -> usize {
        if self.checksum.is_some() {
            24
        } else if self.data_len.is_some() {
            22
        } else if self.receiver_key.is_some() {
            20
        } else if self.sender_key.is_some() {
            12
        } else {
            4
        }
    }
}

/// MP_JOIN (RFC 8684 §3.2, Figures 5-7): the form is chosen by the length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MpJoin {
    /// Length 12, in the SYN: receiver's token and sender's random nonce.
    Syn { backup: bool, addr_id: u8, token: u32, nonce: u32 },
    /// Length 16, in the SYN/ACK: leftmost 64 bits of the HMAC and the nonce.
    SynAck { backup: bool, addr_id: u8, hmac: u64, nonce: u32 },
    /// Length 24, in the third ACK: leftmost 160 bits of the HMAC.
    Ack { hmac: [u8; 20] },
}

/// A sequence number as it travels: 4 or 8 bytes. The width is kept so that
/// what was on the wire is what is shown (DESIGN.md: "a 4-byte DSN stays 4-byte").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WireSeq {
    U32(u32),
    U64(u64),
}

impl WireSeq {
    pub fn value(self) -> u64 {
        match self {
            WireSeq::U32(v) => v as u64,
            WireSeq::U64(v) => v,
        }
    }
    pub fn is_64(self) -> bool {
        matches!(self, WireSeq::U64(_))
    }
    fn wire_len(self) -> usize {
        match self {
            WireSeq::U32(_) => 4,
            WireSeq::U64(_) => 8,
        }
    }
}

/// The mapping part of a DSS option (RFC 8684 §3.3.1, Figure 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DssMapping {
    /// Data sequence number, 4 or 8 bytes on the wire (flag m).
    pub dsn: WireSeq,
    /// Subflow sequence number, relative to the subflow's initial sequence number.
    pub ssn: u32,
    /// Data-level length; 0 with DSN 0 and no DATA_FIN is an infinite mapping (§3.7).
    pub data_len: u16,
    /// DSS checksum, present when checksums were negotiated.
    pub checksum: Option<u16>,
}

/// DSS (RFC 8684 §3.3, Figure 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Dss {
    /// Flag F: this mapping carries a DATA_FIN.
    pub data_fin: bool,
    /// Flags A (present) and a (8 bytes).
    pub data_ack: Option<WireSeq>,
    /// Flags M (present) and m (8-byte DSN).
    pub mapping: Option<DssMapping>,
}

impl Dss {
    pub const FLAG_DATA_FIN: u8 = 0x10;
    pub const FLAG_DSN8: u8 = 0x08;
    pub const FLAG_MAPPING: u8 = 0x04;
    pub const FLAG_ACK8: u8 = 0x02;
    pub const FLAG_ACK: u8 = 0x01;

    /// Byte 3 as it goes on the wire.
    pub fn flags(&self) -> u8 {
        let mut f = 0;
        if self.data_fin {
            f |= Self::FLAG_DATA_FIN;
        }
        if let Some(a) = self.data_ack {
            f |= Self::FLAG_ACK;
            if a.is_64() {
                f |= Self::FLAG_ACK8;
            }
        }
        if let Some(m) = self.mapping {
            f |= Self::FLAG_MAPPING;
            if m.dsn.is_64() {
                f |= Self::FLAG_DSN8;
            }
        }
        f
    }

    fn wire_len(&self) -> usize {
        4 + self.data_ack.map_or(0, |a| a.wire_len())
            + self.mapping.map_or(0, |m| m.dsn.wire_len() + 4 + 2 + if m.checksum.is_some() { 2 } else { 0 })
    }
}

/// ADD_ADDR (RFC 8684 §3.4.1, Figure 12; RFC 6824 §3.4.1 for v0).
///
/// The address family, the port and the HMAC are given by the length, as
/// tcpdump and the kernel read it: 8/10/16/18 bytes for IPv4, 20/22/28/30 for
/// IPv6; 10, 18, 22 and 30 carry a port; 16, 18, 28 and 30 an HMAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddAddr {
    /// v0 form: byte 2's low nibble is the IP version (4 or 6), no HMAC.
    pub v0: bool,
    /// Flag E (v1): this is an echo of the peer's announcement.
    pub echo: bool,
    pub addr_id: u8,
    pub addr: IpAddr,
    pub port: Option<u16>,
    /// Rightmost 64 bits of the HMAC (v1, not echo).
    pub hmac: Option<u64>,
}

impl AddAddr {
    fn wire_len(&self) -> usize {
        4 + match self.addr {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 16,
        } + if self.port.is_some() { 2 } else { 0 }
            + if self.hmac.is_some() { 8 } else { 0 }
    }
}

/// REMOVE_ADDR (RFC 8684 §3.4.2): one or more address IDs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoveAddr {
    pub addr_ids: RawBytes,
}

/// MP_PRIO (RFC 8684 §3.3.8; v0 may carry an address ID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpPrio {
    pub backup: bool,
    pub addr_id: Option<u8>,
}

/// MP_FAIL (RFC 8684 §3.7): the 64-bit DSN of the failed mapping's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpFail {
    pub dsn: u64,
}

/// MP_FASTCLOSE (RFC 8684 §3.5): the receiver's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpFastclose {
    pub receiver_key: u64,
}

/// MP_TCPRST (RFC 8684 §3.6): flags U V W T and a reason code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpTcpRst {
    /// Low nibble of byte 2: U=0x8, V=0x4, W=0x2, T=0x1 (transient).
    pub flags: u8,
    pub reason: u8,
}

impl MpTcpRst {
    pub const FLAG_TRANSIENT: u8 = 0x1;

    /// The reason code's name (RFC 8684 §3.6, IANA "MPTCP TCPRST Reason Codes").
    pub fn reason_name(reason: u8) -> &'static str {
        match reason {
            0 => "unspecified error",
            1 => "MPTCP-specific error",
            2 => "lack of resources",
            3 => "administratively prohibited",
            4 => "too much outstanding data",
            5 => "unacceptable performance",
            6 => "middlebox interference",
            _ => "unknown reason",
        }
    }
}

impl MptcpOption {
    pub fn subtype(&self) -> u8 {
        match self {
            MptcpOption::MpCapable(_) => subtype::MP_CAPABLE,
            MptcpOption::MpJoin(_) => subtype::MP_JOIN,
            MptcpOption::Dss(_) => subtype::DSS,
            MptcpOption::AddAddr(_) => subtype::ADD_ADDR,
            MptcpOption::RemoveAddr(_) => subtype::REMOVE_ADDR,
            MptcpOption::MpPrio(_) => subtype::MP_PRIO,
            MptcpOption::MpFail(_) => subtype::MP_FAIL,
            MptcpOption::MpFastclose(_) => subtype::MP_FASTCLOSE,
            MptcpOption::MpTcpRst(_) => subtype::MP_TCPRST,
            MptcpOption::Experimental { .. } => subtype::MP_EXPERIMENTAL,
            MptcpOption::Unknown { subtype, .. } => *subtype,
        }
    }

    /// Total length on the wire, kind and length bytes included.
    pub fn buffer_len(&self) -> usize {
        match self {
            MptcpOption::MpCapable(c) => c.wire_len(),
            MptcpOption::MpJoin(MpJoin::Syn { .. }) => 12,
            MptcpOption::MpJoin(MpJoin::SynAck { .. }) => 16,
            MptcpOption::MpJoin(MpJoin::Ack { .. }) => 24,
            MptcpOption::Dss(d) => d.wire_len(),
            MptcpOption::AddAddr(a) => a.wire_len(),
            MptcpOption::RemoveAddr(r) => 3 + r.addr_ids.len(),
            MptcpOption::MpPrio(p) => 3 + p.addr_id.is_some() as usize,
            MptcpOption::MpFail(_) => 12,
            MptcpOption::MpFastclose(_) => 12,
            MptcpOption::MpTcpRst(_) => 4,
            MptcpOption::Experimental { data } | MptcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }
}

impl TcpOption {
    pub fn kind(&self) -> u8 {
        match self {
            TcpOption::Eol => kind::EOL,
            TcpOption::Nop => kind::NOP,
            TcpOption::Mss(_) => kind::MSS,
            TcpOption::WindowScale(_) => kind::WINDOW_SCALE,
            TcpOption::SackPermitted => kind::SACK_PERMITTED,
            TcpOption::Sack(_) => kind::SACK,
            TcpOption::Timestamps { .. } => kind::TIMESTAMPS,
            TcpOption::FastOpen { experimental: false, .. } => kind::FAST_OPEN,
            TcpOption::FastOpen { experimental: true, .. } => kind::EXPERIMENTAL_254,
            TcpOption::Mptcp(_) => kind::MPTCP,
            TcpOption::Unknown { kind, .. } => *kind,
        }
    }

    /// Bytes this option takes on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::Eol | TcpOption::Nop => 1,
            TcpOption::Mss(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::Sack(s) => 2 + 8 * s.as_slice().len(),
            TcpOption::Timestamps { .. } => 10,
            TcpOption::FastOpen { cookie, experimental } => 2 + if *experimental { 2 } else { 0 } + cookie.len(),
            TcpOption::Mptcp(m) => m.buffer_len(),
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Writes the option at the start of `buf` and returns the number of bytes
    /// written, always [`TcpOption::buffer_len`].
    ///
    /// # Panics
    /// If `buf` is shorter than `buffer_len()`: the caller sizes the buffer.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let len = self.buffer_len();
        assert!(buf.len() >= len, "option buffer too short: {} < {len}", buf.len());
        let mut w = Writer { buf: &mut buf[..len], pos: 0 };
        w.u8(self.kind());
        match self {
            TcpOption::Eol | TcpOption::Nop => {}
            _ => w.u8(len as u8),
        }
        match self {
            TcpOption::Eol | TcpOption::Nop | TcpOption::SackPermitted => {}
            TcpOption::Mss(m) => w.u16(*m),
            TcpOption::WindowScale(s) => w.u8(*s),
            TcpOption::Sack(s) => {
                for (l, r) in s.as_slice() {
                    w.u32(*l);
                    w.u32(*r);
                }
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                w.u32(*tsval);
                w.u32(*tsecr);
            }
            TcpOption::FastOpen { cookie, experimental } => {
                if *experimental {
                    w.u16(TFO_MAGIC);
                }
                w.bytes(cookie);
            }
            TcpOption::Mptcp(m) => emit_mptcp(m, &mut w),
            TcpOption::Unknown { data, .. } => w.bytes(data),
        }
        debug_assert_eq!(w.pos, len);
        len
    }
}

/// Writes `options` in order, then NOPs up to a multiple of 4 bytes (the TCP
/// header is made of 32-bit words, RFC 9293 §3.1). Returns the bytes written.
///
/// # Panics
/// If `buf` cannot hold them.
pub fn emit_options(options: &[TcpOption], buf: &mut [u8]) -> usize {
    let mut n = 0;
    for o in options {
        n += o.emit(&mut buf[n..]);
    }
    while n % 4 != 0 {
        buf[n] = kind::NOP;
        n += 1;
    }
    n
}

/// The space [`emit_options`] needs, padding included.
pub fn options_len(options: &[TcpOption]) -> usize {
    options.iter().map(|o| o.buffer_len()).sum::<usize>().next_multiple_of(4)
}

const TFO_MAGIC: u16 = 0xf989;

struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn u8(&mut self, v: u8) {
        self.buf[self.pos] = v;
        self.pos += 1;
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }
    fn seq(&mut self, v: WireSeq) {
        match v {
            WireSeq::U32(x) => self.u32(x),
            WireSeq::U64(x) => self.u64(x),
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }
}

fn emit_mptcp(m: &MptcpOption, w: &mut Writer<'_>) {
    let st = m.subtype() << 4;
    match m {
        MptcpOption::MpCapable(c) => {
            w.u8(st | (c.version & 0x0f));
            w.u8(c.flags);
            let len = c.wire_len();
            if len >= 12 {
                w.u64(c.sender_key.unwrap_or(0));
            }
            if len >= 20 {
                w.u64(c.receiver_key.unwrap_or(0));
            }
            if len >= 22 {
                w.u16(c.data_len.unwrap_or(0));
            }
            if len >= 24 {
                w.u16(c.checksum.unwrap_or(0));
            }
        }
        MptcpOption::MpJoin(j) => match j {
            MpJoin::Syn { backup, addr_id, token, nonce } => {
                w.u8(st | *backup as u8);
                w.u8(*addr_id);
                w.u32(*token);
                w.u32(*nonce);
            }
            MpJoin::SynAck { backup, addr_id, hmac, nonce } => {
                w.u8(st | *backup as u8);
                w.u8(*addr_id);
                w.u64(*hmac);
                w.u32(*nonce);
            }
            MpJoin::Ack { hmac } => {
                w.u8(st);
                w.u8(0);
                w.bytes(hmac);
            }
        },
        MptcpOption::Dss(d) => {
            w.u8(st);
            w.u8(d.flags());
            if let Some(a) = d.data_ack {
                w.seq(a);
            }
            if let Some(map) = d.mapping {
                w.seq(map.dsn);
                w.u32(map.ssn);
                w.u16(map.data_len);
                if let Some(c) = map.checksum {
                    w.u16(c);
                }
            }
        }
        MptcpOption::AddAddr(a) => {
            let nibble = if a.v0 { if a.addr.is_ipv4() { 4 } else { 6 } } else { a.echo as u8 };
            w.u8(st | nibble);
            w.u8(a.addr_id);
            match a.addr {
                IpAddr::V4(v4) => w.bytes(&v4.octets()),
                IpAddr::V6(v6) => w.bytes(&v6.octets()),
            }
            if let Some(p) = a.port {
                w.u16(p);
            }
            if let Some(h) = a.hmac {
                w.u64(h);
            }
        }
        MptcpOption::RemoveAddr(r) => {
            w.u8(st);
            w.bytes(&r.addr_ids);
        }
        MptcpOption::MpPrio(p) => {
            w.u8(st | p.backup as u8);
            if let Some(id) = p.addr_id {
                w.u8(id);
            }
        }
        MptcpOption::MpFail(f) => {
            w.u8(st);
            w.u8(0);
            w.u64(f.dsn);
        }
        MptcpOption::MpFastclose(f) => {
            w.u8(st);
            w.u8(0);
            w.u64(f.receiver_key);
        }
        MptcpOption::MpTcpRst(r) => {
            w.u8(st | (r.flags & 0x0f));
            w.u8(r.reason);
        }
        MptcpOption::Experimental { data } | MptcpOption::Unknown { data, .. } => w.bytes(data),
    }
}

/// Why an option could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionErrorReason {
    /// The option space ended after the kind byte.
    MissingLength,
    /// The length byte is 0 or 1, which cannot frame an option.
    LengthTooShort,
    /// The length runs past the end of the option space.
    LengthPastEnd { available: usize },
    /// The length is not one this kind or MPTCP subtype allows.
    InvalidLength,
    /// A field holds a value the format does not allow (e.g. ADD_ADDR v0 with
    /// IP version 5).
    InvalidValue(&'static str),
}

/// An option that failed to parse, with the facts needed to report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionError {
    /// Byte offset of the option's kind within the option space.
    pub offset: usize,
    pub kind: u8,
    /// The length byte, when there was one.
    pub len: Option<u8>,
    /// The MPTCP subtype, for kind 30 with at least 3 bytes.
    pub subtype: Option<u8>,
    /// The option's bytes (kind and length included), as far as they were framed.
    pub raw: RawBytes,
    pub reason: OptionErrorReason,
}

impl OptionError {
    /// Whether the walk over the option space stops here (a framing error).
    pub fn is_framing(&self) -> bool {
        matches!(
            self.reason,
            OptionErrorReason::MissingLength
                | OptionErrorReason::LengthTooShort
                | OptionErrorReason::LengthPastEnd { .. }
        )
    }
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TCP option kind {}", self.kind)?;
        if let Some(st) = self.subtype {
            write!(f, " (MPTCP {})", subtype::name(st))?;
        }
        write!(f, " at offset {}: ", self.offset)?;
        match self.reason {
            OptionErrorReason::MissingLength => write!(f, "the option space ends before the length byte"),
            OptionErrorReason::LengthTooShort => {
                write!(f, "length {} is less than 2", self.len.unwrap_or(0))
            }
            OptionErrorReason::LengthPastEnd { available } => {
                write!(f, "length {} runs past the end of the options ({available} bytes left)", self.len.unwrap_or(0))
            }
            OptionErrorReason::InvalidLength => {
                write!(f, "length {} is not valid for this option", self.len.unwrap_or(0))
            }
            OptionErrorReason::InvalidValue(what) => write!(f, "{what}"),
        }
    }
}

impl std::error::Error for OptionError {}

/// One item of an option walk.
pub type ParsedOption = Result<TcpOption, OptionError>;

/// Walks the option space of a TCP header (the bytes after the fixed 20).
pub fn parse_options(data: &[u8]) -> Options<'_> {
    Options { data, pos: 0, done: false }
}

/// Iterator over a TCP option space; see the module documentation.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Options<'a> {
    /// The bytes not yet walked (after an EOL: the padding).
    pub fn remainder(&self) -> &'a [u8] {
        &self.data[self.pos..]
    }
}

impl Iterator for Options<'_> {
    type Item = ParsedOption;

    fn next(&mut self) -> Option<ParsedOption> {
        if self.done || self.pos >= self.data.len() {
            return None;
        }
        let offset = self.pos;
        let rest = &self.data[offset..];
        let k = rest[0];
        match k {
            kind::EOL => {
                // RFC 9293 §3.2: EOL ends the list; what follows is padding.
                self.pos += 1;
                self.done = true;
                return Some(Ok(TcpOption::Eol));
            }
            kind::NOP => {
                self.pos += 1;
                return Some(Ok(TcpOption::Nop));
            }
            _ => {}
        }
        let fail = |len: Option<u8>, raw: &[u8], reason| OptionError {
            offset,
            kind: k,
            len,
            subtype: if k == kind::MPTCP && raw.len() >= 3 { Some(raw[2] >> 4) } else { None },
            raw: RawBytes::new(raw),
            reason,
        };
        let Some(&len) = rest.get(1) else {
            self.done = true;
            return Some(Err(fail(None, rest, OptionErrorReason::MissingLength)));
        };
        if len < 2 {
            self.done = true;
            return Some(Err(fail(Some(len), rest, OptionErrorReason::LengthTooShort)));
        }
        if len as usize > rest.len() {
            self.done = true;
            return Some(Err(fail(Some(len), rest, OptionErrorReason::LengthPastEnd { available: rest.len() })));
        }
        let whole = &rest[..len as usize];
        self.pos += len as usize;
        Some(parse_one(k, whole).map_err(|reason| fail(Some(len), whole, reason)))
    }
}

impl<'a> Options<'a> {
    /// Only the MPTCP options (kind 30), and the framing errors that end the
    /// walk: every other option is stepped over by its length without being
    /// parsed, which is what a consumer that only looks at MPTCP wants (the
    /// analysis reads every frame's options).
    pub fn mptcp(self) -> MptcpOptions<'a> {
        MptcpOptions { inner: self.mptcp_raw() }
    }

    /// The framing walk of [`Self::mptcp`] without the parsing: each MPTCP
    /// option's bytes (kind and length included), for a consumer that
    /// parses only some subtypes, or parses them straight where they go
    /// ([`parse_mptcp`], [`parse_dss`]).
    pub fn mptcp_raw(self) -> MptcpRaw<'a> {
        MptcpRaw { inner: self }
    }
}

/// Iterator over the framed MPTCP options of an option space, unparsed; see
/// [`Options::mptcp_raw`]. A framing error (of any kind) is the last item.
#[derive(Clone, Debug)]
pub struct MptcpRaw<'a> {
    inner: Options<'a>,
}

impl<'a> MptcpRaw<'a> {
    /// Offset of the next option within the option space.
    pub fn offset(&self) -> usize {
        self.inner.pos
    }
}

impl<'a> Iterator for MptcpRaw<'a> {
    type Item = Result<&'a [u8], OptionError>;

    fn next(&mut self) -> Option<Self::Item> {
        let o = &mut self.inner;
        loop {
            if o.done || o.pos >= o.data.len() {
                return None;
            }
            let rest = &o.data[o.pos..];
            match rest[0] {
                kind::EOL => {
                    o.pos += 1;
                    o.done = true;
                    return None;
                }
                kind::NOP => o.pos += 1,
                k => {
                    let framed = rest.get(1).is_some_and(|&l| l >= 2 && l as usize <= rest.len());
                    if !framed {
                        // The full walk reports the framing error and stops.
                        return match o.next()? {
                            Err(e) => Some(Err(e)),
                            Ok(_) => None,
                        };
                    }
                    let len = rest[1] as usize;
                    o.pos += len;
                    if k == kind::MPTCP {
                        return Some(Ok(&rest[..len]));
                    }
                }
            }
        }
    }
}

/// Iterator over the MPTCP options of an option space; see [`Options::mptcp`].
#[derive(Clone, Debug)]
pub struct MptcpOptions<'a> {
    inner: MptcpRaw<'a>,
}

impl Iterator for MptcpOptions<'_> {
    type Item = Result<MptcpOption, OptionError>;

    fn next(&mut self) -> Option<Self::Item> {
        let whole = match self.inner.next()? {
            Ok(w) => w,
            Err(e) => return Some(Err(e)),
        };
        let offset = self.inner.offset() - whole.len();
        Some(parse_mptcp(whole).map_err(|reason| OptionError {
            offset,
            kind: kind::MPTCP,
            len: Some(whole[1]),
            subtype: whole.get(2).map(|b| b >> 4),
            raw: RawBytes::new(whole),
            reason,
        }))
    }
}

/// Parses one framed option: `whole` is exactly `length` bytes, kind and
/// length included.
fn parse_one(k: u8, whole: &[u8]) -> Result<TcpOption, OptionErrorReason> {
    let body = &whole[2..];
    let len = whole.len();
    let bad = Err(OptionErrorReason::InvalidLength);
    let opt = match k {
        kind::MSS => {
            if len != 4 {
                return bad;
            }
            TcpOption::Mss(run(be_u16(body))?)
        }
        kind::WINDOW_SCALE => {
            if len != 3 {
                return bad;
            }
            TcpOption::WindowScale(body[0])
        }
        kind::SACK_PERMITTED => {
            if len != 2 {
                return bad;
            }
            TcpOption::SackPermitted
        }
        kind::SACK => {
            // RFC 2018 §3: 2 + 8n bytes, n >= 1.
            if len < 10 || (len - 2) % 8 != 0 {
                return bad;
            }
            let mut blocks = [(0u32, 0u32); 4];
            let mut n = 0;
            let mut i = body;
            while !i.is_empty() && n < 4 {
                let (r, (l, rt)) = run_keep((be_u32, be_u32).parse(i))?;
                blocks[n] = (l, rt);
                n += 1;
                i = r;
            }
            TcpOption::Sack(SackBlocks::new(&blocks[..n]))
        }
        kind::TIMESTAMPS => {
            if len != 10 {
                return bad;
            }
            let (tsval, tsecr) = run((be_u32, be_u32).parse(body))?;
            TcpOption::Timestamps { tsval, tsecr }
        }
        kind::FAST_OPEN => {
            // RFC 7413 §4.1.1: length 2 is a request; a cookie is 4..16 bytes.
            // Odd lengths are kept as they are: we show what was sent.
            TcpOption::FastOpen { cookie: RawBytes::new(body), experimental: false }
        }
        kind::EXPERIMENTAL_254 if body.len() >= 2 && u16::from_be_bytes([body[0], body[1]]) == TFO_MAGIC => {
            TcpOption::FastOpen { cookie: RawBytes::new(&body[2..]), experimental: true }
        }
        kind::MPTCP => TcpOption::Mptcp(parse_mptcp(whole)?),
        _ => TcpOption::Unknown { kind: k, data: RawBytes::new(body) },
    };
    Ok(opt)
}

/// Unwraps a nom result on a body whose length was already checked.
fn run<O>(r: IResult<&[u8], O>) -> Result<O, OptionErrorReason> {
    r.map(|(_, o)| o).map_err(|_| OptionErrorReason::InvalidLength)
}

fn run_keep<O>(r: IResult<&[u8], O>) -> Result<(&[u8], O), OptionErrorReason> {
    r.map_err(|_| OptionErrorReason::InvalidLength)
}

/// Parses an MPTCP option; `whole` is the full option (kind, length, body).
pub fn parse_mptcp(whole: &[u8]) -> Result<MptcpOption, OptionErrorReason> {
    let len = whole.len();
    if len < 3 {
        // No subtype byte: nothing can be read.
        return Err(OptionErrorReason::InvalidLength);
    }
    let st = whole[2] >> 4;
    let nibble = whole[2] & 0x0f;
    // After kind, length and the subtype byte.
    let after = &whole[3..];
    let bad = Err(OptionErrorReason::InvalidLength);
    let opt = match st {
        subtype::MP_CAPABLE => {
            // RFC 8684 §3.1: 4, 12, 20, 22, 24 bytes.
            if !matches!(len, 4 | 12 | 20 | 22 | 24) {
                return bad;
            }
            MptcpOption::MpCapable(run(mp_capable(after, nibble, len))?)
        }
        subtype::MP_JOIN => {
            let backup = nibble & 0x01 != 0;
            match len {
                12 => {
                    let (addr_id, token, nonce) = run((be_u8, be_u32, be_u32).parse(after))?;
                    MptcpOption::MpJoin(MpJoin::Syn { backup, addr_id, token, nonce })
                }
                16 => {
                    let (addr_id, hmac, nonce) = run((be_u8, be_u64, be_u32).parse(after))?;
                    MptcpOption::MpJoin(MpJoin::SynAck { backup, addr_id, hmac, nonce })
                }
                24 => {
                    let (_, h) = run((be_u8, take(20usize)).parse(after))?;
                    let mut hmac = [0u8; 20];
                    hmac.copy_from_slice(h);
                    MptcpOption::MpJoin(MpJoin::Ack { hmac })
                }
                _ => return bad,
            }
        }
        subtype::DSS => MptcpOption::Dss(parse_dss(whole)?),
        subtype::ADD_ADDR => {
            let (v4, port, hmac) = match len {
                8 => (true, false, false),
                10 => (true, true, false),
                16 => (true, false, true),
                18 => (true, true, true),
                20 => (false, false, false),
                22 => (false, true, false),
                28 => (false, false, true),
                30 => (false, true, true),
                _ => return bad,
            };
            let v0 = nibble == 4 || nibble == 6;
            if v0 && (hmac || (nibble == 4) != v4) {
                return Err(OptionErrorReason::InvalidValue("ADD_ADDR v0: the IP version does not match the length"));
            }
            MptcpOption::AddAddr(run(add_addr(after, v0, nibble & 0x01 != 0 && !v0, v4, port, hmac))?)
        }
        subtype::REMOVE_ADDR => {
            // RFC 8684 §3.4.2: at least one address ID.
            if len < 4 {
                return bad;
            }
            MptcpOption::RemoveAddr(RemoveAddr { addr_ids: RawBytes::new(after) })
        }
        subtype::MP_PRIO => match len {
            3 => MptcpOption::MpPrio(MpPrio { backup: nibble & 0x01 != 0, addr_id: None }),
            4 => MptcpOption::MpPrio(MpPrio { backup: nibble & 0x01 != 0, addr_id: Some(after[0]) }),
            _ => return bad,
        },
        subtype::MP_FAIL => {
            if len != 12 {
                return bad;
            }
            let (_, dsn) = run((be_u8, be_u64).parse(after))?;
            MptcpOption::MpFail(MpFail { dsn })
        }
        subtype::MP_FASTCLOSE => {
            if len != 12 {
                return bad;
            }
            let (_, receiver_key) = run((be_u8, be_u64).parse(after))?;
            MptcpOption::MpFastclose(MpFastclose { receiver_key })
        }
        subtype::MP_TCPRST => {
            if len != 4 {
                return bad;
            }
            MptcpOption::MpTcpRst(MpTcpRst { flags: nibble, reason: after[0] })
        }
        subtype::MP_EXPERIMENTAL => MptcpOption::Experimental { data: RawBytes::new(&whole[2..]) },
        _ => MptcpOption::Unknown { subtype: st, data: RawBytes::new(&whole[2..]) },
    };
    Ok(opt)
}

/// Parses a DSS option (RFC 8684 §3.3); `whole` is the full option (kind,
/// length, body) with subtype DSS. [`parse_mptcp`] gives the same as
/// `MptcpOption::Dss`; this is for the consumer that looks at DSS alone
/// (every data segment carries one).
#[inline(always)]
pub fn parse_dss(whole: &[u8]) -> Result<Dss, OptionErrorReason> {
    let after = whole.get(3..).ok_or(OptionErrorReason::InvalidLength)?;
    run(dss(after))?.ok_or(OptionErrorReason::InvalidLength)
}

fn mp_capable(i: &[u8], version: u8, len: usize) -> IResult<&[u8], MpCapable> {
    let (i, flags) = be_u8(i)?;
    let (i, sender_key) = cond(len >= 12, be_u64).parse(i)?;
    let (i, receiver_key) = cond(len >= 20, be_u64).parse(i)?;
    let (i, data_len) = cond(len >= 22, be_u16).parse(i)?;
    let (i, checksum) = cond(len >= 24, be_u16).parse(i)?;
    Ok((i, MpCapable { version, flags, sender_key, receiver_key, data_len, checksum }))
}

#[inline(always)]
fn wire_seq(i: &[u8], wide: bool) -> IResult<&[u8], WireSeq> {
    if wide { be_u64(i).map(|(i, v)| (i, WireSeq::U64(v))) } else { be_u32(i).map(|(i, v)| (i, WireSeq::U32(v))) }
}

/// DSS body after the subtype byte; `None` when the length does not match the
/// flags (RFC 8684 §3.3: the flags say which fields follow, and the only
/// optional part left is the 2-byte checksum of a mapping).
#[inline(always)]
fn dss(i: &[u8]) -> IResult<&[u8], Option<Dss>> {
    let (i, flags) = be_u8(i)?;
    let has_ack = flags & Dss::FLAG_ACK != 0;
    let has_map = flags & Dss::FLAG_MAPPING != 0;
    let (i, data_ack) = if has_ack {
        let (i, a) = wire_seq(i, flags & Dss::FLAG_ACK8 != 0)?;
        (i, Some(a))
    } else {
        (i, None)
    };
    let mut mapping = None;
    let mut i = i;
    if has_map {
        let (r, dsn) = wire_seq(i, flags & Dss::FLAG_DSN8 != 0)?;
        let (r, ssn) = be_u32(r)?;
        let (r, data_len) = be_u16(r)?;
        let (r, checksum) = if r.len() == 2 {
            let (r, c) = be_u16(r)?;
            (r, Some(c))
        } else {
            (r, None)
        };
        mapping = Some(DssMapping { dsn, ssn, data_len, checksum });
        i = r;
    }
    if !i.is_empty() {
        return Ok((i, None));
    }
    Ok((i, Some(Dss { data_fin: flags & Dss::FLAG_DATA_FIN != 0, data_ack, mapping })))
}

fn add_addr(i: &[u8], v0: bool, echo: bool, v4: bool, port: bool, hmac: bool) -> IResult<&[u8], AddAddr> {
    let (i, addr_id) = be_u8(i)?;
    let (i, addr) = if v4 {
        let (i, a) = be_u32(i)?;
        (i, IpAddr::V4(Ipv4Addr::from(a)))
    } else {
        let (i, a) = take(16usize)(i)?;
        let mut o = [0u8; 16];
        o.copy_from_slice(a);
        (i, IpAddr::V6(Ipv6Addr::from(o)))
    };
    let (i, port) = cond(port, be_u16).parse(i)?;
    let (i, hmac) = cond(hmac, be_u64).parse(i)?;
    Ok((i, AddAddr { v0, echo, addr_id, addr, port, hmac }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(bytes: &[u8]) -> ParsedOption {
        parse_options(bytes).next().expect("one option")
    }

    fn roundtrip(o: TcpOption) {
        let mut buf = [0u8; 64];
        let n = o.emit(&mut buf);
        assert_eq!(n, o.buffer_len());
        let back = one(&buf[..n]).unwrap_or_else(|e| panic!("{o:?} -> {e}"));
        assert_eq!(back, o);
    }

    #[test]
    fn mp_capable_forms() {
        // SYN, 4 bytes, v1, flags H.
        assert_eq!(
            one(&[30, 4, 0x01, 0x01]).unwrap(),
            TcpOption::Mptcp(MptcpOption::MpCapable(MpCapable { version: 1, flags: 1, ..Default::default() }))
        );
        for c in [
            MpCapable { version: 1, flags: 0x81, sender_key: Some(7), ..Default::default() },
            MpCapable { version: 1, flags: 0x01, sender_key: Some(7), receiver_key: Some(9), ..Default::default() },
            MpCapable {
                version: 1,
                flags: 0x01,
                sender_key: Some(7),
                receiver_key: Some(9),
                data_len: Some(12),
                checksum: None,
            },
            MpCapable {
                version: 1,
                flags: 0x81,
                sender_key: Some(7),
                receiver_key: Some(9),
                data_len: Some(12),
                checksum: Some(0xbeef),
            },
            MpCapable { version: 0, flags: 0x81, sender_key: Some(1), ..Default::default() },
        ] {
            roundtrip(TcpOption::Mptcp(MptcpOption::MpCapable(c)));
        }
    }

    #[test]
    fn dss_all_widths() {
        for ack in [None, Some(WireSeq::U32(5)), Some(WireSeq::U64(1 << 40))] {
            for dsn in [None, Some(WireSeq::U32(6)), Some(WireSeq::U64(1 << 41))] {
                for csum in [None, Some(0x1234)] {
                    if dsn.is_none() && csum.is_some() {
                        continue;
                    }
                    for fin in [false, true] {
                        let d = Dss {
                            data_fin: fin,
                            data_ack: ack,
                            mapping: dsn.map(|dsn| DssMapping { dsn, ssn: 1, data_len: 100, checksum: csum }),
                        };
                        roundtrip(TcpOption::Mptcp(MptcpOption::Dss(d)));
                    }
                }
            }
        }
    }

    #[test]
    fn bad_dss_length_is_reported_and_walk_continues() {
        // "mptcp 3 dss[bad opt]" from tcpdump's mptcp-dss-oobr test, then a NOP.
        let opts: Vec<_> = parse_options(&[30, 3, 0x20, 1]).collect();
        assert_eq!(opts.len(), 2);
        let e = opts[0].unwrap_err();
        assert_eq!(e.subtype, Some(subtype::DSS));
        assert_eq!(e.reason, OptionErrorReason::InvalidLength);
        assert!(!e.is_framing());
        assert_eq!(opts[1], Ok(TcpOption::Nop));
    }

    #[test]
    fn framing_errors_stop_the_walk() {
        let opts: Vec<_> = parse_options(&[1, 2, 0, 1, 1]).collect();
        assert_eq!(opts.len(), 2);
        assert!(opts[1].unwrap_err().is_framing());
        let opts: Vec<_> = parse_options(&[8, 10, 0, 0]).collect();
        assert_eq!(opts[0].unwrap_err().reason, OptionErrorReason::LengthPastEnd { available: 4 });
        let opts: Vec<_> = parse_options(&[2]).collect();
        assert_eq!(opts[0].unwrap_err().reason, OptionErrorReason::MissingLength);
    }

    #[test]
    fn eol_ends_the_list() {
        let mut it = parse_options(&[1, 0, 2, 4]);
        assert_eq!(it.next(), Some(Ok(TcpOption::Nop)));
        assert_eq!(it.next(), Some(Ok(TcpOption::Eol)));
        assert_eq!(it.next(), None);
        assert_eq!(it.remainder(), &[2, 4]);
    }

    #[test]
    fn other_options_roundtrip() {
        roundtrip(TcpOption::Mss(1460));
        roundtrip(TcpOption::WindowScale(7));
        roundtrip(TcpOption::SackPermitted);
        roundtrip(TcpOption::Sack(SackBlocks::new(&[(1, 2), (3, 4), (5, 6)])));
        roundtrip(TcpOption::Timestamps { tsval: 1, tsecr: 2 });
        roundtrip(TcpOption::FastOpen { cookie: RawBytes::new(&[]), experimental: false });
        roundtrip(TcpOption::FastOpen { cookie: RawBytes::new(&[1, 2, 3, 4, 5, 6, 7, 8]), experimental: false });
        roundtrip(TcpOption::FastOpen { cookie: RawBytes::new(&[1, 2, 3, 4]), experimental: true });
        roundtrip(TcpOption::Unknown { kind: 99, data: RawBytes::new(&[1, 2]) });
    }

    #[test]
    fn mptcp_others_roundtrip() {
        let all = [
            MptcpOption::MpJoin(MpJoin::Syn { backup: true, addr_id: 2, token: 0xdeadbeef, nonce: 7 }),
            MptcpOption::MpJoin(MpJoin::SynAck { backup: false, addr_id: 5, hmac: 0x0102030405060708, nonce: 9 }),
            MptcpOption::MpJoin(MpJoin::Ack { hmac: [7; 20] }),
            MptcpOption::AddAddr(AddAddr {
                v0: false,
                echo: false,
                addr_id: 5,
                addr: "10.77.2.2".parse().unwrap(),
                port: None,
                hmac: Some(42),
            }),
            MptcpOption::AddAddr(AddAddr {
                v0: false,
                echo: true,
                addr_id: 5,
                addr: "fd77::2:2".parse().unwrap(),
                port: Some(10100),
                hmac: None,
            }),
            MptcpOption::AddAddr(AddAddr {
                v0: true,
                echo: false,
                addr_id: 1,
                addr: "10.1.2.2".parse().unwrap(),
                port: None,
                hmac: None,
            }),
            MptcpOption::RemoveAddr(RemoveAddr { addr_ids: RawBytes::new(&[5, 6]) }),
            MptcpOption::MpPrio(MpPrio { backup: true, addr_id: None }),
            MptcpOption::MpPrio(MpPrio { backup: false, addr_id: Some(3) }),
            MptcpOption::MpFail(MpFail { dsn: 1 << 60 }),
            MptcpOption::MpFastclose(MpFastclose { receiver_key: 0xd005b1ab34bad344 }),
            MptcpOption::MpTcpRst(MpTcpRst { flags: 1, reason: 6 }),
            MptcpOption::Experimental { data: RawBytes::new(&[0xf0, 1, 2]) },
            MptcpOption::Unknown { subtype: 9, data: RawBytes::new(&[0x90]) },
        ];
        for m in all {
            roundtrip(TcpOption::Mptcp(m));
        }
    }

    #[test]
    fn mptcp_only_walk() {
        // NOP, NOP, TS, DSS (data ACK), bad MSS, ADD_ADDR echo, then a
        // framing error.
        let mut b = vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 30, 8, 0x20, 0x01, 0, 0, 0, 9, 2, 3, 1];
        b.extend([30, 8, 0x31, 5, 10, 77, 2, 2, 8, 40]);
        let v: Vec<_> = parse_options(&b).mptcp().collect();
        assert_eq!(v.len(), 3, "{v:?}");
        assert!(matches!(v[0], Ok(MptcpOption::Dss(Dss { data_ack: Some(WireSeq::U32(9)), .. }))));
        assert!(matches!(v[1], Ok(MptcpOption::AddAddr(AddAddr { echo: true, addr_id: 5, .. }))));
        assert!(v[2].as_ref().unwrap_err().is_framing());
        // The same MPTCP options as the full walk.
        let full: Vec<_> = parse_options(&b)
            .filter_map(|o| match o {
                Ok(TcpOption::Mptcp(m)) => Some(Ok(m)),
                Err(e) if e.kind == kind::MPTCP || e.is_framing() => Some(Err(e)),
                _ => None,
            })
            .collect();
        assert_eq!(v, full);
    }

    #[test]
    fn emit_options_pads_with_nops() {
        let opts = [TcpOption::Mptcp(MptcpOption::MpPrio(MpPrio { backup: true, addr_id: None }))];
        let mut buf = [0u8; 40];
        let n = emit_options(&opts, &mut buf);
        assert_eq!(n, 4);
        assert_eq!(&buf[..4], &[30, 3, 0x51, 1]);
        assert_eq!(options_len(&opts), 4);
    }
}
