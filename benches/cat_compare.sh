#!/usr/bin/env bash
# Throughput of our MPTCP stack on real packets, beside the kernel's own.
#
#   ours:   SIZE bytes from mptcp-cat --stack embedded (our stack, through a
#           TUN device) to a kernel MPTCP server (mptcp-cat --stack kernel -l
#           --recv-only) in the same network namespace; 1 subflow, and 2 (a
#           join from a second --local address); a plain TUN
#           (--no-tun-offload) and the default virtio-net header (TSO
#           super-packets both ways, checksums offloaded).
#   kernel: the same SIZE bytes from a kernel MPTCP client to a kernel MPTCP
#           server over a veth pair between two namespaces (mptcp-cat
#           --stack kernel on both ends: the same application on both sides
#           of the comparison); 1 subflow, and 2 (a second veth pair,
#           announced by the server with a `signal` endpoint). Run with cubic
#           (the host's allowed list is widened to include it for the run and
#           restored on exit; both namespaces default to it, and the client
#           asks for it with --cc) and with the host default (bbr here), both
#           printed; ours is compared with the better one.
#
# Rate = SIZE*8 / wall time of the client (connect to close), best of RUNS.
# CPU = user+system seconds of the client and of the server process (GNU
# time); kernel softirq work is charged to whichever process ran it.
# Input: a SIZE-byte file of zeros in /dev/shm (tmpfs) as standard input on
# both sides (INPUT=pipe: `head -c SIZE /dev/zero |` instead, which bounds
# both sides at the pipe's rate, ~15-18 Gbit/s here).
# Needs root, iproute2, python3, /usr/bin/time.
#
#   benches/cat_compare.sh                 # 1 GiB, 3 runs each
#   SIZE=268435456 RUNS=1 benches/cat_compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-1073741824}
RUNS=${RUNS:-3}
[ "$(id -u)" = 0 ] || { echo "cat_compare.sh: needs root (network namespaces, TUN)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "cat_compare.sh: needs /usr/bin/time (package time)" >&2; exit 1; }
cargo build --release --bin mptcp-cat >&2
CAT=$PWD/target/release/mptcp-cat
TAG=mtbench$$
TMP=$(mktemp -d -p /dev/shm)
INPUT=${INPUT:-file}
head -c "$SIZE" /dev/zero >"$TMP/input"
feed() { # command... with SIZE bytes on standard input
    if [ "$INPUT" = pipe ]; then head -c "$SIZE" /dev/zero | "$@"; else "$@" <"$TMP/input"; fi
}
OLD_ALLOWED=$(sysctl -n net.ipv4.tcp_allowed_congestion_control)
HOST_CC=$(sysctl -n net.ipv4.tcp_congestion_control)
cleanup() {
    for n in "${TAG}e" "${TAG}a" "${TAG}b"; do ip netns del "$n" 2>/dev/null || true; done
    sysctl -qw net.ipv4.tcp_allowed_congestion_control="$OLD_ALLOWED" || true
    rm -rf "$TMP"
}
trap cleanup EXIT
case " $OLD_ALLOWED " in
    *" cubic "*) ;;
    *) sysctl -qw net.ipv4.tcp_allowed_congestion_control="$OLD_ALLOWED cubic" ;;
esac

now() { date +%s.%N; }
wait_listen() { # ns port
    for _ in $(seq 200); do ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q ":$2" && return 0; sleep 0.02; done
    echo "nothing listens on $2 in $1" >&2; return 1
}
newns() { ip netns add "$1"; ip -n "$1" link set lo up; ip netns exec "$1" sysctl -qw net.ipv4.tcp_congestion_control="$2"; }
cpu() { awk '{printf "%.2f", $2 + $3}' "$1"; } # /usr/bin/time -f "%e %U %S" output -> user+sys

