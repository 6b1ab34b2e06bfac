"""The run's timeline chart: one picture of the history with the incident on it.

`build_timeline` reduces the history (any length; 200k events take well under a second) to at
most `columns` time bins: per probe the ok/failed sample counts and worst latency, per second the
acknowledged / failed / in-doubt writes; it keeps the fault and recovery windows, markers, stalls
and the acknowledgement time of each lost key the verdict names. `timeline_svg` draws it as
inline SVG with the fault windows shaded and RTO / RPO marked against their objectives.
Both are pure: no I/O.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from harness.report.page import esc, fmt_clock, fmt_s, is_number

MAX_COLUMNS = 600
NICE_BINS_S = (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)
PROBE_COLOURS = ("#0969da", "#8250df", "#bf3989", "#1b7c83", "#953800", "#4d2d00")
OK, ACK, FAIL, INFO = "#2da44e", "#0969da", "#cf222e", "#d4a72c"
FAULT_FILL, RECOVERY_FILL, LOSS_FILL = "#fb8f44", "#54aeff", "#ff8182"
RTO_COLOUR, OBJECTIVE_COLOUR, RPO_COLOUR = "#1a7f37", "#cf222e", "#8250df"


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


def _nice_bin(span_s: float, columns: int, floor_s: float) -> float:
    want = max(span_s / columns, floor_s)
    for b in NICE_BINS_S:
        if b >= want - 1e-9:
            return float(b)
    return float(math.ceil(want / 3600) * 3600)


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


def interesting_keys(verdict: dict) -> set[str]:
    loss = verdict.get("loss") if isinstance(verdict.get("loss"), dict) else {}
    keys: set[str] = set()
    for name in ("lost_keys", "unexpected_keys", "recovered_keys", "duplicate_keys"):
        if isinstance(loss.get(name), list):
            keys.update(str(k) for k in loss[name][:200])
    return keys


def build_timeline(events: list[dict], verdict: dict | None = None, columns: int = MAX_COLUMNS) -> Timeline:
    """Bin a history (sorted by t, as harness.history.read returns it) for drawing."""
    verdict = verdict or {}
    m = verdict.get("measured") if isinstance(verdict.get("measured"), dict) else {}
    o = verdict.get("objectives") if isinstance(verdict.get("objectives"), dict) else {}
    loss = verdict.get("loss") if isinstance(verdict.get("loss"), dict) else {}
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
    wanted = interesting_keys(verdict)
    open_faults: dict[str, Window] = {}
    open_recoveries: dict[str, Window] = {}
    probe_ok, probe_fail, probe_lat = tl.probe_ok, tl.probe_fail, tl.probe_latency

    for e in events:
        kind, t = e["kind"], e["t"]
        if kind == "sample":
            probe = str(e.get("probe"))
            okc = probe_ok.get(probe)
            if okc is None:
                tl.probes.append(probe)
                okc = probe_ok[probe] = [0] * n
                probe_fail[probe] = [0] * n
                probe_lat[probe] = [None] * n
            i = min(int((t - t0) / bin_s), n - 1)
            if e.get("ok"):
                okc[i] += 1
            else:
                probe_fail[probe][i] += 1
            lat = e.get("latency_s")
            # Latency of answers only: a failed sample's latency is its timeout, shown as a failure.
            if e.get("ok") and lat is not None and is_number(lat):
                lats = probe_lat[probe]
                if lats[i] is None or lat > lats[i]:
                    lats[i] = lat
        elif kind == "op":
            typ = e.get("type")
            if e.get("f") == "write" and typ != "invoke":
                i = min(int((t - t0) / write_bin_s), nw - 1)
                if typ == "ok":
                    tl.acks[i] += 1
                elif typ == "fail":
                    tl.fails[i] += 1
                elif typ == "info":
                    tl.infos[i] += 1
            if wanted:
                key = e.get("key")
                if key is not None and str(key) in wanted:
                    tl.key_times.setdefault(str(key), {}).setdefault(str(typ), t)
        elif kind in ("fault", "recovery"):
            opened = open_faults if kind == "fault" else open_recoveries
            closed = tl.faults if kind == "fault" else tl.recoveries
            name = str(e.get("name"))
            if e.get("phase") == "start":
                w = Window(name, t, None, e.get("ok"), str(e.get("detail") or ""))
                opened[name] = w
                closed.append(w)
            elif name in opened:
                w = opened.pop(name)
                w.end = t
                if e.get("ok") is not None:
                    w.ok = e.get("ok")
        elif kind == "marker":
            extra = {k: v for k, v in e.items() if k not in ("kind", "t", "wall", "name")}
            label = str(e.get("name")) + (": " + ", ".join(f"{k}={v}" for k, v in extra.items()) if extra else "")
            tl.events.append((t, "marker", label))
        elif kind == "stall":
            tl.events.append((t, "stall", f"{e.get('recorder')} stalled {fmt_s(e.get('gap_s'))}"))
        elif kind == "detection":
            tl.events.append((t, "detection", f"alert {e.get('alert')} fired={e.get('fired')}"))

    # The verdict's figures, for the markers.
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
    tl.loss_window = _loss_window(loss, tl.fault_start_t)
    lost_keys = loss.get("lost_keys") if isinstance(loss.get("lost_keys"), list) else []
    for key in lost_keys:
        t = tl.key_times.get(str(key), {}).get("ok")
        if t is not None:
            tl.lost_acks.append((str(key), t))
    tl.lost_acks.sort(key=lambda kt: kt[1])
    lw = m.get("lost_writes")
    tl.lost_total = int(lw) if is_number(lw) else (len(lost_keys) if lost_keys else None)
    return tl


# ---------------------------------------------------------------------------------------------
# Drawing

W, ML, MR = 1200, 168, 28
PW = W - ML - MR
HOLD_S = 2.5  # a gap in samples longer than this shows as a gap (the recorder stalled)
TIME_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)


def _nice_ceil(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for f in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if f * exp >= v - 1e-12:
            return f * exp
    return 10 * exp


def _fmt_num(v: float) -> str:
    return f"{v:g}" if v >= 1 or v == 0 else f"{v:.2g}"


def _text(x: float, y: float, s: str, anchor: str = "start", cls: str = "", fill: str = "", size: float = 0,
          weight: str = "") -> str:
    attrs = f' x="{x:.1f}" y="{y:.1f}"'
    if anchor != "start":
        attrs += f' text-anchor="{anchor}"'
    if cls:
        attrs += f' class="{cls}"'
    if fill:
        attrs += f' fill="{fill}"'
    if size:
        attrs += f' font-size="{size}"'
    if weight:
        attrs += f' font-weight="{weight}"'
    return f"<text{attrs}>{esc(s)}</text>"


class _Labels:
    """Keeps labels on a row from overlapping: a label that does not fit is left to the legend
    and the shape's tooltip."""

    def __init__(self):
        self.taken: list[tuple[float, float]] = []

    def fits(self, x0: float, x1: float) -> bool:
        if x0 < 0 or x1 > W:
            return False
        if any(x0 < b + 6 and a < x1 + 6 for a, b in self.taken):
            return False
        self.taken.append((x0, x1))
        return True


