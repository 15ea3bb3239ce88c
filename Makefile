# backupsvc: the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?= -n 2

.PHONY: run test lint format install migrate seed worker beat web clean-var benchmark capacity capacity-bench loadtest prod-local help

help:
	@echo "make run    - install, migrate, load demo data, start web + worker + beat (Ctrl-C stops all)"
	@echo "make test   - install and run the whole test suite (SQLite; PostgreSQL too when TEST_DATABASE_URL is set)"
	@echo "make lint   - ruff check and format check"
	@echo "make benchmark - archive and engine benchmarks (figures in benchmarks/RESULTS.md)"
	@echo "make capacity - how many workers 10,000 organizations need for a 6-hour night (docs/capacity.md)"
	@echo "make loadtest - gunicorn + PostgreSQL on loopback, 50 locust users for 90 s (figures appended to benchmarks/RESULTS.md)"
	@echo "make prod-local - the production topology on loopback without Docker (PostgreSQL, Redis, S3, SMTP, gunicorn, workers)"

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

install: $(STAMP)

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --no-input

seed: migrate
	$(BIN)/python manage.py seed_demo

run: seed
	@echo "Starting web (http://127.0.0.1:8000), worker and beat. Ctrl-C stops them all."
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile.dev

# Both passes run whatever the first one's result; the target fails if either did.
test: $(STAMP)
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

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

benchmark: $(STAMP)
	$(BIN)/python benchmarks/archive_bench.py --size-mb 1024 --files 10000 --workdir /tmp/backupsvc-archive-bench
	$(BIN)/python benchmarks/engine_bench.py --gigabytes 1 --documents 10000 --rounds 3 --scale 4 8 --results

# The capacity model of docs/capacity.md: the queue simulation (seconds), then optionally the
# cost measurement on the real stack (PostgreSQL on 127.0.0.1:5432, redis-server, moto; ~30 minutes).
capacity: $(STAMP)
	$(BIN)/python benchmarks/capacity_sim.py --find-workers
	$(BIN)/python benchmarks/capacity_sim.py --find-workers --largest-first
	$(BIN)/python benchmarks/capacity_sim.py --workers 40 --per-1000-docs 23.6 --largest-first
	$(BIN)/python benchmarks/capacity_sim.py --find-workers --per-1000-docs 23.6 --largest-first --window-hours 10
	-$(BIN)/python benchmarks/capacity_sim.py --find-workers --kb-per-document 56 --largest-first
	$(BIN)/python benchmarks/capacity_sim.py --find-workers --kb-per-document 56 --largest-first --window-hours 10

capacity-bench: $(STAMP)
	$(BIN)/python benchmarks/capacity_bench.py --results

# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust); about four minutes.
loadtest: $(STAMP)
	$(BIN)/python benchmarks/load_bench.py --results

prod-local: $(STAMP)
	scripts/prod_local.sh

clean-var:
	rm -rf var/
