//! Opening a subflow: the SYN-SENT and SYN-RECEIVED steps of the
//! connection's subflows, MP_CAPABLE keys (RFC 8684 §3.1), the MP_JOIN
//! handshake's checks (§3.2), and Fast Open's part of the initial subflow's
//! handshake (RFC 7413; the mapping of SYN data is in `stack::fastopen`).

use super::*;
use crate::stack::fastopen::Cookie;

/// Fast Open on the initial subflow (RFC 7413, RFC 8684 Appendix B).
#[derive(Debug, Default)]
pub(super) struct Tfo {
    /// Client: no cookie for this server: ask for one in the SYN (§4.1.1).
    request: bool,
    /// Client: the cookie to send with the SYN data, and the MSS the server
    /// announced when it gave it.
    cookie: Option<(Cookie, Option<u16>)>,
    /// Client: bytes the first SYN carried.
    syn_sent: u32,
    /// Server: the cookie our SYN/ACK carries (asked for, or the client's
    /// was not valid).
    synack_cookie: Option<Cookie>,
    /// Server: the SYN's data, delivered first once the connection is
    /// established (the peer's key gives its DSNs).
    syn_data: Option<Vec<u8>>,
}

impl Connection {
    /// Client: set up Fast Open for a new connection. With a cookie the
    /// SYN waits (at most `hold`) for the application's first bytes, and
    /// the connection reports `Connected` now so that the application
    /// writes them, as a TCP_FASTOPEN_CONNECT socket does.
    pub(super) fn fastopen_connect(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        let fo = &ctx.cfg.fastopen;
        if !fo.client {
            return;
        }
        match fo.cache.get(self.remote.ip()) {
            Some(e) => {
                self.tfo.cookie = Some((e.cookie, e.mss));
                self.timers.set(Timer::FastOpenHold, now + fo.hold);
                self.connected_reported = true;
                ctx.events.push_back(Event::Connected(self.handle));
            }
            None => self.tfo.request = true,
        }
    }

    /// Client: the first SYN waits for data while the hold runs.
    pub(super) fn syn_held(&self, j: usize) -> bool {
        self.subflows[j].initial
            && self.role == Role::Client
            && self.timers.is_running(Timer::FastOpenHold)
            && self.snd.tx.is_empty()
    }

    /// The Fast Open option of the initial subflow's SYN or SYN/ACK: the
    /// cookie on a client's first SYN (retransmitted SYNs go without data,
    /// as Linux's), the empty request on each, the cookie of a server's
    /// SYN/ACK.
    pub(super) fn fastopen_option(&self, server: bool, syn_retries: u32) -> Option<TcpOption> {
        let cookie = if server {
            self.tfo.synack_cookie?.as_bytes().to_vec()
        } else if let Some((c, _)) = self.tfo.cookie {
            if syn_retries > 0 {
                return None;
            }
            c.as_bytes().to_vec()
        } else if self.tfo.request {
            Vec::new()
        } else {
            return None;
        };
        Some(TcpOption::FastOpen { cookie: RawBytes::new(&cookie), experimental: false })
    }

    /// Client: the data of the first SYN (RFC 7413 §4.2.1): what the
    /// application wrote, up to the MSS less the SYN's `options` bytes
    /// (the smaller of ours and the one the server announced with the
    /// cookie). It stays at the front of the send ring, unmapped, until
    /// the SYN/ACK says whether the server took it.
    pub(super) fn fastopen_syn_data(&mut self, options: usize) -> Payload {
        if self.tfo.syn_sent > 0 || self.subflows.first().is_none_or(|s| s.tcb.syn_retries > 0) {
            return Payload::None;
        }
        let Some((_, mss)) = self.tfo.cookie else { return Payload::None };
        let room = self.mss_local.min(mss.map_or(usize::MAX, usize::from)).saturating_sub(options);
        let k = self.snd.tx.len().min(room);
        if k == 0 {
            return Payload::None;
        }
        self.tfo.syn_sent = k as u32;
        Payload::Data(self.snd.snd_una, k)
    }

