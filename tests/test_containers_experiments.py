"""The container target's own experiments (experiments/containers/): valid for Chaos Toolkit,
measured against their BCP scenario, each with a negative twin that names the criterion it must
fail. Fast: nothing is run (tests/test_containers.py runs them for real)."""
from pathlib import Path

import pytest
import yaml
from chaoslib.experiment import ensure_experiment_is_valid

from harness.run import checks, objectives

ROOT = Path(__file__).resolve().parent.parent
CONTAINERS = ROOT / "experiments" / "containers"
NEGATIVE = CONTAINERS / "negative"
BCP = objectives.load(str(ROOT / "bcp.yaml"))
FILES = sorted(CONTAINERS.glob("*.yaml")) + sorted(NEGATIVE.glob("*.yaml"))


def _bcp(experiment: dict) -> dict:
    return next(e for e in experiment.get("extensions") or [] if e.get("name") == "bcp")


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_both_container_faults_have_an_experiment():
    assert {p.stem for p in CONTAINERS.glob("*.yaml")} == {"network-partition", "network-latency"}


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_valid_and_measured(path):
    experiment = yaml.safe_load(path.read_text())
    ensure_experiment_is_valid(experiment)
    resolved = objectives.for_experiment(BCP, experiment)
    assert resolved["scenario"] == path.stem
    assert checks.unknown_names(resolved) == []
    faults = [a for a in experiment["method"] if "fault" in (a.get("tags") or [])]
    assert [f["provider"]["module"] for f in faults] == ["harness.faults.containers"]


@pytest.mark.parametrize("path", sorted(CONTAINERS.glob("*.yaml")), ids=_id)
def test_every_container_scenario_has_a_negative_twin_naming_its_criterion(path):
    twin = yaml.safe_load((NEGATIVE / path.name).read_text())
    ext = _bcp(twin)
    assert ext["scenario"] == _bcp(yaml.safe_load(path.read_text()))["scenario"]
    assert ext.get("negative_control") is True
    assert ext.get("expect_failure"), "a twin names the criteria it must fail"
    resolved = objectives.for_experiment(BCP, twin)
    assert set(ext["expect_failure"]) <= set(objectives.criterion_names(resolved))
    assert resolved["timeout_s"] <= 30, "a negative control is quick"


def test_latency_is_judged_on_p95_and_its_twin_fails_it():
    resolved = objectives.resolve(BCP, "network-latency")
    assert resolved["max_p95_latency_s"] == 1.0
    assert "p95_latency" in objectives.criterion_names(resolved)
    twin = yaml.safe_load((NEGATIVE / "network-latency.yaml").read_text())
    assert _bcp(twin)["expect_failure"] == ["p95_latency"]
    (fault,) = [a for a in twin["method"] if "fault" in a["tags"]]
    assert fault["provider"]["arguments"]["delay_ms"] == 200 + 3000
