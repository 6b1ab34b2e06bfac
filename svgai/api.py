"""HTTP API of the SVG AI system (FastAPI).

Run: ``gunicorn svgai.api:app -k uvicorn_worker.UvicornWorker -w 2 --timeout 5 -b 127.0.0.1:PORT``

Environment, read when a worker starts:

* ``SVGAI_DSN``: libpq DSN, may be multi-host (``host=a,b port=1,2 ... target_session_attrs=read-write``);
* ``SVGAI_MODEL_DIR``: folder made by ``python -m svgai.train``;
* ``SVGAI_CONFIG``: the approved config file (with its ``.sha256`` sidecar);
* ``SVGAI_DB_POOL_SIZE``: database connections per worker process (default 4);
* ``PROMETHEUS_MULTIPROC_DIR``: when set, metrics aggregate across the worker processes.

Each worker keeps a small ``psycopg_pool.ConnectionPool``. A connection that fails is dropped and
the pool opens a new one, so the API rides through database kills, restarts and failovers by
itself; every database call is bounded by the config's ``write_timeout_s`` (waiting for a
connection, server-side statement_timeout, and a watchdog for a server that stopped answering),
so no request hangs on a stuck server. A background thread per worker re-checks the model files
and config once a second, reloads them when a valid new version appears on disk (so every worker
follows a restore, not only the one that got ``POST /admin/reload``), and pings the database to
keep ``svg_ai_db_up`` current.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import re
import socket
import threading
import time
from typing import Any, Callable, TypeVar

import psycopg
import torch
from fastapi import FastAPI, Path
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic import BaseModel, ConfigDict, Field

from svgai import db as _db
from svgai.config import ConfigError, config_checksum, load_config, verify_config
from svgai.models import MANIFEST_NAME, ModelError, Models, load_models, verify_models

__all__ = ["app", "create_app", "DatabaseUnavailable"]

log = logging.getLogger("svgai.api")

T = TypeVar("T")

REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
DEFAULT_POOL_SIZE = 4
DEFAULT_WRITE_TIMEOUT_S = 2.0
CONNECT_TIMEOUT_S = 2  # libpq's minimum
WATCH_INTERVAL_S = 1.0
READY_DB_TIMEOUT_S = 1.0  # a readiness probe must answer within ~1 s
RECONNECT_TIMEOUT_S = 0.25  # a failing background connect is retried (by the next request) this often
DOWN_WAIT_S = 0.2  # how long a call waits for a connection while the database is known down

# ---------------------------------------------------------------------------------------------
# Metrics. In multiprocess mode (PROMETHEUS_MULTIPROC_DIR set before import) counters and
# histograms are summed over workers; gauges use the mode that answers the alert's question.
# They are created on first use in the serving process, not at import, so that a gunicorn
# --preload arbiter never owns a live gauge file (its 0 would pin a 'livemin' gauge forever).


class _Metrics:
    def __init__(self) -> None:
        self.requests = Counter("svg_ai_requests_total", "HTTP requests served", ["route", "status"])
        self.request_duration = Histogram(
            "svg_ai_request_duration_seconds",
            "HTTP request duration",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.optimizations = Counter("svg_ai_optimizations_total", "Optimizations answered with a stored row")
        self.db_errors = Counter("svg_ai_db_errors_total", "Database operations that failed")
        # Last known state wins across workers: the most recent observation of any worker.
        self.db_up = Gauge(
            "svg_ai_db_up", "1 if the database was writable at the last attempt", multiprocess_mode="livemostrecent"
        )
        # Any live worker without models pulls this to 0.
        self.models_loaded = Gauge(
            "svg_ai_models_loaded", "1 if every worker has models loaded", multiprocess_mode="livemin"
        )
        self.model_checksum_ok = Gauge(
            "svg_ai_model_checksum_ok",
            "1 if the model files on disk match their manifest",
            multiprocess_mode="livemostrecent",
        )
        self.config_checksum_ok = Gauge(
            "svg_ai_config_checksum_ok",
            "1 if the config matches its approved checksum",
            multiprocess_mode="livemostrecent",
        )


_metrics_instance: _Metrics | None = None
_metrics_lock = threading.Lock()


def _m() -> _Metrics:
    global _metrics_instance
    if _metrics_instance is None:
        with _metrics_lock:
            if _metrics_instance is None:
                _metrics_instance = _Metrics()
    return _metrics_instance


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached, is read-only, or did not answer in time."""


# ---------------------------------------------------------------------------------------------
# Request bodies


