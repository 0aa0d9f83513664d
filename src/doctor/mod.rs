//! `mptcp-ss --check`: the path-manager doctor. The host's MPTCP
//! configuration and live state are read once into a [`Host`]
//! ([`gather`] does that, through the same netlink code mptcp-ss uses), then
//! pure rules turn it into [`Finding`]s: each one plain sentence saying what
//! is wrong and the command that fixes it.
//!
//! The rules follow the in-kernel path manager's behaviour (RFC 8684 §3.4 for
//! what ADD_ADDR and MP_JOIN do; the kernel's `net/mptcp/pm_netlink.c` for
//! how `signal`, `subflow`, `fullmesh` and the limits are used):
//! - `subflow` endpoints are used by connections this host opens, one extra
//!   subflow each, up to the `subflows` limit;
//! - `signal` endpoints are announced (ADD_ADDR) by connections this host
//!   accepts, so only a listening host uses them;
//! - a client creates subflows to addresses a server announces only up to
//!   the `add_addr_accepted` limit;
//! - a `fullmesh` endpoint opens one subflow per remote address, each one
//!   counted against the `subflows` limit.

pub mod gather;

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;

/// The `ip mptcp endpoint` flags (include/uapi/linux/mptcp.h).
pub mod flag {
    pub const SIGNAL: u32 = 1 << 0;
    pub const SUBFLOW: u32 = 1 << 1;
    pub const BACKUP: u32 = 1 << 2;
    pub const FULLMESH: u32 = 1 << 3;
}

/// `net.mptcp.*` as read from /proc/sys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MptcpSupport {
    /// No /proc/sys/net/mptcp: the kernel was built without MPTCP.
    Absent,
    Enabled {
        on: bool,
        pm_type: u32,
    },
}

/// One path-manager endpoint (`ip mptcp endpoint show`), as the kernel's
/// path manager lists it.
pub use crate::sys::pm_netlink::Endpoint;

fn has(e: &Endpoint, f: u32) -> bool {
    e.flags & f != 0
}

/// One local address and the interface that holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub addr: IpAddr,
    pub iface: String,
    pub up: bool,
    pub loopback: bool,
}

/// Where the kernel routes a packet from an endpoint's address
/// (`ip route get DST from ADDR`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteCheck {
    pub from: IpAddr,
    pub to: IpAddr,
    /// The outgoing interface, or the reason there is none.
    pub result: Result<String, String>,
}

/// A listening socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub addr: IpAddr,
    pub port: u16,
    pub mptcp: bool,
}

/// One MPTCP connection that is not a listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub local: (IpAddr, u16),
    pub remote: (IpAddr, u16),
    pub fallback: bool,
    /// Additional subflows (mptcpi_subflows: the initial one not counted).
    pub subflows: u8,
    /// This host opened it (its local port is not one it listens on).
    pub outgoing: bool,
}

/// Everything the rules look at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Host {
    pub support: Option<MptcpSupport>,
    /// The in-kernel path manager's limits, when it answered.
    pub limits: Option<(u32, u32)>,
    pub endpoints: Vec<Endpoint>,
    pub addresses: Vec<Address>,
    pub routes: Vec<RouteCheck>,
    /// `net.ipv4.conf.all.rp_filter` and per interface, by name.
    pub rp_filter_all: u32,
    pub rp_filter: Vec<(String, u32)>,
    pub listeners: Vec<Listener>,
    pub connections: Vec<Connection>,
    /// A userspace path manager (mptcpd) is running.
    pub userspace_pm: bool,
    /// Firewall rules that drop or strip TCP option 30, as printed.
    pub firewall: Vec<String>,
    /// Ports the user asked about (`--port`).
    pub ports: Vec<u16>,
}

/// One problem: what is wrong, and the command that fixes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A stable name for scripts (`subflow-limit-zero`, ...).
    pub code: &'static str,
    pub problem: String,
    pub fix: String,
}

impl Finding {
    fn new(code: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { code, problem: problem.into(), fix: fix.into() }
    }
}