    /// Client: what the SYN/ACK says of Fast Open. A cookie is kept for the
    /// next connection (§4.1.3). The bytes of the SYN it acknowledges were
    /// delivered: they move before the data-level sequence space, where
    /// the server put them (RFC 8684 Appendix B, Linux's
    /// mptcp_fastopen_subflow_synack_set_params), so the first mapped byte
    /// is still IDSN+1; what it does not acknowledge stays at the front of
    /// the ring and goes as the first mapped data.
    fn fastopen_synack(&mut self, i: usize, seg: &Segment<'_>, ctx: &mut Ctx<'_>) {
        if !ctx.cfg.fastopen.client {
            return;
        }
        let server = self.remote.ip();
        let cookie = seg.opts.fast_open.and_then(|c| Cookie::new(&c));
        if let Some(c) = cookie {
            ctx.cfg.fastopen.cache.put(server, c, seg.opts.mss);
        }
        let (sent, taken) = (self.tfo.syn_sent, self.subflows[i].tcb.snd_syn_data);
        if sent > 0 {
            if taken == sent {
                ctx.mib.inc(Counter::TcpFastOpenActive);
            } else {
                ctx.mib.inc(Counter::TcpFastOpenActiveFail);
                if taken == 0 && cookie.is_none() {
                    // It ignores Fast Open: ask again next time.
                    ctx.cfg.fastopen.cache.remove(server);
                }
            }
        }
        if taken > 0 {
            let start = self.snd.snd_una;
            self.snd.tx.renumber(start - u64::from(taken));
            self.snd.tx.release(start);
            self.subflows[i].data_bytes_sent += u64::from(taken);
        }
    }

    /// Server: the endpoint's decision on a SYN's Fast Open option: the
    /// cookie for our SYN/ACK, and whether its data is taken (§4.2.2).
    pub(crate) fn fastopen_accept(&mut self, syn: &Segment<'_>, take_data: bool, cookie: Option<Cookie>) {
        self.tfo.synack_cookie = cookie;
        if take_data && !syn.payload.is_empty() && syn.payload.len() <= self.rcv.rx.capacity() {
            self.subflows[0].tcb.take_syn_data(syn.payload.len() as u32);
            self.subflows[0].data_bytes_received += syn.payload.len() as u64;
            self.tfo.syn_data = Some(syn.payload.to_vec());
        }
    }

    /// Server: a half-open connection holding SYN data (bounded by
    /// `FastOpenConfig::max_pending`).
    pub(crate) fn holds_syn_data(&self) -> bool {
        self.half_open() && self.tfo.syn_data.is_some()
    }

    /// Server, the handshake complete: the SYN's bytes become the first
    /// ones the application reads, just before the receive ring's next DSN
    /// (IDSN+1 with MPTCP, as Linux's __mptcp_fastopen_gen_msk_ackseq maps
    /// them; the start of the stream after a fallback).
    fn deliver_syn_data(&mut self, ctx: &mut Ctx<'_>) {
        let Some(d) = self.tfo.syn_data.take() else { return };
        let next = self.rcv.rx.nxt;
        let start = next - d.len() as u64;
        self.rcv.rx = RxRing::with_pool(self.rcv.rx.capacity(), start, self.rcv.rx.pool().clone());
        self.rcv.rx.write(start, &d);
        self.rcv.last_adv_edge = self.rcv.last_adv_edge.max(next);
        ctx.events.push_back(Event::Readable(self.handle));
    }

