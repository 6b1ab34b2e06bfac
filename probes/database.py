"""Database probes: writability, replication, WAL archiving, amcheck integrity, the final read."""
from __future__ import annotations

import time

import psycopg

from harness.targets import description as target_mod
from harness.core.api_contract import ROW_SQL, SESSION_OPTIONS, stored_digest
from harness.core.amcheck import amcheck
from harness.core.errors import first_line
from harness.core.pgroles import admin_dsn, passfile_of, server_dsn, server_role

__all__ = ["primary_writable", "standby_streaming", "wal_archiving_healthy", "check_primary_writable",
           "check_standby_streaming", "check_wal_archiving", "check_amcheck", "read_keys", "read_back", "APP_TABLE"]

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
    """A row written on the primary becomes visible on a streaming standby: the standby, in
    recovery, shows the very value just written (not merely a WAL position as high: a server left
    on an old timeline can be further along and follow nothing)."""
    t = target_mod.load(target)
    try:
        with psycopg.connect(admin_dsn(t, "postgres"), autocommit=True) as c:
            primary_port = c.info.port
            rows = c.execute("select client_port, state from pg_stat_replication").fetchall()
            if not any(state == "streaming" for _, state in rows):
                return False, f"primary on port {primary_port} has no streaming standby"
            c.execute("create table if not exists gameday_replication_probe (id int primary key, t timestamptz)")
            written = c.execute("insert into gameday_replication_probe values (1, clock_timestamp()) "
                                "on conflict (id) do update set t = excluded.t returning t").fetchone()[0]
    except psycopg.Error as e:
        return False, f"primary: {first_line(e)}"
    standby_port = t["standby"]["port"] if primary_port == t["primary"]["port"] else t["primary"]["port"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(server_dsn(standby_port, passfile=passfile_of(t)), autocommit=True) as c:
                if c.execute("select pg_is_in_recovery() and exists (select 1 from gameday_replication_probe "
                             "where id = 1 and t = %s)", (written,)).fetchone()[0]:
                    return True, f"standby on port {standby_port} replayed the probe write"
        except psycopg.Error:
            pass
        time.sleep(0.1)
    return False, f"standby on port {standby_port} did not replay the probe write within {timeout_s:.0f} s"


def check_wal_archiving(target: str | None = None, timeout_s: float = 15.0) -> tuple[bool, str]:
    """A forced WAL segment switch is archived (archive_command works): the very segment the
    switch completed, not merely some segment of an older backlog."""
    t = target_mod.load(target)
    try:
        with psycopg.connect(admin_dsn(t, "postgres"), autocommit=True) as c:
            c.execute("select txid_current()")
            # pg_walfile_name maps the switch's end (a segment boundary) to the segment it completed.
            segment = c.execute("select pg_walfile_name(pg_switch_wal())").fetchone()[0]
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                # Segment names sort by timeline, then position; a timeline's .history sorts before them.
                now = c.execute("select last_archived_wal, failed_count, last_failed_wal from pg_stat_archiver").fetchone()
                if now[0] and now[0] >= segment:
                    return True, f"segment {segment} archived (last archived {now[0]})"
                time.sleep(0.2)
            return False, (f"segment {segment} not archived within {timeout_s:.0f} s (last archived {now[0]}, "
                           f"failed {now[1]}, last failed {now[2]})")
    except psycopg.Error as e:
        return False, f"archiver: {first_line(e)}"


def check_amcheck(target: str | None = None) -> tuple[bool, str]:
    """amcheck on the application tables: every B-tree index with heapallindexed, and verify_heapam."""
    t = target_mod.load(target)
    try:
        with psycopg.connect(admin_dsn(t), autocommit=True) as c:
            result = amcheck(c)
    except psycopg.Error as e:
        return False, f"amcheck on {APP_TABLE}: {first_line(e)}"
    return result.ok, result.detail


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
    whole key space, so writes nobody attempted show up too), with the digest of the whole row as
    it is stored (every column, rendered as the API renders it: harness.core.api_contract), from
    whichever server accepts writes; retried until the database answers or timeout_s passes.
    Returns (ok, {key: digest}, detail)."""
    t = target_mod.load(target)
    patterns = [p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for p in prefixes]
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        try:
            with psycopg.connect(t["app_dsn"], options=SESSION_OPTIONS) as c:
                found: dict[str, str] = {}
                for i in range(0, max(len(keys), 1), 20000):
                    rows = c.execute(f"select request_id, {ROW_SQL.format(alias='r')} from {APP_TABLE} r "
                                     f"where request_id = any(%s) or request_id like any(%s)",
                                     (keys[i:i + 20000], patterns if i == 0 else []))
                    for key, row in rows.fetchall():
                        found[key] = stored_digest(row)
                return True, found, (f"read {len(keys)} keys and {len(prefixes)} key prefixes from port "
                                     f"{c.info.port}: {len(found)} rows present")
        except psycopg.Error as e:
            last = first_line(e)
        if time.monotonic() > deadline:
            return False, {}, f"database did not answer within {timeout_s:.0f} s: {last}"
        time.sleep(0.5)


def server_states(target: str | None = None) -> dict[str, str] | None:
    """{port: "primary" | "standby" | "down" | "refused"}: each of the target's database servers,
    asked itself. None for a target whose servers are not addressed one by one (Kubernetes: the
    Service decides). Two "primary" entries after recovery are a split brain."""
    t = target_mod.load(target)
    ports = [t[r]["port"] for r in ("primary", "standby") if isinstance(t.get(r), dict) and t[r].get("port")]
    if not ports:
        return None
    states = {}
    for port in ports:
        try:
            states[str(port)] = server_role(port, passfile=passfile_of(t), connect_timeout_s=2)
        except psycopg.Error:
            states[str(port)] = "refused"
    return states


def primary_writable(target: str | None = None) -> bool:
    """True when a server accepts writes on the application's DSN."""
    return check_primary_writable(target)[0]


def standby_streaming(target: str | None = None, timeout_s: float = 10.0) -> bool:
    """True when a write on the primary is replayed by a streaming standby."""
    return check_standby_streaming(target, timeout_s)[0]


def wal_archiving_healthy(target: str | None = None, timeout_s: float = 15.0) -> bool:
    """True when a forced WAL switch gets archived."""
    return check_wal_archiving(target, timeout_s)[0]
