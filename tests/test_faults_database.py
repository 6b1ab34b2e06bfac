"""Database faults on the real stack, each undone by its recovery: damaged pages found by amcheck
and repaired by the restore; the accidental DELETE recorded and rewound by point-in-time
recovery; the lost primary kept down until its hold is released."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from chaoslib.exceptions import ActivityFailed

from harness.core import pgroles
from harness.faults import database, pending, undo_all
from harness.recovery import pitr
from probes.database import check_amcheck

pytestmark = pytest.mark.integration

SEED_ROWS = 3000


def seed(stack, prefix: str, n: int = SEED_ROWS) -> None:
    """Rows written straight to the table: enough old pages for the corruption to choose from."""
    with psycopg.connect(stack["app_dsn"], autocommit=True) as c:
        c.execute("""insert into optimization_results
                     (request_id, image_features, target_quality, parameters, predicted_ssim, model_version)
                     select %s || g, '{"edge_density": 0.2, "unique_colors": 12}'::jsonb, 0.9,
                            '{"color_precision": 5, "corner_threshold": 40}'::jsonb, 0.8, '1.0.0'
                     from generate_series(1, %s) g on conflict do nothing""", (prefix, n))


def count(stack, prefix: str) -> int:
    with psycopg.connect(stack["app_dsn"]) as c:
        return c.execute("select count(*) from optimization_results where request_id like %s",
                         (prefix + "%",)).fetchone()[0]


def test_corrupted_pages_are_found_by_amcheck_and_repaired_by_the_restore(healthy_stack):
    prefix = f"corrupt-{time.time_ns()}-"
    seed(healthy_stack, prefix)
    record = database.corrupt_table_pages(table="optimization_results", blocks=3)
    assert len(record["damaged"]) == 3
    assert record["evidence"]["detected"], record["evidence"]
    ok, detail = check_amcheck()
    assert not ok, f"amcheck should see the damage: {detail}"
    assert pending() == []  # the hold used while writing the pages was released

    repaired = pitr.restore_if_damaged()
    assert repaired["damaged"] and repaired["restored"] and repaired["clean_after"], repaired
    assert check_amcheck()[0]
    assert count(healthy_stack, prefix) == SEED_ROWS  # nothing committed was lost


def test_amcheck_fails_without_the_unique_index_on_request_id(healthy_stack):
    """Without it duplicate keys go unseen (the final read keys rows by request_id) and amcheck
    would have no index left to check: it must fail, not pass on the heap alone."""
    assert check_amcheck()[0]
    admin = pgroles.admin_dsn(healthy_stack)
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute("alter table optimization_results drop constraint optimization_results_pkey")
    try:
        ok, detail = check_amcheck()
        assert not ok and "no valid unique index on request_id" in detail, detail
    finally:
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute("alter table optimization_results add primary key (request_id)")
    assert check_amcheck()[0]


def test_corruption_refuses_bad_arguments(healthy_stack):
    with pytest.raises(ActivityFailed, match="table must be one of"):
        database.corrupt_table_pages(table="pg_class")
    with pytest.raises(ActivityFailed, match="blocks must be"):
        database.corrupt_table_pages(blocks=0)


def test_bad_statement_is_recorded_and_rewound_by_point_in_time_recovery(healthy_stack):
    prefix = f"pitr-{time.time_ns()}-"
    seed(healthy_stack, prefix, 1000)
    with psycopg.connect(healthy_stack["app_dsn"]) as c:
        total, even = c.execute("select count(*), count(*) filter (where mod(abs(hashtext(request_id)::bigint), 2) < 1) "
                                "from optimization_results").fetchone()
    record = database.bad_statement(fraction=0.5)
    assert record["rows_before"] == total
    assert record["deleted_keys_count"] == even  # exactly the rows whose hash is even
    started = datetime.fromisoformat(record["started_at"])
    assert started.utcoffset().total_seconds() == 0 and "." in record["started_at"]  # UTC, microseconds
    latest = json.loads((Path(healthy_stack["home"]) / "incidents" / "latest.json").read_text())
    assert latest["started_at"] == record["started_at"]
    assert count(healthy_stack, prefix) < 1000

    restored = pitr.restore_before_incident()
    assert restored["deleted_keys_back"] == restored["deleted_keys"] == even
    assert count(healthy_stack, prefix) == 1000


def test_bad_statement_deletes_nothing_committed_after_its_recovery_target(healthy_stack):
    """The recovery target is stamped before the statement runs; a load write that commits in
    between must not be deleted by it, or point-in-time recovery (rightly) cannot bring that row
    back and the scenario fails falsely. The script sleeps 0.5 s before its DELETE to hold the gap
    open while a writer commits a row every 10 ms."""
    prefix = f"race-{time.time_ns()}-"
    began: dict[str, datetime] = {}
    stop = threading.Event()

    def writer():
        with psycopg.connect(healthy_stack["app_dsn"], autocommit=True) as c:
            n = 0
            while not stop.is_set():
                key = f"{prefix}{n}"
                began[key] = datetime.now(timezone.utc)  # the commit is later than this
                c.execute("""insert into optimization_results (request_id, image_features, target_quality,
                             parameters, predicted_ssim, model_version)
                             values (%s, '{}'::jsonb, 0.9, '{}'::jsonb, 0.8, '1.0.0')""", (key,))
                n += 1
                time.sleep(0.01)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        time.sleep(0.3)
        record = database.bad_statement(sql=f"select pg_sleep(0.5); delete from optimization_results "
                                            f"where request_id like '{prefix}%' returning request_id")
    finally:
        stop.set()
        thread.join(5)
    started = datetime.fromisoformat(record["started_at"])
    deleted = set(Path(record["deleted_keys_file"]).read_text().split())
    after_target = {k for k, t in began.items() if t > started}
    assert deleted, "the statement deleted none of the rows committed before the target"
    assert len(after_target) >= 20, f"the writer did not commit during the gap: {len(after_target)}"
    assert not deleted & after_target, f"{len(deleted & after_target)} rows committed after the target were deleted"
    with psycopg.connect(healthy_stack["app_dsn"], autocommit=True) as c:
        c.execute("delete from optimization_results where request_id like %s", (prefix + "%",))


def test_lost_primary_stays_down_until_released(healthy_stack):
    record = database.lose_primary()
    program = record["program"]
    assert f"hold:{program}" in pending()
    time.sleep(2.0)  # supervision would have restarted it by now, were it not held
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(healthy_stack["primary"]["admin_dsn"], connect_timeout=1).close()

    released = database.end_primary_loss()
    assert released["released"] is True, released
    assert f"hold:{program}" not in pending()
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(healthy_stack["app_dsn"], autocommit=True) as c:
                c.execute("select txid_current()")
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    undo_all()
