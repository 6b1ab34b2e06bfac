"""The game-day console in a real browser (Debian's chromium, driven by Selenium through Debian's
chromedriver: nothing is downloaded), against real runs on the session stack:

- the live page shows the service DOWN soon after the fault (measured from the fault's own time
  in the history to the moment the page showed it), then the verdict with its criteria; the
  terminal of the same run prints the same phase events, one line each;
- without the token, or with a wrong one, nothing is served: pages, the stream and the abort
  POST get 403, and an abort without the page's CSRF token is refused;
- the abort button, confirmed in the page, ends a run as interrupted with every fault rolled back
  (the fault ledger empty, the stack healthy);
- a finished game day (built from these runs) in the console and as its static index, which fits
  1280 px.

Screenshots land in CONSOLE_SCREENSHOTS_DIR when it is set (docs/ keeps current ones)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests
import waiting

from harness.records import fault_ledger

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "tests" / "experiments"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CONSOLE_PORT = int(os.environ.get("GAMEDAY_TEST_CONSOLE_PORT")
                   or int(os.environ.get("GAMEDAY_TEST_PORT_BASE", "16400")) + 80)
DOWN_WITHIN_S = 2.0  # the bound: fault in the history -> DOWN on the page

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
                                 reason="chromium and chromium-driver not installed (scripts/setup.sh installs them)")]


@pytest.fixture(scope="module")
def console(stack, tmp_path_factory):
    """`gameday console` on the session stack's home, its reports folder of its own."""
    reports = tmp_path_factory.mktemp("console-reports")
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "console", "--home", stack["home"],
                             "--port", str(CONSOLE_PORT), "--reports-dir", str(reports)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and url is None:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("open: "):
            url = line.split("open: ", 1)[1].strip()
    if url is None:
        proc.kill()
        pytest.fail(f"the console printed no URL: {proc.stdout.read()}")
    try:
        yield {"url": url, "base": url.split("/?", 1)[0], "token": url.rsplit("token=", 1)[1], "reports": reports,
               "home": stack["home"]}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,800",
                "--disable-background-networking", "--disable-component-update", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # no Selenium Manager download
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver, name: str, height: int | None = None) -> None:
    keep = os.environ.get("CONSOLE_SCREENSHOTS_DIR")
    if not keep:
        return
    Path(keep).mkdir(parents=True, exist_ok=True)
    if height:
        driver.set_window_size(1280, height)
    driver.save_screenshot(str(Path(keep) / name))
    if height:
        driver.set_window_size(1280, 800)


