"""Database failover: the BCP's "automatic failover to secondary database".

`failover` moves the primary role to the streaming standby and rebuilds the old primary as the
new standby, so the stack ends with a primary and a streaming standby again, roles swapped. The
application needs no reconfiguration: its DSN lists both servers with
`target_session_attrs=read-write` and follows whichever accepts writes.

Order matters. The old primary is FENCED (held and stopped) BEFORE the standby is promoted: were
it still up after the promotion, clients holding connections to it would go on writing there, and
those acknowledged writes would vanish when it is rebuilt (split brain). A clean stop also ships
its last WAL to the standby first, so a failover from a live primary loses nothing; from a dead
one it loses only what never reached the standby (asynchronous replication).

On the patroni tier (`--db-tier patroni`) the harness never promotes: Patroni holds the leader key
and would fight a promotion behind its back (a split brain, tests/test_ha_cluster.py). There
`failover` is what a Patroni shop's runbook does:
  - the leader runs: Patroni's switchover (the leader stops cleanly, the replica promotes, the
    old leader follows it);
  - the leader's node is lost (kept down): Patroni's own failover, once the leader key expires;
    the runbook only waits for it and checks where writes land, then brings the lost node back,
    which Patroni rewinds into a replica.
The same timings are measured from the application's DSN.
`promote_standby` and `--no-rebuild`, the runbook's half step, have no Patroni equivalent and are refused.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import psycopg
from chaoslib.exceptions import ActivityFailed

from harness.targets import description as target_mod
from harness.core.errors import first_line
from harness.core.pgroles import PROGRAMS, server_dsn, server_role
from harness.recovery.runbook import RecoveryInputError, exclusive, load_local, wait_streaming
from harness.targets.embedded import stack as embedded, postgres, supervisor
from harness.targets.embedded.ha import nodes as ha_nodes
from harness.targets.embedded.ha.config import HAError
from harness.targets.embedded.launchers import hold, release
from harness.targets.embedded.layout import Layout

__all__ = ["failover", "promote_standby"]

WRITE_WAIT_S = 30.0


def failover(target: str | None = None, rebuild_standby: bool = True, timeout_s: float = 60.0) -> dict:
    """Fail over to the standby: fence the old primary (hold + stop: it can never accept writes
    again), promote the standby, measure the time until the application's DSN accepts a write,
    rebuild the old primary as a streaming standby of the new one (unless `rebuild_standby` is
    false) and rewrite target.json with the roles swapped. Works whether the old primary is alive or
    already dead. Also completes a promotion done earlier by `promote_standby` (rebuilds only).

    Returns timings: fence_s, promote_s, first_write_s (from the start), promote_to_first_write_s,
    rebuild_s, total_s; the programs and ports that swapped roles."""
    return _failover(target, rebuild=bool(rebuild_standby), timeout_s=float(timeout_s))


def promote_standby(target: str | None = None, timeout_s: float = 60.0) -> dict:
    """Only the promotion part of `failover`: fence the old primary, promote the standby, measure
    the time to the first write and rewrite target.json. The old primary stays fenced (held and
    stopped) and the stack has no standby until `failover()` is called, which then rebuilds it:
    put that call in the experiment's rollbacks."""
    return _failover(target, rebuild=False, timeout_s=float(timeout_s))


# ---------------------------------------------------------------------------------------------
# Internals

def _target_file(target: str | None) -> Path:
    if target:
        p = Path(target)
        return p / target_mod.TARGET_FILE if p.is_dir() else p
    return target_mod.target_path()


