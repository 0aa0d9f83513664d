#!/usr/bin/env bash
# Our embedded stack's in-process throughput (simulator, one core, client and
# server in one process, 64 KB packets, checksum offload) beside the Linux
# kernel's own MPTCP over a veth pair between two network namespaces (iperf3
# under mptcpize on both ends), 1 and 2 subflows, in one run; prints both and
# the ratio against the BEST kernel figure.
#
#   sudo benches/stack_vs_kernel.sh [GIB] [RUNS]     (default 8 GiB, best of 3)
#
# Method (the same amount of application data on both sides):
# - ours: the `sim` bench binary in SIM_QUICK mode: the Transfer application
#   writes GIB of data into the client stack (send() copies it in) and reads
#   it out of the server stack (recv() copies it out); rate = bytes / wall
#   time. One thread: that wall time is also its CPU time.
# - kernel: `iperf3 -n GIB` (128 KB writes, the client's send() copies in,
#   the server's recv() copies out) under mptcpize; rate = iperf3's
#   sum_received. iperf3's CPU figures (client and server, % of one core,
#   user+system of the process; softirq work charged to whoever runs it)
#   are printed beside it.
# - The kernel runs with cubic (the host's allowed list is widened to include
#   it for the run, restored on exit) and with the host default (bbr here),
#   both printed, labelled; the ratio uses the better of the two. MPTCP with
#   bbr over veth is erratic on this kernel (sndbuf-limited, idle subflows).
# - Plain TCP (no MPTCP) over the same veth with cubic for reference.
#
# Needs root, iproute2 with `ip mptcp`, iperf3, mptcpize (package mptcpd), jq.
# Sets up and tears down its namespaces (mtbench-*); the only global change is
# net.ipv4.tcp_allowed_congestion_control, restored on exit.
set -euo pipefail
GIB=${1:-8}
RUNS=${2:-3}
BYTES=$((GIB << 30))
cd "$(dirname "$0")/.."
for t in ip iperf3 mptcpize jq; do
    command -v "$t" >/dev/null || { echo "stack_vs_kernel: needs $t" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "stack_vs_kernel: needs root (network namespaces)" >&2; exit 1; }

A=mtbench-a-$$
B=mtbench-b-$$
OLD_ALLOWED=$(sysctl -n net.ipv4.tcp_allowed_congestion_control)
HOST_CC=$(sysctl -n net.ipv4.tcp_congestion_control)
cleanup() {
    ip netns pids "$A" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns pids "$B" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$A" 2>/dev/null || true
    ip netns del "$B" 2>/dev/null || true
    sysctl -qw net.ipv4.tcp_allowed_congestion_control="$OLD_ALLOWED" || true
}
trap cleanup EXIT
case " $OLD_ALLOWED " in
    *" cubic "*) ;;
    *) sysctl -qw net.ipv4.tcp_allowed_congestion_control="$OLD_ALLOWED cubic" ;;
esac

echo "== building the sim bench (release) =="
BIN=$(cargo bench --bench sim --no-run --message-format=json 2>/dev/null |
    jq -r 'select(.executable != null and .target.name == "sim") | .executable' | tail -1)
[ -x "$BIN" ] || { echo "stack_vs_kernel: could not build the sim bench" >&2; exit 1; }

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

# iperf3 CC SUBFLOWS WRAP -> "Gbit/s client-cpu% server-cpu% MPCapableACKRX MPJoinAckRx"
iperf() {
    local cc=$1 sf=$2 wrap=$3
    for ns in "$A" "$B"; do ip netns exec "$ns" sysctl -qw net.ipv4.tcp_congestion_control="$cc"; done
    ip -n "$A" mptcp endpoint flush
    if [ "$sf" -gt 1 ]; then ip -n "$A" mptcp endpoint add 10.99.1.3 dev va subflow; fi
    ip netns exec "$B" nstat -n
    ip netns exec "$B" $wrap iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
    local srv=$!
    for _ in $(seq 100); do ip netns exec "$B" ss -Hltn "sport = :5201" | grep -q 5201 && break; sleep 0.02; done
    local json
    json=$(ip netns exec "$A" $wrap iperf3 -c 10.99.1.2 -p 5201 -n "$BYTES" -J)
    wait "$srv" || true
    local capable joins
    capable=$(ip netns exec "$B" nstat -az MPTcpExtMPCapableACKRX | awk '/MPCapableACKRX/ {print $2}')
    joins=$(ip netns exec "$B" nstat -az MPTcpExtMPJoinAckRx | awk '/MPJoinAckRx/ {print $2}')
    echo "$json" | jq -r '[.end.sum_received.bits_per_second / 1e9, .end.cpu_utilization_percent.host_total,
        .end.cpu_utilization_percent.remote_total] | @tsv' |
        awk -v c="${capable:-0}" -v j="${joins:-0}" '{printf "%.2f %.0f %.0f %s %s\n", $1, $2, $3, c, j}'
}

. benches/lib.sh

ours() { # SUBFLOWS -> Gbit/s
    SIM_QUICK="$1,$((GIB * 1024))" "$BIN" | awk '/^quick:/ {print $(NF-1)}'
}

echo "== reports (memory, aggregation, failover) =="
SIM_REPORTS=1 "$BIN"
echo
echo "# $(uname -r), $(nproc) cores, $GIB GiB of application data per run, best of $RUNS"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-9s %12s | %-31s | %-31s | %8s\n" subflows "ours Gbit/s" "kernel MPTCP cubic: Gbit/s cpu%" \
    "kernel MPTCP $HOST_CC (host): Gbit/s cpu%" "ours/best"
for n in 1 2; do
    o=$(best ours "$n")
    read -r kc kcc kcs cap1 join1 < <(best iperf cubic "$n" "mptcpize run")
    read -r kb kbc kbs cap2 join2 < <(best iperf "$HOST_CC" "$n" "mptcpize run")
    k=$(awk -v a="$kc" -v b="$kb" 'BEGIN {print (a > b) ? a : b}')
    printf "%-9s %12s | %9s  (client %3s%%, server %3s%%) | %9s  (client %3s%%, server %3s%%) | %8s\n" \
        "$n" "$o" "$kc" "$kcc" "$kcs" "$kb" "$kbc" "$kbs" "$(awk -v o="$o" -v k="$k" 'BEGIN {printf "%.2f", o / k}')"
    if [ "$cap1" = 0 ] || { [ "$n" -gt 1 ] && [ "$join1" = 0 ]; }; then
        echo "  warning: kernel run not MPTCP as asked (MPCapableACKRX=$cap1 MPJoinAckRx=$join1)" >&2
    fi
done
echo "ours 4 subflows: $(best ours 4) Gbit/s"
read -r t tc ts _ _ < <(best iperf cubic 1 "")
echo "kernel plain TCP (cubic) over the same veth, reference: $t Gbit/s (client $tc%, server $ts% of a core)"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores; the kernel uses both, ours one)"
