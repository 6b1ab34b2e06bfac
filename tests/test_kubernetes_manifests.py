"""The Kubernetes deployment and experiments, checked without a cluster: every manifest parses, is
listed in the kustomization and is valid against the official Kubernetes schemas (strict,
kubernetes-validate, offline); the API Deployment is the BCP's (3 replicas, liveness /health,
readiness /ready); PostgreSQL is a Patroni cluster on Patroni's Kubernetes DCS with the embedded
HA tier's settings and Patroni version, the least RBAC Patroni needs, the leader Service Patroni
keeps and the replica Service on its role label; Prometheus carries the embedded stack's alert
rules; the example target description names what the manifests create; the game-day CronJob runs
on the first Monday of the month only, with the least-privilege RBAC; every Kubernetes experiment
is valid Chaos Toolkit, measured by harness.run.control against a scenario of bcp.yaml +
bcp-kubernetes.yaml, calls only functions that exist (chaosk8s's and the harness's) with arguments
they take, and has its negative twin. The experiments run against a fake cluster in
test_kubernetes_chaosk8s.py."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import re
import subprocess
import tomllib
from datetime import date, timedelta
from pathlib import Path

import kubernetes_validate
import pytest

from harness import targets
import yaml

from harness.run import checks, objectives
from harness.targets.embedded.ha import config as ha_config
from harness.targets.embedded.monitoring import RULES

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
EXPERIMENTS = ROOT / "experiments" / "kubernetes"
NEGATIVE = EXPERIMENTS / "negative"
YAML_FILES = sorted(DEPLOY.glob("*.yaml"))
NOT_MANIFESTS = {"kustomization.yaml", "bcp-kubernetes.yaml"}
NAMESPACES = ("svg-ai-prod", "monitoring")
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
KUBERNETES_VERSION = "1.30.0"  # the oldest release the manifests promise (CronJob timeZone is GA since 1.27)
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


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_every_object_is_valid_against_the_official_schema_strictly(obj):
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)  # raises naming the bad field


def test_the_schema_check_is_strict():
    job = _one("CronJob", "gameday-monthly", "svg-ai-prod")
    bad = json.loads(json.dumps(job))
    bad["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []  # a typo
    with pytest.raises(kubernetes_validate.ValidationError, match="volumeMount"):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


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
    claims = [v.get("persistentVolumeClaim", {}).get("claimName")
              for v in _one("StatefulSet", "svg-ai-postgres", "svg-ai-prod")["spec"]["template"]["spec"]["volumes"]]
    assert "svg-ai-backups" in claims  # the WAL archive


def test_the_app_config_matches_its_approved_checksum(tmp_path):
    from svgai.config import verify_config

    data = _one("ConfigMap", "svg-ai-config", "svg-ai-prod")["data"]
    (tmp_path / "svgai.json").write_text(data["svgai.json"])
    (tmp_path / "svgai.json.sha256").write_text(data["svgai.json.sha256"])
    assert verify_config(tmp_path / "svgai.json") == (True, "config ok")


# ---------------------------------------------------------------------------------------------
# PostgreSQL: a Patroni cluster on Patroni's Kubernetes DCS

POSTGRES_NS = "svg-ai-prod"
DCS_SECTIONS = {"consul", "etcd", "etcd3", "exhibitor", "kubernetes", "raft", "zookeeper"}


def _postgres() -> dict:
    return _one("StatefulSet", "svg-ai-postgres", POSTGRES_NS)


def _patroni_configmap() -> dict:
    return _one("ConfigMap", "svg-ai-postgres-patroni", POSTGRES_NS)


def _patroni() -> dict:
    return yaml.safe_load(_patroni_configmap()["data"]["patroni.yml"])


def _patroni_labels() -> dict:
    """The labels Patroni lists its members by: kubernetes.labels plus scope_label=scope."""
    config = _patroni()
    return {**config["kubernetes"]["labels"], config["kubernetes"].get("scope_label", "cluster-name"): config["scope"]}


def _pinned_patroni() -> str:
    pin = next(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
               if re.match(r"patroni\b", d))
    return pin.split("==", 1)[1]


def test_patroni_settings_are_the_embedded_ha_tiers_and_obey_patronis_rule():
    dcs = _patroni()["bootstrap"]["dcs"]
    for key, value in ha_config.SETTINGS.items():  # ttl, loop_wait, retry_timeout, lag, failsafe_mode …
        assert key in dcs and dcs[key] == value and type(dcs[key]) is type(value), \
            f"bootstrap.dcs.{key} is {dcs.get(key)!r}, the embedded HA tier's is {value!r}"
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"], "a leader must retry twice before its key expires"
    ha_config.check_settings(dcs)  # and the project's own reading of Patroni's floor and rule


def test_patronis_own_schema_accepts_the_dcs_sections_and_knows_every_kubernetes_key():
    from patroni.validator import Schema, schema

    dcs_case = next(v for k, v in schema.validator.items() if getattr(k, "args", None) and "kubernetes" in k.args)
    config = _patroni()
    assert list(Schema({"kubernetes": dcs_case._schema["kubernetes"]})({"kubernetes": config["kubernetes"]})) == []
    bootstrap = next(v for k, v in schema.validator.items() if getattr(k, "name", None) == "bootstrap")
    assert list(Schema({"bootstrap": bootstrap})({"bootstrap": {"dcs": config["bootstrap"]["dcs"]}})) == []
    known = {getattr(k, "name", k) for k in dcs_case._schema["kubernetes"]}
    assert set(config["kubernetes"]) <= known, f"not Patroni settings: {sorted(set(config['kubernetes']) - known)}"


def test_one_patroni_version_for_the_image_the_manifest_and_the_embedded_tier():
    version = _pinned_patroni()
    from patroni.version import __version__ as installed
    assert installed == version, "the installed Patroni (whose source the RBAC test reads) is the pinned one"
    dockerfile = (DEPLOY / "Dockerfile.patroni").read_text()
    assert re.search(rf"^ARG PATRONI_VERSION={re.escape(version)}$", dockerfile, re.M)
    assert '"patroni[kubernetes]==${PATRONI_VERSION}"' in dockerfile and "postgresql-15" in dockerfile
    assert _container(_postgres(), "patroni")["image"] == f"svg-ai-patroni:{version}"
    assert f"svg-ai-patroni:{version}" in (DEPLOY / "README.md").read_text()


def test_the_dcs_is_kubernetes_with_endpoints_in_the_pods_own_namespace():
    config = _patroni()
    assert set(config) & DCS_SECTIONS == {"kubernetes"}, "Patroni would use the first DCS it finds"
    k8s = config["kubernetes"]
    assert k8s["use_endpoints"] is True
    assert "namespace" not in k8s and "pod_ip" not in k8s, "per pod: from the downward API"
    env = {e["name"]: e for e in _container(_postgres(), "patroni")["env"]}
    assert env["PATRONI_KUBERNETES_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["PATRONI_KUBERNETES_POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["PATRONI_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", \
        "Patroni labels the pod by its name"


def _pod_environment(workload: dict, container: str, pod_ip: str = "10.0.0.7") -> dict[str, str]:
    """The container's environment as the kubelet gives it to one pod (secrets as placeholders)."""
    meta = {"metadata.name": f"{workload['metadata']['name']}-0", "metadata.namespace": workload["metadata"]["namespace"],
            "status.podIP": pod_ip}
    out: dict[str, str] = {}
    for e in _container(workload, container)["env"]:
        if "value" in e:
            out[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: out[m[1]], e["value"])
        elif "fieldRef" in e["valueFrom"]:
            out[e["name"]] = meta[e["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            ref = e["valueFrom"]["secretKeyRef"]
            out[e["name"]] = f"<{ref['name']}/{ref['key']}>"
    return out


def test_patroni_reads_the_pods_environment_into_the_configuration_it_runs(tmp_path, monkeypatch):
    # Patroni's own loader, file + environment: a misspelt PATRONI_* variable would be ignored.
    from patroni.config import Config

    for name in [n for n in os.environ if n.startswith("PATRONI")]:
        monkeypatch.delenv(name)
    for name, value in _pod_environment(_postgres(), "patroni").items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "patroni.yml"
    path.write_text(_patroni_configmap()["data"]["patroni.yml"])
    config = Config(str(path), validator=None).local_configuration
    assert config["name"] == "svg-ai-postgres-0" and config["scope"] == "svg-ai-postgres"
    assert config["kubernetes"]["namespace"] == POSTGRES_NS and config["kubernetes"]["pod_ip"] == "10.0.0.7"
    assert config["postgresql"]["connect_address"] == "10.0.0.7:5432"
    assert config["restapi"]["connect_address"] == "10.0.0.7:8008"
    auth = config["postgresql"]["authentication"]
    assert auth["superuser"] == {"username": "postgres", "password": "<svg-ai-db/postgres-password>"}
    assert auth["replication"] == {"username": "replicator", "password": "<svg-ai-db/replication-password>"}
    assert config["restapi"]["authentication"] == {"username": "patroni", "password": "<svg-ai-db/postgres-password>"}


def _patroni_calls() -> set[tuple[str, str]]:
    """(resource, verb) of every Kubernetes API call in the installed Patroni's Kubernetes DCS,
    read from its source; with use_endpoints the "kind" it keeps is Endpoints, and what it lists
    it also watches (its object caches)."""
    source = Path(importlib.util.find_spec("patroni.dcs.kubernetes").origin).read_text()
    resources = {"kind": "endpoints", "pod": "pods", "service": "services", "endpoints": "endpoints",
                 "config_map": "configmaps"}
    verbs = {"list": ["list", "watch"], "read": ["get"], "create": ["create"], "patch": ["patch"],
             "replace": ["update"], "delete": ["delete"], "delete_collection": ["deletecollection"]}
    calls = re.findall(r"self\._api\.(\w+?)_namespaced_(\w+)\b", source)
    assert calls, "Patroni's Kubernetes DCS changed shape: read it again"
    return {(resources[kind], v) for verb, kind in calls for v in verbs[verb]}


# Calls the Role leaves out on purpose: the config Service is declared in postgres.yaml (Patroni
# tolerates the refusal to create it), and only `patronictl remove` deletes the cluster's objects.
NOT_GRANTED_TO_PATRONI = {("services", "create"), ("endpoints", "deletecollection")}


def test_patronis_role_grants_exactly_the_calls_its_kubernetes_dcs_makes_and_nothing_cluster_wide():
    role = _one("Role", "svg-ai-postgres", POSTGRES_NS)
    granted = {(r, v) for g, r, v in _granted(role["rules"])}
    assert {g for g, _, _ in _granted(role["rules"])} == {""}
    needed = _patroni_calls() - NOT_GRANTED_TO_PATRONI
    assert granted == needed, f"missing {sorted(needed - granted)}, more than needed {sorted(granted - needed)}"
    assert ("endpoints", "patch") in granted and ("pods", "patch") in granted and ("pods", "watch") in granted
    assert not {r for r, _ in granted} & {"configmaps", "services", "secrets"}, "endpoints mode needs none"
    assert _one("Service", f"{_patroni()['scope']}-config", POSTGRES_NS)  # why services/create is not needed
    binding = _one("RoleBinding", "svg-ai-postgres", POSTGRES_NS)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "svg-ai-postgres"}
    account = {"kind": "ServiceAccount", "name": "svg-ai-postgres", "namespace": POSTGRES_NS}
    assert binding["subjects"] == [account]
    assert not [o for o in OBJECTS if o["kind"] == "ClusterRoleBinding" and account in o.get("subjects", [])]
    assert _postgres()["spec"]["template"]["spec"]["serviceAccountName"] == "svg-ai-postgres"


def test_the_pods_are_the_members_patroni_lists_and_their_role_label_is_patronis_alone():
    s = _postgres()
    template, match = s["spec"]["template"]["metadata"]["labels"], s["spec"]["selector"]["matchLabels"]
    assert _patroni_labels().items() <= template.items(), "Patroni would find no member"
    assert match.items() <= template.items()
    role_label = _patroni()["kubernetes"]["role_label"]
    assert role_label not in template and role_label not in match, "Patroni changes it: not the StatefulSet's"
    assert s["spec"]["replicas"] == 2 and s["spec"]["podManagementPolicy"] == "Parallel"
    assert _one("Service", s["spec"]["serviceName"], POSTGRES_NS)["spec"]["clusterIP"] == "None"
    pdb = _one("PodDisruptionBudget", "svg-ai-postgres", POSTGRES_NS)
    assert pdb["spec"]["maxUnavailable"] == 1 and pdb["spec"]["selector"]["matchLabels"].items() <= template.items()


def test_the_leader_service_is_the_one_patroni_keeps_and_every_dsn_points_at_it():
    config = _patroni()
    leader = _one("Service", config["scope"], POSTGRES_NS)  # Patroni's leader Endpoints are named by its scope
    assert "selector" not in leader["spec"], "with a selector Kubernetes would overwrite Patroni's Endpoints"
    assert [(p["name"], p["port"]) for p in leader["spec"]["ports"]] == \
        [(p["name"], p["port"]) for p in config["kubernetes"]["ports"]], "Endpoints ports match the Service's by name"
    assert "selector" not in _one("Service", f"{config['scope']}-config", POSTGRES_NS)["spec"]
    host = f"{config['scope']}.{POSTGRES_NS}.svc.cluster.local"
    for dsn in ("app_dsn", "admin_dsn"):
        assert re.search(r"\bhost=(\S+)", TARGET[dsn])[1] == host and "port=5432 " in TARGET[dsn], dsn
    readme_dsn = re.search(r'--from-literal=app-dsn="([^"]+)"', (DEPLOY / "README.md").read_text())[1]
    assert re.search(r"\bhost=(\S+)", readme_dsn)[1] == config["scope"]
    assert "target_session_attrs=read-write" in readme_dsn


def test_the_replica_service_selects_the_role_label_patroni_writes():
    k8s = _patroni()["kubernetes"]
    replica = _one("Service", "svg-ai-postgres-replica", POSTGRES_NS)
    assert replica["spec"]["selector"] == {**_patroni_labels(), k8s["role_label"]: k8s["follower_label_value"]}
    # Patroni 4's own values (4.0 renamed the leader's from master): what it writes unless told otherwise
    assert (k8s["role_label"], k8s["leader_label_value"], k8s["follower_label_value"]) == ("role", "primary", "replica")


def test_liveness_and_readiness_ask_patronis_rest_api():
    c = _container(_postgres(), "patroni")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    rest_port = int(_patroni()["restapi"]["listen"].rsplit(":", 1)[1])
    for probe, path in (("livenessProbe", "/liveness"), ("readinessProbe", "/readiness")):
        get = c[probe]["httpGet"]
        assert get["path"] == path, probe
        assert ports.get(get["port"], get["port"]) == rest_port, f"{probe} must ask Patroni, not PostgreSQL"
    pg_port = int(_patroni()["postgresql"]["listen"].rsplit(":", 1)[1])
    assert ports["postgres"] == pg_port


def test_patroni_runs_its_mounted_configuration_and_bootstraps_the_application(tmp_path):
    pod = _postgres()["spec"]["template"]["spec"]
    c = _container(_postgres(), "patroni")
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_dir = next(mounts[n] for n, v in volumes.items()
                      if v.get("configMap", {}).get("name") == "svg-ai-postgres-patroni")
    assert c["command"] == ["patroni", f"{config_dir}/patroni.yml"]
    config = _patroni()
    script_path = config["bootstrap"]["post_bootstrap"].split()[-1]
    assert Path(script_path).parent == Path(config_dir)
    script = _patroni_configmap()["data"][Path(script_path).name]
    (tmp_path / "post-bootstrap.sh").write_text(script)
    assert subprocess.run(["bash", "-n", str(tmp_path / "post-bootstrap.sh")]).returncode == 0
    for sql in ("CREATE ROLE svgai LOGIN", "CREATE DATABASE svgai OWNER svgai", "CREATE EXTENSION IF NOT EXISTS amcheck"):
        assert sql in script, sql
    assert "SVGAI_PASSWORD" in {e["name"] for e in c["env"]}
    assert Path(config["postgresql"]["data_dir"]).parent == Path(mounts["data"]), "PGDATA below the mount (lost+found)"
    archive = config["bootstrap"]["dcs"]["postgresql"]["parameters"]["archive_command"]
    assert f"{mounts['backups']}/wal/%f" in archive
    assert volumes["backups"]["persistentVolumeClaim"]["claimName"] == "svg-ai-backups"


def test_the_database_secret_keys_used_are_those_the_readme_creates():
    readme = (DEPLOY / "README.md").read_text()
    command = readme[readme.index("create secret generic svg-ai-db"):]
    command = command[:command.index("\nkubectl apply")]
    created = set(re.findall(r"--from-literal=([a-z-]+)=", command))
    assert created == {"postgres-password", "svgai-password", "replication-password", "app-dsn"}
    used = {m for m in re.findall(r"'name': 'svg-ai-db', 'key': '([a-z-]+)'", repr(OBJECTS))}
    assert used and used <= created, f"not created by the README: {sorted(used - created)}"
    postgres_keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in _container(_postgres(), "patroni")["env"]
                     if "secretKeyRef" in e.get("valueFrom", {})}
    assert postgres_keys == {"postgres-password", "svgai-password", "replication-password"}


