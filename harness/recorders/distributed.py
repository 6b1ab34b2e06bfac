"""Load from more than one host: locust's distributed mode (one master, N workers), every worker
keeping its own ledger shard timed by its own host's clock.

    python -m harness.recorders.distributed master --api-url URL --history H --t0 T --key-prefix P \\
        --expect-workers N --bind HOST --port PORT --shard-dir DIR [--users U] [--parent-pid PID]
    python -m harness.recorders.distributed worker --master-host HOST --master-port PORT \\
        [--worker-id ID] [--parent-pid PID]

The master runs no users: it hands users out to the workers, gives each worker the run's settings
(API address, key prefix, timeout) and writes what each worker sends into that worker's shard
(harness/records/shards.py), as the worker recorded it. A worker needs only the master's address.

Clocks: a worker's host clock is not the master's. When it joins, and again when it stops, a
worker asks the master for its wall clock a few times over locust's own message channel (custom
messages `gameday_ping` / `gameday_pong`) and keeps the sharpest round trip, as NTP does:
offset = master time - midpoint of the round trip, uncertainty = half the round trip (the master
read its clock somewhere inside that round trip, so the true offset lies within it whatever the
delays each way). Both estimates go into the shard; harness/checkers/shards.py merges the shards
onto the run's clock and widens RTO/RPO by the uncertainty.

Keys carry the worker id (`<run prefix><worker id>-<n>`): unique per worker, and the final read
still finds every one of them by the run's prefix. Processes die with their parent (`--parent-pid`,
as the single-process load does); a worker whose master stops answering exits too.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time

from harness.records.history import History
from harness.records.shards import ShardWriter, safe_worker_id
from harness.recorders.load import READY_FILE, add_load_arguments, pace, write_one

__all__ = ["estimate_offset"]

PINGS = 8            # round trips per estimate; the sharpest counts
MASTER_SILENCE_S = 5.0  # a worker that heard nothing from its master this long exits


def estimate_offset(pings: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """(offset_s, uncertainty_s, rtt_s) from round trips (sent, master, received), sent and
    received on this host's clock, master on the master's: the round trip with the smallest
    rtt wins; offset = master - (sent + received) / 2, uncertainty = rtt / 2."""
    if not pings:
        raise ValueError("no round trip to estimate a clock offset from")
    sent, master, received = min(pings, key=lambda p: p[2] - p[0])
    rtt = max(0.0, received - sent)
    return master - (sent + received) / 2, rtt / 2, rtt


def _common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--parent-pid", type=int, default=None, help="exit at once when this process is gone")


def _parse(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m harness.recorders.distributed",
                                 description="locust master/worker writing the run's ledger shards")
    sub = ap.add_subparsers(dest="role", required=True)
    m = sub.add_parser("master", help="hand users out to the workers, write their ledger shards")
    add_load_arguments(m)
    m.add_argument("--expect-workers", type=int, required=True)
    m.add_argument("--bind", default="127.0.0.1")
    m.add_argument("--port", type=int, required=True)
    m.add_argument("--shard-dir", required=True)
    m.add_argument("--join-timeout", type=float, default=60.0)
    _common(m)
    w = sub.add_parser("worker", help="run the writers the master hands out")
    w.add_argument("--master-host", required=True)
    w.add_argument("--master-port", type=int, required=True)
    w.add_argument("--worker-id", default=None, help="unique per worker (default: host name and pid)")
    _common(w)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = _parse(argv)
    return _master(args) if args.role == "master" else _worker(args)


# ---------------------------------------------------------------------------------------------
# Internals: everything below runs only in the locust processes.

def _locust():
    """gevent and locust, imported only here: their monkey-patching belongs to the locust
    processes, never to the harness that imports this module's helpers (as in load.py)."""
    import gevent
    import locust
    from locust.env import Environment
    return gevent, locust, Environment


def _writer_class(settings: dict, record, stopping: dict, in_flight: dict):
    gevent, locust, _ = _locust()
    FastHttpUser, task = locust.FastHttpUser, locust.task

    class Writer(FastHttpUser):  # the same class name on master and workers: locust dispatches by it
        host = settings.get("api_url") or "http://127.0.0.1"
        connection_timeout = 1.0
        network_timeout = 3.0

        def wait_time(self):  # the rate comes with the master's settings
            return pace(self, settings.get("write_interval_s"))

        @task
        def write(self):
            if stopping["flag"] or record is None or not settings.get("key_prefix"):
                gevent.sleep(0.05)  # stopping, or the master's settings not here yet
                return
            key = f"{settings['key_prefix']}{next(settings['counter'])}"
            in_flight["n"] += 1
            try:
                write_one(self.client, key, record)
            finally:
                in_flight["n"] -= 1
    return Writer


