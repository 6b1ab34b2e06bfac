"""The recovery phases of one run (harness/checkers/phases.py), drawn under the timeline: detect,
notify, respond, restore, one row each on one axis of seconds after the fault, each bar where
its phase lay (with automatic recovery, restoring overlaps detection: drawn so, never summed).

Self-contained inline SVG (no script, font or link), readable without colour or a mouse: every
phase has a text label with its duration (inside its segment where it fits, always in the row of
labels under the bar), and the picture's <title>/<desc> say the same in words. Pure: no I/O.
"""
from __future__ import annotations

from harness.report.page import esc, fmt_s, is_number

__all__ = ["PHASES", "phases_svg", "phases_words"]

# key in verdict.measured.phases, label, colour, what it measures
PHASES = (
    ("detect_s", "Detect", "#9a6700", "fault → alert firing"),
    ("notify_s", "Notify", "#8250df", "alert firing → notification delivered"),
    ("respond_s", "Respond", "#0969da", "notification → recovery procedure started"),
    ("restore_s", "Restore", "#1a7f37", "recovery started → stable again"),
)
W, ML, MR = 1200, 168, 28  # the timeline's width and margins, so the two line up
BAR_Y, BAR_H = 8, 26
MIN_SEGMENT_PX = 3.0  # a phase of a few milliseconds is still seen as there


def phases_words(phases: dict | None) -> str:
    """The phases in one sentence, e.g. "Detect 28.8 s, Notify 0.03 s, Respond not observed, ..."."""
    phases = phases if isinstance(phases, dict) else {}
    return ", ".join(f"{label} {fmt_s(phases.get(key), 'not observed')}" for key, label, _, _ in PHASES)


def phases_svg(phases: dict | None) -> str | None:
    """The phases as an <svg> element, one row each on the same axis (seconds after the fault), so
    phases that overlap are drawn overlapping; None when no phase was measured at all."""
    phases = phases if isinstance(phases, dict) else {}
    spans = _spans(phases)
    if not spans:
        return None
    end = max(e for _, e in spans.values())
    outage = phases.get("fault_to_stable_s")
    total = float(outage) if is_number(outage) else end
    axis = max(end, total) or 1.0
    plot_w = W - ML - MR
    row_h, gap = 20, 6
    rows = [p for p in PHASES if p[0] in spans]
    words = phases_words(phases)
    h = BAR_Y + len(rows) * (row_h + gap) + 52
    x_of = lambda sec: ML + plot_w * sec / axis  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="phases-bar" viewBox="0 0 {W} {h}" width="{W}" height="{h}" '
           f'role="img" aria-labelledby="phases-title phases-desc" font-size="12" '
           f'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif">',
           f'<title id="phases-title">Recovery phases: {esc(fmt_s(total))} from the fault to stable</title>',
           f'<desc id="phases-desc">{esc(words)}</desc>']
    y = BAR_Y
    for key, label, colour, meaning in rows:
        start, stop = spans[key]
        x0, x1 = x_of(start), x_of(stop)
        w = max(MIN_SEGMENT_PX, x1 - x0)
        seconds = stop - start
        text_ = f"{label} {fmt_s(seconds)}"
        out.append(f'<text x="{ML - 8}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end" fill="#1f2328">{esc(label)}</text>'
                   f'<rect x="{ML}" y="{y}" width="{plot_w}" height="{row_h}" fill="#f6f8fa"/>'
                   f'<rect class="phase phase-{esc(key[:-2])}" x="{x0:.1f}" y="{y}" width="{w:.1f}" height="{row_h}" '
                   f'fill="{colour}"><title>{esc(f"{label}: {fmt_s(seconds)} ({meaning}), {fmt_s(start)} to {fmt_s(stop)} after the fault")}</title></rect>')
        if w >= len(text_) * 12 * 0.58 + 10:
            out.append(f'<text x="{x0 + w / 2:.1f}" y="{y + row_h / 2 + 4:.1f}" text-anchor="middle" fill="#ffffff" '
                       f'font-weight="600" aria-hidden="true">{esc(text_)}</text>')
        else:
            out.append(f'<text x="{x0 + w + 6:.1f}" y="{y + row_h / 2 + 4:.1f}" fill="#1f2328" aria-hidden="true">'
                       f'{esc(text_)}</text>')
        y += row_h + gap
    out.append(f'<text x="{ML}" y="{y + 14}" fill="#59636e">0 s = the fault</text>'
               f'<text x="{W - MR}" y="{y + 14}" text-anchor="end" fill="#59636e">fault to stable {esc(fmt_s(total))} '
               f'(phases overlap: not their sum)</text>')
    # The row of labels: every phase, measured or not, with its swatch.
    lx, ly = float(ML), y + 38
    for key, label, colour, meaning in PHASES:
        value = phases.get(key)
        text_ = f"{label}: {fmt_s(value, 'not observed')}"
        faded = "" if is_number(value) else ' fill-opacity="0.25"'
        out.append(f'<rect x="{lx:.1f}" y="{ly - 10}" width="12" height="12" fill="{colour}"{faded}/>'
                   f'<text x="{lx + 17:.1f}" y="{ly}" fill="#1f2328">{esc(text_)}<title>{esc(meaning)}</title></text>')
        lx += 17 + len(text_) * 12 * 0.58 + 26
    out.append("</svg>")
    return "".join(out)


def _spans(phases: dict) -> dict[str, tuple[float, float]]:
    """Each measured phase's (start, end) after the fault: as the checker placed them, or, for a
    verdict written before phases had spans, one after the other."""
    given = phases.get("spans") if isinstance(phases.get("spans"), dict) else None
    out: dict[str, tuple[float, float]] = {}
    at = 0.0
    for key, *_ in PHASES:
        span = (given or {}).get(key)
        if given is not None and isinstance(span, list) and len(span) == 2 and all(is_number(x) for x in span):
            out[key] = (float(span[0]), float(span[1]))
        elif given is None and is_number(phases.get(key)):
            out[key] = (at, at + float(phases[key]))
            at += float(phases[key])
    return out
