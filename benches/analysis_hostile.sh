#!/usr/bin/env bash
# The analysis on hostile captures (benches/hostile_pcap.py writes them):
#
#   repeats  the same 1000-byte DSN range sent N times, on one subflow
#            ("one") or alternating between two ("alt"), for each N in
#            REPEATS: time and max RSS of `mptcp-dump --summary`, and the
#            size of the text (`mptcp-dump -nn`) and JSON (`--json`) output;
#   syns     NSYNS MP_CAPABLE SYNs on distinct 4-tuples, none answered: max
#            RSS of `mptcp-dump --summary`, `mptcp-dump -nn` (text),
#            `mptcp-dump --json` and `mptcp-ss -r FILE --once`, beside the
#            capture's size and `tcpdump -nn -r`, `tshark -r FILE -q -z
#            conv,tcp` on the same file.
#
# Usage: benches/analysis_hostile.sh [repeats|syns|all]      (default all)
#   REPEATS="2000 4000 8000 16000 64000"  NSYNS=100000
#   TIMEOUT=120: seconds before a command is stopped (its row then says
#   ">TIMEOUT"); the quadratic analysis of old builds needs it.
#   MPTCP_DUMP, MPTCP_SS: the binaries (default target/release/, built if
#   missing). OUT=/tmp/mptcp-hostile: where the captures go (nothing is
#   written into the repository).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
what=${1:-all}
repeats=${REPEATS:-2000 4000 8000 16000 64000}
nsyns=${NSYNS:-100000}
limit=${TIMEOUT:-120}
out=${OUT:-/tmp/mptcp-hostile}
dump=${MPTCP_DUMP:-$here/target/release/mptcp-dump}
ss=${MPTCP_SS:-$here/target/release/mptcp-ss}
gen="python3 $here/benches/hostile_pcap.py"

for t in python3 /usr/bin/time timeout awk; do
  command -v "$t" >/dev/null || { echo "analysis_hostile: needs $t" >&2; exit 1; }
done
if [ ! -x "$dump" ] || [ ! -x "$ss" ]; then
  (cd "$here" && cargo build --release --bin mptcp-dump --bin mptcp-ss >&2)
fi
mkdir -p "$out"
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# run CMD... -> "seconds maxrss_MiB" ("> limit" when stopped), output dropped
run() {
  if timeout "$limit" /usr/bin/time -f "%e %M" -o "$tmp" "$@" >/dev/null 2>&1; then
    awk '{printf "%.2f %.1f\n", $1, $2 / 1024}' "$tmp"
  else
    echo ">$limit -"
  fi
}

# bytes CMD... -> size of what CMD prints (">limit" when stopped)
bytes() {
  local n
  if n=$(timeout "$limit" "$@" 2>/dev/null | wc -c) && [ "${PIPESTATUS[0]:-0}" = 0 ]; then
    echo "$n"
  else
    echo ">$limit"
  fi
}

mib() { awk -v b="$1" 'BEGIN {if (b ~ /^[0-9]+$/) printf "%.2f", b / 1048576; else print b}'; }

if [ "$what" = repeats ] || [ "$what" = all ]; then
  printf '%-5s %7s %10s %9s %10s %10s\n' mode repeats summary_s rss_MiB text_MiB json_MiB
  for mode in one alt; do
    for n in $repeats; do
      f="$out/repeats-$mode-$n.pcap"
      flag=""
      [ "$mode" = alt ] && flag=--alternate
      [ -s "$f" ] || $gen repeats "$n" "$f" $flag
      read -r secs rss < <(run "$dump" --summary "$f")
      text=$(bytes "$dump" -nn "$f")
      json=$(bytes "$dump" --json "$f")
      printf '%-5s %7s %10s %9s %10s %10s\n' "$mode" "$n" "$secs" "$rss" "$(mib "$text")" "$(mib "$json")"
    done
  done
fi

if [ "$what" = syns ] || [ "$what" = all ]; then
  f="$out/syns-$nsyns.pcap"
  [ -s "$f" ] || $gen syns "$nsyns" "$f"
  echo
  echo "$nsyns unanswered MP_CAPABLE SYNs: capture $(mib "$(stat -c %s "$f")") MiB"
  printf '%-34s %8s %9s\n' command seconds rss_MiB
  row() { local name=$1; shift; read -r s r < <(run "$@"); printf '%-34s %8s %9s\n' "$name" "$s" "$r"; }
  row "mptcp-dump --summary" "$dump" --summary "$f"
  row "mptcp-dump -nn (text)" "$dump" -nn "$f"
  row "mptcp-dump --json" "$dump" --json "$f"
  row "mptcp-ss -r FILE --once" "$ss" -r "$f" --once
  if command -v tcpdump >/dev/null; then row "tcpdump -nn -r" tcpdump -nn -r "$f"; fi
  if command -v tshark >/dev/null; then row "tshark -r FILE -q -z conv,tcp" tshark -r "$f" -q -z conv,tcp; fi
fi
