"""`gameday backup db …`, `gameday backup artifacts …`, `gameday failover`: the BCP's recovery
commands on the command line. Exit 0 ok; 2 bad input (nothing touched); 1 failed midway."""
from __future__ import annotations

import json
import sys

from chaoslib.exceptions import ActivityFailed

from harness.cli.options import add_home_options, target_of
from harness.core.errors import UsageError, first_line
from harness.recovery import artifacts, backup, database, failover, retention, verify
from harness.recovery.runbook import RecoveryInputError


def register(sub) -> None:
    backup = sub.add_parser("backup", help="database and model/config backups, restores, verification")
    bsub = backup.add_subparsers(dest="backup_area", metavar="AREA", required=True)

    db = bsub.add_parser("db", help="PostgreSQL base backups + WAL archive: point-in-time recovery")
    dsub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    p = dsub.add_parser("create", help="take a base backup of the primary now")
    _common(p, cmd_db_create)
    p = dsub.add_parser("list", help="list base backups, oldest first")
    _common(p, cmd_db_list)
    p = dsub.add_parser("verify", help="restore a backup into a scratch cluster and check it (weekly verification)")
    _backup_id(p)
    p.add_argument("--records-dir", help="where the verification record goes (default reports/backup-verify/)")
    _common(p, cmd_db_verify)
    p = dsub.add_parser("restore", help="point-in-time recovery of the primary (latest state by default)")
    _backup_id(p)
    p.add_argument("--target-time", help="restore to this moment (ISO-8601 with timezone, e.g. 2026-05-01T10:15:00Z)")
    _common(p, cmd_db_restore)
    p = dsub.add_parser("cleanup", help="delete all but the newest backups (and WAL only they needed)")
    p.add_argument("--keep", type=int, default=3, help="backups to keep (default 3)")
    p.add_argument("--rows-older-than-days", type=float, default=7.0, metavar="DAYS",
                   help="also delete the harness's own rows (load writes, heartbeat, probes) older than this "
                        "from the application table (default 7)")
    _common(p, cmd_db_cleanup)

    art = bsub.add_parser("artifacts", help="model files and approved configuration")
    asub = art.add_subparsers(dest="artifacts_command", metavar="ACTION", required=True)
    p = asub.add_parser("create", help="back up models and/or config")
    p.add_argument("--kind", choices=("models", "config", "all"), default="all")
    _common(p, cmd_art_create)
    p = asub.add_parser("list", help="list model/config backups, oldest first")
    _common(p, cmd_art_list)
    p = asub.add_parser("verify", help="check a backup's archives and contents without restoring")
    _backup_id(p)
    _common(p, cmd_art_verify)
    p = asub.add_parser("restore-model", help="restore the model files (verified, swapped atomically)")
    _backup_id(p)
    _common(p, cmd_art_restore_model)
    p = asub.add_parser("restore-config", help="restore the approved configuration")
    _backup_id(p)
    _common(p, cmd_art_restore_config)
    p = asub.add_parser("cleanup", help="delete all but the newest backups")
    p.add_argument("--keep", type=int, default=5, help="backups to keep (default 5)")
    _common(p, cmd_art_cleanup)

    p = sub.add_parser("failover", help="promote the standby, fence and rebuild the old primary as its standby "
                                        "(on the patroni tier: a Patroni switchover)")
    p.add_argument("--no-rebuild", action="store_true", help="leave the old primary fenced (no standby until the next failover)")
    _common(p, cmd_failover)


def _common(p, func) -> None:
    add_home_options(p)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=func)


def _backup_id(p) -> None:
    p.add_argument("--backup-id", default="latest", help="backup id, or latest (default)")


def _target(args) -> str:
    """The target description the runbook works on (--home, --target, $GAMEDAY_TARGET, default home)."""
    return str(target_of(args).path)