    pub(super) fn on_syn_sent(&mut self, now: Instant, i: usize, seg: &Segment<'_>, ctx: &mut Ctx<'_>) {
        let iss = self.subflows[i].tcb.iss;
        // It may acknowledge the SYN's data too (RFC 7413 §4.2.1).
        let syn_data = if self.subflows[i].initial { self.tfo.syn_sent } else { 0 };
        let ack_ok = seg.has(flags::ACK) && seg.ack > iss && seg.ack <= iss + 1u32 + syn_data;
        if seg.has(flags::RST) {
            if ack_ok {
                let reason = tcprst_reason(seg);
                if reason.is_some() {
                    ctx.mib.inc(Counter::MpRstRx);
                }
                if self.subflows[i].initial {
                    self.kill_subflow(i, CloseReason::Refused, ctx, false);
                    self.finish(CloseReason::Refused, ctx);
                } else {
                    self.kill_subflow(i, CloseReason::Reset { mptcp_reason: reason }, ctx, false);
                }
            }
            return;
        }
        if !(seg.has(flags::SYN) && ack_ok) {
            // RFC 9293 §3.10.7.3: an unacceptable ACK gets a RST.
            if seg.has(flags::ACK) && !ack_ok {
                ctx.rsts.push_back(RstOut::reply(seg, None));
            }
            return;
        }
        if self.subflows[i].initial {
            let mpc = seg.opts.mptcp().find_map(|o| match o {
                MptcpOption::MpCapable(m) => Some(*m),
                _ => None,
            });
            self.subflows[i].tcb.on_synack(now, seg);
            self.fastopen_synack(i, seg, ctx);
            if self.mp.enabled && self.mp.fallback.is_none() {
                match mpc {
                    Some(m) if m.version == 1 && m.sender_key.is_some() && !self.mp.syn_mpc_dropped => {
                        let k = Key(m.sender_key.unwrap_or(0));
                        let (t, idsn) = k.token_idsn(Version::V1);
                        self.mp.remote_key = Some(k);
                        self.mp.remote_token = t.0;
                        self.mp.remote_idsn = idsn.0;
                        self.mp.csum |= m.checksum_required();
                        self.rcv.rx = RxRing::with_pool(
                            self.rcv.rx.capacity(),
                            DataSeq(idsn.0.wrapping_add(1)),
                            self.rcv.rx.pool().clone(),
                        );
                        self.rcv.last_adv_edge = self.rcv.rx.nxt;
                        let sf = &mut self.subflows[i];
                        sf.mpc = true;
                        sf.ready = true;
                        ctx.mib.inc(Counter::MpCapableSynAckRx);
                    }
                    _ => {
                        let reason = if self.mp.syn_mpc_dropped {
                            FallbackReason::SynRetransmissions
                        } else {
                            ctx.mib.inc(Counter::MpCapableFallbackSynAck);
                            FallbackReason::NoMpCapableInSynAck
                        };
                        self.rcv.rx = RxRing::with_pool(self.rcv.rx.capacity(), DataSeq(0), self.rcv.rx.pool().clone());
                        self.fallback(reason, ctx);
                    }
                }
            } else {
                self.rcv.rx = RxRing::with_pool(self.rcv.rx.capacity(), DataSeq(0), self.rcv.rx.pool().clone());
                self.fail.fb_rx = Some((self.subflows[i].tcb.rcv_nxt, self.rcv.rx.nxt));
                self.subflows[i].ready = true;
            }
            // The peer's SYN/ACK window (never scaled) bounds our first flight.
            self.snd.snd_edge = self.snd.snd_una + seg.window as u64;
            self.stats.established_at = Some(now);
            if !self.connected_reported {
                ctx.events.push_back(Event::Connected(self.handle));
            }
            self.connected_reported = true;
            let sf = &mut self.subflows[i];
            sf.up_reported = true;
            sf.hs_ack_due = true;
            ctx.events.push_back(Event::SubflowUp { conn: self.handle, subflow: sf.info() });
            return;
        }
        // A join: verify B's HMAC (RFC 8684 §3.2).
        let synack = seg.opts.mptcp().find_map(|o| match o {
            MptcpOption::MpJoin(MpJoin::SynAck { backup, addr_id, hmac, nonce }) => {
                Some((*backup, *addr_id, *hmac, *nonce))
            }
            _ => None,
        });
        let Some((backup, addr_id, hmac, nonce)) = synack else {
            // RFC 8684 §3.2: a SYN/ACK without MP_JOIN: close the subflow.
            self.reset_subflow(i, rst_reason::MPTCP_ERROR, seg, ctx);
            return;
        };
        ctx.mib.inc(Counter::MpJoinSynAckRx);
        if backup {
            ctx.mib.inc(Counter::MpJoinSynAckBackupRx);
        }
        let (Some(rk), Some(js)) = (self.mp.remote_key, self.subflows[i].join) else { return };
        let expect = join_synack_hmac(Version::V1, rk, self.mp.local_key, nonce, js.local_nonce);
        if expect != hmac {
            ctx.mib.inc(Counter::MpJoinSynAckHmacFailure);
            self.reset_subflow(i, rst_reason::MPTCP_ERROR, seg, ctx);
            return;
        }
        let sf = &mut self.subflows[i];
        sf.tcb.on_synack(now, seg);
        sf.tcb.cancel_ack();
        sf.remote_id = addr_id;
        sf.backup_rem = backup;
        sf.joined = true;
        if let Some(j) = sf.join.as_mut() {
            j.remote_nonce = nonce;
            j.ack_pending = true;
            j.ack_due = true;
        }
    }

