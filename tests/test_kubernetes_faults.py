"""The Kubernetes faults and probes against a fake Kubernetes API server: which calls they make
(namespace, label selector, grace period, which pods, the rollout-restart patch, scale to 0 and
back, the undo, waiting for a rollout), and that bad input fails with a sentence naming the value
before anything is asked of the cluster. Fast, local: the fake's state is kubernetes client models
that each test arranges exactly; an HTTP server on 127.0.0.1 (tests/fake_kube_api.py's handler)
serves them, and the real `harness.targets.kubernetes.client.make_apis` reaches it through a kubeconfig named in
the target description, so the official client's requests and responses are the real ones."""
from __future__ import annotations

import json
import re
import sys
import threading
from datetime import datetime, timezone
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from harness import faults
from harness.targets.kubernetes import client as k8s_client
from harness.faults import kubernetes as k8s
from harness import targets
from harness.targets.kubernetes import rollout as k8s_rollout
from probes import kubernetes as k8s_probes

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_kube_api import _handler  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "deploy" / "kubernetes" / "target.example.json"
API_SELECTOR = "app.kubernetes.io/name=svg-ai-api"
API_LABELS = {"app.kubernetes.io/name": "svg-ai-api"}
# The Patroni members of deploy/kubernetes/postgres.yaml: one StatefulSet, the role labels Patroni writes
PG_MEMBERS = {"app.kubernetes.io/name": "svg-ai-postgres", "cluster-name": "svg-ai-postgres"}
PG_PRIMARY = {**PG_MEMBERS, "role": "primary"}
PG_STANDBY = {**PG_MEMBERS, "role": "replica"}
PROM_LABELS = {"app.kubernetes.io/name": "prometheus"}


# ---------------------------------------------------------------------------------------------
# A fake cluster: the CoreV1Api and AppsV1Api methods the faults call, over real client models,
# served over HTTP at the REST paths those methods use (FakeCluster.handle).

def pod(name: str, labels: dict, namespace: str = "svg-ai-prod", terminating: bool = False, phase: str = "Running"):
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace, uid=f"uid-{name}", labels=dict(labels),
                                     creation_timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc),
                                     deletion_timestamp=datetime(2026, 1, 2, tzinfo=timezone.utc) if terminating else None),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c")], node_name="node-1"),
        status=client.V1PodStatus(phase=phase, pod_ip="10.0.0.1"))


def deployment(name: str, namespace: str, labels: dict, replicas: int = 3, ready: bool = True):
    n = replicas if ready else 0
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace, generation=1, annotations=None),
        spec=client.V1DeploymentSpec(replicas=replicas, selector=client.V1LabelSelector(match_labels=dict(labels)),
                                     template=client.V1PodTemplateSpec()),
        status=client.V1DeploymentStatus(observed_generation=1, replicas=replicas, updated_replicas=replicas,
                                         ready_replicas=n, available_replicas=n))


def statefulset(name: str, namespace: str, labels: dict, replicas: int = 1):
    return client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name=name, namespace=namespace, generation=1, annotations=None),
        spec=client.V1StatefulSetSpec(replicas=replicas, service_name="svg-ai-postgres",
                                      selector=client.V1LabelSelector(match_labels=dict(labels)),
                                      template=client.V1PodTemplateSpec()),
        status=client.V1StatefulSetStatus(observed_generation=1, replicas=replicas, ready_replicas=replicas,
                                          updated_replicas=replicas, current_revision="r1", update_revision="r1"))


