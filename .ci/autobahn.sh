#!/usr/bin/env bash
# Autobahn|Testsuite, both roles, every case (517 each), against the tokio
# examples. Fails on any failed case. Usage: .ci/autobahn.sh [CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
CASES="${1:-*}"
SHARED="$(cd .. && pwd)/shared/autobahn"
export AUTOBAHN_VENV="$PWD/target/autobahn-venv"
OUT="$PWD/target/autobahn"
SERVER_PORT="${AUTOBAHN_SERVER_PORT:-19001}"
CLIENT_PORT="${AUTOBAHN_CLIENT_PORT:-19002}"

cargo build --release -p nextrush-tokio --example echo --example autobahn_client
"$SHARED/setup.sh" >/dev/null

# Server role: wstest's fuzzingclient against the echo example.
./target/release/examples/echo --addr "127.0.0.1:$SERVER_PORT" >"$OUT-echo.log" 2>&1 &
echo_pid=$!
trap 'kill $echo_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q listening "$OUT-echo.log" 2>/dev/null && break; sleep 0.1; done
start=$(date +%s)
AUTOBAHN_AGENT=nextrush-tokio "$SHARED/fuzzingclient.sh" "ws://127.0.0.1:$SERVER_PORT" "$CASES" "$OUT/server-tokio"
echo "autobahn server/tokio took $(( $(date +%s) - start ))s"
kill $echo_pid 2>/dev/null || true

# Client role: wstest's fuzzingserver against the autobahn_client example.
start=$(date +%s)
"$SHARED/fuzzingserver.sh" "$CLIENT_PORT" "$CASES" "$OUT/client-tokio" -- \
    ./target/release/examples/autobahn_client --url "ws://127.0.0.1:$CLIENT_PORT" --agent nextrush-tokio
echo "autobahn client/tokio took $(( $(date +%s) - start ))s"
