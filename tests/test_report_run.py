"""One run's evidence page: report.html (timeline chart, criteria, keys, checks, messages)."""
from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.report.gameday import write_gameday_summary
from harness.report.quarterly import build_quarterly
from harness.report.run import write_run_report
from harness.report.timeline import build_timeline, timeline_svg
from synthetic_runs import make_run

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "reports"
GAMEDAY = "gameday-2026-11-27"
PASS_RUN, FAIL_RUN, ERROR_RUN = "01-database-failure", "02-database-failure-no-restore", "03-api-crash-all"


def copy_fixtures(tmp_path: Path) -> Path:
    """The recorded runs, copied so reports are written into a temp dir, never the repo."""
    dest = tmp_path / "reports"
    shutil.copytree(FIXTURES, dest)
    return dest


def run_dir(reports: Path, name: str) -> Path:
    return reports / GAMEDAY / name


def svg_of(html: str) -> str:
    m = re.search(r'<svg[^>]*class="timeline".*?</svg>', html, re.S)
    assert m, "no timeline <svg> in the report"
    return m.group(0)


def test_pass_run_report_has_chart_with_fault_window_and_rto_marker(tmp_path):
    d = run_dir(copy_fixtures(tmp_path), PASS_RUN)
    path = write_run_report(d)
    assert path == d / "report.html"
    html = path.read_text(encoding="utf-8")
    verdict = json.loads((d / "verdict.json").read_text())
    svg = svg_of(html)
    assert 'class="fault-window"' in svg
    assert '<g class="rto-marker">' in svg
    assert "RTO 24.0 s" in svg
    # 15 min objective is far beyond a 90 s run: stated, not drawn off the axis
    assert "rto-objective-beyond" in svg and "beyond the chart" in svg
    assert 'class="recovery-window"' in svg
    assert "samples-ok" in svg and "samples-fail" in svg and 'class="writes-ok"' in svg
    assert ET.fromstring(svg).tag.endswith("svg")  # well-formed on its own
    assert ">PASS<" in html
    for c in verdict["criteria"]:
        assert c["detail"].replace("'", "&#x27;") in html
    assert "RTO &lt; 15 minutes achieved" in html  # the BCP's words
    # self-contained: no scripts, no remote anything
    loads = html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in loads and "http://" not in loads and "https://" not in loads and "@import" not in loads
    assert "@media print" in html


def test_fail_run_marks_unrecovered_rto_lost_writes_and_escapes_keys(tmp_path):
    d = run_dir(copy_fixtures(tmp_path), FAIL_RUN)
    html = write_run_report(d).read_text(encoding="utf-8")
    verdict = json.loads((d / "verdict.json").read_text())
    svg = svg_of(html)
    assert "rto-unrecovered" in svg and "not recovered: RTO unbounded" in svg
    assert svg.count('<g class="lost-write">') == verdict["measured"]["lost_writes"] == 9
    assert 'class="loss-window"' in svg and '<g class="rpo-marker">' in svg
    # keys are req<b>&"000123: never raw HTML
    assert '<b>&"' not in html
    assert "req&lt;b&gt;&amp;&quot;" in html
    assert ">FAIL<" in html
    assert "not checked" not in html  # every required function has a result
    assert "failed" in html


def test_error_run_report_says_why(tmp_path):
    d = run_dir(copy_fixtures(tmp_path), ERROR_RUN)
    html = write_run_report(d).read_text(encoding="utf-8")
    verdict = json.loads((d / "verdict.json").read_text())
    assert ">ERROR<" in html
    assert "target not healthy before fault" in verdict["reason"] and verdict["reason"] in html
    assert 'class="fault-window"' not in html  # no fault was injected
    assert "Loss is UNKNOWN" in html


def test_report_tolerates_damaged_and_missing_files(tmp_path):
    d = run_dir(copy_fixtures(tmp_path), PASS_RUN)
    with open(d / "history.jsonl", "a") as f:
        f.write('{"kind": "sample", "t": 99.1, "pro')  # a run killed mid-write
    (d / "journal.json").unlink()
    html = write_run_report(d).read_text(encoding="utf-8")
    assert "skipped 1 unreadable line" in html
    assert "No journal.json in this run" in html
    assert 'class="fault-window"' in html

    (d / "history.jsonl").unlink()
    html = write_run_report(d).read_text(encoding="utf-8")
    assert "history.jsonl is missing" in html and "no timeline to draw" in html

    (d / "verdict.json").write_text("{not json")
    html = write_run_report(d).read_text(encoding="utf-8")
    assert "verdict.json is not valid JSON" in html and ">ERROR<" in html
    ET.parse(d / "junit.xml")


def test_no_criteria_and_interrupted_runs_render(tmp_path):
    d = tmp_path / "r"
    make_run(d, seed=4)
    v = json.loads((d / "verdict.json").read_text())
    v.update(status="interrupted", reason="the run was interrupted by SIGINT", criteria=[])
    (d / "verdict.json").write_text(json.dumps(v))
    html = write_run_report(d).read_text(encoding="utf-8")
    assert ">INTERRUPTED<" in html and "No criterion was judged" in html


def test_write_run_report_rejects_a_missing_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such run directory"):
        write_run_report(tmp_path / "nope")


