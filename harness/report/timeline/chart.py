"""The timeline drawn as inline SVG, top to bottom: fault / recovery names and the RTO bar above
the lanes; one lane of health samples per probe; latency; writes per second with lost writes at
their acknowledgement, the loss window and RPO; the events row; the time axis. Fault and
recovery windows are shaded under everything. Each part is one function of the timeline and the
layout, returning its SVG elements in drawing order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from harness.report.page import esc, fmt_clock, fmt_s
from harness.report.timeline.bins import Timeline, Window
from harness.report.timeline.svg import ML, MR, PW, W, Labels, fmt_num, lane_axis, nice_ceil, short, text, text_width

__all__ = ["timeline_svg", "legend_items"]

PROBE_COLOURS = ("#0969da", "#8250df", "#bf3989", "#1b7c83", "#953800", "#4d2d00")
OK, ACK, FAIL, INFO = "#2da44e", "#0969da", "#cf222e", "#d4a72c"
FAULT_FILL, RECOVERY_FILL, LOSS_FILL = "#fb8f44", "#54aeff", "#ff8182"
RTO_COLOUR, OBJECTIVE_COLOUR, RPO_COLOUR = "#1a7f37", "#cf222e", "#8250df"
MUTED = "#59636e"
FONTS = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif"

HOLD_S = 2.5  # a gap in samples longer than this shows as a gap (the recorder stalled)
TIME_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)
TOP_BAND = 66.0  # two label rows and the RTO bar
PROBE_H, PROBE_GAP = 16.0, 5.0
LANE_H = 96.0  # latency and writes
EVENTS_H = 14.0
LABEL_ROWS_Y = (14, 29)
RTO_BAR_Y = 50.0
EVENTS_SHOWN = 400
SAMPLE_FILLS = {"ok": (OK, 0.85), "f1": (FAIL, 0.45), "f2": (FAIL, 0.7), "f3": (FAIL, 1.0)}
EVENT_COLOURS = {"marker": "#57606a", "stall": "#bc4c00", "detection": "#0550ae"}


@dataclass(frozen=True)
class Layout:
    """Where each lane sits, and how run time maps to x."""
    t0: float
    t1: float
    span: float
    probes_top: float
    lat_top: float
    wr_top: float
    ev_top: float
    axis_y: float
    height: float
    bw: float  # width of one sample column
    hold: int  # empty columns a sample's outcome covers

    @property
    def lanes_top(self) -> float:
        return self.probes_top - 4

    @property
    def lanes_bottom(self) -> float:
        return self.ev_top + EVENTS_H

    def x(self, t: float) -> float:
        return ML + (min(max(t, self.t0), self.t1) - self.t0) / self.span * PW


def timeline_svg(tl: Timeline) -> str:
    """The chart as an <svg> element (scales to its container's width)."""
    lay = layout(tl)
    rows = (Labels(), Labels())  # the two label rows above the lanes
    objective = _rto_objective_label(tl, lay, rows[1])  # claims its place before window names
    parts = [
        *_frame(lay),
        *_windows(tl, lay, rows),
        *_loss_window(tl, lay),
        *_time_axis(tl, lay),
        *_probe_lanes(tl, lay),
        *_latency_lane(tl, lay),
        *_writes_lane(tl, lay),
        *_lost_writes(tl, lay),
        *_rpo_marks(tl, lay),
        *_events_row(tl, lay),
        *_detection_mark(tl, lay),
        *_rto_marks(tl, lay),
        *_rto_objective(objective, lay),
        "</svg>",
    ]
    return "".join(parts)


def legend_items(tl: Timeline) -> Iterable[tuple[str, str, str]]:
    """(colour, style, text) for the HTML legend under the chart; style: fill, line, dash or mark."""
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


def layout(tl: Timeline) -> Layout:
    """Lanes stacked under the top band: probes, latency, writes, events, then the time axis."""
    span = tl.t1 - tl.t0
    probes_top = TOP_BAND
    lat_top = probes_top + max(1, len(tl.probes)) * (PROBE_H + PROBE_GAP) + 10
    wr_top = lat_top + LANE_H + 24
    ev_top = wr_top + LANE_H + 14
    axis_y = ev_top + EVENTS_H + 6
    return Layout(t0=tl.t0, t1=tl.t1, span=span, probes_top=probes_top, lat_top=lat_top, wr_top=wr_top,
                  ev_top=ev_top, axis_y=axis_y, height=axis_y + 34, bw=tl.bin_s / span * PW,
                  hold=max(1, int(math.ceil(HOLD_S / tl.bin_s))))


# Parts, in drawing order ------------------------------------------------------------------------

def _frame(lay: Layout) -> list[str]:
    """The <svg> element's opening: size, arrowheads, the label halo style, a white ground."""
    arrows = "".join(
        f'<marker id="tl-arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>'
        for name, colour in (("rto", RTO_COLOUR), ("fail", FAIL), ("rpo", RPO_COLOUR)))
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" viewBox="0 0 {W} {lay.height:.0f}" '
        f'width="{W}" height="{lay.height:.0f}" role="img" aria-label="Run timeline" '
        f'font-family="{FONTS}" font-size="11" fill="#1f2328">',
        f"<defs>{arrows}</defs>",
        "<style>.halo{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}</style>",
        f'<rect x="0" y="0" width="{W}" height="{lay.height:.0f}" fill="#ffffff"/>',
    ]


