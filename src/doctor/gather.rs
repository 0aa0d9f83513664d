//! Reading the host into a [`Host`]: sysctls from /proc/sys, endpoints and
//! limits from the kernel's path manager (generic netlink), addresses from
//! getifaddrs, routes from rtnetlink, sockets from sock_diag, the firewall
//! from `nft` and `iptables-save` when they are installed.

use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Command;

use super::{Address, Connection, Host, Listener, MptcpSupport, RouteCheck};
use crate::sys::netlink::{NETLINK_SOCK_DIAG, NetlinkError, Socket};
use crate::sys::pm_netlink::{PathManager, PmError};
use crate::sys::route::{self, Lookup};
use crate::sys::sock_diag::{self, IPPROTO_MPTCP, IPPROTO_TCP};
use crate::sys::{errno_text, os_text};

/// What stopped the doctor from reading the host.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error("reading the path manager's endpoints and limits: {0}")]
    PathManager(#[from] PmError),
    #[error("{0}")]
    Netlink(#[from] NetlinkError),
    #[error("listing the interfaces' addresses (getifaddrs): {0}")]
    Interfaces(String),
}

/// LISTEN in the kernel's TCP states.
const TCP_LISTEN: u8 = 10;

/// Where a route lookup goes when no connection names a peer: documentation
/// addresses (RFC 5737, RFC 3849), only looked up, never sent to.
const PROBE_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const PROBE_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));

/// Read everything the rules need. `ports` are the ports the user asks about
/// (`--port`), `peers` the remote addresses to check routes towards
/// (`--peer`; without them, the peers of live connections, or the default
/// route).
pub fn gather(ports: &[u16], peers: &[IpAddr]) -> Result<Host, GatherError> {
    let mut host = Host { ports: ports.to_vec(), ..Host::default() };
    host.support = Some(support(Path::new("/proc/sys/net/mptcp")));
    if host.support == Some(MptcpSupport::Absent) {
        return Ok(host);
    }
    match PathManager::open() {
        Ok(mut pm) => {
            let l = pm.limits()?;
            host.limits = Some((l.subflows, l.add_addr_accepted));
            host.endpoints = pm.endpoints()?;
        }
        // MPTCP built without the in-kernel path manager's netlink family.
        Err(PmError::NoFamily) => {}
        Err(e) => return Err(e.into()),
    }
    host.addresses = addresses()?;
    host.rp_filter_all = read_u32("/proc/sys/net/ipv4/conf/all/rp_filter").unwrap_or(0);
    let mut names: Vec<&str> = host.addresses.iter().map(|a| a.iface.as_str()).collect();
    names.sort();
    names.dedup();
    host.rp_filter = names
        .iter()
        .filter_map(|n| read_u32(&format!("/proc/sys/net/ipv4/conf/{n}/rp_filter")).map(|v| (n.to_string(), v)))
        .collect();
    sockets(&mut host)?;
    host.routes = routes(&host, peers)?;
    host.userspace_pm = process_running("mptcpd");
    host.firewall = firewall();
    Ok(host)
}

fn support(dir: &Path) -> MptcpSupport {
    match std::fs::read_to_string(dir.join("enabled")) {
        Err(_) => MptcpSupport::Absent,
        Ok(s) => MptcpSupport::Enabled {
            on: s.trim() != "0",
            pm_type: std::fs::read_to_string(dir.join("pm_type")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0),
        },
    }
}

fn read_u32(path: &str) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn addresses() -> Result<Vec<Address>, GatherError> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(GatherError::Interfaces(os_text(&std::io::Error::last_os_error())));
    }
    let mut out = Vec::new();
    let mut p = head;
    while !p.is_null() {
        // SAFETY: p is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*p };
        p = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says its size.
        let addr = unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
                }
                _ => continue,
            }
        };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let iface = unsafe { CStr::from_ptr(ifa.ifa_name) }.to_string_lossy().into_owned();
        let flags = ifa.ifa_flags as i32;
        out.push(Address { addr, iface, up: flags & libc::IFF_UP != 0, loopback: flags & libc::IFF_LOOPBACK != 0 });
    }
    // SAFETY: head came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

