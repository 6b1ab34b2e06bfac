"""An independent witness of when the API answers again: one optimize request after another on a
kept-alive connection (stdlib only, its own process, so it shares no GIL and no thread pool with
the sampler it checks), each with a long timeout. During a freeze one request stays pending, and
its answer marks the service's first success after the resume to within that request's own
service time, independently of any sampling interval.

    python bench/_resume_probe.py API_URL OUT_FILE [--every-s 0.05]

Writes one line per request to OUT_FILE: "<sent monotonic> <answered monotonic> <1|0>". Ends on
SIGTERM or when its parent is gone."""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.core.api_contract import OPTIMIZE_PATH, optimize_body  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("api_url")
    ap.add_argument("out")
    ap.add_argument("--every-s", type=float, default=0.05)
    args = ap.parse_args()
    url = urlsplit(args.api_url)
    parent = os.getppid()
    stop = {"flag": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(flag=True))
    conn = None
    n = 0
    with open(args.out, "w", buffering=1) as out:
        while not stop["flag"] and os.getppid() == parent:
            sent = time.monotonic()
            ok = False
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10.0)
                body = json.dumps(optimize_body(f"resume-probe-{os.getpid()}-{n}"))
                conn.request("POST", OPTIMIZE_PATH, body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                ok = resp.status == 200 and b"predicted_ssim" in resp.read()
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            out.write(f"{sent:.6f} {time.monotonic():.6f} {int(ok)}\n")
            n += 1
            time.sleep(max(0.0, args.every_s - (time.monotonic() - sent)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
