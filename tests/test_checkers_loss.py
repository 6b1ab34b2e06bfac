"""loss(): Jepsen set semantics and RPO on synthetic histories (see tests/synthetic.py)."""
import json

import pytest

from harness.checkers.loss import loss
from synthetic import History


def test_nothing_lost():
    h = History().fault(10, 11).write("a", 1).write("b", 2).final_read(20, ["a", "b"])
    r = loss(h.events())
    assert r["known"] is True
    assert r["lost_writes"] == 0 and r["lost_keys"] == []
    assert r["acked_writes"] == 2 and r["attempted_writes"] == 2
    assert r["rpo_s"] == 0.0
    assert r["loss_window"] is None
    json.dumps(r)


def test_lost_unexpected_recovered_duplicates_exactly():
    h = History().fault(10, 11)
    h.write("ok-kept", 1).write("ok-lost-1", 4).write("ok-lost-2", 9.5)
    h.write("fail-found", 5, "fail").write("fail-gone", 5.5, "fail")
    h.write("info-found", 6, "info").write("info-gone", 6.5, "info")
    h.write("never-completed", 7, None)
    h.final_read(20, ["ok-kept", "ok-kept", "fail-found", "info-found", "never-completed", "ghost", "ghost", "zz"])
    r = loss(h.events())
    assert r["lost_keys"] == ["ok-lost-1", "ok-lost-2"]
    assert r["unexpected_keys"] == ["ghost", "zz"]
    assert r["recovered_keys"] == ["fail-found", "info-found", "never-completed"]
    assert r["duplicate_keys"] == ["ghost", "ok-kept"]
    assert (r["lost_writes"], r["unexpected_writes"], r["recovered_writes"], r["duplicate_writes"]) == (2, 2, 3, 2)
    assert r["attempted_writes"] == 8
    assert r["acked_writes"] == 3
    assert r["failed_writes"] == 2
    assert r["in_doubt_writes"] == 3  # two info, one invocation that never completed
    assert r["read_keys"] == 6


def test_info_is_never_counted_as_acknowledged():
    h = History().fault(10).write("x", 5, "info").final_read(20, [])
    r = loss(h.events())
    assert r["acked_writes"] == 0
    assert r["lost_writes"] == 0
    assert r["in_doubt_writes"] == 1
    assert r["rpo_s"] == 0.0


def test_ok_wins_over_an_earlier_info_for_the_same_key():
    h = History().fault(10)
    h.write("x", 1, "info").add("op", 2, type="ok", f="write", key="x")
    r = loss(h.final_read(20, []).events())
    assert r["acked_writes"] == 1 and r["in_doubt_writes"] == 0
    assert r["lost_keys"] == ["x"]


def test_reads_are_not_writes():
    h = History().fault(10).write("a", 1)
    h.add("op", 2, type="invoke", f="read", key="zzz").add("op", 2.1, type="ok", f="read", key="zzz")
    r = loss(h.final_read(20, ["a"]).events())
    assert r["attempted_writes"] == 1 and r["unexpected_writes"] == 0


def test_no_final_read_is_unknown_never_zero():
    h = History().fault(10).write("a", 1)
    r = loss(h.events())
    assert r["known"] is False
    assert r["lost_writes"] is None
    assert r["rpo_s"] is None
    assert r["error"] == "no final read"
    assert r["acked_writes"] == 1


def test_failed_final_read_is_unknown():
    h = History().fault(10).write("a", 1).final_read(20, [], ok=False, error="connection refused")
    r = loss(h.events())
    assert r["known"] is False and r["lost_writes"] is None
    assert r["error"] == "final read failed: connection refused"


def test_the_last_final_read_counts():
    h = History().fault(10).write("a", 1).final_read(20, [], ok=False, error="timeout").final_read(25, ["a"])
    r = loss(h.events())
    assert r["known"] is True and r["lost_writes"] == 0


