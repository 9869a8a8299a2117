# Two commands do everything on a fresh machine:
#   make run   install, migrate, create demo data, start web + workers + cron (embedded Redis, SQLite)
#   make test  install what the tests need and run the suite
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
# Render workers `make run` starts; each render uses RENDER_PROCESSES encoder processes (default 2).
# One worker per core did best per core here (make bench-throughput; README, "Benchmarks").
RENDER_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
INSTANCE ?= instance
# System packages: FriBiDi for Pillow's text shaping, Chromium's headless shell for the browser tests.
APT_RUNTIME := libfribidi0
APT_TEST := chromium-headless-shell

.PHONY: install install-dev system-deps system-deps-test run test lint format bench bench-quick bench-motion \
  bench-streams bench-status bench-throughput bench-scaleout bench-bigdata bench-memory bench-storage clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@ $(VENV)/.runtime-installed

# Installs missing Debian packages when run as root; otherwise says what to install.
system-deps:
	@APT="$(APT_RUNTIME)" bash .ci/apt-ensure

system-deps-test:
	@APT="$(APT_RUNTIME) $(APT_TEST)" bash .ci/apt-ensure

RAQM_CHECK := from PIL import features; import sys; features.check("raqm") or sys.exit( \
  "Pillow cannot shape Thai or Arabic text: its raqm layout needs FriBiDi (apt-get install libfribidi0)")

install: system-deps $(VENV)/.runtime-installed
	@$(BIN)/python -c '$(RAQM_CHECK)'

install-dev: system-deps-test $(VENV)/.dev-installed
	@$(BIN)/python -c '$(RAQM_CHECK)'

run: install
	@mkdir -p $(INSTANCE)
	@$(FLASK) db upgrade
	@[ -n "$$REDIS_URL" ] || $(FLASK) redis start >/dev/null
	@$(FLASK) demo --url http://$(HOST):$(PORT) --first-video | head -n -1
	@trap '$(FLASK) redis stop >/dev/null 2>&1 || true' EXIT; \
	  HOST=$(HOST) PORT=$(PORT) PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start -f Procfile \
	    -c worker=$(RENDER_WORKERS)

test: install-dev
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# MoviePy declares pillow<12 but runs on Pillow 13; --no-deps keeps the app's Pillow.
$(VENV)/.bench-installed: bench/requirements.txt $(VENV)/.dev-installed
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -r bench/requirements.txt
	@touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python bench/render_bench.py $(BENCH_ARGS)

bench-quick:
	$(MAKE) bench BENCH_ARGS="--quick $(BENCH_ARGS)"

# 60 s lesson with motion, clips, transitions, burned-in captions and music vs one ffmpeg command.
bench-motion:
	$(MAKE) bench BENCH_ARGS="--motion $(BENCH_ARGS)"

# Status polling with and without 500 open event streams (uses wrk when installed).
bench-streams: install-dev
	$(BIN)/python bench/stream_bench.py $(BENCH_ARGS)

# Status polling (JSON, fragment, 304) against a bare Flask endpoint, SQLite and PostgreSQL (wrk).
bench-status: install-dev
	$(BIN)/python bench/status_bench.py $(BENCH_ARGS)

# 8 lessons of 60 s 1080p30 by 1, 2 and 4 workers, RENDER_PROCESSES 1 and 2: lessons per minute.
bench-throughput: install-dev
	$(BIN)/python bench/throughput_bench.py $(BENCH_ARGS)

# Two simulated machines render a 20-lesson Generate all on PostgreSQL + the Redis server
# (127.0.0.1:6379 db 9); one is SIGKILLed half way (BENCH_PG_ADMIN / BENCH_REDIS_URL to change).
bench-scaleout: install-dev
	$(BIN)/python bench/scaleout_bench.py $(BENCH_ARGS)

# 100,000 jobs, 300,000 lessons, 1,000,000 renders on SQLite and PostgreSQL: the jobs list and a
# job's status, median / p99 and SQL statements per request (BENCH_ARGS="--scale 0.01" to try it).
bench-bigdata: install-dev
	$(BIN)/python bench/bigdata_bench.py $(BENCH_ARGS)

# RSS of the gunicorn workers over 120,000 status polls and of a render worker over 20 renders.
bench-memory: install-dev
	$(BIN)/python bench/memory_bench.py $(BENCH_ARGS)

# A 5-minute lesson rendered with its media on the local disk and in an S3 store (SeaweedFS),
# and downloads streamed by the app against presigned URLs (BENCH_ARGS="--quick" to try it).
bench-storage: install-dev
	$(BIN)/python bench/storage_bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
