#!/usr/bin/env bash
# User-space instructions and cache misses per echoed message, counted by
# valgrind (callgrind with its cache simulator) in each echo server while
# `load` drives it. Unlike CPU time, the counts do not depend on what else the
# machine is doing, so small changes to the per-message path show up.
#
#   bash instructions.sh [--connections N] [--size BYTES] [--seconds S] [IMPL...]
#
# IMPL defaults to `nextrush fastwebsockets`. (tokio-tungstenite is left out:
# under valgrind it echoes only a few hundred messages in the window, its
# flush-when-idle loop degenerates at that speed, and its count says nothing
# about a real run.) One message in flight per connection. Writes results/instructions.md; keeps each
# server's callgrind profile in target/instructions/ for callgrind_annotate.
# Needs valgrind (apt install valgrind).
set -euo pipefail
cd "$(dirname "$0")"

connections=16
size=20
seconds=4
impls=()
while [ $# -gt 0 ]; do
    case "$1" in
    --connections) connections=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) impls+=("$1"); shift ;;
    esac
done
[ ${#impls[@]} -gt 0 ] || impls=(nextrush fastwebsockets)
command -v valgrind >/dev/null || { echo "needs valgrind" >&2; exit 1; }

cargo build --release --quiet --bin echo_server --bin load
out_dir=target/instructions
mkdir -p "$out_dir"
rows=()
for impl in "${impls[@]}"; do
    profile="$out_dir/$impl.callgrind"
    rm -f "$profile" "$profile".*
    log="$out_dir/$impl.server.log"
    valgrind --tool=callgrind --cache-sim=yes --compress-strings=no --compress-pos=no \
        --callgrind-out-file="$profile" \
        target/release/echo_server --impl "$impl" --addr 127.0.0.1:0 >"$log" 2>&1 &
    server=$!
    addr=""
    for _ in $(seq 1 300); do
        addr=$(sed -n 's/^listening on //p' "$log" | head -n1)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { echo "$impl did not start" >&2; kill "$server"; exit 1; }
    # Count only the measured window: no start-up, no handshakes.
    target/release/load --url "ws://$addr/" --connections "$connections" --size "$size" --inflight 1 \
        --duration 1 --warmup 0 >/dev/null 2>&1
    callgrind_control -z "$server" >/dev/null 2>&1
    messages=$(target/release/load --url "ws://$addr/" --connections "$connections" --size "$size" \
        --inflight 1 --duration "$seconds" --warmup 0 2>&1 | sed -n 's/.*messages=\([0-9]*\).*/\1/p')
    callgrind_control -d "$server" >/dev/null 2>&1
    sleep 1
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    dump=$(ls -t "$profile".* | head -n1)
    mv "$dump" "$profile.window"
    # summary: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
    read -r ir _ _ i1 d1r d1w _ _ _ < <(sed -n 's/^summary: //p' "$profile.window")
    rows+=("$(awk -v n="$messages" -v ir="$ir" -v i1="$i1" -v d1r="$d1r" -v d1w="$d1w" -v impl="$impl" \
        'BEGIN { printf "| %s | %d | %.0f | %.1f | %.1f |", impl, n, ir / n, i1 / n, (d1r + d1w) / n }')")
    echo "$impl: ${rows[-1]}"
done

{
    echo "# Instructions per message (callgrind)"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- command: \`bash instructions.sh --connections $connections --size $size --seconds $seconds ${impls[*]}\`"
    echo "- rustc: $(rustc --version)"
    echo "- $connections connections, $size B messages, 1 in flight; servers on one tokio current-thread runtime under valgrind; counted over a ${seconds} s window after a 1 s warm-up (handshakes excluded)"
    echo
    echo "User-space only: the kernel's share (the syscalls, the same for every server) is not counted. Simulated caches: 32 KiB L1i and L1d."
    echo
    echo "| impl | messages | instructions / msg | L1i misses / msg | L1d misses / msg |"
    echo "|---|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Per-function costs: \`callgrind_annotate --inclusive=yes $out_dir/IMPL.callgrind.window\`."
} >results/instructions.md
echo "wrote results/instructions.md"
