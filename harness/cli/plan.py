"""`gameday plan create`: the game day's plan, approved (signed) before the exercise
(harness/run/gameday_plan.py); `gameday run --plan P` then runs only what it approves.

  gameday plan create [EXPERIMENT ...] --approver NAME --blast-radius TEXT
                      [--start ISO] [--hours 4] [--calibration-s S] [--out FILE]
                      [--home DIR | --target FILE] [--signing-key KEY]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.options import add_home_options, add_signing_options, signing_key_of, target_of
from harness.core import signing
from harness.core.errors import UsageError
from harness.core.paths import PROJECT_ROOT
from harness.run import gameday_plan, runner

PLANS_DIR = "plans"  # under the reports dir: a plan is evidence too


def register(subparsers) -> None:
    p = subparsers.add_parser("plan", help="the game day's plan, approved before the exercise",
                              description="Write and sign the game day's plan.")
    sub = p.add_subparsers(dest="plan_command", metavar="SUBCOMMAND")
    p.set_defaults(func=_missing_subcommand)
    q = sub.add_parser("create", help="write the plan (scenarios, objectives, target, blast radius, window, "
                                      "approver) and sign it")
    q.add_argument("experiments", nargs="*", metavar="EXPERIMENT", help="experiment files (default: the monthly suite)")
    q.add_argument("--approver", required=True, help="who approves the game day (name and contact)")
    q.add_argument("--blast-radius", required=True, metavar="TEXT",
                   help="what the game day may affect, in the approver's words")
    q.add_argument("--start", default=None, metavar="ISO", help="the window opens (default: now)")
    q.add_argument("--hours", type=float, default=4.0, help="the window's length (default 4)")
    q.add_argument("--calibration-s", type=float, default=None, metavar="D",
                   help="the calibration freeze that opens the game day (default 3 with more than one experiment, else 0)")
    q.add_argument("--out", default=None, metavar="FILE",
                   help="where to write it (default: reports/plans/<plan id>.json)")
    q.add_argument("--reports-dir", default=None, help="reports dir for the default --out (default: reports/)")
    add_home_options(q)
    add_signing_options(q)
    q.set_defaults(func=cmd_create)


def _missing_subcommand(args: argparse.Namespace) -> int:
    raise UsageError("plan: choose a subcommand: create")


def cmd_create(args: argparse.Namespace) -> int:
    paths = args.experiments or runner.discover(target_of(args).suite_db_tier())
    try:
        planned = runner.plan(paths)
        start, end = gameday_plan.parse_window(args.start, args.hours)
    except (runner.RunnerError, ValueError) as e:
        raise UsageError(f"plan create: {e}") from None
    calibration_s = args.calibration_s if args.calibration_s is not None else (3.0 if len(planned) > 1 else 0.0)
    if not 0 <= calibration_s <= 60:
        raise UsageError(f"plan create: --calibration-s must be 0 to 60, got {calibration_s:g}")
    target = target_of(args)
    try:
        plan = gameday_plan.create(planned, target, args.approver, args.blast_radius, start, end, calibration_s)
    except gameday_plan.PlanRefused as e:
        raise UsageError(str(e)) from None
    reports = Path(args.reports_dir) if args.reports_dir else PROJECT_ROOT / "reports"
    out = Path(args.out) if args.out else reports / PLANS_DIR / f"{plan['id']}.json"
    key = signing_key_of(args)
    try:
        path = gameday_plan.write(plan, out, key)
    except signing.SigningError as e:
        raise UsageError(f"plan create: {e}") from None
    print(path)
    print(f"{plan['id']}: {len(plan['scenarios'])} scenario(s) on the {target.kind} target at {target.home}, "
          f"{plan['window']['start']} to {plan['window']['end']}, approved by {plan['approver']}; signed with "
          f"{signing.principal_of_key(key) or key} ({signing.fingerprint_of_key(key)})")
    print(f"run it with: gameday run --plan {path}")
    return 0
