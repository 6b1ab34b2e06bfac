"""Kubernetes probes: read-only checks of the cluster a Kubernetes target names (is a workload
rolled out, wait until it is, wait until every workload is). They never change the cluster; the
faults that do are in harness.faults.kubernetes. Workloads are named by component (api,
monitoring, database-primary, database-standby) or directly, as harness.targets.kubernetes.client
resolves them. The waiting is the Kubernetes target's own (harness.targets.kubernetes.rollout).
"""
from __future__ import annotations

from chaoslib.exceptions import ActivityFailed

from harness.targets.kubernetes import client as k8s_client
from harness.targets.kubernetes.client import resolve_workload
from harness.targets.kubernetes.rollout import rollout_state, wait_rollout_ready, wait_target_ready

__all__ = ["rollout_complete", "rollout_state", "wait_rollout_ready", "wait_target_ready"]


def rollout_complete(component: str = "api", target: str | None = None) -> bool:
    """Probe: True when the component's workload is fully rolled out and every replica available
    (e.g. all 3 API replicas before one is killed). False when it is not, or the cluster cannot
    be asked; a bad component or target description raises ActivityFailed."""
    kind, name, ns, t, src = resolve_workload(component, None, None, target)
    try:
        return rollout_state(kind, k8s_client.read_workload(k8s_client.make_apis(t, src), kind, name, ns))[0]
    except ActivityFailed:
        return False
