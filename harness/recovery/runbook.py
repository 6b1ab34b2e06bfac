"""What the runbooks share: the target they work on, their bad-input error, one database runbook
at a time per stack, which server is the primary now, and waiting for a standby to stream.

Every runbook works on a target description (`target`: path of target.json or a stack home;
default $GAMEDAY_TARGET). Bad input raises `RecoveryInputError` (an `ActivityFailed`) BEFORE
anything is touched; a failure midway raises `ActivityFailed` saying what state was left.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

import psycopg
from chaoslib.exceptions import ActivityFailed

from harness.core import pgroles
from harness import targets
from harness.core.errors import first_line
from harness.targets.embedded import postgres
from harness.targets.embedded.layout import Layout

__all__ = ["RecoveryInputError"]


class RecoveryInputError(ActivityFailed):
    """Bad input (unknown backup id, impossible target time, no stack): nothing was touched."""


def load_target(target: str | None) -> dict:
    """The target description; a missing or unreadable one is bad input."""
    try:
        return targets.load(target).data
    except targets.TargetError as e:
        raise RecoveryInputError(str(e)) from None


def load_local(target: str | None, patroni_anywhere: bool = False) -> tuple[dict, Layout | None]:
    """The target description and the embedded stack's layout; bad input if it is not one. With
    `patroni_anywhere`, a container target on the patroni tier too, without a layout (None)."""
    try:
        t = targets.load(target)
    except targets.TargetError as e:
        raise RecoveryInputError(str(e)) from None
    if patroni_anywhere and t.fault_family == "docker" and t.data.get("db_tier") == "patroni":
        return t.data, None
    if t.fault_family != "processes":
        raise RecoveryInputError(f"database recovery automates the embedded stack; this target is {t.label} "
                                 f"(kind {t.kind!r})")
    return t.data, Layout(Path(t.data["home"]), int(t.data["port_base"]))


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


def primary_roles(t: dict, layout: Layout) -> dict:
    """Which program is the primary now: the one that answers as primary, else target.json's.
    {primary, standby, primary_state, standby_state} (states: primary, standby or down)."""
    roles = pgroles.resolve_roles({p: layout.port(p) for p in pgroles.PROGRAMS}, passfile=layout.passfile)
    primary = roles["primary"]
    if primary is None:
        named = t.get("primary", {}).get("program")
        primary = named if named in pgroles.PROGRAMS else "postgres-primary"
    other = next(p for p in pgroles.PROGRAMS if p != primary)
    return {"primary": primary, "standby": other, "primary_state": roles["states"][primary],
            "standby_state": roles["states"][other]}


def wait_streaming(port: int, timeout_s: float, passfile: str | None = None) -> float:
    """Wait until the standby on `port` streams WAL from a primary; return how long it took."""
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            if postgres.wal_receiver_streaming(port, passfile):
                return time.monotonic() - t0
            last = "WAL receiver not streaming"
        except psycopg.Error as e:
            last = first_line(e)
        time.sleep(0.1)
    raise ActivityFailed(f"standby on port {port} did not stream within {timeout_s:.0f} s ({last})")
