"""The heartbeat ledger (the idea of pt-heartbeat): one uniquely keyed write a second through the
API for as long as the target is up, each acknowledgement appended to a durable ledger file.

A run's own writes begin seconds before its fault, so alone they can never show that a restore
went back an hour: the heartbeat's acknowledgements, older than any run, can. The checkers read
the ledger for a bounded window before the fault (harness.checkers.loss); the control reads those
keys back with the run's own.

The ledger's format and its reader are in harness/records/heartbeat_ledger.py. Each line is one
O_APPEND write followed by fsync: an acknowledgement in the ledger survived whatever happened to
the writer. Files older than RETENTION_DAYS are removed by the writer.

    python -m harness.recorders.heartbeat --api-url URL --ledger DIR [--interval 1]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from harness.core.api_contract import OPTIMIZE_PATH, answer_digest, answer_server, optimize_body
from harness.records.heartbeat_ledger import KEY_PREFIX, ledger_file

__all__ = ["RETENTION_DAYS", "main"]

RETENTION_DAYS = 3


# ---------------------------------------------------------------------------------------------
# The writer process

def _append(ledger_dir: Path, entry: dict) -> None:
    path = ledger_file(ledger_dir, datetime.now(timezone.utc))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry, separators=(",", ":")) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(ledger_dir: Path) -> None:
    horizon = datetime.now(timezone.utc) - timedelta(days=RETENTION_DAYS)
    for path in ledger_dir.glob("heartbeat-*.jsonl"):
        try:
            day = datetime.strptime(path.stem.split("-", 1)[1], "%Y%m%d").replace(tzinfo=timezone.utc)
        except ValueError:
            continue
        if day < horizon:
            path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="heartbeat writer: one keyed write a second, acknowledgements to a ledger")
    ap.add_argument("--api-url", required=True)
    ap.add_argument("--ledger", required=True, help="ledger folder")
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=2.0)
    args = ap.parse_args(argv)
    ledger_dir = Path(args.ledger)
    ledger_dir.mkdir(parents=True, exist_ok=True)
    stopping = {"flag": False}

    def stop(*_):
        stopping["flag"] = True
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    session = requests.Session()  # one kept-alive connection: a heartbeat should cost nothing
    url = args.api_url.rstrip("/") + OPTIMIZE_PATH
    seq = 0
    next_beat = time.monotonic()
    last_prune = 0.0
    while not stopping["flag"]:
        sent = time.time()
        key = f"{KEY_PREFIX}{int(sent * 1000)}-{os.getpid()}-{seq}"
        seq += 1
        try:
            r = session.post(url, json=optimize_body(key), timeout=args.timeout)
            if r.status_code == 200:
                answer = r.json()
                _append(ledger_dir, {"key": key, "wall": round(time.time(), 6), "sent": round(sent, 6),
                                     "digest": answer_digest(answer), "server": answer_server(answer)})
        except (requests.RequestException, ValueError):  # down, restarting, or a broken answer
            session.close()  # the target is down or restarting: a fresh connection next beat
            session = requests.Session()
        if sent - last_prune > 3600:
            _prune(ledger_dir)
            last_prune = sent
        next_beat += args.interval
        delay = next_beat - time.monotonic()
        if delay < 0:  # fell behind (the target hung): beat again now, do not burst to catch up
            next_beat, delay = time.monotonic(), 0.0
        time.sleep(delay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
