"""The Kubernetes deployment and experiments, checked without a cluster: every manifest parses and
is listed in the kustomization; the API Deployment is the BCP's (3 replicas, liveness /health,
readiness /ready); Prometheus carries the embedded stack's alert rules; the example target
description names what the manifests create; every Kubernetes experiment is valid Chaos Toolkit,
measured by harness.control against a scenario of bcp.yaml + bcp-kubernetes.yaml, calls only
functions that exist with arguments they take, and has its negative twin."""
from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
import yaml

from harness import checks, objectives
from harness.faults import kubernetes as k8s
from probes import kubernetes as k8s_probes
from harness.stack.monitoring import RULES

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
EXPERIMENTS = ROOT / "experiments" / "kubernetes"
NEGATIVE = EXPERIMENTS / "negative"
YAML_FILES = sorted(DEPLOY.glob("*.yaml"))
NOT_MANIFESTS = {"kustomization.yaml", "bcp-kubernetes.yaml"}
NAMESPACES = ("svg-ai-prod", "monitoring")
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
LOCAL_FILE_CHECKS = {"models", "config", "golden_predictions", "standby_streaming", "wal_archiving"}


def _objects() -> list[dict]:
    out = []
    for name in yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]:
        out += [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]
    return out


OBJECTS = _objects()
TARGET = json.loads((DEPLOY / "target.example.json").read_text())


def _one(kind: str, name: str, namespace: str | None = None) -> dict:
    found = [o for o in OBJECTS if o["kind"] == kind and o["metadata"]["name"] == name
             and (namespace is None or o["metadata"].get("namespace") == namespace)]
    assert len(found) == 1, f"expected one {kind} {name} in {namespace}, found {len(found)}"
    return found[0]


def _container(workload: dict, name: str | None = None) -> dict:
    containers = workload["spec"]["template"]["spec"]["containers"]
    return containers[0] if name is None else next(c for c in containers if c["name"] == name)


def _selects(selector: str, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (kv.split("=", 1) for kv in selector.split(",")))


# ---------------------------------------------------------------------------------------------
# Manifests

@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_every_yaml_parses(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs, f"{path.name} is empty"


def test_the_kustomization_lists_every_manifest_and_only_existing_files():
    listed = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]
    assert all((DEPLOY / name).is_file() for name in listed)
    manifests = {p.name for p in YAML_FILES} - NOT_MANIFESTS
    assert set(listed) == manifests, f"not in kustomization.yaml: {sorted(manifests - set(listed))}"


def test_every_object_is_well_formed_and_namespaced():
    assert OBJECTS
    for o in OBJECTS:
        where = f"{o.get('kind')} {o.get('metadata', {}).get('name')}"
        assert o.get("apiVersion") and o.get("kind") and o["metadata"].get("name"), where
        if o["kind"] not in CLUSTER_SCOPED:
            assert o["metadata"].get("namespace") in NAMESPACES, where
    assert {o["metadata"]["name"] for o in OBJECTS if o["kind"] == "Namespace"} == set(NAMESPACES)


