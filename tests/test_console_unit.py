"""The console's parts without a stack: the incremental history tail, the phase line (the same in
the terminal and on the page), the run view's messages, and the application's doors (token,
CSRF, host) through Starlette's test client."""
from __future__ import annotations

import io
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from harness.console.app import Console, create_app
from harness.console.live import RunView, verdict_message
from harness.console.runs import Roots, live_run
from harness.records.tail import JsonlTail
from harness.report.gameday import LiveView
from harness.report.phase_line import PhaseLine

OBJECTIVES = {"probe": "api", "stability_s": 2, "critical_functions": ["ready"], "integrity_checks": ["amcheck"]}


def ev(kind: str, t: float, **fields) -> dict:
    return {"kind": kind, "t": t, "wall": f"2026-12-01T10:00:{t:06.3f}Z", **fields}


def a_run() -> list[dict]:
    """Warm-up, a fault, two failed samples, a recovery step, back up, stable, checks, judging."""
    return [ev("marker", 0.0, name="run_start"), ev("marker", 0.1, name="recorders_started"),
            ev("sample", 0.5, probe="api", ok=True, latency_s=0.01),
            ev("fault", 1.0, phase="start", name="kill-db"),
            ev("sample", 1.2, probe="api", ok=False), ev("sample", 1.3, probe="ready", ok=False),
            ev("fault", 1.4, phase="end", name="kill-db", ok=True),
            ev("recovery", 1.5, phase="start", name="restore_latest"),
            ev("sample", 2.0, probe="api", ok=False),
            ev("step", 2.1, name="something new", phase="start"),  # a kind this code has never seen
            ev("recovery", 3.0, phase="end", name="restore_latest", ok=True),
            ev("sample", 3.2, probe="api", ok=True, latency_s=0.02),
            ev("sample", 5.3, probe="api", ok=True, latency_s=0.02),
            ev("marker", 5.4, name="stability", detail={"stable": True}),
            ev("final_read", 5.5, keys=[], ok=True), ev("function", 5.6, name="ready", ok=True),
            ev("integrity", 5.7, check="amcheck", ok=False),
            ev("marker", 5.8, name="observe_end")]


def test_the_tail_reads_only_what_was_appended_and_waits_for_a_whole_line(tmp_path):
    path = tmp_path / "history.jsonl"
    tail = JsonlTail(path)
    assert tail.read() == []  # not there yet
    with open(path, "ab") as f:
        f.write(b'{"kind":"marker","t":0}\n{"kind":"sam')
    assert tail.read() == [{"kind": "marker", "t": 0}]
    offset = tail.offset
    with open(path, "ab") as f:
        f.write(b'ple","t":1}\nnot json\n')
    assert tail.read() == [{"kind": "sample", "t": 1}] and tail.unreadable == 1
    assert tail.offset > offset and tail.read() == [] and not tail.behind
    late = JsonlTail(path, from_end=True)
    with open(path, "ab") as f:
        f.write(b'{"kind":"x","t":2}\n')
    assert late.read() == [{"kind": "x", "t": 2}]


def test_the_phase_line_follows_a_run_and_ignores_kinds_it_does_not_know():
    line = PhaseLine(OBJECTIVES, {"kill-db": "kill_postgres_primary"})
    news = [s.news() for e in a_run() for s in line.feed(e)]
    news = [n for n in news if n]
    assert news[:3] == ["warming up", "fault injected (kill-db: kill_postgres_primary)",
                        "service DOWN (first failed api sample 0.2 s after the fault)"]
    assert "recovery step running (restore_latest)" in news and "recovery step done (restore_latest)" in news
    assert "stable 2/2 s" in news and news[-1] == "judging"
    assert line.words() == ("warming up · fault injected (kill-db: kill_postgres_primary) · service DOWN 2.0 s · "
                            "recovery step done (restore_latest) · recovered · stable 2/2 s · "
                            "checking data and functions 3/3, 1 failed · judging")
    line.finish("fail")
    assert line.words().endswith("judging · FAIL") and line.steps[-1].state == "failed"


