#!/usr/bin/env bash
# Peak memory of ingesting a ~50 MB PDF (issue 4 target: < 1 GiB).
#
#   scripts/bench/ingest-50mb.sh [--profile release|debug] [--target-mb N] [--embed]
#
# 1. Builds WORK/big.pdf by concatenating the corpus PDFs (../shared/corpus/docs/pdf, the unencrypted
#    ones Poppler can open) with `pdfunite`, repeated until the file reaches the target size
#    (default 49 MB, just under the 50 MiB default upload limit).
# 2. Runs the sandbox child alone under `/usr/bin/time -v` exactly as the worker starts it
#    (`carbide-extract FILE NAME 52428800 268435456 no-ocr`) and reports its maximum RSS
#    (`EXTRACT_BIN=PATH` measures another build of the extractor).
# 3. Starts `carbide serve` on a temporary data dir, uploads the PDF through `/uploadfile`, and
#    samples every 100 ms the RSS of the server and of its `carbide-extract` child until the file
#    is READY or SYNC_ERROR; reports the server's peak (VmHWM), the child's sampled peak and the
#    sampled peak of both together. Without --embed the upload asks for
#    `skip_embedding_generation=true` (parse + chunk + index only); with --embed the server
#    embeds every chunk with the local MiniLM (slow on 2 cores: minutes for tens of MB of text).
#
# Needs: poppler-utils (pdfunite), GNU time, curl, python3, and the binaries
# (`cargo build [--release] -p carbide -p carbide-ingest --bins`).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PROFILE=release
TARGET_MB=49
EMBED=0
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) PROFILE="$2"; shift 2 ;;
        --target-mb) TARGET_MB="$2"; shift 2 ;;
        --embed) EMBED=1; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
BIN="$ROOT/target/$PROFILE"
for b in carbide carbide-extract; do
    [ -x "$BIN/$b" ] || { echo "$BIN/$b missing: cargo build $([ "$PROFILE" = release ] && echo --release) -p carbide -p carbide-ingest --bins" >&2; exit 1; }
