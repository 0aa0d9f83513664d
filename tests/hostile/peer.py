#!/usr/bin/env python3
"""A hostile MPTCP peer for mptcp-tools' interop tests (tests/cat_hostile.rs).

Runs inside a test's network namespace, on the kernel side of the TUN device
of `mptcp-cat --stack embedded`. It writes crafted IPv4/TCP segments with a
raw socket (IP_HDRINCL, so it can spoof any source: addresses on the TUN's
prefix that nobody owns, or the kernel's own) and reads what our stack sends
with a packet socket on the TUN (the kernel drops what is addressed to
nobody: no RST spoils the exchange). Standard library only.

Every subcommand prints one JSON object of figures on stdout at the end.

  synflood DEV DST PORT COUNT SECONDS
      COUNT MP_CAPABLE SYNs from spoofed sources of DST's /24 (not .1, .2),
      spread over SECONDS.
  rststorm DEV DST PORT COUNT
      Wait for a connection to DST:PORT (its SYN), then send COUNT RSTs on
      its 4-tuple with sequence numbers far out of the window (RFC 5961).
  joins DEV DST PORT N
      Open an MPTCP connection from a spoofed address, then N MP_JOIN SYNs
      with unknown tokens and N with the right token whose third ACK has a
      bad HMAC. Counts the RSTs that answer them.
  addaddr DEV DST PORT N
      Open an MPTCP connection, then N ADD_ADDRs with valid HMACs (new
      addresses, cycling IDs).
  zerowindow DEV DST PORT SECONDS
      Open an MPTCP connection advertising a zero window and keep it shut
      for SECONDS, answering probes with zero-window ACKs; count what our
      stack sends meanwhile.
  fakeserver DEV ADDR PORT N SECONDS
      Answer the first MP_CAPABLE SYN to ADDR:PORT as an MPTCP server, then
      announce N addresses with ADD_ADDR; count the MP_JOIN SYNs our stack
      sends to them within SECONDS.
"""
import hashlib
import hmac
import json
import os
import random
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def packet(src, dst, sport, dport, seq, ack, flags, win, opts=b"", payload=b""):
    """An IPv4 packet with a TCP segment, checksums set."""
    while len(opts) % 4:
        opts += b"\x01"
    doff = (20 + len(opts)) // 4
    s, d = socket.inet_aton(src), socket.inet_aton(dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, doff << 4, flags, win, 0, 0)
    tcp += opts + payload
    c = csum(s + d + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, s, d)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + tcp


def parse(p):
    """The TCP segment of an IPv4 packet, or None."""
    if len(p) < 40 or p[0] >> 4 != 4 or p[9] != 6:
        return None
    ihl = (p[0] & 0xF) * 4
    t = p[ihl:]
    if len(t) < 20:
        return None
    sport, dport, seq, ack, off, flags, win = struct.unpack("!HHIIBBH", t[:16])
    hl = (off >> 4) * 4
    opts, i = [], 20
    while i < min(hl, len(t)):
        k = t[i]
        if k == 0:
            break
        if k == 1:
            i += 1
            continue
        if i + 1 >= len(t):
            break
        n = t[i + 1]
        if n < 2:
            break
        opts.append((k, bytes(t[i + 2:i + n])))
        i += n
    return {
        "src": socket.inet_ntoa(p[12:16]), "dst": socket.inet_ntoa(p[16:20]),
        "sport": sport, "dport": dport, "seq": seq, "ack": ack, "flags": flags, "win": win,
        "opts": opts, "payload": bytes(t[hl:]),
    }


def mptcp_opts(seg):
    return [(d[0] >> 4, d) for k, d in seg["opts"] if k == 30 and d]


# Options ------------------------------------------------------------------
def o_mss(v=1460):
    return struct.pack("!BBH", 2, 4, v)


def o_ts(val, ecr):
    return b"\x01\x01" + struct.pack("!BBII", 8, 10, val, ecr)


def o_syn_opts():
    return o_mss() + b"\x04\x02" + o_ts(1, 0) + b"\x01" + struct.pack("!BBB", 3, 3, 7)


def o_mpc_syn():
    return struct.pack("!BBBB", 30, 4, 0x01, 0x01)


def o_mpc_ack(ka, kb):
    return struct.pack("!BBBBQQ", 30, 20, 0x01, 0x01, ka, kb)


def o_dss_ack(data_ack):
    # DSS with an 8-byte DATA_ACK only (flags A | a).
    return struct.pack("!BBBBQ", 30, 12, 0x20, 0x03, data_ack)


