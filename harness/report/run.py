"""One run's evidence page: `reports/<run-id>/report.html` (and its junit.xml).

The page says, in this order: what ran and the verdict with its reason; every BCP criterion with
measured value against objective; the key figures; the timeline (samples, latency, writes per
second, lost writes at their acknowledgement, fault and recovery windows, RTO and RPO against
their objectives); which keys were lost, unexpected or recovered; integrity and critical-function
results; flags; the Chaos Toolkit journal's activities; and the BCP notification messages.

The markup is templates/run.html.j2; the functions below only work out the plain values each
section shows, from the run dir's files.
"""
from __future__ import annotations

import os
from pathlib import Path

from markupsafe import Markup

from harness.report import junit, notify
from harness.report.page import (
    BCP_CRITERIA, CRITERION_TITLES, fmt_clock, fmt_criterion_value, fmt_int, fmt_pct, fmt_plain, fmt_s,
    fmt_when, is_number, render, status_of,
)
from harness.report.rundir import (
    checks_of, criteria_of, load_history, load_journal, load_verdict, measured, objectives, parse_time,
)
from harness.report.timeline import Timeline, build_timeline, legend_items, phases_svg, phases_words, timeline_svg

__all__ = ["write_run_report", "render_run_report"]

KEYS_SHOWN = 10


