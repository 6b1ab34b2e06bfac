"""Targets: where the system under test runs, one package per kind.

    embedded/     kind "local": the embedded reference stack under supervisord (the default)
    containers/   kind "containers": the same system as Docker containers (testcontainers)
    kubernetes/   kind "kubernetes": a real deployment, described by hand (its API server is real)
    description   the target description file (target.json) every kind writes or is given
    base          the Target adapter every kind implements
    reaper        carries out the undo of expired fault-ledger entries, whatever the kind
    credentials   the database passwords a home keeps (0600), shared by the kinds that run here

The kind is decided once, here, when a Target is built:

    load(target)             the Target a description file (or a home folder) names; TargetError
    at_home(home, kind)      the Target of a stack home, up or not yet (the command line)
    selected(home)           --home if given, else $GAMEDAY_TARGET, else the default home
    for_activity(target)     load() for faults, probes and runbooks: ActivityFailed on bad input

A new kind is one new package with a `target` module defining its adapter, named in KINDS.

May import: harness.core, harness.records.
"""
from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from harness.targets.base import Target, TargetUnavailable
from harness.targets.description import (HOME_ENV, TARGET_ENV, TARGET_FILE, TargetError, default_home, incident_path,
                                         target_path)

__all__ = ["KINDS", "Target", "TargetError", "TargetUnavailable", "load", "at_home", "selected", "for_activity",
           "adapter", "default_home", "target_path", "incident_path", "HOME_ENV", "TARGET_ENV", "TARGET_FILE",
           "HOME_MARKER"]

# kind -> "module:class" of its adapter
KINDS = {
    "local": "harness.targets.embedded.target:EmbeddedTarget",
    "containers": "harness.targets.containers.target:ContainersTarget",
    "kubernetes": "harness.targets.kubernetes.target:KubernetesTarget",
}
HOME_MARKER = ".gameday-home"  # a stack home's own record: {"kind"?, "port_base"}


def adapter(kind: str) -> type[Target]:
    """The adapter class of a kind; TargetError naming the known kinds for any other."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise TargetError(f"unknown target kind {kind!r} (known: {', '.join(KINDS)})")
    module, _, name = KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def load(target: str | os.PathLike | None = None) -> Target:
    """The Target a description names: `target` is the file or a stack home folder; by default
    $GAMEDAY_TARGET, else $GAMEDAY_HOME/target.json, else the project's .gameday/target.json.
    Raises TargetError when it is missing, unreadable or of an unknown kind."""
    path = _description_path(target)
    try:
        kind = json.loads(path.read_text()).get("kind")
    except FileNotFoundError:
        raise TargetError(f"no target description at {path}: run 'gameday target up' first") from None
    except (OSError, ValueError, AttributeError) as e:
        raise TargetError(f"target description {path} is unreadable: {e}") from None
    t = adapter("local" if kind is None else kind)(path, home=path.parent)
    t.data  # validated now, not halfway through a run
    return t


def at_home(home: str | os.PathLike | None = None, kind: str | None = None) -> Target:
    """The Target of a stack home (default $GAMEDAY_HOME or .gameday), which need not be up yet:
    `kind` if given, else what the home's description or marker says, else the embedded stack."""
    folder = Path(home).resolve() if home is not None else default_home()
    if kind is None:
        kind = _recorded_kind(folder)
    return adapter(kind)(folder / TARGET_FILE, home=folder)


def selected(home: str | os.PathLike | None = None) -> Target:
    """What a command acts on: the stack home named by --home, else the description
    $GAMEDAY_TARGET names (any kind), else the default home."""
    if home is None and os.environ.get(TARGET_ENV):
        path = target_path()
        try:
            return load(path)
        except TargetError:
            return at_home(path.parent)
    return at_home(home)


def for_activity(target: str | os.PathLike | None = None) -> Target:
    """load() for an activity (fault, probe, runbook): a missing or bad description is an
    ActivityFailed naming it, raised before anything is touched."""
    try:
        return load(target)
    except TargetError as e:
        raise ActivityFailed(str(e)) from None


# Internals ---------------------------------------------------------------------------------

def _description_path(target: str | os.PathLike | None) -> Path:
    path = Path(target) if target else target_path()
    return (path / TARGET_FILE if path.is_dir() else path).resolve()


def _recorded_kind(folder: Path) -> str:
    for record in (folder / TARGET_FILE, folder / HOME_MARKER):
        try:
            kind = json.loads(record.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            continue
        if kind in KINDS:
            return kind
    return "local"
