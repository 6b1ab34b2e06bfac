"""The container target: the SVG AI reference system as Docker containers, started with
testcontainers on two Docker networks, every port published on 127.0.0.1 only.

  etcd-e0 etcd-e1 etcd-e2   Patroni's consensus store, one Raft quorum (network db)
  pg0 pg1         Patroni nodes: the agent (PID 1) and the PostgreSQL 15 it runs; one leads, the
                  other streams from it; a WAL archive volume shared by both (network db).
                  The embedded stack's patroni tier in containers (harness/targets/containers/ha.py)
  api             gunicorn + uvicorn workers (the replicas) from the project's .venv, mounted
                  read-only (networks db and front)
  prometheus      scrapes the API every second; the embedded stack's alert rules (network front)
  alertmanager    delivers alerts to the alert receiver (network front)
  alert-receiver  logs delivered alerts into the home (detection evidence)
  heartbeat       one keyed write a second through the API into the home's ledger (RPO)

Every port is published on 127.0.0.1, which any local user can reach, so the databases ask every
TCP connection for a password (scram-sha-256): generated at the first `up` into the home's
`secrets/pgpass` (0600 in a 0700 folder), as the embedded stack's, and mounted read-only into the
API's container; the Patroni nodes read their configuration (it holds the passwords) from
`secrets/ha/`, mounted read-only. Prometheus runs without its lifecycle API.

The database network (db) is what the network faults cut or slow: the API loses its database
while everything else, the harness included, still reaches the API. The harness reaches the
servers, Patroni's REST APIs and etcd through their published ports.

`up` is idempotent: a stack already up is only checked; a broken one (a container stopped, paused
or cut off by a harness that died) is repaired; anything else starts from scratch, and a failed
start takes down what it started. Every container and network carries the label
`org.gameday.home=<home>` and `down` removes by that label: no container, network or volume is
left. Containers restart by themselves (restart policy `always`: the supervision analogue), on
their own files; a PostgreSQL that dies is Patroni's to restart, as on the embedded patroni tier.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from harness.targets import description as target_mod
from harness.targets.containers import engine
from harness.targets.containers import ha
from harness.targets.containers import images
from harness.targets.containers.engine import EngineError
from harness.records.heartbeat_ledger import freshness
from harness.core import ports
from harness.core.pgroles import conninfo_value
from harness.targets import credentials
from harness.targets.embedded.ha import nodes
from harness.targets.embedded.ha.config import ETCD, MEMBERS, HAError
from harness.targets.embedded.monitoring import RULES, alertmanager_config
from harness.targets.embedded.stack import HARNESS_ENTRIES
from harness.targets.description import PROJECT_ROOT

for _k, _v in engine.TESTCONTAINERS_ENV.items():
    os.environ.setdefault(_k, _v)
os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"  # always: its image cannot be pulled; `down` does its job

__all__ = ["KIND", "COMPONENTS", "ContainersError", "up", "down", "status", "describe", "is_containers_home",
           "DEFAULT_PORT_BASE", "API_REPLICAS", "DB_TIER"]

KIND = "containers"
DB_TIER = "patroni"  # the only one: the plain pair stays the embedded stack's, for the runbook's own tests
DEFAULT_PORT_BASE = 17400  # beside an embedded stack on its default 15400
API_REPLICAS = 2
SECRETS_MOUNT = "/run/gameday-secrets"  # the home's secrets folder, read-only, in the database and API containers
API_WORKER_TIMEOUT_S = 10
HEARTBEAT_FRESH_S = 10.0
# Published listeners: name -> (component, container port, host-port offset from the base). The
# first six are the embedded stack's offsets (one numbering); the servers by member name.
PORTS = {"api": ("api", 8000, 0), "pg0": ("pg0", ha.PG_PORT, 1), "pg1": ("pg1", ha.PG_PORT, 2),
         "prometheus": ("prometheus", 9090, 3), "alertmanager": ("alertmanager", 9093, 4),
         "alert-receiver": ("alert-receiver", 9095, 5),
         "rest-pg0": ("pg0", ha.REST_PORT, 6), "rest-pg1": ("pg1", ha.REST_PORT, 7),
         **{f"etcd-{e}": (f"etcd-{e}", ha.ETCD_CLIENT_PORT, 8 + i) for i, e in enumerate(ETCD)}}
COMPONENTS = (*ha.ETCD_COMPONENTS, *MEMBERS, "api", "alert-receiver", "alertmanager", "prometheus", "heartbeat")
NETWORKS = ("db", "front")
ON_NETWORKS = {**{c: ("db",) for c in (*ha.ETCD_COMPONENTS, *MEMBERS)}, "api": ("db", "front"),
               "prometheus": ("front",), "alertmanager": ("front",), "alert-receiver": ("front",), "heartbeat": ("front",)}
START_TIMEOUT_S = {**{c: 30 for c in ha.ETCD_COMPONENTS}, **{m: 90 for m in MEMBERS}, "api": 120,
                   "alert-receiver": 30, "alertmanager": 30, "prometheus": 30, "heartbeat": 30}
ARCHIVE_VOLUME = "archive"
MAX_PORT = 32767  # 32768+ is the kernel's range for outgoing connections


class ContainersError(RuntimeError):
    """The container target cannot come up or go down: one sentence for a person."""


def is_containers_home(home: str | os.PathLike | None) -> bool:
    """Whether the home (default: $GAMEDAY_HOME or .gameday) holds a container target."""
    marker = Path(home or target_mod.default_home()) / ".gameday-home"
    try:
        return json.loads(marker.read_text()).get("kind") == KIND
    except (OSError, ValueError, AttributeError):
        return False


def port_base(value: str | int | None, home: Path) -> int:
    """--port-base, else the home's recorded base, else $GAMEDAY_PORT_BASE, else 17400."""
    raw = value
    if raw is None:
        try:
            raw = json.loads((home / ".gameday-home").read_text())["port_base"]
        except (OSError, ValueError, KeyError, TypeError):
            raw = os.environ.get("GAMEDAY_PORT_BASE", DEFAULT_PORT_BASE)
    try:
        base = int(raw)
    except (TypeError, ValueError):
        raise ContainersError(f"port base must be a whole number, got {raw!r}") from None
    top = base + max(off for _, _, off in PORTS.values())
    if base < 1024 or top > MAX_PORT:
        raise ContainersError(f"port base {base} puts ports outside 1024..{MAX_PORT} (uses {base}..{top})")
    return base


