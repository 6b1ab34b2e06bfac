"""Bad input gets one clear line and exit 2, and nothing is injected; `down` leaves nothing."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def gameday(*args, env=None, timeout=120):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=e, timeout=timeout)


def one_line_error(r, *words):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_unknown_command():
    one_line_error(gameday("explode"), "explode")


@pytest.mark.parametrize("base,word", [("abc", "whole number"), ("40000", "outside"), ("80", "outside")])
def test_bad_port_base(base, word):
    one_line_error(gameday("target", "up", "--port-base", base, "--home", "/nonexistent-gameday"), word)


def test_missing_experiment_file():
    one_line_error(gameday("run", "no/such/experiment.yaml"), "no such file")


def test_malformed_experiment(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: [unclosed\n")
    one_line_error(gameday("run", str(bad)), "bad.yaml")


def test_experiment_naming_unknown_scenario(tmp_path):
    src = (ROOT / "experiments/local/database-failure.yaml").read_text()
    bad = tmp_path / "typo.yaml"
    bad.write_text(src.replace("scenario: database-failure", "scenario: databse-failure"))
    one_line_error(gameday("run", str(bad)), "databse-failure")


def test_experiment_loosening_objective(tmp_path):
    src = (ROOT / "experiments/local/database-failure.yaml").read_text()
    bad = tmp_path / "loose.yaml"
    bad.write_text(src.replace("    scenario: database-failure\n", "    scenario: database-failure\n    objectives: {rto_s: 3600}\n"))
    one_line_error(gameday("run", str(bad)), "rto_s")


def test_bad_objectives_file(tmp_path):
    bad = tmp_path / "bcp.yaml"
    bad.write_text((ROOT / "bcp.yaml").read_text().replace("rto_s: 900", "rto_s: fast"))
    r = gameday("run", str(ROOT / "experiments/local/database-failure.yaml"), env={"GAMEDAY_OBJECTIVES": str(bad)})
    one_line_error(r, "rto_s", "fast")


def test_experiment_without_control(tmp_path):
    src = (ROOT / "experiments/local/database-failure.yaml").read_text()
    bad = tmp_path / "nocontrol.yaml"
    bad.write_text(src.replace("module: harness.run.control", "module: harness.nothing"))
    one_line_error(gameday("run", str(bad)), "harness.run.control")


def test_corrupt_home_is_refused(tmp_path):
    (tmp_path / "something.txt").write_text("not a stack")
    r = gameday("target", "up", "--home", str(tmp_path), "--port-base", "16600")
    one_line_error(r, "not a gameday home")


def test_port_in_use_is_refused(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 16700))
        s.listen()
        r = gameday("target", "up", "--home", str(tmp_path / "h"), "--port-base", "16700")
    one_line_error(r, "16700", "in use")


def test_status_of_missing_stack_exits_nonzero(tmp_path):
    r = gameday("target", "status", "--home", str(tmp_path))  # a folder with no stack in it: not up
    assert r.returncode == 1 and "target up" in r.stderr and r.stderr.count("\n") == 1 and "target up" not in r.stdout
    r = gameday("target", "status", "--home", str(tmp_path / "absent"))  # no such folder: bad input
    one_line_error(r, "absent", "no such stack home")


@pytest.mark.integration
def test_down_leaves_no_process_or_listener():
    home = Path(tempfile.mkdtemp(prefix="gameday-down-", dir="/var/tmp"))
    home.chmod(0o755)
    base = 16800
    try:
        up = gameday("target", "up", "--home", str(home), "--port-base", str(base), timeout=300)
        assert up.returncode == 0, up.stderr
        st = gameday("target", "status", "--home", str(home), "--json")
        assert st.returncode == 0, st.stdout
        down = gameday("target", "down", "--home", str(home))
        assert down.returncode == 0, down.stderr
    finally:
        gameday("target", "down", "--home", str(home))
        import shutil
        shutil.rmtree(home, ignore_errors=True)
    for offset in range(18):  # the stack's 8, and the default patroni tier's 10 from base + 8 (etcd, PostgreSQL, REST)
        with socket.socket() as s:
            s.settimeout(1)
            assert s.connect_ex(("127.0.0.1", base + offset)) != 0, f"port {base + offset} still listens"
    leftovers = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(home) in cmd:
                leftovers.append(cmd)
    assert not leftovers
