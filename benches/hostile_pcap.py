#!/usr/bin/env python3
"""Writes the hostile captures of the analysis benchmark (pcap, Ethernet).

  hostile_pcap.py repeats N FILE [--alternate]
      A real MPTCP v1 connection (MP_CAPABLE SYN, SYN/ACK with the server's
      key, third ACK with both keys; with --alternate also an MP_JOIN
      subflow whose HMACs verify, RFC 8684 §3.1 and §3.2), then the same
      1000-byte DSN range sent N times: as TCP retransmissions on the initial
      subflow, or alternating between the two subflows (each copy on the
      second subflow is a reinjection of every copy on the first). No data
      ACK moves, so nothing can be forgotten.

  hostile_pcap.py syns N FILE
      N MP_CAPABLE SYNs on distinct 4-tuples, none answered.

  hostile_pcap.py concat N FILE CAPTURE...
      The given captures one after another, repeated until N frames are
      written, with ports shifted in each repetition so every copy is a new
      connection (a large capture of realistic traffic for speed runs).

Only the standard library; nothing is written into the repository.
"""

import hashlib
import hmac
import struct
import sys

ETH_IP4 = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(a):
    return bytes(int(x) for x in a.split("."))


def frame(src, dst, sport, dport, seq, ack, flags, opts, payload=b""):
    """An Ethernet/IPv4/TCP frame with correct IP and TCP checksums."""
    while len(opts) % 4:
        opts += b"\x01"  # NOP
    thl = 20 + len(opts)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, (thl // 4) << 4, flags,
                      64240, 0, 0) + opts + payload
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
    c = csum(pseudo + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ETH_IP4 + ip + tcp


class Pcap:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        self.t = 1_700_000_000_000_000  # microseconds

    def write(self, data):
        self.t += 1000
        self.f.write(struct.pack("<IIII", self.t // 1_000_000, self.t % 1_000_000, len(data), len(data)))
        self.f.write(data)

    def close(self):
        self.f.close()


SYN, ACK, PSH = 0x02, 0x10, 0x08
MPTCP = 30


def sha(key):
    return hashlib.sha256(struct.pack("!Q", key)).digest()


def token(key):
    return struct.unpack("!I", sha(key)[:4])[0]


def idsn(key):
    return struct.unpack("!Q", sha(key)[-8:])[0]


def mpc(*keys):
    # MP_CAPABLE v1, flags: H (HMAC-SHA256), no checksums.
    return struct.pack("!BBBB", MPTCP, 4 + 8 * len(keys), 0x01, 0x01) + b"".join(struct.pack("!Q", k) for k in keys)


def dss(dack, dsn, ssn, length):
    # DSS with a 4-byte data ACK and a 4-byte DSN mapping (flags A, M).
    return struct.pack("!BBBBIIIH", MPTCP, 4 + 4 + 10, 0x20, 0x05, dack & 0xFFFFFFFF, dsn & 0xFFFFFFFF, ssn, length)


def dss_ack(dack):
    # DSS with a 4-byte data ACK only (flag A).
    return struct.pack("!BBBBI", MPTCP, 8, 0x20, 0x01, dack & 0xFFFFFFFF)


def hmac256(k1, k2, msg):
    return hmac.new(struct.pack("!QQ", k1, k2), msg, hashlib.sha256).digest()


def repeats(n, path, alternate):
    cli, srv = ip4("10.0.1.1"), ip4("10.0.2.1")
    cli2 = ip4("10.0.3.1")
    kc, ks = 0x1111222233334444, 0x5555666677778888
    isn_c, isn_s = 1000, 2000000
    dsn_c = (idsn(kc) + 1) & 0xFFFFFFFFFFFFFFFF
    dack_s = (idsn(ks) + 1) & 0xFFFFFFFFFFFFFFFF
    p = Pcap(path)
    p.write(frame(cli, srv, 40000, 80, isn_c, 0, SYN, mpc()))
    p.write(frame(srv, cli, 80, 40000, isn_s, isn_c + 1, SYN | ACK, mpc(ks)))
    p.write(frame(cli, srv, 40000, 80, isn_c + 1, isn_s + 1, ACK, mpc(kc, ks)))
    # The server's first DSS establishes the connection.
    p.write(frame(srv, cli, 80, 40000, isn_s + 1, isn_c + 1, ACK, dss_ack(dsn_c)))
    payload = bytes((i * 7 + 3) & 0xFF for i in range(1000))
    segs = [frame(cli, srv, 40000, 80, isn_c + 1, isn_s + 1, ACK | PSH, dss(dack_s, dsn_c, 1, len(payload)), payload)]
    if alternate:
        isn2_c, isn2_s = 7000, 9000000
        nc, ns = 0x01020304, 0x0A0B0C0D
        p.write(frame(cli2, srv, 40001, 80, isn2_c, 0, SYN,
                      struct.pack("!BBBBII", MPTCP, 12, 0x10, 2, token(ks), nc)))
        mac_b = hmac256(ks, kc, struct.pack("!II", ns, nc))[:8]
        p.write(frame(srv, cli2, 80, 40001, isn2_s, isn2_c + 1, SYN | ACK,
                      struct.pack("!BBBB", MPTCP, 16, 0x10, 0) + mac_b + struct.pack("!I", ns)))
        mac_a = hmac256(kc, ks, struct.pack("!II", nc, ns))[:20]
        p.write(frame(cli2, srv, 40001, 80, isn2_c + 1, isn2_s + 1, ACK, struct.pack("!BBBB", MPTCP, 24, 0x10, 0) + mac_a))
        p.write(frame(srv, cli2, 80, 40001, isn2_s + 1, isn2_c + 1, ACK, dss_ack(dsn_c)))
        segs.append(frame(cli2, srv, 40001, 80, isn2_c + 1, isn2_s + 1, ACK | PSH,
                          dss(dack_s, dsn_c, 1, len(payload)), payload))
    for i in range(n):
        p.write(segs[i % len(segs)])
    p.close()


def syns(n, path):
    p = Pcap(path)
    srv = ip4("10.9.0.1")
    for i in range(n):
        src = bytes([10, 1 + (i >> 16), (i >> 8) & 0xFF, i & 0xFF])
        # MSS, SACK permitted, timestamps, window scale and MP_CAPABLE, as
        # Linux sends them.
        opts = (b"\x02\x04\x05\xb4\x04\x02\x08\x0a" + struct.pack("!II", i, 0) + b"\x01\x03\x03\x07" + mpc())
        p.write(frame(src, srv, 1024 + i % 60000, 443, 0x10000 * i + 77, 0, SYN, opts))
    p.close()


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        raise SystemExit(f"{path}: not a little-endian pcap file")
    if struct.unpack("<I", data[20:24])[0] != 1:
        raise SystemExit(f"{path}: not Ethernet")
    out, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        out.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return out


def shift_ports(f, k):
    """The frame with both TCP ports moved by k (IPv4/IPv6 without extension
    headers); the TCP checksum is left as it was (the decoders here do not
    check it)."""
    et = struct.unpack("!H", f[12:14])[0]
    if et == 0x0800 and f[23] == 6:
        o = 14 + (f[14] & 0x0F) * 4
    elif et == 0x86DD and f[20] == 6:
        o = 54
    else:
        return f
    if len(f) < o + 4:
        return f
    sp, dp = struct.unpack("!HH", f[o:o + 4])
    return f[:o] + struct.pack("!HH", (sp + k) & 0xFFFF, (dp + k) & 0xFFFF) + f[o + 4:]


def concat(n, path, caps):
    base = [fr for c in caps for fr in read_pcap(c)]
    p = Pcap(path)
    written, rep = 0, 0
    while written < n:
        for fr in base:
            if written == n:
                break
            p.write(shift_ports(fr, rep * 7) if rep else fr)
            written += 1
        rep += 1
    p.close()


def main(argv):
    if len(argv) >= 3 and argv[0] == "repeats":
        repeats(int(argv[1]), argv[2], "--alternate" in argv[3:])
    elif len(argv) == 3 and argv[0] == "syns":
        syns(int(argv[1]), argv[2])
    elif len(argv) >= 4 and argv[0] == "concat":
        concat(int(argv[1]), argv[2], argv[3:])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