def _plan(t: dict, layout: Layout) -> dict:
    """What to do, from what the servers answer (target.json only names who should be who)."""
    p, s = t["primary"]["program"], t["standby"]["program"]
    if {p, s} != set(PROGRAMS):
        raise RecoveryInputError(f"target.json names programs {p!r} and {s!r}; expected {PROGRAMS[0]} and {PROGRAMS[1]}")
    sp, ss = server_role(layout.port(p), passfile=layout.passfile), server_role(layout.port(s), passfile=layout.passfile)
    states = f"{p} on port {layout.port(p)} is {sp}, {s} on port {layout.port(s)} is {ss}"
    if ss == "standby":
        return {"step": "promote", "new": s, "old": p, "old_state": sp, "states": states}
    if ss == "primary" and sp == "primary":
        raise ActivityFailed(f"split brain: {states}; fence one of them (stop it) before failing over; nothing was touched")
    if ss == "primary":
        return {"step": "already promoted", "new": s, "old": p, "old_state": sp, "states": states}
    if sp == "primary" and ss == "down" and layout.hold_file(s).exists():
        # promote_standby ran before: its old primary is fenced and waits to be rebuilt.
        return {"step": "complete", "new": p, "old": s, "old_state": ss, "states": states}
    if sp == "primary":
        raise ActivityFailed(f"nothing to promote: {states}; rebuild the standby first; nothing was touched")
    raise ActivityFailed(f"no server to fail over to: {states}; restore the database instead (restore_database)")


def _checkpoint_lsn(pg_bin: str, data: Path) -> int | None:
    """Where the (stopped) old primary's last checkpoint record starts: a clean stop's shutdown
    checkpoint is the last thing it wrote."""
    try:
        out = postgres.as_server_user([str(Path(pg_bin) / "pg_controldata"), str(data)]).stdout
    except Exception:
        return None
    state = re.search(r"Database cluster state:\s+(.+)", out)
    m = re.search(r"Latest checkpoint location:\s+([0-9A-F]+)/([0-9A-F]+)", out)
    if not m or not state or "shut down" not in state.group(1):
        return None
    return (int(m.group(1), 16) << 32) | int(m.group(2), 16)


