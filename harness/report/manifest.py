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

Signatures (harness/core/signing.py). The manifest is signed when it is written
(`manifest.json.sig`), and each run it lists carries its own seal, signed when the run was
written (harness/report/seal.py): `check(path, allowed)` verifies both against an allowed-signers
file and names who signed, so a forger who edits a verdict and recomputes the whole chain is
still caught (the signatures cannot be recomputed without a key the allowed signers name).

Speed. A run's files are hashed once, when the run is sealed: the manifest takes their SHA-256
from the seal. Any other file keeps its hash from the previous manifest while its size and
modification time are unchanged (`mtime_ns`, a build cache outside the chain), so a rebuild
hashes only what changed. Checking re-hashes every file, on every core.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from harness.core import signing
from harness.core.checksums import sha256_file
from harness.report.rundir import (
    RUN_FILES, VERDICT, find_run_dirs, iso, load_backup_records, parse_quarter,
    parse_time, read_json, rel_path,
)
from harness.report.seal import SEAL, SEAL_SIG, check_seal_read

__all__ = ["MANIFEST", "MANIFEST_SIG", "build_manifest", "write_manifest", "verify", "check", "Checked",
           "sha256_file"]

MANIFEST = "manifest.json"
MANIFEST_SIG = MANIFEST + signing.SIG_SUFFIX
KIND = "svgai-gameday-evidence-manifest"
VERSION = 1
HEADER_FIELDS = ("kind", "version", "created", "reports_root", "scope")
ENTRY_FIELDS = ("n", "path", "base", "sha256", "bytes", "prev")


def _entry_hash(e: dict) -> str:
    """_canonical_hash of an entry's ENTRY_FIELDS, written out by hand: the same bytes (keys
    sorted, no spaces, UTF-8; tests/test_signatures.py checks it) at a fifth of the cost."""
    text = (f'{{"base":{_string(e["base"])},"bytes":{int(e["bytes"])},"n":{int(e["n"])},"path":{_string(e["path"])},'
            f'"prev":{_string(e["prev"])},"sha256":{_string(e["sha256"])}}}')
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_string = json.encoder.encode_basestring  # json.dumps of one str with ensure_ascii=False


def _entry_line(e: dict) -> str:
    """json.dumps(e) for an entry as build_manifest makes it, written out by hand (70,000 lines)."""
    cache = f', "mtime_ns": {int(e["mtime_ns"])}' if "mtime_ns" in e else ""
    return (f'{{"n": {int(e["n"])}, "path": {_string(e["path"])}, "base": {_string(e["base"])}, '
            f'"sha256": {_string(e["sha256"])}, "bytes": {int(e["bytes"])}, "prev": {_string(e["prev"])}, '
            f'"hash": {_string(e["hash"])}{cache}}}')


def _canonical_hash(obj: dict) -> str:
    data = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


_ENTRY_KEYS = frozenset(ENTRY_FIELDS + ("hash",))


def _hash_of(e: dict) -> str:
    """An entry's hash as build_manifest computed it: by hand when its fields have the types it
    writes, else (an edited entry) through json, which hashes whatever is there."""
    if type(e["n"]) is int and type(e["bytes"]) is int:
        try:
            return _entry_hash(e)
        except TypeError:  # a field that is not a string
            pass
    return _canonical_hash({k: e[k] for k in ENTRY_FIELDS})


