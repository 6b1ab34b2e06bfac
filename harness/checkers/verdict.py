"""The whole judgement of one run against the BCP's success criteria.

    RTO < 15 minutes achieved · RPO < 5 minutes maintained ·
    All critical functions restored · Data integrity verified
    (and, so that a PASS cannot hide a broken run or a harm where nobody looked: the recovery
    procedure completed, every step of the method did what it says whatever its provider, the
    service itself recovered within the RTO whatever component the scenario names, the rows that
    existed before the fault are all still there and unchanged, no older database server took a
    write after a newer one had (split brain), the steady-state hypothesis holds again, nothing was
    undone or damaged by the rollbacks, the monitoring detected the outage where required)

A pure function of the history (see harness/records/history.py) and the scenario's resolved objectives
(see harness/run/objectives.py): no I/O, no clock. Status is honest: a run whose target was unhealthy
before the fault, whose fault never happened, or which was interrupted proves nothing, so it is
`error` or `interrupted`, never `pass`; its criteria are still computed as far as possible.
"""
from __future__ import annotations

from typing import Any

from .availability import availability, fault_window
from .escalation import notification, response
from .existing import existing_rows
from .exposure import rpo_warning
from .integrity import detection, functions, integrity
from .latency import p95_latency
from .loss import CLOCK_STEP_S, loss, witnesses
from .phases import phases
from .rollbacks import after_rollbacks
from .servers import failover_window, servers
from .shards import ledger_clock, widen
from .steps import steps

SERVICE_PROBE = "api"  # the service's own critical path (optimize end to end), judged in every scenario

__all__ = ["verdict", "KEYS_SHOWN"]

KEYS_SHOWN = 50  # key lists in the verdict are truncated to this many; counts are exact

_OBJECTIVE_DEFAULTS = {"stability_s": 5.0, "timeout_s": None, "max_lost_writes": None,
                       "critical_functions": [], "integrity_checks": [], "detection": None,
                       "escalation": None, "rpo_warning": None,
                       "max_p95_latency_s": None, "recovery": None}


