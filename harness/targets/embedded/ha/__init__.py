"""The database tier under a real HA manager: Patroni on a 3-member etcd quorum.

Where the embedded stack's failover is the BCP's runbook run by the harness, here the cluster
fails over by itself, as a production deployment would: Patroni holds a leader key in etcd with a
ttl; when the leader's node is lost the key expires and the replica promotes; the old leader
comes back as a replica (pg_rewind). This package brings such a cluster up on one machine and
gives the harness what it needs to break and observe it:

    config    SETTINGS, expected_failover_window, ports, folders, every configuration file (pure)
    cluster   up(home, port_base, synchronous=False) -> cluster handle; down(home, remove=False)
    nodes     members, leader, switchover, kill_node/start_node, freeze_node/thaw_node,
              lose_consensus/restore_consensus (etcd members stopped), etcd_health, wait_quorum,
              local_roles, walsender_pids, wal_behind,
              timeline, system_identifier (acting on the handle `up` returns)

Every function takes and returns plain JSON-able data, so experiments, benchmarks and tests call
them the same way.
"""
from __future__ import annotations

from harness.targets.embedded.ha.cluster import down, layout_for, up
from harness.targets.embedded.ha.config import SETTINGS, HAError, expected_failover_window
from harness.targets.embedded.ha.nodes import (agent_pid, etcd_health, freeze_node, kill_node, leader, local_roles,
                                               lose_consensus, members, reinitialize, wait_quorum, wal_behind,
                                               walsender_pids, restore_consensus, server_streams, set_pause, patch_config, dynamic_config, start_node,
                                               switchover, system_identifier, system_identifier_of, thaw_node,
                                               timeline, timeline_of, wait_failsafe_topology, wait_healthy, wait_leader,
                                               wait_streaming)

__all__ = ["SETTINGS", "HAError", "expected_failover_window", "up", "down", "layout_for", "members", "leader",
           "switchover", "kill_node", "start_node", "lose_consensus", "restore_consensus", "reinitialize", "server_streams", "set_pause", "patch_config", "dynamic_config", "freeze_node", "thaw_node", "agent_pid", "timeline",
           "timeline_of", "system_identifier", "system_identifier_of", "wait_leader", "wait_streaming",
           "wait_healthy", "etcd_health", "wait_quorum", "local_roles", "walsender_pids", "wal_behind",
           "wait_failsafe_topology"]
