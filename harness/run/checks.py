"""The named checks objectives refer to (bcp.yaml's critical_functions and integrity_checks),
mapped to the probes that perform them. Each check returns (ok, detail)."""
from __future__ import annotations

from typing import Callable

from probes import database, http, models, monitoring

Check = Callable[[str | None], tuple[bool, str]]

CRITICAL_FUNCTIONS: dict[str, Check] = {
    "ready": http.check_api_ready,
    "optimize": http.check_optimize,
    "history": http.check_history,
    "golden_predictions": models.check_golden,
    "standby_streaming": database.check_standby_streaming,
    "wal_archiving": database.check_wal_archiving,
    "database_writable": database.check_primary_writable,
    "prometheus_ready": monitoring.check_prometheus_ready,
    "targets_scraped": monitoring.check_targets_scraped,
}

INTEGRITY_CHECKS: dict[str, Check] = {
    "amcheck": database.check_amcheck,
    "models": models.check_models,
    "config": models.check_config,
}


def unknown_names(objectives: dict) -> list[str]:
    """Names in resolved objectives that no check implements (a typo in bcp.yaml)."""
    return ([f"critical function {n!r}" for n in objectives.get("critical_functions", []) if n not in CRITICAL_FUNCTIONS]
            + [f"integrity check {n!r}" for n in objectives.get("integrity_checks", []) if n not in INTEGRITY_CHECKS])


def run_check(table: dict[str, Check], name: str, target: str | None) -> tuple[bool, str]:
    try:
        return table[name](target)
    except Exception as e:  # a probe that crashes is a failed check, with the reason
        return False, f"{type(e).__name__}: {e}"
