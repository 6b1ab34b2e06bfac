"""A game day's index over its runs: summary.json, index.html (templates/gameday.html.j2),
junit.xml; the terminal table printed at the end; and the live progress view printed while it runs.

The game day's status is "pass" only if every run passed. Otherwise it is "fail" when any run
failed a criterion, else "interrupted" when any run was interrupted, else "error".
"""
from __future__ import annotations

import io
import json
import os
import shutil
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from harness.checkers import error_budget
from harness.records.tail import JsonlTail
from harness.report import junit
from harness.report.page import fmt_int, fmt_s, fmt_when, is_number, render, status_of
from harness.report.phase_line import PhaseLine, run_clock_epoch
from harness.report.plan_results import plan_vs_results
from harness.report.rundir import REPORT_HTML, iso, load_verdict, measured, objectives, read_json
from harness.report.run import write_run_report

__all__ = ["write_gameday_summary", "gameday_status", "format_table", "LiveView"]


def gameday_status(statuses: list[str]) -> str:
    if statuses and all(s == "pass" for s in statuses):
        return "pass"
    for s in ("fail", "interrupted"):
        if s in statuses:
            return s
    return "error"


def _run_row(run_dir: Path, base: Path) -> tuple[dict, dict]:
    verdict, problem = load_verdict(run_dir)
    report = run_dir / REPORT_HTML
    if not report.exists():  # links must lead somewhere: render what the run left
        try:
            write_run_report(run_dir)
        except Exception as e:  # the index is still written; the row says why the link is dead
            problem = problem or f"report.html could not be written: {e}"
    m, o = measured(verdict), objectives(verdict)
    row = {
        "run_id": str(verdict.get("run_id") or run_dir.name),
        "scenario": str(verdict.get("scenario") or "unknown"),
        "status": status_of(verdict),
        "reason": str(problem or verdict.get("reason") or ""),
        "rto_s": m.get("rto_s"),
        "rto_objective_s": o.get("rto_s"),
        # The loss the RPO criterion judged: the recovery point's far end plus the span of writes
        # acknowledged after the fault and lost (the plain RPO alone would read "0 s" beside
        # thousands of lost writes when a recovery discards what came after the incident).
        "rpo_s": m["data_loss_s"] if is_number(m.get("data_loss_s")) else m.get("rpo_s"),
        "rpo_after_fault_s": m.get("loss_after_fault_s") if is_number(m.get("loss_after_fault_s")) else None,
        "rpo_objective_s": o.get("rpo_s"),
        # Heartbeats already lost or changed when this run began: damage an earlier incident did
        # that nobody judged (set aside, not counted against this run's fault).
        "heartbeat_set_aside": int(m.get("heartbeat_set_aside") or 0),
        "lost_writes": m.get("lost_writes"),
        "acked_writes": m.get("acked_writes"),
        "detection_latency_s": m.get("detection_latency_s"),
        "downtime_s": m.get("downtime_s"),
        "phases": m.get("phases") if isinstance(m.get("phases"), dict) else None,
        "negative_control": bool(verdict.get("negative_control")),
        "report": Path(os.path.relpath(report, base)).as_posix(),
        # A mark per criterion in the index (the reason sentence is there on demand).
        "criteria": [{"name": str(c.get("name")), "passed": c.get("passed")} for c in verdict.get("criteria") or []
                     if isinstance(c, dict)],
    }
    return row, verdict


def write_gameday_summary(gameday_dir: str | os.PathLike, run_dirs: list[str | os.PathLike],
                          started: str | datetime | None, ended: str | datetime | None,
                          calibration: dict | None = None) -> dict:
    """Write summary.json, index.html and junit.xml into gameday_dir; returns the summary.
    A run whose report.html is missing gets one rendered, so every link works. `calibration`
    is the day's instrument check (harness.run.runner.calibrate): an untrustworthy instrument makes
    the whole game day an error."""
    gameday_dir = Path(gameday_dir)
    gameday_dir.mkdir(parents=True, exist_ok=True)
    rows, verdicts = [], []
    for d in run_dirs:
        row, verdict = _run_row(Path(d), gameday_dir)
        rows.append(row)
        verdicts.append(verdict)
    status = gameday_status([r["status"] for r in rows])
    if calibration is not None and not calibration.get("trustworthy"):
        status = "error"
    summary = {
        "gameday_id": gameday_dir.resolve().name,
        "started": iso(started) if started else None,
        "ended": iso(ended) if ended else None,
        "status": status,
        "calibration": calibration,
        # Only the plan's own scenarios spend the budget: a negative control's outage is on purpose.
        "error_budget": error_budget([r.get("downtime_s") for r in rows if not r.get("negative_control")]),
        "runs": rows,
        "warnings": unjudged_damage(rows),
    }
    plan, _ = read_json(gameday_dir / "plan.json")  # kept here by `gameday run --plan`
    if isinstance(plan, dict):
        summary["plan"] = plan_vs_results(plan, rows)
    (gameday_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
                                              encoding="utf-8")
    (gameday_dir / "index.html").write_text(render_index(summary), encoding="utf-8")
    (gameday_dir / "junit.xml").write_bytes(junit.gameday_xml(verdicts, name=f"gameday {summary['gameday_id']}"))
    return summary


