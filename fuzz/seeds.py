#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target under testdata/fuzz/TARGET/,
from the small bundled captures and from hand-built hostile inputs (the
capture-side defects of issue 13, each as the input that showed it).

Run from the repository root: python3 fuzz/seeds.py. Files named crash-* in
those folders are crashers a fuzzer found; this script never touches them."""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "testdata", "fuzz")
SMALL = [
    "testdata/captures/pcap/single-subflow.pcap",
    "testdata/captures/pcap/fallback-tcp.pcap",
    "testdata/captures/pcap/fastopen.pcap",
    "testdata/captures/tcpdump-tests/mptcp-aa-echo.pcap",
    "testdata/captures/tcpdump-tests/mptcp-aa-v1.pcap",
    "testdata/captures/tcpdump-tests/mptcp-dss-oobr.pcap",
    "testdata/captures/tcpdump-tests/mptcp-fclose.pcap",
    "testdata/captures/tcpdump-tests/mptcp-tcprst.pcap",
]


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def records(path):
    """(linktype, [(ts_us, frame)]) of a classic little-endian pcap."""
    data = open(os.path.join(ROOT, path), "rb").read()
    assert data[:4] == b"\xd4\xc3\xb2\xa1", path
    lt = struct.unpack("<I", data[20:24])[0]
    off, out = 24, []
    while off + 16 <= len(data):
        sec, usec, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        out.append((sec * 1_000_000 + usec, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return lt, out


def pcap(linktype, frames):
    """A classic pcap of (sec, usec, frame)."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for sec, usec, f in frames:
        out += struct.pack("<IIII", sec, usec, len(f), len(f)) + f
    return out


def block(kind, body):
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", kind, n) + body + struct.pack("<I", n)


def option(code, value):
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def pcapng(linktype, frames, tsresol=None, tsoffset=None, spb_first=False):
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = b""
    if tsresol is not None:
        opts += option(9, bytes([tsresol]))
    if tsoffset is not None:
        opts += option(14, struct.pack("<q", tsoffset))
    if opts:
        opts += option(0, b"")
    idb = block(1, struct.pack("<HHI", linktype, 0, 65535) + opts)
    out = shb + idb
    if spb_first and frames:
        out += block(3, struct.pack("<I", len(frames[0][1])) + frames[0][1])
    for ts, f in frames:
        out += block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(f), len(f)) + f)
    return out


def tcp_options(frame, linktype):
    """The TCP option bytes of an Ethernet or raw IPv4/IPv6 frame, or None."""
    ip = {1: 14, 101: 0, 113: 16}.get(linktype)
    if ip is None or len(frame) < ip + 20:
        return None
    v = frame[ip] >> 4
    if v == 4:
        if frame[ip + 9] != 6:
            return None
        tcp = ip + (frame[ip] & 15) * 4
    elif v == 6:
        if frame[ip + 6] != 6:
            return None
        tcp = ip + 40
    else:
        return None
    if len(frame) < tcp + 20:
        return None
    return frame[tcp + 20:tcp + (frame[tcp + 12] >> 4) * 4]


def main():
    for path in SMALL:
        name = os.path.basename(path)
        data = open(os.path.join(ROOT, path), "rb").read()
        put("capture", name, data)
        put("replay", name, data)

    lt, recs = records("testdata/captures/pcap/single-subflow.pcap")
    t0 = recs[0][0]
    # The same frames as pcapng, nanosecond and binary (2^-10 s) resolution.
    ns = [((t - t0) * 1000 + 1_700_000_000 * 10**9, f) for t, f in recs]
    put("capture", "single-subflow.pcapng", pcapng(lt, ns, tsresol=9))
    # Defects of issue 13, each as the input that showed it:
    # a first frame at time 0 then real time (a replay waited for years);
    frames = [(0, 0, recs[0][1])] + [(1_700_000_000, i, f) for i, (_, f) in enumerate(recs[1:])]
    for t in ("capture", "replay"):
        put(t, "first-frame-at-zero.pcap", pcap(lt, frames))
        # a Simple Packet Block (no timestamp) before timestamped blocks;
        put(t, "spb-before-epb.pcapng", pcapng(lt, ns, spb_first=True))
        # a binary resolution, 2^-10 s;
        put(t, "tsresol-binary.pcapng", pcapng(lt, [(1 << 40 | i, f) for i, (_, f) in enumerate(recs)], tsresol=0x8A))
        # timestamps near 2^63 s from resolution and offset (a panic
        # converting float seconds to a Duration).
        put(t, "tsoffset-huge.pcapng", pcapng(lt, [(0xFFFFFFFF_FFFFFF00 + i, f) for i, (_, f) in enumerate(recs)],
                                             tsresol=0x80 | 63, tsoffset=(1 << 63) - 1))
        # a block length that runs past the end of the file.
        bad = bytearray(pcapng(lt, ns[:2], tsresol=9))
        bad[-8:-4] = struct.pack("<I", 0x7FFFFFF0)
        put(t, "block-length-past-end.pcapng", bytes(bad))

    # frames: selector, then per frame a 2-byte step in ms, a 2-byte length, the bytes.
    for path in SMALL[:3]:
        lt, recs = records(path)
        sel = {1: 0, 101: 1, 113: 2}[lt]
        out, prev = bytes([sel]), recs[0][0]
        for t, f in recs:
            out += struct.pack(">HH", min((t - prev) // 1000, 0xFFFE), len(f)) + f
            prev = t
        put("frames", os.path.basename(path) + ".frames", out)
        for i, (_, f) in enumerate(recs[:6]):
            put("decode", f"{os.path.basename(path)}.{i}", bytes([sel]) + f)
            o = tcp_options(f, lt)
            if o:
                put("options", f"{os.path.basename(path)}.{i}", o)
            # stack_input: the IP packet alone (raw), for the stack's input.
            ip = {1: 14, 101: 0, 113: 16}[lt]
            put("stack_input", f"{os.path.basename(path)}.{i}", f[ip:].replace(b"\xff", b"\xfe"))

    for i, line in enumerate([b"snapshot\n", b"events\n", b"snapshot\nevents\nbogus\n", b'{"events":[]}\n',
                              b'{"error":"x"}\n', b"\x1b[31mevents" + b"x" * 5000]):
        put("control", f"seed-{i}", line)
    for i, n in enumerate([16, 64, 256, 1024]):
        put("stack_script", f"seed-{i}", bytes((j * 37 + i) & 0xFF for j in range(n)))


if __name__ == "__main__":
    main()
