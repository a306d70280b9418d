#!/usr/bin/env bash
# `make demo`: the whole product on the embedded default, against the Dropbox emulator.
# Starts the emulator seeded with demo/docs (a copy, watched for changes), starts carbide with
# a fresh data directory, then runs scripts/demo.py (official Carbon SDK) which creates an
# organization's customer, connects Dropbox through the real OAuth consent page, chooses folders,
# waits for every file to be READY, searches, adds a file and shows it becoming searchable.
# Both servers stay up, with their URLs printed, until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${CARBIDE_BIN:-$ROOT/target/debug/carbide}
EMU=${DROPBOX_EMULATOR_BIN:-$ROOT/target/debug/dropbox-emulator}
PY=${PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d -t carbide-demo-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

wait_line() { # file pattern
  for _ in $(seq 300); do
    if grep -q "$2" "$1" 2>/dev/null; then sed -n "s/^$2 //p" "$1" | head -1; return 0; fi
    sleep 0.1
  done
  echo "timed out waiting for: $2 (see $1)" >&2; return 1
}

mkdir -p "$WORK/dropbox" "$WORK/data"
cp -R demo/docs/. "$WORK/dropbox/"

"$EMU" --listen 127.0.0.1:0 --seed-dir "$WORK/dropbox" --seed-email demo@northwind.example --watch \
  >"$WORK/emulator.out" 2>"$WORK/emulator.log" &
pids+=($!)
EMU_URL=$(wait_line "$WORK/emulator.out" "dropbox-emulator listening on")

export CARBIDE_DATA_DIR="$WORK/data" CARBIDE_LISTEN=127.0.0.1:0 CARBIDE_DROPBOX_URL="$EMU_URL"
export CARBIDE_DROPBOX_APP_KEY=demo-app CARBIDE_DROPBOX_APP_SECRET=demo-app-secret
export CARBIDE_MODEL_DIR=${CARBIDE_MODEL_DIR:-$ROOT/models/all-MiniLM-L6-v2}
export CARBIDE_LOG=${CARBIDE_LOG:-warn}
API_KEY=$("$BIN" org create --name "Northwind demo" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
"$BIN" serve >"$WORK/carbide.out" 2>"$WORK/carbide.log" &
pids+=($!)
CARBIDE_URL=$(wait_line "$WORK/carbide.out" "carbide listening on")

# Register the demo Dropbox app with the emulator now that carbide's redirect URI is known.
curl -fsS "$EMU_URL/__admin/apps" -H 'content-type: application/json' \
  -d "{\"app_key\":\"demo-app\",\"app_secret\":\"demo-app-secret\",\"redirect_uris\":[\"$CARBIDE_URL/integrations/dropbox\"]}" >/dev/null

echo "dropbox emulator: $EMU_URL   (logs: $WORK/emulator.log)"
echo "carbide:          $CARBIDE_URL   (logs: $WORK/carbide.log)"
echo

"$PY" scripts/demo.py --carbide "$CARBIDE_URL" --emulator "$EMU_URL" --api-key "$API_KEY" \
  --dropbox-dir "$WORK/dropbox" --later "$ROOT/demo/later/parental-leave.md"

if [ "${DEMO_EXIT:-0}" = 1 ]; then exit 0; fi
echo
echo "Both servers keep running. Try:"
echo "  API:        $CARBIDE_URL/openapi.json   (API key: $API_KEY)"
echo "  Connect:    $CARBIDE_URL/connect"
echo "  Dropbox:    files live in $WORK/dropbox (edit them; changes sync within seconds)"
echo "Press Ctrl-C to stop."
wait
