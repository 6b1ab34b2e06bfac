"""Signed evidence: OpenSSH signatures on every run's seal and on the quarterly manifest, checked
against an allowed-signers file. A forger who edits a verdict and recomputes the whole hash chain
is caught; a key nobody allowed is refused; our in-process check agrees with ssh-keygen's own."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from harness.cli import main as cli
from harness.core import signing
from harness.report import manifest as manifest_mod
from harness.report.manifest import build_manifest, check
from harness.report.quarterly import build_quarterly
from harness.report.run import write_run_report
from harness.report.rundir import find_run_dirs
from harness.report.seal import SEAL, SEAL_SIG, check_run, read_seal, seal_run
from harness.run.evidence import write_evidence
from synthetic_runs import make_run

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "reports"
RUN = "gameday-2026-11-27/02-database-failure-no-restore"


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    h = tmp_path_factory.mktemp("home")
    signing.home_key(h, principal="ops-lead@svgai")
    return h


@pytest.fixture(scope="module")
def forger(tmp_path_factory) -> Path:
    """Someone with write access to the reports, and a key of their own."""
    h = tmp_path_factory.mktemp("forger")
    return signing.home_key(h, principal="mallory@elsewhere")


def allowed(home: Path) -> signing.AllowedSigners:
    return signing.AllowedSigners.read(home / signing.ALLOWED_SIGNERS_NAME)


def sealed_reports(tmp_path: Path, key: Path) -> Path:
    r = tmp_path / "reports"
    shutil.copytree(FIXTURES, r)
    for d in find_run_dirs(r):
        write_run_report(d)
        seal_run(d, key)
    return r


# The key and the signature ------------------------------------------------------------------

def test_the_home_key_is_made_once_private_and_allowed(home):
    key = home / "secrets" / signing.KEY_NAME
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "secrets").stat().st_mode) == 0o700
    line = (home / signing.ALLOWED_SIGNERS_NAME).read_text()
    assert line.startswith(f'ops-lead@svgai namespaces="{signing.NAMESPACE}" ssh-ed25519 ')
    before = key.read_bytes()
    assert signing.home_key(home) == key and key.read_bytes() == before  # made at first use only
    assert (home / signing.ALLOWED_SIGNERS_NAME).read_text() == line


def test_sign_and_check_names_the_signer(home, tmp_path):
    f = tmp_path / "plan.json"
    f.write_text('{"approved": true}\n')
    signing.sign(f, home / "secrets" / signing.KEY_NAME)
    signer = signing.check(f, allowed(home))
    assert signer.principal == "ops-lead@svgai" and signer.key_type == "ED25519"
    assert signer.fingerprint == signing.fingerprint_of_key(home / "secrets" / signing.KEY_NAME)
    f.write_text('{"approved": false}\n')
    with pytest.raises(signing.SignatureProblem, match="signature does not match its content"):
        signing.check(f, allowed(home))


def test_a_given_key_must_be_private(tmp_path, home):
    key = tmp_path / "k"
    shutil.copy(home / "secrets" / signing.KEY_NAME, key)
    key.chmod(0o644)
    with pytest.raises(signing.SigningError, match="readable by others"):
        signing.given_key(key)
    with pytest.raises(signing.SigningError, match="not a private key"):
        pub = tmp_path / "k.pub"
        shutil.copy(home / "secrets" / f"{signing.KEY_NAME}.pub", pub)
        pub.chmod(0o600)
        signing.given_key(pub)
    with pytest.raises(signing.SigningError, match="no such file"):
        signing.given_key(tmp_path / "none")


def ssh_keygen_verdict(f: Path, allowed_file: Path, principal: str) -> bool:
    done = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed_file), "-I", principal, "-n",
                           signing.NAMESPACE, "-s", f"{f}.sig"], stdin=open(f, "rb"), capture_output=True)
    return done.returncode == 0


def our_verdict(f: Path, who: signing.AllowedSigners) -> bool:
    try:
        signing.check(f, who)
        return True
    except signing.SignatureProblem:
        return False


def test_our_check_agrees_with_ssh_keygen(home, forger, tmp_path):
    key = home / "secrets" / signing.KEY_NAME
    who = allowed(home)
    cases = {}
    good = tmp_path / "good.json"
    good.write_text("{}\n")
    signing.sign(good, key)
    cases["good"] = good
    edited = tmp_path / "edited.json"
    edited.write_text("{}\n")
    signing.sign(edited, key)
    edited.write_text("{ }\n")
    cases["edited"] = edited
    other_ns = tmp_path / "other-namespace.json"
    other_ns.write_text("{}\n")
    done = subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", "git"], stdin=open(other_ns, "rb"),
                          capture_output=True, check=True)
    Path(f"{other_ns}.sig").write_bytes(done.stdout)
    cases["other namespace"] = other_ns
    stranger = tmp_path / "stranger.json"
    stranger.write_text("{}\n")
    signing.sign(stranger, forger)
    cases["unknown key"] = stranger
    broken = tmp_path / "broken.json"
    broken.write_text("{}\n")
    sig = signing.sign(broken, key)
    text = sig.read_text().splitlines()
    text[2] = text[2][:10] + ("A" if text[2][10] != "A" else "B") + text[2][11:]
    sig.write_text("\n".join(text) + "\n")
    cases["corrupted signature"] = broken
    results = {name: (our_verdict(f, who), ssh_keygen_verdict(f, who.path, "ops-lead@svgai"))
               for name, f in cases.items()}
    assert results == {"good": (True, True), "edited": (False, False), "other namespace": (False, False),
                       "unknown key": (False, False), "corrupted signature": (False, False)}


def test_other_key_types_go_to_ssh_keygen(tmp_path):
    h = tmp_path / "home"
    (h / "secrets").mkdir(parents=True)
    key = h / "secrets" / "rsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "rsa@svgai", "-f", str(key)],
                   check=True)
    pub = key.with_suffix(".pub").read_text().split()
    allowed_file = h / "allowed_signers"
    allowed_file.write_text(f'rsa@svgai namespaces="{signing.NAMESPACE}" {pub[0]} {pub[1]}\n')
    f = tmp_path / "f.json"
    f.write_text("{}\n")
    signing.sign(f, key)
    assert signing.check(f, signing.AllowedSigners.read(allowed_file)).principal == "rsa@svgai"
    f.write_text("{ }\n")
    with pytest.raises(signing.SignatureProblem, match="does not verify for rsa@svgai"):
        signing.check(f, signing.AllowedSigners.read(allowed_file))


# A run's seal -------------------------------------------------------------------------------

def test_the_evidence_writer_seals_every_file_of_the_run(home, tmp_path):
    run = tmp_path / "reports" / "20261127T035000Z-database-failure-ab12"
    verdict = make_run(run)
    (run / "load.log").write_text("a log is not evidence\n")
    write_evidence(run, verdict, json.loads((run / "journal.json").read_text()),
                   key=home / "secrets" / signing.KEY_NAME)
    hashes, problem = read_seal(run)
    assert problem is None
    assert list(hashes)[0] == "verdict.json"
    assert {"verdict.json", "journal.json", "history.jsonl", "report.html", "junit.xml"} <= set(hashes)
    assert "load.log" not in hashes and SEAL not in hashes
    signer, problems = check_run(run, allowed(home))
    assert signer.principal == "ops-lead@svgai" and problems == []
    # anyone can check it with standard tools
    assert subprocess.run(["sha256sum", "--quiet", "-c", SEAL], cwd=run).returncode == 0
    assert ssh_keygen_verdict(run / SEAL, home / signing.ALLOWED_SIGNERS_NAME, "ops-lead@svgai")

    (run / "verdict.json").write_text((run / "verdict.json").read_text().replace('"pass"', '"fail"'))
    (run / "extra.json").write_text("{}")
    _, problems = check_run(run, allowed(home))
    assert problems == ["verdict.json: content changed since the run was sealed",
                        "extra.json: not in the run's seal (added after the run was written)"]


def test_a_run_that_cannot_be_signed_keeps_its_verdict_and_says_why(tmp_path):
    run = tmp_path / "run"
    verdict = make_run(run)
    write_evidence(run, verdict, None, key=tmp_path / "no-such-key")
    assert (run / "verdict.json").is_file() and not (run / SEAL).exists()
    assert "run not sealed" in (run / "seal-error.txt").read_text()


def test_report_run_re_renders_and_seals_again_but_never_launders_an_edit(home, tmp_path, capsys):
    run = tmp_path / "run"
    make_run(run)
    write_run_report(run)
    seal_run(run, home / "secrets" / signing.KEY_NAME)
    (run / "report.html").write_text("stale")
    argv = ["report", "run", str(run), "--home", str(home)]
    assert cli.main(argv) == 0
    assert check_run(run, allowed(home))[1] == []
    (run / "history.jsonl").write_text((run / "history.jsonl").read_text().replace('"ok":false', '"ok":true'))
    assert cli.main(argv) == 2
    assert "history.jsonl changed since the run was sealed; not sealing it again" in capsys.readouterr().err


# The forger ---------------------------------------------------------------------------------

@pytest.fixture
def signed_quarter(home, tmp_path):
    r = sealed_reports(tmp_path, home / "secrets" / signing.KEY_NAME)
    index = build_quarterly(r, "2026Q4", key=home / "secrets" / signing.KEY_NAME)
    return r, index.parent


def test_a_signed_quarter_checks_and_names_its_signers(signed_quarter, home):
    _, q = signed_quarter
    checked = check(q, allowed(home))
    assert checked.problems == []
    assert checked.manifest_signer.principal == "ops-lead@svgai"
    assert [(s.principal, n) for s, n in checked.run_signers.items()] == [("ops-lead@svgai", 4)]
    m = json.loads((q / "manifest.json").read_text())
    paths = {e["path"] for e in m["entries"]}
    assert f"{RUN}/{SEAL}" in paths and f"{RUN}/{SEAL_SIG}" in paths


def forge_chain(r: Path, q: Path) -> None:
    """What anyone who can write the folder can do: recompute the whole chain over the files."""
    old = json.loads((q / "manifest.json").read_text())
    files = [(q if e["base"] == "manifest" else r) / e["path"] for e in old["entries"]]
    forged = build_manifest(q, r, files, old["scope"])
    (q / "manifest.json").write_text(json.dumps(forged))


def test_a_forger_who_recomputes_the_whole_chain_is_caught(signed_quarter, home):
    r, q = signed_quarter
    verdict = r / RUN / "verdict.json"
    verdict.write_text(verdict.read_text().replace('"status": "fail"', '"status": "pass"'))
    forge_chain(r, q)
    assert manifest_mod.verify(q) == []  # the chain alone cannot tell
    problems = check(q, allowed(home)).problems
    assert problems[0] == "quarterly-2026Q4/manifest.json: signature does not match its content (changed since it was signed)"
    assert f"reports/{RUN}/verdict.json: its manifest hash is not the one sealed with the run" in problems


def test_a_forger_who_signs_with_their_own_key_is_refused(signed_quarter, home, forger):
    r, q = signed_quarter
    run = r / RUN
    (run / "verdict.json").write_text((run / "verdict.json").read_text().replace('"status": "fail"', '"status": "pass"'))
    seal_run(run, forger)  # a new seal, signed by the forger
    forge_chain(r, q)
    signing.sign(q / "manifest.json", forger)
    problems = check(q, allowed(home)).problems
    fp = signing.fingerprint_of_key(forger)
    assert problems == [
        f"quarterly-2026Q4/manifest.json: signed by a key not in the allowed signers allowed_signers (ssh-ed25519 {fp}): refused",
        f"reports/{RUN}/SHA256SUMS: signed by a key not in the allowed signers allowed_signers (ssh-ed25519 {fp}): refused"]


def test_removed_signatures_are_missing_signatures(signed_quarter, home):
    r, q = signed_quarter
    (q / "manifest.json.sig").unlink()
    (r / RUN / SEAL_SIG).unlink()
    problems = check(q, allowed(home)).problems
    assert "quarterly-2026Q4/manifest.json: not signed (no manifest.json.sig)" in problems
    assert f"reports/{RUN}/SHA256SUMS: not signed (no SHA256SUMS.sig)" in problems


# The command line ---------------------------------------------------------------------------

def test_cli_signs_the_quarter_and_verify_names_the_signer(home, tmp_path, capsys):
    r = sealed_reports(tmp_path, home / "secrets" / signing.KEY_NAME)
    q = r / "quarterly-2026Q4"
    assert cli.main(["report", "quarterly", "--quarter", "2026Q4", "--reports-dir", str(r), "--home", str(home),
                     "--prometheus-url", "http://127.0.0.1:9"]) == 0
    assert capsys.readouterr().out.splitlines()[1].endswith(", signed")
    assert cli.main(["report", "verify", str(q), "--home", str(home)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("intact: ")
    assert out[1].startswith("signed: manifest.json by ops-lead@svgai (ED25519 SHA256:")
    assert "; 4 runs sealed by ops-lead@svgai (ED25519 SHA256:" in out[1]
    # a game-day folder, without a manifest: each run against its own seal
    assert cli.main(["report", "verify", str(r / "gameday-2026-11-27"), "--home", str(home)]) == 0
    assert capsys.readouterr().out.startswith("intact: 3 runs, every file as sealed")
    # the auditor's own copy of the allowed signers, apart from the evidence
    copy = tmp_path / "auditor-allowed-signers"
    shutil.copy(home / signing.ALLOWED_SIGNERS_NAME, copy)
    env = {"GAMEDAY_ALLOWED_SIGNERS": str(copy)}
    os.environ.update(env)
    try:
        assert cli.main(["report", "verify", str(q)]) == 0
    finally:
        os.environ.pop("GAMEDAY_ALLOWED_SIGNERS")
    capsys.readouterr()
    v = r / RUN / "verdict.json"
    v.write_text(v.read_text().replace('"status": "fail"', '"status": "pass"'))
    assert cli.main(["report", "verify", str(q), "--allowed-signers", str(copy)]) == 1
    captured = capsys.readouterr()
    assert f"reports/{RUN}/verdict.json: content changed" in captured.out
    assert cli.main(["report", "verify", str(r / "gameday-2026-11-27"), "--allowed-signers", str(copy)]) == 1
    assert "02-database-failure-no-restore/verdict.json: content changed since the run was sealed" in capsys.readouterr().out


def test_cli_verify_without_allowed_signers_is_one_line(tmp_path, capsys):
    q = tmp_path / "q"
    q.mkdir()
    build_quarterly(sealed_reports(tmp_path, signing.home_key(tmp_path / "h")), "2026Q4", out_dir=q)
    assert cli.main(["report", "verify", str(q), "--home", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "no allowed-signers file at" in err and len(err.strip().splitlines()) == 1
    assert cli.main(["report", "verify", str(q), "--unsigned"]) == 0
    assert "signatures NOT checked" in capsys.readouterr().out


def test_a_run_log_stops_growing_when_its_run_ends(tmp_path):
    """chaoslib adds a log file handler per run and never removes one: a game day's first run's
    chaostoolkit.log kept every later run's lines, after its checksums were sealed."""
    import logging

    from harness.run import runner
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    log = logging.getLogger("chaostoolkit")
    runner._quiet_chaoslib(first)
    log.info("run one")
    runner._release_chaoslib_log()
    sealed = first.read_bytes()
    runner._quiet_chaoslib(second)
    log.info("run two")
    runner._release_chaoslib_log()
    assert b"run one" in sealed and first.read_bytes() == sealed
    assert b"run two" in second.read_bytes() and b"run one" not in second.read_bytes()
