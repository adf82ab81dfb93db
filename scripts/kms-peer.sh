#!/usr/bin/env bash
# The KMS peer for tests and the demo: LocalStack's KMS on loopback, without Docker, installed
# with pip into the project-local .venv (pinned as issue 4 says: newer localstack-core needs
# Python >= 3.12, and 4.11+ break re-import).
#   scripts/kms-peer.sh install          install into .venv (once)
#   scripts/kms-peer.sh start PORT DIR   start on 127.0.0.1:PORT, state and log in DIR, pid in DIR/localstack.pid;
#                                        returns once a signed KMS call answers
#   scripts/kms-peer.sh stop DIR         stop it by its process id
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="$PWD/.venv"
PY="$VENV/bin/python"

install() {
  [ -x "$PY" ] || python3 -m venv "$VENV"
  if "$PY" -c "import localstack, boto3" 2>/dev/null; then return 0; fi
  echo "==> installing LocalStack's KMS into $VENV (pip)"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q "localstack-core[base-runtime]==4.10.0" "cbor2<6" "pyopenssl<26" "psutil<7" boto3
}

start() {
  local port="$1" dir="$2"
  install
  # LocalStack does not notice a port already in use: check first.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "kms-peer: 127.0.0.1:$port is already in use; choose another port" >&2
    return 1
  fi
  mkdir -p "$dir/fs" "$dir/cache"
  # OVERRIDE_IN_DOCKER=0: otherwise it thinks it is in a container and writes under /var/lib,
  # /usr/lib and /etc. GATEWAY_SERVER=hypercorn: the default server binds 0.0.0.0 regardless.
  env SERVICES=kms EAGER_SERVICE_LOADING=1 GATEWAY_SERVER=hypercorn \
    GATEWAY_LISTEN="127.0.0.1:$port" LOCALSTACK_HOST="127.0.0.1:$port" \
    DNS_ADDRESS=0 DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 PERSISTENCE=0 OVERRIDE_IN_DOCKER=0 \
    FILESYSTEM_ROOT="$dir/fs" XDG_CACHE_HOME="$dir/cache" \
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 \
    "$PY" -m localstack.runtime.main >"$dir/localstack.log" 2>&1 &
  echo $! >"$dir/localstack.pid"
  # Ready means a real signed KMS call answers (the first takes a few seconds).
  for _ in $(seq 1 120); do
    if ! kill -0 "$(cat "$dir/localstack.pid")" 2>/dev/null; then
      echo "kms-peer: LocalStack exited; see $dir/localstack.log" >&2
      return 1
    fi
    if "$PY" - "$port" <<'PY' 2>/dev/null; then
import sys, boto3
kms = boto3.client("kms", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                   aws_access_key_id="test", aws_secret_access_key="test")
kms.list_keys(Limit=1)
PY
      echo "kms-peer: KMS answering on http://127.0.0.1:$port (pid $(cat "$dir/localstack.pid"))"
      return 0
    fi
    sleep 1
  done
  echo "kms-peer: no answer on 127.0.0.1:$port after 120 s; see $dir/localstack.log" >&2
  return 1
}

stop() {
  local dir="$1"
  [ -f "$dir/localstack.pid" ] || { echo "kms-peer: nothing started in $dir"; return 0; }
  local pid
  pid="$(cat "$dir/localstack.pid")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/localstack.pid"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?port}" "${3:?state directory}" ;;
  stop) stop "${2:?state directory}" ;;
  *) echo "usage: $0 install | start PORT DIR | stop DIR" >&2; exit 2 ;;
esac
