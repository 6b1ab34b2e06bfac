"""The fault ledger and its reaper: a fault's undo outlives the harness that injected it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.records import fault_ledger
from harness.core import procs
from harness.run.heal import close_abandoned_run, heal
from harness.targets import reaper
from harness.targets.embedded.launchers import write_launchers


def test_an_entry_is_durable_and_cleared_by_what(tmp_path):
    eid = fault_ledger.record(tmp_path, "hold:api", {"kind": "unlink", "path": str(tmp_path / "h")}, lease_s=30)
    [entry] = fault_ledger.entries(tmp_path)
    assert entry["id"] == eid and entry["harness_pid"] == os.getpid() and not fault_ledger.expired(entry)
    assert not fault_ledger.orphaned(entry)
    fault_ledger.clear_what(tmp_path, "hold:api")
    assert fault_ledger.entries(tmp_path) == []


def test_the_reaper_undoes_only_expired_entries(tmp_path):
    hold = tmp_path / "hold"
    hold.write_text("x")
    fault_ledger.record(tmp_path, "hold:api", {"kind": "unlink", "path": str(hold)}, lease_s=0)
    fault_ledger.record(tmp_path, "hold:db", {"kind": "unlink", "path": str(tmp_path / "other")}, lease_s=60)
    [(entry, result)] = reaper.reap(tmp_path)
    assert entry["what"] == "hold:api" and "removed" in result and not hold.exists()
    assert [e["what"] for e in fault_ledger.entries(tmp_path)] == ["hold:db"]
    [settled] = fault_ledger.settled(tmp_path)  # kept for the next command to report
    assert settled["what"] == "hold:api" and settled["undone_by"] == "the reaper"


def test_a_frozen_process_is_resumed_by_the_detached_timer(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        spec = {"kind": "sigcont", "pids": [[child.pid, procs.start_time(child.pid)]]}
        fault_ledger.record(tmp_path, "freeze", spec, lease_s=1.0)
        reaper.start_timer(tmp_path, time.time() + 1.0)
        os.kill(child.pid, signal.SIGSTOP)
        state = lambda: Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][0]  # noqa: E731
        deadline = time.time() + 2
        while state() != "T" and time.time() < deadline:
            time.sleep(0.01)
        assert state() == "T"
        deadline = time.time() + 10
        while time.time() < deadline and state() == "T":
            time.sleep(0.1)
        assert state() != "T", "still stopped"
        assert fault_ledger.entries(tmp_path) == [] and fault_ledger.settled(tmp_path)[0]["what"] == "freeze"
    finally:
        child.kill()
        child.wait()


def test_a_reused_pid_is_not_resumed(tmp_path):
    spec = {"kind": "sigcont", "pids": [[os.getpid(), 1]]}  # our pid, but not our start time
    assert "resumed 0" in reaper.undo({"undo": spec})


def test_a_moved_folder_goes_back_unless_restored(tmp_path):
    aside, home = tmp_path / "models.lost", tmp_path / "models"
    aside.mkdir()
    assert "moved" in reaper.undo({"undo": {"kind": "rename_back", "from": str(aside), "to": str(home)}})
    assert home.is_dir() and not aside.exists()
    aside.mkdir()
    assert "exists again" in reaper.undo({"undo": {"kind": "rename_back", "from": str(aside), "to": str(home)}})


def _launch(tmp_path, hold_text):
    bins = write_launchers(tmp_path / "bin")
    hold = tmp_path / "hold"
    if hold_text is not None:
        hold.write_text(hold_text)
    started = time.monotonic()
    r = subprocess.run([str(bins["pg-launch"]), str(tmp_path / "data"), str(hold), "/bin/echo"],
                       capture_output=True, text=True, timeout=20)
    return time.monotonic() - started, r, hold


def test_a_launcher_ignores_an_expired_hold(tmp_path):
    (tmp_path / "data").mkdir()
    took, r, hold = _launch(tmp_path, f"{int(time.time()) - 5}\n")
    assert r.returncode == 0 and "expired" in r.stderr and not hold.exists() and took < 2


def test_a_launcher_waits_for_a_live_hold_until_its_deadline(tmp_path):
    (tmp_path / "data").mkdir()
    took, r, _ = _launch(tmp_path, f"{int(time.time()) + 2}\n")
    assert r.returncode == 0 and 1.0 <= took < 6


def test_heal_undoes_an_orphaned_entry_and_closes_its_run(tmp_path):
    from synthetic_runs import make_run
    home, run = tmp_path / "home", tmp_path / "run"
    home.mkdir()
    verdict = make_run(run, outage_s=4.0)
    (run / "session.json").write_text(__import__("json").dumps({**verdict, "objectives": {
        "scenario": verdict["scenario"], **verdict["objectives"]}}))
    (run / "verdict.json").unlink()
    hold = home / "hold"
    hold.write_text("9999999999\n")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    eid = fault_ledger.record(home, "hold:postgres-primary", {"kind": "unlink", "path": str(hold)}, 600, str(run))
    path = fault_ledger.ledger_dir(home) / f"{eid}.json"
    entry = __import__("json").loads(path.read_text())
    path.write_text(__import__("json").dumps({**entry, "harness_pid": dead.pid}))  # its harness is gone
    lines = heal(home)
    assert lines[0].startswith(f"undid hold:postgres-primary left by run {run.name}")
    assert not hold.exists() and fault_ledger.entries(home) == [] and fault_ledger.settled(home) == []
    v = __import__("json").loads((run / "verdict.json").read_text())
    assert v["status"] == "interrupted" and "died during the run" in v["reason"]
    assert (run / "SHA256SUMS.sig").is_file() and (home / "allowed_signers").is_file()  # sealed with the home's key
    assert close_abandoned_run(run, "again") is None  # a closed run stays as it is


def test_clearing_an_entry_ends_its_timer(tmp_path):
    fault_ledger.record(tmp_path, "freeze", {"kind": "sigcont", "pids": []}, lease_s=300)
    timer = reaper.start_timer(tmp_path, time.time() + 300)
    fault_ledger.set_timer(tmp_path, "freeze", timer)
    time.sleep(0.5)  # the timer is up and waiting
    fault_ledger.clear_what(tmp_path, "freeze")
    deadline = time.time() + 5
    while time.time() < deadline and Path(f"/proc/{timer}").exists() and \
            Path(f"/proc/{timer}/stat").read_text().split(") ")[1][0] != "Z":
        time.sleep(0.05)
    assert not Path(f"/proc/{timer}").exists() or Path(f"/proc/{timer}/stat").read_text().split(") ")[1][0] == "Z"


def test_a_home_holding_only_the_harness_bookkeeping_can_still_become_a_stack(tmp_path):
    from harness.targets.embedded.stack import StackError, check_home
    from harness.targets.embedded.layout import Layout
    (tmp_path / "runs" / "active").mkdir(parents=True)  # `gameday run` registers before `target up`
    fault_ledger.ledger_dir(tmp_path).mkdir()
    check_home(Layout(tmp_path, 23400))
    (tmp_path / "someone-elses-file").write_text("x")
    try:
        check_home(Layout(tmp_path, 23400))
        raise AssertionError("a foreign folder was taken for a stack home")
    except StackError as e:
        assert "not a gameday home" in str(e)


def test_an_entry_is_orphaned_once_its_harness_is_gone_and_only_then(tmp_path):
    """The supervised reaper undoes an orphan at once (not at the end of its lease): so a live
    harness, a harness in another pid namespace, or a dead one whose pid now names another
    process must each be told apart."""
    harness = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    entry = {"harness_pid": harness.pid, "harness_started": procs.start_time(harness.pid),
             "pid_namespace": os.readlink("/proc/self/ns/pid")}
    try:
        assert not fault_ledger.orphaned(entry)                                    # alive
        assert not fault_ledger.orphaned({**entry, "pid_namespace": "pid:[1]"})    # cannot be seen from here
        assert fault_ledger.orphaned({**entry, "harness_started": entry["harness_started"] - 1})  # pid reused
        harness.kill()
        time.sleep(0.2)
        assert fault_ledger.orphaned(entry)                                        # a zombie nobody reaped
    finally:
        harness.kill()
        harness.wait()
    assert fault_ledger.orphaned(entry)                                            # gone


def test_the_supervised_reaper_undoes_an_orphan_before_its_lease(tmp_path):
    hold = tmp_path / "hold"
    hold.write_text("x")
    writer = subprocess.run([sys.executable, "-c", "import sys; from harness.records import fault_ledger; "
                             f"fault_ledger.record(sys.argv[1], 'hold:api', {{'kind': 'unlink', 'path': sys.argv[2]}}, 600)",
                             str(tmp_path), str(hold)], cwd=Path(__file__).resolve().parents[1], check=True)
    assert writer.returncode == 0 and hold.exists()
    loop = subprocess.Popen([sys.executable, "-m", "harness.targets.reaper", "--home", str(tmp_path), "--period", "0.1"],
                            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while hold.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        loop.terminate()
        out = loop.communicate(timeout=10)[0]
    assert not hold.exists() and "its harness is gone" in out, out
    assert fault_ledger.entries(tmp_path) == []
