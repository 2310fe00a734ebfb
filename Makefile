# ticketflow: one entry point for developers and CI.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FERRETDB := .tools/bin/ferretdb
LOCAL_AMQP_URL := amqp://guest:guest@127.0.0.1:5672/%2F
PYTEST_ARGS ?=
# The suite runs on TEST_WORKERS processes (pytest-xdist; 0 runs it in this process); each module of e2e and
# browser tests stays in one of them (its own xdist_group). Four on 2 cores: the fault and browser tests spend much
# of their time waiting (a database or broker down, a mail relay cut for a minute, a page's poll) while the other
# processes work; with one core kept busy, a fresh clone's `make test` took 781 s with four against 854 with three
# (one run each).
# TEST_SEED=N runs it in an order shuffled by pytest-randomly with seed N.
TEST_WORKERS ?= 4
TEST_SEED ?=
TEST_ORDER := $(if $(TEST_SEED),-p randomly --randomly-seed=$(TEST_SEED),-p no:randomly)
# Python writes its compiled modules (__pycache__, ignored by git) even where PYTHONDONTWRITEBYTECODE is set: else
# each of the suite's hundreds of processes compiles the project's sources again, and each pytest process rewrites
# every test module's asserts again (collecting the suite took 14 s of CPU per process instead of 4).
unexport PYTHONDONTWRITEBYTECODE

# Tests bring their own FerretDB / broker unless TEST_MONGO_URL / TEST_AMQP_URL point elsewhere; the browser
# tests (tests/browser) need Debian's chromium, intake's IMAP tests Debian's dovecot (private instances).
TEST_DEPS := venv $(if $(TEST_MONGO_URL),,tools) $(if $(TEST_AMQP_URL),,test-rabbitmq) chromium dovecot
# `run` needs FerretDB only when it is to start one itself (MONGO_URL unset).
RUN_DEPS := venv $(if $(MONGO_URL),,tools) rabbitmq

.PHONY: venv run status test lint fmt tools rabbitmq test-rabbitmq chromium dovecot clean

venv: $(STAMP)

# Re-installed only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,tool]'
	touch $@

tools: $(FERRETDB)

$(FERRETDB): scripts/build-ferretdb.sh scripts/ferretdb.patch
	scripts/build-ferretdb.sh --force

rabbitmq:
	scripts/ensure-rabbitmq.sh

test-rabbitmq:
	AMQP_URL='$(LOCAL_AMQP_URL)' scripts/ensure-rabbitmq.sh

# Debian's chromium for the browser tests (apt-get install when it is not on PATH); Playwright downloads none.
chromium:
	scripts/ensure-chromium.sh

# Debian's Dovecot for intake's IMAP tests (apt-get install when it is not installed); the system service stays
# stopped and disabled: the tests start private instances (tests/mailserver.py).
dovecot:
	scripts/ensure-dovecot.sh

test: $(TEST_DEPS)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup $(TEST_ORDER) $(PYTEST_ARGS)

# The whole system on 127.0.0.1 until Ctrl-C; a process that dies is started again (ticketflow/supervisor.py).
run: $(RUN_DEPS)
	$(BIN)/ticketflow run

# What `make run` started: readiness, queues, open tickets per team, breaches in the last hour.
# Like `run`, it uses the development secret when TICKETFLOW_JWT_SECRET is not set.
status: venv
	$(if $(TICKETFLOW_JWT_SECRET),,TICKETFLOW_DEV=1) $(BIN)/ticketflow status

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .tools .run build .pytest_cache .hypothesis .ruff_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
