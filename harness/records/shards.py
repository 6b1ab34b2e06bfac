"""The load's ledger shards on disk: one JSONL file per load worker, next to the run's history.

With distributed load (harness/recorders/distributed.py) the locust master writes what each
worker sends it, as the worker recorded it (its own wall clock), into
`<run folder>/ledger-shards/<worker>.jsonl`; the record format:

  {"kind": "shard", "worker", "host", "anchor_t", "anchor_wall_s", "key_prefix"?}   once, first
  {"kind": "clock", "worker", "offset_s", "uncertainty_s", "rtt_s", "wall_s"}         one or more
  {"kind": "op", "type", "f", "key", "wall_s", "digest"?, "error"?}                   the writes

Each worker's clock offset from the master's is estimated NTP-style (offset = master time -
midpoint of the round trip, uncertainty = half the round trip); the master's shard header ties its
wall clock to the run's `t` (anchor).
The history stays the single source of truth for everything else; whoever judges a run reads
both, merged onto the run's clock here (the checkers judge how well the clocks agree):

    shard_dir(history_path)     where a run's shards live
    read_shards(folder)         every shard, as lists of records (a torn last line is skipped)
    run_events(history_path)    the history's events with the shards merged onto the run's clock
    merge_shards(events, shards) the same, from events and shards already read (pure)
    shard_clock(records)        one shard's clock offset and its uncertainty
    ShardWriter(folder, worker) append-only writer of one worker's shard
"""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import Any
from pathlib import Path

from harness.records import history as history_mod

__all__ = ["SHARD_DIR", "MARKER", "shard_dir", "read_shards", "run_events", "merge_shards", "shard_clock", "ShardWriter",
           "safe_worker_id"]

SHARD_DIR = "ledger-shards"
MARKER = "ledger_shards"  # the marker merge_shards leaves, read by harness.checkers.shards
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


def run_events(history_path: str | os.PathLike, tolerant: bool = False) -> list[dict]:
    """The run's history with its ledger shards merged, if any. A bad line raises HistoryError,
    unless `tolerant` (history.read's tolerant mode: it is skipped and said in a marker)."""
    events = history_mod.read(history_path, tolerant=tolerant)
    return merge_shards(events, read_shards(shard_dir(history_path)))


def shard_clock(records: list[dict]) -> tuple[float | None, float | None]:
    """(offset_s, uncertainty_s) of one shard: the offset of its sharpest estimate, and an
    uncertainty that covers every estimate (each one's own half round trip plus how far it lies
    from the chosen offset, so a clock that drifted during the run widens it). (None, None) when
    the shard carries no estimate."""
    clocks = [r for r in records if r.get("kind") == "clock" and _num(r.get("offset_s")) and _num(r.get("uncertainty_s"))]
    if not clocks:
        return None, None
    best = min(clocks, key=lambda r: r["uncertainty_s"])
    offset = float(best["offset_s"])
    uncertainty = max(float(r["uncertainty_s"]) + abs(float(r["offset_s"]) - offset) for r in clocks)
    return offset, uncertainty


def merge_shards(events: list[dict], shards: list[list[dict]]) -> list[dict]:
    """The run's events with every shard's write operations placed on the run's clock:
    t = worker wall + offset (→ master wall) - anchor wall + anchor t. Returns a new list ordered
    by t; without shards, the events unchanged. A shard without a clock estimate is still merged
    (offset 0) but makes the uncertainty unknown; a key used by more than one writer (two workers,
    or a worker and the history's own load) is listed as a collision: outcomes of such keys cannot
    be told apart."""
    if not shards:
        return list(events)
    writers_of: dict[Any, set] = {}
    for e in events:
        if e["kind"] == "op" and e.get("type") == "invoke":
            writers_of.setdefault(e["key"], set()).add(None)  # None: the history's own writer
    merged = list(events)
    workers: dict[str, dict] = {}
    problems: list[str] = []
    ids = Counter()
    for n, records in enumerate(shards):
        header = next((r for r in records if r.get("kind") == "shard"), None)
        worker = str(header.get("worker")) if header and header.get("worker") is not None else f"shard-{n}"
        ids[worker] += 1
        if header is None or not (_num(header.get("anchor_t")) and _num(header.get("anchor_wall_s"))):
            problems.append(f"ledger shard of {worker} has no anchor to the run's clock")
            anchor_t, anchor_wall = 0.0, 0.0
        else:
            anchor_t, anchor_wall = float(header["anchor_t"]), float(header["anchor_wall_s"])
        offset, uncertainty = shard_clock(records)
        if offset is None:
            problems.append(f"worker {worker} recorded no clock offset estimate")
        unreadable = [r.get("line") for r in records if r.get("kind") == "unreadable"]
        if unreadable:  # an acknowledgement may be among them: the loss cannot be known
            problems.append(f"ledger shard of {worker} has {len(unreadable)} unreadable line(s) (first: line {unreadable[0]})")
        ops = 0
        for r in records:
            if r.get("kind") != "op" or not _num(r.get("wall_s")):
                continue
            t = float(r["wall_s"]) + (offset or 0.0) - anchor_wall + anchor_t
            op = {k: v for k, v in r.items() if k not in ("wall_s", "kind")}
            merged.append({"kind": "op", "t": round(t, 6), **op, "worker": worker, "worker_wall_s": r["wall_s"]})
            if r.get("type") == "invoke":
                writers_of.setdefault(r["key"], set()).add(worker)
            ops += 1
        workers[worker] = {"offset_s": offset, "uncertainty_s": uncertainty, "ops": ops,
                           "host": header.get("host") if header else None}
    problems += [f"worker id {w} used by {k} shards" for w, k in ids.items() if k > 1]
    collisions = sorted(str(k) for k, who in writers_of.items() if len(who) > 1)
    if collisions:
        problems.append(f"{len(collisions)} keys written by more than one writer (e.g. {collisions[0]})")
    known = [w["uncertainty_s"] for w in workers.values()]
    uncertainty = None if any(u is None for u in known) else max(known, default=0.0)
    # One line per worker: the marker is also drawn on the report's timeline.
    merged.append({"kind": "marker", "name": MARKER, "t": min((e["t"] for e in merged), default=0.0),
                   "workers": [_describe(w, c) for w, c in workers.items()], "uncertainty_s": _r(uncertainty),
                   "collision_count": len(collisions), "error": "; ".join(problems) or None,
                   **({"collisions": collisions[:50]} if collisions else {})})
    merged.sort(key=lambda e: e["t"])
    return merged


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


# Internals ---------------------------------------------------------------------------------

def _describe(worker: str, c: dict) -> str:
    if c["offset_s"] is None:
        return f"{worker}: no clock estimate, {c['ops']} ops"
    return (f"{worker}@{c['host'] or '?'}: offset {1000 * c['offset_s']:+.3f} ms ± {1000 * c['uncertainty_s']:.3f} ms, "
            f"{c['ops']} ops")


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)
