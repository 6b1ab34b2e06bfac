"""Issue 12.1 (b) and (c): the recovery phases as one stacked bar under the run's timeline, and
each phase's median and p95 over the quarter's runs."""
from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.report.quarterly import build_quarterly
from harness.report.run import write_run_report
from harness.report.timeline import phases_svg

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "reports"
PASS_RUN = Path("gameday-2026-11-27") / "01-database-failure"
SVG_NS = "{http://www.w3.org/2000/svg}"
PHASES = {"detect_s": 3.2, "notify_s": 0.04, "respond_s": 1.5, "restore_s": 20.0}


def test_phases_without_spans_are_drawn_one_after_the_other_with_their_text_labels():
    svg = phases_svg(PHASES)
    root = ET.fromstring(svg)  # well-formed on its own, so it can be inlined anywhere
    assert root.get("role") == "img" and root.get("aria-labelledby") == "phases-title phases-desc"
    assert root.find(f"{SVG_NS}title").text.startswith("Recovery phases: 24.7 s")
    assert root.find(f"{SVG_NS}desc").text == "Detect 3.20 s, Notify 0.04 s, Respond 1.50 s, Restore 20.0 s"
    segments = [r for r in root.iter(f"{SVG_NS}rect") if (r.get("class") or "").startswith("phase ")]
    assert [s.get("class") for s in segments] == ["phase phase-detect", "phase phase-notify", "phase phase-respond",
                                                  "phase phase-restore"]
    xs = [float(s.get("x")) for s in segments]
    widths = [float(s.get("width")) for s in segments]
    # A verdict written before phases had spans: one after the other, each where the last ended.
    assert xs == sorted(xs) and all(xs[i + 1] - xs[i] >= widths[i] - 3.0 for i in range(3))
    assert widths[3] > widths[0] > widths[2] > widths[1] >= 3.0  # proportional; 40 ms still visible
    texts = "".join(root.itertext())
    for label in ("Detect: 3.20 s", "Notify: 0.04 s", "Respond: 1.50 s", "Restore: 20.0 s", "fault to stable 24.7 s"):
        assert label in texts
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")  # self-contained


def test_overlapping_phases_are_drawn_overlapping_and_never_summed():
    """Automatic recovery: restoring starts at the fault while detection goes on (4.28 s outage)."""
    phases = {"detect_s": 3.64, "notify_s": 0.1, "respond_s": None, "restore_s": 4.28, "fault_to_stable_s": 4.28,
              "spans": {"detect_s": [0.0, 3.64], "notify_s": [3.64, 3.74], "restore_s": [0.0, 4.28]}}
    root = ET.fromstring(phases_svg(phases))
    bars = {r.get("class"): r for r in root.iter(f"{SVG_NS}rect") if (r.get("class") or "").startswith("phase ")}
    assert bars["phase phase-restore"].get("x") == bars["phase phase-detect"].get("x")  # both from the fault
    texts = "".join(root.itertext())
    assert "fault to stable 4.28 s" in texts and "8.02" not in texts
    assert root.find(f"{SVG_NS}title").text.startswith("Recovery phases: 4.28 s")


def test_phases_not_observed_are_labelled_and_nothing_measured_draws_nothing():
    svg = phases_svg({"detect_s": None, "notify_s": None, "respond_s": None, "restore_s": 4.0})
    assert "Detect: not observed" in svg and "Restore: 4.00 s" in svg
    assert svg.count('class="phase ') == 1
    assert phases_svg({"detect_s": None, "notify_s": None, "respond_s": None, "restore_s": None}) is None
    assert phases_svg(None) is None


def test_the_run_report_shows_the_bar_under_the_timeline(tmp_path):
    reports = tmp_path / "reports"
    shutil.copytree(FIXTURES, reports)
    d = reports / PASS_RUN
    verdict = json.loads((d / "verdict.json").read_text())
    verdict["measured"]["phases"] = PHASES
    (d / "verdict.json").write_text(json.dumps(verdict))
    html = write_run_report(d).read_text(encoding="utf-8")
    timeline = html.index('class="timeline"')
    bar = html.index('class="phases-bar"')
    assert timeline < bar < html.index("Writes: lost, unexpected, recovered")
    assert ET.fromstring(re.search(r'<svg[^>]*class="phases-bar".*?</svg>', html, re.S).group(0)) is not None


def _with_phases(reports: Path, run: Path, phases: dict, started: str) -> None:
    """A copy of a recorded run with the given phases and start time."""
    src = reports / PASS_RUN
    dest = reports / run
    shutil.copytree(src, dest)
    v = json.loads((dest / "verdict.json").read_text())
    v["measured"]["phases"] = phases
    v["started"] = started
    v["run_id"] = run.name
    (dest / "verdict.json").write_text(json.dumps(v))


def test_the_quarter_gives_each_phase_median_and_p95(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    shutil.copytree(FIXTURES / PASS_RUN.parent, reports / PASS_RUN.parent)
    copied = reports / PASS_RUN / "verdict.json"  # only the five runs below have phases
    v = json.loads(copied.read_text())
    v["measured"]["phases"] = {k: None for k in ("detect_s", "notify_s", "respond_s", "restore_s")}
    copied.write_text(json.dumps(v))
    for i, detect in enumerate([1.0, 2.0, 3.0, 4.0, 30.0]):
        _with_phases(reports, Path(f"gameday-2026-12-0{i + 1}") / "01-database-failure",
                     {"detect_s": detect, "notify_s": round(0.1 * (i + 1), 3), "respond_s": None, "restore_s": 10.0 + i},
                     f"2026-12-0{i + 1}T10:00:00+00:00")
    index = build_quarterly(reports, "2026Q4")
    ev = json.loads((index.parent / "evidence.json").read_text())
    phases = ev["phases"]
    detect = phases["detect_s"]
    assert (detect["n"], detect["median_s"], detect["p95_s"], detect["max_s"]) == (5, 3.0, 30.0, 30.0)
    assert phases["notify_s"]["median_s"] == 0.3 and phases["respond_s"]["n"] == 0
    assert phases["restore_s"]["p95_s"] == 14.0
    html = index.read_text(encoding="utf-8")
    section = html[html.index("Recovery phases"):]
    assert "3.00 s" in section and "30.0 s" in section and "not observed" in section


def test_a_run_with_an_rpo_warning_shows_the_exposure_at_the_warning(tmp_path):
    reports = tmp_path / "reports"
    shutil.copytree(FIXTURES, reports)
    d = reports / PASS_RUN
    verdict = json.loads((d / "verdict.json").read_text())
    verdict["measured"].update(rpo_exposure_at_alert_s=32.3, rpo_exposure_max_s=33.0)
    verdict["criteria"].append({"name": "rpo_warning", "passed": True, "measured": 32.3,
                                "objective": {"alert": "SvgAiRpoAtRisk", "before_exposure_s": 60},
                                "detail": "alert SvgAiRpoAtRisk fired at an exposure of 32.3 s"})
    (d / "verdict.json").write_text(json.dumps(verdict))
    html = write_run_report(d).read_text(encoding="utf-8")
    assert "RPO exposure at the warning" in html and "32.3 s" in html
    assert "SvgAiRpoAtRisk before 1 min of exposure" in html  # the criterion's objective, in words