def _prometheus_files() -> dict:
    return _one("ConfigMap", "prometheus-config", "monitoring")["data"]


def _alerts(rules_text: str) -> dict:
    """Every alert and recording rule: name → (expression, for, labels)."""
    return {r.get("alert") or r["record"]: (r["expr"], r.get("for"), r.get("labels"))
            for g in yaml.safe_load(rules_text)["groups"] for r in g["rules"]}


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
    assert TARGET["kind"] == "kubernetes" and targets.load(DEPLOY / "target.example.json").kind == "kubernetes"
    api = _one("Deployment", TARGET["api_deployment"], TARGET["namespace"])
    assert _selects(TARGET["api_label_selector"], api["spec"]["template"]["metadata"]["labels"])
    assert TARGET["api_replicas"] == api["spec"]["replicas"]
    prom = _one("Deployment", TARGET["prometheus_deployment"], TARGET["monitoring_namespace"])
    assert _selects(TARGET["prometheus_label_selector"], prom["spec"]["template"]["metadata"]["labels"])
    # One StatefulSet of Patroni members plays both roles; a role is the label Patroni writes, so
    # each selector picks a member only once Patroni has labelled it, and never the other role.
    members = _postgres()["spec"]["template"]["metadata"]["labels"]
    roles = _patroni()["kubernetes"]
    as_labelled = {"primary": {**members, roles["role_label"]: roles["leader_label_value"]},
                   "standby": {**members, roles["role_label"]: roles["follower_label_value"]}}
    for role, other in (("primary", "standby"), ("standby", "primary")):
        assert TARGET["database_statefulsets"][role] == _postgres()["metadata"]["name"], role
        selector = TARGET["database_pod_selectors"][role]
        assert _selects(selector, as_labelled[role]), role
        assert not _selects(selector, as_labelled[other]) and not _selects(selector, members), role
    assert "svg-ai-api.svg-ai-prod" in TARGET["api_url"] and "prometheus.monitoring" in TARGET["prometheus_url"]
    for dsn in ("app_dsn", "admin_dsn"):
        assert "password" not in TARGET[dsn] and "target_session_attrs=read-write" in TARGET[dsn]
    assert "user=postgres" in TARGET["admin_dsn"] and "user=svgai" in TARGET["app_dsn"]


