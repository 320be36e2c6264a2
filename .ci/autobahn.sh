#!/usr/bin/env bash
# Autobahn|Testsuite against one adapter in one role:
#   .ci/autobahn.sh RUNTIME ROLE [CASES] [EXCLUDE]
# RUNTIME is tokio, async-std or smol; ROLE is server (wstest's fuzzingclient
# against the adapter's echo example) or client (wstest's fuzzingserver
# against its autobahn_client example). CASES defaults to every case (517),
# EXCLUDE to none. Exits non-zero on any failed case.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNTIME="$1"
ROLE="$2"
CASES="${3:-*}"
export AUTOBAHN_EXCLUDE="${4:-}"
SHARED="$(cd .. && pwd)/shared/autobahn"
export AUTOBAHN_VENV="$PWD/target/autobahn-venv"
OUT="$PWD/target/autobahn"
BIN="$PWD/target/ci-bin/$RUNTIME"
declare -A PORTS=([tokio]=19001 [async-std]=19011 [smol]=19021)
PORT="${PORTS[$RUNTIME]}"
mkdir -p "$OUT"

# Same-named examples of different packages overwrite each other in
# target/release/examples: build one package at a time and keep a copy.
build() {
    exec 8>"$OUT/build.lock"
    flock 8
    cargo build --release --quiet -p "nextrush-$RUNTIME" --example echo --example autobahn_client
    mkdir -p "$BIN"
    # Copy, then rename over: the other role may be running the old copy
    # ("Text file busy" for a plain cp).
    for example in echo autobahn_client; do
        cp "target/release/examples/$example" "$BIN/.$example.new"
        mv -f "$BIN/.$example.new" "$BIN/$example"
    done
    flock -u 8
}
build
"$SHARED/setup.sh" >/dev/null

start=$(date +%s)
case "$ROLE" in
server)
    "$BIN/echo" --addr "127.0.0.1:$PORT" >"$OUT/echo-$RUNTIME.log" 2>&1 &
    echo_pid=$!
    trap 'kill $echo_pid 2>/dev/null || true' EXIT
    for _ in $(seq 100); do grep -q listening "$OUT/echo-$RUNTIME.log" 2>/dev/null && break; sleep 0.1; done
    AUTOBAHN_AGENT="nextrush-$RUNTIME" "$SHARED/fuzzingclient.sh" "ws://127.0.0.1:$PORT" "$CASES" "$OUT/server-$RUNTIME"
    ;;
client)
    "$SHARED/fuzzingserver.sh" "$((PORT + 1))" "$CASES" "$OUT/client-$RUNTIME" -- \
        "$BIN/autobahn_client" --url "ws://127.0.0.1:$((PORT + 1))" --agent "nextrush-$RUNTIME"
    ;;
*)
    echo "role must be server or client" >&2
    exit 2
    ;;
esac
echo "autobahn: $ROLE role on $RUNTIME took $(( $(date +%s) - start ))s"
