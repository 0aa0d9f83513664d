#!/usr/bin/env bash
# Times mptcp-dump against its references on one large real capture, in one
# run, and prints packets per second and the ratios:
#
#   text     mptcp-dump -nn FILE          vs  tcpdump -nn -r FILE
#   json     mptcp-dump --json FILE       vs  tshark -T fields (MPTCP fields)
#   summary  mptcp-dump --summary FILE    vs  tshark with mptcp.analyze_mappings
#
# Usage: benches/dump_compare.sh [CAPTURE]
#   CAPTURE defaults to /tmp/mptcp-bench/big1m.pcap; when it is missing the
#   script makes it (root): testdata/captures/gen.sh big (about 100k real
#   MPTCP frames, snaplen 128), repeated COPIES times (default 10) with
#   `mergecap -a`. Nothing is written into the repository.
#   MPTCP_DUMP=path overrides the binary (default: target/release/mptcp-dump,
#   built if missing). RUNS=n repeats each command and keeps the fastest.
#
# Each command's output goes to /dev/null. Both wall-clock and CPU time
# (user+sys) are reported: on a shared machine the CPU time is the fairer
# measure, and the ratios are given for both.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cap=${1:-/tmp/mptcp-bench/big1m.pcap}
copies=${COPIES:-10}
runs=${RUNS:-1}
bin=${MPTCP_DUMP:-$here/target/release/mptcp-dump}

need() { command -v "$1" >/dev/null || { echo "dump_compare: needs $1" >&2; exit 1; }; }
for t in tcpdump tshark capinfos mergecap /usr/bin/time awk; do need "$t"; done

if [ ! -s "$cap" ]; then
  dir=$(dirname "$cap")
  mkdir -p "$dir"
  echo "making $cap: gen.sh big, then $copies copies merged" >&2
  OUT="$dir" "$here/testdata/captures/gen.sh" big >"$dir/gen.log" 2>&1 ||
    { echo "dump_compare: gen.sh big failed (needs root); see $dir/gen.log" >&2; exit 1; }
  files=()
  for _ in $(seq "$copies"); do files+=("$dir/big.pcap"); done
  mergecap -a -F pcap -w "$cap" "${files[@]}"
fi
if [ ! -x "$bin" ]; then
  (cd "$here" && cargo build --release --bin mptcp-dump >&2)
fi

frames=$(capinfos -M -c "$cap" | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}')

# MPTCP fields for the JSON comparison: what mptcp-dump --json carries.
fields=(frame.number frame.time_epoch ip.src ip.dst ipv6.src ipv6.dst tcp.srcport tcp.dstport
  tcp.flags tcp.seq tcp.ack tcp.window_size_value tcp.len
  tcp.options.mptcp.subtype tcp.options.mptcp.version tcp.options.mptcp.flags
  tcp.options.mptcp.sendkey tcp.options.mptcp.recvkey tcp.options.mptcp.recvtok
  tcp.options.mptcp.sendrand tcp.options.mptcp.sendtrunchmac tcp.options.mptcp.sendhmac
  tcp.options.mptcp.addrid tcp.options.mptcp.rawdataack tcp.options.mptcp.rawdataseqno
  tcp.options.mptcp.subflowseqno tcp.options.mptcp.datalvllen tcp.options.mptcp.checksum
  tcp.options.mptcp.datafin.flag tcp.options.mptcp.backup.flag tcp.options.mptcp.ipv4
  tcp.options.mptcp.port tcp.options.mptcp.rst_reason)
fargs=()
for f in "${fields[@]}"; do fargs+=(-e "$f"); done
# The analysis fields tshark computes with mappings analysed.
afields=(mptcp.stream mptcp.analysis.subflows mptcp.dsn mptcp.rawdsn64 mptcp.ack
  mptcp.related_mapping mptcp.reinjection_of mptcp.reinjected_in)
aargs=()
for f in "${afields[@]}"; do aargs+=(-e "$f"); done

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# measure CMD... -> "wall cpu" (the fastest of $runs runs)
measure() {
  local best_wall="" best_cpu=""
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %U %S" -o "$tmp" "$@" >/dev/null 2>/dev/null || {
      echo "dump_compare: failed: $*" >&2; exit 1; }
    read -r wall user sys <"$tmp"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.2f", u + s}')
    if [ -z "$best_wall" ] || awk -v a="$cpu" -v b="$best_cpu" 'BEGIN {exit !(a < b)}'; then
      best_wall=$wall best_cpu=$cpu
    fi
  done
  echo "$best_wall $best_cpu"
}

row() { # name tool wall cpu
  awk -v n="$1" -v t="$2" -v w="$3" -v c="$4" -v f="$frames" 'BEGIN {
    cw = (c > 0 ? f / c : 0); ww = (w > 0 ? f / w : 0)
    printf "%-8s %-32s %8.2f %8.2f %14.0f %14.0f\n", n, t, w, c, ww, cw }'
}

ratio() { # label ours_wall ours_cpu ref_wall ref_cpu target
  awk -v l="$1" -v ow="$2" -v oc="$3" -v rw="$4" -v rc="$5" -v tg="$6" 'BEGIN {
    printf "  %-7s ratio (reference time / ours): wall %.1fx, cpu %.1fx   target %s\n", l,
      (ow > 0 ? rw / ow : 0), (oc > 0 ? rc / oc : 0), tg }'
}

echo "capture: $cap ($frames frames)"
echo "mptcp-dump: $bin ($("$bin" --version))"
echo "$(tcpdump --version 2>&1 | head -1); $(tshark --version 2>/dev/null | head -1)"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); runs per command: $runs (fastest kept)"
printf "%-8s %-32s %8s %8s %14s %14s\n" test tool "wall s" "cpu s" "pkt/s (wall)" "pkt/s (cpu)"

read -r ow oc < <(measure "$bin" -nn "$cap")
row text "mptcp-dump -nn" "$ow" "$oc"
read -r rw rc < <(measure tcpdump -nn -r "$cap")
row text "tcpdump -nn -r" "$rw" "$rc"
ratio text "$ow" "$oc" "$rw" "$rc" ">= 3x"

read -r jw jc < <(measure "$bin" --json "$cap")
row json "mptcp-dump --json" "$jw" "$jc"
read -r tw tc < <(measure tshark -r "$cap" -T fields "${fargs[@]}")
row json "tshark -T fields (MPTCP)" "$tw" "$tc"
ratio json "$jw" "$jc" "$tw" "$tc" ">= 30x"

read -r sw sc < <(measure "$bin" --summary "$cap")
row summary "mptcp-dump --summary" "$sw" "$sc"
read -r aw ac < <(measure tshark -r "$cap" -o mptcp.analyze_mptcp:TRUE -o mptcp.analyze_mappings:TRUE \
  -o mptcp.intersubflows_retransmission:TRUE -T fields "${aargs[@]}")
row summary "tshark analyze_mappings" "$aw" "$ac"
ratio summary "$sw" "$sc" "$aw" "$ac" ">= 10M pkt/s"
