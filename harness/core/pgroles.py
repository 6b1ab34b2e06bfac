"""PostgreSQL roles and connection strings, as the harness reaches the target's servers.

Roles move on failover (the standby's program becomes the primary), so "which server is the
primary" is asked of the servers themselves, never read from a possibly stale target file.
Every server asks for a password (scram-sha-256); the passwords are generated at `target up` and
kept in a libpq password file in the stack home (0600), so no DSN ever carries one: a DSN names
its `passfile`. The bottom layer: imports nothing of ours but the target description's shape.
"""
from __future__ import annotations

import os

import psycopg

__all__ = ["server_dsn", "conninfo_value", "passfile_of", "admin_dsn", "server_role", "accepts_writes", "resolve_roles", "PROGRAMS"]

PROGRAMS = ("postgres-primary", "postgres-standby")  # the embedded stack's two servers


def server_dsn(port: int, dbname: str = "postgres", user: str = "postgres", connect_timeout_s: int = 2,
               passfile: str | os.PathLike | None = None) -> str:
    """One local server as `user` (superuser by default), its password read from `passfile`."""
    dsn = f"host=127.0.0.1 port={int(port)} dbname={dbname} user={user} connect_timeout={connect_timeout_s}"
    return dsn + (f" passfile={conninfo_value(passfile)}" if passfile else "")


def conninfo_value(value) -> str:
    """A value for a libpq key=value string: quoted only when it must be (a space or a quote)."""
    text = str(value)
    if text and not any(ch.isspace() or ch in "'\\" for ch in text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def passfile_of(target: dict) -> str | None:
    """The password file of the target's database servers (None for a target whose DSNs need none)."""
    return target.get("passfile")


def admin_dsn(target: dict, dbname: str = "svgai") -> str:
    """Whichever server accepts writes now, as a superuser: the target's own `admin_dsn` when its
    description names one (a real deployment), else the application's multi-host DSN as postgres."""
    dsn = target.get("admin_dsn") or target["app_dsn"].replace("user=svgai", "user=postgres")
    return dsn.replace("dbname=svgai", f"dbname={dbname}")


def server_role(port: int, *, passfile: str | os.PathLike | None, connect_timeout_s: int = 1) -> str:
    """'primary', 'standby' (in recovery) or 'down' (does not answer). `passfile` is required: without
    it a live server refuses us, and "refused" must never read as "down"."""
    try:
        with psycopg.connect(server_dsn(port, connect_timeout_s=connect_timeout_s, passfile=passfile)) as c:
            return "standby" if c.execute("select pg_is_in_recovery()").fetchone()[0] else "primary"
    except psycopg.Error as e:
        if "password" in str(e) or "authentication" in str(e):
            raise  # a server that refuses our credentials is up: never call it down
        return "down"


def accepts_writes(port: int, passfile: str | os.PathLike | None) -> bool:
    return server_role(port, connect_timeout_s=2, passfile=passfile) == "primary"


def resolve_roles(ports: dict[str, int], *, passfile: str | os.PathLike | None) -> dict:
    """{"primary": program, "standby": program, "states": {program: role}} asked of the servers
    (`ports`: program → port). "primary" is None when no server or more than one accepts writes
    (then `states` says which)."""
    states = {program: server_role(port, passfile=passfile) for program, port in ports.items()}
    primaries = [p for p, s in states.items() if s == "primary"]
    primary = primaries[0] if len(primaries) == 1 else None
    others = [p for p in ports if p != primary]
    return {"primary": primary, "standby": others[0] if primary and others else None, "states": states}
