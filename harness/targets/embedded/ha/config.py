"""The HA database tier as data: its settings, ports, folders and the configuration it runs from
(etcd command lines, Patroni's YAML, supervisord's programs, the multi-host DSN).

Pure functions only: nothing here starts a process or touches the disk, so tests check them
directly. `cluster.py` writes and starts what this module describes; `nodes.py` acts on it.

Shape: three etcd members (a quorum that survives the loss of one) and two Patroni members, `pg0`
and `pg1`, each with its own PostgreSQL data folder, all on 127.0.0.1, ports from one base:

    base+0..2  etcd clients      base+3..5  etcd peers
    base+6..7  PostgreSQL        base+8..9  Patroni REST API
"""
from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.core.pgroles import conninfo_value
from harness.targets.embedded import postgres, supervisor
from harness.targets.embedded.layout import MAX_PORT, PG_BIN

__all__ = ["SETTINGS", "PROMOTION_S", "SCOPE", "ETCD", "MEMBERS", "MARKER", "REST_USER", "HAError", "HaLayout",
           "check_settings", "expected_failover_window", "port_offsets", "patroni_config", "member_config",
           "member_place", "MemberPlace", "REPLICATION_USER", "etcd_command", "etcd_url",
           "programs", "python_isolation", "dsn", "describe", "PATRONI_LAUNCH"]

# Patroni's dynamic settings (written to etcd at bootstrap). The fastest honest values:
# - ttl 20: Patroni's floor. The leader key lives this long after its last refresh; a lost
#   leader is replaced only once it has expired.
# - loop_wait 2: the HA loop's period, hence how often the leader refreshes its key (the leader
#   key is at most loop_wait old when the node dies, so it expires ttl - loop_wait .. ttl later).
# - retry_timeout 4: how long etcd and PostgreSQL calls are retried before the leader demotes
#   itself. Patroni's own rule: loop_wait + 2 * retry_timeout <= ttl (here 10 <= 20).
# - maximum_lag_on_failover 1 MiB: a replica further behind than this never promotes (it would
#   lose more than that of acknowledged writes).
# - synchronous_mode off: the measured default is asynchronous replication, whose loss on a node
#   crash is what the benchmark reports; up(..., synchronous=True) turns it on.
# - failsafe_mode on: with etcd's quorum lost, a leader that every other Patroni member still
#   confirms over the REST API keeps its role (no member can be promoted behind its back, so no
#   split brain) instead of demoting. The BCP promises 99.9 % uptime: an outage of the
#   consensus store alone must not become an outage of the database. Measured with
#   bench/failover.py --consensus: off, writes stopped 5.9 s into a 40 s etcd outage; on, none stopped.
SETTINGS = {
    "ttl": 20,
    "loop_wait": 2,
    "retry_timeout": 4,
    "maximum_lag_on_failover": 1024 * 1024,
    "synchronous_mode": False,
    "failsafe_mode": True,
}
PATRONI_TTL_FLOOR_S = 20
# From the leader key's expiry to a writable new primary: the standby's pg_ctl promote and
# Patroni's own bookkeeping. Measured: 0.4-2.3 s over the key's expiry in 10 failovers
# (bench/failover.py --failovers 10: client RTO 18.40-20.35 s, the key expiring 18-20 s after
# the last refresh). The low end was 1.0 s until that run flagged six fast failovers.
PROMOTION_S = (0.3, 2.0)

SCOPE = "gameday-ha"
ETCD = ("e0", "e1", "e2")
MEMBERS = ("pg0", "pg1")
MARKER = ".gameday-ha"  # in the home: its port base and server folder, so down() needs only the home
REST_USER = "gameday"  # Patroni's REST API asks it for every change (switchover, config)
REPLICATION_USER = "replicator"
# etcd's raft timing for a loaded 2-core machine: heartbeats every 100 ms (its default) and an
# election after 1 s without one (default 1000 ms too, stated so a reader sees both).
ETCD_HEARTBEAT_MS = 100
ETCD_ELECTION_MS = 1000


