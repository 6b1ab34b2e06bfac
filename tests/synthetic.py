"""Synthetic histories for checker tests: a few lines of a test build exactly the timeline it judges.

    h = History()
    h.up(0, 10)                  # api samples ok every 0.1 s in [0, 10)
    h.fault(10, 20)              # fault start at 10, end at 20
    h.down(10, 14.2)             # failures in [10, 14.2)
    h.up(14.2, 30)
    h.write("k1", 5)             # invoke at 5, ok at 5.01
    h.final_read(31, ["k1"])
    events = h.events()          # validated by harness.records.history, sorted by t as read() returns them

Every event is checked with harness.records.history.validate_event, so tests use the real format.
"""
from __future__ import annotations

from typing import Any, Iterable

from harness.records.history import validate_event

WALL = "2025-01-01T00:00:00.000Z"


def digest(key: Any) -> str:
    """The digest a synthetic write of `key` stored (any stable string per key will do)."""
    return f"d-{key}"


class History:
    def __init__(self) -> None:
        self._events: list[dict] = []

    # -- any event ------------------------------------------------------------------------
    def add(self, kind: str, t: float, **fields: Any) -> "History":
        self._events.append(validate_event({"kind": kind, "t": round(float(t), 6), "wall": WALL, **fields}))
        return self

    def events(self) -> list[dict]:
        # The same order harness.records.history.read gives: by t, file order kept for equal times.
        return sorted(self._events, key=lambda e: e["t"])

    # -- samples --------------------------------------------------------------------------
    def sample(self, t: float, ok: bool, probe: str = "api", latency_s: float = 0.01,
               error: str | None = None) -> "History":
        fields: dict[str, Any] = {"probe": probe, "ok": ok, "latency_s": latency_s}
        if not ok:
            fields["error"] = error or "connection refused"
        self.add("sample", t, **fields)
        return self

    def samples(self, start: float, end: float, ok: bool, every: float = 0.1, probe: str = "api") -> "History":
        """One sample every `every` seconds in [start, end)."""
        n = round((end - start) / every)
        for i in range(n):
            self.sample(start + i * every, ok, probe=probe)
        return self

    def up(self, start: float, end: float, every: float = 0.1, probe: str = "api") -> "History":
        return self.samples(start, end, True, every, probe)

    def down(self, start: float, end: float, every: float = 0.1, probe: str = "api") -> "History":
        return self.samples(start, end, False, every, probe)

    # -- fault window, recovery, markers --------------------------------------------------
    def fault(self, start: float, end: float | None = None, name: str = "kill-primary", ok: bool = True,
              detail: str | None = None, effect: bool | None = True) -> "History":
        """A fault window. `effect`: the evidence the fault returned of its effect (True: observed,
        False: not observed, None: a fault of the user's own that brings no evidence)."""
        fields: dict[str, Any] = {"name": name, "ok": ok}
        if detail is not None:
            fields["detail"] = detail
        self.add("fault", start, phase="start", **fields)
        if end is not None:
            extra = {} if effect is None else {"effect": {"observed": effect, "detail": "synthetic evidence"}}
            self.add("fault", end, phase="end", name=name, ok=ok, **extra)
        return self

    def marker(self, t: float, name: str, **fields: Any) -> "History":
        self.add("marker", t, name=name, **fields)
        return self

    def steady_state(self, t: float, met: bool, phase: str = "before") -> "History":
        return self.marker(t, "steady_state", met=met, phase=phase)

    def stall(self, t: float, gap_s: float, recorder: str = "sampler", expected_s: float = 0.1) -> "History":
        self.add("stall", t, recorder=recorder, gap_s=gap_s, expected_s=expected_s)
        return self

    # -- writes and the final read ---------------------------------------------------------
    def write(self, key: Any, t: float, outcome: str | None = "ok", latency_s: float = 0.01) -> "History":
        """invoke at t, then `outcome` (ok|fail|info) at t + latency_s; outcome None: no completion.
        An acknowledged write carries the digest of what it stored: digest(key)."""
        self.add("op", t, type="invoke", f="write", key=key)
        if outcome is not None:
            extra = {"digest": digest(key)} if outcome == "ok" else {}
            self.add("op", t + latency_s, type=outcome, f="write", key=key, **extra)
        return self

    def heartbeats(self, t: float, acked: Iterable[tuple[Any, float]], window_s: float = 600.0) -> "History":
        """The heartbeat ledger's acknowledgements read at t: (key, t acknowledged) pairs."""
        self.add("heartbeat", t, acked=[[k, at, digest(k)] for k, at in acked], window_s=window_s, ok=True)
        return self

    def final_read(self, t: float, keys: Iterable[Any] | None, ok: bool = True, error: str | None = None,
                   changed: Iterable[Any] = (), servers: dict[str, str] | None = None) -> "History":
        """The read-back: `keys` present, each holding what was written except those in `changed`;
        `servers`: each database server's role as the read was taken ({port: role})."""
        keys = list(keys or [])
        changed = set(changed)
        fields: dict[str, Any] = {"keys": keys, "ok": ok,
                                  "digests": {str(k): ("changed" if k in changed else digest(k)) for k in keys}}
        if error is not None:
            fields["error"] = error
        if servers is not None:
            fields["servers"] = servers
        self.add("final_read", t, **fields)
        return self

    # -- after recovery --------------------------------------------------------------------
    def integrity(self, t: float, check: str, ok: bool = True, detail: Any = "clean") -> "History":
        self.add("integrity", t, check=check, ok=ok, detail=detail)
        return self

    def function(self, t: float, name: str, ok: bool = True, detail: Any = "ok") -> "History":
        self.add("function", t, name=name, ok=ok, detail=detail)
        return self

    def detection(self, t: float, alert: str, fired: bool = True, latency_s: float | None = None,
                  resolved: Any = None) -> "History":
        fields: dict[str, Any] = {"alert": alert, "fired": fired}
        if latency_s is not None:
            fields["latency_s"] = latency_s
        if resolved is not None:
            fields["resolved"] = resolved
        self.add("detection", t, **fields)
        return self

    def checks_after_recovery(self, t: float, functions: Iterable[str] = ("ready", "optimize", "history"),
                              integrity: Iterable[str] = ("amcheck", "models", "config")) -> "History":
        for name in functions:
            self.function(t, name)
        for check in integrity:
            self.integrity(t, check)
        return self


