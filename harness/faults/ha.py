"""Faults on the HA database tier (the embedded stack brought up with `--db-tier patroni`:
Patroni on a 3-member etcd quorum, harness/targets/embedded/ha). Where the plain tier's failover
is the BCP's runbook run by the harness, here nothing of ours promotes: the faults break a node
and the scenario watches Patroni recover it.

    lose_the_leader_node   the leader's Patroni agent and PostgreSQL SIGKILLed and kept down
    wait_for_a_new_leader  until another member leads (Patroni promoted it)
    bring_back_lost_nodes  every node kept down starts again; waits until it streams (rollback)
    freeze_the_leader_node the leader's agent and PostgreSQL SIGSTOPped for 2 x ttl, then resumed
    synchronous_replication Patroni's synchronous_mode on or off
    pause_failover         Patroni's maintenance mode: nobody promotes (the negative twins' switch)
    resume_failover        its rollback
    switchover             a planned change of leader, under load

Each undo is registered before the fault, and in the fault ledger with the run's lease, so a
SIGKILLed harness never leaves a node down or Patroni paused (harness/targets/reaper.py)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from harness.core import procs
from harness.faults import clear_undo, register_undo
from harness.faults._common import duration, lease, local_target, stop_for
from harness.targets.embedded.ha import nodes
from harness.targets.embedded.ha.config import HAError

__all__ = ["lose_the_leader_node", "wait_for_a_new_leader", "bring_back_lost_nodes", "freeze_the_leader_node",
           "synchronous_replication", "pause_failover", "resume_failover", "switchover"]


def lose_the_leader_node(target: str | None = None, configuration: dict = None) -> dict:
    """Node lost: the member holding Patroni's leader key has its agent and every PostgreSQL
    process SIGKILLed, and is kept down (its launcher waits on a hold) until bring_back_lost_nodes
    or the run's lease ends. Returns the node, the pids killed and the failover window the
    cluster's settings promise (ttl, loop_wait: harness/targets/embedded/ha/config.py)."""
    t, cluster = _ha(target)
    leader = nodes.leader(cluster)
    if leader is None:
        raise ActivityFailed(f"no running leader to lose ({_members(cluster)})")
    ledger = lease(t, configuration)
    hold = cluster["members"][leader]["hold_file"]
    register_undo(f"ha-node:{leader}", lambda: nodes.start_node(cluster, leader),
                  spec={"kind": "unlink", "path": hold}, **ledger)
    killed = nodes.kill_node(cluster, leader, hold_s=ledger["lease_s"])
    return {"node": leader, **killed, "expected_failover_window_s": cluster.get("expected_failover_window_s"),
            "settings": cluster.get("settings")}


def wait_for_a_new_leader(timeout_s: float = 60.0, target: str | None = None) -> dict:
    """Wait until a member other than the one lost leads (Patroni promoted it): the probe a
    node-lost scenario's method waits on before the node comes back. Returns the new leader."""
    _, cluster = _ha(target)
    lost = [n for n, m in cluster["members"].items() if Path(m["hold_file"]).exists()]
    deadline = time.monotonic() + float(timeout_s)
    while time.monotonic() < deadline:
        leader = nodes.leader(cluster)
        if leader is not None and leader not in lost:
            return {"leader": leader, "lost": lost}
        time.sleep(0.2)
    raise ActivityFailed(f"no member other than {', '.join(lost) or 'the lost one'} leads after {timeout_s:g} s "
                         f"({_members(cluster)})")


def bring_back_lost_nodes(timeout_s: float = 120.0, target: str | None = None) -> dict:
    """Start every node kept down (its hold released), then wait until one member leads and every
    other streams from it (Patroni rewinds or rebuilds the old leader). Returns the nodes started
    and the leader."""
    _, cluster = _ha(target)
    started = []
    for name, member in cluster["members"].items():
        if Path(member["hold_file"]).exists():
            nodes.start_node(cluster, name)
            clear_undo(f"ha-node:{name}")
            started.append(name)
    try:
        leader = nodes.wait_healthy(cluster, float(timeout_s))
    except HAError as e:
        raise ActivityFailed(str(e)) from None
    return {"started": started, "leader": leader}


def pause_failover(target: str | None = None, configuration: dict = None) -> dict:
    """Patroni's maintenance mode: it promotes nobody, whatever happens to the leader (the switch
    that makes a negative twin of an automatic failover)."""
    t, cluster = _ha(target)
    cluster_file = str(Path(cluster["home"]) / "cluster.json")
    register_undo("ha-pause", lambda: nodes.set_pause(cluster, False),
                  spec={"kind": "patroni_config", "cluster_file": cluster_file, "config": {"pause": False}},
                  **_setting_lease(t, configuration))
    try:
        nodes.set_pause(cluster, True)
    except HAError as e:
        raise ActivityFailed(str(e)) from None
    return {"paused": True}


