"""`gameday report ...`: re-render and check the evidence.

  gameday report run RUN_DIR                      report.html + junit.xml of one run (sealed again)
  gameday report gameday DIR                      summary.json, index.html, junit.xml of a game day
  gameday report quarterly --quarter 2026Q4 [--reports-dir reports] [--out DIR]   signed manifest
  gameday report verify PATH [--allowed-signers F]  a quarter's manifest, or the runs under PATH:
                                                  every file, hash and signature; exit 0 intact,
                                                  1 with each problem listed; names the signers
  gameday report pdf DIR [--out FILE]             the quarterly evidence or a game day's index as
                                                  a PDF (headless Chromium), signed beside it
  gameday report rejudge RUN_DIR                  the verdict recomputed from the stored history;
                                                  exit 0 the same, 1 with each difference listed
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from harness import targets
from harness.cli.options import (add_home_options, add_signing_options, allowed_signers_of, signing_key_of,
                                 target_of)
from harness.core import signing
from harness.core.errors import UsageError, first_line
from harness.records.history import HistoryError
from harness.run.judge import rejudge
from harness.report.gameday import format_table, write_gameday_summary
from harness.report.manifest import KIND as MANIFEST_KIND, MANIFEST, check
from harness.report.pdf import PdfError, print_pdf
from harness.report.quarterly import build_quarterly
from harness.report.run import write_run_report
from harness.report.rundir import find_run_dirs, read_json
from harness.report.seal import SEAL, check_run, reseal

DEFAULT_REPORTS_DIR = "reports"


def register(subparsers) -> None:
    report = subparsers.add_parser("report", help="render game-day evidence: run, gameday, quarterly, verify",
                                   description="Render and verify game-day evidence.")
    sub = report.add_subparsers(dest="report_command", metavar="SUBCOMMAND")
    report.set_defaults(func=_missing_subcommand)

    p = sub.add_parser("run", help="re-render one run's report.html and junit.xml")
    p.add_argument("run_dir", metavar="RUN_DIR")
    add_home_options(p)
    add_signing_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("gameday", help="re-render a game day's index, summary and junit.xml")
    p.add_argument("dir", metavar="DIR")
    p.set_defaults(func=cmd_gameday)

    p = sub.add_parser("quarterly", help="build the quarterly BCP review evidence")
    p.add_argument("--quarter", required=True, help="e.g. 2026Q4")
    p.add_argument("--reports-dir", default=DEFAULT_REPORTS_DIR, help="where the runs are (default: reports)")
    p.add_argument("--out", default=None, help="output dir (default: REPORTS_DIR/quarterly-QUARTER)")
    p.add_argument("--prometheus-url", default=None,
                   help="where to read the quarter's RPO exposure (default: the target's Prometheus)")
    add_home_options(p)
    add_signing_options(p)
    p.set_defaults(func=cmd_quarterly)

    p = sub.add_parser("verify", help="check evidence: every file, the hash chain and every signature")
    p.add_argument("path", metavar="PATH", help="manifest.json or the dir holding it; or a run or game-day dir")
    add_home_options(p)
    add_signing_options(p, key=False, allowed=True)
    p.add_argument("--unsigned", action="store_true",
                   help="check files and hash chain only, not the signatures (evidence from before signatures)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("pdf", help="print the quarterly evidence or a game day's index to PDF, signed")
    p.add_argument("dir", metavar="DIR", help="a quarterly folder or a game-day folder (holding index.html)")
    p.add_argument("--out", default=None, metavar="FILE", help="the PDF (default: DIR/<DIR's name>.pdf)")
    add_home_options(p)
    add_signing_options(p)
    p.set_defaults(func=cmd_pdf)

    p = sub.add_parser("rejudge", help="recompute a run's verdict from its stored history and objectives")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(func=cmd_rejudge)


def _missing_subcommand(args: argparse.Namespace) -> int:
    raise UsageError("report: choose a subcommand: run, gameday, quarterly, verify or rejudge")


def cmd_run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"report run: no such run directory: {run_dir}")
    if not (run_dir / "verdict.json").exists():
        raise UsageError(f"report run: {run_dir} is not a run directory (it has no verdict.json)")
    key = signing_key_of(args) if (run_dir / SEAL).exists() else None
    path = write_run_report(run_dir)
    if key is not None:  # the run's record unchanged, its re-rendered pages sealed with it again
        try:
            reseal(run_dir, key, rendered=("report.html", "junit.xml"))
        except (ValueError, signing.SigningError) as e:
            raise UsageError(f"report run: {e}") from None
    print(path)
    return 0


def cmd_gameday(args: argparse.Namespace) -> int:
    gd = Path(args.dir)
    if not gd.is_dir():
        raise UsageError(f"report gameday: no such directory: {gd}")
    run_dirs = [d for d in find_run_dirs(gd) if d != gd]
    if not run_dirs:
        raise UsageError(f"report gameday: no run directories (with verdict.json) under {gd}")
    previous, _ = read_json(gd / "summary.json")
    previous = previous if isinstance(previous, dict) else {}
    verdicts = [read_json(d / "verdict.json")[0] or {} for d in run_dirs]
    started = previous.get("started") or min((v.get("started") for v in verdicts if isinstance(v, dict)
                                               and v.get("started")), default=None)
    ended = previous.get("ended") or max((v.get("ended") for v in verdicts if isinstance(v, dict)
                                          and v.get("ended")), default=None)
    summary = write_gameday_summary(gd, run_dirs, started, ended)
    print(format_table(summary, color=sys.stdout.isatty()))
    print(gd / "index.html")
    return 0


def _target_prometheus(args: argparse.Namespace) -> str | None:
    """The Prometheus of the target (--home, --target, else $GAMEDAY_TARGET or the default home),
    if it is up: the quarter's RPO exposure is read there."""
    target = target_of(args)
    try:
        return target.data.get("prometheus_url")
    except targets.TargetError:  # no target up: the evidence says the exposure was not read
        return None


