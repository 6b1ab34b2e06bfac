"""Runs experiments programmatically: validation first (bad input injects nothing), the target
brought up if needed, rollbacks always, SIGINT/SIGTERM turned into an orderly interrupted run
with every fault rolled back, outputs in reports/<run-id>/, a game-day summary over the runs.

Each run has one session (harness/session.py), handed to the control through Chaos Toolkit's
configuration. The verdict is decided once, by harness.judge from the history, after the run has
ended and any interruption is recorded; then every artifact is written from it (write_evidence).
Never from chaoslib's exit status, which says "completed" for runs whose fault failed or whose
steady state was never met.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from chaoslib.exceptions import ChaosException
from chaoslib.experiment import ensure_experiment_is_valid, run_experiment
from chaoslib.loader import load_experiment
from chaoslib.log import configure_logger

from harness import active_runs, faults, judge as judge_mod, target as target_mod
from probes.kubernetes import is_kubernetes_target
from harness.errors import first_line
from harness.objectives import ObjectivesError
from harness.redact import redact, redact_file, secrets_of
from harness.report.run import write_run_report
from harness.session import SESSION_KEY, RunPlan, RunSession, plan as plan_run
from harness.containers import target as containers
from harness.stack import embedded

EXPERIMENTS_DIR = target_mod.PROJECT_ROOT / "experiments" / "local"
CALIBRATION_EXPERIMENT = target_mod.PROJECT_ROOT / "experiments" / "calibration" / "api-freeze.yaml"
# The monthly suite's order: light faults first, destructive ones later, the cold start last, so a
# scenario that leaves damage behind is followed by as few others as possible.
SUITE_ORDER = ("api-replica-crash", "api-crash", "api-hang", "config-drift", "model-corruption", "storage-failure",
               "monitoring-failure", "archive-stopped", "database-failure", "database-corruption", "database-logical-corruption",
               "database-failover", "full-stack")


class RunnerError(ValueError):
    """Bad input to the runner: one line, nothing injected."""


@dataclass
class Planned:
    path: Path
    experiment: dict
    plan: RunPlan

    @property
    def scenario(self) -> str:
        return self.plan.objectives["scenario"]


def discover(folder: Path = EXPERIMENTS_DIR) -> list[Path]:
    files = sorted(p for p in folder.glob("*.y*ml")) + sorted(folder.glob("*.json"))
    rank = {name: i for i, name in enumerate(SUITE_ORDER)}
    return sorted(files, key=lambda p: (rank.get(p.stem, len(rank)), p.name))


def plan(paths: list[str | Path]) -> list[Planned]:
    """Load and validate every experiment, and resolve its objectives, before anything runs."""
    _quiet_chaoslib()
    planned = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise RunnerError(f"experiment {raw}: no such file")
        try:
            experiment = load_experiment(str(path), verify_tls=False)
            ensure_experiment_is_valid(experiment)
        except ChaosException as e:
            raise RunnerError(f"experiment {raw}: {e}") from None
        except Exception as e:  # YAML/JSON syntax and the like
            raise RunnerError(f"experiment {raw}: {type(e).__name__}: {first_line(e)}") from None
        if not any(c.get("provider", {}).get("module") == "harness.control" for c in experiment.get("controls") or []):
            raise RunnerError(f"experiment {raw}: no harness.control in its controls, so nothing would be measured")
        try:
            run_plan = plan_run(experiment, path)
        except ObjectivesError as e:
            raise RunnerError(f"experiment {raw}: {e}") from None
        planned.append(Planned(path, experiment, run_plan))
    return planned


def _quiet_chaoslib(log_file: Path | None = None) -> None:
    """chaoslib logs to our run folder, not the terminal; extensions importing logzero are safe."""
    configure_logger(verbose=False, log_file=str(log_file) if log_file else None)
    logger = logging.getLogger("chaostoolkit")
    logger.propagate = False
    for h in list(logger.handlers):
        if not isinstance(h, logging.FileHandler):
            logger.removeHandler(h)
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())


class _Signals:
    """First SIGINT/SIGTERM interrupts the run (rollbacks then run); later ones are ignored so
    rollbacks are never cut short. A SIGTERM sent by `gameday abort` (which leaves a request in the
    stack home first) is recorded as the operator's abort."""

    def __init__(self, home: Path | None = None):
        self.received: str | None = None
        self.reason: str | None = None
        self.home = home
        self._old = {}

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received:
            print(f"\n{signal.Signals(signum).name} again: still rolling back, please wait", file=sys.stderr)
            return
        self.received = signal.Signals(signum).name
        if self.home is not None and active_runs.abort_requested(self.home):
            self.reason = active_runs.ABORT_REASON
        print(f"\n{self.reason or self.received}: interrupting; faults will be rolled back", file=sys.stderr)
        raise KeyboardInterrupt

    def aborted(self) -> bool:
        """The operator asked `gameday abort` to end this run (chaoslib's own SIGTERM handler may
        have taken the signal, so the request file is what tells)."""
        if self.reason is None and self.home is not None and active_runs.abort_requested(self.home):
            self.reason = active_runs.ABORT_REASON
            self.received = self.received or "SIGTERM"
        return self.reason == active_runs.ABORT_REASON

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)


