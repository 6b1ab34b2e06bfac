"""The load generator: locust users writing uniquely keyed optimization results through the API,
every operation logged to the history with Jepsen outcomes:

  invoke   about to send write `key`
  ok       200 received: the API committed it
  fail     definitely not applied: connection refused (nothing was sent), or a 4xx rejection
  info     unknown: timeout, connection reset after sending, a 5xx (the commit may have happened)

Run as its own process (`python -m harness.recorders.load …`): locust's gevent monkey-patching
must not share a process with requests/urllib3. `LoadGenerator` starts and stops that process
(or, for load from several hosts, locust's master and workers: harness/recorders/distributed.py).
Stopping is graceful (SIGTERM): users finish the request in flight, so every invoke completes.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness.core.api_contract import OPTIMIZE_PATH, answer_digest, answer_server, optimize_body
from harness.records.history import History
from harness.records.shards import safe_worker_id, shard_dir

READY_FILE = "ready"  # the master creates it in the shard folder once every worker joined


class LoadGenerator:
    """Controller used by the control: start/stop the locust process(es) (never imports locust).

    `workers` = 0: one locust process appending to the history (the default). `workers` = N > 0:
    locust's distributed mode (harness/recorders/distributed.py), one master and N local worker
    processes, plus `remote_workers` started by hand on other hosts (README: the worker command
    line); the master binds `master_bind`:`master_port` and waits for all of them. Each worker's
    writes land in its ledger shard (harness/records/shards.py), keys carrying its worker id."""

    def __init__(self, api_url: str, history_path: str | os.PathLike, t0: float, users: int = 8,
                 log_path: str | os.PathLike | None = None, duration_s: float = 3600.0,
                 key_prefix: str | None = None, workers: int = 0, remote_workers: int = 0,
                 master_bind: str = "127.0.0.1", master_port: int | None = None, join_timeout_s: float = 60.0,
                 writes_per_s: float | None = None):
        if workers < 0 or remote_workers < 0 or (remote_workers and not workers):
            raise ValueError(f"load workers must be >= 0 (remote ones need at least one local), got "
                             f"{workers} local and {remote_workers} remote")
        # Every key starts with the prefix: the final read reads the whole key space by it.
        self.key_prefix = key_prefix or f"load-{os.getpid()}-{time.time_ns()}-"
        common = ["--api-url", api_url, "--history", str(history_path), "--t0", repr(t0), "--users", str(users),
                  "--duration", str(duration_s), "--key-prefix", self.key_prefix, "--parent-pid", str(os.getpid()),
                  *(["--writes-per-s", repr(float(writes_per_s))] if writes_per_s else [])]
        self.writes_per_s = writes_per_s
        self.workers = workers
        self.shard_dir = shard_dir(history_path) if workers else None
        self.master_port = (master_port or free_port(master_bind)) if workers else None
        if not workers:
            self.cmds = [[sys.executable, "-m", "harness.recorders.load", *common]]
        else:
            self.cmds = [[sys.executable, "-m", "harness.recorders.distributed", "master", *common,
                          "--expect-workers", str(workers + remote_workers), "--bind", master_bind,
                          "--port", str(self.master_port), "--shard-dir", str(self.shard_dir),
                          "--join-timeout", str(join_timeout_s)]]
            host = socket.gethostname()
            connect = "127.0.0.1" if master_bind in ("0.0.0.0", "*", "") else master_bind
            for i in range(workers):
                self.cmds.append([sys.executable, "-m", "harness.recorders.distributed", "worker",
                                  "--master-host", connect, "--master-port", str(self.master_port),
                                  "--worker-id", safe_worker_id(f"{host}-w{i}"), "--parent-pid", str(os.getpid())])
        self.cmd = self.cmds[0]
        self.log_path = Path(log_path) if log_path else None
        self.procs: list[subprocess.Popen] = []
        self._stopping = False

    @property
    def proc(self) -> subprocess.Popen | None:
        """The single-process load generator, or the master."""
        return self.procs[0] if self.procs else None

    def start(self) -> "LoadGenerator":
        for cmd in self.cmds:
            out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
            self.procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            if out is not subprocess.DEVNULL:
                out.close()
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> bool:
        """Distributed mode: block until every worker joined the master and estimated its clock
        (the master says so with a `ready` file), or the master exited, or `timeout_s`. The
        single-process generator is ready at once."""
        if not self.workers:
            return self.running()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (self.shard_dir / READY_FILE).exists():
                return True
            if not self.running():
                return False
            time.sleep(0.1)
        return False

    def running(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs)

    def failure(self) -> str | None:
        """Why this instrument cannot be trusted, or None: a process exited before it was stopped,
        or did not exit cleanly when stopped (its last writes may have no recorded outcome)."""
        if not self.procs:
            return "never started"
        for i, proc in enumerate(self.procs):
            who = "" if not self.workers else ("master: " if i == 0 else f"worker {i - 1}: ")
            code = proc.poll()
            if code is None:
                continue
            if not self._stopping:
                return f"{who}exited with status {code} before the end of observation"
            if code != 0:
                return f"{who}exited with status {code} when stopped"
        return None

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM, wait for in-flight requests to complete, then SIGKILL if it lingers. In
        distributed mode the master is told: it stops its workers gracefully (each flushes its
        shard) before it exits; workers still there after that are ended too."""
        if not self.procs:
            return None
        self._stopping = True
        for proc in self.procs:  # the master first: it coordinates the workers' graceful stop
            if proc.poll() is None:
                if proc is self.procs[0]:
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(grace_s)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(2.0)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
        return self.procs[0].returncode


