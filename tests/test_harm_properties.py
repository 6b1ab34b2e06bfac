"""Property: no harm written into a history can leave its verdict PASS.

Start from a synthetic run that passes (tests/synthetic.py healthy_run, with an objective of no
lost write so that any loss is a harm), let hypothesis write one harm into it — an acknowledged
key dropped from the final read, a digest changed, a gap or a flap in the samples, a step failed,
a row that existed before the fault lost or changed, a rollback that took or changed a row, the
steady state broken after the rollbacks, a write taken by a superseded primary — and check the verdict is never PASS. The harm library
(tests/test_ground_truth.py) does the same with real harms on the real stack.
"""
from __future__ import annotations

import copy

from hypothesis import given, settings, strategies as st

from harness.checkers import verdict
from synthetic import healthy_run, objectives

OBJECTIVES = objectives(max_lost_writes=0)


def base() -> list[dict]:
    h = healthy_run()
    h.step(60.0, 61.0, "a-rollback", section="rollback")  # a rollback that did its job
    return h.events()


def test_the_base_run_passes():
    v = verdict(base(), OBJECTIVES)
    assert v["status"] == "pass", v["reason"]


def _final_read(events):
    return next(e for e in events if e["kind"] == "final_read")


def drop_acknowledged_key(events, draw):
    read = _final_read(events)
    acked = sorted({e["key"] for e in events if e["kind"] == "op" and e["type"] == "ok"}
                   | {a[0] for e in events if e["kind"] == "heartbeat" for a in e["acked"]})
    key = draw(st.sampled_from(acked))
    read["keys"] = [k for k in read["keys"] if k != key]
    read["digests"].pop(str(key), None)


def change_a_digest(events, draw):
    read = _final_read(events)
    key = draw(st.sampled_from(sorted(read["digests"])))
    read["digests"][key] = "changed-" + draw(st.text(min_size=1, max_size=6))


def gap_in_samples(events, draw):
    """No sample at all for longer than half the stability window while the service counts as up."""
    start = draw(st.floats(min_value=15.0, max_value=26.0))
    length = draw(st.floats(min_value=2.6, max_value=4.0))
    events[:] = [e for e in events if not (e["kind"] == "sample" and start <= e["t"] < start + length)]


def failures_at_the_end(events, draw):
    """The service fails again after it looked stable, and never settles before observation ends."""
    n = draw(st.integers(min_value=1, max_value=20))
    for e in [e for e in events if e["kind"] == "sample" and e["probe"] == "api"][-n:]:
        e["ok"] = False
        e["error"] = "connection refused"


def fail_a_step(events, draw):
    ends = [e for e in events if e["kind"] == "step" and e["phase"] == "end"]
    e = draw(st.sampled_from(ends))
    e["ok"] = False
    e["detail"] = "the process exited with status 1"
    for f in events:  # a fault or recovery step carries its own outcome too
        if f["kind"] in ("fault", "recovery") and f.get("phase") == "end" and f.get("name") == e["name"]:
            f["ok"] = False


def lose_an_existing_row(events, draw):
    """A row that existed before the fault (created before it) is gone after recovery."""
    fp = next(e for e in events if e["kind"] == "fingerprint" and e["phase"] == "after")
    created = draw(st.floats(min_value=-3600.0, max_value=8.5))  # run clock; the fault is at 10
    fp.update(lost=fp["lost"] + 1, lost_sample=["someone-else-1"], lost_created_epoch=[created + 1e9])


def change_an_existing_row(events, draw):
    fp = next(e for e in events if e["kind"] == "fingerprint" and e["phase"] == "after")
    fp.update(changed=draw(st.integers(min_value=1, max_value=1000)), changed_sample=["someone-else-2"])


def a_rollback_takes_a_row(events, draw):
    rb = next(e for e in events if e["kind"] == "after_rollbacks")
    key = draw(st.sampled_from(sorted(rb["read"]["digests"])))
    if draw(st.booleans()):
        rb["read"]["digests"].pop(key)
    else:
        rb["read"]["digests"][key] = "changed-by-a-rollback"


def steady_state_broken_after_the_rollbacks(events, draw):
    next(e for e in events if e["kind"] == "after_rollbacks")["steady_state"] = {"met": False, "detail": "api-ready"}


def a_check_fails_after_recovery(events, draw):
    checks = [e for e in events if e["kind"] in ("function", "integrity")]
    draw(st.sampled_from(checks))["ok"] = False


def an_old_primary_takes_a_write(events, draw):
    """A failover, and then the old primary acknowledges one more write, which survives (read back
    everywhere): nothing is lost, and still two primaries took writes at once."""
    acks = [e for e in events if e["kind"] == "op" and e["type"] == "ok"]
    for e in acks:
        e["server"] = {"system_id": "7000", "timeline": 1 if e["t"] < 10 else 2, "port": 5432}
    promoted_t = min(e["t"] for e in acks if e["server"]["timeline"] == 2)
    sent = draw(st.floats(min_value=promoted_t + 0.001, max_value=29.0))
    key, wall = "after-promotion", events[0]["wall"]
    events += [{"kind": "op", "t": sent, "wall": wall, "type": "invoke", "f": "write", "key": key},
               {"kind": "op", "t": sent + 0.01, "wall": wall, "type": "ok", "f": "write", "key": key,
                "digest": f"d-{key}", "server": {"system_id": "7000", "timeline": 1, "port": 5432}}]
    read = _final_read(events)
    read["keys"].append(key)
    read["digests"][key] = f"d-{key}"
    next(e for e in events if e["kind"] == "after_rollbacks")["read"]["digests"][key] = f"d-{key}"


HARMS = [drop_acknowledged_key, change_a_digest, gap_in_samples, failures_at_the_end, fail_a_step,
         lose_an_existing_row, change_an_existing_row, a_rollback_takes_a_row,
         steady_state_broken_after_the_rollbacks, a_check_fails_after_recovery, an_old_primary_takes_a_write]


@settings(max_examples=300, deadline=None)
@given(harm=st.sampled_from(HARMS), data=st.data())
def test_no_harm_leaves_the_verdict_pass(harm, data):
    events = copy.deepcopy(base())
    harm(events, data.draw)
    events.sort(key=lambda e: e["t"])
    v = verdict(events, OBJECTIVES)
    assert v["status"] != "pass", f"{harm.__name__}: still PASS: {v['reason']}"