def _absolute(f: str | os.PathLike) -> str:
    f = os.fspath(f)
    return f if f.startswith("/") and "/." not in f else os.path.abspath(f)


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def build_manifest(manifest_dir: str | os.PathLike, reports_dir: str | os.PathLike, files: Iterable[Path],
                   scope: dict | None = None, known: dict[Path, str] | None = None) -> dict:
    """The manifest (not yet written) for `files`, in the order given; files that do not exist
    are skipped (a run without a journal has none to prove). `known`: {file: sha256} already
    hashed (a run's seal); other files keep the previous manifest's hash while their size and
    modification time are unchanged, and are hashed otherwise."""
    manifest_dir = os.path.abspath(manifest_dir)
    reports_dir = os.path.abspath(reports_dir)
    known = {_absolute(f): d for f, d in (known or {}).items()}
    cache = _previous(Path(manifest_dir) / MANIFEST)
    header = {"kind": KIND, "version": VERSION, "created": iso(datetime.now(timezone.utc)),
              "reports_root": rel_path(reports_dir, manifest_dir), "scope": scope or {}}
    genesis = _canonical_hash(header)
    entries, prev, seen = [], genesis, set()
    in_manifest, in_reports = manifest_dir + "/", reports_dir + "/"
    for f in files:
        # Strings, not Paths, and no symlink resolution: 60,000 files must cost little.
        f = _absolute(f)
        if f in seen:
            continue
        try:
            st = os.stat(f)
        except OSError:
            continue
        seen.add(f)
        if f.startswith(in_manifest):
            base, rel = "manifest", f[len(in_manifest):]
        elif f.startswith(in_reports):
            base, rel = "reports", f[len(in_reports):]
        else:
            base, rel = "reports", rel_path(f, reports_dir)
        digest, cached = known.get(f), None
        if digest is None:
            cached = cache.get((base, rel))
            digest = cached[0] if cached and cached[1:] == (st.st_size, st.st_mtime_ns) else sha256_file(f)
        entry = {"n": len(entries), "path": rel, "base": base, "sha256": digest, "bytes": st.st_size, "prev": prev}
        entry["hash"] = _entry_hash(entry)
        if f not in known:
            entry["mtime_ns"] = st.st_mtime_ns  # the build cache; outside the chain, never trusted by check()
        prev = entry["hash"]
        entries.append(entry)
    return {**header, "genesis": genesis, "count": len(entries), "entries": entries, "head": prev}


def write_manifest(manifest_dir: str | os.PathLike, reports_dir: str | os.PathLike, files: Iterable[Path],
                   scope: dict | None = None, known: dict[Path, str] | None = None,
                   key: str | os.PathLike | None = None) -> Path:
    """Write manifest.json (one entry a line) and, with `key`, sign it (manifest.json.sig)."""
    manifest = build_manifest(manifest_dir, reports_dir, files, scope, known)
    path = Path(manifest_dir) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    head = {k: v for k, v in manifest.items() if k not in ("entries", "head")}
    lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in head.items()]
    lines.append(' "entries": [')
    lines += [f"  {_entry_line(e)}," for e in manifest["entries"]]
    if manifest["entries"]:
        lines[-1] = lines[-1][:-1]
    lines += [" ],", f' "head": {json.dumps(manifest["head"])}', "}"]
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    sig = Path(f"{path}{signing.SIG_SUFFIX}")
    if key is not None:
        signing.sign(path, key)
    elif sig.exists():
        sig.unlink()  # a signature of the previous manifest would only say "does not match"
    return path


def _previous(path: Path) -> dict[tuple[str, str], tuple[str, int, int]]:
    """{(base, path): (sha256, bytes, mtime_ns)} of the manifest being replaced: the build cache.
    Only entries with mtime_ns are read (one a line, as write_manifest writes them): a run's files
    take their hashes from its seal and need no cache, so a year of them is not parsed again."""
    out = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line for line in f if '"mtime_ns": ' in line]
    except (OSError, UnicodeDecodeError):
        return out
    for line in lines:
        try:
            e = json.loads(line.strip().rstrip(","))
        except json.JSONDecodeError:
            continue  # not ours, or damaged: that file is simply hashed again
        if isinstance(e, dict) and isinstance(e.get("mtime_ns"), int):
            out[(e.get("base"), e.get("path"))] = (e.get("sha256"), e.get("bytes"), e["mtime_ns"])
    return out


