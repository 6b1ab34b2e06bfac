"""Shared pieces of every HTML page the report layer writes: escaping, number and duration
formatting in the BCP's units, status colours, and the page shell with its inline style sheet.

Pages are self-contained: inline CSS, inline SVG, no scripts, no fonts or images from anywhere.
A Content-Security-Policy in each page forbids any load, so a page that renders offline renders
the same on a CI artifact server.
"""
from __future__ import annotations

import html
import math
from typing import Any

from harness.report.rundir import parse_time

STATUSES = ("pass", "fail", "error", "interrupted")
STATUS_COLOURS = {  # background, text
    "pass": ("#1a7f37", "#ffffff"),
    "fail": ("#cf222e", "#ffffff"),
    "error": ("#9a6700", "#ffffff"),
    "interrupted": ("#57606a", "#ffffff"),
}
# The BCP's success criteria, in its own words, keyed by the verdict's criterion names.
BCP_CRITERIA = {
    "rto": "RTO < 15 minutes achieved",
    "rpo": "RPO < 5 minutes maintained",
    "critical_functions": "All critical functions restored",
    "data_integrity": "Data integrity verified",
}
CRITERION_TITLES = {
    "rto": "Recovery time (RTO)",
    "rpo": "Recovery point (RPO)",
    "critical_functions": "Critical functions restored",
    "data_integrity": "Data integrity verified",
    "detection": "Monitoring detected the incident",
}


def esc(value: Any) -> str:
    """Text for HTML or SVG, quotes included, so it is safe in content and in attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def status_of(verdict: dict | None) -> str:
    status = str((verdict or {}).get("status") or "error").lower()
    return status if status in STATUSES else "error"


def badge(status: str) -> str:
    status = status if status in STATUS_COLOURS else "error"
    return f'<span class="badge badge-{status}">{esc(status.upper())}</span>'


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt_s(seconds: Any, none: str = "—") -> str:
    """A duration the way people read one: 0.42 s, 42.1 s, 14 min 03 s, 1 h 02 min."""
    if not is_number(seconds):
        return none
    s = float(seconds)
    sign = "-" if s < 0 else ""
    s = abs(s)
    if s < 10:
        return f"{sign}{s:.2f} s"
    if s < 60:
        return f"{sign}{s:.1f} s"
    if s < 3600:
        m, rest = divmod(int(round(s)), 60)
        return f"{sign}{m} min" if rest == 0 else f"{sign}{m} min {rest:02d} s"
    h, rest = divmod(int(round(s)), 3600)
    return f"{sign}{h} h {rest // 60:02d} min"


def fmt_clock(t: float) -> str:
    """Seconds since the run's start as m:ss (h:mm:ss past an hour), for time axes."""
    sign = "-" if t < 0 else ""
    t = int(round(abs(t)))
    h, rest = divmod(t, 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}" if h else f"{sign}{m}:{s:02d}"


def fmt_when(value: Any) -> str:
    """An ISO time as "2026-11-27 03:50:00 UTC" (seconds kept: runs start minutes apart)."""
    dt = parse_time(value) if isinstance(value, str) else None
    return f"{dt:%Y-%m-%d %H:%M:%S} UTC" if dt else ("—" if value in (None, "") else str(value))


def fmt_int(value: Any, none: str = "—") -> str:
    if not is_number(value):
        return none
    return f"{int(value):,}"


def fmt_pct(value: Any, none: str = "—") -> str:
    if not is_number(value):
        return none
    return f"{float(value):.3f} %" if value > 99 else f"{float(value):.1f} %"


def fmt_plain(value: Any, limit: int = 240) -> str:
    """Any JSON value on one line: lists joined, dicts as key: value, long text cut."""
    if value is None:
        text = "none"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif is_number(value):
        text = f"{value:g}" if isinstance(value, float) else str(value)
    elif isinstance(value, (list, tuple)):
        text = ", ".join(fmt_plain(v, limit) for v in value) if value else "none"
    elif isinstance(value, dict):
        text = ", ".join(f"{k}: {fmt_plain(v, limit)}" for k, v in value.items()) if value else "none"
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_criterion_value(name: str, value: Any, role: str = "measured") -> str:
    """A criterion's measured or objective value in the unit its name implies."""
    if value is None and role == "measured":
        return {"rto": "not recovered", "rpo": "unknown", "detection": "not detected"}.get(name, "none")
    if name in ("rto", "rpo", "detection") and is_number(value):
        return fmt_s(value)
    if name == "detection" and isinstance(value, dict):
        alert, limit = value.get("alert"), value.get("max_latency_s")
        if alert and is_number(limit):
            return f"{alert} within {fmt_s(limit)}"
    if isinstance(value, dict) and value and all(v is None or isinstance(v, bool) for v in value.values()):
        # {check: ok} as the checkers give it: say which failed first.
        groups = (("failed", [k for k, v in value.items() if v is False]),
                  ("not checked", [k for k, v in value.items() if v is None]),
                  ("ok", [k for k, v in value.items() if v is True]))
        return "; ".join(f"{label}: {', '.join(map(str, keys))}" for label, keys in groups if keys)
    return fmt_plain(value)


CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#ffffff; --panel:#f6f8fa;
  --pass:#1a7f37; --fail:#cf222e; --error:#9a6700; --interrupted:#57606a; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 1280px; padding: 24px 28px 48px; color: var(--fg); background: var(--bg);
  font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 24px; margin: 0 0 4px; line-height: 1.25; }
h2 { font-size: 18px; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
p { margin: 6px 0; }
a { color: #0969da; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 12.5px; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
  white-space: pre-wrap; word-break: break-word; margin: 6px 0; }
.muted { color: var(--muted); }
.nowrap { white-space: nowrap; }
.small { font-size: 12.5px; }
.header { display: flex; flex-wrap: wrap; align-items: center; gap: 10px 16px; }
.header .reason { flex-basis: 100%; font-size: 15px; }
.meta { display: flex; flex-wrap: wrap; gap: 4px 20px; color: var(--muted); font-size: 13px; margin-top: 6px; }
.badge { display: inline-block; padding: 3px 10px; border-radius: 999px; font-weight: 700; font-size: 13px;
  letter-spacing: .04em; color: #fff; border: 1px solid transparent; white-space: nowrap; }
.badge-pass { background: var(--pass); } .badge-fail { background: var(--fail); }
.badge-error { background: var(--error); } .badge-interrupted { background: var(--interrupted); }
.ok { color: var(--pass); font-weight: 600; } .bad { color: var(--fail); font-weight: 600; }
.warn { color: var(--error); font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; }
th, td { text-align: left; vertical-align: top; padding: 6px 10px; border-bottom: 1px solid var(--line); }
th { background: var(--panel); font-weight: 600; font-size: 13px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.row-fail td:first-child { box-shadow: inset 3px 0 0 var(--fail); }
tr.row-pass td:first-child { box-shadow: inset 3px 0 0 var(--pass); }
tr.row-error td:first-child { box-shadow: inset 3px 0 0 var(--error); }
tr.row-interrupted td:first-child { box-shadow: inset 3px 0 0 var(--interrupted); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; margin: 8px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; background: var(--bg); }
.card .label { color: var(--muted); font-size: 12px; }
.card .value { font-size: 18px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .sub { color: var(--muted); font-size: 12px; }
.chart { border: 1px solid var(--line); border-radius: 8px; padding: 8px; background: #fff; }
.chart svg { display: block; width: 100%; height: auto; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 12.5px; color: var(--muted); margin: 6px 4px 0; }
.legend .sw { display: inline-block; width: 12px; height: 12px; border-radius: 2px; vertical-align: -2px; margin-right: 5px; }
.keys { display: grid; grid-template-columns: repeat(auto-fill, minmax(290px, 1fr)); gap: 10px; }
.trends { display: grid; grid-template-columns: repeat(auto-fill, minmax(380px, 1fr)); gap: 10px; }
.keys ul { margin: 4px 0; padding-left: 18px; }
.notes li { margin: 2px 0; }
.messages { display: grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap: 12px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { max-width: none; padding: 0; font-size: 11px; }
  a { color: inherit; text-decoration: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table, .chart, pre, .card { break-inside: avoid; page-break-inside: avoid; }
  .badge { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .chart, svg, tr { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .noprint { display: none; }
}
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def page(title: str, body: str) -> str:
    """A whole HTML document around `body` (already escaped HTML)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def table(headers: list[str], rows: list[list[str]], num_cols: tuple[int, ...] = (),
          row_classes: list[str] | None = None) -> str:
    """An HTML table; headers are escaped here, cells must already be HTML."""
    head = "".join(f'<th class="num">{esc(h)}</th>' if i in num_cols else f"<th>{esc(h)}</th>"
                   for i, h in enumerate(headers))
    out = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for r, row in enumerate(rows):
        cls = f' class="{row_classes[r]}"' if row_classes and row_classes[r] else ""
        cells = "".join(f'<td class="num">{c}</td>' if i in num_cols else f"<td>{c}</td>" for i, c in enumerate(row))
        out.append(f"<tr{cls}>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)
