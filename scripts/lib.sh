# Shared by the scripts in this folder: the venv's tools first on PATH, and the emulator helpers.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$ROOT/.venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_emulator PORT LOGFILE: starts the moto emulator (DynamoDB, Secrets Manager) on loopback,
# atomic like DynamoDB (scripts/emulator.py), and waits until it answers; sets EMULATOR_PID.
start_emulator() {
  local port=$1 logfile=$2
  python "$ROOT/scripts/emulator.py" "$port" >"$logfile" 2>&1 &
  EMULATOR_PID=$!
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
      return 0
    fi
    if ! kill -0 "$EMULATOR_PID" 2>/dev/null; then
      echo "the DynamoDB emulator exited; see $logfile" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "the DynamoDB emulator did not start on port $port; see $logfile" >&2
  return 1
}
