"""verdict(): statuses, criteria and schema on synthetic histories (see tests/synthetic.py)."""
import json

import pytest

from harness.checkers import detection, functions, integrity, verdict
from synthetic import History, healthy_run, objectives

TOP_KEYS = {"scenario", "status", "reason", "run_id", "experiment", "title", "started", "ended", "objectives",
            "measured", "criteria", "loss", "integrity", "functions", "flags",
            "negative_control", "expect_failure", "calibration", "existing_rows", "steps"}
MEASURED_KEYS = {"rto_s", "ttd_s", "rpo_s", "downtime_s", "error_count", "availability_pct", "acked_writes",
                 "lost_writes", "unexpected_writes", "recovered_writes", "duplicate_writes", "failed_writes",
                 "in_doubt_writes", "detection_latency_s", "fault_start_t", "fault_end_t", "recovered_at_t",
                 "heartbeat_acked", "heartbeat_lost", "rpo_at_least", "corrupted_writes", "phases",
                 "clock_uncertainty_s", "service_rto_s", "data_loss_s", "lost_after_fault", "loss_after_fault_s",
                 "existing_rows", "existing_rows_lost", "existing_rows_changed", "witnesses", "heartbeat_set_aside", "servers",
                 "failover_write_gap_s", "failover_server_gap_s", "split_brain_writes"}


def criterion(v, name):
    (c,) = [c for c in v["criteria"] if c["name"] == name]
    return c


def test_pass_and_schema():
    run = {"run_id": "r1", "experiment": "experiments/local/db-kill.yaml", "title": "db kill",
           "started": "2025-01-01T00:00:00Z", "ended": "2025-01-01T00:01:00Z"}
    v = verdict(healthy_run().events(), objectives(), run)
    assert set(v) == TOP_KEYS
    assert set(v["measured"]) == MEASURED_KEYS
    assert set(v["objectives"]) == {"rto_s", "rpo_s", "stability_s", "timeout_s", "max_lost_writes",
                                    "critical_functions", "integrity_checks", "detection", "escalation", "rpo_warning",
                                    "max_p95_latency_s", "recovery"}
    assert set(v["loss"]) >= {"known", "lost_keys", "unexpected_keys", "recovered_keys", "duplicate_keys", "loss_window"}
    assert v["status"] == "pass", v["reason"]
    assert v["scenario"] == "database-failure"
    assert v["run_id"] == "r1" and v["title"] == "db kill" and v["ended"] == "2025-01-01T00:01:00Z"
    assert [c["name"] for c in v["criteria"]] == ["rto", "rpo", "corrupted_writes", "existing_rows", "critical_functions",
                                                  "data_integrity", "recovery_procedure", "every_step",
                                                  "steady_state_restored", "after_rollbacks"]
    assert all(c["passed"] for c in v["criteria"])
    assert set(v["criteria"][0]) == {"name", "passed", "measured", "objective", "detail"}
    assert v["measured"]["rto_s"] == 4.2
    assert v["measured"]["rpo_s"] == 0.0
    assert v["measured"]["fault_start_t"] == 10.0 and v["measured"]["recovered_at_t"] == 14.2
    assert "4.2 s" in criterion(v, "rto")["detail"] and "900 s" in criterion(v, "rto")["detail"]
    assert v["flags"] == []
    json.dumps(v)


def test_run_fields_default_to_none():
    v = verdict(healthy_run().events(), objectives())
    assert v["run_id"] is None and v["experiment"] is None and v["started"] is None


def test_rto_over_objective_fails():
    v = verdict(healthy_run().events(), objectives(rto_s=4))
    assert v["status"] == "fail"
    c = criterion(v, "rto")
    assert c["passed"] is False and c["measured"] == 4.2 and c["objective"] == 4
    assert "not under the 4 s objective" in c["detail"]
    assert "rto" in v["reason"]


def test_rto_equal_to_objective_fails():  # the BCP says RTO < 15 minutes
    assert criterion(verdict(healthy_run().events(), objectives(rto_s=4.2)), "rto")["passed"] is False


def test_never_recovers_fails_rto():
    h2 = History().steady_state(0, True).up(0, 10).fault(10, 11).down(10, 40).final_read(41, [])
    h2.checks_after_recovery(42)
    v = verdict(h2.events(), objectives())
    c = criterion(v, "rto")
    assert v["status"] == "fail"
    assert c["passed"] is False and c["measured"] is None
    assert "never stable within timeout" in c["detail"]
    assert v["measured"]["rto_s"] is None and v["measured"]["recovered_at_t"] is None


def test_recovery_after_timeout_fails_rto_even_under_the_rto_objective():
    h = History().steady_state(0, True).up(0, 10).fault(10, 11).down(10, 200).up(200, 210)
    h.final_read(211, []).checks_after_recovery(212)
    v = verdict(h.events(), objectives(timeout_s=180))
    c = criterion(v, "rto")
    assert c["passed"] is False
    assert "never stable within timeout" in c["detail"] and "180 s" in c["detail"]


