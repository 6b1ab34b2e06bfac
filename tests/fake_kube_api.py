"""A fake Kubernetes API server at the HTTP level, for tests without a cluster.

chaosk8s and the official kubernetes client talk to it exactly as to a cluster, through a
generated kubeconfig: nothing of theirs is replaced. It serves the REST paths the Kubernetes
experiments use (pods: list, get, delete, evict; nodes: list, get, patch; deployments and
statefulsets: list with watch, get, patch, scale) and answers anything else with 404 naming the
path, recorded in `unserved` so a test notices a call it did not expect.

Behind it, a small simulation of the controllers, ticking every `tick_s`:
  - a Deployment or StatefulSet recreates missing pods up to its replicas; a new pod is scheduled
    on the least-loaded schedulable node and becomes Running and Ready `ready_delay_s` later;
    with no schedulable node it stays Pending;
  - scaling to 0 removes the pods and keeps 0; scaling back recreates them;
  - a changed pod template (a rollout restart) replaces the pods: surge one, then remove one old
    (RollingUpdate), or remove all then create (Recreate);
  - a deleted pod with a grace period terminates after min(grace, `terminate_s`); an evicted pod
    is gone at once (so chaosk8s's drain never waits its 10 s poll);
  - a cordoned node keeps its pods; a drained node's pods are recreated on another node;
  - the pods of a StatefulSet that runs Patroni with its Kubernetes DCS (they mount a ConfigMap
    whose Patroni YAML has a `kubernetes` section) carry the role labels Patroni writes, with the
    label and values that YAML names: one running member is the leader; when no live pod is,
    `failover_s` later (the leader key's expiry) the running member labelled replica is promoted
    (the lowest ordinal when none is, as at bootstrap); every other running member is a replica.
Workload statuses are computed from the pods, as the controllers report them (zero counts
omitted, as the API server does).
"""
from __future__ import annotations

import hashlib
import json
import re
import select
import socket
import threading
import time
import uuid
from copy import deepcopy
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import yaml

WORKLOAD_KINDS = {"deployments": "Deployment", "statefulsets": "StatefulSet"}
MAX_WATCH_S = 120.0  # a watch nobody closes ends by itself


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _template_hash(template: dict) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _merge(target: dict, patch: dict) -> dict:
    """RFC 7386 merge patch (what strategic merge does for the maps patched here): null deletes."""
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            _merge(target[k], v)
        else:
            target[k] = deepcopy(v)
    return target


def _selector_matches(selector: str | None, labels: dict) -> bool:
    """Equality-based label selectors: k=v, k==v, k!=v, k, !k (comma = and)."""
    if not selector:
        return True
    for term in selector.split(","):
        term = term.strip()
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _check_selector(selector: str | None) -> None:
    if selector and re.search(r"\s(in|notin)\s*\(", selector):
        raise ValueError(f"set-based label selector {selector!r} is not supported by the fake")