def unjudged_damage(rows: list[dict]) -> list[str]:
    """One sentence per run whose baseline found heartbeats already lost or changed: damage done
    before that run (by an earlier scenario or incident) that no run judged."""
    return [f"{r['scenario']} ({r['run_id']}): {r['heartbeat_set_aside']} heartbeat(s) already lost or changed "
            f"before its fault: damage nobody judged (an earlier scenario or incident did it; look there)"
            for r in rows if r.get("heartbeat_set_aside")]


def _vs(value: Any, objective: Any, none: str) -> str:
    return f"{fmt_s(value, none)} / {fmt_s(objective)}"


def _rpo(row: dict, none: str) -> str:
    """The loss judged against the RPO, saying how much of it was acknowledged after the fault."""
    after = row.get("rpo_after_fault_s")
    note = f" (incl. {fmt_s(after)} after the fault)" if is_number(after) and after > 0 else ""
    return f"{fmt_s(row.get('rpo_s'), none)}{note} / {fmt_s(row.get('rpo_objective_s'))}"


def _lost(row: dict) -> str:
    lost, acked = row.get("lost_writes"), row.get("acked_writes")
    if not is_number(lost):
        return "unknown" if is_number(acked) and acked else "—"
    return f"{int(lost)} / {fmt_int(acked)}" if is_number(acked) else str(int(lost))


def _none_words(row: dict) -> tuple[str, str]:
    """How to say "no value" for RTO / RPO: a run that never got to its fault has neither."""
    had_fault = row.get("status") in ("pass", "fail")
    return ("not recovered" if had_fault else "—"), ("unknown" if had_fault else "—")


def render_index(summary: dict) -> str:
    """The game day's index.html (templates/gameday.html.j2) from its summary."""
    runs = summary.get("runs", [])
    counts = {s: sum(1 for r in runs if r["status"] == s) for s in ("pass", "fail", "error", "interrupted")}
    rows = []
    for r in runs:
        rto_none, rpo_none = _none_words(r)
        rows.append({**{k: r[k] for k in ("scenario", "run_id", "status", "reason", "report")},
                     "criteria": [c for c in r.get("criteria") or [] if isinstance(c, dict)],
                     "rto": _vs(r["rto_s"], r["rto_objective_s"], rto_none),
                     "rpo": _rpo(r, rpo_none),
                     "lost": _lost(r), "detection": fmt_s(r["detection_latency_s"]),
                     "phases": phases_words(r.get("phases"))})
    return render(
        "gameday.html.j2",
        title=f"{summary.get('status', 'error').upper()} · game day {summary.get('gameday_id')}",
        gameday_id=summary.get("gameday_id"),
        status=summary.get("status", "error"),
        tally=", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no runs",
        period=" – ".join(fmt_when(x) for x in (summary.get("started"), summary.get("ended")) if x),
        runs=rows,
        calibration=calibration_line(summary.get("calibration")),
        budget=budget_line(summary.get("error_budget")),
        plan=summary.get("plan"),
        warnings=summary.get("warnings") or [],
    )


def phases_words(p: dict | None) -> str:
    """detect · notify · respond · restore, in seconds; – where a phase did not happen."""
    if not p:
        return "—"
    return " · ".join("–" if p.get(k) is None else f"{p[k]:.1f}" for k in ("detect_s", "notify_s", "respond_s", "restore_s"))


def calibration_line(c: dict | None) -> str | None:
    """The day's instrument check in one sentence."""
    if not c:
        return None
    if c.get("error_s") is None:
        return f"calibration: no RTO measured for a {c.get('freeze_s')} s freeze ({c.get('reason')}): instrument not trustworthy today"
    verdict = "trustworthy" if c.get("trustworthy") else "NOT trustworthy today"
    return (f"calibration: {c['freeze_s']:g} s freeze of the API measured as RTO {c['measured_rto_s']:.3f} s, "
            f"instrument error {c['error_s']:+.3f} s (bound {c['bound_s']:g} s): {verdict}")


