"""Faults on the HA database tier (Patroni on a 3-member etcd quorum: the embedded stack's patroni
tier, harness/targets/embedded/ha, or the container target's, where each node and each etcd
member is a container: harness/targets/containers/ha.py). Where the plain tier's failover
is the BCP's runbook run by the harness, here nothing of ours promotes: the faults break a node
and the scenario watches Patroni recover it.

    lose_the_leader_node   the leader's Patroni agent and PostgreSQL SIGKILLed and kept down
    wait_for_a_new_leader  until another member leads (Patroni promoted it)
    bring_back_lost_nodes  every node kept down starts again; waits until it streams (rollback)
    freeze_the_leader_node the leader's agent and PostgreSQL SIGSTOPped for 2 x ttl, then resumed
    synchronous_replication Patroni's synchronous_mode on or off
    pause_failover         Patroni's maintenance mode: nobody promotes (the negative twins' switch)
    resume_failover        its rollback
    lose_consensus         two of the three etcd members stopped for 2 x ttl, then started again
    bring_back_consensus   every etcd member started; waits for the quorum (rollback)
    failsafe_mode          Patroni's failsafe_mode on or off (off: the twin of consensus lost)
    hold_back_the_replica  the leader's WAL senders SIGSTOPped until the replica is N bytes behind
    release_the_replica    every WAL sender resumed (rollback)

A node is lost, frozen or started the runtime's way (the cluster handle's `runtime`): on this
machine through its launcher's hold and supervisord, in containers through the engine (a node
killed through the engine stays down: Docker does not restart a container it was told to kill).
Each undo is registered before the fault, and in the fault ledger with the run's lease, so a
SIGKILLed harness never leaves a node down or Patroni paused (harness/targets/reaper.py)."""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from harness import targets
from harness.core import procs
from harness.faults import clear_undo, register_undo
from harness.faults._common import duration, effect, freeze, lease, stop_for
from harness.targets.embedded.ha import nodes
from harness.targets.embedded.ha.config import ETCD, HAError

__all__ = ["lose_the_leader_node", "wait_for_a_new_leader", "bring_back_lost_nodes", "freeze_the_leader_node",
           "synchronous_replication", "pause_failover", "resume_failover", "lose_consensus",
           "bring_back_consensus", "failsafe_mode", "hold_back_the_replica", "release_the_replica"]


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
    register_undo(f"ha-node:{leader}", lambda: nodes.start_node(cluster, leader),
                  spec=nodes.node_start_spec(cluster, leader), **ledger)
    killed = nodes.kill_node(cluster, leader, hold_s=ledger["lease_s"])
    return {"node": leader, **killed, "expected_failover_window_s": cluster.get("expected_failover_window_s"),
            "settings": cluster.get("settings")}


def wait_for_a_new_leader(timeout_s: float = 60.0, target: str | None = None) -> dict:
    """Wait until a member other than the one lost leads (Patroni promoted it): the probe a
    node-lost scenario's method waits on before the node comes back. Returns the new leader."""
    _, cluster = _ha(target)
    lost = nodes.lost_nodes(cluster)
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
    other streams from it (Patroni rewinds or rebuilds the old leader). Returns the nodes started,
    the leader and `rebuilt_s`, the time to a rebuilt standby (None when no node was down)."""
    _, cluster = _ha(target)
    started = nodes.lost_nodes(cluster)
    t0 = time.monotonic()
    for name in cluster["members"]:
        if name in started:
            nodes.start_node(cluster, name)
        clear_undo(f"ha-node:{name}")  # up now, also a node a runbook failover started earlier
    try:
        leader = nodes.wait_healthy(cluster, float(timeout_s))
    except HAError as e:
        raise ActivityFailed(str(e)) from None
    # The time to a rebuilt standby: from the node's start to it streaming from the new leader.
    return {"started": started, "leader": leader, "rebuilt_s": round(time.monotonic() - t0, 3) if started else None}


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
    pids = nodes.node_pids(cluster, leader)
    if not pids:
        raise ActivityFailed(f"no process of {leader} runs")
    held = stop_for(pids, duration_s, f"ha-freeze:{leader}", lease(t, configuration))
    return {"node": leader, "pids": pids, **held, "expected_failover_window_s": cluster.get("expected_failover_window_s"),
            "settings": {**(cluster.get("settings") or {}), "synchronous_mode": _dynamic(cluster, "synchronous_mode")}}


def synchronous_replication(on: bool = True, timeout_s: float = 30.0, target: str | None = None,
                            configuration: dict = None) -> dict:
    """Patroni's synchronous_mode on (a commit is acknowledged only once the synchronous standby
    has it) or off; with it on, wait until a member is the synchronous standby. Turning it on
    registers turning it back off (in the fault ledger too)."""
    t, cluster = _ha(target)
    before = _set_dynamic(t, cluster, "synchronous_mode", bool(on), configuration)
    if not on:
        return {"synchronous_mode": False, "was": before}
    deadline = time.monotonic() + float(timeout_s)
    while not any(m.get("role") == "sync_standby" for m in nodes.members(cluster)):
        if time.monotonic() > deadline:
            raise ActivityFailed(f"no member became the synchronous standby within {timeout_s:g} s ({_members(cluster)})")
        time.sleep(0.2)
    return {"synchronous_mode": True, "was": before}


def failsafe_mode(on: bool = True, target: str | None = None, configuration: dict = None) -> dict:
    """Patroni's failsafe_mode on (the BCP's choice: without etcd's quorum a leader that every
    member still confirms keeps its role) or off (it demotes once it cannot refresh its key: the
    twin of consensus lost). A change away from the cluster's setting registers putting it back."""
    t, cluster = _ha(target)
    return {"failsafe_mode": bool(on), "was": _set_dynamic(t, cluster, "failsafe_mode", bool(on), configuration)}


