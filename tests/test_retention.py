"""Retention holds the application table bounded: the harness's own old rows (heartbeat, load
writes, probes) go, a user's rows and recent harness rows stay, whatever their age."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from harness.recovery.retention import HARNESS_KEY_PATTERN

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parent.parent


def _insert(c, key: str, age_days: float) -> None:
    c.execute("insert into optimization_results (request_id, image_features, parameters, predicted_ssim, "
              "model_version, created_at) values (%s, '{}', '{}', 0.9, 'test', now() - make_interval(secs => %s))",
              (key, age_days * 86400))


def test_cleanup_prunes_only_old_harness_rows(healthy_stack):
    old = ["hb-1700000000000-1-1", "probe-optimize-1-2-3", "sample-x-1",
           "20261101T061638Z-database-failure-0a1b-w-17"]
    kept = ["user-request-42", "hb-recent-1", "20261101T061638Z-not-a-run-id"]
    with psycopg.connect(healthy_stack["primary"]["admin_dsn"], autocommit=True) as c:
        for k in old:
            _insert(c, k, 10)
        _insert(c, "user-request-42", 30)
        _insert(c, "20261101T061638Z-not-a-run-id", 30)
        _insert(c, "hb-recent-1", 0.5)
    r = subprocess.run([sys.executable, "-m", "harness.cli", "backup", "db", "cleanup", "--home", healthy_stack["home"],
                        "--rows-older-than-days", "1", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["rows_pruned"] >= len(old)
    with psycopg.connect(healthy_stack["primary"]["admin_dsn"]) as c:
        present = {row[0] for row in c.execute("select request_id from optimization_results where request_id = any(%s)",
                                                (old + kept,))}
    assert present == set(kept)


def test_the_pattern_matches_every_key_the_harness_writes():
    import re
    from harness.records.heartbeat_ledger import KEY_PREFIX
    from harness.run.session import new_run_id
    ours = [f"{KEY_PREFIX}1700000000000-12-3", f"{new_run_id('database-failure')}-w-5", "probe-history-1-2-3",
            "sample-a-1"]
    for key in ours:
        assert re.match(HARNESS_KEY_PATTERN, key), key
    for key in ("user-1", "HB-1", "x-hb-1", "20261101T061638Z"):
        assert not re.match(HARNESS_KEY_PATTERN, key), key
