#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test (unit, transcript, property, and the real-peer
# tests through pcscd + vpcd, which start and stop their own pcscd).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked --features tessera/pcsc -- -D warnings
# The default build links no C library: PC/SC is a feature, and without it every PC/SC path says how to
# get it. Lint and test that build too (the workspace run below turns the feature on).
cargo clippy -p card-transport -p tessera --lib --bins --locked -- -D warnings
cargo test -p card-transport --locked
# Every interop tool must be present: a missing one fails instead of skipping.
TESSERA_INTEROP_REQUIRE_ALL=1 cargo test --workspace --locked --features tessera/pcsc
