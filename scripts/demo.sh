#!/usr/bin/env bash
# Sets up and starts a demo Keyward appliance under ./data/demo:
#   a SoftHSMv2 token (keyward-hsm-sim), two demo administrators, keywardd in the background.
# Re-running keeps the token and database and only starts the daemon if it is not running.
#   scripts/demo.sh          set up (first time) and start
#   scripts/demo.sh stop     stop the demo daemon (by its process id)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

DEMO="$PWD/data/demo"
BIN="$PWD/target/debug"
PIDFILE="$DEMO/keywardd.pid"
SERIAL_PIDFILE="$DEMO/serial-line.pid"

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

KMS_PORT="${KEYWARD_DEMO_KMS_PORT:-4566}"

if [ "${1:-}" = "stop" ]; then
  for pf in "$PIDFILE" "$SERIAL_PIDFILE"; do
    if running "$pf"; then kill -TERM "$(cat "$pf")"; echo "stopped pid $(cat "$pf") ($(basename "$pf" .pid))"; fi
    rm -f "$pf"
  done
  scripts/kms-peer.sh stop "$DEMO/kms"
  exit 0
fi

ensure_packages softhsm2 socat
build_all
mkdir -p "$DEMO" && chmod 700 "$DEMO"

if [ ! -f "$DEMO/hsm/softhsm2.conf" ]; then
  echo "==> provisioning a development HSM token in $DEMO/hsm"
  "$BIN/keyward-hsm-sim" init --dir "$DEMO/hsm" > "$DEMO/hsm-table.toml"
fi
if [ ! -f "$DEMO/keyward.toml" ]; then
  {
    printf 'data_dir = "%s"\n\n' "$DEMO/db"
    cat "$DEMO/hsm-table.toml"
    printf '\n[console]\nsocket = "%s"\n' "$DEMO/console.sock"
    printf '\n[[serial]]\ndevice = "%s"\nname = "demo"\n' "$DEMO/tty-appliance"
  } > "$DEMO/keyward.toml"
  chmod 600 "$DEMO/keyward.toml"
fi
if [ ! -d "$DEMO/db/db" ]; then
  echo "==> first boot: two demo administrators"
  umask 077
  for admin in alice bob; do
    head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$DEMO/$admin.password"
  done
  "$BIN/keywardd" init --config "$DEMO/keyward.toml" \
    --admin "alice=$DEMO/alice.password" --admin "bob=$DEMO/bob.password"
  echo "    demo passwords: $DEMO/alice.password and $DEMO/bob.password (mode 0600)"
fi

# The demo's serial line: a linked pty pair. keywardd serves one end; a terminal program
# (picocom, screen, minicom) attaches to the other.
if ! running "$SERIAL_PIDFILE"; then
  socat pty,raw,echo=0,link="$DEMO/tty-appliance" pty,raw,echo=0,link="$DEMO/tty-operator" >>"$DEMO/serial-line.log" 2>&1 &
  echo $! > "$SERIAL_PIDFILE"
  for _ in $(seq 1 50); do [ -e "$DEMO/tty-appliance" ] && break; sleep 0.1; done
fi

# The KMS peer: LocalStack's KMS on 127.0.0.1:$KMS_PORT (state is not kept across restarts).
if running "$DEMO/kms/localstack.pid"; then
  echo "==> KMS peer already running (pid $(cat "$DEMO/kms/localstack.pid"))"
else
  echo "==> starting the KMS peer on 127.0.0.1:$KMS_PORT (first time: pip install into .venv)"
  scripts/kms-peer.sh start "$KMS_PORT" "$DEMO/kms"
fi
# A demo access key, as the AWS console gives it out (the peer accepts any).
if [ ! -f "$DEMO/demo_accessKeys.csv" ]; then
  (umask 077; printf 'Access key ID,Secret access key\r\nAKIADEMO0000000KEYWD,%s\r\n' \
    "$(head -c 30 /dev/urandom | base64 | tr -d '/+=')" > "$DEMO/demo_accessKeys.csv")
fi

if running "$PIDFILE"; then
  echo "==> keywardd already running (pid $(cat "$PIDFILE"))"
else
  echo "==> starting keywardd (log: $DEMO/keywardd.log)"
  "$BIN/keywardd" run --config "$DEMO/keyward.toml" >>"$DEMO/keywardd.log" 2>&1 &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 100); do [ -S "$DEMO/console.sock" ] && break; sleep 0.1; done
fi
"$BIN/keyward-console" --socket "$DEMO/console.sock" status --user alice --password-file "$DEMO/alice.password"
cat <<MSG

Keyward demo appliance is running.
  console:       $BIN/keyward-console --socket $DEMO/console.sock
                 log in alice, then bob (dual control); their passwords are in
                 $DEMO/alice.password and $DEMO/bob.password (mode 0600; cat them in another
                 terminal and paste). Then, ? shows the keys of each screen:
                   5 Credentials, i: import name demo, path $DEMO/demo_accessKeys.csv
                   7 Keys, n: a group with credential demo, region us-east-1,
                     endpoint http://127.0.0.1:$KMS_PORT, alias alias/demo
                   R force rotate; 3 Jobs shows it run; back on 7 the new key has ★
  serial port:   picocom -b 115200 $DEMO/tty-operator   (or: screen $DEMO/tty-operator 115200)
                 then 'login alice' with the password in $DEMO/alice.password; 'help' lists the commands
  status:        $BIN/keyward-console --socket $DEMO/console.sock status --user alice --password-file $DEMO/alice.password
  audit verify:  scripts/demo.sh stop && $BIN/keywardd audit verify --config $DEMO/keyward.toml
  token status:  $BIN/keyward-hsm-sim status --dir $DEMO/hsm
  AWS KMS on the serial port, with alice and bob both logged in:
                   credential import demo $DEMO/demo_accessKeys.csv
                   group create demo credential=demo region=us-east-1 endpoint=http://127.0.0.1:$KMS_PORT alias=alias/demo
                   group rotate demo        (prints the job id)
                   job log 1 follow
                   key list demo
                 scheduled rotation (docs/scheduler.md):
                   group set demo rotate_every=2m valid_for=30d
                   schedule list            (next due, last result, why it waits)
                   settings show            (rotation.designated)
  stop:          scripts/demo.sh stop
MSG

# The demo ends in the console when it runs on a terminal (KEYWARD_DEMO_NO_CONSOLE=1 skips it).
# Leaving the console (q) leaves the appliance running.
if [ -t 0 ] && [ -t 1 ] && [ -z "${KEYWARD_DEMO_NO_CONSOLE:-}" ]; then
  printf '\nPress Enter to open the console (Ctrl-C: stay in the shell; the appliance keeps running) '
  read -r _ || exit 0
  exec "$BIN/keyward-console" --socket "$DEMO/console.sock"
fi
