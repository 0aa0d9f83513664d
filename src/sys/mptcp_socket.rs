//! The host kernel's own MPTCP: `socket(AF_INET*, SOCK_STREAM, IPPROTO_MPTCP)`
//! and the SOL_MPTCP getsockopts that tell what was negotiated
//! (include/uapi/linux/mptcp.h; net/mptcp/sockopt.c).
//!
//! Connected sockets are handed out as `std::net::TcpStream` /
//! `TcpListener`: an MPTCP socket is a stream socket and read, write,
//! shutdown and accept behave as for TCP. The MPTCP-specific queries take the
//! raw fd.
//!
//! Facts this module relies on, checked against Linux 6.18:
//! - `socket()` fails with ENOPROTOOPT when `net.mptcp.enabled=0`, and with
//!   EPROTONOSUPPORT on a kernel built without MPTCP.
//! - On a connection that fell back to plain TCP every SOL_MPTCP getsockopt
//!   fails with EOPNOTSUPP (the option is passed to the remaining TCP subflow).
//! - MPTCP_FULL_INFO (Linux >= 6.6) returns `mptcp_info` plus, per subflow,
//!   its id, address pair and `tcp_info`, in one consistent read.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

pub use super::mptcp_info::{
    MPTCP_INFO_FLAG_FALLBACK, MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED, MPTCP_INFO_SIZE, MptcpInfo, TcpInfo,
};
use super::netlink::read;
pub use super::sock_diag::SubflowUlp;
use crate::sys::{self, PollFd, cvt, fmt_duration, os_text};

pub const IPPROTO_MPTCP: libc::c_int = 262;
pub const SOL_MPTCP: libc::c_int = 284;
pub const MPTCP_INFO: libc::c_int = 1;
pub const MPTCP_TCPINFO: libc::c_int = 2;
pub const MPTCP_SUBFLOW_ADDRS: libc::c_int = 3;
pub const MPTCP_FULL_INFO: libc::c_int = 4;
/// SOL_TCP option telling whether the socket is (still) MPTCP.
pub const TCP_IS_MPTCP: libc::c_int = 43;

/// What went wrong with a kernel MPTCP socket, with the facts a one-line
/// message needs.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error(
        "MPTCP is disabled in this kernel (net.mptcp.enabled=0): enable it with `sysctl -w net.mptcp.enabled=1`, or use --stack embedded"
    )]
    MptcpDisabled,
    #[error("this kernel has no MPTCP support (socket protocol 262 unknown): use --stack embedded")]
    MptcpUnsupported,
    #[error("cannot bind {addr}: address already in use")]
    AddrInUse { addr: SocketAddr },
    #[error("cannot bind {addr}: address not available on this host")]
    AddrNotAvailable { addr: SocketAddr },
    #[error("cannot bind {addr}: {err}")]
    Bind { addr: SocketAddr, err: io::Error },
    #[error("connection to {addr} refused")]
    Refused { addr: SocketAddr },
    #[error("{addr} is unreachable: {}", os_text(err))]
    Unreachable { addr: SocketAddr, err: io::Error },
    #[error("connection to {addr} timed out after {}", fmt_duration(*.after))]
    Timeout { addr: SocketAddr, after: Duration },
    #[error("connection to {addr} reset by peer")]
    Reset { addr: SocketAddr },
    #[error("connection to {addr} failed: {}", os_text(err))]
    Connect { addr: SocketAddr, err: io::Error },
    #[error("interrupted by a signal")]
    Interrupted,
    #[error("{op}: {}", os_text(err))]
    Io { op: &'static str, err: io::Error },
    #[error("congestion control {name:?} is not available: {}", os_text(err))]
    CongestionControl { name: String, err: io::Error },
}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> SocketError {
    move |err| SocketError::Io { op, err }
}

/// Options set on a socket before it connects or listens.
#[derive(Clone, Debug, Default)]
pub struct SocketOptions {
    /// TCP_CONGESTION for every subflow.
    pub congestion: Option<String>,
    /// TCP Fast Open: TCP_FASTOPEN_CONNECT on a client, TCP_FASTOPEN on a listener.
    pub fastopen: bool,
}

