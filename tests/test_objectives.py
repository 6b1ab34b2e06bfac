"""bcp.yaml and harness.run.objectives: validation messages, resolution, the tightening rule."""
import textwrap
from pathlib import Path

import pytest

from harness.run import objectives as obj
from harness.run.objectives import ObjectivesError

BCP_YAML = Path(__file__).resolve().parent.parent / "bcp.yaml"

SCENARIOS = {"database-failure", "database-corruption", "database-logical-corruption", "database-failover",
             "api-replica-crash", "api-crash", "api-hang", "model-corruption", "config-drift", "storage-failure",
             "monitoring-failure", "full-stack", "archive-stopped",
             # the Kubernetes target's twins (experiments/kubernetes)
             "k8s-api-replica-crash", "k8s-api-crash", "k8s-database-failure", "k8s-monitoring-failure",
             "k8s-node-failure", "k8s-api-rollout-restart",
             # the container target's own faults (experiments/containers)
             "network-partition", "network-latency",
             # the embedded stack's patroni tier (experiments/ha)
             "database-node-lost", "database-primary-frozen", "database-switchover",
             "database-node-lost-synchronous", "consensus-lost"}

MINIMAL = """\
defaults:
  rto_s: 900
  rpo_s: 300
  stability_s: 5
  timeout_s: 180
  probe: api
  max_lost_writes: null
  critical_functions: [ready, optimize, history]
  integrity_checks: [amcheck, models, config]
  detection: null
scenarios:
  database-failure:
    description: kill the primary
    bcp_section: "1. Database Recovery"
"""