def test_untrustworthy_sampler_fails_rto_and_is_flagged():
    h = healthy_run()
    h.stall(14.3, 3.0)
    v = verdict(h.events(), objectives())
    assert criterion(v, "rto")["passed"] is False
    assert "sampler stalled 3 s at t=14.3" in v["flags"]
    assert "RTO measured from an untrustworthy sampler" in v["flags"]


def test_no_final_read_fails_rpo_as_unknown():
    h = History().steady_state(0, True).up(0, 30).fault(10, 11).write("a", 1).checks_after_recovery(31)
    v = verdict(h.events(), objectives())
    c = criterion(v, "rpo")
    assert v["status"] == "fail"
    assert c["passed"] is False and c["measured"] is None
    assert c["detail"] == "no final read: loss unknown"
    assert v["loss"]["known"] is False
    assert v["measured"]["lost_writes"] is None
    assert "loss unknown: no final read" in v["flags"]


def test_rpo_value_and_objective():
    h = History().steady_state(0, True).up(0, 30).fault(100, 101)
    h.write("kept", 10).write("lost", 40, latency_s=0.5)
    beats = [(f"hb-{i}", float(i)) for i in range(70, 101)]  # witnesses: the last 30 s before the fault
    h.heartbeats(119, beats).final_read(120, ["kept"] + [k for k, _ in beats]).checks_after_recovery(121)
    h.up(30, 130)
    v = verdict(h.events(), objectives())
    assert v["measured"]["rpo_s"] == 59.5
    c = criterion(v, "rpo")
    assert c["passed"] is True and c["measured"] == 59.5
    assert "1 of 33 acknowledged writes lost" in c["detail"] and "59.5 s before the fault" in c["detail"]
    assert v["loss"]["lost_keys"] == ["lost"]
    assert v["loss"]["loss_window"]["earliest_t"] == -59.5
    assert criterion(verdict(h.events(), objectives(rpo_s=30)), "rpo")["passed"] is False


def test_max_lost_writes_zero_fails_on_any_loss():
    h = healthy_run()
    h.write("acked-after-fault", 12)  # acknowledged after the fault start: RPO 0, but lost
    v = verdict(h.events(), objectives(max_lost_writes=0))
    c = criterion(v, "rpo")
    assert v["measured"]["rpo_s"] == 0.0 and v["measured"]["lost_writes"] == 1
    assert c["passed"] is False
    assert "at most 0 lost writes" in c["detail"]
    assert criterion(verdict(h.events(), objectives()), "rpo")["passed"] is True


def test_acknowledged_writes_lost_after_the_fault_count_against_the_rpo():
    """A split brain: the old primary keeps acknowledging for 30 s after the fault and all of it is
    thrown away. The recovery point is the fault start (RPO 0 by its letter), yet 30 s of
    acknowledged writes are gone: the RPO criterion must FAIL against a 10 s objective."""
    h = healthy_run(end=40.0)
    for i in range(30):
        h.write(f"split-{i}", 11.0 + i)  # acknowledged after the fault at 10, absent from the final read
    v = verdict(h.events(), objectives(rpo_s=10))
    c = criterion(v, "rpo")
    assert v["measured"]["rpo_s"] == 0.0 and v["loss"]["lost_after_fault"] == 30
    assert c["passed"] is False, c["detail"]
    assert "30 of them acknowledged after the fault started" in c["detail"]
    assert "not under the 10 s objective" in c["detail"]
    assert criterion(verdict(h.events(), objectives(rpo_s=300)), "rpo")["passed"] is True


def test_a_manual_recovery_that_never_ran_fails_the_recovery_procedure():
    """bcp.yaml says the scenario recovers by a procedure; an experiment that lost (or mis-tagged)
    it has no recovery event. Where recovery is automatic that is right; where manual it FAILS."""
    events = healthy_run().events()
    assert criterion(verdict(events, objectives(recovery="automatic")), "recovery_procedure")["passed"]
    v = verdict(events, objectives(recovery="manual"))
    c = criterion(v, "recovery_procedure")
    assert v["status"] == "fail" and c["passed"] is False
    assert "prescribes a manual recovery procedure" in c["detail"], c["detail"]
    h = healthy_run()
    h.add("recovery", 12.0, phase="start", name="restore_database")
    h.add("recovery", 13.0, phase="end", name="restore_database", ok=True)
    assert criterion(verdict(h.events(), objectives(recovery="manual")), "recovery_procedure")["passed"]


def test_a_wall_clock_step_during_the_run_widens_the_rpo_and_is_flagged():
    h = _rewound_run(10)
    baseline = verdict(h.events(), objectives())
    for e in h.events():
        if e["kind"] == "heartbeat":
            e["clock_step_s"] = -4.0  # the wall clock went back 4 s after the fault (NTP, a VM resumed)
    v = verdict(h.events(), objectives(rpo_s=13))
    assert v["measured"]["rpo_s"] == pytest.approx(baseline["measured"]["rpo_s"] + 4.0)
    assert not criterion(v, "rpo")["passed"]  # 10 s measured, but only known to within 4 s
    assert any("wall clock stepped 4 s" in f for f in v["flags"])
    assert criterion(verdict(h.events(), objectives(rpo_s=300)), "rpo")["passed"]