class ImageFeatures(BaseModel):
    model_config = ConfigDict(extra="forbid")

    edge_density: float = Field(ge=0.0, le=1.0)
    unique_colors: int = Field(ge=1, le=256)
    entropy: float = Field(ge=0.0, le=8.0)
    corner_density: float = Field(ge=0.0, le=1.0)
    gradient_strength: float = Field(ge=0.0, le=1.0)
    complexity_score: float = Field(ge=0.0, le=1.0)


class OptimizeRequest(BaseModel):
    request_id: str = Field(pattern=REQUEST_ID_PATTERN)
    features: ImageFeatures
    target_quality: float = Field(ge=0.0, le=1.0)


# ---------------------------------------------------------------------------------------------
# Database access: a psycopg_pool.ConnectionPool per worker, every call bounded in time


class _NotWritable(Exception):
    pass


class _Database:
    """Autocommit connections to the writable server for one worker process (opened after the
    fork: `_State` is built in the app's lifespan, which gunicorn runs in each worker)."""

    def __init__(self, dsn: str | None, size: int, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._error = None if dsn else "SVGAI_DSN is not set"
        self._raw_dsn = dsn or ""
        self._size = max(1, size)
        self._down = False  # the last call found no connection: fail fast until one works again
        self._watchdog = _Watchdog()
        self._pool = None if not dsn else ConnectionPool(
            _dsn_with_defaults(dsn, timeout_s),
            kwargs={"autocommit": True},  # every query commits before its function returns
            # A fixed size: connections are ready before the first request, and one that broke
            # (server restart, failover) is replaced in the background at once.
            min_size=self._size,
            max_size=self._size,
            # Waiting for a free or new connection counts against the call's budget (run() passes
            # what is left of it); this default only serves calls that pass none.
            timeout=timeout_s,
            # No check on checkout: it would cost a round trip per request and could itself hang
            # on a stopped server. A stale connection fails at once instead, and run() retries.
            check=None,
            # After a failed connect the pool retries with an exponential backoff (1 s, 2 s,
            # 4 s ...) until reconnect_timeout: giving up after 0.25 s instead makes the next
            # request that waits start a fresh attempt, so the API follows a restarted or
            # promoted server within about a second however long the outage was.
            reconnect_timeout=RECONNECT_TIMEOUT_S,
            name="svgai-api",
            open=False,
        )

    def open(self) -> None:
        """Start connecting in the background (a worker starts even when the database is down)."""
        if self._pool is not None:
            self._pool.open(wait=False)

    def run(self, fn: Callable[[psycopg.Connection], T], timeout_s: float | None = None) -> T:
        """Run ``fn(conn)`` on a pooled connection within ``timeout_s``; raise DatabaseUnavailable."""
        if self._pool is None:
            raise DatabaseUnavailable(self._error)
        budget = timeout_s or self.timeout_s
        deadline = time.monotonic() + budget
        # After a restart or failover every idle connection is stale and fails at once; the
        # operations are idempotent, so go on with the next one while the budget lasts.
        for _ in range(self._size + 1):
            wait = deadline - time.monotonic()
            if self._down:  # during an outage answer at once, as a refused connect did
                wait = min(wait, DOWN_WAIT_S)
            try:
                conn = self._pool.getconn(timeout=max(wait, 0.001))
            except PoolTimeout:
                self._down = True
                raise DatabaseUnavailable(f"no database connection within {wait:.2g} s") from None
            except psycopg.OperationalError as exc:  # PoolClosed while the worker shuts down
                raise DatabaseUnavailable(_one_line(exc)) from None
            fired = False
            try:
                self._watchdog.arm(conn, deadline)
                try:
                    result = fn(conn)
                finally:
                    fired = self._watchdog.disarm(conn)
                if fired:  # answered, but its socket was shut down just after: do not reuse it
                    conn.close()
            except (psycopg.Error, _NotWritable) as exc:
                # Never reuse a connection that failed (broken, timed out, or on a server that is
                # read-only now): closed, it is dropped by the pool and replaced.
                conn.close()
                if fired:
                    self._down = True
                    raise DatabaseUnavailable(f"no answer within {budget:g} s") from None
                if isinstance(exc, _NotWritable):
                    raise DatabaseUnavailable("database is read-only (in recovery)") from None
                if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) and (
                    time.monotonic() < deadline - 0.05
                ):
                    continue
                raise DatabaseUnavailable(_one_line(exc)) from None
            except BaseException:
                conn.close()
                raise
            finally:
                self._pool.putconn(conn)
            self._down = False
            return result
        raise DatabaseUnavailable(f"every pooled connection failed (last within {budget:g} s)")

    def set_timeout(self, timeout_s: float) -> None:
        """Use a new per-call budget (and statement_timeout for connections opened from now on)."""
        if timeout_s != self.timeout_s:
            self.timeout_s = timeout_s
            if self._pool is not None:
                self._pool.conninfo = _dsn_with_defaults(self._raw_dsn, timeout_s)

    def close(self) -> None:
        self._watchdog.stop()
        if self._pool is not None:
            self._pool.close(timeout=1.0)


