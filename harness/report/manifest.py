"""Evidence manifest: proves the files behind a report are the ones it was built from.

`manifest.json` lists every file the report rests on, in order, each entry with the file's
SHA-256 and size, `prev` (the previous entry's hash; the first entry's is the header's `genesis`
hash) and its own `hash` over those fields. The last entry's hash is the `head`. Editing a file
changes its SHA-256; editing, removing, inserting or reordering entries breaks the chain; a run
file or an in-scope run that appears after the manifest was written is reported as not listed.
Recomputing the whole chain after tampering is possible for whoever can write the manifest, so
keep the head hash somewhere else too (the CLI prints it; a ticket or the review minutes will do).

Paths. An entry's `base` says what its `path` is relative to:
  "reports"   the reports dir: run files and backup records. The manifest stores where the
              reports dir is as `reports_root`, relative to the manifest's own directory (".."
              for the default `reports/quarterly-2026Q4/`).
  "manifest"  the manifest's own directory: the report's index.html and evidence.json.
Only relative paths are stored, so the reports dir can be moved or copied whole (with the
quarterly folder inside it, the default) and still verifies. A manifest written outside the
reports dir verifies as long as the two keep their relative position, or with `reports_root`
given to `verify`.
"""
from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from harness.core.checksums import sha256_file
from harness.report.rundir import (
    RUN_FILES, VERDICT, find_run_dirs, iso, load_backup_records, parse_quarter,
    parse_time, read_json,
)

__all__ = ["MANIFEST", "build_manifest", "write_manifest", "verify", "sha256_file"]

MANIFEST = "manifest.json"
KIND = "svgai-gameday-evidence-manifest"
VERSION = 1
HEADER_FIELDS = ("kind", "version", "created", "reports_root", "scope")
ENTRY_FIELDS = ("n", "path", "base", "sha256", "bytes", "prev")


def _canonical_hash(obj: dict) -> str:
    data = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def build_manifest(manifest_dir: str | os.PathLike, reports_dir: str | os.PathLike, files: Iterable[Path],
                   scope: dict | None = None) -> dict:
    """The manifest (not yet written) for `files`, in the order given; files that do not exist
    are skipped (a run without a journal has none to prove)."""
    manifest_dir = Path(manifest_dir).resolve()
    reports_dir = Path(reports_dir).resolve()
    header = {"kind": KIND, "version": VERSION, "created": iso(datetime.now(timezone.utc)),
              "reports_root": _rel(reports_dir, manifest_dir), "scope": scope or {}}
    genesis = _canonical_hash(header)
    entries, prev, seen = [], genesis, set()
    for f in files:
        f = Path(f).resolve()
        if f in seen or not f.is_file():
            continue
        seen.add(f)
        if _inside(f, manifest_dir):
            base, rel = "manifest", _rel(f, manifest_dir)
        else:
            base, rel = "reports", _rel(f, reports_dir)
        entry = {"n": len(entries), "path": rel, "base": base, "sha256": sha256_file(f), "bytes": f.stat().st_size,
                 "prev": prev}
        entry["hash"] = _canonical_hash(entry)
        prev = entry["hash"]
        entries.append(entry)
    return {**header, "genesis": genesis, "count": len(entries), "entries": entries, "head": prev}


