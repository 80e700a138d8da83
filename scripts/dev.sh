#!/usr/bin/env bash
# `make dev`: the whole app on http://127.0.0.1:${WARMLINE_PORT:-9000}: the DynamoDB emulator with
# the tables from template.yaml, and every function behind `cargo lambda watch` at its production
# path. Settings come from .env (or $WARMLINE_ENV_FILE) when present, else from safe local
# defaults. Ctrl-C stops it all.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

port=${WARMLINE_PORT:-9000}
dynamodb_port=${WARMLINE_DYNAMODB_PORT:-$(free_port)}
settings=${WARMLINE_ENV_FILE:-.env}
state=${WARMLINE_STATE_DIR:-.dev}
mkdir -p "$state"

cleanup() {
  trap - EXIT INT TERM
  [ -n "${WATCH_PID:-}" ] && kill "$WATCH_PID" 2>/dev/null
  [ -n "${EMULATOR_PID:-}" ] && kill "$EMULATOR_PID" 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "DynamoDB emulator on 127.0.0.1:$dynamodb_port"
start_emulator "$dynamodb_port" "$state/dynamodb.log"
endpoint="http://127.0.0.1:$dynamodb_port"
python scripts/create_tables.py --endpoint "$endpoint" >/dev/null

# Later lines win: defaults, then .env, then what only this script can know.
env_file="$state/functions.env"
{
  cat <<DEFAULTS
TWILIO_ACCOUNT_SID=AC00000000000000000000000000000000
TWILIO_AUTH_TOKEN=local-auth-token
TWILIO_API_KEY=SK00000000000000000000000000000000
TWILIO_API_SECRET=local-api-secret
TWILIO_NUMBER=+15550000000
TWILIO_TWIML_APP_SID=AP00000000000000000000000000000000
PUBLIC_BASE_URL=http://127.0.0.1:$port
DEFAULTS
  if [ -f "$settings" ]; then grep -E '^[A-Z_][A-Z0-9_]*=.' "$settings" || true; fi
  python scripts/create_tables.py --endpoint "$endpoint" --print-env
  cat <<EMULATOR
AWS_ENDPOINT_URL_DYNAMODB=$endpoint
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
EMULATOR
} >"$env_file"
if [ -f "$settings" ]; then log "settings from $settings (defaults fill the gaps)"; else log "no $settings: local defaults (see .env.example)"; fi

log "building the functions"
cargo build --workspace --quiet

log "serving on http://127.0.0.1:$port"
cat >&2 <<ROUTES
    POST http://127.0.0.1:$port/conference/connect/client
    POST http://127.0.0.1:$port/conference/wait
    POST http://127.0.0.1:$port/conference/{conference_id}/connect/{agent_id}
    POST http://127.0.0.1:$port/conference/{agent_id}/call
    POST http://127.0.0.1:$port/token
    Twilio webhooks must be signed for http://127.0.0.1:$port (or your PUBLIC_BASE_URL).
    Press Ctrl-C to stop.
ROUTES
cargo lambda watch -A 127.0.0.1 -P "$port" --env-file "$env_file" &
WATCH_PID=$!
wait "$WATCH_PID"
