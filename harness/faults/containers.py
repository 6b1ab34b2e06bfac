"""Faults of the container target (kind: containers): what Docker makes natural.

  kill_container        SIGKILL a container's main process: it crashes, its restart policy brings it back
  pause_container       freeze a container (cgroup freezer, `docker pause`), for D seconds or until resumed
  resume_container      rollback of pause_container
  stop_container        stop a container (`docker stop`): it stays down until start_container
  start_container       rollback of stop_container
  partition_database    the API loses the database network (`docker network disconnect`), for D
                        seconds or until rejoin_database
  rejoin_database       rollback of partition_database
  delay_database_link   add latency on the API's database link (tc netem in its network namespace)
  clear_database_delay  rollback of delay_database_link

The local experiments reach the first ones through the faults they already call (kill_database,
crash_api, hang_api, freeze_database …): those resolve the target's kind and come here for a
container target; its database nodes' faults are harness.faults.ha's, as on the embedded patroni tier. Every fault that leaves state registers its undo before injecting:
in this process, and in the home's fault ledger with a deadline and a detached timer
(harness/targets/reaper.py carries out the container undo kinds of harness/targets/containers/engine.py), so
a harness that dies, even by SIGKILL, never leaves a container paused, stopped, cut off or slowed.
"""
from __future__ import annotations

import os
import signal
import time

from chaoslib.exceptions import ActivityFailed

from harness.records import fault_ledger
from harness import targets
from harness.targets.containers import engine
from harness.targets.containers.engine import EngineError
from harness.faults import clear_undo, register_undo
from harness.faults._common import duration, effect, gone_effect, lease, positive_int
from harness.targets import reaper

__all__ = ["kill_container", "pause_container", "resume_container", "stop_container", "start_container",
           "partition_database", "rejoin_database", "delay_database_link", "clear_database_delay",
           "container_target", "KIND"]

KIND = "containers"
MAX_DELAY_MS = 60_000


def container_target(target: str | None) -> dict:
    """The description of the target, which must be the container target."""
    return targets.for_activity(target).require("docker", "this fault").data


def kill_container(component: str, target: str | None = None) -> dict:
    """SIGKILL the main process (PID 1) of `component`'s container from the host: the container
    crashes, and its restart policy brings it back on its own files (for PostgreSQL, crash
    recovery replays the WAL). `component`: one of the target's containers (etcd-e0..2, pg0, pg1,
    api, prometheus, alertmanager, alert-receiver, heartbeat)."""
    t = container_target(target)
    container = _container(t, component)
    pid = _pid(container)
    restarts = container.attrs.get("RestartCount", 0)
    os.kill(pid, signal.SIGKILL)
    return {"component": component, "container": container.name, "pid": pid, "signal": "SIGKILL",
            "restart_count_before": restarts, "at": time.time(), "effect": gone_effect([pid], f"{component}'s main process")}


def pause_container(component: str, duration_s: float | None = None, target: str | None = None,
                    configuration: dict = None) -> dict:
    """Freeze `component`'s container (every process in it, with the cgroup freezer). With
    `duration_s` it is thawed after exactly that many seconds (the action returns then: an outage
    of known length); without, it stays frozen until `resume_container`, the rollback, or the lease."""
    if duration_s is not None:
        duration_s = duration(duration_s)
    t = container_target(target)
    container = _container(t, component)
    _pid(container)  # running and not already paused
    key = f"pause:{component}"
    _register(t, configuration, key, {"kind": "docker_unpause", "container": container.id},
              lease_s=duration_s + 1.0 if duration_s is not None else None)
    paused_at = time.monotonic()
    container.pause()
    container.reload()
    seen = bool(container.attrs["State"].get("Paused"))
    record = {"component": component, "container": container.name, "duration_s": duration_s, "at": time.time()}
    if duration_s is None:
        return {**record, "effect": effect(seen, f"{container.name} {'paused' if seen else 'not seen paused'}")}
    held, _ = _hold(key, {"kind": "docker_unpause", "container": container.id}, duration_s, paused_at)
    return {**record, "stopped_s": held, "active_s": held,
            "effect": effect(seen, f"{container.name} {'paused' if seen else 'not seen paused'}, held {held:g} s")}


