"""Kubernetes faults: the BCP's scenarios against a real cluster, by configuration.

The target description (`kind: kubernetes`, see deploy/kubernetes/target.example.json) names the
namespaces, workloads and label selectors; nothing here reads files of the machine it runs on
except that description and an optional kubeconfig. The Deployment and StatefulSet controllers
are the restartPolicy: a deleted pod is recreated by Kubernetes, as supervision restarts a killed
process on the embedded stack. Scaling a workload to 0 replicas is the negative controls'
"automatic restart disabled"; `restore_scale` is its rollback (and its registered undo).

Workloads are named by component, so an experiment never spells a cluster's names:
    api               the API Deployment            (api_deployment, api_label_selector, namespace)
    monitoring        the Prometheus Deployment     (prometheus_deployment, prometheus_label_selector,
                                                     monitoring_namespace)
    database-primary  the PostgreSQL primary        (database_statefulsets.primary,
    database-standby  and standby StatefulSets       database_pod_selectors.<role>, database_namespace)

Every action returns a JSON-able record of exactly what it did (the pods it deleted, with their
UIDs; the replica counts before and after). Bad input raises ActivityFailed naming the value, and
nothing is asked of the cluster.
"""
from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from harness import target as target_mod
from harness.faults import clear_undo, register_undo

__all__ = ["kill_api_pods", "kill_database_pod", "kill_monitoring_pod", "rollout_restart", "wait_rollout_ready",
           "rollout_complete", "scale_deployment", "restore_scale", "wait_target_ready", "is_kubernetes_target",
           "make_apis", "COMPONENTS"]

KIND = "kubernetes"
COMPONENTS = ("api", "monitoring", "database-primary", "database-standby")
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"  # what `kubectl rollout restart` sets
REPLICAS_BEFORE = "gameday.svg-ai.io/replicas-before-scale"  # kept on the workload: survives our process
MAX_GRACE_PERIOD_S = 3600
MAX_REPLICAS = 1000
MAX_TIMEOUT_S = 3600
POLL_INTERVAL_S = 1.0