def run(fn, args, summary, ok=None, **kw) -> int:
    """Call a recovery function and turn its outcome into output and an exit code (`ok`: a check
    of the result; False → exit 1, e.g. a verification that found damage)."""
    try:
        result = fn(target=_target(args), **kw)
    except RecoveryInputError as e:
        raise UsageError(first_line(e)) from None
    except ActivityFailed as e:
        print(f"error: {first_line(e)}", file=sys.stderr)
        return 1
    except Exception as e:  # an unexpected failure midway: one line, no traceback
        print(f"error: {type(e).__name__}: {first_line(e)}", file=sys.stderr)
        return 1
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2, default=str))
    else:
        print(summary(result))
    return 0 if ok is None or ok(result) else 1


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f} MB"


def _age(s: float | None) -> str:
    if s is None:
        return "unknown age"
    if s < 120:
        return f"{s:.1f} s old"
    if s < 7200:
        return f"{s / 60:.1f} min old"
    return f"{s / 3600:.1f} h old"


# --- database -----------------------------------------------------------------------------------

def summary_db_backup(b: dict) -> str:
    return (f"backup {b['id']} ({_mb(b['size_bytes'])}, timeline {b['timeline']}, WAL from {b['start_wal']}) "
            f"taken in {b['took_s']} s")


def summary_db_list(backups: list[dict]) -> str:
    if not backups:
        return "no base backups"
    lines = [f"{'id':<24} {'ended (UTC)':<20} {'TL':>3} {'size':>9}  usable"]
    for b in backups:
        lines.append(f"{b['id']:<24} {b['ended'][:19]:<20} {b['timeline']:>3} {_mb(b['size_bytes']):>9}  "
                     f"{'yes' if b['on_current_history'] else 'no (abandoned timeline)'}")
    return "\n".join(lines)


def summary_db_verify(r: dict) -> str:
    integrity = "integrity ok" if r["integrity_ok"] else f"INTEGRITY FAILED: {r['detail']}"
    return (f"verified {r['backup_id']}: restore time {r['restore_s']} s; newest restorable point "
            f"{r['newest_restorable_point']} ({_age(r['age_s'])}); {integrity}; {r['rows']} rows\n"
            f"{_exposure(r)}\n"
            f"record: {r['record']}")


def _exposure(r: dict) -> str:
    """The standing RPO exposure the verification recorded, per way back."""
    seen = r.get("rpo_exposure_s")
    if not seen:
        return f"RPO exposure not recorded: {r.get('rpo_exposure_error') or 'no figure'}"
    return "RPO exposure now: " + ", ".join(f"{way} {seconds:g} s" for way, seconds in sorted(seen.items()))


def summary_db_restore(r: dict) -> str:
    to = r.get("recovered_to") or "end of archive"
    reached = "" if r.get("target_reached", True) else " (target time after the newest archived commit: recovered everything)"
    fresh = r.get("fresh_backup", {})
    return (f"restored {r['primary']} from {r['backup_id']}: writable again after {r['restore_s']} s; "
            f"recovered to {to}{reached}, timeline {r['timeline']}, replay end {r['replay_end_lsn']}\n"
            f"standby rebuilt and streaming in {r['standby_s']} s; fresh backup "
            f"{fresh.get('id') or 'FAILED: ' + str(fresh.get('error'))}; old data kept at {r['aside']}")


def cmd_db_create(args) -> int:
    return run(backup.create_backup, args, summary_db_backup)


def cmd_db_list(args) -> int:
    return run(backup.list_backups, args, summary_db_list)


def cmd_db_verify(args) -> int:
    return run(verify.verify_backup, args, summary_db_verify, ok=lambda r: r["integrity_ok"],
               backup_id=args.backup_id, records_dir=args.records_dir)


def cmd_db_restore(args) -> int:
    return run(database.restore_database, args, summary_db_restore, backup_id=args.backup_id,
               target_time=args.target_time)


