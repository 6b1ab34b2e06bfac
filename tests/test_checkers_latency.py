"""p95_latency: the p95 of acknowledged optimize latency while the fault is active, judged on
synthetic histories (see tests/synthetic.py): failing, passing, and unknown never passing."""
from harness.checkers import verdict
from harness.checkers.latency import acknowledged_latencies, p95_latency, percentile
from synthetic import History, healthy_run, objectives


def slow_link_run(latency_s: float, fault=(10.0, 20.0)) -> History:
    """A zero-downtime run whose writes take `latency_s` while the fault is active, 0.01 s otherwise."""
    h = healthy_run(outage=None)
    h.fault(*fault, name="delay-database-link")
    for i in range(100):  # one write every 0.1 s while the link is slow
        h.write(f"slow-{i}", fault[0] + i * 0.1, latency_s=latency_s)
    return h


def criterion(v, name="p95_latency"):
    (c,) = [c for c in v["criteria"] if c["name"] == name]
    return c


def test_slow_link_fails_its_p95_objective():
    c = p95_latency(slow_link_run(1.2).events(), max_p95_s=1.0)
    assert not c["passed"]
    assert c["measured"] == 1.2
    assert "above the objective of 1 s" in c["detail"]


def test_fast_enough_link_passes():
    c = p95_latency(slow_link_run(0.6).events(), max_p95_s=1.0)
    assert c["passed"], c["detail"]
    assert c["measured"] == 0.6


def test_only_writes_invoked_during_the_fault_count():
    h = slow_link_run(0.4)
    for i in range(50):  # very slow writes before the fault are not this fault's latency
        h.write(f"before-{i}", 2.0 + i * 0.1, latency_s=5.0)
    lat = acknowledged_latencies(h.events(), 10.0, 20.0)
    assert len(lat) >= 100 and max(lat) < 0.5


def test_p95_is_nearest_rank():
    values = [0.1] * 95 + [9.0] * 5  # the slowest 5 % do not move the p95
    assert percentile(values, 95) == 0.1
    assert percentile(values + [9.0], 95) == 9.0
    assert percentile([], 95) is None


def test_no_acknowledged_write_during_the_fault_is_unknown_and_fails():
    h = History()
    h.fault(10.0, 20.0, name="delay-database-link")
    for i in range(10):
        h.write(f"failed-{i}", 10.0 + i, outcome="fail")
    c = p95_latency(h.events(), max_p95_s=1.0)
    assert not c["passed"] and c["measured"] is None
    assert "latency unknown" in c["detail"]


def test_verdict_judges_p95_latency_only_where_the_scenario_sets_it():
    events = slow_link_run(1.5).events()
    assert "p95_latency" not in [c["name"] for c in verdict(events, objectives())["criteria"]]
    v = verdict(events, objectives(max_p95_latency_s=1.0))
    assert not criterion(v)["passed"]
    assert v["status"] == "fail"
    assert v["objectives"]["max_p95_latency_s"] == 1.0
    v = verdict(slow_link_run(0.5).events(), objectives(max_p95_latency_s=1.0))
    assert criterion(v)["passed"] and v["status"] == "pass", v["reason"]


def test_only_the_time_the_fault_was_in_force_counts():
    # The start is stamped before the fault takes effect (starting a delayer takes a moment):
    # writes in that first second were fast, and must not water the p95 down.
    h = History()
    h.add("fault", 10.0, phase="start", name="delay-database-link")
    for i in range(100):  # 1 s not yet in force: fast
        h.write(f"early-{i}", 10.0 + i * 0.01, latency_s=0.01)
    for i in range(90):  # 9 s in force: slow
        h.write(f"slow-{i}", 11.0 + i * 0.1, latency_s=1.5)
    h.add("fault", 20.0, phase="end", name="delay-database-link", ok=True, detail={"active_s": 9.0})
    c = p95_latency(h.events(), max_p95_s=1.0)
    assert not c["passed"] and c["measured"] == 1.5, c["detail"]


def test_timed_out_calls_count_as_never_answered():
    """80 calls answered in 0.3 s and 20 that timed out: leaving the 20 out would give a p95 of
    0.3 s and a PASS; each is a user who never got an answer, and the p95 fails."""
    h = healthy_run(outage=None)
    h.fault(10.0, 20.0, name="delay-database-link")
    for i in range(80):
        h.write(f"fast-{i}", 10.0 + i * 0.1, latency_s=0.3)
    for i in range(20):
        h.write(f"timeout-{i}", 10.05 + i * 0.1, outcome="info", latency_s=3.0)
    c = p95_latency(h.events(), max_p95_s=1.0)
    assert not c["passed"] and c["measured"] is None
    assert "never answered" in c["detail"]


def test_a_few_unanswered_calls_are_the_slowest_and_can_still_pass():
    h = slow_link_run(0.4)  # 100 acknowledged in 0.4 s
    for i in range(3):
        h.write(f"refused-{i}", 12.0 + i, outcome="fail")
    c = p95_latency(h.events(), max_p95_s=1.0)
    assert c["passed"] and c["measured"] == 0.4, c["detail"]
    assert "3 never answered" in c["detail"]
