# Two commands do everything on a fresh machine: `make gameday` and `make test`.
# Both set up first (scripts/setup.sh: Debian packages when root, .venv, the project).
GAMEDAY := .venv/bin/gameday
QUARTER = $$(date -u +%Y)Q$$(( ($$(date -u +%-m) + 2) / 3 ))

.PHONY: setup gameday test unit negative up down status bench clean

setup:
	@bash scripts/setup.sh

## The monthly game day: stack up, every BCP scenario under load, the weekly backup
## verification, reports, quarterly evidence; the stack goes down again unless it was up before.
gameday: setup
	@rc=0; was_up=0; $(GAMEDAY) target status > /dev/null 2>&1 && was_up=1; \
	$(GAMEDAY) run --keep-target || rc=$$?; \
	$(GAMEDAY) backup db verify || { [ $$rc = 0 ] && rc=1; }; \
	[ $$was_up = 1 ] || $(GAMEDAY) target down > /dev/null; \
	$(GAMEDAY) report quarterly --quarter $(QUARTER) || true; \
	exit $$rc

## Every test: unit tests and integration tests against one real embedded stack.
test: setup
	.venv/bin/python -m pytest -q

unit: setup
	.venv/bin/python -m pytest -q -m "not integration"

## The negative controls: each must come out FAIL (exit 0 when they all do).
negative: setup
	.venv/bin/python scripts/check_negative_controls.py

up: setup
	$(GAMEDAY) target up

down:
	$(GAMEDAY) target down

status:
	$(GAMEDAY) target status

bench: setup
	.venv/bin/python bench/measurement.py
	.venv/bin/python bench/stack_recovery.py
	.venv/bin/python bench/quarterly.py

clean: down
	rm -rf .gameday
	find reports -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +
