"""Kubernetes probes: read-only checks of the cluster a Kubernetes target names (is it one,
is a workload rolled out, wait until it is). They never change the cluster; the faults that do
are in harness.faults.kubernetes. Workloads are named by component (api, monitoring,
database-primary, database-standby) or directly, as harness.k8s_client resolves them.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from harness import k8s_client, target as target_mod
from harness.k8s_client import as_int, resolve_workload, why

__all__ = ["is_kubernetes_target", "rollout_complete", "rollout_state", "wait_rollout_ready", "wait_target_ready"]

MAX_TIMEOUT_S = 3600
POLL_INTERVAL_S = 1.0
_now = time.monotonic  # tests replace the clock
_sleep = time.sleep


def is_kubernetes_target(path: str | os.PathLike | None = None) -> bool:
    """True when the target description at `path` (a file or a stack home folder; by default
    $GAMEDAY_TARGET, as harness.target resolves it) says `kind: kubernetes`. Only the kind is read,
    so an incomplete Kubernetes description still counts (its errors are reported when it is
    used) and the runner never starts the embedded stack for it. Never raises."""
    try:
        p = Path(path) if path else target_mod.target_path()
        if p.is_dir():
            p = p / target_mod.TARGET_FILE
        data = json.loads(p.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("kind") == k8s_client.KIND


def rollout_complete(component: str = "api", target: str | None = None) -> bool:
    """Probe: True when the component's workload is fully rolled out and every replica available
    (e.g. all 3 API replicas before one is killed). False when it is not, or the cluster cannot
    be asked; a bad component or target description raises ActivityFailed."""
    kind, name, ns, t, src = resolve_workload(component, None, None, target)
    try:
        return rollout_state(kind, k8s_client.read_workload(k8s_client.make_apis(t, src), kind, name, ns))[0]
    except ActivityFailed:
        return False


def rollout_state(kind: str, obj) -> tuple[bool, str]:
    """(done, why) for a Deployment or StatefulSet, by the rules `kubectl rollout status` applies."""
    spec, status, meta = obj.spec, obj.status, obj.metadata
    want = as_int(spec.replicas) if spec.replicas is not None else 1
    if status is None or as_int(status.observed_generation) < as_int(meta.generation):
        return False, "the controller has not observed the latest spec yet"
    updated, ready = as_int(status.updated_replicas), as_int(status.ready_replicas)
    if kind == "deployment":
        total, available = as_int(status.replicas), as_int(status.available_replicas)
        if updated < want:
            return False, f"{updated} of {want} replicas updated"
        if total > updated:
            return False, f"{total - updated} old replicas are pending termination"
        if available < updated:
            return False, f"{available} of {updated} updated replicas available"
        return True, f"{available} of {want} replicas available"
    if ready < want:
        return False, f"{ready} of {want} pods ready"
    if status.update_revision and status.current_revision != status.update_revision:
        return False, f"{updated} of {want} pods at the new revision"
    return True, f"{ready} of {want} pods ready"


def wait_rollout_ready(deployment: str | None = None, timeout_s: float = 300, namespace: str | None = None,
                       component: str = "api", target: str | None = None) -> dict:
    """Wait until the workload is fully rolled out and every replica is available (what `kubectl
    rollout status` waits for). Raises ActivityFailed after `timeout_s` seconds, saying what is
    still missing. `deployment`/`namespace` name the workload directly; otherwise `component`
    (api, monitoring, database-primary, database-standby) picks it from the target description."""
    timeout_s = _seconds(timeout_s, "timeout_s")
    kind, name, ns, t, src = resolve_workload(component, deployment, namespace, target)
    apis = k8s_client.make_apis(t, src)
    read = apis.apps.read_namespaced_deployment if kind == "deployment" else apis.apps.read_namespaced_stateful_set
    started = _now()
    while True:
        try:
            obj = read(name, ns)
            done, reason = rollout_state(kind, obj)
        except Exception as e:
            if getattr(e, "status", None) in (401, 403, 404):  # will not get better by waiting
                raise ActivityFailed(f"cannot read {kind} {name!r} in namespace {ns!r}: {why(e)}") from None
            obj, done, reason = None, False, f"the Kubernetes API did not answer ({why(e)})"
        waited = round(_now() - started, 3)
        if done:
            return {"kind": kind, "name": name, "namespace": ns, "replicas": as_int(obj.spec.replicas),
                    "ready_replicas": as_int(obj.status.ready_replicas), "waited_s": waited, "detail": reason}
        if waited >= timeout_s:
            raise ActivityFailed(f"{kind} {name!r} in namespace {ns!r} is not rolled out after {timeout_s:g} s: "
                                 f"{reason}")
        _sleep(min(POLL_INTERVAL_S, max(0.0, timeout_s - waited)))


def wait_target_ready(timeout_s: float = 300, target: str | None = None) -> dict:
    """Wait until every workload the target names (API, Prometheus, and the PostgreSQL
    StatefulSets if it names them) is fully rolled out: the steady state between two scenarios.
    Raises ActivityFailed naming the first workload still not ready after `timeout_s` seconds."""
    timeout_s = _seconds(timeout_s, "timeout_s")
    t, src = k8s_client.load_target(target)
    components = ["api", "monitoring"] + [f"database-{r}" for r in ("primary", "standby")
                                          if isinstance(t.get("database_statefulsets"), dict)
                                          and t["database_statefulsets"].get(r)]
    deadline = _now() + timeout_s
    done = {}
    for c in components:
        left = max(0.001, deadline - _now())
        done[c] = wait_rollout_ready(component=c, timeout_s=left, target=src)
    return done


# ---------------------------------------------------------------------------------------------
# Internals

def _seconds(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT_S:
        raise ActivityFailed(f"{name} must be a number of seconds above 0 and at most {MAX_TIMEOUT_S}, got {value!r}")
    return float(value)
