#!/usr/bin/env bash
# Browser test of the chat example: two people in headless Chromium chat,
# see each other in the user list, see typing, a private message and the
# history, then the server restarts and both reconnect and chat again.
#
# Uses Debian's chromium (installed if /usr/bin/chromium is missing) and npm's
# playwright-core in target/browser (no browser download). Prints
# "N passed, M failed" last; exits non-zero on any failure. Screenshot:
# target/browser/chat.png.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$PWD/target}"
dir="$target/browser"
mkdir -p "$dir"

if [ ! -x /usr/bin/chromium ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi

if [ ! -f "$dir/node_modules/playwright-core/package.json" ]; then
    # A package.json of its own, so that npm installs here and not in an
    # enclosing project.
    [ -f "$dir/package.json" ] || echo '{"private": true}' >"$dir/package.json"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error playwright-core@1.65)
fi

# The debug build: `cargo test --workspace` has already built it.
cargo build --quiet -p nextrush-tokio --example chat
node .ci/browser/chat.mjs "$target/debug/examples/chat" "$dir"
