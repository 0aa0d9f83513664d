//! The operating-system edge shared by the drivers (mptcp-cat) and the
//! diagnostics sources (mptcp-ss): small safe wrappers over the libc calls
//! (socket addresses in and out of `sockaddr_storage`, `poll`, fd flags,
//! socket options), and the kernel interfaces both tools read:
//!
//! - [`netlink`]: the one netlink layer (socket, requests, dumps, acks,
//!   bounds-checked messages and attributes);
//! - [`genl`]: generic netlink and nlctrl family resolution (the `mptcp_pm`
//!   family's commands and events);
//! - [`sock_diag`]: the one sock_diag reader (dumps of MPTCP and TCP
//!   sockets, the lookup of one subflow, the MPTCP subflow ULP info);
//! - [`mptcp_info`]: `struct mptcp_info` and `struct tcp_info` as sock_diag
//!   and the SOL_MPTCP getsockopts return them;
//! - [`route`]: the kernel's route lookup (`ip route get DST from SRC`);
//! - [`mptcp_socket`]: the kernel's own MPTCP sockets (`--stack kernel`)
//!   and the SOL_MPTCP getsockopts that report what was negotiated;
//! - [`pm_netlink`]: the kernel's path manager over generic netlink (`ip
//!   mptcp endpoint` / `limits`), for `--local` / `--limits` with the kernel
//!   stack and for mptcp-ss's doctor;
//! - [`tun`]: the TUN device the embedded stack talks through (ioctls,
//!   rtnetlink set-up, the virtio-net header);
//! - [`signals`]: SIGINT/SIGTERM/SIGHUP as a pollable fd, so every loop ends
//!   cleanly and destructors undo what was set up.
//!
//! It sits beside `stack` and `diag` rather than inside either, so that the
//! stack's drivers and mptcp-ss's sources share it without depending on
//! each other. The host-kernel calls of `stack::driver` and `cli::cat` are
//! all here, so those two hold no `unsafe`.

pub mod genl;
pub mod mptcp_info;
pub mod mptcp_socket;
pub mod netlink;
pub mod pm_netlink;
pub mod route;
pub mod signals;
pub mod sock_diag;
pub mod tun;

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// An OS error in words, without the "(os error N)" suffix std adds.
pub fn os_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// An errno in words ("Connection reset by peer").
pub fn errno_text(errno: i32) -> String {
    os_text(&io::Error::from_raw_os_error(errno))
}

/// A timeout in words for messages: "3s", "250ms".
pub fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

/// `Err(last_os_error)` when a libc call returned -1.
pub fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// Like [`cvt`] for calls returning `ssize_t`.
pub fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
}

/// A socket address in the kernel's representation.
pub fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr { s6_addr: a.ip().octets() };
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// A socket address from the raw bytes of a `struct sockaddr_*` (as found
/// inside kernel structures such as `mptcp_subflow_addrs`). `None` for an
/// unknown family or a short buffer.
pub fn sockaddr_from_bytes(b: &[u8]) -> Option<SocketAddr> {
    if b.len() < 2 {
        return None;
    }
    let family = u16::from_ne_bytes([b[0], b[1]]) as libc::c_int;
    match family {
        libc::AF_INET if b.len() >= 8 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
            Some(SocketAddr::V4(SocketAddrV4::new(ip, port)))
        }
        libc::AF_INET6 if b.len() >= 28 => {
            let port = u16::from_be_bytes([b[2], b[3]]);
            let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[8..24]);
            let scope = u32::from_ne_bytes([b[24], b[25], b[26], b[27]]);
            Some(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(o), port, flow, scope)))
        }
        _ => None,
    }
}

/// `AF_INET` or `AF_INET6` for an address.
pub fn family_of(ip: &IpAddr) -> libc::c_int {
    if ip.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 }
}

