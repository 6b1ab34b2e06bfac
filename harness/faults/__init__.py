"""Faults: plain functions that inject one fault each, callable from an experiment, from Python
and from a test the same way. Each returns a JSON-able record of exactly what it did, with the
evidence of its effect.

A fault that leaves something behind (a stopped process, a held restart, a moved volume) registers
its undo here BEFORE it injects: in this process (a function: the rollback and `undo_all()`, the
safety net the runner calls after every run, Ctrl-C, SIGTERM or an exception) and, with `spec`,
durably in the stack home's fault ledger (harness/records/fault_ledger.py) with a deadline, so that the
target side undoes it even if this process is SIGKILLed (harness/targets/reaper.py).
"""
from __future__ import annotations

import atexit
import threading
from typing import Callable

from harness.records import fault_ledger

_pending: dict[str, tuple[Callable[[], object], str | None]] = {}  # key -> (undo, stack home of its ledger entry)
_lock = threading.Lock()


def register_undo(key: str, undo: Callable[[], object], *, home: str | None = None, spec: dict | None = None,
                  lease_s: float | None = None, run_dir: str | None = None) -> None:
    """Remember how to undo `key`. With `home` and `spec` (an undo the reaper can carry out) the
    entry is also written to the fault ledger, to expire after `lease_s` seconds."""
    if home and spec:
        fault_ledger.clear_what(home, key)  # a fault registered again replaces its entry
        fault_ledger.record(home, key, spec, lease_s or DEFAULT_LEASE_S, run_dir)
    with _lock:
        _pending[key] = (undo, home if spec else None)


def clear_undo(key: str) -> None:
    with _lock:
        _, home = _pending.pop(key, (None, None))
    if home:
        fault_ledger.clear_what(home, key)


def pending() -> list[str]:
    with _lock:
        return list(_pending)


def undo_all() -> list[str]:
    """Run every registered undo (newest first); return what was undone. Never raises."""
    done = []
    while True:
        with _lock:
            if not _pending:
                break
            key = next(reversed(_pending))
            undo, home = _pending.pop(key)
        try:
            undo()
            if home:
                fault_ledger.clear_what(home, key)
            done.append(key)
        except Exception as e:  # keep undoing the rest
            done.append(f"{key} (undo failed: {e})")
    return done


# A lease when the experiment gives none (no run session): long enough for any scenario's timeout.
DEFAULT_LEASE_S = 900.0

atexit.register(undo_all)
