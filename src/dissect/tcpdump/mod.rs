//! The tcpdump-style text printer: one line per frame, as `tcpdump -n`
//! prints it (tcpdump 4.99 for the IP and TCP parts), with the MPTCP options
//! printed as tcpdump's current development version prints them
//! (`capable v1 flags [H]`, `data_len=`, `tcprst flags [T] reason ...`).
//!
//! Pure: the printer takes decoded frames and their bytes and appends text to
//! a caller-owned buffer; it owns no I/O and no clock. The only state is what
//! tcpdump keeps too: the initial sequence numbers of each TCP conversation
//! (for relative seq/ack) and the previous and first timestamps (`-ttt`,
//! `-ttttt`).
//!
//! Options are walked from the raw bytes the way tcpdump's `tcp_print` walks
//! them, not through [`super::options`]: tcpdump has its own acceptance rules
//! (a known option with a wrong length is printed and flagged `[len N]`, which
//! can desynchronise the walk; an MPTCP option is checked against the TCP
//! flags; a bad option prints `[bad opt]` and ends the line; a field cut by
//! the snapshot length prints ` [|tcp]`). Reproducing those exactly needs the
//! bytes. The codec is the source of truth for what is valid; this module is
//! the source of truth for what tcpdump shows.
//!
//! Speed: no allocation per frame once the conversation table is warm,
//! integers formatted with `itoa`, no `format!`.
//!
//! The parts, one file each: `clock` the timestamps, `ip` the link and
//! network layers, `tcp` the TCP header and its option walk, `mptcp` the
//! MPTCP option one subtype at a time, `udp` (with DNS), `icmp`, `arp`,
//! `payload` the TCP payloads tcpdump recognises (SSH, HTTP, reset text),
//! `fmt` the number and address formatting they share.

use std::net::IpAddr;

use crate::dissect::packet::{FrameMeta, Other, Packet};

mod arp;
mod clock;
mod fmt;
mod icmp;
mod ip;
mod mptcp;
mod payload;
mod tcp;
#[cfg(test)]
mod tests;
mod udp;

pub use clock::{TimestampFormat, UtcOffset};
pub use fmt::{addr, dec, hex, hex_pad};
pub use ip::IfName;
pub use mptcp::tcprst_reason;
pub use tcp::tcp_flag_letters;

use clock::{Clock, utc};
use fmt::pad_left;
use icmp::{icmp4, icmp6};
use ip::{
    Interfaces, endpoints, endpoints_noport, ip4_verbose, ip6_ext_names, ip6_verbose, net_offset, non_ip,
    point_to_point_prefix,
};
use tcp::{TcpPrinter, tcp_unreadable};
use udp::udp;

/// What the printer shows (the tcpdump flags that change a line).
#[derive(Clone, Copy, Debug, Default)]
pub struct PrintOptions {
    /// `-v` count: 1 adds the IP header details and TCP checksum, 2 also the
    /// sequence number of pure ACKs.
    pub verbose: u8,
    pub timestamps: TimestampFormat,
    /// `-S`: absolute TCP sequence numbers.
    pub absolute_seq: bool,
    /// `-#`: the frame number first, as in tcpdump's test outputs.
    pub frame_numbers: bool,
}

/// The tcpdump-style printer. Keep one per capture: it remembers each TCP
/// conversation's initial sequence numbers, as tcpdump does.
pub struct Printer {
    opts: PrintOptions,
    clock: Clock,
    interfaces: Interfaces,
    tcp: TcpPrinter,
}

impl std::fmt::Debug for Printer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer").field("opts", &self.opts).field("conversations", &self.tcp.conversations()).finish()
    }
}

impl Printer {
    pub fn new(opts: PrintOptions) -> Printer {
        Printer::with_utc_offset(opts, utc)
    }

    /// A printer whose wall-clock timestamps use `utc_offset` (tcpdump prints
    /// local time).
    pub fn with_utc_offset(opts: PrintOptions, utc_offset: UtcOffset) -> Printer {
        Printer {
            opts,
            clock: Clock::new(opts.timestamps, utc_offset),
            interfaces: Interfaces::new(None),
            tcp: TcpPrinter::new(opts.verbose, opts.absolute_seq),
        }
    }