def test_timeline_from_a_ten_line_history():
    w = "2026-11-27T03:50:00.000Z"
    events = [
        {"kind": "sample", "t": 0.5, "wall": w, "probe": "api", "ok": True, "latency_s": 0.02},
        {"kind": "op", "t": 1.0, "wall": w, "type": "invoke", "f": "write", "key": "k1"},
        {"kind": "op", "t": 1.1, "wall": w, "type": "ok", "f": "write", "key": "k1"},
        {"kind": "fault", "t": 2.0, "wall": w, "phase": "start", "name": "kill"},
        {"kind": "sample", "t": 2.5, "wall": w, "probe": "api", "ok": False, "latency_s": 2.0},
        {"kind": "op", "t": 2.6, "wall": w, "type": "invoke", "f": "write", "key": "k2"},
        {"kind": "op", "t": 2.7, "wall": w, "type": "fail", "f": "write", "key": "k2"},
        {"kind": "fault", "t": 3.0, "wall": w, "phase": "end", "name": "kill"},
        {"kind": "sample", "t": 9.0, "wall": w, "probe": "api", "ok": True, "latency_s": 0.03},
        {"kind": "marker", "t": 9.5, "wall": w, "name": "observe_end"},
    ]
    verdict = {"measured": {"fault_start_t": 2.0, "fault_end_t": 3.0, "rto_s": 7.0, "recovered_at_t": 9.0,
                            "rpo_s": 0.9, "lost_writes": 1},
               "objectives": {"rto_s": 5.0, "rpo_s": 300.0},
               "loss": {"lost_keys": ["k1"], "loss_window": {"earliest_ack_t": 1.1, "latest_ack_t": 1.1}}}
    tl = build_timeline(events, verdict)
    assert tl.probes == ["api"]
    assert sum(tl.probe_ok["api"]) == 2 and sum(tl.probe_fail["api"]) == 1
    assert sum(tl.acks) == 1 and sum(tl.fails) == 1
    assert tl.lost_acks == [("k1", 1.1)]
    assert [(w.name, w.start, w.end) for w in tl.faults] == [("kill", 2.0, 3.0)]
    assert tl.loss_window == (1.1, 1.1)
    svg = timeline_svg(tl)
    ET.fromstring(svg)
    # the 5 s objective (t=7) lies inside the 0–10 s axis: drawn as a line, not "beyond"
    assert '<g class="rto-objective">' in svg and "beyond" not in svg


def test_large_history_is_downsampled(tmp_path):
    d = tmp_path / "big"
    make_run(d, duration_s=400, fault_at_s=100, outage_s=None, lost=120, sample_interval_s=0.1, write_rate=40,
             seed=9)
    n_events = sum(1 for _ in open(d / "history.jsonl"))
    assert n_events > 30_000
    html = write_run_report(d).read_text(encoding="utf-8")
    svg = svg_of(html)
    assert len(svg) < 150_000  # bounded by columns, not by events
    # at most 600 columns: every latency path has at most 600 points
    for path in re.findall(r'class="latency" d="([^"]+)"', svg):
        assert len(re.findall(r"[ML]", path)) <= 600
    assert svg.count('<g class="lost-write">') == 50  # the verdict names at most 50 lost keys


EVIL = '<x onload="alert(1)">&'


def _poison(value):
    """Every string in a JSON value replaced by markup (keys too), to find any unescaped output."""
    if isinstance(value, str):
        return EVIL + value
    if isinstance(value, list):
        return [_poison(v) for v in value]
    if isinstance(value, dict):
        return {(k if k in _KEEP_KEYS else EVIL + k): (v if k in _KEEP_VALUES else _poison(v)) for k, v in value.items()}
    return value


_KEEP_KEYS = {"scenario", "status", "reason", "run_id", "experiment", "title", "started", "ended", "objectives",
              "measured", "criteria", "loss", "integrity", "functions", "flags", "name", "passed", "detail",
              "objective", "lost_keys", "unexpected_keys", "recovered_keys", "duplicate_keys", "loss_window",
              "known", "checks", "ok", "run", "activity", "type", "start", "end", "critical_functions",
              "integrity_checks", "detection", "alert", "max_latency_s", "rto_s", "rpo_s"}
_KEEP_VALUES = {"status", "started", "ended", "measured", "loss_window", "start", "end", "passed", "ok", "known"}


def test_every_text_from_the_run_is_escaped(tmp_path):
    reports = copy_fixtures(tmp_path)
    d = run_dir(reports, FAIL_RUN)
    for name in ("verdict.json", "journal.json"):
        data = json.loads((d / name).read_text())
        (d / name).write_text(json.dumps(_poison(data)))
    with open(d / "history.jsonl", "a") as f:  # and names in the history
        w = "2026-11-27T04:06:00.000Z"
        for e in ({"kind": "sample", "t": 60.0, "wall": w, "probe": EVIL, "ok": False, "latency_s": 0.1},
                  {"kind": "fault", "t": 61.0, "wall": w, "phase": "start", "name": EVIL, "detail": EVIL},
                  {"kind": "marker", "t": 62.0, "wall": w, "name": EVIL, "detail": EVIL},
                  {"kind": "stall", "t": 63.0, "wall": w, "recorder": EVIL, "gap_s": 2.0},
                  {"kind": "function", "t": 64.0, "wall": w, "name": EVIL, "ok": False, "detail": EVIL}):
            f.write(json.dumps(e) + "\n")
    html = write_run_report(d).read_text(encoding="utf-8")
    assert "&lt;x onload=" in html  # the poison made it onto the page...
    assert "<x" not in html  # ...never as markup
    ET.parse(d / "junit.xml")
    summary_dir = reports / GAMEDAY
    write_gameday_summary(summary_dir, [d], None, None)
    assert "<x" not in (summary_dir / "index.html").read_text(encoding="utf-8")
    index = build_quarterly(reports, "2026Q4")
    assert "<x" not in index.read_text(encoding="utf-8")
