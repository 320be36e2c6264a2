#!/usr/bin/env bash
# Fuzz smoke test: builds every cargo-fuzz target in fuzz/ and runs each one
# for FUZZ_SECONDS (default 25) from its seed corpus in fuzz/corpus/<target>;
# fails if any target crashes (the input is saved in fuzz/artifacts/<target>/).
#
# cargo-fuzz passes nightly-only flags to rustc (-Zsanitizer=address ...);
# the toolchain here is stable, so RUSTC_BOOTSTRAP=1 unlocks them. Targets
# are built with debug assertions and overflow checks (cargo-fuzz's default).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-25}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cargo fuzz build
mkdir -p fuzz/target/smoke
passed=0
failed=0
for target in $(cargo fuzz list); do
    # New inputs go to a scratch directory, so the committed seeds stay few.
    work="fuzz/target/smoke/$target"
    log="fuzz/target/smoke/$target.log"
    rm -rf "$work"
    mkdir -p "$work"
    case "$target" in
        connection_*) max_len=16384 ;;
        *) max_len=8192 ;;
    esac
    if cargo fuzz run "$target" "$work" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1; then
        runs=$(awk '/^stat::number_of_executed_units/ {print $2}' "$log")
        echo "fuzz $target: ok, ${runs:-?} runs in ${seconds} s"
        passed=$((passed + 1))
    else
        echo "fuzz $target: CRASHED (full log: $log)" >&2
        grep -m1 -A30 -E 'panicked|ERROR: ' "$log" >&2 || tail -n 40 "$log" >&2
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
