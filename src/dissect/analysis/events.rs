//! Connection events as the analysis sees them happen, for live views
//! (mptcp-ss `-r` / `-i`): an incremental, opt-in log in the vocabulary of
//! the kernel's path-manager events (include/uapi/linux/mptcp_pm.h:
//! created, established, sub_established, announced, removed, sub_closed,
//! sub_priority, closed) plus what only a packet trace can tell (fallback,
//! mp_fail, hmac_failed, checksum_failed, key_mismatch, reinjection).
//!
//! Turn it on with [`Analyzer::enable_events`], then collect with
//! [`Analyzer::drain_events`]. The log is derived after each packet from
//! the state the analysis keeps anyway (verdicts, announcements, removals,
//! subflow handshakes and closes), so the packet paths are unchanged and the
//! cost is nil when it is off.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::{Analyzer, Flow, Role, Side};
use super::{Check, FallbackReason, HmacKind, JoinFailure, VerdictKind};
use crate::dissect::options::MpTcpRst;

/// One event, with the frame that shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConnEvent {
    pub frame: u64,
    /// The frame's capture time (seconds since the epoch).
    pub ts: f64,
    /// The connection's number (as in the per-packet notes and the report).
    pub conn: u32,
    /// The subflow's number within the connection, for subflow events.
    pub subflow: Option<u32>,
    /// The client's token (the "local" token of the snapshots), when known.
    pub token: Option<u32>,
    /// The connection's (or the subflow's) address pair, the client's end
    /// first, as the snapshots show it; none for an announcement or a
    /// removal (the address is in the kind).
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    pub id_loc: Option<u8>,
    pub id_rem: Option<u8>,
    /// The subflow's backup flag as the client sees it.
    pub backup: Option<bool>,
    pub kind: ConnEventKind,
}

/// What happened.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnEventKind {
    /// Both keys seen: the connection exists at the MPTCP level (RFC 8684
    /// §3.1). `version` is `None` when the handshake is not in the capture.
    Created { version: Option<u8> },
    /// The server's first DSS: MPTCP runs.
    Established { version: Option<u8> },
    /// An MP_JOIN subflow completed its handshake (the third ACK, §3.2);
    /// `hmac` says whether both HMACs verified.
    SubEstablished { hmac: Check },
    /// ADD_ADDR (§3.4.1), with its HMAC check when it carried one.
    Announced { by: Side, id: u8, addr: IpAddr, port: Option<u16>, hmac: Option<Check> },
    /// REMOVE_ADDR (§3.4.2).
    Removed { by: Side, ids: Vec<u8> },
    /// A subflow ended.
    SubClosed(SubflowClose),
    /// MP_PRIO (§3.3.8).
    SubPriority { by: Side, backup: bool },
    /// The connection ended.
    Closed(ConnClose),
    /// The connection runs as plain TCP (§3.7).
    Fallback(FallbackReason),
    /// A join subflow runs without MPTCP or failed otherwise.
    JoinFailed(JoinFailure),
    /// MP_FAIL (§3.7), for a DSN of the peer's data.
    MpFail { by: Side, dsn_rel: Option<u64> },
    /// An MP_JOIN or ADD_ADDR HMAC that does not verify.
    HmacFailed(HmacKind),
    /// A mapping failed its DSS checksum (§3.3.1).
    ChecksumFailed { from: Side, dsn_rel: Option<u64> },
    /// The MP_CAPABLE third ACK echoes a key other than the server's.
    KeyMismatch,
    /// Data already sent on another subflow sent again on this one
    /// (§3.3.6). One event per burst: it starts with the first reinjected
    /// segment (later ones merge into it until it is drained), and the
    /// next event for the subflow comes after [`REINJECTION_QUIET`] seconds
    /// without reinjection. The per-subflow totals are in the snapshots.
    Reinjection { bytes: u64, segments: u64 },
}