def write_manifest(manifest_dir: str | os.PathLike, reports_dir: str | os.PathLike, files: Iterable[Path],
                   scope: dict | None = None) -> Path:
    manifest = build_manifest(manifest_dir, reports_dir, files, scope)
    path = Path(manifest_dir) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def verify(path: str | os.PathLike, reports_root: str | os.PathLike | None = None) -> list[str]:
    """Check a manifest (its file, or the dir holding it) against the files on disk.
    Returns the problems, each naming the file or entry; an empty list means intact."""
    path = Path(path)
    manifest_path = path / MANIFEST if path.is_dir() else path
    manifest_dir = manifest_path.parent.resolve()
    shown_manifest = _show_plain(manifest_path)
    if not manifest_path.is_file():
        return [f"{shown_manifest}: missing"]
    data, problem = read_json(manifest_path)
    if problem:
        return [f"{shown_manifest}: cannot be read: {problem}"]
    if not isinstance(data, dict) or data.get("kind") != KIND:
        return [f"{shown_manifest}: not an evidence manifest (kind is not {KIND!r})"]

    problems: list[str] = []
    header = {k: data.get(k) for k in HEADER_FIELDS}
    genesis = _canonical_hash(header)
    if data.get("genesis") != genesis:
        problems.append(f"{shown_manifest}: header edited (its genesis hash does not match kind, created, "
                        "reports_root and scope)")
    root = Path(reports_root).resolve() if reports_root else (manifest_dir / str(data.get("reports_root") or ".")).resolve()

    def locate(entry: dict) -> Path:
        return (manifest_dir if entry.get("base") == "manifest" else root) / str(entry.get("path"))

    def show(p: Path) -> str:
        for anchor in (root, manifest_dir):
            if _inside(p, anchor):
                return _rel(p, anchor.parent)
        return str(p)

    entries = data.get("entries") if isinstance(data.get("entries"), list) else None
    if entries is None:
        return problems + [f"{shown_manifest}: has no entries list"]
    prev = data.get("genesis") if data.get("genesis") == genesis else genesis
    listed: set[Path] = set()
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or any(k not in e for k in ENTRY_FIELDS + ("hash",)):
            problems.append(f"chain broken at entry {i}: malformed entry")
            prev = e.get("hash") if isinstance(e, dict) else prev
            continue
        where = show(locate(e).resolve())
        if e["n"] != i:
            problems.append(f"chain broken at entry {i} ({where}): it is numbered {e['n']}, so an entry was "
                            "removed, added or moved before it")
        elif e["prev"] != prev:
            problems.append(f"chain broken at entry {i} ({where}): its prev does not match the hash of entry {i - 1}"
                            if i else f"chain broken at entry 0 ({where}): its prev is not the genesis hash")
        if _canonical_hash({k: e[k] for k in ENTRY_FIELDS}) != e["hash"]:
            problems.append(f"chain broken at entry {i} ({where}): entry edited (its hash does not match its fields)")
        prev = e["hash"]
        f = locate(e).resolve()
        listed.add(f)
        if not f.is_file():
            problems.append(f"{where}: missing")
            continue
        actual = sha256_file(f)
        if actual != e["sha256"]:
            problems.append(f"{where}: content changed (sha256 {actual[:16]}…, manifest has {str(e['sha256'])[:16]}…)")
    if data.get("count") != len(entries) or data.get("head") != prev:
        problems.append(f"chain broken at the end ({shown_manifest}): head/count do not match the last entry, so "
                        "entries were removed or added after it")

    problems.extend(_unlisted(listed, root, data.get("scope") if isinstance(data.get("scope"), dict) else {}, show))
    return problems


# Internals ------------------------------------------------------------------------------------

def _show_plain(p: Path) -> str:
    p = p.resolve() if p.exists() else p
    return p.as_posix() if not p.is_absolute() else _rel(p, p.parent.parent)


def _unlisted(listed: set[Path], root: Path, scope: dict, show) -> list[str]:
    """Files that belong to the evidence but appeared after the manifest was written."""
    problems = []
    run_dirs = {f.parent for f in listed if f.name == VERDICT}
    for d in sorted(run_dirs):
        for name in RUN_FILES:
            f = d / name
            if f.is_file() and f not in listed:
                problems.append(f"{show(f)}: not in the manifest (added after it was written)")
    quarter = scope.get("quarter")
    if not quarter or not root.is_dir():
        return problems
    try:
        start, end = parse_quarter(quarter)
    except ValueError:
        return problems + [f"manifest scope names a bad quarter {quarter!r}"]
    for d in find_run_dirs(root):
        d = d.resolve()
        if d in run_dirs:
            continue
        data, problem = read_json(d / VERDICT)
        started = parse_time(data.get("started")) if isinstance(data, dict) else None
        if started and start <= started < end:
            problems.append(f"{show(d / VERDICT)}: a {quarter} run not in the manifest (added after it was written)")
    for path, record in load_backup_records(root)[0]:
        wall = parse_time(record.get("wall"))
        if wall and start <= wall < end and path.resolve() not in listed:
            problems.append(f"{show(path.resolve())}: a {quarter} backup record not in the manifest")
    return problems
