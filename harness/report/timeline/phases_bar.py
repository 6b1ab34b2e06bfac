"""The recovery phases of one run (harness/checkers/phases.py) as one stacked horizontal bar, drawn
under the timeline: detect → notify → respond → restore, each segment as long as its phase.

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
    """The stacked bar as an <svg> element, or None when no phase was measured at all."""
    phases = phases if isinstance(phases, dict) else {}
    measured = [(key, label, colour, meaning, float(phases[key])) for key, label, colour, meaning in PHASES
                if is_number(phases.get(key))]
    if not measured:
        return None
    total = sum(v for *_, v in measured)
    plot_w = W - ML - MR
    visible = [m for m in measured if m[4] > 0]
    # Widths proportional to the seconds, a tiny phase widened to MIN_SEGMENT_PX (taken from the rest).
    widths = {m[0]: max(MIN_SEGMENT_PX, plot_w * m[4] / total) if total > 0 else 0.0 for m in visible}
    scale = plot_w / sum(widths.values()) if widths and sum(widths.values()) > plot_w else 1.0
    words = phases_words(phases)
    h = BAR_Y + BAR_H + 44
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="phases-bar" viewBox="0 0 {W} {h}" width="{W}" height="{h}" '
           f'role="img" aria-labelledby="phases-title phases-desc" font-size="12" '
           f'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif">',
           f'<title id="phases-title">Recovery phases: {esc(fmt_s(total))} from the fault to stable</title>',
           f'<desc id="phases-desc">{esc(words)}</desc>',
           f'<text x="{ML - 8}" y="{BAR_Y + BAR_H / 2 + 4:.1f}" text-anchor="end" fill="#1f2328">Recovery phases</text>',
           f'<rect x="{ML}" y="{BAR_Y}" width="{plot_w}" height="{BAR_H}" fill="#f6f8fa" stroke="#d1d9e0"/>']
    x = float(ML)
    for key, label, colour, meaning, seconds in visible:
        w = widths[key] * scale
        tip = f"{label}: {fmt_s(seconds)} ({meaning})"
        out.append(f'<rect class="phase phase-{esc(key[:-2])}" x="{x:.1f}" y="{BAR_Y}" width="{w:.1f}" height="{BAR_H}" '
                   f'fill="{colour}"><title>{esc(tip)}</title></rect>')
        inside = f"{label} {fmt_s(seconds)}"
        if w >= len(inside) * 12 * 0.58 + 10:  # only where the words fit inside the segment
            out.append(f'<text x="{x + w / 2:.1f}" y="{BAR_Y + BAR_H / 2 + 4:.1f}" text-anchor="middle" '
                       f'fill="#ffffff" font-weight="600" aria-hidden="true">{esc(inside)}</text>')
        x += w
    # The row of labels: every phase, measured or not, in order, with its swatch.
    lx, ly = float(ML), BAR_Y + BAR_H + 22
    for key, label, colour, meaning in PHASES:
        value = phases.get(key)
        text = f"{label}: {fmt_s(value, 'not observed')}"
        faded = "" if is_number(value) else ' fill-opacity="0.25"'  # a phase not observed: a pale swatch
        out.append(f'<rect x="{lx:.1f}" y="{ly - 10}" width="12" height="12" fill="{colour}"{faded}/>'
                   f'<text x="{lx + 17:.1f}" y="{ly}" fill="#1f2328">{esc(text)}<title>{esc(meaning)}</title></text>')
        lx += 17 + len(text) * 12 * 0.58 + 26
    out.append(f'<text x="{W - MR}" y="{ly}" text-anchor="end" fill="#59636e">total {esc(fmt_s(total))}</text>')
    out.append("</svg>")
    return "".join(out)
