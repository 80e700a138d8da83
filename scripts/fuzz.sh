#!/usr/bin/env bash
# make fuzz (and a short run in make test): every cargo-fuzz target in fuzz/ for a bounded time.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60); WARMLINE_FUZZ_BUILD_ONLY=1 only builds.
# Fails when any target finds a crash; the input that caused it is in fuzz/artifacts/<target>/.
# Corpora grow in fuzz/corpus/<target>/ (git-ignored) from run to run on the same machine.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECONDS_PER_TARGET=${1:-60}
if ! [[ $SECONDS_PER_TARGET =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
  exit 2
fi

CARGO_FUZZ_VERSION=0.13.2
TOOLS=$ROOT/fuzz/.tools
if [[ $("$TOOLS/bin/cargo-fuzz" --version 2>/dev/null) != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION into fuzz/.tools"
  cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$TOOLS"
fi
export PATH="$TOOLS/bin:$PATH"

# The pinned stable compiler, not nightly: no second toolchain to download, and the same rustc
# as every other build. Its only nightly-only need is AddressSanitizer, which finds memory bugs in
# unsafe code, and the crates fuzzed here forbid unsafe code; libFuzzer's coverage instrumentation
# works without it. RUSTC_BOOTSTRAP lets cargo-fuzz pass its -Z flags to the stable rustc.
# cargo-fuzz builds optimised, with debug assertions and overflow checks on.
export RUSTC_BOOTSTRAP=1
FUZZ_FLAGS=(--sanitizer none)

cd "$ROOT/fuzz"
log "building the fuzz targets"
cargo fuzz build "${FUZZ_FLAGS[@]}"
# make test builds them early, in the background, and runs them later.
if [ -n "${WARMLINE_FUZZ_BUILD_ONLY:-}" ]; then exit 0; fi

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()
summary=()
for target in $(cargo fuzz list); do
  log "fuzzing $target for ${SECONDS_PER_TARGET}s"
  mkdir -p "corpus/$target"
  # -timeout: an input that takes 10 s is a finding (a hang), not something to wait out.
  if cargo fuzz run "${FUZZ_FLAGS[@]}" "$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1 >"$logs/$target" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$target")
    tail -n 60 "$logs/$target" >&2
  fi
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target" | tail -n 1)
  corpus=$(find "corpus/$target" -type f | wc -l)
  summary+=("$(printf 'fuzz %-14s %-6s %12s executions in %ss, corpus %s inputs' \
    "$target" "$status" "${executions:-?}" "$SECONDS_PER_TARGET" "$corpus")")
done

printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
