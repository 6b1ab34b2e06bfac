"""The error budget (99.9 % uptime) and the self-calibrating game day."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.checkers import error_budget
from harness.report.gameday import format_table, write_gameday_summary
from synthetic_runs import make_run

ROOT = Path(__file__).resolve().parents[1]


def test_a_month_at_999_allows_43_minutes_and_unknown_is_not_zero():
    b = error_budget([60.0, 12.5, None])
    assert b["budget_s"] == 2592.0 and b["consumed_s"] == 72.5
    assert b["consumed_pct"] == pytest.approx(100 * 72.5 / 2592, abs=1e-3) and b["unknown_runs"] == 1
    assert error_budget([], months=3)["budget_s"] == 7776.0


def test_the_game_day_summary_spends_the_budget_on_real_scenarios_only(tmp_path):
    real = make_run(tmp_path / "a", outage_s=30.0)
    make_run(tmp_path / "b", outage_s=None, seed=2)
    v = json.loads((tmp_path / "b" / "verdict.json").read_text())
    (tmp_path / "b" / "verdict.json").write_text(json.dumps({**v, "negative_control": True}))
    s = write_gameday_summary(tmp_path / "gd", [tmp_path / "a", tmp_path / "b"], None, None)
    assert s["error_budget"]["runs"] == 1
    assert s["error_budget"]["consumed_s"] == pytest.approx(real["measured"]["downtime_s"], abs=1e-3)
    assert "error budget:" in format_table(s)


def test_an_untrustworthy_calibration_makes_the_game_day_an_error(tmp_path):
    make_run(tmp_path / "a", outage_s=4.0)
    calibration = {"freeze_s": 3.0, "measured_rto_s": 4.2, "error_s": 1.2, "bound_s": 0.5, "trustworthy": False}
    s = write_gameday_summary(tmp_path / "gd", [tmp_path / "a"], None, None, calibration=calibration)
    assert s["status"] == "error"
    assert "NOT trustworthy today" in format_table(s) and "+1.200 s" in format_table(s)
    assert "NOT trustworthy today" in (tmp_path / "gd" / "index.html").read_text()


@pytest.mark.integration
def test_a_game_day_whose_calibration_is_out_of_bounds_runs_nothing_and_is_an_error(healthy_stack, tmp_path):
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "experiments/local/api-crash.yaml",
                        "experiments/local/database-failure.yaml", "--home", healthy_stack["home"],
                        "--port-base", str(healthy_stack["port_base"]), "--reports-dir", str(tmp_path),
                        "--calibration-bound-s", "0.001"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "calibration: 3 s freeze of the API measured as RTO" in r.stdout and "NOT trustworthy today" in r.stdout
    [summary] = tmp_path.glob("gameday-*/summary.json")
    s = json.loads(summary.read_text())
    assert s["status"] == "error" and s["runs"] == [] and abs(s["calibration"]["error_s"]) > 0.001
    assert not [d for d in summary.parent.iterdir() if d.is_dir() and d.name != "calibration"]
