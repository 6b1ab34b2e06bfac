"""Runs experiments programmatically: validation first (bad input injects nothing), the target
brought up if needed, rollbacks always, SIGINT/SIGTERM turned into an orderly interrupted run
with every fault rolled back, outputs in reports/<run-id>/, a game-day summary over the runs.

Each run has one session (harness/run/session.py), handed to the control through Chaos Toolkit's
configuration. The verdict is decided once, by harness.run.judge from the history, after the run has
ended and any interruption is recorded; then every artifact is written from it (write_evidence).
Never from chaoslib's exit status, which says "completed" for runs whose fault failed or whose
steady state was never met.
"""
from __future__ import annotations

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

from harness import faults
from harness.core.errors import first_line
from harness.core.paths import PROJECT_ROOT
from harness.core.redact import secrets_of
from harness.run import active_runs, judge as judge_mod, measure, steady_state
from harness.run.evidence import write_evidence
from harness.run.objectives import ObjectivesError
from harness.run.plan import RunPlan, plan as plan_run
from harness.run.session import SESSION_KEY, RunSession
from harness.targets import TARGET_ENV, Target

EXPERIMENTS_DIR = PROJECT_ROOT / "experiments" / "local"
HA_EXPERIMENTS_DIR = PROJECT_ROOT / "experiments" / "ha"  # the HA manager on trial: the patroni tier's
CALIBRATION_EXPERIMENT = PROJECT_ROOT / "experiments" / "calibration" / "api-freeze.yaml"
# The monthly suite's order: light faults first, destructive ones later, the cold start last, so a
# scenario that leaves damage behind is followed by as few others as possible.
SUITE_ORDER = ("api-replica-crash", "api-crash", "api-hang", "config-drift", "model-corruption", "storage-failure",
               "monitoring-failure", "archive-stopped", "database-failure", "database-corruption", "database-logical-corruption",
               "database-failover", "database-switchover", "database-node-lost", "database-node-lost-synchronous",
               "database-primary-frozen", "consensus-lost", "full-stack")


SETTLE_STEADY_STATE_S = 60.0  # how long the next experiment's steady state may take to come back


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


def discover(db_tier: str | None = None) -> list[Path]:
    """The monthly suite: every BCP scenario, and on the patroni tier the HA scenarios too."""
    folders = [EXPERIMENTS_DIR] + ([HA_EXPERIMENTS_DIR] if db_tier == "patroni" else [])
    files = [p for folder in folders for p in sorted(folder.glob("*.y*ml")) + sorted(folder.glob("*.json"))]
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
        if not any(c.get("provider", {}).get("module") == "harness.run.control" for c in experiment.get("controls") or []):
            raise RunnerError(f"experiment {raw}: no harness.run.control in its controls, so nothing would be measured")
        bad_tags = _bad_tags(experiment)
        if bad_tags:
            raise RunnerError(f"experiment {raw}: {bad_tags}")
        try:
            run_plan = plan_run(experiment, path)
        except ObjectivesError as e:
            raise RunnerError(f"experiment {raw}: {e}") from None
        planned.append(Planned(path, experiment, run_plan))
    return planned


def _bad_tags(experiment: dict) -> str | None:
    """Why an activity's `tags` cannot be read (Chaos Toolkit does not check them; every part of
    the harness that tells a fault or a recovery step by its tags does), or None."""
    hypothesis = experiment.get("steady-state-hypothesis") or {}
    for section, acts in (("method", experiment.get("method")), ("rollbacks", experiment.get("rollbacks")),
                          ("steady-state-hypothesis", hypothesis.get("probes") if isinstance(hypothesis, dict) else None)):
        for a in acts if isinstance(acts, list) else []:
            tags = a.get("tags") if isinstance(a, dict) else None
            if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
                return f"{section} activity {a.get('name')!r}: tags must be a list of words, got {tags!r}"
    return None


def _quiet_chaoslib(log_file: Path | None = None) -> None:
    """chaoslib logs to our run folder, not the terminal; extensions importing logzero are safe.
    Each call adds chaoslib's handlers anew: an earlier run's file is let go first, or it would
    keep growing with every later run of the game day (after its checksums were signed)."""
    _release_chaoslib_log()
    configure_logger(verbose=False, log_file=str(log_file) if log_file else None)
    logger = logging.getLogger("chaostoolkit")
    logger.propagate = False
    for h in list(logger.handlers):
        if not isinstance(h, logging.FileHandler):
            logger.removeHandler(h)
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())


