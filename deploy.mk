# Deployment checks with the AWS SAM CLI: included by the Makefile (after PYTHON is defined).
#
#   make sam-venv       SAM CLI in its own venv (.venv-sam): its pins clash with the app's
#   make sam-validate   sam validate --lint (cfn-lint, no AWS credentials needed): must be clean;
#                       skipped while template.yaml and samconfig.toml are unchanged
#   make sam-build      sam build, no container; skipped while nothing it reads has changed
#   make layer-size     fails if the built layer, unzipped, exceeds LAYER_BUDGET_MB
#   make deploy-check   all three
#
# Deploy (needs AWS credentials): .venv-sam/bin/sam deploy --guided, once; then sam deploy.

PYTHON_VERSION ?= 3.12
PYTHON ?= $(shell ls -d $$HOME/.pyenv/versions/$(PYTHON_VERSION).*/bin/python$(PYTHON_VERSION) 2>/dev/null | tail -n 1 | grep . \
	|| command -v python$(PYTHON_VERSION) 2>/dev/null)

SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
SAM_STAMP := $(SAM_VENV)/.installed-$(shell cksum < requirements-sam.txt | cut -d' ' -f1)
SAM_LOG_DIR := .aws-sam
# sam build needs the runtime's exact interpreter first on PATH (pyenv's shims are refused);
# the layer's Makefile must not inherit this make's flags.
SAM_ENV = PATH="$(dir $(shell command -v $(PYTHON))):$$PATH" SAM_CLI_TELEMETRY=0 MAKEFLAGS= MFLAGS= MAKELEVEL=
SAM_VALIDATED := $(SAM_LOG_DIR)/validate.ok
SAM_BUILT := .aws-sam/build/template.yaml
# Everything sam build reads (folders too, so added or removed files count).
SAM_SOURCES := template.yaml samconfig.toml $(wildcard layers/gateway/*) \
	$(shell find shared functions -name __pycache__ -prune -o \( -type d -o -type f -name '*.py' \) -print 2>/dev/null)
LAYER_BUILT := .aws-sam/build/GatewayLayer
LAYER_BUDGET_MB := 60

.PHONY: sam-venv sam-validate sam-build layer-size deploy-check

$(SAM_STAMP): requirements-sam.txt
	@test -n "$(PYTHON)" || { echo "python$(PYTHON_VERSION) not found: install it (pyenv install $(PYTHON_VERSION)) or set PYTHON=" >&2; exit 1; }
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	@echo '*' > $(SAM_VENV)/.gitignore
	@$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-sam.txt \
		> $(SAM_VENV)/pip.log 2>&1 || { cat $(SAM_VENV)/pip.log >&2; exit 1; }
	@rm -f $(SAM_VENV)/.installed-*; touch $@

sam-venv: $(SAM_STAMP)

$(SAM_VALIDATED): $(SAM_STAMP) template.yaml samconfig.toml
	@mkdir -p $(SAM_LOG_DIR)
	@$(SAM_ENV) $(SAM) validate --lint > $(SAM_LOG_DIR)/validate.log 2>&1 \
		|| { cat $(SAM_LOG_DIR)/validate.log >&2; rm -f $@; exit 1; }
	@touch $@

sam-validate: $(SAM_VALIDATED)

$(SAM_BUILT): $(SAM_STAMP) $(SAM_SOURCES)
	@mkdir -p $(SAM_LOG_DIR)
	@$(SAM_ENV) $(SAM) build > $(SAM_LOG_DIR)/build.log 2>&1 \
		|| { cat $(SAM_LOG_DIR)/build.log >&2; rm -f $@; exit 1; }
	@touch $@

sam-build: $(SAM_BUILT)

layer-size: $(SAM_BUILT)
	@find $(LAYER_BUILT) -type f -printf '%s\n' | awk -v budget=$(LAYER_BUDGET_MB) \
		'{ b += $$1 } END { mb = b / 1048576; \
		printf "GatewayLayer: %.1f MB unzipped (budget %d MB)\n", mb, budget; exit (mb > budget) }' \
		|| { echo "GatewayLayer is over its $(LAYER_BUDGET_MB) MB budget: trim layers/gateway/requirements.txt" >&2; exit 1; }

deploy-check: sam-validate sam-build layer-size
