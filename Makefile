# Two commands: `make run` (install + migrate + train if needed + serve on :8080)
# and `make test` (install with dev extras + the whole suite).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python

.PHONY: run test check lint typecheck bench chat clean browser

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	$(BIN)/deskbot migrate
	$(BIN)/deskbot orders import examples/shop/orders.csv
	$(BIN)/deskbot train --if-changed
	$(BIN)/deskbot serve

chat: $(VENV)/.installed
	$(BIN)/deskbot migrate
	$(BIN)/deskbot chat

# Debian's Chromium drives the browser tests; installed when missing and we may (root).
browser:
	@{ command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi 'noto.*cjk'; } || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else echo "chromium missing and not root: browser tests will be skipped"; fi; }

test: $(VENV)/.installed-dev browser
	$(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check bot intents handlers storage tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy bot intents handlers storage

check: lint typecheck test

bench: $(VENV)/.installed-dev
	$(PY) bench/pipeline.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