/// How a subflow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubflowClose {
    /// FIN both ways; `removed` when a REMOVE_ADDR withdrew its address.
    Fin { removed: Option<(Side, u8)> },
    /// The first RST, from `by`, with the MPTCP signal it carried or the
    /// REMOVE_ADDR / MP_FASTCLOSE that caused it.
    Reset { by: Side, cause: Option<super::CloseCause> },
    /// A join answered with a reset before it was confirmed.
    JoinRefused { by: Side, reason: Option<u8> },
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnClose {
    /// DATA_FIN seen both ways.
    DataFin,
    /// MP_FASTCLOSE (§3.5).
    FastClose { by: Side },
    /// Every subflow closed without a connection-level close.
    SubflowsClosed,
}

impl ConnEventKind {
    /// The event's name, the kernel's path-manager vocabulary where it has one.
    pub fn name(&self) -> &'static str {
        match self {
            ConnEventKind::Created { .. } => "created",
            ConnEventKind::Established { .. } => "established",
            ConnEventKind::SubEstablished { .. } => "sub_established",
            ConnEventKind::Announced { .. } => "announced",
            ConnEventKind::Removed { .. } => "removed",
            ConnEventKind::SubClosed(_) => "sub_closed",
            ConnEventKind::SubPriority { .. } => "sub_priority",
            ConnEventKind::Closed(_) => "closed",
            ConnEventKind::Fallback(_) | ConnEventKind::JoinFailed(_) => "fallback",
            ConnEventKind::MpFail { .. } => "mp_fail",
            ConnEventKind::HmacFailed(_) => "hmac_failed",
            ConnEventKind::ChecksumFailed { .. } => "checksum_failed",
            ConnEventKind::KeyMismatch => "key_mismatch",
            ConnEventKind::Reinjection { .. } => "reinjection",
        }
    }

    /// Whether the event reports a problem (for highlighting).
    pub fn is_problem(&self) -> bool {
        match self {
            ConnEventKind::SubEstablished { hmac } => *hmac == Check::Bad,
            ConnEventKind::SubClosed(SubflowClose::Fin { .. }) => false,
            ConnEventKind::Closed(c) => *c != ConnClose::DataFin,
            ConnEventKind::Announced { hmac, .. } => matches!(hmac, Some(Check::Bad | Check::BadLeftmost)),
            ConnEventKind::Fallback(_)
            | ConnEventKind::JoinFailed(_)
            | ConnEventKind::MpFail { .. }
            | ConnEventKind::HmacFailed(_)
            | ConnEventKind::ChecksumFailed { .. }
            | ConnEventKind::KeyMismatch
            | ConnEventKind::SubClosed(_) => true,
            _ => false,
        }
    }
}

fn version(f: &mut fmt::Formatter<'_>, v: Option<u8>) -> fmt::Result {
    match v {
        Some(v) => write!(f, "MPTCP v{v}"),
        None => f.write_str("the handshake is not in the capture"),
    }
}

