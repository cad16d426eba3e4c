#!/usr/bin/env bash
# The instruction-count guard (benches/README.md, "The instruction-count guard"): builds
# `flujo-guard` and runs each hot path under Callgrind, failing when a count grew past its
# tolerance. `--accept` writes today's counts as the baselines instead (commit them, and say in
# the commit message why the count moved); `--only PATH` runs one path's rows.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null 2>&1; then
  if ! apt-get install -y --no-install-recommends valgrind >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    apt-get install -y --no-install-recommends valgrind >/dev/null
  fi
fi
cargo build --quiet --release --locked -p flujo-benches --bin flujo-guard
python3 scripts/perf-guard.py "${CARGO_TARGET_DIR:-target}/release/flujo-guard" "$@"
