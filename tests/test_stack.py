"""The embedded reference stack, for real: writes reach primary and standby, supervision brings
every component back after SIGKILL, readiness notices a corrupted model."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psycopg
import pytest
import requests

from harness.core.procs import children
from harness.targets.embedded import stack as embedded, supervisor
from harness.core.api_contract import optimize_body
from waiting import ready, wait_for

pytestmark = pytest.mark.integration


def test_optimize_lands_on_primary_and_standby(healthy_stack):
    rid = f"test-land-{time.time_ns()}"
    r = requests.post(healthy_stack["api_url"] + "/api/v1/optimization/optimize", json=optimize_body(rid), timeout=5)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["parameters"]) == {"color_precision", "corner_threshold", "length_threshold", "max_iterations",
                                       "path_precision", "splice_threshold"}
    assert 0 < body["predicted_ssim"] < 1
    h = requests.get(f"{healthy_stack['api_url']}/api/v1/optimization/history/{rid}", timeout=5)
    assert h.status_code == 200 and h.json()["parameters"] == body["parameters"]
    with psycopg.connect(healthy_stack["primary"]["dsn"]) as c:
        assert c.execute("select count(*) from optimization_results where request_id=%s", (rid,)).fetchone()[0] == 1

    def on_standby():
        with psycopg.connect(healthy_stack["standby"]["dsn"]) as c:
            return c.execute("select count(*) from optimization_results where request_id=%s", (rid,)).fetchone()[0] == 1
    wait_for(on_standby, 10, "row on the standby")
    # Idempotent: the same request id again stores nothing new.
    again = requests.post(healthy_stack["api_url"] + "/api/v1/optimization/optimize", json=optimize_body(rid), timeout=5)
    assert again.status_code == 200 and again.json()["parameters"] == body["parameters"]
    assert requests.get(f"{healthy_stack['api_url']}/api/v1/optimization/history/nope-{rid}", timeout=5).status_code == 404


def test_invalid_body_names_the_field(healthy_stack):
    bad = optimize_body("test-bad")
    del bad["features"]["entropy"]
    r = requests.post(healthy_stack["api_url"] + "/api/v1/optimization/optimize", json=bad, timeout=5)
    assert r.status_code == 422 and "entropy" in r.text


def test_killed_api_worker_is_replaced(healthy_stack):
    arbiter = supervisor.process_info(healthy_stack["supervisor_url"], "api")["pid"]
    workers = children(arbiter)
    assert len(workers) == healthy_stack["api_replicas"]
    os.kill(workers[0], signal.SIGKILL)
    wait_for(lambda: len(set(children(arbiter)) - set(workers)) == 1 and len(children(arbiter)) == len(workers),
             30, "a replacement worker")
    wait_for(lambda: ready(healthy_stack), 30, "API ready")


@pytest.mark.parametrize("program", ["api", "postgres-primary", "prometheus"])
def test_killed_component_comes_back(healthy_stack, program):
    url = healthy_stack["supervisor_url"]
    program = healthy_stack["primary"]["program"] if program == "postgres-primary" else program
    old = supervisor.process_info(url, program)["pid"]
    if program == "api":
        os.killpg(old, signal.SIGKILL)  # the arbiter and its workers: the whole replica set
    else:
        os.kill(old, signal.SIGKILL)
    supervisor.wait_pid_change(url, program, old, 30)
    wait_for(lambda: embedded.component_health(embedded.Layout(healthy_stack["home"], healthy_stack["port_base"]),
                                               program)[0], 60, f"{program} healthy again")
    wait_for(lambda: ready(healthy_stack), 30, "API ready")


def test_corrupted_model_fails_readiness_with_reason(healthy_stack):
    model = Path(healthy_stack["model_dir"]) / "quality_predictor.pt"
    original = model.read_bytes()
    try:
        damaged = bytearray(original)
        damaged[len(damaged) // 2] ^= 0xFF
        model.write_bytes(bytes(damaged))
        r = requests.get(healthy_stack["api_url"] + "/ready", timeout=5)
        assert r.status_code == 503
        assert "quality_predictor.pt" in r.text
    finally:
        model.write_bytes(original)
    wait_for(lambda: ready(healthy_stack), 15, "ready after the model is put back")
