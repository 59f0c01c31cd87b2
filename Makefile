# The two commands a newcomer needs:  make run   and   make test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test venv chromium clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[build,test]"
	touch $(INSTALLED)

venv: $(INSTALLED)

## Bring the whole system up locally (emulators, API, model services); Ctrl-C stops it.
run: $(INSTALLED)
	$(PY) scripts/local_stack.py

## Run every test: unit, integration on the emulators, Terraform checks, browser.
test: $(INSTALLED) chromium
	$(PY) -m pytest

# The browser tests use Debian's Chromium (Playwright's own download can't work offline).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

clean:
	rm -rf $(VENV) .local test-artifacts