def write(tmp_path, text, name="bcp.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def load_text(tmp_path, text):
    return obj.load(str(write(tmp_path, text)))


@pytest.fixture(scope="module")
def bcp():
    return obj.load(str(BCP_YAML))


# -- the project's bcp.yaml -------------------------------------------------------------------

def test_project_bcp_yaml_has_every_scenario(bcp):
    assert set(bcp.scenarios) == SCENARIOS
    assert bcp.defaults == {"rto_s": 900, "rpo_s": 300, "stability_s": 5, "timeout_s": 180, "probe": "api",
                            "max_lost_writes": None, "critical_functions": ["ready", "optimize", "history"],
                            "integrity_checks": ["amcheck", "models", "config"], "detection": None}
    for sid in SCENARIOS:
        r = obj.resolve(bcp, sid)
        assert r["scenario"] == sid and r["description"] and r["bcp_section"]
        assert r["recovery"] in ("manual", "automatic"), f"{sid}: say how it recovers"


def test_project_scenario_overrides(bcp):
    r = lambda sid: obj.resolve(bcp, sid)  # noqa: E731
    assert r("database-failure")["detection"] == {"alert": "SvgAiDatabaseDown", "max_latency_s": 30, "min_outage_s": 5}
    assert r("database-failure")["max_lost_writes"] == 0
    assert r("database-corruption")["max_lost_writes"] == 0
    assert r("database-logical-corruption")["max_lost_writes"] is None
    assert r("api-replica-crash")["detection"] is None and r("api-replica-crash")["max_lost_writes"] == 0
    assert r("api-crash")["detection"] == {"alert": "SvgAiApiDown", "max_latency_s": 30, "min_outage_s": 5}
    assert "golden_predictions" in r("model-corruption")["critical_functions"]
    assert "models" in r("model-corruption")["integrity_checks"]
    assert "config" in r("config-drift")["integrity_checks"]
    mon = r("monitoring-failure")
    assert mon["probe"] == "prometheus"
    assert mon["critical_functions"] == ["prometheus_ready", "targets_scraped"]
    assert mon["rpo_s"] == 300
    assert r("full-stack")["timeout_s"] == 300
    assert r("api-hang")["rto_s"] == 900


def test_resolve_does_not_share_lists_with_the_loaded_file(bcp):
    obj.resolve(bcp, "api-crash")["critical_functions"].append("mutated")
    assert "mutated" not in obj.resolve(bcp, "api-crash")["critical_functions"]


# -- validation messages ----------------------------------------------------------------------

def test_bad_seconds_names_file_field_path_and_value(tmp_path):
    p = write(tmp_path, MINIMAL + "    rto_s: fast\n")
    with pytest.raises(ObjectivesError) as e:
        obj.load(str(p))
    assert str(e.value) == (f"{p}: scenarios.database-failure.rto_s must be a positive number of seconds, "
                            f"got 'fast'")


@pytest.mark.parametrize("extra, path, words", [
    ("    rto: 60\n", "scenarios.database-failure.rto", "is not a known field"),
    ("    rpo_s: -1\n", "scenarios.database-failure.rpo_s", "positive number of seconds, got -1"),
    ("    stability_s: 0\n", "scenarios.database-failure.stability_s", "got 0"),
    ("    timeout_s: true\n", "scenarios.database-failure.timeout_s", "got True"),
    ("    max_lost_writes: -2\n", "scenarios.database-failure.max_lost_writes", "got -2"),
    ("    max_lost_writes: 1.5\n", "scenarios.database-failure.max_lost_writes", "got 1.5"),
    ("    critical_functions: ready\n", "scenarios.database-failure.critical_functions", "list of names"),
    ("    critical_functions: [ready, '']\n", "scenarios.database-failure.critical_functions[1]", "non-empty"),
    ("    integrity_checks: [models, models]\n", "scenarios.database-failure.integrity_checks[1]", "repeats"),
    ("    detection: {alert: SvgAiDatabaseDown}\n", "scenarios.database-failure.detection.max_latency_s",
     "is required"),
    ("    detection: {alert: X, max_latency_s: 30, for: 5}\n", "scenarios.database-failure.detection.for",
     "is not a known field"),
    ("    detection: {alert: X, max_latency_s: soon}\n", "scenarios.database-failure.detection.max_latency_s",
     "got 'soon'"),
    ("    probe: ''\n", "scenarios.database-failure.probe", "non-empty name"),
    ("    recovery: sometimes\n", "scenarios.database-failure.recovery", "one of manual, automatic"),
    ("    integrity_checks: []\n", "scenarios.database-failure.integrity_checks", "at least one"),
    ("  Bad_Id:\n    description: x\n    bcp_section: y\n", "scenarios.Bad_Id", "not a valid scenario id"),
    ("  other:\n    description: x\n", "scenarios.other.bcp_section", "is required"),
    ("  other: 3\n", "scenarios.other", "must be a mapping"),
])
def test_validation_names_the_field_path(tmp_path, extra, path, words):
    p = write(tmp_path, MINIMAL + extra)
    with pytest.raises(ObjectivesError) as e:
        obj.load(str(p))
    msg = str(e.value)
    assert msg.startswith(f"{p}: {path} ")
    assert words in msg
    assert "\n" not in msg


def test_unknown_key_in_defaults(tmp_path):
    with pytest.raises(ObjectivesError, match=r"defaults\.rto_seconds is not a known field"):
        load_text(tmp_path, MINIMAL.replace("  rto_s: 900", "  rto_seconds: 900"))


def test_missing_default(tmp_path):
    with pytest.raises(ObjectivesError, match=r"bcp.yaml: defaults\.rpo_s is required"):
        load_text(tmp_path, MINIMAL.replace("  rpo_s: 300\n", ""))


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(ObjectivesError, match=r"bcp.yaml: scenario is not a known field"):
        load_text(tmp_path, MINIMAL + "scenario: {}\n")


def test_duplicate_key_is_rejected(tmp_path):
    with pytest.raises(ObjectivesError, match=r"not valid YAML at line \d+.*duplicate key 'rto_s'"):
        load_text(tmp_path, MINIMAL + "    rto_s: 60\n    rto_s: 6000\n")


def test_invalid_yaml(tmp_path):
    with pytest.raises(ObjectivesError, match=r"bcp.yaml: not valid YAML at line"):
        load_text(tmp_path, "defaults: [\n")


def test_empty_file(tmp_path):
    with pytest.raises(ObjectivesError, match="empty file"):
        load_text(tmp_path, "")


def test_missing_file(tmp_path):
    with pytest.raises(ObjectivesError, match=r"nope\.yaml: file not found"):
        obj.load(str(tmp_path / "nope.yaml"))


def test_unknown_scenario_names_the_known_ones(bcp):
    with pytest.raises(ObjectivesError) as e:
        obj.resolve(bcp, "db-fail")
    msg = str(e.value)
    assert "unknown scenario 'db-fail'" in msg
    assert "database-failure" in msg and "full-stack" in msg


# -- experiment overrides ---------------------------------------------------------------------

def test_overrides_may_tighten(bcp):
    r = obj.resolve(bcp, "database-failover", {"rto_s": 60, "rpo_s": 10, "max_lost_writes": 3})
    assert (r["rto_s"], r["rpo_s"], r["max_lost_writes"]) == (60, 10, 3)
    assert obj.resolve(bcp, "database-failure", {"rto_s": 900})["rto_s"] == 900  # equal is not looser


@pytest.mark.parametrize("scenario, overrides, field", [
    ("database-failure", {"rto_s": 1200}, "rto_s"),
    ("database-failure", {"rpo_s": 301}, "rpo_s"),
    ("database-failure", {"max_lost_writes": 5}, "max_lost_writes"),
    ("database-failure", {"max_lost_writes": None}, "max_lost_writes"),
])
def test_overrides_may_not_loosen(bcp, scenario, overrides, field):
    with pytest.raises(ObjectivesError) as e:
        obj.resolve(bcp, scenario, overrides, source="experiments/local/db-kill.yaml")
    msg = str(e.value)
    assert msg.startswith(f"experiments/local/db-kill.yaml: extensions.bcp.objectives.{field} may only tighten")
    assert repr(overrides[field]) in msg


def test_overrides_set_stability_and_timeout_and_add_checks(bcp):
    r = obj.resolve(bcp, "api-crash", {"stability_s": 10, "timeout_s": 60, "critical_functions": ["wal_archiving", "ready"],
                                      "integrity_checks": ["ledger"]})
    assert r["stability_s"] == 10 and r["timeout_s"] == 60
    assert r["critical_functions"] == ["ready", "optimize", "history", "wal_archiving"]
    assert r["integrity_checks"] == ["amcheck", "models", "config", "ledger"]


@pytest.mark.parametrize("overrides, words", [
    ({"timeout_s": -5}, "extensions.bcp.objectives.timeout_s must be a positive number of seconds, got -5"),
    ({"rto_s": "fast"}, "extensions.bcp.objectives.rto_s must be a positive number of seconds, got 'fast'"),
    ({"probe": "prometheus"}, "extensions.bcp.objectives.probe is not an objective an experiment may override"),
    ({"critical_functions": "ready"}, "extensions.bcp.objectives.critical_functions must be a list of names"),
])
def test_bad_overrides(bcp, overrides, words):
    with pytest.raises(ObjectivesError, match=words.replace(".", r"\.").replace("(", r"\(")):
        obj.resolve(bcp, "api-crash", overrides)


# -- the experiment's bcp extension -----------------------------------------------------------

def test_from_extension():
    exp = {"title": "Kill the primary", "extensions": [{"name": "other"},
                                                       {"name": "bcp", "scenario": "database-failure",
                                                        "objectives": {"rto_s": 60}}]}
    assert obj.from_extension(exp) == ("database-failure", {"rto_s": 60})
    assert obj.from_extension({"title": "t", "extensions": [{"name": "bcp", "scenario": "api-hang"}]}) == ("api-hang", {})


@pytest.mark.parametrize("experiment, words", [
    ({"title": "Kill the primary"}, "experiment 'Kill the primary': no 'bcp' extension"),
    ({"title": "T", "extensions": [{"name": "bcp"}]}, "experiment 'T': extensions.bcp.scenario must name"),
    ({"title": "T", "extensions": [{"name": "bcp", "scenario": "x", "objectives": [1]}]},
     "extensions.bcp.objectives must be a mapping"),
    ({"title": "T", "extensions": [{"name": "bcp", "scenario": "x", "objective": {}}]},
     "extensions.bcp.objective is not a known field"),
    ({"title": "T", "extensions": [{"name": "bcp", "scenario": "x"}, {"name": "bcp", "scenario": "y"}]},
     "2 'bcp' extensions"),
    ({"extensions": []}, "experiment (untitled): no 'bcp' extension"),
])
def test_from_extension_errors(experiment, words):
    with pytest.raises(ObjectivesError) as e:
        obj.from_extension(experiment)
    assert words in str(e.value)


def test_for_experiment(bcp):
    exp = {"title": "Crash all", "extensions": [{"name": "bcp", "scenario": "api-crash",
                                                 "objectives": {"rto_s": 30}}]}
    r = obj.for_experiment(bcp, exp)
    assert r["scenario"] == "api-crash" and r["rto_s"] == 30
    exp["extensions"][0]["objectives"] = {"rto_s": 3600}
    with pytest.raises(ObjectivesError, match="experiment 'Crash all': extensions.bcp.objectives.rto_s may only tighten"):
        obj.for_experiment(bcp, exp)


def test_resolved_objectives_drive_the_verdict(bcp):
    # The contract between this module and harness.checkers.verdict.
    from harness.checkers import verdict
    v = verdict([], obj.resolve(bcp, "monitoring-failure"))
    assert v["scenario"] == "monitoring-failure"
    assert v["objectives"]["critical_functions"] == ["prometheus_ready", "targets_scraped"]
    assert v["status"] == "error"


def test_an_experiment_may_not_shorten_the_stability_window(bcp):
    # A shorter window would call a flapping service recovered: only a longer one is a tightening.
    with pytest.raises(obj.ObjectivesError, match="stability_s may only tighten"):
        obj.resolve(bcp, "api-crash", {"stability_s": 2})
    assert obj.resolve(bcp, "api-crash", {"stability_s": 8})["stability_s"] == 8


def test_expect_failure_names_criteria_of_a_negative_control(bcp):
    exp = {"title": "t", "extensions": [{"name": "bcp", "scenario": "api-crash", "negative_control": True,
                                         "expect_failure": ["rto", "detection"]}]}
    assert obj.expected_failures(exp, obj.for_experiment(bcp, exp)) == ["rto", "detection"]
    bad = {"title": "t", "extensions": [{"name": "bcp", "scenario": "api-crash", "negative_control": True,
                                         "expect_failure": ["speed"]}]}
    with pytest.raises(obj.ObjectivesError, match=r"expect_failure\[0\] is not a criterion"):
        obj.expected_failures(bad, obj.for_experiment(bcp, bad))
    positive = {"title": "t", "extensions": [{"name": "bcp", "scenario": "api-crash", "expect_failure": ["rto"]}]}
    with pytest.raises(obj.ObjectivesError, match="is for negative controls"):
        obj.expected_failures(positive, obj.for_experiment(bcp, positive))
