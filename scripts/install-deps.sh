#!/usr/bin/env bash
# Installs the Debian packages carbide's build, tests and demo need on a fresh machine.
# Idempotent: packages already present are skipped. Needs root (or sudo).
set -euo pipefail
pkgs=(python3-venv pkg-config ca-certificates tesseract-ocr tesseract-ocr-eng poppler-utils chromium fonts-dejavu-core)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Node.js and npm come with the machine image (the browser tests use them with Debian's chromium).
command -v node >/dev/null && command -v npm >/dev/null || {
  echo "install-deps: Node.js 20+ with npm is required for the browser tests" >&2; exit 1; }