def o_join_syn(token, nonce, addr_id=5):
    return struct.pack("!BBBBII", 30, 12, 0x10, addr_id, token, nonce)


def o_join_ack(mac20):
    return struct.pack("!BBBB", 30, 24, 0x10, 0) + mac20


def o_add_addr(addr_id, addr, mac8):
    return struct.pack("!BBBB", 30, 16, 0x30, addr_id) + socket.inet_aton(addr) + mac8


def o_mpc_synack(key):
    return struct.pack("!BBBBQ", 30, 12, 0x01, 0x01, key)


def token_idsn(key):
    d = hashlib.sha256(struct.pack("!Q", key)).digest()
    return struct.unpack("!I", d[:4])[0], struct.unpack("!Q", d[-8:])[0]


def add_addr_hmac(k_sender, k_receiver, addr_id, addr):
    key = struct.pack("!QQ", k_sender, k_receiver)
    msg = struct.pack("!B", addr_id) + socket.inet_aton(addr) + b"\0\0"
    return hmac.new(key, msg, hashlib.sha256).digest()[-8:]


# Sockets ------------------------------------------------------------------
class Wire:
    def __init__(self, dev):
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.tx.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        self.rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.rx.bind((dev, 0))
        self.rx.setblocking(False)
        self.sent = 0

    def send(self, pkt):
        """Send one packet; False once there is no route any more (the TUN
        device went away with the process under test)."""
        dst = socket.inet_ntoa(pkt[16:20])
        while True:
            try:
                self.tx.sendto(pkt, (dst, 0))
                self.sent += 1
                return True
            except BlockingIOError:
                time.sleep(0.001)
            except OSError as e:
                if e.errno in (105, 11):  # ENOBUFS, EAGAIN: a full queue
                    time.sleep(0.001)
                    continue
                if e.errno in (101, 113):  # ENETUNREACH, EHOSTUNREACH
                    return False
                raise

    def recv(self, timeout):
        """Segments our stack sent (packets the kernel receives on the TUN)."""
        out = []
        end = time.time() + timeout
        while True:
            left = end - time.time()
            r, _, _ = select.select([self.rx], [], [], max(0.0, left))
            if not r:
                return out
            while True:
                try:
                    data, addr = self.rx.recvfrom(70000)
                except BlockingIOError:
                    break
                if addr[2] == socket.PACKET_OUTGOING:
                    continue
                s = parse(data)
                if s is not None:
                    out.append(s)
            if out or left <= 0:
                return out

    def wait_for(self, pred, timeout):
        end = time.time() + timeout
        while time.time() < end:
            for s in self.recv(end - time.time()):
                if pred(s):
                    return s
        return None


def spoofed(net, n):
    """The nth spoofed address of NET's /24 (never .0, .1, .2, .255)."""
    base = net.rsplit(".", 1)[0]
    return "%s.%d" % (base, 3 + n % 250)


class Conn:
    """An MPTCP connection opened by the hostile peer from `src`."""

    def __init__(self, w, src, sport, dst, dport, window=65535):
        self.w, self.src, self.sport, self.dst, self.dport = w, src, sport, dst, dport
        self.ka = random.getrandbits(64)
        self.iss = random.getrandbits(32)
        self.window = window
        w.send(packet(src, dst, sport, dport, self.iss, 0, SYN, 65535, o_syn_opts() + o_mpc_syn()))
        sa = w.wait_for(lambda s: self.mine(s) and s["flags"] & (SYN | ACK) == SYN | ACK, 5)
        if sa is None:
            raise SystemExit("no SYN/ACK from %s:%d" % (dst, dport))
        kb = [d for t, d in mptcp_opts(sa) if t == 0]
        if not kb or len(kb[0]) < 10:
            raise SystemExit("the SYN/ACK has no MP_CAPABLE with a key")
        self.kb = struct.unpack("!Q", kb[0][2:10])[0]
        self.token_b, idsn_b = token_idsn(self.kb)
        self.data_ack = (idsn_b + 1) & (2 ** 64 - 1)
        self.seq = (self.iss + 1) & 0xFFFFFFFF
        self.rcv_nxt = (sa["seq"] + 1) & 0xFFFFFFFF
        self.ts = [t for k, t in sa["opts"] if k == 8]
        self.send(ACK, o_mpc_ack(self.ka, self.kb))

    def mine(self, s):
        return s["dst"] == self.src and s["dport"] == self.sport and s["sport"] == self.dport

    def ts_opt(self):
        ecr = struct.unpack("!II", self.ts[-1])[0] if self.ts else 0
        return o_ts(int(time.time() * 1000) & 0xFFFFFFFF, ecr)

    def send(self, flags, opts=b"", payload=b"", window=None):
        win = self.window if window is None else window
        self.w.send(packet(self.src, self.dst, self.sport, self.dport, self.seq, self.rcv_nxt, flags, win,
                           self.ts_opt() + opts, payload))


