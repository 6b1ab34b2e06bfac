"""The container target for real: `gameday target up --kind containers` (testcontainers, the
project's own image, no registry; Patroni on three etcd containers), a database crash from the
local suite run unchanged against it, Patroni's failover of a lost leader node, the network
partition and its negative twin, and `down` leaving no container, network or volume.

Needs root and the Docker engine that scripts/setup.sh installs and starts. Not root: skipped,
with the reason. Root but no engine or no image: FAILS, saying what is missing (a container
target that silently does not run proves nothing).
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from harness.targets.containers import engine
from harness.targets.containers import images
from harness.targets.embedded.ha import nodes

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
GAMEDAY = [sys.executable, "-m", "harness.cli"]
PORT_BASE = int(os.environ.get("GAMEDAY_CONTAINERS_TEST_PORT_BASE", "18400"))
UP_BUDGET_S = 120  # a cold `target up`: models trained, seven containers started and healthy
PARTITION_S = 8  # experiments/containers/network-partition.yaml


def gameday(*args: str, timeout_s: float = 240) -> subprocess.CompletedProcess:
    # The embedded stack's fixture may have pointed GAMEDAY_TARGET elsewhere: --home says where.
    env = {k: v for k, v in os.environ.items() if k not in ("GAMEDAY_TARGET", "GAMEDAY_HOME")}
    return subprocess.run([*GAMEDAY, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)


def labelled(home: str) -> dict[str, list[str]]:
    """What `docker ps -a`, `docker network ls` and `docker volume ls` show labelled for this home."""
    flt = f"label={engine.HOME_LABEL}={home}"
    out = {}
    for what, cmd in (("containers", ["docker", "ps", "-a", "-q", "--filter", flt]),
                      ("networks", ["docker", "network", "ls", "-q", "--filter", flt]),
                      ("volumes", ["docker", "volume", "ls", "-q", "--filter", flt])):
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[what] = r.stdout.split()
    return out


@pytest.fixture(scope="module")
def containers_home():
    if os.geteuid() != 0:
        pytest.skip("not root: scripts/setup.sh can neither install nor start the Docker engine, "
                    "so the container target cannot run here")
    try:
        engine.client()
    except engine.EngineError as e:
        pytest.fail(f"the container target cannot be tested: {e}")
    tag = images.image_tag()
    if not images.image_exists(tag):
        pytest.fail(f"the container target cannot be tested: image {tag} is not built; run scripts/setup.sh as root")
    home = tempfile.mkdtemp(prefix="gameday-containers-test-", dir="/var/tmp")
    try:
        started = time.monotonic()
        r = gameday("target", "up", "--kind", "containers", "--home", home, "--port-base", str(PORT_BASE))
        up_s = time.monotonic() - started
        assert r.returncode == 0, f"target up failed: {r.stderr.strip()[-800:]}"
        print(f"\ncontainer target up in {up_s:.1f} s")
        assert up_s < UP_BUDGET_S
        yield home
    finally:
        gameday("target", "down", "--home", home)
        shutil.rmtree(home, ignore_errors=True)


def run_experiment(home: str, experiment: str, reports: Path) -> tuple[int, dict]:
    r = gameday("run", "--home", home, "--reports-dir", str(reports), experiment)
    verdicts = sorted(reports.glob("*/verdict.json"))
    assert verdicts, f"no verdict written (exit {r.returncode}): {r.stderr.strip()[-800:]}"
    return r.returncode, json.loads(verdicts[-1].read_text())


def criterion(verdict: dict, name: str) -> dict:
    (c,) = [c for c in verdict["criteria"] if c["name"] == name]
    return c


def test_target_description_and_status(containers_home):
    target = json.loads((Path(containers_home) / "target.json").read_text())
    assert target["kind"] == "containers"
    assert target["api_url"] == f"http://127.0.0.1:{PORT_BASE}"
    for component in ("etcd-e0", "etcd-e1", "etcd-e2", "pg0", "pg1", "api", "prometheus", "alertmanager"):
        assert component in target["containers"]
    r = gameday("target", "status", "--home", containers_home, "--json")
    status = json.loads(r.stdout)
    assert r.returncode == 0 and status["healthy"], status
    # Every published port is on 127.0.0.1 only.
    for container in engine.owned(engine.client(), containers_home)["containers"]:
        for bindings in (container.attrs["HostConfig"].get("PortBindings") or {}).values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings), container.name


def test_the_databases_ask_every_connection_for_a_password(containers_home):
    """Published on 127.0.0.1, which every local user reaches: without the home's password file
    the databases refuse, superuser or not, and Prometheus cannot be told to quit."""
    target = json.loads((Path(containers_home) / "target.json").read_text())
    passfile = Path(target["passfile"])
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600 and stat.S_IMODE(passfile.parent.stat().st_mode) == 0o700
    assert "password=" not in (Path(containers_home) / "target.json").read_text()
    for which in ("primary", "standby"):
        dsn = target[which]["admin_dsn"]
        with psycopg.connect(dsn) as c:
            assert c.execute("select 1").fetchone() == (1,)
        bare = dsn.split(" passfile=")[0]
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(bare, connect_timeout=3)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(bare + " password=postgres", connect_timeout=3)
    quit_ = urllib.request.Request(target["prometheus_url"] + "/-/quit", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(quit_, timeout=5)
    assert refused.value.code == 403


def test_database_failure_from_the_local_suite_passes_unchanged(containers_home, tmp_path):
    # experiments/local/database-failure.yaml as it is: the leader's postmaster is SIGKILLed inside
    # its container, Patroni restarts it and crash recovery loses no acknowledged write.
    rc, v = run_experiment(containers_home, "experiments/local/database-failure.yaml", tmp_path)
    assert rc == 0 and v["status"] == "pass", v["reason"]
    assert v["measured"]["lost_writes"] == 0 and v["measured"]["acked_writes"] > 0


def test_the_leader_node_lost_patroni_promotes_the_replica_and_rejoins_the_old_leader(containers_home, tmp_path):
    """Patroni in containers, as on the embedded patroni tier: the leader's container is killed
    through the engine and stays down; nothing of ours promotes. Ground truth: the settings put
    the failover inside ttl - loop_wait .. ttl + loop_wait + promotion (18.3-24 s), the new leader
    is the other member on the next timeline, and the lost node comes back as its replica."""
    target = json.loads((Path(containers_home) / "target.json").read_text())
    cluster = target["ha"]
    assert cluster["runtime"] == "containers"
    leader_before = nodes.leader(cluster)
    timeline_before = nodes.timeline(cluster["admin_dsn"])
    rc, v = run_experiment(containers_home, "experiments/ha/database-node-lost.yaml", tmp_path)
    assert rc == 0 and v["status"] == "pass", v["reason"]
    low, high = cluster["expected_failover_window_s"]
    m = v["measured"]
    print(f"\ncontainer node lost: RTO {m['rto_s']:.2f} s (window {low}-{high} s), server-side gap "
          f"{m['failover_server_gap_s']:.2f} s, {m['lost_writes']} of {m['acked_writes']} lost")
    assert low - 1.0 <= m["rto_s"] <= high + 3.0
    assert m["split_brain_writes"] == 0 and m["lost_writes"] <= 5  # asynchronous: what never reached the replica
    leader_after = nodes.leader(cluster)
    assert leader_after not in (None, leader_before)
    assert nodes.timeline(cluster["admin_dsn"]) == timeline_before + 1
    assert nodes.server_streams(cluster, leader_before), "the lost node did not come back as a streaming replica"
    assert not nodes.lost_nodes(cluster)
    assert not [e for e in (Path(containers_home) / "fault-ledger").glob("*.json")], "a fault was left in the ledger"


def test_network_partition_heals_within_the_rto(containers_home, tmp_path):
    rc, v = run_experiment(containers_home, "experiments/containers/network-partition.yaml", tmp_path)
    assert rc == 0 and v["status"] == "pass", v["reason"]
    rto = v["measured"]["rto_s"]
    print(f"\nnetwork partition of {PARTITION_S} s: RTO {rto:.2f} s, {v['measured']['acked_writes']} acknowledged "
          f"writes, {v['measured']['lost_writes']} lost")
    # The outage is the partition itself plus the API's reconnect: never shorter, not much longer.
    assert PARTITION_S - 0.5 <= rto <= PARTITION_S + 20
    assert v["measured"]["lost_writes"] == 0


def test_network_partition_twin_fails_on_rto_and_the_target_heals(containers_home, tmp_path):
    rc, v = run_experiment(containers_home, "experiments/containers/negative/network-partition.yaml", tmp_path)
    assert rc == 1 and v["status"] == "fail", v["reason"]
    assert v["expect_failure"] == ["rto"]
    assert not criterion(v, "rto")["passed"]
    # The twin never rejoins within the run; the runner's safety net (and the lease) does after it.
    deadline = time.monotonic() + 60
    while True:
        status = json.loads(gameday("target", "status", "--home", containers_home, "--json").stdout)
        if status["healthy"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert status["healthy"], [c for c in status["components"] if not c["healthy"]]
    assert not [e for e in (Path(containers_home) / "fault-ledger").glob("*.json")], "a fault was left in the ledger"


def test_down_leaves_no_container_network_or_volume(containers_home):
    assert labelled(containers_home)["containers"], "the target should be up before down"
    r = gameday("target", "down", "--home", containers_home)
    assert r.returncode == 0, r.stderr
    assert labelled(containers_home) == {"containers": [], "networks": [], "volumes": []}
    assert not (Path(containers_home) / "target.json").exists()
