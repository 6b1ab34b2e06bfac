"""The game-day control: a Chaos Toolkit control that turns an experiment into a measured run.

Declared in an experiment as
    controls: [{name: bcp-gameday, provider: {type: python, module: harness.run.control}}]
it works the same under `gameday run` and under stock `chaos --no-version-check run`. Every hook
finds the run session (harness/run/session.py) in Chaos Toolkit's `configuration`: `gameday run` puts
it there; under stock chaos `configure_control` opens one itself. No module state.

  configure        (stock chaos only) resolve the objectives, open the session
  before method    start the sampler and the load generator, warm up (writes must be acknowledged)
  fault/recovery   activities tagged `fault` / `recovery` are stamped start/end in the history;
                   the output of activities tagged `measure` is kept as a marker
  after method     wait until the service is stable again (or the scenario's timeout), stop the
                   load, final read of every attempted key, critical functions, integrity checks,
                   detection evidence from Prometheus
  after experiment stop the recorders. The session's owner judges: under `gameday run` the runner
                   (after it knows whether a signal interrupted the run); under stock chaos this
                   control, through the same evidence writer (harness/run/evidence.py): the same
                   files in the run folder, secrets masked, the verdict in the journal under `bcp`,
                   and the journal's status set so that `chaos run` exits 1 unless it is a PASS.

chaoslib swallows exceptions raised by controls (and drops a control whose configure fails), so a
configuration error is kept in the configuration and raised as InterruptExecution before
anything is injected.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import datetime
from pathlib import Path

from chaoslib.exceptions import InterruptExecution

from harness.core.redact import redact_file, secrets_of
from harness.run import checks, judge as judge_mod
from harness.run.evidence import journal_status, redact_in_place, write_evidence
from harness.checkers import stable_since
from harness.core.errors import first_line
from harness.run.objectives import ObjectivesError
from harness.records.heartbeat_ledger import read_window
from harness.records.shards import run_events, shard_dir
from harness.recorders.load import LoadGenerator
from harness.recorders.sampler import Sampler
from harness.run.plan import plan as plan_run
from harness.run.session import SESSION_KEY, RunSession
from harness.run.stop_conditions import StopWatch
from harness.targets.description import TargetError
from probes.database import read_back, server_states
from probes.monitoring import alert_firing_times, query

SAMPLER_PROBES = ("api", "ready")
WARMUP_GRACE_S = 15.0  # beyond the warm-up, for a load generator slow to start
# `gameday run --load-workers N` (or these variables under stock `chaos run`): locust's
# distributed mode, N local workers plus REMOTE ones started by hand on other hosts.
LOAD_WORKERS_ENV, LOAD_REMOTE_WORKERS_ENV, LOAD_MASTER_ENV = ("GAMEDAY_LOAD_WORKERS", "GAMEDAY_LOAD_REMOTE_WORKERS",
                                                              "GAMEDAY_LOAD_MASTER")
# `gameday run --load-rate W`: the whole load's writes per second, over the experiment's
# recorders.writes_per_s (a fixed rate makes game days comparable: endurance, capacity).
LOAD_RATE_ENV = "GAMEDAY_LOAD_RATE"
MAX_LOAD_RATE = 100000.0
_ERROR_KEY = "gameday_session_error"  # why configure could not open a session (stock chaos)


# ---------------------------------------------------------------------------------------------
# Chaos Toolkit hooks

def configure_control(experiment: dict = None, configuration: dict = None, **kwargs) -> None:
    if configuration is None or configuration.get(SESSION_KEY) is not None:
        return  # the runner opened the session
    try:
        run_plan = plan_run(experiment or {})
        configuration[SESSION_KEY] = RunSession.open(run_plan, target_path=configuration.get("gameday_target"),
                                                     owned_by_runner=False)
    except (ObjectivesError, TargetError, OSError) as e:
        configuration[_ERROR_KEY] = str(e)


def before_experiment_control(context: dict, configuration: dict = None, **kwargs) -> None:
    if _session(configuration) is None:
        why = (configuration or {}).get(_ERROR_KEY) or "control not configured"
        raise InterruptExecution(f"bcp: {why}; nothing was injected")


def after_hypothesis_control(context: dict, state: dict = None, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is None:
        return
    state = state or {}
    probes = [{"name": p.get("activity", {}).get("name"), "status": p.get("status"),
               "tolerance_met": p.get("tolerance_met")} for p in state.get("probes", [])]
    s.history.append("marker", name="steady_state", met=bool(state.get("steady_state_met")),
                     phase="after" if s.method_started else "before", detail=probes)


def before_method_control(context: dict, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is None:
        return
    s.method_started = True
    target = s.target()
    rec = s.plan.recorders
    probes = list(dict.fromkeys([*SAMPLER_PROBES, s.objectives["probe"]]))
    # Only the scenario's probe measures RTO: the others are context, asked once a second (cost).
    s.sampler = Sampler(s.history, target, probes, interval_s=rec["interval_s"], timeout_s=rec["timeout_s"],
                        sparse_probes=[p for p in probes if p != s.objectives["probe"]]).start()
    s.load = LoadGenerator(target["api_url"], s.history.path, s.history.t0, users=rec["users"],
                           log_path=s.run_dir / "load.log", key_prefix=f"{s.run_id}-w-",
                           writes_per_s=load_rate(rec), **load_workers()).start()
    s.history.append("marker", name="recorders_started",
                     detail={"probes": probes, "key_prefix": s.load.key_prefix, "load_workers": s.load.workers,
                             "load_master_port": s.load.master_port, **rec, "writes_per_s": s.load.writes_per_s})
    # Distributed load: every worker joined and knows its clock offset before the warm-up counts.
    joined = s.load.wait_ready()
    time.sleep(rec["warmup_s"] if joined else 0)
    # On a loaded machine the load generator itself (locust, gevent) can take longer than the
    # warm-up to start: wait a bounded while for its first acknowledged write before calling the
    # target unhealthy.
    deadline = time.monotonic() + (WARMUP_GRACE_S if joined else 0)
    while not _any_ack(s.history.path) and s.load.running() and time.monotonic() < deadline:
        time.sleep(0.25)
    if not _any_ack(s.history.path) or not s.load.running():
        why = (f"no write acknowledged during the {rec['warmup_s']} s warm-up (+{WARMUP_GRACE_S:g} s grace)" if joined else
               f"the load workers did not all join: {s.load.failure() or 'not ready in time'}")
        s.history.append("marker", name="steady_state", met=False, phase="before", detail=why)
        s.self_aborted = True
        raise InterruptExecution("the target acknowledged no writes before the fault; nothing was injected")
    take_heartbeat_baseline(s, window_s=2 * s.objectives["rpo_s"])


def before_activity_control(context: dict, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is None or not s.method_started:
        return
    if s.stop_reason:  # nothing more is injected or run once a stop condition tripped
        raise InterruptExecution(s.stop_reason)
    tags = context.get("tags") or []
    name = context.get("name")
    if "fault" in tags:
        t = s.history.append("fault", phase="start", name=name)["t"]
        if s.fault_start_t is None:
            s.fault_start_t, s.fault_start_epoch = t, time.time()
            s.stop_watch = StopWatch(s, s.target().get("prometheus_url")).start()
    elif "recovery" in tags:
        s.history.append("recovery", phase="start", name=name)


def after_activity_control(context: dict, state: dict = None, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is None or not s.method_started:
        return
    tags = context.get("tags") or []
    state = state or {}
    ok = state.get("status") == "succeeded"
    detail = state.get("output") if ok else "".join(state.get("exception") or [])[-500:].strip()
    if "fault" in tags:
        # A fault of ours returns evidence of its effect; the judge checks it (no effect: nothing tested).
        effect = detail.get("effect") if isinstance(detail, dict) and isinstance(detail.get("effect"), dict) else None
        s.history.append("fault", phase="end", name=context.get("name"), ok=ok, detail=detail,
                         **({"effect": effect} if effect else {}))
    elif "recovery" in tags:
        s.history.append("recovery", phase="end", name=context.get("name"), ok=ok, detail=detail)
    elif "measure" in tags:  # a measurement worth keeping as evidence (e.g. the monitoring gap)
        s.history.append("marker", name=context.get("name"), detail=detail, ok=ok)


def after_method_control(context: dict, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is not None:
        finish_measurement(s)
        if s.stop_reason:  # roll back now: the rollbacks run, the run ends interrupted
            raise InterruptExecution(s.stop_reason)


def after_experiment_control(context: dict, state: dict = None, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is None:
        return
    journal = state if isinstance(state, dict) else {}
    if journal.get("status") == "interrupted" and not s.self_aborted:
        s.history.append("marker", name="interrupted", detail="the run was interrupted")
    s.stop_instruments()
    if s.owned_by_runner:
        return  # the runner judges once it knows whether a signal ended the run
    verdict = judge_mod.judge(s)
    s.close()
    secrets = secrets_of(s.target())
    written = write_evidence(s.run_dir, verdict, journal, secrets)
    _redact_chaos_logs(secrets)
    if isinstance(state, dict):  # Chaos Toolkit writes this journal itself once we return
        redact_in_place(state, secrets)
        state["bcp"] = written
        state["status"] = journal_status(written)
        state["bcp_run_dir"] = str(s.run_dir)
    print(f"bcp: {written['status'].upper()} {written['scenario']}: {written.get('reason', '')}\n"
          f"bcp: evidence in {s.run_dir} (report.html, verdict.json, journal.json, junit.xml)", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# Measurement steps

def finish_measurement(s: RunSession) -> None:
    """After the method: wait for stability, stop the load, read back every attempted key, run
    the critical functions and integrity checks, collect the detection evidence."""
    if s.sampler is None or s.observation_ended:
        return
    s.observation_ended = True
    obj = s.objectives
    h = s.history
    fault_t = s.fault_start_t if s.fault_start_t is not None else h.now()
    # Observe at least one stability window after the method, however fast recovery was.
    stable = wait_until_stable(s.sampler, obj["probe"], obj["stability_s"], fault_t, fault_t + obj["timeout_s"], h.now,
                               stop=lambda: s.stop_reason is not None)
    h.append("marker", name="stability", detail={"stable": stable, "probe": obj["probe"]})
    # The instruments must prove they were watching: one that died makes the run an error.
    load_failure = s.load.failure()
    s.load.stop()
    if load_failure or s.load.failure():
        h.append("marker", name="instrument_failed", instrument="load generator", detail=load_failure or s.load.failure())
    # The final read of every attempted key and every heartbeat acknowledged in the window the
    # RPO objective needs, from whichever server now accepts writes.
    beats = heartbeat_evidence(s, window_s=2 * obj["rpo_s"])
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


def wait_until_stable(sampler: Sampler, probe: str, stability_s: float, since_t: float, deadline_t: float,
                      now, stop=lambda: False) -> bool:
    """Block until `probe` has been continuously successful for `stability_s` seconds since
    `since_t` (the fault) up to now, by the checkers' own definition of stable, or until
    `deadline_t`. Returns whether it became stable."""
    while True:
        t = now()
        if stable_since([st for st in sampler.samples(probe) if st[0] >= since_t], stability_s, t) is not None:
            return True
        if t >= deadline_t or sampler.failure() or stop():  # a dead sampler will never show stability
            return False
        time.sleep(0.1)


def load_workers(environ=None) -> dict:
    """LoadGenerator arguments from the environment: {} (one process) unless GAMEDAY_LOAD_WORKERS
    is a positive number; GAMEDAY_LOAD_MASTER is HOST:PORT the master binds (remote workers
    connect there; default 127.0.0.1 and a free port). Raises ValueError naming a bad value."""
    env = os.environ if environ is None else environ
    try:
        workers = int(env.get(LOAD_WORKERS_ENV) or 0)
        remote = int(env.get(LOAD_REMOTE_WORKERS_ENV) or 0)
    except ValueError:
        raise ValueError(f"{LOAD_WORKERS_ENV}/{LOAD_REMOTE_WORKERS_ENV} must be whole numbers, got "
                         f"{env.get(LOAD_WORKERS_ENV)!r} and {env.get(LOAD_REMOTE_WORKERS_ENV)!r}") from None
    if workers <= 0:
        return {}
    out: dict = {"workers": workers, "remote_workers": max(0, remote)}
    master = env.get(LOAD_MASTER_ENV)
    if master:
        host, _, port = master.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{LOAD_MASTER_ENV} must be HOST:PORT, got {master!r}")
        out.update(master_bind=host, master_port=int(port))
    return out


def load_rate(recorders: dict, environ=None) -> float | None:
    """Writes per second for the whole load: $GAMEDAY_LOAD_RATE (`gameday run --load-rate`) over
    the experiment's recorders.writes_per_s; None: as fast as the users go. Raises ValueError
    naming a bad value."""
    env = os.environ if environ is None else environ
    given = env.get(LOAD_RATE_ENV)
    if not given:
        return recorders.get("writes_per_s")
    try:
        rate = float(given)
    except ValueError:
        rate = float("nan")
    if not 0 < rate <= MAX_LOAD_RATE:
        raise ValueError(f"{LOAD_RATE_ENV} must be a number of writes per second above 0 and at most "
                         f"{MAX_LOAD_RATE:g}, got {given!r}")
    return rate


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
    acked = read_window(ledger, since, now_wall)
    if s.heartbeat_baseline is not None:
        counted = [a for a in acked if a[1] > s.heartbeat_baseline_epoch or a[0] in s.heartbeat_baseline]
    else:
        counted = acked
    # The ledger is on the wall clock; the run is on the monotonic one. A wall clock stepped since
    # the fault (NTP, a VM resumed) moves every heartbeat by that much: measured, the RPO is widened by it.
    step = ((now_wall - s.fault_start_epoch) - (now_t - s.fault_start_t)
            if s.fault_start_epoch is not None and s.fault_start_t is not None else 0.0)
    return {"acked": [[key, round(now_t - (now_wall - wall), 6), digest] for key, wall, digest in counted],
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


# Internals ---------------------------------------------------------------------------------

def _redact_chaos_logs(secrets: list[str]) -> None:
    """Stock `chaos run` logs to its own file (chaostoolkit.log in the working folder): what it
    logged of the run so far is masked too. Its last lines ("Experiment ended ...") carry no output."""
    for handler in logging.getLogger("chaostoolkit").handlers:
        if isinstance(handler, logging.FileHandler):
            handler.flush()
            # In place (the handler appends to this very file afterwards), not by replacing it.
            redact_file(handler.baseFilename, secrets, in_place=True)


def _session(configuration: dict | None) -> RunSession | None:
    return (configuration or {}).get(SESSION_KEY)


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


def _any_ack(path) -> bool:
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

