# backupsvc: the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Runtime packages (requirements.txt) for make run; development ones (requirements-dev.txt:
# tests, benchmarks, lint, the local peers) for everything else. One stamp each.
STAMP := $(VENV)/.installed-runtime
STAMP_DEV := $(VENV)/.installed-dev
PYTEST_ARGS ?= -n 2
RUN_PATH := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: help run web worker beat test lint format benchmark capacity capacity-bench loadtest soak prod-local install install-dev migrate seed clean-var

help:
	@echo "make run         - install the runtime packages, migrate, load demo data, start web + worker + beat (Ctrl-C stops all)"
	@echo "make web         - only the web server of make run (http://127.0.0.1:8000; WEB_PORT changes the port)"
	@echo "make worker      - only the Celery worker of make run"
	@echo "make beat        - only Celery beat of make run"
	@echo "make test        - install the development packages and run the whole test suite (SQLite; PostgreSQL too when TEST_DATABASE_URL is set)"
	@echo "make lint        - ruff check and format check"
	@echo "make format      - ruff format and autofix"
	@echo "make benchmark   - archive, engine, compare, restore-vs-7z and real-files benchmarks (figures in benchmarks/RESULTS.md)"
	@echo "make capacity    - how many workers 10,000 organizations need for a 6-hour night (docs/capacity.md; the queue simulation)"
	@echo "make capacity-bench - measure the costs the capacity model uses on the real stack (~30 minutes)"
	@echo "make loadtest    - gunicorn + PostgreSQL on loopback, 50 locust users for 90 s (figures appended to benchmarks/RESULTS.md)"
	@echo "make soak        - chaos soak: the real stack, 30 organizations, a fault every 60-120 s, then checks nothing was lost (SOAK_MINUTES=20)"
	@echo "make prod-local  - the production topology on loopback without Docker (PostgreSQL, Redis, S3, SMTP, gunicorn, workers)"
	@echo "make install     - create .venv/ with the runtime packages (requirements.txt)"
	@echo "make install-dev - add the development packages (requirements-dev.txt)"
	@echo "make migrate     - apply the database migrations"
	@echo "make seed        - migrate and load the demo data (prints the logins)"
	@echo "make clean-var   - delete var/ (database, files, broker, mail, generated secrets of the embedded set-up)"

$(STAMP): requirements.txt native/winzip-kdf/winzip_kdf.c native/winzip-kdf/setup.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

$(STAMP_DEV): $(STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $(STAMP_DEV)

install: $(STAMP)

install-dev: $(STAMP_DEV)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --no-input

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	@echo "Starting web (http://127.0.0.1:$${WEB_PORT:-8000}), worker and beat. Ctrl-C stops them all."
	$(RUN_PATH) $(BIN)/honcho start -f Procfile.dev

# One process of make run each (the database must be migrated: make migrate).
web worker beat: $(STAMP)
	$(RUN_PATH) $(BIN)/honcho start -f Procfile.dev $@

# Both passes run whatever the first one's result; the target fails if either did.
test: $(STAMP_DEV)
	@status=0; \
	echo "== The suite on SQLite"; \
	$(BIN)/python -m pytest $(PYTEST_ARGS) || status=1; \
	if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== The suite again on PostgreSQL ($${TEST_DATABASE_URL%%@*}@…), with the end-to-end suite"; \
		DATABASE_URL="$$TEST_DATABASE_URL" $(BIN)/python -m pytest $(PYTEST_ARGS) || status=1; \
	else \
		echo "== TEST_DATABASE_URL is not set: the PostgreSQL run (and the end-to-end suite) is skipped (.ci/run sets it)."; \
	fi; \
	exit $$status

lint: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP_DEV)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

benchmark: $(STAMP_DEV)
	$(BIN)/python benchmarks/archive_bench.py --size-mb 1024 --files 10000 --workdir /tmp/backupsvc-archive-bench
	$(BIN)/python benchmarks/engine_bench.py --gigabytes 1 --documents 10000 --rounds 3 --scale 4 8 --results
	$(BIN)/python benchmarks/compare_bench.py --gigabytes 1 --documents 10000 --scale 4 --results
	$(BIN)/python benchmarks/restore_peer_bench.py --gigabytes 1 --documents 10000 --rounds 3 --scale 4 --results
	$(BIN)/python benchmarks/realfiles_bench.py --rounds 3 --results

# The capacity model of docs/capacity.md: the queue simulation (seconds), then optionally the
# cost measurement on the real stack (PostgreSQL on 127.0.0.1:5432, redis-server, moto; ~30 minutes).
capacity: $(STAMP_DEV)
	$(BIN)/python benchmarks/capacity_sim.py --find-workers
	$(BIN)/python benchmarks/capacity_sim.py --find-workers --largest-first
	$(BIN)/python benchmarks/capacity_sim.py --workers 40 --per-1000-docs 23.6 --largest-first
	$(BIN)/python benchmarks/capacity_sim.py --find-workers --per-1000-docs 23.6 --largest-first --window-hours 10
	-$(BIN)/python benchmarks/capacity_sim.py --find-workers --kb-per-document 56 --largest-first
	$(BIN)/python benchmarks/capacity_sim.py --find-workers --kb-per-document 56 --largest-first --window-hours 10

capacity-bench: $(STAMP_DEV)
	$(BIN)/python benchmarks/capacity_bench.py --results

# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust); about four minutes.
loadtest: $(STAMP_DEV)
	$(BIN)/python benchmarks/load_bench.py --results

# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and redis-server on the PATH; stops by
# itself after SOAK_MINUTES of work and faults (plus set-up, drain and checks: a few minutes).
SOAK_MINUTES ?= 20
soak: $(STAMP_DEV)
	$(BIN)/python benchmarks/soak.py --minutes $(SOAK_MINUTES)

prod-local: $(STAMP_DEV)
	scripts/prod_local.sh

clean-var:
	rm -rf var/