@dataclass
class Checked:
    """What check() found: the problems (none: intact) and who signed what."""
    problems: list[str] = field(default_factory=list)
    manifest_signer: signing.Signer | None = None
    run_signers: Counter = field(default_factory=Counter)  # Signer -> runs sealed by it
    document_signers: dict = field(default_factory=dict)  # shown path -> Signer (plans, findings' actions)
    files: int = 0


def verify(path: str | os.PathLike, reports_root: str | os.PathLike | None = None) -> list[str]:
    """Check a manifest (its file, or the dir holding it) against the files on disk, signatures
    aside. Returns the problems, each naming the file or entry; an empty list means intact."""
    return check(path, reports_root=reports_root).problems


def check(path: str | os.PathLike, allowed: signing.AllowedSigners | None = None,
          reports_root: str | os.PathLike | None = None, workers: int | None = None) -> Checked:
    """verify(), and with `allowed` the signatures too: the manifest's, and each listed run's
    seal (its signature, and each run file's manifest hash against the hash sealed with the run).
    Every file is re-hashed, on `workers` threads (default: one per core)."""
    path = Path(path)
    manifest_path = path / MANIFEST if path.is_dir() else path
    manifest_dir = manifest_path.parent.resolve()
    shown_manifest = _show_plain(manifest_path)
    out = Checked()
    if not manifest_path.is_file():
        out.problems.append(f"{shown_manifest}: missing")
        return out
    data, problem = read_json(manifest_path)
    if problem:
        out.problems.append(f"{shown_manifest}: cannot be read: {problem}")
        return out
    if not isinstance(data, dict) or data.get("kind") != KIND:
        out.problems.append(f"{shown_manifest}: not an evidence manifest (kind is not {KIND!r})")
        return out

    problems = out.problems
    if allowed is not None:
        try:
            out.manifest_signer = signing.check(manifest_path, allowed)
        except signing.SignatureProblem as e:
            problems.append(f"{shown_manifest}: {str(e).removeprefix(MANIFEST + ': ')}")
    header = {k: data.get(k) for k in HEADER_FIELDS}
    genesis = _canonical_hash(header)
    if data.get("genesis") != genesis:
        problems.append(f"{shown_manifest}: header edited (its genesis hash does not match kind, created, "
                        "reports_root and scope)")
    root = Path(reports_root).resolve() if reports_root else (manifest_dir / str(data.get("reports_root") or ".")).resolve()
    # Strings from here on, not Paths: a year of runs is 60,000 entries, and pathlib costs more
    # than hashing them.
    root_s, manifest_s = str(root), str(manifest_dir)

    def locate(entry: dict) -> str:  # no resolve: the anchors are resolved already
        f = f"{manifest_s if entry.get('base') == 'manifest' else root_s}/{entry.get('path')}"
        return os.path.normpath(f) if "/." in f or "//" in f else f

    def show(p: str) -> str:
        for anchor in (root_s, manifest_s):
            if p.startswith(anchor + "/"):
                return rel_path(p, os.path.dirname(anchor))
        return p

    entries = data.get("entries") if isinstance(data.get("entries"), list) else None
    if entries is None:
        problems.append(f"{shown_manifest}: has no entries list")
        return out
    prev = data.get("genesis") if data.get("genesis") == genesis else genesis
    listed: dict[str, dict] = {}
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not e.keys() >= _ENTRY_KEYS:
            problems.append(f"chain broken at entry {i}: malformed entry")
            prev = e.get("hash") if isinstance(e, dict) else prev
            continue
        f = locate(e)
        if e["n"] != i:
            problems.append(f"chain broken at entry {i} ({show(f)}): it is numbered {e['n']}, so an entry was "
                            "removed, added or moved before it")
        elif e["prev"] != prev:
            problems.append(f"chain broken at entry {i} ({show(f)}): its prev does not match the hash of entry {i - 1}"
                            if i else f"chain broken at entry 0 ({show(f)}): its prev is not the genesis hash")
        if _hash_of(e) != e["hash"]:
            problems.append(f"chain broken at entry {i} ({show(f)}): entry edited (its hash does not match its fields)")
        prev = e["hash"]
        listed[f] = e
    if data.get("count") != len(entries) or data.get("head") != prev:
        problems.append(f"chain broken at the end ({shown_manifest}): head/count do not match the last entry, so "
                        "entries were removed or added after it")

    # Every file re-hashed on every core, a share of the files each (hashlib lets go of the
    # interpreter lock while it hashes), while this thread checks the signatures. A run's seal
    # and its signature are hashed by the seal check, which reads them anyway.
    runs = _run_files_by_dir(listed) if allowed is not None else {}
    by_seal = {f for d in runs for f in (f"{d}/{SEAL}", f"{d}/{SEAL_SIG}") if f in listed}
    paths = [f for f in listed if f not in by_seal]
    n = max(1, workers or os.cpu_count() or 2)
    shares = [paths[i::n] for i in range(n)]
    seals = _Seals(sorted(runs), allowed)  # its processes start first, before any thread here
    try:
        with ThreadPoolExecutor(max_workers=n) as pool:
            hashing = [pool.submit(_hash_all, share) for share in shares]
            unlisted = _unlisted(set(listed), root, data.get("scope") if isinstance(data.get("scope"), dict) else {},
                                 show)
            actual: dict[str, str | None] = dict.fromkeys(by_seal)
            if allowed is not None:
                sealed_runs = seals.results()
                for d, (*_, read) in sealed_runs.items():
                    actual.update({f"{d}/{name}": digest for name, digest in read.items() if f"{d}/{name}" in by_seal})
                problems.extend(_check_seals(listed, runs, sealed_runs, out, show))
                problems.extend(_check_documents(listed, allowed, out, show))
            actual.update({f: h for share, job in zip(shares, hashing) for f, h in zip(share, job.result())})
    finally:
        seals.close()
    for f, e in listed.items():
        if actual[f] is None:
            problems.append(f"{show(f)}: missing")
        elif actual[f] != e["sha256"]:
            problems.append(f"{show(f)}: content changed (sha256 {actual[f][:16]}…, manifest has "
                            f"{str(e['sha256'])[:16]}…)")
    out.files = len(listed)
    problems.extend(unlisted)
    return out