def verdict(events: list[dict], objectives: dict, run: dict | None = None) -> dict:
    """Judge a history against resolved scenario objectives (harness.run.objectives.resolve).

    `run` may carry run_id, experiment, title, started, ended, negative_control and expect_failure
    (copied as they are; a negative control is evidence about the harness, not the plan). Returns the
    verdict: scenario, status (pass|fail|error|interrupted), reason, run fields, objectives,
    measured, criteria [{name, passed, measured, objective, detail}], loss, integrity, functions,
    flags."""
    obj = _normalise(objectives)
    run = run or {}
    t_fault, t_fault_end = fault_window(events)

    avail = availability(events, probe=obj["probe"], stability_s=obj["stability_s"], timeout_s=obj["timeout_s"])
    lost = loss(events)
    # Load from several hosts: judged where the clocks' disagreement makes RTO/RPO worst.
    avail, lost = widen(avail, lost, ledger_clock(events))
    integ = integrity(events, since_t=t_fault)
    funcs = functions(events, since_t=t_fault)
    det = detection(events, obj["detection"]["alert"]) if obj["detection"] else None
    st = steps(events)
    wit = witnesses(events, obj["rpo_s"])
    existing = existing_rows(events, _recovery_point_t(lost, t_fault))
    srv = servers(events)
    window = failover_window(events, srv, t_fault)  # None unless the fault declares one (HA settings)
    change = _this_failover(srv, t_fault)
    # The service is measured in every scenario: an API outage during "monitoring-failure" is an
    # outage of the service, judged against the same RTO as the component the scenario names.
    service = None
    if obj["probe"] != SERVICE_PROBE:
        service, _ = widen(availability(events, probe=SERVICE_PROBE, stability_s=obj["stability_s"],
                                        timeout_s=obj["timeout_s"]), lost, ledger_clock(events))

    criteria = [
        _rto(avail, obj),
        *([_rto(service, obj, name="service_rto")] if service is not None else []),
        _rpo(lost, obj, wit),
        _corrupted_writes(lost),
        _existing_rows(existing),
        # Judged wherever more than one server took writes (a failover, a restore, a split brain).
        *([_split_brain(srv)] if len(srv["servers"]) > 1 else []),
        _required("critical_functions", funcs, obj["critical_functions"],
                  "critical functions restored", "critical functions not restored"),
        _required("data_integrity", integ, obj["integrity_checks"],
                  "integrity checks passed", "data integrity not verified"),
        _recovery_procedure(events, obj["recovery"], st),
        _every_step(st),
        _steady_state_restored(events),
        _after_rollbacks(after_rollbacks(events, st["failed"]["rollbacks"]), t_fault),
    ]
    if det is not None:
        criteria.append(_detection(det, obj["detection"], avail))
    if obj["escalation"]:
        # An alert the detection criterion excused (outage too short) pages nobody.
        paged = det is not None and (det["fired"] or not criteria[-1]["passed"])
        criteria.append(notification(events, det, obj["escalation"], required=paged))
        criteria.append(response(events, det, obj["escalation"], obj["recovery"]))
    if obj["rpo_warning"]:
        criteria.append(rpo_warning(events, obj["rpo_warning"], obj["rpo_s"]))
    if obj["max_p95_latency_s"] is not None:  # a slow dependency: users' wait, not only the outage
        criteria.append(p95_latency(events, obj["max_p95_latency_s"]))

    status, reason = _status(events, criteria, avail, lost, st, wit)
    return {
        "scenario": obj["scenario"],
        "status": status,
        "reason": reason,
        "run_id": run.get("run_id"),
        "experiment": run.get("experiment"),
        "title": run.get("title"),
        "started": run.get("started"),
        "ended": run.get("ended"),
        "negative_control": bool(run.get("negative_control")),
        "expect_failure": list(run.get("expect_failure") or []),
        "calibration": bool(run.get("calibration")),
        "objectives": {k: obj[k] for k in ("rto_s", "rpo_s", "stability_s", "timeout_s", "max_lost_writes",
                                           "critical_functions", "integrity_checks", "detection",
                                           "escalation", "rpo_warning", "max_p95_latency_s", "recovery")},
        "measured": {
            "rto_s": avail["rto_s"], "ttd_s": avail["ttd_s"], "rpo_s": lost["rpo_s"],
            "downtime_s": avail["downtime_s"], "error_count": avail["error_count"],
            "availability_pct": avail["availability_pct"],
            **{k: lost[k] for k in ("acked_writes", "lost_writes", "unexpected_writes", "recovered_writes",
                                    "duplicate_writes", "failed_writes", "in_doubt_writes",
                                    "heartbeat_acked", "heartbeat_lost", "rpo_at_least", "corrupted_writes")},
            "detection_latency_s": det["latency_s"] if det else None,
            "clock_uncertainty_s": lost.get("clock_uncertainty_s"),
            "fault_start_t": t_fault, "fault_end_t": t_fault_end, "recovered_at_t": avail["recovered_at_t"],
            "phases": phases(events, avail["recovered_at_t"]),
            "service_rto_s": service["rto_s"] if service is not None else avail["rto_s"],
            "data_loss_s": _data_loss_s(lost),
            "lost_after_fault": lost.get("lost_after_fault"), "loss_after_fault_s": lost.get("loss_after_fault_s"),
            "existing_rows": existing.get("rows_before"), "existing_rows_lost": existing.get("lost"),
            "existing_rows_changed": existing.get("changed"),
            "servers": [x["id"] for x in srv["servers"]],
            "failover_write_gap_s": change["write_gap_s"] if change else None,
            "failover_server_gap_s": change["server_gap_s"] if change else None,
            "split_brain_writes": srv["split_brain_writes"],
            **({"failover_s": window["failover_s"], "expected_failover_window_s": window["expected_s"]}
               if window else {}),
            "witnesses": {k: wit[k] for k in ("ok", "window_s", "count", "largest_gap_s", "max_gap_s")},
            "heartbeat_set_aside": lost.get("heartbeat_set_aside") or 0,
            **_exposure(events),
        },
        "criteria": criteria,
        "loss": {
            "known": lost["known"],
            "error": lost["error"],
            **{k: lost[k][:KEYS_SHOWN] for k in ("lost_keys", "unexpected_keys", "recovered_keys", "duplicate_keys",
                                                 "corrupted_keys")},
            "loss_window": lost["loss_window"],
            "lost_after_fault": lost["lost_after_fault"], "loss_after_fault_s": lost["loss_after_fault_s"],
        },
        "integrity": integ,
        "functions": funcs,
        "existing_rows": existing,
        "steps": [{k: x[k] for k in ("name", "section", "type", "provider", "tags", "ok", "detail")} for x in st["steps"]],
        "flags": _flags(events, avail, lost, t_fault, t_fault_end) + _window_flags(window),
    }


def _this_failover(srv: dict, t_fault: float | None) -> dict | None:
    """The change of server this run's fault caused: the first whose new server acknowledged its
    first write after the fault. The heartbeat's evidence reaches back into earlier runs, and their
    failovers are not this one's (a switchover once reported the node-lost run's 21.2 s before it)."""
    if t_fault is None:
        return None
    return next((c for c in srv["changes"] if c["first_new_ack_t"] > t_fault), None)


