//! The verdicts the analysis must reach on the kernel captures, checked
//! against facts established independently of it (testdata/captures/README.md
//! and the packets themselves).

mod analysis_util;

use analysis_util::*;
use mptcp_tools::dissect::analysis::{
    CloseCause, CsumStatus, Event, FallbackReason, Report, Side, TcpFlowKind, VerdictKind,
};
use mptcp_tools::dissect::packet::decode;

type Frames = Vec<(mptcp_tools::dissect::packet::FrameMeta, Vec<u8>)>;

fn run(name: &str) -> (Frames, Vec<mptcp_tools::dissect::analysis::PacketNote>, Report) {
    let f = frames(&testdata().join("captures/pcap").join(format!("{name}.pcap")));
    let (n, r) = analyse(&f);
    (f, n, r)
}

#[test]
fn mp_fail_reset_flags_exactly_the_corrupted_segment() {
    let (frames, notes, report) = run("mp-fail-reset");
    // The middlebox corrupted the 50th server-to-client data segment on path 1.
    let corrupted = frames
        .iter()
        .filter(|(m, d)| {
            let p = decode(m.linktype, d);
            let (ip, t) = (p.ip.unwrap(), p.tcp.unwrap());
            ip.src.to_string() == "10.77.1.2" && ip.dst.to_string() == "10.77.1.1" && t.payload_len > 0
        })
        .nth(49)
        .map(|(m, _)| m.number)
        .unwrap();
    // Exactly one mapping fails its DSS checksum; every other one verifies.
    let bad: Vec<u64> = notes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.events.iter().any(|e| matches!(e, Event::Checksum { status: CsumStatus::Bad, .. })))
        .map(|(i, _)| i as u64 + 1)
        .collect();
    assert_eq!(bad.len(), 1, "{bad:?}");
    let c = &report.connections[0];
    assert_eq!(c.csum.bad, 1);
    let failed: Vec<_> = c.verdicts.iter().filter(|v| matches!(v.kind, VerdictKind::ChecksumFailed { .. })).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].kind,
        VerdictKind::ChecksumFailed { subflow: 1, from: Side::Server, dsn_rel: Some(105993), corrupt: Some(corrupted) }
    );
    // The failed mapping covers the corrupted segment, and the client's
    // MP_FAIL names it.
    let n = &notes[corrupted as usize - 1];
    let map_frame = n.map_frame.unwrap();
    assert!(notes[bad[0] as usize - 1].events.contains(&Event::Checksum { status: CsumStatus::Bad, map_frame }));
    assert!(
        c.verdicts
            .iter()
            .any(|v| v.kind == VerdictKind::MpFail { subflow: 1, by: Side::Client, dsn_rel: Some(105993) })
    );
    let sf1 = &c.subflows[0];
    assert_eq!(sf1.end.rst_signal, Some(CloseCause::TcpRst { by: Side::Client, flags: 0, reason: 6 }));
    // The other capture with checksums has none bad.
    let (_, _, r) = run("checksum");
    assert_eq!(r.connections[0].csum.bad, 0);
    assert!(r.connections[0].csum.ok > 10);
}

#[test]
fn every_join_and_add_addr_hmac_of_the_kernel_verifies() {
    for name in [
        "two-subflows-join",
        "add-addr-signal",
        "remove-addr",
        "backup-prio",
        "fastclose",
        "checksum",
        "ipv6-two-subflows",
        "mp-fail-reset",
    ] {
        let (_, _, r) = run(name);
        let h = r.connections[0].hmac;
        assert!(h.ok >= 2 && h.bad == 0 && h.unverified == 0, "{name}: {h:?}");
    }
}

#[test]
fn fallback_and_plain_tcp_verdicts() {
    let (_, _, r) = run("fallback-tcp");
    let v = r.connections[0].fallback().unwrap();
    assert_eq!((v.frame, &v.kind), (2, &VerdictKind::Fallback(FallbackReason::SynAckWithoutMpCapable)));
    let f = frames(&testdata().join("captures/tcpdump-tests/mptcp-dss-oobr.pcap"));
    let (_, r) = analyse(&f);
    assert_eq!(r.tcp_flows[0].kind, TcpFlowKind::Plain);
}

#[test]
fn removals_fast_close_and_backup() {
    let (_, _, r) = run("remove-addr");
    let v: Vec<_> = r.connections[0].verdicts.iter().map(|v| (v.frame, v.kind.clone())).collect();
    assert!(v.contains(&(
        172,
        VerdictKind::SubflowClosed { subflow: 2, cause: CloseCause::RemoveAddr { by: Side::Server, id: 5 } }
    )));
    assert!(v.contains(&(
        504,
        VerdictKind::SubflowClosed { subflow: 3, cause: CloseCause::RemoveAddr { by: Side::Client, id: 2 } }
    )));
    let (_, _, r) = run("fastclose");
    let c = &r.connections[0];
    assert!(c.verdicts.iter().any(|v| v.kind == VerdictKind::FastClose { by: Side::Client }));
    assert!(c.subflows.iter().all(|s| matches!(s.end.cause, Some((_, CloseCause::FastClose { by: Side::Client })))));
    let (_, notes, r) = run("backup-prio");
    // The join asked for backup; MP_PRIO turned it off, then on again.
    assert_eq!(r.connections[0].subflows[1].backup, [true, false]);
    let prios: Vec<bool> = notes
        .iter()
        .flat_map(|n| n.events.iter())
        .filter_map(|e| match e {
            Event::Backup { on } => Some(*on),
            _ => None,
        })
        .collect();
    assert_eq!(prios, vec![false, true]);
}

#[test]
fn reinjections_are_counted_where_the_kernel_made_them() {
    let (_, notes, r) = run("two-subflows-join");
    let n = notes.iter().filter(|n| n.events.iter().any(|e| matches!(e, Event::Reinjection { .. }))).count();
    assert!(n >= 16, "{n}");
    let c = &r.connections[0];
    assert_eq!(c.data_bytes, [524288, 524288]);
    let reinjected: u64 = c.subflows.iter().map(|s| s.reinjected[1]).sum();
    assert!(reinjected > 0);
}

/// A capture replayed after itself (`mergecap -a`, as the benchmark does):
/// the same 4-tuples, ISNs and keys come back after the first connection
/// closed. That is a second connection, not a retransmission of the first.
#[test]
fn a_replayed_connection_is_a_new_connection() {
    let once = frames(&testdata().join("captures/pcap/two-subflows-join.pcap"));
    let mut twice = once.clone();
    for (meta, data) in &once {
        let mut m = *meta;
        m.number += once.len() as u64;
        twice.push((m, data.clone()));
    }
    let (_, single) = analyse(&once);
    let (_, double) = analyse(&twice);
    assert_eq!(single.connections.len(), 1);
    assert_eq!(double.connections.len(), 2, "the replay is a second MPTCP connection");
    for c in &double.connections {
        assert_eq!(c.data_bytes, single.connections[0].data_bytes);
        assert_eq!(c.subflows.len(), single.connections[0].subflows.len());
        for (s, s1) in c.subflows.iter().zip(&single.connections[0].subflows) {
            assert_eq!(s.retransmitted, s1.retransmitted, "nothing of the replay counts as retransmitted");
        }
    }
}
