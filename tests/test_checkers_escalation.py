"""The BCP's escalation matrix as criteria (harness/checkers/escalation.py): notification and
response per severity, on synthetic histories. Each criterion is shown passing and failing."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from harness.run import objectives as objectives_mod
from harness.checkers import verdict
from synthetic import History, healthy_run, objectives

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_negative_controls", ROOT / "scripts" / "check_negative_controls.py")
_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_check)
wrong_reason = _check.wrong_reason

CRITICAL = {"severity": "critical", "notify_s": 60, "respond_s": 300}
HIGH = {"severity": "high", "notify_s": 300, "respond_s": 900}
DETECTION = {"alert": "SvgAiApiDown", "max_latency_s": 30, "min_outage_s": 0}


def paged_run(fired_after_s: float = 3.0, notified_after_s: float | None = 3.1,
              recovery_after_s: float | None = 20.0) -> History:
    """healthy_run (fault at t=10, outage 10–14.2) with its alert evidence and, optionally, a
    runbook recovery started `recovery_after_s` after the fault."""
    h = healthy_run()
    fields = {"latency_s": fired_after_s, "resolved": True}
    if notified_after_s is not None:
        fields["notified_latency_s"] = notified_after_s
    h.add("detection", 31, alert="SvgAiApiDown", fired=True, **fields)
    if recovery_after_s is not None:
        h.add("recovery", 10 + recovery_after_s, phase="start", name="restore-latest")
        h.add("recovery", 10 + recovery_after_s + 1, phase="end", name="restore-latest", ok=True)
    return h


def judged(h: History, escalation: dict = CRITICAL, **overrides) -> dict:
    v = verdict(h.events(), objectives(detection=DETECTION, escalation=escalation, **overrides))
    return {c["name"]: c for c in v["criteria"]} | {"_verdict": v}


def test_the_project_matrix_is_the_bcps_with_immediate_set_to_60_s():
    bcp = objectives_mod.load(str(ROOT / "bcp.yaml"))
    assert bcp.escalation_matrix == {"critical": {"notify_s": 60, "respond_s": 300},
                                     "high": {"notify_s": 300, "respond_s": 900},
                                     "medium": {"notify_s": 900, "respond_s": 3600},
                                     "low": {"notify_s": 3600, "respond_s": 14400}}
    for sid, spec in bcp.scenarios.items():
        assert spec.get("severity") in objectives_mod.SEVERITIES, f"{sid} has no BCP severity"
    r = objectives_mod.resolve(bcp, "database-corruption")
    assert r["escalation"] == {"severity": "critical", "notify_s": 60, "respond_s": 300}
    assert objectives_mod.criterion_names(r)[-2:] == ["notification", "response"]


def test_an_unknown_severity_is_refused_naming_the_known_ones(tmp_path):
    text = open(ROOT / "bcp.yaml").read().replace("severity: medium", "severity: urgent", 1)
    p = tmp_path / "bcp.yaml"
    p.write_text(text)
    with pytest.raises(objectives_mod.ObjectivesError, match=r"severity must be a severity of the escalation_matrix "
                                                             r"\(critical, high, medium, low\), got 'urgent'"):
        objectives_mod.load(str(p))


def test_notified_and_responded_in_time_pass():
    c = judged(paged_run())
    assert c["notification"]["passed"] and c["notification"]["measured"] == pytest.approx(0.1)
    assert c["response"]["passed"] and c["response"]["measured"] == pytest.approx(17.0)
    assert "after alert SvgAiApiDown fired" in c["response"]["detail"]
    assert c["_verdict"]["status"] == "pass", c["_verdict"]["reason"]


def test_a_late_notification_fails_for_critical_but_not_for_high():
    h = paged_run(fired_after_s=3.0, notified_after_s=93.0, recovery_after_s=100.0)
    c = judged(h, CRITICAL)
    assert not c["notification"]["passed"]
    assert "notified 90 s after alert SvgAiApiDown fired, later than the 60 s a critical incident allows" \
        in c["notification"]["detail"]
    assert c["_verdict"]["status"] == "fail"
    assert judged(h, HIGH)["notification"]["passed"]


def test_a_notification_that_never_arrived_fails():
    c = judged(paged_run(notified_after_s=None))
    assert not c["notification"]["passed"] and "no notification reached the receiver" in c["notification"]["detail"]
    h = healthy_run()
    h.add("detection", 31, alert="SvgAiApiDown", fired=True, latency_s=3.0, resolved=True, receiver=False)
    c = judged(h)
    assert not c["notification"]["passed"] and "describes no notification receiver" in c["notification"]["detail"]


def test_an_alert_that_never_fired_notifies_nobody():
    h = healthy_run()
    h.add("detection", 31, alert="SvgAiApiDown", fired=False, resolved=False)
    c = judged(h)
    assert not c["notification"]["passed"] and "never fired" in c["notification"]["detail"]


def test_a_late_response_fails_for_critical_but_not_for_high():
    h = paged_run(recovery_after_s=400.0)
    c = judged(h, CRITICAL)
    assert not c["response"]["passed"]
    assert "recovery procedure started 397 s after alert SvgAiApiDown fired, later than the 300 s" in c["response"]["detail"]
    assert judged(h, HIGH)["response"]["passed"]


def test_without_an_alert_the_response_is_timed_from_the_fault():
    h = healthy_run()
    h.add("recovery", 10 + 320.0, phase="start", name="restore-latest")
    h.add("recovery", 10 + 321.0, phase="end", name="restore-latest", ok=True)
    v = verdict(h.events(), objectives(escalation=CRITICAL))
    c = {c["name"]: c for c in v["criteria"]}
    assert c["notification"]["passed"] and "not applicable" in c["notification"]["detail"]
    assert not c["response"]["passed"] and "after the fault (no alert fired)" in c["response"]["detail"]


def test_automatic_recovery_needs_no_response():
    c = judged(paged_run(recovery_after_s=None))
    assert c["response"]["passed"] and "not applicable: recovery is automatic" in c["response"]["detail"]


def test_a_manual_recovery_that_never_started_is_no_response():
    c = judged(paged_run(recovery_after_s=None), recovery="manual")
    assert not c["response"]["passed"] and "no recovery procedure started" in c["response"]["detail"]
    assert not c["recovery_procedure"]["passed"]
    assert judged(paged_run(), recovery="manual")["response"]["passed"]


def test_an_outage_too_short_to_page_for_needs_no_notification():
    h = healthy_run(outage=(10.0, 11.0))
    h.add("detection", 31, alert="SvgAiApiDown", fired=False, resolved=False)
    v = verdict(h.events(), objectives(detection={**DETECTION, "min_outage_s": 5}, escalation=CRITICAL))
    c = {c["name"]: c for c in v["criteria"]}
    assert c["detection"]["passed"] and c["notification"]["passed"]
    assert "not required" in c["notification"]["detail"]


def test_scenarios_without_a_severity_are_not_judged_on_the_matrix():
    v = verdict(healthy_run().events(), objectives())
    assert not {"notification", "response"} & {c["name"] for c in v["criteria"]}


def test_negative_control_a_twin_whose_runbook_starts_too_late_fails_on_response():
    """The synthetic twin of a critical runbook scenario: the on-call team starts the restore
    after 6 minutes. It must come out FAIL on `response`, exactly as scripts/check_negative_controls.py
    demands of a twin that names it."""
    h = paged_run(recovery_after_s=363.0)
    v = verdict(h.events(), objectives(detection=DETECTION, escalation=CRITICAL),
                {"negative_control": True, "expect_failure": ["response"]})
    assert wrong_reason(v) is None, wrong_reason(v)
    on_time = verdict(paged_run().events(), objectives(detection=DETECTION, escalation=CRITICAL),
                      {"negative_control": True, "expect_failure": ["response"]})
    assert wrong_reason(on_time) is not None  # the same twin responding in time proves nothing
