"""The evidence on paper: `gameday report pdf` prints the quarterly evidence and a game day's index
with headless Chromium, signed beside it; pdftotext reads the key figures back, every page is
numbered, and the BCP's notification emoji are drawn from a colour font, not as empty boxes.
(To look at the pages: pdftoppm -r 60 -png FILE.pdf page.)"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.cli import main as cli
from harness.core import signing
from harness.report.pdf import CHROMIUM, PdfError, print_pdf
from harness.report.quarterly import build_quarterly
from harness.report.run import write_run_report
from harness.report.rundir import find_run_dirs
from harness.report.seal import seal_run

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "reports"
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK) or not shutil.which("pdftotext"),
                                reason="needs chromium and poppler-utils (scripts/setup.sh installs them as root)")


def text(pdf: Path, *pages: int) -> str:
    """The PDF's text in reading order (a table cell's lines together)."""
    span = ["-f", str(pages[0]), "-l", str(pages[-1])] if pages else []
    return subprocess.run(["pdftotext", *span, str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def page_count(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


@pytest.fixture(scope="module")
def evidence(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pdf")
    home = tmp / "home"
    key = signing.home_key(home, principal="ops-lead@svgai")
    r = tmp / "reports"
    shutil.copytree(FIXTURES, r)
    for d in find_run_dirs(r):
        write_run_report(d)
        seal_run(d, key)
    assert cli.main(["report", "gameday", str(r / "gameday-2026-11-27")]) == 0
    build_quarterly(r, "2026Q4", key=key)
    return r, home


def test_the_quarterly_evidence_prints_with_its_key_figures(evidence, capsys):
    r, home = evidence
    q = r / "quarterly-2026Q4"
    assert cli.main(["report", "pdf", str(q), "--home", str(home)]) == 0
    pdf = Path(capsys.readouterr().out.strip())
    assert pdf == q / "quarterly-2026Q4.pdf" and pdf.read_bytes().startswith(b"%PDF-")
    words = " ".join(text(pdf).split())
    for figure in ("BCP quarterly evidence — 2026Q4", "4 game-day runs across 3 scenarios: 2 pass, 1 fail, 1 error",
                   "RTO < 15 minutes achieved", "RPO < 5 minutes maintained", "Data integrity verified",
                   "02-database-failure-no-restore", "10 verifications",
                   "Findings", "8 still open at its end", "F-0478af23",
                   "Which evidence answers which control", "SOC 2 A1.3", "ISO 22301:2019",
                   "DORA Article 11", "DORA Article 24"):
        assert figure in words, figure
    n = page_count(pdf)
    assert n >= 3
    for page in (1, n):  # every page numbered in its margin
        assert f"page {page} of {n}" in text(pdf, page)
    # the controls table starts a page of its own, whole
    controls = next(p for p in range(1, n + 1) if "Which evidence answers which control" in text(pdf, p))
    assert text(pdf, controls).split("\n", 3)[0].strip() == "Which evidence answers which control"
    # and it is signed, as verify says
    assert cli.main(["report", "verify", str(q), "--home", str(home)]) == 0
    assert "; quarterly-2026Q4.pdf by ops-lead@svgai (ED25519" in capsys.readouterr().out
    pdf.write_bytes(pdf.read_bytes() + b"\n%edited")
    assert cli.main(["report", "verify", str(q), "--home", str(home)]) == 1
    assert "quarterly-2026Q4.pdf: signature does not match its content" in capsys.readouterr().out


def test_a_game_days_index_prints(evidence, capsys):
    r, home = evidence
    gd = r / "gameday-2026-11-27"
    out = gd / "index.pdf"
    assert cli.main(["report", "pdf", str(gd), "--out", str(out), "--home", str(home)]) == 0
    words = " ".join(text(out).split())
    for figure in ("Game day gameday-2026-11-27", "3 runs: 1 pass, 1 fail, 1 error", "database-failure",
                   "api-crash-all", "not recovered / 15 min", "9 / 49", "page 1 of"):
        assert figure in words, figure
    assert cli.main(["report", "verify", str(gd), "--home", str(home)]) == 0
    assert "index.pdf by ops-lead@svgai" in capsys.readouterr().out


@pytest.mark.skipif(not EMOJI_FONT.is_file(), reason="fonts-noto-color-emoji not installed (scripts/setup.sh does)")
def test_the_notification_emoji_are_drawn_not_boxes(evidence, tmp_path):
    r, _ = evidence
    pdf = print_pdf(r / "gameday-2026-11-27" / "02-database-failure-no-restore" / "report.html", tmp_path / "run.pdf")
    assert "🚨 CRITICAL: SVG AI System Incident" in text(pdf)
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    # Chromium embeds colour emoji glyphs as Type 3 fonts; without the font it draws the
    # fallback's empty box from DejaVu and embeds no Type 3 font at all.
    assert "Type 3" in fonts


def test_bad_input_is_one_line(tmp_path, capsys):
    assert cli.main(["report", "pdf", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "holds no index.html" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(PdfError, match="no such page"):
        print_pdf(tmp_path / "none.html", tmp_path / "none.pdf")
