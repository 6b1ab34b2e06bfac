"""The game-day control: a Chaos Toolkit control that turns an experiment into a measured run.

Declared in an experiment as
    controls: [{name: bcp-gameday, provider: {type: python, module: harness.control}}]
it works the same under stock `chaos --no-version-check run` and under `gameday run`:

  configure        resolve the scenario's objectives (bcp.yaml + extensions.bcp), open the history
  before method    start the sampler and the load generator, warm up (writes must be acknowledged)
  fault/recovery   activities tagged `fault` / `recovery` are stamped start/end in the history;
                   the output of activities tagged `measure` is kept as a marker
  after method     wait until the service is stable again (or the scenario's timeout), stop the
                   load, final read of every attempted key, critical functions, integrity checks,
                   detection evidence from Prometheus
  after experiment compute the verdict from the history, store it in the journal under `bcp`,
                   write verdict.json, journal.json and the run report

chaoslib swallows exceptions raised by controls (and drops a control whose configure fails), so
configuration errors are kept and raised as InterruptExecution before anything is injected.
"""
from __future__ import annotations

import json
import os
import secrets as _secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from chaoslib.exceptions import InterruptExecution

from harness import checks, history as history_mod, objectives as objectives_mod, target as target_mod
from harness.checkers import verdict as compute_verdict
from harness.history import History
from harness.recorders.load import LoadGenerator
from harness.recorders.sampler import Sampler

RUN_DIR_ENV = "GAMEDAY_RUN_DIR"
REPORTS_DIR_ENV = "GAMEDAY_REPORTS_DIR"
OBJECTIVES_ENV = "GAMEDAY_OBJECTIVES"
SAMPLER_PROBES = ("api", "ready")


@dataclass
class _Run:
    run_id: str
    run_dir: Path
    history: History
    target_path: str | None
    objectives: dict
    recorders: dict
    experiment: dict
    started: str
    sampler: Sampler | None = None
    load: LoadGenerator | None = None
    method_started: bool = False
    fault_start_epoch: float | None = None
    fault_start_t: float | None = None
    finished_checks: bool = False
    self_aborted: bool = False  # we stopped the run ourselves (not a signal): an error, not an interruption
    notes: list = field(default_factory=list)


_run: _Run | None = None
_config_error: str | None = None


def new_run_id(scenario: str) -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{scenario}-{_secrets.token_hex(2)}"


def prepare(experiment: dict) -> tuple[dict, dict]:
    """Resolve objectives and recorder settings for an experiment; raises ObjectivesError (one
    line) on bad input. Also used by the runner to validate before anything runs."""
    objectives = objectives_mod.load(os.environ.get(OBJECTIVES_ENV) or objectives_mod.DEFAULT_PATH)
    resolved = objectives_mod.for_experiment(objectives, experiment)
    unknown = checks.unknown_names(resolved)
    if unknown:
        raise objectives_mod.ObjectivesError(f"scenario {resolved['scenario']!r}: no such {unknown[0]} "
                                             f"(known: {', '.join(sorted(checks.CRITICAL_FUNCTIONS) + sorted(checks.INTEGRITY_CHECKS))})")
    return resolved, objectives_mod.recorder_settings(experiment)


# ---------------------------------------------------------------------------------------------
# Chaos Toolkit hooks

def configure_control(experiment: dict = None, configuration: dict = None, **kwargs) -> None:
    global _run, _config_error
    _run, _config_error = None, None
    try:
        resolved, recorders = prepare(experiment or {})
        target_path = (configuration or {}).get("gameday_target") or os.environ.get(target_mod.TARGET_ENV)
        target_mod.load(target_path)  # fail now, not halfway through
        run_id = new_run_id(resolved["scenario"])
        if os.environ.get(RUN_DIR_ENV):
            run_dir = Path(os.environ[RUN_DIR_ENV])
            run_id = run_dir.name
        else:
            reports = Path(os.environ.get(REPORTS_DIR_ENV) or target_mod.PROJECT_ROOT / "reports")
            run_dir = reports / run_id
        run_dir.mkdir(parents=True, exist_ok=True)
        hist = History(run_dir / "history.jsonl")
        _run = _Run(run_id=run_id, run_dir=run_dir, history=hist, target_path=target_path, objectives=resolved,
                    recorders=recorders, experiment=experiment, started=history_mod.utc_now())
        hist.append("marker", name="run_start", detail={"run_id": run_id, "scenario": resolved["scenario"],
                                                        "title": (experiment or {}).get("title")})
    except (objectives_mod.ObjectivesError, target_mod.TargetError, OSError) as e:
        _config_error = str(e)


def before_experiment_control(context: dict, **kwargs) -> None:
    if _config_error or _run is None:
        raise InterruptExecution(f"bcp: {_config_error or 'control not configured'}; nothing was injected")


