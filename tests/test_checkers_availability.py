"""availability(): TTD, RTO, downtime and stalls on synthetic histories (see tests/synthetic.py)."""
import json

import pytest

from harness.checkers.availability import availability, fault_window
from synthetic import History


def test_no_failure_after_fault_is_zero_downtime():
    h = History().up(0, 30).fault(10, 12)
    a = availability(h.events())
    assert a["rto_s"] == 0.0
    assert a["recovered"] is True
    assert a["ttd_s"] is None
    assert a["first_failure_t"] is None
    assert a["error_count"] == 0
    assert a["availability_pct"] == 100.0
    assert a["downtime_s"] == 0.0
    assert a["flapping"] == 0
    assert a["samples"] == 200  # 10.0 .. 29.9
    assert a["trustworthy"] is True
    json.dumps(a)  # plain data


def test_single_outage_rto_is_first_ok_of_final_stable_run_minus_fault_start():
    h = History().up(0, 10.3).fault(10, 11).down(10.3, 14.2).up(14.2, 30)
    a = availability(h.events())
    assert a["rto_s"] == 4.2
    assert a["recovered_at_t"] == 14.2
    assert a["ttd_s"] == pytest.approx(0.3)
    assert a["first_failure_t"] == 10.3
    assert a["error_count"] == 39           # 10.3 .. 14.1
    assert a["samples"] == 43               # 10.0 .. 14.2, the recovery sample included
    assert a["availability_pct"] == round(100 * 4 / 43, 3)
    assert a["downtime_s"] == pytest.approx(3.9)
    assert a["outages"] == 1 and a["flapping"] == 0
    assert a["fault_start_t"] == 10 and a["fault_end_t"] == 11


def test_flapping_measures_from_the_last_stable_window():
    h = History().up(0, 10).fault(10, 11)
    h.down(10, 12).up(12, 13).down(13, 14).up(14, 15.5).down(15.5, 16).up(16, 30)
    a = availability(h.events())
    assert a["rto_s"] == 6.0
    assert a["recovered_at_t"] == 16.0
    assert a["outages"] == 3
    assert a["flapping"] == 2
    assert a["ttd_s"] == 0.0
    assert a["downtime_s"] == pytest.approx(3.5)


def test_short_success_window_followed_by_failure_is_not_recovery():
    # 4.9 s of success (shorter than 5 s stability), then failure again, then a real recovery.
    h = History().up(0, 10).fault(10).down(10, 11).up(11, 15.9).down(15.9, 16.5).up(16.5, 25)
    a = availability(h.events())
    assert a["rto_s"] == 6.5
    assert a["recovered_at_t"] == 16.5


def test_long_success_window_followed_by_failure_is_not_recovery_either():
    # A stable-looking 8 s window does not count when a failure follows within the observation.
    h = History().up(0, 10).fault(10).down(10, 11).up(11, 19).down(19, 20).up(20, 30)
    assert availability(h.events())["rto_s"] == 10.0


def test_final_run_shorter_than_stability_is_never_stable():
    h = History().up(0, 10).fault(10).down(10, 20).up(20, 23)
    a = availability(h.events())
    assert a["rto_s"] is None
    assert a["recovered"] is False
    assert a["recovered_at_t"] is None
    assert a["error_count"] == 100
    assert a["samples"] == 130  # incident window runs to the end of observation


def test_observation_ending_in_failure_never_recovers():
    h = History().up(0, 10).fault(10).down(10, 40)
    a = availability(h.events())
    assert a["rto_s"] is None and a["recovered"] is False
    assert a["availability_pct"] == 0.0
    assert a["ttd_s"] == 0.0
    assert a["downtime_s"] == pytest.approx(29.9)  # the last failed sample is the end of observation


def test_recovery_after_timeout_is_not_recovered():
    h = History().up(0, 10).fault(10).down(10, 200).up(200, 210)
    a = availability(h.events(), timeout_s=180)
    assert a["recovered"] is False
    assert a["rto_s"] is None
    assert a["stable_from_t"] == 200.0
    assert any("timeout" in w for w in a["warnings"])
    # Without a timeout the same history recovers.
    assert availability(h.events())["rto_s"] == 190.0


def test_recovery_exactly_at_timeout_counts():
    h = History().up(0, 10).fault(10).down(10, 190).up(190, 200)
    assert availability(h.events(), timeout_s=180)["rto_s"] == 180.0


def test_stability_window_is_a_parameter():
    h = History().up(0, 10).fault(10).down(10, 12).up(12, 14)
    assert availability(h.events(), stability_s=5)["recovered"] is False
    assert availability(h.events(), stability_s=1.5)["rto_s"] == 2.0