def resume_container(component: str, target: str | None = None) -> dict:
    """Rollback of pause_container: thaw `component`'s container (harmless when it is not paused)."""
    t = container_target(target)
    container = _container(t, component)
    return {"component": component, "detail": _undo_now(f"pause:{component}",
                                                        {"kind": "docker_unpause", "container": container.id})}


def stop_container(component: str, timeout_s: int = 10, target: str | None = None, configuration: dict = None) -> dict:
    """Stop `component`'s container (`docker stop`: SIGTERM, SIGKILL after `timeout_s`). A stopped
    container is not restarted by its restart policy: it stays down until `start_container`, the
    rollback, or the lease."""
    timeout_s = positive_int(timeout_s, "timeout_s")
    t = container_target(target)
    container = _container(t, component)
    pid = _pid(container)
    _register(t, configuration, f"stop:{component}", {"kind": "docker_start", "container": container.id})
    container.stop(timeout=timeout_s)
    container.reload()
    down = not container.attrs["State"].get("Running")
    return {"component": component, "container": container.name, "pid": pid, "at": time.time(),
            "effect": effect(down, f"{container.name} {'stopped' if down else 'still running after docker stop'}")}


def start_container(component: str, target: str | None = None) -> dict:
    """Rollback of stop_container: start `component`'s container again (harmless when it runs)."""
    t = container_target(target)
    container = _container(t, component)
    return {"component": component, "detail": _undo_now(f"stop:{component}",
                                                        {"kind": "docker_start", "container": container.id})}


def partition_database(duration_s: float | None = None, component: str = "api", target: str | None = None,
                       configuration: dict = None) -> dict:
    """Cut `component` (the API) off the database network (`docker network disconnect`): it can no
    longer reach either PostgreSQL server, while clients still reach it. With `duration_s` it
    rejoins after exactly that many seconds (the action returns then); without, it stays cut off
    until `rejoin_database`, the rollback, or the lease."""
    if duration_s is not None:
        duration_s = duration(duration_s)
    t = container_target(target)
    container = _container(t, component)
    network = _database_network(t)
    spec = {"kind": "docker_connect", "container": container.id, "network": network, "aliases": [component]}
    key = f"partition:{component}"
    _register(t, configuration, key, spec, lease_s=duration_s + 1.0 if duration_s is not None else None)
    cut_at = time.monotonic()
    try:
        engine.client().networks.get(network).disconnect(container, force=True)
    except Exception as e:
        _undo_now(key, spec)
        raise ActivityFailed(f"cannot disconnect {container.name} from {network}: {e}") from None
    container.reload()
    cut = network not in container.attrs["NetworkSettings"]["Networks"]
    record = {"component": component, "container": container.name, "network": network, "duration_s": duration_s,
              "at": time.time()}
    what = f"{container.name} {'off' if cut else 'still on'} {network}"
    if duration_s is None:
        return {**record, "effect": effect(cut, what)}
    held, rejoined = _hold(key, spec, duration_s, cut_at)
    return {**record, "partitioned_s": held, "active_s": held, "rejoined": rejoined, "effect": effect(cut, f"{what} for {held:g} s")}


def rejoin_database(component: str = "api", target: str | None = None) -> dict:
    """Rollback of partition_database: reconnect `component` to the database network (harmless
    when it is connected)."""
    t = container_target(target)
    container = _container(t, component)
    spec = {"kind": "docker_connect", "container": container.id, "network": _database_network(t), "aliases": [component]}
    return {"component": component, "detail": _undo_now(f"partition:{component}", spec)}


