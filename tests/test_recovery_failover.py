"""BCP 1, Database Failover, for real: the standby takes over, writes continue on it, the old
primary is fenced and rebuilt as its streaming standby; a second failover, from a primary that
is already dead, brings the roles back."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import requests

from harness.targets import description as target_mod
from harness.cli.main import main
from harness.core.pgroles import server_role
from harness.recovery import failover
from harness.targets.embedded import supervisor
from probes.database import check_standby_streaming, read_keys
from harness.core.api_contract import optimize_body

pytestmark = pytest.mark.integration

# Generous: measured 0.11-0.13 s here; the point is that writes resume at all. Fencing a dead
# primary sometimes still waits supervisord's 10 s stopwaitsecs (seen in 3 of 7 CI runs): an open
# finding, bounded by that 10 s, not a reason to fail the resumption this test is about.
FIRST_WRITE_BUDGET_S = 20.0


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


def kill_primary_for_good(t: dict) -> None:
    """SIGKILL the primary's postmaster with its restart disabled: the old primary is dead."""
    program = t["primary"]["program"]
    (Path(t["holds_dir"]) / program).touch()
    os.kill(supervisor.process_info(t["supervisor_url"], program)["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server_role(t["primary"]["port"], passfile=t["passfile"]) != "down":
        assert time.monotonic() < deadline, "the killed primary still answers"
        time.sleep(0.05)


def one_failover(api_url: str, tag: str, primary_dead: bool = False) -> dict:
    before = target_mod.load()
    written = write_rows(api_url, f"{tag}-before", 10)
    ok, detail = check_standby_streaming()  # replayed there: nothing acknowledged is only on the primary
    assert ok, detail
    if primary_dead:
        kill_primary_for_good(before)

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
    second = one_failover(healthy_stack["api_url"], tag + "-2", primary_dead=True)
    assert second["old_state"] == "down" and second["standby_caught_up"] is None
    assert target_mod.load()["primary"]["program"] == original
    assert not list(Path(target_mod.load()["holds_dir"]).iterdir()), "no program left held"


def test_promote_standby_then_failover_completes_it(healthy_stack, capsys):
    before = target_mod.load()

    r = failover.promote_standby()

    assert r["first_write_s"] < FIRST_WRITE_BUDGET_S and r["old_primary_fenced"]
    mid = target_mod.load()
    assert mid["primary"]["program"] == before["standby"]["program"]
    assert server_role(mid["standby"]["port"], passfile=mid["passfile"]) == "down", "the old primary stays fenced until failover()"
    assert len(write_rows(healthy_stack["api_url"], f"promo{time.time_ns()}", 5)) == 5

    done = failover.failover()

    assert done["step"] == "complete" and done["standby_streaming"]
    assert target_mod.load()["primary"]["program"] == before["standby"]["program"]
    # And back through the command line, leaving the session's stack as it was.
    assert main(["failover"]) == 0, capsys.readouterr().err
    assert "is the primary now" in capsys.readouterr().out
    assert target_mod.load()["primary"]["program"] == before["primary"]["program"]
    ok, detail = check_standby_streaming()
    assert ok, detail
