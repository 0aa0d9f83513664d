//! Path-manager events: the generic netlink family "mptcp_pm", multicast
//! group "mptcp_pm_events" (include/uapi/linux/mptcp_pm.h,
//! net/mptcp/pm_netlink.c `mptcp_event`), resolved through nlctrl.
//!
//! Every event becomes a [`ControlEvent`], the vocabulary the embedded
//! stacks use too, with errors and MP_TCPRST reasons (RFC 8684 §3.6) in words.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::{LogEvent, Note, Source, SourceUpdate, fmt_sockaddr};
use crate::control::ControlEvent;
use crate::snapshot::token_hex;
use crate::sys::errno_text;
use crate::sys::genl::{self, MPTCP_PM_EV_GRP_NAME, MPTCP_PM_NAME};
use crate::sys::netlink::{self, Attr, NetlinkError, Socket, attrs, messages};

/// enum mptcp_event_type.
pub mod event {
    pub const CREATED: u8 = 1;
    pub const ESTABLISHED: u8 = 2;
    pub const CLOSED: u8 = 3;
    pub const ANNOUNCED: u8 = 6;
    pub const REMOVED: u8 = 7;
    pub const SUB_ESTABLISHED: u8 = 10;
    pub const SUB_CLOSED: u8 = 11;
    pub const SUB_PRIORITY: u8 = 13;
    pub const LISTENER_CREATED: u8 = 15;
    pub const LISTENER_CLOSED: u8 = 16;
}

/// enum mptcp_event_attr.
pub mod attr {
    pub const TOKEN: u16 = 1;
    pub const FAMILY: u16 = 2;
    pub const LOC_ID: u16 = 3;
    pub const REM_ID: u16 = 4;
    pub const SADDR4: u16 = 5;
    pub const SADDR6: u16 = 6;
    pub const DADDR4: u16 = 7;
    pub const DADDR6: u16 = 8;
    pub const SPORT: u16 = 9;
    pub const DPORT: u16 = 10;
    pub const BACKUP: u16 = 11;
    pub const ERROR: u16 = 12;
    pub const FLAGS: u16 = 13;
    pub const TIMEOUT: u16 = 14;
    pub const IF_IDX: u16 = 15;
    pub const RESET_REASON: u16 = 16;
    pub const RESET_FLAGS: u16 = 17;
    pub const SERVER_SIDE: u16 = 18;
}

/// MPTCP_PM_EV_FLAG_* in MPTCP_ATTR_FLAGS.
pub const EV_FLAG_DENY_JOIN_ID0: u16 = 1 << 0;
pub const EV_FLAG_SERVER_SIDE: u16 = 1 << 1;

/// The event's name in the [`ControlEvent::kind`] vocabulary.
pub fn kind_name(cmd: u8) -> String {
    match cmd {
        event::CREATED => "created".into(),
        event::ESTABLISHED => "established".into(),
        event::CLOSED => "closed".into(),
        event::ANNOUNCED => "announced".into(),
        event::REMOVED => "removed".into(),
        event::SUB_ESTABLISHED => "sub_established".into(),
        event::SUB_CLOSED => "sub_closed".into(),
        event::SUB_PRIORITY => "sub_priority".into(),
        event::LISTENER_CREATED => "listener_created".into(),
        event::LISTENER_CLOSED => "listener_closed".into(),
        n => format!("event_{n}"),
    }
}

/// MP_TCPRST reason codes in words (RFC 8684 §3.6).
pub fn reset_reason_words(code: u32) -> String {
    match code {
        0 => "unspecified error".into(),
        1 => "MPTCP-specific error".into(),
        2 => "lack of resources".into(),
        3 => "administratively prohibited".into(),
        4 => "too much outstanding data".into(),
        5 => "unacceptable performance".into(),
        6 => "middlebox interference".into(),
        n => format!("reason {n}"),
    }
}

fn ip_of(a: Option<Attr<'_>>, v6: Option<Attr<'_>>) -> Option<IpAddr> {
    if let Some(d) = a.and_then(|a| a.data.get(..4)) {
        return Some(IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3])));
    }
    let d: [u8; 16] = v6.and_then(|a| a.data.get(..16))?.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(d)))
}

fn endpoint(ip: Option<IpAddr>, port: Option<u16>) -> Option<String> {
    match (ip, port) {
        (Some(ip), Some(p)) => Some(fmt_sockaddr(ip, p)),
        (Some(ip), None) => Some(ip.to_string()),
        (None, Some(p)) => Some(format!("*:{p}")),
        (None, None) => None,
    }
}

