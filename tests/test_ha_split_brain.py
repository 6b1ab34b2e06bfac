"""Ground truth for the split_brain criterion on real servers: Patroni's fencing disabled on
purpose (maintenance mode, then the replica promoted behind its back with pg_promote()), both
servers take writes, and harness.checkers.servers must name the write the old primary took after
the new one had taken its first. The writes say which server took them exactly as the API's do
(svgai.db.SERVER_COLUMNS). Then Patroni is resumed: it demotes the member without the leader key,
but that member diverged *ahead* of the leader and Patroni does not rewind it by itself (its
server keeps failing "highest timeline 1 of the primary is behind recovery timeline 2" while
Patroni reports it "running"): a reinit rebuilds it, checked on the server itself.
"""
from __future__ import annotations

import os
import time

import psycopg
import pytest

from harness.checkers.servers import servers
from harness.targets.embedded import ha
from harness.targets.embedded.ha.nodes import rest_call
from svgai.db import SERVER_COLUMNS

pytestmark = pytest.mark.integration
PORT_BASE = int(os.environ.get("GAMEDAY_TEST_PORT_BASE", "16400")) + 60


class Ledger:
    """Writes as the load records them: invoke, then ok with the server that took it."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.events: list[dict] = []

    def write(self, conn: psycopg.Connection, key: str) -> dict:
        sent = time.monotonic() - self.t0
        row = conn.execute(f"insert into acked (key) values (%s) returning {SERVER_COLUMNS}", (key,)).fetchone()
        server = {"system_id": row[0], "timeline": row[1], "port": row[2]}
        self.events += [{"kind": "op", "t": sent, "type": "invoke", "f": "write", "key": key},
                        {"kind": "op", "t": time.monotonic() - self.t0, "type": "ok", "f": "write", "key": key,
                         "server": server}]
        return server


def member_dsn(cluster: dict, member: str, user: str) -> str:
    return (f"host=127.0.0.1 port={cluster['members'][member]['port']} dbname={'svgai' if user == 'svgai' else 'postgres'} "
            f"user={user} connect_timeout=2 passfile={cluster['passfile']}")


def read_only(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            return bool(c.execute("select pg_is_in_recovery()").fetchone()[0])
    except psycopg.OperationalError:
        return False  # restarting as a standby


def keys(dsn: str) -> list[str] | None:
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            return [r[0] for r in c.execute("select key from acked order by key")]
    except psycopg.OperationalError:
        return None


def pause(cluster: dict, member: str, paused: bool) -> None:
    status, body = rest_call(cluster, member, "/config", method="PATCH", body={"pause": paused}, timeout_s=5)
    assert status == 200, body
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status, state = rest_call(cluster, member, "/cluster", timeout_s=2)
        if status == 200 and bool(state.get("pause")) == paused:
            return
        time.sleep(0.2)
    pytest.fail(f"Patroni did not {'pause' if paused else 'resume'} within 15 s")


def test_a_primary_promoted_behind_patronis_back_is_a_split_brain_and_a_reinit_heals_it(tmp_path):
    home = tmp_path / "ha"
    try:
        try:
            cluster = ha.up(home, PORT_BASE)
        except ha.HAError as e:
            pytest.fail(f"the HA cluster could not be brought up: {e}")
        old = ha.leader(cluster)
        [other] = [m for m in cluster["members"] if m != old]
        with psycopg.connect(cluster["dsn"], autocommit=True) as c:
            c.execute("create table acked (key text primary key)")
        ha.wait_streaming(cluster, other, 30)
        ledger = Ledger()
        with psycopg.connect(member_dsn(cluster, old, "svgai"), autocommit=True) as on_old:
            first = [ledger.write(on_old, f"before-{i}") for i in range(5)]
            # Fencing disabled on purpose: Patroni in maintenance mode does not act, and the replica
            # is promoted behind its back while the old primary keeps its clients.
            pause(cluster, old, True)
            with psycopg.connect(member_dsn(cluster, other, "postgres"), autocommit=True) as admin:
                assert admin.execute("select pg_promote(wait => true)").fetchone()[0] is True
            with psycopg.connect(member_dsn(cluster, other, "svgai"), autocommit=True) as on_new:
                promoted = ledger.write(on_new, "on-the-new-primary")
            stale = ledger.write(on_old, "on-the-old-primary-after")

        assert promoted["timeline"] > first[0]["timeline"] == stale["timeline"]
        s = servers(ledger.events)
        assert s["split_brain_writes"] == 1 and s["split_brain_sample"] == ["on-the-old-primary-after"], s
        assert len(s["servers"]) == 2 and "split brain" in s["detail"]
        # The control: the writes before the promotion alone are one server, nothing to judge.
        assert servers(ledger.events[:10])["split_brain_writes"] == 0

        # Patroni resumed ends the split brain: the member without the leader key is demoted
        # (its server refuses writes). It diverged ahead of the leader (timeline 2 against 1), so
        # Patroni cannot rewind it: the runbook's reinit rebuilds it, and the server itself must
        # then stream holding exactly the leader's rows (the new primary's write is gone).
        pause(cluster, old, False)
        assert ha.wait_leader(cluster, timeout_s=30) == old
        deadline = time.monotonic() + 60
        while not read_only(member_dsn(cluster, other, "svgai")):
            assert time.monotonic() < deadline, f"{other} still takes writes 60 s after Patroni resumed"
            time.sleep(0.5)
        ha.reinitialize(cluster, other)
        ha.wait_streaming(cluster, other, 120)
        with psycopg.connect(member_dsn(cluster, old, "svgai"), autocommit=True) as c:
            kept = [r[0] for r in c.execute("select key from acked order by key")]
        assert "on-the-new-primary" not in kept and "on-the-old-primary-after" in kept
        deadline = time.monotonic() + 20
        while keys(member_dsn(cluster, other, "svgai")) != kept:
            assert time.monotonic() < deadline, f"{other} streams but does not hold the leader's rows"
            time.sleep(0.2)
    finally:
        ha.down(home, remove=True)