class _Watchdog:
    """Shuts down the socket of a connection still busy at its call's deadline.

    A stopped (SIGSTOP) or partitioned server never answers: its statement_timeout cannot fire,
    and neither TCP keepalives nor tcp_user_timeout notice, since a stopped server's kernel still
    acknowledges every packet; a cancel request would wait for the stopped postmaster too. Shutting
    the socket down wakes the waiting thread with an OperationalError at once. One thread checks
    every 50 ms: arming costs a dict entry, where a timer per call would cost a thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[float, psycopg.Connection]] = {}
        self._fired: set[int] = set()
        self._stop = threading.Event()
        threading.Thread(target=self._watch, name="svgai-db-watchdog", daemon=True).start()

    def arm(self, conn: psycopg.Connection, deadline: float) -> None:
        with self._lock:
            self._armed[id(conn)] = (deadline, conn)

    def disarm(self, conn: psycopg.Connection) -> bool:
        """Stop watching `conn`; return True if its deadline passed and its socket was shut."""
        with self._lock:
            self._armed.pop(id(conn), None)
            if id(conn) in self._fired:
                self._fired.discard(id(conn))
                return True
            return False

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            now = time.monotonic()
            with self._lock:
                late = [(key, conn) for key, (deadline, conn) in self._armed.items() if deadline <= now]
                for key, conn in late:
                    self._armed.pop(key, None)
                    self._fired.add(key)
                    with contextlib.suppress(Exception):
                        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
                            sock.shutdown(socket.SHUT_RDWR)


def _dsn_with_defaults(dsn: str, timeout_s: float) -> str:
    params = conninfo_to_dict(dsn)
    params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    params.setdefault("application_name", "svgai-api")
    stmt = f"-c statement_timeout={int(timeout_s * 1000)} {_db.SERVER_SESSION_OPTIONS}"
    params["options"] = f"{params['options']} {stmt}" if params.get("options") else stmt
    return make_conninfo("", **params)


def _one_line(exc: BaseException) -> str:
    text = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
    return text[:400]


def _ping(conn: psycopg.Connection) -> bool:
    if not _db.ping_writable(conn):
        raise _NotWritable()
    return True


# ---------------------------------------------------------------------------------------------
# Worker state: config, models, database


class _State:
    def __init__(self, dsn: str | None, model_dir: str | None, config_path: str | None, pool_size: int) -> None:
        self.model_dir = model_dir
        self.config_path = config_path
        self.config: dict | None = None
        self.config_digest: str | None = None
        self.config_error: str | None = "config not loaded yet"
        self.models: Models | None = None
        self.manifest_digest: str | None = None
        self.models_error: str | None = "models not loaded yet"
        self.models_on_disk_ok = False
        self.models_on_disk_reason = "not checked yet"
        self.config_on_disk_ok = False
        self.config_on_disk_reason = "not checked yet"
        self._refresh_lock = threading.Lock()
        self.refresh(force=True)
        timeout_s = float(self.config["write_timeout_s"]) if self.config else DEFAULT_WRITE_TIMEOUT_S
        self.db = _Database(dsn, pool_size, timeout_s)
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="svgai-watcher", daemon=True)

    @property
    def write_timeout_s(self) -> float:
        return self.db.timeout_s

    def start(self) -> None:
        self.db.open()
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        self.db.close()

    def refresh(self, force: bool = False) -> None:
        """Re-check config and model files on disk; (re)load whatever changed and verifies."""
        with self._refresh_lock:
            self._refresh_config(force)
            self._refresh_models(force)

    def _refresh_config(self, force: bool) -> None:
        path = self.config_path
        if not path:
            self.config_on_disk_ok, self.config_on_disk_reason = False, "SVGAI_CONFIG is not set"
            self.config_error = self.config_error if self.config else "SVGAI_CONFIG is not set"
            _m().config_checksum_ok.set(0)
            return
        ok, reason = verify_config(path)
        self.config_on_disk_ok, self.config_on_disk_reason = ok, reason
        _m().config_checksum_ok.set(1 if ok else 0)
        if not ok:
            if self.config is None:
                self.config_error = reason
            return
        try:
            digest = config_checksum(path)
            if force or self.config is None or digest != self.config_digest:
                cfg = load_config(path)
                self.config, self.config_digest, self.config_error = cfg, digest, None
                if getattr(self, "db", None) is not None:
                    self.db.set_timeout(float(cfg["write_timeout_s"]))
                log.info("config %s loaded (model_version %s)", path, cfg["model_version"])
        except (OSError, ConfigError) as exc:
            self.config_on_disk_ok, self.config_on_disk_reason = False, str(exc)
            _m().config_checksum_ok.set(0)
            if self.config is None:
                self.config_error = str(exc)

    def _refresh_models(self, force: bool) -> None:
        model_dir = self.model_dir
        if not model_dir:
            self.models_on_disk_ok, self.models_on_disk_reason = False, "SVGAI_MODEL_DIR is not set"
            self.models_error = self.models_error if self.models else "SVGAI_MODEL_DIR is not set"
            _m().model_checksum_ok.set(0)
            _m().models_loaded.set(1 if self.models else 0)
            return
        try:
            with open(os.path.join(model_dir, MANIFEST_NAME), "rb") as fh:
                digest = hashlib.sha256(fh.read()).hexdigest()
        except OSError:
            digest = None
        if digest is not None and (force or self.models is None or digest != self.manifest_digest):
            # A new (or first) manifest: load_models verifies every file before using it.
            try:
                models = load_models(model_dir)
                self.models, self.manifest_digest, self.models_error = models, digest, None
                self.models_on_disk_ok, self.models_on_disk_reason = True, "models ok"
                log.info("models %s loaded from %s", models.model_version, model_dir)
            except ModelError as exc:
                self.models_on_disk_ok, self.models_on_disk_reason = False, str(exc)
                if self.models is None:
                    self.models_error = str(exc)
        else:
            # Same manifest as loaded: the files on disk must still match it (re-hash; they are
            # ~20 KB, so this costs ~0.1 ms and catches a corruption at the first check).
            ok, reason = verify_models(model_dir)
            self.models_on_disk_ok, self.models_on_disk_reason = ok, reason
            if self.models is None:
                self.models_error = reason
        _m().model_checksum_ok.set(1 if self.models_on_disk_ok else 0)
        _m().models_loaded.set(1 if self.models is not None else 0)

    def _watch(self) -> None:
        while not self._stop.wait(WATCH_INTERVAL_S):
            try:
                self.refresh()
            except Exception:  # never let the watcher die
                log.exception("refresh of config/models failed")
            try:
                self.db.run(_ping, timeout_s=min(READY_DB_TIMEOUT_S, self.write_timeout_s))
                _m().db_up.set(1)
            except DatabaseUnavailable:
                _m().db_up.set(0)

    def readiness(self) -> tuple[bool, dict[str, str]]:
        """Run every readiness check now; return (ready, {check: "ok" or reason})."""
        self.refresh()
        checks: dict[str, str] = {}
        checks["config"] = "ok" if self.config_on_disk_ok and self.config else (
            self.config_on_disk_reason if not self.config_on_disk_ok else f"config not loaded: {self.config_error}"
        )
        if self.models is None:
            checks["models"] = f"models not loaded: {self.models_error}"
        elif not self.models_on_disk_ok:
            checks["models"] = self.models_on_disk_reason
        elif self.config and self.config["model_version"] != self.models.model_version:
            checks["models"] = (
                f"models are version {self.models.model_version} but config {self.config_path} expects "
                f"{self.config['model_version']}"
            )
        else:
            checks["models"] = "ok"
        try:
            self.db.run(_ping, timeout_s=min(READY_DB_TIMEOUT_S, self.write_timeout_s))
            _m().db_up.set(1)
            checks["database"] = "ok"
        except DatabaseUnavailable as exc:
            _m().db_up.set(0)
            checks["database"] = f"database unavailable: {exc}"
        return all(v == "ok" for v in checks.values()), checks


# ---------------------------------------------------------------------------------------------
# Metrics middleware (plain ASGI: a BaseHTTPMiddleware costs far more per request)


class _MetricsMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_record(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            _m().requests.labels(route, str(status)).inc()
            _m().request_duration.labels(route).observe(time.perf_counter() - start)


def _metrics_payload() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


def _forget_dead_workers() -> None:
    """Drop live-gauge files of worker processes that died without cleanup (e.g. SIGKILL)."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return
    for path in glob.glob(os.path.join(folder, "gauge_live*_*.db")):
        match = re.search(r"_(\d+)\.db$", path)
        if not match:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                multiprocess.mark_process_dead(pid, folder)
        except PermissionError:
            pass


