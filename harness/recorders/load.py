"""The load generator: locust users writing uniquely keyed optimization results through the API,
every operation logged to the history with Jepsen outcomes:

  invoke   about to send write `key`
  ok       200 received: the API committed it
  fail     definitely not applied: connection refused (nothing was sent), or a 4xx rejection
  info     unknown: timeout, connection reset after sending, a 5xx (the commit may have happened)

Run as its own process (`python -m harness.recorders.load …`): locust's gevent monkey-patching
must not share a process with requests/urllib3. `LoadGenerator` starts and stops that process.
Stopping is graceful (SIGTERM): users finish the request in flight, so every invoke completes.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.api_contract import OPTIMIZE_PATH, optimize_body, stored_digest
from harness.history import History


class LoadGenerator:
    """Controller used by the control: start/stop the locust process (never imports locust)."""

    def __init__(self, api_url: str, history_path: str | os.PathLike, t0: float, users: int = 8,
                 log_path: str | os.PathLike | None = None, duration_s: float = 3600.0,
                 key_prefix: str | None = None):
        # Every key starts with the prefix: the final read reads the whole key space by it.
        self.key_prefix = key_prefix or f"load-{os.getpid()}-{time.time_ns()}-"
        self.cmd = [sys.executable, "-m", "harness.recorders.load", "--api-url", api_url,
                    "--history", str(history_path), "--t0", repr(t0), "--users", str(users),
                    "--duration", str(duration_s), "--key-prefix", self.key_prefix,
                    "--parent-pid", str(os.getpid())]
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen | None = None
        self._stopping = False

    def start(self) -> "LoadGenerator":
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if out is not subprocess.DEVNULL:
            out.close()
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def failure(self) -> str | None:
        """Why this instrument cannot be trusted, or None: it exited before it was stopped, or it
        did not exit cleanly when stopped (its last writes may have no recorded outcome)."""
        if self.proc is None:
            return "never started"
        code = self.proc.poll()
        if code is None:
            return None
        if not self._stopping:
            return f"exited with status {code} before the end of observation"
        return None if code == 0 else f"exited with status {code} when stopped"

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM, wait for in-flight requests to complete, then SIGKILL if it lingers."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._stopping = True
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


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
    ap.add_argument("--api-url", required=True)
    ap.add_argument("--history", required=True)
    ap.add_argument("--t0", type=float, required=True)
    ap.add_argument("--users", type=int, default=8)
    ap.add_argument("--duration", type=float, default=3600.0)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--key-prefix", default=None, help="every key starts with it: the run's key space")
    ap.add_argument("--parent-pid", type=int, default=None, help="exit at once when this process is gone")
    args = ap.parse_args(argv)

    # Deferred on purpose: locust imports gevent, which monkey-patches the process; the harness
    # imports this module (LoadGenerator) and must never get either.
    import gevent
    from locust import FastHttpUser, constant, events, task
    from locust.env import Environment

    history = History(args.history, t0=args.t0)
    stopping = {"flag": False}
    in_flight = {"n": 0}
    prefix = args.key_prefix or f"w{os.getpid()}-{int(time.time())}-"
    counter = iter(range(1 << 62))

    class Writer(FastHttpUser):
        host = args.api_url
        wait_time = constant(0)
        connection_timeout = 1.0
        network_timeout = args.timeout

        @task
        def write(self):
            if stopping["flag"]:
                gevent.sleep(0.05)
                return
            key = f"{prefix}{next(counter)}"
            in_flight["n"] += 1
            history.append("op", type="invoke", f="write", key=key)
            resp = self.client.post(OPTIMIZE_PATH, name="optimize", json=optimize_body(key))
            # No status code means the exchange itself broke; otherwise the code decides.
            outcome = classify(resp.status_code or 0, None if resp.status_code else resp.error)
            fields = {"type": outcome, "f": "write", "key": key}
            if outcome == "ok":
                try:  # what the API says it stored: the final read compares the row with it
                    fields["digest"] = stored_digest(resp.json())
                except ValueError:
                    fields["digest"] = None
            else:
                fields["error"] = (type(resp.error).__name__ if resp.error else f"HTTP {resp.status_code}")
            history.append("op", **fields)
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