def test_key_lists_are_truncated_counts_are_not():
    h = healthy_run()
    for i in range(120):
        h.write(f"lost-{i:03d}", 9)
    v = verdict(h.events(), objectives())
    assert v["measured"]["lost_writes"] == 120
    assert len(v["loss"]["lost_keys"]) == 50 and v["loss"]["lost_keys"][0] == "lost-000"


def test_missing_critical_function_fails_naming_it():
    h = History().steady_state(0, True).up(0, 30).fault(10, 11).final_read(31, [])
    h.function(31, "ready").function(31, "optimize", ok=False, detail="HTTP 500").checks_after_recovery(32, functions=())
    v = verdict(h.events(), objectives())
    c = criterion(v, "critical_functions")
    assert v["status"] == "fail"
    assert c["passed"] is False
    assert "history never checked" in c["detail"]
    assert "optimize failed (HTTP 500)" in c["detail"]
    assert c["measured"] == {"ready": True, "optimize": False, "history": None}


def test_a_function_checked_only_before_the_fault_does_not_count():
    h = History().steady_state(0, True).up(0, 30).function(1, "history").fault(10, 11).final_read(31, [])
    h.checks_after_recovery(32, functions=("ready", "optimize"))
    assert criterion(verdict(h.events(), objectives()), "critical_functions")["passed"] is False


def test_last_result_per_check_wins():
    h = healthy_run()
    h.integrity(40, "models", ok=False, detail="sha256 mismatch").integrity(45, "models", ok=True)
    assert criterion(verdict(h.events(), objectives()), "data_integrity")["passed"] is True
    h.integrity(50, "amcheck", ok=False, detail="index corrupted")
    c = criterion(verdict(h.events(), objectives()), "data_integrity")
    assert c["passed"] is False and "amcheck failed (index corrupted)" in c["detail"]


def test_scenario_integrity_checks_and_functions_come_from_objectives():
    h = healthy_run()
    v = verdict(h.events(), objectives(critical_functions=["ready", "golden_predictions"]))
    assert "golden_predictions never checked" in criterion(v, "critical_functions")["detail"]
    h.function(40, "golden_predictions")
    assert verdict(h.events(), objectives(critical_functions=["ready", "golden_predictions"]))["status"] == "pass"


DETECT = {"alert": "SvgAiApiDown", "max_latency_s": 30}


def test_detection_passes_when_fired_in_time_and_resolved():
    h = healthy_run().detection(12, "SvgAiApiDown", latency_s=2.0).detection(20, "SvgAiApiDown", resolved=True)
    v = verdict(h.events(), objectives(detection=DETECT))
    c = criterion(v, "detection")
    assert c["passed"] is True and c["measured"] == 2.0
    assert v["measured"]["detection_latency_s"] == 2.0
    assert v["status"] == "pass"
    assert "SvgAiApiDown" in v["reason"]


@pytest.mark.parametrize("events, words", [
    ([], "no detection recorded"),
    ([("SvgAiApiDown", False, None, None)], "it never fired"),
    ([("SvgAiApiDown", True, 45.0, True)], "later than the 30 s allowed"),
    ([("SvgAiApiDown", True, 5.0, None)], "never resolved"),
    ([("SvgAiApiDown", True, 5.0, 12.0)], "before the service recovered"),
    ([("SvgAiDatabaseDown", True, 5.0, True)], "no detection recorded"),
])
def test_detection_failures(events, words):
    h = healthy_run()
    for alert, fired, latency, resolved in events:
        h.detection(15, alert, fired=fired, latency_s=latency, resolved=resolved)
    v = verdict(h.events(), objectives(detection=DETECT))
    c = criterion(v, "detection")
    assert c["passed"] is False
    assert words in c["detail"]
    assert v["status"] == "fail"


def test_no_detection_criterion_without_detection_objective():
    v = verdict(healthy_run().events(), objectives())
    assert "detection" not in [c["name"] for c in v["criteria"]]


def test_steady_state_not_met_is_error_with_criteria_still_computed():
    h = healthy_run()
    h.steady_state(0.5, False)
    v = verdict(h.events(), objectives())
    assert v["status"] == "error"
    assert v["reason"].startswith("target not healthy before fault")
    assert len(v["criteria"]) == 10


def test_steady_state_not_met_names_the_probe_that_missed_and_what_it_answered():
    # The control records each probe as Chaos Toolkit ran it; the reason must say which one missed.
    probes = [{"name": "api-ready", "status": "succeeded", "tolerance_met": True, "output": True},
              {"name": "rpo-exposure-under-warning", "status": "succeeded", "tolerance_met": False, "output": False},
              {"name": "optimize-works", "status": "failed", "tolerance_met": False, "output": None,
               "exception": "requests.exceptions.ReadTimeout: read timed out"}]
    v = verdict(healthy_run().steady_state(0.5, False, detail=probes).events(), objectives())
    assert v["status"] == "error"
    assert "rpo-exposure-under-warning: answered False" in v["reason"]
    assert "optimize-works: requests.exceptions.ReadTimeout" in v["reason"]
    assert "api-ready" not in v["reason"]


