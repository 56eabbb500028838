#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test (unit, transcript, property, and the real-peer
# tests through pcscd + vpcd, which start and stop their own pcscd).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Every interop tool must be present: a missing one fails instead of skipping.
TESSERA_INTEROP_REQUIRE_ALL=1 cargo test --workspace --locked