/// A fresh MPTCP socket of the family of `ip`, close-on-exec.
pub fn mptcp_socket(v6: bool) -> Result<OwnedFd, SocketError> {
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, IPPROTO_MPTCP) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENOPROTOOPT) => SocketError::MptcpDisabled,
            Some(libc::EPROTONOSUPPORT) => {
                if std::path::Path::new("/proc/sys/net/mptcp/enabled").exists() {
                    SocketError::MptcpDisabled
                } else {
                    SocketError::MptcpUnsupported
                }
            }
            _ => SocketError::Io { op: "socket(IPPROTO_MPTCP)", err: e },
        });
    }
    // SAFETY: fd is a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn apply_common(fd: RawFd, opts: &SocketOptions) -> Result<(), SocketError> {
    if let Some(cc) = &opts.congestion {
        // An MPTCP socket stores the name and applies it to subflows as they
        // are created, failing silently for an unknown one: check first.
        const AVAILABLE: &str = "/proc/sys/net/ipv4/tcp_available_congestion_control";
        if let Ok(list) = std::fs::read_to_string(AVAILABLE) {
            if !list.split_whitespace().any(|n| n == cc) {
                return Err(SocketError::CongestionControl {
                    name: cc.clone(),
                    err: io::Error::other(format!("the kernel offers {} (modprobe tcp_{cc}?)", list.trim())),
                });
            }
        }
        sys::setsockopt_bytes(fd, libc::IPPROTO_TCP, libc::TCP_CONGESTION, cc.as_bytes())
            .map_err(|err| SocketError::CongestionControl { name: cc.clone(), err })?;
    }
    Ok(())
}

fn bind(fd: RawFd, addr: &SocketAddr) -> Result<(), SocketError> {
    let (ss, len) = sys::to_sockaddr(addr);
    // SAFETY: ss holds a valid sockaddr of length len.
    let r = unsafe { libc::bind(fd, (&ss as *const libc::sockaddr_storage).cast(), len) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EADDRINUSE) => SocketError::AddrInUse { addr: *addr },
            Some(libc::EADDRNOTAVAIL) => SocketError::AddrNotAvailable { addr: *addr },
            _ => SocketError::Bind { addr: *addr, err: e },
        });
    }
    Ok(())
}

fn connect_error(addr: SocketAddr, e: io::Error, elapsed: Duration) -> SocketError {
    match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => SocketError::Refused { addr },
        Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH) | Some(libc::EHOSTDOWN) | Some(libc::ENETDOWN) => {
            SocketError::Unreachable { addr, err: e }
        }
        Some(libc::ETIMEDOUT) => SocketError::Timeout { addr, after: elapsed },
        Some(libc::ECONNRESET) => SocketError::Reset { addr },
        Some(libc::EADDRNOTAVAIL) => SocketError::Unreachable { addr, err: e },
        _ => SocketError::Connect { addr, err: e },
    }
}

/// Connect an MPTCP socket to `remote`, optionally from `local`, within
/// `timeout` (None: the kernel's own SYN retry limit). `cancel_fd` (the
/// termination pipe) aborts the wait when it becomes readable.
pub fn connect(
    remote: SocketAddr,
    local: Option<SocketAddr>,
    opts: &SocketOptions,
    timeout: Option<Duration>,
    cancel_fd: Option<RawFd>,
) -> Result<TcpStream, SocketError> {
    let sock = mptcp_socket(remote.is_ipv6())?;
    let fd = sock.as_raw_fd();
    apply_common(fd, opts)?;
    if opts.fastopen {
        sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_FASTOPEN_CONNECT, 1)
            .map_err(io_err("setsockopt(TCP_FASTOPEN_CONNECT)"))?;
    }
    if let Some(local) = local {
        sys::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1).map_err(io_err("setsockopt(SO_REUSEADDR)"))?;
        bind(fd, &local)?;
    }
    sys::set_nonblocking(fd, true).map_err(io_err("fcntl(O_NONBLOCK)"))?;
    let start = Instant::now();
    let (ss, len) = sys::to_sockaddr(&remote);
    // SAFETY: ss holds a valid sockaddr of length len.
    let r = unsafe { libc::connect(fd, (&ss as *const libc::sockaddr_storage).cast(), len) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(connect_error(remote, e, start.elapsed()));
        }
        loop {
            let left = match timeout {
                Some(t) => match t.checked_sub(start.elapsed()) {
                    Some(l) if !l.is_zero() => Some(l),
                    _ => return Err(SocketError::Timeout { addr: remote, after: t }),
                },
                None => None,
            };
            let mut fds = vec![PollFd::raw(fd, sys::POLLOUT)];
            if let Some(c) = cancel_fd {
                fds.push(PollFd::raw(c, sys::POLLIN));
            }
            sys::poll(&mut fds, left).map_err(io_err("poll"))?;
            if fds.len() > 1 && fds[1].readable() || super::signals::Termination::pending() {
                return Err(SocketError::Interrupted);
            }
            if fds[0].writable() {
                break;
            }
        }
        let mut err = [0u8; 4];
        sys::getsockopt_bytes(fd, libc::SOL_SOCKET, libc::SO_ERROR, &mut err)
            .map_err(io_err("getsockopt(SO_ERROR)"))?;
        let err = i32::from_ne_bytes(err);
        if err != 0 {
            return Err(connect_error(remote, io::Error::from_raw_os_error(err), start.elapsed()));
        }
    }
    Ok(TcpStream::from(sock))
}