def budget_line(b: dict | None) -> str | None:
    """The error budget this game day consumed, in one sentence."""
    if not b:
        return None
    unknown = f"; {b['unknown_runs']} run(s) with unknown downtime" if b.get("unknown_runs") else ""
    return (f"error budget: {b['consumed_s']:.1f} s of the {b['budget_s']:.0f} s a month allows at "
            f"{100 * b['uptime_objective']:g} % uptime ({b['consumed_pct']:.3f} %) consumed by this game day{unknown}")


# Terminal -------------------------------------------------------------------------------------

ANSI = {"pass": "\x1b[32m", "fail": "\x1b[31m", "error": "\x1b[33m", "interrupted": "\x1b[90m"}
BOLD, RESET = "\x1b[1m", "\x1b[0m"


def format_table(summary: dict, color: bool = False) -> str:
    """The game day as aligned columns for a terminal: scenario, status, RTO vs objective,
    RPO vs objective, lost writes, detection latency. ANSI colours only when color=True."""
    headers = ["SCENARIO", "STATUS", "RTO / OBJECTIVE", "RPO / OBJECTIVE", "LOST WRITES", "DETECTION",
               "DETECT·NOTIFY·RESPOND·RESTORE"]
    body = []
    for r in summary.get("runs", []):
        rto_none, rpo_none = _none_words(r)
        body.append([r["scenario"], r["status"].upper(), _vs(r["rto_s"], r["rto_objective_s"], rto_none),
                     _rpo(r, rpo_none), _lost(r), fmt_s(r["detection_latency_s"]),
                     phases_words(r.get("phases"))])
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str], status: str | None = None, head: bool = False) -> str:
        out = []
        for i, (cell, w) in enumerate(zip(cells, widths)):
            text = cell.ljust(w) if i < 2 else cell.rjust(w)
            if color and head:
                text = BOLD + text + RESET
            elif color and i == 1 and status:
                text = ANSI.get(status, "") + text + RESET
            out.append(text)
        return "  ".join(out).rstrip()

    lines = [line(headers, head=True)]
    for r, cells in zip(summary.get("runs", []), body):
        lines.append(line(cells, r["status"]))
    status = summary.get("status", "error")
    passed = sum(1 for r in summary.get("runs", []) if r["status"] == "pass")
    verdict = status.upper()
    if color:
        verdict = BOLD + ANSI.get(status, "") + verdict + RESET
    lines.append(f"game day {summary.get('gameday_id')}: {verdict} ({passed}/{len(summary.get('runs', []))} runs passed)")
    lines += [x for x in (calibration_line(summary.get("calibration")), budget_line(summary.get("error_budget"))) if x]
    lines += [f"WARNING: {w}" for w in summary.get("warnings") or []]
    return "\n".join(lines)


