"""Runs experiments programmatically: validation first (bad input injects nothing), the target
brought up if needed, rollbacks always, SIGINT/SIGTERM turned into an orderly interrupted run
with every fault rolled back, outputs in reports/<run-id>/, a game-day summary over the runs.

The verdict comes from the control (history + journal), never from chaoslib's exit status, which
says "completed" for runs whose fault failed or whose steady state was never met.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import control, target as target_mod
from harness.objectives import ObjectivesError

EXPERIMENTS_DIR = target_mod.PROJECT_ROOT / "experiments" / "local"
# The monthly suite's order: light faults first, destructive ones later, the cold start last, so a
# scenario that leaves damage behind is followed by as few others as possible.
SUITE_ORDER = ("api-replica-crash", "api-crash", "api-hang", "config-drift", "model-corruption", "storage-failure",
               "monitoring-failure", "database-failure", "database-corruption", "database-logical-corruption",
               "database-failover", "full-stack")


class RunnerError(ValueError):
    """Bad input to the runner: one line, nothing injected."""


@dataclass
class Planned:
    path: Path
    experiment: dict
    objectives: dict


def discover(folder: Path = EXPERIMENTS_DIR) -> list[Path]:
    files = sorted(p for p in folder.glob("*.y*ml")) + sorted(folder.glob("*.json"))
    rank = {name: i for i, name in enumerate(SUITE_ORDER)}
    return sorted(files, key=lambda p: (rank.get(p.stem, len(rank)), p.name))


def plan(paths: list[str | Path]) -> list[Planned]:
    """Load and validate every experiment before anything runs."""
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.loader import load_experiment

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
            raise RunnerError(f"experiment {raw}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        if not any(c.get("provider", {}).get("module") == "harness.control" for c in experiment.get("controls") or []):
            raise RunnerError(f"experiment {raw}: no harness.control in its controls, so nothing would be measured")
        try:
            resolved, _ = control.prepare(experiment)
        except ObjectivesError as e:
            raise RunnerError(f"experiment {raw}: {e}") from None
        experiment["__source__"] = str(path)
        planned.append(Planned(path, experiment, resolved))
    return planned


def _quiet_chaoslib(log_file: Path | None = None) -> None:
    """chaoslib logs to our run folder, not the terminal; extensions importing logzero are safe."""
    from chaoslib.log import configure_logger
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
    rollbacks are never cut short."""

    def __init__(self):
        self.received: str | None = None
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
        print(f"\n{self.received}: interrupting; faults will be rolled back", file=sys.stderr)
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)


def run_one(p: Planned, reports_dir: Path, target_file: Path, signals: _Signals, log=print) -> dict:
    from chaoslib.experiment import run_experiment

    from harness import faults

    run_id = control.new_run_id(p.objectives["scenario"])
    run_dir = reports_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    _quiet_chaoslib(run_dir / "chaostoolkit.log")
    os.environ[control.RUN_DIR_ENV] = str(run_dir)
    os.environ[target_mod.TARGET_ENV] = str(target_file)
    os.environ["GAMEDAY_EXPERIMENT"] = str(p.path)
    journal = {}
    try:
        journal = run_experiment(p.experiment, settings={"runtime": {"rollbacks": {"strategy": "always"}}},
                                 experiment_vars=({}, {}))
    except KeyboardInterrupt:
        journal = {"status": "interrupted"}
    finally:
        undone = faults.undo_all()  # the safety net behind the experiment's own rollbacks
        if undone:
            log(f"  safety net rolled back: {', '.join(undone)}")
        for key in (control.RUN_DIR_ENV, "GAMEDAY_EXPERIMENT"):
            os.environ.pop(key, None)
    if signals.received:
        journal["status"] = "interrupted"
    journal.pop("bcp", None)
    verdict_path = run_dir / "verdict.json"
    if verdict_path.exists():
        verdict = json.loads(verdict_path.read_text())
    else:
        verdict = {"scenario": p.objectives["scenario"], "status": "error", "run_id": run_id,
                   "reason": "the control produced no verdict (see chaostoolkit.log)", "criteria": [],
                   "measured": {}, "objectives": p.objectives, "flags": []}
    if signals.received and verdict.get("status") != "interrupted":
        verdict["status"] = "interrupted"
        verdict["reason"] = f"the run was interrupted by {signals.received}; faults were rolled back"
        verdict_path.write_text(json.dumps(verdict, indent=2, default=str) + "\n")
    journal["bcp"] = verdict
    (run_dir / "journal.json").write_text(json.dumps(journal, indent=2, default=str) + "\n")
    verdict["_run_dir"] = str(run_dir)
    return verdict


def ensure_target(home: str | None, port_base: int | None, log=print) -> tuple[Path, bool]:
    """Bring the embedded stack up unless it is already healthy; return (target file, started_here).
    A Kubernetes target (GAMEDAY_TARGET naming a `kind: kubernetes` description) is used as it is."""
    from harness.faults.kubernetes import is_kubernetes_target
    if home is None and is_kubernetes_target():
        log(f"target {target_mod.target_path()} is a Kubernetes deployment: the embedded stack is not started")
        return target_mod.target_path(), False
    from harness.stack import embedded
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
