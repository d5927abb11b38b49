# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint screenshots bench-sampler bench bench-fleet bench-login bench-scale-out bench-bulk bench-alerts clean

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## run: start the demo fleet and the console (foreground; Ctrl-C stops it)
run: $(BIN)/.installed
	$(BIN)/python demo/run.py

## test: lint, type-check and run the whole test suite
test: lint
	$(BIN)/pytest

lint: $(BIN)/.installed
	$(BIN)/ruff check cesi_like tests bench demo
	$(BIN)/mypy

## screenshots: the demo fleet's pages in chromium, light and dark, to docs/screenshots/
screenshots: $(BIN)/.installed
	$(BIN)/python demo/screenshots.py

## bench: agent vs supervisord, side by side (results: docs/benchmarks.md)
bench: $(BIN)/.installed
	$(BIN)/python bench/agent_vs_supervisord.py

## bench-fleet: the console's fleet status vs CESI-style sequential polling (bench/fleet.py)
bench-fleet: $(BIN)/.installed
	$(BIN)/python bench/fleet.py

## bench-sampler: the CPU and memory sampler at 1,000 node entries x 20 processes
bench-sampler: $(BIN)/.installed
	$(BIN)/python bench/sampler.py

## bench-login: parallel wrong logins, lockout and login timing (bench/login.py)
bench-login: $(BIN)/.installed
	$(BIN)/python bench/login.py

## bench-scale-out: node polls/s with one and two console hosts on PostgreSQL, takeover time
bench-scale-out: $(BIN)/.installed
	$(BIN)/python bench/scale_out.py

## bench-bulk: a bulk restart on 100 nodes vs one node after another (bench/bulk.py)
bench-bulk: $(BIN)/.installed
	$(BIN)/python bench/bulk.py

## bench-alerts: time from a crash to its webhook alert (bench/alerts.py)
bench-alerts: $(BIN)/.installed
	$(BIN)/python bench/alerts.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache run