def test_no_fault_is_error():
    h = History().steady_state(0, True).up(0, 30).final_read(31, []).checks_after_recovery(32)
    v = verdict(h.events(), objectives())
    assert v["status"] == "error"
    assert v["reason"].startswith("no fault was injected")


def test_failed_fault_action_is_error():
    h = healthy_run()
    h2 = History()
    for e in h.events():
        if e["kind"] == "fault":
            e = {**e, "ok": False, "detail": "pg_ctl: no server running"}
        h2.add(e["kind"], e["t"], **{k: v for k, v in e.items() if k not in ("kind", "t", "wall")})
    v = verdict(h2.events(), objectives())
    assert v["status"] == "error"
    assert v["reason"].startswith("fault action failed: kill-primary")
    assert "nothing was tested" in v["reason"]


def test_interrupted_wins_over_everything():
    h = healthy_run()
    h.steady_state(0.5, False).marker(20, "interrupted", signal="SIGINT")
    v = verdict(h.events(), objectives())
    assert v["status"] == "interrupted"
    assert "SIGINT" in v["reason"]
    assert v["criteria"]


def test_fail_reason_names_each_failed_criterion():
    h = History().steady_state(0, True).up(0, 10).fault(10, 11).down(10, 30)
    v = verdict(h.events(), objectives())
    assert v["status"] == "fail"
    assert v["reason"].startswith("9 of 10 criteria failed")
    for name in ("rto", "rpo", "corrupted_writes", "existing_rows", "critical_functions", "data_integrity", "every_step",
                 "steady_state_restored", "after_rollbacks"):
        assert f"{name}:" in v["reason"]


def test_flags_report_unexpected_duplicates_recovered_and_in_doubt():
    h = healthy_run()
    h.write("maybe", 12, "info").final_read(40, ["k0", "k1", "k2", "k3", "k4", "k-late", "k0", "ghost", "maybe"])
    v = verdict(h.events(), objectives())
    flags = " | ".join(v["flags"])
    assert "1 key in the final read never written" in flags
    assert "1 key more than once in the final read" in flags
    assert "1 write reported failed or unknown found after recovery" in flags
    assert "1 write in doubt" in flags


def test_probe_comes_from_objectives():
    h = healthy_run()
    h.up(0, 30, probe="prometheus")
    v = verdict(h.events(), objectives(probe="prometheus"))
    assert v["measured"]["rto_s"] == 0.0


def test_objectives_without_rto_are_rejected():
    with pytest.raises(ValueError, match="rto_s"):
        verdict([], {"rpo_s": 300})


def test_collectors_directly():
    h = History().integrity(1, "amcheck").integrity(2, "models", ok=False, detail="bad").function(3, "ready")
    i = integrity(h.events())
    assert i["all_ok"] is False and i["failed"] == ["models"]
    assert i["checks"]["amcheck"] == {"ok": True, "detail": "clean", "t": 1}
    assert integrity(h.events(), since_t=1.5)["checks"].keys() == {"models"}
    assert integrity([])["all_ok"] is False  # nothing verified is not "all ok"
    assert functions(h.events())["all_ok"] is True
    d = detection(h.detection(5, "A", latency_s=3.0).detection(9, "A", fired=False, resolved=True).events(), "A")
    assert d == {"alert": "A", "found": True, "fired": True, "latency_s": 3.0, "resolved": True, "t": 5}


def test_detection_not_required_for_an_outage_shorter_than_the_alert_needs():
    # healthy_run's outage: fault at 10.0, stable again from 14.2 → RTO 4.2 s.
    h = healthy_run().detection(20, "SvgAiApiDown", fired=False)
    v = verdict(h.events(), objectives(detection=dict(DETECT, min_outage_s=5)))
    c = criterion(v, "detection")
    assert c["passed"] is True and "not required" in c["detail"]


def test_detection_required_for_an_outage_longer_than_min_outage():
    h = healthy_run().detection(20, "SvgAiApiDown", fired=False)
    v = verdict(h.events(), objectives(detection=dict(DETECT, min_outage_s=3)))
    assert criterion(v, "detection")["passed"] is False
    assert v["status"] == "fail"


def test_pass_reason_says_when_the_alert_was_not_required():
    h = healthy_run().detection(20, "SvgAiApiDown", fired=False)
    v = verdict(h.events(), objectives(detection=dict(DETECT, min_outage_s=5)))
    assert v["status"] == "pass" and "not required" in v["reason"] and "?" not in v["reason"]


# -- issue 9.2: a recovery that failed is a failed run ---------------------------------------------