class FakeCluster:
    def __init__(self):
        self.calls: list[tuple] = []
        self.pods: list = []
        self.workloads: dict[tuple[str, str, str], object] = {}
        self.fail_delete: dict[str, int] = {}
        self.fail_read: int | None = None
        # what tests/fake_kube_api.py's request handler needs of a cluster
        self.lock = threading.RLock()
        self.requests: list[tuple[str, str]] = []
        self.unserved: list[str] = []
        self._stop = threading.Event()
        self._serialize = client.ApiClient().sanitize_for_serialization

    @property
    def factory_calls(self) -> int:
        """Requests that reached the cluster (0: bad input was refused before anything was asked)."""
        return len(self.requests)

    def handle(self, method: str, path: str, query: dict, body) -> tuple[int, dict]:
        """One REST request, dispatched to the client method it comes from."""
        q = {k: v[-1] for k, v in query.items()}
        routes = [
            ("GET", r"/api/v1/namespaces/([^/]+)/pods",
             lambda ns: self.list_namespaced_pod(ns, label_selector=q.get("labelSelector"))),
            ("DELETE", r"/api/v1/namespaces/([^/]+)/pods/([^/]+)", lambda ns, name: self._delete(ns, name, q, body)),
        ]
        for resource, kind, method_name in (("deployments", "deployment", "deployment"),
                                            ("statefulsets", "statefulset", "stateful_set")):
            base = rf"/apis/apps/v1/namespaces/([^/]+)/{resource}/([^/]+)"
            routes += [
                ("GET", base, lambda ns, name, m=method_name: getattr(self, f"read_namespaced_{m}")(name, ns)),
                ("PATCH", base, lambda ns, name, m=method_name: getattr(self, f"patch_namespaced_{m}")(name, ns, body)),
                ("PATCH", base + "/scale",
                 lambda ns, name, m=method_name, k=kind: self._scale_object(
                     getattr(self, f"patch_namespaced_{m}_scale")(name, ns, body))),
            ]
        for verb, pattern, fn in routes:
            m = re.fullmatch(pattern, path)
            if verb == method and m:
                try:
                    return 200, self._serialize(fn(*m.groups())) or {"kind": "Status", "status": "Success"}
                except ApiException as e:
                    return e.status, {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": e.status,
                                      "reason": e.reason, "message": str(e.reason)}
        self.unserved.append(f"{method} {path}")
        return 404, {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 404, "reason": "NotFound",
                     "message": f"the fake does not serve {method} {path}"}

    def _delete(self, ns: str, name: str, q: dict, body):
        """The API answers a deletion with the pod as it was."""
        found = [p for p in self.pods if p.metadata.name == name and p.metadata.namespace == ns]
        self.delete_namespaced_pod(name, ns, body=body,
                                   grace_period_seconds=int(q["gracePeriodSeconds"]) if "gracePeriodSeconds" in q else None)
        return found[0]

    def _scale_object(self, obj) -> dict:
        return {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": obj.metadata.name},
                "spec": {"replicas": obj.spec.replicas}, "status": {"replicas": obj.spec.replicas}}

    def add_workload(self, kind: str, obj) -> None:
        self.workloads[(kind, obj.metadata.namespace, obj.metadata.name)] = obj

    def calls_to(self, method: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == method]

    # CoreV1Api
    def list_namespaced_pod(self, namespace, label_selector=None):
        self.calls.append(("list_namespaced_pod", namespace, label_selector))
        wanted = dict(kv.split("=", 1) for kv in label_selector.split(",")) if label_selector else {}
        items = [p for p in self.pods if p.metadata.namespace == namespace
                 and all(p.metadata.labels.get(k) == v for k, v in wanted.items())]
        return client.V1PodList(items=items)

    def delete_namespaced_pod(self, name, namespace, grace_period_seconds=None, body=None):
        self.calls.append(("delete_namespaced_pod", name, namespace, grace_period_seconds, body))
        if name in self.fail_delete:
            raise ApiException(status=self.fail_delete[name], reason="Injected")
        match = [p for p in self.pods if p.metadata.name == name and p.metadata.namespace == namespace]
        if not match:
            raise ApiException(status=404, reason="Not Found")
        self.pods.remove(match[0])

    # AppsV1Api
    def _get(self, kind, name, namespace):
        if self.fail_read is not None:
            raise ApiException(status=self.fail_read, reason="Injected")
        try:
            return self.workloads[(kind, namespace, name)]
        except KeyError:
            raise ApiException(status=404, reason="Not Found") from None

    def _patch(self, kind, name, namespace, body):
        obj = self._get(kind, name, namespace)
        notes = (body.get("metadata") or {}).get("annotations") or {}
        current = dict(obj.metadata.annotations or {})
        for k, v in notes.items():
            if v is None:
                current.pop(k, None)
            else:
                current[k] = v
        obj.metadata.annotations = current or None
        template = ((body.get("spec") or {}).get("template") or {}).get("metadata") or {}
        if template.get("annotations"):
            obj.metadata.generation += 1
        return obj

    def _scale(self, kind, name, namespace, body):
        obj = self._get(kind, name, namespace)
        obj.spec.replicas = body["spec"]["replicas"]
        return obj

    def read_namespaced_deployment(self, name, namespace):
        self.calls.append(("read_namespaced_deployment", name, namespace))
        return self._get("deployment", name, namespace)

    def read_namespaced_stateful_set(self, name, namespace):
        self.calls.append(("read_namespaced_stateful_set", name, namespace))
        return self._get("statefulset", name, namespace)

    def patch_namespaced_deployment(self, name, namespace, body):
        self.calls.append(("patch_namespaced_deployment", name, namespace, body))
        return self._patch("deployment", name, namespace, body)

    def patch_namespaced_stateful_set(self, name, namespace, body):
        self.calls.append(("patch_namespaced_stateful_set", name, namespace, body))
        return self._patch("statefulset", name, namespace, body)

    def patch_namespaced_deployment_scale(self, name, namespace, body):
        self.calls.append(("patch_namespaced_deployment_scale", name, namespace, body))
        return self._scale("deployment", name, namespace, body)

    def patch_namespaced_stateful_set_scale(self, name, namespace, body):
        self.calls.append(("patch_namespaced_stateful_set_scale", name, namespace, body))
        return self._scale("statefulset", name, namespace, body)


