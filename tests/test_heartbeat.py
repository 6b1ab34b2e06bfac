"""The heartbeat ledger: bounded reads, torn lines, and the writer against a real HTTP server."""
import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.records.heartbeat_ledger import ledger_file, read_entries, read_window


def _write(folder, entries, torn=False):
    by_file = {}
    for key, wall in entries:
        by_file.setdefault(ledger_file(folder, datetime.fromtimestamp(wall, timezone.utc)), []).append((key, wall))
    for path, rows in by_file.items():
        with open(path, "a") as f:
            for key, wall in rows:
                f.write(json.dumps({"key": key, "wall": wall}) + "\n")
            if torn:
                f.write('{"key": "hb-torn", "wa')


def test_read_window_is_bounded_and_spans_days(tmp_path):
    midnight = datetime(2026, 11, 30, tzinfo=timezone.utc).timestamp()
    _write(tmp_path, [(f"hb-{i}", midnight + i) for i in range(-100, 100)], torn=True)
    got = read_window(tmp_path, midnight - 10, midnight + 9.5)
    assert [k for k, _, _ in got] == [f"hb-{i}" for i in range(-10, 10)]
    assert len(list(tmp_path.glob("heartbeat-*.jsonl"))) == 2  # one file per UTC day


def test_read_window_of_a_missing_ledger_is_empty(tmp_path):
    assert read_window(tmp_path / "nothing", 0, time.time()) == []


class _Api(BaseHTTPRequestHandler):
    status = 200
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Api.seen.append(body["request_id"])
        self.send_response(_Api.status)
        row = {"request_id": body["request_id"], "parameters": {"x": 1}, "predicted_ssim": 0.9, "model_version": "m1"}
        answer = json.dumps({**row, "stored": row, "server": {"system_id": "7", "timeline": 1, "port": 1}}).encode()
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *a):
        pass


def test_writer_records_only_acknowledged_writes(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    proc = subprocess.Popen([sys.executable, "-m", "harness.recorders.heartbeat", "--api-url", url,
                             "--ledger", str(tmp_path), "--interval", "0.1"])
    try:
        time.sleep(1.0)
        _Api.status = 503  # the API stops acknowledging: nothing more may enter the ledger
        time.sleep(0.3)
        acked_before = len(read_window(tmp_path, 0, time.time() + 1))
        time.sleep(0.7)
    finally:
        proc.terminate()
        proc.wait(5)
        server.shutdown()
    ledger = read_window(tmp_path, 0, time.time() + 1)
    assert 5 <= len(ledger) == acked_before
    assert len(_Api.seen) > len(ledger)  # the refused ones were sent, never recorded
    assert all(k.startswith("hb-") for k, _, _ in ledger) and len({k for k, _, _ in ledger}) == len(ledger)
    assert all(d for _, _, d in ledger)  # each acknowledgement keeps the digest of what it stored
    # ... and which server took it, and when it was sent: what the split-brain check judges it by.
    entries = read_entries(tmp_path, 0, time.time() + 1)
    assert all(e["server"] == {"system_id": "7", "timeline": 1, "port": 1} for e in entries)
    assert all(e["sent"] is not None and e["sent"] <= e["wall"] for e in entries)
    assert proc.returncode == 0  # SIGTERM is a clean stop
