"""The plan before the exercise: `gameday plan create` writes and signs it; `gameday run --plan`
runs only what it approved, and refuses anything else with one line before anything is injected
(no stack is needed to prove that: nothing is brought up); the game day's index sets the plan
beside the results."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from harness.cli import main as cli
from harness.core import signing
from harness.core.paths import PROJECT_ROOT
from harness.report.gameday import write_gameday_summary
from synthetic_runs import make_run

API_CRASH = "experiments/local/api-crash.yaml"
DB_FAILURE = "experiments/local/database-failure.yaml"
API_HANG = "experiments/local/api-hang.yaml"


def create(home: Path, *extra: str, experiments=(API_CRASH, DB_FAILURE)) -> Path:
    out = home / "plan.json"
    argv = ["plan", "create", *experiments, "--approver", "Ops Lead <ops-lead@company.com>",
            "--blast-radius", "the embedded stack in a scratch home", "--home", str(home), "--out", str(out), *extra]
    assert cli.main(argv) == 0
    return out


def refused(capsys, *argv: str) -> str:
    """Run `gameday run ...`: it must exit 2 with one line on stderr."""
    assert cli.main(["run", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.fixture
def home(tmp_path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


def nothing_happened(home: Path, reports: Path) -> None:
    """Nothing was brought up, nothing was run, no evidence was written."""
    assert not (home / "target.json").exists() and not (home / "fault-ledger").exists()
    assert not reports.exists()


def test_plan_create_writes_a_signed_plan(home, capsys):
    path = create(home)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(path) and "approved by Ops Lead <ops-lead@company.com>; signed with gameday@" in out[1]
    plan = json.loads(path.read_text())
    assert plan["kind"] == "svgai-gameday-plan" and plan["approver"] == "Ops Lead <ops-lead@company.com>"
    assert [s["scenario"] for s in plan["scenarios"]] == ["api-crash", "database-failure"]
    db = plan["scenarios"][1]
    assert db["experiment"] == DB_FAILURE and db["objectives"]["rto_s"] == 900 and db["objectives"]["rpo_s"] == 300
    assert db["faults"] == ["kill-postgres-primary"] and len(db["sha256"]) == 64
    assert plan["target"]["kind"] == "local" and plan["target"]["where"] == str(home.resolve())
    assert plan["blast_radius"]["statement"] == "the embedded stack in a scratch home"
    assert plan["blast_radius"]["components"]  # what the faults act through
    start, end = (datetime.fromisoformat(plan["window"][k].replace("Z", "+00:00")) for k in ("start", "end"))
    assert end - start == timedelta(hours=4) and plan["calibration_s"] == 3.0
    allowed = signing.AllowedSigners.read(home / signing.ALLOWED_SIGNERS_NAME)
    assert signing.check(path, allowed).principal.startswith("gameday@")


def test_what_the_plan_approves_runs(home, capsys):
    plan = create(home)
    capsys.readouterr()
    assert cli.main(["run", "--plan", str(plan), "--home", str(home), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "api-crash.yaml: scenario api-crash" in out and "database-failure.yaml: scenario database-failure" in out
    assert cli.main(["run", API_CRASH, "--plan", str(plan), "--home", str(home), "--dry-run"]) == 0


def test_an_unplanned_scenario_is_refused_and_nothing_is_injected(home, tmp_path, capsys):
    plan = create(home)
    reports = tmp_path / "reports"
    err = refused(capsys, API_CRASH, API_HANG, "--plan", str(plan), "--home", str(home), "--reports-dir", str(reports))
    assert err.endswith(f"{API_HANG} (scenario api-hang) is not in the plan; approved: {API_CRASH}, {DB_FAILURE}")
    nothing_happened(home, reports)


def test_an_experiment_edited_after_approval_is_refused(home, tmp_path, capsys):
    mine = PROJECT_ROOT / "experiments" / "local" / "api-crash.yaml"
    copy = tmp_path / "api-crash.yaml"
    shutil.copy(mine, copy)
    plan = create(home, experiments=(str(copy),))
    experiment = yaml.safe_load(copy.read_text())
    experiment["title"] += " (edited)"
    copy.write_text(yaml.safe_dump(experiment))
    err = refused(capsys, "--plan", str(plan), "--home", str(home), "--reports-dir", str(tmp_path / "r"))
    assert err.endswith("api-crash.yaml was changed after the plan was approved")


def test_other_objectives_than_approved_are_refused(home, tmp_path, capsys, monkeypatch):
    plan = create(home)
    bcp = yaml.safe_load((PROJECT_ROOT / "bcp.yaml").read_text())
    bcp["defaults"]["rto_s"] = 1800  # someone loosened the objective after the approval
    loose = tmp_path / "bcp.yaml"
    loose.write_text(yaml.safe_dump(bcp))
    monkeypatch.setenv("GAMEDAY_OBJECTIVES", str(loose))
    err = refused(capsys, "--plan", str(plan), "--home", str(home))
    assert "would be judged against other objectives than approved (rto_s changed since" in err


def test_a_plan_outside_its_window_on_another_target_or_unsigned_is_refused(home, tmp_path, capsys, forger_key):
    past = (datetime.now(timezone.utc) - timedelta(hours=5)).isoformat()
    plan = create(home, "--start", past, "--hours", "1")
    assert "is outside its approved window" in refused(capsys, "--plan", str(plan), "--home", str(home))

    plan = create(home)
    other = tmp_path / "other-home"
    other.mkdir()
    shutil.copy(home / signing.ALLOWED_SIGNERS_NAME, other / signing.ALLOWED_SIGNERS_NAME)
    err = refused(capsys, "--plan", str(plan), "--home", str(other))
    assert f"approved for the local target at {home.resolve()}, not the local target at {other.resolve()}" in err

    assert "approves a calibration freeze of 3.0 s, not 1 s" in refused(
        capsys, "--plan", str(plan), "--home", str(home), "--calibration-s", "1")

    data = json.loads(plan.read_text())
    data["scenarios"].append({**data["scenarios"][0], "experiment": API_HANG, "scenario": "api-hang"})
    plan.write_text(json.dumps(data))  # a scenario slipped in after the approval
    assert "not approved: plan.json: signature does not match its content" in refused(
        capsys, "--plan", str(plan), "--home", str(home))

    signing.sign(plan, forger_key)  # ... and signed by someone nobody allowed
    assert "signed by a key not in the allowed signers" in refused(capsys, "--plan", str(plan), "--home", str(home))
    plan.with_name("plan.json.sig").unlink()
    assert "not approved: plan.json: not signed" in refused(capsys, "--plan", str(plan), "--home", str(home))


def test_plan_create_bad_input_is_one_line(home, capsys):
    for extra, message in ((["--hours", "0"], "--hours must be above 0"),
                           (["--start", "yesterday"], "--start must be an ISO time"),
                           (["--approver", " "], "--approver must name who approves")):
        argv = ["plan", "create", API_CRASH, "--approver", "Ops Lead", "--blast-radius", "scratch", "--home",
                str(home), *extra]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


@pytest.fixture
def forger_key(tmp_path) -> Path:
    return signing.home_key(tmp_path / "forger", principal="mallory@elsewhere")


def test_the_index_sets_plan_and_results_side_by_side(home, tmp_path):
    plan = json.loads(create(home).read_text())
    gd = tmp_path / "reports" / "gameday-20261207T090000Z"
    make_run(gd / "run-1", scenario="database-failure")
    shutil.copy(home / "plan.json", gd / "plan.json")
    summary = write_gameday_summary(gd, [gd / "run-1"], None, None)
    assert summary["plan"]["id"] == plan["id"]
    rows = {r["scenario"]: r for r in summary["plan"]["rows"]}
    assert rows["database-failure"]["status"] == "pass" and rows["database-failure"]["rto_objective"] == "15 min"
    assert rows["api-crash"]["status"] == "not run" and summary["plan"]["not_run"] == ["api-crash"]
    html = (gd / "index.html").read_text()
    assert "Plan and results" in html and "Approved but not run: api-crash" in html
    assert "Ops Lead &lt;ops-lead@company.com&gt;" in html