def run_one(p: Planned, reports_dir: Path, target_file: Path, signals: _Signals, log=print,
            secrets: list[str] = ()) -> dict:
    """Run one planned experiment in a session of its own; judge it once; write its evidence,
    with `secrets` (and every password or token the patterns of harness.redact find) masked.
    Returns the verdict (with `_run_dir`, where its files are)."""
    session = RunSession.open(p.plan, target_path=target_file, reports_dir=reports_dir, owned_by_runner=True)
    _quiet_chaoslib(session.run_dir / "chaostoolkit.log")
    # Activities find the target as they do under stock `chaos run`: through $GAMEDAY_TARGET.
    os.environ[target_mod.TARGET_ENV] = str(target_file)
    # The session reaches the control through Chaos Toolkit's configuration; chaoslib only takes
    # values for keys the experiment declares, so the key is declared here.
    experiment = dict(p.experiment, configuration={**(p.experiment.get("configuration") or {}), SESSION_KEY: None})
    journal: dict = {}
    try:
        try:
            journal = run_experiment(experiment, settings={"runtime": {"rollbacks": {"strategy": "always"}}},
                                     experiment_vars=({SESSION_KEY: session}, {}))
        except KeyboardInterrupt:
            journal = {"status": "interrupted"}
        finally:
            undone = faults.undo_all()  # the safety net behind the experiment's own rollbacks
            if undone:
                log(f"  safety net rolled back: {', '.join(undone)}")
            session.stop_instruments()
        if signals.aborted() or signals.received:
            session.history.append("marker", name="interrupted", signal=signals.received,
                                   detail=f"interrupted by {signals.received}; faults were rolled back",
                                   **({"reason": signals.reason} if signals.reason else {}))
            journal["status"] = "interrupted"
        verdict = judge_mod.judge(session)
    finally:
        session.close()
    secrets = [*secrets, *secrets_of(session.target())]
    write_evidence(session.run_dir, verdict, journal, secrets)
    return {**json.loads(redact(json.dumps(verdict, default=str), secrets)), "_run_dir": str(session.run_dir)}


def calibrate(reports_dir: Path, target_file: Path, signals: _Signals, freeze_s: float = 3.0,
              bound_s: float = 1.0, log=print, secrets: list[str] = ()) -> dict:
    """The day's instrument check: freeze the whole API for exactly `freeze_s` seconds and measure
    it like any outage. Measured RTO - freeze_s is the instrument error of the day; beyond
    `bound_s` the machine is too loaded to produce evidence."""
    [p] = plan([CALIBRATION_EXPERIMENT])
    for activity in p.experiment["method"]:
        if "fault" in (activity.get("tags") or []):
            activity["provider"].setdefault("arguments", {})["duration_s"] = freeze_s
    v = run_one(p, reports_dir, target_file, signals, log=log, secrets=secrets)
    rto = v["measured"].get("rto_s")
    result = {"freeze_s": freeze_s, "bound_s": bound_s, "measured_rto_s": rto, "run_id": v.get("run_id"),
              "run_dir": v["_run_dir"]}
    if v["status"] != "pass" or rto is None:
        return {**result, "error_s": None, "trustworthy": False, "reason": v.get("reason")}
    error = round(rto - freeze_s, 3)
    return {**result, "error_s": error, "trustworthy": abs(error) <= bound_s,
            "reason": "within the bound" if abs(error) <= bound_s else
                      f"instrument not trustworthy today: error {error:+.3f} s beyond {bound_s:g} s"}


def write_evidence(run_dir: Path, verdict: dict, journal: dict, secrets: list[str] = ()) -> None:
    """Every artifact of a run, from its one verdict: verdict.json, journal.json (the verdict under
    `bcp`), then report.html and junit.xml rendered from those files. Secrets are masked first in
    what the recorders and chaoslib wrote, then in what is written here."""
    for name in ("history.jsonl", "session.json", "chaostoolkit.log", "load.log"):
        redact_file(run_dir / name, list(secrets))
    (run_dir / "verdict.json").write_text(redact(json.dumps(verdict, indent=2, default=str), secrets) + "\n")
    (run_dir / "journal.json").write_text(
        redact(json.dumps({**journal, "bcp": verdict}, indent=2, default=str), secrets) + "\n")
    try:
        write_run_report(run_dir)
    except Exception as e:  # the verdict stands without its pictures; say why they are missing
        (run_dir / "report-error.txt").write_text(f"report not rendered: {type(e).__name__}: {e}\n")


def ensure_target(home: str | None, port_base: int | None, log=print) -> tuple[Path, bool]:
    """Bring the embedded stack up unless it is already healthy; return (target file, started_here).
    A Kubernetes target (GAMEDAY_TARGET naming a `kind: kubernetes` description) is used as it is."""
    if home is None and is_kubernetes_target():
        log(f"target {target_mod.target_path()} is a Kubernetes deployment: the embedded stack is not started")
        return target_mod.target_path(), False
    if containers.is_containers_home(home):
        # The container target is `gameday target up --kind containers`'s: used as it is, repaired if broken.
        if not containers.status(home)["healthy"]:
            log("repairing the container target")
            containers.up(home, port_base, log=lambda m: log("  " + m))
        return target_mod.target_path(home) if home else target_mod.target_path(), False
    st = embedded.status(home)
    if st["healthy"]:
        return target_mod.target_path(home) if home else target_mod.target_path(), False
    log("bringing the embedded stack up")
    was_up = any(c["healthy"] for c in st["components"])
    embedded.up(home, port_base, log=lambda m: log("  " + m))
    return target_mod.target_path(home) if home else target_mod.target_path(), not was_up


def exit_code(verdicts: list[dict]) -> int:
    statuses = {v.get("status") for v in verdicts}
    if statuses & {"error", "interrupted"}:
        return 2
    if "fail" in statuses:
        return 1
    return 0