def after_hypothesis_control(context: dict, state: dict = None, **kwargs) -> None:
    if _run is None:
        return
    state = state or {}
    probes = [{"name": p.get("activity", {}).get("name"), "status": p.get("status"),
               "tolerance_met": p.get("tolerance_met")} for p in state.get("probes", [])]
    _run.history.append("marker", name="steady_state", met=bool(state.get("steady_state_met")),
                        phase="after" if _run.method_started else "before", detail=probes)


def before_method_control(context: dict, **kwargs) -> None:
    if _run is None:
        return
    _run.method_started = True
    target = target_mod.load(_run.target_path)
    rec = _run.recorders
    probes = list(dict.fromkeys([*SAMPLER_PROBES, _run.objectives["probe"]]))
    _run.sampler = Sampler(_run.history, target, probes, interval_s=rec["interval_s"], timeout_s=rec["timeout_s"]).start()
    _run.load = LoadGenerator(target["api_url"], _run.history.path, _run.history.t0, users=rec["users"],
                              log_path=_run.run_dir / "load.log").start()
    _run.history.append("marker", name="recorders_started", detail={"probes": probes, **rec})
    time.sleep(rec["warmup_s"])
    acked = _count_acks(_run.history.path)
    if acked == 0 or not _run.load.running():
        _run.history.append("marker", name="steady_state", met=False, phase="before",
                            detail=f"no write acknowledged during the {rec['warmup_s']} s warm-up")
        _run.self_aborted = True
        raise InterruptExecution("the target acknowledged no writes before the fault; nothing was injected")


def before_activity_control(context: dict, **kwargs) -> None:
    if _run is None or not _run.method_started:
        return
    tags = context.get("tags") or []
    name = context.get("name")
    if "fault" in tags:
        t = _run.history.append("fault", phase="start", name=name)["t"]
        if _run.fault_start_t is None:
            _run.fault_start_t, _run.fault_start_epoch = t, time.time()
    elif "recovery" in tags:
        _run.history.append("recovery", phase="start", name=name)


def after_activity_control(context: dict, state: dict = None, **kwargs) -> None:
    if _run is None or not _run.method_started:
        return
    tags = context.get("tags") or []
    state = state or {}
    ok = state.get("status") == "succeeded"
    detail = state.get("output") if ok else "".join(state.get("exception") or [])[-500:].strip()
    if "fault" in tags:
        _run.history.append("fault", phase="end", name=context.get("name"), ok=ok, detail=detail)
    elif "recovery" in tags:
        _run.history.append("recovery", phase="end", name=context.get("name"), ok=ok, detail=detail)
    elif "measure" in tags:  # a measurement worth keeping as evidence (e.g. the monitoring gap)
        _run.history.append("marker", name=context.get("name"), detail=detail, ok=ok)


def after_method_control(context: dict, **kwargs) -> None:
    if _run is None:
        return
    _finish_measurement()


def after_experiment_control(context: dict, state: dict = None, **kwargs) -> None:
    if _run is None:
        return
    journal = state if isinstance(state, dict) else {}
    if journal.get("status") == "interrupted" and not _run.self_aborted:
        _run.history.append("marker", name="interrupted", detail="the run was interrupted")
    _stop_recorders()
    verdict = write_verdict(journal)
    if isinstance(state, dict):
        state["bcp"] = verdict


def cleanup_control(**kwargs) -> None:
    global _run
    if _run is not None:
        _stop_recorders()
        _run.history.close()
    _run = None


# ---------------------------------------------------------------------------------------------
# Measurement steps

