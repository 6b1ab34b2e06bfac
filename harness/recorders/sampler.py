"""The health/critical-path sampler: probes the system every `interval_s` (default 100 ms) and
appends one `sample` event per probe per tick.

A sample's `t` is when its answer arrived (a success proves the service worked then; a timeout
proves it did not answer since `started`). Requests run in a small pool so one slow answer never
delays the next tick. The scheduler watches itself: a tick that fires more than 3 intervals late
is recorded as a `stall`, so a starved sampler cannot fake uptime.

Cost (bench/measurement.py): each probe keeps its HTTP connections alive between samples (a
fresh TCP connection and server-side set-up per sample cost the load measurably on 2 cores; a
connection that broke or timed out is dropped and the next sample opens a new one, so an outage
is seen the same way). Probes named in `sparse_probes` (the ones no RTO is measured on) are asked
every `sparse_interval_s` instead of every tick.
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import requests
from requests.adapters import HTTPAdapter

from harness.core.api_contract import HEALTH_PATH, OPTIMIZE_PATH, READY_PATH, optimize_answer_ok, optimize_body
from harness.records.history import History


def _http_probe(method: str, url: str, timeout_s: float, body_fn: Callable[[], dict] | None = None,
                check: Callable[[requests.Response], bool] | None = None, pool_size: int = 8,
                keep_alive: bool = True):
    # One keep-alive session per probe, shared by the pool's threads (urllib3's pool is thread-safe);
    # no retries: a failed attempt is a failed sample. Without keep-alive: a fresh connection each
    # time, closed after the answer (what the sampler did before; kept for comparison).
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    headers = None if keep_alive else {"Connection": "close"}

    def probe() -> tuple[bool, str | None]:
        try:
            r = session.request(method, url, json=body_fn() if body_fn else None, timeout=timeout_s, headers=headers)
        except requests.Timeout:
            return False, "timeout"
        except requests.ConnectionError as e:
            return False, "connection refused" if "refused" in str(e).lower() else "connection error"
        except requests.RequestException as e:
            return False, type(e).__name__
        if r.status_code != 200:
            return False, f"HTTP {r.status_code}"
        if check and not check(r):
            return False, "bad body"
        return True, None
    return probe


def make_probes(target: dict, names: list[str], timeout_s: float, pool_size: int = 8,
                keep_alive: bool = True) -> dict[str, Callable[[], tuple[bool, str | None]]]:
    api = target["api_url"]
    counter = itertools.count()
    tag = f"{os.getpid()}-{time.time_ns()}"

    def sample_body() -> dict:
        return optimize_body(f"sample-{tag}-{next(counter)}")

    catalogue = {
        # The critical path: models + a committed row, end to end.
        "api": lambda: _http_probe("POST", api + OPTIMIZE_PATH, timeout_s, sample_body,
                                   lambda r: optimize_answer_ok(r.json()), pool_size, keep_alive),
        "ready": lambda: _http_probe("GET", api + READY_PATH, timeout_s, pool_size=pool_size, keep_alive=keep_alive),
        "health": lambda: _http_probe("GET", api + HEALTH_PATH, timeout_s, pool_size=pool_size, keep_alive=keep_alive),
        "prometheus": lambda: _http_probe("GET", target.get("prometheus_url", "") + "/api/v1/query?query=up", timeout_s,
                                          pool_size=pool_size, keep_alive=keep_alive),
    }
    unknown = [n for n in names if n not in catalogue]
    if unknown:
        raise ValueError(f"unknown sampler probe {unknown[0]!r}; known: {', '.join(catalogue)}")
    return {n: catalogue[n]() for n in names}


class Sampler:
    def __init__(self, history: History, target: dict, probes: list[str], interval_s: float = 0.1,
                 timeout_s: float = 1.0, sparse_probes: tuple[str, ...] | list[str] = (),
                 sparse_interval_s: float = 1.0, keep_alive: bool = True):
        if interval_s <= 0:
            raise ValueError(f"sampler interval must be positive, got {interval_s}")
        self.history = history
        self.interval_s = interval_s
        workers = max(8, int(4 * timeout_s / interval_s) * len(probes))
        self.probes = make_probes(target, probes, timeout_s, pool_size=workers, keep_alive=keep_alive)
        # A sparse probe is asked every `_sparse_every` ticks (the RTO probe never is sparse).
        self.sparse = {n for n in sparse_probes if n in self.probes}
        self._sparse_every = max(1, round(sparse_interval_s / interval_s))
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sampler")
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._lock = threading.Lock()
        self.latest: dict[str, list[tuple[float, bool]]] = {n: [] for n in probes}  # for waiting on stability
        self._died: str | None = None  # why the scheduler thread ended on its own

    def start(self) -> "Sampler":
        self._thread.start()
        return self

    def _one(self, name: str, probe) -> None:
        started = self.history.now()
        try:
            ok, error = probe()
        except Exception as e:  # a probe that crashes is a failed sample, never a lost one
            ok, error = False, f"sampler exception: {type(e).__name__}: {e}"
        t = self.history.now()
        fields = {"probe": name, "ok": ok, "latency_s": round(t - started, 6), "started": round(started, 6)}
        if error:
            fields["error"] = error
        self.history.append("sample", t=t, **fields)
        with self._lock:
            self.latest[name].append((t, ok))

    def _run(self) -> None:
        try:
            self._schedule()
        except BaseException as e:  # the scheduler died: nothing samples any more; failure() says so
            self._died = f"scheduler thread died: {type(e).__name__}: {e}"

    def _schedule(self) -> None:
        next_tick = time.monotonic()
        for tick in itertools.count():
            if self._stop.is_set():
                break
            now = time.monotonic()
            late = now - next_tick
            if late > 3 * self.interval_s:
                self.history.append("stall", recorder="sampler", gap_s=round(late + self.interval_s, 3),
                                    expected_s=self.interval_s)
                next_tick = now
            for name, probe in self.probes.items():
                if name not in self.sparse or tick % self._sparse_every == 0:
                    self._pool.submit(self._one, name, probe)
            next_tick += self.interval_s
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

    def failure(self) -> str | None:
        """Why this instrument cannot be trusted, or None: its scheduler ended before stop()."""
        if self._died:
            return self._died
        if self._thread.ident is not None and not self._thread.is_alive() and not self._stop.is_set():
            return "scheduler thread ended before the end of observation"
        return None

    def samples(self, probe: str) -> list[tuple[float, bool]]:
        with self._lock:
            return list(self.latest.get(probe, []))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True)
