//! Kernel-style MIB counters. Names are the Linux kernel's MPTcpExt names
//! (net/mptcp/mib.c, shown by `nstat -az` with the `MPTcpExt` prefix) where
//! the event is the same, so a user compares our counters with the kernel's
//! one for one. A few TCP-level counters use the kernel's TcpExt names.

use std::collections::BTreeMap;

macro_rules! counters {
    ($( $(#[$m:meta])* $v:ident = $name:literal, )*) => {
        /// One counter.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(usize)]
        pub enum Counter { $( $(#[$m])* $v, )* }

        impl Counter {
            /// Every counter, in the kernel's order.
            pub const ALL: &'static [Counter] = &[ $( Counter::$v, )* ];
            /// The full name as `nstat` prints it, e.g. "MPTcpExtMPCapableSYNRX".
            pub fn name(self) -> &'static str {
                match self { $( Counter::$v => $name, )* }
            }
        }
    };
}

counters! {
    /// A SYN with MP_CAPABLE received (passive open).
    MpCapableSynRx = "MPTcpExtMPCapableSYNRX",
    /// A SYN with MP_CAPABLE sent (active open).
    MpCapableSynTx = "MPTcpExtMPCapableSYNTX",
    /// A SYN/ACK with MP_CAPABLE received.
    MpCapableSynAckRx = "MPTcpExtMPCapableSYNACKRX",
    /// The third ACK with MP_CAPABLE received.
    MpCapableAckRx = "MPTcpExtMPCapableACKRX",
    /// Passive side fell back: the third ACK had no MP_CAPABLE.
    MpCapableFallbackAck = "MPTcpExtMPCapableFallbackACK",
    /// Active side fell back: the SYN/ACK had no MP_CAPABLE.
    MpCapableFallbackSynAck = "MPTcpExtMPCapableFallbackSYNACK",
    /// MP_CAPABLE dropped from a retransmitted SYN.
    MpCapableSynTxDrop = "MPTcpExtMPCapableSYNTXDrop",
    /// Data-level retransmissions (reinjections).
    MptcpRetrans = "MPTcpExtMPTCPRetrans",
    MpJoinNoTokenFound = "MPTcpExtMPJoinNoTokenFound",
    MpJoinSynRx = "MPTcpExtMPJoinSynRx",
    MpJoinSynBackupRx = "MPTcpExtMPJoinSynBackupRx",
    MpJoinSynAckRx = "MPTcpExtMPJoinSynAckRx",
    MpJoinSynAckBackupRx = "MPTcpExtMPJoinSynAckBackupRx",
    MpJoinSynAckHmacFailure = "MPTcpExtMPJoinSynAckHMacFailure",
    MpJoinAckRx = "MPTcpExtMPJoinAckRx",
    MpJoinAckHmacFailure = "MPTcpExtMPJoinAckHMacFailure",
    /// A join refused: the subflow limit was reached.
    MpJoinRejected = "MPTcpExtMPJoinRejected",
    MpJoinSynTx = "MPTcpExtMPJoinSynTx",
    /// A DSS mapping that contradicts the one in progress.
    DssNotMatching = "MPTcpExtDSSNotMatching",
    InfiniteMapTx = "MPTcpExtInfiniteMapTx",
    InfiniteMapRx = "MPTcpExtInfiniteMapRx",
    /// Data whose subflow sequence no mapping covers.
    DssNoMatchTcp = "MPTcpExtDSSNoMatchTCP",
    DataCsumErr = "MPTcpExtDataCsumErr",
    /// Data appended at the tail of the connection-level out-of-order queue.
    OfoQueueTail = "MPTcpExtOFOQueueTail",
    /// Data put in the connection-level out-of-order queue.
    OfoQueue = "MPTcpExtOFOQueue",
    /// Data mapped past the connection-level receive window: dropped.
    NoDssInWindow = "MPTcpExtNoDSSInWindow",
    /// Data-level duplicates (already received on another subflow).
    DuplicateData = "MPTcpExtDuplicateData",
    /// ADD_ADDR received (with a valid HMAC).
    AddAddr = "MPTcpExtAddAddr",
    AddAddrTx = "MPTcpExtAddAddrTx",
    EchoAdd = "MPTcpExtEchoAdd",
    EchoAddTx = "MPTcpExtEchoAddTx",
    PortAdd = "MPTcpExtPortAdd",
    /// ADD_ADDR dropped (bad HMAC, or over the accepted limit).
    AddAddrDrop = "MPTcpExtAddAddrDrop",
    RmAddr = "MPTcpExtRmAddr",
    RmAddrDrop = "MPTcpExtRmAddrDrop",
    RmAddrTx = "MPTcpExtRmAddrTx",
    RmSubflow = "MPTcpExtRmSubflow",
    MpPrioTx = "MPTcpExtMPPrioTx",
    MpPrioRx = "MPTcpExtMPPrioRx",
    MpFailTx = "MPTcpExtMPFailTx",
    MpFailRx = "MPTcpExtMPFailRx",
    MpFastcloseTx = "MPTcpExtMPFastcloseTx",
    MpFastcloseRx = "MPTcpExtMPFastcloseRx",
    MpRstTx = "MPTcpExtMPRstTx",
    MpRstRx = "MPTcpExtMPRstRx",
    /// A subflow declared stale (no progress for several RTOs).
    SubflowStale = "MPTcpExtSubflowStale",
    SubflowRecover = "MPTcpExtSubflowRecover",
    /// MPTCP connections currently established (a gauge, as in the kernel).
    MpCurrEstab = "MPTcpExtMPCurrEstab",
    /// Fell back because data arrived with no DSS (options stripped).
    MpCapableDataFallback = "MPTcpExtMPCapableDataFallback",
    DssFallback = "MPTcpExtDssFallback",
    /// Zero-window probes sent.
    WinProbe = "MPTcpExtWinProbe",
    /// An ADD_ADDR that could not be sent (it did not fit the option space).
    AddAddrTxDrop = "MPTcpExtAddAddrTxDrop",
    /// An ADD_ADDR echo that could not be sent.
    EchoAddTxDrop = "MPTcpExtEchoAddTxDrop",
    // TCP-level counters, with the kernel's TcpExt / Tcp names.
    TcpActiveOpens = "TcpActiveOpens",
    TcpPassiveOpens = "TcpPassiveOpens",
    TcpRetransSegs = "TcpRetransSegs",
    TcpOutRsts = "TcpOutRsts",
    TcpInErrs = "TcpInErrs",
    TcpInCsumErrors = "TcpInCsumErrors",
    TcpTimeouts = "TcpExtTCPTimeouts",
    TcpFastRetrans = "TcpExtTCPFastRetrans",
    TcpSackRecovery = "TcpExtTCPSackRecovery",
    TcpRenoRecovery = "TcpExtTCPRenoRecovery",
    TcpDelayedAcks = "TcpExtDelayedACKs",
    TcpOfoQueue = "TcpExtTCPOFOQueue",
    TcpTimeWaited = "TcpExtTW",
    /// Challenge ACKs sent (RFC 5961: a RST or SYN in the window).
    TcpChallengeAck = "TcpExtTCPChallengeACK",
    /// Challenge ACKs not sent: over the rate limit (RFC 5961 §7).
    TcpAckSkippedChallenge = "TcpExtTCPACKSkippedChallenge",
    /// ACKs to out-of-window segments not sent: over the rate limit.
    TcpAckSkippedSeq = "TcpExtTCPACKSkippedSeq",
    /// SYN/ACKs sent with a SYN cookie (the SYN queue was full).
    SyncookiesSent = "TcpExtSyncookiesSent",
    /// ACKs that completed a handshake from a valid cookie.
    SyncookiesRecv = "TcpExtSyncookiesRecv",
    /// ACKs checked for a cookie and refused (invalid, expired, or an
    /// MP_CAPABLE that does not echo our key).
    SyncookiesFailed = "TcpExtSyncookiesFailed",
    /// SYNs answered with a cookie because the SYN queue was full.
    TcpReqQFullDoCookies = "TcpExtTCPReqQFullDoCookies",
    /// SYNs dropped because the SYN queue was full (cookies off).
    TcpReqQFullDrop = "TcpExtTCPReqQFullDrop",
    /// SYN data acknowledged by the SYN/ACK (Fast Open, RFC 7413).
    TcpFastOpenActive = "TcpExtTCPFastOpenActive",
    /// SYN data sent and not acknowledged by the SYN/ACK: resent after the
    /// handshake.
    TcpFastOpenActiveFail = "TcpExtTCPFastOpenActiveFail",
    /// A SYN's data taken on a valid cookie.
    TcpFastOpenPassive = "TcpExtTCPFastOpenPassive",
    /// A SYN with an invalid cookie: its data ignored, a new cookie sent.
    TcpFastOpenPassiveFail = "TcpExtTCPFastOpenPassiveFail",
    /// SYN data ignored: too many half-open Fast Open connections.
    TcpFastOpenListenOverflow = "TcpExtTCPFastOpenListenOverflow",
    /// A SYN asked for a cookie (an empty Fast Open option).
    TcpFastOpenCookieReqd = "TcpExtTCPFastOpenCookieReqd",
    // Ours (no kernel counterpart).
    /// TCP options left out of a segment for lack of option space (RFC 9293
    /// §3.1: 40 bytes at most).
    OptionSpaceDrop = "TcpExtOptionSpaceDrop",
    /// Segments that could not be written (a transmit buffer too short):
    /// counted as lost, sent again by the timers.
    EmitErrors = "TcpExtEmitErrors",
    /// Stateless answers (RSTs, SYN/ACKs with cookies) not queued: the
    /// queue was full (a flood between two polls).
    StatelessDrop = "TcpExtStatelessReplyDrop",
}

/// The counters of one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mib {
    values: Vec<u64>,
}

impl Default for Mib {
    fn default() -> Mib {
        Mib { values: vec![0; Counter::ALL.len()] }
    }
}

impl Mib {
    pub fn inc(&mut self, c: Counter) {
        self.values[c as usize] += 1;
    }
    pub fn add(&mut self, c: Counter, n: u64) {
        self.values[c as usize] += n;
    }
    pub fn dec(&mut self, c: Counter) {
        let v = &mut self.values[c as usize];
        *v = v.saturating_sub(1);
    }
    pub fn get(&self, c: Counter) -> u64 {
        self.values[c as usize]
    }
    /// Value by kernel name (e.g. "MPTcpExtMPJoinAckRx").
    pub fn by_name(&self, name: &str) -> Option<u64> {
        Counter::ALL.iter().find(|c| c.name() == name).map(|c| self.get(*c))
    }
    /// Every counter by name, zeros included (as `nstat -az`).
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        Counter::ALL.iter().map(|c| (c.name().to_string(), self.get(*c))).collect()
    }
    /// Only the counters that are not zero.
    pub fn nonzero(&self) -> BTreeMap<String, u64> {
        Counter::ALL.iter().filter(|c| self.get(**c) != 0).map(|c| (c.name().to_string(), self.get(*c))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed() {
        let mut seen = std::collections::HashSet::new();
        for c in Counter::ALL {
            assert!(seen.insert(c.name()), "duplicate {}", c.name());
            assert!(c.name().starts_with("MPTcpExt") || c.name().starts_with("Tcp"));
        }
        let mut m = Mib::default();
        m.inc(Counter::MpJoinAckRx);
        assert_eq!(m.by_name("MPTcpExtMPJoinAckRx"), Some(1));
        assert_eq!(m.nonzero().len(), 1);
    }
}
