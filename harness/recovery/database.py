"""Database restore: the BCP's `database_backup.py restore --backup-id latest`.

`restore_database` restores INTO the current primary from a base backup and the WAL archive
(harness.recovery.backup): latest state by default (RPO 0 when the primary still answers: its WAL
is switched and archived first), or `target_time` to undo a bad statement. It rebuilds the standby
from the restored primary and takes a fresh base backup. The weekly verification, which never
touches the live servers, is harness.recovery.verify.

Works on the embedded stack's target description (`target`: path of target.json or a stack home;
default $GAMEDAY_TARGET). Bad input raises `RecoveryInputError` (an `ActivityFailed`) BEFORE
anything is touched; a failure midway raises `ActivityFailed` saying what state was left.
"""
from __future__ import annotations

import re
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from chaoslib.exceptions import ActivityFailed

from harness.core.pgroles import passfile_of, server_dsn, server_role
from harness.recovery.backup import (ARCHIVE_WAIT_S, archive_history, choose_backup, create_backup, install_backup,
                                     scan_backups, switch_and_wait)
from harness.recovery.runbook import RecoveryInputError, exclusive, load_local, primary_roles
from harness.recovery import restore_tiers
from harness.targets.embedded.layout import Layout

__all__ = ["restore_database"]

TARGET_NOT_REACHED = "recovery ended before configured recovery target was reached"
STARTUP_FAILED = "aborting startup due to startup process failure"


def restore_database(backup_id: str = "latest", target_time: str | None = None,
                     target: str | None = None, timeout_s: float = 300.0) -> dict:
    """Point-in-time recovery of the current primary from a base backup + the WAL archive.

    `backup_id`: 'latest' (default: the newest backup, or with `target_time` the newest one that
    ended before it) or a backup id from `list_backups`. `target_time`: ISO-8601 with timezone
    (e.g. '2026-05-01T10:15:00Z'); without it the database is restored to the newest archived
    state. When the primary still answers its current WAL is archived first, so a restore after
    page corruption loses no acknowledged write.

    Steps: archive the primary's WAL; fence the servers (plain tier: hold and stop both programs;
    patroni tier: Patroni's maintenance mode, the leader stopped); move the primary's
    data folder aside (the newest one is kept for forensics); copy the base backup in; recover
    (restore_command from the archive, latest timeline, optional target time) and promote; rebuild
    the standby from it (patroni tier: Patroni's reinitialize, then maintenance mode ends); take a fresh base backup of the new timeline. If the recovery itself
    fails, the previous data folder is put back and both servers are started again.

    Returns what happened: backup used, restore_s (primary down → writable again), replay end LSN,
    recovered_to (time of the last replayed commit), timeline, standby and fresh backup timings."""
    t, layout = load_local(target)
    when = _parse_target_time(target_time) if target_time not in (None, "") else None
    backups = scan_backups(t)
    chosen = choose_backup(backups, backup_id, when)
    with exclusive(t, "restore_database"):
        return _restore(t, layout, chosen, when, target, float(timeout_s))


# ---------------------------------------------------------------------------------------------
# Internals

