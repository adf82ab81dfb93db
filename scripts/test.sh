#!/usr/bin/env bash
# Installs what the tests need (SoftHSMv2) and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages softhsm2
build_all
echo "==> running all tests"
cargo test --workspace --no-fail-fast
