#!/usr/bin/env bash
# Load benchmark of the Dropbox emulator: 100k files, list pages/s (pages of 2,000),
# download MB/s. Usage: scripts/bench/emulator.sh [--release]   (BENCH_FILES=N to resize)
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=()
if [[ "${1:-}" == "--release" ]]; then profile=(--release); fi
# Optimise only this crate (dependencies are already built with opt-level 2 in dev).
cargo test -p dropbox-emulator "${profile[@]}" --config "profile.dev.package.dropbox-emulator.opt-level=3" --test bench -- --ignored --nocapture