def wait_for(driver, script: str, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    line = driver.execute_script("return document.getElementById('phase-line').textContent")
    pytest.fail(f"the page never showed {what} within {timeout_s:g} s; phase line: {line}")


def run(experiment: str, stack: dict, reports: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(HERE / experiment), "--home", stack["home"],
                             "--port-base", str(stack["port_base"]), "--reports-dir", str(reports)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@contextlib.contextmanager
def run_seen_down(experiment: str, stack: dict, reports: Path, driver):
    """A run of `experiment`, once the page shows the service DOWN; killed if the test ends first."""
    proc = run(experiment, stack, reports)
    try:
        wait_for(driver, "return document.getElementById('phase-line').textContent.includes('service DOWN')", 90,
                 "the service DOWN")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()


def fault_epoch(run_dir: Path) -> float:
    for line in (run_dir / "history.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["kind"] == "fault" and e["phase"] == "start":
            return datetime.fromisoformat(e["wall"].replace("Z", "+00:00")).timestamp()
    pytest.fail("no fault in the history")


def test_without_the_token_nothing_is_served(console):
    base, token = console["base"], console["token"]
    for path in ("/", "/events", "/runs", "/gamedays"):
        assert requests.get(f"{base}{path}", timeout=5).status_code == 403, path
        assert requests.get(f"{base}{path}?token=wrong-{token[:8]}", timeout=5).status_code == 403, path
    assert requests.post(f"{base}/abort?token=wrong", data={"csrf": "x"}, timeout=5).status_code == 403
    with requests.Session() as s:
        assert s.get(console["url"], timeout=5).status_code == 200  # the token became a cookie
        assert s.get(f"{base}/runs", timeout=5).status_code == 200
        refused = s.post(f"{base}/abort", data={}, timeout=5)  # the cookie alone does not abort
        assert refused.status_code == 403 and "CSRF" in refused.text
        assert s.get(f"{base}/runs", headers={"Host": "evil.example:80"}, timeout=5).status_code == 403


def test_the_live_page_shows_down_then_the_verdict(console, browser, healthy_stack):
    reports = console["reports"]
    browser.get(console["url"])
    assert "token=" not in browser.current_url  # never left on a projected screen
    wait_for(browser, "return window.gamedayConsole && document.getElementById('phase-line').textContent"
                      ".includes('no run in progress')", 15, "that no run is in progress")
    with run_seen_down("calibration-outage.yaml", healthy_stack, reports, browser) as proc:
        time.sleep(1.0)
        screenshot(browser, "console-live.png", height=1100)
        wait_for(browser, "return window.gamedayConsole.verdict", 120, "the verdict")
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    [run_dir] = [p for p in reports.iterdir() if (p / "verdict.json").exists()]
    state = browser.execute_script("return window.gamedayConsole")
    down_after_s = state["shown"]["down"] / 1000 - fault_epoch(run_dir)
    lags_ms = [lag["ms"] for lag in state["lags"]]
    print(f"\nconsole: DOWN on the page {down_after_s:.2f} s after the fault; event-to-page lag over "
          f"{len(lags_ms)} phase events: median {statistics.median(lags_ms):.0f} ms, max {max(lags_ms):.0f} ms")
    assert 0 < down_after_s <= DOWN_WITHIN_S
    assert state["verdict"] == "pass"
    criteria = browser.find_element("id", "criteria").text
    assert "Recovery time (RTO)" in criteria and "passed" in criteria
    assert "PASS" in browser.find_element("id", "phase-line").text
    screenshot(browser, "console-verdict.png", height=1900)
    # The terminal of the same run, piped: one line per phase event, the same words.
    assert "service DOWN (first failed api sample" in out and "fault injected (freeze-api-3s" in out
    assert "stable 5/5 s" in out


def test_the_abort_button_ends_the_run_rolled_back(console, browser, healthy_stack):
    reports = console["reports"]
    browser.get(f"{console['base']}/")
    with run_seen_down("held-outage.yaml", healthy_stack, reports, browser) as proc:
        browser.find_element("css selector", "#abort-details summary").click()
        browser.find_element("id", "abort-confirm").click()
        wait_for(browser, "return window.gamedayConsole.verdict", 120, "the verdict after the abort")
        out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out
    assert browser.execute_script("return window.gamedayConsole.verdict") == "interrupted"
    assert "abort sent to run pid" in browser.find_element("id", "abort-state").text
    [verdict_file] = [p for p in reports.glob("*/verdict.json") if "-api-crash-" in p.parent.name]
    verdict = json.loads(verdict_file.read_text())
    assert verdict["status"] == "interrupted" and "aborted by operator" in verdict["reason"], verdict["reason"]
    assert fault_ledger.entries(healthy_stack["home"]) == []  # every fault rolled back
    waiting.wait_for(lambda: waiting.ready(healthy_stack), 60, "the API back after the abort's rollback")


def test_a_finished_game_day_in_the_console_and_its_index_fits_1280(console, browser):
    """The runs of this module gathered as a game day (as `gameday run` leaves one)."""
    from harness.report.gameday import write_gameday_summary
    reports = console["reports"]
    runs = sorted((p for p in reports.iterdir() if (p / "verdict.json").exists()), key=lambda p: p.name)
    assert runs, "the tests above left no run"
    gameday = reports / "gameday-20991231T000000Z"
    gameday.mkdir()
    for r in runs:
        shutil.copytree(r, gameday / r.name)
    write_gameday_summary(gameday, [gameday / r.name for r in runs], "2099-12-31T00:00:00Z", "2099-12-31T00:05:00Z")
    browser.get(f"{console['base']}/gamedays")
    browser.find_element("link text", gameday.name).click()
    text = browser.find_element("tag name", "main").text
    assert f"{len(runs)} / {len(runs)} scenarios done" in text and "error budget" in text
    screenshot(browser, "console-gameday.png")
    browser.get(f"{console['base']}/files/0/{gameday.name}/index.html")
    widths = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the game-day index is {widths[0]} px wide in a {widths[1]} px window"
    screenshot(browser, "gameday-index.png")