# Subcommands ----------------------------------------------------------------
def synflood(dev, dst, port, count, seconds):
    w = Wire(dev)
    t0 = time.time()
    for i in range(count):
        src = spoofed(dst, i)
        sport = 1024 + (i * 7919) % 64000
        w.send(packet(src, dst, sport, port, random.getrandbits(32), 0, SYN, 65535, o_syn_opts() + o_mpc_syn()))
        # Pace: i packets by i/count of the time.
        ahead = t0 + seconds * (i + 1) / count - time.time()
        if ahead > 0.002:
            time.sleep(ahead)
    answers = len(w.recv(0.5))
    return {"syns_sent": w.sent, "seconds": round(time.time() - t0, 3), "answers_seen_at_end": answers}


def rststorm(dev, dst, port, count):
    w = Wire(dev)
    # The connection's SYN goes out of the kernel into the TUN: outgoing.
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    rx.bind((dev, 0))
    rx.settimeout(20)
    syn = None
    while syn is None:
        data = rx.recv(70000)
        s = parse(data)
        if s and s["dst"] == dst and s["dport"] == port and s["flags"] & (SYN | ACK) == SYN:
            syn = s
    t0 = time.time()
    for i in range(count):
        # Sequence numbers 2^30..2^31 away from anything the connection uses.
        seq = (syn["seq"] + 0x40000000 + random.getrandbits(30)) & 0xFFFFFFFF
        if not w.send(packet(syn["src"], dst, syn["sport"], port, seq, 0, RST, 0)):
            break
    return {"rsts_sent": w.sent, "seconds": round(time.time() - t0, 3),
            "tuple": "%s:%d -> %s:%d" % (syn["src"], syn["sport"], dst, port)}


def joins(dev, dst, port, n):
    w = Wire(dev)
    c = Conn(w, spoofed(dst, 40), 40000, dst, port)
    time.sleep(0.2)
    w.recv(0.1)
    res = {"token": "%08x" % c.token_b, "unknown_token_rsts": 0, "bad_hmac_synacks": 0, "bad_hmac_rsts": 0}
    src = spoofed(dst, 41)
    for i in range(n):
        tok = random.getrandbits(32)
        if tok == c.token_b:
            tok ^= 1
        sport = 41000 + i
        w.send(packet(src, dst, sport, port, 1000, 0, SYN, 65535, o_mss() + o_join_syn(tok, i)))
        r = w.wait_for(lambda s: s["dst"] == src and s["dport"] == sport, 2)
        if r is not None and r["flags"] & RST:
            res["unknown_token_rsts"] += 1
    for i in range(n):
        sport = 42000 + i
        w.send(packet(src, dst, sport, port, 5000, 0, SYN, 65535, o_mss() + o_join_syn(c.token_b, i)))
        sa = w.wait_for(lambda s: s["dst"] == src and s["dport"] == sport, 2)
        if sa is None or sa["flags"] & (SYN | ACK) != SYN | ACK:
            continue
        res["bad_hmac_synacks"] += 1
        w.send(packet(src, dst, sport, port, 5001, sa["seq"] + 1, ACK, 65535, o_join_ack(b"\x5a" * 20)))
        r = w.wait_for(lambda s: s["dst"] == src and s["dport"] == sport and s["flags"] & RST, 2)
        if r is not None:
            res["bad_hmac_rsts"] += 1
    return res


def addaddr(dev, dst, port, n):
    w = Wire(dev)
    c = Conn(w, spoofed(dst, 60), 40100, dst, port)
    time.sleep(0.2)
    w.recv(0.1)
    echoes = 0
    t0 = time.time()
    for i in range(n):
        addr = "10.%d.%d.%d" % (100 + (i >> 16) % 100, (i >> 8) & 255, i & 255)
        aid = 1 + i % 250
        c.send(ACK, o_dss_ack(c.data_ack) + o_add_addr(aid, addr, add_addr_hmac(c.ka, c.kb, aid, addr)))
        if i % 200 == 199:
            echoes += sum(1 for s in w.recv(0.001) if c.mine(s) for t, d in mptcp_opts(s) if t == 3 and d[0] & 1)
    time.sleep(0.3)
    echoes += sum(1 for s in w.recv(0.3) if c.mine(s) for t, d in mptcp_opts(s) if t == 3 and d[0] & 1)
    return {"add_addr_sent": n, "seconds": round(time.time() - t0, 3), "echoes_seen": echoes}