class HAError(RuntimeError):
    """The HA tier cannot do what was asked; one sentence for a person."""


def check_settings(settings: dict) -> None:
    """Raise ValueError naming the first setting Patroni would reject or that breaks its rule."""
    ttl, loop_wait, retry = settings["ttl"], settings["loop_wait"], settings["retry_timeout"]
    if ttl < PATRONI_TTL_FLOOR_S:
        raise ValueError(f"ttl {ttl} s is below Patroni's floor of {PATRONI_TTL_FLOOR_S} s")
    if loop_wait < 1 or retry < 1:
        raise ValueError(f"loop_wait ({loop_wait}) and retry_timeout ({retry}) must be at least 1 s")
    if loop_wait + 2 * retry > ttl:
        raise ValueError(f"loop_wait + 2 * retry_timeout = {loop_wait + 2 * retry} s exceeds ttl {ttl} s "
                         f"(Patroni's rule: a leader must be able to retry twice before its key expires)")


def expected_failover_window(settings: dict = SETTINGS) -> tuple[float, float]:
    """(low_s, high_s): how long after a leader node is lost the other member should accept writes.

    The leader refreshes its key every loop_wait, so when the node dies the key has between
    ttl - loop_wait and ttl left to live; the standby notices the expiry within loop_wait (etcd's
    watch usually wakes it at once); promotion takes PROMOTION_S. Hence

        low  = ttl - loop_wait + PROMOTION_S[0]
        high = ttl + loop_wait + PROMOTION_S[1]

    (20, 2, 4 → 18.3–24 s). The high end is the goal for the median automatic failover."""
    check_settings(settings)
    ttl, loop_wait = settings["ttl"], settings["loop_wait"]
    return float(ttl - loop_wait + PROMOTION_S[0]), float(ttl + loop_wait + PROMOTION_S[1])


def port_offsets() -> dict[str, int]:
    """Listener name → offset from the port base."""
    out = {}
    for i, e in enumerate(ETCD):
        out[f"etcd-{e}"] = i
        out[f"etcd-{e}-peer"] = len(ETCD) + i
    for i, m in enumerate(MEMBERS):
        out[f"postgres-{m}"] = 2 * len(ETCD) + i
        out[f"rest-{m}"] = 2 * len(ETCD) + len(MEMBERS) + i
    return out


@dataclass(frozen=True)
class HaLayout:
    """Where one HA cluster lives. `srv` holds what the database's OS user must reach (data,
    archive, sockets, Patroni's own files); it is `home/srv` unless that user cannot traverse the
    home's parent (cluster.py decides, as the embedded stack's Layout does)."""
    home: Path
    port_base: int
    srv: Path

    def __post_init__(self):
        top = self.port_base + max(port_offsets().values())
        if self.port_base < 1024 or top > MAX_PORT:
            raise HAError(f"port base {self.port_base} puts ports outside 1024..{MAX_PORT} "
                          f"(uses {self.port_base}..{top})")

    def port(self, name: str) -> int:
        return self.port_base + port_offsets()[name]

    # The home: owned by whoever runs the harness.
    @property
    def marker(self) -> Path: return self.home / MARKER
    @property
    def cluster_file(self) -> Path: return self.home / "cluster.json"
    @property
    def logs(self) -> Path: return self.home / "logs"
    @property
    def secrets_dir(self) -> Path: return self.home / "secrets"  # 0700
    @property
    def passfile(self) -> Path: return self.secrets_dir / "pgpass"  # postgres and svgai, libpq format
    @property
    def ha_secrets(self) -> Path: return self.secrets_dir / "ha.json"  # replication and REST passwords
    @property
    def supervisor_conf(self) -> Path: return self.home / "supervisord.conf"
    @property
    def supervisor_pidfile(self) -> Path: return self.home / "supervisord.pid"

    def etcd_dir(self, member: str) -> Path:
        return self.home / "etcd" / member

    @property
    def supervisor_socket(self) -> Path:
        """In the home, or under /tmp when the home's path is too long for a unix socket."""
        inside = self.home / "supervisor.sock"
        if len(str(inside)) <= 100:
            return inside
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"gameday-ha-supervisor-{digest}.sock"

    # The server folders: owned by the database's OS user.
    @property
    def archive_dir(self) -> Path: return self.srv / "archive"  # shared by both members
    @property
    def socket_dir(self) -> Path: return self.srv / "run"
    @property
    def bin_dir(self) -> Path: return self.srv / "bin"
    @property
    def holds_dir(self) -> Path: return self.srv / "holds"
    @property
    def launcher(self) -> Path: return self.bin_dir / "patroni-launch.sh"

    def member_dir(self, member: str) -> Path:
        return self.srv / member

    def data_dir(self, member: str) -> Path:
        return self.member_dir(member) / "data"

    def patroni_conf(self, member: str) -> Path:
        return self.member_dir(member) / "patroni.yml"  # 0600: it holds passwords

    def agent_pidfile(self, member: str) -> Path:
        return self.member_dir(member) / "patroni.pid"

    def hold_file(self, member: str) -> Path:
        return self.holds_dir / member

    def log(self, program: str) -> Path:
        return self.logs / f"{program}.log"