def _rto_objective_label(tl: Timeline, lay: Layout, row: Labels) -> tuple[float, str, str, float | None] | None:
    """Where the RTO objective's label goes on the second label row: (x, anchor, text, x of the
    objective line, or None when the objective lies beyond the chart)."""
    if tl.fault_start_t is None or tl.rto_objective_s is None:
        return None
    t_obj = tl.fault_start_t + tl.rto_objective_s
    if t_obj > tl.t1:
        label = f"RTO objective {fmt_s(tl.rto_objective_s)} → at {fmt_clock(t_obj)}, beyond the chart"
        row.fits(ML + PW - text_width(label), ML + PW)
        return ML + PW, "end", label, None
    label = f"RTO objective {fmt_s(tl.rto_objective_s)}"
    xo = lay.x(t_obj)
    x0 = xo - 4 - text_width(label)
    if x0 < ML:  # no room left of the line: label to its right
        row.fits(xo + 4, xo + 4 + text_width(label))
        return xo + 4, "start", label, xo
    row.fits(x0, xo - 4)
    return xo - 4, "end", label, xo


def _windows(tl: Timeline, lay: Layout, rows: tuple[Labels, Labels]) -> list[str]:
    """Fault and recovery windows shaded over the lanes, each named on the first label row with room."""
    parts = []
    for w in tl.faults:
        tip = f"fault {w.name}: {_span_words(w)}" + (f" ({w.detail})" if w.detail else "")
        if w.ok is False:
            tip += " — the fault action itself failed"
        parts.append(_window_rect(w, lay, "fault-window", FAULT_FILL, 0.22, tip))
        parts.extend(_window_name(rows, lay.x(w.start) + 3, f"fault: {w.name}", "#953800"))
    for w in tl.recoveries:
        tip = f"recovery {w.name}: {_span_words(w)}"
        if w.ok is False:
            tip += " — the recovery action failed"
        parts.append(_window_rect(w, lay, "recovery-window", RECOVERY_FILL, 0.18, tip))
        parts.extend(_window_name(rows, lay.x(w.start) + 3, f"recovery: {w.name}", "#0550ae"))
    return parts


def _span_words(w: Window) -> str:
    return f"{fmt_clock(w.start)} – {fmt_clock(w.end) if w.end is not None else 'still open'}"


def _window_rect(w: Window, lay: Layout, cls: str, fill: str, opacity: float, tip: str) -> str:
    x0, x1 = lay.x(w.start), lay.x(w.end if w.end is not None else lay.t1)
    return (f'<rect class="{cls}" x="{x0:.1f}" y="{lay.lanes_top:.1f}" width="{max(x1 - x0, 1.5):.1f}" '
            f'height="{lay.lanes_bottom - lay.lanes_top:.1f}" fill="{fill}" fill-opacity="{opacity}">'
            f"<title>{esc(tip)}</title></rect>")


def _window_name(rows: tuple[Labels, Labels], x0: float, label: str, colour: str) -> list[str]:
    for row, y in zip(rows, LABEL_ROWS_Y):
        if row.fits(x0, x0 + text_width(label)):
            return [text(x0, y, label, fill=colour, weight="600")]
    return []  # no room: the window's tooltip and the legend name it


def _loss_window(tl: Timeline, lay: Layout) -> list[str]:
    """The span of acknowledgements that were lost, shaded on the writes lane."""
    if not tl.loss_window:
        return []
    a, b = tl.loss_window
    x0, x1 = lay.x(a), lay.x(b)
    tip = f"loss window: lost acknowledged writes from {fmt_clock(a)} to {fmt_clock(b)}"
    return [f'<rect class="loss-window" x="{x0:.1f}" y="{lay.wr_top:.1f}" width="{max(x1 - x0, 2):.1f}" '
            f'height="{LANE_H:.1f}" fill="{LOSS_FILL}" fill-opacity="0.28"><title>{esc(tip)}</title></rect>']


