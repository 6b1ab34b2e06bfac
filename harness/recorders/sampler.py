"""The health/critical-path sampler: probes the system every `interval_s` (default 100 ms) and
appends one `sample` event per probe per tick.

A sample's `t` is when its answer arrived (a success proves the service worked then; a timeout
proves it did not answer since `started`). Requests run in a small pool so one slow answer never
delays the next tick. The scheduler watches itself: a tick that fires more than 3 intervals late
is recorded as a `stall`, so a starved sampler cannot fake uptime.

Each `watched` probe (the ones an RTO is measured on) also has a watcher: one request at a time,
once a second, on its own kept-alive connection, with a long timeout. During a freeze its request
stays pending on a connection the server has already accepted, so it is answered the moment the
service resumes; the ticks' requests sent during the freeze sit in the server's accept backlog
behind the outage and time out after the resume. Its answer marks the resume to within the
service's own time rather than the sampling interval; the checker dates the overtaken timeouts
when they were sent (checkers/availability.judged_times). Its samples carry `watcher: true`.

Cost (bench/measurement.py): each probe keeps its HTTP connections alive between samples (a
fresh TCP connection and server-side set-up per sample cost the load measurably on 2 cores; a
connection that broke or timed out is dropped and the next sample opens a new one, so an outage
is seen the same way). Probes named in `sparse_probes` (the ones no RTO is measured on) are asked
every `sparse_interval_s` instead of every tick.
"""
from __future__ import annotations

import http.client
import itertools
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, NamedTuple
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from harness.core.api_contract import HEALTH_PATH, OPTIMIZE_PATH, READY_PATH, optimize_answer_ok, optimize_body
from harness.records.history import History

WATCH_TIMEOUT_S = 60.0  # a watcher's request waits this long: longer than any freeze a scenario holds


class ProbeSpec(NamedTuple):
    """One probe: what to ask, and which answer proves the service worked (status 200 and, if
    `check`, a body it accepts)."""
    method: str
    url: str
    body: Callable[[], dict] | None = None
    check: Callable[[Any], bool] | None = None


def probe_specs(target: dict, names: list[str]) -> dict[str, ProbeSpec]:
    api = target["api_url"]
    counter = itertools.count()
    tag = f"{os.getpid()}-{time.time_ns()}"

    def sample_body() -> dict:
        return optimize_body(f"sample-{tag}-{next(counter)}")

    catalogue = {
        # The critical path: models + a committed row, end to end.
        "api": lambda: ProbeSpec("POST", api + OPTIMIZE_PATH, sample_body, optimize_answer_ok),
        "ready": lambda: ProbeSpec("GET", api + READY_PATH),
        "health": lambda: ProbeSpec("GET", api + HEALTH_PATH),
        "prometheus": lambda: ProbeSpec("GET", target.get("prometheus_url", "") + "/api/v1/query?query=up"),
    }
    unknown = [n for n in names if n not in catalogue]
    if unknown:
        raise ValueError(f"unknown sampler probe {unknown[0]!r}; known: {', '.join(catalogue)}")
    return {n: catalogue[n]() for n in names}


def _http_probe(spec: ProbeSpec, timeout_s: float, pool_size: int = 8, keep_alive: bool = True):
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
            r = session.request(spec.method, spec.url, json=spec.body() if spec.body else None, timeout=timeout_s,
                                headers=headers)
        except requests.Timeout:
            return False, "timeout"
        except requests.ConnectionError as e:
            return False, "connection refused" if "refused" in str(e).lower() else "connection error"
        except requests.RequestException as e:
            return False, type(e).__name__
        return _judge(spec, r.status_code, r.content)
    return probe


def _judge(spec: ProbeSpec, status: int, content: bytes) -> tuple[bool, str | None]:
    if status != 200:
        return False, f"HTTP {status}"
    if spec.check:
        try:
            body = json.loads(content)
        except ValueError:
            return False, "bad body"
        if not spec.check(body):
            return False, "bad body"
    return True, None


