#!/bin/sh
# Memory of `mptcp-cat --stack embedded -l -k` under a SYN flood, for any
# build of it (to compare one with another):
#   benches/syn_flood_rss.sh [MPTCP_CAT_BINARY]   (default target/debug/mptcp-cat)
# In a fresh network namespace: the server's VmRSS/VmHWM idle, 2 s into a
# flood of 30,000 spoofed MP_CAPABLE SYNs over 6 s (tests/hostile/peer.py),
# after it; a kernel MPTCP client (python3, IPPROTO_MPTCP) exchanges 4 MiB
# each way during the flood. Needs root, /dev/net/tun, python3.
set -eu
cd "$(dirname "$0")/.."
BIN=${1:-target/debug/mptcp-cat}
NS=mt-synrss-$$
D=$(mktemp -d)
cleanup() {
    for p in $(ip netns pids "$NS" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
    sleep 0.3
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT
ip netns add "$NS"
ip netns exec "$NS" ip link set lo up
head -c 4194304 /dev/urandom > "$D/down.bin"
head -c 4194304 /dev/urandom > "$D/up.bin"
cat > "$D/client.py" <<'PY'
import socket, sys, threading
c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
c.settimeout(20)
c.connect(("10.200.0.2", 5000))
def tx():
    c.sendall(open(sys.argv[1], "rb").read()); c.shutdown(socket.SHUT_WR)
t = threading.Thread(target=tx); t.start()
n = 0
while True:
    b = c.recv(1 << 18)
    if not b: break
    n += len(b)
t.join()
print("kernel client: received %d bytes, MPTCP %d" % (n, c.getsockopt(socket.SOL_TCP, 43)))
PY
ip netns exec "$NS" "$BIN" --stack embedded --tun mtun0 -l -k --local 10.200.0.2/24 5000 \
    < "$D/down.bin" > "$D/srv.out" 2> "$D/srv.err" &
sleep 1.5
PID=$(ip netns pids "$NS" | head -1)
rss() { grep -E '^(VmRSS|VmHWM)' "/proc/$PID/status" | tr -s ' \t' ' ' | tr '\n' ' '; }
echo "binary: $BIN"
echo "idle:            $(rss)"
ip netns exec "$NS" python3 tests/hostile/peer.py synflood mtun0 10.200.0.2 5000 30000 6 > "$D/flood.json" &
FLOOD=$!
sleep 2
echo "2 s into flood:  $(rss)"
timeout 30 ip netns exec "$NS" python3 "$D/client.py" "$D/up.bin" || echo "kernel client: failed"
wait "$FLOOD"
echo "flood: $(cat "$D/flood.json")"
echo "after the flood: $(rss)"
if cmp -s "$D/srv.out" "$D/up.bin"; then echo "server: received the client's 4 MiB intact"; else echo "server: received other bytes"; fi