def _time_axis(tl: Timeline, lay: Layout) -> list[str]:
    """Dashed gridlines through every lane at round times (at most 12), the axis and its labels."""
    step = next((s for s in TIME_STEPS_S if lay.span / s <= 12), TIME_STEPS_S[-1])
    tick = math.ceil(tl.t0 / step) * step
    grid, labels = [], []
    while tick <= tl.t1 + 1e-9:
        xt = lay.x(tick)
        grid.append(f"M{xt:.1f},{lay.lanes_top:.1f}V{lay.axis_y:.1f}")
        labels.append(text(xt, lay.axis_y + 14, fmt_clock(tick), anchor="middle", fill=MUTED))
        tick += step
    return [
        f'<path d="{"".join(grid)}" stroke="#d1d9e0" stroke-width="1" stroke-dasharray="2,3" fill="none"/>',
        f'<path d="M{ML},{lay.axis_y:.1f}H{ML + PW}" stroke="{MUTED}" stroke-width="1"/>',
        *labels,
        text(ML + PW, lay.axis_y + 30, "time since run start (m:ss)", anchor="end", fill=MUTED),
    ]


def _probe_lanes(tl: Timeline, lay: Layout) -> list[str]:
    """One lane per probe: green where every sample in the column was ok, red by failed share."""
    if not tl.probes:
        return [text(ML + 6, lay.probes_top + 12, "no health samples recorded", fill=MUTED)]
    parts = []
    for pi, probe in enumerate(tl.probes):
        py = lay.probes_top + pi * (PROBE_H + PROBE_GAP)
        parts.append(text(ML - 8, py + 12, short(probe, 24), anchor="end"))
        parts.append(f'<rect x="{ML}" y="{py:.1f}" width="{PW}" height="{PROBE_H}" fill="#f6f8fa"/>')
        for state, runs in _sample_runs(tl.probe_ok[probe], tl.probe_fail[probe], lay.hold).items():
            segs = []
            for i0, i1 in runs:
                x0, x1 = ML + i0 * lay.bw, min(ML + i1 * lay.bw, ML + PW)
                segs.append(f"M{x0:.1f},{py:.1f}H{x1:.1f}v{PROBE_H}H{x0:.1f}z")
            colour, opacity = SAMPLE_FILLS[state]
            cls, words = ("samples-ok", "all samples ok") if state == "ok" else ("samples-fail", "failed samples")
            parts.append(f'<path class="{cls}" d="{"".join(segs)}" fill="{colour}" fill-opacity="{opacity}">'
                         f"<title>{esc(probe)}: {words}</title></path>")
    return parts


def _sample_runs(okc: list[int], failc: list[int], hold: int) -> dict[str, list[tuple[int, int]]]:
    """Consecutive columns of one state, as [start, end) column ranges per state (in order of first
    appearance). States: ok, f1 / f2 / f3 (under a third, two thirds, more of the samples failed).
    A column without samples keeps the last outcome for `hold` columns (columns narrower than the
    sampling interval), then is left empty."""
    runs: dict[str, list[tuple[int, int]]] = {}
    run_state, run_start, last_state, empty = None, 0, None, 0
    for i in range(len(okc) + 1):
        state = None
        if i < len(okc):
            total = okc[i] + failc[i]
            if total:
                frac = failc[i] / total
                state = "ok" if frac == 0 else ("f1" if frac < 0.34 else "f2" if frac < 0.67 else "f3")
                last_state, empty = state, 0
            else:
                empty += 1
                state = last_state if empty <= hold else None
        if state != run_state:
            if run_state is not None:
                runs.setdefault(run_state, []).append((run_start, i))
            run_state, run_start = state, i
    return runs


def _latency_lane(tl: Timeline, lay: Layout) -> list[str]:
    """Worst latency of the ok samples per column, one line per probe, broken where samples stop."""
    lat_max = max((v for lats in tl.probe_latency.values() for v in lats if v is not None), default=0.0)
    ymax = nice_ceil(lat_max) if lat_max > 0 else 1.0
    top = lay.lat_top
    parts = [
        text(8, top + 12, "latency", weight="600"),
        text(8, top + 26, "(ok samples, worst", fill=MUTED, size=10),
        text(8, top + 38, "per column)", fill=MUTED, size=10),
        lane_axis(top, LANE_H, ymax, lambda v: fmt_s(v) if v else "0"),
    ]
    for pi, probe in enumerate(tl.probes):
        d = _latency_path(tl.probe_latency[probe], lay, ymax)
        if d:
            colour = PROBE_COLOURS[pi % len(PROBE_COLOURS)]
            parts.append(f'<path class="latency" d="{d}" fill="none" stroke="{colour}" stroke-width="1.4" '
                         f'stroke-linejoin="round"><title>{esc(probe)} latency</title></path>')
    return parts


