"""The one amcheck: is a PostgreSQL table's data sound? verify_heapam on the heap, then
bt_index_check(heapallindexed) on every index, and the unique index on the key required.

Used by the integrity check (probes.database.check_amcheck), the backup verification (on its
scratch cluster), the corruption fault (its evidence) and the corruption rollback (is there damage
to restore?). It works on an open superuser connection and imports nothing of ours but the
error wording."""
from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from harness.core.errors import first_line

__all__ = ["Amcheck", "amcheck", "APP_TABLE"]

APP_TABLE = "optimization_results"


@dataclass
class Amcheck:
    """What amcheck says of one table: `ok` only when the heap is clean, every B-tree index checks
    with heapallindexed, and the table keeps its unique index on the key."""
    ok: bool
    detail: str
    problems: list = field(default_factory=list)  # verify_heapam's rows: {block, item, msg}
    problem_count: int = 0
    rows: int | None = None
    newest: object = None   # max(created_at): how recent the data checked is
    indexes: int = 0


def amcheck(c: psycopg.Connection, table: str = APP_TABLE, max_problems: int = 1000) -> Amcheck:
    """The one amcheck, over an open superuser connection: verify_heapam on `table`, then
    bt_index_check(heapallindexed) on every index of it, and the unique index on request_id
    required. Used by the integrity check, the backup verification (on its scratch cluster), the
    corruption fault (its evidence) and the corruption rollback (is there damage to restore?)."""
    try:
        c.execute("create extension if not exists amcheck")
        if not c.execute("select to_regclass(%s)", (table,)).fetchone()[0]:
            return Amcheck(False, f"table {table} does not exist", rows=0)
        bad = c.execute("select blkno, offnum, msg from verify_heapam(%s::regclass) limit %s",
                        (table, max_problems)).fetchall()
    except psycopg.Error as e:
        return Amcheck(False, f"amcheck on {table}: {first_line(e)}")
    if bad:
        problems = [{"block": b, "item": o, "msg": m} for b, o, m in bad]
        blocks = sorted({b for b, _, _ in bad})
        return Amcheck(False, f"verify_heapam on {table}: {len(bad)} problem(s) in blocks {blocks[:20]}, first: "
                              f"block {bad[0][0]} item {bad[0][1]}: {bad[0][2]}", problems=problems,
                       problem_count=len(bad))
    try:
        indexes = [r[0] for r in c.execute(
            "select i.indexrelid::regclass::text from pg_index i where i.indrelid = %s::regclass", (table,)).fetchall()]
        # The unique index on request_id is what keeps one row per key: without it duplicates go
        # unseen (the final read keys rows by request_id) and there is nothing to check it with.
        unique = c.execute("select count(*) from pg_index i join pg_attribute a on a.attrelid = i.indrelid "
                           "and a.attnum = any(i.indkey) where i.indrelid = %s::regclass and i.indisunique "
                           "and i.indisvalid and i.indnatts = 1 and a.attname = 'request_id'", (table,)).fetchone()[0]
        if not unique:
            return Amcheck(False, f"{table} has no valid unique index on request_id", indexes=len(indexes))
        for idx in indexes:
            c.execute("select bt_index_check(%s::regclass, heapallindexed => true)", (idx,))
        rows, newest = c.execute(f"select count(*), max(created_at) from {table}").fetchone()
    except psycopg.Error as e:
        return Amcheck(False, f"amcheck on {table}: {first_line(e)}")
    return Amcheck(True, f"{len(indexes)} indexes and the heap of {table} verified ({rows} rows)", rows=rows,
                   newest=newest, indexes=len(indexes))
