# The two commands of the README. Both install what they need on a fresh machine with Rust.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
TOOLS_STAMP := $(VENV)/.tools-installed

.PHONY: help dev test tools

help:
	@echo "make dev   run Warmline on http://127.0.0.1:9000 with the DynamoDB emulator"
	@echo "make test  install the test tools and run every check"

dev: tools
	@scripts/dev.sh

test: tools
	@scripts/test.sh

# Python tools (cargo-lambda, SAM CLI, cfn-lint, the moto emulator, the twilio oracle) live in a
# git-ignored venv, pinned; `sam build` cross-compiles for Graviton, so the arm64 std is needed.
tools: $(TOOLS_STAMP)
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu

$(TOOLS_STAMP): requirements-dev.txt constraints-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints-dev.txt
	touch $@
