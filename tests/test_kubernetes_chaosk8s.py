"""Every Kubernetes experiment against a fake Kubernetes API server (tests/fake_kube_api.py), run by
chaoslib's run_experiment (what `chaos run` calls; tests/chaos_runs.py, one process for all) after
`chaos --no-version-check validate` accepted it: chaosk8s and the kubernetes client reach the fake
through a generated kubeconfig, as they would a cluster; nothing of theirs is patched. Each positive run must complete with its steady
state met again after the fault; each negative twin must deviate, its workload not available
after the method, and its rollbacks must leave the cluster as they found it.

What does not run here, and why: the BCP measurement. harness.run.control samples the API over HTTP,
drives locust writes, reads every record back from PostgreSQL and checks it with amcheck, and the
steady-state probes of probes.http / probes.database / probes.monitoring ask the service itself.
None of that exists behind a fake API server, and faking the API, the database and Prometheus too
would test the fakes, not the harness (the control, its probes and checkers are tested against the
real embedded stack). So each experiment runs with its control and its service probes removed,
every Kubernetes activity unchanged, and the criterion its twin names (`rto`: the service never
came back) is observed where the cluster shows it: the workload's availability probe in the
steady state after the method. The removal is explicit (SERVICE_MODULES) and checked: nothing
else is taken out.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_kube_api import svg_ai_cluster  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
EXPERIMENTS = ROOT / "experiments" / "kubernetes"
POSITIVE = sorted(EXPERIMENTS.glob("*.yaml"))
NEGATIVE = sorted((EXPERIMENTS / "negative").glob("*.yaml"))
CHAOS = str(Path(sys.executable).parent / "chaos")
SERVICE_MODULES = {"probes.http", "probes.database", "probes.monitoring", "harness.faults.monitoring"}
K8S_MODULE_PREFIXES = ("chaosk8s.", "harness.faults.kubernetes", "probes.kubernetes")
# the fake recovers within a second or two; a twin's steady state need not wait long to fail
SHORT_TIMEOUTS = {"rollout_timeout_s": 15, "drain_timeout_s": 15, "steady_state_timeout_s": 3}
NS, API, POSTGRES = "svg-ai-prod", "svg-ai-api", "svg-ai-postgres"
FAILING_NODE = {"svg-ai.io/gameday-node-failure": "true"}
# A replacement pod is ready this long after it is scheduled: long enough that the experiments'
# "the workload is down" watch (started ~0.1 s after the fault, longer on a loaded machine) sees
# the gap, short enough to keep twelve runs in seconds.
READY_DELAY_S = 0.8


def _manifests() -> list[dict]:
    out = []
    for name in yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]:
        out += [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]
    return out


MANIFESTS = _manifests()


def _id(path: Path) -> str:
    return str(path.relative_to(EXPERIMENTS.parent))


PARALLEL_RUNS = 4  # `chaos validate` processes at once: their imports dominate, 2 cores share them


class Run:
    """One experiment's fake-cluster run: its cluster (kept for the assertions), what the cluster
    looked like before, the journal."""

    def __init__(self, path: Path, folder: Path):
        self.path, self.folder = path, folder
        self.cluster = svg_ai_cluster(MANIFESTS, failing_node_label=FAILING_NODE, ready_delay_s=READY_DELAY_S)
        (folder / "kubeconfig").write_text(self.cluster.kubeconfig())
        target = json.loads((DEPLOY / "target.example.json").read_text())
        target.update(kubeconfig=str(folder / "kubeconfig"), context="fake")
        (folder / "target.json").write_text(json.dumps(target))
        self.api_before = {p["metadata"]["uid"]: p for p in self.cluster.pods_of("deployments", NS, API)}
        self.postgres_before = self.cluster.pods_of("statefulsets", NS, POSTGRES)
        self.journal: dict | None = None
        self.error = ""

    def plan(self) -> dict:
        return {"experiment": str(write_variant(self.path, self.folder)), "kubeconfig": str(self.folder / "kubeconfig"),
                "target": str(self.folder / "target.json"), "journal": str(self.folder / "journal.json")}

    def load(self) -> None:
        if (self.folder / "journal.json").is_file():
            self.journal = json.loads((self.folder / "journal.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[Path, Run]:
    """Every Kubernetes experiment, each against its own fake cluster, run by chaoslib in one
    process (tests/chaos_runs.py; `chaos run` would pay the imports twelve times)."""
    folder = tmp_path_factory.mktemp("chaos-runs")
    all_runs = [Run(path, tmp_path_factory.mktemp(path.stem)) for path in POSITIVE + NEGATIVE]
    try:
        (folder / "plan.json").write_text(json.dumps([r.plan() for r in all_runs]))
        env = {**os.environ, "KUBECONFIG": str(folder / "kubeconfig"), "PYTHONPATH": str(ROOT)}
        for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_CONTEXT", "CHAOSTOOLKIT_IN_POD"):
            env.pop(name, None)
        proc = subprocess.run([sys.executable, str(Path(__file__).parent / "chaos_runs.py"), str(folder / "plan.json")],
                              cwd=folder, env=env, capture_output=True, text=True, timeout=300)
        for r in all_runs:
            r.load()
            r.error = f"no journal (rc {proc.returncode}): {proc.stdout[-1500:]} {proc.stderr[-1500:]}"
        yield {r.path: r for r in all_runs}
    finally:
        for r in all_runs:
            r.cluster.stop()


def _activities(experiment: dict) -> list[dict]:
    return [*(experiment.get("steady-state-hypothesis") or {}).get("probes", []),
            *experiment.get("method", []), *experiment.get("rollbacks", [])]


def fake_cluster_variant(experiment: dict) -> tuple[dict, list[str]]:
    """The experiment without its measurement (control, service probes), timeouts shortened;
    returns it with the names of the activities taken out."""
    variant = json.loads(json.dumps(experiment))
    variant.pop("controls", None)
    removed = []
    for owner, key in ((variant["steady-state-hypothesis"], "probes"), (variant, "method"), (variant, "rollbacks")):
        activities = owner.get(key) or []
        removed += [a for a in activities if a["provider"]["module"] in SERVICE_MODULES]
        owner[key] = [a for a in activities if a["provider"]["module"] not in SERVICE_MODULES]
    for k, v in SHORT_TIMEOUTS.items():
        if k in (variant.get("configuration") or {}):
            variant["configuration"][k] = v
    return variant, [a["name"] for a in removed]


def write_variant(path: Path, folder: Path) -> Path:
    """The experiment's fake-cluster variant as a file, checked to keep every Kubernetes activity."""
    experiment = yaml.safe_load(path.read_text())
    variant, removed = fake_cluster_variant(experiment)
    assert all(a["provider"]["module"].startswith(K8S_MODULE_PREFIXES) for a in _activities(variant)), \
        "an activity that is neither Kubernetes nor the service's own was left in"
    assert len(_activities(variant)) + len(removed) == len(_activities(experiment))
    assert _activities(variant), "nothing Kubernetes left to run"
    (folder / "experiment.json").write_text(json.dumps(variant))
    return folder / "experiment.json"


