//! The kernel's in-kernel path manager over generic netlink (family
//! "mptcp_pm", include/uapi/linux/mptcp_pm.h): what `ip mptcp endpoint` and
//! `ip mptcp limits` do, for `--local` / `--limits` with `--stack kernel`.
//! Endpoints and limits belong to the network namespace, not to a socket.

use std::net::IpAddr;

use super::genl::{self, MPTCP_PM_NAME, MPTCP_PM_VER};
use super::netlink::{self, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkError, Request, Socket, attrs};

const CMD_ADD_ADDR: u8 = 1;
const CMD_DEL_ADDR: u8 = 2;
const CMD_GET_ADDR: u8 = 3;
const CMD_SET_LIMITS: u8 = 5;
const CMD_GET_LIMITS: u8 = 6;

const ATTR_ADDR: u16 = 1;
const ATTR_RCV_ADD_ADDRS: u16 = 2;
const ATTR_SUBFLOWS: u16 = 3;

const ADDR_ATTR_FAMILY: u16 = 1;
const ADDR_ATTR_ID: u16 = 2;
const ADDR_ATTR_ADDR4: u16 = 3;
const ADDR_ATTR_ADDR6: u16 = 4;
const ADDR_ATTR_PORT: u16 = 5;
const ADDR_ATTR_FLAGS: u16 = 6;
const ADDR_ATTR_IF_IDX: u16 = 7;

pub const FLAG_SIGNAL: u32 = 1 << 0;
pub const FLAG_SUBFLOW: u32 = 1 << 1;
pub const FLAG_BACKUP: u32 = 1 << 2;
pub const FLAG_FULLMESH: u32 = 1 << 3;

#[derive(Debug, thiserror::Error)]
pub enum PmError {
    #[error("the kernel has no MPTCP path manager (generic netlink family mptcp_pm not found)")]
    NoFamily,
    #[error("path manager: {op}: {}{}", reason(err), hint(err))]
    Netlink { op: String, err: NetlinkError },
    /// The kernel accepted an endpoint but does not list it.
    #[error("path manager: {op}: added but not listed")]
    NotListed { op: String },
}

/// The kernel's errno in words, or the malformed answer.
fn reason(e: &NetlinkError) -> String {
    match e.errno() {
        Some(errno) => crate::sys::errno_text(errno),
        None => e.to_string(),
    }
}

fn hint(e: &NetlinkError) -> &'static str {
    match e.errno() {
        Some(libc::EPERM) => " (changing MPTCP endpoints and limits needs CAP_NET_ADMIN)",
        _ => "",
    }
}

/// One endpoint as `ip mptcp endpoint show` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: u8,
    pub addr: IpAddr,
    pub port: Option<u16>,
    pub flags: u32,
    pub ifindex: Option<i32>,
}

/// The namespace's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmLimits {
    pub subflows: u32,
    pub add_addr_accepted: u32,
}

pub struct PathManager {
    sock: Socket,
    family: u16,
}

impl PathManager {
    pub fn open() -> Result<PathManager, PmError> {
        let err = |op: &str| {
            let op = op.to_string();
            move |err| PmError::Netlink { op, err }
        };
        let mut sock = Socket::open(netlink::NETLINK_GENERIC).map_err(err("netlink socket"))?;
        let family =
            genl::resolve(&mut sock, MPTCP_PM_NAME).map_err(err("resolve mptcp_pm"))?.ok_or(PmError::NoFamily)?;
        Ok(PathManager { sock, family: family.id })
    }

    fn msg(&self, cmd: u8, flags: u16) -> Request {
        genl::request(self.family, cmd, MPTCP_PM_VER, flags)
    }

    /// Send a command; the generic netlink bodies (attributes after the
    /// genl header) of the answers.
    fn req(&mut self, op: &str, m: &mut Request) -> Result<Vec<Vec<u8>>, PmError> {
        let answers = self.sock.transact("mptcp_pm", m).map_err(|err| PmError::Netlink { op: op.to_string(), err })?;
        Ok(answers.into_iter().map(|a| genl::body(&a.payload).unwrap_or(&[]).to_vec()).collect())
    }

    pub fn limits(&mut self) -> Result<PmLimits, PmError> {
        let mut m = self.msg(CMD_GET_LIMITS, NLM_F_REQUEST | NLM_F_ACK);
        let replies = self.req("get limits", &mut m)?;
        let mut l = PmLimits { subflows: 0, add_addr_accepted: 0 };
        for a in replies.iter().flat_map(|r| attrs(r).map_while(Result::ok)) {
            match a.ty {
                ATTR_SUBFLOWS => l.subflows = a.u32().unwrap_or(0),
                ATTR_RCV_ADD_ADDRS => l.add_addr_accepted = a.u32().unwrap_or(0),
                _ => {}
            }
        }
        Ok(l)
    }

    pub fn set_limits(&mut self, l: PmLimits) -> Result<(), PmError> {
        let mut m = self.msg(CMD_SET_LIMITS, NLM_F_REQUEST | NLM_F_ACK);
        m.attr_u32(ATTR_RCV_ADD_ADDRS, l.add_addr_accepted).attr_u32(ATTR_SUBFLOWS, l.subflows);
        self.req("set limits", &mut m).map(drop)
    }

    pub fn endpoints(&mut self) -> Result<Vec<Endpoint>, PmError> {
        let mut m = self.msg(CMD_GET_ADDR, NLM_F_REQUEST | NLM_F_DUMP);
        let replies = self.req("list endpoints", &mut m)?;
        Ok(replies.iter().filter_map(|r| parse_endpoint(r)).collect())
    }