def lose_consensus(duration_s: float = 40.0, members: int = 2, target: str | None = None,
                   configuration: dict = None) -> dict:
    """Consensus lost: `members` of the three etcd members (default 2: no quorum left) stopped for
    `duration_s` (default 2 x ttl), then started again; returns once the quorum is whole. Patroni
    can neither refresh nor take the leader key meanwhile: with failsafe_mode the leader keeps its
    role, without it the leader demotes. Its effect: the members left said they had no quorum.
    Each stopped member's start is in the fault ledger, so a SIGKILLed harness never leaves etcd
    without its quorum."""
    duration_s = duration(duration_s)
    if isinstance(members, bool) or not isinstance(members, int) or not 1 <= members <= len(ETCD):
        raise ActivityFailed(f"members must be a whole number from 1 to {len(ETCD)}, got {members!r}")
    t, cluster = _ha(target)
    lost = ETCD[len(ETCD) - members:]
    ledger = lease(t, configuration)
    for e in lost:
        register_undo(f"ha-etcd:{e}", lambda e=e: nodes.restore_consensus(cluster, (e,)),
                      spec=nodes.etcd_start_spec(cluster, e), **ledger)
    try:
        # From steady state: a member the leader's failsafe topology does not name yet (just
        # rejoined) would make it demote, whatever failsafe_mode promises.
        nodes.wait_failsafe_topology(cluster, 15.0)
    except HAError as e:
        raise ActivityFailed(f"{e}: nothing was injected") from None
    roles_before = nodes.local_roles(cluster)
    try:
        nodes.lose_consensus(cluster, lost)
    except HAError as e:
        raise ActivityFailed(str(e)) from None
    landed = time.time()
    start = time.monotonic()
    try:
        # etcd elects no leader without a majority: its members say so within an election timeout.
        no_quorum = False
        while time.monotonic() - start < min(duration_s, 5.0) and not no_quorum:
            no_quorum = not any(nodes.etcd_health(cluster).values())
            time.sleep(0.2)
        time.sleep(max(0.0, duration_s - (time.monotonic() - start)))
        roles_during = nodes.local_roles(cluster)  # as the agents saw it at the end, quorum still lost
    finally:
        nodes.restore_consensus(cluster, lost)
        for e in lost:
            clear_undo(f"ha-etcd:{e}")
    held = round(time.monotonic() - start, 3)
    try:
        nodes.wait_quorum(cluster, 30.0)
    except HAError as e:
        raise ActivityFailed(str(e)) from None
    return {"stopped": [f"etcd-{e}" for e in lost], "landed_at": landed, "held_s": held,
            "roles_before": roles_before, "roles_at_end": roles_during,
            "failsafe_mode": _dynamic(cluster, "failsafe_mode"),
            "effect": effect(no_quorum, f"{len(lost)} of {len(ETCD)} etcd members stopped for {held:g} s; "
                                        + ("no member left had a quorum" if no_quorum else
                                           "a member left still reported a healthy quorum"))}


def bring_back_consensus(timeout_s: float = 30.0, target: str | None = None) -> dict:
    """Rollback of lose_consensus: every etcd member started (a running one is left as it is),
    then wait until all answer healthy."""
    _, cluster = _ha(target)
    nodes.restore_consensus(cluster, ETCD)
    for e in ETCD:
        clear_undo(f"ha-etcd:{e}")
    try:
        nodes.wait_quorum(cluster, float(timeout_s))
    except HAError as e:
        raise ActivityFailed(str(e)) from None
    return {"etcd": nodes.etcd_health(cluster)}


