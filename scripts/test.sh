#!/usr/bin/env bash
# `make test`: every check, in the order that fails fastest. Expects the tools `make test`
# installs first (the venv, the arm64 target).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

log "format"
cargo fmt --all -- --check

log "clippy"
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings

state=$(mktemp -d)
cleanup() {
  [ -n "${EMULATOR_PID:-}" ] && kill "$EMULATOR_PID" 2>/dev/null
  rm -rf "$state"
}
trap cleanup EXIT

dynamodb_port=$(free_port)
log "DynamoDB emulator on 127.0.0.1:$dynamodb_port"
start_emulator "$dynamodb_port" "$state/dynamodb.log"
export WARMLINE_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$dynamodb_port"
export WARMLINE_PYTHON="$ROOT/.venv/bin/python"

log "Rust tests (unit, handlers, storage on the emulator, Python oracles)"
cargo test --workspace --all-targets --all-features --no-fail-fast 2>&1 | tee "$state/cargo-test.log"

log "fuzzing (every cargo-fuzz target for 10 s; \`make fuzz\` runs them longer)"
scripts/fuzz.sh 10 2>&1 | tee "$state/fuzz.log"

log "template and local stack tests"
# The stacks' state (their functions.env and logs) stays under $state for the secrets check.
python -m pytest tests -q --basetemp "$state/pytest-tmp" 2>&1 | tee "$state/pytest.log"

log "browser tests (Chromium on the local stack)"
# The one flake seen so far: on a loaded machine `cargo lambda watch` answered 500 to one of a
# page's concurrent asset requests (the journal shows it; Warmline never saw the request). The
# tests reload such a page once (reloadIfAssetsFailed). The suite still runs a second time if the
# first run fails, for causes not yet seen; a real failure fails both runs.
if ! node --test --test-reporter=tap tests/browser/ >"$state/browser-first.log" 2>&1; then
  grep -E '^not ok' "$state/browser-first.log" >&2 || true
  # The pages' requests and console during the failed run, kept for diagnosing the flake.
  cp test-artifacts/browser-journal.log test-artifacts/browser-journal-first-run.log 2>/dev/null || true
  log "browser tests failed once; running them again"
  node --test --test-reporter=tap tests/browser/ 2>&1 | tee "$state/browser.log"
else
  tee "$state/browser.log" <"$state/browser-first.log"
fi

log "no secret in any log (every test stack's secrets, searched for in every log)"
python scripts/check_secrets_in_logs.py "$state" target/tmp test-artifacts 2>&1 | tee "$state/secrets-check.txt"

log "sam validate --lint"
AWS_DEFAULT_REGION=us-east-1 sam validate --lint

log "sam build (cargo lambda, release, arm64)"
sam build --build-dir "$state/sam-build"

log "deployment package sizes (budget: 3.5 MB zipped with the AWS SDK, 1.5 MB without)"
python scripts/sizes.py "$state/sam-build" --check

# One closing line for all three runners (cargo prints a result line per test binary; node's
# TAP summary has `# pass N` and `# fail N`).
awk '
  /^test result:/ { passed += $4; failed += $6 }
  /^[0-9]+ passed/ { passed += $1; if (match($0, /[0-9]+ failed/)) failed += substr($0, RSTART) + 0 }
  /^# pass [0-9]+$/ { passed += $3 }
  /^# fail [0-9]+$/ { failed += $3 }
  END { printf "all tests: %d passed, %d failed\n", passed, failed }
' "$state/cargo-test.log" "$state/pytest.log" "$state/browser.log"
