"""The BCP's notification messages, and a webhook post that never fails an experiment."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.report.notify import post_webhook, render_messages

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "reports" / "gameday-2026-11-27"


def verdict_of(name: str) -> dict:
    return json.loads((FIXTURES / name / "verdict.json").read_text())


def test_messages_follow_the_bcp_templates():
    v = verdict_of("01-database-failure")
    msgs = render_messages(v, target="svg-ai-prod (embedded)", fault_name="kill_postgres_primary")
    crit = msgs["critical"].splitlines()
    assert crit[0] == "🚨 CRITICAL: SVG AI System Incident"
    assert crit[1] == "System: svg-ai-prod (embedded)"
    assert crit[2] == "Impact: Service unavailable"
    assert crit[3].startswith("ETA: Investigating")
    assert crit[4] == "Updates: Every 15 minutes"
    assert crit[5] == "Contact: ops-team@company.com"
    res = msgs["resolved"].splitlines()
    assert res[0] == "✅ RESOLVED: SVG AI System Restored"
    assert res[1] == "Duration: 0.4 minutes (24.0 s)"
    assert res[2] == "Root Cause: Game day: database-failure (kill_postgres_primary)"
    assert res[3] == "Next Steps: Post-incident review scheduled"
    assert "ðŸ" not in msgs["critical"] + msgs["resolved"]


def test_unrecovered_run_is_not_called_resolved():
    msgs = render_messages(verdict_of("02-database-failure-no-restore"))
    assert "RESOLVED" not in msgs["resolved"] and "NOT RESTORED" in msgs["resolved"]
    assert "9 acknowledged writes lost" in msgs["critical"]
    assert "more than 3.0 minutes" in msgs["resolved"]


def test_no_downtime_and_no_fault():
    v = verdict_of("01-database-failure")
    v["measured"].update(downtime_s=0.0, rto_s=0.0)
    assert "Impact: Degraded: no downtime" in render_messages(v)["critical"]
    msgs = render_messages(verdict_of("03-api-crash-all"))
    assert "no fault was injected" in msgs["resolved"]


# Webhook receivers on 127.0.0.1, ephemeral ports ----------------------------------------------

class _Receiver:
    def __init__(self, status: int = 200, hang_s: float = 0.0):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.headers.get("Content-Type"), body))
                if hang_s:
                    time.sleep(hang_s)
                try:
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b"ok" if status == 200 else b"invalid_payload")
                except (BrokenPipeError, ConnectionResetError):
                    # The client gave up on a hanging receiver (the timeout test), seconds ago:
                    # socketserver would print the traceback into whichever test runs then
                    # (it once broke a one-line-on-stderr assertion in test_report_quarterly).
                    pass

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(**kw):
        r = _Receiver(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def test_post_delivers_slack_json_once(receiver):
    r = receiver()
    text = render_messages(verdict_of("01-database-failure"))["critical"]
    ok, detail = post_webhook(r.url, text)
    assert (ok, detail) == (True, "HTTP 200")
    assert len(r.received) == 1
    ctype, body = r.received[0]
    assert ctype.startswith("application/json")
    assert json.loads(body) == {"text": text}


def test_post_reports_http_errors_without_retrying(receiver):
    r = receiver(status=500)
    ok, detail = post_webhook(r.url, "x")
    assert not ok and detail.startswith("HTTP 500") and "invalid_payload" in detail
    assert len(r.received) == 1  # one attempt, no retries


def test_post_respects_the_timeout_on_a_hanging_receiver(receiver):
    r = receiver(hang_s=5.0)
    t0 = time.monotonic()
    ok, detail = post_webhook(r.url, "x", timeout_s=0.5)
    took = time.monotonic() - t0
    assert not ok and "timed out after 0.5 s" in detail
    assert took < 1.5


def test_post_to_a_closed_port_fails_quietly():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    ok, detail = post_webhook(f"http://127.0.0.1:{port}/hook", "x", timeout_s=1.0)
    assert not ok and "refused" in detail


@pytest.mark.parametrize("url", ["", "ftp://example.invalid/x", None, "not a url"])
def test_post_with_a_bad_url_never_raises(url):
    ok, detail = post_webhook(url, "x")
    assert not ok and "http" in detail