def _latency_path(lats: list[float | None], lay: Layout, ymax: float) -> str:
    d, pen, empty = [], False, 0
    for i, v in enumerate(lats):
        if v is None:
            empty += 1
            pen = pen and empty <= lay.hold
            continue
        empty = 0
        xp = ML + (i + 0.5) * lay.bw
        yp = lay.lat_top + LANE_H - min(v / ymax, 1.0) * LANE_H
        d.append(f"{'L' if pen else 'M'}{xp:.1f},{yp:.1f}")
        pen = True
    return "".join(d)


def _writes_lane(tl: Timeline, lay: Layout) -> list[str]:
    """Writes per second, stacked: acknowledged, failed, in doubt."""
    per_s = [(a + f + i) / tl.write_bin_s for a, f, i in zip(tl.acks, tl.fails, tl.infos)]
    wmax = nice_ceil(max(per_s, default=0.0)) if any(per_s) else 1.0
    top = lay.wr_top
    parts = [
        text(8, top + 12, "writes / s", weight="600"),
        text(8, top + 26, f"({fmt_num(tl.write_bin_s)} s bins)", fill=MUTED, size=10),
        lane_axis(top, LANE_H, wmax, fmt_num),
    ]
    wbw = tl.write_bin_s / lay.span * PW
    bar_w = max(wbw - 0.3, 0.6)
    base = [0.0] * len(tl.acks)  # height stacked so far per bin
    for series, colour, cls in ((tl.acks, ACK, "writes-ok"), (tl.fails, FAIL, "writes-fail"),
                                (tl.infos, INFO, "writes-info")):
        d = []
        for i, c in enumerate(series):
            if not c:
                continue
            h = c / tl.write_bin_s / wmax * LANE_H
            yb = top + LANE_H - base[i]
            d.append(f"M{ML + i * wbw:.1f},{yb - h:.2f}h{bar_w:.2f}v{h:.2f}h{-bar_w:.2f}z")
            base[i] += h
        if d:
            parts.append(f'<path class="{cls}" d="{"".join(d)}" fill="{colour}" fill-opacity="0.85"/>')
    return parts


def _lost_writes(tl: Timeline, lay: Layout) -> list[str]:
    """A red tick and pointer at each lost write's acknowledgement."""
    top, parts = lay.wr_top, []
    for key, t in tl.lost_acks:
        xl = lay.x(t)
        parts.append(f'<g class="lost-write"><path d="M{xl:.1f},{top + 7:.1f}V{top + LANE_H:.1f}" stroke="{FAIL}" '
                     f'stroke-width="1" stroke-opacity="0.6"/><path d="M{xl - 4:.1f},{top - 1:.1f}h8l-4,7z" '
                     f'fill="{FAIL}"/><title>{esc(f"lost write {key}, acknowledged at {fmt_clock(t)}")}</title></g>')
    return parts


def _rpo_marks(tl: Timeline, lay: Layout) -> list[str]:
    """When writes were lost: the RPO as an arrow back from the fault start, and its objective."""
    if tl.fault_start_t is None or not tl.rpo_s or tl.rpo_s <= 0:
        return []
    parts = []
    xa, xb = lay.x(tl.fault_start_t - tl.rpo_s), lay.x(tl.fault_start_t)
    yb = lay.wr_top + 14
    parts.append(f'<g class="rpo-marker"><path d="M{xa:.1f},{yb:.1f}H{xb:.1f}" stroke="{RPO_COLOUR}" stroke-width="2" '
                 'marker-start="url(#tl-arrow-rpo)" marker-end="url(#tl-arrow-rpo)"/>'
                 + text(xa - 4, yb + 4, f"RPO {fmt_s(tl.rpo_s)}", anchor="end", cls="halo", fill=RPO_COLOUR, weight="700")
                 + "</g>")
    if tl.rpo_objective_s is not None and tl.fault_start_t - tl.rpo_objective_s >= tl.t0:
        xo = lay.x(tl.fault_start_t - tl.rpo_objective_s)
        bottom = lay.wr_top + LANE_H
        parts.append(f'<g class="rpo-objective"><path d="M{xo:.1f},{lay.wr_top:.1f}V{bottom:.1f}" '
                     f'stroke="{RPO_COLOUR}" stroke-width="1.5" stroke-dasharray="5,4"/>'
                     + text(xo + 3, bottom - 4, f"RPO objective {fmt_s(tl.rpo_objective_s)}", cls="halo",
                            fill=RPO_COLOUR) + "</g>")
    return parts


