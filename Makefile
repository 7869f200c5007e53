# Every target sets itself up: a fresh machine with Python 3.11 needs nothing else.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export VA_HOME ?= $(CURDIR)/.va

.PHONY: venv demo test test-fast browser bench screenshots ui dagster serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip wheel

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Debian's chromium for the browser tests (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

demo: venv
	$(BIN)/va demo

test: venv browser
	$(BIN)/python -m pytest tests

test-fast: venv
	$(BIN)/python -m pytest tests -m "not browser and not server"

bench: venv
	$(BIN)/python -m benchmarks

# Refresh the README's screenshots of the labelling app from the browser tests.
screenshots: venv browser
	VA_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/ui -m browser

ui: venv
	$(BIN)/va ui

dagster: venv
	$(BIN)/va dagster

serve: venv
	$(BIN)/va serve

clean:
	rm -rf $(VENV) .va
