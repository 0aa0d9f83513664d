//! The path manager: local and remote addresses, ADD_ADDR / REMOVE_ADDR
//! (RFC 8684 §3.4), the joins a client opens (§3.2) and a server accepts,
//! within the endpoint's limits; backup flags (MP_PRIO, §3.3.8).

use super::*;

/// Path-manager state of a connection.
#[derive(Debug, Default)]
pub(super) struct Pm {
    /// ADD_ADDR to send, and those sent waiting for their echo: (option, next send time, tries).
    pub(super) announce: Vec<(AddAddr, Option<Instant>, u32)>,
    /// Echoes to send.
    pub(super) echo: VecDeque<AddAddr>,
    /// REMOVE_ADDR ids to send.
    pub(super) remove: Vec<u8>,
    /// Addresses the peer announced: (id, address).
    pub(super) remote_addrs: Vec<(u8, SocketAddr)>,
    pub(super) add_addr_accepted: u8,
    pub(super) joins_created: u8,
    pub(super) started: bool,
    pub(super) signals_sent: u8,
}

/// ADD_ADDR echoes waiting to be sent, at most.
const MAX_PENDING_ECHOES: usize = 8;

/// Addresses the peer announced that a connection remembers, at most.
const MAX_REMOTE_ADDRS: usize = 16;

/// Address IDs one REMOVE_ADDR carries: 40 bytes of option space, less
/// the timestamps (12) and an MP_CAPABLE ACK (20), less its own 3 bytes.
pub(super) const REMOVE_ADDR_IDS_PER_ACK: usize = 5;

impl Connection {
    /// Fully established: announce `signal` addresses, open `subflow` ones.
    pub(super) fn pm_start(&mut self, now: Instant, ctx: &mut Ctx<'_>) {
        if self.pm.started || !self.mp.active() {
            return;
        }
        self.pm.started = true;
        let primary = self.local.ip();
        for a in ctx.addrs {
            if a.flags.signal && a.addr != primary && a.addr.is_ipv4() == primary.is_ipv4() {
                let port = a.flags.port;
                let rk = self.mp.remote_key.unwrap_or_default();
                let hmac = add_addr_hmac(self.mp.local_key, rk, a.id, a.addr, port);
                self.pm.announce.push((
                    AddAddr { v0: false, echo: false, addr_id: a.id, addr: a.addr, port, hmac: Some(hmac) },
                    Some(now),
                    0,
                ));
            }
        }
        if self.role == Role::Client {
            let subflow_addrs: Vec<LocalAddr> = ctx
                .addrs
                .iter()
                .filter(|a| a.flags.subflow && a.addr != primary && a.addr.is_ipv4() == self.remote.is_ipv4())
                .copied()
                .collect();
            for a in subflow_addrs {
                if self.pm.joins_created >= self.limits.subflows {
                    break;
                }
                self.open_join(now, a, self.remote, ctx);
            }
        }
    }

    /// Open a subflow with MP_JOIN from `from` to `to` (RFC 8684 §3.2).
    pub(super) fn open_join(&mut self, now: Instant, from: LocalAddr, to: SocketAddr, ctx: &mut Ctx<'_>) {
        let mut port = 0;
        for _ in 0..64 {
            let p = 32768 + (ctx.rng.next_u32() % 28232) as u16;
            if !ctx.tuple_in_use(SocketAddr::new(from.addr, p), to) {
                port = p;
                break;
            }
        }
        if port == 0 {
            return;
        }
        let local = SocketAddr::new(from.addr, port);
        let iss = ctx.isn(now, local, to);
        let ts_off = ctx.rng.next_u32();
        let tcb = Tcb::client(local, to, iss, ts_off, &self.tcb_params, ctx.cfg.cc.build(self.tcb_params.mss), now);
        let id = self.next_sf_id;
        self.next_sf_id += 1;
        let mut sf = Subflow::new(id, tcb, false);
        sf.local_id = from.id;
        sf.backup_loc = from.flags.backup;
        sf.join_requested = true;
        sf.join =
            Some(JoinState { local_nonce: ctx.rng.next_u32(), remote_nonce: 0, ack_pending: false, ack_due: false });
        self.subflows.push(sf);
        self.stats.subflows_total += 1;
        self.pm.joins_created += 1;
        ctx.endpoint_events.push(EndpointEvent::NewTuple { local, remote: to, subflow: id });
        ctx.mib.inc(Counter::MpJoinSynTx);
        ctx.mib.inc(Counter::TcpActiveOpens);
    }

