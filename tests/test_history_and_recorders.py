"""Unit tests: the history format, the load's Jepsen classification, the sampler's self-watch."""
from __future__ import annotations

import json
import threading
import time

import pytest

from harness.records import history
from harness.run.measure import wait_until_stable
from harness.records.history import History, HistoryError
from harness.recorders.load import classify
from harness.recorders.sampler import Sampler


def test_history_round_trip_and_order(tmp_path):
    h = History(tmp_path / "h.jsonl", t0=time.monotonic())
    h.append("sample", t=2.0, probe="api", ok=True, latency_s=0.01)
    h.append("op", t=1.0, type="invoke", f="write", key="k1")
    events = history.read(tmp_path / "h.jsonl")
    assert [e["t"] for e in events] == [1.0, 2.0]
    assert all(e["wall"].endswith("Z") for e in events)


@pytest.mark.parametrize("line,needle", [
    ("not json", "not valid JSON"),
    ('{"kind": "nope", "t": 1}', "unknown kind"),
    ('{"kind": "op", "t": 1, "type": "maybe", "f": "write", "key": "k"}', "op type"),
    ('{"kind": "sample", "t": "soon", "probe": "api", "ok": true}', "'t'"),
    ('{"kind": "fault", "t": 1, "phase": "start"}', "name"),
])
def test_reader_rejects_malformed_line_naming_it(tmp_path, line, needle):
    p = tmp_path / "h.jsonl"
    good = json.dumps({"kind": "marker", "t": 0.5, "name": "x"})
    p.write_text(good + "\n" + line + "\n")
    with pytest.raises(HistoryError) as e:
        history.read(p)
    assert f"{p}:2" in str(e.value) and needle in str(e.value)


def test_append_refuses_a_bad_event(tmp_path):
    with pytest.raises(HistoryError):
        History(tmp_path / "h.jsonl").append("op", type="ok", f="write")  # no key


def test_appends_from_threads_stay_whole_lines(tmp_path):
    h = History(tmp_path / "h.jsonl")

    def writer(n):
        for i in range(500):
            h.append("op", type="invoke", f="write", key=f"{n}-{i}" + "x" * 200)
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(history.read(tmp_path / "h.jsonl")) == 4000


@pytest.mark.parametrize("status,error,outcome", [
    (200, None, "ok"),
    (0, ConnectionRefusedError(), "fail"),   # nothing was sent
    (422, None, "fail"),                      # rejected, nothing stored
    (503, None, "info"),                      # the commit may have happened
    (500, None, "info"),
    (0, TimeoutError(), "info"),              # sent, no answer
    (0, ConnectionResetError(), "info"),
])
def test_jepsen_classification(status, error, outcome):
    assert classify(status, error) == outcome


class FakeSampler:
    def __init__(self, samples):
        self._s = samples

    def samples(self, probe):
        return self._s

    def failure(self):
        return None


def test_wait_until_stable_needs_a_full_window():
    clock = {"t": 10.0}
    samples = [(t / 10, True) for t in range(0, 100)] + [(9.5, False)]
    samples.sort()
    assert not wait_until_stable(FakeSampler(samples), "api", 5.0, 0.0, 10.0, lambda: clock["t"])


def test_wait_until_stable_after_recovery():
    samples = [(1.0, False)] + [(1.0 + i / 10, True) for i in range(1, 70)]
    assert wait_until_stable(FakeSampler(samples), "api", 5.0, 0.0, 100.0, lambda: 7.9)


def test_wait_until_stable_counts_only_samples_after_the_fault():
    # Ten seconds of success before the fault at t=10 prove nothing about the time after it.
    samples = [(i / 10, True) for i in range(0, 121)]
    assert not wait_until_stable(FakeSampler(samples), "api", 5.0, 10.0, 12.0, lambda: 12.0)


def test_sampler_records_its_own_stall(tmp_path, monkeypatch):
    h = History(tmp_path / "h.jsonl")
    target = {"api_url": "http://127.0.0.1:9", "prometheus_url": "http://127.0.0.1:9"}
    s = Sampler(h, target, ["health"], interval_s=0.05, timeout_s=0.05)
    # Starve the scheduler: its first wait takes 0.5 s instead of 0.05 s.
    real_wait = s._stop.wait
    calls = {"n": 0}

    def slow_wait(timeout):
        calls["n"] += 1
        if calls["n"] == 2:
            time.sleep(0.5)
        return real_wait(timeout)
    monkeypatch.setattr(s._stop, "wait", slow_wait)
    s.start()
    time.sleep(1.0)
    s.stop()
    events = history.read(tmp_path / "h.jsonl")
    stalls = [e for e in events if e["kind"] == "stall"]
    assert stalls and stalls[0]["gap_s"] >= 0.4
    samples = [e for e in events if e["kind"] == "sample"]
    assert samples and not any(e["ok"] for e in samples)  # nothing listens on port 9


def test_sampler_rejects_unknown_probe(tmp_path):
    with pytest.raises(ValueError, match="unknown sampler probe"):
        Sampler(History(tmp_path / "h.jsonl"), {"api_url": "x"}, ["apii"])


@pytest.mark.parametrize("body,ok", [({"parameters": {"a": 1}, "predicted_ssim": 0.83}, True),
                                     ({"parameters": {"a": 1}, "predicted_ssim": None}, False),
                                     ({"parameters": {"a": 1}, "predicted_ssim": 0}, False),
                                     ({"parameters": {"a": 1}, "predicted_ssim": True}, False),
                                     ({"predicted_ssim": 0.8}, False), ([], False)])
def test_an_optimize_answer_counts_only_when_it_did_the_work(body, ok):
    """The sampler's critical-path probe and the optimize check accept the same answers: a null
    or default SSIM is a service up in name only."""
    from harness.core.api_contract import optimize_answer_ok
    assert optimize_answer_ok(body) is ok
