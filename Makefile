# Two commands do everything on a fresh machine: `make gameday` and `make test`.
# Both set up first (scripts/setup.sh: Debian packages when root, .venv, the project).
GAMEDAY := .venv/bin/gameday
QUARTER = $$(date -u +%Y)Q$$(( ($$(date -u +%-m) + 2) / 3 ))

.PHONY: setup gameday test unit negative up down status bench clean

setup:
	@bash scripts/setup.sh

## The monthly game day: its plan written and signed first (what may be injected, where, until
## when, approved by whom), stack up (its database tier Patroni on an etcd quorum), every BCP
## scenario and every HA scenario (experiments/local/, experiments/ha/) under load, the weekly backup
## verification, reports, quarterly evidence, both printed to PDF and every signature checked;
## the stack goes down again unless it was up before. EXPERIMENTS= runs fewer than the suite.
EXPERIMENTS ?=
APPROVER ?= $$(id -un)@$$(hostname) (make gameday)
BLAST_RADIUS ?= the embedded reference stack of this checkout's home ($${GAMEDAY_HOME:-.gameday}) on this machine only
gameday: setup
	@rc=0; was_up=0; $(GAMEDAY) target status > /dev/null 2>&1 && was_up=1; \
	plan=reports/plans/gameday-$$(date -u +%Y%m%dT%H%M%SZ).json; \
	$(GAMEDAY) plan create $(EXPERIMENTS) --approver "$(APPROVER)" --blast-radius "$(BLAST_RADIUS)" --hours 6 \
	    --out $$plan > /dev/null || exit 2; \
	$(GAMEDAY) run $(EXPERIMENTS) --plan $$plan --keep-target || rc=$$?; \
	gd=$$(ls -d reports/gameday-*/ 2>/dev/null | tail -1); \
	$(GAMEDAY) backup db verify || { [ $$rc = 0 ] && rc=1; }; \
	[ $$was_up = 1 ] || $(GAMEDAY) target down > /dev/null; \
	$(GAMEDAY) report quarterly --quarter $(QUARTER) || true; \
	for d in reports/quarterly-$(QUARTER) $$gd; do \
	    $(GAMEDAY) report pdf $$d || { [ $$rc = 0 ] && rc=1; }; \
	    $(GAMEDAY) report verify $$d || { [ $$rc = 0 ] && rc=1; }; \
	done; \
	exit $$rc

# The negative controls of the HA scenarios run in a second home of the patroni tier, beside the
# others (scripts/check_negative_controls.py).
HA_HOME ?= .gameday-ha
CONTAINERS_HOME ?= .gameday-containers

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
	.venv/bin/python bench/failover.py

clean: down
	-$(GAMEDAY) target down --home $(HA_HOME)
	-$(GAMEDAY) target down --home $(CONTAINERS_HOME)
	rm -rf .gameday $(HA_HOME) $(CONTAINERS_HOME)
	find reports -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +
