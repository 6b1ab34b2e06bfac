"""The fingerprint of the application table: every row that exists, whoever wrote it and whenever,
so that harm to data the run never wrote (rows from before the run, from other clients) is seen.

    take(path, target)             every row's key, a hash of the whole row (every column) and its
                                   created_at, streamed with COPY from one repeatable-read snapshot
                                   (exported to two readers, each a half of the table's pages) into
                                   `path`; returns {ok, rows, taken_epoch, seconds, port}
    compare(before, after)         what happened to the rows of `before` in `after`: lost, changed
                                   (with samples of keys and the created_at of every lost row),
                                   and each file's row count and order-independent digest

Plain SELECTs in repeatable-read, read-only transactions sharing one exported snapshot: they take
no lock that blocks the service's inserts (MVCC); each half of the table's pages is streamed to
disk by psql's \\copy (C, no Python loop per row) on its own core.
bench/fingerprint.py measures its cost (rows/s) and the insert latency of the service beside it.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from harness.core.errors import first_line
from harness.targets import description as target_mod

__all__ = ["take", "compare", "APP_TABLE"]

APP_TABLE = "optimization_results"
# One line per row: key, a 64-bit hash of the whole row (every column, by each type's own hash
# function: no text rendering of the jsonb), created_at as epoch seconds. COPY's text format
# escapes tabs in values.
_ROWS = ("SELECT request_id, hash_record_extended(r, 0), extract(epoch from created_at) "
         f"FROM {APP_TABLE} r WHERE ctid >= '({{first}},0)'{{until}}")
_MASK = (1 << 64) - 1
PARTS = 2  # page ranges read at once, each by its own psql (C, not a Python loop per row), on one snapshot


def take(path: str | Path, target: str | None = None, dsn: str | None = None, timeout_s: float = 60.0,
         parts: int = PARTS) -> dict:
    """Write the fingerprint of every row now in the table to `path` (and `path`.1 …, one file a
    page range). One repeatable-read snapshot, exported to every reader, so the parts add up to
    one instant. Never raises: a failure is {ok: False, error}."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    files = [path if i == 0 else path.with_name(f"{path.name}.{i}") for i in range(parts)]
    try:
        dsn = dsn or target_mod.load(target)["app_dsn"]
        with psycopg.connect(dsn, options="-c TimeZone=UTC", connect_timeout=10) as c:
            c.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            c.read_only = True
            snapshot, taken, pages = c.execute(
                "select pg_export_snapshot(), extract(epoch from clock_timestamp())::float8, "
                f"pg_relation_size('{APP_TABLE}') / current_setting('block_size')::int").fetchone()
            port = c.info.port
            bounds = [int(pages) * i // parts for i in range(parts + 1)]
            readers = [_reader(dsn, snapshot, bounds[i], bounds[i + 1] if i + 1 < parts else None, files[i])
                       for i in range(parts)]
            problems = [_wait(r, timeout_s) for r in readers]
            c.rollback()
        problems = [p for p in problems if p]
        if problems:
            raise OSError(problems[0])
    except (psycopg.Error, OSError, target_mod.TargetError) as e:
        return {"ok": False, "error": f"fingerprint of {APP_TABLE}: {first_line(e)}",
                "seconds": round(time.monotonic() - started, 3)}
    rows = sum(_count_lines(f) for f in files)
    return {"ok": True, "rows": rows, "taken_epoch": round(float(taken), 6), "port": port, "parts": parts,
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

def _reader(dsn: str, snapshot: str, first: int, until: int | None, out: Path) -> subprocess.Popen:
    """psql reading pages [first, until) of the table under the exported snapshot into `out`."""
    query = _ROWS.format(first=first, until=f" AND ctid < '({until},0)'" if until is not None else "")
    script = (f"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\nSET TRANSACTION SNAPSHOT '{snapshot}';\n"
              f"SET TimeZone = 'UTC';\n\\copy ({query}) TO '{out}'\nCOMMIT;\n")
    proc = subprocess.Popen([_psql(), dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    proc.stdin.write(script)
    proc.stdin.close()
    return proc


def _wait(proc: subprocess.Popen, timeout_s: float) -> str | None:
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return f"psql did not finish within {timeout_s:g} s"
    err = proc.stderr.read().strip()
    return None if proc.returncode == 0 else (err.splitlines()[-1] if err else f"psql exited {proc.returncode}")


def _psql() -> str:
    return shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"


def _parts(path: str | Path) -> list[Path]:
    path = Path(path)
    return [path, *sorted(path.parent.glob(f"{path.name}.[0-9]*"))]


def _rows(path: str | Path):
    for part in _parts(path):
        with open(part, "rb") as f:
            for line in f:
                key, h, created = line.rstrip(b"\n").split(b"\t")
                yield key.decode("utf-8", "replace"), int(h) & _MASK, float(created) if created != b"\\N" else 0.0


def _count_lines(path: str | Path) -> int:
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
    return n
