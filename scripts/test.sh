#!/usr/bin/env bash
# `make test`: every check. Expects the tools `make test` installs first (the venv, the arm64
# target). On a 2-core machine the release build of the one binary every function is (what
# `sam build` ships; scripts/build-release.sh) is most of the work, so it starts first, in the
# background at the lowest CPU priority, beside the fuzz targets' build: they take the CPU clippy
# and the test suites leave idle while they wait on their stacks, and the suites' timing is not
# disturbed. docs/TESTING.md has the time each stage takes.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# A fresh clone gains nothing from incremental compilation's cache: it would cost build time and
# about 2 GB of the machine's disk (a CI run once failed on a full disk).
export CARGO_INCREMENTAL=0
# The features the Rust tests build with; the local stacks the tests start reuse that build.
FEATURES=--all-features
export WARMLINE_CARGO_FEATURES=$FEATURES
# scripts/build-release.sh builds there; `sam build` reads CARGO_TARGET_DIR and finds it built.
RELEASE_TARGET_DIR=$ROOT/target/sam

state=$(mktemp -d)
cleanup() {
  [ -n "${EMULATOR_PID:-}" ] && kill "$EMULATOR_PID" 2>/dev/null
  # The background job leads its own process group: this ends cargo and rustc with it.
  [ -n "${BACKGROUND_PID:-}" ] && kill -TERM -- "-$BACKGROUND_PID" 2>/dev/null
  rm -rf "$state"
}
trap cleanup EXIT

stage() {
  log "$1"
  STAGE_STARTED=$SECONDS
}
stage_done() {
  printf 'stage %-34s %4ds\n' "$1" $((SECONDS - STAGE_STARTED)) >>"$state/stages.txt"
}

stage "format"
cargo fmt --all -- --check
stage_done format

log "in the background, at the lowest priority: the release arm64 build and the fuzz targets' build"
# Both at once, from before clippy: the CPU that clippy's and the suites' serial stretches leave
# idle goes to them, and a last LTO link running alone leaves a core to the fuzz build.
set -m
(
  timed() {
    local name=$1 started=$SECONDS
    shift
    "$@" >"$state/$name.log" 2>&1 || return 1
    echo "$name: $((SECONDS - started))s" >>"$state/background.txt"
  }
  timed release-build nice -n 19 scripts/build-release.sh &
  release=$!
  timed fuzz-build env WARMLINE_FUZZ_BUILD_ONLY=1 nice -n 19 scripts/fuzz.sh &
  fuzz=$!
  failed=0
  wait "$release" || failed=1
  wait "$fuzz" || failed=1
  exit "$failed"
) &
BACKGROUND_PID=$!
set +m

stage "clippy"
cargo clippy --workspace --all-targets $FEATURES --quiet -- -D warnings
stage_done clippy

dynamodb_port=$(free_port)
log "DynamoDB emulator on 127.0.0.1:$dynamodb_port"
start_emulator "$dynamodb_port" "$state/dynamodb.log"
export WARMLINE_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$dynamodb_port"
export WARMLINE_PYTHON="$ROOT/.venv/bin/python"

stage "Rust tests (unit, endpoints, storage on the emulator, Python oracles, simulator end to end)"
cargo test --workspace --all-targets $FEATURES --no-fail-fast 2>&1 | tee "$state/cargo-test.log"
stage_done "Rust tests"

stage "instruction budgets (callgrind, against scripts/budgets.json: every endpoint's request, init)"
# The test build's benchmark and functions, built by now; fails on a count past its baseline.
python scripts/budgets.py 2>&1 | tee "$state/budgets.txt"
stage_done "instruction budgets"

stage "template and local stack tests"
# The stacks' state (their functions.env and logs) stays under $state for the secrets check.
python -m pytest tests -q --basetemp "$state/pytest-tmp" 2>&1 | tee "$state/pytest.log"
stage_done "template and local stack tests"

stage "browser tests (Chromium on the local stack)"
# An asset request the local server (`cargo lambda watch`) fails is made once more
# (retryFailedAssets); the suite still runs a second time if the first run fails, and the
# first run's journal is kept beside the second's. A real failure fails both runs.
if ! node --test --test-reporter=tap tests/browser/ >"$state/browser-first.log" 2>&1; then
  grep -E '^not ok' "$state/browser-first.log" >&2 || true
  cp test-artifacts/browser-journal.log test-artifacts/browser-journal-first-run.log 2>/dev/null || true
  log "browser tests failed once; running them again"
  node --test --test-reporter=tap tests/browser/ 2>&1 | tee "$state/browser.log"
else
  tee "$state/browser.log" <"$state/browser-first.log"
fi
stage_done "browser tests"

stage "waiting for the background builds"
if ! wait "$BACKGROUND_PID"; then
  BACKGROUND_PID=
  tail -n 60 "$state/release-build.log" "$state/fuzz-build.log" 2>/dev/null >&2
  echo "the release or fuzz build failed" >&2
  exit 1
fi
BACKGROUND_PID=
cat "$state/background.txt"
stage_done "waiting for the background builds"

stage "fuzzing (every cargo-fuzz target for 10 s; \`make fuzz\` runs them longer)"
scripts/fuzz.sh 10 2>&1 | tee "$state/fuzz.log"
stage_done fuzzing

stage "no secret in any log (every test stack's secrets, searched for in every log)"
python scripts/check_secrets_in_logs.py "$state" target/tmp test-artifacts 2>&1 | tee "$state/secrets-check.txt"
stage_done "secrets in logs"

stage "sam validate --lint"
AWS_DEFAULT_REGION=us-east-1 sam validate --lint
stage_done "sam validate"

stage "sam build (packages the release build)"
CARGO_TARGET_DIR=$RELEASE_TARGET_DIR sam build --build-dir "$state/sam-build"
stage_done "sam build"

stage "deployment package sizes (budget: 3.5 MB zipped with the AWS SDK, 1.5 MB without)"
python scripts/sizes.py "$state/sam-build" --check
stage_done "package sizes"

cat "$state/stages.txt"
# One closing line for all three runners (cargo prints a result line per test binary; node's
# TAP summary has `# pass N` and `# fail N`).
awk '
  /^test result:/ { passed += $4; failed += $6 }
  /^[0-9]+ passed/ { passed += $1; if (match($0, /[0-9]+ failed/)) failed += substr($0, RSTART) + 0 }
  /^# pass [0-9]+$/ { passed += $3 }
  /^# fail [0-9]+$/ { failed += $3 }
  END { printf "all tests: %d passed, %d failed\n", passed, failed }
' "$state/cargo-test.log" "$state/pytest.log" "$state/browser.log"