class FakeCluster:
    """The cluster's objects and its controllers. Thread-safe: one lock for everything."""

    def __init__(self, ready_delay_s: float = 0.15, terminate_s: float = 0.3, tick_s: float = 0.02,
                 failover_s: float = 0.3):
        self.ready_delay_s, self.terminate_s, self.tick_s = ready_delay_s, terminate_s, tick_s
        self.failover_s = failover_s
        self.lock = threading.RLock()
        self.nodes: dict[str, dict] = {}
        self.pods: dict[tuple[str, str], dict] = {}
        self.workloads: dict[tuple[str, str, str], dict] = {}  # (resource, ns, name)
        self.patroni: dict[tuple[str, str, str], dict] = {}  # workload → Patroni's role labels
        self._leader_lost_at: dict[tuple[str, str, str], float] = {}
        self.requests: list[tuple[str, str]] = []
        self.unserved: list[str] = []
        self.events: list[tuple[float, str]] = []  # (monotonic, what) for assertions
        self._rv = 1
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []

    # -- building the cluster ------------------------------------------------------------------

    def add_node(self, name: str, labels: dict | None = None) -> None:
        with self.lock:
            self.nodes[name] = {"metadata": {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": _now_iso(),
                                             "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
                                "spec": {}}

    def add_workload(self, manifest: dict, patroni: dict | None = None) -> None:
        """A Deployment or StatefulSet from a manifest; its pods start Running and Ready. `patroni`
        (patroni_roles()): its pods are Patroni members, the first one the leader."""
        resource = {"Deployment": "deployments", "StatefulSet": "statefulsets"}[manifest["kind"]]
        obj = deepcopy(manifest)
        meta = obj["metadata"]
        meta.update(uid=str(uuid.uuid4()), generation=1, creationTimestamp=_now_iso())
        obj["spec"].setdefault("replicas", 1)
        owner = (resource, meta["namespace"], meta["name"])
        with self.lock:
            self.workloads[owner] = obj
            if patroni:
                self.patroni[owner] = dict(patroni)
            self._reconcile(resource, obj, time.monotonic(), ready_now=True)
            self._schedule(time.monotonic(), ready_now=True)
            if patroni:
                self._patroni_roles(owner, time.monotonic(), bootstrap=True)

    def kubeconfig(self) -> str:
        host, port = self._server.server_address[:2]
        return (f"apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
                f"clusters:\n  - name: fake\n    cluster: {{server: 'http://{host}:{port}'}}\n"
                f"users:\n  - name: fake\n    user: {{token: fake-token}}\n"
                f"contexts:\n  - name: fake\n    context: {{cluster: fake, user: fake}}\n")

    # -- lifetime ------------------------------------------------------------------------------

    def start(self) -> "FakeCluster":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        for target in (lambda: self._server.serve_forever(poll_interval=0.05), self._simulate):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for t in self._threads:
            t.join(timeout=5)

    def _simulate(self) -> None:
        while not self._stop.wait(self.tick_s):
            with self.lock:
                now = time.monotonic()
                for (resource, _, _), obj in list(self.workloads.items()):
                    self._reconcile(resource, obj, now)
                self._schedule(now)
                for owner in self.patroni:
                    self._patroni_roles(owner, now)

    # -- queries for tests ---------------------------------------------------------------------

    def pods_of(self, resource: str, ns: str, name: str) -> list[dict]:
        with self.lock:
            return [deepcopy(p) for p in self.pods.values() if p["_owner"] == (resource, ns, name)]

    def workload(self, resource: str, ns: str, name: str) -> dict:
        with self.lock:
            return self._render_workload(resource, self.workloads[(resource, ns, name)])

    def node(self, name: str) -> dict:
        with self.lock:
            return self._render_node(self.nodes[name])

    # -- the controllers -----------------------------------------------------------------------

    def _live(self, owner) -> list[dict]:
        return [p for p in self.pods.values() if p["_owner"] == owner and not p["metadata"].get("deletionTimestamp")]

    def _new_pod(self, resource: str, obj: dict, name: str, thash: str, now: float, ready_now: bool) -> None:
        meta = obj["metadata"]
        template = deepcopy(obj["spec"]["template"])
        owner_kind, owner_name = (("ReplicaSet", f"{meta['name']}-{thash}") if resource == "deployments"
                                  else ("StatefulSet", meta["name"]))
        pod = {"metadata": {"name": name, "namespace": meta["namespace"], "uid": str(uuid.uuid4()),
                            "creationTimestamp": _now_iso(), "labels": dict(template["metadata"].get("labels") or {}),
                            "annotations": dict(template["metadata"].get("annotations") or {}),
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner_name,
                                                 "uid": meta["uid"], "controller": True}]},
               "spec": template["spec"], "_owner": (resource, meta["namespace"], meta["name"]), "_hash": thash,
               "_ready_at": None, "_gone_at": None, "_ready_now": ready_now}
        self.pods[(meta["namespace"], name)] = pod
        self.events.append((now, f"create {meta['namespace']}/{name}"))

    def _delete(self, pod: dict, grace_s: float | None, now: float, why: str) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if grace_s is not None and grace_s <= 0:
            self.pods.pop(key, None)
        elif not pod["metadata"].get("deletionTimestamp"):
            pod["metadata"]["deletionTimestamp"] = _now_iso()
            pod["_gone_at"] = now + min(self.terminate_s, grace_s if grace_s is not None else self.terminate_s)
        self.events.append((now, f"{why} {key[0]}/{key[1]}"))

    def _reconcile(self, resource: str, obj: dict, now: float, ready_now: bool = False) -> None:
        owner = (resource, obj["metadata"]["namespace"], obj["metadata"]["name"])
        for p in [p for p in self.pods.values() if p["_owner"] == owner and p["_gone_at"] and now >= p["_gone_at"]]:
            self.pods.pop((p["metadata"]["namespace"], p["metadata"]["name"]), None)
        want, thash = int(obj["spec"].get("replicas") or 0), _template_hash(obj["spec"]["template"])
        live = self._live(owner)
        name = obj["metadata"]["name"]
        if resource == "statefulsets":
            for p in live:
                ordinal = int(p["metadata"]["name"].rsplit("-", 1)[1])
                if ordinal >= want:
                    self._delete(p, None, now, "scale-down")
            old = [p for p in live if p["_hash"] != thash and int(p["metadata"]["name"].rsplit("-", 1)[1]) < want]
            if old and all(self._ready(p) for p in live):
                self._delete(max(old, key=lambda p: p["metadata"]["name"]), None, now, "roll")
            for i in range(want):  # a name is reused only once the old pod is gone
                if (owner[1], f"{name}-{i}") not in self.pods:
                    self._new_pod(resource, obj, f"{name}-{i}", thash, now, ready_now)
            return
        new = [p for p in live if p["_hash"] == thash]
        old = [p for p in live if p["_hash"] != thash]
        recreate = (obj["spec"].get("strategy") or {}).get("type") == "Recreate"
        if want == 0:
            for p in live:
                self._delete(p, None, now, "scale-down")
        elif old and recreate:
            for p in old:
                self._delete(p, None, now, "roll")
        elif old:
            if len(live) < want + 1:
                self._new_pod(resource, obj, f"{name}-{thash}-{uuid.uuid4().hex[:5]}", thash, now, ready_now)
            elif new and all(self._ready(p) for p in new):
                self._delete(sorted(old, key=self._ready)[0], None, now, "roll")
        if want and not (old and not recreate):
            if recreate and any(p["_owner"] == owner and p["_hash"] != thash for p in self.pods.values()):
                return  # Recreate: the old pods are gone before the new ones start
            for _ in range(want - len(new)):
                self._new_pod(resource, obj, f"{name}-{thash}-{uuid.uuid4().hex[:5]}", thash, now, ready_now)
            for p in sorted(new, key=lambda p: p["metadata"]["creationTimestamp"])[want:]:
                self._delete(p, None, now, "scale-down")

    def _schedule(self, now: float, ready_now: bool = False) -> None:
        for pod in self.pods.values():
            if pod["spec"].get("nodeName"):
                if pod["_ready_at"] is not None and now >= pod["_ready_at"] and pod.get("_phase") != "Running":
                    pod["_phase"] = "Running"
                    self.events.append((now, f"ready {pod['metadata']['namespace']}/{pod['metadata']['name']} "
                                             f"on {pod['spec']['nodeName']}"))
                continue
            nodes = [n for n in sorted(self.nodes) if not self.nodes[n]["spec"].get("unschedulable")]
            if not nodes:
                continue  # Pending: nowhere to run
            load = {n: sum(1 for p in self.pods.values() if p["spec"].get("nodeName") == n) for n in nodes}
            pod["spec"] = {**pod["spec"], "nodeName": min(nodes, key=lambda n: (load[n], n))}
            pod["_ready_at"] = now if pod.pop("_ready_now", False) else now + self.ready_delay_s
            if now >= pod["_ready_at"]:
                pod["_phase"] = "Running"

    def _patroni_roles(self, owner: tuple[str, str, str], now: float, bootstrap: bool = False) -> None:
        """What the members' Patroni agents write on their pods: the leader's label, and the
        replicas' once a leader exists. A leader's pod that is terminating leads no more."""
        roles = self.patroni[owner]
        key, leader, follower = roles["role_label"], roles["leader"], roles["follower"]
        members = sorted(self._live(owner), key=lambda p: int(p["metadata"]["name"].rsplit("-", 1)[1]))
        running = [p for p in members if self._ready(p)]
        leaders = [p for p in members if p["metadata"]["labels"].get(key) == leader]
        if not leaders:
            lost_at = self._leader_lost_at.setdefault(owner, now)
            if running and (bootstrap or now - lost_at >= self.failover_s):
                promoted = ([p for p in running if p["metadata"]["labels"].get(key) == follower] or running)[0]
                self._label(promoted, key, leader, now)
                leaders = [promoted]
        if leaders:
            self._leader_lost_at.pop(owner, None)
            for p in running:
                if p not in leaders and p["metadata"]["labels"].get(key) != follower:
                    self._label(p, key, follower, now)

    def _label(self, pod: dict, key: str, value: str, now: float) -> None:
        pod["metadata"]["labels"][key] = value
        self.events.append((now, f"label {pod['metadata']['namespace']}/{pod['metadata']['name']} {key}={value}"))

    @staticmethod
    def _ready(pod: dict) -> bool:
        return pod.get("_phase") == "Running" and not pod["metadata"].get("deletionTimestamp")

    # -- what the API returns ------------------------------------------------------------------

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _render_pod(self, pod: dict) -> dict:
        ready = self._ready(pod)
        phase = "Running" if pod.get("_phase") == "Running" else "Pending"
        status = {"phase": phase, "conditions": [
            {"type": "PodScheduled", "status": "True" if pod["spec"].get("nodeName") else "False"},
            {"type": "Ready", "status": "True" if ready else "False"}]}
        if pod["spec"].get("nodeName"):
            status["podIP"] = "10.0.0." + str(1 + int(pod["metadata"]["uid"][:2], 16) % 250)
        meta = {**deepcopy(pod["metadata"]), "resourceVersion": self._next_rv()}
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": deepcopy(pod["spec"]), "status": status}

    def _render_node(self, node: dict) -> dict:
        return {"apiVersion": "v1", "kind": "Node", **deepcopy(node),
                "metadata": {**deepcopy(node["metadata"]), "resourceVersion": self._next_rv()},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]}}

    def _render_workload(self, resource: str, obj: dict) -> dict:
        owner = (resource, obj["metadata"]["namespace"], obj["metadata"]["name"])
        thash = _template_hash(obj["spec"]["template"])
        live = self._live(owner)
        counts = {"replicas": len(live), "updatedReplicas": sum(p["_hash"] == thash for p in live),
                  "readyReplicas": sum(self._ready(p) for p in live),
                  "availableReplicas": sum(self._ready(p) for p in live)}
        status = {"observedGeneration": obj["metadata"]["generation"]}
        if resource == "deployments":
            counts["unavailableReplicas"] = max(0, int(obj["spec"].get("replicas") or 0) - counts["readyReplicas"])
        else:
            old = sorted({p["_hash"] for p in live if p["_hash"] != thash})
            current = old[0] if old else thash
            status.update(replicas=len(live), updateRevision=f"{owner[2]}-{thash}", currentRevision=f"{owner[2]}-{current}",
                          currentReplicas=sum(p["_hash"] == current for p in live))
        status.update({k: v for k, v in counts.items() if v})  # the API server omits zero counts
        meta = {**deepcopy(obj["metadata"]), "resourceVersion": self._next_rv()}
        return {"apiVersion": "apps/v1", "kind": WORKLOAD_KINDS[resource], "metadata": meta,
                "spec": deepcopy(obj["spec"]), "status": status}

    def _scale_of(self, resource: str, obj: dict) -> dict:
        rendered = self._render_workload(resource, obj)
        labels = obj["spec"]["selector"].get("matchLabels") or {}
        return {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": rendered["metadata"],
                "spec": {"replicas": int(obj["spec"].get("replicas") or 0)},
                "status": {"replicas": rendered["status"].get("replicas", 0),
                           "selector": ",".join(f"{k}={v}" for k, v in labels.items())}}

    # -- the REST API --------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict, body) -> tuple[int, dict]:
        """(status, JSON body) of one request; watches are served by the handler."""
        q = {k: v[-1] for k, v in query.items()}
        label, fields = q.get("labelSelector"), q.get("fieldSelector")
        _check_selector(label)
        now = time.monotonic()
        with self.lock:
            if m := re.fullmatch(r"/api/v1/nodes", path):
                if method == "GET":
                    items = [self._render_node(n) for n in self.nodes.values()
                             if _selector_matches(label, n["metadata"]["labels"]) and self._fields(fields, n)]
                    return 200, self._list("NodeList", "v1", items)
            elif m := re.fullmatch(r"/api/v1/nodes/([^/]+)", path):
                node = self.nodes.get(m[1])
                if node is None:
                    return self._status(404, "NotFound", f'nodes "{m[1]}" not found')
                if method == "PATCH":
                    _merge(node, {k: v for k, v in body.items() if k in ("metadata", "spec")})
                    self.events.append((now, f"patch node {m[1]} {json.dumps(body, sort_keys=True)}"))
                if method in ("GET", "PATCH"):
                    return 200, self._render_node(node)
            elif m := re.fullmatch(r"/api/v1(?:/namespaces/([^/]+))?/pods", path):
                if method == "GET":
                    items = [self._render_pod(p) for p in self.pods.values()
                             if (m[1] is None or p["metadata"]["namespace"] == m[1])
                             and _selector_matches(label, p["metadata"]["labels"]) and self._fields(fields, p)]
                    return 200, self._list("PodList", "v1", sorted(items, key=lambda p: p["metadata"]["name"]))
            elif m := re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)(/eviction)?", path):
                pod = self.pods.get((m[1], m[2]))
                if pod is None:
                    return self._status(404, "NotFound", f'pods "{m[2]}" not found')
                if m[3] and method == "POST":
                    self._delete(pod, 0, now, "evict")
                    return self._status(201, "", f"pod {m[2]} evicted", status="Success")
                if not m[3] and method == "GET":
                    return 200, self._render_pod(pod)
                if not m[3] and method == "DELETE":
                    body = body or {}
                    uid = (body.get("preconditions") or {}).get("uid")
                    if uid and uid != pod["metadata"]["uid"]:
                        return self._status(409, "Conflict", f"Precondition failed: UID in precondition: {uid}, "
                                                             f"UID in object meta: {pod['metadata']['uid']}")
                    grace = body.get("gracePeriodSeconds", q.get("gracePeriodSeconds"))
                    rendered = self._render_pod(pod)
                    self._delete(pod, float(grace) if grace is not None else None, now, "delete")
                    return 200, rendered
            elif m := re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/(deployments|statefulsets)", path):
                if method == "GET":
                    return 200, self._list(WORKLOAD_KINDS[m[2]] + "List", "apps/v1",
                                           self._workloads(m[2], m[1], label, fields))
            elif m := re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/(deployments|statefulsets)/([^/]+)(/scale)?", path):
                obj = self.workloads.get((m[2], m[1], m[3]))
                if obj is None:
                    return self._status(404, "NotFound", f'{m[2]}.apps "{m[3]}" not found')
                if method == "PATCH":
                    if not isinstance(body, dict):
                        return self._status(415, "UnsupportedMediaType", "the fake takes merge patches only")
                    before = json.dumps(obj["spec"], sort_keys=True)
                    if m[4]:
                        obj["spec"]["replicas"] = int(body["spec"]["replicas"])
                    else:
                        _merge(obj, {k: v for k, v in body.items() if k in ("metadata", "spec")})
                    if json.dumps(obj["spec"], sort_keys=True) != before:
                        obj["metadata"]["generation"] += 1
                    self.events.append((now, f"patch {m[2]} {m[1]}/{m[3]} {json.dumps(body, sort_keys=True)}"))
                if method in ("GET", "PATCH"):
                    return 200, (self._scale_of(m[2], obj) if m[4] else self._render_workload(m[2], obj))
        self.unserved.append(f"{method} {path}")
        return self._status(404, "NotFound", f"the fake API server does not serve {method} {path}")

    def _workloads(self, resource: str, ns: str, label: str | None, fields: str | None) -> list[dict]:
        return [self._render_workload(resource, o) for (r, n, _), o in sorted(self.workloads.items())
                if r == resource and n == ns and _selector_matches(label, o["metadata"].get("labels") or {})
                and self._fields(fields, o)]

    @staticmethod
    def _fields(selector: str | None, obj: dict) -> bool:
        for term in (selector or "").split(","):
            if not term:
                continue
            key, _, value = term.partition("=")
            got = {"metadata.name": obj["metadata"].get("name"), "metadata.namespace": obj["metadata"].get("namespace"),
                   "spec.nodeName": (obj.get("spec") or {}).get("nodeName")}.get(key.strip(), object())
            if got != value.strip():
                return False
        return True

    def _list(self, kind: str, api_version: str, items: list[dict]) -> dict:
        return {"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": str(self._rv)}, "items": items}

    @staticmethod
    def _status(code: int, reason: str, message: str, status: str = "Failure") -> tuple[int, dict]:
        return code, {"apiVersion": "v1", "kind": "Status", "status": status, "message": message,
                      "reason": reason, "code": code}