class _Names:
    """Names of one home's containers and networks: a hash of the home keeps homes apart."""

    def __init__(self, home: Path, base: int):
        self.home, self.base = home, base
        self.prefix = "gameday-" + hashlib.sha256(str(home).encode()).hexdigest()[:8]

    def container(self, component: str) -> str:
        return f"{self.prefix}-{component}"

    def network(self, which: str) -> str:
        return f"{self.prefix}-{which}"

    def port(self, listener: str) -> int:
        return self.base + PORTS[listener][2]

    def url(self, component: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port(component)}{path}"

    @property
    def conf_dir(self) -> Path: return self.home / "containers"
    @property
    def model_dir(self) -> Path: return self.home / "models"
    @property
    def config_path(self) -> Path: return self.home / "config" / "svgai.json"
    @property
    def heartbeat_dir(self) -> Path: return self.home / "heartbeat"
    @property
    def alerts_log(self) -> Path: return self.home / "alerts.jsonl"
    @property
    def secrets_dir(self) -> Path: return self.home / "secrets"  # 0700, as the embedded stack's
    @property
    def passfile(self) -> Path: return self.secrets_dir / "pgpass"  # mounted read-only where needed
    @property
    def ha_configs(self) -> Path: return self.secrets_dir / "ha"  # each member's Patroni YAML, mounted read-only
    @property
    def ha_home(self) -> Path: return self.home / "ha"  # the cluster handle (cluster.json)

    def volume(self, which: str) -> str:
        return f"{self.prefix}-{which}"

    def dsn(self, component: str, dbname: str, user: str) -> str:
        return _dsn(self.port(component), dbname, user, self.passfile)