def test_the_api_deployment_is_the_bcps():
    d = _one("Deployment", "svg-ai-api", "svg-ai-prod")
    assert d["spec"]["replicas"] == 3
    c = _container(d, "api")
    assert c["image"] == "svg-ai-api:latest"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in ports, probe
    env = {e["name"]: e for e in c["env"]}
    assert env["SVGAI_DSN"]["valueFrom"]["secretKeyRef"] == {"name": "svg-ai-db", "key": "app-dsn"}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts[env["SVGAI_MODEL_DIR"]["value"]] == "models"
    assert mounts[str(Path(env["SVGAI_CONFIG"]["value"]).parent)] == "config"
    assert mounts[env["PROMETHEUS_MULTIPROC_DIR"]["value"]] == "metrics"
    volumes = {v["name"]: v for v in d["spec"]["template"]["spec"]["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"]["claimName"] == "svg-ai-models"
    assert volumes["config"]["configMap"]["name"] == "svg-ai-config"
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert d["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = _one("Service", "svg-ai-api", "svg-ai-prod")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in ports


def test_volumes_for_models_and_backups():
    for name in ("svg-ai-models", "svg-ai-backups"):
        pvc = _one("PersistentVolumeClaim", name, "svg-ai-prod")
        assert "ReadWriteMany" in pvc["spec"]["accessModes"]
    primary = _one("StatefulSet", "svg-ai-postgres-primary", "svg-ai-prod")
    claims = [v.get("persistentVolumeClaim", {}).get("claimName") for v in primary["spec"]["template"]["spec"]["volumes"]]
    assert "svg-ai-backups" in claims  # the WAL archive


def test_the_app_config_matches_its_approved_checksum(tmp_path):
    from svgai.config import verify_config

    data = _one("ConfigMap", "svg-ai-config", "svg-ai-prod")["data"]
    (tmp_path / "svgai.json").write_text(data["svgai.json"])
    (tmp_path / "svgai.json.sha256").write_text(data["svgai.json.sha256"])
    assert verify_config(tmp_path / "svgai.json") == (True, "config ok")


def test_postgres_primary_and_standby():
    for role in ("primary", "standby"):
        s = _one("StatefulSet", f"svg-ai-postgres-{role}", "svg-ai-prod")
        assert s["spec"]["replicas"] == 1
        assert s["spec"]["template"]["metadata"]["labels"]["svg-ai.io/role"] == role
        service = _one("Service", f"svg-ai-postgres-{role}", "svg-ai-prod")
        assert service["spec"]["selector"].items() <= s["spec"]["template"]["metadata"]["labels"].items()
        assert _one("Service", s["spec"]["serviceName"], "svg-ai-prod")["spec"]["clusterIP"] == "None"


def _prometheus_files() -> dict:
    return _one("ConfigMap", "prometheus-config", "monitoring")["data"]


def _alerts(rules_text: str) -> dict:
    return {r["alert"]: (r["expr"], r["for"], r.get("labels")) for g in yaml.safe_load(rules_text)["groups"]
            for r in g["rules"]}


def test_prometheus_rules_are_the_embedded_stacks():
    mine, theirs = _alerts(_prometheus_files()["rules.yml"]), _alerts(RULES)
    assert set(mine) == set(theirs)
    for alert in theirs:
        assert mine[alert] == theirs[alert], alert
    assert [g["interval"] for g in yaml.safe_load(_prometheus_files()["rules.yml"])["groups"]] == \
        [g["interval"] for g in yaml.safe_load(RULES)["groups"]]


def test_prometheus_scrapes_the_api_under_the_job_the_alerts_and_probes_use():
    config = yaml.safe_load(_prometheus_files()["prometheus.yml"])
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    service = jobs["svg-ai-api"]  # SvgAiApiDown, probes.monitoring.targets_scraped, scrape_gap
    assert service["static_configs"][0]["targets"] == ["svg-ai-api.svg-ai-prod.svc:80"]
    pods = jobs["svg-ai-api-pods"]
    assert pods["kubernetes_sd_configs"][0]["namespaces"]["names"] == ["svg-ai-prod"]
    d = _one("Deployment", "prometheus", "monitoring")
    mount = next(m["mountPath"] for m in _container(d)["volumeMounts"] if m["name"] == "config")
    assert all(Path(f).parent == Path(mount) for f in config["rule_files"])
    assert d["spec"]["strategy"]["type"] == "Recreate"
    assert d["spec"]["template"]["spec"]["serviceAccountName"] == "prometheus"


def test_the_example_target_names_what_the_manifests_create():
    assert TARGET["kind"] == "kubernetes" and k8s_probes.is_kubernetes_target(DEPLOY / "target.example.json")
    api = _one("Deployment", TARGET["api_deployment"], TARGET["namespace"])
    assert _selects(TARGET["api_label_selector"], api["spec"]["template"]["metadata"]["labels"])
    assert TARGET["api_replicas"] == api["spec"]["replicas"]
    prom = _one("Deployment", TARGET["prometheus_deployment"], TARGET["monitoring_namespace"])
    assert _selects(TARGET["prometheus_label_selector"], prom["spec"]["template"]["metadata"]["labels"])
    for role in ("primary", "standby"):
        s = _one("StatefulSet", TARGET["database_statefulsets"][role], TARGET["database_namespace"])
        assert _selects(TARGET["database_pod_selectors"][role], s["spec"]["template"]["metadata"]["labels"])
        other = "standby" if role == "primary" else "primary"
        assert not _selects(TARGET["database_pod_selectors"][role],
                            _one("StatefulSet", TARGET["database_statefulsets"][other])["spec"]["template"]["metadata"]["labels"])
    assert "svg-ai-api.svg-ai-prod" in TARGET["api_url"] and "prometheus.monitoring" in TARGET["prometheus_url"]
    for dsn in ("app_dsn", "admin_dsn"):
        assert "password" not in TARGET[dsn] and "target_session_attrs=read-write" in TARGET[dsn]
    assert "user=postgres" in TARGET["admin_dsn"] and "user=svgai" in TARGET["app_dsn"]


def test_the_gameday_role_allows_what_the_faults_do():
    for ns in NAMESPACES:
        rules = _one("Role", "gameday", ns)["rules"]
        granted = {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
        assert {("", "pods", "list"), ("", "pods", "delete"), ("apps", "deployments", "patch"),
                ("apps", "deployments/scale", "patch")} <= granted, ns
    assert ("apps", "statefulsets/scale", "patch") in {
        (g, r, v) for rule in _one("Role", "gameday", "svg-ai-prod")["rules"]
        for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


# ---------------------------------------------------------------------------------------------
# Experiments and their objectives

POSITIVE = sorted(EXPERIMENTS.glob("*.yaml"))
NEGATIVES = sorted(NEGATIVE.glob("*.yaml"))
ALL = POSITIVE + NEGATIVES


def _id(path: Path) -> str:
    return str(path.relative_to(EXPERIMENTS.parent))


@pytest.fixture(scope="module")
def bcp(tmp_path_factory) -> objectives.Objectives:
    """bcp.yaml with the Kubernetes scenarios merged in, validated by the real loader."""
    data = yaml.safe_load((ROOT / "bcp.yaml").read_text())
    fragment = yaml.safe_load((DEPLOY / "bcp-kubernetes.yaml").read_text())
    assert set(fragment) == {"scenarios"}
    for name, spec in fragment["scenarios"].items():
        assert name.startswith("k8s-")
        assert data["scenarios"].get(name, spec) == spec, f"bcp.yaml has a different {name}"
    data["scenarios"].update(fragment["scenarios"])
    path = tmp_path_factory.mktemp("bcp") / "bcp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return objectives.load(str(path))


def _load(path: Path) -> dict:
    from chaoslib.loader import load_experiment
    return load_experiment(str(path), verify_tls=False)


def _ext(experiment: dict) -> dict:
    return next(x for x in experiment.get("extensions") or [] if x.get("name") == "bcp")


def _tagged(experiment: dict, tag: str) -> list[dict]:
    return [a for a in experiment.get("method") or [] if tag in (a.get("tags") or [])]


def test_there_is_a_kubernetes_experiment_with_a_twin_per_scenario():
    assert {p.stem for p in POSITIVE} == {"api-crash", "api-replica-crash", "database-failure", "monitoring-failure"}
    assert {p.name for p in NEGATIVES} == {p.name for p in POSITIVE}


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_chaos_toolkit_accepts_it_and_harness_control_measures_it(path, bcp):
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.log import configure_logger

    configure_logger()  # chaosk8s-style extensions import logzero; configure before validating
    experiment = _load(path)
    ensure_experiment_is_valid(experiment)
    assert any(c.get("provider", {}).get("module") == "harness.control" for c in experiment.get("controls") or [])
    resolved = objectives.for_experiment(bcp, experiment)
    assert resolved["scenario"] == f"k8s-{path.stem}"
    assert checks.unknown_names(resolved) == []
    assert not set(resolved["integrity_checks"]) & LOCAL_FILE_CHECKS, "needs files of the harness's machine"
    assert not set(resolved["critical_functions"]) & LOCAL_FILE_CHECKS, "needs files of the harness's machine"
    assert _tagged(experiment, "fault"), "no method activity tagged 'fault'"
    assert "kubernetes" in experiment.get("tags", [])


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_it_calls_kubernetes_faults_that_exist_with_arguments_they_take(path):
    experiment = _load(path)
    activities = [*(experiment.get("steady-state-hypothesis") or {}).get("probes", []),
                  *experiment.get("method", []), *experiment.get("rollbacks", [])]
    for a in activities:
        provider = a["provider"]
        assert provider["module"] not in ("harness.faults.process", "harness.recovery.coldstart"), \
            f"{a['name']}: a local-stack module in a Kubernetes experiment"
        module = {"harness.faults.kubernetes": k8s, "probes.kubernetes": k8s_probes}.get(provider["module"])
        if module is None:
            continue
        assert provider["func"] in module.__all__, a["name"]
        params = inspect.signature(getattr(module, provider["func"])).parameters
        for arg in provider.get("arguments") or {}:
            assert arg in params, f"{a['name']}: {provider['func']} takes no argument {arg!r}"


@pytest.mark.parametrize("path", POSITIVE, ids=_id)
def test_a_positive_run_is_not_a_negative_control(path):
    assert not _ext(_load(path)).get("negative_control")


@pytest.mark.parametrize("path", NEGATIVES, ids=_id)
def test_negative_twin_disables_restart_by_scaling_to_zero_and_scales_back(path):
    experiment = _load(path)
    ext = _ext(experiment)
    assert ext.get("negative_control") is True
    assert _ext(_load(EXPERIMENTS / path.name))["scenario"] == ext["scenario"]
    assert (ext.get("objectives") or {}).get("timeout_s", 999) <= 30
    assert not _tagged(experiment, "recovery"), "a negative control runs no recovery"
    setup = _tagged(experiment, "setup")
    assert [a["provider"]["func"] for a in setup] == ["scale_deployment"]
    assert setup[0]["provider"]["arguments"]["replicas"] == 0
    component = setup[0]["provider"]["arguments"]["component"]
    method = experiment["method"]
    assert method.index(setup[0]) < method.index(_tagged(experiment, "fault")[0]), "scale to 0 first"
    restores = [a for a in experiment.get("rollbacks") or [] if a["provider"]["func"] == "restore_scale"]
    assert [a["provider"]["arguments"]["component"] for a in restores] == [component]
    waits = [a for a in experiment["rollbacks"] if a["provider"]["func"] == "wait_rollout_ready"]
    assert component in [a["provider"]["arguments"]["component"] for a in waits]
