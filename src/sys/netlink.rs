//! The one netlink layer (RFC 3549; Linux include/uapi/linux/netlink.h) of
//! the crate: a socket, message building, a bounds-checked message and
//! attribute reader, multipart dumps and acknowledgements. Generic netlink
//! ([`super::genl`]) and sock_diag ([`super::sock_diag`]) build on it;
//! mptcp-ss (kernel source, path-manager events) and mptcp-cat (path-manager
//! endpoints, TUN set-up over rtnetlink, subflow lookups) all go through it.
//!
//! The parsing half is pure: [`messages`] and [`attrs`] walk a byte buffer
//! and never index past what the headers allow; a header that claims more
//! than the buffer holds ends the walk with [`NetlinkError::Malformed`].
//! The socket half ([`Socket`]) is the only code here that touches the OS.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{cvt, cvt_size};

/// `struct nlmsghdr` is 16 bytes: len u32, type u16, flags u16, seq u32, pid u32.
pub const NLMSG_HDRLEN: usize = 16;
/// `struct nlattr` is 4 bytes: len u16, type u16.
pub const NLA_HDRLEN: usize = 4;

pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;

pub const NLM_F_REQUEST: u16 = 0x01;
pub const NLM_F_MULTI: u16 = 0x02;
pub const NLM_F_ACK: u16 = 0x04;
pub const NLM_F_ROOT: u16 = 0x100;
pub const NLM_F_MATCH: u16 = 0x200;
pub const NLM_F_DUMP: u16 = NLM_F_ROOT | NLM_F_MATCH;
/// For new requests (rtnetlink, generic netlink "add" commands).
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;

/// Attribute type bits that are flags, not part of the type.
pub const NLA_F_NESTED: u16 = 0x8000;
pub const NLA_F_NET_BYTEORDER: u16 = 0x4000;
const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

pub const NETLINK_ROUTE: i32 = 0;
pub const NETLINK_SOCK_DIAG: i32 = 4;
pub const NETLINK_GENERIC: i32 = 16;
const SOL_NETLINK: i32 = 270;
const NETLINK_ADD_MEMBERSHIP: i32 = 1;

/// Round up to the 4-byte netlink alignment.
pub const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Errors of the netlink layer.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink {what}: {}", super::os_text(source))]
    Io { what: &'static str, source: io::Error },
    /// The kernel answered with an NLMSG_ERROR carrying a negative errno.
    #[error("netlink {what}: the kernel answered: {}", super::errno_text(*.errno))]
    Kernel { what: &'static str, errno: i32 },
    #[error("netlink: malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
}

impl NetlinkError {
    /// The errno behind this error, if any (kernel answer or syscall).
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Io { source, .. } => source.raw_os_error(),
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            NetlinkError::Malformed { .. } => None,
        }
    }
}

/// For callers that speak `io::Result` ([`super::tun`]'s set-up): the kernel's errno
/// as the OS error it is, a malformed answer as `InvalidData`.
impl From<NetlinkError> for io::Error {
    fn from(e: NetlinkError) -> io::Error {
        match e {
            NetlinkError::Io { source, .. } => source,
            NetlinkError::Kernel { errno, .. } => io::Error::from_raw_os_error(errno),
            m @ NetlinkError::Malformed { .. } => io::Error::new(io::ErrorKind::InvalidData, m.to_string()),
        }
    }
}

fn rd_u16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_ne_bytes([s[0], s[1]]))
}
fn rd_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// Host-order integer reads at a byte offset; `None` past the end.
pub mod read {
    pub fn u8(b: &[u8], at: usize) -> Option<u8> {
        b.get(at).copied()
    }
    pub fn u16(b: &[u8], at: usize) -> Option<u16> {
        super::rd_u16(b, at)
    }
    pub fn u32(b: &[u8], at: usize) -> Option<u32> {
        super::rd_u32(b, at)
    }
    pub fn u64(b: &[u8], at: usize) -> Option<u64> {
        b.get(at..at + 8).map(|s| u64::from_ne_bytes(s.try_into().expect("8 bytes")))
    }
    /// Network-order u16 (ports).
    pub fn be16(b: &[u8], at: usize) -> Option<u16> {
        b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
    }
}

/// One netlink message, borrowing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub pid: u32,
    /// The bytes after the 16-byte header, as long as the header's length says.
    pub payload: &'a [u8],
}

impl Message<'_> {
    /// For NLMSG_ERROR and NLMSG_DONE: the (negative) errno at the start of
    /// the payload, 0 for an acknowledgement or a clean end of dump.
    pub fn error_code(&self) -> Option<i32> {
        rd_u32(self.payload, 0).map(|v| v as i32)
    }
}

