#!/usr/bin/env bash
# Long fuzzing runs on demand: every target (or those named) for SECS seconds
# each (default 3600), keeping the grown corpus in fuzz/corpus/TARGET (not
# committed) seeded from testdata/fuzz/TARGET. Crashers land in
# fuzz/artifacts/TARGET; copy each into testdata/fuzz/TARGET/crash-NAME and
# fix the cause: tests/fuzz_regressions.rs then replays it in every run.
#   usage: fuzz/long.sh [SECS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3600}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"/\1/p' fuzz/Cargo.toml | grep -v mptcp-tools-fuzz)
fi
cargo fuzz build -O -s none
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  echo "== $t: ${secs}s"
  cargo fuzz run -O -s none "$t" "fuzz/corpus/$t" "testdata/fuzz/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -malloc_limit_mb=1024 -max_len=65536 \
    -artifact_prefix="fuzz/artifacts/$t/"
done
