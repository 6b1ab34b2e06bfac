"""A report page printed to PDF with headless Chromium, for the auditor's file.

Chromium lays the page out with its print style sheet (templates/print.css.j2: A4 landscape,
sections starting on a new page, rows never cut, table headers repeated, page numbers in the
margin), so the PDF shows what the page shows. It reads the local file only: the pages load
nothing from anywhere (their Content-Security-Policy forbids it).

    print_pdf(html, pdf)   → the PDF's path; PdfError (one line) when Chromium is missing or fails
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["CHROMIUM", "PdfError", "print_pdf"]

CHROMIUM = os.environ.get("GAMEDAY_CHROMIUM", "/usr/bin/chromium")


class PdfError(RuntimeError):
    """No PDF: Chromium missing or failing; the message says which and what to do."""


def print_pdf(html: str | os.PathLike, pdf: str | os.PathLike, timeout_s: float = 120.0) -> Path:
    html, pdf = Path(html).resolve(), Path(pdf).resolve()
    if not html.is_file():
        raise PdfError(f"{html}: no such page")
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        raise PdfError(f"{CHROMIUM} not found: install Debian's chromium (scripts/setup.sh does when run as root)")
    with tempfile.TemporaryDirectory(prefix="gameday-pdf-") as profile:
        tmp = pdf.with_name(f".{pdf.name}.tmp")
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
               "--disable-background-networking", "--disable-component-update", "--disable-extensions",
               f"--user-data-dir={profile}", "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
               f"--print-to-pdf={tmp}", html.as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise PdfError(f"chromium did not print {html.name} within {timeout_s:g} s") from None
        if done.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            last = [line for line in (done.stderr or "").splitlines() if line.strip()][-1:] or ["no message"]
            tmp.unlink(missing_ok=True)
            raise PdfError(f"chromium could not print {html.name} (exit {done.returncode}): {last[0][:300]}")
        os.replace(tmp, pdf)
    return pdf