def _window_flags(window: dict | None) -> list[str]:
    """A failover outside the window its HA settings promise is flagged (a slow one may still meet
    the RTO; a fast one means the settings do not say what the cluster does)."""
    if window is None or window["within"]:
        return []
    low, high = window["expected_s"]
    if window["failover_s"] is None:
        return [f"no failover: no newer database server took a write, where the HA settings promise one "
                f"{_n(low)}–{_n(high)} s after the fault"]
    return [f"failover {_n(window['failover_s'])} s after the fault, outside the {_n(low)}–{_n(high)} s "
            f"the HA settings promise (ttl, loop_wait)"]


# Internals ---------------------------------------------------------------------------------

def _normalise(objectives: dict) -> dict:
    missing = [k for k in ("rto_s", "rpo_s") if objectives.get(k) is None]
    if missing:
        raise ValueError(f"objectives lack {', '.join(missing)}: pass a dict from harness.run.objectives.resolve()")
    obj = {**_OBJECTIVE_DEFAULTS, "scenario": None, "probe": "api", **objectives}
    for k in ("stability_s", "probe"):  # explicit None means "the default"
        if obj[k] is None:
            obj[k] = {"stability_s": 5.0, "probe": "api"}[k]
    obj["critical_functions"] = list(obj["critical_functions"] or [])
    obj["integrity_checks"] = list(obj["integrity_checks"] or [])
    return obj


def _criterion(name: str, passed: bool, measured: Any, objective: Any, detail: str) -> dict:
    return {"name": name, "passed": bool(passed), "measured": measured, "objective": objective, "detail": detail}


def _rto(a: dict, obj: dict, name: str = "rto") -> dict:
    goal, stab, timeout = obj["rto_s"], obj["stability_s"], obj["timeout_s"]
    probe = a["probe"]
    if a["error"]:
        return _criterion(name, False, None, goal, f"cannot measure RTO: {a['error']}")
    if not a["recovered"]:
        within = f" within the {_n(timeout)} s timeout" if timeout is not None else " before observation ended"
        late = f"; it settled only {_n(a['stable_from_t'] - a['fault_start_t'])} s after the fault" \
            if a["stable_from_t"] is not None and a["fault_start_t"] is not None else ""
        return _criterion(name, False, None, goal,
                          f"never stable within timeout: probe '{probe}' had no {_n(stab)} s run of continuous "
                          f"success free of later failures{within}{late} ({a['error_count']} failed samples, "
                          f"{_n(a['observed_s'])} s observed after the fault)")
    rto = a["rto_s"]
    if rto == 0 and not a["error_count"]:
        what = f"no failed sample on probe '{probe}' in {a['samples']} samples after the fault: RTO 0 s"
    else:
        what = (f"probe '{probe}' stable again {_n(rto)} s after the fault ({a['error_count']} failed samples, "
                f"{_n(a['downtime_s'])} s down, first failure {_n(a['ttd_s'])} s after the fault)")
    if rto >= goal:
        return _criterion(name, False, rto, goal, f"{what}, not under the {_n(goal)} s objective")
    if not a["trustworthy"]:
        worst = max((float(s.get("gap_s") or 0) for s in a["stalls"]), default=0.0)
        why = f"a recorder stalled for {_n(worst)} s" if worst > stab / 2 else "its samples were too sparse"
        return _criterion(name, False, rto, goal,
                          f"{what}, but {why} (more than half the {_n(stab)} s stability window), "
                          f"so the sampler cannot prove the service was up")
    return _criterion(name, True, rto, goal, f"{what}; objective under {_n(goal)} s")


def _rpo(lost: dict, obj: dict, wit: dict | None = None) -> dict:
    """The RPO judged from the loss (_rpo_from_loss), and never passed on too few witnesses: a
    recovery point that rests on sparse acknowledgements before the fault is unproven."""
    c = _rpo_from_loss(lost, obj)
    if wit is None or wit["ok"] or not lost["known"]:
        return c
    if c["passed"]:
        return _criterion("rpo", False, None, obj["rpo_s"], f"RPO unproven: too few witnesses before the fault: "
                                                             f"{wit['detail']}")
    return {**c, "detail": f"{c['detail']}; and too few witnesses before the fault: {wit['detail']}"}


