"""servers(): which database server took each write; a failover's write gap and its split brain."""
import pytest

from harness.checkers.servers import servers
from harness.checkers.verdict import verdict
from synthetic import History, healthy_run, objectives


def failover(h: History, old_after: list[float] = (), gap: tuple[float, float] = (10.0, 14.0),
             clocks: tuple[float, float] | None = None) -> History:
    """Writes every 0.1 s on timeline 1 until gap[0], on timeline 2 from gap[1]; plus writes sent
    at `old_after` times that the old server (timeline 1) acknowledged. With `clocks`, each
    server's own clock reads its offset plus the write's time as it executes it."""
    def at(server: int, t: float) -> dict:
        return {"server_at": clocks[server] + t} if clocks else {}
    for i in range(int(gap[0] * 10)):
        h.write(f"a{i}", i / 10, timeline=1, **at(0, i / 10))
    for i in range(int(gap[1] * 10), 300):
        h.write(f"b{i}", i / 10, timeline=2, **at(1, i / 10))
    for i, t in enumerate(old_after):
        h.write(f"old{i}", t, timeline=1)
    return h


def test_one_server_is_no_failover():
    s = servers(failover(History(), gap=(30.0, 30.0)).events())
    assert len(s["servers"]) == 1 and s["changes"] == [] and s["split_brain_writes"] == 0
    assert "one server took every acknowledged write" in s["detail"]


def test_a_clean_failover_measures_its_write_gap():
    s = servers(failover(History()).events())
    assert [x["id"] for x in s["servers"]] == ["7000/tl1", "7000/tl2"]
    [change] = s["changes"]
    assert change["write_gap_s"] == pytest.approx(4.1 - 0.01 + 0.01 - 0.0, abs=0.02)  # 9.91 → 14.01
    assert s["split_brain_writes"] == 0 and s["in_doubt_writes"] == 0


def test_the_failover_on_the_servers_own_clocks_is_last_execution_to_first():
    # The clients' acknowledgements say 9.91 → 14.01; the servers executed the last old write at
    # 1009.9 and the first new one at 1014.2 (their clocks, here 1000 s ahead): 4.3 s.
    h = failover(History(), clocks=(1000.0, 1000.2))
    [change] = servers(h.events())["changes"]
    assert change["server_gap_s"] == pytest.approx(4.3, abs=1e-6)
    assert change["write_gap_s"] == pytest.approx(4.1, abs=0.02)
    # A split-brain write the old server executed later does not shorten it; writes without a
    # server clock leave it unknown.
    h.write("late", 15.0, timeline=1, server_at=1015.0)
    assert servers(h.events())["changes"][0]["server_gap_s"] == pytest.approx(4.3, abs=1e-6)
    assert servers(failover(History()).events())["changes"][0]["server_gap_s"] is None


def test_writes_the_old_primary_took_after_the_new_one_are_a_split_brain():
    s = servers(failover(History(), old_after=[15.0, 16.5, 17.0]).events())
    assert s["split_brain_writes"] == 3
    assert s["split_brain_sample"] == ["old0", "old1", "old2"]
    assert s["split_brain_s"] == pytest.approx(17.01 - 14.01)
    assert "split brain" in s["detail"]


def test_a_write_sent_before_the_promotion_and_acknowledged_after_is_in_doubt_not_judged():
    h = failover(History())
    h.write("slow", 13.9, timeline=1, latency_s=0.5)  # sent before 14.01, acknowledged at 14.4
    s = servers(h.events())
    assert s["split_brain_writes"] == 0 and s["in_doubt_writes"] == 1


def test_the_servers_clocks_settle_a_write_in_doubt_either_way():
    # Both sent at 13.9, before the new server's first acknowledgement (14.01), both acknowledged
    # by the old server after it. The servers' clocks (epoch-like values here) say which one the
    # old primary executed while the new one was already executing writes.
    h = failover(History(), clocks=(1000.0, 1000.0))  # the new server's first: 1014.0
    h.write("executed-before", 13.9, timeline=1, latency_s=0.5, server_at=1013.95)
    h.write("executed-after", 13.9, timeline=1, latency_s=0.6, server_at=1014.2)
    s = servers(h.events())
    assert s["split_brain_writes"] == 1 and s["split_brain_sample"] == ["executed-after"]
    assert s["in_doubt_writes"] == 1  # executed before the promotion took a write: not a split brain


def test_a_failback_is_a_third_server_and_the_first_may_not_come_back_on_its_old_timeline():
    h = failover(History(), gap=(10.0, 12.0))
    h.write("back", 31.0, timeline=3)
    h.write("stale", 32.0, timeline=1)
    s = servers(h.events())
    assert [x["id"] for x in s["servers"]] == ["7000/tl1", "7000/tl2", "7000/tl3"]
    assert s["split_brain_writes"] == 1 and s["split_brain_sample"] == ["stale"]