def describe(n: _Names, leader: str | None = None) -> dict:
    """The target description (target.json): the same fields probes, recorders and checkers read
    for the embedded stack's patroni tier, plus where each container is. `primary` and `standby`
    are the members in those roles when it was written; the faults ask the servers again (roles
    move with every failover)."""
    def server(member: str) -> dict:
        return {"port": n.port(member), "dsn": n.dsn(member, "svgai", "svgai"),
                "admin_dsn": n.dsn(member, "svgai", "postgres"), "container": n.container(member),
                "program": member, "member": member}
    first = leader if leader in MEMBERS else MEMBERS[0]
    second = next(m for m in MEMBERS if m != first)
    cluster = _handle(n)
    return {
        "kind": KIND,
        "name": "svg-ai (container target)",
        "home": str(n.home),
        "port_base": n.base,
        "image": images.image_tag(),
        "api_url": n.url("api"),
        "api_replicas": API_REPLICAS,
        # Multi-host: whichever server accepts writes, as the embedded stack's.
        "app_dsn": cluster["dsn"],
        "passfile": str(n.passfile),
        "primary": server(first),
        "standby": server(second),
        "db_tier": DB_TIER,
        "ha": cluster,
        "model_dir": str(n.model_dir),
        "config_path": str(n.config_path),
        "prometheus_url": n.url("prometheus"),
        "alertmanager_url": n.url("alertmanager"),
        "alert_receiver_url": n.url("alert-receiver"),
        "alerts_log": str(n.alerts_log),
        "heartbeat_ledger": str(n.heartbeat_dir),
        "containers": {c: n.container(c) for c in COMPONENTS},
        "networks": {w: n.network(w) for w in NETWORKS},
        "database_network": n.network("db"),
        "logs_hint": f"docker logs {n.container('api')} (and the other {n.prefix}-* containers)",
    }


def _handle(n: _Names) -> dict:
    return ha.handle(home=n.home, ha_home=n.ha_home, pg_ports={m: n.port(m) for m in MEMBERS},
                     rest_ports={m: n.port(f"rest-{m}") for m in MEMBERS},
                     etcd_ports={e: n.port(f"etcd-{e}") for e in ETCD},
                     containers={c: n.container(c) for c in COMPONENTS}, passfile=n.passfile,
                     rest_secrets=n.secrets_dir / "ha.json")


# ---------------------------------------------------------------------------------------------

