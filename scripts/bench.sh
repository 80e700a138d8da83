#!/usr/bin/env bash
# `make bench`: per-endpoint latency (p50/p99/max) of the in-process request path, then the
# instructions each request costs, counted by callgrind: a figure that stays put on a noisy
# machine, so a regression shows up as a number rather than as jitter. Every request Twilio makes
# in a call is held to INSTRUCTION_BUDGET; the run fails if one is over. (`make test` holds every
# count to its committed baseline instead: scripts/budgets.py.)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

INSTRUCTION_BUDGET=120000
# Deployed, the functions log JSON lines (LoggingConfig: JSON): the requests pay for them here too.
export AWS_LAMBDA_LOG_FORMAT=JSON

bench() { cargo bench --quiet -p shared --features testkit --bench handlers -- "$@"; }

log "latency (20 000 requests per endpoint, after 2 000 warm-up)"
bench

command -v valgrind >/dev/null || { log "valgrind not installed: skipping instruction counts"; exit 0; }
binary=$(cargo bench --no-run --message-format=json -p shared --features testkit --bench handlers 2>/dev/null \
  | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "handlers" and m.get("executable"):
        print(m["executable"])')

requests=1000
# Counted only inside serve_requests: building the events and the app is setup, not serving.
instructions() {
  local out
  out=$(mktemp)
  valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*serve_requests*' \
    --callgrind-out-file="$out" "$binary" --only "$1" --iterations "$requests" --no-warmup >/dev/null 2>&1
  awk '/^summary:/ { print $2 }' "$out"
  rm -f "$out"
}

log "instructions per request (callgrind, $requests requests each; Twilio's budget: $INSTRUCTION_BUDGET)"
printf '%-40s %14s\n' endpoint instructions
webhooks=$("$binary" --list-webhooks)
over=0
while IFS= read -r endpoint; do
  count=$(($(instructions "$endpoint") / requests))
  verdict=
  if grep -qxF -- "$endpoint" <<<"$webhooks"; then
    if ((count > INSTRUCTION_BUDGET)); then verdict=OVER; over=$((over + 1)); else verdict=within; fi
  fi
  printf '%-40s %14d  %s\n' "$endpoint" "$count" "$verdict"
done < <("$binary" --list)
if ((over > 0)); then
  echo "$over Twilio webhook(s) over $INSTRUCTION_BUDGET instructions per request" >&2
  exit 1
fi
