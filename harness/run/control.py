"""The game-day control: a Chaos Toolkit control that turns an experiment into a measured run.

Declared in an experiment as
    controls: [{name: bcp-gameday, provider: {type: python, module: harness.run.control}}]
it works the same under `gameday run` and under stock `chaos --no-version-check run`. Every hook
finds the run session (harness/run/session.py) in Chaos Toolkit's `configuration`: `gameday run` puts
it there; under stock chaos `configure_control` opens one itself. No module state.

  configure        (stock chaos only) resolve the objectives, open the session
  before method    start the sampler and the load generator, warm up (writes must be acknowledged),
                   the heartbeat baseline, enough witnesses, the table's fingerprint
                   (harness/run/measure.py does the measuring; this module says when)
  every step       of the method and of the rollbacks, whatever its provider, is stamped start/end
                   with whether it did what it says (harness/checkers/steps.py); activities tagged
                   `fault` / `recovery` also get fault/recovery events (a fault's landing time);
                   the output of activities tagged `measure` is kept as a marker
  after method     wait until the scenario's probe and the service are stable again (or the
                   scenario's timeout), stop the load, final read of every attempted key, the
                   table compared with its fingerprint, critical functions, integrity checks,
                   detection evidence from Prometheus
  after experiment stop the recorders; check again after the rollbacks (under `gameday run` the
                   runner does, after its safety net). The session's owner judges: under `gameday run` the runner
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
import signal
import sys
import time

from chaoslib.exceptions import InterruptExecution

from harness.checkers.steps import step_outcome
from harness.core.redact import redact_file, secrets_of
from harness.recorders.load import LoadGenerator
from harness.recorders.sampler import Sampler
from harness.run import judge as judge_mod, measure
from harness.run.evidence import journal_status, redact_in_place, write_evidence
from harness.run.objectives import ObjectivesError
from harness.run.plan import plan as plan_run
from harness.run.session import SESSION_KEY, RunSession
from harness.run.stop_conditions import StopWatch
from harness.targets.description import TargetError

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
    s = _session(configuration)
    if s is None:
        why = (configuration or {}).get(_ERROR_KEY) or "control not configured"
        raise InterruptExecution(f"bcp: {why}; nothing was injected")
    if s.on_sigterm is not None:  # chaoslib installed its own SIGTERM handler a moment ago
        signal.signal(signal.SIGTERM, s.on_sigterm)


def before_hypothesis_control(context: dict, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is not None:
        s.in_hypothesis = True  # its probes are the hypothesis's, not steps of the method


def after_hypothesis_control(context: dict, state: dict = None, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is None:
        return
    s.in_hypothesis = False
    state = state or {}
    # What each probe answered goes into the history: a hypothesis that did not hold must say which
    # probe missed and with what, or the error it makes of the run cannot be diagnosed afterwards.
    probes = [{"name": p.get("activity", {}).get("name"), "status": p.get("status"),
               "tolerance_met": p.get("tolerance_met"), "output": _brief(p.get("output")),
               **({"exception": _brief(p["exception"])} if p.get("exception") else {})}
              for p in state.get("probes", [])]
    s.history.append("marker", name="steady_state", met=bool(state.get("steady_state_met")),
                     phase="after" if s.method_started else "before", detail=probes)


def before_method_control(context: dict, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is None:
        return
    s.method_started = True
    target = s.target()
    rec = s.plan.recorders
    # The scenario's probe and the service's own critical path are sampled every tick in every
    # scenario (both are judged against the RTO); the others are context, asked once a second.
    dense = list(dict.fromkeys([s.objectives["probe"], measure.SERVICE_PROBE]))
    probes = list(dict.fromkeys([*SAMPLER_PROBES, *dense]))
    s.sampler = Sampler(s.history, target, probes, interval_s=rec["interval_s"], timeout_s=rec["timeout_s"],
                        sparse_probes=[p for p in probes if p not in dense], watched=dense).start()
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
    while not measure.any_ack(s.history.path) and s.load.running() and time.monotonic() < deadline:
        time.sleep(0.25)
    if not measure.any_ack(s.history.path) or not s.load.running():
        why = (f"no write acknowledged during the {rec['warmup_s']} s warm-up (+{WARMUP_GRACE_S:g} s grace)" if joined else
               f"the load workers did not all join: {s.load.failure() or 'not ready in time'}")
        s.history.append("marker", name="steady_state", met=False, phase="before", detail=why)
        s.self_aborted = True
        raise InterruptExecution("the target acknowledged no writes before the fault; nothing was injected")
    measure.take_heartbeat_baseline(s, window_s=measure.heartbeat_window_s(s.objectives))
    measure.wait_for_witnesses(s)
    measure.fingerprint_before(s)


def before_rollback_control(context: dict, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is not None:
        s.in_rollbacks = True


def before_activity_control(context: dict, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is None or not s.method_started or s.in_hypothesis:
        return
    if s.stop_reason and not s.in_rollbacks:  # nothing more is injected or run once a stop condition tripped
        raise InterruptExecution(s.stop_reason)
    tags = context.get("tags") or []
    name = context.get("name")
    section = "rollback" if s.in_rollbacks else "method"
    s.step_index += 1
    provider = (context.get("provider") or {}).get("type")
    s.history.append("step", phase="start", name=name, section=section, index=s.step_index,
                     type=context.get("type") or "action", provider=provider, tags=list(tags))
    if section == "rollback":
        return
    if "fault" in tags:
        t = s.history.append("fault", phase="start", name=name)["t"]
        if s.fault_start_t is None:
            s.fault_start_t, s.fault_start_epoch = t, time.time()
            s.stop_watch = StopWatch(s, s.target().get("prometheus_url")).start()
    elif "recovery" in tags:
        s.history.append("recovery", phase="start", name=name)


def after_activity_control(context: dict, state: dict = None, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is None or not s.method_started or s.in_hypothesis:
        return
    tags = context.get("tags") or []
    state = state or {}
    # Whatever the provider: a process that exited non-zero, an HTTP answer outside what the step
    # expects and a Python step that raised are all failures (Chaos Toolkit calls the first two
    # "succeeded").
    ok, why = step_outcome(context, state)
    output = state.get("output")
    detail = output if state.get("status") == "succeeded" else "".join(state.get("exception") or [])[-500:].strip()
    section = "rollback" if s.in_rollbacks else "method"
    s.history.append("step", phase="end", name=context.get("name"), section=section, index=s.step_index,
                     ok=ok, detail=why if not ok else _brief(output))
    if section == "rollback":
        return
    if "fault" in tags:
        # A fault of ours returns evidence of its effect; the judge checks it (no effect: nothing tested).
        effect = detail.get("effect") if isinstance(detail, dict) and isinstance(detail.get("effect"), dict) else None
        landed = _landed_t(s, detail)
        s.history.append("fault", phase="end", name=context.get("name"), ok=ok, detail=detail if ok else why,
                         **({"effect": effect} if effect else {}), **({"landed_t": landed} if landed is not None else {}))
    elif "recovery" in tags:
        s.history.append("recovery", phase="end", name=context.get("name"), ok=ok, detail=detail if ok else why)
    elif "measure" in tags:  # a measurement worth keeping as evidence (e.g. the monitoring gap)
        s.history.append("marker", name=context.get("name"), detail=detail, ok=ok)


def after_method_control(context: dict, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is not None:
        measure.finish_measurement(s)
        if s.stop_reason:  # roll back now: the rollbacks run, the run ends interrupted
            raise InterruptExecution(s.stop_reason)


def after_rollback_control(context: dict, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is not None:
        s.in_rollbacks = False


def after_experiment_control(context: dict, state: dict = None, configuration: dict = None, **kwargs) -> None:
    s = _session(configuration)
    if s is None:
        return
    journal = state if isinstance(state, dict) else {}
    if journal.get("status") == "interrupted" and not s.self_aborted:
        s.history.append("marker", name="interrupted", detail="the run was interrupted")
    s.stop_instruments()
    if s.owned_by_runner:
        return  # the runner checks after its safety net and judges once it knows whether a signal ended the run
    measure.check_after_rollbacks(s)
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
# The load's shape

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


# Internals ---------------------------------------------------------------------------------

def _redact_chaos_logs(secrets: list[str]) -> None:
    """Stock `chaos run` logs to its own file (chaostoolkit.log in the working folder): what it
    logged of the run so far is masked too. Its last lines ("Experiment ended ...") carry no output."""
    for handler in logging.getLogger("chaostoolkit").handlers:
        if isinstance(handler, logging.FileHandler):
            handler.flush()
            # In place (the handler appends to this very file afterwards), not by replacing it.
            redact_file(handler.baseFilename, secrets, in_place=True)


def _landed_t(s: RunSession, output) -> float | None:
    """When the fault says it landed (`landed_at`, epoch seconds: the signal sent, the statement
    committed), on the run's clock: RTO and RPO are measured from there, not from when the step
    began (a fault's own preparations take tens of milliseconds)."""
    landed = output.get("landed_at") if isinstance(output, dict) else None
    if not isinstance(landed, (int, float)) or isinstance(landed, bool):
        return None
    return round(s.history.now() - (time.time() - float(landed)), 6)


def _brief(output, limit: int = 2000):
    """A step's output as evidence, bounded (a process's stdout can be large)."""
    text = json.dumps(output, default=str)
    return output if len(text) <= limit else text[:limit] + "…"


def _session(configuration: dict | None) -> RunSession | None:
    return (configuration or {}).get(SESSION_KEY)


def _brief(value, limit: int = 300):
    """A probe's answer as the history keeps it: JSON scalars as they are, a traceback (Chaos
    Toolkit keeps one as a list of lines) by its last line, anything else as short text."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        value = next((v for v in reversed(value) if v.strip()), "")
    text = " ".join((value if isinstance(value, str) else repr(value)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
