"""Bring the HA database tier up and down: three etcd members and two Patroni members under one
supervisord of their own, in a home folder, on ports from a base.

`up` never leaves a half-started cluster: on any error it takes down what it started. It is
idempotent: a home already up is only waited on. Patroni runs as the database's OS user (it
starts PostgreSQL, which refuses root); etcd runs as the caller.

Patroni is this project's dependency, installed in its venv. When we are root, the venv's
interpreter may sit where the database's OS user cannot reach it (pyenv keeps it under /root,
0700): Patroni then runs on the system's Python of the same minor version over the venv's
packages only (PYTHONPATH, with -S), which that user can read. `up` checks this by importing
Patroni as that user before starting anything.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path
from typing import Callable

import psycopg
import yaml
from psycopg import sql

from harness.core import ports, procs
from harness.core.errors import first_line
from harness.core.pgroles import server_dsn
from harness.targets import credentials
from harness.targets.embedded import launchers, supervisor
from harness.targets.embedded.ha import nodes
from harness.targets.embedded.ha.config import (ETCD, MARKER, MEMBERS, PATRONI_LAUNCH, SETTINGS, HAError,
                                                 HaLayout, describe, etcd_url, patroni_config, port_offsets, programs,
                                                 python_isolation)
from harness.targets.embedded.layout import PG_BIN, server_user, user_can_traverse

__all__ = ["up", "down", "layout_for"]

UP_TIMEOUT_S = 90.0


def layout_for(home: str | os.PathLike, port_base: int) -> HaLayout:
    """The layout of a home: its server folders inside it when the database's OS user can reach
    them there, else in a per-home folder under /var/tmp (e.g. a home under pytest's 0700 tmp)."""
    home = Path(home).resolve()
    reachable = user_can_traverse(server_user(), home if home.exists() else home.parent)
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:10]
    return HaLayout(home, port_base, home / "srv" if reachable else Path("/var/tmp") / f"gameday-ha-srv-{digest}")


def up(home: str | os.PathLike, port_base: int, synchronous: bool = False,
       log: Callable[[str], None] = lambda m: None) -> dict:
    """Create (first time) and start the cluster in `home`; wait until a leader and a streaming
    replica exist; return the cluster handle (see config.describe): etcd endpoints, each member's
    REST URL, port, program and pid files, the leader-following DSN, the settings."""
    t0 = time.monotonic()

    def step(msg: str) -> None:
        log(f"[{time.monotonic() - t0:5.1f}s] {msg}")

    etcd_bin = _check_binaries()
    layout = layout_for(home, port_base)
    _check_home(layout)
    url, ident = f"unix://{layout.supervisor_socket}", _identifier(layout)
    already = supervisor.alive(url, ident)
    if not already:
        busy = _busy_ports(layout)
        if busy:
            raise HAError(f"ports in use on 127.0.0.1: {', '.join(busy)}; stop what holds them or choose another port base")
    settings = dict(SETTINGS, synchronous_mode=synchronous)
    try:
        python, pythonpath = _patroni_interpreter()
        passwords = credentials.ensure_ha(layout.secrets_dir, layout.passfile)
        _write_files(layout, passwords, settings, etcd_bin, python, pythonpath)
        if not already:
            step("starting supervisord")
            _start_supervisord(layout)
        cluster = describe(layout, settings)
        step("starting etcd (3 members)")
        for e in ETCD:
            supervisor.start(url, f"etcd-{e}")
        _wait_etcd(layout, 30.0)
        fresh = not any((layout.data_dir(m) / "PG_VERSION").exists() for m in MEMBERS)
        step("starting Patroni " + ("pg0 (bootstrap: initdb)" if fresh else "pg0"))
        supervisor.start(url, "patroni-pg0")
        if fresh:  # pg0 initialises the cluster; pg1 then clones it
            nodes.wait_leader(cluster, "pg0", 60.0)
        step("starting Patroni pg1")
        supervisor.start(url, "patroni-pg1")
        leader = nodes.wait_healthy(cluster, UP_TIMEOUT_S)
        step(f"leader {leader}, replica streaming")
        _create_app_database(layout, cluster["members"][leader]["port"], passwords["svgai"])
        _apply_synchronous_mode(cluster, leader, synchronous)
        layout.cluster_file.write_text(json.dumps(cluster, indent=2) + "\n")
        step(f"HA cluster up: {cluster['dsn']}")
        return cluster
    except BaseException as e:
        if not already:
            try:
                down(layout.home)
            except Exception:
                pass
        if isinstance(e, (psycopg.Error, OSError)):
            raise HAError(f"the HA cluster did not come up: {first_line(e)}; see {layout.logs}") from None
        raise