def _stop_on_signals(stopping: dict) -> None:
    """SIGTERM or SIGINT: stop gracefully (writes in flight complete, the shard is flushed)."""
    gevent, _, _ = _locust()

    def graceful(*_):
        stopping["flag"] = True
    gevent.signal_handler(signal.SIGTERM, graceful)
    gevent.signal_handler(signal.SIGINT, graceful)


def _die_with_parent(parent_pid: int | None) -> None:
    gevent, _, _ = _locust()
    if not parent_pid:
        return

    def watch():
        # The harness died (SIGKILL leaves no time to stop us): exit at once, write nothing more.
        while True:
            if os.getppid() != parent_pid:
                os._exit(3)
            gevent.sleep(0.2)
    gevent.spawn(watch)


def _master(args) -> int:
    gevent, locust, Environment = _locust()
    events = locust.events
    history = History(args.history, t0=args.t0)
    stopping = {"flag": False}
    shards: dict[str, ShardWriter] = {}
    node_of: dict[str, str] = {}          # worker id -> locust node id
    clocked: set[str] = set()
    done: set[str] = set()
    key_prefix = args.key_prefix or f"load-{os.getpid()}-{time.time_ns()}-"
    # Each user's interval: the rate is the whole load's, whichever worker a user runs on.
    settings = {"api_url": args.api_url, "timeout_s": args.timeout,
                "write_interval_s": args.users / args.writes_per_s if args.writes_per_s else None}
    Writer = _writer_class({"api_url": args.api_url}, None, stopping, {"n": 0})
    env = Environment(user_classes=[Writer], events=events, host=args.api_url)
    runner = env.create_master_runner(args.bind, args.port)

    def on_ping(environment, msg, **_):
        data = msg.data or {}
        worker = safe_worker_id(str(data.get("worker") or msg.node_id))
        if node_of.setdefault(worker, msg.node_id) != msg.node_id:  # two workers, one id: keys would collide
            runner.send_message("gameday_reject", {"reason": f"worker id {worker} is taken"}, client_id=msg.node_id)
            return
        if worker not in shards:
            shards[worker] = ShardWriter(args.shard_dir, worker)
            # The master's own wall clock tied to the run's t at one instant: the merge's anchor.
            shards[worker].write([{"kind": "shard", "worker": worker, "host": data.get("host"),
                                   "anchor_t": round(history.now(), 6), "anchor_wall_s": time.time(),
                                   "key_prefix": f"{key_prefix}{worker}-", "node": msg.node_id}])
        runner.send_message("gameday_pong", {"seq": data.get("seq"), "sent": data.get("sent"), "master": time.time(),
                                             "settings": {**settings, "key_prefix": f"{key_prefix}{worker}-"}},
                            client_id=msg.node_id)

    def on_records(environment, msg, **_):
        data = msg.data or {}
        worker = safe_worker_id(str(data.get("worker")))
        if worker in shards and node_of.get(worker) == msg.node_id:
            records = data.get("records") or []
            shards[worker].write(records)
            if any(r.get("kind") == "clock" for r in records):
                clocked.add(worker)
            if data.get("done"):
                done.add(worker)

    runner.register_message("gameday_ping", on_ping)
    runner.register_message("gameday_records", on_records)

    _stop_on_signals(stopping)
    _die_with_parent(args.parent_pid)

    joined_by = time.monotonic() + args.join_timeout
    while len(clocked) < args.expect_workers and not stopping["flag"]:
        if time.monotonic() > joined_by:
            print(f"only {len(clocked)} of {args.expect_workers} load workers joined within "
                  f"{args.join_timeout:g} s", file=sys.stderr, flush=True)
            runner.quit()
            return 4
        gevent.sleep(0.05)
    history.append("marker", name="load_workers", detail={"workers": sorted(clocked), "port": args.port})
    open(os.path.join(args.shard_dir, READY_FILE), "w").close()
    if not stopping["flag"]:
        runner.start(args.users, spawn_rate=max(1, args.users * 10))
    deadline = time.monotonic() + args.duration
    while not stopping["flag"] and time.monotonic() < deadline:
        gevent.sleep(0.1)
    # Graceful: each worker lets its writes in flight complete, estimates its clock again,
    # flushes its shard and says done; only then is it told to quit.
    runner.send_message("gameday_stop", {})
    settle = time.monotonic() + args.timeout + 5.0
    while done < clocked and time.monotonic() < settle:
        gevent.sleep(0.05)
    missing = sorted(clocked - done)
    runner.quit()
    gevent.sleep(0.2)
    for shard in shards.values():
        shard.close()
    stats = env.stats.total
    print(json.dumps({"requests": stats.num_requests, "failures": stats.num_failures, "workers": sorted(clocked),
                      "not_done": missing}), flush=True)
    history.close()
    # A worker that never flushed may have writes with no recorded outcome: not a clean stop.
    return 5 if missing else 0