/// A listening MPTCP socket on `addr` (SO_REUSEADDR set, as servers do).
pub fn listen(addr: SocketAddr, backlog: i32, opts: &SocketOptions) -> Result<TcpListener, SocketError> {
    let sock = mptcp_socket(addr.is_ipv6())?;
    let fd = sock.as_raw_fd();
    sys::setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1).map_err(io_err("setsockopt(SO_REUSEADDR)"))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // Accept IPv4-mapped peers too, as ncat does on "::".
        let _ = sys::setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0);
    }
    apply_common(fd, opts)?;
    if opts.fastopen {
        sys::setsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_FASTOPEN, 16)
            .map_err(io_err("setsockopt(TCP_FASTOPEN)"))?;
    }
    bind(fd, &addr)?;
    // SAFETY: listen(2) on our socket.
    cvt(unsafe { libc::listen(fd, backlog) }).map_err(io_err("listen"))?;
    Ok(TcpListener::from(sock))
}

/// Make `close()` abortive: SO_LINGER {on, 0}. On an MPTCP socket the kernel
/// then ends the connection with MP_FASTCLOSE (RFC 8684 §3.5) instead of a
/// DATA_FIN; on a fallback connection with a TCP RST.
pub fn set_abortive_close(fd: RawFd) -> io::Result<()> {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: linger is plain data of the size passed.
    let bytes = unsafe {
        std::slice::from_raw_parts((&l as *const libc::linger).cast::<u8>(), std::mem::size_of::<libc::linger>())
    };
    sys::setsockopt_bytes(fd, libc::SOL_SOCKET, libc::SO_LINGER, bytes)
}

/// Bytes written but not yet acknowledged at the data level (SIOCOUTQ;
/// for an MPTCP socket write_seq - snd_una).
pub fn unacked_bytes(fd: RawFd) -> io::Result<u32> {
    let mut v: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int.
    cvt(unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut v) })?;
    Ok(v.max(0) as u32)
}

/// Whether the socket is MPTCP and has not fallen back (TCP_IS_MPTCP).
/// `None` if the kernel does not know the option.
pub fn is_mptcp(fd: RawFd) -> Option<bool> {
    let mut b = [0u8; 4];
    sys::getsockopt_bytes(fd, libc::IPPROTO_TCP, TCP_IS_MPTCP, &mut b).ok().map(|_| i32::from_ne_bytes(b) != 0)
}

/// A u32 at `at`, 0 past the end of what the kernel wrote.
fn u32_at(b: &[u8], at: usize) -> u32 {
    read::u32(b, at).unwrap_or(0)
}

/// One subflow as MPTCP_FULL_INFO describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubflowInfo {
    /// The kernel's per-connection subflow counter (1 for the first), not an
    /// MPTCP address id.
    pub id: u32,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    pub tcp: TcpInfo,
}

/// The connection and its subflows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FullInfo {
    pub info: MptcpInfo,
    pub subflows: Vec<SubflowInfo>,
}

/// MPTCP_INFO. `Ok(None)` when the connection fell back to TCP.
pub fn mptcp_info(fd: RawFd) -> io::Result<Option<MptcpInfo>> {
    let mut buf = [0u8; MPTCP_INFO_SIZE];
    match sys::getsockopt_bytes(fd, SOL_MPTCP, MPTCP_INFO, &mut buf) {
        Ok(n) => Ok(Some(MptcpInfo::parse(&buf[..n.min(buf.len())]))),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(None),
        Err(e) => Err(e),
    }
}

const MAX_SUBFLOWS: usize = 16;
const SFINFO_SIZE: usize = 8 + 2 * 128; // u32 id, pad, two sockaddr_storage
const TCPINFO_SIZE: usize = 256;
const FULL_HDR: usize = 40;