def _granted(rules: list[dict]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def test_the_gameday_role_allows_what_the_faults_do():
    for ns in NAMESPACES:
        granted = _granted(_one("Role", "gameday", ns)["rules"])
        assert {("", "pods", "list"), ("", "pods", "delete"), ("apps", "deployments", "patch"),
                ("apps", "deployments", "watch"),  # chaosk8s's deployment_fully_available watches
                ("apps", "deployments/scale", "patch")} <= granted, ns
        assert not {v for _, _, v in granted} & {"*", "create", "deletecollection", "escalate", "bind"}, ns
    assert {("apps", "statefulsets/scale", "patch"), ("apps", "statefulsets", "watch")} <= \
        _granted(_one("Role", "gameday", "svg-ai-prod")["rules"])


def test_node_drain_is_the_only_cluster_wide_grant_and_no_more_than_kubectl_drain_needs():
    cluster_roles = [o for o in OBJECTS if o["kind"] == "ClusterRole" and "gameday" in o["metadata"]["name"]]
    assert [o["metadata"]["name"] for o in cluster_roles] == ["gameday-node-drain"]
    assert _granted(cluster_roles[0]["rules"]) == {
        ("", "nodes", "get"), ("", "nodes", "list"), ("", "nodes", "patch"),  # select, cordon, uncordon
        ("", "pods", "get"), ("", "pods", "list"),  # the node's pods in every namespace, polled until gone
        ("", "pods/eviction", "create")}  # the drain evicts; it never deletes pods or nodes
    binding = _one("ClusterRoleBinding", "gameday-node-drain")
    assert binding["roleRef"]["name"] == "gameday-node-drain"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "gameday", "namespace": "svg-ai-prod"}]


