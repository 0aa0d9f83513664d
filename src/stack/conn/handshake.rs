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
        let ack_ok = seg.has(flags::ACK) && seg.ack >= iss + 1u32 && seg.ack <= iss + 1u32 + syn_data;
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