def _worker(args) -> int:
    gevent, locust, Environment = _locust()
    events = locust.events

    worker = safe_worker_id(args.worker_id or f"{socket.gethostname()}-{os.getpid()}")
    stopping = {"flag": False, "rejected": None}
    in_flight = {"n": 0}
    settings: dict = {}
    buffer: list[dict] = []
    pongs: dict[int, tuple[float, float, float]] = {}

    def record(**fields):
        buffer.append({"kind": "op", **fields, "wall_s": time.time()})

    Writer = _writer_class(settings, record, stopping, in_flight)
    env = Environment(user_classes=[Writer], events=events)
    runner = env.create_worker_runner(args.master_host, args.master_port)

    def on_pong(environment, msg, **_):
        received = time.time()
        data = msg.data or {}
        if not settings and data.get("settings"):
            settings.update(data["settings"], counter=iter(range(1 << 62)))
            Writer.host = settings["api_url"]
            Writer.network_timeout = float(settings.get("timeout_s") or 3.0)
        if isinstance(data.get("seq"), int) and isinstance(data.get("sent"), (int, float)):
            pongs[data["seq"]] = (float(data["sent"]), float(data["master"]), received)

    def on_stop(environment, msg, **_):
        stopping["flag"] = True

    def on_reject(environment, msg, **_):
        stopping["rejected"] = (msg.data or {}).get("reason") or "rejected by the master"

    runner.register_message("gameday_pong", on_pong)
    runner.register_message("gameday_stop", on_stop)
    runner.register_message("gameday_reject", on_reject)

    _stop_on_signals(stopping)
    _die_with_parent(args.parent_pid)

    def clock_estimate(phase: str) -> dict | None:
        pongs.clear()
        for seq in range(PINGS):
            runner.send_message("gameday_ping", {"worker": worker, "host": socket.gethostname(), "seq": seq,
                                                 "sent": time.time()})
            wait_until = time.monotonic() + 2.0
            while seq not in pongs and time.monotonic() < wait_until and not stopping["rejected"]:
                gevent.sleep(0.005)
            gevent.sleep(0.01)
        if not pongs:
            return None
        offset, uncertainty, rtt = estimate_offset(list(pongs.values()))
        return {"kind": "clock", "worker": worker, "phase": phase, "offset_s": offset, "uncertainty_s": uncertainty,
                "rtt_s": rtt, "round_trips": len(pongs), "wall_s": time.time()}

    def send(records: list[dict], done: bool = False) -> None:
        runner.send_message("gameday_records", {"worker": worker, "records": records, "done": done})

    def flusher():
        while True:
            gevent.sleep(0.1)
            if buffer:
                batch = buffer[:]
                del buffer[:len(batch)]
                send(batch)

    joined_by = time.monotonic() + 60.0
    first = None
    while first is None:  # the master may not be up yet: ask again until it answers
        if stopping["rejected"] or time.monotonic() > joined_by:
            print(f"worker {worker}: {stopping['rejected'] or 'no answer from the master'}", file=sys.stderr, flush=True)
            runner.quit()
            return 4
        first = clock_estimate("start")
    send([first])
    gevent.spawn(flusher)
    while not stopping["flag"]:
        heard = runner.last_heartbeat_timestamp
        if heard and time.time() - heard > MASTER_SILENCE_S:
            print(f"worker {worker}: the master went silent; exiting", file=sys.stderr, flush=True)
            os._exit(3)
        gevent.sleep(0.1)
    settle = time.monotonic() + float(settings.get("timeout_s") or 3.0) + 1.0
    while in_flight["n"] and time.monotonic() < settle:
        gevent.sleep(0.02)
    last = clock_estimate("end")
    batch = buffer[:]
    del buffer[:len(batch)]
    send(batch + ([last] if last else []), done=True)
    gevent.sleep(0.3)  # let the message leave before the socket closes
    runner.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
