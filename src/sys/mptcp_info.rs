//! `struct mptcp_info` (include/uapi/linux/mptcp.h) and the parts of
//! `struct tcp_info` (include/uapi/linux/tcp.h) the tools use, as the kernel
//! hands them out both through sock_diag (`INET_DIAG_INFO`) and through the
//! SOL_MPTCP getsockopts (MPTCP_INFO, MPTCP_FULL_INFO, MPTCP_TCPINFO).
//!
//! Both structs only ever grew: an older kernel sends a prefix. Fields of the
//! original layout read as 0 past the end; later additions are `None`, so a
//! view can tell "zero" from "this kernel does not say".

use super::netlink::read;

/// `mptcpi_flags` bits.
pub const MPTCP_INFO_FLAG_FALLBACK: u32 = 1 << 0;
pub const MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED: u32 = 1 << 1;

/// Size of `struct mptcp_info` in Linux 6.18.
pub const MPTCP_INFO_SIZE: usize = 96;

/// `struct mptcp_info` as far as the kernel sent it: an older kernel sends a
/// shorter struct, and the fields past its end are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MptcpInfo {
    pub subflows: u8,
    pub add_addr_signal: u8,
    pub add_addr_accepted: u8,
    pub subflows_max: u8,
    pub add_addr_signal_max: u8,
    pub add_addr_accepted_max: u8,
    pub flags: u32,
    pub token: u32,
    pub write_seq: u64,
    pub snd_una: u64,
    pub rcv_nxt: u64,
    pub local_addr_used: Option<u8>,
    pub local_addr_max: Option<u8>,
    pub csum_enabled: Option<u8>,
    pub retransmits: Option<u32>,
    pub bytes_retrans: Option<u64>,
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
    pub bytes_acked: Option<u64>,
    pub subflows_total: Option<u8>,
    pub endp_laminar_max: Option<u8>,
    pub endp_fullmesh_max: Option<u8>,
    pub last_data_sent: Option<u32>,
    pub last_data_recv: Option<u32>,
    pub last_ack_recv: Option<u32>,
    /// How many bytes the kernel sent.
    pub len: usize,
}

/// Byte offsets in `struct mptcp_info` (include/uapi/linux/mptcp.h).
pub mod mi {
    pub const FLAGS: usize = 8;
    pub const TOKEN: usize = 12;
    pub const WRITE_SEQ: usize = 16;
    pub const SND_UNA: usize = 24;
    pub const RCV_NXT: usize = 32;
    pub const LOCAL_ADDR_USED: usize = 40;
    pub const LOCAL_ADDR_MAX: usize = 41;
    pub const CSUM_ENABLED: usize = 42;
    pub const RETRANSMITS: usize = 44;
    pub const BYTES_RETRANS: usize = 48;
    pub const BYTES_SENT: usize = 56;
    pub const BYTES_RECEIVED: usize = 64;
    pub const BYTES_ACKED: usize = 72;
    pub const SUBFLOWS_TOTAL: usize = 80;
    pub const ENDP_LAMINAR_MAX: usize = 81;
    pub const ENDP_FULLMESH_MAX: usize = 82;
    pub const LAST_DATA_SENT: usize = 84;
    pub const LAST_DATA_RECV: usize = 88;
    pub const LAST_ACK_RECV: usize = 92;
}

impl MptcpInfo {
    /// See [`parse_mptcp_info`].
    pub fn parse(b: &[u8]) -> MptcpInfo {
        parse_mptcp_info(b)
    }
    /// The connection fell back to plain TCP.
    pub fn fallback(&self) -> bool {
        self.flags & MPTCP_INFO_FLAG_FALLBACK != 0
    }
    /// The peer's key arrived (the MP_CAPABLE handshake completed).
    pub fn remote_key_received(&self) -> bool {
        self.flags & MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED != 0
    }
}