@pytest.fixture
def served():
    """The fake cluster behind an HTTP server on 127.0.0.1, and a kubeconfig pointing at it."""
    fake = FakeCluster()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05), daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    kubeconfig = (f"apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
                  f"clusters: [{{name: fake, cluster: {{server: 'http://{host}:{port}'}}}}]\n"
                  f"users: [{{name: fake, user: {{token: fake-token}}}}]\n"
                  f"contexts: [{{name: fake, context: {{cluster: fake, user: fake}}}}]\n")
    yield fake, kubeconfig
    fake._stop.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def target(tmp_path, served) -> str:
    """The example target description, its cluster the fake (kubeconfig relative to it)."""
    (tmp_path / "kubeconfig").write_text(served[1])
    t = json.loads(EXAMPLE.read_text())
    t.update(kubeconfig="kubeconfig", context="fake")
    path = tmp_path / "target.json"
    path.write_text(json.dumps(t))
    return str(path)


@pytest.fixture
def cluster(served, target) -> FakeCluster:
    fake = served[0]
    fake.pods = [pod("svg-ai-api-b", API_LABELS), pod("svg-ai-api-a", API_LABELS), pod("svg-ai-api-c", API_LABELS),
                 pod("svg-ai-api-old", API_LABELS, phase="Succeeded"),
                 pod("svg-ai-postgres-0", PG_PRIMARY), pod("svg-ai-postgres-1", PG_STANDBY),
                 pod("prometheus-7d9f", PROM_LABELS, namespace="monitoring")]
    fake.add_workload("deployment", deployment("svg-ai-api", "svg-ai-prod", API_LABELS))
    fake.add_workload("deployment", deployment("prometheus", "monitoring", PROM_LABELS, replicas=1))
    fake.add_workload("statefulset", statefulset("svg-ai-postgres", "svg-ai-prod", PG_MEMBERS, replicas=2))
    yield fake
    assert fake.unserved == [], f"requests the fake does not serve: {fake.unserved}"
    for key in faults.pending():  # never leave an undo for the atexit safety net
        faults.clear_undo(key)


def deleted(fake: FakeCluster) -> list[tuple[str, str, int, str]]:
    return [(name, ns, grace, body["preconditions"]["uid"]) for _, name, ns, grace, body in fake.calls_to("delete_namespaced_pod")]


# ---------------------------------------------------------------------------------------------
# Pod faults

def test_kill_all_api_pods_deletes_every_replica_with_no_grace(cluster, target):
    record = k8s.kill_api_pods(count="all", target=target)
    assert cluster.calls_to("list_namespaced_pod") == [("list_namespaced_pod", "svg-ai-prod", API_SELECTOR)]
    assert sorted(deleted(cluster)) == [("svg-ai-api-a", "svg-ai-prod", 0, "uid-svg-ai-api-a"),
                                        ("svg-ai-api-b", "svg-ai-prod", 0, "uid-svg-ai-api-b"),
                                        ("svg-ai-api-c", "svg-ai-prod", 0, "uid-svg-ai-api-c")]
    assert sorted((p["name"], p["uid"]) for p in record["deleted"]) == [
        ("svg-ai-api-a", "uid-svg-ai-api-a"), ("svg-ai-api-b", "uid-svg-ai-api-b"), ("svg-ai-api-c", "uid-svg-ai-api-c")]
    assert record["namespace"] == "svg-ai-prod" and record["label_selector"] == API_SELECTOR
    assert record["grace_period_s"] == 0 and record["matched"] == 3 and record["already_gone"] == []
    json.dumps(record)  # JSON-able, for the journal and the history


def test_kill_one_api_pod_prefers_a_live_pod_and_is_deterministic(cluster, target):
    cluster.pods.append(pod("svg-ai-api-0-terminating", API_LABELS, terminating=True))
    record = k8s.kill_api_pods(count=1, grace_period_s=2, target=target)
    assert deleted(cluster) == [("svg-ai-api-a", "svg-ai-prod", 2, "uid-svg-ai-api-a")]
    assert [p["name"] for p in record["deleted"]] == ["svg-ai-api-a"] and record["requested"] == 1


