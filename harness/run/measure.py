"""What the control measures around the fault, step by step (harness/run/control.py says when):

    before the fault   take_heartbeat_baseline   which heartbeats are intact before this fault
                       wait_for_witnesses        enough acknowledged writes to date a recovery point
                       fingerprint_before        the whole table, every row, any writer, any age
                       any_ack                   has the load had a write acknowledged yet
    after the method   finish_measurement        stability (the scenario's probe and the service's),
                                                 the final read, the table compared with its
                                                 fingerprint, critical functions, integrity checks,
                                                 detection and RPO-exposure evidence
    after rollbacks    check_after_rollbacks     the steady state, the rows and the table again

Everything lands in the run's history as events the checkers judge; nothing here decides a verdict.
"""
from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from harness.checkers import fault_window, judged, stable_since
from harness.checkers.loss import WITNESS_GAP_S, largest_gap, witness_window_s
from harness.core.errors import first_line
from harness.recorders.sampler import Sampler
from harness.records.heartbeat_ledger import read_entries, read_window
from harness.records.shards import run_events, shard_dir
from harness.run import checks, steady_state
from harness.run.session import RunSession
from probes import fingerprint
from probes.database import read_back, server_states
from probes.monitoring import alert_firing_times, query

__all__ = ["heartbeat_window_s", "finish_measurement", "wait_until_stable", "take_heartbeat_baseline", "heartbeat_evidence",
           "detection_evidence", "rpo_exposure_evidence", "wait_for_witnesses", "fingerprint_before",
           "check_after_rollbacks", "any_ack", "SERVICE_PROBE"]

SERVICE_PROBE = "api"  # the service's own critical path: sampled densely and judged in every scenario


def finish_measurement(s: RunSession) -> None:
    """After the method: wait for stability, stop the load, read back every attempted key, run
    the critical functions and integrity checks, collect the detection evidence."""
    if s.sampler is None or s.observation_ended:
        return
    s.observation_ended = True
    obj = s.objectives
    h = s.history
    fault_t = incident_start(h.path, s.fault_start_t if s.fault_start_t is not None else h.now())
    # Observe at least one stability window after the method, however fast recovery was: of the
    # scenario's probe and of the service itself, both judged against the RTO.
    stable = True
    for probe in dict.fromkeys([obj["probe"], SERVICE_PROBE]):
        stable = stable and wait_until_stable(s.sampler, probe, obj["stability_s"], fault_t, fault_t + obj["timeout_s"],
                                              h.now, stop=lambda: s.stop_reason is not None)
    h.append("marker", name="stability", detail={"stable": stable, "probe": obj["probe"]})
    # The instruments must prove they were watching: one that died makes the run an error.
    load_failure = s.load.failure()
    s.load.stop()
    if load_failure or s.load.failure():
        h.append("marker", name="instrument_failed", instrument="load generator", detail=load_failure or s.load.failure())
    # The final read of every attempted key and every heartbeat acknowledged in the window the
    # RPO objective needs, from whichever server now accepts writes.
    beats = heartbeat_evidence(s, window_s=heartbeat_window_s(obj))
    h.append("heartbeat", **beats)
    attempted = _attempted_keys(h.path) + [entry[0] for entry in beats["acked"]]
    # A target that never recovered gets a short final read: it proves "unknown" just as well.
    ok, found, detail = read_back(attempted, [s.load.key_prefix], s.target_path,
                                  timeout_s=min(60.0, obj["timeout_s"]) if stable else 10.0)
    # Which servers accept writes as the read is taken: with two, the read shows one side of a
    # split brain, and the loss cannot be known from it.
    servers = server_states(s.target_path)
    h.append("final_read", keys=sorted(found), digests=found, ok=ok, attempted=len(attempted), detail=detail,
             **({"servers": servers} if servers is not None else {}), **({} if ok else {"error": detail}))
    s.final_digests = {"keys": attempted, "prefix": s.load.key_prefix, "digests": found if ok else None}
    # Every row that existed before the fault, whoever wrote it: still there, and unchanged?
    h.append("fingerprint", **fingerprint_compare(s, "before", "after"))
    for name in obj["critical_functions"]:
        ok, detail = checks.run_check(checks.CRITICAL_FUNCTIONS, name, s.target_path)
        h.append("function", name=name, ok=ok, detail=detail)
    for name in obj["integrity_checks"]:
        ok, detail = checks.run_check(checks.INTEGRITY_CHECKS, name, s.target_path)
        h.append("integrity", check=name, ok=ok, detail=detail)
    if obj.get("detection"):
        wait_s = 30.0 if stable and not s.stop_reason else 0.0
        h.append("detection", **detection_evidence(s, obj["detection"]["alert"], wait_s))
    if obj.get("rpo_warning"):
        h.append("rpo_exposure", **rpo_exposure_evidence(s, obj["rpo_warning"]["alert"]))
    if s.stop_watch is not None:
        s.stop_watch.stop()
    sampler_failure = s.sampler.failure()
    s.sampler.stop()
    if sampler_failure:
        h.append("marker", name="instrument_failed", instrument="sampler", detail=sampler_failure)
    h.append("marker", name="observe_end")


