"""The embedded reference stack as a Target (kind "local"): programs supervised by supervisord on
this machine (harness/targets/embedded/stack.py brings them up and down)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from chaoslib.exceptions import ActivityFailed

from harness.core import procs
from harness.targets.base import Target
from harness.targets.embedded import stack, supervisor
from harness.targets.description import TargetError
from harness.targets.embedded.layout import DB_TIERS, DEFAULT_DB_TIER, LayoutError, port_base_from_env

__all__ = ["EmbeddedTarget"]


class EmbeddedTarget(Target):
    kind = "local"
    label = "the embedded reference stack"
    fault_family = "processes"
    runs_here = True
    owns_lifecycle = True

    def parse_port_base(self, raw: str | int | None) -> int | None:
        if raw is None:
            return None
        try:
            return port_base_from_env(raw)
        except LayoutError as e:
            raise TargetError(f"--port-base: {e}") from None

    def status(self) -> dict:
        return stack.status(self.home)

    lifecycle_errors = (stack.StackError, LayoutError)

    db_tiers = DB_TIERS
    db_tier: str | None = None  # for a new home: "plain" or "patroni" (gameday target up --db-tier)

    def suite_db_tier(self) -> str | None:
        """The database tier the suite will meet: the home's, else what a new home gets."""
        if self.exists():
            return self.data.get("db_tier", "plain")
        return self.db_tier or DEFAULT_DB_TIER

    def _up(self, port_base: int | None, log: Callable[[str], None]) -> dict:
        return stack.up(self.home, port_base, log=log, db_tier=self.db_tier)

    def _down(self, port_base: int | None, log: Callable[[str], None]) -> None:
        stack.down(self.home, port_base, log=log)

    def program_pid(self, program: str) -> int:
        """The main pid of a supervised program, asked of supervisord (it must be RUNNING). On the
        patroni tier PostgreSQL is Patroni's to run and restart, not supervisord's: a database
        program's pid is its server's postmaster (its data folder's postmaster.pid)."""
        servers = {s["program"]: s for s in (self.data.get(r) for r in ("primary", "standby")) if isinstance(s, dict)}
        if self.data.get("db_tier") == "patroni" and program in servers:
            data_dir = Path(servers[program]["data_dir"])
            pid = procs.read_pid(data_dir / "postmaster.pid")
            if not pid or not procs.running(pid):
                raise ActivityFailed(f"{program} is not running (no live postmaster for {data_dir})")
            return pid
        try:
            info = supervisor.process_info(self.data["supervisor_url"], program)
        except Exception as e:
            raise ActivityFailed(f"cannot ask supervisord about {program}: {e}") from None
        if info["statename"] != "RUNNING" or not info["pid"]:
            raise ActivityFailed(f"{program} is not running (supervisor state {info['statename']})")
        return int(info["pid"])
