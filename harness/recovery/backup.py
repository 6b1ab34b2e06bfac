"""Database backups: base backups and the continuous WAL archive, what the BCP's
`database_backup.py backup | status | cleanup` do.

Backups are plain PostgreSQL base backups (`pg_basebackup -X stream -c fast`, one folder
`base-<UTC stamp>` each) plus the continuous WAL archive. Together they allow **point-in-time
recovery** (harness.recovery.database): any moment from the end of the oldest backup up to the
newest archived commit can be restored. This module takes, lists and prunes backups, closes and
archives the current WAL segment, and says how far a restore could reach now.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from chaoslib.exceptions import ActivityFailed

from harness.core.errors import first_line
from harness.core.pgroles import admin_dsn, passfile_of, server_dsn
from harness.recovery.runbook import RecoveryInputError, exclusive, load_local, load_target, primary_roles
from harness.targets.embedded import postgres

__all__ = ["create_backup", "list_backups", "cleanup_backups", "switch_wal", "archive_status",
           "newest_restorable_point"]

ARCHIVE_WAIT_S = 30.0


def create_backup(target: str | None = None) -> dict:
    """Take a base backup of the current primary now (`pg_basebackup -X stream -c fast`).

    Returns the backup as `list_backups` describes it (id, path, size_bytes, start/end LSN and WAL
    file, timeline, started/ended) plus `took_s`. Together with the WAL archive it is a starting
    point for point-in-time recovery."""
    t, layout = load_local(target)
    roles = primary_roles(t, layout)
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
    info = _backup_info(Path(t["backup_dir"]) / label, archive_history(Path(t["archive_dir"])))
    return {**info, "took_s": round(took_s, 3), "from_port": layout.port(roles["primary"])}


def list_backups(target: str | None = None) -> list[dict]:
    """Every complete base backup, oldest first: id, path, started, ended (ISO, UTC), timeline,
    start_lsn/end_lsn, start_wal, size_bytes, age_s and `on_current_history` (False for a backup
    of a timeline that a later point-in-time restore abandoned: it cannot be restored any more)."""
    return scan_backups(load_target(target))


def cleanup_backups(keep: int = 3, target: str | None = None) -> dict:
    """Delete all but the `keep` newest base backups, and archived WAL older than the oldest kept
    backup's start (it can no longer be replayed from anything). Timeline history files are kept."""
    try:
        keep = int(keep)
    except (TypeError, ValueError):
        raise RecoveryInputError(f"keep must be a whole number, got {keep!r}") from None
    if keep < 1:
        raise RecoveryInputError(f"keep must be at least 1 (the newest backup is never deleted), got {keep}")
    t = load_target(target)
    with exclusive(t, "cleanup_backups"):  # never delete the backup a restore is copying
        backups = scan_backups(t)
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
    roles = primary_roles(t, layout)
    if roles["primary_state"] != "primary":
        raise ActivityFailed(f"no primary answers (port {layout.port(roles['primary'])} is {roles['primary_state']})")
    return switch_and_wait(layout.port(roles["primary"]), Path(t["archive_dir"]), float(timeout_s), passfile_of(t))


def archive_status(target: str | None = None) -> dict:
    """WAL archive health (read-only): the primary's archiver statistics, segments waiting to be
    archived, and the newest restorable point. `healthy` is False when the last archive attempt
    failed or segments are piling up."""
    t = load_target(target)
    out: dict = {"archive_dir": t["archive_dir"], "healthy": False}
    try:
        with psycopg.connect(admin_dsn(t, "postgres"), autocommit=True) as c:
            row = c.execute("select archived_count, last_archived_wal, last_archived_time, failed_count, "
                            "last_failed_wal, last_failed_time from pg_stat_archiver").fetchone()
            ready = c.execute("select count(*) from pg_ls_archive_statusdir() where name like '%.ready'").fetchone()[0]
            out["port"] = c.info.port
    except psycopg.Error as e:
        out["error"] = f"no primary answers: {first_line(e)}"
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
    t = load_target(target)
    archive = Path(t["archive_dir"])
    segments = _segments_on_history(archive)
    if not segments:
        return {"time": None, "age_s": None, "archived_at": None, "last_commit": None, "segment": None}
    newest = segments[-1][2]
    archived_at = mtime(archive / newest)
    last_commit = None
    for _segno, _tli, name in reversed(segments[-8:]):
        last_commit = _last_commit_in(Path(t["pg_bin"]) / "pg_waldump", archive, name)
        if last_commit:
            break
    point = max(x for x in (archived_at, last_commit) if x is not None)
    return {"time": point.isoformat(), "age_s": round((datetime.now(timezone.utc) - point).total_seconds(), 3),
            "archived_at": archived_at.isoformat(), "last_commit": last_commit.isoformat() if last_commit else None,
            "segment": newest}