/// The reason words of an event (what the log prints in parentheses).
impl fmt::Display for ConnEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnEventKind::Created { version: v } | ConnEventKind::Established { version: v } => version(f, *v),
            ConnEventKind::SubEstablished { hmac } => match hmac {
                Check::Ok => f.write_str("MP_JOIN HMACs verified"),
                Check::NoKeys => f.write_str("MP_JOIN HMACs not verified (keys not seen)"),
                Check::Bad | Check::BadLeftmost => f.write_str("an MP_JOIN HMAC does not verify"),
            },
            ConnEventKind::Announced { by, hmac, .. } => {
                write!(f, "ADD_ADDR from the {by}")?;
                match hmac {
                    Some(h) => write!(f, ", HMAC {}", h.name()),
                    None => Ok(()),
                }
            }
            ConnEventKind::Removed { by, ids } => {
                write!(f, "REMOVE_ADDR from the {by}: id")?;
                if ids.len() > 1 {
                    f.write_str("s")?;
                }
                for (i, id) in ids.iter().enumerate() {
                    write!(f, "{}{id}", if i == 0 { " " } else { "," })?;
                }
                Ok(())
            }
            ConnEventKind::SubClosed(c) => match c {
                SubflowClose::Fin { removed: None } => f.write_str("FIN both ways"),
                SubflowClose::Fin { removed: Some((by, id)) } => {
                    write!(f, "FIN both ways after RM_ADDR id {id} from the {by}")
                }
                SubflowClose::Reset { by, cause: None } => write!(f, "RST from the {by}"),
                SubflowClose::Reset {
                    by,
                    cause: Some(c @ (super::CloseCause::RemoveAddr { .. } | super::CloseCause::FastClose { .. })),
                } => write!(f, "RST from the {by} after {c}"),
                // The cause says "RST with MP_TCPRST / MP_FAIL from ...".
                SubflowClose::Reset { cause: Some(c), .. } => write!(f, "{c}"),
                SubflowClose::JoinRefused { by, reason } => {
                    write!(f, "join refused by the {by}")?;
                    match reason {
                        Some(r) => write!(f, ": MP_TCPRST reason {r} ({})", MpTcpRst::reason_name(*r)),
                        None => f.write_str(": RST"),
                    }
                }
            },
            ConnEventKind::SubPriority { by, backup } => {
                write!(f, "MP_PRIO from the {by}: backup {}", if *backup { "on" } else { "off" })
            }
            ConnEventKind::Closed(c) => match c {
                ConnClose::DataFin => f.write_str("DATA_FIN both ways"),
                ConnClose::FastClose { by } => write!(f, "aborted with MP_FASTCLOSE by the {by}"),
                ConnClose::SubflowsClosed => f.write_str("every subflow closed"),
            },
            ConnEventKind::Fallback(r) => write!(f, "{r}"),
            ConnEventKind::JoinFailed(why) => match why {
                JoinFailure::SynAckWithoutJoin => f.write_str("join failed: the SYN/ACK has no MP_JOIN"),
                JoinFailure::UnknownToken { token } => write!(f, "join failed: unknown token {token:#010x}"),
                JoinFailure::OptionsMissing { from } => {
                    write!(f, "join failed: MPTCP options gone after the handshake (from the {from})")
                }
            },
            ConnEventKind::MpFail { by, dsn_rel } => {
                write!(f, "MP_FAIL from the {by}")?;
                match dsn_rel {
                    Some(d) => write!(f, " for dsn {d}"),
                    None => Ok(()),
                }
            }
            ConnEventKind::HmacFailed(k) => write!(f, "{} does not verify", k.name()),
            ConnEventKind::ChecksumFailed { from, dsn_rel } => {
                write!(f, "DSS checksum failed on {from} data")?;
                match dsn_rel {
                    Some(d) => write!(f, " (mapping at dsn {d})"),
                    None => Ok(()),
                }
            }
            ConnEventKind::KeyMismatch => f.write_str("the third ACK echoes a key other than the server's"),
            ConnEventKind::Reinjection { bytes, segments } => write!(
                f,
                "sends again data sent on another subflow: {bytes} byte{} in {segments} segment{}",
                if *bytes == 1 { "" } else { "s" },
                if *segments == 1 { "" } else { "s" }
            ),
        }
    }
}

/// Capture seconds without reinjection on a subflow that end a burst.
pub const REINJECTION_QUIET: f64 = 1.0;

/// How far the event log has looked at one connection's state.
#[derive(Debug, Default)]
pub(super) struct EventCursor {
    verdicts: usize,
    announced: usize,
    removed: usize,
    created: bool,
    closed: bool,
}

/// The pending events, and the reinjection bursts under way.
#[derive(Debug, Default)]
pub(super) struct EventLog {
    pending: Vec<ConnEvent>,
    /// (connection, subflow) -> capture time of its last reinjection.
    bursts: std::collections::HashMap<(u32, u32), f64>,
}

/// The subflow direction the client sends in.
fn client_dir(f: &Flow) -> usize {
    if f.sides[0] == Side::Client { 0 } else { 1 }
}

fn fully_closed(f: &Flow) -> bool {
    f.rst.is_some() || (f.fin[0].is_some() && f.fin[1].is_some())
}

impl Analyzer {
    /// Start keeping the event log (see [`Analyzer::drain_events`]).
    pub fn enable_events(&mut self) {
        self.events.get_or_insert_with(Box::default);
    }

