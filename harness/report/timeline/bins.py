"""The history reduced for drawing: at most `columns` time bins, whatever its length.

Per probe the ok / failed sample counts and worst latency; per second the acknowledged / failed /
in-doubt writes; the fault and recovery windows, markers, stalls and detections; the
acknowledgement time of each lost key the verdict names; and the verdict's figures to mark.
Pure: no I/O. 200k events take well under a second.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.report.page import fmt_s, is_number

__all__ = ["MAX_COLUMNS", "Window", "Timeline", "build_timeline", "interesting_keys"]

MAX_COLUMNS = 600
NICE_BINS_S = (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)
KEY_LISTS = ("lost_keys", "unexpected_keys", "recovered_keys", "duplicate_keys")


@dataclass
class Window:
    name: str
    start: float
    end: float | None  # None: still open when the history ends
    ok: bool | None = None
    detail: str = ""


@dataclass
class Timeline:
    t0: float
    t1: float
    bin_s: float
    write_bin_s: float
    probes: list[str] = field(default_factory=list)
    probe_ok: dict[str, list[int]] = field(default_factory=dict)
    probe_fail: dict[str, list[int]] = field(default_factory=dict)
    probe_latency: dict[str, list[float | None]] = field(default_factory=dict)
    acks: list[int] = field(default_factory=list)
    fails: list[int] = field(default_factory=list)
    infos: list[int] = field(default_factory=list)
    faults: list[Window] = field(default_factory=list)
    recoveries: list[Window] = field(default_factory=list)
    events: list[tuple[float, str, str]] = field(default_factory=list)  # (t, kind, label)
    lost_acks: list[tuple[str, float]] = field(default_factory=list)  # (key, ack t)
    key_times: dict[str, dict[str, float]] = field(default_factory=dict)  # key -> {op type: first t}
    event_count: int = 0
    # From the verdict, to mark on the chart.
    fault_start_t: float | None = None
    recovered_at_t: float | None = None
    recovered: bool = True
    rto_s: float | None = None
    rto_objective_s: float | None = None
    rpo_s: float | None = None
    rpo_objective_s: float | None = None
    detection_t: float | None = None
    loss_window: tuple[float, float] | None = None
    lost_total: int | None = None


def build_timeline(events: list[dict], verdict: dict | None = None, columns: int = MAX_COLUMNS) -> Timeline:
    """Bin a history (sorted by t, as harness.records.history.read returns it) for drawing."""
    verdict = verdict or {}
    m, o, loss = (_section(verdict, name) for name in ("measured", "objectives", "loss"))
    tl, sample_bins = _empty_timeline(events, m, columns)
    _Binner(tl, sample_bins, interesting_keys(verdict)).add_all(events)
    _mark_incident(tl, m, o)
    _mark_loss(tl, m, loss)
    return tl


def interesting_keys(verdict: dict) -> set[str]:
    """The keys the verdict names (lost, unexpected, recovered, duplicated): their times are kept."""
    loss = _section(verdict, "loss")
    keys: set[str] = set()
    for name in KEY_LISTS:
        if isinstance(loss.get(name), list):
            keys.update(str(k) for k in loss[name][:200])
    return keys


# Internals ------------------------------------------------------------------------------------

def _section(verdict: dict, name: str) -> dict:
    return verdict.get(name) if isinstance(verdict.get(name), dict) else {}


def _nice_bin(span_s: float, columns: int, floor_s: float) -> float:
    want = max(span_s / columns, floor_s)
    for b in NICE_BINS_S:
        if b >= want - 1e-9:
            return float(b)
    return float(math.ceil(want / 3600) * 3600)


def _empty_timeline(events: list[dict], m: dict, columns: int) -> tuple[Timeline, int]:
    """The time axis (the history's span, widened to the verdict's instants) cut into sample
    columns and whole-second write bins; returns the timeline and its number of sample columns."""
    columns = max(10, min(int(columns), MAX_COLUMNS))
    ts = [e["t"] for e in (events[0], events[-1])] if events else [0.0, 0.0]
    extra = [m.get(k) for k in ("fault_start_t", "fault_end_t", "recovered_at_t") if is_number(m.get(k))]
    t0 = min([0.0, ts[0]] + extra)
    t1 = max([ts[1]] + extra)
    if t1 - t0 < 1.0:
        t1 = t0 + 1.0
    span = t1 - t0
    bin_s = _nice_bin(span, columns, 0.1)
    write_bin_s = _nice_bin(span, columns, 1.0)  # writes per second need whole seconds
    n = int(math.ceil(span / bin_s)) or 1
    nw = int(math.ceil(span / write_bin_s)) or 1
    t1 = t0 + max(n * bin_s, nw * write_bin_s)
    tl = Timeline(t0=t0, t1=t1, bin_s=bin_s, write_bin_s=write_bin_s, event_count=len(events))
    tl.acks, tl.fails, tl.infos = [0] * nw, [0] * nw, [0] * nw
    return tl, n


class _Binner:
    """Adds a history's events to a timeline's bins, one handler per kind; other kinds are not drawn."""

    def __init__(self, tl: Timeline, sample_bins: int, wanted: set[str]):
        self.tl, self.n, self.wanted = tl, sample_bins, wanted
        self.open: dict[str, dict[str, Window]] = {"fault": {}, "recovery": {}}
        self.handlers = {"sample": self.sample, "op": self.op, "fault": self.window, "recovery": self.window,
                         "marker": self.marker, "stall": self.stall, "detection": self.detection}

    def add_all(self, events: list[dict]) -> None:
        handlers = self.handlers
        for e in events:
            add = handlers.get(e["kind"])
            if add is not None:
                add(e)

    def sample(self, e: dict) -> None:
        tl, probe = self.tl, str(e.get("probe"))
        okc = tl.probe_ok.get(probe)
        if okc is None:
            tl.probes.append(probe)
            okc = tl.probe_ok[probe] = [0] * self.n
            tl.probe_fail[probe] = [0] * self.n
            tl.probe_latency[probe] = [None] * self.n
        i = min(int((e["t"] - tl.t0) / tl.bin_s), self.n - 1)
        if e.get("ok"):
            okc[i] += 1
        else:
            tl.probe_fail[probe][i] += 1
        lat = e.get("latency_s")
        # Latency of answers only: a failed sample's latency is its timeout, shown as a failure.
        if e.get("ok") and lat is not None and is_number(lat):
            lats = tl.probe_latency[probe]
            if lats[i] is None or lat > lats[i]:
                lats[i] = lat

    def op(self, e: dict) -> None:
        tl, typ, t = self.tl, e.get("type"), e["t"]
        if e.get("f") == "write" and typ != "invoke":
            i = min(int((t - tl.t0) / tl.write_bin_s), len(tl.acks) - 1)
            if typ == "ok":
                tl.acks[i] += 1
            elif typ == "fail":
                tl.fails[i] += 1
            elif typ == "info":
                tl.infos[i] += 1
        if self.wanted:
            key = e.get("key")
            if key is not None and str(key) in self.wanted:
                tl.key_times.setdefault(str(key), {}).setdefault(str(typ), t)

    def window(self, e: dict) -> None:
        kind, t, name = e["kind"], e["t"], str(e.get("name"))
        opened = self.open[kind]
        if e.get("phase") == "start":
            w = Window(name, t, None, e.get("ok"), str(e.get("detail") or ""))
            opened[name] = w
            (self.tl.faults if kind == "fault" else self.tl.recoveries).append(w)
        elif name in opened:
            w = opened.pop(name)
            w.end = t
            if e.get("ok") is not None:
                w.ok = e.get("ok")

    def marker(self, e: dict) -> None:
        extra = {k: v for k, v in e.items() if k not in ("kind", "t", "wall", "name")}
        label = str(e.get("name")) + (": " + ", ".join(f"{k}={v}" for k, v in extra.items()) if extra else "")
        self.tl.events.append((e["t"], "marker", label))

    def stall(self, e: dict) -> None:
        self.tl.events.append((e["t"], "stall", f"{e.get('recorder')} stalled {fmt_s(e.get('gap_s'))}"))

    def detection(self, e: dict) -> None:
        self.tl.events.append((e["t"], "detection", f"alert {e.get('alert')} fired={e.get('fired')}"))


def _mark_incident(tl: Timeline, m: dict, o: dict) -> None:
    """The verdict's fault start, recovery, RTO / RPO and objectives, and the alert, for the markers."""
    fs = m.get("fault_start_t")
    if not is_number(fs) and tl.faults:
        fs = tl.faults[0].start
    tl.fault_start_t = fs if is_number(fs) else None
    if not tl.faults and tl.fault_start_t is not None:
        fe = m.get("fault_end_t")
        tl.faults.append(Window("fault", tl.fault_start_t, fe if is_number(fe) else None))
    rto = m.get("rto_s")
    tl.rto_s = float(rto) if is_number(rto) else None
    rec = m.get("recovered_at_t")
    if is_number(rec):
        tl.recovered_at_t = float(rec)
    elif tl.rto_s is not None and tl.fault_start_t is not None:
        tl.recovered_at_t = tl.fault_start_t + tl.rto_s
    tl.recovered = tl.recovered_at_t is not None
    tl.rto_objective_s = float(o["rto_s"]) if is_number(o.get("rto_s")) else None
    tl.rpo_s = float(m["rpo_s"]) if is_number(m.get("rpo_s")) else None
    tl.rpo_objective_s = float(o["rpo_s"]) if is_number(o.get("rpo_s")) else None
    det = m.get("detection_latency_s")
    if is_number(det) and tl.fault_start_t is not None:
        tl.detection_t = tl.fault_start_t + det