def test_a_recovery_action_that_raised_fails_the_run():
    h = healthy_run()
    h.add("recovery", 11.0, phase="start", name="restore-latest")
    h.add("recovery", 12.0, phase="end", name="restore-latest", ok=False,
          detail="ActivityFailed: PITR brought back only 0 of 20 rows")
    v = verdict(h.events(), objectives())
    assert v["status"] == "fail"
    c = criterion(v, "recovery_procedure")
    assert not c["passed"] and "restore-latest failed" in c["detail"] and "0 of 20 rows" in c["detail"]


def test_a_recovery_action_that_never_finished_fails_the_run():
    h = healthy_run()
    h.add("recovery", 11.0, phase="start", name="restore-latest")
    v = verdict(h.events(), objectives())
    assert v["status"] == "fail" and "never finished" in criterion(v, "recovery_procedure")["detail"]


def test_a_completed_recovery_passes_and_is_named():
    h = healthy_run()
    h.add("recovery", 11.0, phase="start", name="restore-latest")
    h.add("recovery", 12.0, phase="end", name="restore-latest", ok=True)
    v = verdict(h.events(), objectives())
    assert v["status"] == "pass", v["reason"]
    assert criterion(v, "recovery_procedure")["measured"] == {"restore-latest": True}


def test_steady_state_not_restored_after_the_method_fails_the_run():
    h = healthy_run()
    h.add("marker", 40.0, name="steady_state", met=False, phase="after",
          detail=[{"name": "standby-streaming", "status": "succeeded", "tolerance_met": False}])
    v = verdict(h.events(), objectives())
    assert v["status"] == "fail"
    c = criterion(v, "steady_state_restored")
    assert not c["passed"] and "standby-streaming" in c["detail"]


def test_steady_state_never_checked_after_the_method_fails_the_run():
    h = History().steady_state(0, True).up(0, 10).fault(10, 11).up(10, 30)
    for i in range(3):
        h.write(f"k{i}", 2 + i)
    h.final_read(30.5, ["k0", "k1", "k2"]).checks_after_recovery(31).marker(30, "observe_end")
    v = verdict(h.events(), objectives())
    assert v["status"] == "fail" and not criterion(v, "steady_state_restored")["passed"]


# -- issue 9.1: RPO must be able to fail -------------------------------------------------------------

def _rewound_run(rewind_s: float, window_s: float = 600.0, fault_t: float = 100.0) -> History:
    """The database brought back to `rewind_s` before the fault: every acknowledgement (heartbeats
    one a second since t=-500, the run's own from t=95) after fault - rewind_s is gone."""
    h = History().steady_state(0, True).up(0, fault_t).fault(fault_t, fault_t + 1).up(fault_t + 1, fault_t + 30)
    point = fault_t - rewind_s
    beats = [(f"hb-{i}", float(i)) for i in range(int(fault_t - window_s), int(fault_t + 25))]
    for i in range(50):
        h.write(f"k{i}", fault_t - 5 + i * 0.1)
    kept = [k for k, t in beats if t < point] + [f"k{i}" for i in range(50) if fault_t - 5 + i * 0.1 + 0.01 < point]
    h.heartbeats(fault_t + 29, beats, window_s=window_s)
    h.final_read(fault_t + 29.5, kept).checks_after_recovery(fault_t + 30)
    h.marker(fault_t + 30, "observe_end").steady_state(fault_t + 31, True, phase="after")
    return h


@pytest.mark.parametrize("rewind_s", [10, 30, 60])
def test_a_rewind_of_n_seconds_measures_rpo_n(rewind_s):
    v = verdict(_rewound_run(rewind_s).events(), objectives())
    assert v["measured"]["rpo_s"] == pytest.approx(rewind_s, abs=1.0)
    assert criterion(v, "rpo")["passed"], criterion(v, "rpo")["detail"]
    v = verdict(_rewound_run(rewind_s).events(), objectives(rpo_s=rewind_s - 2))
    assert v["status"] == "fail" and not criterion(v, "rpo")["passed"]


def test_a_restore_older_than_the_ledger_window_is_at_least_and_fails():
    # Restored to an hour before the fault: every heartbeat in the 600 s window is lost.
    v = verdict(_rewound_run(3600).events(), objectives(rpo_s=300))
    c = criterion(v, "rpo")
    assert v["measured"]["rpo_at_least"] is True and v["measured"]["rpo_s"] == pytest.approx(600, abs=1)
    assert not c["passed"] and "at least 600 s" in c["detail"]


def test_at_least_below_the_objective_still_fails():
    # The ledger only reaches 20 s back and all of it is lost: the point could be any age.
    v = verdict(_rewound_run(3600, window_s=20).events(), objectives(rpo_s=300))
    c = criterion(v, "rpo")
    assert not c["passed"] and "older than the ledger reaches" in c["detail"]


def test_no_acknowledgement_before_the_fault_leaves_rpo_unproven():
    h = History().steady_state(0, True).up(0, 30).fault(10, 11)
    h.write("k-late", 20).final_read(30, ["k-late"]).checks_after_recovery(30).marker(30, "observe_end")
    v = verdict(h.events(), objectives())
    c = criterion(v, "rpo")
    assert not c["passed"] and "cannot be measured" in c["detail"]


# -- issue 9.5: content, not just presence -----------------------------------------------------------