# ---------------------------------------------------------------------------------------------
# The game day in the cluster: the monthly CronJob and the weekly backup verification

def _cron_field_matches(field: str, value: int) -> bool:
    for part in field.split(","):
        if part == "*":
            return True
        lo, _, hi = part.partition("-")
        if int(lo) <= value <= int(hi or lo):
            return True
    return False


def cron_fires_on(schedule: str, day: date) -> bool:
    """Whether a 5-field cron schedule fires on `day`, with cron's rule: when both day-of-month
    and day-of-week are restricted (neither is *), the day matches if EITHER does."""
    _, _, dom, month, dow = schedule.split()
    if not _cron_field_matches(month, day.month):
        return False
    dom_ok, dow_ok = _cron_field_matches(dom, day.day), _cron_field_matches(dow, day.isoweekday() % 7)
    return (dom_ok or dow_ok) if dom != "*" and dow != "*" else (dom_ok and dow_ok)


def test_cron_semantics_of_the_naive_first_monday_schedule_are_or():
    # The reason for the guard in the CronJob's command: "1-7 * 1" is every Monday OR days 1-7:
    # in June 2026 (June 1 a Monday) days 1-7 and the Mondays 8, 15, 22, 29.
    days = [date(2026, 6, 1) + timedelta(days=i) for i in range(30)]
    assert [d.day for d in days if cron_fires_on("0 6 1-7 * 1", d)] == [1, 2, 3, 4, 5, 6, 7, 8, 15, 22, 29]
    assert [d.day for d in days if cron_fires_on("0 6 * * 1", d)] == [1, 8, 15, 22, 29]