class LiveView:
    """Progress of a game day, one line per event:

        [2/5] database-failure: fault injected (kill-primary: kill_postgres_primary) (+0:12)
        [2/5] database-failure: service DOWN (first failed api sample 0.4 s after the fault) (+0:12)
        [2/5] database-failure: PASS in 1:07

    watch(history) follows the run's history (harness/report/phase_line.py, the console's phase
    line): one line per phase event. On a TTY a status line under the log is redrawn every second
    with the phase line and the elapsed time (from a background thread); elsewhere (CI logs,
    files) only the plain lines are written. All methods are thread-safe; close() (or leaving a
    `with` block) stops the ticker and ends the line.
    """

    def __init__(self, stream: TextIO | None = None, total: int = 0, tick_s: float = 1.0):
        self.stream = stream if stream is not None else sys.stdout
        self.total = total
        self.tick_s = tick_s
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError, io.UnsupportedOperation):
            self.tty = False
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._index = 0
        self._shown_index = 0
        self._scenario: str | None = None
        self._state = ""
        self._t_start = 0.0
        self._status_shown = False
        self._phases: PhaseLine | None = None
        self._tail: JsonlTail | None = None
        self._epoch: float | None = None  # the watched run's t=0, in Unix time
        self._watcher: threading.Thread | None = None
        self._watch_stop = threading.Event()

    # public ------------------------------------------------------------------------------------
    def start(self, scenario: str, counted: bool = True) -> None:
        """A run begins; `counted=False` for one outside the suite's count (the calibration: [0/N])."""
        with self._lock:
            self._index += 1 if counted else 0
            self._shown_index = self._index if counted else 0
            self._scenario = scenario
            self._state = "starting"
            self._t_start = time.monotonic()
            self._emit(f"{self._prefix()} {scenario}: started")
            if self.tty and self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._tick, name="liveview-ticker", daemon=True)
                self._thread.start()

    def update(self, state: str) -> None:
        with self._lock:
            self._state = str(state)
            scenario = self._scenario or "game day"
            self._emit(f"{self._prefix()} {scenario}: {self._state} (+{self._elapsed()})")

    def watch(self, history_path: str | os.PathLike, objectives: dict | None = None,
              places: dict | None = None, poll_s: float = 0.25) -> None:
        """Follow a run's history until finish(): each phase event becomes a line; on a TTY the
        status line shows the phase line. `objectives` name the scenario's probe and stability
        window; `places` where each fault acts (phase_line.fault_places)."""
        self._unwatch()
        with self._lock:
            self._phases = PhaseLine(dict(objectives or {}), dict(places or {}))
            self._tail, self._epoch = JsonlTail(history_path), None
        self._watch_stop.clear()
        self._watcher = threading.Thread(target=self._follow, args=(poll_s,), name="liveview-history", daemon=True)
        self._watcher.start()

    def finish(self, scenario: str, status: str) -> None:
        self._unwatch()
        with self._lock:
            elapsed = self._elapsed() if self._scenario else "0:00"
            label = str(status).upper()
            if self.tty:
                label = ANSI.get(str(status).lower(), "") + label + RESET
            self._emit(f"{self._prefix()} {scenario}: {label} in {elapsed}")
            self._scenario = None
            self._state = ""
        if self.total and self._index >= self.total:
            self.close()

    def close(self) -> None:
        self._unwatch()
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2 * self.tick_s + 1)
        with self._lock:
            self._clear_status()
            self._flush()

    def __enter__(self) -> "LiveView":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # internals ---------------------------------------------------------------------------------
    def _prefix(self) -> str:
        return f"[{self._shown_index}/{self.total}]" if self.total else f"[{self._shown_index}]"

    def _elapsed(self) -> str:
        s = int(time.monotonic() - self._t_start)
        return f"{s // 60}:{s % 60:02d}"

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
        except (ValueError, OSError):  # the stream went away (closed pipe): progress is not worth a crash
            pass

    def _flush(self) -> None:
        try:
            self.stream.flush()
        except (ValueError, OSError, AttributeError):
            pass

    def _clear_status(self) -> None:
        if self.tty and self._status_shown:
            self._write("\r\x1b[K")
            self._status_shown = False

    def _draw_status(self) -> None:
        if self.tty and self._scenario:
            state = self._state
            if self._phases is not None and self._phases.steps:
                now = time.time() - self._epoch if self._epoch is not None else None
                state = self._phases.words(now)
            head, tail = f"{self._prefix()} {self._scenario} · ", f" · {self._elapsed()}"
            room = shutil.get_terminal_size((120, 24)).columns - len(head) - len(tail) - 1
            if len(state) > room > 10:  # the newest phases matter most: cut from the left
                state = "…" + state[len(state) - room + 1:]
            self._write(f"\r\x1b[K{head}{state}{tail}")
            self._status_shown = True

    def _follow(self, poll_s: float) -> None:
        while True:
            stopping = self._watch_stop.wait(poll_s)
            self._drain()
            if stopping:
                return

    def _drain(self) -> None:
        """Read what the history gained: the load's writes (hundreds a second) are skipped unparsed."""
        with self._lock:
            tail, phases = self._tail, self._phases
            if tail is None or phases is None:
                return
            for line in tail.lines():
                if line.startswith(b'{"kind":"op"'):
                    continue
                event = tail.parse(line)
                if event is None:
                    continue
                if self._epoch is None:
                    self._epoch = run_clock_epoch(event)
                for step in phases.feed(event):
                    news = step.news()
                    if news:
                        self.update(news)

    def _unwatch(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            self._watch_stop.set()
            if watcher is not threading.current_thread():
                watcher.join(timeout=5)
        with self._lock:
            self._phases, self._tail = None, None

    def _emit(self, line: str) -> None:
        self._clear_status()
        self._write(line + "\n")
        self._draw_status()
        self._flush()

    def _tick(self) -> None:
        while not self._stop.wait(self.tick_s):
            with self._lock:
                if self._stop.is_set():
                    break
                self._clear_status()
                self._draw_status()
                self._flush()