/// Parse the prefix of `struct mptcp_info` in `b` (missing fields read as 0
/// for the original v5.7 part, `None` for later additions).
pub fn parse_mptcp_info(b: &[u8]) -> MptcpInfo {
    let u8_ = |at| read::u8(b, at).unwrap_or(0);
    MptcpInfo {
        subflows: u8_(0),
        add_addr_signal: u8_(1),
        add_addr_accepted: u8_(2),
        subflows_max: u8_(3),
        add_addr_signal_max: u8_(4),
        add_addr_accepted_max: u8_(5),
        flags: read::u32(b, mi::FLAGS).unwrap_or(0),
        token: read::u32(b, mi::TOKEN).unwrap_or(0),
        write_seq: read::u64(b, mi::WRITE_SEQ).unwrap_or(0),
        snd_una: read::u64(b, mi::SND_UNA).unwrap_or(0),
        rcv_nxt: read::u64(b, mi::RCV_NXT).unwrap_or(0),
        local_addr_used: read::u8(b, mi::LOCAL_ADDR_USED),
        local_addr_max: read::u8(b, mi::LOCAL_ADDR_MAX),
        csum_enabled: read::u8(b, mi::CSUM_ENABLED),
        retransmits: read::u32(b, mi::RETRANSMITS),
        bytes_retrans: read::u64(b, mi::BYTES_RETRANS),
        bytes_sent: read::u64(b, mi::BYTES_SENT),
        bytes_received: read::u64(b, mi::BYTES_RECEIVED),
        bytes_acked: read::u64(b, mi::BYTES_ACKED),
        subflows_total: read::u8(b, mi::SUBFLOWS_TOTAL),
        endp_laminar_max: read::u8(b, mi::ENDP_LAMINAR_MAX),
        endp_fullmesh_max: read::u8(b, mi::ENDP_FULLMESH_MAX),
        last_data_sent: read::u32(b, mi::LAST_DATA_SENT),
        last_data_recv: read::u32(b, mi::LAST_DATA_RECV),
        last_ack_recv: read::u32(b, mi::LAST_ACK_RECV),
        len: b.len(),
    }
}

/// The parts of `struct tcp_info` (include/uapi/linux/tcp.h) the view uses;
/// `None` past what the kernel sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    pub state: u8,
    pub rto_us: Option<u32>,
    pub snd_mss: Option<u32>,
    pub rtt_us: Option<u32>,
    pub rttvar_us: Option<u32>,
    pub snd_ssthresh: Option<u32>,
    pub snd_cwnd: Option<u32>,
    pub total_retrans: Option<u32>,
    pub bytes_acked: Option<u64>,
    pub bytes_received: Option<u64>,
    pub bytes_sent: Option<u64>,
    pub bytes_retrans: Option<u64>,
}

/// Byte offsets in `struct tcp_info`.
pub mod ti {
    pub const RTO: usize = 8;
    pub const SND_MSS: usize = 16;
    pub const RTT: usize = 68;
    pub const RTTVAR: usize = 72;
    pub const SND_SSTHRESH: usize = 76;
    pub const SND_CWND: usize = 80;
    pub const TOTAL_RETRANS: usize = 100;
    pub const BYTES_ACKED: usize = 120;
    pub const BYTES_RECEIVED: usize = 128;
    pub const BYTES_SENT: usize = 200;
    pub const BYTES_RETRANS: usize = 208;
}