def incident_start(history_path, fallback_t: float) -> float:
    """When the checkers will date the incident (checkers.fault_window: the first fault from when
    it reports it landed, or an earlier step that could do harm), so that the control waits for
    the stability they will judge. Waiting from the fault step's start instead once stopped the
    observation 0.3 s short: a success answered between the step's start and the kill counted for
    the control, not for the checker, and a passing recovery read "never stable"."""
    try:
        start, _ = fault_window(run_events(history_path, tolerant=True))
    except (OSError, ValueError):
        start = None
    return start if start is not None else fallback_t


def wait_until_stable(sampler: Sampler, probe: str, stability_s: float, since_t: float, deadline_t: float,
                      now, stop=lambda: False) -> bool:
    """Block until `probe` has been continuously successful for `stability_s` seconds since
    `since_t` (the fault) up to now, by the checkers' own definition of stable, or until
    `deadline_t`. Returns whether it became stable."""
    while True:
        t = now()
        if stable_since([st for st in judged(sampler.samples(probe), since_t) if st[0] >= since_t], stability_s, t) is not None:
            return True
        if t >= deadline_t or sampler.failure() or stop():  # a dead sampler will never show stability
            return False
        time.sleep(0.1)


def take_heartbeat_baseline(s: RunSession, window_s: float) -> None:
    """Before the fault, in steady state: which heartbeats of the window are in the database,
    holding what was acknowledged. One already lost or changed (by an earlier incident, a
    deliberate PITR of an earlier scenario) is not this fault's doing and is not counted against
    it; the verdict says how many were set aside."""
    ledger = s.target().get("heartbeat_ledger")
    if not ledger:
        return
    now = time.time()
    acked = read_window(ledger, now - window_s, now)
    ok, found, detail = read_back([key for key, _, _ in acked], [], s.target_path, timeout_s=10.0)
    if not ok:  # no baseline: every acknowledgement in the window counts
        s.history.append("marker", name="heartbeat_baseline", ok=False, detail=detail)
        return
    # Intact: present and holding what was acknowledged (a heartbeat whose answer carried no
    # digest can only be checked for presence; it is not blamed on an earlier incident).
    s.heartbeat_baseline = {key for key, _, digest in acked
                            if (found.get(key) == digest if digest is not None else key in found)}
    s.heartbeat_baseline_epoch = now
    s.history.append("marker", name="heartbeat_baseline", ok=True, window_s=window_s, read=len(acked),
                     intact=len(s.heartbeat_baseline), set_aside=len(acked) - len(s.heartbeat_baseline))


def heartbeat_evidence(s: RunSession, window_s: float) -> dict:
    """The heartbeat ledger's acknowledgements from `window_s` before the fault until now, on the
    run's clock (t = seconds since the run's start), less those already lost or changed at the
    baseline (take_heartbeat_baseline)."""
    ledger = s.target().get("heartbeat_ledger")
    if not ledger:
        return {"acked": [], "window_s": window_s, "ok": False,
                "error": "the target description names no heartbeat_ledger (run 'gameday heartbeat start')"}
    now_wall, now_t = time.time(), s.history.now()
    since = (s.fault_start_epoch or now_wall) - window_s
    acked = read_entries(ledger, since, now_wall)
    if s.heartbeat_baseline is not None:
        counted = [a for a in acked if a["wall"] > s.heartbeat_baseline_epoch or a["key"] in s.heartbeat_baseline]
    else:
        counted = acked
    # The ledger is on the wall clock; the run is on the monotonic one. A wall clock stepped since
    # the fault (NTP, a VM resumed) moves every heartbeat by that much: measured, the RPO is widened by it.
    step = ((now_wall - s.fault_start_epoch) - (now_t - s.fault_start_t)
            if s.fault_start_epoch is not None and s.fault_start_t is not None else 0.0)
    # Each: [key, acknowledged t, digest, sent t, server]: the loss checks read the first three;
    # the servers checker the rest (a heartbeat taken by a superseded primary is a split brain too).
    def on_run_clock(wall):
        return round(now_t - (now_wall - wall), 6) if wall is not None else None
    return {"acked": [[a["key"], on_run_clock(a["wall"]), a["digest"], on_run_clock(a["sent"]), a["server"]]
                      for a in counted],
            "set_aside": len(acked) - len(counted), "window_s": window_s, "ok": True, "ledger": ledger,
            "clock_step_s": round(step, 6)}


