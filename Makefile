# Two commands for a fresh machine: `make run` and `make test`. Both install into .venv first if needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The compose specification's JSON Schema ships inside this PyPI wheel; the compose test validates against it.
COMPOSE_WHEEL_DIR := $(VENV)/wheels

.PHONY: install browser promtool run test test-fast lint typecheck pytest bench schemas clean

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

# Prometheus's own checker, for the tests of deploy/prometheus (configuration, alert rules and their unit tests,
# the dashboard's queries, the metrics' format). Taken out of Debian's prometheus package without installing
# the package, which would start a Prometheus server.
PROMTOOL := $(BIN)/promtool
promtool: $(PROMTOOL)
$(PROMTOOL): | $(STAMP)
	rm -rf $(VENV)/promtool-deb && mkdir -p $(VENV)/promtool-deb
	cd $(VENV)/promtool-deb && { apt-get download -q prometheus >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null && apt-get download -q prometheus >/dev/null 2>&1; }; }
	dpkg-deb --fsys-tarfile $(VENV)/promtool-deb/prometheus_*.deb | tar -xO ./usr/bin/promtool > $(PROMTOOL).part
	chmod +x $(PROMTOOL).part && mv $(PROMTOOL).part $(PROMTOOL) && rm -rf $(VENV)/promtool-deb

# The shipped policies are the 2023 campaigns: the business clock starts inside Hefei's window.
# `make run CLOCK=` runs on real time.
CLOCK ?= 2023-10-08T09:00:00+08:00

run: install
	CANBAO_CLOCK_START=$(CLOCK) $(BIN)/canbao run

test: install browser lint typecheck pytest

# The edit loop: lint, types and every test that does not start the real processes (tests/e2e: the end-to-end,
# fault, race and fuzz tests). `make test` stays the whole suite, and is what CI runs.
test-fast: install promtool lint typecheck
	$(BIN)/pytest -n 2 --dist loadgroup --ignore=tests/e2e -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy .

pytest: install browser promtool
	$(BIN)/pytest -n 2 --dist loadgroup

bench: install
	$(BIN)/python bench/flow.py

schemas: install
	$(BIN)/canbao schemas --out docs/events

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache .mypy_cache .ruff_cache