def test_kill_all_includes_pods_already_terminating(cluster, target):
    for p in cluster.pods:
        if p.metadata.labels == API_LABELS:
            p.metadata.deletion_timestamp = datetime(2026, 1, 2, tzinfo=timezone.utc)
    record = k8s.kill_api_pods(count="all", target=target)
    assert len(record["deleted"]) == 3 and all(p["terminating"] for p in record["deleted"])


def test_more_pods_than_exist_is_refused_before_any_deletion(cluster, target):
    with pytest.raises(ActivityFailed, match=r"count 4 is more than the 3 API pods"):
        k8s.kill_api_pods(count=4, target=target)
    assert cluster.calls_to("delete_namespaced_pod") == []


def test_no_api_pod_is_an_error_naming_selector_and_namespace(cluster, target):
    cluster.pods = []
    with pytest.raises(ActivityFailed, match=r"no API pod matches 'app.kubernetes.io/name=svg-ai-api' in namespace 'svg-ai-prod'"):
        k8s.kill_api_pods(count="all", target=target)


@pytest.mark.parametrize("kwargs, named", [
    ({"count": 0}, "0"), ({"count": -1}, "-1"), ({"count": "one"}, "'one'"), ({"count": True}, "True"),
    ({"count": 1.5}, "1.5"), ({"grace_period_s": -1}, "-1"), ({"grace_period_s": "0"}, "'0'"),
    ({"grace_period_s": 3601}, "3601"), ({"grace_period_s": False}, "False"),
])
def test_bad_kill_api_arguments_name_the_value_and_call_nothing(cluster, target, kwargs, named):
    with pytest.raises(ActivityFailed) as e:
        k8s.kill_api_pods(target=target, **kwargs)
    assert named in str(e.value)
    assert cluster.factory_calls == 0 and cluster.calls == []


def test_a_local_target_is_refused(cluster, tmp_path):
    path = tmp_path / "target.json"
    path.write_text(json.dumps({"kind": "local", "api_url": "http://127.0.0.1:1"}))
    with pytest.raises(ActivityFailed, match=r"needs a Kubernetes target; target .* is the embedded reference stack \(kind 'local'\)"):
        k8s.kill_api_pods(count="all", target=str(path))
    assert cluster.factory_calls == 0


def test_a_missing_target_field_is_named(cluster, tmp_path):
    t = json.loads(EXAMPLE.read_text())
    del t["api_label_selector"]
    path = tmp_path / "target.json"
    path.write_text(json.dumps(t))
    with pytest.raises(ActivityFailed, match=r"has no 'api_label_selector'"):
        k8s.kill_api_pods(target=str(path))
    assert cluster.factory_calls == 0


def test_a_bad_namespace_in_the_target_is_named(cluster, tmp_path):
    t = json.loads(EXAMPLE.read_text())
    t["namespace"] = "SVG_AI"
    path = tmp_path / "target.json"
    path.write_text(json.dumps(t))
    with pytest.raises(ActivityFailed, match=r"namespace must be a Kubernetes namespace name, got 'SVG_AI'"):
        k8s.kill_api_pods(target=str(path))


def test_no_target_description_is_an_activity_failure(cluster, tmp_path):
    with pytest.raises(ActivityFailed, match=r"no target description"):
        k8s.kill_api_pods(target=str(tmp_path / "absent.json"))


def test_kill_database_primary_uses_the_role_selector_and_a_short_grace(cluster, target):
    record = k8s.kill_database_pod(target=target)
    assert cluster.calls_to("list_namespaced_pod") == [
        ("list_namespaced_pod", "svg-ai-prod", "app.kubernetes.io/name=svg-ai-postgres,role=primary")]
    assert deleted(cluster) == [("svg-ai-postgres-0", "svg-ai-prod", 1, "uid-svg-ai-postgres-0")]
    assert record["component"] == "database-primary" and record["deleted"][0]["uid"] == "uid-svg-ai-postgres-0"


def test_kill_database_standby(cluster, target):
    k8s.kill_database_pod(role="standby", grace_period_s=0, target=target)
    assert deleted(cluster) == [("svg-ai-postgres-1", "svg-ai-prod", 0, "uid-svg-ai-postgres-1")]


def test_kill_database_refuses_a_selector_matching_two_live_pods(cluster, target):
    cluster.pods.append(pod("svg-ai-postgres-2", PG_PRIMARY))  # two pods labelled leader: Patroni mid-change
    with pytest.raises(ActivityFailed, match=r"matches 2 live pods .*svg-ai-postgres-0, svg-ai-postgres-2"):
        k8s.kill_database_pod(target=target)
    assert cluster.calls_to("delete_namespaced_pod") == []


