#!/usr/bin/env bash
# The ten functions as Lambda runs them: one `cargo lambda build --release --arm64` for all of
# them, into target/sam, so their link-time optimisation runs two at a time and `sam build`
# (given the same CARGO_TARGET_DIR) finds them built and only packages them. Building function
# by function, as `sam build` alone does, takes about twice as long.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

export CARGO_TARGET_DIR=$ROOT/target/sam
packages=()
for function in functions/*/; do
  packages+=(-p "$(basename "$function")")
done
cargo lambda build --release --arm64 "${packages[@]}" "$@"