    /// The events seen since the last call, in capture order. Empty unless
    /// [`Analyzer::enable_events`] was called.
    pub fn drain_events(&mut self) -> Vec<ConnEvent> {
        self.events.as_mut().map(|l| std::mem::take(&mut l.pending)).unwrap_or_default()
    }

    /// The bytes flow `fi` has seen reinjected, both ways (read before a
    /// packet when the log is on).
    pub(super) fn reinjected_bytes(&self, fi: usize) -> u64 {
        self.flows[fi].dirs.iter().map(|d| d.reinjected).sum()
    }

    /// An event about connection `ci` (and subflow `sf`, 1-based), its
    /// subject filled in from the analysis state.
    fn event(&self, ci: usize, sf: Option<u32>, frame: u64, ts: f64, kind: ConnEventKind) -> ConnEvent {
        let c = &self.conns[ci];
        let mut e = ConnEvent {
            frame,
            ts,
            conn: c.id,
            subflow: sf,
            token: c.tokens[Side::Client.index()],
            local: Some(c.client),
            remote: Some(c.server),
            id_loc: None,
            id_rem: None,
            backup: None,
            kind,
        };
        if let Some(f) = sf.and_then(|n| c.flows.get(n as usize - 1)).map(|&fi| &self.flows[fi as usize]) {
            let lo = client_dir(f);
            let (l, r) = if lo == 0 { (f.client, f.server) } else { (f.server, f.client) };
            e.local = Some(l);
            e.remote = Some(r);
            e.id_loc = f.ids[lo];
            e.id_rem = f.ids[1 - lo];
            e.backup = Some(f.backup[lo]);
        }
        e
    }

