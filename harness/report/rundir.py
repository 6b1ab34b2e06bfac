"""Reading what a run left behind: `reports/<run-id>/` with verdict.json, history.jsonl and
journal.json, and the backup verification records beside the runs.

Everything here tolerates damage: a report must still say what it can when a run was cut short,
so readers return what they found together with a sentence for each problem instead of raising.
"""
from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.records import history as _history
from harness.records.shards import run_events

VERDICT, HISTORY, JOURNAL = "verdict.json", "history.jsonl", "journal.json"
REPORT_HTML, JUNIT_XML = "report.html", "junit.xml"
RUN_FILES = (VERDICT, HISTORY, JOURNAL, REPORT_HTML, JUNIT_XML)  # the evidence of one run
BACKUP_VERIFY_DIR = "backup-verify"


def rel_path(path: str | os.PathLike, base: str | os.PathLike) -> str:
    """os.path.relpath(path, base) as a POSIX string, by prefix when `path` is under `base` (a
    quarter of 10,000 runs asks this 50,000 times; relpath costs 80 µs a call)."""
    p, b = os.fspath(path), os.fspath(base).rstrip("/")
    if p.startswith(b) and p[len(b):len(b) + 1] == "/" and "/." not in p:
        return p[len(b) + 1:]
    return Path(os.path.relpath(p, b)).as_posix()


