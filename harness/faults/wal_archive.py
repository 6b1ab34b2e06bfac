"""The WAL archive stops: the archive destination goes away (an unmounted volume, a lost bucket),
so every archive_command fails and the newest restorable point in the archive stops moving. The
service goes on as if nothing happened; only the RPO exposure grows (harness/targets/embedded/rpo_exporter.py)
until SvgAiRpoAtRisk warns.

    stop_wal_archiving()     move the archive folder aside (ledger entry first: rename_back)
    resume_wal_archiving()   put it back and wait until the archiver has caught up
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
from chaoslib.exceptions import ActivityFailed

from harness.faults import clear_undo, register_undo
from harness.faults._common import effect, lease, local_target, server

__all__ = ["stop_wal_archiving", "resume_wal_archiving"]

_KEY = "wal_archive_stopped"


def stop_wal_archiving(evidence_timeout_s: float = 15.0, target: str | None = None, configuration: dict = None) -> dict:
    """Make the primary's archive_command fail: the WAL archive folder is moved aside, so copying a
    segment into it fails. The move is in the fault ledger before it happens (undo: move it back),
    so the archive comes back at the run's lease even if the harness dies. Returns the archiver's
    failure count before and after, as evidence that archiving really fails."""
    t = local_target(target)
    archive = Path(t["archive_dir"])
    aside = _aside(archive)
    if not archive.is_dir():
        raise ActivityFailed(f"the WAL archive {archive} is not there (already stopped? {aside} exists: {aside.exists()})")
    dsn = server(t, "primary")["admin_dsn"]
    failed_before = _archiver(dsn)["failed_count"]
    register_undo(_KEY, lambda: _put_back(archive, aside),
                  spec={"kind": "rename_back", "from": str(aside), "to": str(archive)}, **lease(t, configuration))
    os.rename(archive, aside)
    stopped_at = time.time()
    # Finish the current segment now rather than at the next archive_timeout: it is archived (and
    # fails) at once, which is the evidence.
    deadline = time.monotonic() + float(evidence_timeout_s)
    state = _archiver(dsn, switch=True)
    while state["failed_count"] <= failed_before and time.monotonic() < deadline:
        time.sleep(0.2)
        state = _archiver(dsn)
    failed = state["failed_count"] - failed_before
    return {"archive_dir": str(archive), "moved_to": str(aside), "stopped_at": stopped_at,
            "failed_before": failed_before, "failed_after": state["failed_count"],
            "last_archived_wal": state["last_archived_wal"],
            "effect": effect(failed > 0, f"archive_command failed {failed} time(s) since the archive was moved aside"
                             if failed > 0 else f"archive_command did not fail within {evidence_timeout_s:g} s")}


def resume_wal_archiving(timeout_s: float = 30.0, target: str | None = None) -> dict:
    """Put the WAL archive back and wait until the archiver has archived a segment again (the
    backlog goes first), so the newest restorable point is current again. Harmless when archiving
    was not stopped. Raises ActivityFailed if the archiver does not catch up within timeout_s."""
    t = local_target(target)
    archive = Path(t["archive_dir"])
    moved = _put_back(archive, _aside(archive))
    clear_undo(_KEY)
    dsn = server(t, "primary")["admin_dsn"]
    since = time.time()
    deadline = time.monotonic() + float(timeout_s)
    state = _archiver(dsn, switch=True)
    while not (state["last_archived_epoch"] or 0) >= since:
        if time.monotonic() > deadline:
            raise ActivityFailed(f"the archiver did not archive a segment within {timeout_s:g} s of {archive} "
                                 f"being back (last archived {state['last_archived_wal']}, "
                                 f"{state['failed_count']} failures)")
        time.sleep(0.2)
        state = _archiver(dsn)
    return {"archive_dir": str(archive), "moved_back": moved, "caught_up_s": round(time.time() - since, 3),
            "last_archived_wal": state["last_archived_wal"]}


# Internals ---------------------------------------------------------------------------------

def _aside(archive: Path) -> Path:
    return archive.with_name(archive.name + ".stopped")


def _put_back(archive: Path, aside: Path) -> bool:
    if aside.is_dir() and not archive.exists():
        os.rename(aside, archive)
        return True
    return False


def _archiver(dsn: str, switch: bool = False) -> dict:
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as c:
            if switch:
                c.execute("select pg_switch_wal()")
            failed, walfile, epoch = c.execute(
                "select failed_count, last_archived_wal, extract(epoch from last_archived_time)::float8 "
                "from pg_stat_archiver").fetchone()
    except psycopg.Error as e:
        raise ActivityFailed(f"cannot read pg_stat_archiver on the primary: {' '.join(str(e).split())[:200]}") from None
    return {"failed_count": int(failed), "last_archived_wal": walfile, "last_archived_epoch": epoch}
