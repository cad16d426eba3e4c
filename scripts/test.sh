#!/usr/bin/env bash
# The project's test command (README, "Run the tests"). Runs on a fresh machine with only the
# Rust toolchain: unit, integration, ui (trybuild) and doc tests of the whole workspace.
# Later back-end tests (OTLP collector, Prometheus) install what they need here first.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