/// Every finding for `host`, in a stable order: the kernel, the limits, the
/// endpoints, the addresses and routes, the firewall, the live state.
pub fn check(host: &Host) -> Vec<Finding> {
    let mut out = Vec::new();
    match host.support {
        Some(MptcpSupport::Absent) => {
            out.push(Finding::new(
                "mptcp-missing",
                "this kernel has no MPTCP (there is no /proc/sys/net/mptcp)",
                "boot a kernel built with CONFIG_MPTCP=y (Linux 5.6 or later)",
            ));
            return out;
        }
        Some(MptcpSupport::Enabled { on: false, .. }) => out.push(Finding::new(
            "mptcp-disabled",
            "MPTCP is disabled: sockets asking for IPPROTO_MPTCP get plain TCP or an error",
            "sysctl -w net.mptcp.enabled=1",
        )),
        Some(MptcpSupport::Enabled { pm_type: 1, .. }) if !host.userspace_pm => out.push(Finding::new(
            "userspace-pm-missing",
            "net.mptcp.pm_type is 1 (userspace path manager) but no userspace path manager runs: no \
             connection will announce addresses or open subflows",
            "start mptcpd, or go back to the in-kernel path manager: sysctl -w net.mptcp.pm_type=0",
        )),
        _ => {}
    }
    limits(host, &mut out);
    endpoints(host, &mut out);
    addresses(host, &mut out);
    for rule in &host.firewall {
        out.push(Finding::new(
            "firewall-drops-mptcp",
            format!("a firewall rule drops or strips TCP option 30 (MPTCP): {rule}"),
            "delete that rule (list it with its handle: nft -a list ruleset, or iptables-save)",
        ));
    }
    live(host, &mut out);
    out
}

/// An application listens with MPTCP. The kernel's own listener for a
/// `port` endpoint (it accepts only MP_JOINs to that port) does not count.
fn listens(host: &Host) -> bool {
    host.listeners.iter().any(|l| l.mptcp && !host.endpoints.iter().any(|e| e.port == Some(l.port) && e.addr == l.addr))
}

fn connects_out(host: &Host) -> bool {
    host.connections.iter().any(|c| c.outgoing)
}

/// A client: it opens connections, or it listens for none and has
/// endpoints that only a client uses.
fn is_client(host: &Host) -> bool {
    connects_out(host) || (!listens(host) && host.endpoints.iter().any(|e| has(e, flag::SUBFLOW)))
}

fn limits(host: &Host, out: &mut Vec<Finding>) {
    let Some((subflows, accepted)) = host.limits else { return };
    let sub_eps = host.endpoints.iter().filter(|e| has(e, flag::SUBFLOW)).count() as u32;
    let signal_eps = host.endpoints.iter().filter(|e| has(e, flag::SIGNAL)).count() as u32;
    let fullmesh = host.endpoints.iter().filter(|e| has(e, flag::FULLMESH)).count() as u32;
    let want = sub_eps.max(if listens(host) { signal_eps } else { 0 });
    if subflows == 0 && (want > 0 || fullmesh > 0) {
        out.push(Finding::new(
            "subflow-limit-zero",
            format!(
                "the subflow limit is 0, so none of the {} endpoint(s) can add a subflow to any connection",
                host.endpoints.len()
            ),
            format!("ip mptcp limits set subflow {} add_addr_accepted {}", want.max(1), accepted.max(1)),
        ));
    } else if subflows < sub_eps {
        out.push(Finding::new(
            "subflow-limit-low",
            format!(
                "the subflow limit is {subflows} but there are {sub_eps} subflow endpoints: the last {} are never used",
                sub_eps - subflows
            ),
            format!("ip mptcp limits set subflow {sub_eps} add_addr_accepted {accepted}"),
        ));
    }
    if accepted == 0 && is_client(host) {
        out.push(Finding::new(
            "add-addr-accepted-zero",
            "add_addr_accepted is 0 on a host that opens connections: every address a server announces \
             (ADD_ADDR) is ignored and no subflow goes to it",
            format!("ip mptcp limits set subflow {} add_addr_accepted 2", subflows.max(2)),
        ));
    }
    if fullmesh > 0 && subflows > 0 && subflows < 2 {
        out.push(Finding::new(
            "fullmesh-limit",
            format!(
                "{fullmesh} fullmesh endpoint(s) with a subflow limit of {subflows}: a fullmesh endpoint opens \
                 one subflow per remote address, and the limit leaves room for one subflow in all"
            ),
            format!("ip mptcp limits set subflow {} add_addr_accepted {}", 2 * fullmesh + 1, accepted.max(2)),
        ));
    }
}

