"""The one evidence writer: every file of a run, from its one verdict, whichever runner ran it.

`gameday run` (harness/run/runner.py) and stock `chaos run` (harness/run/control.py, when it owns
the session) both end a run here, so both leave the same files in the same run folder:

    verdict.json    the verdict (status, criteria with their evidence)
    journal.json    Chaos Toolkit's journal with the verdict under `bcp`
    report.html     the run's page (timeline, phases, criteria)
    junit.xml       one testcase per criterion
    history.jsonl, session.json, chaostoolkit.log, load.log, ledger-shards/   what the run recorded
    SHA256SUMS, SHA256SUMS.sig   the seal: every file's SHA-256 (logs aside), signed with OpenSSH
                    when the run is written (harness/report/seal.py)

Secrets are masked in every one of them, always: the target's passwords (its passfile), the
values of its `secret_fields`, credentials and tokens in URLs (harness.core.redact).

The signing key is $GAMEDAY_SIGNING_KEY (`gameday run --signing-key`), else the home's own, made
at first use in its secrets folder (harness.core.signing.home_key). A run that cannot be signed
keeps its verdict and says why in seal-error.txt: `gameday report verify` then refuses it.

    write_evidence(run_dir, verdict, journal, secrets)   all of the above; returns the verdict as written
    journal_status(verdict)                              the journal status that makes `chaos run`
                                                         exit 1 unless the verdict is PASS
    redact_in_place(value, secrets)                      a JSON-able structure with its secrets masked
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.core import signing
from harness.core.redact import redact, redact_file
from harness.records.shards import SHARD_DIR
from harness.report.run import write_run_report
from harness.report.seal import seal_run
from harness.targets import target_path

__all__ = ["write_evidence", "journal_status", "redact_in_place", "seal", "signing_key", "RECORDED_FILES",
           "SIGNING_KEY_ENV"]

# Written while the run goes, by the recorders, chaoslib and the session: masked afterwards.
RECORDED_FILES = ("history.jsonl", "session.json", "chaostoolkit.log", "load.log")
SIGNING_KEY_ENV = "GAMEDAY_SIGNING_KEY"  # as harness.cli.options names it (`--signing-key`)


def write_evidence(run_dir: str | Path, verdict: dict, journal: dict | None, secrets: list[str] = (),
                   key: str | Path | None = None) -> dict:
    """Write verdict.json, journal.json (the verdict under `bcp`), report.html and junit.xml into
    `run_dir`, after masking `secrets` in what the run recorded, then seal and sign them all with
    `key` (default: signing_key()). Returns the verdict as written (masked). A report that cannot
    be rendered leaves report-error.txt saying why: the verdict stands without its pictures."""
    run_dir = Path(run_dir)
    secrets = list(secrets)
    for name in RECORDED_FILES:
        redact_file(run_dir / name, secrets)
    for shard in sorted((run_dir / SHARD_DIR).glob("*.jsonl")):
        redact_file(shard, secrets)
    clean = redact_in_place(json.loads(json.dumps(verdict, default=str)), secrets)
    (run_dir / "verdict.json").write_text(json.dumps(clean, indent=2) + "\n")
    whole = redact_in_place(json.loads(json.dumps({**(journal or {}), "bcp": clean}, default=str)), secrets)
    (run_dir / "journal.json").write_text(json.dumps(whole, indent=2) + "\n")
    try:
        write_run_report(run_dir)
    except Exception as e:  # the verdict stands without its pictures; say why they are missing
        (run_dir / "report-error.txt").write_text(redact(f"report not rendered: {type(e).__name__}: {e}\n", secrets))
    seal(run_dir, key, secrets)
    return clean


def seal(run_dir: str | Path, key: str | Path | None = None, secrets: list[str] = (),
         home: str | Path | None = None) -> bool:
    """Seal and sign every file of the run (harness/report/seal.py) with `key` (default:
    signing_key(home)). A run that cannot be signed says why in seal-error.txt; returns whether it was."""
    try:
        seal_run(run_dir, key or signing_key(home))
        return True
    except (signing.SigningError, OSError) as e:  # the verdict stands; verify will refuse it unsigned
        (Path(run_dir) / "seal-error.txt").write_text(redact(f"run not sealed: {e}\n", list(secrets)))
        return False


def signing_key(home: str | Path | None = None) -> Path:
    """The key runs are signed with: $GAMEDAY_SIGNING_KEY, else the home's own (made at first
    use), by default the home of the target the run acts on."""
    given = os.environ.get(SIGNING_KEY_ENV)
    return signing.given_key(given) if given else signing.home_key(home or target_path().parent)


def journal_status(verdict: dict) -> str:
    """What Chaos Toolkit's journal must say for `chaos run` to exit as the verdict does: it exits
    0 only on "completed", so a FAIL or an ERROR is "failed", an interrupted run "interrupted"."""
    status = verdict.get("status")
    if status == "pass":
        return "completed"
    return "interrupted" if status == "interrupted" else "failed"


def redact_in_place(value: Any, secrets: list[str] = ()) -> Any:
    """`value` (dicts, lists, strings…) with every string masked; dicts and lists are changed in
    place, so a journal Chaos Toolkit is about to write is masked before it writes it."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        for k in list(value):
            value[k] = redact_in_place(value[k], secrets)
        return value
    if isinstance(value, list):
        for i, item in enumerate(value):
            value[i] = redact_in_place(item, secrets)
        return value
    return value