    pub(super) fn on_syn_received(&mut self, now: Instant, i: usize, seg: &Segment<'_>, ctx: &mut Ctx<'_>) {
        let (iss, irs) = (self.subflows[i].tcb.iss, self.subflows[i].tcb.irs);
        if seg.has(flags::RST) {
            if seg.seq == irs + 1u32 || seg.seq == self.subflows[i].tcb.rcv_nxt {
                let initial = self.subflows[i].initial;
                self.kill_subflow(i, CloseReason::Reset { mptcp_reason: tcprst_reason(seg) }, ctx, false);
                if initial {
                    self.finish(CloseReason::Reset { mptcp_reason: None }, ctx);
                }
            }
            return;
        }
        if seg.has(flags::SYN) {
            if seg.seq == irs {
                self.subflows[i].tcb.resend_syn();
            }
            return;
        }
        if !seg.has(flags::ACK) {
            return;
        }
        if seg.ack != iss + 1u32 {
            ctx.rsts.push_back(RstOut::reply(seg, None));
            return;
        }
        if self.subflows[i].initial {
            if self.mp.active() {
                let mpc = seg.opts.mptcp().find_map(|o| match o {
                    MptcpOption::MpCapable(m) => Some(*m),
                    _ => None,
                });
                match mpc {
                    Some(m) if m.sender_key.is_some() && m.receiver_key == Some(self.mp.local_key.0) => {
                        let k = Key(m.sender_key.unwrap_or(0));
                        self.set_remote_key(k);
                        self.mp.csum |= m.checksum_required();
                        ctx.mib.inc(Counter::MpCapableAckRx);
                        self.subflows[i].ready = true;
                        self.mp.fully_established = true;
                        ctx.mib.inc(Counter::MpCurrEstab);
                        ctx.events.push_back(Event::FullyEstablished(self.handle));
                    }
                    _ => {
                        ctx.mib.inc(Counter::MpCapableFallbackAck);
                        self.rcv.rx = RxRing::with_pool(self.rcv.rx.capacity(), DataSeq(0), self.rcv.rx.pool().clone());
                        self.rcv.last_adv_edge = self.rcv.rx.nxt;
                        self.fallback(FallbackReason::NoMpCapableInAck, ctx);
                        // `fallback` readies only a synchronized subflow;
                        // this one is, as of this ACK (Linux's client sends
                        // the unacknowledged SYN data of a refused Fast Open
                        // cookie this way).
                        self.subflows[i].ready = true;
                    }
                }
            } else {
                self.fail.fb_rx = Some((self.subflows[i].tcb.rcv_nxt, self.rcv.rx.nxt));
                self.subflows[i].ready = true;
            }
            self.subflows[i].tcb.on_handshake_ack(now, seg);
            self.snd.snd_edge = self.snd.snd_una + ((seg.window as u64) << self.subflows[i].tcb.snd_wscale);
            self.stats.established_at = Some(now);
            self.connected_reported = true;
            let listener = self.listener.unwrap_or(self.local);
            if let Some(FallbackReason::NoMpCapableInSyn) = self.mp.fallback {
                ctx.events.push_back(Event::Fallback { conn: self.handle, reason: FallbackReason::NoMpCapableInSyn });
            }
            ctx.events.push_back(Event::Accepted { conn: self.handle, listener });
            let sf = &mut self.subflows[i];
            sf.up_reported = true;
            ctx.events.push_back(Event::SubflowUp { conn: self.handle, subflow: sf.info() });
            if self.mp.fully_established {
                self.pm_start(now, ctx);
            }
            self.deliver_syn_data(ctx);
            // The segment may carry data (MP_CAPABLE data form) and more.
            self.on_synchronized(now, i, seg, ctx);
            return;
        }
        // Third ACK of a join: A's HMAC (RFC 8684 §3.2).
        let hmac = seg.opts.mptcp().find_map(|o| match o {
            MptcpOption::MpJoin(MpJoin::Ack { hmac }) => Some(*hmac),
            _ => None,
        });
        let (Some(rk), Some(js)) = (self.mp.remote_key, self.subflows[i].join) else { return };
        let expect = join_ack_hmac(Version::V1, rk, self.mp.local_key, js.remote_nonce, js.local_nonce);
        if hmac != Some(expect) {
            ctx.mib.inc(Counter::MpJoinAckHmacFailure);
            self.reset_subflow(i, rst_reason::PROHIBITED, seg, ctx);
            // Nothing of it stays.
            self.subflows.remove(i);
            return;
        }
        ctx.mib.inc(Counter::MpJoinAckRx);
        let sf = &mut self.subflows[i];
        sf.tcb.on_handshake_ack(now, seg);
        sf.ready = true;
        sf.joined = true;
        // RFC 8684 §3.2: acknowledge the third ACK at once.
        sf.tcb.request_ack();
        sf.up_reported = true;
        ctx.events.push_back(Event::SubflowUp { conn: self.handle, subflow: sf.info() });
        self.on_synchronized(now, i, seg, ctx);
    }

