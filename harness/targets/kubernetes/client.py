"""The cluster a Kubernetes target description names: its clients and its workloads.

Kubernetes faults (harness.faults.kubernetes) and probes (probes.kubernetes) both reach the
cluster through here, so neither imports the other. The target description (`kind: kubernetes`,
see deploy/kubernetes/target.example.json) names the namespaces, workloads and label selectors;
workloads are named by component, so an experiment never spells a cluster's names:

    api               the API Deployment            (api_deployment, api_label_selector, namespace)
    monitoring        the Prometheus Deployment     (prometheus_deployment, prometheus_label_selector,
                                                     monitoring_namespace)
    database-primary  the StatefulSet running the   (database_statefulsets.<role>,
    database-standby  PostgreSQL primary / standby   database_pod_selectors.<role>, database_namespace)

Under Patroni (deploy/kubernetes/postgres.yaml) both roles are members of one StatefulSet: both
names are that StatefulSet, and the pod selectors are the role labels Patroni writes.

Bad input raises ActivityFailed naming the value, before anything is asked of the cluster.

"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config

from harness import targets
from harness.core.errors import first_line

__all__ = ["KIND", "COMPONENTS", "Apis", "make_apis", "load_target", "field", "namespace", "database_namespace",
           "resolve_workload", "read_workload", "call", "why", "as_int"]

KIND = "kubernetes"
COMPONENTS = ("api", "monitoring", "database-primary", "database-standby")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")  # DNS-1123 subdomain
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # DNS-1123 label


@dataclass
class Apis:
    """The two Kubernetes API groups the faults and probes use."""
    core: Any  # kubernetes.client.CoreV1Api
    apps: Any  # kubernetes.client.AppsV1Api


def make_apis(t: dict, source: str | os.PathLike | None = None) -> Apis:
    """Clients for the cluster the target description names. With `kubeconfig` and/or `context`
    in the description: that file (relative to the description's folder) and context. Without:
    the in-cluster service account when running in a pod, else $KUBECONFIG or ~/.kube/config and
    its current context. Callers look it up here at call time, so tests replace it with fakes."""
    kubeconfig, context = t.get("kubeconfig"), t.get("context")
    for name, value in (("kubeconfig", kubeconfig), ("context", context)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ActivityFailed(f"target description {source}: {name} must be null or a non-empty string, "
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
                             f"{first_line(e)}") from None
    return Apis(core=client.CoreV1Api(api_client), apps=client.AppsV1Api(api_client))


def load_target(target: str | os.PathLike | None) -> tuple[dict, str]:
    """(description, its path) of a Kubernetes target: a file or a stack home folder, by default
    where harness.targets looks. Anything else is an ActivityFailed saying what it is."""
    t = targets.for_activity(target).require("cluster", "this activity")
    return t.data, str(t.path)


def field(t: dict, src: str, name: str) -> str:
    value = t.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ActivityFailed(f"target description {src} has no {name!r} (see deploy/kubernetes/target.example.json), "
                             f"got {value!r}")
    return value


def namespace(t: dict, src: str, name: str) -> str:
    value = field(t, src, name)
    if not _NAMESPACE.match(value):
        raise ActivityFailed(f"target description {src}: {name} must be a Kubernetes namespace name, got {value!r}")
    return value


def database_namespace(t: dict, src: str) -> str:
    return namespace(t, src, "database_namespace" if t.get("database_namespace") is not None else "namespace")


def resolve_workload(component: str, deployment: str | None, ns: str | None,
                     target: str | os.PathLike | None) -> tuple[str, str, str, dict, str]:
    """(kind, name, namespace, target, source) of the workload an activity names: `deployment`
    (and `ns`) directly, else `component` from the target description."""
    if deployment is not None and (not isinstance(deployment, str) or not _NAME.match(deployment)):
        raise ActivityFailed(f"deployment must be a Kubernetes object name, got {deployment!r}")
    if ns is not None and (not isinstance(ns, str) or not _NAMESPACE.match(ns)):
        raise ActivityFailed(f"namespace must be a Kubernetes namespace name, got {ns!r}")
    if component not in COMPONENTS:
        raise ActivityFailed(f"component must be one of {', '.join(COMPONENTS)}, got {component!r}")
    t, src = load_target(target)
    if deployment is not None:
        monitoring = deployment == t.get("prometheus_deployment")
        default_ns = t.get("monitoring_namespace") if monitoring else t.get("namespace")
        chosen = ns or default_ns
        if not isinstance(chosen, str) or not _NAMESPACE.match(chosen):
            raise ActivityFailed(f"no namespace given for deployment {deployment!r} and target description {src} "
                                 f"names none, got {chosen!r}")
        return "deployment", deployment, chosen, t, src
    if component == "api":
        kind, name, default_ns = "deployment", field(t, src, "api_deployment"), namespace(t, src, "namespace")
    elif component == "monitoring":
        kind, name, default_ns = ("deployment", field(t, src, "prometheus_deployment"),
                                  namespace(t, src, "monitoring_namespace"))
    else:
        role = component.split("-", 1)[1]
        sets = t.get("database_statefulsets")
        if not isinstance(sets, dict) or not isinstance(sets.get(role), str) or not sets[role].strip():
            raise ActivityFailed(f"target description {src} has no database_statefulsets.{role}, got {sets!r}: "
                                 f"the {component} workload is not a StatefulSet this harness can scale or restart "
                                 f"(an operator-run database is managed through its operator)")
        kind, name, default_ns = "statefulset", sets[role], database_namespace(t, src)
    if not _NAME.match(name):
        raise ActivityFailed(f"target description {src}: the {component} workload must be a Kubernetes object name, "
                             f"got {name!r}")
    return kind, name, ns or default_ns, t, src


def why(e: Exception) -> str:
    """One line for a failed Kubernetes call: the HTTP status of an ApiException (with a hint for
    401/403), else the exception's type and first line."""
    status = getattr(e, "status", None)
    if isinstance(status, int):  # kubernetes.client.exceptions.ApiException
        hint = (" (check the RBAC of the credentials used: deploy/kubernetes/gameday-rbac.yaml)"
                if status in (401, 403) else "")
        return f"HTTP {status} {getattr(e, 'reason', '') or ''}".rstrip() + hint
    return f"{type(e).__name__}: {first_line(e)}"


def call(what: str, fn, *args, **kwargs):
    """fn(*args, **kwargs), its failure an ActivityFailed starting with `what`."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        raise ActivityFailed(f"{what}: {why(e)}") from None


def read_workload(apis: Apis, kind: str, name: str, ns: str):
    fn = apis.apps.read_namespaced_deployment if kind == "deployment" else apis.apps.read_namespaced_stateful_set
    return call(f"cannot read {kind} {name!r} in namespace {ns!r}", fn, name, ns)


def as_int(value) -> int:
    """A replica count as the API reports it (None when zero)."""
    return int(value or 0)
