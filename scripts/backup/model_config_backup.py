#!/usr/bin/env python3
"""The BCP's model/configuration backup command, a thin entry point onto harness.recovery.artifacts.

    python scripts/backup/model_config_backup.py backup-models | backup-configs | backup-all
    python scripts/backup/model_config_backup.py restore-model --backup-id model_backup_latest
    python scripts/backup/model_config_backup.py restore-config --backup-id latest
    python scripts/backup/model_config_backup.py status | cleanup [--keep 5]

Exit 0 ok, 2 bad input (nothing touched), 1 failed (a damaged backup is refused untouched).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.core.errors import UsageError  # noqa: E402  (the project root is on the path only now)
from harness.recovery import artifacts  # noqa: E402
from harness.cli import recovery as cli  # noqa: E402
from probes import models  # noqa: E402

COMMANDS = ("backup-models", "backup-configs", "backup-all", "restore-model", "restore-config", "status", "cleanup")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


def _status(target: str | None = None) -> dict:
    backups = artifacts.list_artifact_backups(target)
    live_models, live_config = models.check_models(target), models.check_config(target)
    return {"backups": backups, "models_ok": live_models[0], "models": live_models[1],
            "config_ok": live_config[0], "config": live_config[1]}


def _status_summary(r: dict) -> str:
    return "\n".join([cli.summary_art_list(r["backups"]),
                      f"live models: {'ok' if r['models_ok'] else 'DAMAGED'} ({r['models']})",
                      f"live config: {'ok' if r['config_ok'] else 'DRIFTED'} ({r['config']})"])


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="model_config_backup.py", description="Model and configuration backups (BCP 2).")
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--backup-id", default="latest", help="backup id, latest, model_backup_latest, config_backup_latest")
    parser.add_argument("--keep", type=int, default=5, help="backups to keep (cleanup)")
    parser.add_argument("--home", help="stack folder")
    parser.add_argument("--target", help="target description file")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = parser.parse_args(argv)

    kinds = {"backup-models": "models", "backup-configs": "config", "backup-all": "all"}
    try:
        if args.command in kinds:
            return cli.run(artifacts.backup_artifacts, args, cli.summary_art_backup, kind=kinds[args.command])
        if args.command == "restore-model":
            return cli.run(artifacts.restore_model, args, cli.summary_art_restore, backup_id=args.backup_id)
        if args.command == "restore-config":
            return cli.run(artifacts.restore_config, args, cli.summary_art_restore, backup_id=args.backup_id)
        if args.command == "status":
            return cli.run(_status, args, _status_summary, ok=lambda r: r["models_ok"] and r["config_ok"])
        return cli.run(artifacts.cleanup_artifact_backups, args,
                       lambda r: f"kept {len(r['kept'])} backup(s), deleted {len(r['deleted'])}", keep=args.keep)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
