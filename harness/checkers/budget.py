"""The error budget: measured downtime against the BCP's 99.9 % uptime. Pure, like every checker.

99.9 % of a 30-day month is 43.2 minutes (2,592 s) of allowed downtime; a game day's runs spend
some of it (only real scenarios: a negative control's outage is made on purpose to prove the
harness, not the plan)."""
from __future__ import annotations

__all__ = ["error_budget", "MONTH_S", "UPTIME_OBJECTIVE"]

UPTIME_OBJECTIVE = 0.999
MONTH_S = 30 * 24 * 3600


def error_budget(downtimes_s: list[float | None], months: float = 1.0, uptime: float = UPTIME_OBJECTIVE) -> dict:
    """How much of the downtime budget of `months` months the given outages consumed. A run whose
    downtime is unknown (None) is counted as unknown, never as zero."""
    budget_s = (1.0 - uptime) * MONTH_S * months
    known = [float(d) for d in downtimes_s if isinstance(d, (int, float)) and not isinstance(d, bool)]
    consumed = sum(known)
    return {"uptime_objective": uptime, "months": months, "budget_s": round(budget_s, 3),
            "consumed_s": round(consumed, 3), "consumed_pct": round(100.0 * consumed / budget_s, 3),
            "runs": len(downtimes_s), "unknown_runs": len(downtimes_s) - len(known)}