def test_observe_end_marker_bounds_the_observation():
    # Failures after observe_end are outside the observation period.
    h = History().up(0, 10).fault(10).down(10, 12).up(12, 20).marker(20, "observe_end").down(20.1, 21)
    a = availability(h.events())
    assert a["rto_s"] == 2.0
    assert a["observed_s"] == 10.0


def test_last_observe_end_marker_wins():
    h = History().up(0, 10).fault(10).down(10, 12).up(12, 20).marker(15, "observe_end").marker(19.9, "observe_end")
    assert availability(h.events())["observed_s"] == pytest.approx(9.9)


def test_failures_before_the_fault_do_not_count():
    h = History().up(0, 2).down(2, 3).up(3, 10).fault(10).up(10, 20)
    a = availability(h.events())
    assert a["rto_s"] == 0.0
    assert a["error_count"] == 0
    assert a["failures_before_fault"] == 10


def test_only_the_named_probe_counts():
    h = History().up(0, 10).fault(10).down(10, 20, probe="prometheus").up(20, 30, probe="prometheus").up(10, 30)
    assert availability(h.events())["rto_s"] == 0.0
    p = availability(h.events(), probe="prometheus")
    assert p["rto_s"] == 10.0
    assert p["samples"] == 101


def test_no_samples_for_probe():
    h = History().up(0, 10).fault(5)
    a = availability(h.events(), probe="prometheus")
    assert a["error"] == "no samples for probe 'prometheus'"
    assert a["recovered"] is False
    assert a["rto_s"] is None


def test_stall_inside_the_incident_is_reported_and_makes_the_measurement_untrustworthy():
    h = History().up(0, 10).fault(10).down(10, 12).up(12, 25).stall(14.3, 3.0).stall(1.0, 9.0)
    a = availability(h.events())
    assert a["rto_s"] == 2.0
    assert a["stalls"] == [{"t": 14.3, "recorder": "sampler", "gap_s": 3.0, "expected_s": 0.1}]  # not the one before
    assert a["trustworthy"] is False


def test_short_stall_is_reported_but_trusted():
    h = History().up(0, 10).fault(10).down(10, 12).up(12, 25).stall(14.3, 1.2)
    a = availability(h.events())
    assert len(a["stalls"]) == 1
    assert a["trustworthy"] is True


def test_sparse_samples_cannot_prove_stability():
    # A starved sampler: two ok samples 6 s apart would "last" 6 s, longer than the 5 s window.
    h = History().up(0, 10).fault(10).down(10, 12)
    h.sample(12, True).sample(18, True)
    a = availability(h.events())
    assert a["rto_s"] == 2.0
    assert a["trustworthy"] is False


def test_sparse_samples_cannot_prove_zero_downtime():
    # A sampler starved through the outage records nothing failed: the gap must not read as uptime.
    h = History().up(0, 10).fault(10).sample(10, True).up(16, 25)
    a = availability(h.events())
    assert a["rto_s"] == 0.0
    assert a["trustworthy"] is False
    assert a["max_gap_s"] == 6.0


def test_no_fault_measures_from_the_first_sample():
    h = History().up(0, 5).down(5, 6).up(6, 20)
    a = availability(h.events())
    assert a["fault_start_t"] is None
    assert a["rto_s"] == 6.0
    assert a["warnings"]


def test_fault_window_first_start_last_end():
    h = History().fault(10, 11, name="a").fault(12, 15, name="b")
    assert fault_window(h.events()) == (10, 15)
    assert fault_window([]) == (None, None)


# -- issue 9.4: the instruments must prove they were watching ------------------------------------

def test_zero_downtime_still_needs_a_full_stability_window_after_the_fault():
    # Success every 0.1 s, but observation ends 2 s after the fault: RTO 0 is not proven.
    h = History().up(0, 12).fault(10, 10.5).marker(12, "observe_end")
    a = availability(h.events(), stability_s=5)
    assert a["recovered"] is False and a["rto_s"] is None
    assert any("less than the 5 s stability window" in w for w in a["warnings"])


def test_the_gap_after_the_last_sample_counts_like_any_other_gap():
    # Samples stop at 20 (the sampler died) but observation goes on until 40: nobody watched.
    h = History().up(0, 10.3).fault(10, 11).down(10.3, 12).up(12, 20).marker(40, "observe_end")
    a = availability(h.events(), stability_s=5)
    assert a["recovered"] is False and a["rto_s"] is None
    assert a["max_gap_s"] == pytest.approx(20.1)
    assert any("nobody was watching" in w for w in a["warnings"])


