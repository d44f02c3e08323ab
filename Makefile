# One Python for the venv and the Lambda runtime (python3.12): see docs/deploying.md "Runtime".
PYTHON_VERSION := 3.12
# pyenv's shims refuse a version that is not selected, so look in its versions folder first.
PYTHON ?= $(shell ls -d $$HOME/.pyenv/versions/$(PYTHON_VERSION).*/bin/python$(PYTHON_VERSION) 2>/dev/null | tail -n 1 | grep . \
	|| command -v python$(PYTHON_VERSION) 2>/dev/null)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.txt layers/gateway/requirements.txt | cksum | cut -d' ' -f1)

.PHONY: help venv supabase-cli dev unit test lint typecheck purge scheduler reconcile media hosts host-add host-set clean

include deploy.mk
include browser.mk
include bench.mk
include soak.mk

help:
	@echo "make dev    start the local stack (database, simulator, gateway)"
	@echo "make unit   the tests that need no server (tests/unit), in seconds"
	@echo "make test   lint, type-check, check the SAM template and layer, run every test"
	@echo "make bench  the benchmark: cold starts, warm latency, round trips (.local/bench.json)"
	@echo "make soak   minutes of load through the gateway, with invariant checks (.local/soak.json)"
	@echo "make purge  run the purge job once against the local stack"
	@echo "make scheduler  send the scheduled messages that are due, once (make dev: every 10 s)"
	@echo "make reconcile  put live sessions right from the host, once (make dev: every 30 s)"
	@echo "make media  fetch the received files that are due, once (make dev: every 15 s)"
	@echo "make hosts, host-add, host-set   manage the WPPConnect host pool"

$(STAMP): requirements-dev.txt layers/gateway/requirements.txt
	@test -n "$(PYTHON)" || { echo "python$(PYTHON_VERSION) not found: install it (pyenv install $(PYTHON_VERSION)) or set PYTHON=" >&2; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP)

# The Supabase CLI, pinned in package.json and package-lock.json: it applies the migrations to
# the local database and the tests' databases, as `supabase db push` does to a project. npm
# installs the binary for this platform from the CLI's own packages; nothing is downloaded
# when it runs. The same install brings supabase-js, which tests/contract runs with Node.
CLI_STAMP := node_modules/.installed-$(shell cat package.json package-lock.json | cksum | cut -d' ' -f1)

$(CLI_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm not found: install Node.js 20 or later" >&2; exit 1; }
	npm ci --no-audit --no-fund
	touch $@

supabase-cli: $(CLI_STAMP)

dev: venv supabase-cli
	$(PY) -m local.stack

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PYTHONPATH=shared $(VENV)/bin/lint-imports --no-cache --no-logo  # no import cycles in the layer

typecheck: venv
	$(VENV)/bin/mypy

# The fast loop: no database, simulator or gateway (tests/unit/conftest.py refuses them).
# Without the pytest plugins of the fuzzing libraries, which no unit test uses: loading them
# took longer than half of the unit tests themselves.
UNIT_PLUGINS_OFF := -p no:schemathesis -p no:hypothesispytest -p no:anyio

unit: venv
	$(VENV)/bin/pytest tests/unit -q $(UNIT_PLUGINS_OFF)

# The whole suite: lint, types, the SAM template and layer, then every test.
test: lint typecheck deploy-check browser supabase-cli
	$(VENV)/bin/pytest

purge: venv
	PYTHONPATH=shared $(PY) -m local.scheduled_job purge

scheduler: venv
	PYTHONPATH=shared $(PY) -m local.scheduled_job scheduler

reconcile: venv
	PYTHONPATH=shared $(PY) -m local.scheduled_job reconcile

media: venv
	PYTHONPATH=shared $(PY) -m local.scheduled_job media

# The WPPConnect host pool (see docs/operating.md "The host pool"); the settings come from the
# environment, the host's secret key from WPP_HOST_SECRET_KEY (or a prompt).
HOSTS := PYTHONPATH=shared $(PY) -m wa_gateway.host.cli

hosts: venv
	$(HOSTS) list

host-add: venv
	@test -n "$(NAME)" -a -n "$(URL)" -a -n "$(CAPACITY)" || { echo "usage: make host-add NAME=h1 URL=https://... CAPACITY=30" >&2; exit 2; }
	$(HOSTS) add "$(NAME)" "$(URL)" --capacity "$(CAPACITY)"

host-set: venv
	@test -n "$(NAME)" || { echo "usage: make host-set NAME=h1 [STATE=draining] [CAPACITY=40]" >&2; exit 2; }
	$(HOSTS) set "$(NAME)" $(if $(STATE),--state "$(STATE)") $(if $(CAPACITY),--capacity "$(CAPACITY)")

clean:
	rm -rf .local .aws-sam .pytest_cache .mypy_cache .ruff_cache .venv-sam supabase/.temp
