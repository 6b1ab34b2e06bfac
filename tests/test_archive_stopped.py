"""Issue 12.3 on the session stack: the RPO exposure is exported and scraped all the time, the
weekly backup verification records the exposure it sees, and the quarter reads its distribution
from Prometheus. (The archive-stopped scenario and its twin: see below.)"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness.targets.embedded.monitoring import RPO_WARNING_S
from probes.monitoring import query, rpo_exposure

pytestmark = pytest.mark.integration


def _wait_for_exposure(stack: dict, timeout_s: float = 30.0) -> dict:
    """Both ways exported and current (a stack just up may show the age of its set-up's last
    archived segment until the heartbeat's writes fill the next one)."""
    deadline = time.monotonic() + timeout_s
    while True:
        exposure = rpo_exposure(str(Path(stack["home"]) / "target.json"))
        current = {"wal_archive", "standby"} <= set(exposure) and max(exposure.values()) < 10
        if current or time.monotonic() > deadline:
            return exposure
        time.sleep(0.5)


def test_every_way_back_is_exported_and_current(healthy_stack):
    exposure = _wait_for_exposure(healthy_stack)
    assert set(exposure) == {"wal_archive", "standby"}, exposure
    assert all(0 <= v < RPO_WARNING_S for v in exposure.values()), exposure
    # Beside it, what tells a stuck archive_command from segments never switched out.
    waiting = query(healthy_stack["prometheus_url"], "svg_ai_wal_segments_awaiting_archive")
    assert len(waiting) == 1 and 0 <= float(waiting[0]["value"][1]) < 8, waiting


# The scenario itself (SvgAiRpoAtRisk fires while the exposure is still under the objective:
# rpo_warning, notification and response judged, the archive put back: after_rollbacks) runs in
# the monthly suite of `make gameday`, and its twin (the exposure unwatched: FAIL on rpo_warning)
# in `make negative`; CI runs both on every landing. A copy of either here would add 45 s each
# to `make test` and prove nothing more.


def test_backup_verification_records_the_exposure_and_the_quarter_reads_its_distribution(healthy_stack, tmp_path):
    from harness.recovery import verify
    from harness.report.exposure import quarter_exposure
    _wait_for_exposure(healthy_stack)
    record = verify.verify_backup(records_dir=str(tmp_path))
    assert set(record["rpo_exposure_s"]) == {"wal_archive", "standby"}, record.get("rpo_exposure_error")
    deadline = time.monotonic() + 60  # a stack just up has only seconds of history in Prometheus
    while True:
        now = datetime.now(timezone.utc)
        q = quarter_exposure(healthy_stack["prometheus_url"], now - timedelta(days=1), now + timedelta(days=1))
        assert q["error"] is None, q["error"]
        archive = q["ways"]["wal_archive"]
        if archive["n"] > 10 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert archive["n"] > 10 and archive["median_s"] < RPO_WARNING_S
    assert archive["time_above_objective_s"] == 0.0  # the stack never lost 300 s of archive
