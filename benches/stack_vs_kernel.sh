#!/usr/bin/env bash
# Our embedded stack's in-process throughput (simulator, one core, 64 KB
# packets, checksum offload) beside the Linux kernel's own MPTCP over a veth
# pair between two network namespaces (iperf3 under mptcpize), 1 and 2
# subflows, in one run; prints both and the ratio.
#
#   sudo benches/stack_vs_kernel.sh [SECONDS]      (default 10 s per kernel run)
#
# Needs root, iproute2 with `ip mptcp`, iperf3, mptcpize (package mptcpd), jq.
# Sets up and tears down its namespaces (mtbench-*); touches nothing else.
set -euo pipefail
T=${1:-10}
cd "$(dirname "$0")/.."
for t in ip iperf3 mptcpize jq; do
    command -v "$t" >/dev/null || { echo "stack_vs_kernel: needs $t" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "stack_vs_kernel: needs root (network namespaces)" >&2; exit 1; }

A=mtbench-a-$$
B=mtbench-b-$$
cleanup() {
    ip netns pids "$A" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns pids "$B" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$A"
ip netns add "$B"
ip link add va netns "$A" type veth peer name vb netns "$B"
ip -n "$A" addr add 10.99.1.1/24 dev va
ip -n "$A" addr add 10.99.1.3/24 dev va
ip -n "$B" addr add 10.99.1.2/24 dev vb
for ns in "$A" "$B"; do
    ip -n "$ns" link set lo up
    ip netns exec "$ns" sysctl -qw net.mptcp.enabled=1
    ip -n "$ns" mptcp limits set subflows 2 add_addr_accepted 2
done
ip -n "$A" link set va up
ip -n "$B" link set vb up

# kernel SUBFLOWS -> Gbit/s received
kernel() {
    ip -n "$A" mptcp endpoint flush
    if [ "$1" -gt 1 ]; then ip -n "$A" mptcp endpoint add 10.99.1.3 dev va subflow; fi
    ip netns exec "$B" nstat -n
    ip netns exec "$B" mptcpize run iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
    local srv=$!
    sleep 0.5
    local json
    json=$(ip netns exec "$A" mptcpize run iperf3 -c 10.99.1.2 -p 5201 -t "$T" -J)
    wait "$srv" || true
    local joins
    joins=$(ip netns exec "$B" nstat -az MPTcpExtMPJoinAckRx | awk '/MPJoinAckRx/ {print $2}')
    local capable
    capable=$(ip netns exec "$B" nstat -az MPTcpExtMPCapableACKRX | awk '/MPCapableACKRX/ {print $2}')
    echo "$json" | jq -r '.end.sum_received.bits_per_second / 1e9' | awk -v j="$joins" -v c="$capable" '{printf "%.2f %s %s\n", $1, c, j}'
}

echo "== our stack, in process (cargo bench --bench sim) =="
out=$(cargo bench -q --bench sim -- --noplot 2>/dev/null)
echo "$out" | grep -E "^(memory|aggregation|failover)"
ours() { # SUBFLOWS -> Gbit/s (criterion's median thrpt, GiB/s)
    echo "$out" | awk -v name="sim_throughput/$1_subflows" '
        $0 ~ name {found=1}
        found && /thrpt:/ {gsub(/\[|\]/, ""); v=$4; u=$5; if (u ~ /MiB/) v=v/1024; printf "%.2f\n", v*8*1.073741824; exit}'
}
echo
echo "== side by side =="
printf "%-10s %14s %14s %8s  %s\n" subflows "ours Gbit/s" "kernel Gbit/s" ratio "kernel check (MPCapableACKRX, MPJoinAckRx on the server)"
for n in 1 2; do
    o=$(ours "$n")
    read -r k cap join < <(kernel "$n")
    r=$(awk -v o="$o" -v k="$k" 'BEGIN {printf "%.2f", o / k}')
    printf "%-10s %14s %14s %8s  %s %s\n" "$n" "$o" "$k" "$r" "$cap" "$join"
done
# Plain TCP over the same veth, for reference (no mptcpize).
ip netns exec "$B" iperf3 -s -1 -p 5202 >/dev/null 2>&1 &
srv=$!
sleep 0.5
tcp=$(ip netns exec "$A" iperf3 -c 10.99.1.2 -p 5202 -t "$T" -J | jq -r '.end.sum_received.bits_per_second / 1e9')
wait "$srv" || true
echo "ours 4 subflows: $(ours 4) Gbit/s"
printf "kernel plain TCP over the same veth (reference): %.2f Gbit/s; ours 1 subflow / that = %s\n" "$tcp" "$(awk -v o="$(ours 1)" -v k="$tcp" 'BEGIN {printf "%.2f", o / k}')"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores; the kernel uses both, ours one)"