def test_kill_database_kills_a_terminating_primary_when_it_is_the_only_one(cluster, target):
    primary = next(p for p in cluster.pods if p.metadata.name == "svg-ai-postgres-0")
    primary.metadata.deletion_timestamp = datetime(2026, 1, 2, tzinfo=timezone.utc)
    record = k8s.kill_database_pod(target=target)
    assert [p["name"] for p in record["deleted"]] == ["svg-ai-postgres-0"]


@pytest.mark.parametrize("role", ["master", "", None, "PRIMARY"])
def test_kill_database_bad_role(cluster, target, role):
    with pytest.raises(ActivityFailed, match=f"role must be 'primary' or 'standby', got {role!r}"):
        k8s.kill_database_pod(role=role, target=target)
    assert cluster.factory_calls == 0


def test_kill_monitoring_pod_in_the_monitoring_namespace(cluster, target):
    record = k8s.kill_monitoring_pod(target=target)
    assert cluster.calls_to("list_namespaced_pod") == [("list_namespaced_pod", "monitoring", "app.kubernetes.io/name=prometheus")]
    assert deleted(cluster) == [("prometheus-7d9f", "monitoring", 0, "uid-prometheus-7d9f")]
    assert record["component"] == "monitoring"


def test_a_pod_gone_before_deletion_is_reported_not_fatal(cluster, target):
    cluster.fail_delete["svg-ai-api-b"] = 404
    cluster.fail_delete["svg-ai-api-c"] = 409
    record = k8s.kill_api_pods(count="all", target=target)
    assert [p["name"] for p in record["deleted"]] == ["svg-ai-api-a"]
    assert {p["name"]: p["reason"] for p in record["already_gone"]} == {"svg-ai-api-b": "not found",
                                                                       "svg-ai-api-c": "uid changed"}


def test_a_failed_deletion_says_what_was_deleted_before(cluster, target):
    cluster.fail_delete["svg-ai-api-c"] = 403
    cluster.pods.sort(key=lambda p: p.metadata.name)
    with pytest.raises(ActivityFailed, match=r"cannot delete pod 'svg-ai-api-c'.*HTTP 403.*RBAC.*svg-ai-api-a \(uid-svg-ai-api-a\)"):
        k8s.kill_api_pods(count="all", target=target)


def test_listing_forbidden_names_namespace_and_selector(cluster, target, monkeypatch):
    def forbidden(namespace, label_selector=None):
        raise ApiException(status=403, reason="Forbidden")
    monkeypatch.setattr(cluster, "list_namespaced_pod", forbidden)
    with pytest.raises(ActivityFailed, match=r"cannot list pods matching .* in namespace 'svg-ai-prod': HTTP 403 Forbidden"):
        k8s.kill_api_pods(target=target)


# ---------------------------------------------------------------------------------------------
# Rollout restart (a fault) and waiting for a rollout (probes)

def test_rollout_restart_patches_the_pod_template_annotation(cluster, target):
    record = k8s.rollout_restart(target=target)
    (_, name, ns, body), = cluster.calls_to("patch_namespaced_deployment")
    assert (name, ns) == ("svg-ai-api", "svg-ai-prod")
    stamp = body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert body == {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
    assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).tzinfo is not None
    assert record["restarted_at"] == stamp and record["generation"] == 2
    assert sorted(p["uid"] for p in record["pods_to_replace"]) == ["uid-svg-ai-api-a", "uid-svg-ai-api-b", "uid-svg-ai-api-c"]
    assert cluster.calls_to("delete_namespaced_pod") == []


def test_rollout_restart_of_prometheus_by_component_and_by_name(cluster, target):
    k8s.rollout_restart(component="monitoring", target=target)
    k8s.rollout_restart(deployment="prometheus", target=target)  # its namespace comes from the target
    k8s.rollout_restart(deployment="prometheus", namespace="monitoring", target=target)
    assert [(c[1], c[2]) for c in cluster.calls_to("patch_namespaced_deployment")] == [("prometheus", "monitoring")] * 3


def test_rollout_restart_of_a_statefulset(cluster, target):
    k8s.rollout_restart(component="database-primary", target=target)
    assert [(c[1], c[2]) for c in cluster.calls_to("patch_namespaced_stateful_set")] == [("svg-ai-postgres", "svg-ai-prod")]


@pytest.mark.parametrize("kwargs, named", [
    ({"deployment": "Bad_Name"}, "'Bad_Name'"), ({"namespace": "no/slash"}, "'no/slash'"),
    ({"component": "grafana"}, "'grafana'"), ({"deployment": 3}, "3"),
])
def test_rollout_restart_bad_names(cluster, target, kwargs, named):
    with pytest.raises(ActivityFailed) as e:
        k8s.rollout_restart(target=target, **kwargs)
    assert named in str(e.value) and cluster.factory_calls == 0