/// Iterator over the messages of one datagram; see [`messages`].
pub struct Messages<'a> {
    buf: &'a [u8],
    failed: bool,
}

/// Walk the netlink messages packed in `buf`.
pub fn messages(buf: &[u8]) -> Messages<'_> {
    Messages { buf, failed: false }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, NetlinkError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let b = self.buf;
        let bad = |detail: String| Some(Err(NetlinkError::Malformed { what: "message", detail }));
        if b.len() < NLMSG_HDRLEN {
            self.failed = true;
            return bad(format!("{} trailing bytes, shorter than a header", b.len()));
        }
        let len = rd_u32(b, 0).unwrap_or(0) as usize;
        if len < NLMSG_HDRLEN || len > b.len() {
            self.failed = true;
            return bad(format!("header claims {len} bytes, {} available", b.len()));
        }
        let msg = Message {
            ty: rd_u16(b, 4).unwrap_or(0),
            flags: rd_u16(b, 6).unwrap_or(0),
            seq: rd_u32(b, 8).unwrap_or(0),
            pid: rd_u32(b, 12).unwrap_or(0),
            payload: &b[NLMSG_HDRLEN..len],
        };
        self.buf = b.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(msg))
    }
}

/// One attribute (`struct nlattr` + value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr<'a> {
    /// The type with the NESTED and NET_BYTEORDER flag bits cleared.
    pub ty: u16,
    pub data: &'a [u8],
}

impl<'a> Attr<'a> {
    pub fn u8(&self) -> Option<u8> {
        read::u8(self.data, 0)
    }
    pub fn u16(&self) -> Option<u16> {
        read::u16(self.data, 0)
    }
    pub fn u32(&self) -> Option<u32> {
        read::u32(self.data, 0)
    }
    pub fn u64(&self) -> Option<u64> {
        read::u64(self.data, 0)
    }
    pub fn be16(&self) -> Option<u16> {
        read::be16(self.data, 0)
    }
    /// A NUL-terminated (or not) string value, lossily decoded.
    pub fn str(&self) -> String {
        let end = self.data.iter().position(|&c| c == 0).unwrap_or(self.data.len());
        String::from_utf8_lossy(&self.data[..end]).into_owned()
    }
    /// The attributes nested inside this one.
    pub fn nested(&self) -> Attrs<'a> {
        attrs(self.data)
    }
}

/// Iterator over a run of attributes; see [`attrs`].
pub struct Attrs<'a> {
    buf: &'a [u8],
    failed: bool,
}

/// Walk the attributes packed in `buf`. A header that claims more than the
/// buffer holds yields one error and ends the walk.
pub fn attrs(buf: &[u8]) -> Attrs<'_> {
    Attrs { buf, failed: false }
}

impl<'a> Attrs<'a> {
    /// The first attribute of type `ty`, ignoring malformed tails.
    pub fn find(self, ty: u16) -> Option<Attr<'a>> {
        self.filter_map(Result::ok).find(|a| a.ty == ty)
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, NetlinkError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.len() < NLA_HDRLEN {
            // Fewer than 4 bytes left is alignment padding at most.
            return None;
        }
        let b = self.buf;
        let len = rd_u16(b, 0).unwrap_or(0) as usize;
        if len < NLA_HDRLEN || len > b.len() {
            self.failed = true;
            return Some(Err(NetlinkError::Malformed {
                what: "attribute",
                detail: format!("header claims {len} bytes, {} available", b.len()),
            }));
        }
        let ty = rd_u16(b, 2).unwrap_or(0) & NLA_TYPE_MASK;
        let a = Attr { ty, data: &b[NLA_HDRLEN..len] };
        self.buf = b.get(align4(len)..).unwrap_or(&[]);
        Some(Ok(a))
    }
}

/// Append one attribute (header, value, padding) to `buf`.
pub fn push_attr(buf: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let len = NLA_HDRLEN + value.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&ty.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(align4(buf.len()), 0);
}

/// A request being built: the header, a fixed part (`genlmsghdr`,
/// `ifinfomsg`, `inet_diag_req_v2`, ...), then attributes, nested ones
/// included. The length and sequence number are filled in when it is sent.
#[derive(Clone, Debug)]
pub struct Request {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Request {
    /// A message of type `ty` with `flags` (NLM_F_REQUEST and the rest).
    pub fn new(ty: u16, flags: u16) -> Request {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        Request { buf, nests: Vec::new() }
    }

    pub fn flags(&self) -> u16 {
        u16::from_ne_bytes([self.buf[6], self.buf[7]])
    }