def _text_width(s: str, size: float = 11) -> float:
    return len(s) * size * 0.58


def timeline_svg(tl: Timeline) -> str:
    """The chart as an <svg> element (scales to its container's width)."""
    span = tl.t1 - tl.t0

    def x(t: float) -> float:
        return ML + (min(max(t, tl.t0), tl.t1) - tl.t0) / span * PW

    parts: list[str] = []
    y = 0.0
    top_band = 66.0
    y = top_band
    probe_h, probe_gap = 16.0, 5.0
    probes_top = y
    y += max(1, len(tl.probes)) * (probe_h + probe_gap) + 10
    lat_top, lat_h = y, 96.0
    y += lat_h + 24
    wr_top, wr_h = y, 96.0
    y += wr_h + 14
    ev_top, ev_h = y, 14.0
    y += ev_h + 6
    axis_y = y
    height = axis_y + 34
    lanes_top, lanes_bottom = probes_top - 4, ev_top + ev_h

    parts.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {W} {height:.0f}" '
        f'width="{W}" height="{height:.0f}" role="img" aria-label="Run timeline" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif" '
        'font-size="11" fill="#1f2328">')
    parts.append("<defs>" + "".join(
        f'<marker id="tl-arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        for name, colour in (("rto", RTO_COLOUR), ("fail", FAIL), ("rpo", RPO_COLOUR))) + "</defs>")
    parts.append("<style>.halo{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}</style>")
    parts.append(f'<rect x="0" y="0" width="{W}" height="{height:.0f}" fill="#ffffff"/>')

    # --- shaded windows, under everything ------------------------------------------------------
    # Two label rows above the lanes (y 14 and 29); the RTO objective's label claims its place
    # first, then fault and recovery names take the first row where they fit.
    rows = (_Labels(), _Labels())
    objective_label = None
    if tl.fault_start_t is not None and tl.rto_objective_s is not None:
        t_obj = tl.fault_start_t + tl.rto_objective_s
        if t_obj <= tl.t1:
            label = f"RTO objective {fmt_s(tl.rto_objective_s)}"
            xo = x(t_obj)
            x0 = xo - 4 - _text_width(label)
            if x0 < ML:
                objective_label = (xo + 4, "start", label, x(t_obj))
                rows[1].fits(xo + 4, xo + 4 + _text_width(label))
            else:
                objective_label = (xo - 4, "end", label, xo)
                rows[1].fits(x0, xo - 4)
        else:
            label = f"RTO objective {fmt_s(tl.rto_objective_s)} → at {fmt_clock(t_obj)}, beyond the chart"
            objective_label = (ML + PW, "end", label, None)
            rows[1].fits(ML + PW - _text_width(label), ML + PW)

    def place(x0: float, label: str, colour: str) -> None:
        for row, yl in zip(rows, (14, 29)):
            if row.fits(x0, x0 + _text_width(label)):
                parts.append(_text(x0, yl, label, fill=colour, weight="600"))
                return
    for w in tl.faults:
        x0, x1 = x(w.start), x(w.end if w.end is not None else tl.t1)
        end = fmt_clock(w.end) if w.end is not None else "still open"
        tip = f"fault {w.name}: {fmt_clock(w.start)} – {end}" + (f" ({w.detail})" if w.detail else "")
        if w.ok is False:
            tip += " — the fault action itself failed"
        parts.append(f'<rect class="fault-window" x="{x0:.1f}" y="{lanes_top:.1f}" width="{max(x1 - x0, 1.5):.1f}" '
                     f'height="{lanes_bottom - lanes_top:.1f}" fill="{FAULT_FILL}" fill-opacity="0.22">'
                     f"<title>{esc(tip)}</title></rect>")
        label = f"fault: {w.name}"
        place(x0 + 3, label, "#953800")
    for w in tl.recoveries:
        x0, x1 = x(w.start), x(w.end if w.end is not None else tl.t1)
        end = fmt_clock(w.end) if w.end is not None else "still open"
        tip = f"recovery {w.name}: {fmt_clock(w.start)} – {end}"
        if w.ok is False:
            tip += " — the recovery action failed"
        parts.append(f'<rect class="recovery-window" x="{x0:.1f}" y="{lanes_top:.1f}" width="{max(x1 - x0, 1.5):.1f}" '
                     f'height="{lanes_bottom - lanes_top:.1f}" fill="{RECOVERY_FILL}" fill-opacity="0.18">'
                     f"<title>{esc(tip)}</title></rect>")
        label = f"recovery: {w.name}"
        place(x0 + 3, label, "#0550ae")
    if tl.loss_window:
        a, b = tl.loss_window
        x0, x1 = x(a), x(b)
        parts.append(f'<rect class="loss-window" x="{x0:.1f}" y="{wr_top:.1f}" width="{max(x1 - x0, 2):.1f}" '
                     f'height="{wr_h:.1f}" fill="{LOSS_FILL}" fill-opacity="0.28"><title>'
                     f'{esc(f"loss window: lost acknowledged writes from {fmt_clock(a)} to {fmt_clock(b)}")}'
                     "</title></rect>")

    # --- time grid and axis ----------------------------------------------------------------------
    step = next((s for s in TIME_STEPS_S if span / s <= 12), TIME_STEPS_S[-1])
    tick = math.ceil(tl.t0 / step) * step
    grid, labels = [], []
    while tick <= tl.t1 + 1e-9:
        xt = x(tick)
        grid.append(f"M{xt:.1f},{lanes_top:.1f}V{axis_y:.1f}")
        labels.append(_text(xt, axis_y + 14, fmt_clock(tick), anchor="middle", fill="#59636e"))
        tick += step
    parts.append(f'<path d="{"".join(grid)}" stroke="#d1d9e0" stroke-width="1" stroke-dasharray="2,3" fill="none"/>')
    parts.append(f'<path d="M{ML},{axis_y:.1f}H{ML + PW}" stroke="#59636e" stroke-width="1"/>')
    parts.extend(labels)
    parts.append(_text(ML + PW, axis_y + 30, "time since run start (m:ss)", anchor="end", fill="#59636e"))

    # --- probe lanes -----------------------------------------------------------------------------
    bw = tl.bin_s / span * PW
    hold = max(1, int(math.ceil(HOLD_S / tl.bin_s)))  # empty columns a sample's outcome covers
    if not tl.probes:
        parts.append(_text(ML + 6, probes_top + 12, "no health samples recorded", fill="#59636e"))
    for pi, probe in enumerate(tl.probes):
        py = probes_top + pi * (probe_h + probe_gap)
        parts.append(_text(ML - 8, py + 12, _short(probe, 24), anchor="end"))
        parts.append(f'<rect x="{ML}" y="{py:.1f}" width="{PW}" height="{probe_h}" fill="#f6f8fa"/>')
        okc, failc = tl.probe_ok[probe], tl.probe_fail[probe]
        paths: dict[str, list[str]] = {}
        run_state, run_start, last_state, empty = None, 0, None, 0
        for i in range(len(okc) + 1):
            state = None
            if i < len(okc):
                total = okc[i] + failc[i]
                if total:
                    frac = failc[i] / total
                    state = "ok" if frac == 0 else ("f1" if frac < 0.34 else "f2" if frac < 0.67 else "f3")
                    last_state, empty = state, 0
                else:  # columns narrower than the sampling interval: hold the last outcome a while
                    empty += 1
                    state = last_state if empty <= hold else None
            if state != run_state:
                if run_state is not None:
                    x0 = ML + run_start * bw
                    x1 = min(ML + i * bw, ML + PW)
                    paths.setdefault(run_state, []).append(f"M{x0:.1f},{py:.1f}H{x1:.1f}v{probe_h}H{x0:.1f}z")
                run_state, run_start = state, i
        fills = {"ok": (OK, 0.85), "f1": (FAIL, 0.45), "f2": (FAIL, 0.7), "f3": (FAIL, 1.0)}
        for state, segs in paths.items():
            colour, opacity = fills[state]
            cls = "samples-ok" if state == "ok" else "samples-fail"
            parts.append(f'<path class="{cls}" d="{"".join(segs)}" fill="{colour}" fill-opacity="{opacity}">'
                         f"<title>{esc(probe)}: {'all samples ok' if state == 'ok' else 'failed samples'}</title></path>")

    # --- latency lane ------------------------------------------------------------------------------
    lat_max = max((v for lats in tl.probe_latency.values() for v in lats if v is not None), default=0.0)
    ymax = _nice_ceil(lat_max) if lat_max > 0 else 1.0
    parts.append(_text(8, lat_top + 12, "latency", weight="600"))
    parts.append(_text(8, lat_top + 26, "(ok samples, worst", fill="#59636e", size=10))
    parts.append(_text(8, lat_top + 38, "per column)", fill="#59636e", size=10))
    parts.append(_lane_axis(lat_top, lat_h, ymax, lambda v: fmt_s(v) if v else "0"))
    for pi, probe in enumerate(tl.probes):
        colour = PROBE_COLOURS[pi % len(PROBE_COLOURS)]
        d, pen, empty = [], False, 0
        for i, v in enumerate(tl.probe_latency[probe]):
            if v is None:
                empty += 1
                pen = pen and empty <= hold
                continue
            empty = 0
            xp = ML + (i + 0.5) * bw
            yp = lat_top + lat_h - min(v / ymax, 1.0) * lat_h
            d.append(f"{'L' if pen else 'M'}{xp:.1f},{yp:.1f}")
            pen = True
        if d:
            parts.append(f'<path class="latency" d="{"".join(d)}" fill="none" stroke="{colour}" stroke-width="1.4" '
                         f'stroke-linejoin="round"><title>{esc(probe)} latency</title></path>')

    # --- writes lane --------------------------------------------------------------------------------
    wbw = tl.write_bin_s / span * PW
    per_s = [(a + f + i) / tl.write_bin_s for a, f, i in zip(tl.acks, tl.fails, tl.infos)]
    wmax = _nice_ceil(max(per_s, default=0.0)) if any(per_s) else 1.0
    parts.append(_text(8, wr_top + 12, "writes / s", weight="600"))
    parts.append(_text(8, wr_top + 26, f"({_fmt_num(tl.write_bin_s)} s bins)", fill="#59636e",
                       size=10))
    parts.append(_lane_axis(wr_top, wr_h, wmax, _fmt_num))
    base = [0.0] * len(tl.acks)
    for series, colour, cls in ((tl.acks, ACK, "writes-ok"), (tl.fails, FAIL, "writes-fail"),
                                (tl.infos, INFO, "writes-info")):
        d = []
        for i, c in enumerate(series):
            if not c:
                continue
            h = c / tl.write_bin_s / wmax * wr_h
            yb = wr_top + wr_h - base[i]
            x0 = ML + i * wbw
            d.append(f"M{x0:.1f},{yb - h:.2f}h{max(wbw - 0.3, 0.6):.2f}v{h:.2f}h{-max(wbw - 0.3, 0.6):.2f}z")
            base[i] += h
        if d:
            parts.append(f'<path class="{cls}" d="{"".join(d)}" fill="{colour}" fill-opacity="0.85"/>')
    for key, t in tl.lost_acks:
        xl = x(t)
        parts.append(f'<g class="lost-write"><path d="M{xl:.1f},{wr_top + 7:.1f}V{wr_top + wr_h:.1f}" stroke="{FAIL}" '
                     f'stroke-width="1" stroke-opacity="0.6"/><path d="M{xl - 4:.1f},{wr_top - 1:.1f}h8l-4,7z" '
                     f'fill="{FAIL}"/><title>{esc(f"lost write {key}, acknowledged at {fmt_clock(t)}")}</title></g>')

    # --- RPO ---------------------------------------------------------------------------------------
    if tl.fault_start_t is not None and tl.rpo_s is not None and tl.rpo_s > 0:
        xa, xb = x(tl.fault_start_t - tl.rpo_s), x(tl.fault_start_t)
        yb = wr_top + 14
        parts.append(f'<g class="rpo-marker"><path d="M{xa:.1f},{yb:.1f}H{xb:.1f}" stroke="{RPO_COLOUR}" stroke-width="2" '
                     'marker-start="url(#tl-arrow-rpo)" marker-end="url(#tl-arrow-rpo)"/>'
                     + _text(xa - 4, yb + 4, f"RPO {fmt_s(tl.rpo_s)}", anchor="end", cls="halo", fill=RPO_COLOUR, weight="700")
                     + "</g>")
    if tl.fault_start_t is not None and tl.rpo_objective_s is not None and (tl.rpo_s or 0) > 0:
        t_obj = tl.fault_start_t - tl.rpo_objective_s
        if t_obj >= tl.t0:
            xo = x(t_obj)
            parts.append(f'<g class="rpo-objective"><path d="M{xo:.1f},{wr_top:.1f}V{wr_top + wr_h:.1f}" '
                         f'stroke="{RPO_COLOUR}" stroke-width="1.5" stroke-dasharray="5,4"/>'
                         + _text(xo + 3, wr_top + wr_h - 4, f"RPO objective {fmt_s(tl.rpo_objective_s)}",
                                 cls="halo", fill=RPO_COLOUR) + "</g>")

    # --- events row: markers, stalls, detections -------------------------------------------------------
    parts.append(_text(ML - 8, ev_top + 11, "events", anchor="end", fill="#59636e"))
    shown = tl.events if len(tl.events) <= 400 else tl.events[:: math.ceil(len(tl.events) / 400)]
    colours = {"marker": "#57606a", "stall": "#bc4c00", "detection": "#0550ae"}
    for t, kind, label in shown:
        xe = x(t)
        parts.append(f'<path class="event-{kind}" d="M{xe:.1f},{ev_top + 1:.1f}l4,6l-4,6l-4,-6z" fill="{colours[kind]}">'
                     f"<title>{esc(fmt_clock(t) + ' ' + label)}</title></path>")
    if tl.detection_t is not None:
        xd = x(tl.detection_t)
        parts.append(f'<g class="detection-marker"><path d="M{xd:.1f},{lanes_top:.1f}V{ev_top + ev_h:.1f}" '
                     'stroke="#0550ae" stroke-width="1" stroke-dasharray="1,2"/>'
                     f"<title>{esc(f'alert fired {fmt_s(tl.detection_t - (tl.fault_start_t or 0))} after fault start')}"
                     "</title></g>")

    # --- RTO and its objective, on top ---------------------------------------------------------------
    if tl.fault_start_t is not None:
        xs = x(tl.fault_start_t)
        yb = 50.0
        if tl.recovered_at_t is not None:
            xr = x(tl.recovered_at_t)
            label = f"RTO {fmt_s(tl.rto_s if tl.rto_s is not None else tl.recovered_at_t - tl.fault_start_t)}"
            parts.append(
                f'<g class="rto-marker"><path d="M{xr:.1f},{yb:.1f}V{lanes_bottom:.1f}" stroke="{RTO_COLOUR}" '
                'stroke-width="2"/>'
                f'<path d="M{xs:.1f},{yb:.1f}H{max(xr, xs + 1):.1f}" stroke="{RTO_COLOUR}" stroke-width="2" '
                'marker-start="url(#tl-arrow-rto)" marker-end="url(#tl-arrow-rto)"/>'
                f'<path d="M{xs:.1f},{yb - 6:.1f}v12" stroke="{RTO_COLOUR}" stroke-width="2"/>'
                + _text(min(xr + 5, W - MR - _text_width(label)), yb - 5, label, cls="halo", fill=RTO_COLOUR, weight="700", size=12)
                + f"<title>{esc(f'recovered (stable) at {fmt_clock(tl.recovered_at_t)}')}</title></g>")
        else:
            xe = ML + PW
            parts.append(
                f'<g class="rto-marker rto-unrecovered"><path d="M{xs:.1f},{yb:.1f}H{xe:.1f}" stroke="{FAIL}" '
                'stroke-width="2" stroke-dasharray="6,3" marker-end="url(#tl-arrow-fail)"/>'
                f'<path d="M{xs:.1f},{yb - 6:.1f}v12" stroke="{FAIL}" stroke-width="2"/>'
                + _text(xe, yb - 5, "not recovered: RTO unbounded", anchor="end", cls="halo", fill=FAIL, weight="700",
                        size=12)
                + "</g>")
        if objective_label is not None:
            xl, anchor, label, xo = objective_label
            if xo is not None:
                parts.append(
                    f'<g class="rto-objective"><path d="M{xo:.1f},{22:.1f}V{lanes_bottom:.1f}" stroke="{OBJECTIVE_COLOUR}" '
                    'stroke-width="1.5" stroke-dasharray="6,4"/>'
                    + _text(xl, 29, label, anchor=anchor, cls="halo", fill=OBJECTIVE_COLOUR, weight="600") + "</g>")
            else:
                parts.append('<g class="rto-objective rto-objective-beyond">'
                             + _text(xl, 29, label, anchor=anchor, fill=OBJECTIVE_COLOUR, weight="600") + "</g>")
    parts.append("</svg>")
    return "".join(parts)


def _lane_axis(top: float, h: float, ymax: float, fmt) -> str:
    out = [f'<rect x="{ML}" y="{top:.1f}" width="{PW}" height="{h:.1f}" fill="none" stroke="#d1d9e0"/>']
    for frac in (0.5, 1.0):
        yv = top + h - frac * h
        out.append(f'<path d="M{ML},{yv:.1f}H{ML + PW}" stroke="#eaeef2"/>')
        out.append(_text(ML - 6, yv + 4 if frac < 1 else yv + 10, fmt(ymax * frac), anchor="end", fill="#59636e",
                         size=10))
    out.append(_text(ML - 6, top + h, "0", anchor="end", fill="#59636e", size=10))
    return "".join(out)


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def legend_items(tl: Timeline) -> Iterable[tuple[str, str, str]]:
    """(colour, style, text) for the HTML legend under the chart."""
    yield OK, "fill", "samples ok"
    yield FAIL, "fill", "samples failed (darker: larger share)"
    for pi, probe in enumerate(tl.probes):
        yield PROBE_COLOURS[pi % len(PROBE_COLOURS)], "line", f"{probe} latency"
    yield ACK, "fill", "writes acknowledged"
    yield FAIL, "fill", "writes failed"
    yield INFO, "fill", "writes in doubt (info)"
    if tl.lost_acks:
        yield FAIL, "mark", "lost write, at its acknowledgement"
    yield FAULT_FILL, "fill", "fault window"
    if tl.recoveries:
        yield RECOVERY_FILL, "fill", "recovery action"
    if tl.loss_window:
        yield LOSS_FILL, "fill", "loss window"
    yield RTO_COLOUR, "line", "RTO (fault start → stable again)"
    yield OBJECTIVE_COLOUR, "dash", "RTO objective"
    if tl.rpo_s:
        yield RPO_COLOUR, "line", "RPO"
