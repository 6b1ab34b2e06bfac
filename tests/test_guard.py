"""Production guard and dry run: nothing runs against production by accident."""
import json
import subprocess
import sys
from pathlib import Path

import yaml

from harness.run.guard import describe_plan, refusal

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "experiments" / "kubernetes"
PROD = {"kind": "kubernetes", "name": "svg-ai prod", "environment": "production", "api_url": "http://x",
        "namespace": "svg-ai-prod", "monitoring_namespace": "monitoring", "database_namespace": "svg-ai-prod"}


def _exp(tags=(), ns=None):
    args = {"ns": ns} if ns else {}
    return {"title": "t", "tags": list(tags),
            "method": [{"type": "action", "name": "kill", "tags": ["fault"],
                        "provider": {"type": "python", "module": "m", "func": "f", "arguments": args}}]}


def test_production_needs_the_flag_and_a_production_safe_tag():
    assert "--allow-production" in refusal(PROD, [("a.yaml", _exp())], allow_production=False)
    assert "not tagged 'production-safe'" in refusal(PROD, [("a.yaml", _exp())], allow_production=True)
    assert refusal(PROD, [("a.yaml", _exp(["production-safe"]))], allow_production=True) is None
    assert refusal({**PROD, "environment": "staging"}, [("a.yaml", _exp())], allow_production=False) is None


def test_namespaces_outside_the_allowlist_are_refused():
    target = {**PROD, "environment": "staging", "allowed_namespaces": ["svg-ai-prod", "monitoring"]}
    assert refusal(target, [("a.yaml", _exp(ns="svg-ai-prod"))], False) is None
    why = refusal(target, [("a.yaml", _exp(ns="payments"))], False)
    assert "payments" in why and "outside the target's allowed_namespaces" in why


def test_dry_run_says_what_would_be_injected_where():
    lines = describe_plan(PROD, [("a.yaml", _exp(ns="svg-ai-prod"), {"scenario": "api-crash", "rto_s": 900,
                                                                      "rpo_s": 300, "timeout_s": 180})])
    assert "(PRODUCTION)" in lines[0] and "nothing is injected" in lines[0]
    assert "m.f(ns='svg-ai-prod')" in lines[2] and "fault" in lines[2]


def _run(tmp_path, target, *extra):
    path = tmp_path / "target.json"
    path.write_text(json.dumps(target))
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("GAMEDAY_HOME",)}
    env["GAMEDAY_TARGET"] = str(path)
    return subprocess.run([sys.executable, "-m", "harness.cli", "run", str(K8S / "api-crash.yaml"), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_the_cli_refuses_production_in_one_line_and_injects_nothing(tmp_path):
    r = _run(tmp_path, PROD)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "production" in r.stderr
    assert "Traceback" not in r.stderr and not list(tmp_path.glob("*/history.jsonl"))


def test_the_cli_dry_run_against_production_touches_nothing(tmp_path):
    experiment = yaml.safe_load((K8S / "api-crash.yaml").read_text())
    assert "production-safe" not in (experiment.get("tags") or [])
    r = _run(tmp_path, PROD, "--allow-production", "--dry-run")
    assert r.returncode == 2 and "not tagged 'production-safe'" in r.stderr
    r = _run(tmp_path, {**PROD, "environment": "staging"}, "--dry-run")
    assert r.returncode == 0 and r.stdout.startswith("dry run against kubernetes target svg-ai prod"), r.stdout + r.stderr