def _stubbed_command(tmp_path: Path) -> tuple[str, dict]:
    """The monthly job's shell command with `date` answering for $FAKE_DAY and `gameday` recording
    its arguments (exit 0) in calls.log."""
    job = _one("CronJob", "gameday-monthly", "svg-ai-prod")
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["/bin/sh", "-c"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "date").write_text('#!/bin/sh\nexec /bin/date -d "$FAKE_DAY 06:00 UTC" "$@"\n')
    (bin_dir / "gameday").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls.log\nexit "${{GAMEDAY_RC:-0}}"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **{e["name"]: e["value"] for e in container["env"] if "value" in e}}
    return container["args"][0], env


def test_the_monthly_game_day_runs_on_the_first_monday_of_each_month_only(tmp_path):
    job = _one("CronJob", "gameday-monthly", "svg-ai-prod")
    schedule = job["spec"]["schedule"]
    script, env = _stubbed_command(tmp_path)
    ran = []
    day = date(2026, 1, 1)
    while day < date(2028, 1, 1):
        if cron_fires_on(schedule, day):
            (tmp_path / "calls.log").unlink(missing_ok=True)
            proc = subprocess.run(["/bin/sh", "-c", script], env={**env, "FAKE_DAY": day.isoformat()},
                                  cwd=ROOT, capture_output=True, text=True, timeout=10)  # the image's /app
            assert proc.returncode == 0, (day, proc.stdout, proc.stderr)
            calls = (tmp_path / "calls.log").read_text().splitlines() if (tmp_path / "calls.log").exists() else []
            if calls:
                ran.append(day)
                assert calls[0].split() == ["run", "--reports-dir", "/var/lib/gameday/reports",
                                            *(str(p.relative_to(ROOT)) for p in POSITIVE)], "the positive experiments"
                quarter = f"{day.year}Q{(day.month + 2) // 3}"
                assert calls[1] == f"report quarterly --quarter {quarter} --reports-dir /var/lib/gameday/reports"
        day += timedelta(days=1)
    assert len(ran) == 24 and all(d.isoweekday() == 1 and d.day <= 7 for d in ran), ran
    assert job["spec"]["timeZone"] == "Etc/UTC" and job["spec"]["concurrencyPolicy"] == "Forbid"