def up(home: str | os.PathLike | None = None, base: int | str | None = None,
       log: Callable[[str], None] = print) -> dict:
    """Bring the container target up (idempotent) and return its target description."""
    home_path = Path(home or target_mod.default_home()).resolve()
    n = _Names(home_path, port_base(base, home_path))
    t_start = time.monotonic()

    def step(msg: str) -> None:
        log(f"[{time.monotonic() - t_start:6.1f}s] {msg}")

    _check_home(n)
    recorded = port_base(None, home_path) if (home_path / ".gameday-home").exists() else n.base
    if recorded != n.base:
        raise ContainersError(f"home {home_path} was set up with port base {recorded}, not {n.base}; "
                              f"use --port-base {recorded} or another --home")
    tag = images.image_tag()
    if not images.image_exists(tag):
        raise ContainersError(f"image {tag} is not built; run scripts/setup.sh as root (it builds it from Debian packages)")
    c = _client()
    existing = engine.owned(c, str(n.home))["containers"]
    if existing:
        _repair(c, n, existing, step)
        st = status(n.home)
        if st["healthy"]:
            target = _save_description(n)
            target_mod.save(target, n.home / target_mod.TARGET_FILE)
            step(f"container target up: API {target['api_url']}")
            return target
        bad = ", ".join(f"{x['name']} ({x['detail']})" for x in st["components"] if not x["healthy"])
        raise ContainersError(f"the container target in {n.home} is up but unhealthy: {bad}; "
                              f"'gameday target down --home {n.home}' then up again starts it afresh")
    _check_ports_free(n)
    try:
        n.home.mkdir(parents=True, exist_ok=True)
        (n.home / ".gameday-home").write_text(json.dumps({"port_base": n.base, "kind": KIND}) + "\n")
        for d in (n.conf_dir, n.heartbeat_dir, n.model_dir.parent):
            d.mkdir(parents=True, exist_ok=True)
        if not (n.model_dir / "manifest.json").exists():
            step("training models (torch quality predictor, sklearn regressors)")
            _run_py(["-m", "svgai.train", "--model-dir", str(n.model_dir), "--config", str(n.config_path)],
                    "model training")
        _write_monitoring_configs(n)
        passwords = credentials.ensure_ha(n.secrets_dir, n.passfile, host="*")
        _write_ha_configs(n, passwords)
        step(f"creating networks {n.network('db')}, {n.network('front')} and the WAL archive's volume")
        nets = {w: _network(n, w) for w in NETWORKS}
        _volume(n, ARCHIVE_VOLUME)
        for component in ha.ETCD_COMPONENTS:
            _start(n, nets, component, step)
        _wait_healthy(n, ha.ETCD_COMPONENTS, 30)
        for member in MEMBERS:  # pg0 first: it initialises the cluster, pg1 then clones it
            _start(n, nets, member, step)
        step("waiting for Patroni: a leader, and a replica streaming from it")
        cluster = _handle(n)
        try:
            leader = nodes.wait_healthy(cluster, 90.0)
        except HAError as e:
            raise ContainersError(f"the Patroni cluster did not form: {e}; see docker logs {n.container('pg0')}") from None
        step(f"creating the application database and schema on the leader {leader}")
        _create_app_database(n, leader, passwords["svgai"])
        _run_py(["-m", "svgai.migrate", "--dsn", n.dsn(leader, "svgai", "svgai")], "schema migration")
        for component in ("api", "alert-receiver", "alertmanager", "prometheus", "heartbeat"):
            _start(n, nets, component, step)
        step("waiting for Prometheus to scrape the API and the first heartbeats")
        _wait_healthy(n, ("prometheus", "heartbeat", *MEMBERS), 60)
        target = _save_description(n)
        step(f"container target up: API {target['api_url']}, Prometheus {target['prometheus_url']}, "
             f"target description {n.home / target_mod.TARGET_FILE}")
        return target
    except BaseException as e:
        try:
            down(n.home, log=lambda m: None)
        except Exception:
            pass
        if isinstance(e, (ContainersError, KeyboardInterrupt)):
            raise
        raise ContainersError(f"the container target did not come up: {type(e).__name__}: "
                              f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}") from None


def down(home: str | os.PathLike | None = None, log: Callable[[str], None] = print) -> dict:
    """Remove every container, network and volume labelled with this home. Returns what was removed."""
    home_path = Path(home or target_mod.default_home()).resolve()
    c = _client()
    found = engine.owned(c, str(home_path))
    for container in found["containers"]:
        container.remove(force=True, v=True)
    for network in found["networks"]:
        network.remove()
    for volume in found["volumes"]:
        volume.remove(force=True)
    left = engine.owned(c, str(home_path))
    if any(left.values()):
        raise ContainersError("after down, still present: " + ", ".join(
            f"{kind} {getattr(x, 'name', x)}" for kind, xs in left.items() for x in xs))
    target_file = home_path / target_mod.TARGET_FILE
    target_file.unlink(missing_ok=True)
    removed = {k: [x.name for x in v] for k, v in found.items()}
    log(f"container target down: removed {len(removed['containers'])} containers, {len(removed['networks'])} "
        f"networks, {len(removed['volumes'])} volumes")
    return removed


