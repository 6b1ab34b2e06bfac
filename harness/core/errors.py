"""Errors shared by every layer, and how an error becomes one line for a person.

The bottom layer: imports nothing of ours.
"""
from __future__ import annotations

__all__ = ["UsageError", "first_line"]


class UsageError(Exception):
    """Bad input from the person at the keyboard: printed as one line, exit 2, nothing injected."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (or its type's name when it has none): what a
    person needs in a one-line error, without the tracebacks and hints some libraries append."""
    text = str(e).strip()
    return text.splitlines()[0].strip() if text else type(e).__name__
