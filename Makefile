# Gridwork: `make up` starts one county's whole stack on this machine; `make test` runs
# every check. Both install what is missing first (Debian 12, as root).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PYTHON ?= $(shell command -v python3.11 || command -v python3)

.PHONY: help up down status test test-services test-e2e test-rest test-ui test-faults lint bench rabbitmq browser promtool install lock reseed

help:
	@echo "make up      install and start everything (infrastructure, services, gateway)"
	@echo "make down    stop what make up started"
	@echo "make status  what make up started and is running"
	@echo "make test    lint, import contracts and the whole test suite"
	@echo "make test-faults  the fault suite: the stack under load while servers and replicas fail"
	@echo "make bench   benchmarks against raw baselines"
	@echo "make reseed  load the demo county again into the running stack"

# The venv, with exactly the versions in requirements-dev.lock.
$(INSTALLED): requirements-dev.lock
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements-dev.lock
	touch $@

# The command centre's browser libraries, exactly as package-lock.json pins them, into the
# git-ignored node_modules/ the gateway serves (Debian's nodejs and npm, if missing).
NODE_MODULES := node_modules/.package-lock.json
$(NODE_MODULES): package.json package-lock.json
	@command -v npm >/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq nodejs npm; }
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

install: $(INSTALLED) $(NODE_MODULES)

# The browser tests' Chromium and a CJK font, with apt if missing (never `playwright install`).
browser:
	@dpkg -s chromium fonts-wqy-microhei >/dev/null 2>&1 || { \
	  export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
	  apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei; }

# promtool, which checks and unit-tests the alert rules (tests/unit/test_prometheus_rules.py),
# from Debian's prometheus package, with apt if missing. --no-install-recommends keeps
# node-exporter (port 9100) off; a policy-rc.d that refuses, for the install only, keeps
# the package's own Prometheus server from starting.
promtool:
	@command -v promtool >/dev/null || { \
	  export DEBIAN_FRONTEND=noninteractive; own_policy=no; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; own_policy=yes; fi; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus; status=$$?; \
	  if [ $$own_policy = yes ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$status; }

# Regenerate the locks after changing pyproject.toml's dependencies.
# requirements.lock: what the application image runs; requirements-dev.lock adds the
# local stack's servers and the test tools.
lock:
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --python-version 3.11 -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --extra local --extra dev --python-version 3.11 \
	  -o requirements-dev.lock

# Installs RabbitMQ with apt if missing, starts it if stopped, enables management.
rabbitmq:
	@mkdir -p var/run
	@if [ "$$(deploy/local/rabbitmq.sh)" = yes ]; then touch var/run/rabbitmq.started-by-make; fi

up: install rabbitmq
	$(PY) -m devstack.stack up

reseed: install
	$(PY) -m devstack.demo reseed

down:
	@if [ -x $(PY) ]; then $(PY) -m devstack.stack down; fi
	@if [ -f var/run/rabbitmq.started-by-make ]; then \
	  rabbitmqctl stop >/dev/null && rm -f var/run/rabbitmq.started-by-make && echo "stopped rabbitmq"; fi

status: install
	$(PY) -m devstack.stack status

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# The suite runs as four pytest processes at once, each with its own mongod, S3 server and
# RabbitMQ vhosts (tests/conftest.py), so they never collide: most of its time is spent
# waiting on processes, brokers and timers, not on the CPU. Each shard's output is printed
# whole when it ends. A new test directory lands in test-rest unless named below.
TEST_SHARDS := test-services test-e2e test-rest test-ui
test: lint rabbitmq browser promtool
	$(MAKE) --no-print-directory -j4 --output-sync=target $(TEST_SHARDS)

test-services: install
	$(VENV)/bin/pytest -m "not ui and not faults" tests/integration/events tests/integration/gateway

test-e2e: install
	$(VENV)/bin/pytest -m "not ui and not faults" tests/e2e

test-rest: install promtool
	$(VENV)/bin/pytest -m "not ui and not faults" tests --ignore=tests/ui --ignore=tests/e2e \
	  --ignore=tests/integration/events --ignore=tests/integration/gateway

# The browser tests (marker ui) run without eventlet's monkey-patching, which Playwright's
# sync API does not survive (tests/conftest.py). A browser test may also start the shared
# stack (up to 120 s) and seed the county.
test-ui: install browser
	GRIDWORK_TEST_EVENTLET=0 $(VENV)/bin/pytest -m ui --timeout 900 tests/ui

# The fault suite (docs/operations.md, "The fault suite"): about ten minutes on two cores,
# so apart from `make test`; .ci/run runs both. Its RabbitMQ node, mongod and S3 server
# are its own (the installed rabbitmq-server, run as the rabbitmq user: needs root).
test-faults: install rabbitmq
	$(VENV)/bin/pytest -m faults --timeout 1800 tests/integration/faults

# Every bench/ script, each figure beside its raw baseline, into bench/RESULTS.md.
bench: install rabbitmq
	PYTHONPATH=. $(PY) bench/run_all.py
