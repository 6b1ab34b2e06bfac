"""A game day's index (summary.json, index.html, junit.xml), terminal table and live view."""
from __future__ import annotations

import io
import json
import re
import shutil
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.report.gameday import LiveView, format_table, gameday_status, write_gameday_summary

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "reports"
RUNS = ("01-database-failure", "02-database-failure-no-restore", "03-api-crash-all")
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def gameday(tmp_path: Path) -> Path:
    dest = tmp_path / "reports" / "gameday-2026-11-27"
    shutil.copytree(FIXTURES / "gameday-2026-11-27", dest)
    return dest


def test_summary_index_and_junit(tmp_path):
    gd = gameday(tmp_path)
    summary = write_gameday_summary(gd, [gd / r for r in RUNS], "2026-11-27T03:45:00Z", "2026-11-27T04:30:00.5Z")
    assert summary["gameday_id"] == "gameday-2026-11-27"
    assert summary["started"] == "2026-11-27T03:45:00.000Z" and summary["ended"] == "2026-11-27T04:30:00.500Z"
    assert summary["status"] == "fail"
    assert [r["status"] for r in summary["runs"]] == ["pass", "fail", "error"]
    first, second = summary["runs"][0], summary["runs"][1]
    assert set(first) == {"run_id", "scenario", "status", "reason", "rto_s", "rto_objective_s", "rpo_s",
                          "rpo_objective_s", "lost_writes", "acked_writes", "detection_latency_s", "report",
                          "downtime_s", "negative_control", "phases", "criteria", "rpo_after_fault_s",
                          "heartbeat_set_aside"}
    assert first["rto_s"] == 24.0 and first["rto_objective_s"] == 900
    assert second["rto_s"] is None and second["lost_writes"] == 9
    assert json.loads((gd / "summary.json").read_text()) == summary
    for r in summary["runs"]:  # relative links that lead to a rendered report
        assert not Path(r["report"]).is_absolute()
        assert (gd / r["report"]).is_file()
    index = (gd / "index.html").read_text(encoding="utf-8")
    for r in summary["runs"]:
        assert f'href="{r["report"]}"' in index
    assert "badge-pass" in index and "badge-fail" in index and "badge-error" in index
    # A mark per criterion, named for screen readers; the reason sentence on demand, not a column.
    failed = [c["name"] for c in second["criteria"] if not c["passed"]]
    assert failed and all(f'<span class="sr">{name} failed</span>' in index for name in failed)
    assert index.count('<details class="why">') == 3 and "<th>Reason</th>" not in index
    root = ET.parse(gd / "junit.xml").getroot()
    assert root.tag == "testsuites" and len(root.findall("testsuite")) == 3


def test_status_is_pass_only_when_every_run_passed(tmp_path):
    gd = gameday(tmp_path)
    assert write_gameday_summary(gd, [gd / RUNS[0]], None, None)["status"] == "pass"
    assert gameday_status(["pass", "pass"]) == "pass"
    assert gameday_status(["pass", "error"]) == "error"
    assert gameday_status(["interrupted", "error"]) == "interrupted"
    assert gameday_status(["error", "fail", "interrupted"]) == "fail"
    assert gameday_status([]) == "error"


