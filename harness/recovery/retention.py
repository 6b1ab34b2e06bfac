"""Retention of the rows the harness itself writes into the application's table. Every game day
adds tens of thousands of load writes, and the heartbeat one row a second for as long as the
stack is up: without a bound the table (and every backup of it) grows forever. Only rows whose
key has one of the harness's own shapes are ever deleted; a user's row never matches."""
from __future__ import annotations

import psycopg

from harness.records.heartbeat_ledger import KEY_PREFIX as HEARTBEAT_PREFIX
from harness.core.pgroles import admin_dsn
from harness.recovery.runbook import RecoveryInputError, load_target

__all__ = ["HARNESS_KEY_PATTERN", "prune_harness_rows"]

# The keys the harness writes (anchored POSIX regular expression, matched by PostgreSQL):
#   hb-…                          the heartbeat (harness/recorders/heartbeat.py)
#   probe-… / sample-…            probes and the sampler's optimize requests
#   20261130T061638Z-<scenario>-<hex>-w…   a run's load writes (run id, then the writer's part)
HARNESS_KEY_PATTERN = (rf"^({HEARTBEAT_PREFIX}|probe-|sample-|[0-9]{{8}}T[0-9]{{6}}Z-[a-z0-9-]+-[0-9a-f]{{4}}-w)")


def prune_harness_rows(older_than_days: float = 7.0, target: str | None = None) -> dict:
    """Delete the harness's own rows older than `older_than_days` from the application table, on
    the primary. Returns {"rows_pruned": n, "rows_left": n}."""
    try:
        days = float(older_than_days)
    except (TypeError, ValueError):
        raise RecoveryInputError(f"rows older than must be a number of days, got {older_than_days!r}") from None
    if not days >= 0:
        raise RecoveryInputError(f"rows older than must be 0 days or more, got {older_than_days!r}")
    t = load_target(target)
    with psycopg.connect(admin_dsn(t), autocommit=True) as c:
        pruned = c.execute("delete from optimization_results where created_at < now() - make_interval(secs => %s) "
                           "and request_id ~ %s", (days * 86400, HARNESS_KEY_PATTERN)).rowcount
        # Deleted rows free their space only once vacuumed: without it the next game day's writes
        # land in new pages and the table (and every base backup of it) keeps growing.
        c.execute("vacuum (analyze) optimization_results")
        left = c.execute("select count(*) from optimization_results").fetchone()[0]
    return {"rows_pruned": pruned, "rows_left": left}