def _rpo_from_loss(lost: dict, obj: dict) -> dict:
    goal, max_lost = obj["rpo_s"], obj["max_lost_writes"]
    if not lost["known"]:
        return _criterion("rpo", False, None, goal, f"{lost['error']}: loss unknown")
    n, acked, hb = lost["lost_writes"], lost["acked_writes"], lost["heartbeat_acked"]
    if lost["rpo_s"] is None:
        return _criterion("rpo", False, None, goal,
                          f"{n} of {acked} acknowledged writes lost, but there is no fault start to measure RPO from")
    if lost["rpo_unproven"]:
        why = f"; {lost['heartbeat_error']}" if lost.get("heartbeat_error") else ""
        return _criterion("rpo", False, None, goal, f"RPO cannot be measured: {lost['rpo_unproven']}{why}")
    rpo = lost["rpo_s"]
    if n == 0:
        detail = (f"no acknowledged write lost ({acked} from the load, {hb} heartbeats, {lost['read_keys']} keys "
                  f"read back): RPO 0 s")
    else:
        first = lost["loss_window"]["earliest_t"]
        when = f"{_n(-first)} s before the fault" if first <= 0 else f"{_n(first)} s after the fault started"
        detail = (f"{n} of {acked + hb} acknowledged writes lost ({lost['heartbeat_lost']} of {hb} heartbeats), "
                  f"the earliest acknowledged {when}: RPO {'at least ' if lost['rpo_at_least'] else ''}{_n(rpo)} s")
        upper = lost.get("rpo_upper_s")
        if upper is not None and not lost["rpo_at_least"] and upper - rpo > 1.5:
            detail += (f" to {_n(upper)} s (no write was acknowledged between the last that survived and the "
                       f"first lost, so the recovery point lies somewhere in that gap)")
    if lost["rpo_at_least"]:
        # Even the oldest acknowledgement read is gone: the true recovery point is older still.
        passed = False
        detail += (f", not under the {_n(goal)} s objective" if rpo >= goal else
                   f": every acknowledgement in the ledger window was lost, so the recovery point is older "
                   f"than the ledger reaches and cannot be shown under the {_n(goal)} s objective")
    else:
        # Judge the far end of the uncertainty: a PASS must hold wherever the recovery point lies.
        worst = max(rpo, lost.get("rpo_upper_s") or 0.0) if n else rpo
        after, after_s = lost.get("lost_after_fault") or 0, lost.get("loss_after_fault_s") or 0.0
        if after:
            # Lost after the fault started: that acknowledged data is gone too, and counts.
            worst += after_s
            detail += (f"; {after} of them acknowledged after the fault started, spanning {_n(after_s)} s more: "
                       f"{_n(worst)} s of acknowledged writes lost in all")
        passed = worst < goal
        detail += f" (objective under {_n(goal)} s)" if passed else f", not under the {_n(goal)} s objective"
    if max_lost is not None:
        if n > max_lost:
            passed = False
            detail += f"; the scenario allows at most {max_lost} lost writes"
        else:
            detail += f"; at most {max_lost} lost writes allowed"
    return _criterion("rpo", passed, rpo, goal, detail)


def _corrupted_writes(lost: dict) -> dict:
    """Every acknowledged write still present holds what was acknowledged (its digest matches)."""
    if not lost["known"]:
        return _criterion("corrupted_writes", False, None, 0, f"{lost['error']}: content unknown")
    if lost["content_error"]:
        return _criterion("corrupted_writes", False, lost["corrupted_writes"], 0,
                          f"content not verified: {lost['content_error']}")
    n, checked = lost["corrupted_writes"], lost["content_checked"]
    phantom = lost.get("unexpected_writes") or 0
    if phantom:
        shown = ", ".join(str(k) for k in lost["unexpected_keys"][:3])
        return _criterion("corrupted_writes", False, n, 0,
                          f"{phantom} rows in the run's key space were never written by anyone it knows (e.g. {shown})"
                          + (f"; {n} of {checked} acknowledged writes present but changed" if n else ""))
    if n:
        shown = ", ".join(str(k) for k in lost["corrupted_keys"][:3])
        return _criterion("corrupted_writes", False, n, 0,
                          f"{n} of {checked} acknowledged writes present but changed (e.g. {shown}): "
                          f"the rows no longer hold what was acknowledged")
    return _criterion("corrupted_writes", True, 0, 0,
                      f"all {checked} acknowledged writes read back hold what was acknowledged")


def _required(name: str, collected: dict, required: list[str], ok_words: str, bad_words: str) -> dict:
    checks = collected["checks"]
    measured = {n: (checks[n]["ok"] if n in checks else None) for n in required}
    if not required:
        return _criterion(name, True, measured, required, f"nothing required by the objectives ({ok_words}: none)")
    problems = []
    for n in required:
        if n not in checks:
            problems.append(f"{n} never checked after the fault")
        elif not checks[n]["ok"]:
            detail = checks[n]["detail"]
            problems.append(f"{n} failed" + (f" ({_short(detail)})" if detail not in (None, "") else ""))
    if problems:
        return _criterion(name, False, measured, required, f"{bad_words}: {'; '.join(problems)}")
    return _criterion(name, True, measured, required, f"all {len(required)} {ok_words}: {', '.join(required)}")


