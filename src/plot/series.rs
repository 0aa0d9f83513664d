//! The series behind the plots, taken from the analysis as frames go by
//! (pure: frames and their [`PacketNote`]s in, numbers out). Times are
//! seconds since the capture's first timestamped frame; data sequence
//! numbers are relative to the sender's IDSN (RFC 8684 §3.3.1), as
//! mptcp-dump prints them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::dissect::analysis::{ConnReport, Event, PacketNote, Report, Side};
use crate::dissect::options::MpTcpRst;
use crate::dissect::packet::{FrameMeta, Timestamp};

/// One data segment at the data level.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataPoint {
    pub t: f64,
    pub frame: u64,
    pub subflow: u32,
    /// Relative DSN of the first byte.
    pub dsn: u64,
    pub len: u32,
    /// These bytes had been sent on another subflow first.
    pub reinjection: bool,
}

/// A DATA_ACK, sent by the receiver of the plotted data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AckPoint {
    pub t: f64,
    pub frame: u64,
    pub subflow: u32,
    pub ack: u64,
}

/// Something that happened to a subflow or the connection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Marker {
    pub t: f64,
    pub frame: u64,
    pub label: String,
}

/// One subflow, as the legend names it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubflowInfo {
    pub id: u32,
    pub label: String,
}

/// One connection's data in one direction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConnSeries {
    pub conn: u32,
    /// The side that sent the plotted data ("client" or "server").
    pub sender: &'static str,
    pub subflows: Vec<SubflowInfo>,
    pub data: Vec<DataPoint>,
    pub acks: Vec<AckPoint>,
    pub markers: Vec<Marker>,
}

#[derive(Default)]
struct Acc {
    data: [Vec<DataPoint>; 2],
    acks: [Vec<AckPoint>; 2],
    markers: Vec<Marker>,
}

/// Collects the series of every connection from the frames and notes.
#[derive(Default)]
pub struct Collector {
    t0: Option<Timestamp>,
    last_t: f64,
    conns: BTreeMap<u32, Acc>,
    /// The time of each frame, by number, for the events the report names
    /// by frame (joins, announcements, removals).
    times: Vec<f32>,
}

fn idx(s: Side) -> usize {
    match s {
        Side::Client => 0,
        Side::Server => 1,
    }
}

impl Collector {
    pub fn new() -> Collector {
        Collector::default()
    }

    /// Take one frame and what the analysis said of it.
    pub fn add(&mut self, meta: &FrameMeta, note: &PacketNote) {
        let t = match meta.ts {
            Some(ts) => {
                let t0 = *self.t0.get_or_insert(ts);
                (ts.as_nanos() - t0.as_nanos()) as f64 / 1e9
            }
            None => self.last_t,
        };
        self.last_t = t;
        let n = meta.number as usize;
        if self.times.len() < n {
            self.times.resize(n, t as f32);
        }
        if n > 0 {
            self.times[n - 1] = t as f32;
        }
        let (Some(conn), Some(from)) = (note.conn, note.from) else { return };
        let subflow = note.subflow.unwrap_or(0);
        let acc = self.conns.entry(conn).or_default();
        if let Some(dsn) = note.dsn_rel
            && note.dsn_len > 0
        {
            let reinjection = note.events.iter().any(|e| matches!(e, Event::Reinjection { .. }));
            acc.data[idx(from)].push(DataPoint { t, frame: meta.number, subflow, dsn, len: note.dsn_len, reinjection });
        }
        if let Some(ack) = note.data_ack_rel {
            acc.acks[idx(from)].push(AckPoint { t, frame: meta.number, subflow, ack });
        }
        for e in &note.events {
            let label = match e {
                Event::Fallback(r) => format!("fallback: {r}"),
                Event::MpFail { .. } => format!("MP_FAIL on sf {subflow}"),
                Event::TcpRst { reason, .. } => format!("RST sf {subflow}: {}", MpTcpRst::reason_name(*reason)),
                Event::Removes { subflows } => format!("subflows {subflows:?} removed"),
                Event::Backup { on: true } => format!("MP_PRIO sf {subflow} backup"),
                Event::Backup { on: false } => format!("MP_PRIO sf {subflow} not backup"),
                Event::FastClose { .. } => "MP_FASTCLOSE".to_string(),
                Event::JoinRefused => format!("join sf {subflow} refused"),
                _ => continue,
            };
            acc.markers.push(Marker { t, frame: meta.number, label });
        }
    }

