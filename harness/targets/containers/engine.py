"""The Docker engine as the harness reaches it: one client, the labels that mark what a stack home
owns, a container's processes and network namespace, and the undo of container faults (carried
out by the fault ledger's reaper: harness/targets/reaper.py).

Everything a container target creates carries the label `org.gameday.home=<home>`: `down` removes
by that label, so nothing is left behind even if the target description is gone.

Undo kinds (fault-ledger entries; harness/records/fault_ledger.py):
    {"kind": "docker_unpause", "container": id}                 a paused (frozen) container
    {"kind": "docker_start", "container": id}                   a stopped container
    {"kind": "docker_connect", "container": id, "network": name, "aliases": [...]}
                                                                 a container cut off a network
    {"kind": "netem_clear", "container": id, "network": name}    added delay on a container's link

Delay is tc netem where the kernel has it; a kernel built without sch_netem (this project's
machines: CONFIG_NET_SCH_NETEM is not set) gets the same egress delay from an NFQUEUE rule and a
small delayer process in the container's network namespace (harness/targets/containers/delay.py), which
also ends by itself at the fault's deadline.

The bottom layer: imports nothing of ours.
"""
from __future__ import annotations

import ipaddress
import os
import select
import signal
import subprocess
import sys

__all__ = ["HOME_LABEL", "COMPONENT_LABEL", "EngineError", "client", "home_labels", "owned", "find", "main_pid", "pids",
           "interface_on", "netem", "netem_clear", "undo", "UNDO_KINDS"]

HOME_LABEL = "org.gameday.home"
COMPONENT_LABEL = "org.gameday.component"
UNDO_KINDS = ("docker_unpause", "docker_start", "docker_connect", "netem_clear")

# testcontainers reads these when imported: its reaper (Ryuk) is an image we cannot pull, and the
# engine is reached on its local socket with ports published on 127.0.0.1.
TESTCONTAINERS_ENV = {"TESTCONTAINERS_RYUK_DISABLED": "true", "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
                      "TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1"}


class EngineError(RuntimeError):
    """The Docker engine cannot do what was asked: one sentence naming what and why."""


def client():
    """A docker-py client for the local engine (DOCKER_HOST or the default socket)."""
    import docker  # deferred: only the container target needs it (every gameday command imports this module)
    try:
        c = docker.from_env(timeout=30)
        c.ping()
        return c
    except Exception as e:
        raise EngineError(f"no Docker engine answers ({os.environ.get('DOCKER_HOST') or 'unix:///var/run/docker.sock'}):"
                          f" {e}; as root, scripts/setup.sh installs and starts one") from None


def home_labels(home: str, component: str | None = None) -> dict:
    labels = {HOME_LABEL: str(home)}
    if component:
        labels[COMPONENT_LABEL] = component
    return labels


def owned(c, home: str) -> dict[str, list]:
    """Everything labelled with this home: {"containers": [...], "networks": [...], "volumes": [...]}."""
    flt = {"label": f"{HOME_LABEL}={home}"}
    return {"containers": c.containers.list(all=True, filters=flt), "networks": c.networks.list(filters=flt),
            "volumes": c.volumes.list(filters=flt)}


def find(c, container_id: str):
    import docker.errors
    try:
        return c.containers.get(container_id)
    except docker.errors.NotFound:
        raise EngineError(f"container {container_id[:12]} does not exist (was the target taken down?)") from None


def main_pid(container) -> int:
    """The host pid of a running container's main process (its PID 1)."""
    container.reload()
    state = container.attrs["State"]
    if not state.get("Running") or not state.get("Pid"):
        raise EngineError(f"container {container.name} is not running (status {state.get('Status')})")
    if state.get("Paused"):
        raise EngineError(f"container {container.name} is paused")
    return int(state["Pid"])


def pids(container) -> list[int]:
    """The host pids of every process in a running container (`docker top`)."""
    main_pid(container)
    top = container.top()
    column = top["Titles"].index("PID")
    return [int(row[column]) for row in top.get("Processes") or []]


def interface_on(container, network: str) -> str:
    """The name of the container's interface on `network`, found by its address in the container's
    network namespace (interface names are the engine's business: eth0, eth1 … in attach order)."""
    container.reload()
    net = container.attrs["NetworkSettings"]["Networks"].get(network)
    if not net or not net.get("IPAddress"):
        raise EngineError(f"container {container.name} is not attached to network {network}")
    want = ipaddress.ip_address(net["IPAddress"])
    out = _in_netns(main_pid(container), ["ip", "-o", "-4", "addr", "show"])
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[2] == "inet" and ipaddress.ip_interface(parts[3]).ip == want:
            return parts[1].split("@")[0]
    raise EngineError(f"no interface of {container.name} holds {want} (network {network})")


NFQUEUE_NUM = 4242  # one queue per network namespace: a container has one delayed link at most


