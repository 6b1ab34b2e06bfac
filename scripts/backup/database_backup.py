#!/usr/bin/env python3
"""The BCP's database backup command, a thin entry point onto harness.recovery (backup: base
backups and the WAL archive; database: the point-in-time restore).

    python scripts/backup/database_backup.py backup
    python scripts/backup/database_backup.py restore --backup-id latest [--target-time ISO]
    python scripts/backup/database_backup.py status
    python scripts/backup/database_backup.py cleanup [--keep 3]

The stack is found through --home/--target, else $GAMEDAY_TARGET, $GAMEDAY_HOME or the project's
.gameday. Exit 0 ok, 2 bad input (nothing touched), 1 failed midway.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.core.errors import UsageError  # noqa: E402  (the project root is on the path only now)
from harness.recovery import backup, database  # noqa: E402
from harness.cli import recovery as cli  # noqa: E402


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


def _status(target: str | None = None) -> dict:
    return {"backups": backup.list_backups(target), "archive": backup.archive_status(target)}


def _status_summary(r: dict) -> str:
    a = r["archive"]
    point = a["newest_restorable_point"]
    if a.get("error"):
        health = f"archive: {a['error']}"
    else:
        health = (f"archive {'healthy' if a['healthy'] else 'UNHEALTHY'}: last archived {a['last_archived_wal']} at "
                  f"{a['last_archived_time']}, {a['failed_count']} failures, {a['segments_waiting']} segment(s) waiting")
    return "\n".join([cli.summary_db_list(r["backups"]), health,
                      f"newest restorable point: {point['time']} ({cli._age(point['age_s'])})"])


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="database_backup.py", description="Database backup and point-in-time restore (BCP 1).")
    parser.add_argument("command", choices=("backup", "restore", "status", "cleanup"))
    parser.add_argument("--backup-id", default="latest", help="backup id or latest (restore)")
    parser.add_argument("--target-time", help="restore to this moment, ISO-8601 with timezone (restore)")
    parser.add_argument("--keep", type=int, default=3, help="backups to keep (cleanup)")
    parser.add_argument("--home", help="stack folder")
    parser.add_argument("--target", help="target description file")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = parser.parse_args(argv)

    try:
        if args.command == "backup":
            return cli.run(backup.create_backup, args, cli.summary_db_backup)
        if args.command == "restore":
            return cli.run(database.restore_database, args, cli.summary_db_restore, backup_id=args.backup_id,
                           target_time=args.target_time)
        if args.command == "status":
            return cli.run(_status, args, _status_summary, ok=lambda r: r["archive"]["healthy"])
        return cli.run(backup.cleanup_backups, args, lambda r: (
            f"kept {len(r['kept'])} backup(s), deleted {len(r['deleted'])}; pruned {r['archive_files_pruned']} "
            f"archived WAL file(s)"), keep=args.keep)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