def test_a_heartbeat_the_old_primary_took_after_the_new_one_is_a_split_brain_too():
    # The heartbeat writes through the same API as the load: an old primary that only its beats
    # reached (the load paused, or routed elsewhere) must not read as one server taking writes.
    h = failover(History()).heartbeats(40.0, [("hb-1", 5.0, 1), ("hb-2", 20.0, 2), ("hb-3", 21.0, 1)])
    s = servers(h.events())
    assert s["split_brain_writes"] == 1 and s["split_brain_sample"] == ["hb-3"]
    # The same beats, read twice (one event per read), are counted once.
    h.heartbeats(41.0, [("hb-3", 21.0, 1)])
    assert servers(h.events())["split_brain_writes"] == 1


def test_heartbeats_that_do_not_say_their_server_are_counted_as_unattributed_not_judged():
    h = failover(History())
    h.add("heartbeat", 40.0, acked=[["hb-1", 20.0, "d", 19.99, None], ["hb-2", 21.0, "d"]], window_s=600.0, ok=True)
    s = servers(h.events())
    assert s["split_brain_writes"] == 0 and s["unattributed_writes"] == 1  # the 3-field entry is an older ledger


def read_back_everything(h: History) -> History:
    """The final read finds every acknowledged write (what a split brain that merged back would show)."""
    keys = [e["key"] for e in h.events() if e["kind"] == "op" and e["type"] == "ok"]
    [read] = [e for e in h._events if e["kind"] == "final_read"]
    [after] = [e for e in h._events if e["kind"] == "after_rollbacks"]
    h._events = [e for e in h._events if e not in (read, after)]
    return h.final_read(read["t"], keys + [k for k in read["keys"] if k not in keys]).after_rollbacks(after["t"])


def test_the_verdict_fails_a_split_brain_and_names_the_keys():
    v_ok = verdict(read_back_everything(failover(healthy_run())).events(), objectives())
    assert v_ok["status"] == "pass", [c for c in v_ok["criteria"] if not c["passed"]]
    assert next(c for c in v_ok["criteria"] if c["name"] == "split_brain")["passed"] is True
    assert v_ok["measured"]["failover_write_gap_s"] == pytest.approx(4.1, abs=0.02)
    v = verdict(read_back_everything(failover(healthy_run(), old_after=[15.0])).events(), objectives())
    failed = [c for c in v["criteria"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["split_brain"] and v["status"] == "fail"
    assert failed[0]["measured"] == 1 and "old0" in failed[0]["detail"]
    # One server: no criterion to add (a split brain needs two).
    assert not [c for c in verdict(healthy_run().events(), objectives())["criteria"] if c["name"] == "split_brain"]


def test_the_failover_measured_is_this_runs_not_an_earlier_ones_the_heartbeat_remembers():
    # The heartbeat's ledger window reaches back before this run: beats on two earlier servers
    # (an earlier run's failover, 10 s before this run began) precede this run's fault at 10 s
    # and its failover at 14 s.
    h = failover(healthy_run(), clocks=(1000.0, 1000.2))
    h.heartbeats(30.0, [("hb-old-1", -20.0, 5), ("hb-old-2", -10.0, 6)])
    s = servers(h.events())
    assert [c["to"] for c in s["changes"]] == ["7000/tl6", "7000/tl1", "7000/tl2"], s["changes"]
    m = verdict(h.events(), objectives())["measured"]
    assert m["failover_write_gap_s"] == pytest.approx(4.1, abs=0.02)
    assert m["failover_server_gap_s"] == pytest.approx(4.3, abs=1e-6)
    # No change of server after the fault: nothing to report, whatever came before.
    m = verdict(failover(healthy_run(), gap=(5.0, 8.0)).events(), objectives())["measured"]
    assert m["failover_write_gap_s"] is None and m["failover_server_gap_s"] is None


def _with_window(h: History, t_fault: float, window=(18.3, 24.0)) -> History:
    h.add("fault", t_fault, phase="start", name="lose-the-leader-node")
    h.add("fault", t_fault + 0.1, phase="end", name="lose-the-leader-node", ok=True,
          detail={"node": "pg0", "expected_failover_window_s": list(window)})
    return h


def test_a_failover_is_measured_against_the_window_its_ha_settings_promise():
    # Writes on timeline 1 until 10 s, on timeline 2 from 29 s: a failover 19 s after a fault at 10 s.
    inside = _with_window(failover(History(), gap=(10.0, 29.0)), 10.0).events()
    v = verdict(inside, objectives())
    assert v["measured"]["failover_s"] == pytest.approx(19.01, abs=0.02)
    assert v["measured"]["expected_failover_window_s"] == [18.3, 24.0]
    assert not [f for f in v["flags"] if "HA settings" in f]
    # The same failover 6 s later is flagged: the settings do not say what the cluster does.
    late = verdict(_with_window(failover(History(), gap=(10.0, 29.0)), 4.0).events(), objectives())
    assert [f for f in late["flags"] if "outside the 18.3–24 s the HA settings promise" in f], late["flags"]
    # No newer server at all (automation paused): flagged as no failover.
    none = verdict(_with_window(failover(History(), gap=(30.0, 30.0)), 10.0).events(), objectives())
    assert none["measured"]["failover_s"] is None
    assert [f for f in none["flags"] if f.startswith("no failover")], none["flags"]


def test_without_a_declared_window_nothing_is_measured_or_flagged():
    v = verdict(failover(History()).events(), objectives())
    assert "failover_s" not in v["measured"] and not [f for f in v["flags"] if "HA settings" in f]