# With 2 subflows, say so on stderr if the kernel counted no join.
joined() { # ns counter subflows what
    [ "$3" = 2 ] || return 0
    local n
    n=$(ip netns exec "$1" nstat -az "$2" | awk -v k="$2" '$1 == k {print $2}')
    [ "${n:-0}" -gt 0 ] || echo "warning: $4, 2 subflows: no join counted ($2 = ${n:-0})" >&2
}

# Prints "Gbit/s client-cpu server-cpu".
result() { # start end client-time-file server-time-file
    python3 -c "import sys; print('%.2f' % ($SIZE * 8 / (float(sys.argv[2]) - float(sys.argv[1])) / 1e9))" "$1" "$2" |
        tr '\n' ' '
    echo "$(cpu "$3") $(cpu "$4")"
}

# One run of ours: $1 subflows, $2 extra options.
ours() {
    local ns=${TAG}e locals=(--local 10.200.0.2/24)
    [ "$1" = 2 ] && locals+=(--local 10.201.0.2/24)
    newns "$ns" cubic
    ip netns exec "$ns" /usr/bin/time -f "%e %U %S" -o "$TMP/srv" \
        "$CAT" --stack kernel -l --recv-only 5000 >/dev/null 2>&1 </dev/null &
    local srv=$!
    wait_listen "$ns" 5000
    local s e
    s=$(now)
    feed ip netns exec "$ns" /usr/bin/time -f "%e %U %S" -o "$TMP/cli" \
        "$CAT" --stack embedded --tun mtb0 "${locals[@]}" $2 10.200.0.1 5000
    e=$(now)
    wait "$srv"
    joined "$ns" MPTcpExtMPJoinAckRx "$1" ours
    ip netns del "$ns"
    result "$s" "$e" "$TMP/cli" "$TMP/srv"
}

# One run of the kernel over veth: $1 subflows, $2 congestion control.
kernel() {
    local a=${TAG}a b=${TAG}b p
    newns "$a" "$2"
    newns "$b" "$2"
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
    ip netns exec "$b" /usr/bin/time -f "%e %U %S" -o "$TMP/srv" \
        "$CAT" --stack kernel -l --recv-only --cc "$2" 5000 >/dev/null 2>&1 </dev/null &
    local srv=$!
    wait_listen "$b" 5000
    local s e
    s=$(now)
    feed ip netns exec "$a" /usr/bin/time -f "%e %U %S" -o "$TMP/cli" \
        "$CAT" --stack kernel --cc "$2" 10.101.0.2 5000
    e=$(now)
    wait "$srv"
    joined "$a" MPTcpExtMPJoinSynAckRx "$1" "kernel $2"
    ip netns del "$a"; ip netns del "$b"
    result "$s" "$e" "$TMP/cli" "$TMP/srv"
}

. benches/lib.sh

ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }

echo "# $(uname -r), $(nproc) cores, $SIZE bytes from a $INPUT, best of $RUNS; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# each cell: Gbit/s (client CPU s + server CPU s)"
printf '%-9s %-24s %-24s %-24s %-24s %8s %8s\n' subflows "kernel cubic" "kernel $HOST_CC (host)" \
    "ours, plain TUN" "ours, TUN offload" plain/k off/k
for sf in 1 2; do
    read -r kc kcc kcs < <(best kernel "$sf" cubic)
    read -r kb kbc kbs < <(best kernel "$sf" "$HOST_CC")
    read -r o oc os < <(best ours "$sf" "--no-tun-offload")
    read -r g gc gs < <(best ours "$sf" "")
    k=$(python3 -c "import sys; print(max(float(sys.argv[1]), float(sys.argv[2])))" "$kc" "$kb")
    printf '%-9s %-24s %-24s %-24s %-24s %8s %8s\n' "$sf" "$kc ($kcc+$kcs)" "$kb ($kbc+$kbs)" \
        "$o ($oc+$os)" "$g ($gc+$gs)" "$(ratio "$o" "$k")" "$(ratio "$g" "$k")"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
