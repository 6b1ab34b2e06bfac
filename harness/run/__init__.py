"""One run of an experiment, from plan to evidence: the plan (objectives resolved once), the run
session, the Chaos Toolkit control that measures, the judge that decides once, the runner that
drives runs and game days, the one evidence writer both runners use, stop conditions, the
production guard, active runs and healing what a dead harness left.

May import: every part below it (core, records, checkers, targets, probes, recorders, faults,
recovery, report); never harness.cli."""
