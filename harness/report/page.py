"""Shared pieces of every HTML page the report layer writes: escaping, number and duration
formatting in the BCP's units, status colours, and the jinja2 templates (harness/report/templates:
page.html.j2 is the frame every page extends, with its inline style sheet page.css.j2).

Pages are self-contained: inline CSS, inline SVG, no scripts, no fonts or images from anywhere.
A Content-Security-Policy in each page forbids any load, so a page that renders offline renders
the same on a CI artifact server.
"""
from __future__ import annotations

import html
import math
from typing import Any

import jinja2
from markupsafe import Markup

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
    "corrupted_writes": "Acknowledged writes unchanged",
    "recovery_procedure": "Recovery procedure completed",
    "steady_state_restored": "Steady state restored",
    "notification": "Notified in time (escalation matrix)",
    "response": "Responded in time (escalation matrix)",
    "rpo_warning": "RPO exposure warned of in time",
    "service_rto": "The service's own recovery time",
    "existing_rows": "Rows from before the run unchanged",
    "every_step": "Every step did what it says",
    "after_rollbacks": "Nothing harmed by the rollbacks",
    "split_brain": "No write taken by a superseded primary",
    "p95_latency": "Latency while the fault is active (p95)",
}


def esc(value: Any) -> str:
    """Text for HTML or SVG, quotes included, so it is safe in content and in attributes."""
    return html.escape("" if value is None else str(value), quote=True)


def status_of(verdict: dict | None) -> str:
    status = str((verdict or {}).get("status") or "error").lower()
    return status if status in STATUSES else "error"


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


def fmt_age(seconds: Any) -> str:
    """How long something has been open: days past two days, else as fmt_s."""
    if is_number(seconds) and seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    return fmt_s(seconds)


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
    if name in ("rto", "rpo", "detection", "notification", "response", "rpo_warning") and is_number(value):
        return fmt_s(value)
    limit = {"notification": "notify_s", "response": "respond_s"}.get(name)
    if limit and isinstance(value, dict) and is_number(value.get(limit)):
        return f"{value.get('severity')}: within {fmt_s(value[limit])}"
    if name == "rpo_warning" and isinstance(value, dict) and is_number(value.get("before_exposure_s")):
        return f"{value.get('alert')} before {fmt_s(value['before_exposure_s'])} of exposure"
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


# Templates ------------------------------------------------------------------------------------

def _escaped(value: Any) -> Markup:
    """Every {{ value }} in a template is escaped as esc() escapes (html.escape, None as ""), so a
    page and the SVG charts inside it escape alike; Markup (the charts themselves) passes as is."""
    return value if isinstance(value, Markup) else Markup(esc(value))


TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("harness.report", "templates"),
    autoescape=True,
    finalize=_escaped,
    undefined=jinja2.StrictUndefined,  # a misspelt name in a template fails the render, not the page
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.globals["STATUSES"] = STATUSES
TEMPLATES.filters.update(fmt_s=fmt_s, fmt_int=fmt_int, fmt_when=fmt_when, fmt_clock=fmt_clock, fmt_age=fmt_age)


def render(template: str, **context: Any) -> str:
    """A whole HTML page from templates/<template> (which extends page.html.j2). Values are
    escaped by the template; pass SVG built by our own code as Markup."""
    return TEMPLATES.get_template(template).render(**context)
