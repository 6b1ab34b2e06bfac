"""The heartbeat ledger's format and its reader (the writer is harness/recorders/heartbeat.py).

Ledger: `<dir>/heartbeat-YYYYMMDD.jsonl` (UTC day), one line per acknowledged write:
    {"key": "hb-…", "wall": <epoch s when the 200 arrived>, "sent": <epoch s sent>, "digest": <what it stored>,
     "server": <the database server that took it: system_id, timeline>}

    read_entries(ledger_dir, since_epoch, until_epoch) → [{key, wall, sent, digest, server}, …]
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

__all__ = ["KEY_PREFIX", "ledger_file", "read_entries", "read_window", "freshness"]

KEY_PREFIX = "hb-"


def ledger_file(ledger_dir: str | os.PathLike, when: datetime) -> Path:
    return Path(ledger_dir) / f"heartbeat-{when.astimezone(timezone.utc):%Y%m%d}.jsonl"


def read_entries(ledger_dir: str | os.PathLike, since_epoch: float, until_epoch: float) -> list[dict]:
    """Acknowledged heartbeats with `since_epoch <= wall <= until_epoch`, oldest first, as written
    (`sent`, `digest` and `server` None where an older writer did not record them). Only the day
    files that overlap the window are opened. A torn last line (the writer killed mid-write) is
    skipped: it was never an acknowledgement on disk."""
    out: list[dict] = []
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
                        sent = float(entry["sent"]) if entry.get("sent") is not None else None
                    except (ValueError, KeyError, TypeError, AttributeError):
                        continue
                    if since_epoch <= wall <= until_epoch:
                        out.append({"key": key, "wall": wall, "sent": sent, "digest": entry.get("digest"),
                                    "server": entry.get("server") if isinstance(entry.get("server"), dict) else None})
        except FileNotFoundError:
            pass
        day += timedelta(days=1)
    out.sort(key=lambda e: e["wall"])
    return out


def read_window(ledger_dir: str | os.PathLike, since_epoch: float,
                until_epoch: float) -> list[tuple[str, float, str | None]]:
    """read_entries as (key, wall, digest): what the loss checks need."""
    return [(e["key"], e["wall"], e["digest"]) for e in read_entries(ledger_dir, since_epoch, until_epoch)]


def freshness(ledger_dir: str | os.PathLike, fresh_s: float) -> tuple[bool, str]:
    """Whether the heartbeat is alive: its newest acknowledgement at most `fresh_s` seconds old."""
    now = time.time()
    newest = read_window(ledger_dir, now - 60, now + 1)
    if not newest:
        return False, "no acknowledged heartbeat in the last 60 s"
    age = now - newest[-1][1]
    return age <= fresh_s, f"newest acknowledgement {age:.1f} s ago"