def test_rpo_is_fault_start_minus_earliest_lost_ack():
    h = History().fault(100, 101)
    h.write("kept", 10, latency_s=0.5)
    h.write("lost-early", 40, latency_s=0.5)   # acknowledged at 40.5
    h.write("lost-late", 99, latency_s=0.5)    # acknowledged at 99.5
    h.final_read(200, ["kept"])
    r = loss(h.events())
    assert r["rpo_s"] == 59.5
    assert r["rpo_raw_s"] == 59.5
    assert r["loss_window"]["earliest_t"] == -59.5
    assert r["loss_window"]["latest_t"] == -0.5
    assert r["loss_window"]["earliest_ack_t"] == 40.5


def test_loss_acknowledged_after_the_fault_clamps_rpo_to_zero():
    h = History().fault(100).write("after", 110).final_read(200, [])
    r = loss(h.events())
    assert r["lost_writes"] == 1
    assert r["rpo_s"] == 0.0
    assert r["rpo_raw_s"] == -10.01
    assert r["loss_window"]["earliest_t"] == 10.01


def test_loss_after_the_fault_spans_from_the_last_survivor_to_the_last_lost():
    h = History().fault(100)
    h.write("before", 90).write("kept-early", 105)
    h.write("a1", 110).write("a2", 120)          # lost
    h.write("kept", 150)                         # survived between: does not shorten the span
    h.write("b1", 160).write("b2", 175)          # lost
    h.final_read(200, ["before", "kept-early", "kept"])
    r = loss(h.events())
    assert r["lost_after_fault"] == 4
    assert r["loss_after_fault_s"] == pytest.approx(175.01 - 105.01)
    assert r["rpo_s"] == 0.0


def test_two_servers_accepting_writes_make_the_loss_unknown():
    """A split brain: the read went to one side, where every acknowledged key happens to be. It
    proves nothing about what clients will keep: unknown, never zero."""
    h = History().fault(10).write("a", 1).write("b", 12)
    h.final_read(20, ["a", "b"], servers={"15401": "primary", "15402": "primary"})
    r = loss(h.events())
    assert r["known"] is False and "split brain" in r["error"] and "15401, 15402" in r["error"]
    h = History().fault(10).write("a", 1).write("b", 12)
    h.final_read(20, ["a", "b"], servers={"15401": "down", "15402": "primary"})
    assert loss(h.events())["known"] is True


def test_loss_without_a_fault_has_no_rpo():
    h = History().write("a", 1).final_read(20, [])
    r = loss(h.events())
    assert r["lost_writes"] == 1 and r["rpo_s"] is None


def test_integer_and_mixed_keys_sort():
    h = History().fault(10).write(3, 1).write(1, 1).write("a", 1).final_read(20, [])
    assert loss(h.events())["lost_keys"] == [1, 3, "a"]


def test_a_million_ops():
    n = 500_000  # invoke + completion = 1e6 op events
    events = []
    for i in range(n):
        t = i * 0.001
        events.append({"kind": "op", "t": t, "wall": "", "type": "invoke", "f": "write", "key": i})
        typ = "ok" if i % 100 else "info"
        events.append({"kind": "op", "t": t + 0.0005, "wall": "", "type": typ, "f": "write", "key": i})
    events.insert(n, {"kind": "fault", "t": 250.0, "wall": "", "phase": "start", "name": "kill"})
    read = [i for i in range(n) if i % 1000 != 1]  # loses 500 acknowledged writes
    events.append({"kind": "final_read", "t": 1000.0, "wall": "", "keys": read, "ok": True})
    r = loss(events)
    assert r["attempted_writes"] == n
    assert r["acked_writes"] == n - n // 100
    assert r["in_doubt_writes"] == n // 100
    assert r["lost_writes"] == n // 1000
    assert r["recovered_writes"] == n // 100
    assert r["unexpected_writes"] == 0 and r["duplicate_writes"] == 0
    assert r["rpo_s"] == 250.0 - 0.0015


def test_largest_gap_counts_the_window_edges():
    from harness.checkers.loss import largest_gap
    assert largest_gap([], 0.0, 10.0) == (10.0, 0.0)
    assert largest_gap([9.0, 1.0, 4.0, 20.0], 0.0, 10.0) == (5.0, 4.0)  # out-of-window times ignored
    assert largest_gap([2.0], 0.0, 3.0) == (2.0, 0.0)