/// MPTCP_FULL_INFO (Linux >= 6.6). `Ok(None)` on fallback; an error
/// EOPNOTSUPP/EINVAL/ENOPROTOOPT on kernels that lack it, in which case
/// [`subflows_legacy`] gives the same from MPTCP_TCPINFO + MPTCP_SUBFLOW_ADDRS.
pub fn full_info(fd: RawFd) -> io::Result<Option<FullInfo>> {
    let mut sf = vec![0u64; MAX_SUBFLOWS * SFINFO_SIZE / 8];
    let mut ti = vec![0u64; MAX_SUBFLOWS * TCPINFO_SIZE / 8];
    let mut hdr = [0u64; (FULL_HDR + MPTCP_INFO_SIZE) / 8];
    {
        // SAFETY: viewing a u64 array as bytes.
        let h = unsafe { std::slice::from_raw_parts_mut(hdr.as_mut_ptr().cast::<u8>(), hdr.len() * 8) };
        h[4..8].copy_from_slice(&(TCPINFO_SIZE as u32).to_ne_bytes()); // size_tcpinfo_user
        h[12..16].copy_from_slice(&(SFINFO_SIZE as u32).to_ne_bytes()); // size_sfinfo_user
        h[20..24].copy_from_slice(&(MAX_SUBFLOWS as u32).to_ne_bytes()); // size_arrays_user
        h[24..32].copy_from_slice(&(sf.as_mut_ptr() as u64).to_ne_bytes());
        h[32..40].copy_from_slice(&(ti.as_mut_ptr() as u64).to_ne_bytes());
    }
    let mut len = (hdr.len() * 8) as libc::socklen_t;
    // SAFETY: hdr is valid for len bytes; the kernel writes at most
    // size_arrays_user elements of the announced sizes into sf and ti, which
    // are allocated for exactly that.
    let r = unsafe { libc::getsockopt(fd, SOL_MPTCP, MPTCP_FULL_INFO, hdr.as_mut_ptr().cast(), &mut len) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EOPNOTSUPP) && is_mptcp(fd) == Some(false) {
            return Ok(None);
        }
        return Err(e);
    }
    // SAFETY: viewing initialised u64 arrays as bytes.
    let (h, sfb, tib) = unsafe {
        (
            std::slice::from_raw_parts(hdr.as_ptr().cast::<u8>(), hdr.len() * 8),
            std::slice::from_raw_parts(sf.as_ptr().cast::<u8>(), sf.len() * 8),
            std::slice::from_raw_parts(ti.as_ptr().cast::<u8>(), ti.len() * 8),
        )
    };
    Ok(Some(parse_full_info(h, len as usize, sfb, tib)))
}

/// Decode the buffers MPTCP_FULL_INFO filled (separate for testing).
pub fn parse_full_info(hdr: &[u8], len: usize, sf: &[u8], ti: &[u8]) -> FullInfo {
    let size_tcpinfo_user = u32_at(hdr, 4) as usize;
    let size_sfinfo_user = u32_at(hdr, 12) as usize;
    let num = u32_at(hdr, 16) as usize;
    let n = num.min(MAX_SUBFLOWS);
    let info = MptcpInfo::parse(hdr.get(FULL_HDR..len.min(hdr.len())).unwrap_or(&[]));
    let mut subflows = Vec::with_capacity(n);
    for i in 0..n {
        let s = sf.get(i * size_sfinfo_user..(i + 1) * size_sfinfo_user).unwrap_or(&[]);
        let t = ti.get(i * size_tcpinfo_user..(i + 1) * size_tcpinfo_user).unwrap_or(&[]);
        subflows.push(SubflowInfo {
            id: u32_at(s, 0),
            local: s.get(8..136).and_then(sys::sockaddr_from_bytes),
            remote: s.get(136..264).and_then(sys::sockaddr_from_bytes),
            tcp: crate::sys::mptcp_info::parse_tcp_info(t),
        });
    }
    FullInfo { info, subflows }
}

/// Subflows from the older MPTCP_SUBFLOW_ADDRS and MPTCP_TCPINFO options
/// (Linux 5.16..6.5), for kernels without MPTCP_FULL_INFO. Ids are the
/// 1-based position in the kernel's list.
pub fn subflows_legacy(fd: RawFd) -> io::Result<Option<Vec<SubflowInfo>>> {
    let addrs = match subflow_data(fd, MPTCP_SUBFLOW_ADDRS, 256)? {
        Some(a) => a,
        None => return Ok(None),
    };
    let tcp = subflow_data(fd, MPTCP_TCPINFO, TCPINFO_SIZE)?.unwrap_or_default();
    Ok(Some(
        addrs
            .iter()
            .enumerate()
            .map(|(i, a)| SubflowInfo {
                id: i as u32 + 1,
                local: a.get(0..128).and_then(sys::sockaddr_from_bytes),
                remote: a.get(128..256).and_then(sys::sockaddr_from_bytes),
                tcp: tcp.get(i).map(|t| crate::sys::mptcp_info::parse_tcp_info(t)).unwrap_or_default(),
            })
            .collect(),
    ))
}

