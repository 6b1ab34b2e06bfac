"""One run followed live for the console's page: its history read incrementally (never twice),
turned into the messages the page draws.

    view = RunView(run_dir, roots, alerts_log)
    view.poll() -> [(event name, data)], each one Server-Sent Event:

      run       the scenario, its title and objectives, where its report will be
      steps     the phase line's steps (harness/report/phase_line.py) after a phase event, with
                the wall time of the history event that caused it (the page measures its lag)
      line      the phase line in words, its counters running (service DOWN 2.1 s, stable 3/5 s)
      bins      per second of run time: the scenario's probe ok / failed samples and its slowest
                answer, the writes acknowledged / failed / in doubt (only the seconds that changed)
      windows   the fault and recovery windows
      writes    totals: acknowledged, failed, in doubt
      alert     an alert as the stack's receiver got it (firing or resolved), or as the run's
                detection evidence recorded it
      log       any other event worth a line, kinds unknown to the console included
      verdict   the verdict when it lands: status, reason, every criterion as verdict.json has it

The load writes hundreds of `op` lines a second: they are counted from their bytes, unparsed.
"""
from __future__ import annotations

import math
import re
import time
from pathlib import Path

import yaml

from harness.core.paths import PROJECT_ROOT
from harness.records.tail import JsonlTail
from harness.report.page import BCP_CRITERIA, CRITERION_TITLES, fmt_criterion_value, fmt_s, fmt_when, status_of
from harness.report.phase_line import PhaseLine, fault_places, run_clock_epoch
from harness.report.rundir import HISTORY, REPORT_HTML, VERDICT, load_verdict, parse_time
from harness.console.runs import Roots, load_session

__all__ = ["RunView", "verdict_message"]

OP_PREFIX = b'{"kind":"op"'
_OP_TYPE = re.compile(rb'"type":"(\w+)"')
_OP_T = re.compile(rb'"t":(-?[0-9.eE+-]+)')
_OP_WALL_S = re.compile(rb'"wall_s":(-?[0-9.eE+-]+)')
SHARDS_DIR = "ledger-shards"
LOGGED_MARKERS_SKIPPED = {"run_start", "recorders_started", "heartbeat_baseline", "observe_end", "stability"}


