#!/usr/bin/env bash
# Installs what the tests need (SoftHSMv2) and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages softhsm2 systemd
build_all
echo "==> running all tests"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole run: cargo prints one per test binary, the last often a doc-test
# binary with nothing in it.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "keyward: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