def detection_evidence(s: RunSession, alert: str, resolve_wait_s: float = 30.0) -> dict:
    """When Prometheus noticed: latency from the fault to the first sample at which `alert` was
    firing (Prometheus's own timestamps), and whether it stopped firing after recovery."""
    start = s.fault_start_epoch
    if start is None:
        return {"alert": alert, "fired": False, "detail": "no fault was injected"}
    try:
        # Still firing at the fault (an earlier incident not yet resolved) proves nothing about this one.
        prometheus = s.target()["prometheus_url"]
        if query(prometheus, f'ALERTS{{alertname="{alert}",alertstate="firing"}}', at=start):
            return {"alert": alert, "fired": False, "detail": "alert was already firing when the fault began"}
        times = alert_firing_times(s.target_path, alert, start)
        if not times:
            return {"alert": alert, "fired": False, "resolved": False, "detail": "alert never fired"}
        latency = times[0] - start
        notified = _notified_at(s.target().get("alerts_log"), alert, start)
        deadline = time.time() + resolve_wait_s
        resolved = False
        while time.time() < deadline:
            if not alert_firing_times(s.target_path, alert, time.time() - 3):
                resolved = True
                break
            time.sleep(1)
        return {"alert": alert, "fired": True, "latency_s": round(latency, 3), "resolved": resolved,
                "notified_latency_s": round(notified - start, 3) if notified is not None else None,
                "receiver": bool(s.target().get("alerts_log")),  # False: notifications cannot be observed
                "detail": f"first firing sample {latency:.1f} s after the fault; "
                          f"{'resolved' if resolved else 'still firing'} after recovery"}
    except Exception as e:  # Prometheus unreachable or answering nonsense: no evidence, said so
        return {"alert": alert, "fired": False, "detail": f"Prometheus could not be asked: {first_line(e)}"}


def rpo_exposure_evidence(s: RunSession, alert: str) -> dict:
    """The RPO exposure when `alert` first fired after the fault (the value Prometheus held at its
    own firing sample, the worst way back), and the worst exposure since the fault."""
    start = s.fault_start_epoch
    if start is None:
        return {"alert": alert, "fired": False, "detail": "no fault was injected"}
    exposure = "max(svg_ai_rpo_exposure_seconds)"
    try:
        prometheus = s.target()["prometheus_url"]
        now = time.time()
        peak = query(prometheus, f"max(max_over_time(svg_ai_rpo_exposure_seconds[{int(now - start) + 2}s]))", at=now)
        out = {"alert": alert, "fired": False,
               "max_exposure_s": round(float(peak[0]["value"][1]), 3) if peak else None}
        if query(prometheus, f'ALERTS{{alertname="{alert}",alertstate="firing"}}', at=start):
            return {**out, "detail": "alert was already firing when the fault began"}
        times = alert_firing_times(s.target_path, alert, start)
        if not times:
            return {**out, "detail": "alert never fired"}
        at = query(prometheus, exposure, at=times[0])
        return {**out, "fired": True, "latency_s": round(times[0] - start, 3),
                "exposure_at_alert_s": round(float(at[0]["value"][1]), 3) if at else None,
                "detail": f"first firing sample {times[0] - start:.1f} s after the fault"}
    except Exception as e:  # Prometheus unreachable or answering nonsense: no evidence, said so
        return {"alert": alert, "fired": False, "error": f"Prometheus could not be asked: {first_line(e)}"}

def heartbeat_window_s(objectives: dict) -> float:
    """How far back before the fault the heartbeat ledger is read: twice the RPO objective (a loss
    reaching further back shows as "at least"), and never less than the witness window needs."""
    return max(2 * float(objectives["rpo_s"]), witness_window_s(objectives["rpo_s"]) + 10.0, 30.0)


def wait_for_witnesses(s: RunSession, extra_s: float = 5.0) -> None:
    """Before the fault: the recovery point needs acknowledged writes densely enough over the last
    seconds before it (harness/checkers/loss.py witnesses). After an outage the heartbeat has a gap: wait
    (bounded: that window plus `extra_s`) for it to fill, rather than inject into a window that
    could not date a loss. If it never fills (a frozen heartbeat, a paced-down load) the run goes
    on and the verdict says the RPO is unproven."""
    ledger = s.target().get("heartbeat_ledger")
    window = witness_window_s(s.objectives["rpo_s"])
    started = time.monotonic()
    deadline = started + window + extra_s
    while True:
        gap = _witness_gap(ledger, window, s)
        if gap is not None and gap <= WITNESS_GAP_S:
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    waited = time.monotonic() - started
    if waited > 0.5:
        s.history.append("marker", name="witness_wait", waited_s=round(waited, 3), window_s=window,
                         largest_gap_s=None if gap is None else round(gap, 3),
                         detail=f"waited {waited:.1f} s for the heartbeat to witness the last {window:g} s before the fault")