def etcd_url(layout: HaLayout, member: str, peer: bool = False) -> str:
    return f"http://127.0.0.1:{layout.port(f'etcd-{member}' + ('-peer' if peer else ''))}"


def etcd_command(layout: HaLayout, member: str, etcd_bin: str = "etcd") -> str:
    """One etcd member's command line. --initial-cluster-state new only matters on the first
    start: with a data folder, etcd rejoins from it. The token keeps members of two clusters on
    one machine from ever joining each other."""
    peers = ",".join(f"{e}={etcd_url(layout, e, peer=True)}" for e in ETCD)
    token = f"{SCOPE}-{hashlib.sha256(str(layout.home).encode()).hexdigest()[:12]}"
    return (f"{etcd_bin} --name {member} --data-dir {layout.etcd_dir(member)} "
            f"--listen-client-urls {etcd_url(layout, member)} --advertise-client-urls {etcd_url(layout, member)} "
            f"--listen-peer-urls {etcd_url(layout, member, peer=True)} "
            f"--initial-advertise-peer-urls {etcd_url(layout, member, peer=True)} "
            f"--initial-cluster {peers} --initial-cluster-state new --initial-cluster-token {token} "
            f"--heartbeat-interval {ETCD_HEARTBEAT_MS} --election-timeout {ETCD_ELECTION_MS} "
            f"--logger zap --log-outputs stderr")


# Loopback only. Over TCP every role gives its password (scram-sha-256): clients, replication,
# pg_rewind (as the superuser). Over the unix socket only the database's OS user, as postgres:
# that is how Patroni talks to its own server, and how the stack takes its base backups
# (pg_basebackup streams its WAL over a replication connection).
PG_HBA = [
    "local all postgres peer",
    "local replication postgres peer",
    f"host replication {REPLICATION_USER} 127.0.0.1/32 scram-sha-256",
    "host all all 127.0.0.1/32 scram-sha-256",
]


@dataclass(frozen=True)
class MemberPlace:
    """Where one Patroni member listens and keeps its files: on this machine (member_place) or in
    a container (harness/targets/containers/ha_stack.py). The configuration is the same otherwise."""
    rest_listen: str
    rest_connect: str
    pg_listen: str
    pg_connect: str
    etcd_hosts: tuple[str, ...]
    data_dir: str
    pgpass: str
    socket_dir: str
    archive_dir: str
    pg_bin: str
    pg_hba: tuple[str, ...]


