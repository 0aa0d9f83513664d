#!/bin/sh
# Figures of the stack against a hostile peer (RELIABILITY.md): runs the
# tests that measure them and prints their figure lines.
#   benches/hostile.sh            # stack level (virtual time) and interop (root, TUN, python3)
#   benches/hostile.sh stack      # stack level only (no root needed)
# The interop tests run one at a time: they time CPU and memory.
set -eu
cd "$(dirname "$0")/.."
cargo test --test stack_hostile -- --nocapture 2>&1 | grep -E '^stack '
if [ "${1:-all}" != stack ]; then
    cargo test --test cat_hostile -- --nocapture --test-threads=1 2>&1 \
        | grep -E '^(test .*\.\.\. )?(SYN flood|MP_JOIN attack|ADD_ADDR flood|RST storm|zero window)' \
        | sed -E 's/^test [^ ]+ \.\.\. //'
fi
