"""The container target's database tier as data: the embedded stack's HA cluster (Patroni on a
3-member etcd quorum, harness/targets/embedded/ha/config.py), with each etcd member and each
Patroni node a container on the database network.

    etcd-e0 etcd-e1 etcd-e2   one Raft quorum; peers and clients by container name
    pg0 pg1                   a Patroni agent (PID 1) and the PostgreSQL it runs; the shared WAL
                              archive is a volume mounted in both

Same settings (ttl, loop_wait, retry_timeout, failsafe_mode, …), same Patroni configuration but
for the addresses and folders, same cluster handle: every HA fault, probe and checker reads the
handle, and the handle says where each node's container is. Pure functions: stack.py starts
what this module describes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from harness.core.pgroles import conninfo_value
from harness.targets.embedded.ha.config import (ETCD, ETCD_ELECTION_MS, ETCD_HEARTBEAT_MS, MEMBERS, REPLICATION_USER,
                                                SCOPE, SETTINGS, MemberPlace, expected_failover_window, member_config)

__all__ = ["ETCD_COMPONENTS", "MEMBERS", "ETCD_CLIENT_PORT", "REST_PORT", "PG_PORT", "CONFIG_MOUNT", "ARCHIVE_MOUNT",
           "etcd_component", "etcd_command", "member_yaml_config", "handle"]

ETCD_COMPONENTS = tuple(f"etcd-{e}" for e in ETCD)
ETCD_CLIENT_PORT, ETCD_PEER_PORT = 2379, 2380
REST_PORT, PG_PORT = 8008, 5432
CONFIG_MOUNT = "/run/gameday-ha"             # the home's secrets/ha folder, read-only: one YAML per member
ARCHIVE_MOUNT = "/var/lib/gameday/archive"   # a volume shared by both members
SITE_MOUNT = "/opt/gameday-site"             # the .venv's packages, read-only: the image's python3.11 runs Patroni from them
DATA_DIR = "/var/lib/gameday/pg/data"        # in the container's own file system: it lives as long as the container
# Inside the database network every address is a container's; over TCP every role gives its
# password, the socket is for the agent's own server.
PG_HBA = (
    "local all postgres peer",
    "local replication postgres peer",
    f"host replication {REPLICATION_USER} all scram-sha-256",
    "host all all all scram-sha-256",
)


def etcd_component(member: str) -> str:
    return f"etcd-{member}"


def etcd_command(member: str, home: Path) -> list[str]:
    """One etcd member's command line: listening on every address of its container, advertised by
    container name. The token (a hash of the home) keeps two homes' members from joining."""
    def url(e: str, port: int) -> str:
        return f"http://{etcd_component(e)}:{port}"
    token = f"{SCOPE}-{hashlib.sha256(str(home).encode()).hexdigest()[:12]}"
    return ["etcd", "--name", member, "--data-dir", "/var/lib/gameday/etcd",
            "--listen-client-urls", f"http://0.0.0.0:{ETCD_CLIENT_PORT}",
            "--advertise-client-urls", url(member, ETCD_CLIENT_PORT),
            "--listen-peer-urls", f"http://0.0.0.0:{ETCD_PEER_PORT}",
            "--initial-advertise-peer-urls", url(member, ETCD_PEER_PORT),
            "--initial-cluster", ",".join(f"{e}={url(e, ETCD_PEER_PORT)}" for e in ETCD),
            "--initial-cluster-state", "new", "--initial-cluster-token", token,
            "--heartbeat-interval", str(ETCD_HEARTBEAT_MS), "--election-timeout", str(ETCD_ELECTION_MS)]


def member_yaml_config(member: str, passwords: dict[str, str], settings: dict = SETTINGS) -> dict:
    """Patroni's configuration for a node container (the embedded cluster's, addresses and folders
    aside). `passwords`: postgres, replicator, rest."""
    place = MemberPlace(
        rest_listen=f"0.0.0.0:{REST_PORT}", rest_connect=f"{member}:{REST_PORT}",
        pg_listen=f"0.0.0.0:{PG_PORT}", pg_connect=f"{member}:{PG_PORT}",
        etcd_hosts=tuple(f"{etcd_component(e)}:{ETCD_CLIENT_PORT}" for e in ETCD),
        data_dir=DATA_DIR, pgpass="/var/lib/gameday/pgpass", socket_dir="/var/run/postgresql",
        archive_dir=ARCHIVE_MOUNT, pg_bin="/usr/lib/postgresql/15/bin", pg_hba=PG_HBA)
    return member_config(place, member, passwords, settings)


def handle(*, home: Path, ha_home: Path, pg_ports: dict[str, int], rest_ports: dict[str, int],
           etcd_ports: dict[str, int], containers: dict[str, str], passfile: Path, rest_secrets: Path,
           settings: dict = SETTINGS) -> dict:
    """The cluster handle (harness/targets/embedded/ha/config.describe's shape) of the container
    target: REST APIs, servers and etcd through their ports published on 127.0.0.1, and for each
    node and etcd member the container that is it (`runtime: containers`)."""
    def dsn(user: str, dbname: str) -> str:
        ports = ",".join(str(pg_ports[m]) for m in MEMBERS)
        return (f"host={','.join('127.0.0.1' for _ in MEMBERS)} port={ports} dbname={dbname} user={user} "
                f"target_session_attrs=read-write connect_timeout=2 passfile={conninfo_value(passfile)}")
    return {
        "kind": "ha",
        "runtime": "containers",
        "scope": SCOPE,
        "home": str(ha_home),  # its cluster.json: what the fault ledger's reaper reads
        "target_home": str(home),
        "etcd_endpoints": [f"http://127.0.0.1:{etcd_ports[e]}" for e in ETCD],
        "etcd_containers": {e: containers[etcd_component(e)] for e in ETCD},
        "members": {m: {
            "api_url": f"http://127.0.0.1:{rest_ports[m]}",
            "port": pg_ports[m],
            "container": containers[m],
            "program": m,
            "data_dir": DATA_DIR,
        } for m in MEMBERS},
        "dsn": dsn("svgai", "svgai"),
        "admin_dsn": dsn("postgres", "postgres"),
        "passfile": str(passfile),
        "rest_secrets": str(rest_secrets),
        "settings": dict(settings),
        "expected_failover_window_s": list(expected_failover_window(settings)),
    }
