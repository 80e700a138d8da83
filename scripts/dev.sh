#!/usr/bin/env bash
# `make dev`: the whole app on http://127.0.0.1:${WARMLINE_PORT:-9000}: the DynamoDB emulator with
# the tables from template.yaml, and every function behind `cargo lambda watch` at its production
# path. Settings come from .env (or $WARMLINE_ENV_FILE) when present, else from safe local
# defaults. Without Twilio credentials there, the Twilio simulator (tools/twilio-sim) plays
# Twilio, so calls work offline; `make demo` drives it. Ctrl-C stops it all.
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
  [ -n "${SIM_PID:-}" ] && kill "$SIM_PID" 2>/dev/null
  rm -f "$state/simulator.url"
  [ -n "${EMULATOR_PID:-}" ] && kill "$EMULATOR_PID" 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "DynamoDB emulator on 127.0.0.1:$dynamodb_port"
start_emulator "$dynamodb_port" "$state/dynamodb.log"
endpoint="http://127.0.0.1:$dynamodb_port"
python scripts/create_tables.py --endpoint "$endpoint" >/dev/null

# A setting as the settings file gives it (its last line for that name), or nothing.
setting() {
  [ -f "$settings" ] || return 0
  grep -E "^$1=." "$settings" | tail -n 1 | cut -d= -f2- || true
}

# No Twilio account configured: the simulator plays Twilio. A TWILIO_API_BASE_URL in the settings
# (a test's own fake Twilio) wins over it, and real credentials mean real Twilio.
simulator_port=
account=$(setting TWILIO_ACCOUNT_SID)
if [ -z "$(setting TWILIO_API_BASE_URL)" ] && { [ -z "$account" ] || [ "$account" = AC00000000000000000000000000000000 ]; }; then
  simulator_port=$(free_port)
fi
rm -f "$state/simulator.url"

# A fresh key per run signs the session cookies (the emulator's agents are fresh per run too).
session_secret=$(python -c 'import secrets; print(secrets.token_hex(32))')

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
TWILIO_AGENT_TWIML_APP_SID=AP00000000000000000000000000000001
PUBLIC_BASE_URL=http://127.0.0.1:$port
SESSION_SECRET=$session_secret
DEFAULTS
  # cargo lambda watch refuses an unquoted value with a space (BUSINESS_HOURS has them): quote it.
  if [ -f "$settings" ]; then
    { grep -E '^[A-Z_][A-Z0-9_]*=.' "$settings" || true; } | sed -E "s/^([A-Z_][A-Z0-9_]*)=([^\"'].*[[:space:]][^']*)\$/\1='\2'/"
  fi
  python scripts/create_tables.py --endpoint "$endpoint" --print-env
  # WARMLINE_FUNCTIONS_DYNAMODB_ENDPOINT: where the functions (only) send their DynamoDB requests,
  # e.g. a test's counting pass-through in front of the emulator; the tables stay on the emulator.
  cat <<EMULATOR
AWS_ENDPOINT_URL_DYNAMODB=${WARMLINE_FUNCTIONS_DYNAMODB_ENDPOINT:-$endpoint}
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
EMULATOR
  if [ -n "$simulator_port" ]; then echo "TWILIO_API_BASE_URL=http://127.0.0.1:$simulator_port"; fi
} >"$env_file"
if [ -f "$settings" ]; then log "settings from $settings (defaults fill the gaps)"; else log "no $settings: local defaults (see .env.example)"; fi

# WARMLINE_CARGO_FEATURES (e.g. --all-features): the feature set to build and run with. make test
# sets the one its Rust tests were built with, so the stacks the tests start reuse that build.
read -r -a features <<<"${WARMLINE_CARGO_FEATURES:-}"
log "building the functions"
cargo build --workspace --quiet "${features[@]}"

# The roster's agents, so the dashboard can be signed in to at once. Each gets a password of its
# own, printed below and kept in $state/agents.txt (for `make demo`); tests pass one in
# WARMLINE_DEV_AGENT_PASSWORD instead.
env_value() { grep -E "^$1=" "$env_file" | tail -n 1 | cut -d= -f2-; }
roster=$(env_value AGENT_IDS || true)
(umask 077 && : >"$state/agents.txt")
for agent in $(echo "${roster:-agent1,agent2}" | tr ',' ' '); do
  password=${WARMLINE_DEV_AGENT_PASSWORD:-$(python -c 'import secrets; print(secrets.token_urlsafe(12))')}
  printf '%s\n' "$password" | AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
    "${CARGO_TARGET_DIR:-target}/debug/warmline-admin" --endpoint-url "$endpoint" --table "$(env_value AGENTS_TABLE)" \
    add "$agent" --name "Agent ${agent#agent}" --password-stdin >/dev/null
  echo "$agent $password" >>"$state/agents.txt"
done

if [ -n "$simulator_port" ]; then
  simulator="http://127.0.0.1:$simulator_port"
  log "Twilio simulator on $simulator (no Twilio account in $settings; calls stay on this machine)"
  "${CARGO_TARGET_DIR:-target}/debug/twilio-sim" serve --listen "127.0.0.1:$simulator_port" \
    --env-file "$env_file" >"$state/simulator.log" 2>&1 &
  SIM_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS "$simulator/sim" >/dev/null 2>&1 && break
    kill -0 "$SIM_PID" 2>/dev/null || { echo "the Twilio simulator exited; see $state/simulator.log" >&2; exit 1; }
    sleep 0.1
  done
  curl -fsS "$simulator/sim" >/dev/null || { echo "the Twilio simulator did not start; see $state/simulator.log" >&2; exit 1; }
  echo "$simulator" >"$state/simulator.url"
else
  log "Twilio REST API: $(grep -E '^TWILIO_API_BASE_URL=' "$env_file" | tail -n 1 | cut -d= -f2- || echo https://api.twilio.com)"
fi

log "serving on http://127.0.0.1:$port"
python scripts/routes.py --print "http://127.0.0.1:$port" >&2
echo "    Sign in at http://127.0.0.1:$port/login; Twilio webhooks must be signed for http://127.0.0.1:$port (or your PUBLIC_BASE_URL)." >&2
if [ -n "$simulator_port" ]; then
  cat >&2 <<SIMULATOR
    Twilio simulator: $simulator/sim/timeline.txt shows every call; \`make demo\` plays a warm transfer.
SIMULATOR
fi
echo "    Agents (id, password; this run only, also in $state/agents.txt):" >&2
sed 's/^/      /' "$state/agents.txt" >&2
cat >&2 <<ROUTES
    Press Ctrl-C to stop.
ROUTES
# WARMLINE_NO_RELOAD=1 keeps the running functions when files change (soak runs, measurements).
watch_flags=()
if [ -n "${WARMLINE_NO_RELOAD:-}" ]; then watch_flags+=(--ignore-changes); fi
cargo lambda watch -A 127.0.0.1 -P "$port" --env-file "$env_file" "${watch_flags[@]}" "${features[@]}" &
WATCH_PID=$!
wait "$WATCH_PID"