fn endpoints(host: &Host, out: &mut Vec<Finding>) {
    let listens = listens(host);
    let client = connects_out(host);
    for e in &host.endpoints {
        let what = endpoint_name(e);
        if e.flags & (flag::SIGNAL | flag::SUBFLOW | flag::FULLMESH) == 0 {
            out.push(Finding::new(
                "endpoint-no-flag",
                format!("{what} has neither signal nor subflow: the path manager never uses it"),
                format!(
                    "ip mptcp endpoint del id {}; ip mptcp endpoint add {} subflow (client) or signal (server)",
                    e.id, e.addr
                ),
            ));
            continue;
        }
        if has(e, flag::SIGNAL) && !has(e, flag::SUBFLOW) && !listens {
            out.push(Finding::new(
                "signal-without-listener",
                format!(
                    "{what} is a signal endpoint, but no MPTCP socket listens on this host: only connections \
                     it accepts announce addresses"
                ),
                format!(
                    "on a client, make it a subflow endpoint: ip mptcp endpoint del id {}; ip mptcp endpoint add {} \
                     subflow (on a server, start the MPTCP listener)",
                    e.id, e.addr
                ),
            ));
        }
        if has(e, flag::SUBFLOW) && !has(e, flag::SIGNAL) && listens && !client {
            out.push(Finding::new(
                "subflow-on-server",
                format!(
                    "{what} is a subflow endpoint on a host that only listens: subflow endpoints serve \
                     connections this host opens, and clients are never told about this address"
                ),
                format!(
                    "to have clients join through it, announce it: ip mptcp endpoint del id {}; ip mptcp endpoint \
                     add {} signal",
                    e.id, e.addr
                ),
            ));
        }
        if let Some(port) = e.port
            && !host.listeners.iter().any(|l| l.port == port)
        {
            out.push(Finding::new(
                "port-endpoint-unserved",
                format!("{what} announces port {port}, but nothing listens on port {port}"),
                format!("ip mptcp endpoint del id {}; ip mptcp endpoint add {} signal port {port}", e.id, e.addr),
            ));
        }
    }
}

fn endpoint_name(e: &Endpoint) -> String {
    let mut s = format!("endpoint {} (id {}", e.addr, e.id);
    if let Some(p) = e.port {
        let _ = write!(s, ", port {p}");
    }
    s.push(')');
    s
}