def test_the_down_counter_runs_with_the_clock_and_a_second_outage_restarts_stability():
    line = PhaseLine(OBJECTIVES)
    for e in (ev("fault", 1.0, phase="start", name="f"), ev("sample", 1.5, probe="api", ok=False)):
        line.feed(e)
    assert line.words(now_t=4.0).endswith("service DOWN 2.5 s")
    for e in (ev("sample", 5.0, probe="api", ok=True), ev("sample", 6.0, probe="api", ok=False)):
        line.feed(e)
    assert "stable" not in line.words(now_t=6.5) and line.words(now_t=6.5).endswith("service DOWN 4.0 s, 2 outages")
    line.feed(ev("marker", 7.0, name="interrupted", reason="aborted by operator"))
    assert line.words(now_t=100).endswith("interrupted (aborted by operator): rolling back")


def test_a_timeout_overtaken_by_an_answer_is_no_new_outage():
    """The checker's rule, live: a request sent during the freeze that times out after an answer
    arrived was stuck behind the outage; a request sent after that answer that fails is a new one."""
    line = PhaseLine(OBJECTIVES)
    for e in (ev("fault", 1.0, phase="start", name="f"), ev("sample", 2.0, probe="api", ok=False, started=1.0),
              ev("sample", 4.02, probe="api", ok=True, started=2.5, watcher=True),
              ev("sample", 4.1, probe="api", ok=False, started=3.1, error="timeout")):
        line.feed(e)
    assert "DOWN again" not in " ".join(s.note or "" for s in line.steps) and line.outages == 1
    line.feed(ev("sample", 4.3, probe="api", ok=False, started=4.2))
    assert line.outages == 2


def test_a_steady_state_not_met_ends_the_line():
    line = PhaseLine(OBJECTIVES)
    line.feed(ev("marker", 0.1, name="recorders_started"))
    line.feed(ev("marker", 3.0, name="steady_state", phase="before", met=False))
    assert line.words().endswith("steady state NOT met before the fault: nothing injected")


def test_the_terminal_prints_one_line_per_phase_event_when_piped(tmp_path):
    history = tmp_path / "history.jsonl"
    history.write_text("")
    out = io.StringIO()
    view = LiveView(out, total=1)
    view.start("database-failure")
    view.watch(history, OBJECTIVES, {"kill-db": "kill_postgres_primary"}, poll_s=0.02)
    with open(history, "a") as f:
        for e in a_run():
            f.write(json.dumps(e) + "\n")
        f.write('{"kind":"op","t":1.0,"type":"ok","f":"write","key":"k"}\n')
    deadline = time.monotonic() + 5
    while "judging" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    view.finish("database-failure", "fail")
    lines = out.getvalue().splitlines()
    assert lines[0] == "[1/1] database-failure: started"
    assert any("fault injected (kill-db: kill_postgres_primary)" in x for x in lines)
    assert any("service DOWN (first failed api sample" in x for x in lines)
    assert lines[-1].startswith("[1/1] database-failure: FAIL in")
    assert not any("\r" in x or "\x1b" in x for x in lines)  # no redrawing in a log


def run_folder(tmp_path: Path, with_verdict: bool) -> Path:
    run_dir = tmp_path / "reports" / "20261201T100000Z-database-failure-abcd"
    run_dir.mkdir(parents=True)
    (run_dir / "session.json").write_text(json.dumps({"scenario": "database-failure", "objectives": OBJECTIVES,
                                                      "run_id": run_dir.name, "started": "2026-12-01T10:00:00.000Z",
                                                      "harness_pid": os.getpid()}))
    lines = [json.dumps(e) for e in a_run()]
    lines += ['{"kind":"op","t":0.6,"wall":"x","type":"invoke","f":"write","key":"k1"}',
              '{"kind":"op","t":0.7,"wall":"x","type":"ok","f":"write","key":"k1"}',
              '{"kind":"op","t":1.3,"wall":"x","type":"info","f":"write","key":"k2"}']
    (run_dir / "history.jsonl").write_text("\n".join(lines) + "\n")
    if with_verdict:
        (run_dir / "verdict.json").write_text(json.dumps({
            "status": "fail", "reason": "1 criterion failed", "measured": {"rto_s": 2.2},
            "criteria": [{"name": "rto", "passed": True, "measured": 2.2, "objective": 900, "detail": "ok"},
                         {"name": "a_criterion_from_the_future", "passed": False, "measured": {"x": 1}, "objective": None,
                          "detail": "new"}]}))
    return run_dir