def _hash_all(files: list[str]) -> list[str | None]:
    out = []
    for f in files:
        try:
            out.append(sha256_file(f))
        except OSError:
            out.append(None)
    return out


def _run_files_by_dir(listed: dict[str, dict]) -> dict[str, list[str]]:
    """{run dir: the listed files of that run} (a run's ledger shards are one folder down)."""
    runs: dict[str, list[str]] = {os.path.dirname(f): [] for f in listed if f.endswith("/" + VERDICT)}
    for f in listed:
        parent = os.path.dirname(f)
        d = parent if parent in runs else os.path.dirname(parent) if os.path.dirname(parent) in runs else None
        if d is not None:
            runs[d].append(f)
    return runs


def _check_seals(listed: dict[str, dict], runs: dict[str, list[str]], sealed_runs: dict[str, tuple], out: Checked,
                 show) -> list[str]:
    """Each listed run: its seal signed by an allowed signer, and every run file the manifest
    lists hashed as the seal says (the files themselves were re-hashed against the manifest)."""
    problems = []
    for d, (signer, sealed, found, _) in sealed_runs.items():
        if signer:
            out.run_signers[signer] += 1
        problems.extend(f"{show(d)}/{p}" for p in found)
        if not signer:
            continue
        for f in runs[d]:
            rel = f[len(d) + 1:]
            if rel in sealed and sealed[rel] != listed[f]["sha256"]:
                problems.append(f"{show(f)}: its manifest hash is not the one sealed with the run")
            elif rel not in sealed and rel not in (SEAL, SEAL_SIG):
                problems.append(f"{show(f)}: listed in the manifest but not in the run's seal")
    return problems


