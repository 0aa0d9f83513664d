#!/usr/bin/env bash
# Throughput of our MPTCP stack on real packets, beside the kernel's own.
#
#   ours:   SIZE bytes from mptcp-cat --stack embedded (our stack, through a
#           TUN device) to a kernel MPTCP server (mptcp-cat --stack kernel -l)
#           in the same network namespace; 1 subflow, and 2 (a join from a
#           second --local address); a plain TUN (--no-tun-offload) and the
#           default virtio-net header (our segments merged into TSO
#           super-packets, the kernel's arriving as such).
#   kernel: the same SIZE bytes from a kernel MPTCP client to a kernel MPTCP
#           server over a veth pair between two namespaces (mptcp-cat
#           --stack kernel on both ends); 1 subflow, and 2 (a second veth
#           pair, announced by the server with a `signal` endpoint).
#
# Rate = SIZE*8 / wall time of the client (connect to close), best of RUNS.
# Prints both rates and ours/kernel. Needs root, iproute2, python3.
#
#   benches/cat_compare.sh                 # 1 GiB, 3 runs each
#   SIZE=268435456 RUNS=1 benches/cat_compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-1073741824}
RUNS=${RUNS:-3}
[ "$(id -u)" = 0 ] || { echo "cat_compare.sh: needs root (network namespaces, TUN)" >&2; exit 1; }
cargo build --release --bin mptcp-cat >&2
CAT=$PWD/target/release/mptcp-cat
TAG=mtbench$$
cleanup() { for n in "${TAG}e" "${TAG}a" "${TAG}b"; do ip netns del "$n" 2>/dev/null || true; done; }
trap cleanup EXIT

now() { date +%s.%N; }
rate() { python3 -c "import sys; print('%.2f' % ($SIZE * 8 / (float(sys.argv[2]) - float(sys.argv[1])) / 1e9))" "$1" "$2"; }
wait_listen() { # ns port
    for _ in $(seq 200); do ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q ":$2" && return 0; sleep 0.02; done
    echo "nothing listens on $2 in $1" >&2; return 1
}

# With 2 subflows, say so on stderr if the kernel counted no join.
joined() { # ns counter subflows what
    [ "$3" = 2 ] || return 0
    local n
    n=$(ip netns exec "$1" nstat -az "$2" | awk -v k="$2" '$1 == k {print $2}')
    [ "${n:-0}" -gt 0 ] || echo "warning: $4, 2 subflows: no join counted ($2 = ${n:-0})" >&2
}

# One run of ours: $1 subflows, $2 extra options. Prints Gbit/s.
ours() {
    local ns=${TAG}e locals=(--local 10.200.0.2/24)
    [ "$1" = 2 ] && locals+=(--local 10.201.0.2/24)
    ip netns add "$ns"; ip -n "$ns" link set lo up
    ip netns exec "$ns" "$CAT" --stack kernel -l --recv-only 5000 >/dev/null 2>&1 </dev/null &
    local srv=$!
    wait_listen "$ns" 5000
    local s e
    s=$(now)
    head -c "$SIZE" /dev/zero | ip netns exec "$ns" "$CAT" --stack embedded --tun mtb0 "${locals[@]}" $2 10.200.0.1 5000
    e=$(now)
    wait "$srv"
    joined "$ns" MPTcpExtMPJoinAckRx "$1" ours
    ip netns del "$ns"
    rate "$s" "$e"
}

# One run of the kernel over veth: $1 subflows. Prints Gbit/s.
kernel() {
    local a=${TAG}a b=${TAG}b p
    for n in "$a" "$b"; do ip netns add "$n"; ip -n "$n" link set lo up; done
    for p in $(seq 1 "$1"); do
        ip link add "vb${p}a$$" netns "$a" type veth peer name "vb${p}b$$" netns "$b"
        ip -n "$a" addr add "10.10$p.0.1/24" dev "vb${p}a$$"; ip -n "$a" link set "vb${p}a$$" up
        ip -n "$b" addr add "10.10$p.0.2/24" dev "vb${p}b$$"; ip -n "$b" link set "vb${p}b$$" up
    done
    if [ "$1" = 2 ]; then
        # The server announces its second address; the client joins it.
        ip -n "$a" mptcp limits set subflows 2 add_addr_accepted 2
        ip -n "$b" mptcp limits set subflows 2
        ip -n "$b" mptcp endpoint add 10.102.0.2 dev "vb2b$$" signal
    fi
    ip netns exec "$b" "$CAT" --stack kernel -l --recv-only 5000 >/dev/null 2>&1 </dev/null &
    local srv=$!
    wait_listen "$b" 5000
    local s e
    s=$(now)
    head -c "$SIZE" /dev/zero | ip netns exec "$a" "$CAT" --stack kernel 10.101.0.2 5000
    e=$(now)
    wait "$srv"
    joined "$a" MPTcpExtMPJoinSynAckRx "$1" kernel
    ip netns del "$a"; ip netns del "$b"
    rate "$s" "$e"
}

best() { # command...
    local b=0 r i
    for i in $(seq "$RUNS"); do
        r=$("$@")
        b=$(python3 -c "import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))" "$b" "$r")
    done
    echo "$b"
}

echo "# $(uname -r), $(nproc) cores, $SIZE bytes, best of $RUNS"
printf '%-10s %12s %12s %14s %8s %8s\n' subflows "kernel" "ours (TUN)" "ours (offload)" ratio ratio-off
for sf in 1 2; do
    k=$(best kernel "$sf")
    o=$(best ours "$sf" "--no-tun-offload")
    g=$(best ours "$sf" "")
    printf '%-10s %9s Gb/s %9s Gb/s %11s Gb/s %8s %8s\n' "$sf" "$k" "$o" "$g" \
        "$(python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$o" "$k")" \
        "$(python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$g" "$k")"
done
