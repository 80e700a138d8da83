#!/usr/bin/env bash
# What Lambda runs: the one release binary `warmline` (lambda/), which serves every function (its
# WARMLINE_FUNCTION names which), built by `cargo lambda build --release --arm64` into target/sam.
# `sam build`, given the same CARGO_TARGET_DIR, runs the same build in lambda/, finds it done and
# only packages it. One binary is one fat-LTO link, where a binary per function was one each.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

export CARGO_TARGET_DIR=$ROOT/target/sam
cargo lambda build --release --arm64 -p warmline "$@"
