"""The harm library: real harms injected into the real stack through FOREIGN providers (plain psql,
/bin/kill, a shell, an HTTP endpoint of someone else's), each with the verdict it must get.

The harness's own faults return evidence and are tagged; here nothing helps it: a harm lands in a
column, a row, a component or a step the harness did not choose, and the verdict must still say
so. A harm within the plan's objectives is measured and passes; the harmless controls must pass
(no false alarm). Objectives: tests/ground_truth/bcp.yaml (the BCP's own, with a 2 s stability
window and a 15 s timeout so the library runs in minutes).

Data harms touch only rows of this test's own "other writer" (keys foreign-…) and of the run
itself, never the heartbeat's, so the rest of the session's tests find the stack as it was.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from harness import faults, targets
from harness.core import procs
from harness.core.pgroles import admin_dsn
from harness.run import runner
from harness.checkers.loss import witness_window_s
from harness.records.shards import run_events
from harness.run.plan import OBJECTIVES_ENV, plan

pytestmark = pytest.mark.integration
HERE = Path(__file__).resolve().parent
OBJECTIVES = HERE / "ground_truth" / "bcp.yaml"
FOREIGN_ROWS = 200  # another writer's rows, there before every run
RUN_ROWS = "request_id like '%-w-%'"  # the run's own load writes (earlier runs' are removed before each harm)


@dataclass
class Harm:
    name: str
    status: str                       # the verdict it must get
    failing: tuple[str, ...] = ()     # criteria that must fail (others may too)
    method: list = field(default_factory=list)
    rollbacks: list = field(default_factory=list)
    scenario: str = "harm"
    objectives: dict | None = None
    recorders: dict | None = None
    check: object = None              # more to assert on the verdict


# -- foreign providers ------------------------------------------------------------------------

def psql(name: str, sql: str, *tags: str) -> dict:
    return {"type": "action", "name": name, "tags": list(tags),
            "provider": {"type": "process", "path": "psql",
                         "arguments": ["${app_dsn}", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]}}


def shell(name: str, script: str, *tags: str, probe: bool = False) -> dict:
    return {"type": "probe" if probe else "action", "name": name, "tags": list(tags),
            "provider": {"type": "process", "path": "sh", "arguments": ["-c", script]}}


def http(name: str, url: str, *tags: str, method: str = "GET", expected: int | None = None, probe: bool = False) -> dict:
    step = {"type": "probe" if probe else "action", "name": name, "tags": list(tags),
            "provider": {"type": "http", "url": url, "method": method, "timeout": 5}}
    if expected is not None:
        step["expected_status"] = expected
    return step


def freeze_api(seconds: float) -> str:
    """A shell line: the whole API (gunicorn's process group) stopped for `seconds`, then resumed."""
    return f'g=$(cat "${{api_pidfile}}"); /bin/kill -s STOP -- -$g; sleep {seconds}; /bin/kill -s CONT -- -$g'


# A real 2 s outage with no evidence of its own (shorter than the sampler's 1 s probe timeout it
# would read as latency, not as an outage).
OUTAGE = shell("freeze-the-api-with-kill", freeze_api(2), "fault")

HARMS = [
    # -- the whole row: any column, as stored -----------------------------------------------
    Harm("every row's image_features rewritten by plain SQL", "fail", ("corrupted_writes", "existing_rows"),
         [psql("rewrite-image-features", f"update optimization_results set image_features = image_features || "
                                         f"'{{\"rewritten\": true}}' where request_id like 'foreign-%' or ({RUN_ROWS})",
               "fault")]),
    Harm("one column the client never sees (target_quality) changed on the run's rows", "fail", ("corrupted_writes",),
         [psql("change-target-quality", f"update optimization_results set target_quality = 0.123 where {RUN_ROWS}",
               "fault")]),
    Harm("created_at moved on another writer's rows", "fail", ("existing_rows",),
         [psql("move-created-at", "update optimization_results set created_at = created_at - interval '1 day' "
                                  "where request_id like 'foreign-%'", "fault")]),
    # -- rows the run never wrote ----------------------------------------------------------------
    Harm("another writer's rows deleted", "fail", ("existing_rows",),
         [psql("delete-foreign-rows", "delete from optimization_results where request_id like 'foreign-%'", "fault")]),
    Harm("phantom rows inserted in the run's own key space", "fail", ("corrupted_writes",),
         [psql("insert-phantoms", "insert into optimization_results (request_id, image_features, target_quality, "
                                  "parameters, predicted_ssim, model_version) select request_id || 'x', image_features, "
                                  "target_quality, parameters, predicted_ssim, model_version from optimization_results "
                                  f"where request_id like '%-w-%' and {RUN_ROWS} limit 3", "fault")]),
    # -- acknowledged writes lost ----------------------------------------------------------------
    Harm("the run's acknowledged writes deleted (RPO objective 1 s)", "fail", ("rpo",),
         [psql("delete-recent-writes", f"delete from optimization_results where {RUN_ROWS}", "fault")],
         objectives={"rpo_s": 1}, recorders={"warmup_s": 3.0}),  # more than 1 s of writes to lose
    Harm("the run's acknowledged writes deleted (within the 300 s objective: measured, passes)", "pass", (),
         [psql("delete-recent-writes", f"delete from optimization_results where {RUN_ROWS}", "fault")],
         objectives={"rpo_s": 300}, check=lambda v: v["measured"]["lost_writes"] > 0 and 0 < v["measured"]["rpo_s"] < 300),
    # -- the integrity of the table --------------------------------------------------------------
    Harm("the unique index on request_id dropped", "fail", ("data_integrity",),
         [psql("drop-primary-key", "alter table optimization_results drop constraint optimization_results_pkey",
               "fault")],
         rollbacks=[psql("put-the-primary-key-back", "alter table optimization_results add primary key (request_id)")]),
    # -- outages, measured ----------------------------------------------------------------------
    Harm("the API frozen 2 s with kill -STOP (RTO objective 1 s)", "fail", ("rto",),
         [shell("freeze-the-api-with-kill", freeze_api(2), "fault")], objectives={"rto_s": 1}),
    Harm("the API killed with kill -9 (automatic restart: measured, passes)", "pass", (),
         [shell("kill-the-api-with-kill-9", '/bin/kill -s KILL -- -$(cat "${api_pidfile}")', "fault")],
         objectives={"timeout_s": 60},  # a restarted API loads its models before it answers
         check=lambda v: v["measured"]["rto_s"] > 0.3 and v["measured"]["error_count"] > 0),
    Harm("an untagged step takes the API down before a harmless fault", "fail", ("rto",),
         [shell("an-untagged-step-freezes-the-api", freeze_api(2)), shell("a-fault-that-does-nothing", "true", "fault")],
         objectives={"rto_s": 1}),
    Harm("the API down during a scenario that names monitoring", "fail", ("service_rto",),
         [shell("freeze-the-api-with-kill", freeze_api(3), "fault")], scenario="harm-monitoring",
         objectives={"rto_s": 1}, check=lambda v: next(c for c in v["criteria"] if c["name"] == "rto")["passed"]),
    # -- every step, whatever its provider -------------------------------------------------------
    Harm("/bin/false as the recovery step after a real outage", "fail", ("recovery_procedure",),
         [OUTAGE, {"type": "action", "name": "recover-with-bin-false", "tags": ["recovery"],
                   "provider": {"type": "process", "path": "/bin/false"}}], scenario="harm-manual"),
    Harm("an HTTP recovery step answered 500", "fail", ("recovery_procedure",),
         [OUTAGE, http("recover-through-a-runbook-webhook", "${hook}/500", "recovery", method="POST")],
         scenario="harm-manual"),
    Harm("an HTTP recovery step answered 500 where it declares 500 expected (passes)", "pass", (),
         [OUTAGE, http("recover-through-a-runbook-webhook", "${hook}/500", "recovery", method="POST", expected=500)],
         scenario="harm-manual"),
    Harm("a process fault step that exits 3", "error", (), [shell("a-fault-that-fails", "exit 3", "fault")]),
    Harm("an HTTP fault step answered 404", "error", (), [http("a-fault-through-http", "${hook}/404", "fault")]),
    Harm("an untagged method action that exits 1", "error", (),
         [shell("prepare-something", "exit 1"), OUTAGE]),
    Harm("a method probe that exits 2", "fail", ("every_step",),
         [OUTAGE, shell("check-something", "exit 2", probe=True)]),
    # -- after the rollbacks -----------------------------------------------------------------------
    Harm("a rollback that deletes rows", "fail", ("after_rollbacks",), [OUTAGE],
         rollbacks=[psql("a-rollback-that-deletes", f"delete from optimization_results where {RUN_ROWS}")]),
    Harm("a rollback step that exits 1", "fail", ("after_rollbacks",), [OUTAGE],
         rollbacks=[shell("a-rollback-that-fails", "exit 1")]),
    # The liveness checker would replace a hung API (the system's own recovery): it is frozen too.
    Harm("a rollback that leaves the API frozen", "fail", ("after_rollbacks",), [OUTAGE],
         objectives={"timeout_s": 8},  # the steady state is awaited that long after the rollbacks, in vain
         rollbacks=[shell("a-rollback-that-freezes-the-api", '/bin/kill -s STOP ${liveness_pid}; '
                                                             '/bin/kill -s STOP -- -$(cat "${api_pidfile}")')]),
    # -- harmless controls: no false alarm --------------------------------------------------------
    Harm("a harmless UPDATE beside a real outage (passes)", "pass", (),
         [OUTAGE, psql("update-nothing", "update optimization_results set predicted_ssim = predicted_ssim where false")]),
    Harm("an HTTP probe answered 200 beside a real outage (passes)", "pass", (),
         [OUTAGE, http("the-api-answers", "${api_url}/health", probe=True)]),
]


@pytest.fixture(scope="module")
def hook():
    """Someone else's HTTP endpoint (a runbook webhook): /500 answers 500, /404 answers 404."""
    class Hook(BaseHTTPRequestHandler):
        def _answer(self):
            code = int(self.path.strip("/") or 200)
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        do_GET = do_POST = _answer

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def stack_for_harm(healthy_stack, monkeypatch):
    """The session stack with another writer's rows in it; afterwards whatever a harm left is put
    right (the API resumed, the key restored, the other writer's rows removed)."""
    monkeypatch.setenv(OBJECTIVES_ENV, str(OBJECTIVES))
    t = healthy_stack
    with psycopg.connect(t["app_dsn"], autocommit=True) as c:
        c.execute(f"delete from optimization_results where request_id like 'foreign-%' or {RUN_ROWS}")
        c.execute("insert into optimization_results (request_id, image_features, target_quality, parameters, "
                  "predicted_ssim, model_version, created_at) select 'foreign-' || g, '{\"edge_density\": 0.1}', 0.9, "
                  "'{\"color_precision\": 4}', 0.8, 'another-writer', now() - interval '2 hours' "
                  "from generate_series(1, %s) g", (FOREIGN_ROWS,))
    liveness = targets.load(Path(t["home"])).program_pid("liveness")
    yield t
    group = procs.read_pid(t["api_pidfile"])
    for resume in ((lambda: os.killpg(group, signal.SIGCONT)) if group else None,
                   lambda: os.kill(liveness, signal.SIGCONT)):
        try:
            if resume:
                resume()
        except ProcessLookupError:
            pass
    with psycopg.connect(admin_dsn(t), autocommit=True) as c:
        if not c.execute("select 1 from pg_constraint where conname = 'optimization_results_pkey'").fetchone():
            c.execute("delete from optimization_results a using optimization_results b "
                      "where a.request_id = b.request_id and a.ctid < b.ctid")
            c.execute("alter table optimization_results add primary key (request_id)")
        c.execute("delete from optimization_results where request_id like 'foreign-%' or request_id like '%-w-%x'")


def verdict_dir(tmp_path: Path) -> Path:
    [run] = [p for p in (tmp_path / "reports").iterdir() if (p / "verdict.json").exists()]
    return run


def _with(values: dict, steps: list) -> list:
    """The steps with ${name} replaced by the stack's own values (a shell line, a psql DSN, a URL)."""
    text = json.dumps(steps)
    for name, value in values.items():
        text = text.replace("${" + name + "}", json.dumps(str(value))[1:-1])
    return json.loads(text)


class _NoSignals:
    received = None
    reason = None
    handler = None  # no SIGTERM handler of the runner's for the control to put back

    def aborted(self) -> bool:
        return False


@pytest.mark.parametrize("harm", HARMS, ids=lambda h: h.name)
def test_a_harm_gets_the_verdict_it_must(harm, stack_for_harm, hook, tmp_path):
    t = stack_for_harm
    values = {"app_dsn": t["app_dsn"], "api_pidfile": t["api_pidfile"], "api_url": t["api_url"], "hook": hook,
              "liveness_pid": targets.load(Path(t["home"])).program_pid("liveness")}
    experiment = {
        "version": "1.0.0", "title": f"Harm: {harm.name}", "description": "tests/test_ground_truth.py",
        "tags": ["ground-truth"],
        "extensions": [{"name": "bcp", "scenario": harm.scenario,
                        # rpo_s 40: a 4 s witness window (harness/checkers/loss.py), so a harm that follows
                        # an outage waits seconds, not ten, for the heartbeat to witness the window again.
                        "objectives": {"rpo_s": 40, **(harm.objectives or {})},
                        "recorders": {"warmup_s": 1.0, "users": 2, **(harm.recorders or {})}}],
        "controls": [{"name": "bcp-gameday", "provider": {"type": "python", "module": "harness.run.control"}}],
        "steady-state-hypothesis": {"title": "The API is ready", "probes": [
            {"type": "probe", "name": "api-ready", "tolerance": True,
             "provider": {"type": "python", "module": "probes.http", "func": "api_ready"}}]},
        "method": _with(values, harm.method),
        "rollbacks": _with(values, harm.rollbacks),
    }
    path = tmp_path / "harm.json"
    path.write_text(json.dumps(experiment))
    planned = runner.Planned(path, experiment, plan(experiment, path))
    verdict = runner.run_one(planned, tmp_path / "reports", Path(t["home"]) / targets.TARGET_FILE, _NoSignals(),
                             log=lambda m: None)
    failed = {c["name"] for c in verdict["criteria"] if not c["passed"]}
    assert verdict["status"] == harm.status, f"{harm.name}: {verdict['status']}: {verdict['reason']}"
    assert set(harm.failing) <= failed, f"{harm.name}: failed {sorted(failed)}, must fail {harm.failing}"
    if harm.check is not None:
        assert harm.check(verdict), f"{harm.name}: {json.dumps(verdict['measured'])[:800]}"
    assert not faults.pending()  # nothing of the run's own is left to undo


def test_a_frozen_heartbeat_leaves_the_rpo_unproven(stack_for_harm, tmp_path):
    """The heartbeat frozen (kill -STOP) for longer than the witness window before the fault, and
    the load paced down to one write every 5 s: the recovery point rests on too few acknowledged
    writes, so the run is an ERROR naming them, never a PASS."""
    t = stack_for_harm
    rpo_s = 40
    window = witness_window_s(rpo_s)
    pid = targets.load(Path(t["home"])).program_pid("heartbeat")
    os.kill(pid, signal.SIGSTOP)
    try:
        # The heartbeat's last beats age out of the window first; the run then waits for new ones in vain.
        time.sleep(window + 1.0)
        experiment = {
            "version": "1.0.0", "title": "Harm: the heartbeat frozen", "description": "tests/test_ground_truth.py",
            "extensions": [{"name": "bcp", "scenario": "harm", "objectives": {"rpo_s": rpo_s},
                            "recorders": {"warmup_s": 1.0, "users": 1, "writes_per_s": 0.2}}],
            "controls": [{"name": "bcp-gameday", "provider": {"type": "python", "module": "harness.run.control"}}],
            "steady-state-hypothesis": {"title": "The API is ready", "probes": [
                {"type": "probe", "name": "api-ready", "tolerance": True,
                 "provider": {"type": "python", "module": "probes.http", "func": "api_ready"}}]},
            "method": _with({"api_pidfile": t["api_pidfile"]}, [OUTAGE]), "rollbacks": [],
        }
        path = tmp_path / "frozen-heartbeat.json"
        path.write_text(json.dumps(experiment))
        planned = runner.Planned(path, experiment, plan(experiment, path))
        verdict = runner.run_one(planned, tmp_path / "reports", Path(t["home"]) / targets.TARGET_FILE, _NoSignals(),
                                 log=lambda m: None)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert verdict["status"] == "error", verdict["reason"]
    assert "RPO is unproven: too few witnesses" in verdict["reason"] and "largest gap" in verdict["reason"]
    assert verdict["measured"]["witnesses"]["ok"] is False
    waited = [e for e in run_events(Path(verdict_dir(tmp_path)) / "history.jsonl") if e.get("name") == "witness_wait"]
    assert waited and waited[0]["waited_s"] >= window, "the run did not wait for witnesses before its fault"
