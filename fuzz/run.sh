#!/usr/bin/env bash
# Runs every fuzz target for SECS seconds (default 10) on a copy of its
# seed corpus; exits non-zero on the first crash. Needs nightly Rust and
# cargo-fuzz (tests/run.sh installs cargo-fuzz when missing).
#   fuzz/run.sh [SECS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-10}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
work="$(mktemp -d /tmp/camgate-fuzz.XXXXXX)"
trap 'rm -rf "$work"' EXIT
echo "=== building the fuzz targets (release, with sanitizers)"
cargo +nightly fuzz build -O 2>&1 | tail -n 1
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    echo "=== fuzz $t for ${secs} s"
    set +e
    cargo +nightly fuzz run -O "$t" "$work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        >"$work/$t.log" 2>&1
    status=$?
    set -e
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+: *DONE|SUMMARY" "$work/$t.log" || true
    if [ $status -ne 0 ]; then
        echo "fuzz target $t failed (exit $status):"
        tail -n 60 "$work/$t.log"
        ls "artifacts/$t" 2>/dev/null || true
        exit 1
    fi
done
echo "fuzz: ${#targets[@]} targets ran ${secs} s each without a crash"
