"""The embedded reference stack: the SVG AI system on one machine, supervised.

  postgres-primary   PostgreSQL 15, WAL archiving, one base backup at set-up
  postgres-standby   streaming replica (pg_basebackup -R)
  api                gunicorn + uvicorn workers (the replicas) behind one address
  prometheus         scrapes the API every second; alert rules in seconds
  alertmanager       delivers alerts to the alert receiver
  alert-receiver     logs delivered alerts (detection evidence)
  liveness           kills a hung API so supervision replaces it

`up` is idempotent and never leaves a half-started stack: on any error it takes down what it
started. It writes the target description every other layer reads. It is also the cold start
after everything died at once: stale lock files are cleared, a fenced ex-primary is rebuilt.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

from harness.records import fault_ledger
from harness.core import ports, procs, signing
from harness.records.heartbeat_ledger import freshness
from harness.targets import description as target_mod
from harness.core.errors import first_line
from harness.targets.embedded import artifact_backup, ha, launchers, monitoring, postgres, supervisor
from harness.targets.embedded.layout import (DB_TIERS, DEFAULT_DB_TIER, HA_PORT_OFFSET, PG_BIN, PORT_OFFSETS, Layout, port_base_from_env,
                                             server_user)
from harness.targets.description import PROJECT_ROOT

API_REPLICAS = 2
API_WORKER_TIMEOUT_S = 10
START_ORDER = ("postgres-primary", "postgres-standby", "api", "prometheus", "alertmanager",
               "alert-receiver", "liveness", "heartbeat", "fault-reaper", "rpo-exporter")
DB_PROGRAMS = ("postgres-primary", "postgres-standby")
HEARTBEAT_FRESH_S = 10.0  # the heartbeat counts as healthy while its newest acknowledgement is this recent


class StackError(RuntimeError):
    """Something stops the stack from coming up or going down; one sentence for a person."""


def _release_or_rebuild_held(layout: Layout, sup_url: str, held: list[str], running: list[str], step) -> list[str]:
    """A held PostgreSQL server beside a running primary is a fenced ex-primary: starting it as it
    is would give two primaries (split brain), so it is rebuilt as a standby first. Beside no
    primary, the hold was only a negative control's "restart disabled": release it."""
    primaries = [n for n in running if not postgres.in_recovery(layout.port(n), layout.passfile)]
    for name in held:
        if primaries:
            step(f"{name} was fenced after a failover: rebuilding it as a standby of {primaries[0]}")
            supervisor.stop(sup_url, name)
            postgres.clone_standby(layout, layout.port(primaries[0]), layout.data_dir(name), layout.port(name))
        launchers.release(layout, name)
        supervisor.start(sup_url, name)
        postgres.wait_ready(layout.port(name), 60, name)
    return held


