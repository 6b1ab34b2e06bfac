"""Faults: plain functions that inject one fault each, callable from an experiment, from Python
and from a test the same way. Each returns a JSON-able record of exactly what it did.

A fault that leaves something behind (a stopped process, a held restart, a moved volume) registers
its undo here; its rollback clears it. `undo_all()` is the safety net the runner calls at the end
of every run, after Ctrl-C, SIGTERM or an exception: a fault, once injected, is always rolled back.
"""
from __future__ import annotations

import atexit
import threading
from typing import Callable

_pending: dict[str, Callable[[], object]] = {}
_lock = threading.Lock()


def register_undo(key: str, undo: Callable[[], object]) -> None:
    with _lock:
        _pending[key] = undo


def clear_undo(key: str) -> None:
    with _lock:
        _pending.pop(key, None)


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
            undo = _pending.pop(key)
        try:
            undo()
            done.append(key)
        except Exception as e:  # keep undoing the rest
            done.append(f"{key} (undo failed: {e})")
    return done


atexit.register(undo_all)
