"""Chaos Toolkit probes: plain functions that look at the system under test and return a
well-typed value. Each `check_*` returns (ok, detail) for the control's evidence; the short
names (`api_ready`, …) return a bool for steady-state hypotheses (tolerance: true).

Probes reach the system only as a client would (HTTP, SQL, files); they read where it is from
the target description (harness.targets.description)."""
