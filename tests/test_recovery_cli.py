"""The recovery command line and the BCP's scripts: bad input is one line and exit 2 with nothing
touched; the weekly verification prints its restore time and newest restorable point."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.targets import description as target_mod
from harness.cli.main import main
from harness.recovery import backup, database, failover
from harness.recovery.runbook import RecoveryInputError
from harness.targets.embedded import supervisor

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts" / "backup"


def gameday(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def untouched_state():
    t = target_mod.load()
    pid = supervisor.process_info(t["supervisor_url"], t["primary"]["program"])["pid"]
    return pid, [b["id"] for b in backup.list_backups()]


@pytest.mark.integration
@pytest.mark.parametrize("argv, says", [
    (["backup", "db", "restore", "--backup-id", "base-19990101T000000Z"], "unknown backup id"),
    (["backup", "db", "restore", "--target-time", "yesterday"], "not an ISO-8601 time"),
    (["backup", "db", "restore", "--target-time", "2001-01-01T00:00:00Z"], "before the oldest usable backup"),
    (["backup", "db", "restore", "--target-time", "2999-01-01T00:00:00+00:00"], "in the future"),
    (["backup", "artifacts", "restore-model", "--backup-id", "model_backup_nope"], "unknown backup id"),
])
def test_bad_input_is_one_line_exit_2_nothing_touched(healthy_stack, capsys, argv, says):
    before = untouched_state()
    code, out, err = gameday(capsys, *argv)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and says in err, err
    assert untouched_state() == before


@pytest.mark.integration
def test_verify_prints_restore_time_and_newest_point(healthy_stack, capsys, tmp_path):
    code, out, err = gameday(capsys, "backup", "db", "verify", "--records-dir", str(tmp_path))
    assert code == 0, err
    assert "restore time" in out and "newest restorable point" in out
    assert len(list(tmp_path.glob("backup-verify-*.json"))) == 1


def test_no_stack_is_exit_2(capsys, tmp_path):
    code, out, err = gameday(capsys, "backup", "db", "list", "--home", str(tmp_path))
    assert code == 2 and err.startswith("error: no target description")


def test_bad_time_is_refused_before_anything():
    for bad in ("yesterday", "2026-13-01T00:00:00Z", "2026-05-01T10:00:00"):
        with pytest.raises(RecoveryInputError):
            database._parse_target_time(bad)
    assert database._parse_target_time("2020-05-01T10:00:00+02:00").isoformat() == "2020-05-01T08:00:00+00:00"


@pytest.mark.parametrize("script, argv", [
    ("database_backup.py", ["frobnicate"]),
    ("model_config_backup.py", ["restore-model", "--bogus"]),
    ("disaster_recovery_testing.py", ["test", "--test-type", "everything"]),
])
def test_scripts_refuse_unknown_arguments(script, argv, tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPTS / script), *argv], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr


def test_dr_testing_maps_test_types_to_experiments(tmp_path):
    sys.path.insert(0, str(SCRIPTS))
    try:
        import disaster_recovery_testing as drt
    finally:
        sys.path.remove(str(SCRIPTS))
    for name in ("database-failure.yaml", "database-restore.yaml", "api-crash.yaml", "config-drift.yaml"):
        (tmp_path / name).write_text("")
    found, missing = drt.experiments_for("database", tmp_path)
    assert [f.name for f in found] == ["database-failure.yaml", "database-restore.yaml"] and not missing
    found, missing = drt.experiments_for("application", tmp_path)
    assert [f.name for f in found] == ["api-crash.yaml", "config-drift.yaml"] and missing == ["model-corruption.yaml"]
    found, missing = drt.experiments_for("infrastructure", tmp_path)
    assert not found and missing == ["storage-failure.yaml", "full-stack.yaml"]


@pytest.mark.parametrize("argv, says", [
    (["failover", "--no-rebuild"], "the patroni tier promotes by itself and its old leader always follows the new one"),
])
def test_the_runbooks_promotion_is_refused_on_the_patroni_tier(capsys, tmp_path, argv, says):
    """Patroni holds the leader key: a promotion behind its back is a split brain. Refused with
    one line and exit 2 before anything is touched (no lock taken, no server asked)."""
    (tmp_path / "target.json").write_text(json.dumps({"kind": "local", "home": str(tmp_path), "port_base": 17990,
                                                      "db_tier": "patroni", "api_url": "http://127.0.0.1:1"}))
    code, out, err = gameday(capsys, *argv, "--home", str(tmp_path))
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(RecoveryInputError, match="the patroni tier promotes by itself"):
        failover.promote_standby(target=str(tmp_path / "target.json"))
    assert not (tmp_path / ".recovery.lock").exists()