def test_rows_present_but_changed_are_corrupted_writes_and_fail():
    # An UPDATE rewrote every row and nothing restored them: all present, none as acknowledged.
    h = healthy_run()
    keys = [f"k{i}" for i in range(5)] + ["k-late"]
    h.final_read(40, keys + [f"hb-{i}" for i in range(-60, 30)], changed=keys)
    v = verdict(h.events(), objectives())
    c = criterion(v, "corrupted_writes")
    assert v["status"] == "fail" and not c["passed"] and c["measured"] == 6
    assert criterion(v, "rpo")["passed"]  # nothing is missing: it is the content that is wrong
    assert v["loss"]["corrupted_keys"] == sorted(keys)


def test_a_final_read_without_digests_does_not_pass_content():
    h = healthy_run()
    h.add("final_read", 40, keys=["k0", "k1", "k2", "k3", "k4", "k-late"], ok=True)
    c = criterion(verdict(h.events(), objectives()), "corrupted_writes")
    assert not c["passed"] and "not verified" in c["detail"]


def test_unexpected_keys_in_the_key_space_are_reported():
    h = healthy_run()
    h.final_read(40, ["k0", "k1", "k2", "k3", "k4", "k-late", "k-never-written"] + [f"hb-{i}" for i in range(-60, 30)])
    v = verdict(h.events(), objectives())
    assert v["measured"]["unexpected_writes"] == 1 and v["loss"]["unexpected_keys"] == ["k-never-written"]


# -- issue 9.3: a fault must prove it happened ---------------------------------------------------------

def _quiet_run(effect):
    """A run in which nothing visibly went wrong after the fault."""
    h = History().steady_state(0, True).up(0, 40).fault(10, 11, effect=effect)
    for i in range(5):
        h.write(f"k{i}", 2 + i)
    beats = [(f"hb-{i}", float(i)) for i in range(-60, 40)]
    h.heartbeats(40.4, beats).final_read(40.5, [f"k{i}" for i in range(5)] + [k for k, _ in beats])
    h.checks_after_recovery(41).marker(40, "observe_end").steady_state(42, True, phase="after")
    return h.looked_everywhere(10, 40)


def test_a_fault_whose_evidence_says_no_effect_is_an_error():
    v = verdict(_quiet_run(effect=False).events(), objectives())
    assert v["status"] == "error" and v["reason"].startswith("the fault had no observable effect")


def test_a_fault_with_evidence_of_its_effect_may_pass_without_outage():
    v = verdict(_quiet_run(effect=True).events(), objectives())
    assert v["status"] == "pass", v["reason"]


def test_a_users_own_fault_with_nothing_observed_is_an_error():
    v = verdict(_quiet_run(effect=None).events(), objectives())
    assert v["status"] == "error" and "recorders observed none" in v["reason"]


def test_a_users_own_fault_is_proven_by_the_outage_it_caused():
    h = healthy_run()  # has an outage; make its fault one of the user's own
    events = [dict(e, effect=None) if e["kind"] == "fault" else e for e in h.events()]
    events = [{k: v for k, v in e.items() if not (k == "effect" and v is None)} for e in events]
    assert verdict(events, objectives())["status"] == "pass"


# -- issue 9.4: instruments that died ------------------------------------------------------------------

def test_an_instrument_that_failed_makes_the_run_an_error():
    h = healthy_run()
    h.add("marker", 20.0, name="instrument_failed", instrument="load generator",
          detail="exited with status 1 before the end of observation")
    v = verdict(h.events(), objectives())
    assert v["status"] == "error" and v["reason"].startswith("instrument failed: load generator")


def test_rpo_is_judged_at_the_far_end_of_a_gap_in_acknowledgements():
    # Heartbeats stop 200 s before the fault (the writer was down) and resume 5 s before it; the
    # database is rewound to 100 s before the fault: the point lies somewhere in the 195 s gap.
    h = History().steady_state(0, True).up(0, 100).fault(100, 101).up(101, 130)
    beats = [(f"hb-{i}", float(i)) for i in range(-400, -100)] + [(f"hb-{i}", float(i)) for i in range(95, 125)]
    h.heartbeats(129, beats).final_read(129.5, [k for k, t in beats if t < -100 or t > 101])
    h.checks_after_recovery(130).marker(130, "observe_end").steady_state(131, True, phase="after")
    v = verdict(h.events(), objectives(rpo_s=60))
    c = criterion(v, "rpo")
    assert v["measured"]["rpo_s"] == pytest.approx(5) and not c["passed"]
    assert "201 s" in c["detail"] and "somewhere in that gap" in c["detail"]


# -- issue 12.1: the phases of an outage ----------------------------------------------------------------

