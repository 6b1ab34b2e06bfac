"""Runs in progress on a stack home, for the emergency stop (`gameday abort`).

    <home>/runs/active/<pid>.json     written by `gameday run` while it runs, removed at its end
    <home>/runs/active/<pid>.abort    the operator's abort request, read by that run's signal handler

The bottom layer: imports nothing of ours.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["register", "unregister", "active", "request_abort", "abort_requested"]

ABORT_REASON = "aborted by operator"


def _dir(home: str | os.PathLike) -> Path:
    return Path(home) / "runs" / "active"


def register(home: str | os.PathLike, info: dict) -> Path:
    folder = _dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{os.getpid()}.json"
    path.write_text(json.dumps({"pid": os.getpid(), "started": time.time(), **info}) + "\n")
    return path


def unregister(home: str | os.PathLike) -> None:
    for suffix in (".json", ".abort"):
        (_dir(home) / f"{os.getpid()}{suffix}").unlink(missing_ok=True)


def active(home: str | os.PathLike) -> list[dict]:
    """Runs registered on this home whose process still lives (stale entries are removed)."""
    out = []
    for path in sorted(_dir(home).glob("*.json")) if _dir(home).is_dir() else []:
        try:
            entry = json.loads(path.read_text())
            os.kill(int(entry["pid"]), 0)
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)
            continue
        out.append(entry)
    return out


def request_abort(home: str | os.PathLike, pid: int) -> None:
    (_dir(home) / f"{pid}.abort").write_text(f"{time.time()}\n")


def abort_requested(home: str | os.PathLike) -> bool:
    return (_dir(home) / f"{os.getpid()}.abort").exists()
