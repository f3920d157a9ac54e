# Two commands matter: `make run` (server with demo data) and `make test` (the whole suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench install system-deps browser

$(BIN)/siyu: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/siyu

install: $(BIN)/siyu

run: install
	$(BIN)/siyu serve --host 0.0.0.0 --port 8000

test: install browser
	$(BIN)/ruff check siyu tests bench
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check siyu tests bench
	$(BIN)/ruff format --check siyu tests bench

# Debian's Chromium for the console's browser tests (Playwright drives it; nothing downloads a browser),
# with CJK fonts so screenshots show Chinese.
browser:
	@(command -v chromium >/dev/null && dpkg -s fonts-noto-cjk >/dev/null 2>&1) || \
		(apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk)

# wrk for the redirect benchmark (Debian package).
system-deps:
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)

bench: install system-deps
	$(BIN)/python bench/redirect_bench.py
