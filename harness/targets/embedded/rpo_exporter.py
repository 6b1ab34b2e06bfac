"""The RPO exposure exporter: how much acknowledged data each way back would lose if the primary
were lost now, as `svg_ai_rpo_exposure_seconds{way=...}` for Prometheus, all the time (the BCP's
"RPO < 5 minutes maintained" is a standing property, not a monthly one).

    way="wal_archive"  age of the newest restorable point in the WAL archive: 0 when every byte
                       of WAL written is archived (an idle primary loses nothing), else now minus
                       the later of the last archival (pg_stat_archiver.last_archived_time, never
                       earlier than a previous reading: a crash resets the server's statistics)
                       and the last reading at which the archive held everything written
    way="standby"      the standby's replay lag: 0 when it has replayed everything the primary has
                       written, else now minus the later of its last replayed commit
                       (pg_last_xact_replay_timestamp) and the last reading at which it had caught up

The "last caught up" term is the care an idle primary needs: the recovery point is the first
write the way back does not hold (harness/checkers/loss.py measures RPO the same way), so after
an idle hour the first new write is one second at risk, not an hour. "Caught up" means the archive
holds every WAL byte, or no write transaction has begun since it did: an idle primary still
writes WAL (running-transaction snapshots, checkpoints) that archive_timeout does not switch out
for (PostgreSQL counts it unimportant), and that WAL holds no data anyone could lose. Without
this the exposure grew one second a second while nothing was written (a held-down API, a quiet
night) and read as an archive at risk.

A server that does not answer leaves its last facts in place, so the exposure keeps growing: what
that way held then is all it is known to hold. Also exported: svg_ai_wal_archiver_failed_count, and
svg_ai_wal_segments_awaiting_archive (the primary's .ready files): when the archive stops moving
without a failure, it tells a stuck archive_command (segments waiting) from segments never
switched out (none waiting), the two causes of a stall seen once in CI and not yet explained.

    python -m harness.targets.embedded.rpo_exporter --port PORT --servers P1,P2 [--passfile FILE] [--period 1]
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

import psycopg
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily

from harness.core.pgroles import server_dsn

__all__ = ["archive_exposure_s", "standby_exposure_s", "segment_end_lsn", "Facts", "main"]


def segment_end_lsn(walfile: str | None, segment_bytes: int) -> int | None:
    """The LSN just after the WAL segment `walfile` (e.g. 000000010000000000000003); None for a name
    that is not a plain segment (a .history or .backup file tells nothing about what is archived)."""
    if not walfile or len(walfile) != 24 or not segment_bytes:
        return None
    try:
        log, seg = int(walfile[8:16], 16), int(walfile[16:24], 16)
    except ValueError:
        return None
    segno = log * (0x100000000 // segment_bytes) + seg
    return (segno + 1) * segment_bytes


def archive_exposure_s(now: float, last_archived_epoch: float | None, written_lsn: int | None,
                       archived_end_lsn: int | None, caught_up_epoch: float | None = None) -> float | None:
    """Seconds of acknowledged data the WAL archive would not give back if the primary were lost
    now (None: never seen archiving)."""
    if written_lsn is not None and archived_end_lsn is not None and written_lsn <= archived_end_lsn:
        return 0.0
    return _since(now, last_archived_epoch, caught_up_epoch)


def standby_exposure_s(now: float, replay_lsn: int | None, primary_lsn: int | None,
                       last_replay_epoch: float | None, caught_up_epoch: float | None = None) -> float | None:
    """The standby's replay lag in seconds (None: it never replayed a commit we know of)."""
    if replay_lsn is not None and primary_lsn is not None and replay_lsn >= primary_lsn:
        return 0.0
    return _since(now, last_replay_epoch, caught_up_epoch)


def _since(now: float, *epochs: float | None) -> float | None:
    known = [e for e in epochs if e is not None]
    return max(0.0, now - max(known)) if known else None