def _venv_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def recorded_port_base(home: Path) -> int | None:
    """The port base a home was set up with (None for a new home: then env or default)."""
    try:
        return int(json.loads((Path(home) / ".gameday-home").read_text())["port_base"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_binaries() -> None:
    missing = [(p, pkg) for p, pkg in (
        (PG_BIN / "postgres", "postgresql-15"), (PG_BIN / "pg_basebackup", "postgresql-15"),
        (Path(shutil.which("prometheus") or "/nonexistent/prometheus"), "prometheus"),
        (Path(shutil.which("prometheus-alertmanager") or "/nonexistent/prometheus-alertmanager"), "prometheus-alertmanager"),
    ) if not p.exists()]
    if missing:
        path, pkg = missing[0]
        raise StackError(f"{path.name} not found; install the Debian package {pkg} (make setup does it as root)")
    for tool in ("gunicorn", "supervisord"):
        if not Path(_venv_bin(tool)).exists():
            raise StackError(f"{tool} not found beside {sys.executable}; run make setup")


# The harness's own bookkeeping may precede the stack: runs in progress, the fault ledger, and the
# evidence signing key with its allowed signers (made at first use, e.g. by `gameday plan create`).
HARNESS_ENTRIES = ("runs", fault_ledger.LEDGER_DIR, "secrets", signing.ALLOWED_SIGNERS_NAME)


def check_home(layout: Layout) -> None:
    home = layout.home
    if home.exists() and not home.is_dir():
        raise StackError(f"home {home} is a file, not a folder")
    foreign = [p for p in home.iterdir() if p.name not in HARNESS_ENTRIES] if home.is_dir() else []
    if foreign and not layout.marker.exists():
        raise StackError(f"home {home} is not empty and is not a gameday home (no {layout.marker.name}); choose another --home")
    if layout.marker.exists():
        try:
            recorded = json.loads(layout.marker.read_text())["port_base"]
        except (ValueError, KeyError, TypeError):
            raise StackError(f"corrupt home {home}: {layout.marker.name} is unreadable; take it down and remove the folder") from None
        if recorded != layout.port_base:
            raise StackError(f"home {home} was set up with port base {recorded}, not {layout.port_base}; "
                             f"use --port-base {recorded} or another --home")
    if layout.primary_dir.exists() and not (layout.primary_dir / "PG_VERSION").exists():
        raise StackError(f"corrupt home {home}: {layout.primary_dir} has no PG_VERSION; take it down and remove the folder")


def stack_programs(layout: Layout) -> tuple[str, ...]:
    """The programs this stack's supervisord runs: with the patroni tier, the database servers
    are the HA cluster's (its own supervisord runs the Patroni agents), not the stack's."""
    return tuple(n for n in START_ORDER if not (layout.db and n in DB_PROGRAMS))


def _stack_ports(layout: Layout) -> dict[str, int]:
    return {name: layout.port(name) for name in PORT_OFFSETS if not (layout.db and name in DB_PROGRAMS)}


def check_ports_free(layout: Layout) -> None:
    for name, port in ports.in_use(_stack_ports(layout))[:1]:
        raise StackError(f"port {port} ({name}) on 127.0.0.1 is in use; stop what holds it or choose "
                         f"another --port-base")


def programs(layout: Layout) -> list[supervisor.Program]:
    return [p for p in _all_programs(layout) if p.name in stack_programs(layout)]


def _all_programs(layout: Layout) -> list[supervisor.Program]:
    pg_user = server_user() if os.geteuid() == 0 else None
    pg_launch = layout.bin_dir / "pg-launch.sh"
    api_launch = layout.bin_dir / "api-launch.sh"
    py = sys.executable
    return [
        supervisor.Program(
            "postgres-primary", f"{pg_launch} {layout.primary_dir} {layout.hold_file('postgres-primary')} {PG_BIN / 'postgres'}",
            user=pg_user, stopsignal="INT", priority=100),
        supervisor.Program(
            "postgres-standby", f"{pg_launch} {layout.standby_dir} {layout.hold_file('postgres-standby')} {PG_BIN / 'postgres'}",
            user=pg_user, stopsignal="INT", priority=110),
        supervisor.Program(
            "api",
            f"{api_launch} {layout.api_pidfile} {layout.hold_file('api')} {layout.metrics_dir} "
            f"{_venv_bin('gunicorn')} svgai.api:app -k uvicorn_worker.UvicornWorker -w {API_REPLICAS} "
            f"--timeout {API_WORKER_TIMEOUT_S} --graceful-timeout 2 --backlog 2048 --preload --no-control-socket "
            f"-b 127.0.0.1:{layout.port('api')}",
            environment={
                "SVGAI_DSN": layout.app_dsn(), "SVGAI_MODEL_DIR": str(layout.model_dir),
                "SVGAI_CONFIG": str(layout.config_path), "PROMETHEUS_MULTIPROC_DIR": str(layout.metrics_dir),
                "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"},
            stopwaitsecs=5, priority=200),
        supervisor.Program(
            "prometheus",
            f"prometheus --config.file={layout.prometheus_dir / 'prometheus.yml'} "
            f"--storage.tsdb.path={layout.prometheus_dir / 'data'} --storage.tsdb.retention.time=90d "
            f"--web.listen-address=127.0.0.1:{layout.port('prometheus')}",
            # No --web.enable-lifecycle: it would let any local user POST /-/quit.
            priority=300),
        supervisor.Program(
            "alertmanager",
            f"prometheus-alertmanager --config.file={layout.alertmanager_dir / 'alertmanager.yml'} "
            f"--storage.path={layout.alertmanager_dir / 'data'} --cluster.listen-address= "
            f"--web.listen-address=127.0.0.1:{layout.port('alertmanager')}",
            priority=300),
        supervisor.Program(
            "alert-receiver", f"{py} -m harness.targets.embedded.alert_receiver --port {layout.port('alert-receiver')} --out {layout.alerts_log}",
            priority=250),
        supervisor.Program(
            "liveness",
            f"{py} -m harness.targets.embedded.liveness --url {layout.url('api', '/health')} --supervisor {layout.supervisor_url} "
            f"--program api --period 1 --timeout 1 --failures 3 --initial-delay 10 --hold {layout.hold_file('api')}",
            priority=400),
        # One keyed write a second for as long as the stack is up: the RPO is measured against it.
        supervisor.Program(
            "heartbeat", f"{py} -m harness.recorders.heartbeat --api-url {layout.url('api')} --ledger {layout.heartbeat_dir}",
            priority=450),
        # Undoes faults whose lease expired (a harness SIGKILLed mid-fault): harness/records/fault_ledger.py.
        supervisor.Program("fault-reaper", f"{py} -m harness.targets.reaper --home {layout.home}", priority=50),
        # The RPO exposure of each way back (WAL archive, standby), all the time, for Prometheus.
        supervisor.Program(
            "rpo-exporter",
            f"{py} -m harness.targets.embedded.rpo_exporter --port {layout.port('rpo-exporter')} --servers "
            f"{layout.port('postgres-primary')},{layout.port('postgres-standby')} --passfile {layout.passfile}",
            priority=460),
    ]


def current_roles(layout: Layout, programs: list[str] = ("postgres-primary", "postgres-standby")) -> dict:
    """Which PostgreSQL program is the primary now. After a failover the standby's program is the
    primary and the old primary's folder is rebuilt as its standby: roles move, programs stay."""
    primaries, standbys = [], []
    for name in programs:
        (standbys if postgres.in_recovery(layout.port(name), layout.passfile) else primaries).append(name)
    if len(primaries) != 1:
        raise StackError("no primary: every PostgreSQL server is in recovery" if not primaries else
                         f"split brain: {' and '.join(primaries)} both accept writes; fence one before going on")
    other = [n for n in ("postgres-primary", "postgres-standby") if n != primaries[0]][0]
    return {"primary": primaries[0], "standby": other}


def _server(layout: Layout, program: str) -> dict:
    return {"port": layout.port(program), "data_dir": str(layout.data_dir(program)), "dsn": layout.dsn(program),
            "admin_dsn": layout.dsn(program, "postgres"), "program": program}


def describe(layout: Layout, roles: dict | None = None) -> dict:
    """The target description for this stack (written to target.json)."""
    roles = roles or {"primary": "postgres-primary", "standby": "postgres-standby"}
    return {
        "kind": "local",
        "name": "svg-ai (embedded reference stack)",
        "home": str(layout.home),
        "port_base": layout.port_base,
        "api_url": layout.url("api"),
        "api_replicas": API_REPLICAS,
        "app_dsn": layout.app_dsn(),
        "passfile": str(layout.passfile),
        "primary": _server(layout, roles["primary"]),
        "standby": _server(layout, roles["standby"]),
        "scratch_port": layout.port("postgres-scratch"),
        "pg_bin": str(PG_BIN),
        "server_user": server_user(),
        "srv_dir": str(layout.srv),
        "archive_dir": str(layout.archive_dir),
        "backup_dir": str(layout.backup_dir),
        "socket_dir": str(layout.socket_dir),
        "holds_dir": str(layout.holds_dir),
        "model_dir": str(layout.model_dir),
        "config_path": str(layout.config_path),
        "artifact_backup_dir": str(layout.artifact_backup_dir),
        "prometheus_url": layout.url("prometheus"),
        "prometheus_data_dir": str(layout.prometheus_dir / "data"),
        "alertmanager_url": layout.url("alertmanager"),
        "alert_receiver_url": layout.url("alert-receiver"),
        "alerts_log": str(layout.alerts_log),
        "heartbeat_ledger": str(layout.heartbeat_dir),
        "rpo_exporter_url": layout.url("rpo-exporter"),
        "supervisor_url": layout.supervisor_url,
        "api_pidfile": str(layout.api_pidfile),
        "logs_dir": str(layout.logs),
        "programs": list(stack_programs(layout)),
        "db_tier": layout.db_tier,
        **({"ha": _ha_handle(layout)} if layout.db else {}),
    }


def _ha_handle(layout: Layout) -> dict | None:
    """The HA cluster's handle (harness/targets/embedded/ha), as its `up` wrote it."""
    try:
        return json.loads((Path(layout.db["ha_home"]) / "cluster.json").read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# Health checks, one per component; each returns (healthy, detail).

def _http_ok(url: str, timeout_s: float = 2.0) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.status == 200, f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        body = e.read()[:300].decode(errors="replace")
        return False, f"HTTP {e.code} {body}"
    except Exception as e:
        return False, f"{type(e).__name__}: {e}"


def _pg_check(layout: Layout, which: str) -> tuple[bool, str]:
    port = layout.port(which)
    try:
        recovering = postgres.in_recovery(port, layout.passfile)
        if not recovering:
            n = len([r for r in postgres.replication_state(port, layout.passfile) if r["state"] == "streaming"])
            return True, f"primary, {n} streaming standby"
        if postgres.wal_receiver_streaming(port, layout.passfile):
            return True, "standby, streaming"
        return False, "standby, not streaming from a primary"
    except Exception as e:
        return False, f"not accepting connections on {port}: {first_line(e)}"


def _prometheus_check(layout: Layout) -> tuple[bool, str]:
    ok, detail = _http_ok(layout.url("prometheus", "/-/ready"))
    if not ok:
        return ok, detail
    try:
        q = urllib.parse.quote('up{job="svg-ai-api"}')
        with urllib.request.urlopen(layout.url("prometheus", f"/api/v1/query?query={q}"), timeout=2) as r:
            result = json.load(r)["data"]["result"]
        if result and result[0]["value"][1] == "1":
            return True, "ready, scraping the API"
        return False, "ready, but the API target is not up yet"
    except Exception as e:
        return False, f"query failed: {e}"


def component_health(layout: Layout, name: str) -> tuple[bool, str]:
    if name in ("postgres-primary", "postgres-standby"):
        return _pg_check(layout, name)
    if name == "api":
        return _http_ok(layout.url("api", "/ready"))
    if name == "prometheus":
        return _prometheus_check(layout)
    if name == "alertmanager":
        return _http_ok(layout.url("alertmanager", "/-/ready"))
    if name == "alert-receiver":
        return _http_ok(layout.url("alert-receiver", "/"))
    if name == "rpo-exporter":
        return _http_ok(layout.url("rpo-exporter", "/metrics"))
    if name == "heartbeat":
        return freshness(layout.heartbeat_dir, HEARTBEAT_FRESH_S)
    return True, "running"


def wait_healthy(layout: Layout, name: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    ok, detail = component_health(layout, name)
    while not ok and time.monotonic() < deadline:
        time.sleep(0.2)
        ok, detail = component_health(layout, name)
    if not ok:
        log_hint = layout.logs / f"{name}.log"
        raise StackError(f"{name} did not become healthy within {timeout_s:.0f} s ({detail}); see {log_hint}")


# ---------------------------------------------------------------------------------------------

def _run_py(args: list[str], what: str) -> None:
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=PROJECT_ROOT)
    if r.returncode != 0:
        lines = (r.stderr or r.stdout).strip().splitlines()
        raise StackError(f"{what} failed: {lines[-1] if lines else 'exit ' + str(r.returncode)}")


def _start_supervisord(layout: Layout) -> None:
    layout.logs.mkdir(parents=True, exist_ok=True)
    conf = supervisor.render_conf(programs(layout), socket_path=str(layout.supervisor_socket),
                                  pidfile=str(layout.supervisor_pidfile),
                                  logfile=str(layout.logs / "supervisord.log"), logs_dir=str(layout.logs),
                                  identifier=supervisor_identifier(layout))
    layout.supervisor_conf.write_text(conf)
    r = subprocess.run([_venv_bin("supervisord"), "-c", str(layout.supervisor_conf)], capture_output=True, text=True)
    if r.returncode != 0:
        raise StackError(f"supervisord failed to start: {(r.stderr or r.stdout).strip()[-300:]}")
    deadline = time.monotonic() + 15
    while not supervisor.alive(layout.supervisor_url, supervisor_identifier(layout)):
        if time.monotonic() > deadline:
            raise StackError(f"supervisord did not answer on {layout.supervisor_url}; see {layout.logs / 'supervisord.log'}")
        time.sleep(0.1)


def up(home: str | os.PathLike | None = None, port_base: int | None = None,
       log: Callable[[str], None] = print, db_tier: str | None = None) -> dict:
    """Bring the embedded stack up (idempotent) and return its target description. `db_tier`:
    "plain" or "patroni" for a new home (default patroni); a home keeps the tier it was set up with."""
    home_path = Path(home) if home else target_mod.default_home()
    layout = Layout(home_path, port_base_from_env(port_base if port_base is not None else recorded_port_base(home_path)))
    t_start = time.monotonic()

    def step(msg: str) -> None:
        log(f"[{time.monotonic() - t_start:6.1f}s] {msg}")

    tier = _check_tier(layout, db_tier)
    check_binaries()
    check_home(layout)
    sup_url = layout.supervisor_url
    already = supervisor.alive(sup_url, supervisor_identifier(layout))
    if not already:
        check_ports_free(layout)
    started_here = not already
    try:
        layout.home.mkdir(parents=True, exist_ok=True)
        layout.marker.write_text(json.dumps({"port_base": layout.port_base, **({"db": layout.db} if layout.db else {})}) + "\n")
        if tier == "patroni":
            _up_patroni_tier(layout, step)
        postgres.prepare_srv(layout)
        launchers.write_launchers(layout.bin_dir)
        # A fresh `up` is never held down. A held PostgreSQL program may be a fenced ex-primary
        # (failover): it is only released once we know whether it must be rebuilt (below).
        pg_held = []
        for hold in layout.holds_dir.iterdir():
            if hold.name in DB_PROGRAMS and not layout.db:
                pg_held.append(hold.name)
            else:
                hold.unlink()
        if not (layout.model_dir / "manifest.json").exists():
            step("training models (torch quality predictor, sklearn regressors)")
            _run_py(["-m", "svgai.train", "--model-dir", str(layout.model_dir), "--config", str(layout.config_path)],
                    "model training")
        if not layout.db:  # (the patroni tier's servers are the HA cluster's own)
            if not (layout.primary_dir / "PG_VERSION").exists():
                step("initdb primary")
                postgres.init_primary(layout)
            else:
                postgres.configure(layout, layout.primary_dir, layout.port("postgres-primary"))
        monitoring.write_configs(layout)
        if not already:
            if not layout.db:
                for removed in postgres.remove_stale_locks(layout):
                    step(f"removed stale lock file {removed}")
            step("starting supervisord")
            _start_supervisord(layout)

        if layout.db:
            pg_programs = list(DB_PROGRAMS)
        else:
            step("starting PostgreSQL")
            pg_programs = ["postgres-primary"] + (["postgres-standby"] if (layout.standby_dir / "PG_VERSION").exists() else [])
            free = [n for n in pg_programs if n not in pg_held] or pg_programs
            for name in free:
                if name in pg_held:  # every server held: none of them is fenced by another primary
                    launchers.release(layout, name)
                supervisor.start(sup_url, name)
            for name in free:
                postgres.wait_ready(layout.port(name), 60, name)
            postgres.set_passwords(layout, [layout.port(name) for name in free])
            fenced = _release_or_rebuild_held(layout, sup_url, [n for n in pg_programs if n not in free], free, step)
            pg_programs = free + fenced
        roles = current_roles(layout, pg_programs)
        primary_port = layout.port(roles["primary"])
        postgres.create_app_database(layout, primary_port)
        _run_py(["-m", "svgai.migrate", "--dsn", layout.dsn(roles["primary"])], "schema migration")
        if not any(layout.backup_dir.iterdir()):
            step("taking the first base backup")
            postgres.take_base_backup(layout, port=primary_port)
        if not layout.db:  # (Patroni cloned its replica itself)
            if "postgres-standby" not in pg_programs:
                step("cloning the streaming standby")
                postgres.clone_standby(layout, primary_port, layout.standby_dir, layout.port("postgres-standby"))
            else:
                postgres.configure(layout, layout.standby_dir, layout.port("postgres-standby"))
        for name in [n for n in stack_programs(layout) if n != "postgres-primary"]:  # started above
            step(f"starting {name}")
            supervisor.start(sup_url, name)
        for name, timeout_s in (("postgres-standby", 60), ("api", 90), ("alert-receiver", 20),
                                ("alertmanager", 30), ("prometheus", 40), ("heartbeat", 20),
                                ("rpo-exporter", 20)):
            step(f"waiting for {name} to be healthy")
            wait_healthy(layout, name, timeout_s)
        target = describe(layout, current_roles(layout))
        target_mod.save(target, layout.target_file)
        # The first model/config backup, like the first base backup: what restore-model restores.
        # The API's readiness, waited for above, verified models and config against their checksums.
        first = artifact_backup.ensure_first_backup(layout.artifact_backup_dir, layout.model_dir, layout.config_path)
        if first["created"]:
            step(f"took the first model/config backup {first['backup_id']}")
        for entry in fault_ledger.entries(layout.home):  # a lost whole stack is undone: it is up again
            if entry.get("undo", {}).get("kind") == "cold_start":
                fault_ledger.clear(layout.home, entry["id"])
        step(f"stack up: API {target['api_url']}, Prometheus {target['prometheus_url']}, "
             f"target description {layout.target_file}")
        return target
    except BaseException as e:
        if started_here:
            try:
                down(layout.home, layout.port_base, log=lambda m: None)
            except Exception:
                pass
        if isinstance(e, (StackError, KeyboardInterrupt)):
            raise
        if isinstance(e, postgres.PostgresError):
            raise StackError(str(e)) from None
        raise


def _check_tier(layout: Layout, asked: str | None) -> str:
    """The database tier this `up` brings: the home's own, else the one asked for (patroni by default)."""
    if asked is not None and asked not in DB_TIERS:
        raise StackError(f"database tier must be one of {', '.join(DB_TIERS)}, got {asked!r}")
    if layout.marker.exists():
        have = layout.db_tier
        if asked is not None and asked != have:
            raise StackError(f"home {layout.home} runs the {have} database tier, not {asked}; choose another --home")
        return have
    return asked or DEFAULT_DB_TIER


def _up_patroni_tier(layout: Layout, step: Callable[[str], None]) -> None:
    """The HA cluster in <home>/ha (Patroni on an etcd quorum; idempotent), and where its servers
    are recorded in the home's marker for every later Layout of this home."""
    step("the database tier: Patroni on a 3-member etcd quorum")
    cluster = ha.up(layout.home / "ha", layout.port_base + HA_PORT_OFFSET, log=lambda m: step(f"  ha: {m}"))
    (pg0, m0), (pg1, m1) = sorted(cluster["members"].items())
    layout.db = {
        "ha_home": cluster["home"],
        # The stack's two database names stay (programs keep names when roles move); each is one
        # Patroni member, and whichever leads is the primary.
        "ports": {"postgres-primary": m0["port"], "postgres-standby": m1["port"]},
        "data_dirs": {"postgres-primary": m0["data_dir"], "postgres-standby": m1["data_dir"]},
        "members": {"postgres-primary": pg0, "postgres-standby": pg1},
        "passfile": cluster["passfile"],
        "archive_dir": cluster["archive_dir"],
        "socket_dir": str(Path(cluster["srv_dir"]) / "run"),
    }
    layout.marker.write_text(json.dumps({"port_base": layout.port_base, "db": layout.db}) + "\n")


def supervisor_identifier(layout: Layout) -> str:
    """The identity this home's supervisord answers with (getIdentification)."""
    return f"gameday:{layout.home.resolve()}"


def _is_our_supervisord(pid: int, layout: Layout) -> bool:
    cmd = procs.cmdline(pid) or ""
    return "supervisord" in cmd and str(layout.supervisor_conf) in cmd


def down(home: str | os.PathLike | None = None, port_base: int | None = None,
         log: Callable[[str], None] = print) -> None:
    """Stop everything this stack started; leave no process or listener behind."""
    home_path = Path(home) if home else target_mod.default_home()
    base = port_base if port_base is not None else recorded_port_base(home_path)
    layout = Layout(home_path, port_base_from_env(base))
    sup_url = layout.supervisor_url
    sup_pid = procs.read_pid(layout.supervisor_pidfile)
    if supervisor.alive(sup_url, supervisor_identifier(layout)):  # ours: another home's may listen there
        log("stopping programs")
        try:
            supervisor.rpc(sup_url, timeout=120).supervisor.stopAllProcesses(True)
        except Exception as e:
            log(f"stopAllProcesses: {e}")
        try:
            supervisor.rpc(sup_url).supervisor.shutdown()
        except Exception:
            pass
    elif sup_pid and _is_our_supervisord(sup_pid, layout):
        os.kill(sup_pid, signal.SIGTERM)
    else:
        sup_pid = None  # a stale pidfile: that pid may now be someone else's process
    if sup_pid:
        deadline = time.monotonic() + 30
        while procs.alive(sup_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if procs.alive(sup_pid) and _is_our_supervisord(sup_pid, layout):
            os.kill(sup_pid, signal.SIGKILL)
    # Leftovers a crash may have orphaned: postgres backends, API workers of a killed arbiter.
    if layout.db:
        log("stopping the HA database tier")
        ha.down(layout.db["ha_home"])
    else:
        for folder in (layout.primary_dir, layout.standby_dir):
            procs.signal_all(procs.pids_in(folder), signal.SIGKILL)
    api_group = procs.read_pid(layout.api_pidfile)
    if api_group:
        try:
            os.killpg(api_group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    named = _stack_ports(layout)
    deadline = time.monotonic() + 10
    while (busy := ports.in_use(named)) and time.monotonic() <= deadline:
        time.sleep(0.2)
    if busy:
        raise StackError(f"after down, ports still in use: {', '.join(f'{name}:{port}' for name, port in busy)}")
    for entry in fault_ledger.entries(layout.home):  # a lost whole stack taken down on purpose: nothing to undo
        if entry.get("undo", {}).get("kind") == "cold_start":
            fault_ledger.clear(layout.home, entry["id"])
    log("stack down")


def status(home: str | os.PathLike | None = None) -> dict:
    home_path = Path(home) if home else target_mod.default_home()
    try:
        target = target_mod.load(home_path)
    except target_mod.TargetError as e:
        return {"api_url": None, "home": str(home_path), "healthy": False, "error": str(e), "components": []}
    layout = Layout(home_path, target["port_base"])
    sup_url = layout.supervisor_url
    infos = {}
    sup_ok = supervisor.alive(sup_url, supervisor_identifier(layout))
    if sup_ok:
        infos = {i["name"]: i for i in supervisor.all_process_info(sup_url)}
    sup_pid = None
    if sup_ok:
        try:
            sup_pid = supervisor.rpc(sup_url).supervisor.getPID()
        except Exception:
            pass
    components = [{"name": "supervisord", "healthy": sup_ok, "pid": sup_pid, "state": "RUNNING" if sup_ok else "DOWN",
                   "detail": sup_url}]
    for name in START_ORDER:
        info = infos.get(name, {})
        state = info.get("statename", "UNKNOWN")
        if layout.db and name in DB_PROGRAMS:  # a Patroni member: its server answers for it
            state = "PATRONI"
            healthy, detail = component_health(layout, name)
            components.append({"name": name, "healthy": healthy, "pid": None, "state": state,
                               "detail": f"{layout.db['members'][name]}: {detail}"})
            continue
        healthy, detail = (component_health(layout, name) if state == "RUNNING" else (False, f"supervisor state {state}"))
        components.append({"name": name, "healthy": healthy, "pid": info.get("pid") or None, "state": state,
                           "detail": detail})
    return {"api_url": target["api_url"], "home": str(home_path), "healthy": all(c["healthy"] for c in components),
            "components": components}