def _recovery_procedure(events: list[dict], kind: str | None = None, st: dict | None = None) -> dict:
    """Every recovery action the plan prescribes (tagged `recovery`) ran to its end without raising.
    `kind` is the scenario's `recovery` in bcp.yaml: where it is manual, a run in which no recovery
    action ran fails (an experiment that lost or mis-tagged its procedure proves nothing)."""
    recs = [e for e in events if e["kind"] == "recovery"]
    # A recovery step, whatever its provider, counts as started even where no recovery event was kept.
    steps_of = [x["name"] for x in (st or {}).get("steps", []) if x["section"] == "method" and "recovery" in x["tags"]]
    started = list(dict.fromkeys([*(e["name"] for e in recs if e.get("phase") == "start"), *steps_of]))
    if not started:
        if kind == "manual":
            return _criterion("recovery_procedure", False, [], "manual",
                              "bcp.yaml prescribes a manual recovery procedure for this scenario, and none ran "
                              "(no action tagged recovery started)")
        why = "as bcp.yaml says" if kind == "automatic" else "bcp.yaml does not say which"
        return _criterion("recovery_procedure", True, [], None,
                          f"no recovery procedure ran: recovery is automatic (supervision, failover), {why}")
    ended = {e["name"]: e for e in recs if e.get("phase") == "end"}
    for x in (st or {}).get("steps", []):  # a recovery step judged only by its step events
        if x["name"] in steps_of and x["name"] not in ended and x["end_t"] is not None:
            ended[x["name"]] = {"ok": x["ok"], "detail": x.get("detail")}
    problems = []
    for name in started:
        end = ended.get(name)
        if end is None:
            problems.append(f"{name} never finished")
        elif end.get("ok") is False:
            detail = end.get("detail")
            problems.append(f"{name} failed" + (f" ({_short(detail)})" if detail not in (None, "") else ""))
    for step in (st or {}).get("failed", {}).get("recovery", []):  # whatever its provider (process, http, python)
        if not any(step["name"] and step["name"] in p for p in problems):
            problems.append(f"{step['name']} failed" + (f" ({_short(step['detail'])})" if step.get("detail") else ""))
    measured = {name: (name in ended and ended[name].get("ok") is not False) for name in started}
    if problems:
        return _criterion("recovery_procedure", False, measured, started,
                          f"recovery procedure not completed: {'; '.join(problems)}")
    return _criterion("recovery_procedure", True, measured, started,
                      f"recovery procedure completed: {', '.join(started)}")


def _steady_state_restored(events: list[dict]) -> dict:
    """The experiment's steady-state hypothesis holds again after the method."""
    after = [e for e in events if e["kind"] == "marker" and e.get("name") == "steady_state" and e.get("phase") == "after"]
    if not after:
        return _criterion("steady_state_restored", False, None, True,
                          "the steady-state hypothesis was never checked after the method")
    last = after[-1]
    if not last.get("met"):
        missed = [p.get("name") for p in last.get("detail") or [] if isinstance(p, dict) and not p.get("tolerance_met")]
        return _criterion("steady_state_restored", False, False, True,
                          "the steady-state hypothesis did not hold after the method"
                          + (f": {', '.join(str(m) for m in missed)}" if missed else ""))
    return _criterion("steady_state_restored", True, True, True, "the steady-state hypothesis holds again after the method")


def _detection(det: dict, goal: dict, a: dict) -> dict:
    alert, max_latency = goal.get("alert"), goal.get("max_latency_s")
    latency = det["latency_s"]
    objective = {"alert": alert, "max_latency_s": max_latency, "min_outage_s": goal.get("min_outage_s") or 0}
    min_outage = goal.get("min_outage_s") or 0
    outage = a.get("rto_s")
    if not det["fired"] and min_outage and outage is not None and outage < min_outage:
        return _criterion("detection", True, latency, objective,
                          f"alert {alert} not required: the outage lasted {_n(outage)} s, shorter than the "
                          f"{_n(min_outage)} s an alert needs to fire; it did not fire")
    if not det["fired"]:
        why = "no detection recorded" if not det["found"] else "it never fired"
        return _criterion("detection", False, latency, objective, f"alert {alert} did not detect the outage: {why}")
    problems = []
    if latency is None:
        problems.append("no latency recorded")
    elif max_latency is not None and latency > max_latency:
        problems.append(f"fired {_n(latency)} s after the outage began, later than the {_n(max_latency)} s allowed")
    resolved = det["resolved"]
    if resolved is None or resolved is False:
        problems.append("it never resolved after recovery")
    elif not isinstance(resolved, bool) and isinstance(resolved, (int, float)) \
            and a["recovered_at_t"] is not None and resolved < a["recovered_at_t"]:
        problems.append(f"it resolved at t={_n(resolved)}, before the service recovered at t={_n(a['recovered_at_t'])}")
    if problems:
        return _criterion("detection", False, latency, objective, f"alert {alert}: {'; '.join(problems)}")
    return _criterion("detection", True, latency, objective,
                      f"alert {alert} fired {_n(latency)} s after the outage began (allowed {_n(max_latency)} s) "
                      f"and resolved after recovery")


