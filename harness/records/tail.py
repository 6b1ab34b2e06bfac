"""Following a JSONL file as it grows: the run's history (and the stack's alerts log) read live.

A tail remembers how far it has read and reads only what was appended since: a 300 s scenario's
history grows by tens of megabytes and is never read twice. A line still being written (no newline
yet) waits for the next read. Lines that are not JSON objects are counted and skipped, never
raised: a live view must go on showing what it can. Kinds the reader does not know pass through
(the history gains kinds over time); deciding what they mean is the reader's business.

    tail = JsonlTail(path)
    tail.lines()  -> the complete lines appended since the last call (bytes), for readers that
                     parse only some of them (the load's hundreds of writes a second need no JSON)
    tail.read()   -> the same lines as events (dicts)
    parse(line)   -> one line as an event, or None (counted in tail.unreadable)

The bottom layer: imports nothing of ours.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["JsonlTail"]

READ_CHUNK_BYTES = 4 << 20  # one read at most; a reader far behind catches up over several reads


class JsonlTail:
    """Incremental reader of one append-only JSONL file. Not thread-safe: one reader each.
    `from_end`: start at the file's current end (only what is appended from now on)."""

    def __init__(self, path: str | os.PathLike, from_end: bool = False):
        self.path = Path(path)
        self.offset = 0
        self.unreadable = 0
        self._partial = b""
        if from_end:
            try:
                self.offset = self.path.stat().st_size
            except OSError:
                self.offset = 0

    def lines(self, max_bytes: int = READ_CHUNK_BYTES) -> list[bytes]:
        """The complete lines appended since the last call (about `max_bytes` at most); [] when
        nothing is new or the file does not exist (yet)."""
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self.offset:  # the file was replaced: start over
                    self.offset, self._partial = 0, b""
                if size == self.offset:
                    return []
                f.seek(self.offset)
                data = f.read(max_bytes)
        except OSError:
            return []
        self.offset += len(data)
        data = self._partial + data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._partial = data
            return []
        self._partial = data[cut + 1:]
        return [line for line in data[:cut].split(b"\n") if line.strip()]

    def parse(self, line: bytes) -> dict | None:
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            self.unreadable += 1
            return None
        return event

    def read(self, max_bytes: int = READ_CHUNK_BYTES) -> list[dict]:
        """The events appended since the last read, in file order."""
        return [e for e in map(self.parse, self.lines(max_bytes)) if e is not None]

    @property
    def behind(self) -> bool:
        """Is there more in the file than has been read?"""
        try:
            return self.path.stat().st_size > self.offset
        except OSError:
            return False
