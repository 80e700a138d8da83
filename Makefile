# The two commands of the README. Both install what they need on a fresh machine with Rust.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
TOOLS_STAMP := $(VENV)/.tools-installed
# npm ci empties node_modules first, so a stamp inside it goes with it.
WEB_STAMP := web/node_modules/.installed

FUNCTIONS := $(patsubst functions/%/,%,$(wildcard functions/*/))

.PHONY: help dev test tools web demo bench coldstart size agent soak deploy budgets

help:
	@echo "make dev        run Warmline on http://127.0.0.1:9000 with the DynamoDB emulator"
	@echo "make test       install the test tools and run every check"
	@echo "make demo       with make dev running: a scripted warm transfer, as a timeline"
	@echo "make bench      per-request latency and instruction counts of every endpoint"
	@echo "make coldstart  init time, first request and peak memory of every function"
	@echo "make budgets    the instruction budgets of make test (ARGS=--update rewrites scripts/budgets.json)"
	@echo "make latency    callers' time to first TwiML and to a ringing agent, DynamoDB 5 ms and Twilio 250 ms away"
	@echo "make call-state-latency  a participant change Twilio reports → the agent's dashboard shows it, p50/p99"
	@echo "make cost       what a call costs on AWS per 1,000 calls, beside Amazon Connect and Twilio Flex"
	@echo "make size       deployment package size of every function (sam build)"
	@echo "make fuzz       every fuzz target for 60 s (cargo-fuzz, installed on first use)"
	@echo "make agent ARGS=\"...\"  add, list, disable agents, reset passwords, store Twilio secrets"
	@echo "make deploy     build, deploy to AWS, store the Twilio secrets, wire Twilio (ARGS=\"--dry-run\" shows how)"
	@echo "make soak       60 s of steady load on a local stack: errors, p50/p99, RSS growth"

dev: tools web
	@scripts/dev.sh

test: tools web /usr/bin/chromium /usr/bin/valgrind
	@scripts/test.sh

# With `make dev` running without Twilio credentials (so the Twilio simulator plays Twilio): a
# scripted warm transfer, printed as a timeline.
demo:
	@cargo run --quiet -p twilio-sim -- demo

bench: tools web
	@scripts/bench.sh

coldstart: tools web
	cargo build --release --quiet $(addprefix -p ,$(FUNCTIONS))
	@$(VENV)/bin/python scripts/coldstart.py --runs 10

# make test's instruction budgets on their own (the test build, then callgrind); updating the
# baseline is a deliberate commit: `make budgets ARGS=--update`, then commit scripts/budgets.json.
budgets: tools web /usr/bin/valgrind
	cargo test --workspace --all-targets --all-features --no-run --quiet
	@$(VENV)/bin/python scripts/budgets.py $(ARGS)

size: tools web
	scripts/build-release.sh
	CARGO_TARGET_DIR=target/sam SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam build
	@$(VENV)/bin/python scripts/sizes.py .aws-sam/build

# How long a participant change Twilio reports takes to show on an agent's dashboard, in
# Chromium on the make dev stack: p50, p90, p99 over SAMPLES changes (default 40). Not in make
# test: it is a measurement, about a minute once built.
.PHONY: call-state-latency
call-state-latency: tools web /usr/bin/chromium
	@node tests/browser/call-state-latency.mjs

# The release functions behind a local API Gateway and Lambda (tools/lambda-bench), with DynamoDB
# and Twilio's REST API as slow as the real ones; fails over the budgets. LATENCY_ARGS="--calls 100"
# for a shorter run. Not in make test: it takes about six minutes.
.PHONY: latency cost
latency: tools web
	cargo build --release --quiet $(addprefix -p ,$(FUNCTIONS)) -p lambda-bench
	@target/release/lambda-bench latency $(LATENCY_ARGS)

# Four calls and an agent's hour on the same stack, every request counted, then priced
# (scripts/cost.py). COST_ARGS="--detail" lists every kind of request.
cost: tools web
	cargo build --release --quiet $(addprefix -p ,$(FUNCTIONS)) -p lambda-bench
	@target/release/lambda-bench cost --out target/cost.json
	@$(VENV)/bin/python scripts/cost.py --measured target/cost.json $(COST_ARGS)

# The TwiML builder, form and signature parsing, phone numbers and tickets under libFuzzer; fails
# on any crash. The short run in make test uses the same script.
.PHONY: fuzz
fuzz:
	@scripts/fuzz.sh 60

# Starts its own stack on free ports and stops it; SOAK_ARGS="--duration 15" for a quick check.
soak: tools web
	@$(VENV)/bin/python scripts/soak.py $(SOAK_ARGS)

# The admin command line (tools/admin); `make agent ARGS="--help"` lists what it does.
agent:
	@cargo run --quiet -p warmline-admin -- $(ARGS)

# One command from a clean account to a wired stack (docs/OPERATIONS.md, "Deploying"): sam build
# and deploy, the Twilio secrets (TWILIO_* variables, else asked without echo), then Twilio's
# number and TwiML Apps through its REST API. `make deploy ARGS="--dry-run"` prints the steps;
# `make deploy ARGS="--help"` lists the options.
deploy: tools web
	@SAM_CLI_TELEMETRY=0 cargo run --quiet -p warmline-admin -- deploy --sam $(VENV)/bin/sam $(ARGS)

# Python tools (cargo-lambda, SAM CLI, cfn-lint, the moto emulator, the twilio oracle) live in a
# git-ignored venv, pinned; `sam build` cross-compiles for Graviton, so the arm64 std is needed.
tools: $(TOOLS_STAMP)
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu

# The pages embed the Voice SDK from npm (a release build refuses to run without it), and the
# browser tests drive Debian's Chromium through playwright-core, which downloads no browser.
web: $(WEB_STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

/usr/bin/chromium:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

# callgrind counts the instructions that make test's budgets hold (scripts/budgets.py).
/usr/bin/valgrind:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind

$(TOOLS_STAMP): requirements-dev.txt constraints-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints-dev.txt
	touch $@
