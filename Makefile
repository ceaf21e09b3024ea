# One entry point for everything. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
BUILD  := build
# python3.11 (default) or rust: which implementation both Lambda functions use.
LAMBDA_RUNTIME ?= python3.11
export LAMBDA_RUNTIME
export CHECKPOINT_DISABLE := 1
export TF_CLI_CONFIG_FILE := $(CURDIR)/$(BUILD)/terraformrc
PYTEST_ARGS ?=
CARGO_TARGET_DIR ?= $(CURDIR)/target
export CARGO_TARGET_DIR
# tf-provider's build script needs protoc: setup builds crates/protoc-path, which prints where
# the vendored one (crate protoc-bin-vendored) is.
CARGO := env PROTOC="$${PROTOC:-$$($(CARGO_TARGET_DIR)/release/protoc-path)}" cargo
# The host build `make test` uses for everything it runs on this machine (test-host-phases).
HOST_BUILD := $(CARGO) build --release --workspace --all-targets --quiet
# Every phase of `make test` runs through scripts/timed.sh, which prints its wall time and
# records it in $(PHASE_TIMES); `make test` ends with the table (where a CI run's time goes).
TIMED := scripts/timed.sh
PHASE_TIMES ?= $(CURDIR)/$(BUILD)/test-phases.txt
export PHASE_TIMES
# pytest in `make test`: two workers (pytest-xdist; the CI machine has 2 cores). Tests sharing
# an applied stack or a module's emulator stay on one worker (tests/conftest.py: xdist_group and
# its scheduler), and the groups go out in collection order: the applied stacks (conformance,
# e2e) first, the many quick unit modules last, where they even out the two workers' ends.
# PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2
PYTEST_XDIST := $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --no-loadscope-reorder,)

.PHONY: help setup demo test test-phases test-host-phases test-host-checks test-demo-python test-demo-rust test-python lint fmt checkov plan up down differential \
        emulator-start emulator-stop build-rust bench clean preflight deploy smoke destroy

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

setup: $(BUILD)/.setup ## Install tools and build the offline provider stand-ins
$(BUILD)/.setup: scripts/setup.sh scripts/build-offline-providers.sh requirements-dev.txt requirements-checkov.txt Cargo.lock $(shell find crates/tf-offline-providers -type f 2>/dev/null)
	$(TIMED) setup scripts/setup.sh
	@touch $@

demo: setup $(if $(filter rust,$(LAMBDA_RUNTIME)),build-rust,) ## Run the whole pipeline locally on sample files (KEEP=1 keeps the stack)
	$(PY) -m pipeline_local.demo --runtime $(LAMBDA_RUNTIME) $(if $(KEEP),--keep,)

test: ## Run every check and test (what CI runs); ends with the wall time of each phase
	@mkdir -p $(BUILD) && rm -f $(PHASE_TIMES)
	@start=$$SECONDS; status=0; $(MAKE) --no-print-directory test-phases || status=$$?; \
	  echo "==> make test: the phases' wall times"; $(TIMED) --summary; \
	  echo "==> make test: $$((SECONDS - start)) s from start to end, exit $$status"; exit $$status

# The phases after the arm64 build. The stacks pytest applies are applied first, in the
# background (tests/preapply.py): most of an apply against moto is the provider's fixed waits,
# which then pass while the host build runs. What no test took is stopped afterwards, whether
# the phases between passed or not.
test-phases: setup lint checkov
	$(TIMED) rust-arm64 scripts/build-rust.sh
	$(PY) -m tests.preapply start
	status=0; $(MAKE) --no-print-directory test-host-phases || status=$$?; \
	  $(PY) -m tests.preapply stop; exit $$status