def member_place(layout: HaLayout, member: str) -> MemberPlace:
    """A member of the embedded cluster: everything on 127.0.0.1, ports from the layout."""
    pg, rest = layout.port(f"postgres-{member}"), layout.port(f"rest-{member}")
    return MemberPlace(
        rest_listen=f"127.0.0.1:{rest}", rest_connect=f"127.0.0.1:{rest}",
        pg_listen=f"127.0.0.1:{pg}", pg_connect=f"127.0.0.1:{pg}",
        etcd_hosts=tuple(f"127.0.0.1:{layout.port(f'etcd-{e}')}" for e in ETCD),
        data_dir=str(layout.data_dir(member)),
        pgpass=str(layout.member_dir(member) / "pgpass"),  # Patroni's own, for replication and rewind
        socket_dir=str(layout.socket_dir), archive_dir=str(layout.archive_dir), pg_bin=str(PG_BIN),
        pg_hba=tuple(PG_HBA))


def patroni_config(layout: HaLayout, member: str, passwords: dict[str, str], settings: dict = SETTINGS) -> dict:
    """Patroni's configuration for one member of the embedded cluster. `passwords`: postgres,
    replicator, rest."""
    return member_config(member_place(layout, member), member, passwords, settings)


def member_config(place: MemberPlace, member: str, passwords: dict[str, str], settings: dict = SETTINGS) -> dict:
    """Patroni's configuration for one member, wherever it runs."""
    check_settings(settings)
    return {
        "scope": SCOPE,
        "name": member,
        "log": {"level": "INFO", "deduplicate_heartbeat_logs": True},
        "restapi": {"listen": place.rest_listen, "connect_address": place.rest_connect,
                    "authentication": {"username": REST_USER, "password": passwords["rest"]}},
        "etcd3": {"hosts": list(place.etcd_hosts), "protocol": "http"},
        "bootstrap": {
            # Written to etcd once, when the cluster is initialised; shared by both members.
            "dcs": {**settings, "postgresql": {
                "use_pg_rewind": True,
                "use_slots": True,
                "parameters": {
                    "wal_level": "replica",
                    "hot_standby": "on",
                    "max_connections": 100,
                    "shared_buffers": "64MB",
                    "max_wal_senders": 10,
                    "max_replication_slots": 10,
                    "wal_keep_size": "256MB",
                    # A standby retries its WAL source this often; the default 5 s showed up as
                    # slow promotions in the embedded stack's failovers.
                    "wal_retrieve_retry_interval": "500ms",
                    "archive_mode": "on",
                    "archive_command": postgres.archive_command(place.archive_dir),  # the plain tier's, same reasons
                    # As on the plain tier: a segment is archived at least this often, or a quiet
                    # primary's archive lags until 16 MB of WAL fill one (the RPO exposure of the
                    # archive then grew past the 30 s warning within a minute of light load).
                    "archive_timeout": "5s",
                    "log_line_prefix": "%m [%p] ",
                }}},
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, {"auth-local": "peer"},
                       {"auth-host": "scram-sha-256"}],
        },
        "postgresql": {
            "listen": place.pg_listen,
            "connect_address": place.pg_connect,
            "data_dir": place.data_dir,
            "bin_dir": place.pg_bin,
            "pgpass": place.pgpass,
            "use_unix_socket": True,
            "authentication": {"superuser": {"username": "postgres", "password": passwords["postgres"]},
                               "replication": {"username": REPLICATION_USER, "password": passwords["replicator"]}},
            "parameters": {"unix_socket_directories": place.socket_dir},
            "pg_hba": list(place.pg_hba),
            "basebackup": [{"checkpoint": "fast"}],  # a new replica does not wait for a spread checkpoint
            # A member whose rewind fails, or whose timeline diverged past rewinding, is rebuilt
            # from the leader instead of waiting for a person: a game day must end healed.
            "remove_data_directory_on_rewind_failure": True,
            "remove_data_directory_on_diverged_timelines": True,
        },
    }


