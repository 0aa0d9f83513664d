//! Live capture through libpcap: an interface opened non-blocking (the
//! reader waits in poll(2) itself, so that a quiet interface still lets a
//! stop request through), with the filter in the kernel.

use std::os::fd::AsRawFd;

use pcap::{Active, Capture, Precision};

use super::{CaptureError, linktype_name, pcap_msg};
use crate::dissect::packet::linktype;

/// The snapshot length of a live capture unless told otherwise (tcpdump's).
pub const DEFAULT_SNAPLEN: i32 = 262_144;

/// Open `iface`: promiscuous or not, `snaplen` bytes kept per frame,
/// nanosecond timestamps, `filter` compiled into the kernel.
pub(super) fn open(
    iface: &str,
    snaplen: Option<i32>,
    promisc: bool,
    filter: Option<&str>,
) -> Result<(Capture<Active>, u32), CaptureError> {
    let live = |e: pcap::Error| CaptureError::Live { iface: iface.to_string(), reason: pcap_msg(e) };
    let mut cap = Capture::from_device(iface)
        .map_err(live)?
        .promisc(promisc)
        .snaplen(snaplen.unwrap_or(DEFAULT_SNAPLEN))
        .immediate_mode(true)
        .timeout(100)
        .precision(Precision::Nano)
        .open()
        .map_err(live)?;
    let lt = cap.get_datalink().0;
    if lt < 0 || !linktype::supported(lt as u32) {
        return Err(CaptureError::UnsupportedLinkType {
            file: iface.to_string(),
            linktype: lt,
            name: linktype_name(lt),
        });
    }
    if let Some(expr) = filter {
        cap.filter(expr, true).map_err(|e| CaptureError::Filter {
            source_name: iface.to_string(),
            expr: expr.to_string(),
            reason: pcap_msg(e),
        })?;
    }
    let cap = cap.setnonblock().map_err(live)?;
    Ok((cap, lt as u32))
}

/// Wait up to `ms` milliseconds for a live capture to have a frame; a signal
/// ends the wait early (the caller then checks its stop flag).
pub(super) fn wait_readable(cap: &Capture<Active>, ms: i32) {
    let mut p = libc::pollfd { fd: cap.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, for the duration of the call.
    unsafe {
        libc::poll(&mut p, 1, ms);
    }
}
