"""No fault outlives its harness: `gameday run` SIGKILLed in the middle of each kind of fault that
leaves state behind; the target heals with nobody acting (its reaper sees the harness gone and
undoes the fault at once, well before the lease ends), no recorder is left, and the next command
says what was undone and closes the abandoned run."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from harness.records import fault_ledger
from harness.core.api_contract import OPTIMIZE_PATH, optimize_body
from harness.faults._common import LEASE_MARGIN_S

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
NEGATIVE = ROOT / "experiments" / "negative"
TIMEOUT_S = 5  # the twins' timeout_s (20) lowered in a copy: the lease is that plus LEASE_MARGIN_S
ORPHAN_HEAL_S = 15  # the reaper's 1 s period, then the program's own restart (the API's start-up)


def _accepts_writes(api_url: str) -> bool:
    try:
        r = requests.post(api_url + OPTIMIZE_PATH, json=optimize_body(f"heal-{time.time_ns()}"), timeout=1)
        return r.status_code == 200 and requests.get(api_url + "/ready", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _recorders_of(run_dir: Path) -> list[int]:
    """Processes still writing into this run (the load generator names its history file)."""
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if str(run_dir) in (p / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(p.name))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("twin,what", [("database-failure.yaml", "hold:postgres-primary"),
                                       ("api-hang.yaml", "hang_api"),
                                       ("storage-failure.yaml", "lose_model_volume")])
def test_a_sigkilled_harness_leaves_a_healed_target(healthy_stack, tmp_path, twin, what):
    home, api = healthy_stack["home"], healthy_stack["api_url"]
    text = (NEGATIVE / twin).read_text()
    assert "timeout_s: 20}" in text
    experiment = tmp_path / "experiments" / twin
    experiment.parent.mkdir()
    experiment.write_text(text.replace("timeout_s: 20}", f"timeout_s: {TIMEOUT_S}}}", 1))
    reports = tmp_path / "reports"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(experiment), "--home", home,
                             "--port-base", str(healthy_stack["port_base"]), "--reports-dir", str(reports)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not any(e["what"] == what for e in fault_ledger.entries(home)):  # written before injection
            assert proc.poll() is None and time.monotonic() < deadline, "the fault was never injected"
            time.sleep(0.1)
        [run_dir] = [p for p in reports.iterdir() if p.is_dir()]
        time.sleep(1.0)  # let the fault take effect
        assert not _accepts_writes(api) or what == "lose_model_volume"
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    # Recorders die with their parent, within 2 s.
    while _recorders_of(run_dir) and time.monotonic() - killed_at < 2.0:
        time.sleep(0.1)
    assert not _recorders_of(run_dir), f"recorders still running for {run_dir}"
    # Nobody acts: the target side sees the harness gone and undoes its fault, long before the lease ends.
    lease_s = TIMEOUT_S + LEASE_MARGIN_S
    while not _accepts_writes(api):
        assert time.monotonic() - killed_at < ORPHAN_HEAL_S, \
            f"still not writable {ORPHAN_HEAL_S} s after the SIGKILL (the lease would end at {lease_s:.0f} s)"
        time.sleep(0.2)
    healed_s = time.monotonic() - killed_at
    print(f"{twin}: writable again {healed_s:.1f} s after SIGKILL (lease {lease_s:.0f} s)")
    # The next command tells what was undone and closes the abandoned run.
    status = subprocess.run([sys.executable, "-m", "harness.cli", "target", "status", "--home", home],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert f"undid {what} left by run {run_dir.name}" in status.stderr, status.stderr
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["status"] == "interrupted" and "died during the run" in verdict["reason"]
    assert fault_ledger.entries(home) == []
