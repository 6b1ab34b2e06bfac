"""`gameday findings ...`: what failed runs revealed, followed to closure (harness/report/findings.py).

  gameday findings list [--reports-dir reports] [--all] [--json]   open ones (--all: closed too)
  gameday findings close ID --action TEXT --owner NAME              records the corrective action;
                                                                    the finding closes when a later
                                                                    run of its scenario passes
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.cli.options import add_home_options, add_signing_options, signing_key_of
from harness.core.errors import UsageError
from harness.core.paths import PROJECT_ROOT
from harness.report.findings import FindingError, findings, record_action
from harness.report.page import fmt_age, fmt_criterion_value, fmt_when


def register(subparsers) -> None:
    p = subparsers.add_parser("findings", help="findings of failed runs, their corrective actions and retests",
                              description="Findings opened by failed or erred runs, followed to closure.")
    sub = p.add_subparsers(dest="findings_command", metavar="SUBCOMMAND")
    p.set_defaults(func=_missing_subcommand)

    q = sub.add_parser("list", help="list the findings (open ones; --all for every one)")
    _reports_dir(q)
    q.add_argument("--all", action="store_true", help="closed findings too")
    q.add_argument("--json", action="store_true", help="as JSON")
    q.set_defaults(func=cmd_list)

    q = sub.add_parser("close", help="record a finding's corrective action (it closes at a passing retest)")
    q.add_argument("finding", metavar="ID")
    q.add_argument("--action", required=True, help="what was done about it")
    q.add_argument("--owner", required=True, help="who owns the action")
    _reports_dir(q)
    add_home_options(q)
    add_signing_options(q)
    q.set_defaults(func=cmd_close)


def _reports_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reports-dir", default=None, help="where the runs are (default: reports/ in the project)")


def _missing_subcommand(args: argparse.Namespace) -> int:
    raise UsageError("findings: choose a subcommand: list or close")


def _dir(args: argparse.Namespace) -> Path:
    d = Path(args.reports_dir) if args.reports_dir else PROJECT_ROOT / "reports"
    if not d.is_dir():
        raise UsageError(f"findings: no such reports directory: {d}")
    return d


def cmd_list(args: argparse.Namespace) -> int:
    found = findings(_dir(args))
    shown = found if args.all else [f for f in found if f["status"] != "closed"]
    if args.json:
        print(json.dumps(shown, indent=1, ensure_ascii=False))
        return 0
    if not shown:
        print("no open findings" if not args.all else "no findings")
        return 0
    for f in shown:
        print(line(f))
    return 0


def line(f: dict) -> str:
    """One finding on a few lines, for a terminal."""
    head = (f"{f['id']}  {f['status'].upper():<15} {f['scenario']} / {f['criterion']}: measured "
            f"{fmt_criterion_value(f['criterion'], f['measured'])} vs objective "
            f"{fmt_criterion_value(f['criterion'], f['objective'], 'objective')}")
    more = [f"    opened {fmt_when(f['opened'])} by run {f['opened_by']['run_id']}, age {fmt_age(f['age_s'])}"
            + (f", seen again in {len(f['recurrences'])} run(s)" if f["recurrences"] else "")]
    for a in f["actions"]:
        more.append(f"    action ({a['owner']}, {fmt_when(a['wall'])}): {a['action']}")
    if f["retest"]:
        more.append(f"    closed {fmt_when(f['closed'])} by the retest run {f['retest']['run_id']}")
    elif f["actions"]:
        more.append(f"    closes when a run of {f['scenario']} started after the action passes")
    return "\n".join([head, *more])


def cmd_close(args: argparse.Namespace) -> int:
    reports = _dir(args)
    try:
        f = record_action(reports, args.finding, args.action, args.owner, signing_key_of(args))
    except FindingError as e:
        raise UsageError(str(e)) from None
    print(f"{f['id']}: corrective action recorded (owner {args.owner}); it closes when a later run of "
          f"{f['scenario']} passes (the retest)")
    return 0