    /// A SYN with MP_JOIN for this connection (we are B, RFC 8684 §3.2).
    /// Returns false when it is refused (the caller sends the RST).
    pub fn accept_join(
        &mut self,
        now: Instant,
        syn: &Segment<'_>,
        join: (bool, u8, u32),
        ctx: &mut Ctx<'_>,
    ) -> Result<(), u8> {
        let (backup, addr_id, nonce) = join;
        let joins = self.subflows.iter().filter(|s| !s.initial && s.alive()).count();
        if !self.mp.active()
            || !self.mp.fully_established
            || self.closed.is_some()
            || self.fin.app_closed && self.fin.dfin_acked
        {
            return Err(rst_reason::MPTCP_ERROR);
        }
        if joins >= self.limits.subflows as usize {
            ctx.mib.inc(Counter::MpJoinRejected);
            return Err(rst_reason::PROHIBITED);
        }
        let iss = ctx.isn(now, syn.dst, syn.src);
        let ts_off = ctx.rng.next_u32();
        let tcb = Tcb::server(
            syn.dst,
            syn.src,
            iss,
            ts_off,
            &self.tcb_params,
            ctx.cfg.cc.build(self.tcb_params.mss),
            syn,
            now,
        );
        let id = self.next_sf_id;
        self.next_sf_id += 1;
        let mut sf = Subflow::new(id, tcb, false);
        let local = ctx.addrs.iter().find(|a| a.addr == syn.dst.ip()).copied();
        sf.local_id = if syn.dst.ip() == self.local.ip() { 0 } else { local.map_or(0, |a| a.id) };
        sf.backup_loc = local.is_some_and(|a| a.flags.backup);
        sf.remote_id = addr_id;
        sf.backup_rem = backup;
        sf.joined = true;
        sf.join = Some(JoinState {
            local_nonce: ctx.rng.next_u32(),
            remote_nonce: nonce,
            ack_pending: false,
            ack_due: false,
        });
        self.subflows.push(sf);
        self.stats.subflows_total += 1;
        ctx.endpoint_events.push(EndpointEvent::NewTuple { local: syn.dst, remote: syn.src, subflow: id });
        ctx.mib.inc(Counter::TcpPassiveOpens);
        Ok(())
    }

    pub(super) fn on_add_addr(&mut self, now: Instant, a: AddAddr, ctx: &mut Ctx<'_>) {
        if a.echo {
            ctx.mib.inc(Counter::EchoAdd);
            self.pm.announce.retain(|(x, _, _)| !(x.addr_id == a.addr_id && x.addr == a.addr));
            return;
        }
        let rk = self.mp.remote_key.unwrap_or_default();
        let ok = a.hmac == Some(add_addr_hmac(rk, self.mp.local_key, a.addr_id, a.addr, a.port));
        if !ok {
            ctx.mib.inc(Counter::AddAddrDrop);
            return;
        }
        ctx.mib.inc(Counter::AddAddr);
        if a.port.is_some() {
            ctx.mib.inc(Counter::PortAdd);
        }
        // RFC 8684 §3.4.1: echo it; one echo queued per announcement, and
        // a few at most (the peer repeats what is not echoed).
        let echo = AddAddr { echo: true, hmac: None, ..a };
        if !self.pm.echo.contains(&echo) {
            if self.pm.echo.len() < MAX_PENDING_ECHOES {
                self.pm.echo.push_back(echo);
            } else {
                ctx.mib.inc(Counter::EchoAddTxDrop);
            }
        }
        let port = a.port.unwrap_or(self.remote.port());
        let addr = SocketAddr::new(a.addr, port);
        // An address ID names one address (RFC 8684 §3.4.1): a new one for
        // a known ID replaces it; a list of a few at most is kept.
        let known = self.pm.remote_addrs.len();
        match self.pm.remote_addrs.iter_mut().find(|(id, _)| *id == a.addr_id) {
            Some((_, x)) if *x == addr => return,
            Some((_, x)) => *x = addr,
            None if known >= MAX_REMOTE_ADDRS => {
                ctx.mib.inc(Counter::AddAddrDrop);
                return;
            }
            None => self.pm.remote_addrs.push((a.addr_id, addr)),
        }
        ctx.events.push_back(Event::AddressAnnounced { conn: self.handle, addr_id: a.addr_id, addr });
        if self.role == Role::Client
            && self.pm.add_addr_accepted < self.limits.add_addr_accepted
            && self.pm.joins_created < self.limits.subflows
            && a.addr.is_ipv4() == self.local.is_ipv4()
        {
            self.pm.add_addr_accepted += 1;
            let from = LocalAddr { id: 0, addr: self.local.ip(), flags: AddrFlags::default() };
            if !self.subflows.iter().any(|s| s.alive() && s.tcb.remote == addr) {
                self.open_join(now, from, addr, ctx);
            }
        }
    }