def zerowindow(dev, dst, port, seconds):
    w = Wire(dev)
    c = Conn(w, spoofed(dst, 80), 40200, dst, port, window=0)
    t0 = time.time()
    pkts = probes = data = 0
    while time.time() - t0 < seconds:
        for s in w.recv(0.2):
            if not c.mine(s):
                continue
            pkts += 1
            if s["payload"]:
                data += 1
            ts = [t for k, t in s["opts"] if k == 8]
            if ts:
                c.ts = ts
            # Whatever it sends (a probe, data into the shut window): the
            # window stays shut; acknowledge nothing new.
            probes += 1
            c.send(ACK, o_dss_ack(c.data_ack), window=0)
    return {"seconds": round(time.time() - t0, 3), "packets_from_stack": pkts, "data_segments": data,
            "answered": probes}


def fakeserver(dev, addr, port, n, seconds):
    w = Wire(dev)
    rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    rx.bind((dev, 0))
    rx.settimeout(20)
    syn = None
    while syn is None:
        s = parse(rx.recv(70000))
        if s and s["dst"] == addr and s["dport"] == port and s["flags"] & (SYN | ACK) == SYN:
            syn = s
    kb = random.getrandbits(64)
    iss = random.getrandbits(32)
    cli, cport = syn["src"], syn["sport"]
    ts = [t for k, t in syn["opts"] if k == 8]
    tsval = struct.unpack("!II", ts[0])[0] if ts else 0
    w.send(packet(addr, cli, port, cport, iss, syn["seq"] + 1, SYN | ACK, 65535,
                  o_mss() + b"\x04\x02" + o_ts(7, tsval) + b"\x01" + struct.pack("!BBB", 3, 3, 7) + o_mpc_synack(kb)))
    ack = w.wait_for(lambda s: s["src"] == cli and s["sport"] == cport and s["flags"] & ACK
                     and any(t == 0 and len(d) >= 18 for t, d in mptcp_opts(s)), 5)
    if ack is None:
        raise SystemExit("no third ACK from our stack")
    ka = [struct.unpack("!Q", d[2:10])[0] for t, d in mptcp_opts(ack) if t == 0][0]
    _, idsn_a = token_idsn(ka)
    seq, rcv = (iss + 1) & 0xFFFFFFFF, ack["seq"]
    for i in range(n):
        a = "10.%d.%d.%d" % (150 + i // 65536, (i // 256) % 256, i % 256 or 1)
        aid = 1 + i % 250
        w.send(packet(addr, cli, port, cport, seq, rcv, ACK, 65535,
                      o_ts(8, tsval) + o_dss_ack(idsn_a + 1) + o_add_addr(aid, a, add_addr_hmac(kb, ka, aid, a))))
    joins = set()
    t0 = time.time()
    while time.time() - t0 < seconds:
        for s in w.recv(0.2):
            if s["flags"] & (SYN | ACK) == SYN and any(t == 1 for t, d in mptcp_opts(s)):
                joins.add((s["dst"], s["dport"], s["sport"]))
    return {"add_addr_sent": n, "join_syns_seen": len(joins), "join_targets": len({j[0] for j in joins})}


def main():
    cmd, dev = sys.argv[1], sys.argv[2]
    a = sys.argv[3:]
    if cmd == "synflood":
        r = synflood(dev, a[0], int(a[1]), int(a[2]), float(a[3]))
    elif cmd == "rststorm":
        r = rststorm(dev, a[0], int(a[1]), int(a[2]))
    elif cmd == "joins":
        r = joins(dev, a[0], int(a[1]), int(a[2]))
    elif cmd == "addaddr":
        r = addaddr(dev, a[0], int(a[1]), int(a[2]))
    elif cmd == "zerowindow":
        r = zerowindow(dev, a[0], int(a[1]), float(a[2]))
    elif cmd == "fakeserver":
        r = fakeserver(dev, a[0], int(a[1]), int(a[2]), float(a[3]))
    else:
        raise SystemExit("unknown subcommand " + cmd)
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