class RunView:
    """A run folder followed from its first line: catching up on a finished run reads its history
    once, a running one is then read as it grows."""

    def __init__(self, run_dir: Path, roots: Roots, alerts_log: str | None = None):
        self.run_dir = Path(run_dir)
        self.roots = roots
        self.session = load_session(self.run_dir)
        objectives = self.session.get("objectives") if isinstance(self.session.get("objectives"), dict) else {}
        self.objectives = objectives
        self.probe = str(objectives.get("probe") or "api")
        self.phases = PhaseLine(objectives, fault_places(_experiment(self.session.get("experiment"))))
        self.tail = JsonlTail(self.run_dir / HISTORY)
        self.shard_tails: dict[Path, JsonlTail] = {}
        self.alerts = JsonlTail(alerts_log) if alerts_log else None
        self.started_epoch = _epoch(self.session.get("started"))
        # A finished run shows the alerts of its own time only.
        self.ended_epoch = _epoch(load_verdict(self.run_dir)[0].get("ended")) if (self.run_dir / VERDICT).exists() else None
        self.epoch: float | None = None  # the run clock's t=0 in Unix time
        self.bins: dict[int, list] = {}  # second -> [ok, fail, max latency, acked, failed, in doubt]
        self.changed: set[int] = set()
        self.totals = {"acked": 0, "failed": 0, "in_doubt": 0, "attempted": 0}
        self.windows: list[dict] = []
        self.verdict_sent = False
        self.last_line = None
        self.sent_run = False
        self._next_shard_look = 0.0
        self.polls = 0

    @property
    def finished(self) -> bool:
        return self.verdict_sent

    def poll(self, now: float | None = None) -> list[tuple[str, dict]]:
        now = time.time() if now is None else now
        out: list[tuple[str, dict]] = []
        if not self.sent_run:
            self.sent_run = True
            out.append(("run", self.describe()))
        self.polls += 1
        changed_steps, windows_changed, cause = [], False, {}
        lines = self.tail.lines()
        catching_up = self.polls == 1 or self.tail.behind  # the past, read in one go (its lag means nothing)
        for line in lines:
            if line.startswith(OP_PREFIX):
                self._count_op(line)
                continue
            event = self.tail.parse(line)
            if event is None:
                continue
            if self.epoch is None:
                self.epoch = run_clock_epoch(event)
            kind = event.get("kind")
            if kind == "sample" and str(event.get("probe")) == self.probe:
                self._count_sample(event)
            elif kind in ("fault", "recovery"):
                windows_changed |= self._window(event)
            elif kind in ("detection",):
                out.append(("alert", {"name": event.get("alert"), "status": "firing" if event.get("fired") else "not fired",
                                      "when": f"detection evidence: {event.get('detail') or ''}".strip(),
                                      "source": "history"}))
            elif kind not in ("sample", "op", "heartbeat", "final_read") and not (
                    kind == "marker" and event.get("name") in LOGGED_MARKERS_SKIPPED):
                out.append(("log", _log_entry(event)))
            changed = self.phases.feed(event)
            if changed:
                changed_steps += changed
                cause = event  # the history event behind the newest phase change (its lag is measured)
        self._read_shards(now)
        if changed_steps:
            # `live`: read as it was written (not caught up from the past): its lag means something.
            out.append(("steps", {"steps": [s.as_dict() for s in self.phases.steps],
                                  "news": [s.news() for s in changed_steps if s.news()],
                                  "wall": cause.get("wall"), "t": cause.get("t"), "live": not catching_up}))
        if windows_changed:
            out.append(("windows", {"windows": self.windows}))
        if self.changed:
            out.append(("bins", {"bins": [[s, *self.bins[s]] for s in sorted(self.changed)], "probe": self.probe}))
            out.append(("writes", dict(self.totals)))
            self.changed = set()
        out += self._alerts()
        if not self.verdict_sent and (self.run_dir / VERDICT).exists() and not self.tail.behind:
            self.verdict_sent = True
            verdict, _ = load_verdict(self.run_dir)
            changed = self.phases.finish(status_of(verdict), str(verdict.get("reason") or ""))
            out.append(("steps", {"steps": [s.as_dict() for s in self.phases.steps],
                                  "news": [s.news() for s in changed if s.news()], "wall": None,
                                  "t": self.phases.last_t, "live": False}))
            out.append(("verdict", verdict_message(verdict, self.roots.url("/files", self.run_dir / REPORT_HTML))))
        line = self.phases.words(now - self.epoch if self.epoch is not None and not self.verdict_sent else None)
        if line != self.last_line and self.phases.steps:
            self.last_line = line
            out.append(("line", {"words": line, "labels": self.phases.labels(
                now - self.epoch if self.epoch is not None and not self.verdict_sent else None)}))
        return out

    def describe(self) -> dict:
        o = self.objectives
        return {"run_id": self.session.get("run_id") or self.run_dir.name,
                "scenario": self.session.get("scenario") or "unknown", "title": self.session.get("title") or "",
                "description": o.get("description") or "", "bcp_section": o.get("bcp_section") or "",
                "started": fmt_when(self.session.get("started")), "probe": self.probe,
                "objectives": _objectives_words(o), "stability_s": self.phases.stability_s,
                "url": self.roots.url("/run", self.run_dir),
                "report": self.roots.url("/files", self.run_dir / REPORT_HTML)}

    # counting ---------------------------------------------------------------------------------
    def _bin(self, t: float) -> list:
        s = int(math.floor(t))
        b = self.bins.get(s)
        if b is None:
            b = self.bins[s] = [0, 0, None, 0, 0, 0]
        self.changed.add(s)
        return b

    def _count_sample(self, e: dict) -> None:
        t = e.get("t")
        if not isinstance(t, (int, float)):
            return
        b = self._bin(float(t))
        if e.get("ok"):
            b[0] += 1
            lat = e.get("latency_s")
            if isinstance(lat, (int, float)) and (b[2] is None or lat > b[2]):
                b[2] = round(float(lat), 4)
        else:
            b[1] += 1

    def _count_op(self, line: bytes, t: float | None = None) -> None:
        m = _OP_TYPE.search(line)
        if m is None or b'"f":"write"' not in line:
            return
        kind = m.group(1)
        if kind == b"invoke":
            self.totals["attempted"] += 1
            return
        if t is None:
            mt = _OP_T.search(line)
            if mt is None:
                return
            t = float(mt.group(1))
        b = self._bin(t)
        if kind == b"ok":
            b[3] += 1
            self.totals["acked"] += 1
        elif kind == b"fail":
            b[4] += 1
            self.totals["failed"] += 1
        elif kind == b"info":
            b[5] += 1
            self.totals["in_doubt"] += 1

    def _read_shards(self, now: float) -> None:
        """Distributed load: the writes are in the workers' ledger shards, timed by wall clock."""
        folder = self.run_dir / SHARDS_DIR
        if now >= self._next_shard_look:
            self._next_shard_look = now + 2.0
            if folder.is_dir():
                for path in folder.glob("*.jsonl"):
                    self.shard_tails.setdefault(path, JsonlTail(path))
        if self.epoch is None:
            return
        for tail in self.shard_tails.values():
            for line in tail.lines():
                if line.startswith(OP_PREFIX):
                    wall = _OP_WALL_S.search(line)
                    if wall is not None:
                        self._count_op(line, float(wall.group(1)) - self.epoch)

    def _window(self, e: dict) -> bool:
        name, t = str(e.get("name")), e.get("t")
        if e.get("phase") == "start":
            self.windows.append({"kind": e["kind"], "name": name, "start": t, "end": None, "ok": None})
            return True
        for w in reversed(self.windows):
            if w["kind"] == e["kind"] and w["name"] == name and w["end"] is None:
                w["end"], w["ok"] = t, e.get("ok")
                return True
        return False

    def _alerts(self) -> list[tuple[str, dict]]:
        """Alerts the stack's receiver got since the run started (each one line of its log)."""
        if self.alerts is None:
            return []
        out = []
        for entry in self.alerts.read():
            received = _epoch(entry.get("received"))
            if received is None or (self.started_epoch is not None and received < self.started_epoch):
                continue
            if (self.ended_epoch is not None and received > self.ended_epoch) or \
                    (self.ended_epoch is None and self.verdict_sent):
                continue
            t = received - self.epoch if self.epoch is not None else None
            out.append(("alert", {"name": entry.get("alertname"), "status": entry.get("status"),
                                  "when": f"received at {fmt_when(entry.get('received'))}"
                                          + (f" (run time {t:.1f} s)" if t is not None else ""),
                                  "t": t, "source": "alert receiver"}))
        return out