def free_port(host: str = "127.0.0.1", low: int = 20000, high: int = 32000) -> int:
    """A port that is free now, below the kernel's range for outgoing connections (32768+),
    where a listening port can be taken by some client's connection."""
    bind = "0.0.0.0" if host in ("*", "", "0.0.0.0") else host
    for port in random.sample(range(low, high), 200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((bind, port))
                return port
            except OSError:
                continue
    raise RuntimeError(f"no free port between {low} and {high} on {host}")


def add_load_arguments(ap: argparse.ArgumentParser) -> None:
    """The load's shape, the same for one process (this module) and for the distributed master."""
    ap.add_argument("--api-url", required=True)
    ap.add_argument("--history", required=True)
    ap.add_argument("--t0", type=float, required=True)
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--duration", type=float, default=3600.0)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--key-prefix", default=None, help="every key starts with it: the run's key space")
    ap.add_argument("--writes-per-s", type=float, default=None,
                    help="the whole load's write rate, shared by the users (default: as fast as they go)")


def pace(user, interval_s: float | None) -> float:
    """A locust wait_time for a fixed write rate: the pause that starts the user's next write
    `interval_s` after its last one began (0 with no interval, or when the user runs late; a late
    user does not burst to catch up)."""
    if not interval_s:
        return 0.0
    now = time.monotonic()
    due = getattr(user, "_gameday_write_due", now)
    user._gameday_write_due = max(due, now) + interval_s
    return max(0.0, due - now)


def write_one(client, key: str, record) -> str:
    """One write of `key` through the API with a locust client, recorded invoke → outcome by
    calling `record(**fields)` twice (Jepsen semantics, see the module's docstring)."""
    record(type="invoke", f="write", key=key)
    resp = client.post(OPTIMIZE_PATH, name="optimize", json=optimize_body(key))
    # No status code means the exchange itself broke; otherwise the code decides.
    outcome = classify(resp.status_code or 0, None if resp.status_code else resp.error)
    fields = {"type": outcome, "f": "write", "key": key}
    if outcome == "ok":
        try:  # what the API says it stored (the whole row) and where: the final read compares the row
            answer = resp.json()
        except ValueError:
            answer = None
        fields["digest"] = answer_digest(answer)
        server = answer_server(answer)
        if server:
            fields["server"] = server
    else:
        fields["error"] = (type(resp.error).__name__ if resp.error else f"HTTP {resp.status_code}")
    record(**fields)
    return outcome


# ---------------------------------------------------------------------------------------------
# The locust process. Everything below runs only under `python -m harness.recorders.load`.

def classify(status_code: int, error: BaseException | None) -> str:
    """Jepsen outcome of one write from what the client saw."""
    if error is None and status_code == 200:
        return "ok"
    if error is not None:
        if isinstance(error, ConnectionRefusedError):
            return "fail"  # refused before anything was sent
        return "info"  # timeout, reset, broken response: it may have been applied
    if 400 <= status_code < 500:
        return "fail"  # rejected by validation, nothing stored
    return "info"


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="locust writers logging Jepsen operations")
    add_load_arguments(ap)
    ap.add_argument("--parent-pid", type=int, default=None, help="exit at once when this process is gone")
    args = ap.parse_args(argv)

    # Deferred on purpose: locust imports gevent, which monkey-patches the process; the harness
    # imports this module (LoadGenerator) and must never get either.
    import gevent
    from locust import FastHttpUser, events, task
    from locust.env import Environment

    history = History(args.history, t0=args.t0)
    stopping = {"flag": False}
    in_flight = {"n": 0}
    prefix = args.key_prefix or f"w{os.getpid()}-{int(time.time())}-"
    counter = iter(range(1 << 62))
    interval_s = args.users / args.writes_per_s if args.writes_per_s else None

    class Writer(FastHttpUser):
        host = args.api_url
        connection_timeout = 1.0
        network_timeout = args.timeout

        def wait_time(self):
            return pace(self, interval_s)

        @task
        def write(self):
            if stopping["flag"]:
                gevent.sleep(0.05)
                return
            key = f"{prefix}{next(counter)}"
            in_flight["n"] += 1
            write_one(self.client, key, lambda **fields: history.append("op", **fields))
            in_flight["n"] -= 1

    env = Environment(user_classes=[Writer], events=events)
    runner = env.create_local_runner()

    def graceful(*_):
        stopping["flag"] = True

    gevent.signal_handler(signal.SIGTERM, graceful)
    gevent.signal_handler(signal.SIGINT, graceful)

    def die_with_parent():
        # The harness died (SIGKILL leaves no time to stop us): exit at once and write nothing
        # more into a run nobody will finish.
        while True:
            if os.getppid() != args.parent_pid:
                os._exit(3)
            gevent.sleep(0.2)
    if args.parent_pid:
        gevent.spawn(die_with_parent)
    runner.start(args.users, spawn_rate=max(1, args.users * 10))
    deadline = time.monotonic() + args.duration
    while not stopping["flag"] and time.monotonic() < deadline:
        gevent.sleep(0.1)
    stopping["flag"] = True
    # Let requests in flight complete (bounded by the client timeout) so every invoke has an outcome.
    settle = time.monotonic() + args.timeout + 1.0
    while in_flight["n"] and time.monotonic() < settle:
        gevent.sleep(0.02)
    runner.quit()
    stats = env.stats.total
    print(json.dumps({"requests": stats.num_requests, "failures": stats.num_failures}), flush=True)
    history.close()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
