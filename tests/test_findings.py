"""Findings followed to closure: a failed run opens one, `findings close` records the corrective
action, and only a later passing run of the same scenario (the retest) closes it; the quarterly
evidence lists what was opened, closed (with the retest's run id) and is still open, with its age."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness.cli import main as cli
from harness.core import signing
from harness.report.findings import ACTIONS, FINDINGS_DIR, findings, findings_of, quarter_findings
from harness.report.manifest import check
from harness.report.quarterly import build_quarterly
from harness.report.rundir import find_run_dirs
from harness.report.seal import seal_run
from synthetic_runs import make_error_run, make_run

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=timezone.utc)


def facts(run_id: str, hours: float, status: str = "pass", scenario: str = "database-failure",
          failed: tuple[str, ...] = (), **extra) -> dict:
    return {"run_id": run_id, "path": f"gd/{run_id}", "started": (T0 + timedelta(hours=hours)).isoformat(),
            "scenario": scenario, "status": status, "counts": True,
            "failed": [{"criterion": c, "measured": None, "objective": 900.0, "detail": ""} for c in failed], **extra}


def action(finding: str, hours: float) -> dict:
    return {"finding": finding, "action": "restore tested nightly", "owner": "dba", "wall": (T0 + timedelta(hours=hours)).isoformat()}


def test_a_failed_run_opens_one_finding_per_criterion_and_recurrences_join_it():
    found = findings_of([facts("r1", 0, "fail", failed=("rto", "rpo")), facts("r2", 1, "fail", failed=("rto",))],
                        [], T0 + timedelta(days=2))
    assert {(f["criterion"], f["status"], f["opened_by"]["run_id"]) for f in found} == {
        ("rpo", "open", "r1"), ("rto", "open", "r1")}
    rto = next(f for f in found if f["criterion"] == "rto")
    assert [r["run_id"] for r in rto["recurrences"]] == ["r2"] and rto["age_s"] == 2 * 86400


def test_only_a_pass_after_the_corrective_action_closes_it():
    runs = [facts("r1", 0, "fail", failed=("rto",)), facts("r2", 2, "pass"), facts("r3", 5, "pass", scenario="api-crash"),
            facts("r4", 6, "pass")]
    [f] = findings_of(runs, [], T0 + timedelta(hours=10))
    assert f["status"] == "open"  # passing again without an action recorded closes nothing
    fid = f["id"]
    [f] = findings_of(runs, [action(fid, 3)], T0 + timedelta(hours=10))
    # r3 is another scenario; r4 is the retest
    assert (f["status"], f["retest"]["run_id"], f["age_s"]) == ("closed", "r4", 6 * 3600)
    [f] = findings_of(runs, [action(fid, 7)], T0 + timedelta(hours=10))
    assert f["status"] == "awaiting retest" and f["retest"] is None


def test_errors_open_findings_but_negative_controls_calibrations_and_interruptions_do_not():
    runs = [facts("e1", 0, "error", failed=("error",)), facts("n1", 1, "fail", failed=("rto",), counts=False),
            facts("i1", 2, "interrupted")]
    [f] = findings_of(runs, [], T0 + timedelta(hours=3))
    assert f["criterion"] == "error" and f["opened_by"]["run_id"] == "e1"


def test_a_quarter_sees_findings_opened_closed_and_still_open():
    runs = [facts("r1", 0, "fail", failed=("rto",)), facts("r2", 24 * 100, "pass"),
            facts("r3", 24 * 10, "fail", scenario="api-crash", failed=("rpo",))]
    all_found = findings_of(runs, [action(findings_of(runs, [], T0)[0]["id"], 24 * 99)], T0 + timedelta(days=200))
    q4 = (datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc))
    q = quarter_findings(all_found, *q4, now=T0 + timedelta(days=200))
    assert q["counts"] == {"opened": 2, "closed": 0, "still_open": 2}  # the retest came in 2027Q1
    aged = {f["scenario"]: f["age_s"] for f in q["still_open"]}
    assert aged["api-crash"] == (q4[1] - (T0 + timedelta(days=10))).total_seconds()  # aged to the quarter's end


@pytest.fixture
def home(tmp_path) -> Path:
    h = tmp_path / "home"
    signing.home_key(h, principal="ops-lead@svgai")
    return h


def test_a_finding_opened_by_a_failed_run_is_closed_by_a_passing_retest(tmp_path, home, capsys):
    """The whole loop on the command line, over real run folders."""
    reports = tmp_path / "reports"
    now = datetime.now(timezone.utc)
    make_run(reports / "gd-1" / "run-fail", scenario="database-failure", started=now - timedelta(hours=3),
             outage_s=None, lost=4)  # never recovered, writes lost
    make_error_run(reports / "gd-1" / "run-error", scenario="api-crash-all", started=now - timedelta(hours=3))
    make_run(reports / "gd-1" / "run-pass-early", scenario="database-failure", started=now - timedelta(hours=2))
    r = ["--reports-dir", str(reports)]

    assert cli.main(["findings", "list", *r]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("F-")]
    rto = next(line for line in lines if "database-failure / rto:" in line)
    assert "OPEN" in rto and "measured not recovered vs objective 15 min" in rto
    assert any("api-crash-all / error:" in line for line in lines)
    fid = rto.split()[0]
    assert (reports / FINDINGS_DIR / "register.json").is_file()

    assert cli.main(["findings", "close", fid, "--action", "restore from the nightly base backup, not the weekly",
                     "--owner", "DBA team", *r, "--home", str(home)]) == 0
    assert capsys.readouterr().out.startswith(f"{fid}: corrective action recorded (owner DBA team); it closes when "
                                              "a later run of database-failure passes")
    allowed = signing.AllowedSigners.read(home / signing.ALLOWED_SIGNERS_NAME)
    assert signing.check(reports / FINDINGS_DIR / ACTIONS, allowed).principal == "ops-lead@svgai"
    by_id = {f["id"]: f for f in findings(reports)}
    assert by_id[fid]["status"] == "awaiting retest"  # the pass two hours ago came before the action

    make_run(reports / "gd-2" / "run-retest", scenario="database-failure", started=datetime.now(timezone.utc)
             + timedelta(seconds=1))
    assert cli.main(["findings", "list", "--all", "--json", *r]) == 0
    f = {x["id"]: x for x in json.loads(capsys.readouterr().out)}[fid]
    assert f["status"] == "closed" and f["retest"]["run_id"] == "run-retest"
    assert f["actions"][0]["owner"] == "DBA team"

    assert cli.main(["findings", "close", fid, "--action", "again", "--owner", "x", *r, "--home", str(home)]) == 2
    assert "is closed already (retest run-retest)" in capsys.readouterr().err
    assert cli.main(["findings", "close", "F-00000000", "--action", "a", "--owner", "b", *r, "--home", str(home)]) == 2
    assert "no finding 'F-00000000' (open ones: " in capsys.readouterr().err

    # The quarter's evidence lists them, and the signed actions are in its manifest.
    quarter = f"{now.year}Q{(now.month + 2) // 3}"
    for d in find_run_dirs(reports):  # as the evidence writer does when each run ends
        seal_run(d, home / "secrets" / signing.KEY_NAME)
    index = build_quarterly(reports, quarter, key=home / "secrets" / signing.KEY_NAME)
    ev = json.loads((index.parent / "evidence.json").read_text())
    assert ev["findings"]["counts"]["closed"] == 1
    closed = ev["findings"]["closed"][0]
    assert closed["retest"]["run_id"] == "run-retest" and closed["actions"][0]["owner"] == "DBA team"
    html = index.read_text()
    assert fid in html and "run-retest" in html and "Still open at the end of" in html
    checked = check(index.parent, allowed)
    assert checked.problems == []
    assert "reports/findings/actions.jsonl" in checked.document_signers