def _mark_loss(tl: Timeline, m: dict, loss: dict) -> None:
    """The loss window, and each lost key the verdict names at its acknowledgement."""
    tl.loss_window = _loss_window(loss, tl.fault_start_t)
    lost_keys = loss.get("lost_keys") if isinstance(loss.get("lost_keys"), list) else []
    for key in lost_keys:
        t = tl.key_times.get(str(key), {}).get("ok")
        if t is not None:
            tl.lost_acks.append((str(key), t))
    tl.lost_acks.sort(key=lambda kt: kt[1])
    lw = m.get("lost_writes")
    tl.lost_total = int(lw) if is_number(lw) else (len(lost_keys) if lost_keys else None)


def _loss_window(loss: dict, fault_start_t: float | None) -> tuple[float, float] | None:
    """[earliest, latest] acknowledgement time (run time) of the lost writes. The loss checker
    gives {earliest_ack_t, latest_ack_t} in run time and {earliest_t, latest_t} relative to the
    fault start; a plain [a, b] is taken as run time."""
    w = loss.get("loss_window")
    if isinstance(w, (list, tuple)) and len(w) == 2 and all(is_number(x) for x in w):
        return float(w[0]), float(w[1])
    if isinstance(w, dict):
        if is_number(w.get("earliest_ack_t")) and is_number(w.get("latest_ack_t")):
            return float(w["earliest_ack_t"]), float(w["latest_ack_t"])
        if is_number(w.get("earliest_t")) and is_number(w.get("latest_t")) and fault_start_t is not None:
            return fault_start_t + float(w["earliest_t"]), fault_start_t + float(w["latest_t"])
    return None