def _check_documents(listed: dict[str, dict], allowed: signing.AllowedSigners, out: Checked, show) -> list[str]:
    """Any other listed file whose signature is listed beside it (plans, corrective actions)."""
    problems = []
    for f in listed:
        if f"{f}{signing.SIG_SUFFIX}" in listed and os.path.basename(f) not in (SEAL, MANIFEST):
            try:
                out.document_signers[show(f)] = signing.check(f, allowed)
            except signing.SignatureProblem as e:
                problems.append(f"{show(f)}: {str(e).removeprefix(os.path.basename(f) + ': ')}")
    return problems


# Below this many runs a second process costs more than it saves.
PARALLEL_SEALS_FROM = 500


class _Seals:
    """check_seal of every run, on every core: an Ed25519 check holds the interpreter lock, so a
    year of runs is shared between worker processes, started before any thread of ours (forked
    then, they need no imports; a process that runs threads already spawns them instead)."""

    def __init__(self, dirs: list[str], allowed: signing.AllowedSigners | None):
        self.dirs, self.allowed, self.pool, self.pending = dirs, allowed, None, None
        n = os.cpu_count() or 1
        if allowed is None or n < 2 or len(dirs) < PARALLEL_SEALS_FROM:
            return
        method = "fork" if threading.active_count() == 1 else "spawn"
        self.pool = multiprocessing.get_context(method).Pool(n)
        self.shares = [dirs[i::n] for i in range(n)]
        self.pending = self.pool.starmap_async(_seal_share, [(share, allowed.path) for share in self.shares])

    def results(self) -> dict[str, tuple]:
        if self.pending is None:
            return {d: check_seal_read(d, self.allowed) for d in self.dirs}
        return {d: r for share, found in zip(self.shares, self.pending.get()) for d, r in zip(share, found)}

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


def _seal_share(dirs: list[str], allowed_path: Path) -> list[tuple]:
    allowed = signing.AllowedSigners.read(allowed_path)
    return [check_seal_read(d, allowed) for d in dirs]


# Internals ------------------------------------------------------------------------------------

def _show_plain(p: Path) -> str:
    p = p.resolve() if p.exists() else p
    return p.as_posix() if not p.is_absolute() else _rel(p, p.parent.parent)


def _unlisted(listed: set[str], root: Path, scope: dict, show) -> list[str]:
    """Files that belong to the evidence but appeared after the manifest was written."""
    problems = []
    run_dirs = {os.path.dirname(f) for f in listed if f.endswith("/" + VERDICT)}
    for d in sorted(run_dirs):
        for name in RUN_FILES + (SEAL, SEAL_SIG):
            f = f"{d}/{name}"
            if f not in listed and os.path.isfile(f):
                problems.append(f"{show(f)}: not in the manifest (added after it was written)")
    quarter = scope.get("quarter")
    if not quarter or not root.is_dir():
        return problems
    try:
        start, end = parse_quarter(quarter)
    except ValueError:
        return problems + [f"manifest scope names a bad quarter {quarter!r}"]
    for d in find_run_dirs(root):  # under the resolved root already
        if str(d) in run_dirs:
            continue
        data, problem = read_json(d / VERDICT)
        started = parse_time(data.get("started")) if isinstance(data, dict) else None
        if started and start <= started < end:
            problems.append(f"{show(str(d / VERDICT))}: a {quarter} run not in the manifest (added after it was written)")
    for path, record in load_backup_records(root)[0]:
        wall = parse_time(record.get("wall"))
        if wall and start <= wall < end and str(path) not in listed:
            problems.append(f"{show(str(path))}: a {quarter} backup record not in the manifest")
    return problems