def test_the_run_view_sends_phases_bins_writes_and_the_verdict(tmp_path):
    run_dir = run_folder(tmp_path, with_verdict=True)
    roots = Roots()
    roots.add(tmp_path / "reports")
    messages = RunView(run_dir, roots).poll()
    names = [name for name, _ in messages]
    assert names[0] == "run" and "verdict" in names and "bins" in names
    data = dict(messages)
    assert data["writes"] == {"acked": 1, "failed": 0, "in_doubt": 1, "attempted": 1}
    assert data["run"]["url"] == f"/run/0/{run_dir.name}"
    assert data["line"]["words"].endswith("judging · FAIL")
    assert any(m["kind"] == "step" and m["name"] == "something new" for n, m in messages if n == "log")
    v = data["verdict"]
    assert v["status"] == "fail" and [c["title"] for c in v["criteria"]] == ["Recovery time (RTO)", "a criterion from the future"]
    assert v["criteria"][1]["passed"] is False


def test_the_live_run_is_found_from_the_home_registry(tmp_path):
    run_dir = run_folder(tmp_path, with_verdict=False)
    home = tmp_path / "home"
    (home / "runs" / "active").mkdir(parents=True)
    (home / "runs" / "active" / f"{os.getpid()}.json").write_text(json.dumps(
        {"pid": os.getpid(), "started": time.time() - 60, "reports": str(tmp_path / "reports"), "experiments": ["x.yaml"]}))
    entry, found = live_run(home, Roots())
    assert entry["pid"] == os.getpid() and found == run_dir


@pytest.fixture
def client(tmp_path):
    home = tmp_path / "home"
    (home / "runs").mkdir(parents=True)
    reports = tmp_path / "reports"
    shutil.copytree(Path(__file__).parent / "fixtures" / "reports" / "reports", reports)
    console = Console(home=home, reports_dir=reports, token="the-right-token", port=19999)
    with TestClient(create_app(console), base_url="http://127.0.0.1:19999") as c:
        yield c, console


def test_every_door_needs_the_token(client):
    c, console = client
    for path in ("/", "/runs", "/gamedays", "/quarterly", "/events", "/files/0/gameday-2026-11-27/01-database-failure/verdict.json"):
        assert c.get(path).status_code == 403, path
        assert c.get(path + ("&" if "?" in path else "?") + "token=wrong").status_code == 403, path
    assert c.post("/abort?token=wrong", data={"csrf": console.csrf}).status_code == 403
    first = c.get("/runs?token=the-right-token&status=fail", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/runs?status=fail"
    assert "HttpOnly" in first.headers["set-cookie"] and "SameSite=strict" in first.headers["set-cookie"]
    c.cookies.set(console.cookie, "the-right-token")
    page = c.get("/runs?status=fail")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert "02-database-failure-no-restore" in page.text and "01-database-failure" not in page.text
    assert c.get("/runs", headers={"host": "evil.example"}).status_code == 403  # DNS rebinding
    assert c.get("/files/0/../../etc/passwd").status_code == 404


def test_the_abort_needs_the_pages_csrf_token_and_origin(client):
    c, console = client
    c.cookies.set(console.cookie, "the-right-token")
    assert c.post("/abort", data={}).status_code == 403
    assert c.post("/abort", data={"csrf": "forged"}).status_code == 403
    assert c.post("/abort", data={"csrf": console.csrf}, headers={"origin": "http://evil.example"}).status_code == 403
    done = c.post("/abort", data={"csrf": console.csrf}, headers={"accept": "application/json",
                                                                  "origin": "http://127.0.0.1:19999"})
    assert done.status_code == 202 and done.json()["state"] == "none"  # no run in progress: nothing to stop


def test_verdict_message_renders_any_criterion():
    v = verdict_message({"status": "pass", "criteria": [{"name": "rpo", "passed": True, "measured": 0, "objective": 300}]},
                        None)
    assert v["criteria"][0]["bcp"] == "RPO < 5 minutes maintained" and v["criteria"][0]["objective"] == "5 min"
