"""Every experiment is a valid Chaos Toolkit experiment that measures a BCP scenario, and every
local scenario has a negative twin that is marked as one. Fast: nothing is run."""
from __future__ import annotations

from pathlib import Path

import pytest
from chaoslib.experiment import ensure_experiment_is_valid
from chaoslib.loader import load_experiment

from harness.run import checks, objectives

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / "experiments" / "local"
NEGATIVE = ROOT / "experiments" / "negative"
HA = ROOT / "experiments" / "ha"  # the patroni tier's scenarios, each with its twin in ha/negative
BCP = objectives.load(str(ROOT / "bcp.yaml"))
SCENARIOS = sorted(LOCAL.glob("*.yaml")) + sorted(HA.glob("*.yaml"))
TWINS = sorted(NEGATIVE.glob("*.yaml")) + sorted((HA / "negative").glob("*.yaml"))
FILES = SCENARIOS + TWINS
NEGATIVE_TIMEOUT_MAX_S = 30  # a negative control is quick: it only has to show that it fails


def _id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def _load(path: Path) -> dict:
    return load_experiment(str(path), verify_tls=False)


def _bcp(experiment: dict) -> dict:
    return next(x for x in experiment.get("extensions") or [] if x.get("name") == "bcp")


def _activities(experiment: dict, tag: str) -> list[dict]:
    return [a for a in experiment.get("method") or [] if tag in (a.get("tags") or [])]


def test_there_are_experiments():
    assert FILES, "no experiments found"


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_chaos_toolkit_accepts_it(path):
    experiment = _load(path)
    ensure_experiment_is_valid(experiment)  # raises InvalidExperiment with the reason


@pytest.mark.parametrize("path", FILES, ids=_id)
def test_it_is_measured_against_a_bcp_scenario(path):
    experiment = _load(path)
    assert any(c.get("provider", {}).get("module") == "harness.run.control" for c in experiment.get("controls") or []), \
        f"{_id(path)}: no harness.run.control, nothing would be measured"
    resolved = objectives.for_experiment(BCP, experiment)  # raises ObjectivesError naming the problem
    assert resolved["scenario"] in BCP.scenarios
    assert checks.unknown_names(resolved) == []
    # A negative control beyond the twins (named for what it breaks) measures an existing scenario.
    extra_control = path.parent.name == "negative" and not (path.parent.parent / _positive_dir(path) / path.name).is_file()
    assert path.stem == resolved["scenario"] or extra_control, \
        f"{_id(path)} is named after a different scenario than it measures"
    faults = _activities(experiment, "fault")
    assert faults, f"{_id(path)}: no method activity tagged 'fault'"


def _positive_dir(twin: Path) -> str:
    """Where a twin's positive experiment lives, relative to the twin's parent's parent."""
    return "local" if twin.parent == NEGATIVE else "."


@pytest.mark.parametrize("path", SCENARIOS, ids=_id)
def test_every_local_scenario_has_a_negative_twin(path):
    twin = (NEGATIVE if path.parent == LOCAL else path.parent / "negative") / path.name
    assert twin.is_file(), f"{_id(path)} has no negative twin experiments/negative/{path.name}"
    assert _bcp(_load(twin))["scenario"] == _bcp(_load(path))["scenario"]
    assert not _bcp(_load(path)).get("negative_control"), f"{_id(path)} is marked as a negative control"


@pytest.mark.parametrize("path", TWINS, ids=_id)
def test_negative_control_is_marked_quick_and_names_what_must_fail(path):
    experiment = _load(path)
    ext = _bcp(experiment)
    assert ext.get("negative_control") is True, f"{_id(path)}: extensions.bcp.negative_control must be true"
    assert ext.get("expect_failure"), f"{_id(path)}: name the criteria that must fail (expect_failure)"
    timeout = (ext.get("objectives") or {}).get("timeout_s")
    assert timeout is not None and timeout <= NEGATIVE_TIMEOUT_MAX_S, f"{_id(path)}: set a short timeout_s"
    if (path.parent.parent / _positive_dir(path) / path.name).is_file():  # the twin of a scenario: recovery disabled
        assert not _activities(experiment, "recovery"), f"{_id(path)}: a twin runs no recovery"
        assert experiment.get("rollbacks"), f"{_id(path)}: its rollbacks must repair the stack for the next run"
    else:  # a control of its own (a stale restore, a failed runbook step): it says which criterion it proves
        assert path.stem not in BCP.scenarios, f"{_id(path)}: a scenario's negative control is named after it"


def test_every_bcp_scenario_has_an_experiment():
    covered = ({p.stem for p in SCENARIOS}
               | {_bcp(_load(p))["scenario"] for p in (ROOT / "experiments" / "kubernetes").glob("*.yaml")}
               | {p.stem for p in (ROOT / "experiments" / "containers").glob("*.yaml")})
    assert set(BCP.scenarios) <= covered, f"scenarios without an experiment: {sorted(set(BCP.scenarios) - covered)}"


POSITIVE = SCENARIOS + sorted((ROOT / "experiments" / "containers").glob("*.yaml")) \
    + sorted((ROOT / "experiments" / "kubernetes").glob("*.yaml"))


@pytest.mark.parametrize("path", POSITIVE, ids=_id)
def test_it_runs_the_recovery_its_scenario_prescribes(path):
    """bcp.yaml says each scenario's recovery is manual (a procedure the experiment runs, tagged
    recovery) or automatic: the experiment must agree, or its runs prove a different plan."""
    experiment = _load(path)
    kind = BCP.scenarios[_bcp(experiment)["scenario"]]["recovery"]
    tagged = [a["name"] for a in _activities(experiment, "recovery")]
    if kind == "manual":
        assert tagged, f"{path.name}: its scenario's recovery is manual, and no action is tagged recovery"


def test_the_patroni_tiers_suite_holds_every_bcp_and_ha_scenario_with_the_cold_start_last():
    from harness.run import runner
    suite = [p.stem for p in runner.discover("patroni")]
    assert sorted(suite) == sorted(p.stem for p in SCENARIOS)
    assert suite[-1] == "full-stack"  # the cold start last: it is followed by nothing it may have broken
    assert [p.stem for p in runner.discover("plain")] == [p.stem for p in runner.discover(None)]
    assert not {p.parent for p in runner.discover("plain")} & {HA}  # the HA faults refuse the plain tier


def test_a_new_home_gets_the_patroni_tier_and_an_old_home_keeps_its_own(tmp_path):
    from harness.targets.embedded import stack
    from harness.targets.embedded.layout import Layout
    layout = Layout(tmp_path / "new", 15400)
    assert stack._check_tier(layout, None) == "patroni"
    assert stack._check_tier(layout, "plain") == "plain"
    old = tmp_path / "old"
    old.mkdir()
    (old / ".gameday-home").write_text('{"port_base": 15400}\n')  # no db: a plain home set up before
    with pytest.raises(stack.StackError, match="runs the plain database tier, not patroni"):
        stack._check_tier(Layout(old, 15400), "patroni")
    assert stack._check_tier(Layout(old, 15400), None) == "plain"