class Facts:
    """What the servers said last; the exposures are computed from it at scrape time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.last_archived_epoch: float | None = None
        self.archived_end_lsn: int | None = None
        self.primary_lsn: int | None = None
        self.failed_count: int | None = None
        self.awaiting_archive: int | None = None
        self.replay_lsn: int | None = None
        self.last_replay_epoch: float | None = None
        self.primary_seen = False
        self.standby_seen = False
        self.archive_caught_up_epoch: float | None = None  # last reading at which the archive held all WAL
        self.caught_up_next_xid: int | None = None  # the next transaction id then: unchanged, nothing was written
        self.standby_caught_up_epoch: float | None = None

    def exposures(self, now: float) -> dict[str, float]:
        with self.lock:
            out = {}
            if self.primary_seen:
                out["wal_archive"] = archive_exposure_s(now, self.last_archived_epoch, self.primary_lsn,
                                                        self.archived_end_lsn, self.archive_caught_up_epoch)
            if self.standby_seen:
                out["standby"] = standby_exposure_s(now, self.replay_lsn, self.primary_lsn, self.last_replay_epoch,
                                                    self.standby_caught_up_epoch)
            return {way: v for way, v in out.items() if v is not None}

    def read(self, ports: list[int], passfile: str | None) -> None:
        """Ask every server for its role and its side of the exposure (primaries first, so that a
        standby read afterwards is compared with a position it could already have replayed)."""
        conns = []
        try:
            for port in ports:
                try:
                    c = psycopg.connect(server_dsn(port, connect_timeout_s=1, passfile=passfile), autocommit=True)
                except psycopg.Error:
                    continue
                conns.append(c)
            roles = []
            for c in conns:
                try:
                    roles.append((c.execute("select pg_is_in_recovery()").fetchone()[0], c))
                except psycopg.Error:
                    continue
            for standby, c in sorted(roles, key=lambda r: r[0]):  # False (primary) first
                try:
                    self._read_standby(c) if standby else self._read_primary(c)
                    if not standby:
                        self._read_archive_status(c)
                except psycopg.Error:
                    continue
        finally:
            for c in conns:
                c.close()

    def _read_primary(self, c, now: float | None = None) -> None:
        row = c.execute(
            "select (pg_current_wal_lsn() - '0/0')::bigint, a.last_archived_wal, "
            "extract(epoch from a.last_archived_time)::float8, a.failed_count, "
            "(select setting::bigint from pg_settings where name = 'wal_segment_size'), "
            "pg_snapshot_xmax(pg_current_snapshot())::text::bigint "
            "from pg_stat_archiver a").fetchone()
        lsn, walfile, archived_epoch, failed, segment_bytes = row[:5]
        next_xid = row[5] if len(row) > 5 else None
        with self.lock:
            self.primary_seen = True
            self.primary_lsn = int(lsn)
            self.failed_count = failed
            # A crash or a failover resets the statistics: never move the archive's point backwards.
            if archived_epoch is not None and (self.last_archived_epoch is None or archived_epoch >= self.last_archived_epoch):
                self.last_archived_epoch = float(archived_epoch)
                end = segment_end_lsn(walfile, int(segment_bytes))
                if end is not None:
                    self.archived_end_lsn = end
            if self.archived_end_lsn is not None and self.primary_lsn <= self.archived_end_lsn:
                self.archive_caught_up_epoch = time.time() if now is None else now
                self.caught_up_next_xid = next_xid
            elif next_xid is not None and next_xid == self.caught_up_next_xid:
                # WAL was written since, but no write transaction began: no data is at risk.
                self.archive_caught_up_epoch = time.time() if now is None else now

    def _read_archive_status(self, c) -> None:
        ready = c.execute("select count(*) from pg_ls_archive_statusdir() where name like '%.ready'").fetchone()[0]
        with self.lock:
            self.awaiting_archive = int(ready)

    def _read_standby(self, c, now: float | None = None) -> None:
        lsn, replay_epoch = c.execute(
            "select (pg_last_wal_replay_lsn() - '0/0')::bigint, "
            "extract(epoch from pg_last_xact_replay_timestamp())::float8").fetchone()
        with self.lock:
            self.standby_seen = True
            self.replay_lsn = int(lsn) if lsn is not None else None
            if replay_epoch is not None:
                self.last_replay_epoch = float(replay_epoch)
            if self.replay_lsn is not None and self.primary_lsn is not None and self.replay_lsn >= self.primary_lsn:
                self.standby_caught_up_epoch = time.time() if now is None else now


class _Collector:
    def __init__(self, facts: Facts):
        self.facts = facts

    def collect(self):
        exposure = GaugeMetricFamily("svg_ai_rpo_exposure_seconds",
                                     "Age of the newest restorable point, per way back", labels=["way"])
        for way, seconds in sorted(self.facts.exposures(time.time()).items()):
            exposure.add_metric([way], round(seconds, 3))
        yield exposure
        if self.facts.failed_count is not None:
            yield GaugeMetricFamily("svg_ai_wal_archiver_failed_count",
                                    "Failed archive_command runs since the primary's statistics were reset",
                                    value=self.facts.failed_count)
        if self.facts.awaiting_archive is not None:
            yield GaugeMetricFamily("svg_ai_wal_segments_awaiting_archive",
                                    "WAL segments the primary has finished and not yet archived (.ready files)",
                                    value=self.facts.awaiting_archive)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="export the RPO exposure of each way back")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--servers", required=True, help="comma-separated PostgreSQL ports (primary and standby, any order)")
    ap.add_argument("--passfile", default=None)
    ap.add_argument("--period", type=float, default=1.0)
    args = ap.parse_args(argv)
    ports = [int(p) for p in args.servers.split(",") if p.strip()]
    facts = Facts()
    REGISTRY.register(_Collector(facts))
    start_http_server(args.port, addr="127.0.0.1")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    while not stopping.is_set():
        facts.read(ports, args.passfile)
        stopping.wait(args.period)
    return 0


if __name__ == "__main__":
    sys.exit(main())
