"""`gameday run [EXPERIMENT...]`: one experiment, several, or (no arguments) the monthly suite of
every scenario in experiments/local/. Exit 0 only if every criterion of every run passed; 1 if a
criterion failed; 2 for error, interruption or bad input."""
from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

from harness import targets
from harness.cli.options import (SIGNING_KEY_ENV, add_home_options, add_signing_options, allowed_signers_of,
                                 signing_key_of, target_of)
from harness.core import signing
from harness.core.errors import UsageError
from harness.core.paths import PROJECT_ROOT
from harness.core.redact import redact, secrets_of
from harness.report.gameday import LiveView, calibration_line, format_table, write_gameday_summary
from harness.report.notify import post_webhook, render_messages
from harness.report.findings import findings as current_findings
from harness.report.phase_line import fault_places
from harness.run import active_runs, control, gameday_plan, guard, runner
from harness.run.heal import heal


def register(sub) -> None:
    p = sub.add_parser("run", help="run experiments (no arguments: the monthly suite) and judge them against the BCP")
    p.add_argument("experiments", nargs="*", metavar="EXPERIMENT", help="experiment files (default: experiments/local/*)")
    p.add_argument("--reports-dir", default=None, help="where run folders go (default: reports/ in the project)")
    p.add_argument("--keep-target", action="store_true", help="leave the stack up if this run brought it up")
    add_home_options(p, port_base=True)
    p.add_argument("--notify-webhook", default=os.environ.get("GAMEDAY_NOTIFY_WEBHOOK"), metavar="URL",
                   help="POST the BCP's incident and recovery messages (Slack-compatible JSON) after each run "
                        "(default $GAMEDAY_NOTIFY_WEBHOOK)")
    p.add_argument("--allow-production", action="store_true",
                   help="allow a target whose description says environment: production (experiments must be "
                        "tagged production-safe)")
    p.add_argument("--dry-run", action="store_true", help="print what would be injected where; touch nothing")
    p.add_argument("--plan", metavar="PLAN",
                   help="run only what this signed plan approves (gameday plan create); no EXPERIMENT: all of it")
    add_signing_options(p, allowed=True)
    p.add_argument("--calibration-s", type=float, default=None, metavar="D",
                   help="a game day (more than one experiment) opens with a D-second freeze of the API; "
                        "0 skips it (default: the plan's, else 3)")
    # 1.0 s, not 0.5: the first freeze after a stack comes up measured +0.29 to +0.30 s on an idle
    # machine, too near 0.5 for a CI gate; 1.0 is the sampler's own bound (timeout + one interval).
    p.add_argument("--calibration-bound-s", type=float, default=1.0, metavar="S",
                   help="largest instrument error the calibration accepts before the game day is an error (default 1.0)")
    p.add_argument("--load-workers", type=int, default=None, metavar="N",
                   help="load from locust's distributed mode: one master and N local worker processes, each "
                        "with its own ledger shard (default $GAMEDAY_LOAD_WORKERS or 0: one load process)")
    p.add_argument("--load-remote-workers", type=int, default=None, metavar="M",
                   help="also wait for M workers started by hand on other hosts (README: the worker command)")
    p.add_argument("--load-master", default=None, metavar="HOST:PORT",
                   help="where the locust master listens for workers (default 127.0.0.1 and a free port; "
                        "remote workers need an address they can reach)")
    p.add_argument("--load-rate", type=float, default=None, metavar="W",
                   help="the load writes W times a second in all, shared by its users (default: each "
                        "experiment's recorders.writes_per_s, else as fast as the users go)")
    p.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    approved = _approved_plan(args)
    paths = args.experiments or ([PROJECT_ROOT / s["experiment"] for s in approved[0]["scenarios"]] if approved
                                 else runner.discover(target_of(args).suite_db_tier()))
    if not paths:
        raise UsageError(f"no experiments given and none found in {runner.EXPERIMENTS_DIR}")
    try:
        planned = runner.plan(paths)
    except runner.RunnerError as e:
        raise UsageError(str(e)) from None
    if args.calibration_s is None:
        args.calibration_s = float(approved[0].get("calibration_s", 3.0)) if approved else 3.0
    if not 0 <= args.calibration_s <= 60 or not 0 < args.calibration_bound_s <= 60:
        raise UsageError(f"--calibration-s must be 0 to 60 and --calibration-bound-s above 0 and at most 60, "
                         f"got {args.calibration_s} and {args.calibration_bound_s}")
    _load_shape_to_env(args)
    target = target_of(args)
    port_base = target.parse_port_base(args.port_base)  # None: the home's recorded base, else env or default
    described = _described(target)
    if approved:  # anything the plan did not approve: one line, nothing injected
        why = gameday_plan.refusal(approved[0], planned, target, datetime.now(timezone.utc), args.calibration_s)
        if why:
            raise UsageError(why)
    if args.signing_key:  # every run's evidence is signed with it (harness/run/evidence.py reads it)
        os.environ[SIGNING_KEY_ENV] = str(signing_key_of(args))
    suite = len(planned) > 1 or bool(approved)
    calibrating = suite and args.calibration_s > 0
    refused = guard.refusal(described, [(p.path.name, p.experiment) for p in planned], args.allow_production)
    if refused:
        raise UsageError(refused)
    if args.dry_run:
        shown = [(p.path.name, p.experiment, p.plan.objectives) for p in planned]
        if calibrating:  # the game day opens with it: it is injected too
            [cal] = runner.plan([runner.CALIBRATION_EXPERIMENT])
            runner.set_calibration(cal, args.calibration_s)
            shown.insert(0, (f"calibration ({cal.path.name}, opens the game day)", cal.experiment, cal.plan.objectives))
        for line in guard.describe_plan(described, shown):
            print(line)
        return 0
    reports = Path(args.reports_dir or PROJECT_ROOT / "reports").resolve()
    started = datetime.now(timezone.utc)
    base_dir = reports / f"gameday-{started:%Y%m%dT%H%M%SZ}" if suite else reports
    base_dir.mkdir(parents=True, exist_ok=True)
    if approved:  # the plan and its signature kept with the results; the index sets them side by side
        shutil.copyfile(approved[2], base_dir / gameday_plan.PLAN_FILE)
        shutil.copyfile(f"{approved[2]}{signing.SIG_SUFFIX}", base_dir / f"{gameday_plan.PLAN_FILE}{signing.SIG_SUFFIX}")

    verdicts = []
    calibration = None
    started_here = False
    secrets = secrets_of(described, args.notify_webhook)  # masked in every file and line of output
    view = LiveView(sys.stdout, total=len(planned))

    def follow(session, experiment):  # the terminal shows the run's phases as its history grows
        view.watch(session.history.path, session.objectives, fault_places(experiment))
    with runner._Signals(target.home) as signals:
        try:
            active_runs.register(target.home, {"experiments": [str(p.path) for p in planned], "reports": str(base_dir)})
            if target.runs_here:
                for line in heal(target.home):  # what a dead harness left
                    print(line, file=sys.stderr)
            try:
                target_file, started_here = runner.ensure_target(target, port_base)
            except (targets.TargetUnavailable, targets.TargetError) as e:
                print(f"error: the target could not be brought up: {e}", file=sys.stderr)
                return 2
            except KeyboardInterrupt:
                return 2
            if calibrating:
                view.start("calibration", counted=False)
                calibration = runner.calibrate(base_dir / "calibration", target_file, signals, args.calibration_s,
                                               args.calibration_bound_s, log=lambda m: view.update(m.strip()),
                                               secrets=secrets, on_session=follow)
                view.finish("calibration", "pass" if calibration["trustworthy"] else "error")
                print(calibration_line(calibration))
                if not calibration["trustworthy"]:
                    planned = []  # an overloaded machine must not produce evidence
            for i, p in enumerate(planned):
                if signals.received or signals.aborted():
                    break
                if i > 0:
                    runner.settle(target, p, port_base, log=view.update)
                view.start(p.scenario)
                view.update("running")
                verdict = runner.run_one(p, base_dir, target_file, signals, log=lambda m: view.update(m.strip()),
                                         secrets=secrets, on_session=follow)
                view.finish(p.scenario, verdict["status"])
                verdicts.append(verdict)
                if args.notify_webhook:
                    notify(args.notify_webhook, verdict, target_file, view)
        finally:
            active_runs.unregister(target.home)
            view.close()
            if started_here and not args.keep_target:
                try:
                    target.down(port_base, log=lambda m: None)
                except Exception as e:
                    print(f"warning: taking the stack down failed: {e}", file=sys.stderr)
    for v in verdicts:
        print(redact(f"{v['status'].upper():<11} {v['scenario']:<28} {v.get('reason', '')}", secrets))
        print(f"            report: {Path(v['_run_dir']) / 'report.html'}")
    if suite and (verdicts or calibration):
        summary = write_gameday_summary(base_dir, [v["_run_dir"] for v in verdicts], started.isoformat(),
                                        datetime.now(timezone.utc).isoformat(), calibration=calibration)
        print()
        print(format_table(summary, color=sys.stdout.isatty()))
        print(f"game-day summary: {base_dir / 'index.html'}")
    for line in _findings_lines(reports, verdicts):
        print(line)
    if calibration is not None and not calibration["trustworthy"]:
        return 2
    return runner.exit_code(verdicts) if verdicts else 2