def _every_step(st: dict) -> dict:
    """Every step of the method did what it says, whatever its provider: a probe of the method that
    failed (raised, a process that exited non-zero, an HTTP answer outside its expectation) is a
    harm observed. (A failed fault or other action is an error: the run did not do what it says.)"""
    if not st["recorded"]:
        return _criterion("every_step", False, None, True,
                          "no step of the experiment was recorded: a failed step would go unseen")
    failed = st["failed"]["probes"]
    n = len([s for s in st["steps"] if s["section"] == "method"])
    if failed:
        return _criterion("every_step", False, [s["name"] for s in failed], True,
                          "; ".join(f"step {s['name']} ({s['provider'] or 'python'} {s['type']}) failed: "
                                    f"{_short(s.get('detail'))}" for s in failed))
    return _criterion("every_step", True, [], True, f"all {n} steps of the method did what they say")


def _existing_rows(ex: dict) -> dict:
    """The rows that existed before the fault (any writer, any age) are there after recovery and
    unchanged, except those created after the recovery point (gone with a rewind the RPO judges)."""
    if not ex["known"]:
        return _criterion("existing_rows", False, None, 0, ex["error"])
    n, lost, early, changed = ex["rows_before"], ex["lost"], ex["lost_before_recovery_point"], ex["changed"]
    problems = []
    if early:
        problems.append(f"{'at least ' if ex['lost_at_least'] else ''}{early} of the {n} rows that existed before the "
                        f"fault are gone though created before the recovery point "
                        f"(e.g. {', '.join(map(str, ex['lost_sample'][:3]))})")
    if changed:
        problems.append(f"{changed} of the {n} rows that existed before the fault changed "
                        f"(e.g. {', '.join(map(str, ex['changed_sample'][:3]))})")
    if problems:
        return _criterion("existing_rows", False, {"lost": lost, "changed": changed}, 0, "; ".join(problems))
    later = f"; {lost} created after the recovery point went with the rewind (judged by rpo)" if lost else ""
    return _criterion("existing_rows", True, {"lost": lost, "changed": 0}, 0,
                      f"all {n} rows that existed before the fault are there and unchanged{later}")


def _split_brain(srv: dict) -> dict:
    n = srv["split_brain_writes"]
    doubt = f"; {_many(srv['in_doubt_writes'], 'write')} in doubt (sent before, acknowledged after)" \
        if srv["in_doubt_writes"] else ""
    if n:
        return _criterion("split_brain", False, n, 0,
                          f"{srv['detail']}; keys {', '.join(map(str, srv['split_brain_sample'][:5]))}{doubt}")
    return _criterion("split_brain", True, 0, 0, f"{srv['detail']}{doubt}")


def _after_rollbacks(rb: dict, t_fault: float | None) -> dict:
    if t_fault is None and not rb["checked"]:
        return _criterion("after_rollbacks", False, None, True, "no fault was injected: nothing was rolled back")
    if rb["problems"]:
        return _criterion("after_rollbacks", False, False, True, "; ".join(rb["problems"]))
    return _criterion("after_rollbacks", True, True, True,
                      "after the rollbacks the steady state holds, every row read at the final read is there "
                      "unchanged, and the table is as it was after recovery")


def _recovery_point_t(lost: dict, t_fault: float | None) -> float | None:
    """The earliest instant the recovery point can be at, on the run's clock: the fault start when
    no acknowledged write was lost; None when the loss is unknown (then nothing may be lost)."""
    if t_fault is None or not lost.get("known") or lost.get("rpo_s") is None:
        return None
    return t_fault - max(float(lost["rpo_s"]), float(lost.get("rpo_upper_s") or 0.0))


def _data_loss_s(lost: dict) -> float | None:
    """The span of acknowledged data lost that the RPO criterion judged: the recovery point's far
    end plus the span lost after the fault started."""
    if not lost.get("known") or lost.get("rpo_s") is None:
        return None
    worst = max(float(lost["rpo_s"]), float(lost.get("rpo_upper_s") or 0.0)) if lost.get("lost_writes") else float(lost["rpo_s"])
    return round(worst + float(lost.get("loss_after_fault_s") or 0.0), 6)


