"""What the console shows, found on disk: the run in progress on the home, the game day it belongs
to, past game days, runs and the quarterly evidence under the reports folders.

Reports folders ("roots") are numbered in the order the console learns of them: the one it was
started with first, then each folder an active run registers (`gameday run --reports-dir`). A
run, a game day or a file is addressed as (root number, path inside the root); nothing outside
a root is ever served.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.checkers import error_budget
from harness.report.gameday import budget_line
from harness.report.page import fmt_s, status_of
from harness.report.rundir import (HISTORY, REPORT_HTML, VERDICT, find_run_dirs, load_verdict, measured, parse_time,
                                   read_json)
from harness.run import active_runs

__all__ = ["Roots", "live_run", "gameday_progress", "list_gamedays", "list_runs", "list_quarterly", "SESSION"]

SESSION = "session.json"  # written when a run opens (harness/run/session.py)
GAMEDAY_PREFIX, QUARTERLY_PREFIX, CALIBRATION_DIR = "gameday-", "quarterly-", "calibration"


@dataclass
class Roots:
    """The reports folders the console may read, numbered; grows, never shrinks."""
    folders: list[Path] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, folder: str | os.PathLike) -> int:
        path = Path(folder).resolve()
        with self._lock:
            if path not in self.folders:
                self.folders.append(path)
            return self.folders.index(path)

    def address(self, path: Path) -> tuple[int, str] | None:
        """(root number, relative path) of a path inside one of the roots, else None."""
        path = Path(path).resolve()
        with self._lock:
            folders = list(self.folders)
        for i, root in enumerate(folders):
            if path == root or root in path.parents:
                return i, path.relative_to(root).as_posix()
        return None

    def resolve(self, n: int, rel: str) -> Path | None:
        """The path a (root, relative path) address names, or None if it leaves the root."""
        with self._lock:
            if not 0 <= n < len(self.folders):
                return None
            root = self.folders[n]
        path = (root / rel).resolve()
        return path if path == root or root in path.parents else None

    def url(self, prefix: str, path: Path) -> str | None:
        found = self.address(path)
        return f"{prefix}/{found[0]}/{found[1]}".rstrip("/") if found else None


# The run in progress --------------------------------------------------------------------------

def live_run(home: Path, roots: Roots) -> tuple[dict | None, Path | None]:
    """The run registered on `home` (its active_runs entry) and the run folder it is writing now
    (the newest of its folders without a verdict, else its newest), or (None, None)."""
    for entry in active_runs.active(home):
        base = Path(entry.get("reports") or "")
        if not base.is_dir():
            continue
        roots.add(base.parent if base.name.startswith(GAMEDAY_PREFIX) else base)
        folders = _run_folders_since(base, float(entry.get("started") or 0), int(entry["pid"]))
        if not folders:
            return entry, None
        open_ = [f for f in folders if not (f / VERDICT).exists()]
        return entry, (open_ or folders)[-1]
    return None, None


def _run_folders_since(base: Path, started: float, pid: int) -> list[Path]:
    """Run folders under `base` (one or two levels: a game day keeps its calibration apart)
    created since `started` by the harness process `pid`, oldest first."""
    found = []
    for folder in _recent_dirs(base, started - 1):
        if (folder / SESSION).is_file():
            found.append(folder)
        elif folder.name == CALIBRATION_DIR:
            found += [f for f in _recent_dirs(folder, started - 1) if (f / SESSION).is_file()]
    mine = []
    for folder in found:
        data, _ = read_json(folder / SESSION)
        if isinstance(data, dict) and data.get("harness_pid") in (None, pid):
            mine.append(folder)
    return sorted(mine, key=lambda f: ((f / SESSION).stat().st_mtime, f.name))


def _recent_dirs(folder: Path, since: float) -> list[Path]:
    try:
        with os.scandir(folder) as it:
            return [Path(e.path) for e in it if e.is_dir() and e.stat().st_mtime >= since]
    except OSError:
        return []


# Game days ------------------------------------------------------------------------------------

def gameday_progress(folder: Path, entry: dict | None, roots: Roots, now: float | None = None) -> dict:
    """A game day's progress: n / N scenarios done, elapsed, an estimate of what is left, a row
    per finished scenario (linking its report), the calibration line and the error budget spent.
    `entry` is its active_runs entry while it runs (None once it has ended)."""
    now = time.time() if now is None else now
    summary, _ = read_json(folder / "summary.json")
    summary = summary if isinstance(summary, dict) else None
    total = len(entry.get("experiments") or []) if entry else len((summary or {}).get("runs") or [])
    runs = [d for d in sorted(_child_runs(folder), key=_started_key)]
    rows = [run_row(d, roots) for d in runs]
    done = [r for r in rows if r["finished"]]
    cal_dirs = sorted(_child_runs(folder / CALIBRATION_DIR), key=_started_key)
    calibration = calibration_words(cal_dirs[-1]) if cal_dirs else None
    if entry is None and summary and _epoch_of(summary.get("started")) and _epoch_of(summary.get("ended")):
        elapsed = max(0.0, _epoch_of(summary["ended"]) - _epoch_of(summary["started"]))
    else:
        started = float(entry["started"]) if entry and entry.get("started") else _folder_epoch(folder)
        elapsed = max(0.0, now - started) if started else None
    left = None
    if entry and done and elapsed is not None and total > len(done):
        left = elapsed / len(done) * (total - len(done))
    budget = error_budget([r["downtime_s"] for r in done if not r["negative_control"]])
    return {"name": folder.name, "in_progress": entry is not None, "done": len(done), "total": total or len(rows),
            "elapsed": fmt_s(elapsed) if elapsed is not None else "—", "left": fmt_s(left) if left is not None else None,
            "status": (summary or {}).get("status"), "rows": rows, "calibration": calibration,
            "budget": budget_line(budget) if done else None,
            "index": roots.url("/files", folder / "index.html") if (folder / "index.html").exists() else None,
            "url": roots.url("/gameday", folder)}


def _child_runs(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir() and ((p / SESSION).is_file() or (p / VERDICT).is_file())]
    except OSError:
        return []


def _started_key(folder: Path) -> tuple:
    data, _ = read_json(folder / SESSION)
    started = data.get("started") if isinstance(data, dict) else None
    return (str(started or ""), folder.name)


def _epoch_of(value) -> float | None:
    dt = parse_time(value) if isinstance(value, str) else None
    return dt.timestamp() if dt else None


def _folder_epoch(folder: Path) -> float | None:
    try:
        return folder.stat().st_ctime
    except OSError:
        return None


def calibration_words(run_dir: Path) -> str:
    """The day's instrument check in one sentence, from the calibration run's own files."""
    if not (run_dir / VERDICT).exists():
        return "calibration: running (the API frozen for a known time, measured like any outage)"
    verdict, problem = load_verdict(run_dir)
    rto = measured(verdict).get("rto_s")
    freeze = _freeze_s(run_dir)
    if problem or not isinstance(rto, (int, float)) or freeze is None:
        return f"calibration: {status_of(verdict).upper()}: {problem or verdict.get('reason') or 'no RTO measured'}"
    return (f"calibration: {freeze:g} s freeze of the API measured as RTO {rto:.3f} s, "
            f"instrument error {rto - freeze:+.3f} s ({status_of(verdict).upper()})")


def _freeze_s(run_dir: Path) -> float | None:
    journal, _ = read_json(run_dir / "journal.json")
    for activity in ((journal or {}).get("experiment") or {}).get("method") or [] if isinstance(journal, dict) else []:
        if "fault" in (activity.get("tags") or []):
            value = ((activity.get("provider") or {}).get("arguments") or {}).get("duration_s")
            if isinstance(value, (int, float)):
                return float(value)
    return None


def run_row(run_dir: Path, roots: Roots) -> dict:
    """One run as a row: scenario, status (or "running"), RTO, reason, links."""
    finished = (run_dir / VERDICT).exists()
    session, _ = read_json(run_dir / SESSION)
    session = session if isinstance(session, dict) else {}
    verdict = load_verdict(run_dir)[0] if finished else {}
    m = measured(verdict)
    return {"run_id": str(verdict.get("run_id") or session.get("run_id") or run_dir.name),
            "scenario": str(verdict.get("scenario") or session.get("scenario") or "unknown"),
            "title": verdict.get("title") or session.get("title") or "",
            "started": verdict.get("started") or session.get("started"),
            "finished": finished, "status": status_of(verdict) if finished else "running",
            "reason": str(verdict.get("reason") or ""), "rto": fmt_s(m.get("rto_s"), "—"),
            "downtime_s": m.get("downtime_s"), "negative_control": bool(verdict.get("negative_control")),
            "calibration": bool(verdict.get("calibration")),
            "criteria": [{"name": str(c.get("name")), "passed": c.get("passed")} for c in verdict.get("criteria") or []
                         if isinstance(c, dict)],
            "report": roots.url("/files", run_dir / REPORT_HTML) if (run_dir / REPORT_HTML).exists() else None,
            "url": roots.url("/run", run_dir)}


def list_gamedays(roots: Roots, active_folders: set[Path]) -> list[dict]:
    """Every game-day folder in the roots, newest first."""
    out = []
    for root in list(roots.folders):
        try:
            folders = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(GAMEDAY_PREFIX)]
        except OSError:
            continue
        for folder in folders:
            summary, _ = read_json(folder / "summary.json")
            summary = summary if isinstance(summary, dict) else {}
            runs = summary.get("runs") if isinstance(summary.get("runs"), list) else None
            state = ("in progress" if folder.resolve() in active_folders else
                     status_of(summary) if summary else "incomplete")
            out.append({"name": folder.name, "state": state, "started": summary.get("started"),
                        "runs": len(runs) if runs is not None else len(_child_runs(folder)),
                        "passed": sum(1 for r in runs or [] if isinstance(r, dict) and r.get("status") == "pass"),
                        "url": roots.url("/gameday", folder),
                        "index": roots.url("/files", folder / "index.html") if (folder / "index.html").exists() else None})
    return sorted(out, key=lambda g: g["name"], reverse=True)


def list_runs(roots: Roots, scenario: str = "", status: str = "") -> tuple[list[dict], list[str]]:
    """Every run folder (with a verdict, or still running) in the roots, newest first, filtered by
    scenario and status; and the scenarios seen (for the filter)."""
    rows = []
    for root in list(roots.folders):
        dirs = set(find_run_dirs(root)) if root.is_dir() else set()
        dirs |= {p.parent for p in root.glob("*/" + HISTORY)} | {p.parent for p in root.glob("*/*/" + HISTORY)}
        rows += [run_row(d, roots) for d in dirs if (d / SESSION).exists() or (d / VERDICT).exists()]
    scenarios = sorted({r["scenario"] for r in rows})
    rows = [r for r in rows if (not scenario or r["scenario"] == scenario) and (not status or r["status"] == status)]
    return sorted(rows, key=lambda r: (str(r["started"] or ""), r["run_id"]), reverse=True), scenarios


def list_quarterly(roots: Roots) -> list[dict]:
    out = []
    for root in list(roots.folders):
        for folder in sorted(root.glob(QUARTERLY_PREFIX + "*"), reverse=True):
            if (folder / "index.html").is_file():
                out.append({"name": folder.name.removeprefix(QUARTERLY_PREFIX),
                            "url": roots.url("/files", folder / "index.html"),
                            "files": [{"name": p.name, "url": roots.url("/files", p)}
                                      for p in sorted(folder.iterdir()) if p.is_file()]})
    return out


def load_session(run_dir: Path) -> dict:
    data, _ = read_json(run_dir / SESSION)
    return data if isinstance(data, dict) else {}


def target_of_home(home: Path) -> dict:
    """The home's target description (for its alerts log), or {}."""
    data, _ = read_json(home / "target.json")
    return data if isinstance(data, dict) else {}


def dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
