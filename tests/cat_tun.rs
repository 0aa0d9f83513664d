//! The TUN driver without the stack: in a fresh network namespace, open the
//! device, give the kernel side its address, let the kernel ping the far
//! address and answer from the fd. Needs root, /dev/net/tun and python3
//! (the ICMP sender: this machine has no ping binary).

mod common;

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{NetNs, require_interop};
use mptcp_tools::sys::tun::{Tun, TunOptions};
use mptcp_tools::sys::{POLLIN, PollFd, poll};

/// Run `f` on a thread that has entered `ns`'s network namespace: the TUN
/// device and netlink sockets it creates live there.
fn in_netns<T: Send + 'static>(ns: &NetNs, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{}", ns.name);
    std::thread::spawn(move || {
        let nsf = File::open(&path).expect("open netns");
        // SAFETY: setns(2) on this thread only, with a namespace fd.
        let r = unsafe { libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The echo reply to an IPv4 ICMP echo request for `me`, if `p` is one.
fn echo_reply(p: &[u8], me: [u8; 4]) -> Option<Vec<u8>> {
    if p.len() < 28 || p[0] >> 4 != 4 || p[9] != 1 || p[16..20] != me {
        return None;
    }
    let ihl = usize::from(p[0] & 0xf) * 4;
    if p.get(ihl) != Some(&8) {
        return None;
    }
    let mut r = p.to_vec();
    r[12..16].copy_from_slice(&p[16..20]);
    r[16..20].copy_from_slice(&p[12..16]);
    r[8] = 64;
    r[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(&r[..ihl]);
    r[10..12].copy_from_slice(&c.to_be_bytes());
    r[ihl] = 0;
    r[ihl + 2..ihl + 4].copy_from_slice(&[0, 0]);
    let c = checksum(&r[ihl..]);
    r[ihl + 2..ihl + 4].copy_from_slice(&c.to_be_bytes());
    Some(r)
}

const PING: &str = r#"
import os, socket, struct, sys, time
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(3)
ident, payload = os.getpid() & 0xffff, b"mptcp-tools tun test"
hdr = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
pkt = struct.pack("!BBHHH", 8, 0, csum(hdr + payload), ident, 1) + payload
s.sendto(pkt, (sys.argv[1], 0))
deadline = time.time() + 3
while time.time() < deadline:
    data, addr = s.recvfrom(2048)
    ihl = (data[0] & 15) * 4
    t, code, _, rid, seq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
    if t == 0 and rid == ident and seq == 1 and data[ihl + 8:] == payload and addr[0] == sys.argv[1]:
        print("reply from", addr[0]); sys.exit(0)
sys.exit(1)
"#;

#[test]
fn kernel_pings_through_the_tun() {
    require_interop(&["python3"]);
    let ns = NetNs::new("tunping");
    let (ready_tx, ready_rx) = mpsc::channel();
    let answerer = in_netns(&ns, move || {
        let tun = Tun::open("mtun0", TunOptions::default()).expect("open tun");
        let local: IpAddr = "10.200.0.2".parse().unwrap();
        let given = tun.give_kernel_side(&[(local, 24)]).expect("configure tun");
        assert_eq!(given, vec![("10.200.0.1".parse().unwrap(), 24)]);
        ready_tx.send(()).unwrap();
        let mut buf = vec![0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut answered = 0;
        while Instant::now() < deadline && answered == 0 {
            let mut fds = [PollFd::new(&tun, POLLIN)];
            poll(&mut fds, Some(Duration::from_millis(200))).unwrap();
            if !fds[0].readable() {
                continue;
            }
            let n = tun.recv(&mut buf).expect("read tun");
            if let Some(reply) = echo_reply(&buf[..n], [10, 200, 0, 2]) {
                assert_eq!(tun.send(&reply).expect("write tun"), reply.len());
                answered += 1;
            }
        }
        answered
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).expect("TUN not configured");
    let addrs = ns.sh("ip -4 addr show dev mtun0");
    assert!(addrs.contains("10.200.0.1/24"), "{addrs}");
    assert!(ns.sh("ip link show mtun0").contains(",UP"), "link not up");
    let script = std::env::temp_dir().join(format!("mt-ping-{}.py", std::process::id()));
    std::fs::write(&script, PING).unwrap();
    let out = ns.sh_any(&format!("python3 {} 10.200.0.2", script.display()));
    let _ = std::fs::remove_file(&script);
    assert!(
        out.status.success(),
        "the kernel's ping got no reply: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(answered(answerer), 1);
}

fn answered(h: std::thread::JoinHandle<i32>) -> i32 {
    h.join().expect("answerer thread")
}

#[test]
fn persistent_device_is_reused_with_its_addresses() {
    require_interop(&[]);
    let ns = NetNs::new("tunpers");
    ns.sh("ip tuntap add dev mtp0 mode tun && ip addr add 10.9.9.9/32 dev mtp0");
    let h = in_netns(&ns, || {
        let tun = Tun::open("mtp0", TunOptions::default()).expect("attach");
        let l: IpAddr = "10.201.0.2".parse().unwrap();
        tun.give_kernel_side(&[(l, 24)]).expect("first");
        // Again: the address is already there, which is fine.
        tun.give_kernel_side(&[(l, 24)]).expect("second");
        assert!(tun.give_kernel_side(&[("10.202.0.1".parse().unwrap(), 24)]).is_err());
    });
    h.join().expect("thread");
    let addrs = ns.sh("ip -4 addr show dev mtp0");
    assert!(addrs.contains("10.9.9.9/32"), "existing address lost: {addrs}");
    assert!(addrs.contains("10.201.0.1/24"), "{addrs}");
    // Persistent: still there after our fd closed.
    assert!(ns.sh("ip link show mtp0").contains("mtp0"));
}

#[test]
fn vnet_header_mode_opens() {
    require_interop(&[]);
    let ns = NetNs::new("tunvnet");
    let h = in_netns(&ns, || {
        let tun = Tun::open("mtv0", TunOptions { vnet_hdr: true }).expect("vnet tun");
        assert!(tun.vnet_hdr());
    });
    h.join().expect("thread");
}
