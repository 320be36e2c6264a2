#!/usr/bin/env bash
# Autobahn|Testsuite against one adapter, both roles:
#   .ci/autobahn.sh RUNTIME [CASES] [EXCLUDE]
# RUNTIME is tokio, async-std or smol; CASES defaults to every case (517),
# EXCLUDE to none. The server role runs wstest's fuzzingclient against the
# adapter's echo example, the client role its fuzzingserver against the
# adapter's autobahn_client example. Fails on any failed case.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME="$1"
CASES="${2:-*}"
export AUTOBAHN_EXCLUDE="${3:-}"
SHARED="$(cd .. && pwd)/shared/autobahn"
export AUTOBAHN_VENV="$PWD/target/autobahn-venv"
OUT="$PWD/target/autobahn"
BIN="$PWD/target/ci-bin/$RUNTIME"
declare -A PORTS=([tokio]=19001 [async-std]=19011 [smol]=19021)
PORT="${PORTS[$RUNTIME]}"

# Same-named examples of different packages overwrite each other in
# target/release/examples: build one package at a time and keep a copy.
cargo build --release --quiet -p "nextrush-$RUNTIME" --example echo --example autobahn_client
mkdir -p "$BIN" "$OUT"
cp target/release/examples/echo target/release/examples/autobahn_client "$BIN/"
"$SHARED/setup.sh" >/dev/null

"$BIN/echo" --addr "127.0.0.1:$PORT" >"$OUT/echo-$RUNTIME.log" 2>&1 &
echo_pid=$!
trap 'kill $echo_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening "$OUT/echo-$RUNTIME.log" 2>/dev/null && break; sleep 0.1; done
start=$(date +%s)
AUTOBAHN_AGENT="nextrush-$RUNTIME" "$SHARED/fuzzingclient.sh" "ws://127.0.0.1:$PORT" "$CASES" "$OUT/server-$RUNTIME"
echo "autobahn: server role on $RUNTIME took $(( $(date +%s) - start ))s"
kill $echo_pid 2>/dev/null || true

start=$(date +%s)
"$SHARED/fuzzingserver.sh" "$((PORT + 1))" "$CASES" "$OUT/client-$RUNTIME" -- \
    "$BIN/autobahn_client" --url "ws://127.0.0.1:$((PORT + 1))" --agent "nextrush-$RUNTIME"
echo "autobahn: client role on $RUNTIME took $(( $(date +%s) - start ))s"