# cargo test runs in the release profile, on the build the host phase made: one build of the
# workspace (the Lambda binaries for local runs, txnctl, ddb-faithful, the differential's
# examples and the test binaries, with the same unified features), where a debug test build
# compiled the AWS SDK a second time. A fresh target directory on this 2-core machine: 770 s for
# the release test build, then 83 s for the remaining binaries and 0 crates for cargo test, where
# the release binaries alone (scripts/build-rust.sh --host) took 650 s and the differential's
# examples another 48 s, before a debug test build of its own. The release profile keeps
# overflow checks on (Cargo.toml), so the tests check what ships.
#
# pytest then runs in the foreground while the two demos, cargo test and the differential run
# beside it (one make -j3, each printing its output whole when it ends, after pytest's). A demo
# is mostly the provider's waits in its apply and destroy: alone on this machine one took 129 s
# of wall time and 48 s of CPU, and the three side jobs together about 150 s of CPU in a 146 s
# phase of their own before pytest, half the machine idle. What no test took is stopped
# afterwards, and the side jobs are waited for, whether pytest passed or not.
test-host-phases:
	$(TIMED) rust-host $(HOST_BUILD)
	status=0; side_log=$(BUILD)/test-side-jobs.log; \
	  $(MAKE) --no-print-directory -j3 --output-sync=target test-host-checks test-demo-python test-demo-rust \
	    > $$side_log 2>&1 & side=$$!; \
	  $(TIMED) pytest env CONFORMANCE_IMPL=python,rust E2E_IMPL=python,rust \
	    $(PY) -m pytest $(PYTEST_XDIST) --durations=30 $(PYTEST_ARGS) || status=$$?; \
	  wait $$side || status=$$?; \
	  echo "==> the side jobs' output (cargo test, the differential, the demos): $$side_log"; \
	  cat $$side_log; exit $$status

# Without MAKEFLAGS and MFLAGS: under make -j the doc tests warn that they cannot reach
# make's jobserver.
test-host-checks:
	$(TIMED) cargo-test env -u MAKEFLAGS -u MFLAGS $(CARGO) test --release --workspace --quiet
	$(MAKE) --no-print-directory differential

# The demo, for both implementations, with every request decided by the authorization model
# (it exits non-zero on a refused call or a record unaccounted for). `make test` runs the two
# side by side, each with its own emulator and build directory: most of a demo's apply and
# destroy is the provider waiting, so one demo's waits overlap the other's work.
test-demo-python test-demo-rust: test-demo-%:
	$(TIMED) demo-$* $(PY) -m pipeline_local.demo --runtime $(if $(filter python,$*),python3.11,$*) \
	  --scale 0.3 --dir $(BUILD)/demo-$*

test-python: setup ## Only the Python tests (conformance and e2e against the Python handlers only)
	$(PY) -m pytest $(PYTEST_ARGS)

# The size `make test` runs the differential at: one process, 86 s alone on this 2-core machine
# (about 244,000 rows and 100,000 messages; 254 s before mutants drew the long resume and range
# inputs less often). Its wall time grows with whatever else shares the machine.
DIFF_MUTANTS  ?= 15000
DIFF_MESSAGES ?= 100000
DIFF_SEED     ?= 1
# It needs txn-core's examples; HOST_BUILD makes them with the rest of the workspace, so in
# `make test` its build step finds nothing left to do.
differential: setup ## Python vs Rust handlers' logic over generated inputs; fails on any difference
	$(TIMED) differential-build $(HOST_BUILD)
	$(TIMED) differential $(PY) bench/differential.py --mutants $(DIFF_MUTANTS) --messages $(DIFF_MESSAGES) --seed $(DIFF_SEED)

build-rust: setup ## Rust Lambdas: aarch64 bootstraps for archive_file, and host builds for local runs
	$(TIMED) rust-arm64 scripts/build-rust.sh
	$(TIMED) rust-host scripts/build-rust.sh --host

bench: setup ## Pipeline at Lambda size vs a throttling DynamoDB, cost, CPU per record; rewrites docs/benchmarks.md (~30 min)
	bench/run.sh

# What mypy --strict checks (configuration in pyproject.toml): the handlers, the whole harness,
# and the differential.
MYPY_PATHS := lib pipeline_local bench/differential.py

