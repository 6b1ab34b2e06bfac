"""Schema and queries of the SVG AI system (PostgreSQL 15, psycopg 3).

Every function takes an open psycopg connection and commits before it returns, so a result it
reports is durable (as durable as the server's commit settings make it).
"""

from __future__ import annotations

from typing import Any, Mapping

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

__all__ = ["SCHEMA", "TABLE", "ensure_schema", "insert_result", "get_result", "ping_writable", "SERVER_SESSION_OPTIONS", "SERVER_COLUMNS"]

TABLE = "optimization_results"

SCHEMA = """
CREATE TABLE IF NOT EXISTS optimization_results (
    request_id      text PRIMARY KEY,
    image_features  jsonb NOT NULL,
    target_quality  double precision,
    parameters      jsonb NOT NULL,
    predicted_ssim  double precision NOT NULL,
    model_version   text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS optimization_results_created_at_idx ON optimization_results (created_at);
"""

# A row is returned as PostgreSQL renders the whole of it (every column, whatever columns the table
# has: to_jsonb), so a client can keep exactly what was stored and compare it later. Timestamps
# are rendered in UTC (the session's TimeZone is set by SERVER_SESSION_OPTIONS).
_ROW = "to_jsonb(optimization_results.*) AS stored"
# Which server took the write: its system identifier and the timeline it was on. After a
# failover a write acknowledged by the old primary carries the old server's timeline. (The HA
# tests read it the same way for their own writes.) `at`: the server's own clock as it executed
# the write, before its commit: an old primary that executed a write after the new one executed
# its first took writes at the same time as it, whenever the client sent or heard of them.
SERVER_COLUMNS = ("(SELECT system_identifier::text FROM pg_control_system()) AS system_id, "
                  "('x' || substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8))::bit(32)::int AS timeline, "
                  "inet_server_port() AS port, extract(epoch FROM clock_timestamp())::float8 AS at")

_INSERT = (
    "INSERT INTO optimization_results "
    "(request_id, image_features, target_quality, parameters, predicted_ssim, model_version) "
    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (request_id) DO NOTHING "
    f"RETURNING {_ROW}, {SERVER_COLUMNS}"
)
_SELECT = f"SELECT {_ROW}, {SERVER_COLUMNS} FROM optimization_results WHERE request_id = %s"
SERVER_SESSION_OPTIONS = "-c TimeZone=UTC"  # rows rendered in UTC, whatever the server's default


def ensure_schema(conn: psycopg.Connection) -> None:
    """Create the ``optimization_results`` table and its ``created_at`` index if absent; commit."""
    with _transaction(conn):
        conn.execute(SCHEMA)


def insert_result(conn: psycopg.Connection, row: Mapping[str, Any]) -> dict:
    """Store one optimization result keyed by ``row["request_id"]`` and return
    ``{"stored": <the whole row as stored>, "server": {system_id, timeline, port}}``.

    Idempotent: when the request id is already stored, nothing is written and the originally stored
    row is returned (never a duplicate, never an overwrite). Committed before returning.
    ``row`` needs request_id, image_features (dict), target_quality, parameters (dict),
    predicted_ssim and model_version.
    """
    args = (
        row["request_id"],
        Jsonb(dict(row["image_features"])),
        row.get("target_quality"),
        Jsonb(dict(row["parameters"])),
        float(row["predicted_ssim"]),
        row["model_version"],
    )
    with _transaction(conn):
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_INSERT, args)
            stored = cur.fetchone()
            if stored is None:  # already there: return what was stored first
                cur.execute(_SELECT, (row["request_id"],))
                stored = cur.fetchone()
    if stored is None:
        raise psycopg.errors.DataError(f"row {row['request_id']!r} neither inserted nor found")
    return _answer(stored)


def get_result(conn: psycopg.Connection, request_id: str) -> dict | None:
    """Return ``{"stored", "server"}`` for ``request_id`` (as insert_result), or None if absent."""
    with _transaction(conn):
        with conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_SELECT, (request_id,))
            stored = cur.fetchone()
    return _answer(stored) if stored is not None else None


def ping_writable(conn: psycopg.Connection) -> bool:
    """Return True when the server accepts writes (it is a primary, not a standby in recovery)."""
    with _transaction(conn):
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return row is not None and row[0] is False


# ---------------------------------------------------------------------------------------------
# Internals


class _transaction:
    """Commit on success, roll back on error; a no-op wrapper on an autocommit connection."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.conn.autocommit or self.conn.closed:
            return
        if exc_type is None:
            self.conn.commit()
        else:
            try:
                self.conn.rollback()
            except psycopg.Error:
                pass


def _answer(found: Mapping[str, Any]) -> dict:
    return {"stored": dict(found["stored"]),
            "server": {"system_id": found["system_id"], "timeline": found["timeline"], "port": found["port"],
                       "at": found.get("at")}}
