"""What every kind of target is to the rest of the harness: the Target adapter.

One `Target` is built per run (harness.targets.load / at_home) from the target description, and
the kind is decided there, once. The runner, the command line, faults, probes and recovery ask the
target what it is and what it can do, instead of reading `kind` themselves:

    kind, label               which kind ("local", "containers", "kubernetes") and its name for people
    fault_family              which fault implementation applies: "processes" (programs are
                              supervised processes here), "docker" (Docker containers here),
                              "cluster" (a Kubernetes API)
    runs_here                 its programs are processes on this machine (pids, signals)
    data / reload()           the target description (target.json) as read / read again
    passfile                  where its database passwords are (None: DSNs carry their own)
    status() / up() / down()  its lifecycle, where the harness owns it
    ensure_up() / settle()    before a run / between two runs of a game day
    program_pid(program)      a program's main process, for the kinds that run here
    require(families, what)   an ActivityFailed naming the kind when a fault does not apply

Each kind is one package under harness/targets/ whose `target` module defines the adapter.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, ClassVar

from chaoslib.exceptions import ActivityFailed

from harness.targets.description import TargetError, load as load_description

__all__ = ["Target", "TargetUnavailable"]


class TargetUnavailable(RuntimeError):
    """The target cannot be brought up, taken down or repaired: one sentence for a person."""


class Target:
    kind: ClassVar[str] = ""
    label: ClassVar[str] = ""
    fault_family: ClassVar[str] = ""
    runs_here: ClassVar[bool] = False
    owns_lifecycle: ClassVar[bool] = False  # `gameday target up/down` manages it
    db_tiers: ClassVar[tuple[str, ...]] = ()  # database tiers `up` can bring (--db-tier), if any

    def __init__(self, path: str | os.PathLike, home: str | os.PathLike | None = None):
        self.path = Path(path).resolve()
        self.home = Path(home).resolve() if home is not None else self.path.parent
        self._data: dict | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind} {self.path}>"

    # -- the description ---------------------------------------------------------------------

    @property
    def data(self) -> dict:
        """The target description, read once (TargetError when there is none yet)."""
        if self._data is None:
            self._data = load_description(self.path)
        return self._data

    def reload(self) -> dict:
        """Read the description again: a failover or a repair rewrites it."""
        self._data = None
        return self.data

    def exists(self) -> bool:
        return self.path.is_file()

    @property
    def passfile(self) -> str | None:
        return self.data.get("passfile") if self.exists() else None

    # -- what it can do ----------------------------------------------------------------------

    def require(self, families: tuple[str, ...] | str, what: str) -> "Target":
        """This target, if `what` applies to its fault family; else ActivityFailed naming both."""
        families = (families,) if isinstance(families, str) else tuple(families)
        if self.fault_family not in families:
            raise ActivityFailed(f"{what} needs {_family_words(families)}; target {self.path} is {self.label} "
                                 f"(kind {self.kind!r})")
        return self

    def suite_db_tier(self) -> str | None:
        """The embedded stack's database tier the suite will meet (None: not an embedded stack)."""
        return None

    def program_pid(self, program: str) -> int:
        raise ActivityFailed(f"{self.label} (kind {self.kind!r}) has no processes on this machine to find "
                             f"{program!r} among")

    # -- lifecycle -----------------------------------------------------------------------------

    def parse_port_base(self, raw: str | int | None) -> int | None:
        """A --port-base for this kind, validated (TargetError naming the value); None: the home's
        own, else $GAMEDAY_PORT_BASE, else the kind's default."""
        if raw is not None:
            raise TargetError(f"{self.label} has no port base of ours to set (got {raw!r})")
        return None

    def status(self) -> dict:
        """{healthy, components: [{name, healthy, pid, state, detail}], api_url, home, error?}."""
        raise NotImplementedError

    def up(self, port_base: int | None = None, log: Callable[[str], None] = print) -> dict:
        """Bring the target up (idempotent) and return its description; TargetUnavailable (one
        sentence) when it cannot come up."""
        if not self.owns_lifecycle:
            raise TargetUnavailable(f"{self.label} is not brought up by gameday: it is deployed by its operators")
        try:
            return self._up(port_base, log)
        except self.lifecycle_errors as e:
            raise TargetUnavailable(str(e)) from None

    def down(self, port_base: int | None = None, log: Callable[[str], None] = print) -> None:
        """Stop everything the target's stack started; TargetUnavailable when it cannot."""
        if not self.owns_lifecycle:
            raise TargetUnavailable(f"{self.label} is not taken down by gameday: it is deployed by its operators")
        try:
            self._down(port_base, log)
        except self.lifecycle_errors as e:
            raise TargetUnavailable(str(e)) from None

    # A kind that owns its lifecycle implements these, raising one of lifecycle_errors.
    lifecycle_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def _up(self, port_base: int | None, log: Callable[[str], None]) -> dict:
        raise NotImplementedError

    def _down(self, port_base: int | None, log: Callable[[str], None]) -> None:
        raise NotImplementedError

    def ensure_up(self, port_base: int | None = None, log: Callable[[str], None] = print) -> bool:
        """Before a run: make the target healthy, bringing it up or repairing it where the harness
        owns it. Returns whether it was started here (so that the caller takes it down again)."""
        st = self.status()
        if st["healthy"]:
            return False
        was_up = any(c["healthy"] for c in st["components"])
        log(f"bringing {self.label} up" if not was_up else f"repairing {self.label}")
        self.up(port_base, log=lambda m: log("  " + m))
        self.reload()
        return not was_up

    def settle(self, timeout_s: float = 90.0, log: Callable[[str], None] = print,
               port_base: int | None = None) -> bool:
        """Between two runs of a game day: wait (bounded) until the target is healthy again, and
        repair it where the harness owns it. Returns whether it ended healthy."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.status()["healthy"]:
                return True
            time.sleep(1)
        if not self.owns_lifecycle:
            log(f"{self.label} not healthy {timeout_s:g} s after the last scenario")
            return False
        log(f"{self.label} unhealthy after the last scenario: repairing")
        self.up(port_base, log=lambda m: None)
        self.reload()
        return self.status()["healthy"]


def _family_words(families: tuple[str, ...]) -> str:
    words = {"processes": "the embedded stack (programs supervised on this machine)",
             "docker": "the container target (Docker containers on this machine)",
             "cluster": "a Kubernetes target"}
    return " or ".join(words.get(f, f) for f in families)