# ---------------------------------------------------------------------------------------------
# The application


def _unavailable(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=503)


def _database(state, work):
    """Run `work(conn)` on the database for a request: (result, None), or (None, a 503 response)
    when the database is unavailable; the db_up gauge and error counter follow either way."""
    try:
        result = state.db.run(work)
    except DatabaseUnavailable as exc:
        _m().db_errors.inc()
        _m().db_up.set(0)
        return None, _unavailable(f"database unavailable: {exc}")
    _m().db_up.set(1)
    return result, None


def create_app() -> FastAPI:
    """Build the FastAPI application; configuration is read from the environment at startup."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        torch.set_num_threads(1)
        _forget_dead_workers()
        _m()
        state = _State(
            dsn=os.environ.get("SVGAI_DSN"),
            model_dir=os.environ.get("SVGAI_MODEL_DIR"),
            config_path=os.environ.get("SVGAI_CONFIG"),
            pool_size=int(os.environ.get("SVGAI_DB_POOL_SIZE", DEFAULT_POOL_SIZE)),
        )
        app.state.svgai = state
        state.start()
        try:
            yield
        finally:
            state.stop()
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                with contextlib.suppress(OSError):
                    multiprocess.mark_process_dead(os.getpid())

    app = FastAPI(title="SVG AI Parameter Optimization System", version="1.0", lifespan=lifespan)
    app.add_middleware(_MetricsMiddleware)

    def state_of() -> _State:
        return app.state.svgai

    @app.post("/api/v1/optimization/optimize")
    def optimize(body: OptimizeRequest) -> JSONResponse:
        state = state_of()
        models, cfg = state.models, state.config
        if models is None:
            return _unavailable(f"models not loaded: {state.models_error}")
        if cfg is None:
            return _unavailable(f"config not loaded: {state.config_error}")
        features = body.features.model_dump()
        parameters, ssim = models.predict(features, body.target_quality, cfg["parameters"])
        row = {
            "request_id": body.request_id,
            "image_features": features,
            "target_quality": body.target_quality,
            "parameters": parameters,
            "predicted_ssim": ssim,
            "model_version": models.model_version,
        }
        stored, unavailable = _database(state, lambda conn: _db.insert_result(conn, row))
        if unavailable:
            return unavailable
        _m().optimizations.inc()
        row = stored["stored"]
        return JSONResponse(
            {
                "request_id": row["request_id"],
                "parameters": row["parameters"],
                "predicted_ssim": row["predicted_ssim"],
                "model_version": row["model_version"],
                # The whole row as stored (every column) and the server that took it: a client can
                # keep what was acknowledged, and know on which server and timeline.
                "stored": row,
                "server": stored["server"],
            }
        )

    @app.get("/api/v1/optimization/history/{request_id}")
    def history(request_id: str = Path(pattern=REQUEST_ID_PATTERN)) -> JSONResponse:
        state = state_of()
        stored, unavailable = _database(state, lambda conn: _db.get_result(conn, request_id))
        if unavailable:
            return unavailable
        if stored is None:
            return JSONResponse({"detail": f"request_id {request_id} not found"}, status_code=404)
        return JSONResponse({**stored["stored"], "stored": stored["stored"], "server": stored["server"]})

    @app.get("/health")
    async def health() -> dict:
        # Liveness only: answered on the event loop, never touches the database.
        return {"status": "ok", "pid": os.getpid()}

    @app.get("/ready")
    def ready() -> JSONResponse:
        state = state_of()
        ok, checks = state.readiness()
        body: dict[str, Any] = {"pid": os.getpid(), "checks": checks}
        if state.models is not None:
            body["model_version"] = state.models.model_version
        if ok:
            return JSONResponse({"status": "ready", **body})
        reason = "; ".join(f"{name}: {text}" for name, text in checks.items() if text != "ok")
        return JSONResponse({"status": "not ready", "reason": reason, **body}, status_code=503)

    @app.post("/admin/reload")
    def reload() -> JSONResponse:
        state = state_of()
        state.refresh(force=True)
        problems = []
        if not state.config_on_disk_ok or state.config is None:
            problems.append(f"config: {state.config_on_disk_reason if not state.config_on_disk_ok else state.config_error}")
        if not state.models_on_disk_ok or state.models is None:
            problems.append(f"models: {state.models_on_disk_reason if not state.models_on_disk_ok else state.models_error}")
        if problems:
            return JSONResponse(
                {"status": "reload failed", "reason": "; ".join(problems), "pid": os.getpid()}, status_code=503
            )
        return JSONResponse({"status": "reloaded", "model_version": state.models.model_version, "pid": os.getpid()})

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(_metrics_payload(), media_type=CONTENT_TYPE_LATEST)

    return app


app = create_app()