/// Set or clear O_NONBLOCK.
pub fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on a caller-provided fd with integer arguments.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let new = if on { flags | libc::O_NONBLOCK } else { flags & !libc::O_NONBLOCK };
    if new != flags {
        // SAFETY: as above.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// One entry of a poll set.
#[derive(Clone, Copy, Debug)]
pub struct PollFd {
    pub fd: RawFd,
    pub events: i16,
    pub revents: i16,
}

impl PollFd {
    pub fn new(fd: &impl AsRawFd, events: i16) -> PollFd {
        PollFd { fd: fd.as_raw_fd(), events, revents: 0 }
    }
    pub fn raw(fd: RawFd, events: i16) -> PollFd {
        PollFd { fd, events, revents: 0 }
    }
    pub fn readable(&self) -> bool {
        self.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
    }
    pub fn writable(&self) -> bool {
        self.revents & (libc::POLLOUT | libc::POLLHUP | libc::POLLERR) != 0
    }
}

pub const POLLIN: i16 = libc::POLLIN;
pub const POLLOUT: i16 = libc::POLLOUT;

/// `poll(2)` over `fds`, `None` waits forever. EINTR is reported as 0 ready
/// descriptors (the caller's loop then checks for signals).
pub fn poll(fds: &mut [PollFd], timeout: Option<Duration>) -> io::Result<usize> {
    let mut raw: Vec<libc::pollfd> =
        fds.iter().map(|p| libc::pollfd { fd: p.fd, events: p.events, revents: 0 }).collect();
    let ms = match timeout {
        None => -1,
        Some(d) => d.as_millis().min(i32::MAX as u128) as libc::c_int + i32::from(d.subsec_nanos() % 1_000_000 != 0),
    };
    // SAFETY: raw is a valid array of pollfd of the given length.
    let r = unsafe { libc::poll(raw.as_mut_ptr(), raw.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            for p in fds.iter_mut() {
                p.revents = 0;
            }
            return Ok(0);
        }
        return Err(e);
    }
    for (p, r) in fds.iter_mut().zip(&raw) {
        p.revents = r.revents;
    }
    Ok(r as usize)
}

/// Whether standard input is a terminal.
pub fn stdin_is_tty() -> bool {
    // SAFETY: isatty on fd 0 has no preconditions.
    unsafe { libc::isatty(0) == 1 }
}

/// `getrandom(2)` into `buf`: the bytes written (fewer than asked, or 0,
/// only on a failure).
pub fn getrandom(buf: &mut [u8]) -> usize {
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    n.max(0) as usize
}

/// `read(2)` on a raw fd.
pub fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for writes of buf.len() bytes.
    cvt_size(unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })
}

/// `write(2)` on a raw fd.
pub fn write_fd(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: buf is valid for reads of buf.len() bytes.
    cvt_size(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })
}

/// Write all of `buf` to a (blocking) fd, retrying on EINTR unless `stop()`
/// says to give up.
pub fn write_all_fd(fd: RawFd, mut buf: &[u8], stop: &dyn Fn() -> bool) -> io::Result<()> {
    while !buf.is_empty() {
        match write_fd(fd, buf) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if stop() {
                    return Err(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut p = [PollFd::raw(fd, POLLOUT)];
                poll(&mut p, Some(Duration::from_millis(100)))?;
                if stop() {
                    return Err(io::Error::from(io::ErrorKind::Interrupted));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `getsockopt` into a byte buffer; returns the length the kernel wrote.
pub fn getsockopt_bytes(fd: RawFd, level: libc::c_int, name: libc::c_int, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: buf is valid for len bytes; len is updated by the kernel.
    cvt(unsafe { libc::getsockopt(fd, level, name, buf.as_mut_ptr().cast(), &mut len) })?;
    Ok(len as usize)
}

/// `setsockopt` with an int value.
pub fn setsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int of the right size.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// `setsockopt` with raw bytes.
pub fn setsockopt_bytes(fd: RawFd, level: libc::c_int, name: libc::c_int, v: &[u8]) -> io::Result<()> {
    // SAFETY: v is valid for v.len() bytes.
    cvt(unsafe { libc::setsockopt(fd, level, name, v.as_ptr().cast(), v.len() as libc::socklen_t) }).map(drop)
}

/// The local address of a socket.
pub fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    // SAFETY: zeroed sockaddr_storage is valid; getsockname fills at most len bytes.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    cvt(unsafe { libc::getsockname(fd, (&mut ss as *mut libc::sockaddr_storage).cast(), &mut len) })?;
    storage_to_addr(&ss)
}

/// The peer address of a connected socket.
pub fn peer_addr(fd: RawFd) -> io::Result<SocketAddr> {
    // SAFETY: as in local_addr.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    cvt(unsafe { libc::getpeername(fd, (&mut ss as *mut libc::sockaddr_storage).cast(), &mut len) })?;
    storage_to_addr(&ss)
}

fn storage_to_addr(ss: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    // SAFETY: sockaddr_storage is plain bytes of its own size.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (ss as *const libc::sockaddr_storage).cast::<u8>(),
            size_of::<libc::sockaddr_storage>(),
        )
    };
    sockaddr_from_bytes(bytes).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown address family"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip() {
        for a in ["10.1.2.3:4567", "[2001:db8::1]:80"] {
            let a: SocketAddr = a.parse().unwrap();
            let (ss, len) = to_sockaddr(&a);
            // SAFETY: reading the initialised bytes of ss.
            let bytes = unsafe { std::slice::from_raw_parts(&ss as *const _ as *const u8, len as usize) };
            assert_eq!(sockaddr_from_bytes(bytes), Some(a));
        }
        assert_eq!(sockaddr_from_bytes(&[0, 0, 1, 2]), None);
        assert_eq!(sockaddr_from_bytes(&[2]), None);
    }
}
