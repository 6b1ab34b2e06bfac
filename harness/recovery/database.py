"""Database backup and restore: the BCP's `database_backup.py restore --backup-id latest`.

Backups are plain PostgreSQL base backups (`pg_basebackup -X stream -c fast`, one folder
`base-<UTC stamp>` each) plus the continuous WAL archive. Together they allow
**point-in-time recovery**: any moment from the end of the oldest backup up to the newest archived
commit can be restored.

- `restore_database` restores INTO the current primary: latest state by default (RPO 0 when the
  primary still answers: its WAL is switched and archived first), or `target_time` to undo a bad
  statement. It rebuilds the standby from the restored primary and takes a fresh base backup.
- `verify_backup` is the BCP's weekly backup verification: restore into a throwaway scratch
  cluster, replay the whole archive, check integrity, measure restore time and how fresh the newest
  restorable point is, and write a record for the quarterly report. It never touches the live
  servers.

Every function works on the embedded stack's target description (`target`: path of target.json
or a stack home; default $GAMEDAY_TARGET). Bad input raises `RecoveryInputError` (an
`ActivityFailed`) BEFORE anything is touched; a failure midway raises `ActivityFailed` saying
what state was left.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from chaoslib.exceptions import ActivityFailed

from harness import target as target_mod
from probes.database import amcheck

if TYPE_CHECKING:
    from harness.stack.layout import Layout

__all__ = ["create_backup", "list_backups", "restore_database", "verify_backup", "cleanup_backups",
           "switch_wal", "archive_status", "newest_restorable_point", "RecoveryInputError"]

APP_TABLE = "optimization_results"
ARCHIVE_WAIT_S = 30.0
RECORDS_SUBDIR = Path("reports") / "backup-verify"


class RecoveryInputError(ActivityFailed):
    """Bad input (unknown backup id, impossible target time, no stack): nothing was touched."""


def create_backup(target: str | None = None) -> dict:
    """Take a base backup of the current primary now (`pg_basebackup -X stream -c fast`).

    Returns the backup as `list_backups` describes it (id, path, size_bytes, start/end LSN and WAL
    file, timeline, started/ended) plus `took_s`. Together with the WAL archive it is a starting
    point for point-in-time recovery."""
    t, layout = load_local(target)
    from harness.stack import postgres
    roles = _roles(t, layout)
    if roles["primary_state"] != "primary":
        raise ActivityFailed(f"no primary answers (postgres on port {layout.port(roles['primary'])} is "
                             f"{roles['primary_state']}); a base backup needs a running primary")
    label = _free_label(Path(t["backup_dir"]))
    t0 = time.monotonic()
    try:
        postgres.take_base_backup(layout, label, port=layout.port(roles["primary"]))
    except postgres.PostgresError as e:
        raise ActivityFailed(f"base backup {label} failed: {e}") from None
    took_s = time.monotonic() - t0
    info = _backup_info(Path(t["backup_dir"]) / label, _history(Path(t["archive_dir"])))
    return {**info, "took_s": round(took_s, 3), "from_port": layout.port(roles["primary"])}


def list_backups(target: str | None = None) -> list[dict]:
    """Every complete base backup, oldest first: id, path, started, ended (ISO, UTC), timeline,
    start_lsn/end_lsn, start_wal, size_bytes, age_s and `on_current_history` (False for a backup
    of a timeline that a later point-in-time restore abandoned: it cannot be restored any more)."""
    t = _load(target)
    return _scan_backups(t)


def restore_database(backup_id: str = "latest", target_time: str | None = None,
                     target: str | None = None, timeout_s: float = 300.0) -> dict:
    """Point-in-time recovery of the current primary from a base backup + the WAL archive.

    `backup_id`: 'latest' (default: the newest backup, or with `target_time` the newest one that
    ended before it) or a backup id from `list_backups`. `target_time`: ISO-8601 with timezone
    (e.g. '2026-05-01T10:15:00Z'); without it the database is restored to the newest archived
    state. When the primary still answers its current WAL is archived first, so a restore after
    page corruption loses no acknowledged write.

    Steps: archive the primary's WAL; hold and stop both PostgreSQL programs; move the primary's
    data folder aside (the newest one is kept for forensics); copy the base backup in; recover
    (restore_command from the archive, latest timeline, optional target time) and promote; rebuild
    the standby from it; take a fresh base backup of the new timeline. If the recovery itself
    fails, the previous data folder is put back and both servers are started again.

    Returns what happened: backup used, restore_s (primary down → writable again), replay end LSN,
    recovered_to (time of the last replayed commit), timeline, standby and fresh backup timings."""
    t, layout = load_local(target)
    when = _parse_target_time(target_time) if target_time not in (None, "") else None
    backups = _scan_backups(t)
    chosen = _choose_backup(backups, backup_id, when)
    with exclusive(t, "restore_database"):
        return _restore(t, layout, chosen, when, target, float(timeout_s))


def _restore(t: dict, layout, chosen: dict, when: datetime | None, target: str | None, timeout_s: float) -> dict:
    roles = _roles(t, layout)
    prog, other = roles["primary"], roles["standby"]
    port, other_port = layout.port(prog), layout.port(other)
    data, other_data = data_dir_of(layout, prog), data_dir_of(layout, other)
    sup = t["supervisor_url"]
    from harness.stack import postgres, supervisor

    result: dict = {"backup_id": chosen["id"], "backup_ended": chosen["ended"], "target_time":
                    when.isoformat() if when else None, "primary": prog, "port": port}
    t_start = time.monotonic()

    # 1. Make the archive complete while the primary can still help: a commit stamped now (a
    #    target time needs a commit after it to stop at) and a WAL switch, archived.
    if roles["primary_state"] == "primary":
        try:
            switched = _switch_and_wait(port, Path(t["archive_dir"]), ARCHIVE_WAIT_S)
            result["archived_before_restore"] = switched
        except ActivityFailed as e:
            result["archived_before_restore"] = {"error": str(e)}
    else:
        result["archived_before_restore"] = {"error": f"primary on port {port} is {roles['primary_state']}"}

    # 2. Fence both servers: the standby would follow a timeline that is being discarded.
    t_down = time.monotonic()
    log_path = Path(t["logs_dir"]) / f"{prog}.log"
    aside = None
    steps: dict = {}
    try:
        for name in (prog, other):
            hold(layout, name)
        for name in (prog, other):
            supervisor.stop(sup, name)
        steps["stop_s"] = round(time.monotonic() - t_down, 3)
        aside = _move_aside(data)
        # 3. Base backup into place, recovery settings, start, wait for promotion.
        _install_backup(Path(chosen["path"]), data)
        copied = _copy_unarchived_wal(aside / "pg_wal", data / "pg_wal", Path(t["archive_dir"])) if aside else []
        result["unarchived_wal_copied"] = copied
        postgres.configure(layout, data, port)
        _append_recovery_settings(data, Path(t["archive_dir"]), when)
        (data / "recovery.signal").touch()
        postgres.chown_to_server_user(data)
        data.chmod(0o700)
        steps["install_s"] = round(time.monotonic() - t_down - steps["stop_s"], 3)
        recovery = _recover(t, layout, prog, data, log_path, timeout_s)
    except Exception as e:
        reason = str(e) if isinstance(e, ActivityFailed) else f"{type(e).__name__}: {e}"
        _put_back(t, layout, prog, other, data, aside)
        raise ActivityFailed(f"restore of {chosen['id']} failed: {reason}; the previous data folder "
                             f"was put back and both servers started again") from None
    result["restore_s"] = round(time.monotonic() - t_down, 3)
    steps["recover_s"] = round(result["restore_s"] - steps["stop_s"] - steps["install_s"], 3)
    result["steps"] = steps
    result.update(recovery)
    # The settings stay in the running server's memory; the files must not carry them on (a
    # standby cloned from here would otherwise stop at the target time and promote itself).
    postgres.configure(layout, data, port)

    # 4. A standby from the restored primary; a base backup on the new timeline.
    t_sb = time.monotonic()
    try:
        postgres.clone_standby(layout, port, other_data, other_port)
        release(layout, other)
        supervisor.start(sup, other)
        wait_streaming(other_port, 60)
        result["standby_rebuilt"] = True
    except Exception as e:
        result["standby_rebuilt"] = False
        result["standby_error"] = f"{type(e).__name__}: {e}"
    result["standby_s"] = round(time.monotonic() - t_sb, 3)
    try:
        fresh = create_backup(target)
        result["fresh_backup"] = {"id": fresh["id"], "took_s": fresh["took_s"], "timeline": fresh["timeline"]}
    except ActivityFailed as e:
        result["fresh_backup"] = {"error": str(e)}
    result["aside"] = str(aside) if aside else None
    result["total_s"] = round(time.monotonic() - t_start, 3)
    if not result["standby_rebuilt"]:
        raise ActivityFailed(f"primary restored from {chosen['id']} in {result['restore_s']} s, but the standby "
                             f"could not be rebuilt: {result['standby_error']}")
    return result


def verify_backup(backup_id: str = "latest", target: str | None = None, records_dir: str | None = None,
                  timeout_s: float = 300.0) -> dict:
    """The weekly backup verification: restore a base backup + the whole WAL archive into a scratch
    cluster (a temporary folder, the stack's `scratch_port`; the live servers are never touched),
    promote it, run amcheck (B-tree indexes with heapallindexed, heap) on the application table,
    count its rows and read the newest restorable point (the latest of: last replayed commit,
    newest row's created_at, archival time of the last replayed WAL segment). The scratch cluster
    is always stopped and deleted.

    Writes a record `{"kind": "backup-verify", "wall", "backup_id", "restore_s",
    "newest_restorable_point", "age_s", "integrity_ok", "rows", "detail"}` into `records_dir`
    (default reports/backup-verify/ in the project) and returns it with the record's path."""
    t = _load(target)
    backups = _scan_backups(t)
    chosen = _choose_backup(backups, backup_id, None)
    records = Path(records_dir) if records_dir else target_mod.PROJECT_ROOT / RECORDS_SUBDIR
    try:
        records.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RecoveryInputError(f"records_dir {records} cannot be created: {e.strerror}") from None
    port = int(t["scratch_port"])
    if not _port_free(port):
        raise RecoveryInputError(f"scratch port {port} is in use (another verification running?); try again later")

    wall = datetime.now(timezone.utc)
    record = {"kind": "backup-verify", "wall": wall.isoformat(), "backup_id": chosen["id"], "restore_s": None,
              "newest_restorable_point": None, "age_s": None, "integrity_ok": False, "rows": None, "detail": ""}
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


def cleanup_backups(keep: int = 3, target: str | None = None) -> dict:
    """Delete all but the `keep` newest base backups, and archived WAL older than the oldest kept
    backup's start (it can no longer be replayed from anything). Timeline history files are kept."""
    try:
        keep = int(keep)
    except (TypeError, ValueError):
        raise RecoveryInputError(f"keep must be a whole number, got {keep!r}") from None
    if keep < 1:
        raise RecoveryInputError(f"keep must be at least 1 (the newest backup is never deleted), got {keep}")
    t = _load(target)
    with exclusive(t, "cleanup_backups"):  # never delete the backup a restore is copying
        backups = _scan_backups(t)
        kept, doomed = backups[-keep:], backups[:-keep]
        for b in doomed:
            shutil.rmtree(b["path"])
        pruned = 0
        if kept and doomed:
            cutoff = min(b["start_wal"][8:] for b in kept)
            for f in Path(t["archive_dir"]).iterdir():
                m = re.fullmatch(r"([0-9A-F]{8})([0-9A-F]{16})(\.partial|\.[0-9A-F]{8}\.backup)?", f.name)
                if m and m.group(2) < cutoff:
                    f.unlink(missing_ok=True)
                    pruned += 1
    return {"kept": [b["id"] for b in kept], "deleted": [b["id"] for b in doomed], "archive_files_pruned": pruned}


def switch_wal(target: str | None = None, timeout_s: float = ARCHIVE_WAIT_S) -> dict:
    """Close the primary's current WAL segment (`pg_switch_wal()`) and wait until it is archived:
    everything committed so far becomes restorable. Returns the segment and how long it took."""
    t, layout = load_local(target)
    roles = _roles(t, layout)
    if roles["primary_state"] != "primary":
        raise ActivityFailed(f"no primary answers (port {layout.port(roles['primary'])} is {roles['primary_state']})")
    return _switch_and_wait(layout.port(roles["primary"]), Path(t["archive_dir"]), float(timeout_s))


def archive_status(target: str | None = None) -> dict:
    """WAL archive health (read-only): the primary's archiver statistics, segments waiting to be
    archived, and the newest restorable point. `healthy` is False when the last archive attempt
    failed or segments are piling up."""
    t = _load(target)
    out: dict = {"archive_dir": t["archive_dir"], "healthy": False}
    try:
        with _connect(_admin_dsn(t, "postgres")) as c:
            row = c.execute("select archived_count, last_archived_wal, last_archived_time, failed_count, "
                            "last_failed_wal, last_failed_time from pg_stat_archiver").fetchone()
            ready = c.execute("select count(*) from pg_ls_archive_statusdir() where name like '%.ready'").fetchone()[0]
            out["port"] = c.info.port
    except psycopg.Error as e:
        out["error"] = f"no primary answers: {_first_line(e)}"
    else:
        archived, last_wal, last_time, failed, last_failed_wal, last_failed_time = row
        failing = last_failed_time is not None and (last_time is None or last_failed_time > last_time)
        out.update({"archived_count": archived, "last_archived_wal": last_wal,
                    "last_archived_time": last_time.isoformat() if last_time else None,
                    "failed_count": failed, "last_failed_wal": last_failed_wal,
                    "last_failed_time": last_failed_time.isoformat() if last_failed_time else None,
                    "segments_waiting": ready, "healthy": not failing and ready <= 3})
    out["newest_restorable_point"] = newest_restorable_point(target)
    return out


def newest_restorable_point(target: str | None = None) -> dict:
    """How far a restore from backups can reach now: the newest archived WAL segment (on the
    timeline history a restore follows) was complete when it was archived, so the database state
    of that moment is restorable; the newest commit in the archive (read with pg_waldump) is given
    too. Returns {time, age_s, archived_at, last_commit, segment} (times ISO, UTC)."""
    t = _load(target)
    archive = Path(t["archive_dir"])
    segments = _segments_on_history(archive)
    if not segments:
        return {"time": None, "age_s": None, "archived_at": None, "last_commit": None, "segment": None}
    newest = segments[-1][2]
    archived_at = _mtime(archive / newest)
    last_commit = None
    for _segno, _tli, name in reversed(segments[-8:]):
        last_commit = _last_commit_in(Path(t["pg_bin"]) / "pg_waldump", archive, name)
        if last_commit:
            break
    point = max(x for x in (archived_at, last_commit) if x is not None)
    return {"time": point.isoformat(), "age_s": round((datetime.now(timezone.utc) - point).total_seconds(), 3),
            "archived_at": archived_at.isoformat(), "last_commit": last_commit.isoformat() if last_commit else None,
            "segment": newest}


def _segments_on_history(archive: Path) -> list[tuple[int, int, str]]:
    """Archived WAL segments a restore would replay (not an abandoned timeline's tail), sorted."""
    history = _history(archive)
    segments = []
    for f in archive.iterdir():
        if re.fullmatch(r"[0-9A-F]{24}", f.name):
            tli, log, seg = int(f.name[:8], 16), int(f.name[8:16], 16), int(f.name[16:], 16)
            start_lsn = (log << 32) + seg * _seg_size(f)
            if tli == history["latest"] or (tli in history["parents"] and start_lsn < history["parents"][tli]):
                segments.append(((log, seg), tli, f.name))
    return sorted(segments)


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)


def _seg_size(f: Path) -> int:
    try:
        return f.stat().st_size or 1
    except OSError:
        return 1


# ---------------------------------------------------------------------------------------------
# Shared with harness.recovery.failover (not for experiments)

def load_local(target: str | None) -> tuple[dict, Layout]:
    """The target description and the embedded stack's layout; bad input if it is not one."""
    t = _load(target)
    if t.get("kind") != "local":
        raise RecoveryInputError(f"database recovery automates the embedded stack (kind 'local'); this target is "
                                 f"kind {t.get('kind')!r}")
    from harness.stack.layout import Layout
    return t, Layout(Path(t["home"]), int(t["port_base"]))


@contextlib.contextmanager
def exclusive(t: dict, what: str):
    """One restore/failover at a time per stack: they stop and start the same servers."""
    path = Path(t.get("home") or Path(t["backup_dir"]).parent) / ".recovery.lock"
    f = open(path, "a+")
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise ActivityFailed(f"another recovery operation is running on this stack ({f.read().strip() or 'unknown'}); "
                                 f"{what} did nothing") from None
        f.seek(0)
        f.truncate()
        f.write(f"{what}, pid {os.getpid()}\n")
        f.flush()
        yield
    finally:
        f.close()


def server_state(port: int) -> str:
    """'primary', 'standby' (in recovery) or 'down' (does not answer)."""
    try:
        with _connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=1") as c:
            return "standby" if c.execute("select pg_is_in_recovery()").fetchone()[0] else "primary"
    except psycopg.Error:
        return "down"


def hold_path(layout, program: str) -> Path:
    return layout.holds_dir / program


def hold(layout, program: str) -> None:
    """Keep `program` from being (re)started: its launcher waits while the hold file exists."""
    hold_path(layout, program).touch()


def release(layout, program: str) -> None:
    """Let `program` start again (supervisor.start still needed if it was stopped)."""
    hold_path(layout, program).unlink(missing_ok=True)


def data_dir_of(layout, program: str) -> Path:
    return layout.primary_dir if program == "postgres-primary" else layout.standby_dir


def wait_streaming(port: int, timeout_s: float) -> float:
    from harness.stack import postgres
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            if postgres.wal_receiver_streaming(port):
                return time.monotonic() - t0
            last = "WAL receiver not streaming"
        except psycopg.Error as e:
            last = _first_line(e)
        time.sleep(0.1)
    raise ActivityFailed(f"standby on port {port} did not stream within {timeout_s:.0f} s ({last})")


# ---------------------------------------------------------------------------------------------
# Internals

def _load(target: str | None) -> dict:
    try:
        return target_mod.load(target)
    except target_mod.TargetError as e:
        raise RecoveryInputError(str(e)) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


def _admin_dsn(t: dict, dbname: str = "svgai") -> str:
    # The application's multi-host DSN as superuser: whichever server accepts writes.
    return t["app_dsn"].replace("user=svgai", "user=postgres").replace("dbname=svgai", f"dbname={dbname}")


def _roles(t: dict, layout) -> dict:
    """Which program is the primary now: the one that answers as primary, else target.json's."""
    progs = ("postgres-primary", "postgres-standby")
    states = {p: server_state(layout.port(p)) for p in progs}
    primaries = [p for p in progs if states[p] == "primary"]
    if len(primaries) == 1:
        primary = primaries[0]
    elif t.get("primary", {}).get("program") in progs:
        primary = t["primary"]["program"]
    else:
        primary = "postgres-primary"
    other = progs[1] if primary == progs[0] else progs[0]
    return {"primary": primary, "standby": other, "primary_state": states[primary], "standby_state": states[other]}


def _lsn(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def _history(archive: Path) -> dict:
    """The newest timeline in the archive and its ancestry {tli: switchpoint LSN}. Recovery with
    recovery_target_timeline='latest' follows exactly this history."""
    tlis = [int(f.name[:8], 16) for f in archive.glob("*.history") if re.fullmatch(r"[0-9A-F]{8}\.history", f.name)]
    latest = max(tlis, default=1)
    parents: dict[int, int] = {}
    if latest > 1:
        try:
            for line in (archive / f"{latest:08X}.history").read_text().splitlines():
                parts = line.split()
                if len(parts) >= 2 and parts[0].isdigit():
                    parents[int(parts[0])] = _lsn(parts[1])
        except OSError:
            pass
    return {"latest": latest, "parents": parents}


def _backup_info(path: Path, history: dict) -> dict:
    label = {}
    for line in (path / "backup_label").read_text().splitlines():
        key, _, value = line.partition(": ")
        label[key.strip()] = value.strip()
    manifest_file = path / "backup_manifest"
    ranges = json.loads(manifest_file.read_text())["WAL-Ranges"]
    tli = int(ranges[-1]["Timeline"])
    end_lsn = ranges[-1]["End-LSN"]
    try:  # written in the server's log_timezone (UTC on the embedded stack)
        started = datetime.strptime(label["START TIME"], "%Y-%m-%d %H:%M:%S %Z").replace(tzinfo=timezone.utc).isoformat()
    except (KeyError, ValueError):
        started = None
    # The manifest is written after the server ended the backup: a safe "consistent from" time.
    ended = datetime.fromtimestamp(manifest_file.stat().st_mtime, timezone.utc)
    start_wal = re.search(r"\(file ([0-9A-F]{24})\)", label["START WAL LOCATION"]).group(1)
    on_history = tli == history["latest"] or (tli in history["parents"] and _lsn(end_lsn) <= history["parents"][tli])
    size = 0
    for root, _dirs, files in os.walk(path):
        for n in files:
            try:
                size += os.lstat(os.path.join(root, n)).st_size
            except OSError:
                pass
    return {"id": path.name, "path": str(path), "started": started, "ended": ended.isoformat(),
            "timeline": tli, "start_lsn": label["START WAL LOCATION"].split()[0], "end_lsn": end_lsn,
            "start_wal": start_wal, "size_bytes": size, "on_current_history": on_history,
            "age_s": round((datetime.now(timezone.utc) - ended).total_seconds(), 1)}


def _scan_backups(t: dict) -> list[dict]:
    folder = Path(t["backup_dir"])
    if not folder.is_dir():
        raise RecoveryInputError(f"backup folder {folder} does not exist; is the stack set up?")
    history = _history(Path(t["archive_dir"]))
    out = []
    for d in folder.iterdir():
        # A folder without backup_manifest is a backup still being written (or a failed one).
        if d.is_dir() and (d / "backup_label").exists() and (d / "backup_manifest").exists():
            try:
                out.append(_backup_info(d, history))
            except (OSError, ValueError, KeyError, AttributeError):
                continue
    return sorted(out, key=lambda b: (b["ended"], b["id"]))


def _choose_backup(backups: list[dict], backup_id: str, when: datetime | None) -> dict:
    if not backups:
        raise RecoveryInputError("there are no base backups yet; take one with create_backup (gameday backup db create)")
    usable = [b for b in backups if b["on_current_history"]]
    if backup_id in (None, "", "latest"):
        if when is None:
            if not usable:
                raise RecoveryInputError("no base backup lies on the current timeline history; take one with create_backup")
            return usable[-1]
        before = [b for b in usable if datetime.fromisoformat(b["ended"]) <= when]
        if not before:
            earliest = usable[0]["ended"] if usable else backups[0]["ended"]
            raise RecoveryInputError(f"target time {when.isoformat()} is before the oldest usable backup ended "
                                     f"({earliest}); the earliest restorable time is {earliest}")
        return before[-1]
    by_id = {b["id"]: b for b in backups}
    if backup_id not in by_id:
        known = ", ".join(b["id"] for b in backups)
        raise RecoveryInputError(f"unknown backup id {backup_id!r}; known backups: {known} (or 'latest')")
    chosen = by_id[backup_id]
    if not chosen["on_current_history"]:
        raise RecoveryInputError(f"backup {backup_id} lies on timeline {chosen['timeline']}, which a later point-in-time "
                                 f"restore abandoned; choose a newer backup")
    if when is not None and datetime.fromisoformat(chosen["ended"]) > when:
        raise RecoveryInputError(f"backup {backup_id} ended at {chosen['ended']}, after the target time "
                                 f"{when.isoformat()}; choose an older backup or 'latest'")
    return chosen


def _parse_target_time(value) -> datetime:
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise RecoveryInputError(f"target time {value!r} is not an ISO-8601 time such as "
                                     f"2026-05-01T10:15:00Z") from None
    if when.tzinfo is None:
        raise RecoveryInputError(f"target time {value!r} has no timezone; add one (Z or +02:00) so the moment is unambiguous")
    when = when.astimezone(timezone.utc)
    now = datetime.now(timezone.utc)
    if when > now:
        raise RecoveryInputError(f"target time {when.isoformat()} is in the future (now {now.isoformat(timespec='seconds')})")
    return when


def _free_label(folder: Path) -> str:
    # Ids are `base-<UTC stamp>` to the second: wait for the next second rather than collide.
    while True:
        label = time.strftime("base-%Y%m%dT%H%M%SZ", time.gmtime())
        if not (folder / label).exists():
            return label
        time.sleep(0.2)


def _switch_and_wait(port: int, archive: Path, timeout_s: float) -> dict:
    """A commit now, pg_switch_wal(), and wait until the closed segment is archived."""
    t0 = time.monotonic()
    try:
        with _connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2") as c:
            # A transaction with an xid writes a commit record stamped now: a target time in the
            # past then always has a commit after it to stop at.
            c.execute("select txid_current()")
            lsn = c.execute("select pg_switch_wal()").fetchone()[0]
            segment = c.execute("select pg_walfile_name(%s::pg_lsn)", (str(lsn),)).fetchone()[0]
            deadline = t0 + timeout_s
            # The switch marks the segment .ready before it returns; the archiver turns that into
            # .done only after archive_command succeeded.
            while c.execute("select count(*) from pg_ls_archive_statusdir() where name = %s",
                            (segment + ".ready",)).fetchone()[0] or not (archive / segment).exists():
                if time.monotonic() > deadline:
                    last, failed = c.execute("select last_archived_wal, last_failed_wal from pg_stat_archiver").fetchone()
                    raise ActivityFailed(f"WAL segment {segment} was not archived within {timeout_s:.0f} s "
                                         f"(last archived {last}, last failed {failed})")
                time.sleep(0.05)
    except psycopg.Error as e:
        raise ActivityFailed(f"WAL switch on port {port} failed: {_first_line(e)}") from None
    return {"segment": segment, "switch_lsn": str(lsn), "archived_s": round(time.monotonic() - t0, 3)}


def _move_aside(data: Path) -> Path | None:
    """Move the data folder aside for forensics; only the newest aside copy is kept."""
    if not data.exists():
        return None
    aside = data.with_name(f"{data.name}.aside-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    n = 1
    while aside.exists():
        aside = data.with_name(f"{data.name}.aside-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{n}")
        n += 1
    data.rename(aside)
    for old in data.parent.glob(f"{data.name}.aside-*"):
        if old != aside:
            shutil.rmtree(old, ignore_errors=True)
    return aside


def _install_backup(backup: Path, data: Path) -> None:
    if data.exists():
        shutil.rmtree(data)
    shutil.copytree(backup, data, symlinks=True)
    # What belongs to the backup or to a running/standby server, not to a server recovering here.
    for name in ("backup_manifest", "postmaster.pid", "postmaster.opts", "standby.signal", "recovery.signal"):
        (data / name).unlink(missing_ok=True)


def _copy_unarchived_wal(old_wal: Path, new_wal: Path, archive: Path) -> list[str]:
    """WAL segments the old server wrote but never archived (it died, or archiving lagged): the
    PostgreSQL manual's PITR step 'copy unarchived WAL into pg_wal'. Recovery reads the archive
    first and pg_wal only for segments the archive lacks. Marked .done so they are never
    archived from here (stale recycled segments among them must not reach the archive)."""
    if not old_wal.is_dir():
        return []
    have = {f.name for f in archive.iterdir()}
    latest = f"{_history(archive)['latest']:08X}"  # the old primary's timeline; older ones are done
    copied = []
    for f in sorted(old_wal.iterdir()):
        if (re.fullmatch(r"[0-9A-F]{24}", f.name) and f.name.startswith(latest) and f.name not in have
                and f.is_file()):
            shutil.copy2(f, new_wal / f.name)
            status = new_wal / "archive_status"
            status.mkdir(exist_ok=True)
            (status / f"{f.name}.done").touch()
            copied.append(f.name)
    return copied


def _append_recovery_settings(data: Path, archive: Path, when: datetime | None, with_target: bool = True) -> None:
    lines = ["", "# Point-in-time recovery (written by harness.recovery; removed after promotion).",
             f"restore_command = 'cp {archive}/%f %p'", "recovery_target_timeline = 'latest'"]
    if when is not None and with_target:
        lines += [f"recovery_target_time = '{when.isoformat()}'", "recovery_target_inclusive = off",
                  "recovery_target_action = 'promote'"]
    with open(data / "gameday.conf", "a") as f:
        f.write("\n".join(lines) + "\n")


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset if offset <= path.stat().st_size else 0)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


TARGET_NOT_REACHED = "recovery ended before configured recovery target was reached"
STARTUP_FAILED = "aborting startup due to startup process failure"


def _recover(t: dict, layout, prog: str, data: Path, log_path: Path, timeout_s: float) -> dict:
    """Start the held, prepared server and wait until recovery ended and it was promoted. If the
    target time lies after the newest archived commit, recover everything there is instead."""
    from harness.stack import postgres, supervisor
    sup, port = t["supervisor_url"], layout.port(prog)
    target_reached = True
    offset = _log_size(log_path)
    release(layout, prog)
    supervisor.start(sup, prog)
    deadline = time.monotonic() + timeout_s
    while True:
        state = server_state(port)
        if state == "primary":
            break
        text = _read_from(log_path, offset)
        if TARGET_NOT_REACHED in text and target_reached:
            # Every archived commit is older than the target: the newest state IS the target state.
            hold(layout, prog)
            supervisor.stop(sup, prog)
            postgres.configure(layout, data, port)
            _append_recovery_settings(data, Path(t["archive_dir"]), None)
            postgres.chown_to_server_user(data / "gameday.conf")
            target_reached = False
            offset = _log_size(log_path)
            release(layout, prog)
            supervisor.start(sup, prog)
            continue
        if STARTUP_FAILED in text:
            fatal = [ln for ln in text.splitlines() if "FATAL:" in ln and "starting up" not in ln
                     and "not yet accepting" not in ln]
            raise ActivityFailed(f"recovery failed: {fatal[-1].split('FATAL:', 1)[1].strip() if fatal else STARTUP_FAILED} "
                                 f"(see {log_path})")
        if time.monotonic() > deadline:
            raise ActivityFailed(f"the restored server on port {port} was not promoted within {timeout_s:.0f} s (see {log_path})")
        time.sleep(0.1)
    with _connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2") as c:
        lsn, ts, wal = c.execute("select pg_last_wal_replay_lsn(), pg_last_xact_replay_timestamp(), "
                                 "pg_walfile_name(pg_current_wal_lsn())").fetchone()
    return {"replay_end_lsn": str(lsn) if lsn else None, "recovered_to": ts.isoformat() if ts else None,
            "timeline": int(wal[:8], 16), "target_reached": target_reached}


def _put_back(t: dict, layout, prog: str, other: str, data: Path, aside: Path | None) -> None:
    """A failed recovery: the previous data folder goes back and both servers start again."""
    from harness.stack import postgres, supervisor
    sup = t["supervisor_url"]
    try:
        hold(layout, prog)
        supervisor.stop(sup, prog)
        if aside is not None and aside.exists():
            if data.exists():
                shutil.rmtree(data)
            aside.rename(data)
            postgres.configure(layout, data, layout.port(prog))
    finally:
        for name in (prog, other):
            release(layout, name)
            try:
                supervisor.start(sup, name)
            except Exception:
                pass


# --- verification in a scratch cluster ---------------------------------------------------------

def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _scratch_settings(port: int, socket_dir: Path, archive: Path) -> str:
    # Archiving OFF: a promoted scratch cluster must never write a timeline into the live archive.
    return f"""# Scratch cluster for backup verification (harness.recovery.verify_backup).
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
    from harness.stack import postgres
    srv = Path(t.get("srv_dir") or Path(t["backup_dir"]).parent)
    scratch = Path(tempfile.mkdtemp(prefix="verify-", dir=srv))
    proc = None
    log_file = scratch / "postgres.log"
    try:
        data = scratch / "data"
        t0 = time.monotonic()
        _install_backup(Path(backup["path"]), data)
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
        while server_state(port) != "primary":
            if proc.poll() is not None:
                raise ActivityFailed(f"scratch server exited with code {proc.returncode}: {_last_fatal(log_file)}")
            if time.monotonic() > deadline:
                raise ActivityFailed(f"scratch server was not promoted within {timeout_s:.0f} s: {_last_fatal(log_file)}")
            time.sleep(0.1)
        restore_s = time.monotonic() - t0
        with _connect(f"host=127.0.0.1 port={port} user=postgres dbname=svgai connect_timeout=2") as c:
            ts, replay_lsn, seg_size = c.execute(
                "select pg_last_xact_replay_timestamp(), pg_last_wal_replay_lsn() - '0/0'::pg_lsn, "
                "setting::bigint from pg_settings where name = 'wal_segment_size'").fetchone()
            ok, detail, rows, newest_row = amcheck(c)
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
        raise ActivityFailed(f"scratch server on port {port}: {_first_line(e)}") from None
    finally:
        if proc is not None:
            _stop_process(proc)
        shutil.rmtree(scratch, ignore_errors=True)


def _archived_at(archive: Path, lsn: int, seg_size: int) -> datetime | None:
    """When the archive received the segment holding `lsn` (of the newest timeline that has it)."""
    lsn = max(lsn - 1, 0)  # an LSN at a segment boundary ends the previous segment
    suffix = f"{lsn >> 32:08X}{(lsn & 0xFFFFFFFF) // seg_size:08X}"
    names = sorted(f.name for f in archive.glob(f"????????{suffix}") if re.fullmatch(r"[0-9A-F]{24}", f.name))
    return _mtime(archive / names[-1]) if names else None


def _spawn_postgres(binary: Path, data: Path, log_file: Path, user: str | None) -> subprocess.Popen:
    kw = {}
    if os.geteuid() == 0:  # the server refuses to run as root
        import pwd
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


def _last_commit_in(waldump: Path, archive: Path, segment: str) -> datetime | None:
    try:
        r = subprocess.run([str(waldump), "-p", str(archive), "-r", "Transaction", segment], capture_output=True,
                           text=True, timeout=20, env={**os.environ, "TZ": "UTC", "PGTZ": "UTC"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    stamps = re.findall(r"desc: (?:COMMIT|ABORT) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC", r.stdout)
    if not stamps:
        return None
    return datetime.strptime(stamps[-1] + ("" if "." in stamps[-1] else ".0"), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc)
