"""`gameday report rejudge RUN_DIR`: the verdict recomputed from what the run left on disk."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.run.judge import rejudge
from synthetic_runs import make_run

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "harness.cli", "report", "rejudge", *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_an_untouched_run_rejudges_to_the_same_verdict(tmp_path):
    run = tmp_path / "run"
    make_run(run, outage_s=4.0)
    fresh, diffs = rejudge(run)
    assert diffs == [] and fresh["status"] == json.loads((run / "verdict.json").read_text())["status"]
    r = _cli(str(run))
    assert r.returncode == 0 and r.stdout.startswith("same verdict: PASS"), r.stdout + r.stderr


def test_a_verdict_that_disagrees_with_its_history_is_shown(tmp_path):
    run = tmp_path / "run"
    make_run(run, outage_s=4.0)
    # Tamper with the stored verdict: claim a different RTO and a failed RPO.
    v = json.loads((run / "verdict.json").read_text())
    v["measured"]["rto_s"] = 0.5
    v["status"] = "fail"
    (run / "verdict.json").write_text(json.dumps(v))
    r = _cli(str(run))
    assert r.returncode == 1
    assert "status: fail -> pass" in r.stdout and "measured.rto_s: 0.5 ->" in r.stdout


def _empty_verdict(d: Path) -> None:
    (d / "verdict.json").write_text("{}")
    (d / "history.jsonl").write_text("")


@pytest.mark.parametrize("setup,words", [(lambda d: None, "not a run directory"), (_empty_verdict, "no objectives")])
def test_bad_input_is_one_line_and_exit_2(tmp_path, setup, words):
    setup(tmp_path)
    r = _cli(str(tmp_path))
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1