def status(home: str | os.PathLike | None = None) -> dict:
    """Every component's container state and health, in the embedded stack's status shape."""
    home_path = Path(home or target_mod.default_home()).resolve()
    try:
        n = _Names(home_path, port_base(None, home_path))
        c = _client()
    except (ContainersError, EngineError) as e:
        return {"api_url": None, "home": str(home_path), "healthy": False, "error": str(e), "components": []}
    by_component = {x.labels.get(engine.COMPONENT_LABEL): x for x in engine.owned(c, str(n.home))["containers"]}
    components = []
    for name in COMPONENTS:
        x = by_component.get(name)
        state = x.attrs["State"] if x is not None else {}
        st = "paused" if state.get("Paused") else state.get("Status", "absent")
        healthy, detail = _health(n, name) if st == "running" else (False, f"container {st}")
        components.append({"name": name, "healthy": healthy, "pid": state.get("Pid") or None, "state": st,
                           "detail": detail, "container": n.container(name)})
    return {"api_url": n.url("api"), "home": str(n.home), "kind": KIND, "healthy": all(x["healthy"] for x in components),
            "components": components}


# ---------------------------------------------------------------------------------------------
# Internals

def _client():
    try:
        return engine.client()
    except EngineError as e:
        raise ContainersError(str(e)) from None


def _dsn(port: int, dbname: str, user: str, passfile: Path) -> str:
    return f"host=127.0.0.1 port={port} dbname={dbname} user={user} connect_timeout=2 passfile={conninfo_value(passfile)}"


def _check_home(n: _Names) -> None:
    home = n.home
    if home.exists() and not home.is_dir():
        raise ContainersError(f"home {home} is a file, not a folder")
    marker = home / ".gameday-home"
    if marker.exists() and not is_containers_home(home):
        raise ContainersError(f"home {home} holds an embedded stack; choose another --home for the container target")
    foreign = [p for p in home.iterdir() if p.name not in HARNESS_ENTRIES] if home.is_dir() else []
    if foreign and not marker.exists():
        raise ContainersError(f"home {home} is not empty and is not a gameday home; choose another --home")


def _check_ports_free(n: _Names) -> None:
    for listener, port in ports.in_use({listener: n.port(listener) for listener in PORTS})[:1]:
        raise ContainersError(f"port {port} ({listener}) on 127.0.0.1 is in use; stop what holds "
                              f"it or choose another --port-base")


def _run_py(args: list[str], what: str) -> None:
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=PROJECT_ROOT)
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        raise ContainersError(f"{what} failed: {lines[-1] if lines else 'exit ' + str(r.returncode)}")


def _venv_mounts() -> list[tuple[str, str]]:
    """The project (the .venv inside it, editable install) and the interpreter the .venv was made
    from, mounted read-only at the same paths, so the .venv's absolute paths hold in the container.
    An interpreter under /usr is the image's own python3.11."""
    mounts = [(str(PROJECT_ROOT), str(PROJECT_ROOT))]
    cfg = Path(sys.prefix) / "pyvenv.cfg"
    try:
        home = next(line.split("=", 1)[1].strip() for line in cfg.read_text().splitlines()
                    if line.split("=", 1)[0].strip() == "home")
    except (OSError, StopIteration):
        home = str(Path(sys.base_prefix) / "bin")
    prefix = str(Path(home).resolve().parent)
    if prefix not in ("/usr", "/"):
        mounts.append((prefix, prefix))
    return mounts


def _write_monitoring_configs(n: _Names) -> None:
    (n.conf_dir / "rules.yml").write_text(RULES)  # the embedded stack's alert rules, unchanged
    (n.conf_dir / "prometheus.yml").write_text("""global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files:
  - /etc/gameday/rules.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['alertmanager:9093']
scrape_configs:
  - job_name: svg-ai-api
    static_configs:
      - targets: ['api:8000']
  - job_name: prometheus
    static_configs:
      - targets: ['localhost:9090']
""")
    (n.conf_dir / "alertmanager.yml").write_text(alertmanager_config("http://alert-receiver:9095/alerts"))