    /// Raw bytes (a fixed header), padded to the alignment.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Request {
        self.buf.extend_from_slice(b);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// One attribute.
    pub fn attr(&mut self, ty: u16, value: &[u8]) -> &mut Request {
        push_attr(&mut self.buf, ty, value);
        self
    }
    pub fn attr_u8(&mut self, ty: u16, v: u8) -> &mut Request {
        self.attr(ty, &[v])
    }
    pub fn attr_u16(&mut self, ty: u16, v: u16) -> &mut Request {
        self.attr(ty, &v.to_ne_bytes())
    }
    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Request {
        self.attr(ty, &v.to_ne_bytes())
    }
    /// A NUL-terminated string attribute.
    pub fn attr_str(&mut self, ty: u16, s: &str) -> &mut Request {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.attr(ty, &b)
    }

    /// Open a nested attribute (NLA_F_NESTED); close it with [`Request::end_nest`].
    pub fn nest(&mut self, ty: u16) -> &mut Request {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub fn end_nest(&mut self) -> &mut Request {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    /// The finished message with sequence number `seq`.
    pub fn finish(&mut self, seq: u32) -> &[u8] {
        while !self.nests.is_empty() {
            self.end_nest();
        }
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}

/// A whole message: header then `payload` (padded to the alignment).
pub fn message_bytes(ty: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut r = Request::new(ty, flags);
    r.bytes(payload);
    r.finish(seq).to_vec()
}

/// An owned copy of a received message (type and payload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedMessage {
    pub ty: u16,
    pub flags: u16,
    pub payload: Vec<u8>,
}

/// A netlink socket of one protocol family.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

/// Receive buffer size: dumps arrive in datagrams of up to 32 KiB (or a page
/// per message); a larger buffer never truncates.
const RECV_BUF: usize = 256 * 1024;
/// How long a request waits for the kernel's answer.
const ANSWER_TIMEOUT_SECS: i64 = 2;

impl Socket {
    /// Open and bind a netlink socket of `protocol` (NETLINK_ROUTE,
    /// NETLINK_SOCK_DIAG, NETLINK_GENERIC). Reads time out after 2 s, so a
    /// kernel that never answers cannot hang the caller.
    pub fn open(protocol: i32) -> Result<Socket, NetlinkError> {
        let io = |what| move |source| NetlinkError::Io { what, source };
        // SAFETY: plain syscall with constant arguments; the result is checked.
        let fd = cvt(unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) })
            .map_err(io("socket"))?;
        // SAFETY: fd is a freshly created descriptor that we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: sa is a valid sockaddr_nl of the length we pass.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })
        .map_err(io("bind"))?;
        let s = Socket { fd, seq: 1, buf: vec![0; RECV_BUF] };
        let tv = libc::timeval { tv_sec: ANSWER_TIMEOUT_SECS, tv_usec: 0 };
        // SAFETY: timeval is plain data; viewed as its bytes for setsockopt.
        let tv = unsafe {
            std::slice::from_raw_parts((&tv as *const libc::timeval).cast::<u8>(), std::mem::size_of::<libc::timeval>())
        };
        super::setsockopt_bytes(s.fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, tv)
            .map_err(io("setsockopt SO_RCVTIMEO"))?;
        Ok(s)
    }

    /// Join a multicast group (generic netlink group ids come from nlctrl).
    pub fn add_membership(&self, group: u32) -> Result<(), NetlinkError> {
        super::setsockopt_bytes(self.fd.as_raw_fd(), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group.to_ne_bytes())
            .map_err(|source| NetlinkError::Io { what: "joining the multicast group", source })
    }

    /// Switch to non-blocking reads (for event sockets polled by the run loop).
    pub fn set_nonblocking(&self) -> Result<(), NetlinkError> {
        super::set_nonblocking(self.fd.as_raw_fd(), true)
            .map_err(|source| NetlinkError::Io { what: "fcntl O_NONBLOCK", source })
    }

    /// The next sequence number for a request.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Send one complete message to the kernel.
    pub fn send(&self, bytes: &[u8]) -> Result<(), NetlinkError> {
        // SAFETY: sockaddr_nl is plain data; zeroed (pid 0) addresses the kernel.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: bytes and sa are valid for the lengths passed.
        cvt_size(unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        })
        .map(drop)
        .map_err(|source| NetlinkError::Io { what: "send", source })
    }

