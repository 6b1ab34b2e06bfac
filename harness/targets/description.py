"""The target description: where the system under test is (URLs, DSNs, paths, supervisor).

`gameday target up` writes it for the embedded stack; for a real deployment an operator writes
one by hand (kind: kubernetes). Faults, probes and recorders read it and nothing else, so the same
experiment runs against either. This module is the bottom layer: it imports nothing of ours.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from harness.core.paths import PROJECT_ROOT

HOME_ENV = "GAMEDAY_HOME"
TARGET_ENV = "GAMEDAY_TARGET"
TARGET_FILE = "target.json"
INCIDENT_FILE = Path("incidents") / "latest.json"  # the latest incident record in a stack home


class TargetError(RuntimeError):
    """No usable target description: say which file and what is wrong with it."""


def default_home() -> Path:
    return Path(os.environ.get(HOME_ENV) or PROJECT_ROOT / ".gameday").resolve()


def target_path(home: str | os.PathLike | None = None) -> Path:
    if home is not None:
        return Path(home).resolve() / TARGET_FILE
    if os.environ.get(TARGET_ENV):
        return Path(os.environ[TARGET_ENV]).resolve()
    return default_home() / TARGET_FILE


def load(path: str | os.PathLike | None = None) -> dict:
    """Read a target description. `path` may be the file or a stack home folder; by default
    $GAMEDAY_TARGET, else $GAMEDAY_HOME/target.json, else the project's .gameday/target.json."""
    p = Path(path) if path else target_path()
    if p.is_dir():
        p = p / TARGET_FILE
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise TargetError(f"no target description at {p}: run 'gameday target up' first") from None
    except (OSError, json.JSONDecodeError) as e:
        raise TargetError(f"target description {p} is unreadable: {e}") from None
    if not isinstance(data, dict) or "api_url" not in data:
        raise TargetError(f"target description {p} lacks 'api_url'")
    for field in _TEXT_FIELDS:
        if field in data and data[field] is not None and not isinstance(data[field], str):
            raise TargetError(f"target description {p}: {field} must be a string, got {data[field]!r}")
    if not isinstance(data["api_url"], str) or not data["api_url"].startswith(("http://", "https://")):
        raise TargetError(f"target description {p}: api_url must be an http(s) URL, got {data['api_url']!r}")
    for field in ("secret_fields", "allowed_namespaces"):
        if field in data and not (isinstance(data[field], list) and all(isinstance(x, str) for x in data[field])):
            raise TargetError(f"target description {p}: {field} must be a list of names, got {data[field]!r}")
    return data


# Fields every reader takes for text (paths, URLs, DSNs): anything else is refused on load.
_TEXT_FIELDS = ("kind", "name", "api_url", "prometheus_url", "app_dsn", "admin_dsn", "home", "heartbeat_ledger",
                "supervisor_url", "passfile", "environment", "namespace", "database_namespace", "monitoring_namespace")


def incident_path(target: dict) -> Path:
    """Where a stack home keeps its latest incident record (written by a fault such as an accidental
    DELETE, read by the point-in-time recovery that undoes it)."""
    return Path(target["home"]) / INCIDENT_FILE


def save(target: dict, path: str | os.PathLike) -> None:
    p = Path(path)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(target, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, p)