def objectives(**overrides: Any) -> dict:
    """Resolved objectives as harness.run.objectives.resolve returns them, BCP defaults unless overridden."""
    base = {"scenario": "database-failure", "rto_s": 900, "rpo_s": 300, "stability_s": 5, "timeout_s": 180,
            "probe": "api", "max_lost_writes": None, "critical_functions": ["ready", "optimize", "history"],
            "integrity_checks": ["amcheck", "models", "config"], "detection": None}
    base.update(overrides)
    return base


def healthy_run(outage: tuple[float, float] | None = (10.0, 14.2), end: float = 30.0) -> History:
    """A complete run that passes with defaults: steady state met, fault at 10, an outage, recovery,
    writes before and after the fault all read back, every check passing."""
    h = History()
    h.steady_state(0, True)
    if outage:
        h.up(0, outage[0]).down(*outage).up(outage[1], end)
    else:
        h.up(0, end)
    h.fault(10.0, 11.0)
    for i in range(5):
        h.write(f"k{i}", 2 + i)
    h.write("k-late", 20)
    beats = [(f"hb-{i}", float(i)) for i in range(-60, int(end))]  # one a second, long before the run
    h.heartbeats(end + 0.4, beats)
    h.final_read(end + 0.5, [f"k{i}" for i in range(5)] + ["k-late"] + [k for k, _ in beats])
    h.checks_after_recovery(end + 1)
    h.marker(end, "observe_end")
    h.steady_state(end + 2, True, phase="after")
    return h