/// Turn one event message payload (genl header + MPTCP_ATTR_*) into a
/// [`ControlEvent`] stamped `time_ms`. `None` if the payload is too short to
/// hold a genl header.
pub fn parse_event(payload: &[u8], time_ms: u64) -> Option<ControlEvent> {
    let cmd = genl::command(payload)?;
    let body = genl::body(payload)?;
    let mut list: Vec<Attr<'_>> = Vec::new();
    let mut malformed = false;
    for a in attrs(body) {
        match a {
            Ok(a) => list.push(a),
            Err(_) => malformed = true,
        }
    }
    let get = |ty: u16| list.iter().find(|a| a.ty == ty).copied();
    let mut words: Vec<String> = Vec::new();
    if let Some(e) = get(attr::ERROR).and_then(|a| a.u8()).filter(|&e| e != 0) {
        words.push(format!("error: {}", errno_text(i32::from(e))));
    }
    if let Some(r) = get(attr::RESET_REASON).and_then(|a| a.u32()) {
        let transient = get(attr::RESET_FLAGS).and_then(|a| a.u32()).is_some_and(|f| f & 1 != 0);
        words.push(format!("reset: {}{}", reset_reason_words(r), if transient { " (transient)" } else { "" }));
    }
    let flags = get(attr::FLAGS).and_then(|a| a.u16()).unwrap_or(0);
    if get(attr::SERVER_SIDE).and_then(|a| a.u8()).is_some_and(|v| v != 0) || flags & EV_FLAG_SERVER_SIDE != 0 {
        words.push("server side".into());
    }
    if flags & EV_FLAG_DENY_JOIN_ID0 != 0 {
        words.push("peer denies joins to its address id 0".into());
    }
    if let Some(t) = get(attr::TIMEOUT).and_then(|a| a.u32()).filter(|&t| t != 0) {
        words.push(format!("timeout {t}s"));
    }
    if malformed {
        words.push("(malformed attributes skipped)".into());
    }
    Some(ControlEvent {
        time_ms,
        kind: kind_name(cmd),
        token: get(attr::TOKEN).and_then(|a| a.u32()).map(token_hex),
        local: endpoint(ip_of(get(attr::SADDR4), get(attr::SADDR6)), get(attr::SPORT).and_then(|a| a.be16())),
        remote: endpoint(ip_of(get(attr::DADDR4), get(attr::DADDR6)), get(attr::DPORT).and_then(|a| a.be16())),
        id_loc: get(attr::LOC_ID).and_then(|a| a.u8()),
        id_rem: get(attr::REM_ID).and_then(|a| a.u8()),
        backup: get(attr::BACKUP).and_then(|a| a.u8()).map(|b| b != 0),
        reason: if words.is_empty() { None } else { Some(words.join("; ")) },
        frame: None,
    })
}