def _status(events: list[dict], criteria: list[dict], a: dict, lost: dict, st: dict | None = None,
            wit: dict | None = None) -> tuple[str, str]:
    markers = [e for e in events if e["kind"] == "marker"]
    interrupted = [m for m in markers if m.get("name") == "interrupted"]
    if interrupted:
        # The first interruption with a reason (a stop condition, the operator) is the cause.
        why = next((m for m in interrupted if m.get("reason")), interrupted[-1])
        if why.get("reason"):
            return "interrupted", f"the run was interrupted: {why['reason']}; it proves nothing either way"
        signal = why.get("signal")
        return "interrupted", (f"the run was interrupted{f' by {signal}' if signal else ''} before it finished, "
                               f"so it proves nothing either way")
    unmet = [m for m in markers if m.get("name") == "steady_state" and m.get("phase") == "before" and m.get("met") is False]
    if unmet:
        return "error", (f"target not healthy before fault: the steady-state hypothesis did not hold "
                         f"({_unmet_probes(unmet[0].get('detail'))}), so nothing was tested")
    faults = [e for e in events if e["kind"] == "fault"]
    if not any(f.get("phase") == "start" for f in faults):
        return "error", "no fault was injected: the history has no fault start"
    broken = [f for f in faults if f.get("ok") is False]
    if broken:
        f = broken[0]
        detail = f": {_short(f['detail'])}" if f.get("detail") not in (None, "") else ""
        return "error", f"fault action failed: {f['name']}{detail}; nothing was tested"
    failed_steps = (st or {}).get("failed", {})
    if failed_steps.get("faults"):
        f = failed_steps["faults"][0]
        return "error", f"fault step {f['name']} failed: {_short(f.get('detail'))}; nothing was tested"
    if failed_steps.get("actions"):
        f = failed_steps["actions"][0]
        return "error", (f"step {f['name']} of the method failed ({_short(f.get('detail'))}): the method did not run "
                         f"as written, so it proves nothing")
    failed_instruments = [m for m in markers if m.get("name") == "instrument_failed"]
    if failed_instruments:
        m = failed_instruments[0]
        return "error", (f"instrument failed: {m.get('instrument', 'a recorder')}: {_short(m.get('detail'))}; "
                         f"what it did not record cannot be judged")
    no_effect = _fault_without_effect(faults, criteria, a, lost)
    if no_effect:
        return "error", f"the fault had no observable effect: nothing was tested ({no_effect})"
    failed = [c for c in criteria if not c["passed"]]
    # Too few witnesses leave the RPO unproven: never a PASS. A run that failed other criteria is
    # a FAIL all the same (the harm it shows is real); one that would otherwise pass proves nothing.
    if wit is not None and not wit["ok"] and lost.get("known") and all(c["name"] == "rpo" for c in failed):
        return "error", f"the RPO is unproven: too few witnesses before the fault ({wit['detail']})"
    if failed:
        return "fail", (f"{len(failed)} of {len(criteria)} criteria failed: "
                        + "; ".join(f"{c['name']}: {c['detail']}" for c in failed))
    by = {c["name"]: c for c in criteria}
    parts = [f"RTO {_n(by['rto']['measured'])} s under {_n(by['rto']['objective'])} s",
             *([f"the service's own RTO {_n(by['service_rto']['measured'])} s"] if "service_rto" in by else []),
             f"RPO {_n(by['rpo']['measured'])} s under {_n(by['rpo']['objective'])} s",
             "no acknowledged write changed",
             "every row that existed before the fault intact",
             f"{len(by['critical_functions']['objective'])} critical functions restored",
             f"{len(by['data_integrity']['objective'])} integrity checks passed",
             "recovery procedure completed" if by["recovery_procedure"]["objective"] else "automatic recovery",
             "every step did what it says",
             "steady state restored", "nothing undone by the rollbacks"]
    if "detection" in by:
        alert = by['detection']['objective']['alert']
        parts.append(f"alert {alert} fired after {_n(by['detection']['measured'])} s"
                     if by["detection"]["measured"] is not None else f"alert {alert} not required (outage too short)")
    if "notification" in by:
        parts.append(f"{by['notification']['objective']['severity']} escalation times met")
    if "rpo_warning" in by:
        parts.append(f"RPO exposure warned of at {_n(by['rpo_warning']['measured'])} s")
    return "pass", f"all {len(criteria)} criteria met: " + ", ".join(parts)