def test_phases_split_the_outage_at_alert_notification_and_recovery():
    from harness.checkers import phases
    h = History().steady_state(0, True).up(0, 10).fault(10, 11).down(10, 20).up(20, 40)
    h.add("detection", 40, alert="SvgAiApiDown", fired=True, latency_s=3.0, notified_latency_s=3.2)
    h.add("recovery", 15.0, phase="start", name="restore").add("recovery", 19.0, phase="end", name="restore", ok=True)
    p = phases(h.events(), recovered_at_t=20.0)
    assert {k: p[k] for k in ("detect_s", "notify_s", "respond_s", "restore_s")} == \
        {"detect_s": 3.0, "notify_s": 0.2, "respond_s": 1.8, "restore_s": 5.0}
    # One after the other here: the spans follow each other and add up to the outage.
    assert p["spans"] == {"detect_s": [0.0, 3.0], "notify_s": [3.0, 3.2], "respond_s": [3.2, 5.0],
                          "restore_s": [5.0, 10.0]}
    assert p["fault_to_stable_s"] == 10.0


def test_automatic_recovery_has_no_respond_phase_and_restores_from_the_fault():
    from harness.checkers import phases
    h = History().steady_state(0, True).up(0, 10).fault(10, 11).down(10, 14).up(14, 30)
    p = phases(h.events(), recovered_at_t=14.0)
    assert {k: p[k] for k in ("detect_s", "notify_s", "respond_s", "restore_s")} == \
        {"detect_s": None, "notify_s": None, "respond_s": None, "restore_s": 4.0}


def test_overlapping_phases_are_spans_not_a_sum():
    """Automatic recovery: restoring starts at the fault while detection and notification go on.
    The phases overlap; the outage is fault → stable (4.28 s), not detect + notify + restore."""
    from harness.checkers import phases
    h = History().steady_state(0, True).up(0, 10).fault(10, 11).down(10, 14.28).up(14.28, 30)
    h.add("detection", 30, alert="SvgAiApiDown", fired=True, latency_s=3.64, notified_latency_s=3.74)
    p = phases(h.events(), recovered_at_t=14.28)
    assert p["spans"] == {"detect_s": [0.0, 3.64], "notify_s": [3.64, 3.74], "restore_s": [0.0, 4.28]}
    assert p["fault_to_stable_s"] == 4.28 < p["detect_s"] + p["notify_s"] + p["restore_s"]


def test_a_write_without_a_digest_is_flagged_not_failed_when_others_are_checked():
    h = healthy_run()
    h.add("op", 21.0, type="invoke", f="write", key="k-broken-answer")
    h.add("op", 21.1, type="ok", f="write", key="k-broken-answer", digest=None)
    keys = ["k0", "k1", "k2", "k3", "k4", "k-late", "k-broken-answer"] + [f"hb-{i}" for i in range(-60, 30)]
    h.final_read(40, keys)
    v = verdict(h.events(), objectives())
    assert criterion(v, "corrupted_writes")["passed"], criterion(v, "corrupted_writes")["detail"]
    assert any("without a readable answer" in f for f in v["flags"])


# -- issue 18: no harm goes unjudged ---------------------------------------------------------------

def test_a_step_fails_whatever_its_provider():
    from harness.checkers.steps import step_outcome
    ok = {"status": "succeeded"}
    process = {"type": "action", "provider": {"type": "process", "path": "/bin/false"}}
    assert step_outcome(process, {**ok, "output": {"status": 1, "stdout": "", "stderr": "nope"}}) == \
        (False, "the process exited with status 1: nope")
    assert step_outcome(process, {**ok, "output": {"status": 0}}) == (True, None)
    http = {"type": "action", "provider": {"type": "http", "url": "http://x"}}
    assert step_outcome(http, {**ok, "output": {"status": 500}})[0] is False
    assert step_outcome(http, {**ok, "output": {"status": 204}}) == (True, None)
    assert step_outcome({**http, "expected_status": [500]}, {**ok, "output": {"status": 500}}) == (True, None)
    assert step_outcome({**http, "expected_status": 200}, {**ok, "output": {"status": 201}})[0] is False
    python = {"type": "action", "provider": {"type": "python", "module": "m", "func": "f"}}
    assert step_outcome(python, {"status": "failed", "exception": ["ActivityFailed: boom\n"]}) == \
        (False, "ActivityFailed: boom")


def _with_step(kind, section="method", tags=(), type_="action"):
    h = healthy_run()
    h.step(12.0, 12.5, f"a-{kind}-step", section=section, tags=tags, type=type_, provider="process", ok=False,
           detail="the process exited with status 1")
    return verdict(h.events(), objectives())


def test_a_failed_recovery_step_fails_the_procedure_and_a_failed_probe_every_step():
    v = _with_step("recovery", tags=["recovery"])
    assert v["status"] == "fail" and not criterion(v, "recovery_procedure")["passed"]
    assert "exited with status 1" in criterion(v, "recovery_procedure")["detail"]
    v = _with_step("probe", type_="probe")
    assert v["status"] == "fail" and not criterion(v, "every_step")["passed"]


def test_a_failed_fault_or_untagged_action_is_an_error_and_a_failed_rollback_fails_after_rollbacks():
    assert _with_step("fault", tags=["fault"])["status"] == "error"
    v = _with_step("untagged")
    assert v["status"] == "error" and "did not run as written" in v["reason"]
    v = _with_step("rollback", section="rollback")
    assert v["status"] == "fail" and not criterion(v, "after_rollbacks")["passed"]


