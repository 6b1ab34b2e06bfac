"""Point-in-time recovery to just before a recorded incident (the accidental DELETE).

harness.faults.database.bad_statement writes `<home>/incidents/latest.json` with the UTC time
just before the statement ran; this restores the database to that moment
(harness.recovery.database.restore_database with target_time) and checks that the rows the
statement deleted are back. Writes committed after that moment are deliberately given up: the
game day counts them as lost writes.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from chaoslib.exceptions import ActivityFailed

from harness import targets
from harness.recovery.database import restore_database
from harness.core.amcheck import amcheck

__all__ = ["restore_before_incident", "restore_if_damaged", "rewind_database"]


def restore_before_incident(target: str | None = None) -> dict:
    """Restore the database to the moment recorded just before the latest incident
    (`<home>/incidents/latest.json`), then count how many of the rows the incident deleted are
    present again. Raises ActivityFailed if there is no incident record or the restore fails."""
    t = targets.for_activity(target).data
    path = targets.incident_path(t)
    try:
        incident = json.loads(path.read_text())
        target_time = incident["started_at"]
    except FileNotFoundError:
        raise ActivityFailed(f"no incident recorded at {path}: nothing to restore to") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ActivityFailed(f"incident record {path} is unreadable or has no started_at: {e}") from None

    restored = restore_database(target_time=target_time, target=target)

    keys = _deleted_keys(incident)
    back = _count_present(t, keys) if keys else None
    result = {"incident": incident.get("incident"), "target_time": target_time,
              "deleted_keys": len(keys), "deleted_keys_back": back, "restore": restored}
    if keys and back is not None and back < len(keys):
        raise ActivityFailed(f"point-in-time recovery to {target_time} brought back only {back} of the "
                             f"{len(keys)} rows the incident deleted")
    return result


def rewind_database(seconds: float = 10.0, target: str | None = None) -> dict:
    """Point-in-time recovery of the database to `seconds` before now: every write committed since
    is given up. Ground truth for the RPO instrument (tagged `fault` in a calibration experiment,
    it must measure RPO = `seconds`) and the stale restore of a negative control. Returns the
    restore's record with its `effect`: the point the database was brought back to."""
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        raise ActivityFailed(f"seconds must be a number, got {seconds!r}") from None
    if not 0 < seconds <= 86400:
        raise ActivityFailed(f"seconds must be above 0 and at most a day, got {seconds!r}")
    point = datetime.now(timezone.utc) - timedelta(seconds=seconds)
    restored = restore_database(target_time=point.isoformat(timespec="microseconds"), target=target)
    return {"seconds": seconds, "target_time": point.isoformat(timespec="microseconds"), "restore": restored,
            "effect": {"observed": True, "detail": f"database rewound to {point.isoformat(timespec='seconds')} "
                                                   f"({seconds:g} s before the rewind began)"}}


def restore_if_damaged(table: str = "optimization_results", target: str | None = None) -> dict:
    """Rollback for the corruption experiments: if amcheck (verify_heapam and every B-tree index of
    `table`) finds damage on the current primary, restore the database from the latest backup and
    the WAL archive; otherwise do nothing. Returns what amcheck said and whether it restored."""
    t = targets.for_activity(target).data
    clean, detail = _amcheck(t, table)
    if clean is None:  # unreachable is not damaged: a restore now could lose unarchived WAL
        return {"damaged": None, "restored": False, "amcheck": detail}
    if clean:
        return {"damaged": False, "restored": False, "amcheck": detail}
    restored = restore_database(backup_id="latest", target=target)
    clean_after, detail_after = _amcheck(t, table)
    return {"damaged": True, "amcheck": detail, "restored": True, "restore": restored,
            "clean_after": clean_after, "amcheck_after": detail_after}


# ---------------------------------------------------------------------------------------------
# Internals

def _amcheck(t: dict, table: str, connect_wait_s: float = 30.0) -> tuple[bool | None, str]:
    """(clean, detail); clean is None when the primary cannot be reached within connect_wait_s."""
    dsn = t["primary"]["admin_dsn"]
    deadline = time.monotonic() + connect_wait_s
    while True:
        try:
            conn = psycopg.connect(dsn, autocommit=True)
            break
        except psycopg.Error as e:
            if time.monotonic() > deadline:
                return None, f"primary on port {t['primary']['port']} unreachable: {str(e).strip()[:200]}"
            time.sleep(0.5)
    with conn as c:
        result = amcheck(c, table)
    return result.ok, result.detail


def _deleted_keys(incident: dict) -> list[str]:
    name = incident.get("deleted_keys_file")
    if not name:
        return []
    try:
        return [k for k in Path(name).read_text().splitlines() if k]
    except OSError:
        return []


def _count_present(t: dict, keys: list[str]) -> int | None:
    try:
        with psycopg.connect(t["app_dsn"]) as c:
            n = 0
            for i in range(0, len(keys), 20000):
                n += c.execute("select count(*) from optimization_results where request_id = any(%s)",
                               (keys[i:i + 20000],)).fetchone()[0]
            return n
    except psycopg.Error:
        return None
