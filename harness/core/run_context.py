"""The run session as activities see it: the one typed way a fault, probe or runbook learns which
run it is part of (its folder, its objectives), whichever runner started the run.

Chaos Toolkit hands every activity the experiment's `configuration`; the run session
(harness.run.session.RunSession) travels there under SESSION_KEY. Activities never fish the key
out themselves: they call run_context(configuration), which returns the session or None (an
activity called from Python or a test, outside any run)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["SESSION_KEY", "RunContext", "run_context"]

SESSION_KEY = "gameday_session"  # the Chaos Toolkit configuration key that carries the session


@runtime_checkable
class RunContext(Protocol):
    """What an activity may know of the run: where its evidence goes and what it is judged against."""
    run_id: str
    run_dir: Path
    objectives: dict


def run_context(configuration: dict | None) -> RunContext | None:
    """The run session in a Chaos Toolkit configuration, or None outside a run."""
    value: Any = (configuration or {}).get(SESSION_KEY)
    return value if isinstance(value, RunContext) else None
