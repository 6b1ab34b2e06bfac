"""BCP 1, Database Recovery, for real: point-in-time restore undoes a bad statement exactly at the
target time; a restore after page corruption brings back every acknowledged row (RPO 0); the
weekly backup verification restores into a scratch cluster and writes its record."""
from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
import requests

from harness.targets import description as target_mod
from harness.core.pgroles import server_role
from harness.recovery import backup, database, verify
from harness.targets.embedded import postgres, supervisor
from probes.database import check_amcheck, check_standby_streaming
from harness.core.api_contract import optimize_body

pytestmark = pytest.mark.integration


def write_rows(api_url: str, prefix: str, n: int) -> set[str]:
    """n rows through the API; returns the acknowledged keys (HTTP 200) only."""
    acked = set()
    with requests.Session() as s:
        for i in range(n):
            rid = f"{prefix}-{i}"
            r = s.post(api_url + "/api/v1/optimization/optimize", json=optimize_body(rid), timeout=5)
            if r.status_code == 200:
                acked.add(rid)
    return acked


def keys_like(prefix: str) -> set[str]:
    t = target_mod.load()
    with psycopg.connect(t["app_dsn"]) as c:
        return {r[0] for r in c.execute("select request_id from optimization_results where request_id like %s",
                                        (prefix + "%",))}


def test_point_in_time_restore_undoes_a_bad_delete(healthy_stack):
    api = healthy_stack["api_url"]
    tag = f"pitr{time.time_ns()}"
    before_backup = write_rows(api, f"{tag}-a", 30)
    taken = backup.create_backup()
    after_backup = write_rows(api, f"{tag}-b", 30)
    assert len(before_backup) == len(after_backup) == 30
    with psycopg.connect(target_mod.load()["app_dsn"], autocommit=True) as c:
        time.sleep(0.05)
        target_time = c.execute("select clock_timestamp()").fetchone()[0]
        time.sleep(0.05)
        # The bad statement: deletes rows from before and after the backup.
        deleted = {r[0] for r in c.execute(
            "delete from optimization_results where request_id like %s or request_id like %s returning request_id",
            (f"{tag}-a-1%", f"{tag}-b-2%"))}
    assert len(deleted) == 22
    after_delete = write_rows(api, f"{tag}-c", 20)

    r = database.restore_database(target_time=target_time.isoformat())

    assert r["backup_id"] == taken["id"], "the newest backup that ended before the target time"
    assert r["target_reached"] and r["restore_s"] > 0
    assert r["recovered_to"] is not None and r["recovered_to"] < target_time.isoformat()
    # Ground truth: exactly the state at the target time.
    assert keys_like(tag) == before_backup | after_backup
    assert deleted <= keys_like(tag)
    assert not keys_like(f"{tag}-c") & after_delete
    ok, detail = check_standby_streaming()
    assert ok, detail
    ok, detail = check_amcheck()
    assert ok, detail
    assert r["fresh_backup"]["timeline"] == r["timeline"]


def test_restore_latest_after_page_corruption_loses_no_acknowledged_row(healthy_stack):
    api = healthy_stack["api_url"]
    tag = f"corrupt{time.time_ns()}"
    acked = write_rows(api, tag + "-x", 300)
    t = target_mod.load()
    primary = t["primary"]
    with psycopg.connect(primary["admin_dsn"], autocommit=True) as c:
        c.execute("select count(*) from optimization_results")  # set hint bits now, not after the damage
        c.execute("checkpoint")
        rel = c.execute("select pg_relation_filepath('optimization_results')").fetchone()[0]
    table_file = Path(primary["data_dir"]) / rel
    blocks = table_file.stat().st_size // 8192
    assert blocks >= 8, f"table too small to corrupt its middle ({blocks} blocks)"
    with open(table_file, "r+b") as f:
        f.seek((blocks // 2) * 8192)
        f.write(b"\x5a" * 8192 * 2)
    # Drop the server's buffers so it reads the damaged pages from disk.
    pid = supervisor.process_info(t["supervisor_url"], primary["program"])["pid"]
    os.kill(pid, signal.SIGKILL)
    supervisor.wait_pid_change(t["supervisor_url"], primary["program"], pid)
    postgres.wait_ready(primary["port"], 30)
    ok, detail = check_amcheck()
    assert not ok, "the twin: amcheck must see the corruption before the restore"
    acked |= write_rows(api, tag + "-y", 20)  # acknowledged after the damage: must survive too

    r = database.restore_database()

    assert r["restore_s"] > 0 and r["timeline"] >= 2
    assert "segment" in r["archived_before_restore"], r["archived_before_restore"]
    assert keys_like(tag) >= acked, f"lost acknowledged rows: {sorted(acked - keys_like(tag))[:5]}"
    ok, detail = check_amcheck()
    assert ok, detail
    ok, detail = check_standby_streaming()
    assert ok, detail
    assert Path(r["aside"]).exists(), "the damaged data folder is kept aside for forensics"


def test_restore_with_the_primary_dead_replays_its_unarchived_wal(healthy_stack):
    api = healthy_stack["api_url"]
    tag = f"dead{time.time_ns()}"
    acked = write_rows(api, tag, 40)
    t = target_mod.load()
    primary = t["primary"]
    # Dead and kept down (restart disabled): nothing can archive its last WAL any more.
    (Path(t["holds_dir"]) / primary["program"]).touch()
    os.kill(supervisor.process_info(t["supervisor_url"], primary["program"])["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server_role(primary["port"], passfile=t["passfile"]) != "down":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    after_everything = datetime.now(timezone.utc)

    r = database.restore_database(target_time=after_everything.isoformat())

    assert r["target_reached"] is False, "no commit after the target time: everything there is is recovered"
    assert "error" in r["archived_before_restore"]
    assert keys_like(tag) >= acked, "RPO 0 with the disk intact: unarchived WAL came from the old data folder"
    assert not (Path(t["holds_dir"]) / primary["program"]).exists()
    ok, detail = check_standby_streaming()
    assert ok, detail


def test_verify_backup_restores_into_a_scratch_cluster_and_records_it(healthy_stack, tmp_path):
    t = target_mod.load()
    pid_before = supervisor.process_info(t["supervisor_url"], t["primary"]["program"])["pid"]

    r = verify.verify_backup(records_dir=str(tmp_path))

    assert r["restore_s"] > 0 and r["integrity_ok"] and r["rows"] > 0, r
    assert r["newest_restorable_point"] and r["age_s"] is not None
    record = json.loads(Path(r["record"]).read_text())
    assert record["kind"] == "backup-verify"
    assert set(record) >= {"wall", "backup_id", "restore_s", "newest_restorable_point", "age_s", "integrity_ok",
                           "rows", "detail"}
    assert not list(Path(t["srv_dir"]).glob("verify-*")), "the scratch folder is always deleted"
    assert supervisor.process_info(t["supervisor_url"], t["primary"]["program"])["pid"] == pid_before