def netem(container, network: str, delay_ms: int, until_epoch: float) -> dict:
    """Add `delay_ms` of delay to every packet the container sends on `network`: tc netem in its
    network namespace (run from the host), or, on a kernel without sch_netem, an NFQUEUE rule and
    a delayer that ends by itself at `until_epoch`. Returns {mechanism, interface[, delayer_pid]}."""
    dev = interface_on(container, network)
    pid = main_pid(container)
    try:
        _in_netns(pid, ["tc", "qdisc", "replace", "dev", dev, "root", "netem", "delay", f"{int(delay_ms)}ms"])
        return {"mechanism": "tc netem", "interface": dev}
    except EngineError as e:  # "Specified qdisc kind is unknown": a kernel without sch_netem (or no tc)
        why = str(e).rsplit(": ", 1)[-1][:120]
    delayer = subprocess.Popen(
        ["nsenter", "-t", str(pid), "-n", sys.executable, "-m", "harness.targets.containers.delay", "--queue", str(NFQUEUE_NUM),
         "--delay-ms", str(int(delay_ms)), "--until", repr(until_epoch)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)  # its own session: it ends at the deadline even if the harness dies
    ready, _, _ = select.select([delayer.stdout], [], [], 10)
    line = delayer.stdout.readline().strip() if ready else ""
    if line != "ready":
        delayer.kill()
        raise EngineError(f"the packet delayer did not start in {container.name}'s namespace: {line or 'no answer in 10 s'}")
    try:
        _in_netns(pid, ["iptables", "-t", "mangle", "-A", "OUTPUT", *_nfqueue_rule(dev)])
    except EngineError:
        delayer.terminate()
        raise
    return {"mechanism": "nfqueue delayer", "netem_unavailable": why, "interface": dev, "delayer_pid": delayer.pid}


def netem_clear(container, network: str) -> bool:
    """Remove the delay netem() added (whichever way it was made); False when there was none.
    Works while the container is cut off `network` too (its interface there is gone then)."""
    pid = main_pid(container)
    removed = False
    try:
        dev = interface_on(container, network)
    except EngineError:
        dev = None
    if dev:
        try:
            _in_netns(pid, ["tc", "qdisc", "del", "dev", dev, "root", "netem"])
            removed = True
        except EngineError:
            pass
    # Our NFQUEUE rules, whatever interface they name (a reconnect gives the network a new one).
    try:
        rules = _in_netns(pid, ["iptables", "-t", "mangle", "-S", "OUTPUT"]).splitlines()
    except EngineError:
        rules = []
    for rule in rules:
        if rule.startswith("-A OUTPUT") and f"--queue-num {NFQUEUE_NUM}" in rule:
            try:
                _in_netns(pid, ["iptables", "-t", "mangle", "-D", *rule.split()[1:]])
                removed = True
            except EngineError:
                pass
    for delayer in _delayers_in(pid):
        try:
            os.kill(delayer, signal.SIGTERM)  # it accepts every packet it still holds, then exits
            removed = True
        except ProcessLookupError:
            pass
    return removed


def undo(spec: dict) -> str:
    """Carry out a container fault's undo (see the module docstring). Returns what was done."""
    import docker.errors
    kind = spec.get("kind")
    c = client()
    try:
        container = c.containers.get(spec["container"])
    except docker.errors.NotFound:
        return f"container {spec['container'][:12]} is gone: nothing to undo"
    container.reload()
    state = container.attrs["State"]
    if kind == "docker_unpause":
        if not state.get("Paused"):
            return f"{container.name} is not paused"
        container.unpause()
        return f"unpaused {container.name}"
    if kind == "docker_start":
        if state.get("Running"):
            return f"{container.name} already running"
        container.start()
        return f"started {container.name}"
    if kind == "docker_connect":
        if spec["network"] in container.attrs["NetworkSettings"]["Networks"]:
            return f"{container.name} already on {spec['network']}"
        c.networks.get(spec["network"]).connect(container, aliases=spec.get("aliases") or None)
        return f"reconnected {container.name} to {spec['network']}"
    if kind == "netem_clear":
        if not state.get("Running") or state.get("Paused"):
            return f"{container.name} not running: its delay went with its namespace"
        cleared = netem_clear(container, spec["network"])
        return f"removed the delay on {container.name}'s {spec['network']} link" if cleared else "no delay to remove"
    return f"no container undo of kind {kind!r}"


# Internals ---------------------------------------------------------------------------------

def _nfqueue_rule(dev: str) -> list[str]:
    # --queue-bypass: with no delayer listening, packets pass undelayed instead of being dropped.
    return ["-o", dev, "-j", "NFQUEUE", "--queue-num", str(NFQUEUE_NUM), "--queue-bypass"]


def _delayers_in(container_pid: int) -> list[int]:
    """Delayer processes running in the network namespace of `container_pid`."""
    try:
        netns = os.readlink(f"/proc/{container_pid}/ns/net")
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
            if b"harness.targets.containers.delay" in cmd and os.readlink(f"/proc/{entry}/ns/net") == netns:
                found.append(int(entry))
        except OSError:
            continue
    return found


def _in_netns(pid: int, cmd: list[str]) -> str:
    r = subprocess.run(["nsenter", "-t", str(pid), "-n", *cmd], capture_output=True, text=True)
    if r.returncode != 0:
        raise EngineError(f"{' '.join(cmd[:3])} in the network namespace of pid {pid} failed: "
                          f"{(r.stderr or r.stdout).strip()[:200]}")
    return r.stdout
