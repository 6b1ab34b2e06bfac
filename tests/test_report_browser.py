"""The pages in a real headless browser: the DOM Chromium builds holds the charts, and the
console stays silent (no script errors, no refused loads under the pages' CSP)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report.quarterly import build_quarterly
from harness.report.run import write_run_report
from harness.report.rundir import find_run_dirs

CHROMIUM = "/usr/bin/chromium"
FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "reports"

pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK),
                                reason=f"{CHROMIUM} not installed (apt-get install --no-install-recommends chromium)")


def chromium(page: Path, tmp_path: Path, *mode: str) -> tuple[str, str]:
    """Run headless Chromium on a local file; returns (stdout, stderr)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--window-size=1280,2000",
           *mode, page.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def console_problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    r = tmp_path_factory.mktemp("browser") / "reports"
    shutil.copytree(FIXTURES, r)
    for d in find_run_dirs(r):
        write_run_report(d)
    quarterly = build_quarterly(r, "2026Q4")
    return {"run": r / "gameday-2026-11-27" / "02-database-failure-no-restore" / "report.html",
            "quarterly": quarterly}


def test_the_console_check_can_fail(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom'); nope();</script></body></html>")
    _, err = chromium(bad, tmp_path, "--dump-dom")
    assert len(console_problems(err)) == 2


@pytest.mark.parametrize("which", ["run", "quarterly"])
def test_page_renders_in_chromium(pages, which, tmp_path):
    page = pages[which]
    dom, err = chromium(page, tmp_path, "--dump-dom")
    assert console_problems(err) == []
    if which == "run":
        assert '<svg xmlns="http://www.w3.org/2000/svg" class="timeline"' in dom
        assert 'class="fault-window"' in dom and "rto-marker" in dom
    else:
        assert 'class="rto-trend"' in dom and 'class="monthly-status"' in dom
    png = tmp_path / f"{which}.png"
    _, err = chromium(page, tmp_path, f"--screenshot={png}")
    assert console_problems(err) == []
    assert png.stat().st_size > 20_000  # a real picture, not a blank page
    keep = os.environ.get("REPORT_SCREENSHOTS_DIR")  # to look at them: REPORT_SCREENSHOTS_DIR=/some/dir
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / png.name)