    fn time_of(&self, frame: u64) -> Option<f64> {
        let i = usize::try_from(frame).ok()?.checked_sub(1)?;
        self.times.get(i).map(|&t| f64::from(t))
    }

    /// One series per connection of the report: the direction that carried
    /// more data, with the subflows' names and the report's events.
    pub fn finish(self, report: &Report) -> Vec<ConnSeries> {
        let mut out = Vec::new();
        for c in &report.connections {
            let Some(acc) = self.conns.get(&c.id) else { continue };
            let sender = if c.data_bytes[1] > c.data_bytes[0] { Side::Server } else { Side::Client };
            let mut markers = acc.markers.clone();
            self.report_markers(c, &mut markers);
            markers.sort_by_key(|m| m.frame);
            out.push(ConnSeries {
                conn: c.id,
                sender: if sender == Side::Client { "client" } else { "server" },
                subflows: c
                    .subflows
                    .iter()
                    .map(|s| {
                        let ids = match (s.addr_ids[0], s.addr_ids[1]) {
                            (Some(a), Some(b)) => format!(" ids {a}/{b}"),
                            _ => String::new(),
                        };
                        let backup = if s.backup.iter().any(|&b| b) { " backup" } else { "" };
                        SubflowInfo { id: s.id, label: format!("sf {} {} > {}{ids}{backup}", s.id, s.client, s.server) }
                    })
                    .collect(),
                data: acc.data[idx(sender)].clone(),
                // The receiver's DATA_ACKs acknowledge the sender's data.
                acks: acc.acks[idx(sender.other())].clone(),
                markers,
            });
        }
        out
    }

    fn report_markers(&self, c: &ConnReport, markers: &mut Vec<Marker>) {
        for s in c.subflows.iter().filter(|s| s.id > 1) {
            if let Some(f) = s.syn_frame
                && let Some(t) = self.time_of(f)
            {
                markers.push(Marker { t, frame: f, label: format!("join sf {}", s.id) });
            }
        }
        for a in &c.announced {
            if let Some(t) = self.time_of(a.frame) {
                let port = a.port.map(|p| format!(" port {p}")).unwrap_or_default();
                markers.push(Marker { t, frame: a.frame, label: format!("ADD_ADDR id {} {}{port}", a.id, a.addr) });
            }
        }
        for r in &c.removed {
            if let Some(t) = self.time_of(r.frame) {
                markers.push(Marker { t, frame: r.frame, label: format!("RM_ADDR ids {:?}", r.ids) });
            }
        }
    }
}

/// Goodput over time: new data bytes (reinjections left out) per window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Throughput {
    pub conn: u32,
    /// Window length, seconds.
    pub window: f64,
    /// Start of each window, seconds.
    pub t: Vec<f64>,
    /// Per subflow (same order as the connection's subflows), bits per
    /// second in each window.
    pub subflows: Vec<(u32, Vec<f64>)>,
    pub total: Vec<f64>,
}

/// The throughput of `s` in windows of `window` seconds (0: a fiftieth of
/// the connection's duration, at least a millisecond).
pub fn throughput(s: &ConnSeries, window: f64) -> Throughput {
    let end = s.data.iter().map(|p| p.t).fold(0.0f64, f64::max);
    let window = if window > 0.0 { window } else { (end / 50.0).max(0.001) };
    let n = ((end / window).floor() as usize + 1).min(100_000);
    let mut per: Vec<(u32, Vec<f64>)> = s.subflows.iter().map(|sf| (sf.id, vec![0.0; n])).collect();
    for p in s.data.iter().filter(|p| !p.reinjection) {
        let i = ((p.t / window) as usize).min(n - 1);
        if let Some((_, v)) = per.iter_mut().find(|(id, _)| *id == p.subflow) {
            v[i] += f64::from(p.len) * 8.0 / window;
        }
    }
    let total = (0..n).map(|i| per.iter().map(|(_, v)| v[i]).sum()).collect();
    Throughput { conn: s.conn, window, t: (0..n).map(|i| i as f64 * window).collect(), subflows: per, total }
}