def test_a_failed_game_day_fails_the_job_after_the_evidence_is_rebuilt(tmp_path):
    script, env = _stubbed_command(tmp_path)
    proc = subprocess.run(["/bin/sh", "-c", script], env={**env, "FAKE_DAY": "2026-06-01", "GAMEDAY_RC": "1"},
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 1
    assert [c.split()[0:2] for c in (tmp_path / "calls.log").read_text().splitlines()] == \
        [["run", "--reports-dir"], ["report", "quarterly"]]


def test_the_monthly_job_runs_as_gameday_with_its_reports_on_a_volume():
    job = _one("CronJob", "gameday-monthly", "svg-ai-prod")
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "gameday" and _one("ServiceAccount", "gameday", "svg-ai-prod")
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CHAOSTOOLKIT_IN_POD"] == "true" and env["GAMEDAY_TARGET"] == "/etc/gameday/target.json"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts[env["REPORTS"]]]["persistentVolumeClaim"]["claimName"] == "gameday-reports"
    assert _one("PersistentVolumeClaim", "gameday-reports", "svg-ai-prod")
    assert volumes[mounts["/etc/gameday"]]["secret"]["secretName"] == "gameday-target"
    assert job["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0


def test_the_weekly_backup_verification():
    job = _one("CronJob", "svg-ai-backup-verify", "svg-ai-prod")
    minute, hour, dom, month, dow = job["spec"]["schedule"].split()
    assert (dom, month) == ("*", "*") and dow.isdigit(), "once a week"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod
    args = pod["containers"][0]["args"][0]
    assert "gameday backup db verify" in args and "--records-dir /var/lib/gameday/reports/backup-verify" in args
    assert "pg_basebackup" in pod["initContainers"][0]["args"][0]
    target = json.loads(_one("ConfigMap", "gameday-backup-verify-target", "svg-ai-prod")["data"]["target.json"])
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    backups = volumes[mounts["/var/lib/svgai/backups"]]["persistentVolumeClaim"]["claimName"]
    assert backups == "svg-ai-backups" and target["archive_dir"].startswith("/var/lib/svgai/backups/")
    assert target["backup_dir"].startswith("/var/lib/svgai/backups/") and target["srv_dir"] in mounts
    archive = _patroni()["bootstrap"]["dcs"]["postgresql"]["parameters"]["archive_command"]
    assert target["archive_dir"] + "/%f" in archive, "verifies the archive the leader writes"
    members = _postgres()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == members["securityContext"]["runAsUser"]
    assert "-h svg-ai-postgres " in pod["initContainers"][0]["args"][0], "the base backup comes from the leader Service"
    assert target["scratch_port"] < 32768


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
    assert {p.stem for p in POSITIVE} == {"api-crash", "api-replica-crash", "database-failure", "monitoring-failure",
                                          "node-failure", "api-rollout-restart"}
    assert {p.name for p in NEGATIVES} == {p.name for p in POSITIVE}


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_chaos_toolkit_accepts_it_and_harness_control_measures_it(path, bcp):
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.log import configure_logger

    configure_logger()  # chaosk8s-style extensions import logzero; configure before validating
    experiment = _load(path)
    ensure_experiment_is_valid(experiment)
    assert any(c.get("provider", {}).get("module") == "harness.run.control" for c in experiment.get("controls") or [])
    resolved = objectives.for_experiment(bcp, experiment)
    assert resolved["scenario"] == f"k8s-{path.stem}"
    assert checks.unknown_names(resolved) == []
    assert not set(resolved["integrity_checks"]) & LOCAL_FILE_CHECKS, "needs files of the harness's machine"
    assert not set(resolved["critical_functions"]) & LOCAL_FILE_CHECKS, "needs files of the harness's machine"
    assert _tagged(experiment, "fault"), "no method activity tagged 'fault'"
    assert "kubernetes" in experiment.get("tags", [])


# What the harness still does in a Kubernetes experiment, because chaosk8s cannot (each says why
# in a "# harness:" comment next to it in the experiment file).
HARNESS_K8S = {"harness.faults.kubernetes": {"scale_deployment", "restore_scale", "guard_cordon", "clear_cordon_guard"},
               "probes.kubernetes": {"wait_rollout_ready"}, "harness.faults.monitoring": {"scrape_gap"}}


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_it_calls_functions_that_exist_with_arguments_they_take(path):
    from chaoslib.log import configure_logger

    configure_logger()  # before importing any extension (logzero)
    experiment = _load(path)
    activities = [*(experiment.get("steady-state-hypothesis") or {}).get("probes", []),
                  *experiment.get("method", []), *experiment.get("rollbacks", [])]
    for a in activities:
        provider = a["provider"]
        assert provider["module"] not in ("harness.faults.process", "harness.recovery.coldstart"), \
            f"{a['name']}: a local-stack module in a Kubernetes experiment"
        module = importlib.import_module(provider["module"])
        assert provider["func"] in getattr(module, "__all__", ()), f"{a['name']}: {provider['func']} is not public"
        params = inspect.signature(getattr(module, provider["func"])).parameters
        for arg in provider.get("arguments") or {}:
            assert arg in params, f"{a['name']}: {provider['func']} takes no argument {arg!r}"
        if provider["module"].startswith("chaosk8s."):
            assert provider.get("secrets") == ["k8s"], f"{a['name']}: chaosk8s gets its secrets (context) from k8s"
        elif provider["module"] in HARNESS_K8S:
            assert provider["func"] in HARNESS_K8S[provider["module"]], f"{a['name']}: chaosk8s does that"


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_its_configuration_names_every_variable_it_uses_and_its_defaults_match_the_manifests(path):
    experiment = _load(path)
    config = experiment.get("configuration") or {}
    used = set(re.findall(r"\$\{(\w+)\}", json.dumps(experiment)))
    assert used <= set(config), f"undefined: {sorted(used - set(config))}"
    assert (experiment.get("secrets") or {}).get("k8s") == {}
    names = {"app_ns": TARGET["namespace"], "monitoring_ns": TARGET["monitoring_namespace"],
             "api_deployment": TARGET["api_deployment"], "api_selector": TARGET["api_label_selector"],
             "prometheus_deployment": TARGET["prometheus_deployment"],
             "prometheus_selector": TARGET["prometheus_label_selector"],
             "db_statefulset": TARGET["database_statefulsets"]["primary"],
             "db_primary_selector": TARGET["database_pod_selectors"]["primary"]}
    for key, value in config.items():
        if key in names:
            assert value == names[key], f"configuration {key} {value!r} is not the target's {names[key]!r}"


@pytest.mark.parametrize("path", ALL, ids=_id)
def test_harness_code_in_it_says_why_chaosk8s_cannot_do_it(path):
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"\s*module: (\S+)", line)
        if m and m[1] in HARNESS_K8S:
            above = lines[max(0, i - 4):i]
            assert any(x.strip().startswith("# harness:") for x in above), f"{path.name}:{i + 1} {m[1]} without a why"


@pytest.mark.parametrize("path", POSITIVE, ids=_id)
def test_a_positive_run_is_not_a_negative_control(path):
    assert not _ext(_load(path)).get("negative_control")


@pytest.mark.parametrize("path", NEGATIVES, ids=_id)
def test_negative_twin_disables_restart_by_scaling_to_zero_and_scales_back(path):
    experiment = _load(path)
    ext = _ext(experiment)
    assert ext.get("negative_control") is True
    assert ext.get("expect_failure") == ["rto"], "the twin names the criterion it must fail"
    positive = _load(EXPERIMENTS / path.name)
    assert _ext(positive)["scenario"] == ext["scenario"]
    assert (ext.get("objectives") or {}).get("timeout_s", 999) <= 30
    assert not _tagged(experiment, "recovery"), "a negative control runs no recovery"
    fault, = _tagged(experiment, "fault")
    assert fault["provider"] == _tagged(positive, "fault")[0]["provider"], "the positive run's fault"
    setup = _tagged(experiment, "setup")
    assert [a["provider"]["func"] for a in setup] == ["scale_deployment"]
    assert setup[0]["provider"]["arguments"]["replicas"] == 0
    component = setup[0]["provider"]["arguments"]["component"]
    method = experiment["method"]
    # right after the fault: scaling first leaves terminating pods chaosk8s may find gone (404)
    assert method.index(setup[0]) == method.index(fault) + 1
    rollbacks = experiment.get("rollbacks") or []
    restores = [a for a in rollbacks if a["provider"]["func"] == "restore_scale"]
    assert [a["provider"]["arguments"]["component"] for a in restores] == [component]
    waits = [a for a in rollbacks if a["provider"]["func"].endswith("_fully_available")]
    assert waits and rollbacks.index(restores[0]) < rollbacks.index(waits[0]), "scale back, then wait"


def _resolved(value: str, experiment: dict) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: str(experiment["configuration"][m[1]]), value)


