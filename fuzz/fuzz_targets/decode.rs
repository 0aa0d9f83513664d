//! The frame decoder and the tcpdump printer on arbitrary frames: the first
//! byte picks the link type, the rest is the frame. Nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mptcp_tools::dissect::packet::{FrameMeta, decode, linktype};
use mptcp_tools::dissect::tcpdump::{PrintOptions, Printer};

const LINKTYPES: [u32; 7] =
    [linktype::ETHERNET, linktype::RAW, linktype::LINUX_SLL, linktype::LINUX_SLL2, linktype::NULL, linktype::IPV6, 147];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, frame)) = data.split_first() else { return };
    let lt = LINKTYPES[sel as usize % LINKTYPES.len()];
    let pkt = decode(lt, frame);
    if let Some(tcp) = &pkt.tcp {
        for o in tcp.options() {
            let _ = o;
        }
    }
    let meta = FrameMeta {
        number: 1,
        caplen: frame.len() as u32,
        len: frame.len() as u32 + (sel as u32 >> 4),
        linktype: lt,
        ..Default::default()
    };
    let mut out = Vec::with_capacity(256);
    Printer::new(PrintOptions { verbose: sel % 3, ..Default::default() }).write_packet(&mut out, &meta, &pkt, frame);
});
