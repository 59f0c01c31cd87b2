# The two commands a newcomer needs:  make run   and   make test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
# checkov gets a virtualenv of its own: its bc-python-hcl2 installs over python-hcl2's
# `hcl2` package, and it pins packaging<24 where pytest needs >=24.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov

.DEFAULT_GOAL := run
.PHONY: run test venv chromium clean

$(CHECKOV):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==3.3.30

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --editable ".[build,test]"
	touch $(INSTALLED)

venv: $(INSTALLED)

## Bring the whole system up locally (emulators, API, model services); Ctrl-C stops it.
run: $(INSTALLED)
	$(PY) scripts/local_stack.py

## Run every test: the linter, then unit, integration on the emulators, Terraform checks, browser.
test: $(INSTALLED) $(CHECKOV) chromium
	$(VENV)/bin/ruff check
	CHECKOV=$(CURDIR)/$(CHECKOV) $(PY) -m pytest

# The browser tests use Debian's Chromium (Playwright's own download can't work offline).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .local test-artifacts
