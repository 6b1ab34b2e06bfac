"""What the HA cluster says about itself, and the faults and commands that act on one member.

Roles are always asked of the cluster (Patroni's REST `GET /cluster`, i.e. what etcd holds),
never remembered: they move on every failover and switchover. A member is a node: its Patroni
agent plus its PostgreSQL server. A lost node is both SIGKILLed at once and kept down (its
launcher holds it) until `start_node`; a frozen node is both stopped with SIGSTOP until `thaw_node`.

The same cluster runs in containers too (the container target: the handle's `runtime` is
"containers"). There a node is a container and an etcd member another: a lost node is killed
through the engine (SIGKILL; Docker leaves a container it was told to kill down, restart policy
or not) and started again by it; its processes are the container's.
"""
from __future__ import annotations

import base64
import json
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

import psycopg

from harness.core import procs
from harness.core.pgroles import server_dsn
from harness.targets.containers import engine
from harness.targets.embedded import supervisor
from harness.targets.embedded.ha.config import ETCD, REST_USER, HAError

__all__ = ["members", "leader", "wait_leader", "wait_streaming", "wait_healthy", "switchover", "kill_node",
           "start_node", "lose_consensus", "restore_consensus", "freeze_node", "thaw_node", "agent_pid", "timeline",
           "timeline_of", "system_identifier", "system_identifier_of", "rest_call", "server_streams", "reinitialize",
           "etcd_health", "etcd_member_healthy", "wait_quorum", "local_roles", "walsender_pids", "wal_behind",
           "in_containers", "lost_nodes", "node_pids", "node_start_spec", "etcd_start_spec",
           "wait_failsafe_topology"]

REST_TIMEOUT_S = 1.0  # a frozen member's REST API never answers: do not wait long for it
DEFAULT_HOLD_S = 900.0  # a lost node stays down at most this long if start_node never comes


