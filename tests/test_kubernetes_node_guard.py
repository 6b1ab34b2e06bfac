"""The harness's guard around chaosk8s's node drain (harness.faults.kubernetes.guard_cordon and
clear_cordon_guard), against the HTTP fake Kubernetes API (tests/fake_kube_api.py): the official
client talks to it through a kubeconfig, nothing is patched. A run that dies between the drain
and its rollbacks must leave no node cordoned; a node an operator cordoned stays cordoned."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from chaoslib.exceptions import ActivityFailed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_kube_api import svg_ai_cluster  # noqa: E402

from harness import faults  # noqa: E402
from harness.faults import kubernetes as k8s  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SELECTOR = "svg-ai.io/gameday-node-failure=true"


@pytest.fixture
def cluster(tmp_path):
    manifests = [d for d in yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "api.yaml").read_text()) if d]
    fake = svg_ai_cluster(manifests, failing_node_label={"svg-ai.io/gameday-node-failure": "true"})
    yield fake
    faults.undo_all()
    fake.stop()


@pytest.fixture
def target(cluster, tmp_path) -> str:
    (tmp_path / "kubeconfig").write_text(cluster.kubeconfig())
    t = json.loads((ROOT / "deploy" / "kubernetes" / "target.example.json").read_text())
    t.update(kubeconfig="kubeconfig", context="fake")  # relative to the description's folder
    (tmp_path / "target.json").write_text(json.dumps(t))
    return str(tmp_path / "target.json")


def _cordon(cluster, node: str, on: bool = True) -> None:
    with cluster.lock:
        cluster.nodes[node]["spec"]["unschedulable"] = on


def _cordoned(cluster, node: str) -> bool:
    return bool(cluster.node(node)["spec"].get("unschedulable"))


def test_a_run_that_dies_after_the_drain_leaves_no_node_cordoned(cluster, target):
    record = k8s.guard_cordon(SELECTOR, target=target)
    assert record["guarded"] == ["node-1"] and record["already_cordoned"] == []
    assert f"cordon:nodes/{SELECTOR}" in faults.pending()
    _cordon(cluster, "node-1")  # what chaosk8s's drain_nodes does first
    assert faults.undo_all() == [f"cordon:nodes/{SELECTOR}"]  # the runner's safety net
    assert not _cordoned(cluster, "node-1")
    assert ("PATCH", "/api/v1/nodes/node-1") in cluster.requests


def test_a_node_cordoned_by_an_operator_before_the_game_day_stays_cordoned(cluster, target):
    _cordon(cluster, "node-1")
    record = k8s.guard_cordon(SELECTOR, target=target)
    assert record["guarded"] == [] and record["already_cordoned"] == ["node-1"]
    faults.undo_all()
    assert _cordoned(cluster, "node-1")


def test_the_guard_is_dropped_only_once_the_node_is_schedulable_again(cluster, target):
    k8s.guard_cordon(SELECTOR, target=target)
    _cordon(cluster, "node-1")
    with pytest.raises(ActivityFailed, match=r"node\(s\) node-1 matching .* still cordoned"):
        k8s.clear_cordon_guard(SELECTOR, target=target)
    assert f"cordon:nodes/{SELECTOR}" in faults.pending()  # the safety net still holds it
    _cordon(cluster, "node-1", on=False)  # what chaosk8s's uncordon_node does in the rollback
    assert k8s.clear_cordon_guard(SELECTOR, target=target)["still_cordoned"] == []
    assert faults.pending() == []


def test_no_node_with_the_label_is_named(cluster, target):
    with pytest.raises(ActivityFailed, match=r"no node matches 'svg-ai.io/gameday-node-failure=yes'.*kubectl label"):
        k8s.guard_cordon("svg-ai.io/gameday-node-failure=yes", target=target)
    assert faults.pending() == []


@pytest.mark.parametrize("selector", ["", "  ", None, 3, "a=b c=d"])
def test_a_bad_selector_is_named_before_the_cluster_is_asked(cluster, target, selector):
    with pytest.raises(ActivityFailed, match=f"label_selector must be a node label selector.*got {selector!r}"):
        k8s.guard_cordon(selector, target=target)
    assert cluster.requests == []
