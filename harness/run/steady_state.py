"""An experiment's steady-state hypothesis, asked outside Chaos Toolkit's own run: between two
runs of a game day (is the target back to what the next experiment needs?) and after the
rollbacks (did undoing the fault leave the system as the experiment found it?).

    check(experiment)                     → {met, probes: [{name, met, output|error}]}
    wait_until_met(experiment, timeout_s) → the first check that was met, or the last one

Each probe runs as Chaos Toolkit runs it (chaoslib.activity.run_activity, the experiment's own
configuration and secrets) and is judged by the same tolerance rules (within_tolerance)."""
from __future__ import annotations

import time
from typing import Any, Callable

from chaoslib.activity import run_activity
from chaoslib.configuration import load_configuration
from chaoslib.hypothesis import within_tolerance
from chaoslib.secret import load_secrets

from harness.core.errors import first_line

__all__ = ["check", "wait_until_met"]


def check(experiment: dict) -> dict:
    """Run every probe of the steady-state hypothesis once (all of them, not only up to the first
    miss, so the answer names everything that does not hold)."""
    probes = (experiment.get("steady-state-hypothesis") or {}).get("probes") or []
    if not probes:
        return {"met": True, "probes": [], "detail": "the experiment declares no steady-state hypothesis"}
    try:
        configuration = load_configuration(experiment.get("configuration") or {})
        secrets = load_secrets(experiment.get("secrets") or {}, configuration)
    except Exception as e:  # an unresolvable variable: nothing can be asked
        return {"met": False, "probes": [], "detail": f"configuration: {first_line(e)}"}
    results = []
    for probe in probes:
        name = probe.get("name")
        try:
            output: Any = run_activity(probe, configuration, secrets)
            met = bool(within_tolerance(probe.get("tolerance"), output, configuration=configuration, secrets=secrets))
            results.append({"name": name, "met": met, "output": output})
        except Exception as e:  # a probe that raises does not hold
            results.append({"name": name, "met": False, "error": f"{type(e).__name__}: {first_line(e)}"})
    missed = [f"{r['name']} ({r['error'] if 'error' in r else _answer(r['output'])})" for r in results if not r["met"]]
    return {"met": not missed, "probes": results,
            "detail": "every probe within tolerance" if not missed else f"not within tolerance: {'; '.join(missed)}"}


def _answer(output: Any, limit: int = 120) -> str:
    text = " ".join(repr(output).split())
    return "answered " + (text if len(text) <= limit else text[: limit - 1] + "…")


def wait_until_met(experiment: dict, timeout_s: float, interval_s: float = 2.0,
                   log: Callable[[str], None] = lambda m: None) -> dict:
    """Ask the hypothesis until it holds or `timeout_s` passes; return the last answer."""
    deadline = time.monotonic() + timeout_s
    said = False
    while True:
        answer = check(experiment)
        if answer["met"] or time.monotonic() >= deadline:
            return answer
        if not said:
            log(f"waiting for the next experiment's steady state ({answer['detail']})")
            said = True
        time.sleep(interval_s)
