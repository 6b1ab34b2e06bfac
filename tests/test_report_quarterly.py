"""The quarterly BCP review evidence, its manifest (tamper detection) and the `report` CLI."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main as cli
from harness.report.manifest import verify
from harness.report.quarterly import build_quarterly, parse_quarter, percentile
from harness.report.run import write_run_report
from harness.report.rundir import find_run_dirs

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "reports"


def reports(tmp_path: Path, render: bool = True) -> Path:
    dest = tmp_path / "reports"
    shutil.copytree(FIXTURES, dest)
    if render:
        for d in find_run_dirs(dest):
            write_run_report(d)
    return dest


def evidence(index: Path) -> dict:
    return json.loads((index.parent / "evidence.json").read_text())


def test_quarter_strings():
    start, end = parse_quarter("2026Q4")
    assert (start.isoformat(), end.isoformat()) == ("2026-10-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")
    assert parse_quarter("2026q1")[1].month == 4
    for bad in ("2026-4", "2026Q5", "Q4", "", None, "2026Q4x"):
        with pytest.raises(ValueError, match=r"^quarter must look like 2026Q4, got "):
            parse_quarter(bad)
    with pytest.raises(ValueError, match=r"got '2026-4'$"):
        parse_quarter("2026-4")


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([1, 2, 3, 4], 50) == 2


def test_quarterly_counts_in_quarter_runs_only(tmp_path):
    r = reports(tmp_path)
    index = build_quarterly(r, "2026Q4")
    assert index == r / "quarterly-2026Q4" / "index.html"
    ev = evidence(index)
    assert ev["runs_total"] == 4  # the 2026-09-29 run is Q3
    assert {run["path"] for run in ev["runs"]} == {
        "gameday-2026-10-14/01-model-corruption", "gameday-2026-11-27/01-database-failure",
        "gameday-2026-11-27/02-database-failure-no-restore", "gameday-2026-11-27/03-api-crash-all"}
    assert ev["statuses"] == {"pass": 2, "fail": 1, "error": 1, "interrupted": 0}
    db = ev["scenarios"]["database-failure"]
    assert db["runs"] == 2 and db["passed"] == 1 and db["pass_rate"] == 0.5
    assert db["rto"]["n"] == 1 and db["rto"]["unrecovered"] == 1 and db["rto"]["max_s"] == 24.0
    assert db["rto"]["objective_s"] == 900
    assert [m["month"] for m in db["monthly"]] == ["2026-10", "2026-11", "2026-12"]
    crit = {c["name"]: c for c in ev["criteria"]}
    assert crit["rto"]["bcp"] == "RTO < 15 minutes achieved"
    # the error run proves nothing: not judged, though its verdict lists criteria
    assert (crit["rto"]["proving"], crit["rto"]["breaking"], crit["rto"]["not_judged"]) == (2, 1, 1)
    assert [b["run_id"] for b in crit["rto"]["breaking_runs"]] == ["02-database-failure-no-restore"]
    assert (crit["data_integrity"]["proving"], crit["data_integrity"]["breaking"]) == (3, 0)
    assert ev["backup_verification"]["count"] == 10  # Sept's record is Q3
    assert ev["backup_verification"]["integrity_failures"] == 1
    assert len(ev["failures"]) == 2
    html = index.read_text(encoding="utf-8")
    for text in ("RTO &lt; 15 minutes achieved", "RPO &lt; 5 minutes maintained", "All critical functions restored",
                 "Data integrity verified"):
        assert text in html
    for f in ev["failures"]:  # links to the failing runs' reports, which exist
        assert f["report"].endswith("report.html") and (index.parent / f["report"]).is_file()
        assert f'href="{f["report"]}"' in html
    assert 'class="rto-trend"' in html and 'class="monthly-status"' in html
    assert "No game-day runs" not in html
    assert verify(index.parent) == []


def test_empty_quarter_says_so_plainly(tmp_path):
    r = reports(tmp_path, render=False)
    index = build_quarterly(r, "2025Q1", out_dir=tmp_path / "q-empty")
    html = index.read_text(encoding="utf-8")
    assert "No game-day runs were recorded in 2025Q1" in html
    ev = evidence(index)
    assert ev["runs_total"] == 0 and ev["criteria"] and all(c["proving"] == 0 for c in ev["criteria"])
    manifest = json.loads((index.parent / "manifest.json").read_text())
    assert [e["path"] for e in manifest["entries"]] == ["index.html", "evidence.json"]
    assert verify(index.parent) == []


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="quarter must look like 2026Q4, got '2026-4'"):
        build_quarterly(tmp_path, "2026-4")
    with pytest.raises(FileNotFoundError):
        build_quarterly(tmp_path / "missing", "2026Q4")


# Tampering ------------------------------------------------------------------------------------

@pytest.fixture
def built(tmp_path):
    r = reports(tmp_path)
    index = build_quarterly(r, "2026Q4")
    return r, index.parent


def test_edited_verdict_is_named(built):
    r, q = built
    p = r / "gameday-2026-11-27" / "02-database-failure-no-restore" / "verdict.json"
    p.write_text(p.read_text().replace('"status": "fail"', '"status": "pass"'))
    problems = verify(q)
    assert len(problems) == 1
    assert problems[0].startswith("reports/gameday-2026-11-27/02-database-failure-no-restore/verdict.json: "
                                  "content changed (sha256 ")


def test_deleted_run_file_is_named(built):
    r, q = built
    (r / "gameday-2026-10-14" / "01-model-corruption" / "history.jsonl").unlink()
    assert verify(q) == ["reports/gameday-2026-10-14/01-model-corruption/history.jsonl: missing"]


def test_removed_manifest_entry_breaks_the_chain(built):
    _, q = built
    m = json.loads((q / "manifest.json").read_text())
    removed = m["entries"].pop(3)
    (q / "manifest.json").write_text(json.dumps(m))
    problems = verify(q)
    assert any(p.startswith("chain broken at entry 3 ") for p in problems), problems
    # ...and the file it listed shows up as not covered any more
    assert any(removed["path"] in p and "not in the manifest" in p for p in problems), problems


def test_reordered_edited_and_truncated_manifests(built):
    _, q = built
    original = (q / "manifest.json").read_text()
    m = json.loads(original)
    m["entries"][1], m["entries"][2] = m["entries"][2], m["entries"][1]
    (q / "manifest.json").write_text(json.dumps(m))
    assert any(p.startswith("chain broken at entry 1 ") for p in verify(q))

    m = json.loads(original)
    m["entries"][4]["sha256"] = "0" * 64  # hide an edit by editing the entry instead of the file
    (q / "manifest.json").write_text(json.dumps(m))
    problems = verify(q)
    assert any("chain broken at entry 4" in p and "entry edited" in p for p in problems)

    m = json.loads(original)
    m["entries"].pop()
    (q / "manifest.json").write_text(json.dumps(m))
    assert any(p.startswith("chain broken at the end") for p in verify(q))

    m = json.loads(original)
    m["scope"]["quarter"] = "2026Q3"
    (q / "manifest.json").write_text(json.dumps(m))
    assert any("header edited" in p for p in verify(q))


def test_added_files_and_runs_are_noticed(built):
    r, q = built
    run = r / "gameday-2026-11-27" / "03-api-crash-all"
    (run / "junit.xml").unlink()
    build_quarterly(r, "2026Q4")  # the manifest now lacks that run's junit.xml
    write_run_report(run)
    assert verify(q) == ["reports/gameday-2026-11-27/03-api-crash-all/junit.xml: not in the manifest "
                         "(added after it was written)"]
    extra = r / "gameday-2026-12-01" / "01-database-failure"
    shutil.copytree(r / "gameday-2026-11-27" / "01-database-failure", extra)
    problems = verify(q)
    assert any(p.startswith("reports/gameday-2026-12-01/01-database-failure/verdict.json: a 2026Q4 run not in")
               for p in problems)


def test_the_whole_reports_dir_can_move(built, tmp_path):
    r, _ = built
    moved = tmp_path / "archive" / "bcp-evidence"
    moved.parent.mkdir()
    shutil.move(str(r), str(moved))
    assert verify(moved / "quarterly-2026Q4" / "manifest.json") == []


def test_manifest_lists_every_evidence_file(built):
    r, q = built
    m = json.loads((q / "manifest.json").read_text())
    paths = [(e["base"], e["path"]) for e in m["entries"]]
    run = "gameday-2026-11-27/01-database-failure"
    for name in ("verdict.json", "history.jsonl", "journal.json", "report.html", "junit.xml"):
        assert ("reports", f"{run}/{name}") in paths
    assert ("manifest", "index.html") in paths and ("manifest", "evidence.json") in paths
    assert sum(1 for b, p in paths if p.startswith("backup-verify/")) == 10
    assert m["reports_root"] == ".." and m["head"] == m["entries"][-1]["hash"]
    assert not any(Path(p).is_absolute() for _, p in paths)


# CLI ------------------------------------------------------------------------------------------

def test_cli_quarterly_and_verify(built, capsys, tmp_path):
    r, q = built
    home = ["--home", str(tmp_path / "home")]  # its signing key is made there (tests/test_signatures.py)
    assert cli.main(["report", "quarterly", "--quarter", "2026Q4", "--reports-dir", str(r), *home]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(q / "index.html")
    assert out[1].startswith("2026Q4: 4 runs, 2 passed, 2 not passed; criteria broken: RTO < 15 minutes achieved")
    assert cli.main(["report", "verify", str(q), "--unsigned"]) == 0  # these fixture runs were never sealed
    assert capsys.readouterr().out.startswith("intact")
    (r / "gameday-2026-11-27" / "01-database-failure" / "journal.json").write_text("{}")
    assert cli.main(["report", "verify", str(q / "manifest.json"), "--unsigned"]) == 1
    out = capsys.readouterr().out
    assert "reports/gameday-2026-11-27/01-database-failure/journal.json: content changed" in out


def test_cli_run_and_gameday(tmp_path, capsys):
    r = reports(tmp_path, render=False)
    run = r / "gameday-2026-11-27" / "01-database-failure"
    assert cli.main(["report", "run", str(run)]) == 0
    assert (run / "report.html").is_file() and (run / "junit.xml").is_file()
    capsys.readouterr()
    assert cli.main(["report", "gameday", str(r / "gameday-2026-11-27")]) == 0
    out = capsys.readouterr().out
    assert "game day gameday-2026-11-27: FAIL (1/3 runs passed)" in out
    summary = json.loads((r / "gameday-2026-11-27" / "summary.json").read_text())
    assert summary["started"] == "2026-11-27T03:50:00.000Z"


@pytest.mark.parametrize("argv, message", [
    (["report", "quarterly", "--quarter", "2026-4", "--reports-dir", "."], "quarter must look like 2026Q4, got '2026-4'"),
    (["report", "quarterly", "--quarter", "2026Q4", "--reports-dir", "no/such/dir"], "no such reports directory"),
    (["report", "run", "no/such/run"], "no such run directory"),
    (["report", "gameday", "no/such/dir"], "no such directory"),
    (["report", "verify", "no/such/manifest.json"], "no such file or directory"),
    (["report"], "choose a subcommand"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_negative_controls_are_counted_apart_never_as_evidence(tmp_path):
    r = reports(tmp_path, render=False)
    before = evidence(build_quarterly(r, "2026Q4", out_dir=tmp_path / "q1"))
    # Mark the failing run as a negative control: it must leave the evidence, and be counted apart.
    failing = next(d for d in find_run_dirs(r) if json.loads((d / "verdict.json").read_text())["status"] == "fail"
                   and json.loads((d / "verdict.json").read_text())["started"].startswith("2026-1"))
    v = json.loads((failing / "verdict.json").read_text())
    v["negative_control"] = True
    (failing / "verdict.json").write_text(json.dumps(v))
    after = evidence(build_quarterly(r, "2026Q4", out_dir=tmp_path / "q2"))
    assert after["runs_total"] == before["runs_total"] - 1
    assert after["negative_controls"] == {"runs": 1, "failed_as_required": 1}
    assert "Negative controls" in (tmp_path / "q2" / "index.html").read_text()