def _events_row(tl: Timeline, lay: Layout) -> list[str]:
    """Markers, stalls and detections as diamonds (at most EVENTS_SHOWN, evenly thinned)."""
    top = lay.ev_top
    parts = [text(ML - 8, top + 11, "events", anchor="end", fill=MUTED)]
    shown = tl.events if len(tl.events) <= EVENTS_SHOWN else tl.events[:: math.ceil(len(tl.events) / EVENTS_SHOWN)]
    for t, kind, label in shown:
        parts.append(f'<path class="event-{kind}" d="M{lay.x(t):.1f},{top + 1:.1f}l4,6l-4,6l-4,-6z" '
                     f'fill="{EVENT_COLOURS[kind]}"><title>{esc(fmt_clock(t) + " " + label)}</title></path>')
    return parts


def _detection_mark(tl: Timeline, lay: Layout) -> list[str]:
    """A dotted line through every lane where the alert fired."""
    if tl.detection_t is None:
        return []
    xd = lay.x(tl.detection_t)
    tip = f"alert fired {fmt_s(tl.detection_t - (tl.fault_start_t or 0))} after fault start"
    return [f'<g class="detection-marker"><path d="M{xd:.1f},{lay.lanes_top:.1f}V{lay.lanes_bottom:.1f}" '
            f'stroke="#0550ae" stroke-width="1" stroke-dasharray="1,2"/><title>{esc(tip)}</title></g>']


def _rto_marks(tl: Timeline, lay: Layout) -> list[str]:
    """The RTO bar above the lanes, from the fault start to stable again; dashed red to the edge
    when the service never recovered."""
    if tl.fault_start_t is None:
        return []
    xs, yb = lay.x(tl.fault_start_t), RTO_BAR_Y
    if tl.recovered_at_t is None:
        xe = ML + PW
        return [f'<g class="rto-marker rto-unrecovered"><path d="M{xs:.1f},{yb:.1f}H{xe:.1f}" stroke="{FAIL}" '
                'stroke-width="2" stroke-dasharray="6,3" marker-end="url(#tl-arrow-fail)"/>'
                + _tick(xs, yb, FAIL)
                + text(xe, yb - 5, "not recovered: RTO unbounded", anchor="end", cls="halo", fill=FAIL, weight="700",
                       size=12)
                + "</g>"]
    xr = lay.x(tl.recovered_at_t)
    label = f"RTO {fmt_s(tl.rto_s if tl.rto_s is not None else tl.recovered_at_t - tl.fault_start_t)}"
    return [f'<g class="rto-marker"><path d="M{xr:.1f},{yb:.1f}V{lay.lanes_bottom:.1f}" stroke="{RTO_COLOUR}" '
            'stroke-width="2"/>'
            f'<path d="M{xs:.1f},{yb:.1f}H{max(xr, xs + 1):.1f}" stroke="{RTO_COLOUR}" stroke-width="2" '
            'marker-start="url(#tl-arrow-rto)" marker-end="url(#tl-arrow-rto)"/>'
            + _tick(xs, yb, RTO_COLOUR)
            + text(min(xr + 5, W - MR - text_width(label)), yb - 5, label, cls="halo", fill=RTO_COLOUR, weight="700",
                   size=12)
            + f"<title>{esc(f'recovered (stable) at {fmt_clock(tl.recovered_at_t)}')}</title></g>"]


def _tick(x: float, y: float, colour: str) -> str:
    """The upright stroke that marks the fault start on the RTO bar."""
    return f'<path d="M{x:.1f},{y - 6:.1f}v12" stroke="{colour}" stroke-width="2"/>'


def _rto_objective(objective: tuple[float, str, str, float | None] | None, lay: Layout) -> list[str]:
    """The RTO objective as a dashed red line with its label, or only the label when beyond the chart."""
    if objective is None:
        return []
    xl, anchor, label, xo = objective
    y = LABEL_ROWS_Y[1]
    if xo is None:
        return ['<g class="rto-objective rto-objective-beyond">'
                + text(xl, y, label, anchor=anchor, fill=OBJECTIVE_COLOUR, weight="600") + "</g>"]
    return [f'<g class="rto-objective"><path d="M{xo:.1f},{22:.1f}V{lay.lanes_bottom:.1f}" stroke="{OBJECTIVE_COLOUR}" '
            'stroke-width="1.5" stroke-dasharray="6,4"/>'
            + text(xl, y, label, anchor=anchor, cls="halo", fill=OBJECTIVE_COLOUR, weight="600") + "</g>"]