/// The `struct mptcp_subflow_data` + array protocol shared by
/// MPTCP_TCPINFO and MPTCP_SUBFLOW_ADDRS.
fn subflow_data(fd: RawFd, opt: libc::c_int, elem: usize) -> io::Result<Option<Vec<Vec<u8>>>> {
    const HDR: usize = 16;
    let mut buf = vec![0u64; (HDR + MAX_SUBFLOWS * elem).div_ceil(8)];
    {
        // SAFETY: viewing a u64 array as bytes.
        let b = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), buf.len() * 8) };
        b[0..4].copy_from_slice(&(HDR as u32).to_ne_bytes());
        b[12..16].copy_from_slice(&(elem as u32).to_ne_bytes());
    }
    // SAFETY: viewing a u64 array as bytes.
    let b = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<u8>(), buf.len() * 8) };
    let n = match sys::getsockopt_bytes(fd, SOL_MPTCP, opt, b) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => return Ok(None),
        Err(e) => return Err(e),
    };
    let got = &b[..n.min(b.len())];
    let count = u32_at(got, 4) as usize;
    let size_user = u32_at(got, 12) as usize;
    let mut v = Vec::new();
    for i in 0..count.min(MAX_SUBFLOWS) {
        let start = HDR + i * size_user;
        if let Some(s) = b.get(start..start + size_user) {
            v.push(s.to_vec());
        }
    }
    Ok(Some(v))
}

/// Every subflow now: MPTCP_FULL_INFO, or the legacy options on older
/// kernels. `Ok(None)` on fallback.
pub fn snapshot(fd: RawFd) -> io::Result<Option<FullInfo>> {
    match full_info(fd) {
        Ok(v) => Ok(v),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP) | Some(libc::ENOPROTOOPT)) => {
            let info = match mptcp_info(fd)? {
                Some(i) => i,
                None => return Ok(None),
            };
            Ok(subflows_legacy(fd)?.map(|subflows| FullInfo { info, subflows }))
        }
        Err(e) => Err(e),
    }
}

/// Look up the TCP subflow `local` -> `remote` with the crate's sock_diag
/// reader and return its MPTCP ULP info (address ids, ss's flag bits,
/// tokens). `None` if the socket is gone, carries no MPTCP info, or
/// sock_diag cannot be asked.
pub fn subflow_ulp(local: SocketAddr, remote: SocketAddr) -> Option<SubflowUlp> {
    use crate::sys::{netlink, sock_diag};
    let mut sock = netlink::Socket::open(netlink::NETLINK_SOCK_DIAG).ok()?;
    sock_diag::lookup(&mut sock, local, remote).ok()??.subflow
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_info_layout() {
        let mut hdr = vec![0u8; FULL_HDR + MPTCP_INFO_SIZE];
        hdr[4..8].copy_from_slice(&(TCPINFO_SIZE as u32).to_ne_bytes());
        hdr[12..16].copy_from_slice(&(SFINFO_SIZE as u32).to_ne_bytes());
        hdr[16..20].copy_from_slice(&2u32.to_ne_bytes());
        hdr[FULL_HDR + 12..FULL_HDR + 16].copy_from_slice(&7u32.to_ne_bytes());
        let mut sf = vec![0u8; 2 * SFINFO_SIZE];
        let a: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        for (i, id) in [1u32, 3].iter().enumerate() {
            let s = &mut sf[i * SFINFO_SIZE..];
            s[0..4].copy_from_slice(&id.to_ne_bytes());
            for (off, addr) in [(8usize, a), (136, b)] {
                let (ss, len) = sys::to_sockaddr(&addr);
                // SAFETY: reading the initialised bytes of ss.
                let bytes = unsafe { std::slice::from_raw_parts(&ss as *const _ as *const u8, len as usize) };
                s[off..off + bytes.len()].copy_from_slice(bytes);
            }
        }
        let mut ti = vec![0u8; 2 * TCPINFO_SIZE];
        ti[TCPINFO_SIZE + 120..TCPINFO_SIZE + 128].copy_from_slice(&99u64.to_ne_bytes());
        let fi = parse_full_info(&hdr, hdr.len(), &sf, &ti);
        assert_eq!(fi.info.token, 7);
        assert_eq!(fi.subflows.len(), 2);
        assert_eq!(fi.subflows[1].id, 3);
        assert_eq!(fi.subflows[1].local, Some(a));
        assert_eq!(fi.subflows[1].remote, Some(b));
        assert_eq!(fi.subflows[1].tcp.bytes_acked, Some(99));
    }
}
