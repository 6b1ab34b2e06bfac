"""Whether a Kubernetes target's workloads are rolled out: what `kubectl rollout status` waits
for, read from the cluster the target description names. The Kubernetes target's health, and the
probes of the same names (probes.kubernetes) that experiments call."""
from __future__ import annotations

import time

from chaoslib.exceptions import ActivityFailed

from harness.targets.kubernetes import client as k8s_client
from harness.targets.kubernetes.client import as_int, resolve_workload, why

__all__ = ["rollout_state", "wait_rollout_ready", "wait_target_ready", "MAX_TIMEOUT_S"]

MAX_TIMEOUT_S = 3600
POLL_INTERVAL_S = 1.0
_now = time.monotonic  # tests replace the clock
_sleep = time.sleep


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


# Internals ---------------------------------------------------------------------------------

def _seconds(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT_S:
        raise ActivityFailed(f"{name} must be a number of seconds above 0 and at most {MAX_TIMEOUT_S}, got {value!r}")
    return float(value)
