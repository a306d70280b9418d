#!/usr/bin/env bash
# Embedding throughput: carbide's in-process MiniLM vs sentence-transformers (PyTorch), same
# texts, same run, interleaved. Needs the model (scripts/fetch-model.sh). The PyTorch side runs
# when ST_PYTHON (default /tmp/st-venv/bin/python) can import sentence_transformers; otherwise
# only carbide's numbers are printed. Extra arguments go to scripts/bench/embed_bench.py
# (e.g. --reps 5 --threads 1 --batch-sizes 8,32 --sets chunks).
#   python3 -m venv /tmp/st-venv && /tmp/st-venv/bin/pip install sentence-transformers
set -euo pipefail
cd "$(dirname "$0")/../.."
ST_PYTHON="${ST_PYTHON:-/tmp/st-venv/bin/python}"
THREADS="${THREADS:-2}"

scripts/fetch-model.sh >/dev/null
cargo build --release -q -p carbide-embed --example embed_bench
BIN="${CARGO_TARGET_DIR:-target}/release/examples/embed_bench"

if [ -x "$ST_PYTHON" ] && "$ST_PYTHON" -c "import sentence_transformers" 2>/dev/null; then
    exec "$ST_PYTHON" scripts/bench/embed_bench.py --bin "$BIN" --threads "$THREADS" "$@"
else
    echo "sentence-transformers not found at $ST_PYTHON: carbide only" >&2
    exec "$BIN" --threads "$THREADS"
fi