def _restore(t: dict, layout: Layout, chosen: dict, when: datetime | None, target: str | None,
             timeout_s: float) -> dict:
    roles = primary_roles(t, layout)
    prog, other = roles["primary"], roles["standby"]
    port = layout.port(prog)
    data = layout.data_dir(prog)
    servers = restore_tiers.for_target(t, layout, prog, other)

    result: dict = {"backup_id": chosen["id"], "backup_ended": chosen["ended"], "target_time":
                    when.isoformat() if when else None, "primary": prog, "port": port, "db_tier": layout.db_tier}
    t_start = time.monotonic()

    # 1. Make the archive complete while the primary can still help: a commit stamped now (a
    #    target time needs a commit after it to stop at) and a WAL switch, archived.
    if roles["primary_state"] == "primary":
        try:
            switched = switch_and_wait(port, Path(t["archive_dir"]), ARCHIVE_WAIT_S, passfile_of(t))
            result["archived_before_restore"] = switched
        except ActivityFailed as e:
            result["archived_before_restore"] = {"error": str(e)}
    else:
        result["archived_before_restore"] = {"error": f"primary on port {port} is {roles['primary_state']}"}

    # 2. Fence the servers (see restore_tiers: what fencing means on each tier).
    t_down = time.monotonic()
    aside = None
    steps: dict = {}
    try:
        servers.fence()
        steps["stop_s"] = round(time.monotonic() - t_down, 3)
        aside = _move_aside(data)
        # 3. Base backup into place, recovery settings, start, wait for promotion.
        install_backup(Path(chosen["path"]), data)
        copied = _copy_unarchived_wal(aside / "pg_wal", data / "pg_wal", Path(t["archive_dir"])) if aside else []
        result["unarchived_wal_copied"] = copied
        servers.configure(data, aside, restore_tiers.recovery_settings(Path(t["archive_dir"]), when))
        steps["install_s"] = round(time.monotonic() - t_down - steps["stop_s"], 3)
        recovery = _recover(t, servers, data, aside, port, timeout_s)
    except Exception as e:
        reason = str(e) if isinstance(e, ActivityFailed) else f"{type(e).__name__}: {e}"
        _put_back(servers, data, aside)
        raise ActivityFailed(f"restore of {chosen['id']} failed: {reason}; the previous data folder "
                             f"was put back and both servers started again") from None
    result["restore_s"] = round(time.monotonic() - t_down, 3)
    steps["recover_s"] = round(result["restore_s"] - steps["stop_s"] - steps["install_s"], 3)
    result["steps"] = steps
    result.update(recovery)
    servers.own_settings(data)

    # 4. A standby from the restored primary; a base backup on the new timeline.
    t_sb = time.monotonic()
    try:
        result["standby_rebuilt_by"] = servers.rebuild_standby()
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


def _copy_unarchived_wal(old_wal: Path, new_wal: Path, archive: Path) -> list[str]:
    """WAL segments the old server wrote but never archived (it died, or archiving lagged): the
    PostgreSQL manual's PITR step 'copy unarchived WAL into pg_wal'. Recovery reads the archive
    first and pg_wal only for segments the archive lacks. Marked .done so they are never
    archived from here (stale recycled segments among them must not reach the archive)."""
    if not old_wal.is_dir():
        return []
    have = {f.name for f in archive.iterdir()}
    latest = f"{archive_history(archive)['latest']:08X}"  # the old primary's timeline; older ones are done
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


def _recover(t: dict, servers, data: Path, aside: Path | None, port: int, timeout_s: float) -> dict:
    """Start the prepared server and wait until recovery ended and it was promoted. If the
    target time lies after the newest archived commit, recover everything there is instead."""
    log_path = servers.log_path
    target_reached = True
    offset = _log_size(log_path)
    servers.start()
    deadline = time.monotonic() + timeout_s
    while True:
        state = server_role(port, passfile=passfile_of(t))
        if state == "primary":
            break
        text = _read_from(log_path, offset)
        if TARGET_NOT_REACHED in text and target_reached:
            # Every archived commit is older than the target: the newest state IS the target state.
            servers.stop()
            servers.configure(data, aside, restore_tiers.recovery_settings(Path(t["archive_dir"]), None))
            target_reached = False
            offset = _log_size(log_path)
            servers.start()
            continue
        if STARTUP_FAILED in text or servers.exited():
            fatal = [ln for ln in text.splitlines() if "FATAL:" in ln and "starting up" not in ln
                     and "not yet accepting" not in ln]
            raise ActivityFailed(f"recovery failed: {fatal[-1].split('FATAL:', 1)[1].strip() if fatal else STARTUP_FAILED} "
                                 f"(see {log_path})")
        if time.monotonic() > deadline:
            raise ActivityFailed(f"the restored server on port {port} was not promoted within {timeout_s:.0f} s (see {log_path})")
        time.sleep(0.1)
    with psycopg.connect(server_dsn(port, passfile=passfile_of(t)), autocommit=True) as c:
        lsn, ts, wal = c.execute("select pg_last_wal_replay_lsn(), pg_last_xact_replay_timestamp(), "
                                 "pg_walfile_name(pg_current_wal_lsn())").fetchone()
    return {"replay_end_lsn": str(lsn) if lsn else None, "recovered_to": ts.isoformat() if ts else None,
            "timeline": int(wal[:8], 16), "target_reached": target_reached}


def _put_back(servers, data: Path, aside: Path | None) -> None:
    """A failed recovery: the previous data folder goes back and both servers start again."""
    try:
        servers.stop()
        if aside is not None and aside.exists():
            if data.exists():
                shutil.rmtree(data)
            aside.rename(data)
            servers.own_settings(data)
    finally:
        servers.put_back()