    /// Name Linux cooked v2 interfaces with `f` (cached per index); without
    /// it, or when `f` knows no name, they print as `?`, as tcpdump does.
    pub fn with_ifname(mut self, f: IfName) -> Printer {
        self.interfaces = Interfaces::new(Some(f));
        self
    }

    pub fn options(&self) -> &PrintOptions {
        &self.opts
    }

    /// Append tcpdump's text for one frame, without the final newline (the
    /// analysis note goes after it). `frame` is the captured bytes `pkt` was
    /// decoded from.
    pub fn write_packet(&mut self, out: &mut Vec<u8>, meta: &FrameMeta, pkt: &Packet<'_>, frame: &[u8]) {
        if self.opts.frame_numbers {
            pad_left(out, meta.number, 5, b' ');
            out.extend_from_slice(b"  ");
        }
        self.clock.write(out, meta.ts);
        self.write_body(out, meta, pkt, frame);
    }

    fn write_body(&mut self, out: &mut Vec<u8>, meta: &FrameMeta, pkt: &Packet<'_>, frame: &[u8]) {
        let net = net_offset(meta.linktype, frame);
        self.interfaces.write_sll2(out, meta.linktype, frame);
        point_to_point_prefix(out, meta.linktype, frame);
        let Some(ip) = pkt.ip else {
            non_ip(out, meta, pkt, frame, net, self.opts.verbose > 0);
            return;
        };
        let hdr = net.and_then(|n| frame.get(n..)).unwrap_or(&[]);
        // The IP payload as captured, without link-layer padding.
        let start = (ip.header_len as usize).min(hdr.len());
        let end = (ip.total_len as usize).clamp(start, hdr.len());
        let l4 = &hdr[start..end];
        let mut with_addrs = true;
        match ip.src {
            IpAddr::V4(_) => {
                out.extend_from_slice(b"IP ");
                if self.opts.verbose > 0 {
                    ip4_verbose(out, &ip, hdr);
                }
            }
            IpAddr::V6(_) => {
                out.extend_from_slice(b"IP6 ");
                let first_nh = hdr.get(6).copied().unwrap_or(ip.protocol);
                if self.opts.verbose > 0 {
                    ip6_verbose(out, &ip, hdr, first_nh);
                }
                if first_nh != ip.protocol && ip.header_len > 40 {
                    // Extension headers: tcpdump prints the addresses, the
                    // headers, then the transport with ports only.
                    addr(out, ip.src);
                    out.extend_from_slice(b" > ");
                    addr(out, ip.dst);
                    out.extend_from_slice(b": ");
                    ip6_ext_names(out, hdr, first_nh, self.opts.verbose > 0);
                    with_addrs = false;
                }
            }
        }
        let fragmented = ip.more_fragments || ip.frag_offset != 0;
        if let Some(seg) = &pkt.tcp {
            self.tcp.write(out, &ip, seg, l4, fragmented, with_addrs);
            return;
        }
        match pkt.other {
            Some(Other::Udp { sport, dport, len }) => {
                endpoints(out, &ip, sport, dport, with_addrs);
                udp(out, &ip, sport, dport, len, l4, if fragmented { 0 } else { self.opts.verbose });
            }
            Some(Other::Icmp { v6, .. }) => {
                endpoints_noport(out, &ip, with_addrs);
                if v6 {
                    icmp6(out, &ip, l4, self.opts.verbose > 0);
                } else {
                    icmp4(out, &ip, l4, self.opts.verbose > 0);
                }
            }
            Some(Other::Ip { protocol }) => {
                endpoints_noport(out, &ip, with_addrs);
                out.extend_from_slice(b"ip-proto-");
                dec(out, protocol as u64);
                if ip.frag_offset == 0 {
                    out.push(b' ');
                    dec(out, ip.payload_len() as u64);
                }
            }
            _ => {
                if ip.protocol == 6 {
                    tcp_unreadable(out, &ip, l4, with_addrs);
                } else {
                    endpoints_noport(out, &ip, with_addrs);
                    out.extend_from_slice(b" [|ip]");
                }
            }
        }
    }
}