# Runs in front of each Patroni agent (as the database's OS user). While the member's hold file
# exists it waits: a node "lost" by kill_node stays down although supervisord restarts this
# script; start_node removes the hold. Then it writes the agent's pid (its own: exec keeps it).
# A template: launchers.render fills in the HELD and STALE_PIDFILE snippets every launcher shares.
PATRONI_LAUNCH = r"""#!/bin/bash
# patroni-launch HOLD_FILE PIDFILE DATA_DIR command...
set -u
HOLD="$1"; PIDFILE="$2"; DATA="$3"; shift 3
HELD
while held; do sleep 0.2 & wait $!; done
STALE_PIDFILE
echo $$ > "$PIDFILE"
exec "$@"
"""


def python_isolation(pythonpath: str | None) -> str:
    """The interpreter flag that keeps Patroni on this venv's packages: -s (no user site) with the
    venv's own Python; -S (no site at all) with a system Python over PYTHONPATH, whose own
    packages would otherwise mix in (Debian's pyOpenSSL breaks urllib3 beside the venv's cryptography)."""
    return "-S" if pythonpath else "-s"


def programs(layout: HaLayout, *, etcd_bin: str, python: str, pythonpath: str | None,
             server_user: str | None) -> list[supervisor.Program]:
    """supervisord's programs: the etcd members first (priority 100), then the Patroni agents,
    which supervisord stops first. Patroni stops its PostgreSQL on SIGTERM."""
    progs = [supervisor.Program(f"etcd-{e}", etcd_command(layout, e, etcd_bin), priority=100) for e in ETCD]
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    for m in MEMBERS:
        progs.append(supervisor.Program(
            f"patroni-{m}",
            f"{layout.launcher} {layout.hold_file(m)} {layout.agent_pidfile(m)} {layout.data_dir(m)} "
            f"{python} {python_isolation(pythonpath)} -m patroni {layout.patroni_conf(m)}",
            user=server_user, environment=env, stopsignal="TERM", stopwaitsecs=30, priority=200))
    return progs


def dsn(layout: HaLayout, user: str = "svgai", dbname: str = "svgai") -> str:
    """A libpq DSN that follows the leader: both members, the one that accepts writes wins."""
    ports = ",".join(str(layout.port(f"postgres-{m}")) for m in MEMBERS)
    hosts = ",".join("127.0.0.1" for _ in MEMBERS)
    return (f"host={hosts} port={ports} dbname={dbname} user={user} target_session_attrs=read-write "
            f"connect_timeout=2 passfile={conninfo_value(layout.passfile)}")


def describe(layout: HaLayout, settings: dict) -> dict:
    """The cluster handle every function of this package takes: plain JSON-able data."""
    return {
        "kind": "ha",
        "scope": SCOPE,
        "home": str(layout.home),
        "port_base": layout.port_base,
        "srv_dir": str(layout.srv),
        "etcd_endpoints": [etcd_url(layout, e) for e in ETCD],
        "members": {m: {
            "api_url": f"http://127.0.0.1:{layout.port(f'rest-{m}')}",
            "port": layout.port(f"postgres-{m}"),
            "data_dir": str(layout.data_dir(m)),
            "program": f"patroni-{m}",
            "agent_pidfile": str(layout.agent_pidfile(m)),
            "postmaster_pidfile": str(layout.data_dir(m) / "postmaster.pid"),
            "hold_file": str(layout.hold_file(m)),
            "log": str(layout.log(f"patroni-{m}")),
        } for m in MEMBERS},
        "dsn": dsn(layout),
        "admin_dsn": dsn(layout, user="postgres", dbname="postgres"),
        "passfile": str(layout.passfile),
        "rest_secrets": str(layout.ha_secrets),
        "archive_dir": str(layout.archive_dir),
        "supervisor_url": f"unix://{layout.supervisor_socket}",
        "settings": dict(settings),
        "expected_failover_window_s": list(expected_failover_window(settings)),
    }
