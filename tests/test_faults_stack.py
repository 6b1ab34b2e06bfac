"""Stack-wide, API and monitoring faults on the real stack: the whole stack lost and cold-started;
the API hung and resumed, its workers crashed with respawn disabled; Prometheus killed (the
scrape gap measured) and kept down until restored."""
from __future__ import annotations

import socket
import time

import pytest
import requests

from harness.faults import api, monitoring, pending, process, stack, undo_all
from harness.records import fault_ledger
from harness.recovery import coldstart
from harness.targets.embedded import stack as embedded, supervisor
from waiting import ready, wait_for

pytestmark = pytest.mark.integration


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_whole_stack_lost_then_cold_started(healthy_stack):
    t = healthy_stack
    record = stack.lose_whole_stack()
    assert record["survivors"] == [] and record["still_listening"] == []
    assert "lose_whole_stack" in pending()
    time.sleep(2.0)  # nothing restarts by itself: supervisord is gone too
    assert not supervisor.alive(t["supervisor_url"])
    assert not listening(t["primary"]["port"]) and not listening(int(t["api_url"].rsplit(":", 1)[1]))

    started = coldstart.cold_start()
    assert started["healthy"], started
    # The runbook never reaches into the fault: the stack's own `up` closed the fault-ledger entry,
    # and the fault's undo, still pending in this process, finds the stack up and does nothing.
    assert not [e for e in fault_ledger.entries(t["home"]) if e.get("undo", {}).get("kind") == "cold_start"]
    pid = supervisor.rpc(t["supervisor_url"]).supervisor.getPID()
    assert undo_all() == ["lose_whole_stack"]
    assert supervisor.rpc(t["supervisor_url"]).supervisor.getPID() == pid  # the same supervisord: nothing restarted
    assert embedded.status(t["home"])["healthy"]


def test_hung_api_stops_answering_until_resumed(healthy_stack):
    t = healthy_stack
    record = api.hang_api(replicas="all")  # no duration: no timed resume
    assert len(record["stopped"]) >= 2 and record["stopped_s"] is None  # the arbiter and its workers
    assert "hang_api" in pending()
    with pytest.raises(requests.RequestException):
        requests.get(t["api_url"] + "/health", timeout=0.5)
    api.resume_api()
    assert "hang_api" not in pending()
    wait_for(lambda: ready(t), 15, "API ready after resume")


def test_timed_hang_resumes_by_itself(healthy_stack):
    t = healthy_stack
    record = api.hang_api(duration_s=1.0, replicas="all")
    assert 1.0 <= record["stopped_s"] < 2.0 and "hang_api" not in pending()
    wait_for(lambda: ready(t), 15, "API ready after a timed hang")


def test_crashed_workers_stay_down_while_the_arbiter_is_frozen(healthy_stack):
    t = healthy_stack
    process.disable_restart("api")
    try:
        api.hang_api(replicas="arbiter")
        crashed = api.crash_api(replicas="workers")
        assert crashed["killed"] == crashed["workers_before"] and crashed["killed"]
        time.sleep(1.0)
        with pytest.raises(requests.RequestException):
            requests.get(t["api_url"] + "/health", timeout=0.5)
    finally:
        api.resume_api()
        process.enable_restart("api")
    settled = coldstart.ensure_healthy(timeout_s=30)  # the arbiter respawns its workers: no cold start needed
    assert settled["healthy"] and settled["cold_start"] is None, settled
    assert ready(t)


def test_killed_prometheus_leaves_a_measured_scrape_gap(healthy_stack):
    process.kill_monitoring()
    gap = monitoring.scrape_gap(since_s=60, wait_s=30)
    assert gap["largest_gap_s"] >= 2 * gap["scrape_interval_s"], gap
    assert gap["missed_scrapes"] >= 1


def test_lost_monitoring_stays_down_until_restored(healthy_stack):
    t = healthy_stack
    monitoring.lose_monitoring()
    assert "stopped:prometheus" in pending()
    time.sleep(2.0)
    with pytest.raises(requests.RequestException):
        requests.get(t["prometheus_url"] + "/-/ready", timeout=0.5)
    back = monitoring.restore_monitoring()
    assert back["ready"] and "stopped:prometheus" not in pending()


def test_stopped_liveness_checker_is_started_again(healthy_stack):  # noqa: ARG001 (needs the stack)
    stopped = stack.stop_program("liveness")
    assert stopped["state_after"] == "STOPPED"
    started = stack.start_program("liveness")
    assert started["state"] == "RUNNING"
    assert "stopped:liveness" not in pending()
