#!/usr/bin/env bash
# Installs what the tests need (SoftHSMv2; LocalStack's KMS into .venv) and runs every test of
# the workspace against a real token and a KMS peer on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages softhsm2 systemd tmux
build_all
# The KMS peer: LocalStack's KMS in .venv, one instance on loopback for the whole run, stopped by
# its process id when the run ends.
scripts/kms-peer.sh install
peer_dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
trap 'scripts/kms-peer.sh stop "$peer_dir" >/dev/null; rm -rf "$peer_dir" "$log"' EXIT
scripts/kms-peer.sh start "$port" "$peer_dir"
export KEYWARD_TEST_KMS_ENDPOINT="http://127.0.0.1:$port"
echo "==> running all tests"
status=0
cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || status=$?
# One closing line for the whole run: cargo prints one per test binary, the last often a doc-test
# binary with nothing in it.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "keyward: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