def test_the_database_twin_stops_every_patroni_member_so_none_can_be_promoted():
    # Under Patroni a killed leader is replaced by promoting a replica: the twin's switch must stop
    # every member of the cluster, or the service would come back and the twin would pass.
    twin, positive = _load(NEGATIVE / "database-failure.yaml"), _load(EXPERIMENTS / "database-failure.yaml")
    fault, = _tagged(twin, "fault")
    setup, = _tagged(twin, "setup")
    assert setup["provider"]["arguments"]["replicas"] == 0
    role = setup["provider"]["arguments"]["component"].split("-", 1)[1]
    scaled = _one("StatefulSet", TARGET["database_statefulsets"][role], TARGET["database_namespace"])
    roles = _patroni()["kubernetes"]
    leader = {**scaled["spec"]["template"]["metadata"]["labels"], roles["role_label"]: roles["leader_label_value"]}
    assert _selects(_resolved(fault["provider"]["arguments"]["label_selector"], twin), leader), \
        "the fault kills a pod of the StatefulSet the twin scales to 0"
    runs_members = [o["metadata"]["name"] for o in OBJECTS if o["kind"] in ("StatefulSet", "Deployment")
                    and _patroni_labels().items() <= o["spec"]["template"]["metadata"]["labels"].items()]
    assert runs_members == [scaled["metadata"]["name"]], "a member elsewhere would be promoted"
    # the positive run waits for the same members, and asks for exactly one leader after
    *_, last = positive["method"]
    assert _resolved(last["provider"]["arguments"]["name"], positive) == scaled["metadata"]["name"]
    one_primary = next(p for p in positive["steady-state-hypothesis"]["probes"] if p["name"] == "exactly-one-primary")
    assert one_primary["tolerance"] == 1
    assert _resolved(one_primary["provider"]["arguments"]["label_selector"], positive) == \
        TARGET["database_pod_selectors"]["primary"]
    assert [p["name"] for p in twin["steady-state-hypothesis"]["probes"]] == \
        [p["name"] for p in positive["steady-state-hypothesis"]["probes"]]


