"""The load's ledger shards on disk: one JSONL file per load worker, next to the run's history.

With distributed load (harness/recorders/distributed.py) the locust master writes what each
worker sends it, as the worker recorded it (its own wall clock), into
`<run folder>/ledger-shards/<worker>.jsonl`; the record format is in harness/checkers/shards.py.
The history stays the single source of truth for everything else; whoever judges a run reads
both and merges them with the pure checkers.merge_shards:

    shard_dir(history_path)     where a run's shards live
    read_shards(folder)         every shard, as lists of records (a torn last line is skipped)
    run_events(history_path)    the history's events with the shards merged onto the run's clock
    ShardWriter(folder, worker) append-only writer of one worker's shard
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from harness import history as history_mod
from harness.checkers.shards import merge_shards

__all__ = ["SHARD_DIR", "shard_dir", "read_shards", "run_events", "ShardWriter", "safe_worker_id"]

SHARD_DIR = "ledger-shards"
UNREADABLE = "unreadable"  # a record for a shard line that does not parse (not a torn last line)


def shard_dir(history_path: str | os.PathLike) -> Path:
    return Path(history_path).parent / SHARD_DIR


def safe_worker_id(raw: str) -> str:
    """A worker id usable in a file name and in a request key (the API takes [A-Za-z0-9._:-])."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", raw).strip(".-") or "worker"
    return cleaned[:40]


def read_shards(folder: str | os.PathLike) -> list[list[dict]]:
    """Every `*.jsonl` shard in `folder`, in name order; [] when there is none. A torn last line
    (a master killed mid-write) is skipped: its write then has no recorded outcome, which the loss
    checker counts as unknown. Any other line that does not parse becomes an `unreadable` record:
    a record lost in the middle (an acknowledgement among them) makes the shard unjudgeable."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    shards = []
    for path in sorted(folder.glob("*.jsonl")):
        text = path.read_text(errors="replace")
        lines = text.splitlines()
        records = []
        for n, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if isinstance(record, dict):
                records.append(record)
            elif not (n == len(lines) and not text.endswith("\n")):
                records.append({"kind": UNREADABLE, "line": n})
        shards.append(records)
    return shards


def run_events(history_path: str | os.PathLike) -> list[dict]:
    """The run's history (HistoryError on a bad line) with its ledger shards merged, if any."""
    events = history_mod.read(history_path)
    return merge_shards(events, read_shards(shard_dir(history_path)))


class ShardWriter:
    """Appends one worker's records to its shard, one whole line per write (O_APPEND)."""

    def __init__(self, folder: str | os.PathLike, worker: str):
        self.path = Path(folder) / f"{safe_worker_id(worker)}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, records: list[dict]) -> None:
        if records:
            os.write(self._fd, "".join(json.dumps(r, separators=(",", ":"), default=str) + "\n"
                                       for r in records).encode())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
