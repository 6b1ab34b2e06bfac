"""Load from more than one host: locust master + workers, each worker's ledger shard on its own
clock, merged by the checkers and judged with RTO/RPO widened by the clock uncertainty.

Unit tests build shards by hand (synthetic clocks and offsets) and run real master/worker
processes against a stub HTTP server; the integration test runs the same fault with one load
process and with a master and two workers on the real stack and compares the verdicts."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.records import shards as ledger_shards
from harness.run import runner
from harness.checkers import ledger_clock, verdict
from harness.records.shards import merge_shards
from harness.records.shards import shard_clock
from harness.records.history import History as FileHistory
from harness.recorders.distributed import estimate_offset
from harness.recorders.load import LoadGenerator
from synthetic import History, digest, healthy_run, objectives

ANCHOR_WALL = 1_700_000_000.0  # the master's wall clock at run t = 0
HERE = Path(__file__).parent / "experiments"


def shard(worker: str, writes: list[tuple[str, float, str]], offset_s: float = 0.0, uncertainty_s: float = 0.002,
          clocks: list[tuple[float, float]] | None = None) -> list[dict]:
    """A worker's shard whose host clock is `offset_s` behind the master's (master = worker +
    offset): each write (key, t on the run's clock, outcome) is recorded on the worker's clock."""
    records = [{"kind": "shard", "worker": worker, "host": f"host-{worker}", "anchor_t": 0.0,
                "anchor_wall_s": ANCHOR_WALL}]
    for off, u in clocks if clocks is not None else [(offset_s, uncertainty_s)]:
        records.append({"kind": "clock", "worker": worker, "offset_s": off, "uncertainty_s": u, "rtt_s": 2 * u,
                        "wall_s": ANCHOR_WALL})
    for key, t, outcome in writes:
        wall = ANCHOR_WALL + t - offset_s
        records.append({"kind": "op", "type": "invoke", "f": "write", "key": key, "wall_s": wall})
        records.append({"kind": "op", "type": outcome, "f": "write", "key": key, "wall_s": wall + 0.01,
                        **({"digest": digest(key)} if outcome == "ok" else {})})
    return records


def run_without_writes(outage=(10.0, 14.2), end=30.0, read_also=()) -> History:
    """healthy_run's timeline with its writes left to the shards."""
    h = History()
    h.steady_state(0, True)
    h.up(0, outage[0]).down(*outage).up(outage[1], end)
    h.fault(10.0, 11.0)
    beats = [(f"hb-{i}", float(i)) for i in range(-60, int(end))]
    h.heartbeats(end + 0.4, beats)
    h.final_read(end + 0.5, [f"k{i}" for i in range(5)] + ["k-late"] + list(read_also) + [k for k, _ in beats])
    h.checks_after_recovery(end + 1)
    h.marker(end, "observe_end")
    h.steady_state(end + 2, True, phase="after")
    return h.looked_everywhere(10.0, end)


# -- merge ----------------------------------------------------------------------------------------

def test_shard_ops_land_on_the_run_clock_whatever_the_worker_clock():
    # Worker a's clock runs 5 s behind the master's, worker b's 3 s ahead: both wrote at t=4.
    merged = merge_shards([], [shard("a", [("ka", 4.0, "ok")], offset_s=5.0),
                               shard("b", [("kb", 4.0, "ok")], offset_s=-3.0)])
    ops = [e for e in merged if e["kind"] == "op"]
    assert {(e["key"], e["type"], e["t"]) for e in ops} == {("ka", "invoke", 4.0), ("ka", "ok", 4.01),
                                                            ("kb", "invoke", 4.0), ("kb", "ok", 4.01)}
    assert {e["worker"] for e in ops} == {"a", "b"}
    assert ledger_clock(merged)["uncertainty_s"] == 0.002 and ledger_clock(merged)["error"] is None


def test_merged_shards_judge_like_one_process():
    writes = [(f"k{i}", 2.0 + i, "ok") for i in range(5)] + [("k-late", 20.0, "ok")]
    single = verdict(healthy_run().events(), objectives())
    merged = merge_shards(run_without_writes().events(),
                          [shard("w0", writes[0::2], offset_s=1.5), shard("w1", writes[1::2], offset_s=-0.7)])
    distributed = verdict(merged, objectives())
    assert distributed["status"] == single["status"] == "pass"
    assert [c["passed"] for c in distributed["criteria"]] == [c["passed"] for c in single["criteria"]]
    assert distributed["measured"]["acked_writes"] == single["measured"]["acked_writes"] == 6
    assert distributed["measured"]["clock_uncertainty_s"] == 0.002


def test_a_shard_clock_covers_every_estimate_and_the_drift_between_them():
    offset, u = shard_clock(shard("a", [], clocks=[(0.0, 0.001), (0.05, 0.002)]))
    assert offset == 0.0 and u == pytest.approx(0.052)


def test_ntp_style_estimate_brackets_the_true_offset_whatever_the_delays():
    true_offset = 2.5  # master = worker + 2.5
    pings = []
    for out_s, back_s in [(0.004, 0.001), (0.001, 0.009), (0.002, 0.002), (0.0005, 0.0003)]:
        sent = 100.0
        pings.append((sent, sent + out_s + true_offset, sent + out_s + back_s))
    offset, uncertainty, rtt = estimate_offset(pings)
    assert rtt == pytest.approx(0.0008)  # the sharpest round trip is kept
    assert abs(offset - true_offset) <= uncertainty + 1e-12
    with pytest.raises(ValueError):
        estimate_offset([])


# -- widening ---------------------------------------------------------------------------------------

def test_rpo_is_widened_by_the_clock_uncertainty():
    # A write acknowledged 3 s before the fault (t=7) is lost; the worker's clock is known to 0.5 s.
    h = run_without_writes(read_also=())
    merged = merge_shards(h.events(), [shard("w0", [("k-lost", 7.0, "ok")], offset_s=4.0, uncertainty_s=0.5)])
    v = verdict(merged, objectives(rpo_s=3.3))
    assert v["measured"]["rpo_s"] == pytest.approx(2.99 + 0.5)  # acknowledged at 7.01: raw 2.99 s
    rpo = next(c for c in v["criteria"] if c["name"] == "rpo")
    # Raw 2.99 s would pass a 3.3 s objective; at the far end of the clocks' disagreement it does not.
    assert not rpo["passed"]


def test_rto_is_widened_by_the_clock_uncertainty():
    merged = merge_shards(run_without_writes().events(), [shard("w0", [("k0", 2.0, "ok")], uncertainty_s=0.3)])
    v = verdict(merged, objectives(rto_s=4.3))
    single = verdict(healthy_run().events(), objectives(rto_s=4.3))
    assert single["measured"]["rto_s"] == pytest.approx(4.2)
    assert v["measured"]["rto_s"] == pytest.approx(4.5)
    assert next(c for c in single["criteria"] if c["name"] == "rto")["passed"]
    assert not next(c for c in v["criteria"] if c["name"] == "rto")["passed"]


def test_nothing_lost_is_rpo_zero_whatever_the_clocks():
    merged = merge_shards(run_without_writes().events(), [shard("w0", [("k0", 2.0, "ok")], uncertainty_s=9.0)])
    assert verdict(merged, objectives())["measured"]["rpo_s"] == 0.0


def test_colliding_keys_make_the_loss_unknown():
    merged = merge_shards(run_without_writes().events(),
                          [shard("w0", [("k0", 2.0, "ok")]), shard("w1", [("k0", 2.5, "fail")])])
    assert ledger_clock(merged)["collision_count"] == 1
    v = verdict(merged, objectives())
    rpo = next(c for c in v["criteria"] if c["name"] == "rpo")
    assert not rpo["passed"] and "more than one writer" in rpo["detail"]
    assert v["status"] == "fail"


def test_two_shards_with_one_worker_id_cannot_be_judged():
    merged = merge_shards([], [shard("w0", [("k0", 2.0, "ok")]), shard("w0", [("k1", 2.5, "ok")])])
    assert "worker id w0 used by 2 shards" in ledger_clock(merged)["error"]


def test_a_shard_without_clock_estimate_makes_the_loss_unknown():
    merged = merge_shards(run_without_writes().events(), [shard("w0", [("k0", 2.0, "ok")], clocks=[])])
    assert ledger_clock(merged)["uncertainty_s"] is None
    rpo = next(c for c in verdict(merged, objectives())["criteria"] if c["name"] == "rpo")
    assert not rpo["passed"] and "no clock offset estimate" in rpo["detail"]


def test_an_unreadable_line_inside_a_shard_makes_the_loss_unknown_a_torn_last_line_does_not(tmp_path):
    records = shard("w0", [(f"k{i}", 2.0 + i * 0.1, "ok") for i in range(5)])
    lines = [json.dumps(r) for r in records]
    folder = tmp_path / "ledger-shards"
    folder.mkdir()
    (folder / "w0.jsonl").write_text("\n".join(lines) + "\n" + lines[-1][:20])  # torn by a kill mid-write
    merged = merge_shards(run_without_writes().events(), ledger_shards.read_shards(folder))
    assert ledger_clock(merged)["error"] is None
    garbled = lines[:4] + ["{\"kind\": \"op\", \"ty\x00"] + lines[5:]  # an acknowledgement mangled mid-file
    (folder / "w0.jsonl").write_text("\n".join(garbled) + "\n")
    merged = merge_shards(run_without_writes().events(), ledger_shards.read_shards(folder))
    assert "1 unreadable line(s) (first: line 5)" in ledger_clock(merged)["error"]
    rpo = next(c for c in verdict(merged, objectives())["criteria"] if c["name"] == "rpo")
    assert not rpo["passed"] and "unreadable" in rpo["detail"]


# -- real locust master and workers against a stub API --------------------------------------------

class _StubAPI(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        out = json.dumps({"request_id": body["request_id"], "parameters": {}, "predicted_ssim": 0.9,
                          "model_version": "stub"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StubAPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_load_shape_from_the_environment():
    from harness.run.control import load_workers
    assert load_workers({}) == {}
    assert load_workers({"GAMEDAY_LOAD_WORKERS": "2"}) == {"workers": 2, "remote_workers": 0}
    assert load_workers({"GAMEDAY_LOAD_WORKERS": "1", "GAMEDAY_LOAD_REMOTE_WORKERS": "3",
                         "GAMEDAY_LOAD_MASTER": "0.0.0.0:25557"}) == {
        "workers": 1, "remote_workers": 3, "master_bind": "0.0.0.0", "master_port": 25557}
    for bad in ({"GAMEDAY_LOAD_WORKERS": "two"}, {"GAMEDAY_LOAD_WORKERS": "2", "GAMEDAY_LOAD_MASTER": "25557"}):
        with pytest.raises(ValueError, match="GAMEDAY_LOAD"):
            load_workers(bad)


@pytest.mark.parametrize("args,words", [(["--load-workers", "65"], ["--load-workers", "65"]),
                                        (["--load-remote-workers", "2"], ["--load-remote-workers", "--load-workers"]),
                                        (["--load-workers", "2", "--load-master", "nowhere"], ["HOST:PORT", "nowhere"]),
                                        (["--load-rate", "0"], ["--load-rate", "0"]),
                                        (["--load-rate", "nan"], ["--load-rate", "nan"])])
def test_bad_load_shape_on_the_command_line_is_one_line_and_exit_2(args, words):
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--dry-run", *args,
                        str(HERE / "calibration-outage.yaml")], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[1], timeout=120)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_local_workers_get_distinct_ids_and_key_spaces(tmp_path):
    load = LoadGenerator("http://127.0.0.1:9", tmp_path / "history.jsonl", 0.0, key_prefix="run-w-", workers=3)
    ids = [cmd[cmd.index("--worker-id") + 1] for cmd in load.cmds[1:]]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert load.master_port < 32768  # below the kernel's range for outgoing connections


def test_master_and_two_workers_write_unique_keyed_shards(tmp_path, stub_api):
    h = FileHistory(tmp_path / "history.jsonl")
    load = LoadGenerator(stub_api, h.path, h.t0, users=4, key_prefix="run-w-", workers=2,
                         log_path=tmp_path / "load.log").start()
    try:
        assert load.wait_ready(60), (tmp_path / "load.log").read_text()[-2000:]
        time.sleep(1.5)
    finally:
        load.stop()
    assert load.failure() is None, (tmp_path / "load.log").read_text()[-2000:]
    shards = ledger_shards.read_shards(ledger_shards.shard_dir(h.path))
    assert len(shards) == 2
    for records in shards:
        assert [r["phase"] for r in records if r["kind"] == "clock"] == ["start", "end"]
        assert all(r["uncertainty_s"] < 0.5 for r in records if r["kind"] == "clock")
    events = ledger_shards.run_events(h.path)
    ops = [e for e in events if e["kind"] == "op"]
    by_worker = {w: {e["key"] for e in ops if e["worker"] == w} for w in {e["worker"] for e in ops}}
    assert len(by_worker) == 2 and all(by_worker.values())
    for worker, keys in by_worker.items():
        assert all(k.startswith(f"run-w-{worker}-") for k in keys)  # the worker id is in every key
    invoked = [e["key"] for e in ops if e["type"] == "invoke"]
    assert len(invoked) == len(set(invoked))
    assert {e["key"] for e in ops if e["type"] == "ok"} == set(invoked)  # every invoke completed
    clock = ledger_clock(events)
    assert clock["error"] is None and clock["collision_count"] == 0 and clock["uncertainty_s"] < 0.5


@pytest.mark.parametrize("workers", [0, 2])
def test_a_fixed_write_rate_is_held_by_one_process_and_by_workers(tmp_path, stub_api, workers):
    """--load-rate 40: the stub answers in microseconds, so unpaced users would write thousands a
    second; paced, the whole load (4 users, on one process or over two workers) writes 40 a second."""
    h = FileHistory(tmp_path / "history.jsonl")
    load = LoadGenerator(stub_api, h.path, h.t0, users=4, key_prefix="rate-w-", workers=workers,
                         writes_per_s=40, log_path=tmp_path / "load.log").start()
    try:
        assert load.wait_ready(60), (tmp_path / "load.log").read_text()[-2000:]
        # Four seconds of writing, counted from the first write: locust's start-up (0.4-1 s on
        # a busy machine) is not part of the rate.
        deadline = time.monotonic() + 30
        while not _any_invoke(h.path, tmp_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(4.0)
    finally:
        load.stop()
    assert load.failure() is None, (tmp_path / "load.log").read_text()[-2000:]
    invoked = sorted(e["t"] for e in ledger_shards.run_events(h.path) if e["kind"] == "op" and e["type"] == "invoke")
    # A steady window: the first and last second are spawning and stopping.
    start, end = invoked[0] + 1.0, invoked[-1] - 1.0
    rate = sum(start <= t < end for t in invoked) / (end - start)
    print(f"\n--load-rate 40 with {workers or 'no'} workers: {rate:.1f} writes/s over {end - start:.1f} s")
    assert end - start >= 1.5 and 0.6 * 40 <= rate <= 1.25 * 40, f"{rate:.1f} writes/s over {end - start:.1f} s"


def _any_invoke(history, run_dir) -> bool:
    files = [history, *sorted((run_dir / ledger_shards.SHARD_DIR).glob("*.jsonl"))]
    return any(f.exists() and b'"invoke"' in f.read_bytes() for f in files)


def test_a_bad_load_rate_is_refused():
    from harness.run.control import load_rate
    assert load_rate({"writes_per_s": None}, {}) is None
    assert load_rate({"writes_per_s": 25}, {}) == 25
    assert load_rate({"writes_per_s": 25}, {"GAMEDAY_LOAD_RATE": "100"}) == 100.0
    for bad in ("0", "-3", "fast", "nan", "1e9"):
        with pytest.raises(ValueError, match="GAMEDAY_LOAD_RATE"):
            load_rate({}, {"GAMEDAY_LOAD_RATE": bad})
    from harness.run.objectives import ObjectivesError, recorder_settings

    def experiment(rate):
        return {"title": "t", "extensions": [{"name": "bcp", "scenario": "database-failure",
                                              "recorders": {"writes_per_s": rate}}]}
    assert recorder_settings(experiment(50))["writes_per_s"] == 50
    for bad in (0, -1, "50", True):
        with pytest.raises(ObjectivesError, match="recorders.writes_per_s must be a positive number"):
            recorder_settings(experiment(bad))


_ORPHAN = """
import sys, time
sys.path.insert(0, {root!r})
from harness.recorders.load import LoadGenerator
load = LoadGenerator({api!r}, {history!r}, time.monotonic(), users=2, key_prefix="orphan-w-", workers=2).start()
load.wait_ready(60)
print(" ".join(str(p.pid) for p in load.procs), flush=True)
time.sleep(600)
"""


def test_master_and_workers_die_with_their_parent(tmp_path, stub_api):
    code = _ORPHAN.format(root=str(Path(__file__).resolve().parents[1]), api=stub_api,
                          history=str(tmp_path / "history.jsonl"))
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 3
        parent.kill()  # SIGKILL: no chance to stop its children
        parent.wait()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.05)
        assert not [p for p in pids if _alive(p)], "load processes outlived their parent"
    finally:
        parent.kill()
        for pid in pids if "pids" in locals() else []:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# -- the real stack: one process vs a master and two workers, same fault ---------------------------


@pytest.mark.integration
@pytest.mark.parametrize("name", ["calibration-loss.yaml", "calibration-outage.yaml"])
def test_two_workers_judge_a_fault_like_one_process(healthy_stack, tmp_path, monkeypatch, name):
    """Judged against the same ground truth as one process is (tests/test_measurement_calibration.py):
    the 20 rows deleted behind the API, the 3 s freeze."""
    target_file = Path(healthy_stack["home"]) / "target.json"
    monkeypatch.setenv("GAMEDAY_LOAD_WORKERS", "2")
    [planned] = runner.plan([HERE / name])
    two = runner.run_one(planned, tmp_path / "two", target_file, runner._Signals(), log=lambda m: None)

    run_dir = Path(two["_run_dir"])
    shards = ledger_shards.read_shards(run_dir / ledger_shards.SHARD_DIR)
    assert len(shards) == 2, "expected one ledger shard per worker"
    events = ledger_shards.run_events(run_dir / "history.jsonl")
    assert not [e for e in events if e["kind"] == "op" and "worker" not in e], "the master's history holds no writes"
    acked_by = {e["worker"] for e in events if e["kind"] == "op" and e["type"] == "ok"}
    assert len(acked_by) == 2, f"writes acknowledged for {acked_by} only"
    u = two["measured"]["clock_uncertainty_s"]
    assert u is not None and 0 <= u < 0.25
    if name == "calibration-loss.yaml":  # exactly the 20 rows deleted behind the API, from the merged ledger
        deleted = json.loads((run_dir / "ground-truth-deleted.json").read_text())
        assert two["measured"]["lost_writes"] == len(deleted) == 20
        assert sorted(two["loss"]["lost_keys"]) == sorted(deleted)
        assert two["measured"]["unexpected_writes"] == 0
    else:  # the frozen API: RTO the 3 s freeze, widened by the clock uncertainty at most
        assert two["status"] == "pass", two["reason"]
        assert 3.0 - 0.05 - u <= two["measured"]["rto_s"] <= 3.0 + 1.1 + u, two["measured"]["rto_s"]
        assert two["measured"]["lost_writes"] == 0