def _failed(journal: dict) -> list[str]:
    return [f"{r['activity']['name']}: {r.get('exception', [''])[-1:]}" for r in journal["run"] + journal["rollbacks"]
            if r["status"] != "succeeded"]


def _after_probes(journal: dict) -> dict[str, bool]:
    return {p["activity"]["name"]: p["tolerance_met"] for p in journal["steady_states"]["after"]["probes"]}


def _wait_for(check, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _ready(cluster, resource: str, ns: str, name: str) -> int:
    return cluster.workload(resource, ns, name)["status"].get("readyReplicas", 0)


def _healthy_again(cluster) -> bool:
    """Every workload at its manifest's replicas, ready, no node cordoned, no scale record left."""
    for m in MANIFESTS:
        if m["kind"] in ("Deployment", "StatefulSet"):
            resource = m["kind"].lower() + "s"
            w = cluster.workload(resource, m["metadata"]["namespace"], m["metadata"]["name"])
            if w["spec"]["replicas"] != m["spec"]["replicas"] or w["status"].get("readyReplicas", 0) != m["spec"]["replicas"]:
                return False
            if "gameday.svg-ai.io/replicas-before-scale" in (w["metadata"].get("annotations") or {}):
                return False
    return not any(cluster.node(n)["spec"].get("unschedulable") for n in cluster.nodes)


# ---------------------------------------------------------------------------------------------

def test_the_experiments_use_chaosk8s():
    for path in POSITIVE + NEGATIVE:
        experiment = yaml.safe_load(path.read_text())
        faults = [a for a in experiment["method"] if "fault" in (a.get("tags") or [])]
        assert faults and all(a["provider"]["module"].startswith("chaosk8s.") for a in faults), _id(path)


def test_chaos_validate_accepts_every_kubernetes_experiment():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def validate(path: Path) -> subprocess.CompletedProcess:
        return subprocess.run([CHAOS, "--no-version-check", "--log-file", os.devnull, "validate", str(path)],
                              env=env, capture_output=True, text=True, timeout=60)
    with ThreadPoolExecutor(PARALLEL_RUNS) as pool:
        results = dict(zip(POSITIVE + NEGATIVE, pool.map(validate, POSITIVE + NEGATIVE)))
    for path, proc in results.items():
        assert proc.returncode == 0, f"{_id(path)}: {proc.stdout[-1500:]} {proc.stderr[-1500:]}"
        assert "experiment syntax and semantic look valid" in proc.stdout + proc.stderr, _id(path)


def test_the_fake_cluster_variant_removes_only_the_measurement():
    experiment = yaml.safe_load((EXPERIMENTS / "database-failure.yaml").read_text())
    variant, removed = fake_cluster_variant(experiment)
    assert "controls" not in variant and experiment["controls"]
    assert removed == ["database-writable", "api-ready", "optimize-works"]
    assert [a["name"] for a in variant["method"]] == [a["name"] for a in experiment["method"]]
    assert variant["configuration"]["rollout_timeout_s"] == 15


@pytest.mark.parametrize("path", POSITIVE, ids=_id)
def test_positive_run_recovers_on_the_fake_cluster(path, runs):
    run = runs[path]
    assert run.journal is not None, run.error
    assert run.cluster.unserved == [], f"calls the fake does not serve: {run.cluster.unserved}"
    journal, cluster, before = run.journal, run.cluster, run.api_before
    assert journal["steady_states"]["before"]["steady_state_met"] is True, _failed(journal)
    assert _failed(journal) == []
    assert journal["deviated"] is False and journal["status"] == "completed", _after_probes(journal)
    assert journal["steady_states"]["after"]["steady_state_met"] is True
    after = cluster.pods_of("deployments", NS, API)
    deleted = [e for _, e in cluster.events if e.startswith(("delete ", "evict "))]
    stem = path.stem
    if stem == "api-replica-crash":
        assert [e for e in deleted if f"{NS}/{API}-" in e] and len([e for e in deleted if API in e]) == 1, deleted
        assert len(set(before) - {p["metadata"]["uid"] for p in after}) == 1
    elif stem == "api-crash":
        assert not set(before) & {p["metadata"]["uid"] for p in after}, "every API pod was replaced"
    elif stem == "database-failure":
        # Patroni's failover: the replica promoted, the lost leader's pod recreated as a replica
        roles_before = {p["metadata"]["name"]: (p["metadata"]["labels"].get("role"), p["metadata"]["uid"])
                        for p in run.postgres_before}
        assert {n: r for n, (r, _) in roles_before.items()} == {"svg-ai-postgres-0": "primary",
                                                                "svg-ai-postgres-1": "replica"}
        after_db = {p["metadata"]["name"]: p for p in cluster.pods_of("statefulsets", NS, POSTGRES)}
        assert {n: p["metadata"]["labels"].get("role") for n, p in after_db.items()} == {
            "svg-ai-postgres-0": "replica", "svg-ai-postgres-1": "primary"}
        assert after_db["svg-ai-postgres-0"]["metadata"]["uid"] != roles_before["svg-ai-postgres-0"][1], \
            "the leader's pod was recreated under its name"
        assert after_db["svg-ai-postgres-1"]["metadata"]["uid"] == roles_before["svg-ai-postgres-1"][1], \
            "the replica was promoted, not replaced"
    elif stem == "monitoring-failure":
        prom = cluster.workload("deployments", "monitoring", "prometheus")
        assert "kubectl.kubernetes.io/restartedAt" in prom["spec"]["template"]["metadata"]["annotations"]
        assert prom["status"]["updatedReplicas"] == 1 and prom["status"]["readyReplicas"] == 1
    elif stem == "node-failure":
        drained = [p for p in before.values() if p["spec"]["nodeName"] == "node-1"]
        assert drained, "the labelled node ran an API pod"
        assert any(e == "patch node node-1 {\"spec\": {\"unschedulable\": true}}" for _, e in cluster.events)
        assert cluster.node("node-1")["spec"].get("unschedulable") in (None, False), "uncordoned by the rollback"
        assert all(p["spec"]["nodeName"] != "node-1" for p in after), "rescheduled on the other nodes"
    elif stem == "api-rollout-restart":
        assert not set(before) & {p["metadata"]["uid"] for p in after}, "every API pod was replaced"
        assert cluster.workload("deployments", NS, API)["status"]["updatedReplicas"] == 3
    else:
        pytest.fail(f"no check of what {stem} does to the cluster")
    assert _ready(cluster, "deployments", NS, API) == 3


@pytest.mark.parametrize("path", NEGATIVE, ids=_id)
def test_negative_twin_fails_on_the_fake_cluster_and_its_rollbacks_repair(path, runs):
    experiment = yaml.safe_load(path.read_text())
    bcp = next(x for x in experiment["extensions"] if x["name"] == "bcp")
    assert bcp["negative_control"] is True and bcp["expect_failure"] == ["rto"]
    run = runs[path]
    assert run.journal is not None, run.error
    assert run.cluster.unserved == [], f"calls the fake does not serve: {run.cluster.unserved}"
    journal, cluster = run.journal, run.cluster
    assert journal["steady_states"]["before"]["steady_state_met"] is True, _failed(journal)
    setup_and_fault = [r for r in journal["run"] if {"setup", "fault"} & set(r["activity"].get("tags") or [])]
    assert setup_and_fault and all(r["status"] == "succeeded" for r in setup_and_fault), _failed(journal)
    # rto: the workload did not come back, so the steady state after the method is not met
    assert journal["deviated"] is True and journal["steady_states"]["after"]["steady_state_met"] is False
    availability = [p["name"] for p in experiment["steady-state-hypothesis"]["probes"]
                    if p["provider"]["module"].startswith("chaosk8s.")]
    assert any(_after_probes(journal)[name] is False for name in availability), _after_probes(journal)
    assert [r["status"] for r in journal["rollbacks"]] == ["succeeded"] * len(journal["rollbacks"]), _failed(journal)
    assert _wait_for(lambda: _healthy_again(cluster)), "the rollbacks left the cluster changed"