    /// Derive the events packet `frame` (on flow `fi`, direction `d`)
    /// brought, from the state it left.
    pub(super) fn derive_events(&mut self, fi: usize, d: usize, prio: Option<bool>, frame: u64, ts: f64, reinj: u64) {
        let Some(ci) = self.flows[fi].conn.map(|c| c as usize) else { return };
        let mut out: Vec<ConnEvent> = Vec::new();
        let mut cur = std::mem::take(&mut self.conns[ci].ev);
        let f = &self.flows[fi];
        let c = &self.conns[ci];
        let sf = Some(f.sf);
        if !cur.created && c.tokens.iter().all(Option::is_some) {
            cur.created = true;
            out.push(self.event(ci, None, frame, ts, ConnEventKind::Created { version: c.version }));
        }
        for v in &c.verdicts[cur.verdicts..] {
            let at = |sf: u32| Some(sf);
            let e = match &v.kind {
                VerdictKind::Established { .. } | VerdictKind::InUse => {
                    let version = if let VerdictKind::Established { version } = v.kind { Some(version) } else { None };
                    // A connection first seen mid-stream is created when it is seen in use.
                    if !cur.created {
                        cur.created = true;
                        out.push(self.event(ci, None, v.frame, ts, ConnEventKind::Created { version }));
                    }
                    Some(self.event(ci, None, v.frame, ts, ConnEventKind::Established { version }))
                }
                VerdictKind::Fallback(r) => Some(self.event(ci, None, v.frame, ts, ConnEventKind::Fallback(*r))),
                VerdictKind::JoinFailed { subflow, why } => {
                    Some(self.event(ci, at(*subflow), v.frame, ts, ConnEventKind::JoinFailed(*why)))
                }
                VerdictKind::HmacFailed { subflow, kind } => {
                    Some(self.event(ci, at(*subflow), v.frame, ts, ConnEventKind::HmacFailed(*kind)))
                }
                VerdictKind::ChecksumFailed { subflow, from, dsn_rel, .. } => Some(self.event(
                    ci,
                    at(*subflow),
                    v.frame,
                    ts,
                    ConnEventKind::ChecksumFailed { from: *from, dsn_rel: *dsn_rel },
                )),
                VerdictKind::MpFail { subflow, by, dsn_rel } => Some(self.event(
                    ci,
                    at(*subflow),
                    v.frame,
                    ts,
                    ConnEventKind::MpFail { by: *by, dsn_rel: *dsn_rel },
                )),
                VerdictKind::FastClose { by } if !cur.closed => {
                    cur.closed = true;
                    Some(self.event(ci, None, v.frame, ts, ConnEventKind::Closed(ConnClose::FastClose { by: *by })))
                }
                VerdictKind::Closed if !cur.closed => {
                    cur.closed = true;
                    Some(self.event(ci, None, v.frame, ts, ConnEventKind::Closed(ConnClose::DataFin)))
                }
                VerdictKind::KeyMismatch => Some(self.event(ci, None, v.frame, ts, ConnEventKind::KeyMismatch)),
                // Told by the subflow's own close (and the REMOVE_ADDR before
                // it); a second connection-level close is not news.
                VerdictKind::JoinRefused { .. }
                | VerdictKind::SubflowClosed { .. }
                | VerdictKind::FastClose { .. }
                | VerdictKind::Closed => None,
            };
            out.extend(e);
        }
        cur.verdicts = c.verdicts.len();
        for a in &c.announced[cur.announced..] {
            let mut e = self.event(
                ci,
                None,
                a.frame,
                ts,
                ConnEventKind::Announced { by: a.by, id: a.id, addr: a.addr, port: a.port, hmac: a.hmac },
            );
            // The address (and port, if any) is in the kind.
            (e.local, e.remote) = (None, None);
            if a.by == Side::Client {
                e.id_loc = Some(a.id);
            } else {
                e.id_rem = Some(a.id);
            }
            out.push(e);
        }
        cur.announced = c.announced.len();
        for r in &c.removed[cur.removed..] {
            let mut e = self.event(ci, None, r.frame, ts, ConnEventKind::Removed { by: r.by, ids: r.ids.clone() });
            (e.local, e.remote) = (None, None);
            if let [id] = r.ids[..] {
                if r.by == Side::Client {
                    e.id_loc = Some(id);
                } else {
                    e.id_rem = Some(id);
                }
            }
            out.push(e);
        }
        cur.removed = c.removed.len();
        if let Some(backup) = prio {
            out.push(self.event(ci, sf, frame, ts, ConnEventKind::SubPriority { by: f.sides[d], backup }));
        }
        if f.role == Role::Join && f.join.as_ref().is_some_and(|j| j.ack_frame == Some(frame)) {
            let failed =
                c.verdicts.iter().any(|v| matches!(v.kind, VerdictKind::HmacFailed { subflow, .. } if subflow == f.sf));
            let hmac = if failed {
                Check::Bad
            } else if c.keys.iter().all(Option::is_some) {
                Check::Ok
            } else {
                Check::NoKeys
            };
            out.push(self.event(ci, sf, frame, ts, ConnEventKind::SubEstablished { hmac }));
        }
        let close = match f.rst {
            Some((fr, dd)) if fr == frame => {
                let by = f.sides[dd];
                let refused = c.verdicts.iter().rev().find_map(|v| match v.kind {
                    VerdictKind::JoinRefused { subflow, by, reason } if subflow == f.sf && v.frame == frame => {
                        Some(SubflowClose::JoinRefused { by, reason })
                    }
                    _ => None,
                });
                Some(refused.unwrap_or(SubflowClose::Reset { by, cause: f.cause.map(|(_, c)| c) }))
            }
            None if f.fin[0].is_some() && f.fin[1].is_some() && f.fin.contains(&Some(frame)) => {
                let removed = match f.cause {
                    Some((_, super::CloseCause::RemoveAddr { by, id })) => Some((by, id)),
                    _ => None,
                };
                Some(SubflowClose::Fin { removed })
            }
            _ => None,
        };
        if let Some(how) = close {
            out.push(self.event(ci, sf, frame, ts, ConnEventKind::SubClosed(how)));
            if !cur.closed && c.flows.iter().all(|&i| fully_closed(&self.flows[i as usize])) {
                cur.closed = true;
                out.push(self.event(ci, None, frame, ts, ConnEventKind::Closed(ConnClose::SubflowsClosed)));
            }
        }
        let now = self.reinjected_bytes(fi);
        if now > reinj {
            out.push(self.event(ci, sf, frame, ts, ConnEventKind::Reinjection { bytes: now - reinj, segments: 1 }));
        }
        self.conns[ci].ev = cur;
        if let Some(log) = self.events.as_mut() {
            for e in out {
                log.push(e);
            }
        }
    }
}

