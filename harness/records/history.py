"""The run's event history: append-only JSONL, the single source of truth for every verdict.

One JSON object per line, each with `kind`, `t` (seconds since the run's start on the system-wide
monotonic clock, so several processes agree) and `wall` (UTC ISO-8601). Recorders and the control
only append; checkers only read (see harness/checkers/).

Kinds and their fields:
  sample      probe, ok, latency_s, error?            one health/critical-path check
  op          type (invoke|ok|fail|info), f (write|read), key, value?, process?
  fault       phase (start|end), name, detail?, ok?   ok False: the fault action itself failed
  recovery    phase (start|end), name, ok?
  heartbeat   acked [[key, t], …], window_s, ok, error?   heartbeat ledger acknowledgements in the read
                                                      window, on this run's clock (recorders/heartbeat.py)
  final_read  keys, ok, error?                        every attempted key found after recovery
  integrity   check, ok, detail                       data integrity verified after recovery
  function    name, ok, detail                        a critical function checked after recovery
  detection   alert, fired, latency_s?, resolved?     the monitoring noticed (Prometheus's own timestamps)
  rpo_exposure alert, fired, latency_s?, exposure_at_alert_s?, max_exposure_s?   the RPO exposure
                                                      when the warning fired (Prometheus's own samples)
  stall       recorder, gap_s, expected_s             a recorder could not keep its schedule
  step        phase (start|end), name, section (method|rollback), index, type (action|probe),
              provider (python|process|http), tags, ok?, detail?   every step, whatever its provider
  fingerprint phase (before|after), ok, rows?, taken_epoch?, taken_t?, lost?, changed?, samples…
                                                      the whole table before the fault and after recovery
  after_rollbacks steady_state {met, detail}, read {ok, digests}, fingerprint {lost, changed, …}
                                                      the system checked again once every rollback ran
  marker      name, detail?                           anything else worth a line on the timeline;
                                                      names the verdict reads: steady_state {met, phase
                                                      before|after}, interrupted {signal}, observe_end
"""
from __future__ import annotations

import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

KINDS = ("sample", "op", "fault", "recovery", "heartbeat", "final_read", "integrity", "function", "detection",
         "rpo_exposure", "stall", "marker", "step", "fingerprint", "after_rollbacks")
REQUIRED = {
    "sample": ("probe", "ok"),
    "op": ("type", "f", "key"),
    "fault": ("phase", "name"),
    "recovery": ("phase", "name"),
    "heartbeat": ("acked",),
    "final_read": ("keys",),
    "integrity": ("check", "ok"),
    "function": ("name", "ok"),
    "detection": ("alert", "fired"),
    "rpo_exposure": ("alert", "fired"),
    "stall": ("recorder", "gap_s"),
    "marker": ("name",),
    "step": ("phase", "name"),
    "fingerprint": ("phase",),
    "after_rollbacks": ("steady_state",),
}
OP_TYPES = ("invoke", "ok", "fail", "info")
UNREADABLE_MARKER = "unreadable_lines"  # tolerant reading: how many lines were skipped


class HistoryError(ValueError):
    """A history file or event that does not follow the format above."""


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def validate_event(event: Any, where: str = "event") -> dict:
    if not isinstance(event, dict):
        raise HistoryError(f"{where}: expected a JSON object, got {type(event).__name__}")
    kind = event.get("kind")
    if kind not in KINDS:
        raise HistoryError(f"{where}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    if not isinstance(event.get("t"), (int, float)) or isinstance(event.get("t"), bool):
        raise HistoryError(f"{where}: field 't' must be a number of seconds, got {event.get('t')!r}")
    for field in REQUIRED[kind]:
        if field not in event:
            raise HistoryError(f"{where}: {kind} event lacks field {field!r}")
    if kind == "op" and event["type"] not in OP_TYPES:
        raise HistoryError(f"{where}: op type {event['type']!r} is not one of {', '.join(OP_TYPES)}")
    return event


class History:
    """Appends events to a JSONL file. Safe across threads; across processes each line is one
    O_APPEND write, which Linux keeps whole for lines this small."""

    def __init__(self, path: str | os.PathLike, t0: float | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Another process appending to the same run (the load generator) is handed the run's t0.
        self.t0 = time.monotonic() if t0 is None else t0
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def append(self, kind: str, t: float | None = None, **fields: Any) -> dict:
        event = {"kind": kind, "t": round(self.now() if t is None else t, 6), "wall": utc_now(), **fields}
        validate_event(event)
        line = (json.dumps(event, separators=(",", ":"), default=str) + "\n").encode()
        with self._lock:
            os.write(self._fd, line)
        return event

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_lines(lines: Iterable[str], source: str = "history", tolerant: bool = False) -> list[dict]:
    """Events from JSONL lines, ordered by `t`. A bad line raises HistoryError naming it; with
    `tolerant` (a report must still say what it can of a run killed mid-write) bad lines are
    skipped and one `unreadable_lines` marker says how many, and which came first."""
    events, skipped, first = [], 0, None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            events.append(validate_event(event, f"{source}:{n}"))
        except json.JSONDecodeError as e:
            problem = HistoryError(f"{source}:{n}: not valid JSON ({e.msg})")
            if not tolerant:
                raise problem from None
            skipped, first = skipped + 1, first or problem
        except HistoryError as e:
            if not tolerant:
                raise
            skipped, first = skipped + 1, first or e
    # Several processes append; order by time, keeping file order for equal times.
    events.sort(key=lambda e: e["t"])
    if skipped:
        events.insert(0, {"kind": "marker", "t": events[0]["t"] if events else 0.0, "name": UNREADABLE_MARKER,
                          "count": skipped, "detail": str(first)})
    return events


def read(path: str | os.PathLike, tolerant: bool = False) -> list[dict]:
    """Read a history file, ordered by `t`. Raises HistoryError naming the first bad line, unless
    `tolerant` (see parse_lines)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace" if tolerant else "strict")
    except OSError as e:
        raise HistoryError(f"{p}: cannot read history ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise HistoryError(f"{p}: not UTF-8 text ({e.reason})") from None
    return parse_lines(text.splitlines(), str(p), tolerant=tolerant)