def fingerprint_before(s: RunSession) -> None:
    """The whole table, just before the fault: every row, any writer, any age (probes/fingerprint.py)."""
    path = s.run_dir / ".fingerprints" / "before.tsv"
    taken = fingerprint.take(path, s.target_path)
    s.fingerprints["before"] = path
    h = s.history
    if taken["ok"]:
        taken["taken_t"] = round(h.now() - (time.time() - taken["taken_epoch"]), 6)
    h.append("fingerprint", phase="before", **{k: v for k, v in taken.items() if k != "file"})


def fingerprint_compare(s: RunSession, base: str, phase: str) -> dict:
    """The table now, compared with the fingerprint taken at `base`: lost and changed rows."""
    if base not in s.fingerprints:
        return {"phase": phase, "ok": False, "error": f"no fingerprint was taken {base} the fault"}
    path = s.run_dir / ".fingerprints" / f"{phase}.tsv"
    taken = fingerprint.take(path, s.target_path)
    s.fingerprints[phase] = path
    if not taken["ok"]:
        return {"phase": phase, "ok": False, "error": taken["error"]}
    try:
        compared = fingerprint.compare(s.fingerprints[base], path)
    except (OSError, ValueError) as e:
        return {"phase": phase, "ok": False, "error": f"comparing the fingerprints: {first_line(e)}"}
    return {"phase": phase, "ok": True, "base": base, "seconds": taken["seconds"], **compared}


def check_after_rollbacks(s: RunSession, steady_state_s: float | None = None) -> None:
    """Once every rollback ran: the experiment's steady state holds again (given a bounded while,
    by default the scenario's timeout up to a minute: a released program takes seconds to come
    back), every row of the final read is there and unchanged, and the table is as it was after
    recovery. One `after_rollbacks` event."""
    if not s.method_started or s.after_rollbacks_checked:
        return
    if steady_state_s is None:
        steady_state_s = min(60.0, float(s.objectives.get("timeout_s") or 60.0))
    s.after_rollbacks_checked = True
    experiment = s.plan.experiment or {}
    answer = steady_state.wait_until_met(experiment, steady_state_s) if experiment else \
        {"met": False, "detail": "the experiment was not kept with the run plan"}
    event: dict = {"steady_state": {"met": answer["met"], "detail": answer["detail"]}}
    if s.final_digests is not None and s.final_digests["digests"] is not None:
        ok, found, detail = read_back(s.final_digests["keys"], [s.final_digests["prefix"]], s.target_path,
                                      timeout_s=20.0)
        event["read"] = {"ok": ok, "digests": found, "detail": detail, **({} if ok else {"error": detail})}
    if "after" in s.fingerprints:
        event["fingerprint"] = fingerprint_compare(s, "after", "after_rollbacks")
    s.history.append("after_rollbacks", **event)


# Internals ---------------------------------------------------------------------------------

def _notified_at(alerts_log: str | None, alert: str, since_epoch: float) -> float | None:
    """When the first notification of `alert` firing reached the receiver (its arrival time)."""
    if not alerts_log:
        return None
    try:
        lines = Path(alerts_log).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        try:
            entry = json.loads(line)
            received = datetime.fromisoformat(entry["received"].replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        if entry.get("alertname") == alert and entry.get("status") == "firing" and received >= since_epoch:
            return received
    return None


def any_ack(path) -> bool:
    """Has any write been acknowledged yet? Stops reading at the first one."""
    # The history, and the ledger shards of distributed load workers.
    for file in [Path(path), *sorted(shard_dir(path).glob("*.jsonl"))]:
        with open(file, "rb") as f:
            if any(b'"kind":"op"' in line and b'"type":"ok"' in line for line in f):
                return True
    return False


def _attempted_keys(path) -> list[str]:
    return [e["key"] for e in run_events(path)
            if e["kind"] == "op" and e["type"] == "invoke" and e.get("f") == "write"]


def _witness_gap(ledger: str | None, window_s: float, s: RunSession) -> float | None:
    """The largest gap between acknowledged writes (the heartbeat's and the run's own warm-up) over
    the last `window_s`, from the window's start to now; None without a ledger."""
    if not ledger:
        return None
    now, now_t = time.time(), s.history.now()
    beats = [wall for _, wall, _ in read_window(ledger, now - window_s, now)]
    own = [now - (now_t - e["t"]) for e in run_events(s.history.path)
           if e["kind"] == "op" and e.get("type") == "ok" and now_t - e["t"] <= window_s]
    return largest_gap(beats + own, now - window_s, now)[0]
