"""The BCP's weekly backup verification: a backup is only as good as a restore from it.

`verify_backup` restores a base backup + the whole WAL archive (harness.recovery.backup) into a
throwaway scratch cluster, checks integrity, measures the restore time and how fresh the newest
restorable point is, and writes a record for the quarterly report. It never touches the live
servers.
"""
from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from chaoslib.exceptions import ActivityFailed

from harness.targets import description as target_mod
from harness.core import ports
from harness.core.errors import first_line
from harness.core.pgroles import passfile_of, server_dsn, server_role
from harness.recovery.backup import choose_backup, install_backup, mtime, scan_backups
from harness.recovery.runbook import RecoveryInputError, load_target
from harness.targets.embedded import postgres
from harness.core.amcheck import amcheck
from probes.monitoring import rpo_exposure

__all__ = ["verify_backup"]

RECORDS_SUBDIR = Path("reports") / "backup-verify"


def verify_backup(backup_id: str = "latest", target: str | None = None, records_dir: str | None = None,
                  timeout_s: float = 300.0) -> dict:
    """The weekly backup verification: restore a base backup + the whole WAL archive into a scratch
    cluster (a temporary folder, the stack's `scratch_port`; the live servers are never touched),
    promote it, run amcheck (B-tree indexes with heapallindexed, heap) on the application table,
    count its rows and read the newest restorable point (the latest of: last replayed commit,
    newest row's created_at, archival time of the last replayed WAL segment). The scratch cluster
    is always stopped and deleted.

    Writes a record `{"kind": "backup-verify", "wall", "backup_id", "restore_s",
    "newest_restorable_point", "age_s", "integrity_ok", "rows", "detail", "rpo_exposure_s" (per way
    back, as Prometheus sees it then), "rpo_exposure_error"}` into `records_dir`
    (default reports/backup-verify/ in the project) and returns it with the record's path."""
    t = load_target(target)
    backups = scan_backups(t)
    chosen = choose_backup(backups, backup_id, None)
    records = Path(records_dir) if records_dir else target_mod.PROJECT_ROOT / RECORDS_SUBDIR
    try:
        records.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RecoveryInputError(f"records_dir {records} cannot be created: {e.strerror}") from None
    port = int(t["scratch_port"])
    if not ports.free(port):
        raise RecoveryInputError(f"scratch port {port} is in use (another verification running?); try again later")

    wall = datetime.now(timezone.utc)
    record = {"kind": "backup-verify", "wall": wall.isoformat(), "backup_id": chosen["id"], "restore_s": None,
              "newest_restorable_point": None, "age_s": None, "integrity_ok": False, "rows": None, "detail": ""}
    record.update(_standing_exposure(target))
    error = None
    try:
        record.update(_scratch_restore(t, chosen, port, timeout_s))
    except ActivityFailed as e:
        error = str(e)
        record["detail"] = f"restore failed: {error}"
    path = _write_record(records, record, wall)
    if error:
        raise ActivityFailed(f"backup {chosen['id']} could not be restored for verification: {error} (record {path})")
    return {**record, "record": str(path)}


# ---------------------------------------------------------------------------------------------
# Internals

def _standing_exposure(target: str | None) -> dict:
    """The RPO exposure of each way back as the monitoring sees it now: the restore shows how fresh
    the archive was at this moment, this shows the standing figure the alert watches."""
    try:
        exposure = rpo_exposure(target)
    except Exception as e:  # the verification itself does not depend on the monitoring
        return {"rpo_exposure_s": None, "rpo_exposure_error": f"Prometheus could not be asked: {first_line(e)}"}
    if not exposure:
        return {"rpo_exposure_s": None, "rpo_exposure_error": "Prometheus has no svg_ai_rpo_exposure_seconds"}
    return {"rpo_exposure_s": exposure, "rpo_exposure_error": None}


def _scratch_settings(port: int, socket_dir: Path, archive: Path) -> str:
    # Archiving OFF: a promoted scratch cluster must never write a timeline into the live archive.
    return f"""# Scratch cluster for backup verification (harness.recovery.verify.verify_backup).
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
max_connections = 100  # hot standby needs at least the primary's
shared_buffers = 32MB
archive_mode = off
hot_standby = on
logging_collector = off
restore_command = 'cp {archive}/%f %p'
recovery_target_timeline = 'latest'
"""