def cmd_quarterly(args: argparse.Namespace) -> int:
    try:
        index = build_quarterly(args.reports_dir, args.quarter, args.out,
                                prometheus_url=args.prometheus_url or _target_prometheus(args),
                                key=signing_key_of(args))
    except ValueError as e:
        raise UsageError(f"report quarterly: {e}")
    except FileNotFoundError as e:
        raise UsageError(f"report quarterly: {e}")
    ev = json.loads((index.parent / "evidence.json").read_text(encoding="utf-8"))
    manifest = json.loads((index.parent / "manifest.json").read_text(encoding="utf-8"))
    print(index)
    if ev["runs_total"]:
        broken = [c["bcp"] for c in ev["criteria"] if c["breaking"]]
        print(f"{ev['quarter']}: {ev['runs_total']} runs, {ev['statuses']['pass']} passed, "
              f"{len(ev['failures'])} not passed; "
              + (f"criteria broken: {'; '.join(broken)}" if broken else "every BCP success criterion held")
              + f"; {ev['backup_verification']['count']} backup verifications; manifest head {manifest['head'][:16]}"
              + ", signed")
    else:
        print(f"{ev['quarter']}: no game-day runs were recorded; {ev['backup_verification']['count']} backup "
              f"verifications; manifest head {manifest['head'][:16]}, signed")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"report verify: no such file or directory: {path}")
    allowed = None if args.unsigned else allowed_signers_of(args)
    if path.is_dir() and not (path / MANIFEST).is_file():
        return _verify_runs(path, allowed)
    data, problem = read_json(path / MANIFEST if path.is_dir() else path)
    if problem or not isinstance(data, dict) or data.get("kind") != MANIFEST_KIND:
        raise UsageError(f"report verify: {path} is not an evidence manifest"
                         + (f" ({problem})" if problem else f" (its kind is not {MANIFEST_KIND!r})"))
    checked = check(path, allowed)
    if checked.problems:
        return _problems(checked.problems, "the evidence does not match its manifest")
    print(f"intact: {checked.files} files match their manifest entries and the hash chain is whole")
    if allowed is None:
        print("signatures NOT checked (--unsigned)")
        return 0
    runs = "; ".join(f"{n} run{'s' if n != 1 else ''} sealed by {s}" for s, n in checked.run_signers.items())
    documents = [f"{name} by {s}" for name, s in checked.document_signers.items()]
    folder = (path if path.is_dir() else path.parent)
    for sig in sorted(folder.glob(f"*.pdf{signing.SIG_SUFFIX}")):  # printed after the manifest was written
        doc = sig.with_name(sig.name[:-len(signing.SIG_SUFFIX)])
        try:
            documents.append(f"{doc.name} by {signing.check(doc, allowed)}")
        except signing.SignatureProblem as e:
            return _problems([str(e)], "a document beside the manifest does not match its signature")
    print(f"signed: {MANIFEST} by {checked.manifest_signer}" + (f"; {runs}" if runs else "")
          + "".join(f"; {d}" for d in documents))
    print(f"allowed signers: {allowed.path}")
    return 0