def _wait_received(port: int, lsn: int, timeout_s: float, passfile: str | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(server_dsn(port, passfile=passfile), autocommit=True) as c:
                got = c.execute("select pg_last_wal_receive_lsn() - '0/0'::pg_lsn").fetchone()[0]
            if got is not None and int(got) > lsn:
                return True
        except psycopg.Error:
            pass
        time.sleep(0.05)
    return False


def _first_write(app_dsn: str, timeout_s: float) -> tuple[float, int]:
    t0 = time.monotonic()
    last = ""
    while time.monotonic() - t0 < timeout_s:
        try:
            with psycopg.connect(app_dsn, autocommit=True) as c:
                c.execute("select txid_current()")  # assigns an xid: only a primary accepts it
                return time.monotonic() - t0, c.info.port
        except psycopg.Error as e:
            last = first_line(e)
        time.sleep(0.02)
    raise ActivityFailed(f"no server accepted a write on the application DSN within {timeout_s:.0f} s ({last})")


def _save_roles(t: dict, layout: Layout, target: str | None, roles: dict) -> dict:
    new = {**t, **embedded.describe(layout, roles)}
    target_mod.save(new, _target_file(target))
    return new


def _save_leader(t: dict, target: str | None, leader: str) -> dict:
    """The container target's description with `leader` as its primary (its members keep their names)."""
    if t["primary"]["program"] != leader:
        t = {**t, "primary": t["standby"], "standby": t["primary"]}
        target_mod.save(t, _target_file(target))
    return t


def _failover(target: str | None, rebuild: bool, timeout_s: float) -> dict:
    # Patroni's failover and switchover are REST calls and node starts: they need no layout, so
    # the container target's cluster takes them too (layout None).
    t, layout = load_local(target, patroni_anywhere=True)
    patroni = t.get("db_tier") == "patroni"
    if patroni and not rebuild:  # promote_standby, or gameday failover --no-rebuild
        raise RecoveryInputError("the patroni tier promotes by itself and its old leader always follows the new one: "
                                 "a promotion that leaves it fenced would be a split brain behind Patroni's back; "
                                 "use 'gameday failover' (a Patroni switchover)")
    with exclusive(t, "failover"):
        if patroni and ha_nodes.lost_nodes(t["ha"]):
            return _patroni_failover_locked(t, layout, target, timeout_s)
        if patroni:
            return _switchover_locked(t, layout, target, timeout_s)
        return _failover_locked(t, layout, target, rebuild, timeout_s)


def _switchover_locked(t: dict, layout: Layout, target: str | None, timeout_s: float) -> dict:
    """`failover` on the patroni tier: Patroni's switchover to the streaming replica, then the
    first write on the application's DSN, then the old leader streaming from the new one."""
    cluster = t["ha"]
    t0 = time.monotonic()
    try:
        done = ha_nodes.switchover(cluster, timeout_s=timeout_s)
    except HAError as e:
        raise ActivityFailed(f"{first_line(e)}; nothing was changed") from None
    new, old = done["to"], done["from"]
    result = {"step": "switchover", "how": "Patroni switchover", "new_primary": new,
              "new_primary_port": cluster["members"][new]["port"], "old_primary": old,
              "old_primary_port": cluster["members"][old]["port"], "switchover_s": round(time.monotonic() - t0, 3),
              "message": done.get("message")}
    return _patroni_led(t, layout, target, result, t0, timeout_s, rejoining=[old], lost=[])


def _patroni_failover_locked(t: dict, layout: Layout, target: str | None, timeout_s: float) -> dict:
    """`failover` on the patroni tier after the leader's node was lost: wait for Patroni to promote
    a member that was not lost, check that the application's first write lands there, then bring
    the lost node back and wait until it streams from the new leader."""
    cluster = t["ha"]
    lost = ha_nodes.lost_nodes(cluster)
    t0 = time.monotonic()
    new = None
    while time.monotonic() - t0 < timeout_s:
        name = ha_nodes.leader(cluster)
        if name is not None and name not in lost:
            new = name
            break
        time.sleep(0.2)
    if new is None:
        raise ActivityFailed(f"Patroni promoted no member within {timeout_s:.0f} s of the failover's start (lost: "
                             f"{', '.join(lost)}); is it paused? nothing was changed")
    result = {"step": "Patroni failover", "how": "Patroni promoted the replica when the lost leader's key expired",
              "new_primary": new, "new_primary_port": cluster["members"][new]["port"], "lost": lost,
              "promote_wait_s": round(time.monotonic() - t0, 3)}
    return _patroni_led(t, layout, target, result, t0, timeout_s, rejoining=lost, lost=lost)


def _patroni_led(t: dict, layout: Layout, target: str | None, result: dict, t0: float, timeout_s: float,
                 rejoining: list[str], lost: list[str]) -> dict:
    """After Patroni moved the leader: the application's first write must land on the new leader;
    then the `lost` nodes start again and every `rejoining` member must stream from it."""
    cluster, new, new_port = t["ha"], result["new_primary"], result["new_primary_port"]
    _, port = _first_write(t["app_dsn"], WRITE_WAIT_S)
    result["first_write_s"] = round(time.monotonic() - t0, 3)
    result["first_write_port"] = port
    if port != new_port:
        raise ActivityFailed(f"the first write after the {result['step']} landed on port {port}, not on the new "
                             f"leader {new} ({new_port}): check for split brain")
    t_rb = time.monotonic()
    for name in lost:
        ha_nodes.start_node(cluster, name)
    try:
        for name in rejoining:
            ha_nodes.wait_streaming(cluster, name, timeout_s)
    except HAError as e:
        raise ActivityFailed(f"{new} leads now, but {', '.join(rejoining)} does not stream from it: "
                             f"{first_line(e)}") from None
    result["rebuild_s"] = round(time.monotonic() - t_rb, 3)
    t = _save_leader(t, target, new) if layout is None else _save_roles(t, layout, target, embedded.current_roles(layout))
    result.update(standby_streaming=True, primary=t["primary"]["program"], standby=t["standby"]["program"],
                  target_file=str(_target_file(target)), total_s=round(time.monotonic() - t0, 3))
    return result


def _failover_locked(t: dict, layout: Layout, target: str | None, rebuild: bool, timeout_s: float) -> dict:
    plan = _plan(t, layout)
    sup = t["supervisor_url"]
    new, old = plan["new"], plan["old"]
    new_port, old_port = layout.port(new), layout.port(old)
    result = {"step": plan["step"], "before": plan["states"], "new_primary": new, "new_primary_port": new_port,
              "old_primary": old, "old_primary_port": old_port, "old_state": plan["old_state"]}
    t0 = time.monotonic()

    if plan["step"] in ("promote", "already promoted"):
        # 1. Fence: held (supervision cannot bring it back) and stopped.
        hold(layout, old)
        supervisor.stop(sup, old)
        result["fence_s"] = round(time.monotonic() - t0, 3)
        # 2. A cleanly stopped primary shipped its last WAL; make sure the standby has it.
        if plan["step"] == "promote":
            ckpt = _checkpoint_lsn(t["pg_bin"], layout.data_dir(old)) if plan["old_state"] == "primary" else None
            result["standby_caught_up"] = _wait_received(new_port, ckpt, 5.0, layout.passfile) if ckpt is not None else None
            t_promote = time.monotonic()
            try:
                with psycopg.connect(server_dsn(new_port, passfile=layout.passfile), autocommit=True) as c:
                    promoted = c.execute("select pg_promote(true, %s)", (int(timeout_s),)).fetchone()[0]
            except psycopg.Error as e:
                raise ActivityFailed(f"promotion of {new} on port {new_port} failed: {e}; {old} stays fenced "
                                     f"(hold file {layout.hold_file(old)})") from None
            if not promoted:
                raise ActivityFailed(f"{new} on port {new_port} was not promoted within {timeout_s:.0f} s; {old} "
                                     f"stays fenced (hold file {layout.hold_file(old)})")
            result["promote_s"] = round(time.monotonic() - t_promote, 3)
        else:
            t_promote = time.monotonic()
            result["promote_s"] = 0.0
        # 3. The application's DSN finds the new primary.
        write_s, port = _first_write(t["app_dsn"], WRITE_WAIT_S)
        result["promote_to_first_write_s"] = round(time.monotonic() - t_promote, 3)
        result["first_write_s"] = round(time.monotonic() - t0, 3)
        result["first_write_port"] = port
        if port != new_port:
            raise ActivityFailed(f"the first write after promotion landed on port {port}, not on the new primary "
                                 f"{new_port}: check for split brain")
        t = _save_roles(t, layout, target, {"primary": new, "standby": old})
    if rebuild:
        # 4. The old primary becomes a standby of the new one, in its own folder, on its own port.
        t_rb = time.monotonic()
        try:
            postgres.clone_standby(layout, new_port, layout.data_dir(old), old_port)
            release(layout, old)
            supervisor.start(sup, old)
            wait_streaming(old_port, timeout_s, layout.passfile)
        except Exception as e:
            raise ActivityFailed(f"{new} is the primary now, but rebuilding {old} as its standby failed: "
                                 f"{first_line(e)}") from None
        result["rebuild_s"] = round(time.monotonic() - t_rb, 3)
        t = _save_roles(t, layout, target, embedded.current_roles(layout))
        result["standby_streaming"] = True
    else:
        result["old_primary_fenced"] = layout.hold_file(old).exists()
    result["primary"] = t["primary"]["program"]
    result["standby"] = t["standby"]["program"]
    result["target_file"] = str(_target_file(target))
    result["total_s"] = round(time.monotonic() - t0, 3)
    return result