def test_stable_since_is_the_one_definition_of_stable():
    from harness.checkers import stable_since
    up = [(10 + i / 10, True) for i in range(60)]          # 10.0 .. 15.9
    assert stable_since(up, 5.0, 16.0) == 10.0
    assert stable_since(up, 5.0, 19.0) is None              # the last sample is 3.1 s old
    assert stable_since([(9.9, False)] + up, 5.0, 16.0) == 10.0
    assert stable_since(up + [(16.0, False)], 5.0, 16.0) is None
    assert stable_since(up[:40], 5.0, 14.0) is None         # only 3.9 s of success
    assert stable_since([], 5.0, 1.0) is None


# -- the resume: timeouts that another answer overtook ----------------------------------------

def frozen(resume: float, watcher: bool = True, backlog_s: float = 0.35) -> History:
    """A 3 s freeze from t=10 as the sampler sees it (1 s timeouts, ticks every 0.1 s): requests
    sent during the freeze time out a second later, those sent in its last second sit in the
    server's backlog and are answered `backlog_s` after the resume (the oldest three too late);
    ticks after the resume are answered at once; with `watcher`, the watcher's request sent at
    10.5 on its own connection is answered 0.02 s after the resume."""
    h = History().up(0, 10).fault(10, resume)
    for i in range(30):
        sent = 10 + i / 10
        if sent + 1 < resume + backlog_s:
            h.sample(sent + 1, False, error="timeout", started=sent)
        else:
            h.sample(resume + backlog_s, True, started=sent)
    for i in range(200):
        sent = resume + 0.05 + i / 10
        h.sample(sent + 0.01, True, started=sent)
    if watcher:
        h.sample(resume + 0.02, True, started=10.5, watcher=True)
    return h


def test_a_timeout_overtaken_by_an_answer_is_dated_when_it_was_sent():
    a = availability(frozen(13.0).events())
    # The watcher's answer 0.02 s after the resume; the three requests sent at 12.0–12.2 that timed
    # out at 13.0–13.2 were stuck behind the freeze, not evidence that the service was down then.
    assert a["rto_s"] == pytest.approx(3.02)
    assert a["overtaken"] == 3
    assert a["recovered"] and a["trustworthy"]


def test_without_the_watcher_the_first_tick_after_the_resume_marks_it():
    a = availability(frozen(13.0, watcher=False).events())
    assert a["rto_s"] == pytest.approx(3.06)  # the tick sent 0.05 s after the resume, answered 0.01 s later
    assert a["overtaken"] == 3


def test_a_timeout_nobody_overtook_keeps_its_time():
    # Nothing answered while these requests waited: each proves the service down until its timeout.
    h = History().up(0, 10).fault(10, 13)
    for i in range(30):
        h.sample(10 + i / 10 + 1, False, error="timeout", started=10 + i / 10)
    h.up(13.95, 30)
    a = availability(h.events())
    assert a["overtaken"] == 0
    assert a["rto_s"] == pytest.approx(3.95)
    assert a["first_failure_t"] == 11.0


def test_a_service_that_keeps_losing_requests_never_recovers_though_others_are_answered():
    """The adversary: half the workers hung for good. Every other request times out, each overtaken
    by an answer; dated when sent, they still leave no run of five seconds."""
    h = History().up(0, 10).fault(10, 11)
    for i in range(200):
        sent = 10 + i / 10
        if i % 2:
            h.sample(sent + 1, False, error="timeout", started=sent)
        else:
            h.sample(sent + 0.01, True, started=sent)
    a = availability(h.events())
    assert a["overtaken"] > 90
    assert a["recovered"] is False and a["rto_s"] is None


def test_a_hang_that_began_before_the_fault_is_dated_no_earlier_than_the_fault():
    h = History().up(0, 9.9).fault(10, 11).sample(10.5, False, error="timeout", started=9.5).up(10.2, 30)
    a = availability(h.events())
    assert a["failures_before_fault"] == 0
    assert a["first_failure_t"] == 10.0
    assert a["recovered_at_t"] == pytest.approx(10.2)


def test_judged_times_rule_directly():
    from harness.checkers.availability import judged, judged_times
    samples = [(2.0, False, 1.0), (1.5, True, 1.4), (3.0, False, 2.5), (0.5, True)]
    assert judged_times(samples) == [1.0, 1.5, 3.0, 0.5]  # overtaken by 1.5; nothing answered in 2.5–3.0
    assert judged_times(samples, not_before=1.2) == [1.2, 1.5, 3.0, 0.5]
    assert judged(samples) == [(0.5, True), (1.0, False), (1.5, True), (3.0, False)]
