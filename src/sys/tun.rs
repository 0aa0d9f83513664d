//! The TUN device the embedded stack talks through (Documentation/
//! networking/tuntap.rst). Packets the stack writes arrive at the kernel as
//! if from another host on a point-to-point link; the kernel's replies come
//! back out of the fd.
//!
//! - [`Tun::open`] attaches to the named device, creating it if missing
//!   (IFF_TUN | IFF_NO_PI). An existing persistent device (`ip tuntap add`)
//!   is reused as it is: its addresses are kept.
//! - [`Tun::give_kernel_side`] adds, for each `--local ADDR/PREFIX` of the
//!   stack, the first host address of the prefix to the device (10.200.0.2/24
//!   -> 10.200.0.1/24 on the TUN), so the kernel routes the prefix through it.
//! - With [`TunOptions::vnet_hdr`] every packet carries a virtio-net header
//!   and the kernel may hand over TSO/GSO super-packets with partial
//!   checksums (TUNSETOFFLOAD), which saves per-packet system calls.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::netlink::{NETLINK_ROUTE, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, Request, Socket};
use crate::sys;

const IFNAMSIZ: usize = 16;
const IFF_TUN: i16 = 0x0001;
const IFF_NO_PI: i16 = 0x1000;
const IFF_VNET_HDR: i16 = 0x4000;
pub const TUN_F_CSUM: u32 = 0x01;
pub const TUN_F_TSO4: u32 = 0x02;
pub const TUN_F_TSO6: u32 = 0x04;
/// Size of `struct virtio_net_hdr` (without num_buffers).
pub const VNET_HDR_LEN: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum TunError {
    #[error("no TUN support: /dev/net/tun is missing (modprobe tun); use --stack kernel")]
    NoDevice,
    #[error("TUN devices need root (CAP_NET_ADMIN): {what} was refused; run as root, or use --stack kernel")]
    NotPermitted { what: String },
    #[error("TUN device {name} is in use by another process")]
    Busy { name: String },
    #[error("{name:?} is not a usable TUN device name (1 to 15 characters)")]
    BadName { name: String },
    #[error("TUN device {name} exists with other flags (a TAP device, or made without IFF_NO_PI/vnet header)")]
    Mismatch { name: String },
    #[error(
        "--local {local}/{prefix}: {local} is the first host of its prefix, which the kernel side of the TUN takes; use another address"
    )]
    LocalIsKernelSide { local: IpAddr, prefix: u8 },
    #[error("TUN {name}: {op}: {}", sys::os_text(err))]
    Io { name: String, op: String, err: io::Error },
}

/// How to open the device.
#[derive(Clone, Copy, Debug, Default)]
pub struct TunOptions {
    /// IFF_VNET_HDR plus TSO/checksum offloads.
    pub vnet_hdr: bool,
}

/// An open TUN device.
pub struct Tun {
    fd: OwnedFd,
    name: String,
    ifindex: u32,
    vnet_hdr: bool,
}

fn ifreq(name: &str, flags: i16) -> [u8; 40] {
    let mut r = [0u8; 40];
    r[..name.len()].copy_from_slice(name.as_bytes());
    r[IFNAMSIZ..IFNAMSIZ + 2].copy_from_slice(&flags.to_ne_bytes());
    r
}