def _handler(cluster: FakeCluster):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as urllib3's pool expects

        def log_message(self, *args):  # quiet
            pass

        def _serve(self, method: str) -> None:
            url = urlparse(self.path)
            query = parse_qs(url.query)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            with cluster.lock:
                cluster.requests.append((method, self.path))
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return self._send(400, {"kind": "Status", "code": 400, "message": "body is not JSON"})
            if method == "GET" and query.get("watch", [""])[-1].lower() in ("true", "1"):
                return self._watch(url.path, query)
            try:
                code, payload = cluster.handle(method, url.path, query, body)
            except ValueError as e:
                code, payload = FakeCluster._status(400, "BadRequest", str(e))
            self._send(code, payload)

        def _send(self, code: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _watch(self, path: str, query: dict) -> None:
            """Stream ADDED for what exists, then MODIFIED whenever a watched object's state changes."""
            m = re.fullmatch(r"/apis/apps/v1/namespaces/([^/]+)/(deployments|statefulsets)", path)
            if m is None:
                with cluster.lock:
                    cluster.unserved.append(f"WATCH {path}")
                return self._send(404, FakeCluster._status(404, "NotFound", f"no watch of {path}")[1])
            label, fields = (query.get("labelSelector") or [None])[-1], (query.get("fieldSelector") or [None])[-1]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.close_connection = True
            seen: dict[str, str] = {}
            deadline = time.monotonic() + MAX_WATCH_S
            try:
                while time.monotonic() < deadline and not cluster._stop.is_set():
                    with cluster.lock:
                        objects = cluster._workloads(m[2], m[1], label, fields)
                    for obj in objects:
                        state = json.dumps({k: obj[k] for k in ("spec", "status")}, sort_keys=True)
                        name = obj["metadata"]["name"]
                        if seen.get(name) != state:
                            event = json.dumps({"type": "MODIFIED" if name in seen else "ADDED", "object": obj})
                            seen[name] = state
                            self._chunk((event + "\n").encode())
                    if self._client_gone():
                        break
                    time.sleep(cluster.tick_s)
                self._chunk(b"")
            except OSError:  # the client stopped watching
                pass

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _client_gone(self) -> bool:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            try:
                return self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        def do_GET(self):
            self._serve("GET")

        def do_DELETE(self):
            self._serve("DELETE")

        def do_PATCH(self):
            self._serve("PATCH")

        def do_POST(self):
            self._serve("POST")

        def do_PUT(self):
            self._serve("PUT")

    return Handler


def patroni_roles(workload: dict, manifests: list[dict]) -> dict | None:
    """The role label and values Patroni writes on the pods of `workload`, if they run Patroni
    with its Kubernetes DCS: a ConfigMap they mount holds Patroni's YAML with a `kubernetes`
    section. What it leaves out is Patroni 4's default (role: primary / replica)."""
    if workload.get("kind") != "StatefulSet":
        return None
    ns = workload["metadata"]["namespace"]
    mounted = {v["configMap"]["name"] for v in workload["spec"]["template"]["spec"].get("volumes") or []
               if "configMap" in v}
    for m in manifests:
        if m.get("kind") != "ConfigMap" or m["metadata"].get("namespace") != ns or m["metadata"]["name"] not in mounted:
            continue
        for name, text in (m.get("data") or {}).items():
            config = yaml.safe_load(text) if name.endswith((".yml", ".yaml")) else None
            if isinstance(config, dict) and isinstance(config.get("kubernetes"), dict):
                k8s = config["kubernetes"]
                return {"role_label": k8s.get("role_label", "role"), "leader": k8s.get("leader_label_value", "primary"),
                        "follower": k8s.get("follower_label_value", "replica")}
    return None


def svg_ai_cluster(manifests: list[dict], nodes: int = 3, failing_node_label: dict | None = None,
                   **timing) -> FakeCluster:
    """A started fake cluster running the Deployments and StatefulSets of `manifests` (the objects
    of deploy/kubernetes) on `nodes` nodes; the first node carries `failing_node_label` (the
    node-failure scenario's) and, placed first, one of the API's pods. A StatefulSet that runs
    Patroni (patroni_roles) starts with its first member the leader, the others replicas."""
    cluster = FakeCluster(**timing)
    for i in range(1, nodes + 1):
        cluster.add_node(f"node-{i}", failing_node_label if i == 1 else None)
    for m in manifests:
        if m.get("kind") in ("Deployment", "StatefulSet"):
            cluster.add_workload(m, patroni=patroni_roles(m, manifests))
    return cluster.start()