def down(home: str | os.PathLike, remove: bool = False, log: Callable[[str], None] = lambda m: None) -> None:
    """Stop everything the cluster in `home` runs (replicas before the leader, Patroni before
    etcd) and leave no process or listener behind. Data stays unless `remove`."""
    home = Path(home).resolve()
    try:
        marker = json.loads((home / MARKER).read_text())
        layout = HaLayout(home, int(marker["port_base"]), Path(marker["srv"]))
    except (OSError, ValueError, KeyError, TypeError):
        if remove:
            shutil.rmtree(home, ignore_errors=True)
        return  # never set up here: nothing of ours can run
    cluster = describe(layout, SETTINGS)
    for m in MEMBERS:  # a frozen member would ignore SIGTERM until supervisord's stopwaitsecs
        nodes.thaw_node(cluster, m)
    url = cluster["supervisor_url"]
    sup_pid = procs.read_pid(layout.supervisor_pidfile)
    if supervisor.alive(url, _identifier(layout)):
        # The leader last: a replica still running when the leader stops would promote.
        current = nodes.leader(cluster)
        for m in [m for m in MEMBERS if m != current] + ([current] if current else []):
            log(f"stopping patroni-{m}")
            supervisor.stop(url, f"patroni-{m}")
        # Always the current raft leader next: it hands leadership to a live member and stops in
        # 0.1 s, whereas a leader whose peers stopped first waited ~7 s for them.
        left = list(ETCD)
        while left:
            raft_leader = _etcd_leader(layout)
            e = raft_leader if raft_leader in left else left[0]
            log(f"stopping etcd-{e}" + (" (raft leader)" if e == raft_leader else ""))
            supervisor.stop(url, f"etcd-{e}")
            left.remove(e)
        try:
            supervisor.rpc(url, timeout=120).supervisor.stopAllProcesses(True)
            supervisor.rpc(url).supervisor.shutdown()
        except Exception as e:
            log(f"supervisord: {first_line(e)}")
    elif not (sup_pid and _is_our_supervisord(sup_pid, layout)):
        sup_pid = None  # a stale pid file: that pid may be someone else's now
    elif procs.running(sup_pid):
        os.kill(sup_pid, signal.SIGTERM)
    if sup_pid and procs.wait_gone([sup_pid], 30.0) and _is_our_supervisord(sup_pid, layout):
        os.kill(sup_pid, signal.SIGKILL)
    # What a crash may have orphaned: PostgreSQL processes, agents or etcd members of this home.
    for m in MEMBERS:
        procs.end_processes_in(layout.data_dir(m))
    mine = [f"--data-dir {layout.etcd_dir(e)} " for e in ETCD] + [f" {layout.patroni_conf(m)} " for m in MEMBERS]
    orphans = [p for p in procs.all_pids() if any(s in (procs.cmdline(p) or "") for s in mine)]
    procs.wait_gone(procs.signal_all(orphans, signal.SIGKILL), 10.0)
    deadline = time.monotonic() + 10
    while (busy := _busy_ports(layout)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if busy:
        raise HAError(f"after down, ports still in use: {', '.join(busy)}")
    if remove:
        shutil.rmtree(layout.home, ignore_errors=True)
        shutil.rmtree(layout.srv, ignore_errors=True)
    log("HA cluster down")


# ---------------------------------------------------------------------------------------------
# Internals

def _identifier(layout: HaLayout) -> str:
    """What this home's supervisord answers getIdentification with: another home's supervisord on
    the same socket path is never taken for ours."""
    return f"gameday-ha:{layout.home}"


def _is_our_supervisord(pid: int, layout: HaLayout) -> bool:
    cmd = procs.cmdline(pid) or ""
    return "supervisord" in cmd and str(layout.supervisor_conf) in cmd


def _check_binaries() -> str:
    etcd = shutil.which("etcd")
    if not etcd:
        raise HAError("etcd not found on PATH; install the Debian package etcd-server (scripts/setup.sh does it as root)")
    for tool in ("postgres", "pg_rewind", "pg_basebackup"):
        if not (PG_BIN / tool).exists():
            raise HAError(f"{PG_BIN / tool} not found; install the Debian package postgresql-15")
    if not (Path(sys.executable).parent / "supervisord").exists():
        raise HAError(f"supervisord not found beside {sys.executable}; run make setup")
    return etcd


def _check_home(layout: HaLayout) -> None:
    if layout.home.exists() and not layout.home.is_dir():
        raise HAError(f"home {layout.home} is a file, not a folder")
    if layout.marker.exists():
        recorded = json.loads(layout.marker.read_text()).get("port_base")
        if recorded != layout.port_base:
            raise HAError(f"home {layout.home} was set up with port base {recorded}, not {layout.port_base}")
    elif layout.home.is_dir() and any(layout.home.iterdir()):
        raise HAError(f"home {layout.home} is not empty and holds no HA cluster; choose another folder")


def _busy_ports(layout: HaLayout) -> list[str]:
    return [f"{port} ({name})" for name, port in ports.in_use({name: layout.port(name) for name in port_offsets()})]


def _patroni_interpreter() -> tuple[str, str | None]:
    """(python, PYTHONPATH or None) that runs Patroni as the database's OS user (see the module
    docstring), checked by importing Patroni as that user."""
    user = server_user()
    python, pythonpath = sys.executable, None
    if not user_can_traverse(user, Path(sys.executable)):
        name = f"python{sys.version_info.major}.{sys.version_info.minor}"
        found = [c for c in (shutil.which(name), f"/usr/bin/{name}") if c and Path(c).exists()]
        usable = [c for c in found if user_can_traverse(user, Path(c))]
        if not usable:
            raise HAError(f"{user} cannot run this venv's Python ({sys.executable}) and no {name} it can run was "
                          f"found; install the Debian package {name}")
        paths = sysconfig.get_paths()
        python, pythonpath = usable[0], os.pathsep.join(dict.fromkeys((paths["purelib"], paths["platlib"])))
    cmd = [python, python_isolation(pythonpath), "-c", "import patroni.dcs.etcd3, psycopg, yaml"]
    if pythonpath:
        cmd = ["env", f"PYTHONPATH={pythonpath}", *cmd]
    if os.geteuid() == 0 and user != "root":
        cmd = ["runuser", "-u", user, "--", *cmd]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        why = (r.stderr or r.stdout).strip().splitlines() or [f"exit {r.returncode}"]
        raise HAError(f"Patroni cannot be imported by {user} with {python} ({why[-1]}); install "
                      f"patroni[etcd3] into this venv (make setup) where {user} can read it")
    return python, pythonpath


def _write_files(layout: HaLayout, passwords: dict, settings: dict, etcd_bin: str, python: str,
                 pythonpath: str | None) -> None:
    layout.home.mkdir(parents=True, exist_ok=True)
    layout.marker.write_text(json.dumps({"port_base": layout.port_base, "srv": str(layout.srv)}) + "\n")
    layout.logs.mkdir(exist_ok=True)
    (layout.home / "etcd").mkdir(exist_ok=True)
    layout.srv.mkdir(parents=True, exist_ok=True)
    layout.srv.chmod(0o755)
    for d in (layout.archive_dir, layout.socket_dir, layout.bin_dir, layout.holds_dir):
        d.mkdir(exist_ok=True)
    for hold in layout.holds_dir.iterdir():  # a fresh up is never held down
        hold.unlink()
    layout.launcher.write_text(launchers.render(PATRONI_LAUNCH))
    layout.launcher.chmod(0o755)
    for m in MEMBERS:
        layout.member_dir(m).mkdir(mode=0o700, exist_ok=True)
        credentials.write_private(layout.patroni_conf(m), yaml.safe_dump(patroni_config(layout, m, passwords, settings),
                                                              sort_keys=False))
    owned = [layout.srv, layout.archive_dir, layout.socket_dir, layout.bin_dir, layout.holds_dir]
    owned += [p for m in MEMBERS for p in (layout.member_dir(m), layout.patroni_conf(m))]
    for p in owned:  # not recursive: a data folder is initdb's and stays as it made it
        _chown_to_server_user(p)
    conf = supervisor.render_conf(programs(layout, etcd_bin=etcd_bin, python=python, pythonpath=pythonpath,
                                           server_user=server_user() if os.geteuid() == 0 else None),
                                  socket_path=str(layout.supervisor_socket), pidfile=str(layout.supervisor_pidfile),
                                  logfile=str(layout.log("supervisord")), logs_dir=str(layout.logs),
                                  identifier=_identifier(layout))
    layout.supervisor_conf.write_text(conf)


def _chown_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, server_user(), server_user())