impl EventLog {
    /// Queue an event; a reinjection within a burst is merged into the
    /// burst's event while that is still pending, else dropped.
    fn push(&mut self, e: ConnEvent) {
        if let ConnEventKind::Reinjection { bytes, segments } = e.kind {
            let key = (e.conn, e.subflow.unwrap_or(0));
            let last = self.bursts.insert(key, e.ts);
            if last.is_some_and(|t| e.ts - t < REINJECTION_QUIET) {
                let same = |p: &&mut ConnEvent| {
                    (p.conn, p.subflow) == (e.conn, e.subflow) && matches!(p.kind, ConnEventKind::Reinjection { .. })
                };
                if let Some(p) = self.pending.iter_mut().rev().find(same)
                    && let ConnEventKind::Reinjection { bytes: b, segments: s } = &mut p.kind
                {
                    *b += bytes;
                    *s += segments;
                }
                return;
            }
        }
        self.pending.push(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::packet::{FrameMeta, Timestamp, decode};

    /// The events of a bundled capture, drained every `every` frames (as a
    /// live view drains between polls).
    fn events_of(name: &str, every: u64) -> Vec<ConnEvent> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/captures/pcap").join(name);
        let mut cap = pcap::Capture::from_file(&path).unwrap();
        let lt = cap.get_datalink().0 as u32;
        let mut a = Analyzer::new(Default::default());
        a.enable_events();
        let mut out = Vec::new();
        let mut n = 0;
        while let Ok(p) = cap.next_packet() {
            n += 1;
            let meta = FrameMeta {
                number: n,
                ts: Some(Timestamp::new(p.header.ts.tv_sec, p.header.ts.tv_usec as u32 * 1000)),
                caplen: p.header.caplen,
                len: p.header.len,
                linktype: lt,
            };
            a.observe(&meta, &decode(lt, p.data));
            if n % every == 0 {
                out.extend(a.drain_events());
            }
        }
        out.extend(a.drain_events());
        out
    }

    /// "frame name[ sfN]: reason" per event.
    fn lines(evs: &[ConnEvent]) -> Vec<String> {
        evs.iter()
            .map(|e| {
                let sf = e.subflow.map(|s| format!(" sf{s}")).unwrap_or_default();
                format!("{} {}{sf}: {}", e.frame, e.kind.name(), e.kind)
            })
            .collect()
    }

    fn check(name: &str, every: u64, want: &[&str]) -> Vec<ConnEvent> {
        let evs = events_of(name, every);
        let got = lines(&evs);
        assert_eq!(got, want, "{name}:\n{}", got.join("\n"));
        evs
    }

    #[test]
    fn off_by_default() {
        let mut a = Analyzer::new(Default::default());
        assert!(a.drain_events().is_empty());
        assert!(a.events.is_none());
    }

    #[test]
    fn join_hmacs_reinjection_and_clean_close() {
        let want = [
            "3 created: MPTCP v1",
            "9 established: MPTCP v1",
            "30 sub_established sf2: MP_JOIN HMACs verified",
            "878 reinjection sf1: sends again data sent on another subflow: 4260 bytes in 3 segments",
            "1278 closed: DATA_FIN both ways",
            "1603 sub_closed sf1: FIN both ways",
            "1605 sub_closed sf2: FIN both ways",
        ];
        // Drained every 7 frames: the burst's later segments are merged into
        // its pending event, then dropped until a quiet second.
        let evs = check("two-subflows-join.pcap", 7, &want);
        // The snapshot's view of who is who: the client is local.
        let j = &evs[2];
        assert_eq!(j.token, Some(0xf4558206));
        assert_eq!(j.local, Some("10.77.2.1:53087".parse().unwrap()));
        assert_eq!(j.remote, Some("10.77.1.2:10000".parse().unwrap()));
        assert_eq!((j.id_loc, j.id_rem, j.backup), (Some(2), Some(0), Some(false)));
        assert_eq!(evs[0].local, Some("10.77.1.1:49122".parse().unwrap()));
        assert!(evs.iter().all(|e| !e.kind.is_problem()), "a healthy connection");
        // Drained once at the end, the same events at the same frames.
        let all = events_of("two-subflows-join.pcap", u64::MAX);
        let frames = |v: &[ConnEvent]| v.iter().map(|e| (e.frame, e.kind.name())).collect::<Vec<_>>();
        assert_eq!(frames(&all), frames(&evs));
        assert!(all[1].ts > all[0].ts && all[0].ts > 1.7e9, "capture times");
    }

    #[test]
    fn announce_remove_and_resets() {
        let evs = check(
            "remove-addr.pcap",
            1,
            &[
                "3 created: MPTCP v1",
                "4 announced: ADD_ADDR from the server, HMAC ok",
                "8 sub_established sf2: MP_JOIN HMACs verified",
                "9 established: MPTCP v1",
                "12 sub_established sf3: MP_JOIN HMACs verified",
                "172 removed: REMOVE_ADDR from the server: id 5",
                "186 sub_closed sf2: RST from the server after RM_ADDR id 5 from the server",
                "275 reinjection sf1: sends again data sent on another subflow: 1424 bytes in 1 segment",
                "346 reinjection sf3: sends again data sent on another subflow: 1424 bytes in 1 segment",
                "504 removed: REMOVE_ADDR from the client: id 2",
                "514 sub_closed sf3: RST from the server after RM_ADDR id 2 from the client",
                "1597 closed: DATA_FIN both ways",
                "1642 sub_closed sf1: FIN both ways",
            ],
        );
        let ConnEventKind::Announced { addr, port, id, .. } = &evs[1].kind else { panic!() };
        assert_eq!((*addr, *port, *id), ("10.77.2.2".parse().unwrap(), None, 5));
        assert_eq!((evs[1].id_rem, evs[1].local, evs[1].remote), (Some(5), None, None));
        assert_eq!((evs[5].id_rem, evs[9].id_loc), (Some(5), Some(2)));
    }

    #[test]
    fn checksum_failure_mp_fail_and_reset_reason() {
        check(
            "mp-fail-reset.pcap",
            50,
            &[
                "3 created: MPTCP v1",
                "14 established: MPTCP v1",
                "19 sub_established sf2: MP_JOIN HMACs verified",
                "299 checksum_failed sf1: DSS checksum failed on server data (mapping at dsn 105993)",
                "300 mp_fail sf1: MP_FAIL from the client for dsn 105993",
                "300 sub_closed sf1: RST with MP_TCPRST from the client: reason 6 (middlebox interference)",
                "355 closed: DATA_FIN both ways",
                "360 reinjection sf2: sends again data sent on another subflow: 18460 bytes in 13 segments",
                "584 sub_closed sf2: FIN both ways",
            ],
        );
    }

    #[test]
    fn fallback_fastclose_and_priorities() {
        check(
            "fallback-tcp.pcap",
            1,
            &[
                "2 fallback: the SYN/ACK has no MP_CAPABLE",
                "9 sub_closed sf1: FIN both ways",
                "9 closed: every subflow closed",
            ],
        );
        check(
            "fastclose.pcap",
            1,
            &[
                "3 created: MPTCP v1",
                "9 established: MPTCP v1",
                "30 sub_established sf2: MP_JOIN HMACs verified",
                "90 closed: aborted with MP_FASTCLOSE by the client",
                "90 sub_closed sf1: RST from the client after MP_FASTCLOSE from the client",
                "139 sub_closed sf2: RST from the server after MP_FASTCLOSE from the client",
            ],
        );
        let got = lines(&events_of("backup-prio.pcap", 1));
        assert!(got.contains(&"54 sub_priority sf2: MP_PRIO from the client: backup off".to_string()), "{got:?}");
        assert!(got.contains(&"550 sub_priority sf2: MP_PRIO from the client: backup on".to_string()), "{got:?}");
    }
}
