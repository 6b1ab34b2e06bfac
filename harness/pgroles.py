"""PostgreSQL roles and connection strings, as the harness reaches the target's servers.

Roles move on failover (the standby's program becomes the primary), so "which server is the
primary" is asked of the servers themselves, never read from a possibly stale target file.
The bottom layer: imports nothing of ours but the target description's shape.
"""
from __future__ import annotations

import psycopg

__all__ = ["server_dsn", "admin_dsn", "server_role", "accepts_writes", "resolve_roles", "PROGRAMS"]

PROGRAMS = ("postgres-primary", "postgres-standby")  # the embedded stack's two servers


def server_dsn(port: int, dbname: str = "postgres", user: str = "postgres", connect_timeout_s: int = 2) -> str:
    """One local server as `user` (superuser by default)."""
    return f"host=127.0.0.1 port={int(port)} dbname={dbname} user={user} connect_timeout={connect_timeout_s}"


def admin_dsn(target: dict, dbname: str = "svgai") -> str:
    """Whichever server accepts writes now, as a superuser: the target's own `admin_dsn` when its
    description names one (a real deployment), else the application's multi-host DSN as postgres."""
    dsn = target.get("admin_dsn") or target["app_dsn"].replace("user=svgai", "user=postgres")
    return dsn.replace("dbname=svgai", f"dbname={dbname}")


def server_role(port: int, connect_timeout_s: int = 1) -> str:
    """'primary', 'standby' (in recovery) or 'down' (does not answer)."""
    try:
        with psycopg.connect(server_dsn(port, connect_timeout_s=connect_timeout_s)) as c:
            return "standby" if c.execute("select pg_is_in_recovery()").fetchone()[0] else "primary"
    except psycopg.Error:
        return "down"


def accepts_writes(port: int) -> bool:
    return server_role(port, connect_timeout_s=2) == "primary"


def resolve_roles(ports: dict[str, int]) -> dict:
    """{"primary": program, "standby": program, "states": {program: role}} asked of the servers
    (`ports`: program → port). "primary" is None when no server or more than one accepts writes
    (then `states` says which)."""
    states = {program: server_role(port) for program, port in ports.items()}
    primaries = [p for p, s in states.items() if s == "primary"]
    primary = primaries[0] if len(primaries) == 1 else None
    others = [p for p in ports if p != primary]
    return {"primary": primary, "standby": others[0] if primary and others else None, "states": states}
