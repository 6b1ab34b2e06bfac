"""SVG building blocks of the timeline: the chart's geometry, escaped text, label placement that
never overlaps, and a lane's value axis."""
from __future__ import annotations

import math
from typing import Callable

from harness.report.page import esc

__all__ = ["W", "ML", "MR", "PW", "text", "text_width", "Labels", "lane_axis", "nice_ceil", "fmt_num", "short"]

W, ML, MR = 1200, 168, 28  # chart width, left margin (lane names), right margin
PW = W - ML - MR  # plot width


def text(x: float, y: float, s: str, anchor: str = "start", cls: str = "", fill: str = "", size: float = 0,
         weight: str = "") -> str:
    """A <text> element; `s` is escaped here."""
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


def text_width(s: str, size: float = 11) -> float:
    """Roughly how wide `s` is drawn (no font metrics in a pure function)."""
    return len(s) * size * 0.58


class Labels:
    """Keeps labels on a row from overlapping: a label that does not fit is left to the legend
    and the shape's tooltip."""

    def __init__(self):
        self.taken: list[tuple[float, float]] = []

    def fits(self, x0: float, x1: float) -> bool:
        """True, and the span is taken, if [x0, x1] is on the chart and clear of the row's labels."""
        if x0 < 0 or x1 > W:
            return False
        if any(x0 < b + 6 and a < x1 + 6 for a, b in self.taken):
            return False
        self.taken.append((x0, x1))
        return True


def lane_axis(top: float, h: float, ymax: float, fmt: Callable[[float], str]) -> str:
    """A lane's frame with its 0, half and full-scale gridlines and labels."""
    out = [f'<rect x="{ML}" y="{top:.1f}" width="{PW}" height="{h:.1f}" fill="none" stroke="#d1d9e0"/>']
    for frac in (0.5, 1.0):
        yv = top + h - frac * h
        out.append(f'<path d="M{ML},{yv:.1f}H{ML + PW}" stroke="#eaeef2"/>')
        out.append(text(ML - 6, yv + 4 if frac < 1 else yv + 10, fmt(ymax * frac), anchor="end", fill="#59636e",
                        size=10))
    out.append(text(ML - 6, top + h, "0", anchor="end", fill="#59636e", size=10))
    return "".join(out)


def nice_ceil(v: float) -> float:
    """The smallest round number (1, 1.2, 1.5, 2, 2.5 … × 10^k) at or above v: a lane's full scale."""
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for f in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if f * exp >= v - 1e-12:
            return f * exp
    return 10 * exp


def fmt_num(v: float) -> str:
    return f"{v:g}" if v >= 1 or v == 0 else f"{v:.2g}"


def short(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"
