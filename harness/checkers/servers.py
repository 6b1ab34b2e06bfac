"""Which database server took each write: a failover and its split brain, from the writes' own
evidence. Pure, like every checker.

Every acknowledged write carries the server that took it (`server`: system identifier and the
timeline it was on, read in the write's own transaction: svgai/db.py), the load's and the
heartbeat's alike (a heartbeat event's `acked` entries: key, ack t, digest, sent t, server). A promoted standby, a
restore and a failback each start a new timeline, so (system_id, timeline) names one server's
history. Servers are ordered by their first acknowledged write. Once a newer server has
acknowledged a write, an older one must never acknowledge a write sent after that: such a write
went to a primary that should have stopped (a split brain: two primaries took writes at once).

    servers(events)   {known, servers: [{id, first_ack_t, last_ack_t, acks}], changes: [{from, to,
                       last_old_ack_t, first_new_ack_t, write_gap_s}], split_brain_writes,
                       split_brain_sample, split_brain_s, in_doubt_writes, detail}

`write_gap_s` is the failover as the clients saw it: from the last write the old server
acknowledged to the first the new one did, client-side acknowledgement times (each an upper bound
of its commit). `server_gap_s` is the same failover on the servers' own clocks (CloudNativePG's
e2e measure): from the last write the old server executed to the first the new one executed
(`server.at`; None when the writes do not say). A write acknowledged by the old server after that, but sent
before it, is settled by the servers' own clocks (`server.at`, read as each executed the write):
executed after the newer server executed its first write, it is a split brain too. Only what
neither clock settles is `in_doubt_writes` (reported, not judged): a write with no server clock,
or one the old server executed before the newer one's first. The servers' clocks are compared
directly: one machine's clock for the embedded stack and containers; across machines their skew
counts against the comparison.
"""
from __future__ import annotations

from typing import Any

__all__ = ["servers", "server_id", "failover_window"]

SAMPLE = 20


def server_id(server: Any) -> str | None:
    """The name of one server's history: "<system_id>/tl<timeline>", or None when unknown."""
    if not isinstance(server, dict) or server.get("system_id") is None or server.get("timeline") is None:
        return None
    return f"{server['system_id']}/tl{server['timeline']}"


