//! Generic netlink (include/uapi/linux/genetlink.h): the `genlmsghdr` that
//! follows the netlink header, and the nlctrl family that turns a family
//! name ("mptcp_pm") into its numeric id and multicast groups.

use super::netlink::{NetlinkError, OwnedMessage, Request, Socket, attrs};

/// The nlctrl family.
pub const GENL_ID_CTRL: u16 = 0x10;
pub const CTRL_CMD_GETFAMILY: u8 = 3;
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;
pub const CTRL_ATTR_MCAST_GROUPS: u16 = 7;
pub const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
pub const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;
/// `struct genlmsghdr`: cmd u8, version u8, reserved u16.
pub const GENL_HDRLEN: usize = 4;

/// The MPTCP path manager's family (include/uapi/linux/mptcp_pm.h): its
/// commands (endpoints, limits) and its event multicast group.
pub const MPTCP_PM_NAME: &str = "mptcp_pm";
pub const MPTCP_PM_VER: u8 = 1;
pub const MPTCP_PM_EV_GRP_NAME: &str = "mptcp_pm_events";

/// A generic netlink request to `family` (its numeric id): the netlink
/// header and the genl header; attributes follow.
pub fn request(family: u16, cmd: u8, version: u8, flags: u16) -> Request {
    let mut r = Request::new(family, flags);
    r.bytes(&[cmd, version, 0, 0]);
    r
}

/// The command of a generic netlink message payload.
pub fn command(payload: &[u8]) -> Option<u8> {
    payload.first().copied()
}

/// The attributes of a generic netlink message payload (after the genl
/// header); `None` when the payload is shorter than the header.
pub fn body(payload: &[u8]) -> Option<&[u8]> {
    payload.get(GENL_HDRLEN..)
}

/// A generic netlink family as nlctrl describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Family {
    pub id: u16,
    pub name: String,
    /// Multicast groups: (name, id).
    pub groups: Vec<(String, u32)>,
}

impl Family {
    /// The id of the multicast group `name`.
    pub fn group(&self, name: &str) -> Option<u32> {
        self.groups.iter().find(|(n, _)| n == name).map(|g| g.1)
    }
}

/// The CTRL_CMD_GETFAMILY request for `name`.
pub fn getfamily_request(name: &str) -> Request {
    let mut r = request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, super::netlink::NLM_F_REQUEST | super::netlink::NLM_F_ACK);
    r.attr_str(CTRL_ATTR_FAMILY_NAME, name);
    r
}

/// Parse nlctrl's answer (genl header + CTRL_ATTR_*).
pub fn parse_family(payload: &[u8]) -> Result<Family, NetlinkError> {
    let body = body(payload).ok_or_else(|| NetlinkError::Malformed {
        what: "nlctrl answer",
        detail: format!("{} bytes, shorter than the genl header", payload.len()),
    })?;
    let mut f = Family::default();
    for a in attrs(body) {
        let a = a?;
        match a.ty {
            CTRL_ATTR_FAMILY_ID => f.id = a.u16().unwrap_or(0),
            CTRL_ATTR_FAMILY_NAME => f.name = a.str(),
            CTRL_ATTR_MCAST_GROUPS => {
                for g in a.nested().map_while(Result::ok) {
                    let name = g.nested().find(CTRL_ATTR_MCAST_GRP_NAME).map(|n| n.str());
                    let id = g.nested().find(CTRL_ATTR_MCAST_GRP_ID).and_then(|n| n.u32());
                    if let (Some(name), Some(id)) = (name, id) {
                        f.groups.push((name, id));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(f)
}

/// Resolve a family by name through nlctrl on a NETLINK_GENERIC socket.
/// `Ok(None)` when the kernel does not have it (ENOENT).
pub fn resolve(sock: &mut Socket, name: &str) -> Result<Option<Family>, NetlinkError> {
    let answers = match sock.transact("nlctrl GETFAMILY", &mut getfamily_request(name)) {
        Ok(a) => a,
        Err(e) if e.errno() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    first_family(&answers).map(Some)
}

fn first_family(answers: &[OwnedMessage]) -> Result<Family, NetlinkError> {
    let m = answers.iter().find(|m| m.ty == GENL_ID_CTRL).ok_or_else(|| NetlinkError::Malformed {
        what: "nlctrl answer",
        detail: "no family description in the answer".into(),
    })?;
    parse_family(&m.payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::netlink::{NLA_F_NESTED, messages, push_attr};

    #[test]
    fn family_answer() {
        let mut grp1 = Vec::new();
        push_attr(&mut grp1, CTRL_ATTR_MCAST_GRP_NAME, b"mptcp_pm_cmds\0");
        push_attr(&mut grp1, CTRL_ATTR_MCAST_GRP_ID, &7u32.to_ne_bytes());
        let mut grp2 = Vec::new();
        push_attr(&mut grp2, CTRL_ATTR_MCAST_GRP_ID, &8u32.to_ne_bytes());
        push_attr(&mut grp2, CTRL_ATTR_MCAST_GRP_NAME, b"mptcp_pm_events\0");
        let mut groups = Vec::new();
        push_attr(&mut groups, 1 | NLA_F_NESTED, &grp1);
        push_attr(&mut groups, 2 | NLA_F_NESTED, &grp2);
        let mut p = vec![1, 1, 0, 0];
        push_attr(&mut p, CTRL_ATTR_FAMILY_ID, &0x1au16.to_ne_bytes());
        push_attr(&mut p, CTRL_ATTR_FAMILY_NAME, b"mptcp_pm\0");
        push_attr(&mut p, CTRL_ATTR_MCAST_GROUPS | NLA_F_NESTED, &groups);
        let f = parse_family(&p).unwrap();
        assert_eq!((f.id, f.name.as_str()), (0x1a, "mptcp_pm"));
        assert_eq!(f.groups, vec![("mptcp_pm_cmds".into(), 7), ("mptcp_pm_events".into(), 8)]);
        assert_eq!(f.group("mptcp_pm_events"), Some(8));
        assert_eq!(f.group("nope"), None);
        assert!(parse_family(&[1, 2]).is_err());
        let answers = [OwnedMessage { ty: 0x99, flags: 0, payload: vec![] }];
        assert!(first_family(&answers).is_err(), "an answer of another type is not a family");
    }

    #[test]
    fn getfamily_layout() {
        let mut r = getfamily_request("mptcp_pm");
        let bytes = r.finish(3).to_vec();
        let m = messages(&bytes).next().unwrap().unwrap();
        assert_eq!((m.ty, m.seq), (GENL_ID_CTRL, 3));
        assert_eq!(command(m.payload), Some(CTRL_CMD_GETFAMILY));
        assert_eq!(attrs(body(m.payload).unwrap()).find(CTRL_ATTR_FAMILY_NAME).unwrap().str(), "mptcp_pm");
    }
}
