#!/usr/bin/env bash
# The quality bar: formatting and clippy with warnings denied.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
