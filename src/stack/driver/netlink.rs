//! A small netlink transport: build a request (header, fixed part,
//! attributes, nested attributes), send it, collect the replies and the
//! kernel's acknowledgement. Shared by the path-manager client
//! ([`super::pm`], generic netlink) and the TUN set-up ([`super::tun`],
//! rtnetlink). Layouts: include/uapi/linux/netlink.h, genetlink.h.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::sys::{cvt, cvt_size};

pub const NETLINK_ROUTE: i32 = 0;
pub const NETLINK_GENERIC: i32 = 16;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
pub const NLA_F_NESTED: u16 = 0x8000;

/// A request being built.
pub struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl Msg {
    /// Header for `msg_type` with `flags`; the fixed part follows via [`Msg::bytes`].
    pub fn new(msg_type: u16, flags: u16) -> Msg {
        let mut buf = vec![0u8; 16];
        buf[4..6].copy_from_slice(&msg_type.to_ne_bytes());
        buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        Msg { buf, nests: Vec::new() }
    }

    /// Raw bytes (a fixed header such as genlmsghdr or ifaddrmsg), padded.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Msg {
        self.buf.extend_from_slice(b);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    /// One attribute.
    pub fn attr(&mut self, ty: u16, payload: &[u8]) -> &mut Msg {
        let len = 4 + payload.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }

    pub fn attr_u8(&mut self, ty: u16, v: u8) -> &mut Msg {
        self.attr(ty, &[v])
    }
    pub fn attr_u16(&mut self, ty: u16, v: u16) -> &mut Msg {
        self.attr(ty, &v.to_ne_bytes())
    }
    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Msg {
        self.attr(ty, &v.to_ne_bytes())
    }
    pub fn attr_str(&mut self, ty: u16, s: &str) -> &mut Msg {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.attr(ty, &b)
    }

    /// Open a nested attribute; close it with [`Msg::end_nest`].
    pub fn nest(&mut self, ty: u16) -> &mut Msg {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub fn end_nest(&mut self) -> &mut Msg {
        if let Some(start) = self.nests.pop() {
            let len = (self.buf.len() - start) as u16;
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
        self
    }

    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}

/// Attributes of a message body: (type without flags, payload).
pub fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let payload = &b[4..len];
        b = &b[align4(len).min(b.len())..];
        Some((ty, payload))
    })
}

pub fn attr_u8(p: &[u8]) -> Option<u8> {
    p.first().copied()
}
pub fn attr_u16(p: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(p.get(..2)?.try_into().ok()?))
}
pub fn attr_u32(p: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(p.get(..4)?.try_into().ok()?))
}

/// An open netlink socket.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
}

impl Socket {
    pub fn open(protocol: i32) -> io::Result<Socket> {
        // SAFETY: plain socket(2).
        let fd = cvt(unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) })?;
        // SAFETY: fd is new and ours.
        Ok(Socket { fd: unsafe { OwnedFd::from_raw_fd(fd) }, seq: 1 })
    }

    /// Send `msg` and return the payloads (after the nlmsghdr) of every reply
    /// message until the acknowledgement or the end of a dump. A negative
    /// acknowledgement becomes the corresponding `io::Error`.
    pub fn request(&mut self, msg: &mut Msg) -> io::Result<Vec<Vec<u8>>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let flags = u16::from_ne_bytes([msg.buf[6], msg.buf[7]]);
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let bytes = msg.finish(seq);
        // SAFETY: a zeroed sockaddr_nl addresses the kernel (pid 0).
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
        })?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: buf is valid for writes of its length.
            let n = cvt_size(unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) })?;
            let mut b = &buf[..n];
            while b.len() >= 16 {
                let len = u32::from_ne_bytes(b[0..4].try_into().unwrap_or_default()) as usize;
                let ty = u16::from_ne_bytes([b[4], b[5]]);
                let rseq = u32::from_ne_bytes(b[8..12].try_into().unwrap_or_default());
                if len < 16 || len > b.len() {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated netlink message"));
                }
                let payload = &b[16..len];
                b = &b[align4(len).min(b.len())..];
                if rseq != seq {
                    continue;
                }
                match ty {
                    NLMSG_ERROR => {
                        let code = payload.get(..4).map(|c| i32::from_ne_bytes(c.try_into().unwrap_or_default()));
                        return match code {
                            Some(0) => Ok(out),
                            Some(c) => Err(io::Error::from_raw_os_error(-c)),
                            None => Err(io::Error::new(io::ErrorKind::InvalidData, "short netlink error")),
                        };
                    }
                    NLMSG_DONE => return Ok(out),
                    _ => {
                        out.push(payload.to_vec());
                        if !dump && flags & NLM_F_ACK == 0 {
                            return Ok(out);
                        }
                    }
                }
            }
        }
    }
}

// ---- generic netlink ----

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;

/// A generic netlink message for `family` (its numeric id).
pub fn genl_msg(family: u16, cmd: u8, version: u8, flags: u16) -> Msg {
    let mut m = Msg::new(family, flags);
    m.bytes(&[cmd, version, 0, 0]);
    m
}

/// Resolve a generic netlink family name to its id. `Ok(None)` when the
/// kernel does not have it.
pub fn genl_family(sock: &mut Socket, name: &str) -> io::Result<Option<u16>> {
    let mut m = genl_msg(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, NLM_F_REQUEST | NLM_F_ACK);
    m.attr_str(CTRL_ATTR_FAMILY_NAME, name);
    let replies = match sock.request(&mut m) {
        Ok(r) => r,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    for r in replies {
        for (ty, p) in attrs(r.get(4..).unwrap_or(&[])) {
            if ty == CTRL_ATTR_FAMILY_ID {
                return Ok(attr_u16(p));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_walk_attributes() {
        let mut m = Msg::new(42, NLM_F_REQUEST);
        m.bytes(&[1, 2, 0, 0]).attr_u32(3, 7).nest(1).attr_u16(1, 2).attr_u8(2, 9).end_nest().attr_str(5, "ab");
        let b = m.finish(9).to_vec();
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize, b.len());
        let got: Vec<(u16, Vec<u8>)> = attrs(&b[20..]).map(|(t, p)| (t, p.to_vec())).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (3, 7u32.to_ne_bytes().to_vec()));
        assert_eq!(got[1].0, 1);
        let inner: Vec<(u16, Vec<u8>)> = attrs(&got[1].1).map(|(t, p)| (t, p.to_vec())).collect();
        assert_eq!(inner, vec![(1, 2u16.to_ne_bytes().to_vec()), (2, vec![9])]);
        assert_eq!(got[2], (5, b"ab\0".to_vec()));
        // A lying length stops the walk instead of over-reading.
        assert_eq!(attrs(&[200, 0, 1, 0, 0, 0]).count(), 0);
    }
}
