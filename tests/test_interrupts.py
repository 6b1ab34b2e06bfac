"""Honest statuses: a target unhealthy before the fault is an ERROR with nothing injected, and
SIGINT/SIGTERM end a run as INTERRUPTED with the fault rolled back."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from harness.records import history
from harness.run import runner
from harness.targets.embedded import supervisor

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests" / "experiments"


def test_unhealthy_before_fault_is_error_and_nothing_is_injected(healthy_stack, tmp_path):
    pid_before = supervisor.process_info(healthy_stack["supervisor_url"], "api")["pid"]
    [planned] = runner.plan([HERE / "unhealthy-before.yaml"])
    verdict = runner.run_one(planned, tmp_path, Path(healthy_stack["home"]) / "target.json", runner._Signals(),
                             log=lambda m: None)
    assert verdict["status"] == "error"
    assert "not healthy before fault" in verdict["reason"]
    events = history.read(Path(verdict["_run_dir"]) / "history.jsonl")
    assert not [e for e in events if e["kind"] == "fault"]
    assert supervisor.process_info(healthy_stack["supervisor_url"], "api")["pid"] == pid_before


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_interrupts_and_rolls_back(healthy_stack, tmp_path, sig):
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(HERE / "held-outage.yaml"), "--home", healthy_stack["home"],
         "--port-base", str(healthy_stack["port_base"]), "--reports-dir", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Wait until the fault is in: the run's history shows fault start.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            hist = list(tmp_path.glob("*/history.jsonl"))
            if hist and '"kind":"fault"' in hist[0].read_text():
                break
            time.sleep(0.2)
        else:
            pytest.fail("the fault never started")
        time.sleep(1.0)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, out
    [verdict_file] = tmp_path.glob("*/verdict.json")
    verdict = json.loads(verdict_file.read_text())
    assert verdict["status"] == "interrupted", verdict["reason"]
    # Rolled back: the hold is gone and the API comes back by itself.
    assert not (Path(healthy_stack["holds_dir"]) / "api").exists()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(healthy_stack["api_url"] + "/ready", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail("the API did not come back after the interrupted run was rolled back")


def test_a_sigterm_inside_a_long_action_ends_the_run_and_the_game_day(healthy_stack, tmp_path):
    # Chaos Toolkit puts its own SIGTERM handler in place for an experiment: a SIGTERM inside an
    # activity became that activity's failure, the run a FAIL, and the game day went on to inject
    # the next fault (seen in a run of the negative controls). The control puts ours back.
    run = [sys.executable, "-m", "harness.cli", "run", str(HERE / "long-freeze.yaml"), str(HERE / "held-outage.yaml"),
           "--calibration-s", "0", "--home", healthy_stack["home"], "--port-base", str(healthy_stack["port_base"]),
           "--reports-dir", str(tmp_path)]
    proc = subprocess.Popen(run, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while not any('"kind":"fault"' in h.read_text() for h in tmp_path.rglob("history.jsonl")):
            assert proc.poll() is None and time.monotonic() < deadline, "the first run never reached its fault"
            time.sleep(0.2)
        time.sleep(2.0)  # inside the 10 s freeze action
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, out
    verdicts = [json.loads(p.read_text()) for p in tmp_path.rglob("verdict.json")]
    assert [v["scenario"] for v in verdicts] == ["api-hang"], out  # the second experiment never ran
    assert verdicts[0]["status"] == "interrupted", verdicts[0]["reason"]
    assert _api_back(healthy_stack["api_url"])


def _wait_for_fault(tmp_path: Path, proc) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        hist = list(tmp_path.glob("*/history.jsonl"))
        if hist and '"kind":"fault"' in hist[0].read_text():
            return
        assert proc.poll() is None, "the run ended before its fault"
        time.sleep(0.2)
    pytest.fail("the fault never started")


def _api_back(api_url: str, timeout_s: float = 60) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if requests.get(api_url + "/ready", timeout=1).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.2)
    return False


def test_gameday_abort_ends_the_run_as_aborted_by_operator(healthy_stack, tmp_path):
    run = [sys.executable, "-m", "harness.cli", "run", str(HERE / "held-outage.yaml"), "--home", healthy_stack["home"],
           "--port-base", str(healthy_stack["port_base"]), "--reports-dir", str(tmp_path)]
    proc = subprocess.Popen(run, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for_fault(tmp_path, proc)
        started = time.monotonic()
        abort = subprocess.run([sys.executable, "-m", "harness.cli", "abort", "--home", healthy_stack["home"]],
                               cwd=ROOT, capture_output=True, text=True, timeout=150)
        ended_s = time.monotonic() - started
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert abort.returncode == 0 and "abort sent to run pid" in abort.stdout, abort.stdout + abort.stderr
    print(f"abort: the run ended {ended_s:.1f} s after 'gameday abort' (rollbacks included)")
    assert proc.returncode == 2, out
    [verdict_file] = tmp_path.glob("*/verdict.json")
    verdict = json.loads(verdict_file.read_text())
    assert verdict["status"] == "interrupted" and "aborted by operator" in verdict["reason"], verdict["reason"]
    assert _api_back(healthy_stack["api_url"])


def test_a_tripped_prometheus_stop_condition_interrupts_and_rolls_back(healthy_stack, tmp_path):
    [planned] = runner.plan([HERE / "stop-condition.yaml"])
    started = time.monotonic()
    verdict = runner.run_one(planned, tmp_path, Path(healthy_stack["home"]) / "target.json", runner._Signals(),
                             log=lambda m: None)
    took = time.monotonic() - started
    assert verdict["status"] == "interrupted", verdict["reason"]
    assert 'stop condition prometheus: up{job="svg-ai-api"} == 0 tripped' in verdict["reason"]
    events = history.read(Path(verdict["_run_dir"]) / "history.jsonl")
    [tripped] = [e for e in events if e["kind"] == "marker" and e.get("name") == "stop_condition"]
    assert "1 series" in tripped["value"]
    assert took < 60, f"the run went on for {took:.0f} s although its 120 s timeout was cut short by the condition"
    assert not (Path(healthy_stack["holds_dir"]) / "api").exists()  # rolled back
    assert _api_back(healthy_stack["api_url"])
