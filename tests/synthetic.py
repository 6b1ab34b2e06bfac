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
               error: str | None = None, started: float | None = None, **extra: Any) -> "History":
        """One sample answered (or timed out) at t; `started`: when its request was sent."""
        fields: dict[str, Any] = {"probe": probe, "ok": ok, "latency_s": latency_s, **extra}
        if started is not None:
            fields.update(started=round(started, 6), latency_s=round(t - started, 6))
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

    def steady_state(self, t: float, met: bool, phase: str = "before", detail=None) -> "History":
        return self.marker(t, "steady_state", met=met, phase=phase, **({"detail": detail} if detail is not None else {}))

    def stall(self, t: float, gap_s: float, recorder: str = "sampler", expected_s: float = 0.1) -> "History":
        self.add("stall", t, recorder=recorder, gap_s=gap_s, expected_s=expected_s)
        return self

    # -- writes and the final read ---------------------------------------------------------
    def write(self, key: Any, t: float, outcome: str | None = "ok", latency_s: float = 0.01,
              timeline: int | None = None, system_id: str = "7000", server_at: float | None = None) -> "History":
        """invoke at t, then `outcome` (ok|fail|info) at t + latency_s; outcome None: no completion.
        An acknowledged write carries the digest of what it stored: digest(key), and with
        `timeline` the server that took it (with `server_at`: that server's clock as it executed it)."""
        self.add("op", t, type="invoke", f="write", key=key)
        if outcome is not None:
            extra: dict[str, Any] = {"digest": digest(key)} if outcome == "ok" else {}
            if outcome == "ok" and timeline is not None:
                extra["server"] = {"system_id": system_id, "timeline": timeline, "port": 5432 + timeline,
                                   **({"at": server_at} if server_at is not None else {})}
            self.add("op", t + latency_s, type=outcome, f="write", key=key, **extra)
        return self

    def heartbeats(self, t: float, acked: Iterable[tuple], window_s: float = 600.0) -> "History":
        """The heartbeat ledger's acknowledgements read at t: (key, t acknowledged) pairs, or
        (key, t acknowledged, timeline) for beats that say which server took them (sent 0.01 s
        before their acknowledgement, as `write` does)."""
        entries = []
        for k, at, *tl in acked:
            server = {"system_id": 7000, "timeline": tl[0], "port": 5432 + tl[0]} if tl else None
            entries.append([k, at, digest(k)] + ([round(at - 0.01, 6), server] if tl else []))
        self.add("heartbeat", t, acked=entries, window_s=window_s, ok=True)
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

    # -- steps, the table's fingerprint, after the rollbacks ---------------------------------
    def step(self, start: float, end: float | None, name: str, section: str = "method", type: str = "action",
             provider: str = "python", tags: Iterable[str] = (), ok: bool = True, detail: Any = None,
             index: int | None = None) -> "History":
        """One step of the experiment, start to end (end None: it never finished)."""
        index = index if index is not None else len([e for e in self._events if e["kind"] == "step"]) + 1
        self.add("step", start, phase="start", name=name, section=section, index=index, type=type,
                 provider=provider, tags=list(tags))
        if end is not None:
            self.add("step", end, phase="end", name=name, section=section, index=index, ok=ok, detail=detail)
        return self

    def fingerprint(self, t: float, phase: str, rows: int = 100, ok: bool = True, lost: Iterable[tuple[str, float]] = (),
                    changed: Iterable[str] = (), error: str | None = None, taken_t: float | None = None) -> "History":
        """The table's fingerprint: `before` (rows, taken at taken_t), or a comparison `after` with
        `lost` (key, created t on the run's clock) and `changed` keys. Epochs are the run's t + 1e9."""
        if not ok:
            self.add("fingerprint", t, phase=phase, ok=False, error=error or "could not be read")
            return self
        if phase == "before":
            at = t if taken_t is None else taken_t
            self.add("fingerprint", t, phase=phase, ok=True, rows=rows, taken_t=at, taken_epoch=at + 1e9)
            return self
        lost, changed = sorted(lost, key=lambda kv: kv[1]), list(changed)
        self.add("fingerprint", t, phase=phase, ok=True, rows_before=rows, rows_now=rows - len(lost),
                 lost=len(lost), lost_sample=[k for k, _ in lost[:20]], lost_created_epoch=[c + 1e9 for _, c in lost],
                 lost_created_complete=True, changed=len(changed), changed_sample=changed[:20])
        return self

    def after_rollbacks(self, t: float, met: bool = True, digests: dict | None = None, read_ok: bool = True,
                        lost: int = 0, changed: int = 0) -> "History":
        """The check once every rollback ran: steady state, the final read's rows read again
        (`digests`: default, the last final read's, unchanged), the table since recovery."""
        if digests is None:
            last = next((e for e in reversed(self.events()) if e["kind"] == "final_read"), None)
            digests = dict(last["digests"]) if last else {}
        self.add("after_rollbacks", t, steady_state={"met": met, "detail": "synthetic"},
                 read={"ok": read_ok, "digests": digests} if read_ok else {"ok": False, "error": "refused"},
                 fingerprint={"ok": True, "lost": lost, "changed": changed, "lost_sample": [], "changed_sample": []})
        return self

    def looked_everywhere(self, fault_t: float, end: float, fault_name: str = "kill-primary") -> "History":
        """What every real run records beside its own story: the fault as a step, the table's
        fingerprint before the fault and after recovery (nothing lost), and the check after the
        rollbacks (all well). Call it after the final read."""
        self.step(fault_t, fault_t + 1.0, fault_name, tags=["fault"])
        self.fingerprint(fault_t - 0.1, "before", taken_t=fault_t - 0.2)
        self.fingerprint(end + 0.6, "after")
        return self.after_rollbacks(end + 3)

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
    h.fingerprint(9.9, "before", rows=100, taken_t=9.8)
    h.step(10.0, 11.0, "kill-primary", tags=["fault"])
    h.fault(10.0, 11.0)
    for i in range(5):
        h.write(f"k{i}", 2 + i)
    h.write("k-late", 20)
    beats = [(f"hb-{i}", float(i)) for i in range(-60, int(end))]  # one a second, long before the run
    h.heartbeats(end + 0.4, beats)
    h.final_read(end + 0.5, [f"k{i}" for i in range(5)] + ["k-late"] + [k for k, _ in beats])
    h.fingerprint(end + 0.6, "after", rows=100)
    h.checks_after_recovery(end + 1)
    h.marker(end, "observe_end")
    h.steady_state(end + 2, True, phase="after")
    h.after_rollbacks(end + 3)
    return h
