# Two commands do everything on a fresh machine: `make gameday` and `make test`.
PY := .venv/bin/python

.PHONY: setup gameday test up down status bench clean

setup:
	@bash scripts/setup.sh

gameday: setup
	$(PY) -m harness.cli gameday-demo

test: setup
	$(PY) -m pytest -q

up: setup
	$(PY) -m harness.cli target up

down:
	$(PY) -m harness.cli target down

status:
	$(PY) -m harness.cli target status

bench: setup
	$(PY) bench/measurement.py

clean: down
	rm -rf .gameday reports/*/
