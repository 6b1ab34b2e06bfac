"""The local faults' arguments, without a stack: bad input fails with a sentence naming the value
before anything is touched. (Their layering is tests/test_architecture.py's.)"""
from __future__ import annotations

import json

import pytest
from chaoslib.exceptions import ActivityFailed

from harness.core import run_context
from harness.run import session
from harness.faults import api, calibration, pending, process

@pytest.fixture
def kubernetes_target(tmp_path, monkeypatch) -> str:
    path = tmp_path / "target.json"
    path.write_text(json.dumps({"kind": "kubernetes", "api_url": "http://127.0.0.1:1"}))
    monkeypatch.setenv("GAMEDAY_TARGET", str(path))
    return str(path)


@pytest.mark.parametrize("replicas", ["one", "arbiter", 0, -1, True, 1.5, None, "ALL"])
def test_crash_api_names_a_bad_replicas_value(replicas, kubernetes_target):
    with pytest.raises(ActivityFailed, match=r"replicas must be 'all', 'workers' or a whole number") as e:
        api.crash_api(replicas=replicas)
    assert repr(replicas) in str(e.value)


@pytest.mark.parametrize("replicas", ["one", 0, False, "some"])
def test_hang_api_names_a_bad_replicas_value(replicas, kubernetes_target):
    with pytest.raises(ActivityFailed, match=r"replicas must be 'all', 'arbiter', 'workers' or a whole number"):
        api.hang_api(replicas=replicas)
    assert "hang_api" not in pending()


@pytest.mark.parametrize("duration_s", [-1, 3601, "soon", [3]])
def test_hang_api_names_a_bad_duration(duration_s, kubernetes_target):
    with pytest.raises(ActivityFailed, match=r"duration_s must be"):
        api.hang_api(duration_s=duration_s)
    assert "hang_api" not in pending()


def test_local_faults_refuse_a_kubernetes_target(kubernetes_target):
    for fault in (api.crash_api, api.hang_api, process.kill_monitoring):
        with pytest.raises(ActivityFailed, match=r"needs the embedded stack .* or the container target .*; target .* is a "
                                                   r"Kubernetes deployment \(kind 'kubernetes'\)"):
            fault()
    assert api.resume_api() == {"resumed": []}  # a rollback never fails for want of a local stack


def test_calibration_finds_the_run_session_under_its_key():
    assert run_context.SESSION_KEY == session.SESSION_KEY
    with pytest.raises(ActivityFailed, match=r"no run session in the configuration"):
        calibration.delete_acknowledged_rows(configuration={})


@pytest.fixture
def plain_stack_target(tmp_path, monkeypatch) -> str:
    path = tmp_path / "target.json"
    path.write_text(json.dumps({"kind": "local", "home": str(tmp_path), "api_url": "http://127.0.0.1:1",
                                "db_tier": "plain"}))
    monkeypatch.setenv("GAMEDAY_TARGET", str(path))
    return str(path)


def test_ha_faults_refuse_a_stack_without_patroni_and_inject_nothing(plain_stack_target):
    from harness.faults import ha
    for fault in (ha.lose_the_leader_node, ha.pause_failover, ha.wait_for_a_new_leader,
                  ha.freeze_the_leader_node, ha.synchronous_replication, ha.failsafe_mode, ha.lose_consensus,
                  ha.bring_back_consensus, ha.hold_back_the_replica, ha.release_the_replica):
        with pytest.raises(ActivityFailed, match=r"database tier is not Patroni: .*--db-tier patroni"):
            fault()
    assert not [k for k in pending() if k.startswith("ha-")]


def test_keeping_the_failover_manual_touches_nothing_on_the_plain_tier(plain_stack_target):
    # The plain tier promotes only through the runbook: the failover twins' defect is already there.
    from harness.faults import database
    assert database.keep_failover_manual()["paused"] is None
    assert database.end_manual_failover()["paused"] is None
    assert not pending()


@pytest.mark.parametrize("fault, kwargs, words", [
    ("lose_consensus", {"members": 0}, "members must be a whole number from 1 to 3"),
    ("lose_consensus", {"members": True}, "members must be a whole number from 1 to 3"),
    ("lose_consensus", {"duration_s": -1}, "duration_s must be between 0 and 3600"),
    ("hold_back_the_replica", {"wal_bytes": 0}, "wal_bytes must be a whole number of at least 1"),
    ("hold_back_the_replica", {"wal_bytes": "1MB"}, "wal_bytes must be a whole number of at least 1"),
])
def test_ha_faults_refuse_bad_arguments_before_touching_the_target(plain_stack_target, fault, kwargs, words):
    from harness.faults import ha
    with pytest.raises(ActivityFailed, match=words):
        getattr(ha, fault)(**kwargs)
    assert not [k for k in pending() if k.startswith("ha-")]


def test_on_the_patroni_tier_a_database_programs_pid_is_its_postmaster(tmp_path):
    """Patroni, not supervisord, runs PostgreSQL there: kill_database and its kin find the server
    by its data folder's postmaster.pid; a stale pid file is no server."""
    import os
    from harness import targets
    live, stale = tmp_path / "pg0", tmp_path / "pg1"
    for d in (live, stale):
        d.mkdir()
    (live / "postmaster.pid").write_text(f"{os.getpid()}\n{live}\n")
    (stale / "postmaster.pid").write_text("999999999\n")
    (tmp_path / "target.json").write_text(json.dumps({
        "kind": "local", "home": str(tmp_path), "api_url": "http://127.0.0.1:1", "db_tier": "patroni",
        "supervisor_url": "unix:///nonexistent.sock",
        "primary": {"program": "postgres-primary", "data_dir": str(live)},
        "standby": {"program": "postgres-standby", "data_dir": str(stale)}}))
    t = targets.load(str(tmp_path / "target.json"))
    assert t.program_pid("postgres-primary") == os.getpid()
    with pytest.raises(ActivityFailed, match="postgres-standby is not running .no live postmaster"):
        t.program_pid("postgres-standby")
    with pytest.raises(ActivityFailed, match="cannot ask supervisord about api"):  # the others: supervisord's
        t.program_pid("api")
