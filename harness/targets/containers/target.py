"""The container target as a Target (kind "containers"): the reference system as Docker
containers on this machine (harness/targets/containers/stack.py brings them up and down); a
program is a container and its pid the container's main process."""
from __future__ import annotations

from typing import Callable

from chaoslib.exceptions import ActivityFailed

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
        """The host pid of the program's container's main process."""
        name = (self.data.get("containers") or {}).get(program)
        if not name:
            raise ActivityFailed(f"the container target has no {program!r} container; it has: "
                                 f"{', '.join(self.data.get('containers') or {})}")
        try:
            return engine.main_pid(engine.find(engine.client(), name))
        except engine.EngineError as e:
            raise ActivityFailed(str(e)) from None