def _cleanup(target: str | None, keep: int, rows_older_than_days: float) -> dict:
    """Every retention at once: backups, the WAL only they needed, the harness's own rows."""
    return {**backup.cleanup_backups(keep, target),
            **retention.prune_harness_rows(rows_older_than_days, target)}


def cmd_db_cleanup(args) -> int:
    return run(_cleanup, args, lambda r: (
        f"kept {len(r['kept'])} backup(s), deleted {len(r['deleted'])}"
        f"{': ' + ', '.join(r['deleted']) if r['deleted'] else ''}; pruned {r['archive_files_pruned']} archived WAL file(s); "
        f"deleted {r['rows_pruned']} harness row(s) older than {args.rows_older_than_days:g} day(s), "
        f"{r['rows_left']} row(s) left"), keep=args.keep, rows_older_than_days=args.rows_older_than_days)


# --- artifacts ----------------------------------------------------------------------------------

def summary_art_backup(b: dict) -> str:
    what = " + ".join(n.split(".")[0] for n in sorted(b["files"]))
    return f"backup {b['id']} ({what}, model version {b.get('model_version')}, {b['size_bytes']} bytes) in {b['took_s']} s"


def summary_art_list(backups: list[dict]) -> str:
    if not backups:
        return "no model/config backups"
    return "\n".join(f"{b['id']:<34} {b['created'][:19]}  {b['kind'] or '?':<7} "
                     f"{b.get('error') or 'model version ' + str(b.get('model_version'))}" for b in backups)


def summary_art_restore(r: dict) -> str:
    return (f"{r['restored']} restored from {r['backup_id']} into {r['dest']} ({r['verified']}) in {r['swapped_s']} s; "
            f"API ready after {r['ready_s']} s more")


def cmd_art_create(args) -> int:
    return run(artifacts.backup_artifacts, args, summary_art_backup, kind=args.kind)


def cmd_art_list(args) -> int:
    return run(artifacts.list_artifact_backups, args, summary_art_list)


def cmd_art_verify(args) -> int:
    return run(artifacts.verify_artifact_backup, args,
               lambda r: f"backup {r['backup_id']} {'ok' if r['ok'] else 'DAMAGED'}: {r['detail']}",
               ok=lambda r: r["ok"], backup_id=args.backup_id)


def cmd_art_restore_model(args) -> int:
    return run(artifacts.restore_model, args, summary_art_restore, backup_id=args.backup_id)


def cmd_art_restore_config(args) -> int:
    return run(artifacts.restore_config, args, summary_art_restore, backup_id=args.backup_id)


def cmd_art_cleanup(args) -> int:
    return run(artifacts.cleanup_artifact_backups, args, lambda r: (
        f"kept {len(r['kept'])} backup(s), deleted {len(r['deleted'])}"
        f"{': ' + ', '.join(r['deleted']) if r['deleted'] else ''}"), keep=args.keep)


# --- failover -----------------------------------------------------------------------------------

def summary_failover(r: dict) -> str:
    lines = [f"{r['new_primary']} is the primary now (port {r['new_primary_port']})"]
    if r.get("how") == "Patroni switchover":
        lines[0] += (f": Patroni switched over in {r['switchover_s']} s, first write {r['first_write_s']} s "
                     f"after the start")
        lines.append(f"{r['old_primary']} streams from it again after {r['rebuild_s']} s more")
        return "\n".join(lines)
    if "first_write_s" in r:
        lines[0] += (f": first write {r['first_write_s']} s after the start (fence {r['fence_s']} s, "
                     f"promotion → write {r['promote_to_first_write_s']} s)")
    if "rebuild_s" in r:
        lines.append(f"{r['old_primary']} rebuilt as its streaming standby in {r['rebuild_s']} s")
    else:
        lines.append(f"{r['old_primary']} stays fenced; run 'gameday failover' again to rebuild it")
    return "\n".join(lines)


def cmd_failover(args) -> int:
    return run(failover.failover, args, summary_failover, rebuild_standby=not args.no_rebuild)
