"""Every step of an experiment, whatever its provider, judged by what it really did. Pure.

Chaos Toolkit calls a step "succeeded" whenever its provider returned: a process that exited 1 and
an HTTP call answered 500 both "succeed" (it only logs a warning). Here a step failed when:
  python    it raised (Chaos Toolkit says "failed")
  process   it exited with a status other than 0 (or Chaos Toolkit says "failed": not started)
  http      its answer's status is outside the step's expectation: `expected_status` on the
            activity (a number or a list), else a probe's numeric tolerance, else below 400

    step_outcome(activity, state)   (ok, why) of one step, from its definition and Chaos Toolkit's record
    steps(events)                   the `step` events of a run, grouped by what a failure means:
                                    faults (the run tested nothing: ERROR), recovery (the procedure
                                    failed: recovery_procedure FAILS), actions (the method did not run
                                    as written: ERROR), probes (an observation failed: every_step
                                    FAILS), rollbacks (the undo failed: after_rollbacks FAILS)
"""
from __future__ import annotations

from typing import Any

__all__ = ["step_outcome", "steps", "http_expected"]

DEFAULT_HTTP_FAILURE = 400  # an HTTP answer at or above this is a failed step unless the step says otherwise


def http_expected(activity: dict) -> list[int] | None:
    """The statuses an HTTP step declares it expects, or None (then: anything below 400)."""
    declared = activity.get("expected_status")
    if declared is None and activity.get("type") == "probe":
        declared = activity.get("tolerance")
    if isinstance(declared, bool):
        return None
    if isinstance(declared, int):
        return [declared]
    if isinstance(declared, list) and declared and all(isinstance(x, int) and not isinstance(x, bool) for x in declared):
        return list(declared)
    return None


def step_outcome(activity: dict, state: dict) -> tuple[bool, str | None]:
    """Whether one step did what it says, from its definition and Chaos Toolkit's run record
    (`status`, `output`, `exception`); the reason when it did not."""
    provider = (activity.get("provider") or {}).get("type")
    if state.get("status") != "succeeded":
        exc = "".join(state.get("exception") or []).strip()
        return False, (exc.splitlines()[-1] if exc else f"Chaos Toolkit recorded status {state.get('status')!r}")
    output = state.get("output")
    if provider == "process":
        code = output.get("status") if isinstance(output, dict) else None
        if not isinstance(code, int) or isinstance(code, bool):
            return False, f"the process left no exit status (output {_short(output)})"
        if code != 0:
            err = output.get("stderr") or output.get("stdout") or ""
            return False, f"the process exited with status {code}" + (f": {_short(err)}" if err else "")
        return True, None
    if provider == "http":
        code = output.get("status") if isinstance(output, dict) else None
        if not isinstance(code, int) or isinstance(code, bool):
            return False, f"the HTTP call left no status (output {_short(output)})"
        expected = http_expected(activity)
        if expected is not None and code not in expected:
            return False, f"HTTP {code}, expected {', '.join(map(str, expected))}"
        if expected is None and code >= DEFAULT_HTTP_FAILURE:
            return False, f"HTTP {code} (no expected_status declared: {DEFAULT_HTTP_FAILURE} and above fail)"
        return True, None
    return True, None


def steps(events: list[dict]) -> dict:
    """The run's steps from its `step` events: every step (name, section, type, tags, ok, detail)
    in order, and the failed ones grouped by what their failure means. A step that started and
    never ended is listed as unfinished (and counts as failed in its group)."""
    started: dict[tuple, dict] = {}
    done: list[dict] = []
    for e in events:
        if e["kind"] != "step":
            continue
        key = (e.get("section"), e.get("index"), e.get("name"))
        if e.get("phase") == "start":
            started[key] = e
        elif e.get("phase") == "end":
            first = started.pop(key, e)
            done.append({**_fields(first), "ok": e.get("ok") is not False, "detail": e.get("detail"),
                         "start_t": first["t"], "end_t": e["t"]})
    unfinished = [{**_fields(e), "ok": False, "detail": "started and never finished", "start_t": e["t"], "end_t": None}
                  for e in started.values()]
    every = sorted(done + unfinished, key=lambda s: s["start_t"])
    groups: dict[str, list[dict]] = {"faults": [], "recovery": [], "actions": [], "probes": [], "rollbacks": []}
    for s in every:
        if s["ok"]:
            continue
        if s["section"] == "rollback":
            groups["rollbacks"].append(s)
        elif "fault" in s["tags"]:
            groups["faults"].append(s)
        elif "recovery" in s["tags"]:
            groups["recovery"].append(s)
        elif s["type"] == "probe":
            groups["probes"].append(s)
        else:
            groups["actions"].append(s)
    return {"steps": every, "failed": groups, "recorded": bool(every)}


def _fields(e: dict) -> dict[str, Any]:
    return {"name": e.get("name"), "section": e.get("section") or "method", "type": e.get("type") or "action",
            "provider": e.get("provider"), "tags": list(e.get("tags") or [])}


def _short(value: Any, limit: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
