# Two commands do everything on a fresh machine: `make gameday` and `make test`.
# Both set up first (scripts/setup.sh: Debian packages when root, .venv, the project).
GAMEDAY := .venv/bin/gameday
QUARTER = $$(date -u +%Y)Q$$(( ($$(date -u +%-m) + 2) / 3 ))

.PHONY: setup gameday gameday-ha test unit negative up down status bench clean

setup:
	@bash scripts/setup.sh

## The monthly game day: its plan written and signed first (what may be injected, where, until
## when, approved by whom), stack up, every BCP scenario under load, the weekly backup
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
	if [ -z "$(EXPERIMENTS)" ]; then $(MAKE) --no-print-directory gameday-ha || { [ $$rc = 0 ] && rc=1; }; fi; \
	$(GAMEDAY) report quarterly --quarter $(QUARTER) || true; \
	for d in reports/quarterly-$(QUARTER) $$gd; do \
	    $(GAMEDAY) report pdf $$d || { [ $$rc = 0 ] && rc=1; }; \
	    $(GAMEDAY) report verify $$d || { [ $$rc = 0 ] && rc=1; }; \
	done; \
	exit $$rc

## The HA scenarios (experiments/ha/): the database tier under Patroni on an etcd quorum, in a home
## of its own (its own plan too, signed with the main home's key when there is one, so that the
## quarterly evidence holds one signer); the stack goes down again unless it was up before.
HA_HOME ?= .gameday-ha
HA_PORT_BASE ?= 15420
HA_BLAST_RADIUS ?= the embedded stack with its Patroni database tier in $(HA_HOME) on this machine only
gameday-ha: setup
	@rc=0; was_up=0; $(GAMEDAY) target status --home $(HA_HOME) > /dev/null 2>&1 && was_up=1; \
	main=$(CURDIR)/$${GAMEDAY_HOME:-.gameday}; \
	if [ -z "$$GAMEDAY_SIGNING_KEY" ] && [ -f $$main/secrets/evidence-signing-key ] && [ -f $$main/allowed_signers ]; then \
	    export GAMEDAY_SIGNING_KEY=$$main/secrets/evidence-signing-key GAMEDAY_ALLOWED_SIGNERS=$$main/allowed_signers; fi; \
	plan=reports/plans/gameday-ha-$$(date -u +%Y%m%dT%H%M%SZ).json; \
	$(GAMEDAY) plan create experiments/ha/*.yaml --home $(HA_HOME) --approver "$(APPROVER)" \
	    --blast-radius "$(HA_BLAST_RADIUS)" --hours 2 --out $$plan > /dev/null || exit 2; \
	$(GAMEDAY) target up --db-tier patroni --home $(HA_HOME) --port-base $(HA_PORT_BASE) > /dev/null || exit 2; \
	$(GAMEDAY) run experiments/ha/*.yaml --home $(HA_HOME) --plan $$plan --keep-target || rc=$$?; \
	[ $$was_up = 1 ] || $(GAMEDAY) target down --home $(HA_HOME) > /dev/null; \
	$(GAMEDAY) report verify $$(ls -d reports/gameday-*/ | tail -1) --home $(HA_HOME) || { [ $$rc = 0 ] && rc=1; }; \
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
	.venv/bin/python bench/failover.py

clean: down
	-$(GAMEDAY) target down --home $(HA_HOME)
	rm -rf .gameday $(HA_HOME)
	find reports -mindepth 1 -maxdepth 1 ! -name .gitkeep -exec rm -rf {} +
