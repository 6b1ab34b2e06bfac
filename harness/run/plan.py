"""What an experiment asks for, decided before anything runs: the run plan.

    plan(experiment, path)   → RunPlan: objectives resolved once (bcp.yaml + the experiment's bcp
                               extension), recorder settings, negative-control expectations, stop
                               conditions. ObjectivesError (one line naming the field) on bad input;
                               nothing is injected after such an error.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from harness.run import checks, objectives as objectives_mod

__all__ = ["OBJECTIVES_ENV", "RunPlan", "plan"]

# For stock `chaos run` (no runner to ask): which bcp.yaml.
OBJECTIVES_ENV = "GAMEDAY_OBJECTIVES"


@dataclass(frozen=True)
class RunPlan:
    """What an experiment asks for, validated: nothing here has touched the target."""
    experiment_path: str | None
    title: str | None
    objectives: dict      # resolved: the dict harness.checkers.verdict judges against
    recorders: dict       # sampler and load settings (extensions.bcp.recorders)
    negative_control: bool
    expect_failure: tuple[str, ...] = ()  # a negative control's criteria that must fail
    stop_conditions: tuple[dict, ...] = ()  # when one trips, the run stops and rolls back at once
    calibration: bool = False  # the day's instrument check (tag `calibration`), not evidence about the plan
    experiment: dict | None = None  # the experiment itself (its steady state is asked again after the rollbacks)


def plan(experiment: dict, path: str | os.PathLike | None = None, objectives_file: str | None = None) -> RunPlan:
    """Resolve an experiment's objectives and recorder settings once. Raises ObjectivesError (one
    line naming the field) on bad input; nothing is injected after such an error."""
    bcp = objectives_mod.load(objectives_file or os.environ.get(OBJECTIVES_ENV) or objectives_mod.DEFAULT_PATH)
    resolved = objectives_mod.for_experiment(bcp, experiment)
    unknown = checks.unknown_names(resolved)
    if unknown:
        known = ", ".join(sorted(checks.CRITICAL_FUNCTIONS) + sorted(checks.INTEGRITY_CHECKS))
        raise objectives_mod.ObjectivesError(f"scenario {resolved['scenario']!r}: no such {unknown[0]} (known: {known})")
    ext = objectives_mod.bcp_extension(experiment)
    return RunPlan(experiment_path=str(path) if path else experiment.get("__source__"),
                   title=experiment.get("title"), objectives=resolved,
                   recorders=objectives_mod.recorder_settings(experiment),
                   negative_control=bool(ext.get("negative_control")),
                   expect_failure=tuple(objectives_mod.expected_failures(experiment, resolved)),
                   stop_conditions=tuple(objectives_mod.stop_conditions(experiment)),
                   calibration="calibration" in (experiment.get("tags") or []), experiment=experiment)