def _approved_plan(args) -> tuple[dict, signing.Signer, Path] | None:
    """The plan given with --plan, checked against the allowed signers: (plan, signer, file)."""
    if not args.plan:
        return None
    path = Path(args.plan)
    path = path / gameday_plan.PLAN_FILE if path.is_dir() else path
    try:
        plan, signer = gameday_plan.load(path, allowed_signers_of(args))
    except gameday_plan.PlanRefused as e:
        raise UsageError(str(e)) from None
    return plan, signer, path


def _findings_lines(reports: Path, verdicts: list[dict]) -> list[str]:
    """The findings these runs opened or closed (harness/report/findings.py), one line each."""
    ids = {v.get("run_id") for v in verdicts}
    if not ids:
        return []
    try:
        found = current_findings(reports)
    except OSError as e:  # the runs' evidence stands; the register is rebuilt next time
        return [f"warning: findings not updated: {e}"]
    lines = []
    for f in found:
        if f["opened_by"]["run_id"] in ids:
            lines.append(f"finding {f['id']} opened: {f['scenario']} / {f['criterion']} "
                         f"(gameday findings close {f['id']} --action TEXT --owner NAME)")
        if f["retest"] and f["retest"]["run_id"] in ids:
            lines.append(f"finding {f['id']} closed: {f['scenario']} / {f['criterion']} passed its retest")
    return lines