    /// Add an endpoint; returns its id (assigned by the kernel).
    pub fn add_endpoint(&mut self, addr: IpAddr, port: Option<u16>, flags: u32) -> Result<u8, PmError> {
        let mut m = self.msg(CMD_ADD_ADDR, NLM_F_REQUEST | NLM_F_ACK);
        m.nest(ATTR_ADDR);
        match addr {
            IpAddr::V4(a) => m.attr_u16(ADDR_ATTR_FAMILY, libc::AF_INET as u16).attr(ADDR_ATTR_ADDR4, &a.octets()),
            IpAddr::V6(a) => m.attr_u16(ADDR_ATTR_FAMILY, libc::AF_INET6 as u16).attr(ADDR_ATTR_ADDR6, &a.octets()),
        };
        if let Some(p) = port {
            m.attr_u16(ADDR_ATTR_PORT, p);
        }
        m.attr_u32(ADDR_ATTR_FLAGS, flags);
        m.end_nest();
        self.req(&format!("add endpoint {addr}"), &mut m)?;
        self.endpoints()?
            .into_iter()
            .find(|e| e.addr == addr && e.port == port)
            .map(|e| e.id)
            .ok_or_else(|| PmError::NotListed { op: format!("add endpoint {addr}") })
    }

    pub fn del_endpoint(&mut self, id: u8) -> Result<(), PmError> {
        let mut m = self.msg(CMD_DEL_ADDR, NLM_F_REQUEST | NLM_F_ACK);
        m.nest(ATTR_ADDR).attr_u8(ADDR_ATTR_ID, id).end_nest();
        self.req(&format!("delete endpoint id {id}"), &mut m).map(drop)
    }
}

/// One endpoint from the attributes of a GET_ADDR answer (MPTCP_PM_ATTR_ADDR
/// nesting MPTCP_PM_ADDR_ATTR_*); `None` without an address.
fn parse_endpoint(body: &[u8]) -> Option<Endpoint> {
    let nested = attrs(body).find(ATTR_ADDR)?;
    let mut e = Endpoint { id: 0, addr: IpAddr::from([0, 0, 0, 0]), port: None, flags: 0, ifindex: None };
    let mut have_addr = false;
    for a in nested.nested().map_while(Result::ok) {
        let p = a.data;
        match a.ty {
            ADDR_ATTR_ID => e.id = a.u8()?,
            ADDR_ATTR_ADDR4 if p.len() >= 4 => {
                e.addr = IpAddr::from([p[0], p[1], p[2], p[3]]);
                have_addr = true;
            }
            ADDR_ATTR_ADDR6 if p.len() >= 16 => {
                let o: [u8; 16] = p[..16].try_into().ok()?;
                e.addr = IpAddr::from(o);
                have_addr = true;
            }
            ADDR_ATTR_PORT => e.port = a.u16().filter(|p| *p != 0),
            ADDR_ATTR_FLAGS => e.flags = a.u32()?,
            ADDR_ATTR_IF_IDX => e.ifindex = a.u32().map(|v| v as i32).filter(|v| *v != 0),
            _ => {}
        }
    }
    have_addr.then_some(e)
}

/// Flag names as `ip mptcp endpoint` prints them.
pub fn flag_names(flags: u32) -> String {
    let mut v = Vec::new();
    for (b, n) in
        [(FLAG_SIGNAL, "signal"), (FLAG_SUBFLOW, "subflow"), (FLAG_BACKUP, "backup"), (FLAG_FULLMESH, "fullmesh")]
    {
        if flags & b != 0 {
            v.push(n);
        }
    }
    v.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_answers() {
        // Built the way the kernel answers GET_ADDR: ATTR_ADDR nesting the address.
        let mut r = Request::new(0x1a, 0);
        r.nest(ATTR_ADDR)
            .attr_u16(ADDR_ATTR_FAMILY, libc::AF_INET6 as u16)
            .attr_u8(ADDR_ATTR_ID, 3)
            .attr(ADDR_ATTR_ADDR6, &"fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets())
            .attr_u16(ADDR_ATTR_PORT, 0)
            .attr_u32(ADDR_ATTR_FLAGS, FLAG_SUBFLOW | FLAG_BACKUP)
            .attr_u32(ADDR_ATTR_IF_IDX, 4)
            .end_nest();
        let bytes = r.finish(1).to_vec();
        let e = parse_endpoint(&bytes[netlink::NLMSG_HDRLEN..]).unwrap();
        assert_eq!(e.addr, "fd00::2".parse::<IpAddr>().unwrap());
        assert_eq!((e.id, e.port, e.ifindex), (3, None, Some(4)));
        assert_eq!(flag_names(e.flags), "subflow backup");
        // No address: not an endpoint.
        let mut r = Request::new(0x1a, 0);
        r.nest(ATTR_ADDR).attr_u8(ADDR_ATTR_ID, 3).end_nest();
        let bytes = r.finish(1).to_vec();
        assert_eq!(parse_endpoint(&bytes[netlink::NLMSG_HDRLEN..]), None);
    }

    #[test]
    fn errors_in_words() {
        let e =
            PmError::Netlink { op: "set limits".into(), err: NetlinkError::Kernel { what: "x", errno: libc::EPERM } };
        assert_eq!(
            e.to_string(),
            "path manager: set limits: Operation not permitted (changing MPTCP endpoints and limits needs CAP_NET_ADMIN)"
        );
    }
}