done
CORPUS="${CORPUS:-$ROOT/../shared/corpus/docs/pdf}"
WORK="$(mktemp -d /tmp/carbide-50mb.XXXXXX)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---- 1. the PDF
inputs=()
for f in "$CORPUS"/*.pdf; do
    # pdfunite cannot merge encrypted files (or ones Poppler cannot open)
    info=$(pdfinfo "$f" 2>/dev/null) || continue
    grep -q '^Encrypted: *no' <<<"$info" && inputs+=("$f")
done
[ ${#inputs[@]} -gt 0 ] || { echo "no readable PDFs in $CORPUS" >&2; exit 1; }
target=$((TARGET_MB * 1000 * 1000))
limit=52428800 # the extractor's (and the default upload) limit: 50 MiB
# cycle through the inputs until their sizes add up to the target, unite once, and drop
# inputs from the end while the result is over the limit
list=()
total=0
while [ "$total" -lt "$target" ]; do
    for f in "${inputs[@]}"; do
        list+=("$f")
        total=$((total + $(stat -c %s "$f")))
        [ "$total" -ge "$target" ] && break
    done
done
while :; do
    pdfunite "${list[@]}" "$WORK/big.pdf" 2>/dev/null
    [ "$(stat -c %s "$WORK/big.pdf")" -le "$limit" ] && break
    list=("${list[@]:0:${#list[@]}-3}")
done
size=$(stat -c %s "$WORK/big.pdf")
pages=$(pdfinfo "$WORK/big.pdf" | awk '/^Pages:/ {print $2}')
echo "pdf: $(awk -v s="$size" 'BEGIN {printf "%.1f MB", s/1e6}') ($size bytes), $pages pages, ${#list[@]} files cycled from ${#inputs[@]} corpus PDFs"

# ---- 2. the sandbox child alone
EXTRACT_BIN="${EXTRACT_BIN:-$BIN/carbide-extract}"
echo "extractor alone: $EXTRACT_BIN; server: $BIN/carbide"
/usr/bin/time -v "$EXTRACT_BIN" "$WORK/big.pdf" big.pdf 52428800 268435456 no-ocr \
    >"$WORK/extract.json" 2>"$WORK/time.txt" || true
python3 - "$WORK/extract.json" "$WORK/time.txt" <<'EOF'
import json, re, sys
out = open(sys.argv[1], "rb").read()
t = open(sys.argv[2]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", t).group(1)
user = float(re.search(r"User time \(seconds\): (\S+)", t).group(1))
sys_ = float(re.search(r"System time \(seconds\): (\S+)", t).group(1))
try:
    res = json.loads(out)
except ValueError:
    res = {"Err": "unparseable output"}
if "Ok" in res:
    text = sum(len(u["text"]) for s in res["Ok"]["sections"] for u in s["units"])
    what = f"Ok, {len(res['Ok']['sections'])} sections, {text/1e6:.1f} MB of text"
else:
    what = f"Err {str(res.get('Err'))[:120]}"
print(f"carbide-extract alone: max RSS {rss/1024:.0f} MiB, CPU {user+sys_:.1f} s, wall {wall}: {what}")
EOF

# ---- 3. through the server
export CARBIDE_DATA_DIR="$WORK/data" CARBIDE_LISTEN=127.0.0.1:0 CARBIDE_LOG=warn CARBIDE_MAX_FILE_MB=64
export CARBIDE_MODEL_DIR="${CARBIDE_MODEL_DIR:-$ROOT/models/all-MiniLM-L6-v2}"
key=$("$BIN/carbide" org create --name bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
"$BIN/carbide" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER_PID=$!
for _ in $(seq 1 300); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*' "$WORK/serve.out" | head -1 || true)
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { echo "server did not start: $(tail -5 "$WORK/serve.err")" >&2; exit 1; }
q="skip_embedding_generation=true"
[ "$EMBED" = 1 ] && q="skip_embedding_generation=false"
t0=$(date +%s.%N)
id=$(curl -sf -H "authorization: Bearer $key" -H "customer-id: bench" \
    -F "file=@$WORK/big.pdf;filename=big.pdf" "$url/uploadfile?$q" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
python3 - "$SERVER_PID" "$url" "$key" "$id" "$t0" <<'EOF'
import json, os, sys, time, urllib.request
pid, url, key, fid, t0 = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])

def kb(path, field):
    try:
        for line in open(path):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0

def children(p):
    out = []
    try:
        for t in os.listdir(f"/proc/{p}/task"):
            out += [int(c) for c in open(f"/proc/{p}/task/{t}/children").read().split()]
    except OSError:
        pass
    return out

def status():
    req = urllib.request.Request(url + "/user_files_v2", method="POST",
                                 data=json.dumps({"filters": {"ids": [fid]}}).encode(),
                                 headers={"authorization": f"Bearer {key}", "customer-id": "bench",
                                          "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)["results"][0]

upload_hwm = kb(f"/proc/{pid}/status", "VmHWM")  # the upload itself, before processing
peak_child = peak_sum = 0
last_poll, f = 0.0, None
while True:
    srv = kb(f"/proc/{pid}/status", "VmRSS")
    kids = sum(kb(f"/proc/{c}/status", "VmRSS") for c in children(pid))
    peak_child, peak_sum = max(peak_child, kids), max(peak_sum, srv + kids)
    if time.time() - last_poll > 1.0:
        last_poll = time.time()
        f = status()
        if f["sync_status"] in ("READY", "SYNC_ERROR"):
            break
    time.sleep(0.1)
hwm = kb(f"/proc/{pid}/status", "VmHWM")
st = f["file_statistics"] or {}
print(f"server: {f['sync_status']} in {time.time() - t0:.0f} s "
      f"({st.get('num_characters')} characters, {f.get('sync_error_message') or 'no error'})")
print(f"server peak RSS (VmHWM): {upload_hwm/1024:.0f} MiB by the end of the upload, "
      f"{hwm/1024:.0f} MiB overall; carbide-extract child sampled peak: "
      f"{peak_child/1024:.0f} MiB; server + child sampled peak: {peak_sum/1024:.0f} MiB")
EOF