def kill_api_pods(count: int | str = 1, grace_period_s: int = 0, target: str | None = None) -> dict:
    """Delete API pods (the BCP's "API service crash"). `count`: how many (1 = one replica; the
    others keep serving) or "all" (nothing answers until the Deployment's replacements are ready).
    `grace_period_s` 0 kills the containers at once, without a drain, like a crash.

    Pods that are already terminating are chosen last for a number, and included for "all".
    Returns the pods deleted (name, UID, node) and the label selector and namespace used."""
    if count != "all" and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ActivityFailed(f"count must be a positive whole number of pods or 'all', got {count!r}")
    grace = _grace(grace_period_s)
    t, src = _k8s_target(target)
    namespace, selector = _namespace(t, src, "namespace"), _selector(t, src, "api_label_selector")
    apis = make_apis(t, src)
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
    failure": its StatefulSet recreates it on the same volume and crash recovery replays the WAL.

    The default grace of 1 s is deliberate: a force deletion (0) removes the pod object before the
    kubelet has stopped the container, so the StatefulSet may start the replacement while the old
    server still holds the same data volume. With 1 s the old server is killed first.
    Refuses when the selector matches more than one live pod (it would not know which to kill)."""
    if role not in ("primary", "standby"):
        raise ActivityFailed(f"role must be 'primary' or 'standby', got {role!r}")
    grace = _grace(grace_period_s)
    t, src = _k8s_target(target)
    namespace = _database_namespace(t, src)
    selectors = t.get("database_pod_selectors")
    if not isinstance(selectors, dict) or not isinstance(selectors.get(role), str) or not selectors[role].strip():
        raise ActivityFailed(f"target description {src} has no database_pod_selectors.{role} (a label selector such "
                             f"as 'app.kubernetes.io/name=svg-ai-postgres,svg-ai.io/role={role}'), got {selectors!r}")
    selector = selectors[role]
    apis = make_apis(t, src)
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
    t, src = _k8s_target(target)
    namespace = _namespace(t, src, "monitoring_namespace")
    selector = _selector(t, src, "prometheus_label_selector")
    apis = make_apis(t, src)
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
    kind, name, ns, t, src = _resolve(component, deployment, namespace, target)
    apis = make_apis(t, src)
    obj = _read(apis, kind, name, ns)
    selector = _match_labels(obj, kind, name, ns)
    before = [_pod_record(p) for p in _pods(apis, ns, selector)]
    stamp = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    patched = _patch(apis, kind, name, ns, body)
    return {"kind": kind, "name": name, "namespace": ns, "restarted_at": stamp,
            "generation": getattr(getattr(patched, "metadata", None), "generation", None),
            "label_selector": selector, "pods_to_replace": before, "at": time.time()}


def wait_rollout_ready(deployment: str | None = None, timeout_s: float = 300, namespace: str | None = None,
                       component: str = "api", target: str | None = None) -> dict:
    """Wait until the workload is fully rolled out and every replica is available (what `kubectl
    rollout status` waits for). Raises ActivityFailed after `timeout_s` seconds, saying what is
    still missing. Names the workload as rollout_restart does."""
    timeout_s = _seconds(timeout_s, "timeout_s")
    kind, name, ns, t, src = _resolve(component, deployment, namespace, target)
    apis = make_apis(t, src)
    read = apis.apps.read_namespaced_deployment if kind == "deployment" else apis.apps.read_namespaced_stateful_set
    started = _now()
    while True:
        try:
            obj = read(name, ns)
            done, reason = rollout_state(kind, obj)
        except Exception as e:
            if getattr(e, "status", None) in (401, 403, 404):  # will not get better by waiting
                raise ActivityFailed(f"cannot read {kind} {name!r} in namespace {ns!r}: {_why(e)}") from None
            obj, done, reason = None, False, f"the Kubernetes API did not answer ({_why(e)})"
        waited = round(_now() - started, 3)
        if done:
            return {"kind": kind, "name": name, "namespace": ns, "replicas": _int(obj.spec.replicas),
                    "ready_replicas": _int(obj.status.ready_replicas), "waited_s": waited, "detail": reason}
        if waited >= timeout_s:
            raise ActivityFailed(f"{kind} {name!r} in namespace {ns!r} is not rolled out after {timeout_s:g} s: "
                                 f"{reason}")
        _sleep(min(POLL_INTERVAL_S, max(0.0, timeout_s - waited)))


def rollout_complete(component: str = "api", target: str | None = None) -> bool:
    """Probe: True when the component's workload is fully rolled out and every replica available
    (e.g. all 3 API replicas before one is killed). False when it is not, or the cluster cannot
    be asked; a bad component or target description raises ActivityFailed."""
    kind, name, ns, t, src = _resolve(component, None, None, target)
    try:
        return rollout_state(kind, _read(make_apis(t, src), kind, name, ns))[0]
    except ActivityFailed:
        return False


def scale_deployment(replicas: int, component: str = "api", deployment: str | None = None,
                     namespace: str | None = None, target: str | None = None) -> dict:
    """Scale a workload to `replicas`. With 0 this is the negative controls' "automatic restart
    disabled": nothing recreates a killed pod. The replica count before the first scale is kept in
    the workload's annotation gameday.svg-ai.io/replicas-before-scale (so any process can undo it)
    and an undo is registered; `restore_scale` (the rollback) scales back and clears both."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or not 0 <= replicas <= MAX_REPLICAS:
        raise ActivityFailed(f"replicas must be a whole number from 0 to {MAX_REPLICAS}, got {replicas!r}")
    kind, name, ns, t, src = _resolve(component, deployment, namespace, target)
    apis = make_apis(t, src)
    obj = _read(apis, kind, name, ns)
    current = _int(obj.spec.replicas)
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
    kind, name, ns, t, src = _resolve(component, deployment, namespace, target)
    apis = make_apis(t, src)
    obj = _read(apis, kind, name, ns)
    current = _int(obj.spec.replicas)
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


def wait_target_ready(timeout_s: float = 300, target: str | None = None) -> dict:
    """Wait until every workload the target names (API, Prometheus, and the PostgreSQL
    StatefulSets if it names them) is fully rolled out: the steady state between two scenarios.
    Raises ActivityFailed naming the first workload still not ready after `timeout_s` seconds."""
    timeout_s = _seconds(timeout_s, "timeout_s")
    t, src = _k8s_target(target)
    components = ["api", "monitoring"] + [f"database-{r}" for r in ("primary", "standby")
                                          if isinstance(t.get("database_statefulsets"), dict)
                                          and t["database_statefulsets"].get(r)]
    deadline = _now() + timeout_s
    done = {}
    for c in components:
        left = max(0.001, deadline - _now())
        done[c] = wait_rollout_ready(component=c, timeout_s=left, target=src)
    return done


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
    return isinstance(data, dict) and data.get("kind") == KIND


