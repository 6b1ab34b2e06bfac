"""Ground truth for the split_brain criterion on real servers: Patroni's fencing disabled on
purpose (maintenance mode, then the replica promoted behind its back with pg_promote()), both
servers take writes, and harness.checkers.servers must name the write the old primary took after
the new one had taken its first. The writes say which server took them exactly as the API's do
(svgai.db.SERVER_COLUMNS). Then Patroni is resumed and must heal the cluster by itself (it demotes
the member without the leader key and rewinds it), which is checked too: a game day ends healed.
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


def test_a_primary_promoted_behind_patronis_back_is_a_split_brain_and_patroni_heals_it(tmp_path):
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

        # Patroni resumed must end the split brain by itself: the member without the leader key
        # is demoted and rejoins as a streaming replica of the one with it.
        pause(cluster, old, False)
        healthy_leader = ha.wait_healthy(cluster, timeout_s=90)
        assert healthy_leader == old
    finally:
        ha.down(home, remove=True)