# clippy in the release profile: the proc-macros and build scripts it compiles (they are built,
# not checked) are then the very units the host build needs. Fresh target directories on this
# machine: clippy 269 s then the host build 1,020 s (356 crates); clippy --release 336 s then
# the host build 822 s (305 crates). It fails on a lint as before (seen).
lint: setup ## terraform fmt/validate, ruff, mypy, cargo fmt/clippy
	$(TIMED) terraform-fmt terraform fmt -check -recursive lib
	$(TIMED) terraform-validate $(PY) -m pipeline_local.terraform validate
	$(TIMED) ruff-check $(VENV)/bin/ruff check .
	$(TIMED) ruff-format $(VENV)/bin/ruff format --check .
	$(TIMED) mypy $(VENV)/bin/mypy $(MYPY_PATHS)
	$(TIMED) cargo-fmt cargo fmt --all -- --check
	$(TIMED) clippy $(CARGO) clippy --release --workspace --all-targets --quiet -- -D warnings

fmt: setup ## Format Terraform, Python and Rust in place
	terraform fmt -recursive lib
	$(VENV)/bin/ruff format .
	cargo fmt --all

checkov: setup ## Static security checks of lib/ (every skip is inline with its reason)
	$(TIMED) checkov .venv-checkov/bin/checkov --skip-download --quiet --compact --framework terraform --directory lib

emulator-start: setup ## Start the local AWS emulator (moto server) on a free port
	$(PY) -m pipeline_local.emulator start

emulator-stop: ## Stop the local AWS emulator
	$(PY) -m pipeline_local.emulator stop

plan: emulator-start ## Plan against the emulator; writes build/plan.json
	$(PY) -m pipeline_local.terraform plan

up: emulator-start ## Apply to the emulator; writes build/outputs.json
	$(PY) -m pipeline_local.terraform up

down: ## Destroy the stack in the emulator and stop it
	$(PY) -m pipeline_local.terraform down
	$(PY) -m pipeline_local.emulator stop

clean: emulator-stop ## Remove build outputs (keeps the virtual environments)
	rm -rf $(BUILD) lib/.build

# --------------------------------------------------------------------------------------------
# A real AWS account (docs/deploy.md). Never part of `make test`: these use your own AWS
# credentials (AWS_PROFILE or the usual environment variables), the public Terraform registry,
# and keep the state in lib/terraform.tfstate (git-ignored: back it up, or configure a backend).
ENVIRONMENT       ?= dev
ALERT_EMAIL       ?=
PROCESSOR_RESERVED_CONCURRENCY     ?= 100
DLQ_PROCESSOR_RESERVED_CONCURRENCY ?= 50
# The public registry, not build/terraformrc's offline stand-ins.
AWS_TF   := env -u TF_CLI_CONFIG_FILE terraform -chdir=lib
AWS_VARS := -var environment=$(ENVIRONMENT) -var lambda_runtime=$(LAMBDA_RUNTIME) \
            -var processor_reserved_concurrency=$(PROCESSOR_RESERVED_CONCURRENCY) \
            -var dlq_processor_reserved_concurrency=$(DLQ_PROCESSOR_RESERVED_CONCURRENCY) \
            $(if $(ALERT_EMAIL),-var alert_email=$(ALERT_EMAIL),)

preflight: setup ## Real AWS: check Lambda concurrency and your permissions before deploy
	$(PY) -m pipeline_local.preflight --environment $(ENVIRONMENT) \
	  --processor-reserved $(PROCESSOR_RESERVED_CONCURRENCY) \
	  --dlq-processor-reserved $(DLQ_PROCESSOR_RESERVED_CONCURRENCY)

deploy: preflight $(if $(filter rust,$(LAMBDA_RUNTIME)),build-rust,) ## Real AWS: terraform init + apply of lib/ (ALERT_EMAIL=you@example.org)
	@test -n "$(ALERT_EMAIL)" || { echo "set ALERT_EMAIL=<address that receives the alarms>" >&2; exit 2; }
	$(AWS_TF) init -input=false
	$(AWS_TF) apply $(AWS_VARS)

smoke: setup ## Real AWS: upload the sample files, wait for the pipeline, account for every record
	$(PY) -m pipeline_local.smoke $(if $(PRODUCER_PROFILE),--producer-profile $(PRODUCER_PROFILE),)

destroy: ## Real AWS: terraform destroy of what `make deploy` created
	$(AWS_TF) destroy $(AWS_VARS)