def hold_back_the_replica(wal_bytes: int = 262144, timeout_s: float = 20.0, target: str | None = None,
                          configuration: dict = None) -> dict:
    """A replica falling behind: the leader's WAL senders are SIGSTOPped until the leader has
    written `wal_bytes` more WAL than the streaming replica received (under load), and left
    stopped: whatever the leader acknowledges meanwhile exists on the leader alone. Below
    Patroni's maximum_lag_on_failover (1 MiB), so the replica may still be promoted.

    The sender, not the replica's WAL receiver: a stopped receiver holds back nothing here, since
    the kernel keeps taking what the sender writes (hundreds of KiB on loopback) and the receiver
    reads it all when resumed, even after the leader is dead (measured: 316 KiB "behind", nothing
    lost). release_the_replica resumes the senders; a detached timer does at the run's lease end
    whatever happens to this harness."""
    if isinstance(wal_bytes, bool) or not isinstance(wal_bytes, int) or wal_bytes < 1:
        raise ActivityFailed(f"wal_bytes must be a whole number of at least 1, got {wal_bytes!r}")
    t, cluster = _ha(target)
    leader = nodes.leader(cluster)
    replica = next((m["name"] for m in nodes.members(cluster)
                    if m["name"] != leader and m.get("state") == "streaming"), None)
    if leader is None or replica is None:
        raise ActivityFailed(f"no leader with a streaming replica to hold back ({_members(cluster)})")
    pids = nodes.walsender_pids(cluster, leader)
    if not pids:
        raise ActivityFailed(f"{leader} has no WAL sender running")
    landed = freeze(pids, f"ha-walsender:{leader}", lease(t, configuration))
    deadline = time.monotonic() + float(timeout_s)
    behind = 0
    while behind < wal_bytes and time.monotonic() < deadline:
        time.sleep(0.1)
        behind = nodes.wal_behind(cluster, leader, replica)
    return {"leader": leader, "replica": replica, "walsender_pids": pids, "landed_at": landed,
            "behind_bytes": behind,
            "effect": effect(behind >= wal_bytes, f"{replica} {behind} bytes of WAL behind {leader} "
                                                  f"(asked for {wal_bytes}) after {timeout_s:g} s at most")}


def release_the_replica(target: str | None = None) -> dict:
    """Resume every member's WAL senders (rollback of hold_back_the_replica; harmless when none
    is stopped, and after the leader's node is lost there is none left to resume)."""
    _, cluster = _ha(target)
    resumed = []
    for name in cluster["members"]:
        resumed += procs.signal_all(nodes.walsender_pids(cluster, name), signal.SIGCONT)
        clear_undo(f"ha-walsender:{name}")
    return {"resumed_pids": resumed}


# A setting changed before the fault must outlast the fault itself (a freeze of up to 2 x ttl and
# more, beyond the scenario's timeout) and the checks after it: the reaper, which undoes it at the
# lease's end, once resumed Patroni in the middle of a twin's 60 s freeze.
SETTING_LEASE_EXTRA_S = 180.0


def _setting_lease(t: dict, configuration: dict | None) -> dict:
    ledger = lease(t, configuration)
    return {**ledger, "lease_s": ledger["lease_s"] + SETTING_LEASE_EXTRA_S}


def _set_dynamic(t: dict, cluster: dict, key: str, value: bool, configuration: dict | None) -> bool:
    """Set one of Patroni's dynamic settings; a change away from what the cluster was built with
    registers putting it back (in the fault ledger too, with a lease that outlasts the fault).
    Returns the value before."""
    before = _dynamic(cluster, key)
    built = bool((cluster.get("settings") or {}).get(key))
    undo = f"ha-{key}"
    if value != built:
        cluster_file = str(Path(cluster["home"]) / "cluster.json")
        register_undo(undo, lambda: nodes.patch_config(cluster, {key: built}),
                      spec={"kind": "patroni_config", "cluster_file": cluster_file, "config": {key: built}},
                      **_setting_lease(t, configuration))
    try:
        nodes.patch_config(cluster, {key: value})
    except HAError as e:
        raise ActivityFailed(str(e)) from None
    if value == built:
        clear_undo(undo)
    return before


def _dynamic(cluster: dict, key: str) -> bool:
    try:
        return bool(nodes.dynamic_config(cluster).get(key))
    except HAError:
        return False


def _ha(target: str | None) -> tuple[dict, dict]:
    t = targets.for_activity(target).require(("processes", "docker"), "this fault").data
    cluster = t.get("ha")
    if t.get("db_tier") != "patroni" or not isinstance(cluster, dict):
        raise ActivityFailed("the target's database tier is not Patroni: bring the stack up with "
                             "'gameday target up --db-tier patroni' in a new home")
    return t, cluster


def _members(cluster: dict) -> str:
    return json.dumps([{k: m.get(k) for k in ("name", "role", "state")} for m in nodes.members(cluster)])