def dump_json(data: Any) -> str:
    """JSON for people and tools: the top level indented, each value on one line (json's indent
    goes through its pure-Python encoder: seconds for a year of runs)."""
    if not isinstance(data, dict):
        return json.dumps(data, ensure_ascii=False) + "\n"
    lines = []
    for k, v in data.items():
        if isinstance(v, list) and v:
            inner = ",\n".join(f"  {json.dumps(item, ensure_ascii=False)}" for item in v)
            lines.append(f" {json.dumps(k)}: [\n{inner}\n ]")
        else:
            lines.append(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def is_run_dir(path: Path) -> bool:
    return (path / VERDICT).is_file()


def find_run_dirs(root: str | os.PathLike) -> list[Path]:
    """Every run dir (a dir holding verdict.json) under `root`, depth-first, sorted by path.
    Run dirs are not searched further: game days hold runs, runs hold no runs."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if VERDICT in filenames:
            found.append(Path(dirpath))
            dirnames[:] = []
        else:
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(found)


def read_json(path: Path) -> tuple[Any, str | None]:
    """(data, None) or (None, a sentence saying why not)."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f), None
    except FileNotFoundError:
        return None, f"{path.name} is missing"
    except json.JSONDecodeError as e:
        return None, f"{path.name} is not valid JSON (line {e.lineno}: {e.msg})"
    except (OSError, UnicodeDecodeError) as e:
        return None, f"{path.name} cannot be read ({getattr(e, 'strerror', None) or e})"


def load_verdict(run_dir: Path) -> tuple[dict, str | None]:
    """The verdict, or a stand-in with status "error" naming why it could not be read."""
    data, problem = read_json(run_dir / VERDICT)
    if problem is None and not isinstance(data, dict):
        problem = f"{VERDICT} holds a {type(data).__name__}, not an object"
    if problem:
        return {"status": "error", "reason": problem, "run_id": run_dir.name, "scenario": "unknown",
                "criteria": [], "measured": {}, "objectives": {}}, problem
    data.setdefault("run_id", run_dir.name)
    return data, None


def load_journal(run_dir: Path) -> tuple[dict | None, str | None]:
    if not (run_dir / JOURNAL).exists():
        return None, None  # a run may legitimately have no journal (e.g. stopped before chaos ran)
    data, problem = read_json(run_dir / JOURNAL)
    if problem is None and not isinstance(data, dict):
        problem = f"{JOURNAL} holds a {type(data).__name__}, not an object"
    return (None, problem) if problem else (data, None)


def load_history(run_dir: Path) -> tuple[list[dict], list[str]]:
    """Events sorted by t (ledger shards merged), and warnings. A history with bad lines (a run
    killed mid-write leaves a torn last line) is read in the history's tolerant mode, which skips
    what does not parse, and says so."""
    path = run_dir / HISTORY
    if not path.exists():
        return [], [f"{HISTORY} is missing: no timeline can be drawn"]
    try:
        events = run_events(path, tolerant=True)
    except _history.HistoryError as e:
        return [], [f"{HISTORY}: {e}".replace(str(path), HISTORY)]
    skipped = [e for e in events if e["kind"] == "marker" and e.get("name") == _history.UNREADABLE_MARKER]
    if not skipped:
        return events, []
    events = [e for e in events if e not in skipped]
    first = str(skipped[0].get("detail")).replace(str(path), HISTORY)
    return events, [f"{HISTORY}: skipped {skipped[0]['count']} unreadable line(s); first: {first}"]


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 time as an aware UTC datetime; naive times (Chaos Toolkit's) are UTC."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def iso(dt: datetime | str | None) -> str | None:
    """UTC ISO-8601 with milliseconds and Z, the history's `wall` format."""
    if dt is None:
        return None
    if isinstance(dt, str):
        parsed = parse_time(dt)
        return iso(parsed) if parsed else dt
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def load_backup_records(reports_dir: Path) -> tuple[list[tuple[Path, dict]], list[str]]:
    """Backup verification records (`<reports>/backup-verify/*.json`), oldest first."""
    folder = reports_dir / BACKUP_VERIFY_DIR
    records, problems = [], []
    if not folder.is_dir():
        return records, problems
    for path in sorted(folder.glob("*.json")):
        data, problem = read_json(path)
        if problem or not isinstance(data, dict):
            problems.append(f"{BACKUP_VERIFY_DIR}/{path.name}: {problem or 'not a JSON object'}")
            continue
        records.append((path, data))
    records.sort(key=lambda r: (parse_time(r[1].get("wall")) or datetime.min.replace(tzinfo=timezone.utc)))
    return records, problems


def criteria_of(verdict: dict) -> list[dict]:
    crits = verdict.get("criteria")
    return [c for c in crits if isinstance(c, dict)] if isinstance(crits, list) else []


def measured(verdict: dict) -> dict:
    m = verdict.get("measured")
    return m if isinstance(m, dict) else {}


def objectives(verdict: dict) -> dict:
    o = verdict.get("objectives")
    return o if isinstance(o, dict) else {}


def checks_of(section: Any, name_key: str) -> list[dict]:
    """Normalise the verdict's `integrity` / `functions` sections, whatever shape the checker
    gave them (a list of results, {name: result}, {name: bool}, or {"checks": ...}), into
    [{name, ok, detail}]."""
    if isinstance(section, dict):
        for key in ("checks", "results", "functions", "items"):
            if isinstance(section.get(key), (list, dict)):
                return checks_of(section[key], name_key)
        out = []
        for name, value in section.items():
            if isinstance(value, dict) and ("ok" in value or "passed" in value):
                out.append({"name": str(name), "ok": value.get("ok", value.get("passed")),
                            "detail": value.get("detail", "")})
            elif isinstance(value, bool):
                out.append({"name": str(name), "ok": value, "detail": ""})
        return out
    if isinstance(section, list):
        out = []
        for item in section:
            if isinstance(item, dict):
                name = item.get(name_key, item.get("name", item.get("check", "?")))
                out.append({"name": str(name), "ok": item.get("ok", item.get("passed")),
                            "detail": item.get("detail", "")})
        return out
    return []


def parse_quarter(quarter: Any) -> tuple[datetime, datetime]:
    """"2026Q4" -> [2026-10-01, 2027-01-01) in UTC. ValueError with one line for anything else."""
    m = re.fullmatch(r"(\d{4})[Qq]([1-4])", quarter.strip()) if isinstance(quarter, str) else None
    if not m:
        raise ValueError(f"quarter must look like 2026Q4, got {quarter!r}")
    year, q = int(m.group(1)), int(m.group(2))
    start = datetime(year, 3 * (q - 1) + 1, 1, tzinfo=timezone.utc)
    end = datetime(year + 1, 1, 1, tzinfo=timezone.utc) if q == 4 else datetime(year, 3 * q + 1, 1, tzinfo=timezone.utc)
    return start, end
