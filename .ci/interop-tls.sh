#!/usr/bin/env bash
# wss:// interop with an independent implementation, Python `websockets`
# (15.0.1, in a venv under target/, over Python's OpenSSL):
#   * its client against each adapter's echo example (--tls-cert/--tls-key);
#   * each adapter's wss_client example against its server.
# A CA and a server certificate for "localhost" are made with the openssl
# CLI. Prints one line per check, `N passed, M failed` last; exits non-zero
# on any failure.
#
#   .ci/interop-tls.sh [RUNTIME...]      (default: tokio async-std smol)
set -uo pipefail
cd "$(dirname "$0")/.."
RUNTIMES=("$@")
[ ${#RUNTIMES[@]} -gt 0 ] || RUNTIMES=(tokio async-std smol)
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
OUT="$PWD/target/interop-tls"
VENV="$PWD/target/interop-venv"
PY="$VENV/bin/python"
mkdir -p "$OUT"
passed=0
failed=0
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

die() {
    echo "interop-tls: $*" >&2
    echo "$passed passed, $((failed + 1)) failed"
    exit 1
}

# check NAME EXPECT PATTERN LOG CMD...: runs CMD (30 s at most) into LOG;
# EXPECT is `ok` (exit 0) or `fail` (non-zero exit, not a time-out), and the
# output must match the extended regex PATTERN (the reason).
check() {
    local name="$1" expect="$2" pattern="$3" log="$4"
    shift 4
    local started=$SECONDS status
    timeout 30 "$@" >"$log" 2>&1
    status=$?
    local took=$((SECONDS - started)) last
    last="$(tail -n 1 "$log" | cut -c1-240)"
    local exited=no
    { [ "$expect" = ok ] && [ $status -eq 0 ]; } || { [ "$expect" = fail ] && [ $status -ne 0 ] && [ $status -ne 124 ]; } && exited=yes
    if [ $exited = yes ] && grep -Eq "$pattern" "$log"; then
        passed=$((passed + 1))
        echo "PASS $name (${took}s): $last"
    else
        failed=$((failed + 1))
        echo "FAIL $name (exit $status, ${took}s): $last"
        sed 's/^/    /' "$log" | tail -n 20
    fi
}

# --- The PKI: a CA, and a certificate for DNS:localhost only (so that
# 127.0.0.1 is a wrong host name).
PKI="$OUT/pki"
mkdir -p "$PKI"
{
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=nextrush interop CA" -keyout "$PKI/ca.key" -out "$PKI/ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=localhost" -keyout "$PKI/server.key" -out "$PKI/server.csr" &&
    printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$PKI/server.ext" &&
    openssl x509 -req -in "$PKI/server.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
        -days 2 -extfile "$PKI/server.ext" -out "$PKI/server.pem"
} >"$OUT/pki.log" 2>&1 || die "openssl failed: $(tail -n 3 "$OUT/pki.log")"

# --- Python websockets in a venv of our own.
if ! "$PY" -c 'import websockets, sys; sys.exit(websockets.version.version != "15.0.1")' 2>/dev/null; then
    python3 -m venv "$VENV" >"$OUT/venv.log" 2>&1 || die "python3 -m venv failed: $(tail -n 3 "$OUT/venv.log")"
    "$VENV/bin/pip" install --quiet websockets==15.0.1 >>"$OUT/venv.log" 2>&1 ||
        die "pip install websockets failed: $(tail -n 3 "$OUT/venv.log")"
fi

cat >"$OUT/py_client.py" <<'EOF'
"""Python websockets as the client: py_client.py MODE URL [CA].

The asyncio client, not the sync one: the sync client reads in a background
thread while its main thread writes the upgrade request over the same SSL
object, which OpenSSL does not support. Against every runtime, before and
after changes to the server, about one run in ten saw that client time out
waiting for the handshake response while the next connection to the same
server went through at once."""
import asyncio
import ssl
import sys

from websockets.asyncio.client import connect

mode, url = sys.argv[1], sys.argv[2]
ca = sys.argv[3] if len(sys.argv) > 3 else None


def context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


async def echo():
    async with connect(url, ssl=context(ca), max_size=None, open_timeout=10) as ws:
        tls = ws.transport.get_extra_info("ssl_object")
        alpn = tls.selected_alpn_protocol()
        assert alpn == "http/1.1", f"ALPN {alpn!r}"
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert "permessage-deflate" in extensions, f"extensions {extensions!r}"
        big = bytes(i % 251 for i in range(1 << 20))
        for i in range(3):
            await ws.send(f"hello {i} from python")
            assert await asyncio.wait_for(ws.recv(), 10) == f"hello {i} from python"
            await ws.send(big)
            assert await asyncio.wait_for(ws.recv(), 10) == big
        version = tls.version()
    print(f"echoed text and 1 MiB binary x3 over {version}, ALPN {alpn}, {extensions}")


async def refused(ssl_context):
    # Expected to fail: print why, exit non-zero.
    try:
        async with connect(url, ssl=ssl_context, open_timeout=10) as ws:
            await ws.send("should not get here")
    except Exception as error:  # noqa: BLE001 - any refusal is the point
        print(f"refused: {type(error).__name__}: {error}")
        sys.exit(1)
    print("connected, but should have been refused")


if mode == "echo":
    asyncio.run(echo())
elif mode == "refused":
    asyncio.run(refused(context(ca)))
elif mode == "plain":
    # ws:// to a TLS port: expected to fail.
    asyncio.run(refused(None))
EOF

cat >"$OUT/py_server.py" <<'EOF'
"""Python websockets as the wss echo server: py_server.py CERT KEY."""
import ssl
import sys

from websockets.sync.server import serve

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ctx.set_alpn_protocols(["http/1.1"])


def echo(ws):
    for message in ws:
        ws.send(message)


with serve(echo, "127.0.0.1", 0, ssl=ctx, max_size=None) as server:
    print(f"listening on {server.socket.getsockname()[1]}", flush=True)
    server.serve_forever()
EOF

# waits for "listening on ..." in LOG; prints the port.
wait_port() {
    local log="$1" line
    for _ in $(seq 300); do
        line="$(grep -m1 'listening on' "$log" 2>/dev/null)" && { echo "${line##*:}" | tr -dc 0-9; return 0; }
        sleep 0.1
    done
    return 1
}

"$PY" "$OUT/py_server.py" "$PKI/server.pem" "$PKI/server.key" >"$OUT/py_server.log" 2>&1 &
pids+=($!)
py_port="$(wait_port "$OUT/py_server.log")" || die "the Python server did not start: $(tail -n 3 "$OUT/py_server.log")"

for rt in "${RUNTIMES[@]}"; do
    bin="$OUT/bin/$rt"
    mkdir -p "$bin"
    # Same-named examples of the three adapters share target/debug/examples:
    # build one package at a time and keep a copy.
    cargo build --quiet -p "nextrush-$rt" --features rustls --example echo --example wss_client \
        >"$OUT/build-$rt.log" 2>&1 || die "build of nextrush-$rt failed: $(tail -n 5 "$OUT/build-$rt.log")"
    cp "$TARGET/debug/examples/echo" "$TARGET/debug/examples/wss_client" "$bin/"

    # Python client -> our echo server.
    log="$OUT/echo-$rt.log"
    "$bin/echo" --addr 127.0.0.1:0 --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" >"$log" 2>&1 &
    echo_pid=$!
    pids+=("$echo_pid")
    port="$(wait_port "$log")" || die "the $rt echo example did not start: $(tail -n 3 "$log")"
    grep -q "listening on wss://127.0.0.1:$port" "$log" || die "the $rt echo example did not announce wss://"
    c="$OUT/check-$rt"
    check "python client -> $rt echo: wss echo, ALPN, compression" ok "^echoed" "$c-echo.log" \
        "$PY" "$OUT/py_client.py" echo "wss://localhost:$port/" "$PKI/ca.pem"
    check "python client (system roots) -> $rt echo: untrusted CA refused" fail "CERTIFICATE_VERIFY_FAILED" "$c-untrusted.log" \
        "$PY" "$OUT/py_client.py" refused "wss://localhost:$port/"
    check "python client -> $rt echo by IP: wrong host name refused" fail "IP address mismatch|[Hh]ostname mismatch" "$c-name.log" \
        "$PY" "$OUT/py_client.py" refused "wss://127.0.0.1:$port/" "$PKI/ca.pem"
    check "python client ws:// -> $rt TLS port: refused" fail "^refused: " "$c-plain.log" \
        "$PY" "$OUT/py_client.py" plain "ws://localhost:$port/"
    check "python client -> $rt echo: still serving after the refusals" ok "^echoed" "$c-again.log" \
        "$PY" "$OUT/py_client.py" echo "wss://localhost:$port/" "$PKI/ca.pem"
    kill "$echo_pid" 2>/dev/null
    wait "$echo_pid" 2>/dev/null

    # Our client -> the Python server.
    check "$rt wss_client -> python server: echo" ok "^ok: " "$c-client.log" \
        "$bin/wss_client" --url "wss://localhost:$py_port/" --ca "$PKI/ca.pem" --count 3 --size 300000
    check "$rt wss_client (system roots) -> python server: untrusted CA refused" fail "^error: TLS handshake failed: .*(not signed by a CA|no system root certificates)" "$c-client-untrusted.log" \
        "$bin/wss_client" --url "wss://localhost:$py_port/"
    check "$rt wss_client -> python server by IP: wrong host name refused" fail "^error: TLS handshake failed: .*not valid for" "$c-client-name.log" \
        "$bin/wss_client" --url "wss://127.0.0.1:$py_port/" --ca "$PKI/ca.pem"
    check "$rt wss_client ws:// -> python TLS port: refused" fail "^error: " "$c-client-plain.log" \
        "$bin/wss_client" --url "ws://localhost:$py_port/"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