# ---------------------------------------------------------------------------------------------
# Shared with harness.recovery.database and harness.recovery.verify (not for experiments)

def scan_backups(t: dict) -> list[dict]:
    """The complete base backups in the target's backup folder, oldest first (see list_backups)."""
    folder = Path(t["backup_dir"])
    if not folder.is_dir():
        raise RecoveryInputError(f"backup folder {folder} does not exist; is the stack set up?")
    history = archive_history(Path(t["archive_dir"]))
    out = []
    for d in folder.iterdir():
        # A folder without backup_manifest is a backup still being written (or a failed one).
        if d.is_dir() and (d / "backup_label").exists() and (d / "backup_manifest").exists():
            try:
                out.append(_backup_info(d, history))
            except (OSError, ValueError, KeyError, AttributeError):
                continue
    return sorted(out, key=lambda b: (b["ended"], b["id"]))


def choose_backup(backups: list[dict], backup_id: str, when: datetime | None) -> dict:
    """The backup to restore: `latest` (the newest usable one, or the newest that ended before
    `when`) or an id; bad input when there is none or it cannot reach `when`."""
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


def install_backup(backup: Path, data: Path) -> None:
    """Copy a base backup into `data` (replacing whatever is there), ready to recover from."""
    if data.exists():
        shutil.rmtree(data)
    shutil.copytree(backup, data, symlinks=True)
    # What belongs to the backup or to a running/standby server, not to a server recovering here.
    for name in ("backup_manifest", "postmaster.pid", "postmaster.opts", "standby.signal", "recovery.signal"):
        (data / name).unlink(missing_ok=True)


def archive_history(archive: Path) -> dict:
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


def switch_and_wait(port: int, archive: Path, timeout_s: float, passfile: str | None = None) -> dict:
    """A commit now, pg_switch_wal(), and wait until the closed segment is archived."""
    t0 = time.monotonic()
    try:
        with psycopg.connect(server_dsn(port, passfile=passfile), autocommit=True) as c:
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
        raise ActivityFailed(f"WAL switch on port {port} failed: {first_line(e)}") from None
    return {"segment": segment, "switch_lsn": str(lsn), "archived_s": round(time.monotonic() - t0, 3)}


def folder_bytes(path: str | os.PathLike) -> int:
    """Bytes of every file under `path` (files vanishing meanwhile count 0)."""
    size = 0
    for root, _dirs, files in os.walk(path):
        for n in files:
            try:
                size += os.lstat(os.path.join(root, n)).st_size
            except OSError:
                pass
    return size


def mtime(path: Path) -> datetime:
    """When a file (an archived segment) was last written, UTC."""
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)


# ---------------------------------------------------------------------------------------------
# Internals

def _lsn(text: str) -> int:
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


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
    size = folder_bytes(path)
    return {"id": path.name, "path": str(path), "started": started, "ended": ended.isoformat(),
            "timeline": tli, "start_lsn": label["START WAL LOCATION"].split()[0], "end_lsn": end_lsn,
            "start_wal": start_wal, "size_bytes": size, "on_current_history": on_history,
            "age_s": round((datetime.now(timezone.utc) - ended).total_seconds(), 1)}


def _free_label(folder: Path) -> str:
    # Ids are `base-<UTC stamp>` to the second: wait for the next second rather than collide.
    while True:
        label = time.strftime("base-%Y%m%dT%H%M%SZ", time.gmtime())
        if not (folder / label).exists():
            return label
        time.sleep(0.2)


def _segments_on_history(archive: Path) -> list[tuple[tuple[int, int], int, str]]:
    """Archived WAL segments a restore would replay (not an abandoned timeline's tail), sorted."""
    history = archive_history(archive)
    segments = []
    for f in archive.iterdir():
        if re.fullmatch(r"[0-9A-F]{24}", f.name):
            tli, log, seg = int(f.name[:8], 16), int(f.name[8:16], 16), int(f.name[16:], 16)
            start_lsn = (log << 32) + seg * _seg_size(f)
            if tli == history["latest"] or (tli in history["parents"] and start_lsn < history["parents"][tli]):
                segments.append(((log, seg), tli, f.name))
    return sorted(segments)


def _seg_size(f: Path) -> int:
    try:
        return f.stat().st_size or 1
    except OSError:
        return 1


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
