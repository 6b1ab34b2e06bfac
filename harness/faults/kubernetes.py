"""Kubernetes faults: the BCP's scenarios against a real cluster, by configuration.

The experiments in experiments/kubernetes/ inject their faults with chaostoolkit-kubernetes's own
actions (chaosk8s: terminate_pods, rollout_deployment, drain_nodes, uncordon_node) and check
availability with its probes. What they take from here is what chaosk8s cannot do: scale a
workload to 0 with the original count recorded on it and an undo registered (`scale_deployment`,
`restore_scale`), and guard a node drain so that a run dying before its rollbacks leaves no node
cordoned (`guard_cordon`, `clear_cordon_guard`). The pod faults and `rollout_restart` below stay
for Python callers (their deletions carry UID preconditions and report what was already gone).

The target description (`kind: kubernetes`, see deploy/kubernetes/target.example.json) names the
namespaces, workloads and label selectors; nothing here reads files of the machine it runs on
except that description and an optional kubeconfig. The Deployment and StatefulSet controllers
are the restartPolicy: a deleted pod is recreated by Kubernetes, as supervision restarts a killed
process on the embedded stack. Scaling a workload to 0 replicas is the negative controls'
"automatic restart disabled"; `restore_scale` is its rollback (and its registered undo).

Workloads are named by component (api, monitoring, database-primary, database-standby), as
harness.targets.kubernetes.client resolves them, so an experiment never spells a cluster's names. The read-only
checks (is the workload rolled out, wait until it is) are probes: probes.kubernetes.

Every action returns a JSON-able record of exactly what it did (the pods it deleted, with their
UIDs; the replica counts before and after). Bad input raises ActivityFailed naming the value, and
nothing is asked of the cluster.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from chaoslib.exceptions import ActivityFailed
from kubernetes import client

from harness.targets.kubernetes import client as k8s_client
from harness.faults import clear_undo, pending as pending_undos, register_undo
from harness.targets.kubernetes.client import Apis, as_int, call, database_namespace, field, load_target, namespace as k8s_namespace, read_workload, resolve_workload, why

__all__ = ["kill_api_pods", "kill_database_pod", "kill_monitoring_pod", "rollout_restart", "scale_deployment",
           "restore_scale", "guard_cordon", "clear_cordon_guard"]

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # what `kubectl rollout restart` sets
REPLICAS_BEFORE = "gameday.svg-ai.io/replicas-before-scale"  # kept on the workload: survives our process
MAX_GRACE_PERIOD_S = 3600
MAX_REPLICAS = 1000


def kill_api_pods(count: int | str = 1, grace_period_s: int = 0, target: str | None = None) -> dict:
    """Delete API pods (the BCP's "API service crash"). `count`: how many (1 = one replica; the
    others keep serving) or "all" (nothing answers until the Deployment's replacements are ready).
    `grace_period_s` 0 kills the containers at once, without a drain, like a crash.

    Pods that are already terminating are chosen last for a number, and included for "all".
    Returns the pods deleted (name, UID, node) and the label selector and namespace used."""
    if count != "all" and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ActivityFailed(f"count must be a positive whole number of pods or 'all', got {count!r}")
    grace = _grace(grace_period_s)
    t, src = load_target(target)
    namespace, selector = k8s_namespace(t, src, "namespace"), field(t, src, "api_label_selector")
    apis = k8s_client.make_apis(t, src)
    pods = _pods(apis, namespace, selector)
    if not pods:
        raise ActivityFailed(f"no API pod matches {selector!r} in namespace {namespace!r}; is the API deployed there?")
    if count == "all":
        victims = pods
    elif count > len(pods):
        raise ActivityFailed(f"count {count} is more than the {len(pods)} API pods matching {selector!r} in "
                             f"namespace {namespace!r}; use 'all' to delete every one")
    else:
        victims = sorted(pods, key=lambda p: (_terminating(p), p.metadata.name))[:count]
    return _kill("api", apis, namespace, selector, victims, grace, requested=count, matched=len(pods))


def kill_database_pod(role: str = "primary", grace_period_s: int = 1, target: str | None = None) -> dict:
    """Delete the PostgreSQL pod that plays `role` (primary or standby), the BCP's "database
    failure". Under Patroni (deploy/kubernetes/postgres.yaml) the replica is promoted and the
    StatefulSet recreates the lost pod on its volume, which rejoins as a replica; a plain
    StatefulSet restarts it there and crash recovery replays the WAL.

    The default grace of 1 s is deliberate: a force deletion (0) removes the pod object before the
    kubelet has stopped the container, so the StatefulSet may start the replacement while the old
    server still holds the same data volume. With 1 s the old server is killed first.
    Refuses when the selector matches more than one live pod (it would not know which to kill)."""
    if role not in ("primary", "standby"):
        raise ActivityFailed(f"role must be 'primary' or 'standby', got {role!r}")
    grace = _grace(grace_period_s)
    t, src = load_target(target)
    namespace = database_namespace(t, src)
    selectors = t.get("database_pod_selectors")
    if not isinstance(selectors, dict) or not isinstance(selectors.get(role), str) or not selectors[role].strip():
        example = "role=primary" if role == "primary" else "role=replica"  # the labels Patroni writes
        raise ActivityFailed(f"target description {src} has no database_pod_selectors.{role} (a label selector such "
                             f"as 'app.kubernetes.io/name=svg-ai-postgres,{example}'), got {selectors!r}")
    selector = selectors[role]
    apis = k8s_client.make_apis(t, src)
    pods = _pods(apis, namespace, selector)
    live = [p for p in pods if not _terminating(p)]
    if len(live) > 1:
        names = ", ".join(sorted(p.metadata.name for p in live))
        raise ActivityFailed(f"database_pod_selectors.{role} {selector!r} matches {len(live)} live pods in namespace "
                             f"{namespace!r} ({names}); it must select exactly the {role}")
    victims = live or pods  # a pod already terminating (its workload scaled to 0) is killed now
    if not victims:
        raise ActivityFailed(f"no PostgreSQL {role} pod matches {selector!r} in namespace {namespace!r}")
    return _kill(f"database-{role}", apis, namespace, selector, victims, grace, requested=1, matched=len(pods))


def kill_monitoring_pod(grace_period_s: int = 0, target: str | None = None) -> dict:
    """Delete the Prometheus pod(s) (the BCP's "Prometheus failure"). The Deployment recreates it
    on the same volume; the scrapes missed meanwhile are the monitoring data lost."""
    grace = _grace(grace_period_s)
    t, src = load_target(target)
    namespace = k8s_namespace(t, src, "monitoring_namespace")
    selector = field(t, src, "prometheus_label_selector")
    apis = k8s_client.make_apis(t, src)
    pods = _pods(apis, namespace, selector)
    if not pods:
        raise ActivityFailed(f"no Prometheus pod matches {selector!r} in namespace {namespace!r}")
    return _kill("monitoring", apis, namespace, selector, pods, grace, requested="all", matched=len(pods))


def rollout_restart(deployment: str | None = None, namespace: str | None = None, component: str = "api",
                    target: str | None = None) -> dict:
    """The BCP's manual recovery `kubectl rollout restart deployment/<name> -n <namespace>`: stamp
    the pod template with the annotation kubectl.kubernetes.io/restartedAt, so the controller
    replaces every pod by its update strategy. `deployment`/`namespace` name the workload directly;
    otherwise `component` (api, monitoring, database-primary, database-standby) picks it from the
    target description. Returns the pods that are to be replaced, with their UIDs."""
    kind, name, ns, t, src = resolve_workload(component, deployment, namespace, target)
    apis = k8s_client.make_apis(t, src)
    obj = read_workload(apis, kind, name, ns)
    selector = _match_labels(obj, kind, name, ns)
    before = [_pod_record(p) for p in _pods(apis, ns, selector)]
    stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    patched = _patch(apis, kind, name, ns, body)
    return {"kind": kind, "name": name, "namespace": ns, "restarted_at": stamp,
            "generation": getattr(getattr(patched, "metadata", None), "generation", None),
            "label_selector": selector, "pods_to_replace": before, "at": time.time()}


def scale_deployment(replicas: int, component: str = "api", deployment: str | None = None,
                     namespace: str | None = None, target: str | None = None) -> dict:
    """Scale a workload to `replicas`. With 0 this is the negative controls' "automatic restart
    disabled": nothing recreates a killed pod. The replica count before the first scale is kept in
    the workload's annotation gameday.svg-ai.io/replicas-before-scale (so any process can undo it)
    and an undo is registered; `restore_scale` (the rollback) scales back and clears both."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
        raise ActivityFailed(f"replicas must be a whole number from 0 to {MAX_REPLICAS}, got {replicas!r}")
    kind, name, ns, t, src = resolve_workload(component, deployment, namespace, target)
    apis = k8s_client.make_apis(t, src)
    obj = read_workload(apis, kind, name, ns)
    current = as_int(obj.spec.replicas)
    recorded = (obj.metadata.annotations or {}).get(REPLICAS_BEFORE)
    if recorded is None:  # a second scale keeps the first original
        _patch(apis, kind, name, ns, {"metadata": {"annotations": {REPLICAS_BEFORE: str(current)}}})
        original = current
    else:
        original = _recorded(recorded, kind, name, ns)
    key = _undo_key(kind, ns, name)
    register_undo(key, lambda: restore_scale(deployment=name if kind == "deployment" else None,
                                             namespace=ns, component=component, target=src))
    _scale(apis, kind, name, ns, replicas)
    return {"kind": kind, "name": name, "namespace": ns, "replicas_before": current, "replicas": replicas,
            "original_replicas": original, "undo": key, "at": time.time()}


def restore_scale(component: str = "api", deployment: str | None = None, namespace: str | None = None,
                  replicas: int | None = None, target: str | None = None) -> dict:
    """Rollback of scale_deployment: scale the workload back to the replica count recorded before
    it was first scaled, remove that record and clear the undo. Without a record it scales to
    `replicas` if given, else leaves the workload alone (a rollback that already ran is harmless)."""
    if replicas is not None and (isinstance(replicas, bool) or not isinstance(replicas, int)
                                 or not 0 <= replicas <= MAX_REPLICAS):
        raise ActivityFailed(f"replicas must be null or a whole number from 0 to {MAX_REPLICAS}, got {replicas!r}")
    kind, name, ns, t, src = resolve_workload(component, deployment, namespace, target)
    apis = k8s_client.make_apis(t, src)
    obj = read_workload(apis, kind, name, ns)
    current = as_int(obj.spec.replicas)
    recorded = (obj.metadata.annotations or {}).get(REPLICAS_BEFORE)
    record = {"kind": kind, "name": name, "namespace": ns, "replicas_before": current, "at": time.time()}
    if recorded is None and replicas is None:
        clear_undo(_undo_key(kind, ns, name))
        return {**record, "restored": False, "replicas": current,
                "detail": f"no {REPLICAS_BEFORE} annotation: nothing to restore"}
    to = _recorded(recorded, kind, name, ns) if recorded is not None else replicas
    _scale(apis, kind, name, ns, to)
    if recorded is not None:
        _patch(apis, kind, name, ns, {"metadata": {"annotations": {REPLICAS_BEFORE: None}}})
    clear_undo(_undo_key(kind, ns, name))
    return {**record, "restored": True, "replicas": to}


def guard_cordon(label_selector: str, target: str | None = None) -> dict:
    """Before a node drain (chaosk8s.node.actions.drain_nodes cordons the nodes it drains and
    leaves them so): register with the harness's safety net the undo that uncordons the nodes
    matching `label_selector` that are schedulable now, so a run that dies before its rollbacks
    leaves no node cordoned. A node an operator had already cordoned is left as it was.
    Returns the nodes guarded and those found already cordoned."""
    selector = _node_selector(label_selector)
    t, src = load_target(target)
    apis = k8s_client.make_apis(t, src)
    nodes = call(f"cannot list nodes matching {selector!r}", apis.core.list_node, label_selector=selector).items
    if not nodes:
        raise ActivityFailed(f"no node matches {selector!r}: label the node the game day may fail "
                             f"(kubectl label node NAME {selector})")
    guarded = sorted(n.metadata.name for n in nodes if not n.spec.unschedulable)
    key = _cordon_key(selector)
    register_undo(key, lambda: _uncordon(apis, guarded))
    return {"label_selector": selector, "guarded": guarded, "undo": key, "at": time.time(),
            "already_cordoned": sorted(n.metadata.name for n in nodes if n.spec.unschedulable)}


def clear_cordon_guard(label_selector: str, target: str | None = None) -> dict:
    """Rollback, after chaosk8s.node.actions.uncordon_node: drop the undo guard_cordon registered.
    Refuses (keeping the undo, so the safety net still uncordons) while a node matching
    `label_selector` that it guarded is still cordoned, and names it."""
    selector = _node_selector(label_selector)
    t, src = load_target(target)
    apis = k8s_client.make_apis(t, src)
    nodes = call(f"cannot list nodes matching {selector!r}", apis.core.list_node, label_selector=selector).items
    still = sorted(n.metadata.name for n in nodes if n.spec.unschedulable)
    key = _cordon_key(selector)
    if still and key in pending_undos():
        raise ActivityFailed(f"node(s) {', '.join(still)} matching {selector!r} are still cordoned after the rollback; "
                             f"the harness's safety net will uncordon them (or: kubectl uncordon {still[0]})")
    clear_undo(key)
    return {"label_selector": selector, "cleared": key, "still_cordoned": still, "at": time.time()}


# ---------------------------------------------------------------------------------------------
# Internals

def _node_selector(value) -> str:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
        raise ActivityFailed(f"label_selector must be a node label selector such as 'svg-ai.io/gameday-node-failure=true', "
                             f"got {value!r}")
    return value.strip()


def _cordon_key(selector: str) -> str:
    return f"cordon:nodes/{selector}"


def _uncordon(apis: Apis, names: list[str]) -> list[str]:
    for name in names:
        call(f"cannot uncordon node {name!r}", apis.core.patch_node, name, {"spec": {"unschedulable": False}})
    return names


def _grace(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GRACE_PERIOD_S:
        raise ActivityFailed(f"grace_period_s must be a whole number of seconds from 0 to {MAX_GRACE_PERIOD_S}, "
                             f"got {value!r}")
    return value


def _recorded(value: str, kind: str, name: str, ns: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if not 0 <= n <= MAX_REPLICAS:
        raise ActivityFailed(f"{kind} {name!r} in namespace {ns!r} has a malformed {REPLICAS_BEFORE} annotation "
                             f"{value!r}; fix or remove it and scale by hand")
    return n


def _undo_key(kind: str, ns: str, name: str) -> str:
    return f"scale:{kind}/{ns}/{name}"


def _patch(apis: Apis, kind: str, name: str, ns: str, body: dict):
    fn = apis.apps.patch_namespaced_deployment if kind == "deployment" else apis.apps.patch_namespaced_stateful_set
    return call(f"cannot patch {kind} {name!r} in namespace {ns!r}", fn, name, ns, body)


def _scale(apis: Apis, kind: str, name: str, ns: str, replicas: int):
    fn = (apis.apps.patch_namespaced_deployment_scale if kind == "deployment"
          else apis.apps.patch_namespaced_stateful_set_scale)
    return call(f"cannot scale {kind} {name!r} in namespace {ns!r} to {replicas}", fn, name, ns,
                 {"spec": {"replicas": replicas}})


def _match_labels(obj, kind: str, name: str, ns: str) -> str:
    labels = getattr(getattr(obj.spec, "selector", None), "match_labels", None) or {}
    if not labels:
        raise ActivityFailed(f"{kind} {name!r} in namespace {ns!r} has no spec.selector.matchLabels "
                             f"to find its pods by")
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _pods(apis: Apis, namespace: str, selector: str) -> list:
    """Pods matching `selector` that are not finished (an evicted or completed pod is not a replica)."""
    found = call(f"cannot list pods matching {selector!r} in namespace {namespace!r}",
                  apis.core.list_namespaced_pod, namespace, label_selector=selector)
    return [p for p in found.items if getattr(p.status, "phase", None) not in ("Succeeded", "Failed")]


def _terminating(pod) -> bool:
    return pod.metadata.deletion_timestamp is not None


def _iso(value) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _pod_record(pod) -> dict:
    status, spec = pod.status, pod.spec
    return {"name": pod.metadata.name, "uid": pod.metadata.uid,
            "node": getattr(spec, "node_name", None), "pod_ip": getattr(status, "pod_ip", None),
            "phase": getattr(status, "phase", None), "created": _iso(pod.metadata.creation_timestamp),
            "terminating": _terminating(pod)}


def _kill(component: str, apis: Apis, namespace: str, selector: str, victims: list, grace: int,
          requested, matched: int) -> dict:
    """Delete exactly `victims`: each deletion carries the pod's UID as a precondition, so a
    replacement that took the same name (a StatefulSet pod) is never deleted by mistake."""
    record = {"component": component, "namespace": namespace, "label_selector": selector,
              "grace_period_s": grace, "requested": requested, "matched": matched,
              "deleted": [], "already_gone": [], "at": time.time(),
              "at_utc": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
    for pod in victims:
        rec = _pod_record(pod)
        body = client.V1DeleteOptions(grace_period_seconds=grace, preconditions=client.V1Preconditions(uid=rec["uid"]))
        try:
            apis.core.delete_namespaced_pod(rec["name"], namespace, grace_period_seconds=grace, body=body)
        except Exception as e:
            status = getattr(e, "status", None)
            if status in (404, 409):  # gone already, or the name now belongs to a replacement
                record["already_gone"].append({**rec, "reason": "not found" if status == 404 else "uid changed"})
                continue
            done = ", ".join(f"{d['name']} ({d['uid']})" for d in record["deleted"]) or "none"
            raise ActivityFailed(f"cannot delete pod {rec['name']!r} in namespace {namespace!r}: {why(e)}; "
                                 f"deleted before the error: {done}") from None
        record["deleted"].append(rec)
    return record
