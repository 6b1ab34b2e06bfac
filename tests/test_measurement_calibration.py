"""Proof the numbers are true: faults of exactly known extent, measured through the whole chain
(Chaos Toolkit experiment → control → recorders → history → checkers → verdict)."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from harness.records import history
from harness.run import runner

pytestmark = pytest.mark.integration
HERE = Path(__file__).parent / "experiments"

OUTAGE_S = 3.0
# Upper bound from the sampler's own parameters (harness.run.objectives.RECORDER_DEFAULTS): a sample
# counts when its answer arrives, so the first success after SIGCONT lands within one interval
# (0.1 s); a request sent during the freeze may still time out just after SIGCONT (timeout 1.0 s)
# and restart the stability window. So D <= RTO <= D + timeout + interval. Measured here on a
# quiet machine: +0.05 to +0.15 s; with other stacks loading both cores, up to +0.75 s
# (bench/measurement.py prints the spread).
RTO_TOLERANCE_S = 1.0 + 0.1


def run(name: str, stack, tmp_path) -> tuple[dict, Path]:
    [planned] = runner.plan([HERE / name])
    verdict = runner.run_one(planned, tmp_path, Path(stack["home"]) / "target.json", runner._Signals(),
                             log=lambda m: None)
    return verdict, Path(verdict["_run_dir"])


def test_measured_rto_equals_a_known_outage(healthy_stack, tmp_path):
    verdict, run_dir = run("calibration-outage.yaml", healthy_stack, tmp_path)
    rto = verdict["measured"]["rto_s"]
    assert rto is not None, verdict["reason"]
    assert OUTAGE_S - 0.05 <= rto <= OUTAGE_S + RTO_TOLERANCE_S, f"measured RTO {rto} s for a {OUTAGE_S} s outage"
    assert verdict["measured"]["lost_writes"] == 0
    assert verdict["status"] == "pass", verdict["reason"]
    # The final read says which servers accepted writes as it was taken: exactly one.
    final = [e for e in history.read(run_dir / "history.jsonl") if e["kind"] == "final_read"][-1]
    assert sorted(final["servers"].values()) == ["primary", "standby"], final["servers"]


def test_lost_writes_are_exactly_the_rows_deleted_behind_the_api(healthy_stack, tmp_path):
    verdict, run_dir = run("calibration-loss.yaml", healthy_stack, tmp_path)
    deleted = json.loads((run_dir / "ground-truth-deleted.json").read_text())
    assert len(deleted) == 20
    assert verdict["measured"]["lost_writes"] == 20
    assert sorted(verdict["loss"]["lost_keys"]) == sorted(deleted)
    assert verdict["measured"]["unexpected_writes"] == 0
    assert verdict["measured"]["acked_writes"] > 100


def test_the_loss_after_the_fault_is_exactly_the_rows_deleted_and_the_span_they_cover(healthy_stack, tmp_path):
    from harness.checkers import verdict as judge_again
    verdict, run_dir = run("calibration-loss-after.yaml", healthy_stack, tmp_path)
    truth = json.loads((run_dir / "ground-truth-deleted-after.json").read_text())
    assert len(truth["keys"]) > 50 and 4.0 <= truth["span_s"] <= 5.5, truth["span_s"]
    assert sorted(verdict["loss"]["lost_keys"]) == sorted(truth["keys"])[:len(verdict["loss"]["lost_keys"])]
    assert verdict["measured"]["lost_writes"] == verdict["loss"]["lost_after_fault"] == len(truth["keys"])
    assert verdict["measured"]["rpo_s"] == 0.0  # nothing acknowledged before the fault was lost
    # The span starts at the fault start (or a survivor just after it): within one heartbeat of it.
    assert truth["span_s"] - 1.0 <= verdict["loss"]["loss_after_fault_s"] <= truth["span_s"] + 0.001
    assert verdict["status"] == "pass", verdict["reason"]
    # Judged against an objective below the span, the same history fails on RPO alone.
    stricter = {"scenario": verdict["scenario"], **verdict["objectives"], "rpo_s": truth["span_s"] - 2}
    again = judge_again(history.read(run_dir / "history.jsonl"), stricter, {})
    assert [c["name"] for c in again["criteria"] if not c["passed"]] == ["rpo"]
    print(f"\nloss after the fault: {len(truth['keys'])} rows deleted over {truth['span_s']:.3f} s; "
          f"measured {verdict['loss']['lost_after_fault']} over {verdict['loss']['loss_after_fault_s']:.3f} s")


def test_writes_in_doubt_are_info_never_ok(healthy_stack, tmp_path):
    verdict, run_dir = run("calibration-in-doubt.yaml", healthy_stack, tmp_path)
    ops = [e for e in history.read(run_dir / "history.jsonl") if e["kind"] == "op"]
    outcomes: dict[str, set] = {}
    for op in ops:
        if op["type"] != "invoke":
            outcomes.setdefault(op["key"], set()).add(op["type"])
    in_doubt = {k for k, types in outcomes.items() if "info" in types}
    assert in_doubt, "freezing the database mid-commit left no write in doubt"
    assert not any("ok" in outcomes[k] for k in in_doubt), "a write in doubt was also recorded as acknowledged"
    # Every invoke completed (the load stops gracefully) and nothing acknowledged was lost.
    invoked = {op["key"] for op in ops if op["type"] == "invoke"}
    assert invoked == set(outcomes)
    assert verdict["measured"]["lost_writes"] == 0
    assert verdict["measured"]["in_doubt_writes"] == len(in_doubt)


# The negative twins (database-failure, database-content-rewrite, model-restore-fails …) run in
# `make negative` (scripts/check_negative_controls.py: each must FAIL for the criterion it names),
# which CI runs on every landing; the harm library (test_ground_truth.py) covers the same
# criteria with foreign harms.


# -- issue 9: verdicts that can fail, against ground truth ---------------------------------------------

REWIND_S = 10.0


def _wait_for_dense_heartbeats(target: dict, seconds: float, timeout_s: float = 60.0) -> None:
    """The ground truth needs its reference signal: a heartbeat acknowledged every second for the
    last `seconds` (an earlier test may have kept the database down)."""
    from harness.records.heartbeat_ledger import read_window
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = time.time()
        walls = [now - seconds] + [w for _, w, _ in read_window(target["heartbeat_ledger"], now - seconds, now)] + [now]
        if max(b - a for a, b in zip(walls, walls[1:])) < 1.5:
            return
        time.sleep(1)
    raise AssertionError(f"no dense heartbeat for {seconds} s within {timeout_s} s")


def test_a_pitr_rewind_of_n_seconds_measures_rpo_n_and_fails_below_it(healthy_stack, tmp_path):
    from harness.checkers import verdict as judge_again
    _wait_for_dense_heartbeats(healthy_stack, REWIND_S + 5)
    verdict, run_dir = run("calibration-rewind.yaml", healthy_stack, tmp_path)
    rpo = verdict["measured"]["rpo_s"]
    assert rpo is not None and abs(rpo - REWIND_S) <= 1.0, f"measured RPO {rpo} s for a {REWIND_S} s rewind"
    assert verdict["measured"]["heartbeat_lost"] >= REWIND_S - 1  # the heartbeat ledger is what shows it
    assert verdict["status"] == "pass", verdict["reason"]
    # The same history against an objective below N must fail on RPO.
    stricter = {"scenario": verdict["scenario"], **verdict["objectives"], "rpo_s": REWIND_S - 2}
    again = judge_again(history.read(run_dir / "history.jsonl"), stricter, {})
    assert again["status"] == "fail"
    assert [c["name"] for c in again["criteria"] if not c["passed"]] == ["rpo"]


def test_a_sampler_that_dies_makes_the_run_an_error(healthy_stack, tmp_path, monkeypatch):
    from harness.recorders.sampler import Sampler
    real = Sampler._schedule

    def dies_after_a_second(self):
        timer = threading.Timer(1.0, self._stop.set)  # stop scheduling ...
        timer.start()
        real(self)
        raise RuntimeError("sampler crashed")  # ... then die as a crash would
    monkeypatch.setattr(Sampler, "_schedule", dies_after_a_second)
    verdict, _ = run("calibration-outage.yaml", healthy_stack, tmp_path)
    assert verdict["status"] == "error" and "instrument failed: sampler" in verdict["reason"], verdict["reason"]