class _Watcher:
    """One request at a time on one kept-alive connection (stdlib http.client, so stop() can cut a
    pending request by shutting its socket down), every `every_s`, again at once after a failure's
    `retry_s`. Records through `record(name, ok, error, started, watcher=True)`."""

    def __init__(self, name: str, spec: ProbeSpec, record: Callable, now: Callable[[], float], stop: threading.Event,
                 every_s: float, retry_s: float, timeout_s: float = WATCH_TIMEOUT_S):
        self.name, self.spec, self.record, self.now, self.stop_event = name, spec, record, now, stop
        self.every_s, self.retry_s, self.timeout_s = every_s, retry_s, timeout_s
        self.url = urlsplit(spec.url)
        self.conn: http.client.HTTPConnection | None = None
        self.thread = threading.Thread(target=self._run, name=f"sampler-watch-{name}", daemon=True)

    def _ask(self) -> tuple[bool, str | None]:
        reused = self.conn is not None
        ok, error = self._ask_once()
        if error in ("connection error", "connection refused") and reused and not self.stop_event.is_set():
            # A kept-alive connection the server had closed meanwhile (a restarted or recycled
            # worker) says nothing about the service: ask once more on a fresh one, as urllib3 does.
            ok, error = self._ask_once()
        return ok, error

    def _ask_once(self) -> tuple[bool, str | None]:
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=self.timeout_s)
            path = self.url.path + (f"?{self.url.query}" if self.url.query else "")
            body = json.dumps(self.spec.body()) if self.spec.body else None
            self.conn.request(self.spec.method, path, body=body, headers={"Content-Type": "application/json"})
            resp = self.conn.getresponse()
            return _judge(self.spec, resp.status, resp.read())
        except (OSError, http.client.HTTPException) as e:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            if isinstance(e, TimeoutError):
                return False, "timeout"
            return False, "connection refused" if isinstance(e, ConnectionRefusedError) else "connection error"

    def _run(self) -> None:
        while not self.stop_event.is_set():
            started = self.now()
            ok, error = self._ask()
            self.record(self.name, ok, error, started, watcher=True)
            elapsed = self.now() - started
            self.stop_event.wait(max(0.0, (self.every_s if ok else self.retry_s) - elapsed))

    def start(self) -> None:
        self.thread.start()

    def cut(self) -> None:
        """Unblock a pending request (after the stop event is set: nothing more is recorded)."""
        conn = self.conn
        sock = getattr(conn, "sock", None) if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.thread.join(timeout=5)


class Sampler:
    def __init__(self, history: History, target: dict, probes: list[str], interval_s: float = 0.1,
                 timeout_s: float = 1.0, sparse_probes: tuple[str, ...] | list[str] = (),
                 sparse_interval_s: float = 1.0, keep_alive: bool = True, watched: tuple[str, ...] | list[str] = ()):
        if interval_s <= 0:
            raise ValueError(f"sampler interval must be positive, got {interval_s}")
        self.history = history
        self.interval_s = interval_s
        workers = max(8, int(4 * timeout_s / interval_s) * len(probes))
        specs = probe_specs(target, probes)
        self.probes = {n: _http_probe(spec, timeout_s, workers, keep_alive) for n, spec in specs.items()}
        # A sparse probe is asked every `_sparse_every` ticks (the RTO probe never is sparse).
        self.sparse = {n for n in sparse_probes if n in self.probes}
        self._sparse_every = max(1, round(sparse_interval_s / interval_s))
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sampler")
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._lock = threading.Lock()
        # (t, ok, started) per probe, for waiting on stability by the checkers' own rule.
        self.latest: dict[str, list[tuple[float, bool, float]]] = {n: [] for n in probes}
        self._died: str | None = None  # why the scheduler thread ended on its own
        self._watchers = [_Watcher(n, specs[n], self._record, history.now, self._stop, every_s=sparse_interval_s,
                                   retry_s=interval_s) for n in watched if n in self.probes]

    def start(self) -> "Sampler":
        self._thread.start()
        for w in self._watchers:
            w.start()
        return self

    def _one(self, name: str, probe) -> None:
        started = self.history.now()
        try:
            ok, error = probe()
        except Exception as e:  # a probe that crashes is a failed sample, never a lost one
            ok, error = False, f"sampler exception: {type(e).__name__}: {e}"
        self._record(name, ok, error, started)

    def _record(self, name: str, ok: bool, error: str | None, started: float, watcher: bool = False) -> None:
        t = self.history.now()
        fields = {"probe": name, "ok": ok, "latency_s": round(t - started, 6), "started": round(started, 6)}
        if error:
            fields["error"] = error
        if watcher:
            fields["watcher"] = True
        with self._lock:
            if watcher and self._stop.is_set():  # cut by stop(): not an answer from the service
                return
            self.history.append("sample", t=t, **fields)
            self.latest[name].append((t, ok, started))

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

    def samples(self, probe: str) -> list[tuple[float, bool, float]]:
        with self._lock:
            return list(self.latest.get(probe, []))

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
        for w in self._watchers:
            w.cut()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True)