    /// Server: a pure ACK with MP_CAPABLE on an established initial
    /// subflow is the client repeating its third ACK: it has seen no DSS
    /// from us yet, and the third ACK is reliable until one shows it
    /// arrived (RFC 8684 §3.1). Answer at once with a DATA_ACK (the first
    /// one, in SYN-RECEIVED, needs no answer: data or the client's next
    /// ACK follows it). At most one answer per [`crate::stack::tcp::AckLimiter`]
    /// interval: a peer that repeats it whatever we say gets no ACK loop.
    pub(super) fn answer_repeated_mpc_ack(&mut self, now: Instant, i: usize, seg: &Segment<'_>) {
        if self.role != Role::Server || !self.mp.active() || !seg.payload.is_empty() {
            return;
        }
        let Some(sf) = self.subflows.get_mut(i).filter(|s| s.initial && s.alive()) else { return };
        let repeated = seg.opts.mptcp().any(|o| {
            matches!(o, MptcpOption::MpCapable(m) if m.data_len.is_none() && m.receiver_key == Some(self.mp.local_key.0))
        });
        if repeated && sf.tcb.state.synchronized() && sf.tcb.allow_ack(now) {
            sf.tcb.request_ack();
        }
    }

    pub(super) fn set_remote_key(&mut self, k: Key) {
        let (t, idsn) = k.token_idsn(Version::V1);
        self.mp.remote_key = Some(k);
        self.mp.remote_token = t.0;
        self.mp.remote_idsn = idsn.0;
        let start = DataSeq(idsn.0.wrapping_add(1));
        if self.rcv.rx.nxt != start && self.rcv.rx.readable() == 0 && self.rcv.rx.ooo.is_empty() {
            self.rcv.rx = RxRing::with_pool(self.rcv.rx.capacity(), start, self.rcv.rx.pool().clone());
            self.rcv.last_adv_edge = start;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{SERVER, conn, data, pair};
    use crate::dissect::options::{DssMapping, MptcpOption, WireSeq};
    use crate::stack::fastopen::Cookie;
    use crate::stack::testing::Pair;
    use crate::stack::wire::{self, Segment, flags};
    use crate::stack::{Config, ConnHandle, Counter, Duration, Endpoint, Event};
    use std::net::{IpAddr, SocketAddr};

    fn fo_config(client: bool, server: bool) -> Config {
        let mut c = Config::default();
        c.fastopen.client = client;
        c.fastopen.server = server;
        c
    }

    fn server_ip() -> IpAddr {
        SocketAddr::from(SERVER).ip()
    }

    /// The packets one side sent, parsed.
    fn sent(p: &Pair, client: bool) -> Vec<Segment<'_>> {
        p.log
            .iter()
            .filter(|(c, _)| *c == client)
            .map(|(_, pk)| wire::parse(pk, true).unwrap_or_else(|e| panic!("{e}")))
            .collect()
    }

    fn syns(p: &Pair, port: u16) -> Vec<Segment<'_>> {
        sent(p, true).into_iter().filter(|s| s.has(flags::SYN) && s.src.port() == port).collect()
    }