def _release_chaoslib_log() -> None:
    """The run's chaostoolkit.log closed and detached: nothing more is written to it."""
    logger = logging.getLogger("chaostoolkit")
    for h in list(logger.handlers):
        logger.removeHandler(h)
        h.close()
    logger.addHandler(logging.NullHandler())  # and nothing reaches the terminal (logging's last resort)


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
            self._old[s] = signal.signal(s, self.handler)
        return self

    def handler(self, signum, frame):
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
            secrets: list[str] = (), on_session=None) -> dict:
    """Run one planned experiment in a session of its own; judge it once; write its evidence,
    with `secrets` (and every password or token the patterns of harness.core.redact find) masked.
    `on_session(session, experiment)` is told of the run folder as soon as it exists (the
    terminal's progress follows its history). Returns the verdict (with `_run_dir`, where its files are)."""
    session = RunSession.open(p.plan, target_path=target_file, reports_dir=reports_dir, owned_by_runner=True)
    session.on_sigterm = signals.handler
    if on_session is not None:
        on_session(session, p.experiment)
    _quiet_chaoslib(session.run_dir / "chaostoolkit.log")
    # Activities find the target as they do under stock `chaos run`: through $GAMEDAY_TARGET.
    os.environ[TARGET_ENV] = str(target_file)
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
        # Harm done by a rollback, or seen only after the final read, is judged too (after_rollbacks).
        measure.check_after_rollbacks(session, steady_state_s=5.0 if signals.received or signals.aborted() else None)
        if signals.aborted() or signals.received:
            session.history.append("marker", name="interrupted", signal=signals.received,
                                   detail=f"interrupted by {signals.received}; faults were rolled back",
                                   **({"reason": signals.reason} if signals.reason else {}))
            journal["status"] = "interrupted"
        verdict = judge_mod.judge(session)
    finally:
        session.close()
        _release_chaoslib_log()
    written = write_evidence(session.run_dir, verdict, journal, [*secrets, *secrets_of(session.target())])
    return {**written, "_run_dir": str(session.run_dir)}


def calibrate(reports_dir: Path, target_file: Path, signals: _Signals, freeze_s: float = 3.0,
              bound_s: float = 1.0, log=print, secrets: list[str] = (), on_session=None) -> dict:
    """The day's instrument check: freeze the whole API for exactly `freeze_s` seconds and measure
    it like any outage. Measured RTO - freeze_s is the instrument error of the day; beyond
    `bound_s` the machine is too loaded to produce evidence."""
    [p] = plan([CALIBRATION_EXPERIMENT])
    set_calibration(p, freeze_s)
    v = run_one(p, reports_dir, target_file, signals, log=log, secrets=secrets, on_session=on_session)
    rto = v["measured"].get("rto_s")
    result = {"freeze_s": freeze_s, "bound_s": bound_s, "measured_rto_s": rto, "run_id": v.get("run_id"),
              "run_dir": v["_run_dir"]}
    if v["status"] != "pass" or rto is None:
        return {**result, "error_s": None, "trustworthy": False, "reason": v.get("reason")}
    error = round(rto - freeze_s, 3)
    return {**result, "error_s": error, "trustworthy": abs(error) <= bound_s,
            "reason": "within the bound" if abs(error) <= bound_s else
                      f"instrument not trustworthy today: error {error:+.3f} s beyond {bound_s:g} s"}


def set_calibration(p: Planned, freeze_s: float) -> None:
    """The calibration experiment's freeze set to `freeze_s` seconds."""
    for activity in p.experiment["method"]:
        if "fault" in (activity.get("tags") or []):
            activity["provider"].setdefault("arguments", {})["duration_s"] = freeze_s


def settle(target: Target, next_run: Planned, port_base: int | None = None, log=print,
           timeout_s: float = 90.0, steady_state_s: float = SETTLE_STEADY_STATE_S) -> bool:
    """Between two runs of a game day: the target healthy again (repaired where the harness owns
    it), then the next experiment's own steady-state hypothesis given a bounded while to hold, so
    that what one run left (an API down for its timeout, a way back still catching up) never
    becomes the next run's "target not healthy before fault". Returns whether it holds."""
    target.settle(timeout_s, log=log, port_base=port_base)
    answer = steady_state.wait_until_met(next_run.experiment, steady_state_s, log=log)
    if not answer["met"]:
        log(f"the next experiment's steady state still does not hold after {steady_state_s:g} s: {answer['detail']}")
    return answer["met"]


def ensure_target(target: Target, port_base: int | None, log=print) -> tuple[Path, bool]:
    """Make the target healthy before the runs (brought up or repaired where the harness owns it);
    return (its description file, started_here)."""
    started_here = target.ensure_up(port_base, log=log)
    return target.path, started_here


def exit_code(verdicts: list[dict]) -> int:
    statuses = {v.get("status") for v in verdicts}
    if statuses & {"error", "interrupted"}:
        return 2
    if "fail" in statuses:
        return 1
    return 0