def test_existing_rows_lost_before_the_recovery_point_or_changed_fail():
    h = healthy_run()
    h.fingerprint(31, "after", rows=100, lost=[("other-writer-7", -3000.0)])  # an hour before the fault
    v = verdict(h.events(), objectives())
    assert v["status"] == "fail" and not criterion(v, "existing_rows")["passed"]
    assert "other-writer-7" in criterion(v, "existing_rows")["detail"]
    h = healthy_run()
    h.fingerprint(31, "after", rows=100, changed=["other-writer-8"])
    assert not criterion(verdict(h.events(), objectives()), "existing_rows")["passed"]
    h = healthy_run()
    h.events()  # no fingerprint at all: the rows that existed were never looked at
    h._events = [e for e in h._events if e["kind"] != "fingerprint"]
    assert not criterion(verdict(h.events(), objectives()), "existing_rows")["passed"]


def test_a_row_created_after_the_recovery_point_may_go_with_the_rewind():
    """A rewind of ~20 s (writes lost from 20 s before the fault): a row created 5 s before the
    fault went with it legitimately (the RPO judges it); one created 60 s before must survive."""
    h = History().steady_state(0, True).up(0, 10).down(10, 14).up(14, 60)
    h.fingerprint(9.9, "before", taken_t=9.8).step(10.0, 11.0, "rewind", tags=["fault"]).fault(10.0, 11.0)
    beats = [(f"hb-{i}", float(i)) for i in range(-60, 60)]
    lost_beats = {k for k, t in beats if -10 <= t <= 10}
    h.heartbeats(60.4, beats).final_read(60.5, [k for k, _ in beats if k not in lost_beats])
    h.fingerprint(60.6, "after", lost=[("late-row", 5.0)]).checks_after_recovery(61).marker(60, "observe_end")
    h.steady_state(62, True, phase="after").after_rollbacks(63)
    v = verdict(h.events(), objectives())
    assert criterion(v, "existing_rows")["passed"], criterion(v, "existing_rows")["detail"]
    h._events = [e for e in h._events if not (e["kind"] == "fingerprint" and e["phase"] == "after")]
    h.fingerprint(60.6, "after", lost=[("old-row", -50.0)])
    assert not criterion(verdict(h.events(), objectives()), "existing_rows")["passed"]


def test_the_service_is_judged_in_a_scenario_that_names_another_component():
    h = healthy_run()  # the api probe is down 10 → 14.2
    h.up(0, 30, probe="prometheus")
    v = verdict(h.events(), objectives(probe="prometheus", rto_s=3))
    assert criterion(v, "rto")["passed"]  # prometheus never failed
    assert not criterion(v, "service_rto")["passed"] and v["status"] == "fail"


def test_after_the_rollbacks_a_row_gone_or_the_steady_state_broken_fails():
    h = healthy_run()
    h._events = [e for e in h._events if e["kind"] != "after_rollbacks"]
    h.after_rollbacks(33, digests={})
    assert not criterion(verdict(h.events(), objectives()), "after_rollbacks")["passed"]
    h._events = [e for e in h._events if e["kind"] != "after_rollbacks"]
    h.after_rollbacks(33, met=False)
    assert not criterion(verdict(h.events(), objectives()), "after_rollbacks")["passed"]
    h._events = [e for e in h._events if e["kind"] != "after_rollbacks"]
    assert not criterion(verdict(h.events(), objectives()), "after_rollbacks")["passed"]  # never checked


def test_too_few_witnesses_before_the_fault_leave_the_rpo_unproven():
    h = healthy_run()
    h._events = [e for e in h._events if e["kind"] != "heartbeat"]  # the heartbeat was frozen
    h.heartbeats(30.4, [(f"hb-{i}", float(i)) for i in range(-60, 2)])  # nothing in the 8 s before the fault
    read = next(e for e in h._events if e["kind"] == "final_read")
    read["keys"] = [k for k in read["keys"] if not (k.startswith("hb-") and int(k[3:]) >= 2)]
    v = verdict(h.events(), objectives())
    assert v["status"] == "error" and "too few witnesses" in v["reason"]
    assert v["measured"]["witnesses"]["largest_gap_s"] > 2


@pytest.mark.parametrize("build,needle", [
    (lambda h: h, "never fingerprinted before the fault"),
    (lambda h: h.fingerprint(9.9, "before", ok=False, error="disk full"), "fingerprint before the fault failed: disk full"),
    (lambda h: h.fingerprint(9.9, "before"), "never compared after recovery"),
    (lambda h: h.fingerprint(9.9, "before").fingerprint(31, "after", ok=False, error="timeout"),
     "could not be compared after recovery: timeout"),
])
def test_existing_rows_names_the_missing_evidence(build, needle):
    from harness.checkers.existing import existing_rows
    out = existing_rows(build(History()).events(), 5.0)
    assert out["known"] is False and needle in out["error"]