@dataclass
class Apis:
    """The two Kubernetes API groups the faults use."""
    core: Any  # kubernetes.client.CoreV1Api
    apps: Any  # kubernetes.client.AppsV1Api


def make_apis(t: dict, source: str | os.PathLike | None = None) -> Apis:
    """Clients for the cluster the target description names. With `kubeconfig` and/or `context`
    in the description: that file (relative to the description's folder) and context. Without:
    the in-cluster service account when running in a pod, else $KUBECONFIG or ~/.kube/config and
    its current context. Tests replace this function with one returning fakes."""
    from kubernetes import client, config

    kubeconfig, context = t.get("kubeconfig"), t.get("context")
    for field, value in (("kubeconfig", kubeconfig), ("context", context)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ActivityFailed(f"target description {source}: {field} must be null or a non-empty string, "
                                 f"got {value!r}")
    if kubeconfig:
        path = Path(kubeconfig).expanduser()
        if not path.is_absolute() and source:
            path = Path(source).parent / path
        kubeconfig = str(path)
    try:
        if kubeconfig or context or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            api_client = config.new_client_from_config(config_file=kubeconfig, context=context, persist_config=False)
        else:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            api_client = client.ApiClient(configuration)
    except Exception as e:  # ConfigException, a missing or malformed file, an unknown context
        where = f"kubeconfig {kubeconfig!r}" if kubeconfig else "$KUBECONFIG or ~/.kube/config"
        what = f" context {context!r}" if context else ""
        raise ActivityFailed(f"cannot load Kubernetes credentials from {where}{what} (target {source}): "
                             f"{_first_line(e)}") from None
    return Apis(core=client.CoreV1Api(api_client), apps=client.AppsV1Api(api_client))


def rollout_state(kind: str, obj) -> tuple[bool, str]:
    """(done, why) for a Deployment or StatefulSet, by the rules `kubectl rollout status` applies."""
    spec, status, meta = obj.spec, obj.status, obj.metadata
    want = _int(spec.replicas) if spec.replicas is not None else 1
    if status is None or _int(status.observed_generation) < _int(meta.generation):
        return False, "the controller has not observed the latest spec yet"
    updated, ready = _int(status.updated_replicas), _int(status.ready_replicas)
    if kind == "deployment":
        total, available = _int(status.replicas), _int(status.available_replicas)
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


# ---------------------------------------------------------------------------------------------
# Internals

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")  # DNS-1123 subdomain
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # DNS-1123 label
_now = time.monotonic
_sleep = time.sleep


def _k8s_target(target: str | os.PathLike | None) -> tuple[dict, str]:
    p = Path(target) if target else target_mod.target_path()
    if p.is_dir():
        p = p / target_mod.TARGET_FILE
    try:
        t = target_mod.load(p)
    except target_mod.TargetError as e:
        raise ActivityFailed(str(e)) from None
    if t.get("kind") != KIND:
        raise ActivityFailed(f"this fault needs a Kubernetes target (kind {KIND}), target {p} is {t.get('kind')!r}")
    return t, str(p)


def _field(t: dict, src: str, field: str) -> str:
    value = t.get(field)
    if not isinstance(value, str) or not value.strip():
        raise ActivityFailed(f"target description {src} has no {field!r} (see deploy/kubernetes/target.example.json), "
                             f"got {value!r}")
    return value


def _namespace(t: dict, src: str, field: str) -> str:
    value = _field(t, src, field)
    if not _NAMESPACE.match(value):
        raise ActivityFailed(f"target description {src}: {field} must be a Kubernetes namespace name, got {value!r}")
    return value


def _selector(t: dict, src: str, field: str) -> str:
    return _field(t, src, field)


def _database_namespace(t: dict, src: str) -> str:
    return _namespace(t, src, "database_namespace" if t.get("database_namespace") is not None else "namespace")


def _resolve(component: str, deployment: str | None, namespace: str | None,
             target: str | None) -> tuple[str, str, str, dict, str]:
    """(kind, name, namespace, target, source) of the workload an action names."""
    if deployment is not None and (not isinstance(deployment, str) or not _NAME.match(deployment)):
        raise ActivityFailed(f"deployment must be a Kubernetes object name, got {deployment!r}")
    if namespace is not None and (not isinstance(namespace, str) or not _NAMESPACE.match(namespace)):
        raise ActivityFailed(f"namespace must be a Kubernetes namespace name, got {namespace!r}")
    if component not in COMPONENTS:
        raise ActivityFailed(f"component must be one of {', '.join(COMPONENTS)}, got {component!r}")
    t, src = _k8s_target(target)
    if deployment is not None:
        monitoring = deployment == t.get("prometheus_deployment")
        default_ns = t.get("monitoring_namespace") if monitoring else t.get("namespace")
        ns = namespace or default_ns
        if not isinstance(ns, str) or not _NAMESPACE.match(ns):
            raise ActivityFailed(f"no namespace given for deployment {deployment!r} and target description {src} "
                                 f"names none, got {ns!r}")
        return "deployment", deployment, ns, t, src
    if component == "api":
        kind, name, ns = "deployment", _field(t, src, "api_deployment"), _namespace(t, src, "namespace")
    elif component == "monitoring":
        kind, name, ns = ("deployment", _field(t, src, "prometheus_deployment"),
                          _namespace(t, src, "monitoring_namespace"))
    else:
        role = component.split("-", 1)[1]
        sets = t.get("database_statefulsets")
        if not isinstance(sets, dict) or not isinstance(sets.get(role), str) or not sets[role].strip():
            raise ActivityFailed(f"target description {src} has no database_statefulsets.{role}, got {sets!r}: "
                                 f"the {component} workload is not a StatefulSet this harness can scale or restart "
                                 f"(an operator-run database is managed through its operator)")
        kind, name, ns = "statefulset", sets[role], _database_namespace(t, src)
    if not _NAME.match(name):
        raise ActivityFailed(f"target description {src}: the {component} workload must be a Kubernetes object name, "
                             f"got {name!r}")
    return kind, name, namespace or ns, t, src


def _grace(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GRACE_PERIOD_S:
        raise ActivityFailed(f"grace_period_s must be a whole number of seconds from 0 to {MAX_GRACE_PERIOD_S}, "
                             f"got {value!r}")
    return value


def _seconds(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_TIMEOUT_S:
        raise ActivityFailed(f"{name} must be a number of seconds above 0 and at most {MAX_TIMEOUT_S}, got {value!r}")
    return float(value)


def _int(value) -> int:
    return int(value or 0)


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


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _why(e: Exception) -> str:
    status = getattr(e, "status", None)
    if isinstance(status, int):  # kubernetes.client.exceptions.ApiException
        hint = (" (check the RBAC of the credentials used: deploy/kubernetes/gameday-rbac.yaml)"
                if status in (401, 403) else "")
        return f"HTTP {status} {getattr(e, 'reason', '') or ''}".rstrip() + hint
    return f"{type(e).__name__}: {_first_line(e)}"


def _call(what: str, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        raise ActivityFailed(f"{what}: {_why(e)}") from None


def _read(apis: Apis, kind: str, name: str, ns: str):
    fn = apis.apps.read_namespaced_deployment if kind == "deployment" else apis.apps.read_namespaced_stateful_set
    return _call(f"cannot read {kind} {name!r} in namespace {ns!r}", fn, name, ns)


def _patch(apis: Apis, kind: str, name: str, ns: str, body: dict):
    fn = apis.apps.patch_namespaced_deployment if kind == "deployment" else apis.apps.patch_namespaced_stateful_set
    return _call(f"cannot patch {kind} {name!r} in namespace {ns!r}", fn, name, ns, body)


def _scale(apis: Apis, kind: str, name: str, ns: str, replicas: int):
    fn = (apis.apps.patch_namespaced_deployment_scale if kind == "deployment"
          else apis.apps.patch_namespaced_stateful_set_scale)
    return _call(f"cannot scale {kind} {name!r} in namespace {ns!r} to {replicas}", fn, name, ns,
                 {"spec": {"replicas": replicas}})


def _match_labels(obj, kind: str, name: str, ns: str) -> str:
    labels = getattr(getattr(obj.spec, "selector", None), "match_labels", None) or {}
    if not labels:
        raise ActivityFailed(f"{kind} {name!r} in namespace {ns!r} has no spec.selector.matchLabels "
                             f"to find its pods by")
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _pods(apis: Apis, namespace: str, selector: str) -> list:
    """Pods matching `selector` that are not finished (an evicted or completed pod is not a replica)."""
    found = _call(f"cannot list pods matching {selector!r} in namespace {namespace!r}",
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
    from kubernetes import client

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
            raise ActivityFailed(f"cannot delete pod {rec['name']!r} in namespace {namespace!r}: {_why(e)}; "
                                 f"deleted before the error: {done}") from None
        record["deleted"].append(rec)
    return record
