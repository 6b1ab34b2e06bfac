"""`gameday run` end to end on the session stack: exit code, outputs, BCP notifications posted to
a local webhook receiver."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]


def assert_sealed(run_dir: Path, home: str) -> None:
    """The evidence writer sealed the run with the home's key, made at first use."""
    from harness.core import signing
    from harness.report.seal import check_run
    signer, problems = check_run(run_dir, signing.AllowedSigners.read(Path(home) / signing.ALLOWED_SIGNERS_NAME))
    assert problems == [] and signer.principal.startswith("gameday@")


def test_run_writes_outputs_posts_notifications_and_no_secret(healthy_stack, tmp_path):
    """One `gameday run`: its evidence files, sealed; a notification when the incident opens and one
    when it resolves. A secret planted in the target description (and printed by a step of the
    experiment), a password, and a webhook URL carrying credentials: none of them in anything the
    run writes or prints; the webhook with credentials is still delivered, with them as basic auth."""
    import base64
    received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.headers.get("Authorization"), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target_file = Path(healthy_stack["home"]) / "target.json"
    original = target_file.read_text()
    planted = "PLANTED-TOKEN-8f3a9c"
    target_file.write_text(json.dumps({**json.loads(original), "secret_fields": ["ops_token"], "ops_token": planted}))
    hook = f"http://gameday:HOOK-SECRET-42@127.0.0.1:{server.server_port}/hook?token=QUERY-SECRET-99"
    try:
        r = subprocess.run(
            [sys.executable, "-m", "harness.cli", "run", str(ROOT / "tests/experiments/secret-leak.yaml"),
             "--home", healthy_stack["home"], "--port-base", str(healthy_stack["port_base"]),
             "--reports-dir", str(tmp_path), "--notify-webhook", hook],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
            env={**os.environ, "GAMEDAY_LEAK_FILE": healthy_stack["passfile"]})
    finally:
        server.shutdown()
        target_file.write_text(original)
    assert r.returncode == 0, r.stdout + r.stderr
    # The evidence, sealed.
    [run_dir] = [p for p in tmp_path.iterdir() if p.is_dir()]
    for name in ("verdict.json", "history.jsonl", "journal.json", "report.html", "junit.xml"):
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "journal.json").read_text())["bcp"]["status"] == "pass"
    assert_sealed(run_dir, healthy_stack["home"])
    # The notifications: the incident opened, then resolved, with the URL's credentials as basic auth.
    assert [auth for auth, _ in received] == ["Basic " + base64.b64encode(b"gameday:HOOK-SECRET-42").decode()] * 2
    texts = [body["text"] for _, body in received]
    assert "CRITICAL" in texts[0] and "RESOLVED" in texts[1], texts
    # No secret anywhere.
    generated = [line.rsplit(":", 1)[1] for line in Path(healthy_stack["passfile"]).read_text().splitlines()]
    assert len(generated) == 2
    secrets = (planted, "PLANTED-PW-77", "HOOK-SECRET-42", "QUERY-SECRET-99", *generated)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    journal = (run_dir / "journal.json").read_text()
    assert "api token ***" in journal and "password=***" in journal  # the step's output is there, masked
    assert "127.0.0.1:*:*:svgai:***" in journal  # the database passwords the step printed, masked
    for p in files:
        text = p.read_bytes().decode("utf-8", "replace")
        for s in secrets:
            assert s not in text, f"{s} leaked into {p.relative_to(tmp_path)}"
    for s in secrets:
        assert s not in r.stdout + r.stderr, f"{s} printed"
    # The stack was already up, so the run leaves it up.
    from harness.targets.embedded import stack as embedded
    assert embedded.status(healthy_stack["home"])["healthy"]


def test_stock_chaos_run_writes_the_same_evidence_redacted_and_exits_1_on_a_fail(healthy_stack, tmp_path):
    """The same experiment format under stock `chaos run`: the one evidence writer leaves the same
    files in the run folder (verdict.json, journal.json, report.html, junit.xml), secrets masked in
    every file either Chaos Toolkit or the harness writes, and a FAIL makes `chaos run` exit 1."""
    target_file = Path(healthy_stack["home"]) / "target.json"
    original = target_file.read_text()
    planted = "PLANTED-TOKEN-8f3a9c"
    target_file.write_text(json.dumps({**json.loads(original), "secret_fields": ["ops_token"], "ops_token": planted}))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    reports = tmp_path / "reports"
    chaos = str(Path(sys.executable).parent / "chaos")
    try:
        r = subprocess.run([chaos, "--no-version-check", "run", str(ROOT / "tests/experiments/stock-chaos-fail.yaml")],
                           capture_output=True, text=True, cwd=cwd, timeout=300,
                           env={**os.environ, "GAMEDAY_TARGET": str(target_file), "GAMEDAY_REPORTS_DIR": str(reports),
                                "GAMEDAY_LEAK_FILE": healthy_stack["passfile"]})
    finally:
        target_file.write_text(original)
    assert r.returncode == 1, r.stdout + r.stderr  # the verdict is FAIL: a CI job gating on chaos run stops
    [run_dir] = [p for p in reports.iterdir() if p.is_dir()]
    for name in ("verdict.json", "history.jsonl", "journal.json", "report.html", "junit.xml"):
        assert (run_dir / name).exists(), name
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["status"] == "fail" and [c["name"] for c in verdict["criteria"] if not c["passed"]] == ["rto"]
    chaos_journal = json.loads((cwd / "journal.json").read_text())  # Chaos Toolkit's own file
    assert chaos_journal["status"] == "failed" and chaos_journal["bcp"]["status"] == "fail"
    assert chaos_journal["bcp_run_dir"] == str(run_dir)
    assert "<testcase" in (run_dir / "junit.xml").read_text() and 'name="rto"' in (run_dir / "junit.xml").read_text()
    assert_sealed(run_dir, healthy_stack["home"])
    generated = [line.rsplit(":", 1)[1] for line in Path(healthy_stack["passfile"]).read_text().splitlines()]
    secrets = (planted, "PLANTED-PW-77", *generated)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert "api token ***" in (cwd / "journal.json").read_text()  # the step's output is there, masked
    for p in files:
        text = p.read_bytes().decode("utf-8", "replace")
        for s in secrets:
            assert s not in text, f"{s} leaked into {p.relative_to(tmp_path)}"
