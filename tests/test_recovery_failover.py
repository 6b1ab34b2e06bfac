"""BCP 1, Database Failover, for real: the standby takes over, writes continue on it, the old
primary is fenced and rebuilt as its streaming standby; a second failover brings the roles back."""
from __future__ import annotations

import time

import pytest
import requests

from harness import target as target_mod
from harness.recovery import failover
from probes.database import check_standby_streaming, read_keys
from probes.http import optimize_body

pytestmark = pytest.mark.integration

FIRST_WRITE_BUDGET_S = 10.0  # generous: measured ~0.2 s here; the point is that writes resume at all


def write_rows(api_url: str, prefix: str, n: int) -> set[str]:
    acked = set()
    with requests.Session() as s:
        for i in range(n):
            deadline = time.monotonic() + 10  # the API's pool reconnects after the switch
            while time.monotonic() < deadline:
                r = s.post(api_url + "/api/v1/optimization/optimize", json=optimize_body(f"{prefix}-{i}"), timeout=5)
                if r.status_code == 200:
                    acked.add(f"{prefix}-{i}")
                    break
                time.sleep(0.1)
    return acked


def one_failover(api_url: str, tag: str) -> dict:
    before = target_mod.load()
    written = write_rows(api_url, f"{tag}-before", 10)

    r = failover.failover()

    after = target_mod.load()
    assert r["first_write_s"] < FIRST_WRITE_BUDGET_S
    assert after["primary"]["program"] == before["standby"]["program"]
    assert after["standby"]["program"] == before["primary"]["program"]
    assert after["primary"]["port"] == r["first_write_port"]
    written |= write_rows(api_url, f"{tag}-after", 10)
    assert len(written) == 20, "writes continue on the new primary"
    ok, found, detail = read_keys(sorted(written))
    assert ok and set(found) == written, detail
    ok, detail = check_standby_streaming()
    assert ok, detail
    return r


def test_failover_and_back(healthy_stack):
    original = target_mod.load()["primary"]["program"]
    tag = f"fo{time.time_ns()}"
    first = one_failover(healthy_stack["api_url"], tag + "-1")
    assert first["standby_caught_up"] is True, "a live primary is stopped cleanly: nothing left behind"
    one_failover(healthy_stack["api_url"], tag + "-2")
    assert target_mod.load()["primary"]["program"] == original