def write_run_report(run_dir: str | os.PathLike) -> Path:
    """Render `report.html` and `junit.xml` into the run dir from what the run left there.
    Returns the report's path. A missing or damaged file is reported on the page, not raised;
    only a run dir that does not exist raises FileNotFoundError."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory")
    verdict, _ = load_verdict(run_dir)
    html_text = render_run_report(run_dir)
    out = run_dir / "report.html"
    _write_atomic(out, html_text.encode("utf-8"))
    _write_atomic(run_dir / "junit.xml", junit.run_xml(verdict))
    return out


def render_run_report(run_dir: Path) -> str:
    """The page as HTML text, from what the run dir holds (templates/run.html.j2)."""
    verdict, verdict_problem = load_verdict(run_dir)
    journal, journal_problem = load_journal(run_dir)
    events, history_warnings = load_history(run_dir)
    problems = [p for p in (verdict_problem, journal_problem) if p] + history_warnings

    tl = build_timeline(events, verdict)
    fault_names = list(dict.fromkeys(w.name for w in tl.faults if w.name != "fault"))
    status = status_of(verdict)
    scenario = str(verdict.get("scenario") or "unknown")
    return render(
        "run.html.j2",
        title=f"{status.upper()} · {scenario} · {verdict.get('run_id', run_dir.name)}",
        heading=str(verdict.get("title") or (journal or {}).get("experiment", {}).get("title") or scenario),
        status=status,
        scenario=scenario,
        reason=verdict.get("reason") or "",
        problems=problems,
        **_run_meta(verdict),
        criteria=_criteria(verdict),
        cards=_cards(verdict),
        fault_times=_fault_times(measured(verdict)),
        chart=_chart(tl),
        phases=_phases(verdict),
        **_loss(verdict, tl),
        checks=_checks(verdict, events),
        flags=verdict.get("flags") if isinstance(verdict.get("flags"), list) else [],
        journal=_journal(journal),
        messages=notify.render_messages(verdict, fault_name=", ".join(fault_names) or None),
        run_dir_name=run_dir.name,
        event_count=fmt_int(len(events)),
    )


# What each section shows: plain values for templates/run.html.j2 ------------------------------

def _run_meta(verdict: dict) -> dict:
    started, ended = parse_time(verdict.get("started")), parse_time(verdict.get("ended"))
    return {
        "run_id": verdict.get("run_id"),
        "experiment": verdict.get("experiment"),
        "started": fmt_when(verdict["started"]) if verdict.get("started") else None,
        "ended": fmt_when(verdict["ended"]) if verdict.get("ended") else None,
        "duration": fmt_s((ended - started).total_seconds()) if started and ended else None,
    }


def _criteria(verdict: dict) -> list[dict]:
    rows = []
    for c in criteria_of(verdict):
        name = str(c.get("name", "?"))
        rows.append({
            "title": CRITERION_TITLES.get(name, name),
            "bcp": BCP_CRITERIA.get(name),
            "passed": bool(c.get("passed")),
            "measured": fmt_criterion_value(name, c.get("measured"), "measured"),
            "objective": fmt_criterion_value(name, c.get("objective"), "objective"),
            "detail": c.get("detail") or "",
        })
    return rows


def _card(label: str, value: str, sub: str = "", cls: str = "") -> dict:
    return {"label": label, "value": value, "sub": sub, "cls": cls}


def _cards(verdict: dict) -> list[dict]:
    m, o = measured(verdict), objectives(verdict)
    rto, rpo = m.get("rto_s"), m.get("rpo_s")
    fault_injected = is_number(m.get("fault_start_t"))
    judged = {str(c.get("name")): bool(c.get("passed")) for c in criteria_of(verdict)}
    # Coloured by the criterion when it was judged (RPO can fail on a lost-write bound while
    # under its time objective), else by the figure against its objective.
    rto_ok = judged.get("rto", is_number(rto) and is_number(o.get("rto_s")) and rto <= o["rto_s"])
    rpo_ok = judged.get("rpo", is_number(rpo) and is_number(o.get("rpo_s")) and rpo <= o["rpo_s"])
    det = o.get("detection") if isinstance(o.get("detection"), dict) else None
    lost = m.get("lost_writes")
    return [
        _card("RTO", fmt_s(rto, "not recovered" if fault_injected else "—"), f"objective {fmt_s(o.get('rto_s'))}",
              "ok" if rto_ok else ("bad" if fault_injected else "")),
        _card("RPO", fmt_s(rpo, "unknown" if fault_injected else "—"), f"objective {fmt_s(o.get('rpo_s'))}",
              "ok" if rpo_ok else ("bad" if fault_injected else "")),
        _card("Time to detect (first failure)", fmt_s(m.get("ttd_s"))),
        _card("Downtime", fmt_s(m.get("downtime_s"))),
        _card("Availability during incident", fmt_pct(m.get("availability_pct")),
              f"{fmt_int(m.get('error_count'))} failed samples"),
        _card("Detection latency", fmt_s(m.get("detection_latency_s"), "not detected" if det else "—"),
              f"{det.get('alert')} within {fmt_s(det.get('max_latency_s'))}" if det else "no alert objective"),
        _card("Lost writes", fmt_int(lost, "unknown" if is_number(m.get("acked_writes")) else "—"),
              f"of {fmt_int(m.get('acked_writes'))} acknowledged", "bad" if (is_number(lost) and lost > 0) else ""),
        *([_card("RPO exposure at the warning", fmt_s(m.get("rpo_exposure_at_alert_s"), "never warned"),
                 f"objective {fmt_s(o.get('rpo_s'))}; peak seen {fmt_s(m.get('rpo_exposure_max_s'))}",
                 "ok" if judged.get("rpo_warning") else "bad")] if "rpo_warning" in judged else []),
        _card("Writes in doubt / failed", f"{fmt_int(m.get('in_doubt_writes'))} / {fmt_int(m.get('failed_writes'))}",
              f"{fmt_int(m.get('recovered_writes'))} recovered, {fmt_int(m.get('duplicate_writes'))} duplicated"),
        *([_failover_card(m)] if len(m.get("servers") or []) > 1 else []),
    ]


def _failover_card(m: dict) -> dict:
    """A change of database server: the failover from the fault (against the HA settings' window
    when declared), the gap on the servers' own clocks and the clients', and any split brain."""
    window = m.get("expected_failover_window_s")
    split = m.get("split_brain_writes") or 0
    sub = [f"servers' clocks: last old commit → first new {fmt_s(m.get('failover_server_gap_s'))}",
           f"clients: write gap {fmt_s(m.get('failover_write_gap_s'))}"]
    if isinstance(window, list) and len(window) == 2:
        sub.insert(0, f"window {fmt_s(window[0])}–{fmt_s(window[1])}")
    if split:
        sub.append(f"{fmt_int(split)} split-brain writes")
    value = fmt_s(m.get("failover_s")) if "failover_s" in m else f"{len(m['servers'])} servers"
    return _card("Failover", value, "; ".join(sub), "bad" if split else "")


def _fault_times(m: dict) -> list[str]:
    times = []
    if is_number(m.get("fault_start_t")):
        times.append(f"fault at {fmt_clock(m['fault_start_t'])}")
    if is_number(m.get("fault_end_t")):
        times.append(f"ended {fmt_clock(m['fault_end_t'])}")
    if is_number(m.get("recovered_at_t")):
        times.append(f"stable from {fmt_clock(m['recovered_at_t'])}")
    return times


def _chart(tl: Timeline) -> dict | None:
    if not tl.event_count:
        return None
    notes = [f"{fmt_int(tl.event_count)} events; samples in {tl.bin_s:g} s columns, writes in {tl.write_bin_s:g} s bins."]
    if tl.lost_total:
        notes.append(f"{len(tl.lost_acks)} of {fmt_int(tl.lost_total)} lost writes are marked at their acknowledgement "
                     "(the verdict lists at most 50 keys)" + ("; the loss window is shaded." if tl.loss_window else "."))
    # The SVG is built by timeline.chart, which escapes every text it draws.
    return {"svg": Markup(timeline_svg(tl)), "legend": list(legend_items(tl)), "notes": notes}


def _phases(verdict: dict) -> dict | None:
    """The recovery phases as one stacked bar under the timeline (None when none was measured)."""
    phases = measured(verdict).get("phases")
    svg = phases_svg(phases)
    return {"svg": Markup(svg), "words": phases_words(phases)} if svg else None  # our SVG, its texts escaped


KEY_GROUPS = (  # label, meaning, verdict's key list, measured count, op whose time is shown, verb
    ("Lost", "acknowledged, absent from the final read", "lost_keys", "lost_writes", "ok", "acked"),
    ("Unexpected", "present, never attempted", "unexpected_keys", "unexpected_writes", None, ""),
    ("Recovered", "failed or in doubt, yet present", "recovered_keys", "recovered_writes", "invoke", "attempted"),
    ("Duplicated", "present more than once", "duplicate_keys", "duplicate_writes", "ok", "acked"),
)


def _loss(verdict: dict, tl: Timeline) -> dict:
    m = measured(verdict)
    loss = verdict.get("loss") if isinstance(verdict.get("loss"), dict) else {}
    boxes = []
    for label, meaning, list_key, count_key, time_of, verb in KEY_GROUPS:
        keys = loss.get(list_key) if isinstance(loss.get(list_key), list) else []
        count = m.get(count_key)
        count = count if is_number(count) else len(keys)
        shown = []
        for k in keys[:KEYS_SHOWN]:
            t = tl.key_times.get(str(k), {}).get(time_of) if time_of else None
            shown.append((k, f"{verb} {fmt_clock(t)}" if t is not None else None))
        boxes.append({"label": label, "meaning": meaning, "count": fmt_int(count), "shown": shown,
                      "bad": label in ("Lost", "Unexpected") and bool(count),
                      "more": f"showing {len(shown)} of {fmt_int(count)}" if count > len(shown) else None})
    lw = tl.loss_window
    return {"loss_unknown": loss.get("known") is False, "key_boxes": boxes,
            "loss_window": (fmt_clock(lw[0]), fmt_clock(lw[1])) if lw else None}


def _checks(verdict: dict, events: list[dict]) -> list[dict]:
    o = objectives(verdict)
    groups = []
    for title, section, kind, name_key, expected_key in (
        ("Critical functions", "functions", "function", "name", "critical_functions"),
        ("Data integrity", "integrity", "integrity", "check", "integrity_checks"),
    ):
        results = checks_of(verdict.get(section), name_key) or _checks_in_history(events, kind, name_key)
        rows = [{"name": r["name"], "detail": fmt_plain(r.get("detail") or ""),
                 "result": "ok" if r.get("ok") is True else ("failed" if r.get("ok") is False else "unknown")}
                for r in results]
        seen = {r["name"] for r in results}
        expected = o.get(expected_key) if isinstance(o.get(expected_key), list) else []
        rows += [{"name": name, "result": "not checked", "detail": "required by the objectives but no result was recorded"}
                 for name in expected if str(name) not in seen]
        groups.append({"title": title, "rows": rows})
    return groups


def _checks_in_history(events: list[dict], kind: str, name_key: str) -> list[dict]:
    """The history's own check events, when the verdict has none (last result per name wins)."""
    latest: dict[str, dict] = {}
    for e in events:
        if e["kind"] == kind:
            latest[str(e.get(name_key))] = {"name": str(e.get(name_key)), "ok": e.get("ok"),
                                            "detail": e.get("detail", "")}
    return list(latest.values())


def _journal(journal: dict | None) -> dict | None:
    if not journal:
        return None
    exp = journal.get("experiment") if isinstance(journal.get("experiment"), dict) else {}
    activities = []
    for item in journal.get("run") if isinstance(journal.get("run"), list) else []:
        if not isinstance(item, dict):
            continue
        act = item.get("activity") if isinstance(item.get("activity"), dict) else {}
        a, b = parse_time(item.get("start")), parse_time(item.get("end"))
        dur = item.get("duration") if is_number(item.get("duration")) else ((b - a).total_seconds() if a and b else None)
        activities.append({"name": act.get("name") or "—", "type": act.get("type") or "",
                           "status": str(item.get("status") or "—"), "start": fmt_when(item.get("start")),
                           "duration": fmt_s(dur)})
    return {
        "title": exp.get("title") or "—",
        "status": journal.get("status") or "—",
        "start": journal.get("start"),
        "end": journal.get("end"),
        "deviated": fmt_plain(journal["deviated"]) if journal.get("deviated") is not None else None,
        "activities": activities,
    }


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