def test_rollout_restart_of_an_unknown_deployment(cluster, target):
    with pytest.raises(ActivityFailed, match=r"cannot read deployment 'nope' in namespace 'svg-ai-prod': HTTP 404"):
        k8s.rollout_restart(deployment="nope", target=target)


@pytest.fixture
def fake_clock(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(k8s_rollout, "_now", lambda: now[0])
    monkeypatch.setattr(k8s_rollout, "_sleep", lambda s: now.__setitem__(0, now[0] + s))
    return now


def test_wait_rollout_ready_polls_until_every_replica_is_available(cluster, target, fake_clock):
    d = cluster.workloads[("deployment", "svg-ai-prod", "svg-ai-api")]
    d.status.available_replicas = 1
    reads = []

    def read(name, namespace):
        reads.append(fake_clock[0])
        if len(reads) == 3:
            d.status.available_replicas = 3
        return d
    cluster.read_namespaced_deployment = read
    record = k8s_probes.wait_rollout_ready("svg-ai-api", timeout_s=60, target=target)
    assert len(reads) == 3 and record["waited_s"] == 2.0 and record["ready_replicas"] == 3


def test_wait_rollout_ready_times_out_saying_what_is_missing(cluster, target, fake_clock):
    cluster.workloads[("deployment", "svg-ai-prod", "svg-ai-api")].status.available_replicas = 2
    with pytest.raises(ActivityFailed, match=r"not rolled out after 5 s: 2 of 3 updated replicas available"):
        k8s_probes.wait_rollout_ready(timeout_s=5, target=target)


def test_wait_rollout_ready_rides_out_api_errors_but_not_a_missing_workload(cluster, target, fake_clock):
    cluster.fail_read = 503
    with pytest.raises(ActivityFailed, match=r"did not answer \(HTTP 503"):
        k8s_probes.wait_rollout_ready(timeout_s=3, target=target)
    cluster.fail_read = None
    with pytest.raises(ActivityFailed, match=r"cannot read deployment 'gone' in namespace 'svg-ai-prod': HTTP 404"):
        k8s_probes.wait_rollout_ready("gone", timeout_s=30, target=target)
    assert fake_clock[0] <= 3  # the 404 failed at once


@pytest.mark.parametrize("timeout_s", [0, -5, "60", None, True, 10_000])
def test_wait_rollout_ready_bad_timeout(cluster, target, timeout_s):
    with pytest.raises(ActivityFailed, match=f"timeout_s must be .*got {timeout_s!r}"):
        k8s_probes.wait_rollout_ready(timeout_s=timeout_s, target=target)
    assert cluster.factory_calls == 0


def test_rollout_state_follows_kubectl_rollout_status():
    d = deployment("x", "ns", API_LABELS)
    assert k8s_probes.rollout_state("deployment", d) == (True, "3 of 3 replicas available")
    d.metadata.generation = 2
    assert k8s_probes.rollout_state("deployment", d)[0] is False
    d.status.observed_generation = 2
    d.status.updated_replicas = 1
    assert k8s_probes.rollout_state("deployment", d) == (False, "1 of 3 replicas updated")
    d.status.updated_replicas, d.status.replicas = 3, 4
    assert k8s_probes.rollout_state("deployment", d) == (False, "1 old replicas are pending termination")
    d.spec.replicas, d.status.replicas, d.status.updated_replicas, d.status.available_replicas = 0, 0, None, None
    assert k8s_probes.rollout_state("deployment", d)[0] is True  # scaled to zero: nothing to wait for
    s = statefulset("pg", "ns", PG_PRIMARY)
    assert k8s_probes.rollout_state("statefulset", s) == (True, "1 of 1 pods ready")
    s.status.ready_replicas = 0
    assert k8s_probes.rollout_state("statefulset", s) == (False, "0 of 1 pods ready")
    s.status.ready_replicas, s.status.update_revision = 1, "r2"
    assert k8s_probes.rollout_state("statefulset", s)[0] is False


def test_rollout_complete_probe(cluster, target):
    assert k8s_probes.rollout_complete(target=target) is True
    cluster.workloads[("deployment", "svg-ai-prod", "svg-ai-api")].status.available_replicas = 2
    assert k8s_probes.rollout_complete(target=target) is False
    assert k8s_probes.rollout_complete(component="database-primary", target=target) is True
    cluster.fail_read = 500
    assert k8s_probes.rollout_complete(target=target) is False
    with pytest.raises(ActivityFailed, match="'grafana'"):
        k8s_probes.rollout_complete(component="grafana", target=target)


def test_wait_target_ready_waits_for_every_named_workload(cluster, target, fake_clock):
    done = k8s_probes.wait_target_ready(timeout_s=10, target=target)
    assert list(done) == ["api", "monitoring", "database-primary", "database-standby"]
    assert done["database-standby"]["kind"] == "statefulset"


# ---------------------------------------------------------------------------------------------
# Scaling: the negative controls' "restart disabled", its rollback and its undo

def test_scale_to_zero_records_the_count_registers_an_undo_and_restore_scales_back(cluster, target):
    record = k8s.scale_deployment(0, target=target)
    d = cluster.workloads[("deployment", "svg-ai-prod", "svg-ai-api")]
    assert cluster.calls_to("patch_namespaced_deployment") == [
        ("patch_namespaced_deployment", "svg-ai-api", "svg-ai-prod",
         {"metadata": {"annotations": {k8s.REPLICAS_BEFORE: "3"}}})]
    assert cluster.calls_to("patch_namespaced_deployment_scale") == [
        ("patch_namespaced_deployment_scale", "svg-ai-api", "svg-ai-prod", {"spec": {"replicas": 0}})]
    assert d.spec.replicas == 0 and record["replicas_before"] == 3 and record["original_replicas"] == 3
    assert "scale:deployment/svg-ai-prod/svg-ai-api" in faults.pending()

    cluster.calls.clear()
    restored = k8s.restore_scale(target=target)
    assert cluster.calls_to("patch_namespaced_deployment_scale") == [
        ("patch_namespaced_deployment_scale", "svg-ai-api", "svg-ai-prod", {"spec": {"replicas": 3}})]
    assert cluster.calls_to("patch_namespaced_deployment") == [
        ("patch_namespaced_deployment", "svg-ai-api", "svg-ai-prod", {"metadata": {"annotations": {k8s.REPLICAS_BEFORE: None}}})]
    assert restored["restored"] is True and restored["replicas"] == 3 and d.spec.replicas == 3
    assert not d.metadata.annotations and faults.pending() == []


def test_the_safety_net_scales_back_when_the_rollback_never_ran(cluster, target):
    k8s.scale_deployment(0, component="monitoring", target=target)
    assert faults.undo_all() == ["scale:deployment/monitoring/prometheus"]
    assert cluster.workloads[("deployment", "monitoring", "prometheus")].spec.replicas == 1
    assert faults.pending() == []


def test_a_second_scale_keeps_the_first_original(cluster, target):
    k8s.scale_deployment(1, target=target)
    record = k8s.scale_deployment(0, target=target)
    assert record["replicas_before"] == 1 and record["original_replicas"] == 3
    assert k8s.restore_scale(target=target)["replicas"] == 3


def test_scale_the_database_primary_statefulset(cluster, target):
    k8s.scale_deployment(0, component="database-primary", target=target)
    assert cluster.calls_to("patch_namespaced_stateful_set_scale") == [
        ("patch_namespaced_stateful_set_scale", "svg-ai-postgres", "svg-ai-prod", {"spec": {"replicas": 0}})]
    assert "scale:statefulset/svg-ai-prod/svg-ai-postgres" in faults.pending()
    k8s.restore_scale(component="database-primary", target=target)
    assert cluster.workloads[("statefulset", "svg-ai-prod", "svg-ai-postgres")].spec.replicas == 2
    assert faults.pending() == []


def test_restore_without_a_record_leaves_the_workload_alone_or_uses_replicas(cluster, target):
    assert k8s.restore_scale(target=target)["restored"] is False
    assert cluster.calls_to("patch_namespaced_deployment_scale") == []
    assert k8s.restore_scale(replicas=2, target=target)["replicas"] == 2
    assert cluster.workloads[("deployment", "svg-ai-prod", "svg-ai-api")].spec.replicas == 2


def test_a_malformed_record_is_named(cluster, target):
    cluster.workloads[("deployment", "svg-ai-prod", "svg-ai-api")].metadata.annotations = {k8s.REPLICAS_BEFORE: "lots"}
    with pytest.raises(ActivityFailed, match=r"malformed .* annotation 'lots'"):
        k8s.restore_scale(target=target)


@pytest.mark.parametrize("replicas", [-1, 1001, "0", None, 0.0, False])
def test_bad_replicas_are_named_and_nothing_is_called(cluster, target, replicas):
    with pytest.raises(ActivityFailed, match=f"replicas must be .*got {replicas!r}"):
        k8s.scale_deployment(replicas, target=target)
    assert cluster.factory_calls == 0 and faults.pending() == []


def test_scaling_a_database_the_target_runs_without_statefulsets_is_explained(cluster, tmp_path):
    t = json.loads(EXAMPLE.read_text())
    del t["database_statefulsets"]
    path = tmp_path / "target.json"
    path.write_text(json.dumps(t))
    with pytest.raises(ActivityFailed, match=r"no database_statefulsets.primary"):
        k8s.scale_deployment(0, component="database-primary", target=str(path))
    assert cluster.factory_calls == 0


# ---------------------------------------------------------------------------------------------
# Which target, and which cluster

def test_the_kind_is_decided_once_by_the_target_adapter(tmp_path, monkeypatch):
    assert targets.load(EXAMPLE).kind == "kubernetes" and targets.load(EXAMPLE).fault_family == "cluster"
    local = tmp_path / "local.json"
    local.write_text(json.dumps({"kind": "local", "api_url": "http://127.0.0.1:1"}))
    assert targets.load(local).kind == "local" and targets.load(local).owns_lifecycle
    with pytest.raises(targets.TargetError, match="no target description"):
        targets.load(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(targets.TargetError, match="unreadable"):
        targets.load(tmp_path / "broken.json")
    (tmp_path / "odd.json").write_text(json.dumps({"kind": "mainframe", "api_url": "http://127.0.0.1:1"}))
    with pytest.raises(targets.TargetError, match="unknown target kind 'mainframe'"):
        targets.load(tmp_path / "odd.json")
    home = tmp_path / "home"
    home.mkdir()
    (home / "target.json").write_text(json.dumps({"kind": "kubernetes", "api_url": "http://127.0.0.1:1"}))
    assert targets.load(home).kind == "kubernetes"  # a home folder names its description
    monkeypatch.setenv("GAMEDAY_TARGET", str(EXAMPLE))
    assert targets.selected().kind == "kubernetes"  # what `gameday run` acts on without --home
    monkeypatch.setenv("GAMEDAY_TARGET", str(local))
    assert targets.selected().kind == "local"
    assert targets.selected(home).kind == "kubernetes"  # --home wins over $GAMEDAY_TARGET


KUBECONFIG = """apiVersion: v1
kind: Config
current-context: a
clusters:
  - name: a
    cluster: {server: "https://a.example.invalid:6443", insecure-skip-tls-verify: true}
  - name: b
    cluster: {server: "https://b.example.invalid:6443", insecure-skip-tls-verify: true}
users:
  - name: u
    user: {token: not-a-real-token}
contexts:
  - name: a
    context: {cluster: a, user: u}
  - name: b
    context: {cluster: b, user: u}
"""


def test_make_apis_honours_kubeconfig_relative_to_the_target_and_context(tmp_path):
    (tmp_path / "kube.yaml").write_text(KUBECONFIG)
    source = str(tmp_path / "target.json")
    apis = k8s_client.make_apis({"kubeconfig": "kube.yaml", "context": "b"}, source)
    assert isinstance(apis.core, client.CoreV1Api) and isinstance(apis.apps, client.AppsV1Api)
    assert apis.core.api_client.configuration.host == "https://b.example.invalid:6443"
    assert k8s_client.make_apis({"kubeconfig": "kube.yaml"}, source).apps.api_client.configuration.host == \
        "https://a.example.invalid:6443"


def test_make_apis_names_a_bad_context_or_file(tmp_path):
    (tmp_path / "kube.yaml").write_text(KUBECONFIG)
    source = str(tmp_path / "target.json")
    with pytest.raises(ActivityFailed, match=r"context 'c'"):
        k8s_client.make_apis({"kubeconfig": "kube.yaml", "context": "c"}, source)
    with pytest.raises(ActivityFailed, match=r"missing.yaml"):
        k8s_client.make_apis({"kubeconfig": "missing.yaml"}, source)
    with pytest.raises(ActivityFailed, match=r"kubeconfig must be null or a non-empty string, got 42"):
        k8s_client.make_apis({"kubeconfig": 42}, source)


# The one library function still replaced in this file: in-cluster configuration reads the
# service-account token and CA at fixed paths of a pod (/var/run/secrets/kubernetes.io/...),
# which a test must not write on the machine it runs on.
def test_make_apis_uses_the_service_account_in_a_pod(monkeypatch):
    def in_cluster(client_configuration=None, try_refresh_token=True):
        client_configuration.host = "https://10.0.0.1:443"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setattr(config, "load_incluster_config", in_cluster)
    apis = k8s_client.make_apis({}, None)
    assert apis.core.api_client.configuration.host == "https://10.0.0.1:443"
