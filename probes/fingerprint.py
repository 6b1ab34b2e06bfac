"""The fingerprint of the application table: every row that exists, whoever wrote it and whenever,
so that harm to data the run never wrote (rows from before the run, from other clients) is seen.

    take(path, target)             every row's key, a hash of the whole row (every column) and its
                                   created_at, streamed with COPY from one repeatable-read snapshot
                                   into `path`; returns {ok, rows, taken_epoch, seconds, port}
    compare(before, after)         what happened to the rows of `before` in `after`: lost, changed
                                   (with samples of keys and the created_at of every lost row),
                                   and each file's row count and order-independent digest

A plain SELECT in a repeatable-read, read-only transaction: it takes no lock that blocks the
service's inserts (MVCC), and COPY streams the rows to disk without building them in memory.
bench/fingerprint.py measures its cost (rows/s) and the insert latency of the service beside it.
"""
from __future__ import annotations

import time
from pathlib import Path

import psycopg

from harness.core.errors import first_line
from harness.targets import description as target_mod

__all__ = ["take", "compare", "APP_TABLE"]

APP_TABLE = "optimization_results"
# One line per row: key, a 64-bit hash of the row's text (every column; TimeZone fixed so the
# rendering is stable), created_at as epoch seconds. COPY's text format escapes tabs in values.
_QUERY = (f"COPY (SELECT request_id, hashtextextended(r::text, 0), extract(epoch from created_at) "
          f"FROM {APP_TABLE} r) TO STDOUT")
_MASK = (1 << 64) - 1


def take(path: str | Path, target: str | None = None, dsn: str | None = None, timeout_s: float = 30.0) -> dict:
    """Write the fingerprint of every row now in the table to `path`. Never raises: a failure is
    {ok: False, error}."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        dsn = dsn or target_mod.load(target)["app_dsn"]
        with psycopg.connect(dsn, options="-c TimeZone=UTC", connect_timeout=max(1, int(timeout_s))) as c:
            c.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            c.read_only = True
            taken = c.execute("select extract(epoch from clock_timestamp())::float8").fetchone()[0]
            with open(path, "wb") as out, c.cursor().copy(_QUERY) as copy:
                for chunk in copy:
                    out.write(chunk)
            port = c.info.port
            c.rollback()
    except (psycopg.Error, OSError, target_mod.TargetError) as e:
        return {"ok": False, "error": f"fingerprint of {APP_TABLE}: {first_line(e)}",
                "seconds": round(time.monotonic() - started, 3)}
    rows = _count_lines(path)
    return {"ok": True, "rows": rows, "taken_epoch": round(float(taken), 6), "port": port,
            "seconds": round(time.monotonic() - started, 3), "file": str(path)}


def compare(before: str | Path, after: str | Path, sample: int = 20, created_cap: int = 20000) -> dict:
    """The rows of `before` as they are in `after`: lost (absent now) and changed (present, a
    different hash). Returns counts, up to `sample` keys of each, the created_at (epoch) of lost
    rows sorted oldest first (at most `created_cap`, `lost_created_complete` says whether all),
    and each side's row count and order-independent digest (sum of row hashes mod 2^64)."""
    was: dict[str, tuple[int, float]] = {}
    digest_before = 0
    for key, h, created in _rows(before):
        was[key] = (h, created)
        digest_before = (digest_before + h) & _MASK
    rows_before = len(was)
    rows_now, digest_now = 0, 0
    changed: list[str] = []
    changed_count = 0
    for key, h, _ in _rows(after):
        rows_now += 1
        digest_now = (digest_now + h) & _MASK
        old = was.pop(key, None)
        if old is not None and old[0] != h:
            changed_count += 1
            if len(changed) < sample:
                changed.append(key)
    lost = sorted(was.items(), key=lambda kv: kv[1][1])  # oldest first
    return {"rows_before": rows_before, "rows_now": rows_now,
            "digest_before": f"{digest_before:016x}", "digest_now": f"{digest_now:016x}",
            "lost": len(lost), "lost_sample": [k for k, _ in lost[:sample]],
            "lost_created_epoch": [round(c, 6) for _, (_, c) in lost[:created_cap]],
            "lost_created_complete": len(lost) <= created_cap,
            "changed": changed_count, "changed_sample": changed}


# Internals ---------------------------------------------------------------------------------

def _rows(path: str | Path):
    with open(path, "rb") as f:
        for line in f:
            key, h, created = line.rstrip(b"\n").split(b"\t")
            yield key.decode("utf-8", "replace"), int(h) & _MASK, float(created) if created != b"\\N" else 0.0


def _count_lines(path: str | Path) -> int:
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
    return n