def delay_database_link(delay_ms: int = 200, duration_s: float | None = None, component: str = "api",
                        target: str | None = None, configuration: dict = None) -> dict:
    """Add `delay_ms` milliseconds to every packet `component` (the API) sends on the database
    network (tc netem on its interface there, in its network namespace; on a kernel without
    sch_netem an NFQUEUE delayer does the same, harness/targets/containers/delay.py). With `duration_s` the
    delay is removed after exactly that many seconds (the action returns then); without, it stays
    until `clear_database_delay`, the rollback, or the lease."""
    delay_ms = positive_int(delay_ms, "delay_ms")
    if delay_ms > MAX_DELAY_MS:
        raise ActivityFailed(f"delay_ms must be at most {MAX_DELAY_MS}, got {delay_ms}")
    if duration_s is not None:
        duration_s = duration(duration_s)
    t = container_target(target)
    container = _container(t, component)
    network = _database_network(t)
    spec = {"kind": "netem_clear", "container": container.id, "network": network}
    key = f"delay:{component}"
    deadline = _register(t, configuration, key, spec, lease_s=duration_s + 1.0 if duration_s is not None else None)
    try:
        how = engine.netem(container, network, delay_ms, deadline)
    except EngineError as e:
        _undo_now(key, spec)
        raise ActivityFailed(f"cannot add {delay_ms} ms on {container.name}'s link to {network}: {e}") from None
    started = time.monotonic()  # in force from here: starting the delayer takes a moment
    record = {"component": component, "container": container.name, "network": network, **how,
              "delay_ms": delay_ms, "duration_s": duration_s, "at": time.time()}
    what = f"{delay_ms} ms delay ({how['mechanism']}) on {container.name} {how['interface']} ({network})"
    if duration_s is None:
        return {**record, "effect": effect(True, what)}
    held, cleared = _hold(key, spec, duration_s, started)
    return {**record, "delayed_s": held, "active_s": held, "cleared": cleared, "effect": effect(True, f"{what} for {held:g} s")}


def clear_database_delay(component: str = "api", target: str | None = None) -> dict:
    """Rollback of delay_database_link: remove the added delay (harmless when there is none)."""
    t = container_target(target)
    container = _container(t, component)
    spec = {"kind": "netem_clear", "container": container.id, "network": _database_network(t)}
    return {"component": component, "detail": _undo_now(f"delay:{component}", spec)}


# Internals ---------------------------------------------------------------------------------

def _container(t: dict, component: str):
    names = t.get("containers") or {}
    if component not in names:
        raise ActivityFailed(f"unknown component {component!r}; the container target has: {', '.join(names)}")
    try:
        return engine.find(engine.client(), names[component])
    except EngineError as e:
        raise ActivityFailed(str(e)) from None


def _pid(container) -> int:
    try:
        return engine.main_pid(container)
    except EngineError as e:
        raise ActivityFailed(str(e)) from None


def _database_network(t: dict) -> str:
    network = t.get("database_network")
    if not network:
        raise ActivityFailed("the target description names no database_network")
    return network


def _register(t: dict, configuration: dict | None, key: str, spec: dict, lease_s: float | None = None) -> float:
    """The undo, in this process and in the fault ledger, with a detached timer that carries it out
    at the deadline whatever happens to this process. Returns the deadline (epoch seconds)."""
    ledger = lease(t, configuration)
    if lease_s is not None:
        ledger["lease_s"] = lease_s
    register_undo(key, lambda: engine.undo(spec), spec=spec, **ledger)
    deadline = time.time() + ledger["lease_s"]
    timer = reaper.start_timer(ledger["home"], deadline)
    fault_ledger.set_timer(ledger["home"], key, timer)  # ended when the entry is cleared
    return deadline


def _hold(key: str, spec: dict, duration_s: float, since: float) -> tuple[float, str]:
    """A timed fault: keep it until `duration_s` after `since` (monotonic), then undo it, even
    when the wait is interrupted. Returns (seconds it was in force, what the undo said)."""
    try:
        time.sleep(max(0.0, duration_s - (time.monotonic() - since)))
    finally:
        undone = _undo_now(key, spec)
    return round(time.monotonic() - since, 4), undone


def _undo_now(key: str, spec: dict) -> str:
    try:
        done = engine.undo(spec)
    except Exception as e:
        raise ActivityFailed(f"undo of {key} failed: {e}") from None
    clear_undo(key)
    return done