impl Tun {
    pub fn open(name: &str, opts: TunOptions) -> Result<Tun, TunError> {
        if name.is_empty() || name.len() >= IFNAMSIZ || name.contains(['/', ' ', '\0']) {
            return Err(TunError::BadName { name: name.into() });
        }
        let path = c"/dev/net/tun";
        // SAFETY: open(2) with a valid NUL-terminated path.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENXIO) | Some(libc::ENODEV) => TunError::NoDevice,
                Some(libc::EACCES) | Some(libc::EPERM) => {
                    TunError::NotPermitted { what: "opening /dev/net/tun".into() }
                }
                _ => TunError::Io { name: name.into(), op: "open /dev/net/tun".into(), err: e },
            });
        }
        // SAFETY: fd is new and ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut flags = IFF_TUN | IFF_NO_PI;
        if opts.vnet_hdr {
            flags |= IFF_VNET_HDR;
        }
        let mut req = ifreq(name, flags);
        // SAFETY: TUNSETIFF reads and writes a struct ifreq (40 bytes).
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, req.as_mut_ptr()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => {
                    TunError::NotPermitted { what: format!("creating or attaching to {name}") }
                }
                Some(libc::EBUSY) => TunError::Busy { name: name.into() },
                Some(libc::EINVAL) => TunError::Mismatch { name: name.into() },
                _ => TunError::Io { name: name.into(), op: "TUNSETIFF".into(), err: e },
            });
        }
        let end = req[..IFNAMSIZ].iter().position(|b| *b == 0).unwrap_or(IFNAMSIZ);
        let real = String::from_utf8_lossy(&req[..end]).into_owned();
        let cname = std::ffi::CString::new(real.clone()).map_err(|_| TunError::BadName { name: real.clone() })?;
        // SAFETY: if_nametoindex with a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        let tun = Tun { fd, name: real, ifindex, vnet_hdr: opts.vnet_hdr };
        if opts.vnet_hdr {
            let sz: libc::c_int = VNET_HDR_LEN as libc::c_int;
            // SAFETY: TUNSETVNETHDRSZ reads one int.
            let r = unsafe { libc::ioctl(tun.fd.as_raw_fd(), libc::TUNSETVNETHDRSZ, &sz) };
            if r < 0 {
                return Err(tun.io_err("TUNSETVNETHDRSZ"));
            }
            tun.set_offload(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)?;
        }
        Ok(tun)
    }

    fn io_err(&self, op: &str) -> TunError {
        TunError::Io { name: self.name.clone(), op: op.into(), err: io::Error::last_os_error() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
    pub fn vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// TUNSETOFFLOAD: which offloads the kernel may use towards us.
    pub fn set_offload(&self, flags: u32) -> Result<(), TunError> {
        // SAFETY: TUNSETOFFLOAD takes an unsigned int argument by value.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::TUNSETOFFLOAD, flags as libc::c_ulong) };
        if r < 0 { Err(self.io_err("TUNSETOFFLOAD")) } else { Ok(()) }
    }

    pub fn set_nonblocking(&self, on: bool) -> Result<(), TunError> {
        sys::set_nonblocking(self.fd.as_raw_fd(), on).map_err(|err| TunError::Io {
            name: self.name.clone(),
            op: "O_NONBLOCK".into(),
            err,
        })
    }

    /// One packet from the kernel (with its virtio-net header first when
    /// [`TunOptions::vnet_hdr`] is on).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        sys::read_fd(self.fd.as_raw_fd(), buf)
    }

    /// One packet to the kernel (with a virtio-net header first when
    /// [`TunOptions::vnet_hdr`] is on).
    pub fn send(&self, pkt: &[u8]) -> io::Result<usize> {
        sys::write_fd(self.fd.as_raw_fd(), pkt)
    }

    /// One packet to the kernel, in pieces (`writev(2)`: the kernel copies
    /// them into one skb; with a virtio-net header, it comes first).
    pub fn send_vectored(&self, parts: &[std::io::IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: IoSlice is ABI-compatible with struct iovec; each points
        // to memory valid for reads of its length for the call's duration.
        let r = unsafe { libc::writev(self.fd.as_raw_fd(), parts.as_ptr().cast(), parts.len() as libc::c_int) };
        if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as usize) }
    }

    /// Bring the link up (RTM_NEWLINK, IFF_UP).
    pub fn up(&self) -> Result<(), TunError> {
        let nl = |err| TunError::Io { name: self.name.clone(), op: "set link up".into(), err };
        let mut m = Request::new(libc::RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        // struct ifinfomsg: family, pad, type, index, flags, change.
        let mut ifi = [0u8; 16];
        ifi[4..8].copy_from_slice(&(self.ifindex as i32).to_ne_bytes());
        ifi[8..12].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
        ifi[12..16].copy_from_slice(&(libc::IFF_UP as u32).to_ne_bytes());
        m.bytes(&ifi);
        route_request(&mut m).map_err(nl)
    }

    /// Add `addr/prefix` to the device. `Ok(false)` when it was already there.
    pub fn add_address(&self, addr: IpAddr, prefix: u8) -> Result<bool, TunError> {
        let nl = |err| TunError::Io { name: self.name.clone(), op: format!("add address {addr}/{prefix}"), err };
        let mut m = Request::new(libc::RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
        let family = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 } as u8;
        // struct ifaddrmsg: family, prefixlen, flags, scope, index.
        let mut ifa = [0u8; 8];
        ifa[0] = family;
        ifa[1] = prefix;
        ifa[4..8].copy_from_slice(&self.ifindex.to_ne_bytes());
        m.bytes(&ifa);
        let octets: Vec<u8> = match addr {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        const IFA_ADDRESS: u16 = 1;
        const IFA_LOCAL: u16 = 2;
        const IFA_FLAGS: u16 = 8;
        const IFA_F_NODAD: u32 = 0x02;
        m.attr(IFA_LOCAL, &octets).attr(IFA_ADDRESS, &octets);
        if addr.is_ipv6() {
            m.attr_u32(IFA_FLAGS, IFA_F_NODAD);
        }
        match route_request(&mut m) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(nl(e)),
        }
    }

    /// For each local prefix of the stack, give the kernel side its first
    /// host address, then bring the link up. Returns the addresses given.
    pub fn give_kernel_side(&self, locals: &[(IpAddr, u8)]) -> Result<Vec<(IpAddr, u8)>, TunError> {
        let mut given = Vec::new();
        for &(local, prefix) in locals {
            let kernel = first_host(local, prefix);
            if kernel == local {
                return Err(TunError::LocalIsKernelSide { local, prefix });
            }
            self.add_address(kernel, prefix)?;
            given.push((kernel, prefix));
        }
        self.up()?;
        Ok(given)
    }
}

