# fiscal_sim — make run (baseline simulation), make test (whole suite), make lint, make bench (benchmark), make bench-scale (Dask, long)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin

.PHONY: setup run test lint bench bench-scale validate examples clean accept-baseline serve

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/fiscal-sim validate scenarios
	$(BIN)/fiscal-sim run scenarios/baseline.yaml --workers 2

examples: setup
	$(BIN)/fiscal-sim calc jwf2017-4.innovation-salary -i tier=A -i term=long -i salary=200 -j nanhu --date 2025-03-01 --explain
	$(BIN)/fiscal-sim calc jwf2017-4.talent-housing -i tier=provincial -i option=rent -j xiuzhou --date 2025-03-01
	$(BIN)/fiscal-sim calc jzbf2024-7.tech-intermediary-reward -i contract=500 -j haining --date 2025-05-01 --explain
	$(BIN)/fiscal-sim calc jzbf2024-7.tech-intermediary-reward -i contract=500 -i contract=3000 -i contract=80 -i used_entity_year=85 -j haining --date 2025-05-01
	$(BIN)/fiscal-sim calc jwf2017-4.talent-housing -i tier=national -i option=rent --stay 4 -j nanhu --date 2025-03-01
	$(BIN)/fiscal-sim calc jzbf2024-6.nri-performance-reward --amount 100 -j nanhu --date 2025-06-30

test: setup  # the whole suite, lint and layering included (tests/test_hygiene.py, tests/test_layering.py)
	$(BIN)/pytest -q -n 2

lint: setup  # the same checks alone: ruff, the formatter, mypy, the import layers
	$(BIN)/ruff check fiscal_sim tests bench examples
	$(BIN)/ruff format --check fiscal_sim tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports

accept-baseline: setup  # after reviewing tests/locked/baseline_aggregate.actual.csv against the locked file
	$(PY) -c "import sys; sys.path.insert(0, 'tests'); import test_locked_baseline as t; t.write(t.aggregate(), t.LOCKED)"
	rm -f tests/locked/baseline_aggregate.actual.csv

bench: setup
	$(PY) bench/rules.py
	$(PY) bench/engine.py
	$(PY) bench/pipeline.py --json bench/results/pipeline.json
	$(PY) bench/startup.py
	$(PY) bench/workbench.py

serve: setup
	$(BIN)/fiscal-sim serve --workspace workbench

bench-scale: setup
	$(PY) bench/scale.py

validate: setup
	$(BIN)/fiscal-sim validate scenarios

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