/// Parse the prefix of `struct tcp_info` in `b`.
pub fn parse_tcp_info(b: &[u8]) -> TcpInfo {
    TcpInfo {
        state: read::u8(b, 0).unwrap_or(0),
        rto_us: read::u32(b, ti::RTO),
        snd_mss: read::u32(b, ti::SND_MSS),
        rtt_us: read::u32(b, ti::RTT),
        rttvar_us: read::u32(b, ti::RTTVAR),
        snd_ssthresh: read::u32(b, ti::SND_SSTHRESH),
        snd_cwnd: read::u32(b, ti::SND_CWND),
        total_retrans: read::u32(b, ti::TOTAL_RETRANS),
        bytes_acked: read::u64(b, ti::BYTES_ACKED),
        bytes_received: read::u64(b, ti::BYTES_RECEIVED),
        bytes_sent: read::u64(b, ti::BYTES_SENT),
        bytes_retrans: read::u64(b, ti::BYTES_RETRANS),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 6.18 `mptcp_info` cut to `len` bytes.
    pub(crate) fn info_bytes(len: usize) -> Vec<u8> {
        let mut b = vec![0u8; MPTCP_INFO_SIZE];
        b[0] = 1; // subflows
        b[3] = 2; // subflows_max
        b[mi::FLAGS..mi::FLAGS + 4].copy_from_slice(&2u32.to_ne_bytes());
        b[mi::TOKEN..mi::TOKEN + 4].copy_from_slice(&0xf4558206u32.to_ne_bytes());
        b[mi::WRITE_SEQ..mi::WRITE_SEQ + 8].copy_from_slice(&0xf1bd89048a0dfeb2u64.to_ne_bytes());
        b[mi::LOCAL_ADDR_MAX] = 1;
        b[mi::BYTES_SENT..mi::BYTES_SENT + 8].copy_from_slice(&49152u64.to_ne_bytes());
        b[mi::SUBFLOWS_TOTAL] = 2;
        b[mi::LAST_ACK_RECV..mi::LAST_ACK_RECV + 4].copy_from_slice(&4u32.to_ne_bytes());
        b.truncate(len);
        b
    }

    #[test]
    fn mptcp_info_full_and_prefixes() {
        let full = MptcpInfo::parse(&info_bytes(MPTCP_INFO_SIZE));
        assert_eq!((full.subflows, full.subflows_max, full.token), (1, 2, 0xf4558206));
        assert_eq!(full.flags, MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED);
        assert!(full.remote_key_received() && !full.fallback());
        assert_eq!(full.write_seq, 0xf1bd89048a0dfeb2);
        assert_eq!(full.bytes_sent, Some(49152));
        assert_eq!(full.subflows_total, Some(2));
        assert_eq!(full.last_ack_recv, Some(4));
        assert_eq!(full.len, MPTCP_INFO_SIZE);
        // v5.7..v5.11: 40 bytes, nothing after rcv_nxt.
        let old = parse_mptcp_info(&info_bytes(40));
        assert_eq!(old.token, 0xf4558206);
        assert_eq!((old.local_addr_max, old.bytes_sent, old.subflows_total), (None, None, None));
        // v5.13..v6.4: 43/44 bytes (csum_enabled and padding).
        let mid = parse_mptcp_info(&info_bytes(44));
        assert_eq!((mid.local_addr_max, mid.csum_enabled, mid.retransmits), (Some(1), Some(0), None));
        // v6.5..v6.9: up to subflows_total and its padding.
        let v65 = parse_mptcp_info(&info_bytes(84));
        assert_eq!((v65.subflows_total, v65.last_ack_recv), (Some(2), None));
        // A cut inside a field leaves it out, not half-read.
        let cut = parse_mptcp_info(&info_bytes(60));
        assert_eq!((cut.bytes_retrans, cut.bytes_sent), (Some(0), None));
        // Nothing at all.
        assert_eq!(parse_mptcp_info(&[]).token, 0);
    }

    #[test]
    fn tcp_info_fields() {
        let mut b = vec![0u8; 232];
        b[0] = 1;
        b[ti::SND_MSS..ti::SND_MSS + 4].copy_from_slice(&1448u32.to_ne_bytes());
        b[ti::RTT..ti::RTT + 4].copy_from_slice(&144u32.to_ne_bytes());
        b[ti::SND_CWND..ti::SND_CWND + 4].copy_from_slice(&34u32.to_ne_bytes());
        b[ti::BYTES_SENT..ti::BYTES_SENT + 8].copy_from_slice(&49152u64.to_ne_bytes());
        let t = parse_tcp_info(&b);
        assert_eq!((t.state, t.snd_mss, t.rtt_us, t.snd_cwnd), (1, Some(1448), Some(144), Some(34)));
        assert_eq!(t.bytes_sent, Some(49152));
        // An old kernel's 104-byte tcp_info: no byte counters.
        let t = parse_tcp_info(&b[..104]);
        assert_eq!((t.snd_cwnd, t.bytes_acked, t.bytes_sent), (Some(34), None, None));
    }
}
