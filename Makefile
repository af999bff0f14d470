# Two commands for a fresh machine: `make run` and `make test`. Both install into .venv first if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The compose specification's JSON Schema ships inside this PyPI wheel; the compose test validates against it.
COMPOSE_WHEEL_DIR := $(VENV)/wheels

.PHONY: install browser run test test-fast lint typecheck pytest bench schemas clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip download --quiet --no-deps --dest $(COMPOSE_WHEEL_DIR) docker-compose==1.29.2
	touch $(STAMP)

# Headless Chromium and a Chinese font for the dashboard's browser test, from Debian's packages (CI runs as
# root). Checked on every `make test`; installs only what is missing.
BROWSER_PACKAGES := chromium fonts-wqy-microhei
browser:
	@if ! command -v chromium >/dev/null || ! fc-list :lang=zh | grep -q .; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null && apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null; }; \
	fi

# The shipped policies are the 2023 campaigns: the business clock starts inside Hefei's window.
# `make run CLOCK=` runs on real time.
CLOCK ?= 2023-10-08T09:00:00+08:00

run: install
	CANBAO_CLOCK_START=$(CLOCK) $(BIN)/canbao run

test: install browser lint typecheck pytest

# The edit loop: lint, types and every test that does not start the real processes (tests/e2e: the end-to-end,
# fault, race and fuzz tests). `make test` stays the whole suite, and is what CI runs.
test-fast: install lint typecheck
	$(BIN)/pytest -n 2 --dist loadgroup --ignore=tests/e2e -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy .

pytest: install browser
	$(BIN)/pytest -n 2 --dist loadgroup

bench: install
	$(BIN)/python bench/flow.py

schemas: install
	$(BIN)/canbao schemas --out docs/events

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache .mypy_cache .ruff_cache
