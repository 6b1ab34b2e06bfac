"""The container target as a Target (kind "containers"): the reference system as Docker
containers on this machine (harness/targets/containers/stack.py brings them up and down); a
program is a container and its pid the container's main process."""
from __future__ import annotations

from typing import Callable

from chaoslib.exceptions import ActivityFailed

from harness.core import procs
from harness.targets.base import Target
from harness.targets.description import TargetError
from harness.targets.containers import engine, stack

__all__ = ["ContainersTarget"]


class ContainersTarget(Target):
    kind = stack.KIND
    label = "the container target"
    fault_family = "docker"
    runs_here = True
    owns_lifecycle = True

    def parse_port_base(self, raw: str | int | None) -> int | None:
        if raw is None:
            return None
        try:
            return stack.port_base(raw, self.home)
        except stack.ContainersError as e:
            raise TargetError(f"--port-base: {e}") from None

    def status(self) -> dict:
        return stack.status(self.home)

    lifecycle_errors = (stack.ContainersError, engine.EngineError)

    def _up(self, port_base: int | None, log: Callable[[str], None]) -> dict:
        return stack.up(self.home, port_base, log=log)

    def _down(self, port_base: int | None, log: Callable[[str], None]) -> None:
        stack.down(self.home, log=log)

    def program_pid(self, program: str) -> int:
        """The host pid of the program's container's main process. A database member's program is
        its PostgreSQL postmaster, not the container's PID 1 (Patroni): PostgreSQL is Patroni's to
        run and restart, as on the embedded stack's patroni tier."""
        name = (self.data.get("containers") or {}).get(program)
        if not name:
            raise ActivityFailed(f"the container target has no {program!r} container; it has: "
                                 f"{', '.join(self.data.get('containers') or {})}")
        try:
            container = engine.find(engine.client(), name)
            if program not in ((self.data.get("ha") or {}).get("members") or {}):
                return engine.main_pid(container)
            postmasters = [p for p in engine.pids(container) if _is_postmaster(p)]
        except engine.EngineError as e:
            raise ActivityFailed(str(e)) from None
        if len(postmasters) != 1:
            raise ActivityFailed(f"{program} runs {len(postmasters)} PostgreSQL postmasters, not one "
                                 f"(is Patroni restarting it?)")
        return postmasters[0]


def _is_postmaster(pid: int) -> bool:
    """The postmaster keeps its command line (the server binary, -D …); a backend renames itself
    ("postgres: checkpointer" …)."""
    argv0 = (procs.cmdline(pid) or "").split(" ", 1)[0]
    return argv0.endswith("/bin/postgres")