def verdict_message(verdict: dict, report_url: str | None) -> dict:
    """The verdict for the page: its status, reason and every criterion in words, whatever the
    criterion (unknown names are shown by their own name)."""
    criteria = []
    for c in verdict.get("criteria") or []:
        if not isinstance(c, dict):
            continue
        name = str(c.get("name") or "?")
        criteria.append({"name": name, "title": CRITERION_TITLES.get(name, name.replace("_", " ")),
                         "bcp": BCP_CRITERIA.get(name, ""),
                         "passed": c.get("passed"), "measured": fmt_criterion_value(name, c.get("measured")),
                         "objective": fmt_criterion_value(name, c.get("objective"), role="objective"),
                         "detail": str(c.get("detail") or "")})
    m = verdict.get("measured") if isinstance(verdict.get("measured"), dict) else {}
    return {"status": status_of(verdict), "reason": str(verdict.get("reason") or ""), "criteria": criteria,
            "rto": fmt_s(m.get("rto_s")), "report": report_url}


# Internals ------------------------------------------------------------------------------------

def _experiment(path) -> dict | None:
    """The experiment file a run was planned from (for where its faults act), if still there."""
    if not isinstance(path, str) or not path:
        return None
    p = Path(path)
    p = p if p.is_absolute() else PROJECT_ROOT / p
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _epoch(value) -> float | None:
    dt = parse_time(value) if isinstance(value, str) else None
    return dt.timestamp() if dt else None


def _objectives_words(o: dict) -> list[str]:
    words = []
    if isinstance(o.get("rto_s"), (int, float)):
        words.append(f"RTO under {fmt_s(o['rto_s'])}")
    if isinstance(o.get("rpo_s"), (int, float)):
        words.append(f"RPO under {fmt_s(o['rpo_s'])}")
    if o.get("max_lost_writes") is not None:
        words.append(f"at most {o['max_lost_writes']} lost writes")
    if o.get("critical_functions"):
        words.append("critical functions: " + ", ".join(map(str, o["critical_functions"])))
    if o.get("integrity_checks"):
        words.append("integrity: " + ", ".join(map(str, o["integrity_checks"])))
    if isinstance(o.get("detection"), dict) and o["detection"].get("alert"):
        words.append(f"alert {o['detection']['alert']} within {fmt_s(o['detection'].get('max_latency_s'))}")
    if isinstance(o.get("stability_s"), (int, float)):
        words.append(f"stable for {fmt_s(o['stability_s'])}")
    if isinstance(o.get("timeout_s"), (int, float)):
        words.append(f"timeout {fmt_s(o['timeout_s'])}")
    if o.get("recovery"):
        words.append(f"recovery: {o['recovery']}")
    return words


def _log_entry(e: dict) -> dict:
    """Any event as one line: its kind, name and the fields worth reading."""
    kind = str(e.get("kind"))
    name = e.get("name") or e.get("check") or e.get("alert") or e.get("recorder") or ""
    extra = {k: v for k, v in e.items() if k not in ("kind", "t", "wall", "name", "detail", "check", "alert", "ok")}
    words = " ".join(f"{k}={v}" for k, v in extra.items() if isinstance(v, (str, int, float, bool)) and len(str(v)) < 60)
    detail = e.get("detail")
    if isinstance(detail, str) and detail:
        words = (words + " · " if words else "") + detail[:160]
    ok = e.get("ok")
    return {"t": e.get("t"), "kind": kind, "name": str(name), "words": words,
            "ok": ok if isinstance(ok, bool) else None}