def test_format_table_aligns_and_colours_only_when_asked(tmp_path):
    gd = gameday(tmp_path)
    summary = write_gameday_summary(gd, [gd / r for r in RUNS], None, None)
    plain = format_table(summary)
    assert "\x1b[" not in plain
    lines = plain.splitlines()
    assert lines[0].split()[:2] == ["SCENARIO", "STATUS"]
    assert "24.0 s / 15 min" in lines[1] and "not recovered / 15 min" in lines[2]
    assert "9 / 49" in lines[2]
    # columns line up: every "/" of the RTO column ends at the same place
    ends = [line.index(" / 15 min") for line in lines[1:4]]
    assert len(set(ends)) == 1
    assert lines[-2].startswith("game day gameday-2026-11-27: FAIL (1/3 runs passed)")
    assert lines[-1].startswith("error budget: ")
    coloured = format_table(summary, color=True)
    assert "\x1b[31m" in coloured and ANSI_RE.sub("", coloured) == plain


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_live_view_plain_lines_when_not_a_tty():
    out = io.StringIO()
    view = LiveView(out, total=2)
    view.start("database-failure")
    view.update("injecting fault")
    view.finish("database-failure", "pass")
    view.start("api-crash-all")
    view.finish("api-crash-all", "error")
    view.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "[1/2] database-failure: started"
    assert lines[1].startswith("[1/2] database-failure: injecting fault (+0:0")
    assert lines[2].startswith("[1/2] database-failure: PASS in 0:0")
    assert lines[4].startswith("[2/2] api-crash-all: ERROR in")
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_live_view_does_not_count_the_calibration_as_a_scenario():
    out = io.StringIO()
    view = LiveView(out, total=2)
    view.start("calibration", counted=False)
    view.finish("calibration", "pass")
    for scenario in ("database-failure", "api-crash"):
        view.start(scenario)
        view.finish(scenario, "pass")
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["[0/2] calibration: started", "[0/2] calibration: PASS in 0:00"]
    assert lines[-1].startswith("[2/2] api-crash: PASS")


def test_live_view_redraws_on_a_tty_and_stops_cleanly():
    out = FakeTTY()
    before = threading.active_count()
    with LiveView(out, total=1, tick_s=0.05) as view:
        view.start("database-failure")
        time.sleep(0.3)
        assert any(t.name == "liveview-ticker" for t in threading.enumerate())
        # several threads reporting at once never interleave within a line
        workers = [threading.Thread(target=lambda i=i: [view.update(f"state {i}-{k}") for k in range(20)])
                   for i in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert not any(t.name == "liveview-ticker" for t in threading.enumerate())
    assert threading.active_count() <= before
    text = out.getvalue()
    assert text.count("\r\x1b[K") >= 3  # the status line was redrawn by the ticker
    assert text.endswith("\r\x1b[K")  # close() clears the status line
    finished_lines = text.split("\n")[:-1]
    logged = [ANSI_RE.sub("", line.split("\r\x1b[K")[-1]) for line in finished_lines if "state " in line]
    assert len(logged) == 80
    assert all(re.fullmatch(r"\[1/1\] database-failure: state \d-\d+ \(\+0:00\)", x) for x in logged)
    view.finish("database-failure", "pass")  # after close: still harmless


def test_the_table_shows_the_loss_judged_and_warns_of_damage_nobody_judged(tmp_path):
    """The RPO column never reads "0 s" beside writes lost after the fault: it shows the loss the
    criterion judged; a run that found heartbeats already damaged is a warning row."""
    run = tmp_path / "gd" / "01-database-logical-corruption"
    run.mkdir(parents=True)
    verdict = {"scenario": "database-logical-corruption", "status": "pass", "run_id": "r1", "criteria": [],
               "objectives": {"rto_s": 900, "rpo_s": 300},
               "measured": {"rto_s": 4.2, "rpo_s": 0.0, "data_loss_s": 0.772, "loss_after_fault_s": 0.772,
                            "lost_writes": 251, "acked_writes": 4722, "heartbeat_set_aside": 3}}
    (run / "verdict.json").write_text(__import__("json").dumps(verdict))
    summary = write_gameday_summary(tmp_path / "gd", [run], None, None)
    table = format_table(summary)
    assert "0.77 s (incl. 0.77 s after the fault) / 5 min" in table and "251 / 4,722" in table
    assert "0.00 s /" not in table
    assert "WARNING: database-logical-corruption (r1): 3 heartbeat(s) already lost or changed" in table
    assert "damage nobody judged" in (tmp_path / "gd" / "index.html").read_text()