def test_the_production_guard_reads_chaosk8s_namespaces_from_the_configuration():
    from harness.run.guard import EVERY_NAMESPACE, describe_plan, namespaces_named, refusal

    allow = {**TARGET, "allowed_namespaces": ["svg-ai-prod", "monitoring"]}
    for path in POSITIVE:
        experiment = _load(path)
        named = namespaces_named(experiment, TARGET)
        assert not any("${" in n for n in named), f"{path.name}: unresolved {named}"
        if path.stem == "node-failure":  # a drain evicts whatever runs on the node
            assert EVERY_NAMESPACE in named and "drained node" in refusal(allow, [(path.name, experiment)], False)
        else:
            assert refusal(allow, [(path.name, experiment)], False) is None, path.name
    experiment = _load(EXPERIMENTS / "api-crash.yaml")
    experiment["configuration"]["app_ns"] = "payments"
    assert "payments" in refusal(allow, [("api-crash.yaml", experiment)], False)
    lines = describe_plan(TARGET, [("api-crash.yaml", _load(EXPERIMENTS / "api-crash.yaml"),
                                    {"scenario": "k8s-api-crash", "rto_s": 900, "rpo_s": 300, "timeout_s": 300})])
    assert any("chaosk8s.pod.actions.terminate_pods(" in line and "ns='svg-ai-prod'" in line for line in lines), lines
