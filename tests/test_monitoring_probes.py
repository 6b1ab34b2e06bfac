"""Monitoring probes against a Prometheus that answers at the HTTP level (its /api/v1/query
protocol, canned results per query): what each steady-state probe and critical function accepts,
and that it refuses partial evidence."""
from __future__ import annotations

import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from probes.monitoring import check_targets_scraped, rpo_exposure_below


class _Prometheus(BaseHTTPRequestHandler):
    answers: dict[str, list] = {}

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        promql = urllib.parse.parse_qs(url.query).get("query", [""])[0]
        body = json.dumps({"status": "success", "data": {"resultType": "vector",
                                                         "result": self.answers.get(promql, [])}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def prometheus(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    target = tmp_path / "target.json"
    target.write_text(json.dumps({"kind": "local", "api_url": "http://127.0.0.1:9",
                                  "prometheus_url": f"http://127.0.0.1:{server.server_address[1]}"}))
    yield _Prometheus.answers, str(target)
    _Prometheus.answers = {}
    server.shutdown()
    server.server_close()


def _series(labels: dict, value) -> dict:
    return {"metric": labels, "value": [time.time(), str(value)]}


def test_rpo_exposure_needs_every_way_back_under_the_bound(prometheus):
    answers, target = prometheus
    both = [_series({"way": "wal_archive"}, 2.5), _series({"way": "standby"}, 0)]
    answers["svg_ai_rpo_exposure_seconds"] = both
    assert rpo_exposure_below(30, target)
    answers["svg_ai_rpo_exposure_seconds"] = both[:1]  # the standby down: its way back unwatched
    assert not rpo_exposure_below(30, target)
    answers["svg_ai_rpo_exposure_seconds"] = [_series({"way": "wal_archive"}, 45), both[1]]
    assert not rpo_exposure_below(30, target)


def test_every_scrape_target_of_the_job_must_be_up_and_fresh(prometheus):
    answers, target = prometheus
    now = time.time()
    job = 'up{job="svg-ai-api"}'
    answers[f"timestamp({job})"] = [_series({"instance": "a"}, now - 1), _series({"instance": "b"}, now - 2)]
    answers[job] = [_series({"instance": "a"}, 1), _series({"instance": "b"}, 1)]
    ok, detail = check_targets_scraped(target)
    assert ok and "2 target(s)" in detail, detail
    answers[job] = [_series({"instance": "a"}, 1), _series({"instance": "b"}, 0)]  # one replica down
    ok, detail = check_targets_scraped(target)
    assert not ok and "1 of 2 targets" in detail and "b" in detail, detail
    answers[job] = [_series({"instance": "a"}, 1), _series({"instance": "b"}, 1)]
    answers[f"timestamp({job})"] = [_series({"instance": "a"}, now - 1), _series({"instance": "b"}, now - 60)]
    ok, detail = check_targets_scraped(target)  # one stale: its metrics are not being collected
    assert not ok and "60" in detail, detail
    answers.clear()
    assert not check_targets_scraped(target)[0]
