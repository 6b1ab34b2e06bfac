"""The reference system's API without a database: liveness, readiness, validation, metrics."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from svgai.api import _Watchdog, create_app
from svgai.config import default_config, write_config
from svgai.models import train_and_save

CLOSED_DSN = "host=127.0.0.1 port=1 dbname=svgai user=svgai connect_timeout=2"
OPTIMIZE = "/api/v1/optimization/optimize"
BODY = {
    "request_id": "unit-1",
    "features": {
        "edge_density": 0.2,
        "unique_colors": 12,
        "entropy": 3.1,
        "corner_density": 0.05,
        "gradient_strength": 0.3,
        "complexity_score": 0.4,
    },
    "target_quality": 0.9,
}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("svgai-api")
    train_and_save(root / "models", model_version="1.0.0")
    write_config(root / "config.json", default_config("1.0.0"))
    return root


def _client(monkeypatch, model_dir, config_path, dsn=CLOSED_DSN):
    monkeypatch.setenv("SVGAI_DSN", dsn)
    monkeypatch.setenv("SVGAI_MODEL_DIR", str(model_dir))
    monkeypatch.setenv("SVGAI_CONFIG", str(config_path))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    return TestClient(create_app())


@pytest.fixture
def client(artifacts, monkeypatch):
    with _client(monkeypatch, artifacts / "models", artifacts / "config.json") as c:
        yield c


def test_health_answers_without_database(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and isinstance(r.json()["pid"], int)


def test_ready_names_the_database(client):
    r = client.get("/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not ready"
    assert body["reason"].startswith("database: database unavailable")
    assert body["checks"]["models"] == "ok" and body["checks"]["config"] == "ok"
    assert body["model_version"] == "1.0.0"


def test_optimize_is_503_when_database_is_down(client):
    r = client.post(OPTIMIZE, json=BODY)
    assert r.status_code == 503
    assert r.json()["detail"].startswith("database unavailable: ")
    r = client.get("/api/v1/optimization/history/unit-1")
    assert r.status_code == 503 and r.json()["detail"].startswith("database unavailable: ")
    assert client.get("/api/v1/optimization/history/has%20space").status_code == 422


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda b: b["features"].update(edge_density=1.5), "edge_density"),
        (lambda b: b["features"].pop("entropy"), "entropy"),
        (lambda b: b["features"].update(unique_colors=0), "unique_colors"),
        (lambda b: b.pop("target_quality"), "target_quality"),
        (lambda b: b.update(request_id="has space"), "request_id"),
        (lambda b: b.update(request_id="x" * 129), "request_id"),
        (lambda b: b.update(request_id=""), "request_id"),
    ],
)
def test_optimize_rejects_bad_bodies_naming_the_field(client, change, field):
    body = {**BODY, "features": dict(BODY["features"])}
    change(body)
    r = client.post(OPTIMIZE, json=body)
    assert r.status_code == 422
    assert any(err["loc"][-1] == field for err in r.json()["detail"]), r.json()


def test_metrics_expose_svg_ai_series(client):
    client.get("/health")
    client.post(OPTIMIZE, json=BODY)
    text = client.get("/metrics").text
    for name in (
        "svg_ai_requests_total",
        "svg_ai_request_duration_seconds_bucket",
        "svg_ai_optimizations_total",
        "svg_ai_db_errors_total",
        "svg_ai_db_up",
        "svg_ai_models_loaded",
        "svg_ai_model_checksum_ok",
    ):
        assert name in text, name
    assert 'svg_ai_requests_total{route="/api/v1/optimization/optimize",status="503"}' in text
    assert "svg_ai_db_up 0.0" in text
    assert "svg_ai_models_loaded 1.0" in text


def test_corrupt_model_file_fails_ready_at_once_and_restore_heals(artifacts, monkeypatch, tmp_path):
    model_dir = tmp_path / "models"
    shutil.copytree(artifacts / "models", model_dir)
    target = model_dir / "regressors" / "max_iterations.joblib"
    good = target.read_bytes()
    with _client(monkeypatch, model_dir, artifacts / "config.json") as c:
        assert c.get("/ready").json()["checks"]["models"] == "ok"
        target.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # same size, same second
        body = c.get("/ready").json()
        assert "regressors/max_iterations.joblib" in body["checks"]["models"]
        assert "svg_ai_model_checksum_ok 0.0" in c.get("/metrics").text
        target.write_bytes(good)
        assert c.get("/ready").json()["checks"]["models"] == "ok"
        r = c.post("/admin/reload")
        assert r.status_code == 200 and r.json()["model_version"] == "1.0.0"


def test_unloadable_models_keep_the_worker_up(artifacts, monkeypatch, tmp_path):
    model_dir = tmp_path / "models"
    shutil.copytree(artifacts / "models", model_dir)
    (model_dir / "quality_predictor.pt").unlink()
    with _client(monkeypatch, model_dir, artifacts / "config.json") as c:
        assert c.get("/health").status_code == 200
        r = c.post(OPTIMIZE, json=BODY)
        assert r.status_code == 503 and "quality_predictor.pt" in r.json()["detail"]
        ready = c.get("/ready").json()
        assert "quality_predictor.pt" in ready["reason"]
        r = c.post("/admin/reload")
        assert r.status_code == 503 and "quality_predictor.pt" in r.json()["reason"]
        # Restoring the file is enough: readiness reloads a valid model directory by itself.
        shutil.copy(artifacts / "models" / "quality_predictor.pt", model_dir / "quality_predictor.pt")
        assert c.get("/ready").json()["checks"]["models"] == "ok"


def test_changed_config_fails_ready(artifacts, monkeypatch, tmp_path):
    config = tmp_path / "config.json"
    write_config(config, default_config("1.0.0"))
    with _client(monkeypatch, artifacts / "models", config) as c:
        assert c.get("/ready").json()["checks"]["config"] == "ok"
        config.write_text(config.read_text().replace('"write_timeout_s": 2.0', '"write_timeout_s": 9.0'))
        reason = c.get("/ready").json()["checks"]["config"]
        assert "approved checksum" in reason and str(config) in reason


def test_building_the_app_opens_no_pool_and_starts_no_thread():
    # gunicorn --preload builds the app in the arbiter; the pool must be opened in each worker
    # (the lifespan), never inherited across fork.
    before = set(threading.enumerate())
    create_app()
    assert set(threading.enumerate()) - before == set()


def test_watchdog_wakes_a_call_blocked_on_a_server_that_never_answers():
    a, b = socket.socketpair()
    watchdog = _Watchdog()
    try:
        conn = SimpleNamespace(pgconn=SimpleNamespace(socket=a.fileno()))
        watchdog.arm(conn, time.monotonic() + 0.3)
        t0 = time.monotonic()
        assert a.recv(1) == b""  # blocked until the watchdog shut the socket down
        assert 0.25 < time.monotonic() - t0 < 1.0
        assert watchdog.disarm(conn) is True
        watchdog.arm(conn, time.monotonic() + 5.0)
        assert watchdog.disarm(conn) is False
    finally:
        watchdog.stop()
        a.close()
        b.close()


def test_requests_fail_in_time_when_the_database_accepts_but_never_answers(artifacts, monkeypatch):
    # A listener that never speaks: what a frozen (SIGSTOPped) PostgreSQL is to a new connection.
    silent = socket.create_server(("127.0.0.1", 0), backlog=64)
    dsn = f"host=127.0.0.1 port={silent.getsockname()[1]} dbname=svgai user=svgai connect_timeout=2"
    try:
        with _client(monkeypatch, artifacts / "models", artifacts / "config.json", dsn=dsn) as c:
            t0 = time.monotonic()
            r = c.post(OPTIMIZE, json=BODY)
            assert r.status_code == 503 and r.json()["detail"].startswith("database unavailable: ")
            assert time.monotonic() - t0 < 2.0 + 0.5  # the config's write_timeout_s, and a little
            t0 = time.monotonic()
            assert c.post(OPTIMIZE, json=BODY).status_code == 503
            assert time.monotonic() - t0 < 0.5  # known down: fails at once, the pool retries behind
            t0 = time.monotonic()
            r = c.get("/ready")
            assert r.status_code == 503 and "database unavailable" in r.json()["checks"]["database"]
            assert time.monotonic() - t0 < 1.5
    finally:
        silent.close()