fn addresses(host: &Host, out: &mut Vec<Finding>) {
    for e in &host.endpoints {
        let what = endpoint_name(e);
        let Some(a) = host.addresses.iter().find(|a| a.addr == e.addr) else {
            out.push(Finding::new(
                "endpoint-address-missing",
                format!("{what}: no interface holds {}", e.addr),
                format!(
                    "add the address (ip addr add {}/PREFIX dev IFACE) or drop the endpoint (ip mptcp endpoint del id {})",
                    e.addr, e.id
                ),
            ));
            continue;
        };
        if !a.up {
            out.push(Finding::new(
                "endpoint-interface-down",
                format!("{what}: its interface {} is down", a.iface),
                format!("ip link set {} up", a.iface),
            ));
            continue;
        }
        for r in host.routes.iter().filter(|r| r.from == e.addr) {
            match &r.result {
                Err(why) => out.push(Finding::new(
                    "endpoint-no-route",
                    format!("{what}: no route leaves from {} towards {} ({why})", e.addr, r.to),
                    format!(
                        "ip route add default via GATEWAY dev {} table 100; ip rule add from {} table 100",
                        a.iface, e.addr
                    ),
                )),
                Ok(dev) if *dev != a.iface => out.push(Finding::new(
                    "endpoint-wrong-route",
                    format!(
                        "{what}: packets from {} towards {} leave through {dev}, not through {} which holds the \
                         address (a subflow from it takes the other path, or is dropped)",
                        e.addr, r.to, a.iface
                    ),
                    format!(
                        "ip route add default via GATEWAY dev {} table 100; ip rule add from {} table 100",
                        a.iface, e.addr
                    ),
                )),
                Ok(_) => {}
            }
        }
    }
    // Strict reverse-path filtering drops packets that arrive on an
    // interface other than the one the route back leaves from, which is what
    // a second path does on a multi-homed host.
    let mut ifaces: Vec<&str> =
        host.addresses.iter().filter(|a| a.up && !a.loopback && a.addr.is_ipv4()).map(|a| a.iface.as_str()).collect();
    ifaces.sort();
    ifaces.dedup();
    if ifaces.len() >= 2 && !host.endpoints.is_empty() {
        for iface in ifaces {
            let own = host.rp_filter.iter().find(|(n, _)| n == iface).map_or(0, |(_, v)| *v);
            // The kernel uses the larger of conf/all and conf/IFACE.
            if host.rp_filter_all.max(own) == 1 {
                out.push(Finding::new(
                    "rp-filter-strict",
                    format!(
                        "strict reverse-path filtering (rp_filter 1) on {iface} of a multi-homed host drops \
                         subflows whose packets arrive on an interface the route back does not use"
                    ),
                    format!("sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.{iface}.rp_filter=2"),
                ));
            }
        }
    }
}

fn live(host: &Host, out: &mut Vec<Finding>) {
    for c in &host.connections {
        let pair = format!("{} -> {}", sock(c.local), sock(c.remote));
        if c.fallback {
            out.push(Finding::new(
                "connection-fallback",
                format!("the MPTCP connection {pair} fell back to plain TCP"),
                format!(
                    "capture its handshake and ask why: mptcp-dump -i any -c 100 'host {} and port {}'",
                    c.remote.0, c.remote.1
                ),
            ));
            continue;
        }
        if !c.outgoing {
            continue;
        }
        let Some((limit, _)) = host.limits else { continue };
        let usable = host
            .endpoints
            .iter()
            .filter(|e| has(e, flag::SUBFLOW) && e.addr != c.local.0 && e.addr.is_ipv4() == c.local.0.is_ipv4())
            .count() as u32;
        let expected = usable.min(limit);
        if u32::from(c.subflows) < expected {
            out.push(Finding::new(
                "connection-few-subflows",
                format!(
                    "the MPTCP connection {pair} has {} additional subflow(s) where the endpoints and limits allow \
                     {expected}: joins failed or were refused",
                    c.subflows
                ),
                "see why joins fail: nstat -az 'MPTcpExtMPJoin*' and mptcp-ss --events",
            ));
        }
    }
    for &port in &host.ports {
        let on_port: Vec<&Listener> = host.listeners.iter().filter(|l| l.port == port).collect();
        if on_port.is_empty() {
            out.push(Finding::new(
                "port-not-listening",
                format!("nothing listens on port {port}"),
                "start the server (with mptcpize run COMMAND if it opens plain TCP sockets)",
            ));
        } else if !on_port.iter().any(|l| l.mptcp) {
            out.push(Finding::new(
                "listener-not-mptcp",
                format!("the listener on port {port} is plain TCP: its clients cannot use MPTCP"),
                "restart the server as mptcpize run COMMAND, or have it open its socket with IPPROTO_MPTCP",
            ));
        }
    }
}

fn sock((ip, port): (IpAddr, u16)) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// The findings as text: one problem a line, its fix on the next.
pub fn write_text(out: &mut impl std::io::Write, findings: &[Finding]) -> std::io::Result<()> {
    if findings.is_empty() {
        return writeln!(out, "no problem found");
    }
    for f in findings {
        writeln!(out, "problem: {}", f.problem)?;
        writeln!(out, "    fix: {}", f.fix)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
