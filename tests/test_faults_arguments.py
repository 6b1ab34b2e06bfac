"""The local faults' arguments and layering, without a stack: bad input fails with a sentence
naming the value before anything is touched; faults never reach up into recovery or sideways
into probes; faults, probes and recorders import at the top of the module."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from harness import session
from harness.faults import api, calibration, pending, process

ROOT = Path(__file__).resolve().parent.parent
LAYERED = sorted([*(ROOT / "harness" / "faults").glob("*.py"), *(ROOT / "probes").glob("*.py"),
                  *(ROOT / "harness" / "recorders").glob("*.py")])
# The deliberate exceptions: locust (gevent) monkey-patches, so it is imported only inside the
# load generator's own processes (one process, or the distributed master and workers).
DEFERRED = {("harness/recorders/load.py", "_main"), ("harness/recorders/distributed.py", "_locust")}


@pytest.fixture
def kubernetes_target(tmp_path, monkeypatch) -> str:
    path = tmp_path / "target.json"
    path.write_text(json.dumps({"kind": "kubernetes", "api_url": "http://127.0.0.1:1"}))
    monkeypatch.setenv("GAMEDAY_TARGET", str(path))
    return str(path)


@pytest.mark.parametrize("replicas", ["one", "arbiter", 0, -1, True, 1.5, None, "ALL"])
def test_crash_api_names_a_bad_replicas_value(replicas, kubernetes_target):
    with pytest.raises(ActivityFailed, match=r"replicas must be 'all', 'workers' or a whole number") as e:
        api.crash_api(replicas=replicas)
    assert repr(replicas) in str(e.value)


@pytest.mark.parametrize("replicas", ["one", 0, False, "some"])
def test_hang_api_names_a_bad_replicas_value(replicas, kubernetes_target):
    with pytest.raises(ActivityFailed, match=r"replicas must be 'all', 'arbiter', 'workers' or a whole number"):
        api.hang_api(replicas=replicas)
    assert "hang_api" not in pending()


@pytest.mark.parametrize("duration_s", [-1, 3601, "soon", [3]])
def test_hang_api_names_a_bad_duration(duration_s, kubernetes_target):
    with pytest.raises(ActivityFailed, match=r"duration_s must be"):
        api.hang_api(duration_s=duration_s)
    assert "hang_api" not in pending()


def test_local_faults_refuse_a_kubernetes_target(kubernetes_target):
    for fault in (api.crash_api, api.hang_api, process.kill_monitoring):
        with pytest.raises(ActivityFailed, match=r"needs the embedded stack or the container target \(kind local or containers\), "
                                                   r"target is 'kubernetes'"):
            fault()
    assert api.resume_api() == {"resumed": []}  # a rollback never fails for want of a local stack


def test_calibration_finds_the_run_session_under_its_key():
    assert calibration.RUN_SESSION_KEY == session.SESSION_KEY
    with pytest.raises(ActivityFailed, match=r"no run session in the configuration"):
        calibration.delete_acknowledged_rows(configuration={})


def _imports(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", LAYERED, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_are_at_the_top_of_the_module(path):
    tree = ast.parse(path.read_text())
    rel = str(path.relative_to(ROOT))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (rel, node.name) not in DEFERRED:
            inner = [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
            assert not inner, f"{rel}: {node.name} imports inside a function (line {inner[0].lineno})"


@pytest.mark.parametrize("path", sorted((ROOT / "harness" / "faults").glob("*.py")), ids=lambda p: p.name)
def test_faults_import_neither_recovery_nor_probes(path):
    for name in _imports(ast.parse(path.read_text())):
        assert not name.startswith(("harness.recovery", "probes")), f"{path.name} imports {name}"
