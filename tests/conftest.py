"""Shared fixtures. Integration tests share ONE real embedded stack per test session (PostgreSQL
primary + standby, API replicas, Prometheus, Alertmanager, supervisord), in a throwaway home on
its own ports (GAMEDAY_TEST_PORT_BASE, default 16400) so it runs beside a developer's stack."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

TEST_PORT_BASE = int(os.environ.get("GAMEDAY_TEST_PORT_BASE", "16400"))


@pytest.fixture(scope="session")
def stack():
    """The session's embedded stack: yields its target description (dict). GAMEDAY_TARGET points
    at it for the whole session so probes, faults and the control find it."""
    from harness.targets.embedded import stack as embedded

    home = Path(tempfile.mkdtemp(prefix="gameday-test-", dir="/var/tmp"))
    home.chmod(0o755)
    old = os.environ.get("GAMEDAY_TARGET")
    try:
        # The plain tier: the runbook's own fencing, promotion and restore are what these tests
        # put on trial; the patroni tier runs in the game day and in test_ha_cluster.py.
        target = embedded.up(home, TEST_PORT_BASE, log=lambda m: None, db_tier="plain")
        os.environ["GAMEDAY_TARGET"] = str(home / "target.json")
        yield target
    finally:
        try:
            embedded.down(home, TEST_PORT_BASE, log=lambda m: None)
        finally:
            if old is None:
                os.environ.pop("GAMEDAY_TARGET", None)
            else:
                os.environ["GAMEDAY_TARGET"] = old
            srv = None
            try:
                from harness.targets.embedded.layout import Layout
                srv = Layout(home, TEST_PORT_BASE).srv
            except Exception:
                pass
            shutil.rmtree(home, ignore_errors=True)
            if srv and not str(srv).startswith(str(home)):
                shutil.rmtree(srv, ignore_errors=True)


@pytest.fixture
def healthy_stack(stack):
    """The session stack, returned to steady state first (a previous test may have broken it)."""
    from harness.targets.embedded import stack as embedded
    home = stack["home"]
    if not embedded.status(home)["healthy"]:
        embedded.up(home, stack["port_base"], log=lambda m: None)
    return stack
