"""verdict(): statuses, criteria and schema on synthetic histories (see tests/synthetic.py)."""
import json

import pytest

from harness.checkers import detection, functions, integrity, verdict
from synthetic import History, healthy_run, objectives

TOP_KEYS = {"scenario", "status", "reason", "run_id", "experiment", "title", "started", "ended", "objectives",
            "measured", "criteria", "loss", "integrity", "functions", "flags"}
MEASURED_KEYS = {"rto_s", "ttd_s", "rpo_s", "downtime_s", "error_count", "availability_pct", "acked_writes",
                 "lost_writes", "unexpected_writes", "recovered_writes", "duplicate_writes", "failed_writes",
                 "in_doubt_writes", "detection_latency_s", "fault_start_t", "fault_end_t", "recovered_at_t"}


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
                                    "critical_functions", "integrity_checks", "detection"}
    assert set(v["loss"]) >= {"known", "lost_keys", "unexpected_keys", "recovered_keys", "duplicate_keys", "loss_window"}
    assert v["status"] == "pass", v["reason"]
    assert v["scenario"] == "database-failure"
    assert v["run_id"] == "r1" and v["title"] == "db kill" and v["ended"] == "2025-01-01T00:01:00Z"
    assert [c["name"] for c in v["criteria"]] == ["rto", "rpo", "critical_functions", "data_integrity"]
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
    h.write("kept", 10).write("lost", 40, latency_s=0.5).final_read(120, ["kept"]).checks_after_recovery(121)
    h.up(30, 130)
    v = verdict(h.events(), objectives())
    assert v["measured"]["rpo_s"] == 59.5
    c = criterion(v, "rpo")
    assert c["passed"] is True and c["measured"] == 59.5
    assert "1 of 2 acknowledged writes lost" in c["detail"] and "59.5 s before the fault" in c["detail"]
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
    assert len(v["criteria"]) == 4


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
    assert v["reason"].startswith("4 of 4 criteria failed")
    for name in ("rto", "rpo", "critical_functions", "data_integrity"):
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