def rest_call(cluster: dict, member: str, path: str, method: str = "GET", body: dict | None = None,
              timeout_s: float = REST_TIMEOUT_S) -> tuple[int, object]:
    """(HTTP status, decoded JSON or text) from one member's REST API. Changes carry the REST
    credentials; a member that does not answer raises OSError."""
    url = cluster["members"][member]["api_url"] + path
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if method != "GET":
        password = json.loads(Path(cluster["rest_secrets"]).read_text())["rest"]
        token = base64.b64encode(f"{REST_USER}:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    text = raw.decode(errors="replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.strip()


def members(cluster: dict) -> list[dict]:
    """Patroni's view of the members (`GET /cluster` on the first member that answers): name, role
    (leader, replica, sync_standby), state (running, streaming, ...), timeline, lag. [] when no
    member answers."""
    state = cluster_state(cluster)
    return state.get("members", []) if state is not None else []


def cluster_state(cluster: dict) -> dict | None:
    """Patroni's `GET /cluster` from the first member that answers (members, pause, ...); None
    when none answers."""
    return _first_answer(cluster, "/cluster")


def _first_answer(cluster: dict, path: str) -> dict | None:
    """`GET path` on each member in turn: the first JSON object answered with 200, or None."""
    for name in cluster["members"]:
        try:
            status, body = rest_call(cluster, name, path)
        except OSError:
            continue
        if status == 200 and isinstance(body, dict):
            return body
    return None


def leader(cluster: dict) -> str | None:
    """The member holding the leader key and running, or None (no leader, or none reachable)."""
    return next((m["name"] for m in members(cluster) if m.get("role") == "leader" and m.get("state") == "running"), None)


def _until(check: Callable[[], object], timeout_s: float, what: str, detail: Callable[[], str] = lambda: ""):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = detail()
            raise HAError(f"{what} within {timeout_s:.0f} s" + (f" ({extra})" if extra else ""))
        time.sleep(0.1)


def _summary(cluster: dict) -> str:
    ms = members(cluster)
    return ", ".join(f"{m['name']} {m.get('role')}/{m.get('state')}" for m in ms) or "no member answers"


def wait_leader(cluster: dict, member: str | None = None, timeout_s: float = 60.0) -> str:
    """Wait until `member` (or any member) is the running leader; return its name."""
    def check():
        name = leader(cluster)
        return name if name and (member is None or name == member) else None
    what = f"{member} did not become the leader" if member else "no member became the leader"
    return _until(check, timeout_s, what, lambda: _summary(cluster))


def _streaming(cluster: dict, member: str) -> bool:
    return _streaming_in({m["name"]: m for m in members(cluster)}, member) and server_streams(cluster, member)


def server_streams(cluster: dict, member: str) -> bool:
    """The member's own server says it is a standby whose WAL receiver streams: Patroni's view of a
    member can lag behind it (right after maintenance mode ends it may still say "streaming" of a
    member that was promoted behind its back), the server cannot."""
    dsn = (f"host=127.0.0.1 port={cluster['members'][member]['port']} dbname=postgres user=postgres "
           f"connect_timeout=2 passfile={cluster['passfile']}")
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            row = c.execute("select pg_is_in_recovery(), (select status from pg_stat_wal_receiver)").fetchone()
    except psycopg.Error:
        return False
    return bool(row[0]) and row[1] == "streaming"


def wait_streaming(cluster: dict, member: str, timeout_s: float = 120.0) -> None:
    """Wait until `member` is a replica streaming from the leader."""
    _until(lambda: _streaming(cluster, member), timeout_s, f"{member} did not become a streaming replica",
           lambda: _summary(cluster))


def wait_healthy(cluster: dict, timeout_s: float = 90.0) -> str:
    """Wait until one member leads and every other streams from it (in synchronous mode: as the
    synchronous standby, without which Patroni refuses a switchover); return the leader's name."""
    synchronous = bool((cluster.get("settings") or {}).get("synchronous_mode"))

    def check():
        ms = {m["name"]: m for m in members(cluster)}
        name = next((n for n, m in ms.items() if m.get("role") == "leader" and m.get("state") == "running"), None)
        others = [n for n in cluster["members"] if n != name]
        ready = all(_streaming_in(ms, n) and (not synchronous or ms[n].get("role") == "sync_standby")
                    and server_streams(cluster, n) for n in others)
        return name if name and ready else None
    return _until(check, timeout_s, "the cluster did not get a leader and a streaming replica", lambda: _summary(cluster))


def _streaming_in(ms: dict, name: str) -> bool:
    m = ms.get(name, {})
    return m.get("role") in ("replica", "sync_standby") and m.get("state") == "streaming"


def switchover(cluster: dict, candidate: str | None = None, timeout_s: float = 30.0) -> dict:
    """Planned change of leader (Patroni's `POST /switchover`): the leader stops cleanly, the
    candidate (default: the streaming replica) promotes, the old leader follows it. Returns
    {"from", "to", "message"}; raises HAError when Patroni refuses (with its reason)."""
    ms = members(cluster)
    current = next((m["name"] for m in ms if m.get("role") == "leader"), None)
    if current is None:
        raise HAError(f"no leader to switch over from ({_summary(cluster)})")
    if candidate is None:
        candidate = next((m["name"] for m in ms if m["name"] != current and m.get("state") == "streaming"), None)
        if candidate is None:
            raise HAError(f"no streaming replica to switch over to ({_summary(cluster)})")
    if candidate not in cluster["members"] or candidate == current:
        raise HAError(f"candidate must be a member other than the leader {current}, got {candidate!r}")
    # Patroni answers once the new leader holds the key (it polls etcd up to ~10 s).
    status, body = rest_call(cluster, current, "/switchover", "POST", {"leader": current, "candidate": candidate},
                             timeout_s=timeout_s)
    if status != 200:
        raise HAError(f"switchover {current} → {candidate} refused: HTTP {status} {body}")
    return {"from": current, "to": candidate, "message": body}


def agent_pid(cluster: dict, member: str) -> int | None:
    """The pid of the member's Patroni agent, or None when it is not running (a held launcher
    or a stale pid file is not an agent)."""
    pid = procs.read_pid(cluster["members"][member]["agent_pidfile"])
    cmd = procs.cmdline(pid) if pid else None
    if not cmd or not procs.running(pid) or "-m patroni " not in cmd or "patroni-launch" in cmd:
        return None
    return pid


def _postgres_pids(cluster: dict, member: str) -> list[int]:
    """The member's postmaster and every backend: they run with the data folder as working folder."""
    return [p for p in procs.pids_in(cluster["members"][member]["data_dir"]) if procs.running(p)]


def patch_config(cluster: dict, change: dict) -> dict:
    """Change Patroni's dynamic configuration (`PATCH /config` on the first member that answers);
    return the configuration as it now is."""
    last = "no member answered"
    for name in cluster["members"]:
        try:
            status, body = rest_call(cluster, name, "/config", method="PATCH", body=change)
        except OSError as e:
            last = f"{name}: {e}"
            continue
        if status == 200 and isinstance(body, dict):
            return body
        last = f"{name}: HTTP {status} {body}"
    raise HAError(f"Patroni refused the configuration change {json.dumps(change, sort_keys=True)}: {last}")


def dynamic_config(cluster: dict) -> dict:
    """Patroni's dynamic configuration (`GET /config`)."""
    body = _first_answer(cluster, "/config")
    if body is None:
        raise HAError("no Patroni member answered GET /config")
    return body


def set_pause(cluster: dict, paused: bool, timeout_s: float = 15.0) -> None:
    """Patroni's maintenance mode on or off, and wait until the cluster reports it. Paused,
    Patroni neither promotes nor demotes nor starts a stopped server: the automation is off, the
    servers run on."""
    patch_config(cluster, {"pause": paused})

    def reported() -> bool:
        state = cluster_state(cluster)  # Patroni shows "pause" only while paused
        return state is not None and bool(state.get("pause")) == paused
    _until(reported, timeout_s, f"Patroni did not report pause={paused}")


def kill_node(cluster: dict, member: str, hold_s: float = DEFAULT_HOLD_S) -> dict:
    """Node lost: SIGKILL the member's Patroni agent (its process group) and every one of its
    PostgreSQL processes, and keep them down: the hold file is written first, so the launcher
    supervisord restarts waits instead of starting Patroni again, until start_node (or for at most
    `hold_s`). Returns the pids killed."""
    _check_member(cluster, member)
    info = cluster["members"][member]
    if in_containers(cluster):
        container = _container(info["container"])
        pids = _container_pids(container)
        container.kill()  # through the engine: it stays down until start_node
        return {"member": member, "agent_pid": pids[0] if pids else None, "postgres_pids": pids[1:]}
    Path(info["hold_file"]).write_text(f"{time.time() + hold_s:.0f}\n")
    agent = agent_pid(cluster, member)
    if agent:
        # The agent leads its process group (supervisord's doing): its children go with it.
        procs.signal_all(procs.group_members(agent), signal.SIGKILL)
    # PostgreSQL runs in its own session (Patroni starts it with setsid): found by its data folder.
    killed = procs.end_processes_in(info["data_dir"])
    return {"member": member, "agent_pid": agent, "postgres_pids": killed}


def start_node(cluster: dict, member: str) -> None:
    """Bring a lost node back: release its hold (its launcher starts Patroni within 0.2 s), and
    start its program if it was stopped. Patroni then rejoins it (pg_rewind or a new base backup)."""
    _check_member(cluster, member)
    if in_containers(cluster):
        _start(_container(cluster["members"][member]["container"]))
        return
    Path(cluster["members"][member]["hold_file"]).unlink(missing_ok=True)
    supervisor.start(cluster["supervisor_url"], cluster["members"][member]["program"])


def lost_nodes(cluster: dict) -> list[str]:
    """Members kept down by kill_node: held by their launcher, or a container that does not run."""
    if in_containers(cluster):
        return [name for name, m in cluster["members"].items() if not _running(_container(m["container"]))]
    return [name for name, m in cluster["members"].items() if Path(m["hold_file"]).exists()]


def node_start_spec(cluster: dict, member: str) -> dict:
    """The fault ledger's undo of kill_node (harness/targets/reaper.py carries it out)."""
    _check_member(cluster, member)
    if in_containers(cluster):
        return {"kind": "docker_start", "container": _container(cluster["members"][member]["container"]).id}
    return {"kind": "unlink", "path": cluster["members"][member]["hold_file"]}


def node_pids(cluster: dict, member: str) -> list[int]:
    """Every process of the node: its agent (and the agent's process group) and its PostgreSQL."""
    _check_member(cluster, member)
    if in_containers(cluster):
        return sorted(_container_pids(_container(cluster["members"][member]["container"])))
    agent = agent_pid(cluster, member)
    return sorted(set(_postgres_pids(cluster, member) + (procs.group_members(agent) if agent else [])))


def reinitialize(cluster: dict, member: str) -> None:
    """Patroni's reinit of a replica: its data folder is rebuilt from the leader (what a member
    that diverged ahead of the leader needs; Patroni does not rewind it by itself)."""
    _check_member(cluster, member)
    status, body = rest_call(cluster, member, "/reinitialize", "POST", {"force": True}, timeout_s=30)
    if status != 200:
        raise HAError(f"reinitialize {member} refused: HTTP {status} {body}")


def lose_consensus(cluster: dict, lost: tuple[str, ...] = ETCD[1:]) -> list[str]:
    """Consensus lost: stop etcd members (default two of three: no quorum) and keep them down
    until restore_consensus. Returns the programs stopped."""
    unknown = [e for e in lost if e not in ETCD]
    if unknown or len(set(lost)) != len(lost):
        raise HAError(f"etcd members to lose must be distinct ones of {', '.join(ETCD)}, got {', '.join(lost)}")
    programs = [f"etcd-{e}" for e in lost]
    for e, name in zip(lost, programs):
        if in_containers(cluster):
            _container(cluster["etcd_containers"][e]).stop(timeout=10)  # SIGTERM, as supervisord stops it
        else:
            supervisor.stop(cluster["supervisor_url"], name)
    return programs


def restore_consensus(cluster: dict, lost: tuple[str, ...] = ETCD[1:]) -> None:
    """Start the etcd members lose_consensus stopped; they rejoin from their data folders."""
    for e in lost:
        if in_containers(cluster):
            _start(_container(cluster["etcd_containers"][e]))
        else:
            supervisor.start(cluster["supervisor_url"], f"etcd-{e}")


def etcd_start_spec(cluster: dict, e: str) -> dict:
    """The fault ledger's undo of lose_consensus for one member."""
    if in_containers(cluster):
        return {"kind": "docker_start", "container": _container(cluster["etcd_containers"][e]).id}
    return {"kind": "supervisor_start", "url": cluster["supervisor_url"], "program": f"etcd-{e}"}


def wait_failsafe_topology(cluster: dict, timeout_s: float = 10.0) -> None:
    """With failsafe_mode on, until the leader's failsafe topology (`GET /failsafe`, written to
    etcd by the leader each HA loop) names every member: a leader that loses the quorum keeps its
    role only if every member it knows confirms it, and a member that just joined (a reinit, a
    rejoined node) may be missing from it for a loop or two. Without failsafe_mode, at once."""
    if not (cluster.get("settings") or {}).get("failsafe_mode"):
        return

    def complete() -> bool:
        name = leader(cluster)
        if name is None:
            return False
        try:
            status, body = rest_call(cluster, name, "/failsafe")
        except OSError:
            return False
        return status == 200 and isinstance(body, dict) and set(body) >= set(cluster["members"])
    _until(complete, timeout_s, "the leader's failsafe topology did not name every member", lambda: _summary(cluster))


def etcd_member_healthy(url: str) -> bool:
    """One etcd member's own word on its health (`GET /health`): true only while it belongs to a
    quorum with a leader; a stopped member or one without quorum says false."""
    try:
        with urllib.request.urlopen(url + "/health", timeout=REST_TIMEOUT_S) as r:
            return json.load(r).get("health") == "true"
    except (OSError, ValueError):
        return False


def etcd_health(cluster: dict) -> dict[str, bool]:
    """Each etcd member's health (etcd_member_healthy), by name."""
    return {name: etcd_member_healthy(url) for name, url in zip(ETCD, cluster["etcd_endpoints"])}


def wait_quorum(cluster: dict, timeout_s: float = 30.0) -> None:
    """Until every etcd member answers healthy (the quorum is whole again)."""
    _until(lambda: all(etcd_health(cluster).values()), timeout_s, "etcd's quorum did not come back",
           lambda: json.dumps(etcd_health(cluster)))


def local_roles(cluster: dict) -> dict[str, str | None]:
    """Each member's role as its own agent sees it (`GET /patroni`: answered from the agent's own
    state, so it still answers while etcd has no quorum); None for a member that does not answer."""
    out = {}
    for name in cluster["members"]:
        try:
            status, body = rest_call(cluster, name, "/patroni")
            out[name] = body.get("role") if isinstance(body, dict) else None
        except OSError:
            out[name] = None
    return out


def walsender_pids(cluster: dict, member: str) -> list[int]:
    """The member's WAL senders (a leader's processes that stream to its replicas); [] on a replica
    with none of its own."""
    _check_member(cluster, member)
    pids = node_pids(cluster, member) if in_containers(cluster) else _postgres_pids(cluster, member)
    return [p for p in pids if "walsender" in (procs.cmdline(p) or "")]


def wal_behind(cluster: dict, leader: str, replica: str) -> int:
    """Bytes of WAL the leader has written that the replica has not received."""
    def position(member: str, lsn_sql: str) -> int:
        dsn = server_dsn(cluster["members"][member]["port"], passfile=cluster["passfile"])
        with psycopg.connect(dsn, autocommit=True) as c:
            return int(c.execute(f"select {lsn_sql} - '0/0'::pg_lsn").fetchone()[0])
    return (position(leader, "pg_current_wal_lsn()")
            - position(replica, "coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())"))


def freeze_node(cluster: dict, member: str) -> dict:
    """Node hung: SIGSTOP the member's Patroni agent and every one of its PostgreSQL processes.
    Its leader key then expires unrefreshed, as if the node were lost, but it comes back with
    thaw_node. Returns the pids stopped."""
    _check_member(cluster, member)
    stopped: list[int] = []
    agent = agent_pid(cluster, member)
    if agent:
        stopped += procs.signal_all(procs.group_members(agent), signal.SIGSTOP)
    for _ in range(2):  # a second pass catches a backend forked while the first one ran
        stopped += procs.signal_all([p for p in _postgres_pids(cluster, member) if p not in stopped], signal.SIGSTOP)
    return {"member": member, "agent_pid": agent, "stopped_pids": sorted(set(stopped))}


def thaw_node(cluster: dict, member: str) -> dict:
    """Undo freeze_node: SIGCONT the agent's process group and the PostgreSQL processes."""
    _check_member(cluster, member)
    pids = procs.pids_in(cluster["members"][member]["data_dir"])
    agent = agent_pid(cluster, member)
    if agent:
        pids += procs.group_members(agent)
    return {"member": member, "resumed_pids": sorted(set(procs.signal_all(pids, signal.SIGCONT)))}


def in_containers(cluster: dict) -> bool:
    return cluster.get("runtime") == "containers"


def _container(name: str):
    try:
        return engine.find(engine.client(), name)
    except engine.EngineError as e:
        raise HAError(str(e)) from None


def _running(container) -> bool:
    container.reload()
    return bool(container.attrs["State"].get("Running"))


def _start(container) -> None:
    if not _running(container):
        container.start()


def _container_pids(container) -> list[int]:
    """The container's processes (host pids), its PID 1 first; [] when it does not run."""
    try:
        main = engine.main_pid(container)
        return [main] + [p for p in engine.pids(container) if p != main]
    except engine.EngineError:
        return []


def _check_member(cluster: dict, member: str) -> None:
    if member not in cluster["members"]:
        raise HAError(f"no member {member!r} in this cluster (members: {', '.join(cluster['members'])})")


# Timeline of the server on this connection: a primary's from its current WAL file name (its
# pg_control checkpoint lags behind a promotion until the next checkpoint); a standby's from the
# last checkpoint it replayed.
_TIMELINE_SQL = """select case when pg_is_in_recovery()
  then (select timeline_id from pg_control_checkpoint())
  else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int end"""


def timeline_of(conn: psycopg.Connection) -> int:
    """The timeline of the server `conn` is connected to."""
    return int(conn.execute(_TIMELINE_SQL).fetchone()[0])


def system_identifier_of(conn: psycopg.Connection) -> int:
    """The system identifier of the server `conn` is connected to (one per initdb: both members
    of a cluster share it; a server rebuilt from another cluster would not)."""
    return int(conn.execute("select system_identifier from pg_control_system()").fetchone()[0])


def timeline(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as c:
        return timeline_of(c)


def system_identifier(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as c:
        return system_identifier_of(c)