def resume_failover(target: str | None = None) -> dict:
    """Rollback of pause_failover: Patroni acts again (a leader lost meanwhile is replaced now)."""
    _, cluster = _ha(target)
    try:
        nodes.set_pause(cluster, False)
    except HAError as e:
        raise ActivityFailed(str(e)) from None
    clear_undo("ha-pause")
    return {"paused": False}


def switchover(target: str | None = None) -> dict:
    """A planned change of leader (Patroni's REST switchover to the streaming replica): the leader
    stops cleanly, the replica promotes, the old leader follows it."""
    _, cluster = _ha(target)
    try:
        return nodes.switchover(cluster)
    except HAError as e:
        raise ActivityFailed(str(e)) from None


def freeze_the_leader_node(duration_s: float = 40.0, target: str | None = None, configuration: dict = None) -> dict:
    """Node hung: the leader's Patroni agent and every PostgreSQL process SIGSTOPped for
    `duration_s` seconds (default 2 x ttl), then resumed. Its leader key expires unrefreshed and
    Patroni promotes the replica meanwhile; resumed, the old leader must take no write before its
    agent demotes it (the split_brain criterion judges every acknowledged write's server). A
    detached timer resumes the node at the lease's end even if this harness is SIGKILLed."""
    duration_s = duration(duration_s)
    t, cluster = _ha(target)
    leader = nodes.leader(cluster)
    if leader is None:
        raise ActivityFailed(f"no running leader to freeze ({_members(cluster)})")
    agent = nodes.agent_pid(cluster, leader)
    pids = sorted(set(procs.pids_in(cluster["members"][leader]["data_dir"])
                      + (procs.group_members(agent) if agent else [])))
    if not pids:
        raise ActivityFailed(f"no process of {leader} runs")
    held = stop_for(pids, duration_s, f"ha-freeze:{leader}", lease(t, configuration))
    return {"node": leader, "pids": pids, **held, "expected_failover_window_s": cluster.get("expected_failover_window_s"),
            "settings": {**(cluster.get("settings") or {}), "synchronous_mode": _synchronous(cluster)}}


def synchronous_replication(on: bool = True, timeout_s: float = 30.0, target: str | None = None,
                            configuration: dict = None) -> dict:
    """Patroni's synchronous_mode on (a commit is acknowledged only once the synchronous standby
    has it) or off; with it on, wait until a member is the synchronous standby. Turning it on
    registers turning it back off (in the fault ledger too)."""
    t, cluster = _ha(target)
    before = _synchronous(cluster)
    if on and not before:
        cluster_file = str(Path(cluster["home"]) / "cluster.json")
        register_undo("ha-synchronous", lambda: nodes.patch_config(cluster, {"synchronous_mode": False}),
                      spec={"kind": "patroni_config", "cluster_file": cluster_file,
                            "config": {"synchronous_mode": False}}, **_setting_lease(t, configuration))
    try:
        nodes.patch_config(cluster, {"synchronous_mode": bool(on)})
    except HAError as e:
        raise ActivityFailed(str(e)) from None
    if not on:
        clear_undo("ha-synchronous")
        return {"synchronous_mode": False, "was": before}
    deadline = time.monotonic() + float(timeout_s)
    while not any(m.get("role") == "sync_standby" for m in nodes.members(cluster)):
        if time.monotonic() > deadline:
            raise ActivityFailed(f"no member became the synchronous standby within {timeout_s:g} s ({_members(cluster)})")
        time.sleep(0.2)
    return {"synchronous_mode": True, "was": before}


# A setting changed before the fault must outlast the fault itself (a freeze of up to 2 x ttl and
# more, beyond the scenario's timeout) and the checks after it: the reaper, which undoes it at the
# lease's end, once resumed Patroni in the middle of a twin's 60 s freeze.
SETTING_LEASE_EXTRA_S = 180.0


def _setting_lease(t: dict, configuration: dict | None) -> dict:
    ledger = lease(t, configuration)
    return {**ledger, "lease_s": ledger["lease_s"] + SETTING_LEASE_EXTRA_S}


def _synchronous(cluster: dict) -> bool:
    try:
        return bool(nodes.dynamic_config(cluster).get("synchronous_mode"))
    except HAError:
        return False


def _ha(target: str | None) -> tuple[dict, dict]:
    t = local_target(target)
    cluster = t.get("ha")
    if t.get("db_tier") != "patroni" or not isinstance(cluster, dict):
        raise ActivityFailed("the target's database tier is not Patroni: bring the stack up with "
                             "'gameday target up --db-tier patroni' in a new home")
    return t, cluster


def _members(cluster: dict) -> str:
    return json.dumps([{k: m.get(k) for k in ("name", "role", "state")} for m in nodes.members(cluster)])