def servers(events: list[dict]) -> dict:
    sent: dict[Any, float] = {}
    acks: list[tuple[float, float | None, str, Any, float | None]] = []  # (ack t, sent t, server, key, server at)
    unknown = 0
    beats: set = set()  # heartbeat keys already counted
    for e in events:
        if e["kind"] == "heartbeat":
            # The heartbeat writes through the same API: [key, ack t, digest, sent t, server].
            for entry in e.get("acked") or []:
                if len(entry) < 5 or entry[0] in beats:
                    continue  # an older ledger: no server recorded, nothing to judge
                sid = server_id(entry[4])
                if sid is None:
                    unknown += 1
                else:
                    acks.append((entry[1], entry[3], sid, entry[0], _at(entry[4])))
                beats.add(entry[0])
            continue
        if e["kind"] != "op" or e.get("f", "write") != "write":
            continue
        if e.get("type") == "invoke":
            sent.setdefault(e.get("key"), e["t"])
        elif e.get("type") == "ok":
            sid = server_id(e.get("server"))
            if sid is None:
                unknown += 1
                continue
            acks.append((e["t"], sent.get(e.get("key")), sid, e.get("key"), _at(e.get("server"))))
    acks.sort(key=lambda a: a[0])
    out: dict[str, Any] = {"known": bool(acks), "servers": [], "changes": [], "split_brain_writes": 0,
                           "split_brain_sample": [], "split_brain_s": 0.0, "in_doubt_writes": 0,
                           "unattributed_writes": unknown, "detail": ""}
    if not acks:
        out["detail"] = "no acknowledged write says which server took it"
        return out

    order: list[str] = []
    info: dict[str, dict] = {}
    first_at: dict[str, float] = {}  # each server's earliest own clock reading of a write it executed
    for t, _, sid, _, at in acks:
        if sid not in info:
            order.append(sid)
            info[sid] = {"id": sid, "first_ack_t": t, "last_ack_t": t, "acks": 0}
        info[sid]["last_ack_t"] = t
        info[sid]["acks"] += 1
        if at is not None:
            first_at[sid] = min(first_at.get(sid, at), at)
    # A server is superseded from the first acknowledgement of any server first seen after it.
    superseded = {sid: info[order[i + 1]]["first_ack_t"] for i, sid in enumerate(order[:-1])}
    superseded_at = {sid: first_at.get(order[i + 1]) for i, sid in enumerate(order[:-1])}
    split, doubt = [], 0
    for t, sent_t, sid, key, at in acks:
        since = superseded.get(sid)
        if since is None or t <= since:
            continue
        # Sent after the newer server acknowledged a write (the client's clock), or executed by
        # the old server after the newer one executed a write (the servers' clocks): either way
        # two primaries took writes at once.
        newer_at = superseded_at.get(sid)
        if (sent_t is not None and sent_t > since) or (at is not None and newer_at is not None and at > newer_at):
            split.append((t, key, sid, since))
        else:
            doubt += 1
    for old, new in zip(order, order[1:]):
        before = [t for t, _, sid, _, _ in acks if sid == old and t <= info[new]["first_ack_t"]]
        last_old = max(before) if before else info[old]["last_ack_t"]
        new_at = first_at.get(new)
        # The old server's last execution before the new one's first (a later one is a split brain).
        old_at = max((at for _, _, sid, _, at in acks if sid == old and at is not None
                      and (new_at is None or at <= new_at)), default=None)
        out["changes"].append({"from": old, "to": new, "last_old_ack_t": _r(last_old),
                               "first_new_ack_t": _r(info[new]["first_ack_t"]),
                               "write_gap_s": _r(max(0.0, info[new]["first_ack_t"] - last_old)),
                               "server_gap_s": _r(new_at - old_at) if new_at is not None and old_at is not None
                               else None})
    out.update(
        servers=[{**info[s], "first_ack_t": _r(info[s]["first_ack_t"]), "last_ack_t": _r(info[s]["last_ack_t"])}
                 for s in order],
        split_brain_writes=len(split),
        split_brain_sample=[k for _, k, _, _ in split[:SAMPLE]],
        split_brain_s=_r(max((t - since for t, _, _, since in split), default=0.0)),
        in_doubt_writes=doubt)
    if split:
        t, key, sid, since = split[-1]
        out["detail"] = (f"{len(split)} writes sent after a newer server took writes were acknowledged by an older one "
                         f"(split brain, the last {t - since:.1f} s after: {key} on {sid})")
    elif len(order) > 1:
        out["detail"] = (f"{len(order)} servers took writes, one after another: "
                         + "; ".join(f"{c['from']} → {c['to']} after {c['write_gap_s']:.2f} s without a write"
                                     for c in out["changes"]))
    else:
        out["detail"] = f"one server took every acknowledged write ({order[0]})"
    return out


def failover_window(events: list[dict], srv: dict, t_fault: float | None) -> dict | None:
    """The failover against the window its HA manager's settings promise, when a fault declares one
    (`expected_failover_window_s` in its record: harness/faults/ha.py): `failover_s` from the fault
    to the first write a newer server acknowledged (None: no newer server took a write), and
    whether it fell within. None when no fault declares a window."""
    window = next((e["detail"]["expected_failover_window_s"] for e in events
                   if e["kind"] == "fault" and e.get("phase") == "end" and isinstance(e.get("detail"), dict)
                   and e["detail"].get("expected_failover_window_s")), None)
    if window is None or t_fault is None:
        return None
    low, high = float(window[0]), float(window[1])
    after = [c for c in srv.get("changes") or [] if c["first_new_ack_t"] > t_fault]
    failover = _r(after[0]["first_new_ack_t"] - t_fault) if after else None
    return {"expected_s": [low, high], "failover_s": failover,
            "within": failover is not None and low <= failover <= high}


def _at(server: Any) -> float | None:
    """The server's clock as it executed the write (svgai/db.py SERVER_COLUMNS), when it said."""
    at = server.get("at") if isinstance(server, dict) else None
    return float(at) if isinstance(at, (int, float)) and not isinstance(at, bool) else None


def _r(x: float) -> float:
    return round(float(x), 6)
