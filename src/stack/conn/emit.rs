//! The segment builders: every segment the connection sends, its TCP
//! options and MPTCP options within the 40-byte budget (through
//! `optlist`), written by the codec.

use super::*;

impl Connection {
    pub(super) fn window_field(&self, tcb: &Tcb, syn: bool) -> u16 {
        let w = self.rx_window();
        if syn { w.min(65535) as u16 } else { (w >> tcb.rcv_wscale).min(65535) as u16 }
    }

    pub(super) fn dss_ack(&self) -> Dss {
        Dss { data_fin: false, data_ack: Some(WireSeq::U64(self.data_ack().0)), mapping: None }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn write(
        &mut self,
        now: Instant,
        j: usize,
        out: &mut TxOut<'_>,
        seq: SubflowSeq,
        fl: u8,
        opts: &OptList,
        payload: Payload,
        ctx: &mut Ctx<'_>,
    ) -> Tx {
        let syn = fl & flags::SYN != 0;
        let window = self.window_field(&self.subflows[j].tcb, syn);
        let Connection { subflows, snd: SendSide { tx, .. }, .. } = self;
        let sf = &mut subflows[j];
        let ack = if fl & flags::ACK != 0 { sf.tcb.rcv_nxt } else { SubflowSeq(0) };
        let repr = SegmentRepr {
            src: sf.tcb.local,
            dst: sf.tcb.remote,
            seq,
            ack,
            flags: fl,
            window,
            options: opts.as_slice(),
        };
        let plen = match payload {
            Payload::None => 0,
            Payload::Data(_, l) => l,
        };
        let checksum = !self.cfg_checksum_offload;
        let spill = &sf.spill;
        let n = match payload {
            Payload::Data(dsn, len) if out.by_ref && len > 0 => {
                // Zero-copy: the payload goes by reference.
                let data = if dsn >= tx.head {
                    tx.slice(dsn, len)
                } else if let Some((d, v)) =
                    spill.iter().find(|(d, v)| *d <= dsn && dsn + len as u64 <= *d + v.len() as u64)
                {
                    let off = (dsn - *d) as usize;
                    v.slice(off..off + len)
                } else {
                    // Not held any more: only reachable for data the peer
                    // already acknowledged at the data level.
                    Slice::copy_from(&vec![0; len])
                };
                let h = wire::emit_parts(&repr, &data, out.buf, checksum);
                if h.is_ok() {
                    out.payload = Some(data);
                }
                h
            }
            _ => wire::emit(&repr, plen, out.buf, checksum, |p| {
                if let Payload::Data(dsn, _) = payload {
                    if dsn >= tx.head {
                        tx.read_at(dsn, p);
                    } else if let Some((d, v)) =
                        spill.iter().find(|(d, v)| *d <= dsn && dsn + p.len() as u64 <= *d + v.len() as u64)
                    {
                        let off = (dsn - *d) as usize;
                        p.copy_from_slice(&v[off..off + p.len()]);
                    } else {
                        // Not held any more: only reachable for data the peer
                        // already acknowledged at the data level.
                        p.fill(0);
                    }
                }
            }),
        };
        if opts.refused() > 0 {
            ctx.mib.add(Counter::OptionSpaceDrop, u64::from(opts.refused()));
        }
        sf.tcb.count_segment_out();
        if fl & flags::ACK != 0 {
            let right = sf.tcb.rcv_nxt + ((window as u32) << if syn { 0 } else { sf.tcb.rcv_wscale });
            sf.tcb.on_ack_sent(now, right);
            let adv = self.rcv.rx.nxt + ((window as u64) << if syn { 0 } else { self.subflows[j].tcb.rcv_wscale });
            if adv > self.rcv.last_adv_edge {
                self.rcv.last_adv_edge = adv;
            }
        }
        let sf = &self.subflows[j];
        n.map(|n| (n, sf.tcb.local, sf.tcb.remote))
    }

    pub(super) fn emit_syn(&mut self, now: Instant, j: usize, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Tx {
        let server = self.subflows[j].tcb.state == TcpState::SynReceived;
        let mut o = self.syn_option_list(now, j);
        let sf = &self.subflows[j];
        let mut payload = Payload::None;
        if sf.initial {
            if let Some(tfo) = self.fastopen_option(server, sf.tcb.syn_retries) {
                let mut pushed = o.push(tfo);
                if !pushed && server && self.subflows[j].tcb.sack_ok {
                    // MSS, SACK permitted, timestamps, window scale and
                    // MP_CAPABLE with our key take 32 of the 40 bytes, a
                    // cookie 10: this connection goes without SACK.
                    self.subflows[j].tcb.forgo_sack();
                    o = self.syn_option_list(now, j);
                    pushed = o.push(tfo);
                }
                if pushed && !server {
                    payload = self.fastopen_syn_data(o.bytes());
                }
            }
            if !server {
                self.timers.stop(Timer::FastOpenHold);
            }
        }
        let sf = &self.subflows[j];
        if !sf.initial
            && let Some(js) = sf.join
        {
            let opt = if server {
                let rk = self.mp.remote_key.unwrap_or_default();
                MpJoin::SynAck {
                    backup: sf.backup_loc,
                    addr_id: sf.local_id,
                    hmac: join_synack_hmac(Version::V1, self.mp.local_key, rk, js.local_nonce, js.remote_nonce),
                    nonce: js.local_nonce,
                }
            } else {
                MpJoin::Syn {
                    backup: sf.backup_loc,
                    addr_id: sf.local_id,
                    token: self.mp.remote_token,
                    nonce: js.local_nonce,
                }
            };
            o.push(TcpOption::Mptcp(MptcpOption::MpJoin(opt)));
        }
        let fl = if server { flags::SYN | flags::ACK } else { flags::SYN };
        let seq = self.subflows[j].tcb.iss;
        let t = self.write(now, j, out, seq, fl, &o, payload, ctx);
        self.subflows[j].tcb.on_syn_sent(now);
        t
    }

    /// The options of this subflow's SYN or SYN/ACK, MP_CAPABLE included
    /// (not MP_JOIN, not Fast Open).
    fn syn_option_list(&self, now: Instant, j: usize) -> OptList {
        let sf = &self.subflows[j];
        let tcb = &sf.tcb;
        let server = tcb.state == TcpState::SynReceived;
        let mut o = syn_options(
            self.mss_local,
            tcb.sack_ok,
            tcb.ts_ok.then(|| (tcb.tsval(now), if server { tcb.ts_recent } else { 0 })),
            (!server || tcb.wscale_ok).then_some(tcb.rcv_wscale),
        );
        let csum_flag = if self.mp.csum { MpCapable::FLAG_CHECKSUM } else { 0 };
        if sf.initial && self.mp.active() && (server || !self.mp.syn_mpc_dropped) {
            let m = MpCapable {
                version: 1,
                flags: csum_flag | MpCapable::FLAG_HMAC_SHA,
                sender_key: if server { Some(self.mp.local_key.0) } else { None },
                ..Default::default()
            };
            o.push(TcpOption::Mptcp(MptcpOption::MpCapable(m)));
        }
        o
    }

    pub(super) fn emit_join_ack(&mut self, now: Instant, j: usize, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Tx {
        let sf = &self.subflows[j];
        let js = sf.join.expect("join state");
        let rk = self.mp.remote_key.unwrap_or_default();
        let hmac = join_ack_hmac(Version::V1, self.mp.local_key, rk, js.local_nonce, js.remote_nonce);
        let mut o = OptList::new();
        o.timestamps(&sf.tcb, now);
        o.push(TcpOption::Mptcp(MptcpOption::MpJoin(MpJoin::Ack { hmac })));
        let seq = sf.tcb.snd_nxt;
        let t = self.write(now, j, out, seq, flags::ACK, &o, Payload::None, ctx);
        let sf = &mut self.subflows[j];
        if let Some(js) = sf.join.as_mut() {
            js.ack_due = false;
        }
        sf.tcb.arm_plain_rto_if_idle(now);
        t
    }

    pub(super) fn emit_fin(&mut self, now: Instant, j: usize, out: &mut TxOut<'_>, ctx: &mut Ctx<'_>) -> Tx {
        let mut o = OptList::new();
        o.timestamps(&self.subflows[j].tcb, now);
        if self.mp.active() {
            o.push(TcpOption::Mptcp(MptcpOption::Dss(self.dss_ack())));
        }
        let tcb = &self.subflows[j].tcb;
        let seq = tcb.fin_seq.unwrap_or(tcb.snd_nxt);
        let t = self.write(now, j, out, seq, flags::FIN | flags::ACK, &o, Payload::None, ctx);
        self.subflows[j].tcb.on_fin_sent(now);
        t
    }

    /// A pure ACK: DSS with DATA_ACK (or the MP_CAPABLE keys while not yet
    /// confirmed), an extra option, a DATA_FIN, SACK blocks.
    pub(super) fn emit_ack(
        &mut self,
        now: Instant,
        j: usize,
        out: &mut TxOut<'_>,
        extra: Option<MptcpOption>,
        data_fin: bool,
        ctx: &mut Ctx<'_>,
    ) -> Tx {
        let sf = &self.subflows[j];
        let mut o = OptList::new();
        o.timestamps(&sf.tcb, now);
        if self.mp.active() {
            if sf.initial && self.role == Role::Client && !self.mp.fully_established {
                o.push(TcpOption::Mptcp(MptcpOption::MpCapable(MpCapable {
                    version: 1,
                    flags: if self.mp.csum { MpCapable::FLAG_CHECKSUM } else { 0 } | MpCapable::FLAG_HMAC_SHA,
                    sender_key: Some(self.mp.local_key.0),
                    receiver_key: self.mp.remote_key.map(|k| k.0),
                    data_len: None,
                    checksum: None,
                })));
            } else if sf.ready || sf.initial {
                let mut d = self.dss_ack();
                if data_fin {
                    let fin = self.snd.tx.tail;
                    d.data_fin = true;
                    d.mapping = Some(DssMapping {
                        dsn: WireSeq::U64(fin.0),
                        ssn: 0,
                        data_len: 1,
                        checksum: self.mp.csum.then(|| crypto::dss_checksum(fin.0, 0, 1, &[])),
                    });
                }
                o.push(TcpOption::Mptcp(MptcpOption::Dss(d)));
            }
            if let Some(x) = extra {
                o.push(TcpOption::Mptcp(x));
            }
        }
        o.sack(&self.subflows[j].tcb);
        let tcb = &self.subflows[j].tcb;
        // A window probe uses an old sequence number (RFC 9293 §3.8.6.1).
        let seq = if self.snd.persist_backoff > 0 && !self.timers.is_running(Timer::Persist) {
            tcb.seq_for_ack() - 1u32
        } else {
            tcb.seq_for_ack()
        };
        self.write(now, j, out, seq, flags::ACK, &o, Payload::None, ctx)
    }

    /// A pure ACK carrying `opts` after the timestamps: ADD_ADDR (and its
    /// echo) on an ACK of its own as Linux sends them, or MP_FAIL with a DSS
    /// DATA_ACK (RFC 8684 §3.7). When they do not fit beside the timestamps
    /// (an IPv6 ADD_ADDR with a port is 30 bytes, the timestamps 12), the
    /// ACK goes without them, the options alone, as Linux sends that
    /// ADD_ADDR. None when they do not fit at all: nothing is sent.
    pub(super) fn emit_options(
        &mut self,
        now: Instant,
        j: usize,
        out: &mut TxOut<'_>,
        opts: &[MptcpOption],
        ctx: &mut Ctx<'_>,
    ) -> Option<Tx> {
        let mut list = [TcpOption::Nop; 4];
        if opts.len() > list.len() {
            return None;
        }
        for (d, o) in list.iter_mut().zip(opts) {
            *d = TcpOption::Mptcp(*o);
        }
        let list = &list[..opts.len()];
        let mut o = OptList::new();
        o.timestamps(&self.subflows[j].tcb, now);
        if !o.push_all(list) {
            o = OptList::new();
            if !o.push_all(list) {
                return None;
            }
        }
        let seq = self.subflows[j].tcb.seq_for_ack();
        Some(self.write(now, j, out, seq, flags::ACK, &o, Payload::None, ctx))
    }
}

/// The TCP options of a SYN or SYN/ACK, in Linux's order: MSS, SACK
/// permitted, timestamps (TSval, TSecr), window scale (RFC 9293 §3.7.1,
/// RFC 2018 §2, RFC 7323 §2.2, §3.2). The MPTCP option follows.
fn syn_options(mss: usize, sack: bool, ts: Option<(u32, u32)>, wscale: Option<u8>) -> OptList {
    let mut o = OptList::new();
    o.push(TcpOption::Mss(mss.min(65535) as u16));
    if sack {
        o.push(TcpOption::SackPermitted);
    }
    if let Some((tsval, tsecr)) = ts {
        o.push(TcpOption::Timestamps { tsval, tsecr });
    }
    if let Some(w) = wscale {
        o.push_all(&[TcpOption::Nop, TcpOption::WindowScale(w)]);
    }
    o
}

/// A SYN/ACK answered statelessly, its ISN a SYN cookie (RFC 4987 §3.6).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CookieSynAck {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub iss: SubflowSeq,
    pub ack: SubflowSeq,
    pub window: u16,
    pub mss: usize,
    pub sack: bool,
    pub ts: Option<(u32, u32)>,
    pub wscale: Option<u8>,
    /// MP_CAPABLE with our key (RFC 8684 §3.1), and the checksum flag.
    pub mpc: Option<(Key, bool)>,
}

pub(crate) fn emit_cookie_synack(c: &CookieSynAck, buf: &mut [u8], checksum: bool) -> Result<usize, wire::EmitError> {
    let mut o = syn_options(c.mss, c.sack, c.ts, c.wscale);
    if let Some((key, csum)) = c.mpc {
        let m = MpCapable {
            version: 1,
            flags: if csum { MpCapable::FLAG_CHECKSUM } else { 0 } | MpCapable::FLAG_HMAC_SHA,
            sender_key: Some(key.0),
            ..Default::default()
        };
        o.push(TcpOption::Mptcp(MptcpOption::MpCapable(m)));
    }
    let repr = SegmentRepr {
        src: c.src,
        dst: c.dst,
        seq: c.iss,
        ack: c.ack,
        flags: flags::SYN | flags::ACK,
        window: c.window,
        options: o.as_slice(),
    };
    wire::emit(&repr, 0, buf, checksum, |_| {})
}

/// Write a RST (RFC 9293 §3.10.7.1) with optional MP_TCPRST / MP_FASTCLOSE.
/// MP_FAIL, MP_TCPRST and MP_FASTCLOSE together take 28 of the 40 bytes.
pub(crate) fn emit_rst(r: &RstOut, buf: &mut [u8], checksum: bool) -> Result<usize, wire::EmitError> {
    let mut o = OptList::new();
    if let Some(dsn) = r.mp_fail {
        o.push(TcpOption::Mptcp(MptcpOption::MpFail(MpFail { dsn })));
    }
    if let Some(reason) = r.tcprst {
        o.push(TcpOption::Mptcp(MptcpOption::MpTcpRst(MpTcpRst { flags: 0, reason })));
    }
    if let Some(k) = r.fastclose {
        o.push(TcpOption::Mptcp(MptcpOption::MpFastclose(MpFastclose { receiver_key: k })));
    }
    let (fl, ack) = match r.ack {
        Some(a) => (flags::RST | flags::ACK, a),
        None => (flags::RST, SubflowSeq(0)),
    };
    let repr = SegmentRepr { src: r.src, dst: r.dst, seq: r.seq, ack, flags: fl, window: 0, options: o.as_slice() };
    wire::emit(&repr, 0, buf, checksum, |_| {})
}
