"""The heartbeat ledger's format and its reader (the writer is harness/recorders/heartbeat.py).

Ledger: `<dir>/heartbeat-YYYYMMDD.jsonl` (UTC day), one line per acknowledged write:
    {"key": "hb-…", "wall": <epoch s when the 200 arrived>, "sent": <epoch s sent>, "digest": <what it stored>}

    read_window(ledger_dir, since_epoch, until_epoch)  → [(key, wall, digest), …]
    freshness(ledger_dir, fresh_s)                     → (healthy, detail): the stack's health check

The bottom layer: imports nothing of ours.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

__all__ = ["KEY_PREFIX", "ledger_file", "read_window", "freshness"]

KEY_PREFIX = "hb-"


def ledger_file(ledger_dir: str | os.PathLike, when: datetime) -> Path:
    return Path(ledger_dir) / f"heartbeat-{when.astimezone(timezone.utc):%Y%m%d}.jsonl"


def read_window(ledger_dir: str | os.PathLike, since_epoch: float,
                until_epoch: float) -> list[tuple[str, float, str | None]]:
    """Acknowledged heartbeats with `since_epoch <= wall <= until_epoch`, oldest first. Only the
    day files that overlap the window are opened. A torn last line (the writer killed mid-write)
    is skipped: it was never an acknowledgement on disk."""
    out: list[tuple[str, float, str | None]] = []
    day = datetime.fromtimestamp(since_epoch, timezone.utc).date()
    last = datetime.fromtimestamp(until_epoch, timezone.utc).date()
    while day <= last:
        path = ledger_file(ledger_dir, datetime(day.year, day.month, day.day, tzinfo=timezone.utc))
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                        key, wall = entry["key"], float(entry["wall"])
                    except (ValueError, KeyError, TypeError):
                        continue
                    if since_epoch <= wall <= until_epoch:
                        out.append((key, wall, entry.get("digest")))
        except FileNotFoundError:
            pass
        day += timedelta(days=1)
    out.sort(key=lambda kw: kw[1])
    return out


def freshness(ledger_dir: str | os.PathLike, fresh_s: float) -> tuple[bool, str]:
    """Whether the heartbeat is alive: its newest acknowledgement at most `fresh_s` seconds old."""
    now = time.time()
    newest = read_window(ledger_dir, now - 60, now + 1)
    if not newest:
        return False, "no acknowledged heartbeat in the last 60 s"
    age = now - newest[-1][1]
    return age <= fresh_s, f"newest acknowledgement {age:.1f} s ago"