    /// Receive one datagram; `Ok(None)` when a non-blocking socket has nothing.
    pub fn recv(&mut self) -> Result<Option<&[u8]>, NetlinkError> {
        loop {
            // SAFETY: buf is valid for writes of its length.
            let r =
                cvt_size(unsafe { libc::recv(self.fd.as_raw_fd(), self.buf.as_mut_ptr().cast(), self.buf.len(), 0) });
            match r {
                Ok(n) => return Ok(Some(&self.buf[..n])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(source) => return Err(NetlinkError::Io { what: "recv", source }),
            }
        }
    }

    /// Send a dump request (NLM_F_REQUEST | NLM_F_DUMP is added) and collect
    /// every answer message up to NLMSG_DONE.
    pub fn dump(&mut self, what: &'static str, ty: u16, payload: &[u8]) -> Result<Vec<OwnedMessage>, NetlinkError> {
        let mut r = Request::new(ty, NLM_F_REQUEST | NLM_F_DUMP);
        r.bytes(payload);
        self.transact(what, &mut r)
    }

    /// Send a request with NLM_F_ACK and collect the answers up to the ack.
    pub fn request(&mut self, what: &'static str, ty: u16, payload: &[u8]) -> Result<Vec<OwnedMessage>, NetlinkError> {
        let mut r = Request::new(ty, NLM_F_REQUEST | NLM_F_ACK);
        r.bytes(payload);
        self.transact(what, &mut r)
    }

    /// Send `req` and collect the kernel's answers: up to NLMSG_DONE for a
    /// dump (NLM_F_DUMP), up to the acknowledgement with NLM_F_ACK, else the
    /// first answer. A negative acknowledgement is [`NetlinkError::Kernel`].
    pub fn transact(&mut self, what: &'static str, req: &mut Request) -> Result<Vec<OwnedMessage>, NetlinkError> {
        let seq = self.next_seq();
        let flags = req.flags();
        self.send(req.finish(seq))?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let until = if dump {
            Until::Done
        } else if flags & NLM_F_ACK != 0 {
            Until::Ack
        } else {
            Until::FirstAnswer
        };
        self.collect(what, seq, until)
    }

    fn collect(&mut self, what: &'static str, seq: u32, until: Until) -> Result<Vec<OwnedMessage>, NetlinkError> {
        let mut out = Vec::new();
        loop {
            let Some(buf) = self.recv()? else {
                return Err(NetlinkError::Io { what, source: io::ErrorKind::WouldBlock.into() });
            };
            if buf.is_empty() {
                return Err(NetlinkError::Malformed { what, detail: "empty datagram".into() });
            }
            for m in messages(buf) {
                let m = m?;
                if m.seq != seq {
                    // A late answer to an earlier request, or a multicast message.
                    continue;
                }
                match m.ty {
                    NLMSG_NOOP => {}
                    NLMSG_ERROR | NLMSG_DONE => {
                        let code = m.error_code().unwrap_or(0);
                        if code < 0 {
                            return Err(NetlinkError::Kernel { what, errno: -code });
                        }
                        // An ack (error 0) ends a request; a dump ends at DONE.
                        if m.ty == NLMSG_DONE || until != Until::Done {
                            return Ok(out);
                        }
                    }
                    NLMSG_OVERRUN => {
                        return Err(NetlinkError::Malformed { what, detail: "overrun: messages were lost".into() });
                    }
                    _ => {
                        out.push(OwnedMessage { ty: m.ty, flags: m.flags, payload: m.payload.to_vec() });
                        if until == Until::FirstAnswer {
                            return Ok(out);
                        }
                    }
                }
            }
        }
    }
}

/// When a request's answer is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Until {
    Done,
    Ack,
    FirstAnswer,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trip_and_padding() {
        let mut p = Vec::new();
        push_attr(&mut p, 3, &262u32.to_ne_bytes());
        push_attr(&mut p, 1, b"abc\0"); // 8 bytes, aligned
        push_attr(&mut p, 2, &[7]); // 5 bytes -> padded to 8
        assert_eq!(p.len(), 8 + 8 + 8);
        let mut two = message_bytes(20, NLM_F_REQUEST, 9, &p);
        two.extend(message_bytes(NLMSG_DONE, NLM_F_MULTI, 9, &0i32.to_ne_bytes()));
        let ms: Vec<_> = messages(&two).collect::<Result<_, _>>().unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!((ms[0].ty, ms[0].seq, ms[0].flags), (20, 9, NLM_F_REQUEST));
        assert_eq!(ms[1].error_code(), Some(0));
        let a: Vec<_> = attrs(ms[0].payload).collect::<Result<_, _>>().unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].u32(), Some(262));
        assert_eq!(a[1].str(), "abc");
        assert_eq!(a[2].u8(), Some(7));
        assert_eq!(a[2].u16(), None, "a 1-byte value has no u16");
    }

    #[test]
    fn nested_flag_is_masked() {
        let mut inner = Vec::new();
        push_attr(&mut inner, 4, &5u64.to_ne_bytes());
        let mut outer = Vec::new();
        push_attr(&mut outer, 19 | NLA_F_NESTED, &inner);
        let a = attrs(&outer).find(19).unwrap();
        assert_eq!(a.nested().find(4).unwrap().u64(), Some(5));
    }

    #[test]
    fn lying_lengths_stop_the_walk() {
        // An attribute claiming 200 bytes in a 12-byte buffer.
        let mut b = vec![0u8; 12];
        b[0..2].copy_from_slice(&200u16.to_ne_bytes());
        let v: Vec<_> = attrs(&b).collect();
        assert_eq!(v.len(), 1);
        assert!(v[0].is_err());
        // A length below the header size.
        b[0..2].copy_from_slice(&2u16.to_ne_bytes());
        assert!(attrs(&b).next().unwrap().is_err());
        // A message header claiming more than there is.
        let mut m = message_bytes(20, 0, 1, &[1, 2, 3, 4]);
        m[0..4].copy_from_slice(&100u32.to_ne_bytes());
        let v: Vec<_> = messages(&m).collect();
        assert_eq!(v.len(), 1);
        assert!(v[0].is_err());
        // Truncated header.
        assert!(messages(&m[..10]).next().unwrap().is_err());
        // Short tails are padding, not errors.
        assert_eq!(attrs(&[0, 0]).count(), 0);
    }

    #[test]
    fn request_builder_nests_and_pads() {
        let mut m = Request::new(42, NLM_F_REQUEST);
        m.bytes(&[1, 2]).attr_u32(3, 7).nest(1).attr_u16(1, 2).attr_u8(2, 9).end_nest().attr_str(5, "ab");
        assert_eq!(m.flags(), NLM_F_REQUEST);
        let b = m.finish(9).to_vec();
        let msg = messages(&b).next().unwrap().unwrap();
        assert_eq!((msg.ty, msg.seq, msg.payload.len() + NLMSG_HDRLEN), (42, 9, b.len()));
        assert_eq!(&msg.payload[..4], &[1, 2, 0, 0], "the fixed part is padded");
        let a: Vec<_> = attrs(&msg.payload[4..]).collect::<Result<_, _>>().unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a[0].u32(), Some(7));
        let inner: Vec<_> = a[1].nested().collect::<Result<_, _>>().unwrap();
        assert_eq!((a[1].ty, inner.len(), inner[0].u16(), inner[1].u8()), (1, 2, Some(2), Some(9)));
        assert_eq!(a[2].str(), "ab");
        // A nest left open is closed by finish.
        let mut m = Request::new(1, 0);
        m.nest(4).attr_u8(1, 1);
        let b = m.finish(1).to_vec();
        let msg = messages(&b).next().unwrap().unwrap();
        assert_eq!(attrs(msg.payload).find(4).unwrap().nested().count(), 1);
    }

    #[test]
    fn kernel_answers_dumps_and_errors() {
        // rtnetlink needs no privilege to list links; every namespace has lo.
        let mut s = Socket::open(NETLINK_ROUTE).unwrap();
        let ifinfomsg = [0u8; 16];
        let links = s.dump("links", libc::RTM_GETLINK, &ifinfomsg).unwrap();
        assert!(links.iter().all(|m| m.ty == libc::RTM_NEWLINK) && !links.is_empty());
        let names: Vec<String> =
            links.iter().filter_map(|m| attrs(m.payload.get(16..)?).find(libc::IFLA_IFNAME).map(|a| a.str())).collect();
        assert!(names.iter().any(|n| n == "lo"), "{names:?}");
        // A request about a link that does not exist: a negative ack.
        let mut ifi = [0u8; 16];
        ifi[4..8].copy_from_slice(&0x7fff_fff0i32.to_ne_bytes());
        let e = s.request("get link", libc::RTM_GETLINK, &ifi).unwrap_err();
        assert_eq!(e.errno(), Some(libc::ENODEV), "{e}");
        assert_eq!(io::Error::from(e).raw_os_error(), Some(libc::ENODEV));
    }

    #[test]
    fn kernel_error_text() {
        let e = NetlinkError::Kernel { what: "sock_diag", errno: libc::ENOENT };
        assert_eq!(e.to_string(), "netlink sock_diag: the kernel answered: No such file or directory");
        assert_eq!(e.errno(), Some(libc::ENOENT));
    }
}