def _verify_runs(folder: Path, allowed: signing.AllowedSigners | None) -> int:
    """A run or game-day folder: each run against its own signed seal, re-hashed."""
    runs = find_run_dirs(folder)
    if not runs:
        raise UsageError(f"report verify: {folder} holds neither a {MANIFEST} nor a run (verdict.json)")
    if allowed is None:
        raise UsageError("report verify: --unsigned needs a manifest; a run is checked against its signed seal")
    problems, sealed_by, documents = [], Counter(), []
    for d in runs:
        signer, found = check_run(d, allowed)
        name = d.name if d != folder else "."
        problems.extend(f"{name}/{p}" for p in found)
        if signer:
            sealed_by[signer] += 1
    for sig in sorted(folder.glob(f"*{signing.SIG_SUFFIX}")):  # the game day's plan, its PDF
        if sig.name == SEAL + signing.SIG_SUFFIX:
            continue
        doc = sig.with_name(sig.name[:-len(signing.SIG_SUFFIX)])
        try:
            documents.append(f"{doc.name} by {signing.check(doc, allowed)}")
        except signing.SignatureProblem as e:
            problems.append(str(e))
    if problems:
        return _problems(problems, "the evidence does not match its signatures")
    print(f"intact: {len(runs)} run{'s' if len(runs) != 1 else ''}, every file as sealed when the run was written")
    print("signed: " + "; ".join([f"{n} run{'s' if n != 1 else ''} sealed by {s}" for s, n in sealed_by.items()]
                                 + documents))
    print(f"allowed signers: {allowed.path}")
    return 0


def _problems(problems: list[str], summary: str) -> int:
    for p in problems:
        print(p)
    print(f"{len(problems)} problem{'s' if len(problems) != 1 else ''}: {summary}", file=sys.stderr)
    return 1


def cmd_pdf(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if not (folder / "index.html").is_file():
        raise UsageError(f"report pdf: {folder} holds no index.html (give a quarterly or game-day folder)")
    out = Path(args.out) if args.out else folder / f"{folder.resolve().name}.pdf"
    key = signing_key_of(args)
    try:
        pdf = print_pdf(folder / "index.html", out)
        signing.sign(pdf, key)
    except (PdfError, signing.SigningError) as e:
        raise UsageError(f"report pdf: {e}") from None
    print(pdf)
    return 0


def cmd_rejudge(args: argparse.Namespace) -> int:
    """Jepsen's re-analysis: the judgement again, from what the run left on disk."""
    run_dir = Path(args.run_dir)
    if not (run_dir / "verdict.json").is_file() or not (run_dir / "history.jsonl").is_file():
        raise UsageError(f"report rejudge: {run_dir} is not a run directory (it needs verdict.json and history.jsonl)")
    try:
        fresh, diffs = rejudge(run_dir)
    except (HistoryError, ValueError, OSError) as e:
        raise UsageError(f"report rejudge: {first_line(e)}") from None
    if diffs:
        for line in diffs:
            print(line)
        print(f"{len(diffs)} difference{'s' if len(diffs) != 1 else ''} from the stored verdict "
              f"(now {fresh['status'].upper()})", file=sys.stderr)
        return 1
    print(f"same verdict: {fresh['status'].upper()} ({fresh['reason']})")
    return 0
