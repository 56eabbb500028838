#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test (unit, transcript, property, and the real-peer
# tests through pcscd + vpcd, which start and stop their own pcscd).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