fn sockets(host: &mut Host) -> Result<(), GatherError> {
    let mut sock = Socket::open(NETLINK_SOCK_DIAG)?;
    let mut conns = Vec::new();
    for family in [libc::AF_INET, libc::AF_INET6] {
        for protocol in [IPPROTO_MPTCP, IPPROTO_TCP] {
            for s in sock_diag::dump(&mut sock, family, protocol)?.into_iter().flatten() {
                let mptcp = protocol == IPPROTO_MPTCP;
                if s.state == TCP_LISTEN {
                    host.listeners.push(Listener { addr: s.local.0, port: s.local.1, mptcp });
                } else if mptcp {
                    let info = s.mptcp.unwrap_or_default();
                    conns.push((s.local, s.remote, info.fallback(), info.subflows));
                }
            }
        }
    }
    let listening = |port: u16| host.listeners.iter().any(|l| l.mptcp && l.port == port);
    host.connections = conns
        .into_iter()
        .map(|(local, remote, fallback, subflows)| Connection {
            local,
            remote,
            fallback,
            subflows,
            outgoing: !listening(local.1),
        })
        .collect();
    Ok(())
}

fn routes(host: &Host, peers: &[IpAddr]) -> Result<Vec<RouteCheck>, GatherError> {
    let mut sock = route::socket()?;
    let mut out = Vec::new();
    // Only endpoints this host opens subflows from: a signal endpoint answers
    // whoever joins it, and its replies go back the way the join came.
    for e in host.endpoints.iter().filter(|e| e.flags & (super::flag::SUBFLOW | super::flag::FULLMESH) != 0) {
        if !host.addresses.iter().any(|a| a.addr == e.addr && a.up && !a.loopback) {
            continue;
        }
        let same = |ip: &IpAddr| ip.is_ipv4() == e.addr.is_ipv4();
        let mut dsts: Vec<IpAddr> = peers.iter().copied().filter(same).collect();
        if dsts.is_empty() {
            dsts = host.connections.iter().map(|c| c.remote.0).filter(same).collect();
        }
        if dsts.is_empty() {
            // No peer known: check the way to the rest of the world, when the
            // host has one at all (a host on a local link only has none).
            let probe = if e.addr.is_ipv4() { PROBE_V4 } else { PROBE_V6 };
            let any_src =
                if e.addr.is_ipv4() { IpAddr::V4(Ipv4Addr::UNSPECIFIED) } else { IpAddr::V6(Ipv6Addr::UNSPECIFIED) };
            if let Ok(Lookup::Via(_)) = route::lookup(&mut sock, any_src, probe) {
                dsts.push(probe);
            }
        }
        dsts.sort();
        dsts.dedup();
        for to in dsts {
            let result = match route::lookup(&mut sock, e.addr, to)? {
                Lookup::Via(index) => Ok(iface_name(index).unwrap_or_else(|| format!("interface {index}"))),
                Lookup::Unreachable(errno) => Err(errno_text(errno)),
            };
            out.push(RouteCheck { from: e.addr, to, result });
        }
    }
    Ok(out)
}

fn iface_name(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    Some(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
}

fn process_running(name: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else { return false };
    dir.flatten().any(|d| std::fs::read_to_string(d.path().join("comm")).is_ok_and(|c| c.trim() == name))
}

/// The firewall's rules that touch MPTCP, from whichever of nftables and
/// iptables is installed (a tool that is absent has no rules to show).
fn firewall() -> Vec<String> {
    let mut text = String::new();
    for (cmd, args) in [("nft", &["list", "ruleset"][..]), ("iptables-save", &[][..]), ("ip6tables-save", &[][..])] {
        if let Ok(out) = Command::new(cmd).args(args).output()
            && out.status.success()
        {
            text.push_str(&String::from_utf8_lossy(&out.stdout));
            text.push('\n');
        }
    }
    mptcp_rules(&text)
}

/// The rules in `ruleset` (nft or iptables-save text) that drop, reject or
/// strip TCP option 30, trimmed.
pub fn mptcp_rules(ruleset: &str) -> Vec<String> {
    ruleset
        .lines()
        .map(str::trim)
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            let nft_match = l.contains("tcp option mptcp") || l.contains("tcp option 30");
            let nft_kills = l.contains(" drop") || l.contains(" reject") || l.contains("reset tcp option");
            let ipt_match = l.contains("--tcp-option 30");
            let ipt_kills = l.contains("-j drop") || l.contains("-j reject");
            let strip = l.contains("tcpoptstrip")
                && l.split("--strip-options").nth(1).is_some_and(|o| {
                    o.split_whitespace().next().is_some_and(|o| o.split(',').any(|x| x == "30" || x == "mptcp"))
                });
            (nft_match && nft_kills) || (ipt_match && ipt_kills) || strip
        })
        .map(str::to_string)
        .collect()
}
