"""JUnit XML from verdicts, so CI shows each BCP criterion as a test.

One run: a <testsuite> named after the scenario with one <testcase> per criterion; a criterion
that did not pass carries <failure message="measured X vs objective Y: detail">. A run whose
status is error or interrupted also gets a testcase "run" with an <error> giving the reason (its
criteria, if any, could not all be judged). A game day: <testsuites> holding one suite per run.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable

from harness.report.page import CRITERION_TITLES, fmt_criterion_value, status_of
from harness.report.rundir import criteria_of, parse_time

__all__ = ["run_suite", "run_xml", "gameday_xml", "write_run_junit", "failure_message"]

_BAD_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(value) -> str:
    """Text XML 1.0 can carry (control characters dropped)."""
    return _BAD_XML.sub("", "" if value is None else str(value))


def failure_message(criterion: dict) -> str:
    name = str(criterion.get("name", "?"))
    measured = fmt_criterion_value(name, criterion.get("measured"), "measured")
    objective = fmt_criterion_value(name, criterion.get("objective"), "objective")
    detail = str(criterion.get("detail") or "").strip()
    return f"measured {measured} vs objective {objective}" + (f": {detail}" if detail else "")


def _duration_s(verdict: dict) -> float:
    a, b = parse_time(verdict.get("started")), parse_time(verdict.get("ended"))
    return max((b - a).total_seconds(), 0.0) if a and b else 0.0


def run_suite(verdict: dict) -> ET.Element:
    """The <testsuite> of one run."""
    scenario = str(verdict.get("scenario") or "unknown")
    status = status_of(verdict)
    suite = ET.Element("testsuite", name=_clean(scenario))
    started = parse_time(verdict.get("started"))
    if started:
        suite.set("timestamp", started.strftime("%Y-%m-%dT%H:%M:%S"))
    props = ET.SubElement(suite, "properties")
    for key in ("run_id", "experiment", "title", "status", "reason", "started", "ended"):
        value = status if key == "status" else verdict.get(key)
        if value not in (None, ""):
            ET.SubElement(props, "property", name=key, value=_clean(value))
    classname = f"bcp.{scenario}"
    tests = failures = errors = 0
    for c in criteria_of(verdict):
        name = str(c.get("name", "?"))
        case = ET.SubElement(suite, "testcase", classname=_clean(classname), name=_clean(name), time="0")
        tests += 1
        if not c.get("passed"):
            failures += 1
            msg = _clean(failure_message(c))
            fail = ET.SubElement(case, "failure", message=msg, type="criterion")
            fail.text = _clean(f"{CRITERION_TITLES.get(name, name)}: {msg}")
    if status in ("error", "interrupted"):
        case = ET.SubElement(suite, "testcase", classname=_clean(classname), name="run",
                             time=f"{_duration_s(verdict):.3f}")
        tests += 1
        errors += 1
        reason = _clean(verdict.get("reason") or f"run {status}")
        err = ET.SubElement(case, "error", message=reason, type=status)
        err.text = _clean(f"run {status}: {reason}")
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", "0")
    suite.set("time", f"{_duration_s(verdict):.3f}")
    return suite


def _to_bytes(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def run_xml(verdict: dict) -> bytes:
    """JUnit XML of one run: a single <testsuite> (its own root, as most CI tools expect)."""
    return _to_bytes(run_suite(verdict))


def gameday_xml(verdicts: Iterable[dict], name: str = "gameday") -> bytes:
    """JUnit XML of a game day: <testsuites> with one <testsuite> per run."""
    root = ET.Element("testsuites", name=_clean(name))
    totals = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    for v in verdicts:
        suite = run_suite(v)
        root.append(suite)
        for k in totals:
            totals[k] += int(suite.get(k, "0"))
        total_time += float(suite.get("time", "0"))
    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", f"{total_time:.3f}")
    return _to_bytes(root)


def write_run_junit(run_dir: Path, verdict: dict) -> Path:
    path = Path(run_dir) / "junit.xml"
    path.write_bytes(run_xml(verdict))
    return path