/// Errors subscribing to the events.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("path-manager events: cannot open a generic netlink socket: {0}")]
    Open(#[source] NetlinkError),
    #[error("path-manager events: the kernel has no \"mptcp_pm\" netlink family (MPTCP off or too old)")]
    NoFamily,
    #[error("path-manager events: the \"mptcp_pm\" family has no \"mptcp_pm_events\" group")]
    NoGroup,
    #[error("path-manager events need CAP_NET_ADMIN (run as root): {0}")]
    Permission(#[source] NetlinkError),
    #[error("path-manager events: {0}")]
    Other(#[source] NetlinkError),
}

/// A subscription to the kernel's path-manager events.
pub struct PmEvents {
    sock: Socket,
    family: u16,
    lost: bool,
}

impl PmEvents {
    pub fn subscribe() -> Result<PmEvents, EventsError> {
        let mut sock = Socket::open(netlink::NETLINK_GENERIC).map_err(EventsError::Open)?;
        let fam = genl::resolve(&mut sock, MPTCP_PM_NAME).map_err(EventsError::Other)?.ok_or(EventsError::NoFamily)?;
        let group = fam.group(MPTCP_PM_EV_GRP_NAME).ok_or(EventsError::NoGroup)?;
        sock.add_membership(group).map_err(|e| match e.errno() {
            Some(libc::EPERM) | Some(libc::EACCES) => EventsError::Permission(e),
            _ => EventsError::Other(e),
        })?;
        sock.set_nonblocking().map_err(EventsError::Other)?;
        Ok(PmEvents { sock, family: fam.id, lost: false })
    }

    /// Every event queued on the socket, stamped `time_ms`.
    pub fn drain(&mut self, time_ms: u64) -> Vec<ControlEvent> {
        let mut out = Vec::new();
        // Bounded so that a flood cannot stall the view.
        for _ in 0..1024 {
            match self.sock.recv() {
                Ok(Some(buf)) => {
                    for m in messages(buf).map_while(Result::ok) {
                        if m.ty == self.family {
                            out.extend(parse_event(m.payload, time_ms));
                        }
                    }
                }
                Ok(None) => break,
                Err(e) if e.errno() == Some(libc::ENOBUFS) => self.lost = true,
                Err(_) => break,
            }
        }
        out
    }
}

impl Source for PmEvents {
    fn label(&self) -> String {
        "kernel events".into()
    }
    fn poll(&mut self, now: Duration, snapshot: bool) -> SourceUpdate {
        let ms = now.as_millis() as u64;
        let events =
            self.drain(ms).into_iter().map(|event| LogEvent { at: now, source: "kernel".into(), event }).collect();
        let mut notes = Vec::new();
        if snapshot && self.lost {
            notes.push(Note::warn(self.label(), "some events were lost (socket buffer overrun)"));
        }
        SourceUpdate { snapshot: None, events, notes, clock: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::netlink::push_attr;

    fn genl(cmd: u8, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut p = vec![cmd, 1, 0, 0];
        for (t, v) in attrs {
            push_attr(&mut p, *t, v);
        }
        p
    }

    #[test]
    fn sub_closed_with_reset_reason() {
        let p = genl(
            event::SUB_CLOSED,
            &[
                (attr::TOKEN, 0xf4558206u32.to_ne_bytes().to_vec()),
                (attr::FAMILY, (libc::AF_INET as u16).to_ne_bytes().to_vec()),
                (attr::LOC_ID, vec![2]),
                (attr::REM_ID, vec![0]),
                (attr::SADDR4, vec![10, 77, 2, 1]),
                (attr::DADDR4, vec![10, 77, 1, 2]),
                (attr::SPORT, 53087u16.to_be_bytes().to_vec()),
                (attr::DPORT, 10000u16.to_be_bytes().to_vec()),
                (attr::BACKUP, vec![0]),
                (attr::ERROR, vec![libc::ECONNRESET as u8]),
                (attr::RESET_REASON, 6u32.to_ne_bytes().to_vec()),
                (attr::RESET_FLAGS, 1u32.to_ne_bytes().to_vec()),
            ],
        );
        let e = parse_event(&p, 1500).unwrap();
        assert_eq!(e.kind, "sub_closed");
        assert_eq!(e.time_ms, 1500);
        assert_eq!(e.token.as_deref(), Some("0xf4558206"));
        assert_eq!(e.local.as_deref(), Some("10.77.2.1:53087"));
        assert_eq!(e.remote.as_deref(), Some("10.77.1.2:10000"));
        assert_eq!((e.id_loc, e.id_rem, e.backup), (Some(2), Some(0), Some(false)));
        assert_eq!(
            e.reason.as_deref(),
            Some("error: Connection reset by peer; reset: middlebox interference (transient)")
        );
    }

    #[test]
    fn announced_v6_and_listener() {
        let a6: std::net::Ipv6Addr = "fd77::2:2".parse().unwrap();
        let p = genl(
            event::ANNOUNCED,
            &[
                (attr::TOKEN, 1u32.to_ne_bytes().to_vec()),
                (attr::REM_ID, vec![3]),
                (attr::DADDR6, a6.octets().to_vec()),
            ],
        );
        let e = parse_event(&p, 0).unwrap();
        assert_eq!((e.kind.as_str(), e.remote.as_deref(), e.id_rem), ("announced", Some("fd77::2:2"), Some(3)));
        let p = genl(
            event::LISTENER_CREATED,
            &[(attr::SADDR4, vec![0, 0, 0, 0]), (attr::SPORT, 10000u16.to_be_bytes().to_vec())],
        );
        let e = parse_event(&p, 0).unwrap();
        assert_eq!((e.kind.as_str(), e.local.as_deref()), ("listener_created", Some("0.0.0.0:10000")));
        let p = genl(event::CREATED, &[(attr::SERVER_SIDE, vec![1]), (attr::FLAGS, 1u16.to_ne_bytes().to_vec())]);
        assert_eq!(
            parse_event(&p, 0).unwrap().reason.as_deref(),
            Some("server side; peer denies joins to its address id 0")
        );
        assert_eq!(parse_event(&genl(42, &[]), 0).unwrap().kind, "event_42");
    }

    #[test]
    fn malformed_events_do_not_panic() {
        assert!(parse_event(&[1, 2], 0).is_none());
        let mut p = genl(event::CLOSED, &[(attr::TOKEN, 5u32.to_ne_bytes().to_vec())]);
        p.extend_from_slice(&[99, 0, 1, 0]);
        let e = parse_event(&p, 0).unwrap();
        assert_eq!(e.token.as_deref(), Some("0x00000005"));
        assert!(e.reason.unwrap().contains("malformed"));
        // Short address attributes are ignored, not over-read.
        let p = genl(event::SUB_ESTABLISHED, &[(attr::SADDR4, vec![1, 2]), (attr::SPORT, vec![1])]);
        let e = parse_event(&p, 0).unwrap();
        assert_eq!(e.local, None);
    }

    #[test]
    fn words() {
        assert_eq!(reset_reason_words(3), "administratively prohibited");
        assert_eq!(reset_reason_words(9), "reason 9");
        assert_eq!(errno_text(libc::ETIMEDOUT), "Connection timed out");
    }
}