def _network(n: _Names, which: str):
    from testcontainers.core.network import Network
    net = Network(docker_network_kw={"labels": engine.home_labels(str(n.home)), "driver": "bridge"})
    net.name = n.network(which)  # a stable name: faults and people find it by name
    return net.create()


def _spec(n: _Names, component: str) -> tuple[list[str], dict, list[tuple[str, str, str]], object]:
    """(command, environment, volume mounts, wait strategy) of one component."""
    from testcontainers.core.wait_strategies import ContainerStatusWaitStrategy, HttpWaitStrategy
    venv = Path(sys.prefix)
    py = str(venv / "bin" / "python")
    code = [(src, dst, "ro") for src, dst in _venv_mounts()]
    home_rw = [(str(n.home), str(n.home), "rw")]
    secrets = [(str(n.secrets_dir), SECRETS_MOUNT, "ro")]
    env_py = {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    if component in ha.ETCD_COMPONENTS:
        return ha.etcd_command(component.split("-", 1)[1], n.home), {}, [], ContainerStatusWaitStrategy()
    if component in MEMBERS:
        site = sysconfig.get_paths()["purelib"]  # the .venv's packages: Patroni and what it imports
        mounts = [(str(n.ha_configs), ha.CONFIG_MOUNT, "ro"), (n.volume(ARCHIVE_VOLUME), ha.ARCHIVE_MOUNT, "rw"),
                  (site, ha.SITE_MOUNT, "ro")]
        return ["gameday-patroni", component], {}, mounts, ContainerStatusWaitStrategy()
    if component == "api":
        cmd = [str(venv / "bin" / "gunicorn"), "svgai.api:app", "-k", "uvicorn_worker.UvicornWorker",
               "-w", str(API_REPLICAS), "--timeout", str(API_WORKER_TIMEOUT_S), "--graceful-timeout", "2",
               "--backlog", "2048", "--preload", "--no-control-socket", "-b", "0.0.0.0:8000"]
        hosts, ports_ = ",".join(MEMBERS), ",".join(str(ha.PG_PORT) for _ in MEMBERS)
        env = {**env_py, "SVGAI_DSN": f"host={hosts} port={ports_} dbname=svgai user=svgai "
                                      f"target_session_attrs=read-write connect_timeout=2 passfile={SECRETS_MOUNT}/pgpass",
               "SVGAI_MODEL_DIR": str(n.model_dir), "SVGAI_CONFIG": str(n.config_path),
               "PROMETHEUS_MULTIPROC_DIR": "/run/metrics", "OMP_NUM_THREADS": "1"}
        return cmd, env, code + home_rw + secrets, HttpWaitStrategy(8000, "/ready").for_status_code(200)
    if component == "prometheus":
        cmd = ["prometheus", "--config.file=/etc/gameday/prometheus.yml", "--storage.tsdb.path=/var/lib/gameday/prometheus",
               "--storage.tsdb.retention.time=90d", "--web.listen-address=0.0.0.0:9090"]  # no lifecycle: POST /-/quit
        return cmd, {}, [(str(n.conf_dir), "/etc/gameday", "ro")], HttpWaitStrategy(9090, "/-/ready").for_status_code(200)
    if component == "alertmanager":
        cmd = ["prometheus-alertmanager", "--config.file=/etc/gameday/alertmanager.yml",
               "--storage.path=/var/lib/gameday/alertmanager", "--cluster.listen-address=",
               "--web.listen-address=0.0.0.0:9093"]
        return cmd, {}, [(str(n.conf_dir), "/etc/gameday", "ro")], HttpWaitStrategy(9093, "/-/ready").for_status_code(200)
    if component == "alert-receiver":
        cmd = [py, "-m", "harness.targets.embedded.alert_receiver", "--host", "0.0.0.0", "--port", "9095", "--out", str(n.alerts_log)]
        return cmd, env_py, code + home_rw, HttpWaitStrategy(9095, "/").for_status_code(200)
    if component == "heartbeat":
        cmd = [py, "-m", "harness.recorders.heartbeat", "--api-url", "http://api:8000", "--ledger", str(n.heartbeat_dir)]
        return cmd, env_py, code + home_rw, ContainerStatusWaitStrategy()
    raise ContainersError(f"unknown component {component!r}")


def _start(n: _Names, nets: dict, component: str, step) -> None:
    from testcontainers.core.container import DockerContainer
    step(f"starting {component}")
    cmd, env, mounts, wait = _spec(n, component)
    first, *more = ON_NETWORKS[component]
    container = (DockerContainer(images.image_tag(), command=cmd, env=env, name=n.container(component))
                 .with_network(nets[first]).with_network_aliases(component)
                 .waiting_for(wait.with_startup_timeout(START_TIMEOUT_S[component]).with_poll_interval(0.2)))
    for src, dst, mode in mounts:
        container.with_volume_mapping(src, dst, mode)
    if component == "api":
        container.with_tmpfs_mount("/run/metrics")  # fresh at every start: a restarted pod's metrics are new
    for listener, (owner, port, _) in PORTS.items():
        if owner == component:
            # 127.0.0.1 only (testcontainers' own with_bind_ports publishes on every address).
            container.ports[f"{port}/tcp"] = ("127.0.0.1", n.port(listener))
    # The restart policy is the supervision: a killed container comes back by itself.
    container.with_kwargs(labels=engine.home_labels(str(n.home), component), restart_policy={"Name": "always"},
                          hostname=component)
    if component == "api":
        # Joined to its second network before it is waited for: the API needs both to be ready.
        container._wait_strategy = None
        container.start()
        for extra in more:
            nets[extra].connect(container.get_container_id(), [component])
        wait.wait_until_ready(container)
    else:
        container.start()


def _create_app_database(n: _Names, leader: str, svgai_password: str) -> None:
    import psycopg
    from psycopg import sql
    with psycopg.connect(n.dsn(leader, "postgres", "postgres"), autocommit=True) as c:
        if not c.execute("select 1 from pg_roles where rolname='svgai'").fetchone():
            c.execute("create role svgai login")
        # Over the connection, never on a command line; the replica gets it by replication.
        c.execute(sql.SQL("alter role svgai login password {}").format(sql.Literal(svgai_password)))
        if not c.execute("select 1 from pg_database where datname='svgai'").fetchone():
            c.execute("create database svgai owner svgai")
    with psycopg.connect(n.dsn(leader, "svgai", "postgres"), autocommit=True) as c:
        c.execute("create extension if not exists amcheck")


def _write_ha_configs(n: _Names, passwords: dict) -> None:
    """Each member's Patroni configuration into secrets/ha (0700; files 0600), mounted read-only."""
    import yaml
    n.ha_configs.mkdir(mode=0o700, exist_ok=True)
    for member in MEMBERS:
        credentials.write_private(n.ha_configs / f"{member}.yml",
                                  yaml.safe_dump(ha.member_yaml_config(member, passwords), sort_keys=False))


def _volume(n: _Names, which: str) -> None:
    c = _client()
    c.volumes.create(name=n.volume(which), labels=engine.home_labels(str(n.home), which))


def _save_description(n: _Names) -> dict:
    """target.json, and the cluster handle in ha/cluster.json (what the fault ledger's reaper
    reads to put Patroni's settings back), with the roles as Patroni reports them now."""
    target = describe(n, nodes.leader(_handle(n)))
    n.ha_home.mkdir(exist_ok=True)
    (n.ha_home / "cluster.json").write_text(json.dumps(target["ha"], indent=2) + "\n")
    target_mod.save(target, n.home / target_mod.TARGET_FILE)
    return target


def _repair(c, n: _Names, containers: list, step) -> None:
    """Undo what a dead harness may have left on a running target: a paused or stopped container,
    the API cut off a network, a delay on its database link."""
    for x in containers:
        x.reload()
        component = x.labels.get(engine.COMPONENT_LABEL)
        if x.attrs["State"].get("Paused"):
            step(f"unpausing {component}")
            x.unpause()
        elif not x.attrs["State"].get("Running"):
            step(f"starting {component}")
            x.start()
    api = next((x for x in containers if x.labels.get(engine.COMPONENT_LABEL) == "api"), None)
    if api is not None:
        api.reload()
        for which in ON_NETWORKS["api"]:
            if n.network(which) not in api.attrs["NetworkSettings"]["Networks"]:
                step(f"reconnecting api to {n.network(which)}")
                c.networks.get(n.network(which)).connect(api, aliases=["api"])
        try:
            if engine.netem_clear(api, n.network("db")):
                step("removed a delay left on the API's database link")
        except EngineError:
            pass
    _wait_healthy(n, COMPONENTS, 60, raise_=False)


def _http_ok(url: str, timeout_s: float = 2.0) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.status == 200, f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        return False, f"HTTP {e.code} {e.read()[:200].decode(errors='replace')}"
    except Exception as e:
        return False, f"{type(e).__name__}: {e}"


def _health(n: _Names, component: str) -> tuple[bool, str]:
    if component in ha.ETCD_COMPONENTS:
        healthy = nodes.etcd_member_healthy(n.url(component))
        return healthy, "member of a quorum with a leader" if healthy else "no quorum, or not answering"
    if component in MEMBERS:
        # Patroni's word (what etcd holds), then the server's own: a leader that accepts
        # connections, a replica that streams.
        me = next((m for m in nodes.members(_handle(n)) if m.get("name") == component), None)
        if me is None:
            return False, "not in Patroni's cluster view (no member answered, or it is not registered)"
        if me.get("role") == "leader":
            return (True, "leader, running") if me.get("state") == "running" else (False, f"leader, {me.get('state')}")
        streams = nodes.server_streams(_handle(n), component)
        return (True, f"{me.get('role')}, streaming") if streams else (False, f"{me.get('role')}, {me.get('state')}, not streaming")
    if component == "api":
        return _http_ok(n.url("api", "/ready"))
    if component == "prometheus":
        ok, detail = _http_ok(n.url("prometheus", "/-/ready"))
        if not ok:
            return ok, detail
        q = urllib.parse.quote('up{job="svg-ai-api"}')
        try:
            with urllib.request.urlopen(n.url("prometheus", f"/api/v1/query?query={q}"), timeout=2) as r:
                result = json.load(r)["data"]["result"]
        except Exception as e:
            return False, f"query failed: {e}"
        return (True, "ready, scraping the API") if result and result[0]["value"][1] == "1" else \
            (False, "ready, but the API target is not up yet")
    if component == "alertmanager":
        return _http_ok(n.url("alertmanager", "/-/ready"))
    if component == "alert-receiver":
        return _http_ok(n.url("alert-receiver", "/"))
    if component == "heartbeat":
        return freshness(n.heartbeat_dir, HEARTBEAT_FRESH_S)
    return True, "running"


def _wait_healthy(n: _Names, components, timeout_s: float, raise_: bool = True) -> None:
    deadline = time.monotonic() + timeout_s
    pending = list(components)
    detail = {}
    while pending and time.monotonic() < deadline:
        for component in list(pending):
            ok, detail[component] = _health(n, component)
            if ok:
                pending.remove(component)
        if pending:
            time.sleep(0.3)
    if pending and raise_:
        raise ContainersError(f"{pending[0]} did not become healthy within {timeout_s:.0f} s ({detail[pending[0]]}); "
                              f"see docker logs {n.container(pending[0])}")
