#!/usr/bin/env bash
# One whole kernel scan by mptcp-ss beside iproute2's ss printing the same
# sockets: N kernel MPTCP connections between two namespaces, each with its
# MP_CAPABLE subflow and one MP_JOIN subflow, idle; then hyperfine times
# `mptcp-ss --once --json`, `mptcp-ss --once` and `ss -tinM` in the client
# namespace, and the script checks that mptcp-ss saw every connection.
#
#   sudo N=1000 benches/ss_compare.sh        (default N=1000)
#
# Needs root, iproute2, python3, hyperfine. Builds the release mptcp-ss.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
[ "$(id -u)" = 0 ] || { echo "ss_compare: needs root (network namespaces)" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "ss_compare: needs hyperfine" >&2; exit 1; }
cargo build --release --bin mptcp-ss >&2
BIN=$PWD/target/release/mptcp-ss
C=ssb-cli-$$
S=ssb-srv-$$
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    ip netns del "$C" 2>/dev/null || true
    ip netns del "$S" 2>/dev/null || true
}
trap cleanup EXIT
for ns in $C $S; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add c1 netns "$C" type veth peer name s1 netns "$S"
ip link add c2 netns "$C" type veth peer name s2 netns "$S"
ip -n "$C" addr add 10.95.1.1/24 dev c1; ip -n "$C" link set c1 up
ip -n "$C" addr add 10.95.2.1/24 dev c2; ip -n "$C" link set c2 up
ip -n "$S" addr add 10.95.1.2/24 dev s1; ip -n "$S" link set s1 up
ip -n "$S" addr add 10.95.2.2/24 dev s2; ip -n "$S" link set s2 up
for ns in $C $S; do
    ip netns exec "$ns" sysctl -qw net.mptcp.enabled=1
    ip -n "$ns" mptcp limits set subflow 2 add_addr_accepted 2
done
ip -n "$C" mptcp endpoint add 10.95.2.1 dev c2 subflow
ip netns exec "$S" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 10000)); s.listen(4096); h = []
while True: h.append(s.accept()[0])
" &
PIDS+=($!)
for _ in $(seq 100); do ip netns exec "$S" ss -Hltn "sport = :10000" | grep -q 10000 && break; sleep 0.05; done
ip netns exec "$C" python3 -c "
import socket, time
h = []
for i in range($N):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)
    s.connect(('10.95.1.2', 10000)); s.sendall(b'x'); h.append(s)
time.sleep(3600)
" &
PIDS+=($!)
n=0
for _ in $(seq 300); do
    n=$(ip netns exec "$C" ss -tiH state established | grep -c tcp-ulp-mptcp || true)
    [ "$n" -ge $((2 * N)) ] && break
    sleep 0.2
done
echo "# $(uname -r), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $N connections, $n subflows established on the client"
ip netns exec "$C" "$BIN" --once --json --no-embedded | python3 -c "
import json, sys
d = json.load(sys.stdin)
c = [x for x in d['connections'] if x['state'] == 'ESTAB']
print('mptcp-ss sees', len(c), 'established connections with', sum(len(x['subflows']) for x in c), 'subflows')"
ip netns exec "$C" hyperfine -N --warmup 3 --runs 30 \
    "$BIN --once --json --no-embedded" "$BIN --once --no-embedded" "ss -tinM"