def _load_shape_to_env(args) -> None:
    """The control reads the load's shape from the environment (so stock `chaos run` can set it
    too); bad values are usage errors before anything runs."""
    workers, remote = args.load_workers, args.load_remote_workers
    if workers is not None and not 0 <= workers <= 64:
        raise UsageError(f"--load-workers must be 0 to 64, got {workers}")
    if remote is not None and (remote < 0 or remote > 64 or (remote and not workers)):
        raise UsageError(f"--load-remote-workers must be 0 to 64 and needs --load-workers of at least 1, got {remote}")
    if args.load_rate is not None and not 0 < args.load_rate <= control.MAX_LOAD_RATE:
        raise UsageError(f"--load-rate must be writes per second above 0 and at most {control.MAX_LOAD_RATE:g}, "
                         f"got {args.load_rate:g}")
    for name, value in ((control.LOAD_WORKERS_ENV, workers), (control.LOAD_REMOTE_WORKERS_ENV, remote),
                        (control.LOAD_MASTER_ENV, args.load_master), (control.LOAD_RATE_ENV, args.load_rate)):
        if value is not None:
            os.environ[name] = str(value)
    try:
        control.load_workers()
        control.load_rate({})
    except ValueError as e:
        raise UsageError(str(e)) from None


def _described(target: targets.Target) -> dict:
    """The target description as it stands before anything runs; an embedded stack not up yet is
    described by its kind alone."""
    try:
        return target.data
    except targets.TargetError:
        return {"kind": target.kind, "name": f"{target.label} (not up yet)"}


def notify(url: str, verdict: dict, target_file, view) -> None:
    """The BCP's "critical incident" and "recovery complete" messages for this run. A dead
    webhook is reported and never fails the run."""
    try:
        name = targets.load(target_file).data.get("name")
    except Exception:
        name = None
    messages = render_messages({k: v for k, v in verdict.items() if not k.startswith("_")}, target=name)
    for kind in ("critical", "resolved"):
        ok, detail = post_webhook(url, messages[kind])
        if not ok:
            view.update(redact(f"notification ({kind}) not delivered: {detail}", secrets_of(None, url)))