def _start_supervisord(layout: HaLayout) -> None:
    r = subprocess.run([str(Path(sys.executable).parent / "supervisord"), "-c", str(layout.supervisor_conf)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise HAError(f"supervisord failed to start: {(r.stderr or r.stdout).strip()[-300:]}")
    deadline = time.monotonic() + 15
    while not supervisor.alive(f"unix://{layout.supervisor_socket}", _identifier(layout)):
        if time.monotonic() > deadline:
            raise HAError(f"supervisord did not answer; see {layout.log('supervisord')}")
        time.sleep(0.1)


def _etcd_healthy(layout: HaLayout, member: str) -> bool:
    return nodes.etcd_member_healthy(etcd_url(layout, member))


def _etcd_leader(layout: HaLayout) -> str | None:
    """The etcd member that leads the raft group now (etcd's maintenance status), or None."""
    for e in ETCD:
        req = urllib.request.Request(etcd_url(layout, e) + "/v3/maintenance/status", data=b"{}", method="POST")
        try:
            with urllib.request.urlopen(req, timeout=1) as r:
                status = json.load(r)
        except (OSError, ValueError):
            continue
        if status.get("leader") and status.get("header", {}).get("member_id") == status["leader"]:
            return e
    return None


def _wait_etcd(layout: HaLayout, timeout_s: float) -> None:
    """Until every member answers healthy (etcd says so only once the quorum has a leader)."""
    deadline = time.monotonic() + timeout_s
    while not all(_etcd_healthy(layout, e) for e in ETCD):
        if time.monotonic() > deadline:
            sick = [e for e in ETCD if not _etcd_healthy(layout, e)]
            raise HAError(f"etcd member(s) {', '.join(sick)} not healthy within {timeout_s:.0f} s; "
                          f"see {layout.log('etcd-' + sick[0])}")
        time.sleep(0.1)


def _create_app_database(layout: HaLayout, port: int, svgai_password: str) -> None:
    """The application's role and database, on the leader (Patroni created postgres and the
    replication role at bootstrap); the replica gets them by replication."""
    with psycopg.connect(server_dsn(port, passfile=layout.passfile), autocommit=True) as c:
        exists = c.execute("select 1 from pg_roles where rolname = 'svgai'").fetchone()
        c.execute(sql.SQL("{} role svgai login password {}").format(
            sql.SQL("alter" if exists else "create"), sql.Literal(svgai_password)))
        if not c.execute("select 1 from pg_database where datname = 'svgai'").fetchone():
            c.execute("create database svgai owner svgai")


def _apply_synchronous_mode(cluster: dict, leader: str, synchronous: bool) -> None:
    """Bootstrap wrote the choice to etcd; a later `up` asking otherwise changes it there."""
    status, config = nodes.rest_call(cluster, leader, "/config")
    if status == 200 and isinstance(config, dict) and bool(config.get("synchronous_mode")) != synchronous:
        status, body = nodes.rest_call(cluster, leader, "/config", "PATCH", {"synchronous_mode": synchronous})
        if status != 200:
            raise HAError(f"could not set synchronous_mode={synchronous}: HTTP {status} {body}")