    pub(super) fn on_remove_addr(&mut self, r: &RemoveAddr, ctx: &mut Ctx<'_>) {
        for &id in r.addr_ids.iter() {
            ctx.mib.inc(Counter::RmAddr);
            self.pm.remote_addrs.retain(|(x, _)| *x != id);
            ctx.events.push_back(Event::AddressRemoved { conn: self.handle, addr_id: id });
            for j in 0..self.subflows.len() {
                let sf = &self.subflows[j];
                if sf.alive() && sf.remote_id == id && !(sf.initial && id == 0 && self.subflows.len() == 1) {
                    ctx.mib.inc(Counter::RmSubflow);
                    self.abort_subflow(j, rst_reason::UNSPECIFIED, CloseReason::AddressRemoved, ctx);
                }
            }
        }
    }

    /// The local address `addr` (id `id`) goes away.
    pub fn remove_local_address(&mut self, addr: IpAddr, id: u8, ctx: &mut Ctx<'_>) {
        if !self.mp.active() {
            return;
        }
        let announced = self.pm.announce.iter().any(|(a, _, _)| a.addr == addr) || self.pm.signals_sent > 0;
        let users: Vec<usize> = (0..self.subflows.len())
            .filter(|&j| self.subflows[j].alive() && self.subflows[j].tcb.local.ip() == addr)
            .collect();
        self.pm.announce.retain(|(a, _, _)| a.addr != addr);
        if !users.is_empty() || announced {
            let rid = if users.iter().any(|&j| self.subflows[j].initial) { 0 } else { id };
            self.pm.remove.push(rid);
        }
        for j in users {
            ctx.mib.inc(Counter::RmSubflow);
            self.abort_subflow(j, rst_reason::UNSPECIFIED, CloseReason::AddressRemoved, ctx);
        }
    }

    /// MP_PRIO for the subflows on `addr` (RFC 8684 §3.3.8).
    pub fn set_backup(&mut self, addr: IpAddr, backup: bool) {
        for sf in self.subflows.iter_mut().filter(|s| s.alive() && s.tcb.local.ip() == addr) {
            if sf.backup_loc != backup {
                sf.backup_loc = backup;
                if self.mp.fallback.is_none() && self.mp.enabled {
                    sf.pending_prio = Some(backup);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use crate::stack::{AddrFlags, Config, Event, Limits};
    use std::net::{IpAddr, SocketAddr};

    #[test]
    fn a_signal_address_is_announced_until_echoed() {
        let mut p = pair(Config::default());
        let signal = AddrFlags { signal: true, ..Default::default() };
        assert!(p.s.add_address(IpAddr::from([10, 0, 3, 2]), signal).is_ok());
        let (h, sh) = open(&mut p);
        let s = conn(&p.s, sh);
        assert!(s.pm.started && s.pm.signals_sent == 1);
        assert!(s.pm.announce.is_empty(), "the echo ends the announcement: {:?}", s.pm.announce);
        let c = conn(&p.c, h);
        assert_eq!(c.pm.remote_addrs.iter().map(|a| a.1.ip()).collect::<Vec<_>>(), vec![IpAddr::from([10, 0, 3, 2])]);
        assert!(p.events_of(true).any(|e| matches!(e, Event::AddressAnnounced { addr, .. }
            if *addr == SocketAddr::from(([10, 0, 3, 2], 80)))));
    }

    #[test]
    fn a_client_opens_joins_up_to_its_limit() {
        let mut p = pair(Config { limits: Limits { subflows: 1, ..Limits::default() }, ..Config::default() });
        second_path(&mut p);
        let extra = AddrFlags { subflow: true, ..Default::default() };
        assert!(p.c.add_address(IpAddr::from([10, 0, 4, 1]), extra).is_ok());
        let (h, sh) = open(&mut p);
        let c = conn(&p.c, h);
        assert_eq!((c.pm.joins_created, c.subflows.len()), (1, 2));
        assert_eq!(conn(&p.s, sh).subflows.len(), 2);
    }
}
