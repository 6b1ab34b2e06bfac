"""A run's seal: the SHA-256 of every file the run wrote, in `SHA256SUMS`, signed when the run is
written (`SHA256SUMS.sig`, harness/core/signing.py).

The verdict, the history, the journal, the report and the JUnit file are hashed once, when the
run ends, and the list is signed then: from that moment an edit to any of them (or to the list)
is caught by anyone holding the allowed-signers file, with no tool of ours:

    cd reports/<run>; sha256sum -c SHA256SUMS
    ssh-keygen -Y verify -f allowed_signers -I PRINCIPAL -n gameday-evidence@svgai -s SHA256SUMS.sig < SHA256SUMS

The quarterly manifest takes each run's hashes from its seal instead of hashing the run again
(harness/report/manifest.py), so a file changed after the run cannot be laundered into a new
manifest: its hash no longer matches the one signed at the end of the run.

Logs (`*.log`) are left out: other processes' handlers may still append a line after the run is
sealed, and they are diagnostics, not evidence. `gameday report run` re-renders report.html and
junit.xml from the sealed record: `reseal` checks that everything else still matches first.

    seal_run(run_dir, key)           → SHA256SUMS and its signature
    read_seal(run_dir)               → ({path: sha256}, problem or None)
    check_run(run_dir, allowed)      → (Signer or None, problems)
    reseal(run_dir, key, rendered)   → the seal again after re-rendering the files named
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from harness.core import signing
from harness.core.checksums import sha256_file

__all__ = ["SEAL", "SEAL_SIG", "seal_run", "read_seal", "check_run", "reseal", "sealed_files"]

SEAL = "SHA256SUMS"
SEAL_SIG = SEAL + signing.SIG_SUFFIX
_LINES = re.compile(r"^([0-9a-f]{64}) [ *](.+)$", re.M)  # sha256sum's own format


def sealed_files(run_dir: Path) -> list[str]:
    """Every file of the run a seal covers, relative and sorted, verdict.json first."""
    out = []
    for dirpath, dirnames, filenames in os.walk(run_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or name.endswith(".log") or name in (SEAL, SEAL_SIG):
                continue
            out.append(Path(os.path.relpath(Path(dirpath) / name, run_dir)).as_posix())
    return sorted(out, key=lambda p: (p != "verdict.json", p))


def seal_run(run_dir: str | os.PathLike, key: str | os.PathLike, hashes: dict[str, str] | None = None) -> Path:
    """Hash every file of the run (or take `hashes` for those already known), write SHA256SUMS
    and sign it with `key`. Returns the signature's path. SigningError if it cannot be signed."""
    run_dir = Path(run_dir)
    hashes = hashes or {}
    lines = [f"{hashes.get(rel) or sha256_file(run_dir / rel)}  {rel}\n" for rel in sealed_files(run_dir)]
    path = run_dir / SEAL
    tmp = run_dir / f".{SEAL}.tmp"
    tmp.write_text("".join(lines), encoding="utf-8")
    os.replace(tmp, path)
    try:
        return signing.sign(path, key)
    except signing.SigningError:
        path.unlink()  # an unsigned seal proves nothing: the run is then plainly "not sealed"
        raise


def read_seal(run_dir: str | os.PathLike, text: str | None = None) -> tuple[dict[str, str], str | None]:
    """The seal's {relative path: sha256}, or ({}, a sentence saying why not)."""
    path = Path(run_dir) / SEAL
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}, f"not sealed (no {SEAL})"
        except (OSError, UnicodeDecodeError) as e:
            return {}, f"{SEAL} cannot be read ({e})"
    found = _LINES.findall(text)
    if len(found) != text.count("\n") + (0 if text.endswith("\n") or not text else 1):
        bad = next(n for n, line in enumerate(text.splitlines(), 1) if not _LINES.fullmatch(line))
        return {}, f"{SEAL} line {bad} is not '<sha256>  <file>'"
    return {rel: digest for digest, rel in found}, None


def check_run(run_dir: str | os.PathLike, allowed: signing.AllowedSigners,
              rehash: bool = True) -> tuple[signing.Signer | None, list[str]]:
    """Who sealed the run, and every problem: the seal's signature, then (rehash) each file
    against it, and files added since. Problems name the run's files relative to run_dir."""
    signer, hashes, problems = check_seal(os.fspath(run_dir), allowed)
    if signer is None or problems:
        return signer, problems
    run_dir = Path(run_dir)
    problems = []
    if rehash:
        for rel, digest in hashes.items():
            f = run_dir / rel
            if not f.is_file():
                problems.append(f"{rel}: missing")
            elif sha256_file(f) != digest:
                problems.append(f"{rel}: content changed since the run was sealed")
    if rehash:  # (without it the caller lists the run's files itself)
        for rel in sealed_files(run_dir):
            if rel not in hashes:
                problems.append(f"{rel}: not in the run's seal (added after the run was written)")
    return signer, problems


def check_seal(run_dir: str, allowed: signing.AllowedSigners) -> tuple[signing.Signer | None, dict[str, str], list[str]]:
    """The seal's signer and hashes, files not re-hashed (plain strings: a year of runs is
    10,000 of these)."""
    signer, hashes, problems, _ = check_seal_read(run_dir, allowed)
    return signer, hashes, problems


def check_seal_read(run_dir: str, allowed: signing.AllowedSigners) -> tuple:
    """check_seal, and the SHA-256 of the two files it read ({SEAL: …, SEAL_SIG: …}), so that a
    verifier need not read them again."""
    seal_path = f"{run_dir}/{SEAL}"
    read: dict[str, str] = {}
    try:
        with open(seal_path, "rb") as f:
            data = f.read()
        read[SEAL] = hashlib.sha256(data).hexdigest()
        with open(f"{seal_path}{signing.SIG_SUFFIX}", "rb") as f:
            raw = f.read()
        read[SEAL_SIG] = hashlib.sha256(raw).hexdigest()
        armored = raw.decode("ascii")
    except FileNotFoundError as e:
        if e.filename == seal_path:
            return None, {}, [f"{SEAL}: missing, so the run is not signed (written before signatures, or signing failed)"], read
        return None, {}, [f"{SEAL}: not signed (no {SEAL_SIG})"], read
    except (OSError, UnicodeDecodeError) as e:
        return None, {}, [f"{SEAL}: cannot be read ({e})"], read
    try:
        signer = signing.check_data(data, armored, allowed, SEAL, Path(seal_path), Path(f"{seal_path}{signing.SIG_SUFFIX}"))
    except signing.SignatureProblem as e:
        return None, {}, [str(e)], read
    hashes, problem = read_seal(run_dir, data.decode("utf-8", errors="replace"))
    return signer, hashes, [problem] if problem else [], read


def reseal(run_dir: str | os.PathLike, key: str | os.PathLike, rendered: tuple[str, ...]) -> Path:
    """Seal the run again after `rendered` (e.g. report.html, junit.xml) were re-rendered from its
    record; refused (ValueError) when any other sealed file changed: re-rendering must never
    launder an edit into a new seal."""
    run_dir = Path(run_dir)
    hashes, problem = read_seal(run_dir)
    if problem:
        raise ValueError(f"{run_dir.name}: {problem}")
    changed = [rel for rel, digest in hashes.items()
               if rel not in rendered and (not (run_dir / rel).is_file() or sha256_file(run_dir / rel) != digest)]
    if changed:
        raise ValueError(f"{run_dir.name}: {', '.join(changed)} changed since the run was sealed; not sealing it again")
    return seal_run(run_dir, key, {rel: d for rel, d in hashes.items() if rel not in rendered})
