"""Database probes: writability, replication, WAL archiving, amcheck integrity, the final read."""
from __future__ import annotations

import time

import psycopg

from harness import target as target_mod
from harness.api_contract import DIGEST_FIELDS, stored_digest
from harness.errors import first_line
from harness.pgroles import admin_dsn, passfile_of, server_dsn

__all__ = ["primary_writable", "standby_streaming", "wal_archiving_healthy", "check_primary_writable",
           "check_standby_streaming", "check_wal_archiving", "check_amcheck", "amcheck", "read_keys", "read_back", "APP_TABLE"]

APP_TABLE = "optimization_results"


def check_primary_writable(target: str | None = None) -> tuple[bool, str]:
    """A server accepts writes on the application's DSN."""
    t = target_mod.load(target)
    try:
        with psycopg.connect(t["app_dsn"], autocommit=True) as c:
            port = c.info.port
            c.execute("select txid_current()")
        return True, f"writable server on port {port}"
    except psycopg.Error as e:
        return False, f"no writable server: {first_line(e)}"


def check_standby_streaming(target: str | None = None, timeout_s: float = 10.0) -> tuple[bool, str]:
    """A row written on the primary becomes visible on a streaming standby."""
    t = target_mod.load(target)
    try:
        with psycopg.connect(admin_dsn(t, "postgres"), autocommit=True) as c:
            primary_port = c.info.port
            rows = c.execute("select client_port, state from pg_stat_replication").fetchall()
            if not any(state == "streaming" for _, state in rows):
                return False, f"primary on port {primary_port} has no streaming standby"
            c.execute("create table if not exists gameday_replication_probe (id int primary key, t timestamptz)")
            c.execute("insert into gameday_replication_probe values (1, now()) on conflict (id) do update set t = now()")
            lsn = c.execute("select pg_current_wal_lsn()").fetchone()[0]
    except psycopg.Error as e:
        return False, f"primary: {first_line(e)}"
    standby_port = t["standby"]["port"] if primary_port == t["primary"]["port"] else t["primary"]["port"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(server_dsn(standby_port, passfile=passfile_of(t)), autocommit=True) as c:
                if c.execute("select pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
                    return True, f"standby on port {standby_port} replayed the probe write"
        except psycopg.Error:
            pass
        time.sleep(0.1)
    return False, f"standby on port {standby_port} did not replay the probe write within {timeout_s:.0f} s"


def check_wal_archiving(target: str | None = None, timeout_s: float = 15.0) -> tuple[bool, str]:
    """A forced WAL segment switch is archived (archive_command works)."""
    t = target_mod.load(target)
    try:
        with psycopg.connect(admin_dsn(t, "postgres"), autocommit=True) as c:
            before = c.execute("select archived_count, failed_count from pg_stat_archiver").fetchone()
            c.execute("select txid_current()")
            c.execute("select pg_switch_wal()")
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                now = c.execute("select archived_count, failed_count, last_failed_wal from pg_stat_archiver").fetchone()
                if now[0] > before[0]:
                    return True, f"archived {now[0] - before[0]} segment(s)"
                time.sleep(0.2)
            return False, f"no segment archived within {timeout_s:.0f} s (failed {now[1]}, last failed {now[2]})"
    except psycopg.Error as e:
        return False, f"archiver: {first_line(e)}"


def amcheck(c: psycopg.Connection) -> tuple[bool, str, int | None, object]:
    """amcheck on the application table over an open superuser connection: every B-tree index
    with heapallindexed, and verify_heapam. Returns (ok, detail, rows, newest created_at); also
    used by the backup verification on its scratch cluster."""
    try:
        c.execute("create extension if not exists amcheck")
        if not c.execute("select to_regclass(%s)", (APP_TABLE,)).fetchone()[0]:
            return False, f"table {APP_TABLE} does not exist", 0, None
        indexes = [r[0] for r in c.execute(
            "select i.indexrelid::regclass::text from pg_index i join pg_class c on c.oid = i.indrelid "
            "where c.relname = %s", (APP_TABLE,)).fetchall()]
        for idx in indexes:
            c.execute("select bt_index_check(%s::regclass, heapallindexed => true)", (idx,))
        bad = c.execute(f"select blkno, offnum, msg from verify_heapam('{APP_TABLE}') limit 5").fetchall()
        rows, newest = c.execute(f"select count(*), max(created_at) from {APP_TABLE}").fetchone()
    except psycopg.Error as e:
        return False, f"amcheck on {APP_TABLE}: {first_line(e)}", None, None
    if bad:
        return False, f"verify_heapam on {APP_TABLE}: " + "; ".join(f"block {b} item {o}: {m}" for b, o, m in bad), rows, newest
    return True, f"{len(indexes)} indexes and the heap of {APP_TABLE} verified ({rows} rows)", rows, newest


def check_amcheck(target: str | None = None) -> tuple[bool, str]:
    """amcheck on the application tables: every B-tree index with heapallindexed, and verify_heapam."""
    t = target_mod.load(target)
    try:
        with psycopg.connect(admin_dsn(t), autocommit=True) as c:
            ok, detail, _, _ = amcheck(c)
    except psycopg.Error as e:
        return False, f"amcheck on {APP_TABLE}: {first_line(e)}"
    return ok, detail


def read_keys(keys: list[str], target: str | None = None, timeout_s: float = 60.0) -> tuple[bool, list[str], str]:
    """The final read: which of `keys` exist, from whichever server accepts writes (retrying until
    the database answers or timeout_s passes). Returns (ok, found_keys, detail)."""
    t = target_mod.load(target)
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        try:
            with psycopg.connect(t["app_dsn"]) as c:
                found: list[str] = []
                for i in range(0, len(keys), 20000):
                    chunk = keys[i:i + 20000]
                    found += [r[0] for r in c.execute(
                        f"select request_id from {APP_TABLE} where request_id = any(%s)", (chunk,)).fetchall()]
                return True, found, f"read {len(keys)} keys from port {c.info.port}: {len(found)} present"
        except psycopg.Error as e:
            last = first_line(e)
        if time.monotonic() > deadline:
            return False, [], f"database did not answer within {timeout_s:.0f} s: {last}"
        time.sleep(0.5)


def read_back(keys: list[str], prefixes: list[str], target: str | None = None,
              timeout_s: float = 60.0) -> tuple[bool, dict[str, str], str]:
    """The final read: every row whose key is in `keys` or starts with one of `prefixes` (a run's
    whole key space, so writes nobody attempted show up too), with the digest of what it holds
    (harness.api_contract.stored_digest), from whichever server accepts writes; retried until the
    database answers or timeout_s passes. Returns (ok, {key: digest}, detail)."""
    t = target_mod.load(target)
    columns = ", ".join(("request_id", *DIGEST_FIELDS))
    patterns = [p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for p in prefixes]
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        try:
            with psycopg.connect(t["app_dsn"]) as c:
                found: dict[str, str] = {}
                for i in range(0, max(len(keys), 1), 20000):
                    rows = c.execute(f"select {columns} from {APP_TABLE} where request_id = any(%s) "
                                     f"or request_id like any(%s)", (keys[i:i + 20000], patterns if i == 0 else []))
                    for row in rows.fetchall():
                        found[row[0]] = stored_digest(dict(zip(DIGEST_FIELDS, row[1:])))
                return True, found, (f"read {len(keys)} keys and {len(prefixes)} key prefixes from port "
                                     f"{c.info.port}: {len(found)} rows present")
        except psycopg.Error as e:
            last = first_line(e)
        if time.monotonic() > deadline:
            return False, {}, f"database did not answer within {timeout_s:.0f} s: {last}"
        time.sleep(0.5)


def primary_writable(target: str | None = None) -> bool:
    """True when a server accepts writes on the application's DSN."""
    return check_primary_writable(target)[0]


def standby_streaming(target: str | None = None, timeout_s: float = 10.0) -> bool:
    """True when a write on the primary is replayed by a streaming standby."""
    return check_standby_streaming(target, timeout_s)[0]


def wal_archiving_healthy(target: str | None = None, timeout_s: float = 15.0) -> bool:
    """True when a forced WAL switch gets archived."""
    return check_wal_archiving(target, timeout_s)[0]