    fn synacks(p: &Pair, port: u16) -> Vec<Segment<'_>> {
        sent(p, false).into_iter().filter(|s| s.has(flags::SYN) && s.dst.port() == port).collect()
    }

    /// Connect, write `payload` before any poll, run `ms`, read everything
    /// at the server: (client handle, server handle, what the server read).
    fn connect_send(p: &mut Pair, payload: &[u8], ms: u64) -> (ConnHandle, ConnHandle, Vec<u8>) {
        let before: Vec<ConnHandle> = p.s.connections();
        let h = p.c.connect(p.now, None, SocketAddr::from(SERVER)).unwrap_or_else(|e| panic!("connect: {e}"));
        let (mut off, mut got, mut b) = (0, Vec::new(), vec![0u8; 65536]);
        let mut sh = None;
        p.drive_with(p.now + Duration::from_millis(ms), |p| {
            if off < payload.len() {
                off += p.c.send(h, &payload[off..]).unwrap_or(0);
            }
            if sh.is_none() {
                sh = p.s.connections().into_iter().find(|x| !before.contains(x));
            }
            if let Some(s) = sh {
                while let Ok(Some(n)) = p.s.recv(s, &mut b) {
                    got.extend_from_slice(&b[..n]);
                }
            }
        });
        (h, sh.unwrap_or_else(|| panic!("not accepted: {:?}", p.events)), got)
    }

    #[test]
    fn a_cookie_asked_for_is_cached_and_the_next_syn_carries_data_mapped_as_linux_does() {
        let mut p = pair(fo_config(true, true));
        // First connection: no cookie, so the SYN asks for one and carries nothing.
        let (h1, _, got1) = connect_send(&mut p, b"first", 300);
        assert_eq!(got1, b"first");
        let port1 = p.c.info(h1).map(|i| i.local.port()).unwrap_or(0);
        let syn1 = &syns(&p, port1)[0];
        assert_eq!(syn1.opts.fast_open.map(|c| c.len()), Some(0), "an empty option is a request");
        assert!(syn1.payload.is_empty());
        let sa1 = &synacks(&p, port1)[0];
        let cookie = sa1.opts.fast_open.and_then(|c| Cookie::new(&c)).unwrap_or_else(|| panic!("no cookie"));
        assert!(sa1.opts.mptcp().any(|o| matches!(o, MptcpOption::MpCapable(_))), "MP_CAPABLE beside the cookie");
        assert_eq!(p.s.mib().get(Counter::TcpFastOpenCookieReqd), 1);
        let cached = p.c.config().fastopen.cache.get(server_ip()).unwrap_or_else(|| panic!("not cached"));
        assert_eq!(cached.cookie, cookie);

        // Second connection: Connected at once, the first bytes in the SYN.
        let events = p.events.len();
        let big = data(5000);
        let (h2, sh2, got2) = connect_send(&mut p, &big, 300);
        assert!(
            matches!(p.events[events..].first(), Some((true, Event::Connected(h))) if *h == h2),
            "Connected first: {:?}",
            &p.events[events..]
        );
        assert_eq!(got2, big, "byte for byte, SYN data first");
        let connected = p.events_of(true).filter(|e| matches!(e, Event::Connected(h) if *h == h2)).count();
        assert_eq!(connected, 1, "Connected once, not again at the SYN/ACK");
        let port2 = p.c.info(h2).map(|i| i.local.port()).unwrap_or(0);
        let syn2 = syns(&p, port2);
        assert_eq!(syn2.len(), 1);
        assert_eq!(syn2[0].opts.fast_open.map(|c| c.to_vec()), Some(cookie.as_bytes().to_vec()));
        let k = syn2[0].payload.len();
        assert!(k > 1000 && syn2[0].payload == &big[..k], "{k} bytes in the SYN");
        let sa2 = &synacks(&p, port2)[0];
        assert_eq!(sa2.ack, syn2[0].seq + 1u32 + k, "the SYN/ACK acknowledges the data");
        assert!(sa2.opts.fast_open.is_none(), "no new cookie for a good one");
        assert_eq!(p.s.mib().get(Counter::TcpFastOpenPassive), 1);
        assert_eq!(p.c.mib().get(Counter::TcpFastOpenActive), 1);
        // RFC 8684 Appendix B as Linux does it: the next byte is DSN
        // IDSN+1 at relative subflow sequence 1, right after the SYN data.
        let c = conn(&p.c, h2);
        let idsn1 = c.mp.local_key.token_idsn(crate::dissect::crypto::Version::V1).1.0.wrapping_add(1);
        let first_map = sent(&p, true)
            .into_iter()
            .filter(|s| s.src.port() == port2 && !s.payload.is_empty() && !s.has(flags::SYN))
            .find_map(|s| {
                s.opts.mptcp().find_map(|o| match o {
                    MptcpOption::Dss(d) => d.mapping.map(|m| (s.seq, m)),
                    MptcpOption::MpCapable(m) if m.data_len.is_some() => {
                        Some((s.seq, DssMapping { dsn: WireSeq::U64(idsn1), ssn: 1, data_len: 0, checksum: None }))
                    }
                    _ => None,
                })
            });
        let (seq, m) = first_map.unwrap_or_else(|| panic!("no mapped data"));
        assert_eq!(seq, syn2[0].seq + 1u32 + k);
        assert_eq!((m.dsn, m.ssn), (WireSeq::U64(idsn1), 1));
        // The server's DATA_ACK does not count the SYN's bytes.
        let s = conn(&p.s, sh2);
        assert_eq!(s.rcv.rx.nxt.0, idsn1.wrapping_add((big.len() - k) as u64));
        // And back the other way.
        assert_eq!(p.s.send(sh2, b"reply"), Ok(5));
        p.drive(p.now + Duration::from_millis(100));
        let mut b = [0u8; 16];
        assert_eq!(p.c.recv(h2, &mut b), Ok(Some(5)));
        assert_eq!(&b[..5], b"reply");
    }

    #[test]
    fn a_bad_cookie_gets_a_normal_handshake_a_new_cookie_and_the_data_again() {
        let mut p = pair(fo_config(true, true));
        let forged = Cookie::new(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap_or_else(|| panic!());
        p.c.config().fastopen.cache.put(server_ip(), forged, None);
        let d = data(3000);
        let (h, _, got) = connect_send(&mut p, &d, 300);
        assert_eq!(got, d, "the SYN's bytes sent again after the handshake");
        let port = p.c.info(h).map(|i| i.local.port()).unwrap_or(0);
        let syn = &syns(&p, port)[0];
        assert!(!syn.payload.is_empty());
        let sa = &synacks(&p, port)[0];
        assert_eq!(sa.ack, syn.seq + 1u32, "only the SYN acknowledged");
        let fresh = sa.opts.fast_open.and_then(|c| Cookie::new(&c)).unwrap_or_else(|| panic!("a new cookie"));
        assert_ne!(fresh, forged);
        assert_eq!(p.s.mib().get(Counter::TcpFastOpenPassiveFail), 1);
        assert_eq!(p.s.mib().get(Counter::TcpFastOpenPassive), 0);
        assert_eq!(p.c.mib().get(Counter::TcpFastOpenActiveFail), 1);
        assert_eq!(p.c.config().fastopen.cache.get(server_ip()).map(|e| e.cookie), Some(fresh));
        assert!(p.c.info(h).is_some_and(|i| i.mptcp), "still MPTCP");
        // The resent bytes start the data level: DSN IDSN+1 at subflow sequence 1.
        let first = sent(&p, true)
            .into_iter()
            .find(|s| s.src.port() == port && !s.payload.is_empty() && !s.has(flags::SYN))
            .unwrap_or_else(|| panic!("no data after the handshake"));
        assert_eq!(first.seq, syn.seq + 1u32, "the same bytes at the same place");
    }

    #[test]
    fn a_lost_syn_with_data_is_resent_without_and_the_data_follows_the_handshake() {
        let mut p = pair(fo_config(true, true));
        let (_, _, _) = connect_send(&mut p, b"get a cookie", 300);
        let h = p.c.connect(p.now, None, SocketAddr::from(SERVER)).unwrap_or_else(|e| panic!("{e}"));
        let d = data(2000);
        assert_eq!(p.c.send(h, &d), Ok(2000));
        p.flush();
        assert_eq!(p.lose(|w| w.to_server), 1, "the SYN with data");
        let start = p.events.len();
        p.drive(p.now + Duration::from_millis(1500));
        let port = p.c.info(h).map(|i| i.local.port()).unwrap_or(0);
        let s = syns(&p, port);
        assert_eq!(s.len(), 2);
        assert!(!s[0].payload.is_empty() && s[1].payload.is_empty(), "the SYN goes again without data");
        assert!(s[1].opts.fast_open.is_none());
        let sh = p.events[start..]
            .iter()
            .find_map(|(c, e)| match e {
                Event::Accepted { conn, .. } if !c => Some(*conn),
                _ => None,
            })
            .unwrap_or_else(|| panic!("not accepted"));
        let mut got = Vec::new();
        let mut b = vec![0u8; 4096];
        while let Ok(Some(n)) = p.s.recv(sh, &mut b) {
            got.extend_from_slice(&b[..n]);
        }
        assert_eq!(got, d);
        assert_eq!(p.c.mib().get(Counter::TcpFastOpenActiveFail), 1);
    }

    #[test]
    fn a_server_without_fast_open_gets_a_normal_handshake_and_the_cookie_is_forgotten() {
        let cfg = fo_config(true, false);
        let mut c = Endpoint::new(cfg, 11);
        let mut s = Endpoint::new(Config::default(), 22);
        assert!(c.add_address(IpAddr::from([10, 0, 1, 1]), Default::default()).is_ok());
        assert!(s.add_address(server_ip(), Default::default()).is_ok());
        assert!(s.listen(SocketAddr::from(([0, 0, 0, 0], 80))).is_ok());
        let mut p = Pair::new(c, s).with_delay(Duration::from_millis(5));
        // Asking gets nothing.
        let (h, _, got) = connect_send(&mut p, b"plain", 300);
        assert_eq!(got, b"plain");
        assert!(p.c.config().fastopen.cache.get(server_ip()).is_none());
        let port = p.c.info(h).map(|i| i.local.port()).unwrap_or(0);
        assert!(synacks(&p, port)[0].opts.fast_open.is_none());
        // A cookie from before: the data goes in the SYN, is ignored, goes again.
        p.c.config().fastopen.cache.put(server_ip(), Cookie::new(&[9; 8]).unwrap_or_else(|| panic!()), None);
        let d = data(1200);
        let (h, _, got) = connect_send(&mut p, &d, 300);
        assert_eq!(got, d);
        assert!(p.c.info(h).is_some_and(|i| i.mptcp), "MPTCP, no fallback");
        assert_eq!(p.c.mib().get(Counter::TcpFastOpenActiveFail), 1);
        assert!(p.c.config().fastopen.cache.get(server_ip()).is_none(), "asked for again next time");
    }

    #[test]
    fn syn_data_is_ignored_when_the_syn_queue_answers_with_syn_cookies() {
        let mut cfg = fo_config(true, true);
        cfg.syn_backlog = 0;
        let mut p = pair(cfg);
        let (_, _, got) = connect_send(&mut p, b"ask", 300);
        assert_eq!(got, b"ask");
        // Stateless SYN/ACKs carry no Fast Open cookie: nothing to use.
        assert!(p.c.config().fastopen.cache.get(server_ip()).is_none());
        p.c.config().fastopen.cache.put(server_ip(), p.s.fastopen_cookie_for(p.now, IpAddr::from([10, 0, 1, 1])), None);
        let d = data(900);
        let (_, _, got) = connect_send(&mut p, &d, 300);
        assert_eq!(got, d);
        assert_eq!(p.s.mib().get(Counter::TcpFastOpenPassive), 0, "no state, no SYN data");
        assert!(p.s.mib().get(Counter::SyncookiesRecv) >= 2);
    }

    #[test]
    fn syn_data_is_taken_by_at_most_max_pending_half_open_connections() {
        let mut cfg = fo_config(true, true);
        cfg.fastopen.max_pending = 1;
        let mut p = pair(cfg);
        let cookie = p.s.fastopen_cookie_for(p.now, IpAddr::from([10, 0, 1, 1]));
        p.c.config().fastopen.cache.put(server_ip(), cookie, None);
        // The client's SYNs reach the server, nothing else does: the
        // connections stay half-open.
        p.keep = |client, pk| !client || wire::parse(pk, true).is_ok_and(|s| s.has(flags::SYN));
        for _ in 0..2 {
            let h = p.c.connect(p.now, None, SocketAddr::from(SERVER)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.c.send(h, &data(500)), Ok(500));
        }
        p.drive(p.now + Duration::from_millis(50));
        assert_eq!(p.s.stats().half_open, 2);
        assert_eq!(p.s.mib().get(Counter::TcpFastOpenPassive), 1);
        assert_eq!(p.s.mib().get(Counter::TcpFastOpenListenOverflow), 1);
        let taken = sent(&p, false)
            .into_iter()
            .filter(|s| s.has(flags::SYN))
            .filter(|sa| syns(&p, sa.dst.port()).first().is_some_and(|syn| sa.ack == syn.seq + 1u32 + 500usize))
            .count();
        assert_eq!(taken, 1, "one SYN/ACK acknowledges the data, the other only the SYN");
    }

    #[test]
    fn a_third_ack_without_mp_capable_falls_back_and_data_flows_both_ways() {
        use crate::dissect::options::{MpCapable, TcpOption};
        use crate::seq::SubflowSeq;
        use crate::stack::wire::SegmentRepr;
        let mut p = pair(Config::default());
        let (cli, srv) = (SocketAddr::from(([10, 0, 1, 1], 40000)), SocketAddr::from(SERVER));
        let packet = |seq: u32, ack: u32, fl: u8, opts: &[TcpOption], data: &[u8]| {
            let repr = SegmentRepr {
                src: cli,
                dst: srv,
                seq: SubflowSeq(seq),
                ack: SubflowSeq(ack),
                flags: fl,
                window: 65535,
                options: opts,
            };
            let mut b = vec![0u8; 100 + data.len()];
            let n = wire::emit(&repr, data.len(), &mut b, true, |d| d.copy_from_slice(data))
                .unwrap_or_else(|e| panic!("{e}"));
            b.truncate(n);
            b
        };
        let mpc = MpCapable { version: 1, flags: MpCapable::FLAG_HMAC_SHA, ..Default::default() };
        let syn = packet(7, 0, flags::SYN, &[TcpOption::Mss(1460), TcpOption::Mptcp(MptcpOption::MpCapable(mpc))], &[]);
        p.s.handle_packet(p.now, &syn);
        p.flush();
        let iss = synacks(&p, 40000)[0].seq;
        // The handshake's ACK carries data and no MP_CAPABLE (RFC 8684 §3.1: fall back).
        p.s.handle_packet(p.now, &packet(8, iss.0.wrapping_add(1), flags::ACK | flags::PSH, &[], b"hello"));
        p.flush();
        let sh = p.accepted().unwrap_or_else(|| panic!("not accepted: {:?}", p.events));
        assert!(p.events_of(false).any(|e| matches!(e, Event::Fallback { .. })));
        let mut b = [0u8; 16];
        assert_eq!(p.s.recv(sh, &mut b), Ok(Some(5)));
        assert_eq!(&b[..5], b"hello");
        assert_eq!(p.s.send(sh, b"world"), Ok(5));
        p.flush();
        let out = sent(&p, false);
        assert!(out.iter().any(|s| s.payload == b"world"), "the server sends after the fallback");
    }
}