def _count_acks(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        for line in f:
            if b'"kind":"op"' in line and b'"type":"ok"' in line:
                n += 1
    return n


def wait_until_stable(sampler: Sampler, probe: str, stability_s: float, deadline_t: float, now) -> bool:
    """Block until the last `stability_s` seconds of `probe` samples are all successes (and span
    that long), or until `deadline_t`. Returns whether it became stable."""
    while True:
        t = now()
        samples = sampler.samples(probe)
        last_fail = max((st for st, ok in samples if not ok), default=None)
        oks_after = [st for st, ok in samples if ok and (last_fail is None or st > last_fail)]
        if oks_after and oks_after[-1] - oks_after[0] >= stability_s and t - oks_after[-1] < 1.0:
            return True
        if t >= deadline_t:
            return False
        time.sleep(0.1)


def _finish_measurement() -> None:
    run = _run
    if run.finished_checks or run.sampler is None:
        return
    run.finished_checks = True
    obj = run.objectives
    h = run.history
    fault_t = run.fault_start_t if run.fault_start_t is not None else h.now()
    # Observe at least one stability window after the method, however fast recovery was.
    stable = wait_until_stable(run.sampler, obj["probe"], obj["stability_s"], fault_t + obj["timeout_s"], h.now)
    h.append("marker", name="stability", detail={"stable": stable, "probe": obj["probe"]})
    if run.load:
        run.load.stop()
    # The final read of every attempted key, from whichever server now accepts writes.
    from probes.database import read_keys
    attempted = _attempted_keys(h.path)
    # A target that never recovered gets a short final read: it proves "unknown" just as well.
    ok, found, detail = read_keys(attempted, run.target_path, timeout_s=min(60.0, obj["timeout_s"]) if stable else 10.0)
    h.append("final_read", keys=found, ok=ok, attempted=len(attempted), detail=detail,
             **({} if ok else {"error": detail}))
    for name in obj["critical_functions"]:
        ok, detail = checks.run_check(checks.CRITICAL_FUNCTIONS, name, run.target_path)
        h.append("function", name=name, ok=ok, detail=detail)
    for name in obj["integrity_checks"]:
        ok, detail = checks.run_check(checks.INTEGRITY_CHECKS, name, run.target_path)
        h.append("integrity", check=name, ok=ok, detail=detail)
    if obj.get("detection"):
        h.append("detection", **detection_evidence(run, obj["detection"]["alert"], 30.0 if stable else 0.0))
    run.sampler.stop()
    h.append("marker", name="observe_end")


def detection_evidence(run: _Run, alert: str, resolve_wait_s: float = 30.0) -> dict:
    """When Prometheus noticed: latency from the fault to the first sample at which `alert` was
    firing (Prometheus's own timestamps), and whether it stopped firing after recovery."""
    from probes.monitoring import alert_firing_times, query
    start = run.fault_start_epoch
    if start is None:
        return {"alert": alert, "fired": False, "detail": "no fault was injected"}
    try:
        # Still firing at the fault (an earlier incident not yet resolved) proves nothing about this one.
        prometheus = target_mod.load(run.target_path)["prometheus_url"]
        if query(prometheus, f'ALERTS{{alertname="{alert}",alertstate="firing"}}', at=start):
            return {"alert": alert, "fired": False, "detail": "alert was already firing when the fault began"}
        times = alert_firing_times(run.target_path, alert, start)
        if not times:
            return {"alert": alert, "fired": False, "resolved": False, "detail": "alert never fired"}
        latency = times[0] - start
        deadline = time.time() + resolve_wait_s
        resolved = False
        while time.time() < deadline:
            recent = alert_firing_times(run.target_path, alert, time.time() - 3)
            if not recent:
                resolved = True
                break
            time.sleep(1)
        return {"alert": alert, "fired": True, "latency_s": round(latency, 3), "resolved": resolved,
                "detail": f"first firing sample {latency:.1f} s after the fault; "
                          f"{'resolved' if resolved else 'still firing'} after recovery"}
    except Exception as e:
        return {"alert": alert, "fired": False, "detail": f"Prometheus could not be asked: {e}"}


def _attempted_keys(path: Path) -> list[str]:
    keys = []
    for event in history_mod.read(path):
        if event["kind"] == "op" and event["type"] == "invoke" and event.get("f") == "write":
            keys.append(event["key"])
    return keys


def _stop_recorders() -> None:
    if _run is None:
        return
    if _run.load is not None:
        _run.load.stop()
    if _run.sampler is not None:
        _run.sampler.stop()


def write_verdict(journal: dict) -> dict:
    run = _run
    events = history_mod.read(run.history.path)
    info = {"run_id": run.run_id, "experiment": run.experiment.get("__source__") or os.environ.get("GAMEDAY_EXPERIMENT"),
            "title": run.experiment.get("title"), "started": run.started, "ended": history_mod.utc_now()}
    verdict = compute_verdict(events, run.objectives, info)
    # A negative control (recovery disabled, must FAIL) is evidence about the harness, not the plan.
    bcp_ext = next((x for x in run.experiment.get("extensions") or [] if isinstance(x, dict) and x.get("name") == "bcp"), {})
    verdict["negative_control"] = bool(bcp_ext.get("negative_control"))
    (run.run_dir / "verdict.json").write_text(json.dumps(verdict, indent=2, default=str) + "\n")
    if journal:
        journal = dict(journal, bcp=verdict)
        (run.run_dir / "journal.json").write_text(json.dumps(journal, indent=2, default=str) + "\n")
    try:
        from harness.report.run import write_run_report
        write_run_report(run.run_dir)
    except Exception as e:  # the verdict stands without its pictures; say why they are missing
        (run.run_dir / "report-error.txt").write_text(f"report not rendered: {type(e).__name__}: {e}\n")
    return verdict
