#!/usr/bin/env bash
# Load test of GET /auth/v1/access_token (the call every browser session starts with) and idle RSS.
# Usage: scripts/bench/access-token.sh [DURATION_S] [CONNECTIONS]
# Needs: wrk (Debian package `wrk`), a built carbide (CARBIDE_BIN, default target/release/carbide,
# falling back to target/debug/carbide). Prints requests/s, latency percentiles and RSS.
set -euo pipefail
cd "$(dirname "$0")/../.."
dur=${1:-10}
conns=${2:-16}
bin=${CARBIDE_BIN:-target/release/carbide}
[ -x "$bin" ] || bin=target/debug/carbide
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
export CARBIDE_DATA_DIR=$tmp CARBIDE_LISTEN=127.0.0.1:0 CARBIDE_LOG=warn
key=$("$bin" org create --name bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
"$bin" serve >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 100); do grep -q listening "$tmp/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^carbide listening on //p' "$tmp/out")
sleep 1
echo "binary: $bin"
echo "idle RSS: $(awk '/VmRSS/{print $2, $3}' /proc/$pid/status)"
# One customer (token minting, the hot path), then many customers (first-use creation).
wrk -t2 -c"$conns" -d"${dur}s" --latency -H "authorization: Bearer $key" -H "customer-id: bench-user" \
  "$url/auth/v1/access_token" | sed -n '/Latency Distribution/,/Transfer/p'
echo "RSS after load: $(awk '/VmRSS/{print $2, $3}' /proc/$pid/status)"
kill -TERM $pid; wait $pid; echo "exit code after SIGTERM: $?"
