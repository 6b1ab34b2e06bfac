"""The phase line: where a run stands, in words, from its history as it grows.

    warming up · fault injected (freeze-api-3s: hang_api replicas=all) · service DOWN 2.1 s ·
    recovery step running (restore_latest) · recovered · stable 3/5 s · judging · PASS

The console's live page and the terminal's progress show the same line. Fed one history event at
a time (in the order they are read), it keeps a list of steps; `feed` returns the steps an event
started or finished (a phase event: what a CI log prints one line for), `words(now_t)` the line
with its running counters (how long the service has been down, how much of the stability window
has passed). Kinds it does not know are ignored, so a history with newer kinds still reads.

Pure: no I/O, no clock (the caller says what time it is on the run's clock).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.report.page import fmt_plain

__all__ = ["Step", "PhaseLine", "fault_places", "run_clock_epoch"]

RUNNING, DONE, FAILED = "running", "done", "failed"
DEFAULT_PROBE, DEFAULT_STABILITY_S = "api", 5.0


@dataclass
class Step:
    """One phase of the run: `key` says which (warmup, fault, down, recovery, recovered, stable,
    checks, judging, verdict, interrupted, ...), `label` the words shown, `state` running / done /
    failed, `t` and `wall` the history event that started it."""
    key: str
    label: str
    state: str = RUNNING
    t: float = 0.0
    wall: str | None = None
    name: str | None = None  # the activity, for fault and recovery steps
    note: str | None = None  # the line a log prints when the step begins, if not its label

    def as_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "state": self.state, "t": self.t, "wall": self.wall}

    def news(self) -> str | None:
        """The log line this step is worth now (None: implied by the next step, e.g. the end of
        the warm-up when the fault starts)."""
        if (self.state == DONE and self.key in ("warmup", "checks", "judging")) or (self.key, self.state) == ("stable", RUNNING):
            return None
        if self.state == DONE and self.key == "fault":
            return f"fault action returned ({self.name})"
        return self.note or self.label


@dataclass
class PhaseLine:
    """The run's phases so far. `objectives` (the run's, from session.json or the plan) name the
    scenario's probe and the stability window; `places` maps a fault activity's name to where it
    acts (fault_places)."""
    objectives: dict = field(default_factory=dict)
    places: dict = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    last_t: float = 0.0
    fault_t: float | None = None
    down_since: float | None = None  # the first failed sample of the current outage
    down_total_s: float = 0.0        # closed outages since the fault
    outages: int = 0
    up_since: float | None = None    # the first good sample after the last failure (or the fault)
    last_ok_t: float | None = None   # when the newest good answer arrived
    checks_seen: int = 0
    checks_failed: int = 0
    ended: bool = False              # a verdict, or an interruption: counters stop

    @property
    def probe(self) -> str:
        return str(self.objectives.get("probe") or DEFAULT_PROBE)

    @property
    def stability_s(self) -> float:
        s = self.objectives.get("stability_s")
        return float(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else DEFAULT_STABILITY_S

    # feeding ----------------------------------------------------------------------------------
    def feed(self, e: dict) -> list[Step]:
        """Take one history event; return the steps it started or finished."""
        t = e.get("t")
        if not isinstance(t, (int, float)) or isinstance(t, bool):
            return []
        self.last_t = max(self.last_t, float(t))
        kind = e.get("kind")
        handler = {"sample": self._sample, "fault": self._fault, "recovery": self._recovery, "marker": self._marker,
                   "final_read": self._check, "function": self._check, "integrity": self._check}.get(kind)
        return handler(e, float(t)) if handler else []

    def finish(self, status: str, reason: str = "", t: float | None = None, wall: str | None = None) -> list[Step]:
        """The verdict landed: judging is done and the line ends with the status."""
        changed = self._close("judging", DONE) + self._close("checks", DONE)
        self.ended = True
        step = self._add("verdict", str(status).upper(), DONE if status == "pass" else FAILED,
                         self.last_t if t is None else t, wall)
        return changed + [step]

    # counters ---------------------------------------------------------------------------------
    def words(self, now_t: float | None = None) -> str:
        """The line as words, counters at `now_t` (run time; default: the last event's)."""
        return " · ".join(self.labels(now_t))

    def labels(self, now_t: float | None = None) -> list[str]:
        now = self.last_t if now_t is None or self.ended else max(now_t, self.last_t)
        out = []
        for s in self.steps:
            if s.key == "down":
                out.append(self._down_label(now))
            elif s.key == "stable" and s.state == RUNNING:
                out.append(self._stable_label(now))
            else:
                out.append(s.label)
        return out

    def current(self) -> Step | None:
        return self.steps[-1] if self.steps else None

    def down_s(self, now_t: float) -> float:
        return self.down_total_s + (max(0.0, now_t - self.down_since) if self.down_since is not None else 0.0)

    # handlers ---------------------------------------------------------------------------------
    def _sample(self, e: dict, t: float) -> list[Step]:
        if str(e.get("probe")) == self.probe and e.get("ok"):
            self.last_ok_t = t
        if self.fault_t is None or self.ended or str(e.get("probe")) != self.probe:
            return []
        if not e.get("ok"):
            started = e.get("started")
            if self.down_since is not None or (isinstance(started, (int, float)) and self.last_ok_t is not None
                                               and self.last_ok_t > started):
                # Already down; or overtaken: an answer arrived while this request waited, so it
                # was stuck behind the outage, not a new one (the checker's judged_times rule).
                return []
            self.down_since, self.up_since = t, None
            self.outages += 1
            changed = self._close("warmup", DONE)
            # Down again after it had come back: the stability window starts over.
            self.steps = [s for s in self.steps if s.key not in ("recovered", "stable")]
            since = f"{t - self.fault_t:.1f} s after the fault"
            down = self._find("down")
            if down is None:
                down = self._add("down", "service DOWN", FAILED, t, e.get("wall"))
                down.note = f"service DOWN (first failed {self.probe} sample {since})"
                return changed + [down]
            down.note = f"service DOWN again ({since}, outage {self.outages})"
            down.t, down.wall = t, e.get("wall") if isinstance(e.get("wall"), str) else None
            return changed + [down]
        if self.down_since is not None:  # back up
            self.down_total_s += t - self.down_since
            self.down_since, self.up_since = None, t
            down = self._find("down")
            if down is not None:
                down.label = self._down_label(t)
            recovered = self._add("recovered", "recovered", DONE, t, e.get("wall"))
            recovered.note = f"recovered ({self.probe} answers again, {t - self.fault_t:.1f} s after the fault)"
            return [recovered, self._add("stable", self._stable_label(t), RUNNING, t, e.get("wall"))]
        if self.up_since is None and self._find("down") is None:
            fault = self._find("fault")
            if fault is not None and fault.state != RUNNING:  # the fault is over and nothing went down
                self.up_since = self.fault_t
                return [self._add("stable", self._stable_label(t), RUNNING, t, e.get("wall"))]
        stable = self._find("stable")
        if stable is not None and stable.state == RUNNING and self.up_since is not None \
                and t - self.up_since >= self.stability_s:
            stable.state, stable.label = DONE, self._stable_label(t)
            return [stable]
        return []

    def _fault(self, e: dict, t: float) -> list[Step]:
        name = str(e.get("name") or "fault")
        if e.get("phase") == "start":
            changed = self._close("warmup", DONE)
            if self.fault_t is None:
                self.fault_t = t
            where = self.places.get(name)
            label = f"fault injected ({name}: {where})" if where else f"fault injected ({name})"
            return changed + [self._add("fault", label, RUNNING, t, e.get("wall"), name=name)]
        step = self._find("fault", name, running=True)
        if step is None:
            return []
        if e.get("ok") is False:
            step.state, step.label = FAILED, f"fault FAILED ({name})"
        else:
            step.state = DONE
        return [step]

    def _recovery(self, e: dict, t: float) -> list[Step]:
        name = str(e.get("name") or "recovery")
        if e.get("phase") == "start":
            return [self._add("recovery", f"recovery step running ({name})", RUNNING, t, e.get("wall"), name=name)]
        step = self._find("recovery", name, running=True)
        if step is None:
            return []
        ok = e.get("ok") is not False
        step.state, step.label = (DONE, f"recovery step done ({name})") if ok else (FAILED, f"recovery step FAILED ({name})")
        return [step]

    def _marker(self, e: dict, t: float) -> list[Step]:
        name, wall = e.get("name"), e.get("wall")
        if name == "recorders_started":
            return [self._add("warmup", "warming up", RUNNING, t, wall)]
        if name == "steady_state" and e.get("phase") == "before" and e.get("met") is False:
            self.ended = True
            return self._close("warmup", FAILED) + [
                self._add("not_met", "steady state NOT met before the fault: nothing injected", FAILED, t, wall)]
        if name == "stability":
            detail = e.get("detail") if isinstance(e.get("detail"), dict) else {}
            stable = self._find("stable")
            if detail.get("stable"):
                if stable is None:
                    return [self._add("stable", f"stable {self._fmt(self.stability_s)}/{self._fmt(self.stability_s)} s",
                                      DONE, t, wall)]
                if stable.state == RUNNING:
                    stable.state, stable.label = DONE, self._stable_label(t, full=True)
                    return [stable]
                return []
            if stable is not None:
                self.steps.remove(stable)
            return [self._add("unstable", "not stable by the scenario's timeout", FAILED, t, wall)]
        if name == "observe_end":
            return self._close("checks", DONE) + [self._add("judging", "judging", RUNNING, t, wall)]
        if name == "interrupted":
            self.ended = True
            why = e.get("reason") or e.get("signal") or "interrupted"
            return [self._add("interrupted", f"interrupted ({why}): rolling back", FAILED, t, wall)]
        if name == "stop_condition":
            return [self._add("stop", f"stop condition tripped ({fmt_plain(e.get('condition') or e.get('detail'), 80)})",
                              FAILED, t, wall)]
        if name == "instrument_failed":
            return [self._add("instrument", f"instrument failed ({e.get('instrument') or 'unknown'})", FAILED, t, wall)]
        return []

    def _check(self, e: dict, t: float) -> list[Step]:
        self.checks_seen += 1
        if e.get("ok") is False:
            self.checks_failed += 1
        expected = 1 + len(self.objectives.get("critical_functions") or []) + len(self.objectives.get("integrity_checks") or [])
        failed = f", {self.checks_failed} failed" if self.checks_failed else ""
        label = f"checking data and functions {min(self.checks_seen, expected)}/{expected}{failed}"
        step = self._find("checks")
        if step is None:
            changed = self._close("stable", DONE)
            step = self._add("checks", label, RUNNING, t, e.get("wall"))
            step.note = "checking every write, the critical functions and data integrity"
            return changed + [step]
        step.label = label
        return []

    # internals --------------------------------------------------------------------------------
    def _add(self, key: str, label: str, state: str, t: float, wall: Any, name: str | None = None) -> Step:
        step = Step(key, label, state, t, wall if isinstance(wall, str) else None, name)
        self.steps.append(step)
        return step

    def _find(self, key: str, name: str | None = None, running: bool = False) -> Step | None:
        for s in reversed(self.steps):
            if s.key == key and (name is None or s.name == name) and (not running or s.state == RUNNING):
                return s
        return None

    def _close(self, key: str, state: str) -> list[Step]:
        s = self._find(key, running=True)
        if s is None:
            return []
        s.state = state
        return [s]

    def _down_label(self, now: float) -> str:
        flapping = f", {self.outages} outages" if self.outages > 1 else ""
        return f"service DOWN {self.down_s(now):.1f} s{flapping}"

    def _stable_label(self, now: float, full: bool = False) -> str:
        window = self.stability_s
        held = window if full or self.up_since is None else min(window, max(0.0, now - self.up_since))
        return f"stable {int(held)}/{self._fmt(window)} s"

    @staticmethod
    def _fmt(x: float) -> str:
        return f"{x:g}"


def fault_places(experiment: dict | None) -> dict[str, str]:
    """For each fault activity of an experiment (tagged `fault`), where it acts, in a few words:
    the function and its arguments ("hang_api replicas=all, duration_s=3")."""
    out = {}
    for activity in (experiment or {}).get("method") or []:
        if not isinstance(activity, dict) or "fault" not in (activity.get("tags") or []):
            continue
        provider = activity.get("provider") if isinstance(activity.get("provider"), dict) else {}
        args = provider.get("arguments") if isinstance(provider.get("arguments"), dict) else {}
        func = provider.get("func") or provider.get("path") or provider.get("url") or ""
        shown = ", ".join(f"{k}={fmt_plain(v, 40)}" for k, v in args.items())
        out[str(activity.get("name"))] = " ".join(x for x in (str(func), shown) if x) or "?"
    return out


def run_clock_epoch(event: dict) -> float | None:
    """The Unix time of the run's t=0, from one event's `t` and `wall`: run time now is then
    time.time() - epoch. None when the event has no readable wall time."""
    wall, t = event.get("wall"), event.get("t")
    if not isinstance(wall, str) or not isinstance(t, (int, float)):
        return None
    try:
        return datetime.fromisoformat(wall.replace("Z", "+00:00")).timestamp() - float(t)
    except ValueError:
        return None
