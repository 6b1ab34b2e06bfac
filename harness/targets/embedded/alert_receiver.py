"""The alert webhook receiver: Alertmanager posts here, each alert becomes one JSON line in the
stack's alerts log (with the time it arrived), which detection checks read."""
from __future__ import annotations

import argparse
import json
import os
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(out_path: str):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"status":"ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                payload = json.loads(raw)
            except json.JSONDecodeError:
                self.send_response(400)
                self.end_headers()
                return
            received = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            lines = []
            for alert in payload.get("alerts", []):
                lines.append(json.dumps({
                    "received": received,
                    "alertname": alert.get("labels", {}).get("alertname"),
                    "status": alert.get("status"),
                    "startsAt": alert.get("startsAt"),
                    "endsAt": alert.get("endsAt"),
                    "labels": alert.get("labels", {}),
                }) + "\n")
            with lock, open(out_path, "a") as f:
                f.writelines(lines)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):  # quiet: the alerts log is the record
            pass

    return Handler


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    # 0.0.0.0 only inside a container (the container target), where Alertmanager is another host.
    ap.add_argument("--host", default="127.0.0.1")
    args = ap.parse_args(argv)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    ThreadingHTTPServer((args.host, args.port), make_handler(args.out)).serve_forever()


if __name__ == "__main__":
    main()
