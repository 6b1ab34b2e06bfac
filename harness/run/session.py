"""One run of one experiment: the run session.

The plan (harness/run/plan.py) says what the run is judged against; the session is the run in
progress: its folder, its history, its target, its instruments and what happened so far. The
runner opens it and hands it to the control through Chaos Toolkit's own `configuration` (key
harness.core.run_context.SESSION_KEY, which activities read with run_context()); under stock
`chaos run` the control opens it itself. The control fills in what happened (fault start,
instruments); the judge reads it.

    RunSession.open(plan, ...)         → the session: run folder, history, target
"""
from __future__ import annotations

import json
import os
import secrets as _secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from harness.core.paths import PROJECT_ROOT
from harness.core.run_context import SESSION_KEY
from harness.recorders.load import LoadGenerator
from harness.recorders.sampler import Sampler
from harness.records import history as history_mod
from harness.records.history import History
from harness.run.plan import RunPlan
from harness.run.stop_conditions import StopWatch
from harness.targets import description as target_mod

__all__ = ["SESSION_KEY", "REPORTS_DIR_ENV", "RunSession", "new_run_id", "default_reports_dir"]

# For stock `chaos run` (no runner to ask): where run folders go.
REPORTS_DIR_ENV = "GAMEDAY_REPORTS_DIR"


def new_run_id(scenario: str) -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{scenario}-{_secrets.token_hex(2)}"


def default_reports_dir() -> Path:
    return Path(os.environ.get(REPORTS_DIR_ENV) or PROJECT_ROOT / "reports")


@dataclass
class RunSession:
    """The run in progress. Owned by whoever opened it (the runner, or the control under stock
    `chaos run`): that owner judges the run and closes the session."""
    plan: RunPlan
    run_id: str
    run_dir: Path
    target_path: str | None
    history: History
    started: str
    owned_by_runner: bool
    # What happened, filled in by the control as the run goes.
    method_started: bool = False
    fault_start_t: float | None = None
    fault_start_epoch: float | None = None
    self_aborted: bool = False   # the control stopped the run itself (no acknowledged writes): an error
    observation_ended: bool = False
    in_hypothesis: bool = False   # Chaos Toolkit is asking the steady-state hypothesis (its probes are no steps)
    in_rollbacks: bool = False    # the rollbacks run: their steps are judged by after_rollbacks
    step_index: int = 0           # steps stamped so far (method and rollbacks)
    final_digests: dict | None = None   # what the final read found, read again after the rollbacks
    after_rollbacks_checked: bool = False
    fingerprints: dict = field(default_factory=dict)  # phase -> the fingerprint file taken then
    stop_reason: str | None = None  # set when a stop condition trips: the run ends as interrupted
    # Heartbeats intact in the database just before the fault (and when that was checked).
    heartbeat_baseline: set | None = None
    heartbeat_baseline_epoch: float | None = None
    # The running recorders (harness.recorders): each has stop().
    sampler: Sampler | None = None
    load: LoadGenerator | None = None
    stop_watch: StopWatch | None = None  # from the fault on
    # The runner's SIGTERM handler. Chaos Toolkit puts its own in place for the experiment, which
    # turns SIGTERM into a failed activity: the run would end as FAIL and a game day go on to the
    # next fault. The control puts the runner's back (harness.run.runner._Signals).
    on_sigterm: object = None

    @classmethod
    def open(cls, plan: RunPlan, *, target_path: str | os.PathLike | None, reports_dir: str | os.PathLike | None = None,
             owned_by_runner: bool) -> "RunSession":
        """Create the run folder and its history. Raises TargetError when the target description
        cannot be read (before anything is injected)."""
        target_file = str(target_mod.target_path() if target_path is None else target_path)
        target_mod.load(target_file)  # fail now, not halfway through
        run_id = new_run_id(plan.objectives["scenario"])
        run_dir = Path(reports_dir or default_reports_dir()) / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        session = cls(plan=plan, run_id=run_id, run_dir=run_dir, target_path=target_file,
                      history=History(run_dir / "history.jsonl"), started=history_mod.utc_now(),
                      owned_by_runner=owned_by_runner)
        # What the run was judged against, for whoever must close it if this process dies.
        (run_dir / "session.json").write_text(json.dumps(
            {"scenario": plan.objectives["scenario"], "objectives": plan.objectives, "run_id": run_id,
             "experiment": plan.experiment_path, "title": plan.title, "started": session.started,
             "negative_control": plan.negative_control, "expect_failure": list(plan.expect_failure),
             "harness_pid": os.getpid()}, indent=2, default=str) + "\n")
        session.history.append("marker", name="run_start",
                               detail={"run_id": run_id, "scenario": plan.objectives["scenario"], "title": plan.title})
        return session

    @property
    def objectives(self) -> dict:
        return self.plan.objectives

    def target(self) -> dict:
        return target_mod.load(self.target_path)

    def info(self) -> dict:
        """The run's own fields, copied into the verdict."""
        return {"run_id": self.run_id, "experiment": self.plan.experiment_path, "title": self.plan.title,
                "started": self.started, "ended": history_mod.utc_now(),
                "negative_control": self.plan.negative_control, "expect_failure": list(self.plan.expect_failure),
                "calibration": self.plan.calibration}

    def stop_instruments(self) -> None:
        """Stop every recorder still running (idempotent; never raises)."""
        for instrument in (self.stop_watch, self.load, self.sampler):
            if instrument is None:
                continue
            try:
                instrument.stop()
            except Exception:  # a recorder that cannot stop must not keep the others running
                pass

    def close(self) -> None:
        self.stop_instruments()
        self.history.close()
        for path in self.fingerprints.values():  # per-row files: their comparison is in the history
            for part in Path(path).parent.glob(Path(path).name + "*"):
                part.unlink(missing_ok=True)