def _scratch_restore(t: dict, backup: dict, port: int, timeout_s: float) -> dict:
    srv = Path(t.get("srv_dir") or Path(t["backup_dir"]).parent)
    scratch = Path(tempfile.mkdtemp(prefix="verify-", dir=srv))
    proc = None
    log_file = scratch / "postgres.log"
    try:
        data = scratch / "data"
        t0 = time.monotonic()
        install_backup(Path(backup["path"]), data)
        (data / "postgresql.auto.conf").write_text("")  # no primary_conninfo or other leftovers
        (data / "gameday.conf").write_text(_scratch_settings(port, scratch, Path(t["archive_dir"])))
        (data / "pg_hba.conf").write_text(postgres.HBA)
        main = data / "postgresql.conf"
        if "include_if_exists = 'gameday.conf'" not in main.read_text():
            with open(main, "a") as f:
                f.write("\ninclude_if_exists = 'gameday.conf'\n")
        (data / "recovery.signal").touch()
        scratch.chmod(0o755)
        data.chmod(0o700)
        postgres.chown_to_server_user(scratch)
        proc = _spawn_postgres(Path(t["pg_bin"]) / "postgres", data, log_file, t.get("server_user"))
        deadline = time.monotonic() + timeout_s
        while server_role(port, passfile=passfile_of(t)) != "primary":
            if proc.poll() is not None:
                raise ActivityFailed(f"scratch server exited with code {proc.returncode}: {_last_fatal(log_file)}")
            if time.monotonic() > deadline:
                raise ActivityFailed(f"scratch server was not promoted within {timeout_s:.0f} s: {_last_fatal(log_file)}")
            time.sleep(0.1)
        restore_s = time.monotonic() - t0
        with psycopg.connect(server_dsn(port, "svgai", passfile=passfile_of(t)), autocommit=True) as c:
            ts, replay_lsn, seg_size = c.execute(
                "select pg_last_xact_replay_timestamp(), pg_last_wal_replay_lsn() - '0/0'::pg_lsn, "
                "setting::bigint from pg_settings where name = 'wal_segment_size'").fetchone()
            checked = amcheck(c)
            ok, detail, rows, newest_row = checked.ok, checked.detail, checked.rows, checked.newest
        # The last segment replayed was complete when it was archived: that state is restorable
        # even if nothing committed for a while (an idle database is not a stale archive).
        archived_at = _archived_at(Path(t["archive_dir"]), int(replay_lsn), int(seg_size)) if replay_lsn else None
        newest = max((x for x in (ts, newest_row, archived_at) if x is not None), default=None)
        now = datetime.now(timezone.utc)
        return {"restore_s": round(restore_s, 3), "newest_restorable_point": newest.isoformat() if newest else None,
                "age_s": round((now - newest).total_seconds(), 3) if newest else None, "integrity_ok": ok,
                "rows": rows, "detail": detail, "last_replayed_commit": ts.isoformat() if ts else None,
                "newest_row_created_at": newest_row.isoformat() if newest_row else None,
                "last_segment_archived_at": archived_at.isoformat() if archived_at else None}
    except psycopg.Error as e:
        raise ActivityFailed(f"scratch server on port {port}: {first_line(e)}") from None
    finally:
        if proc is not None:
            _stop_process(proc)
        shutil.rmtree(scratch, ignore_errors=True)


def _archived_at(archive: Path, lsn: int, seg_size: int) -> datetime | None:
    """When the archive received the segment holding `lsn` (of the newest timeline that has it)."""
    lsn = max(lsn - 1, 0)  # an LSN at a segment boundary ends the previous segment
    suffix = f"{lsn >> 32:08X}{(lsn & 0xFFFFFFFF) // seg_size:08X}"
    names = sorted(f.name for f in archive.glob(f"????????{suffix}") if re.fullmatch(r"[0-9A-F]{24}", f.name))
    return mtime(archive / names[-1]) if names else None


def _spawn_postgres(binary: Path, data: Path, log_file: Path, user: str | None) -> subprocess.Popen:
    kw = {}
    if os.geteuid() == 0:  # the server refuses to run as root
        pw = pwd.getpwnam(user or "postgres")
        kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    with open(log_file, "ab") as out:
        return subprocess.Popen([str(binary), "-D", str(data)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=str(data), **kw)


def _stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)  # fast shutdown
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _last_fatal(log_file: Path) -> str:
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    fatal = [ln for ln in lines if "FATAL:" in ln or "PANIC:" in ln]
    return (fatal or lines or ["no log output"])[-1].strip()


def _write_record(folder: Path, record: dict, wall: datetime) -> Path:
    stamp = wall.strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"backup-verify-{stamp}.json"
    n = 1
    while path.exists():
        path = folder / f"backup-verify-{stamp}-{n}.json"
        n += 1
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    return path