def _fault_without_effect(faults: list[dict], criteria: list[dict], a: dict, lost: dict) -> str | None:
    """Why the fault cannot be shown to have happened, or None. A fault of ours returns evidence
    of its effect (`effect: {observed, detail}` on its end event); a fault the experiment's author
    wrote brings none, and then what the recorders observed is the evidence: an outage, lost or
    changed writes, a failed check after recovery."""
    ends = [f for f in faults if f.get("phase") == "end"]
    for f in ends:
        effect = f.get("effect")
        if isinstance(effect, dict) and effect.get("observed") is False:
            return f"{f['name']}: {_short(effect.get('detail') or 'its effect was not observed')}"
    if any(isinstance(f.get("effect"), dict) for f in ends):
        return None
    seen = []
    if a.get("error_count"):
        seen.append("failed samples")
    if lost.get("lost_writes") or lost.get("corrupted_writes") or lost.get("unexpected_writes"):
        seen.append("lost, changed or phantom writes")
    # Any criterion that failed is a harm observed: the fault did something.
    seen += [f"criterion {c['name']} failed" for c in criteria if not c["passed"]]
    if seen:
        return None
    names = ", ".join(dict.fromkeys(f["name"] for f in faults)) or "the fault"
    return (f"{names} brought no evidence of its effect and the recorders observed none "
            f"(no failed sample, no lost or changed write, no failed check)")


def _exposure(events: list[dict]) -> dict:
    """The RPO exposure figures, where the run recorded them (scenarios with an RPO warning)."""
    found = [e for e in events if e["kind"] == "rpo_exposure"]
    if not found:
        return {}
    return {"rpo_exposure_at_alert_s": found[-1].get("exposure_at_alert_s"),
            "rpo_exposure_max_s": found[-1].get("max_exposure_s")}


def _flags(events: list[dict], a: dict, lost: dict, t_fault: float | None, t_fault_end: float | None) -> list[str]:
    flags = []
    for s in a["stalls"]:
        flags.append(f"{s['recorder']} stalled {_n(s['gap_s'])} s at t={_n(s['t'])}")
    if not a["trustworthy"] and not a["error"]:
        flags.append("RTO measured from an untrustworthy sampler")
    if a["error"]:
        flags.append(a["error"])
    flags.extend(a["warnings"])
    if a["failures_before_fault"]:
        flags.append(f"{_many(a['failures_before_fault'], 'failed sample')} on probe '{a['probe']}' before the fault")
    if t_fault is not None and t_fault_end is None:
        flags.append("the fault has no end event")
    if not lost["known"]:
        flags.append(f"loss unknown: {lost['error']}")
    else:
        if lost["unexpected_writes"]:
            flags.append(f"{_many(lost['unexpected_writes'], 'key')} in the final read never written")
        if lost["duplicate_writes"]:
            flags.append(f"{_many(lost['duplicate_writes'], 'key')} more than once in the final read")
        if lost["recovered_writes"]:
            flags.append(f"{_many(lost['recovered_writes'], 'write')} reported failed or unknown found after recovery")
    if lost.get("content_unchecked"):
        flags.append(f"{_many(lost['content_unchecked'], 'acknowledged write')} without a readable answer: "
                     f"content not compared")
    if lost.get("heartbeat_set_aside"):
        flags.append(f"{_many(lost['heartbeat_set_aside'], 'heartbeat')} already lost or changed before this run's "
                     f"fault (an earlier incident) set aside, not counted against it")
    if lost.get("heartbeat_error"):
        flags.append(f"heartbeat ledger: {lost['heartbeat_error']}")
    if (lost.get("heartbeat_clock_step_s") or 0) > CLOCK_STEP_S:
        flags.append(f"the wall clock stepped {_n(lost['heartbeat_clock_step_s'])} s during the run: heartbeat times "
                     f"are uncertain by that much (RPO widened by it where a heartbeat was lost)")
    if lost["in_doubt_writes"]:
        flags.append(f"{_many(lost['in_doubt_writes'], 'write')} in doubt (outcome unknown)")
    return flags


def _n(x: Any) -> str:
    """A number for a sentence: at most three decimals, no trailing zeros."""
    if x is None:
        return "?"
    if isinstance(x, float):
        if abs(x) < 0.0005:
            return "0"
        return f"{x:.3f}".rstrip("0").rstrip(".")
    return str(x)


def _many(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _unmet_probes(detail: Any) -> str:
    """Which probes of a hypothesis missed and what they answered (a warm-up without a write says
    so in words)."""
    if not isinstance(detail, list):
        return _short(detail) if detail not in (None, "") else "no detail recorded"
    missed = [p for p in detail if isinstance(p, dict) and not p.get("tolerance_met")]
    if not missed:
        return "no probe recorded as missing"
    said = []
    for p in missed:
        answer = p.get("exception") or (f"answered {p['output']!r}" if "output" in p else p.get("status") or "no answer")
        said.append(f"{p.get('name')}: {_short(answer, 120)}")
    return "; ".join(said)


def _short(detail: Any, limit: int = 160) -> str:
    text = detail if isinstance(detail, str) else repr(detail)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
