"""JUnit XML: one testcase per BCP criterion; error/interrupted runs add an errored "run" case."""
from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.report import junit
from harness.report.run import write_run_report

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "reports" / "gameday-2026-11-27"


def verdict_of(name: str) -> dict:
    return json.loads((FIXTURES / name / "verdict.json").read_text())


def test_one_testcase_per_criterion_and_failure_messages():
    v = verdict_of("02-database-failure-no-restore")
    root = ET.fromstring(junit.run_xml(v))
    assert root.tag == "testsuite" and root.get("name") == "database-failure"
    cases = root.findall("testcase")
    assert [c.get("name") for c in cases] == [c["name"] for c in v["criteria"]]
    failed = {c["name"] for c in v["criteria"] if not c["passed"]}
    assert {c.get("name") for c in cases if c.find("failure") is not None} == failed
    assert root.get("tests") == str(len(v["criteria"])) and root.get("failures") == str(len(failed))
    assert root.get("errors") == "0"
    rto = next(c for c in cases if c.get("name") == "rto").find("failure").get("message")
    assert rto.startswith("measured not recovered vs objective 15 min: never stable within timeout")
    props = {p.get("name"): p.get("value") for p in root.find("properties")}
    assert props["run_id"] == v["run_id"] and props["status"] == "fail"


def test_passing_run_has_no_failures():
    root = ET.fromstring(junit.run_xml(verdict_of("01-database-failure")))
    assert root.get("failures") == "0" and root.get("errors") == "0"
    assert all(c.find("failure") is None for c in root.findall("testcase"))


def test_error_and_interrupted_runs_get_an_error_case():
    v = verdict_of("03-api-crash-all")
    root = ET.fromstring(junit.run_xml(v))
    run_case = root.find("testcase[@name='run']")
    err = run_case.find("error")
    assert err.get("type") == "error" and err.get("message") == v["reason"]
    assert root.get("errors") == "1" and root.get("tests") == str(len(v["criteria"]) + 1)

    v2 = dict(v, status="interrupted", reason="interrupted by SIGTERM", criteria=[])
    root = ET.fromstring(junit.run_xml(v2))
    assert [c.get("name") for c in root.findall("testcase")] == ["run"]
    assert root.find("testcase/error").get("type") == "interrupted"


def test_gameday_xml_holds_one_suite_per_run_and_totals():
    verdicts = [verdict_of(n) for n in ("01-database-failure", "02-database-failure-no-restore", "03-api-crash-all")]
    root = ET.fromstring(junit.gameday_xml(verdicts, name="gameday 2026-11-27"))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 3
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in suites)
    assert int(root.get("failures")) == sum(int(s.get("failures")) for s in suites) > 0
    assert root.get("errors") == "1"


def test_hostile_text_stays_well_formed():
    v = verdict_of("02-database-failure-no-restore")
    v["scenario"] = 'db <&> "x"'
    v["criteria"][0]["detail"] = "bad \x00\x07 bytes <tag> & ]]>"
    root = ET.fromstring(junit.run_xml(v))
    assert root.get("name") == 'db <&> "x"'
    assert "bad  bytes <tag> & ]]>" in root.find("testcase/failure").get("message")


def test_run_report_writes_junit_file(tmp_path):
    d = tmp_path / "run"
    shutil.copytree(FIXTURES / "01-database-failure", d)
    write_run_report(d)
    root = ET.parse(d / "junit.xml").getroot()
    assert len(root.findall("testcase")) == len(json.loads((d / "verdict.json").read_text())["criteria"])