/// One rtnetlink request on a socket of its own, answered by an
/// acknowledgement: the kernel's negative answer as the errno it carries.
fn route_request(m: &mut Request) -> io::Result<()> {
    let mut sock = Socket::open(NETLINK_ROUTE)?;
    sock.transact("request", m)?;
    Ok(())
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The first host address of `addr/prefix` (network address + 1).
pub fn first_host(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) };
            IpAddr::V4(Ipv4Addr::from((u32::from(a) & mask).wrapping_add(1)))
        }
        IpAddr::V6(a) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix.min(128))) };
            IpAddr::V6(Ipv6Addr::from((u128::from(a) & mask).wrapping_add(1)))
        }
    }
}

/// `struct virtio_net_hdr` (include/uapi/linux/virtio_net.h), little-endian
/// as TUN uses it on little-endian hosts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub const NEEDS_CSUM: u8 = 1;
    pub const GSO_NONE: u8 = 0;
    pub const GSO_TCPV4: u8 = 1;
    pub const GSO_TCPV6: u8 = 4;

    pub fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b = b.get(..VNET_HDR_LEN)?;
        let u = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }

    pub fn emit(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_hosts() {
        let h = |a: &str, p| first_host(a.parse().unwrap(), p).to_string();
        assert_eq!(h("10.200.0.2", 24), "10.200.0.1");
        assert_eq!(h("10.200.7.9", 16), "10.200.0.1");
        assert_eq!(h("2001:db8::5", 64), "2001:db8::1");
        assert_eq!(h("10.0.0.1", 24), "10.0.0.1");
    }

    #[test]
    fn vnet_header_round_trip() {
        let v = VnetHdr { flags: 1, gso_type: 1, hdr_len: 54, gso_size: 1448, csum_start: 34, csum_offset: 16 };
        assert_eq!(VnetHdr::parse(&v.emit()), Some(v));
        assert_eq!(VnetHdr::parse(&[0; 4]), None);
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(matches!(Tun::open("", TunOptions::default()), Err(TunError::BadName { .. })));
        assert!(matches!(Tun::open("a-very-long-name-xx", TunOptions::default()), Err(TunError::BadName { .. })));
    }

    #[test]
    fn messages_suggest_the_kernel_stack() {
        assert!(TunError::NoDevice.to_string().contains("--stack kernel"));
        assert!(TunError::NotPermitted { what: "x".into() }.to_string().contains("root"));
    }
}
