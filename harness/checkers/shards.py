"""Ledger shards from load workers on other clocks: merged onto the run's timeline, and the RTO and
RPO widened by how little those clocks are known to agree. Pure, like every checker.

With distributed load (harness/recorders/distributed.py) every worker keeps its own ledger shard,
timed by its host's wall clock, with estimates of that clock's offset from the master's (an
NTP-style round trip: offset = master time - midpoint of the round trip, uncertainty = half the
round trip). The master's shard header ties its wall clock to the run's `t` (anchor). A shard is
a list of records:

  {"kind": "shard", "worker", "host", "anchor_t", "anchor_wall_s", "key_prefix"?}   once, first
  {"kind": "clock", "worker", "offset_s", "uncertainty_s", "rtt_s", "wall_s"}         one or more
  {"kind": "op", "type", "f", "key", "wall_s", "digest"?, "error"?}                   the writes

    merge_shards(events, shards)   the history's events plus every shard's ops on the run's clock,
                                   with one `ledger_shards` marker saying how well the clocks are
                                   known (uncertainty_s: the largest; None when a shard has no
                                   clock estimate) and which keys more than one writer used
    ledger_clock(events)           that marker, or None (single-process load: one clock)
    widen(avail, lost, clock)      availability/loss results judged at the far end of the clocks'
                                   disagreement: RTO + u, RPO + u (both larger: conservative)
"""
from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["merge_shards", "ledger_clock", "widen", "shard_clock"]

MARKER = "ledger_shards"


def shard_clock(records: list[dict]) -> tuple[float | None, float | None]:
    """(offset_s, uncertainty_s) of one shard: the offset of its sharpest estimate, and an
    uncertainty that covers every estimate (each one's own half round trip plus how far it lies
    from the chosen offset, so a clock that drifted during the run widens it). (None, None) when
    the shard carries no estimate."""
    clocks = [r for r in records if r.get("kind") == "clock" and _num(r.get("offset_s")) and _num(r.get("uncertainty_s"))]
    if not clocks:
        return None, None
    best = min(clocks, key=lambda r: r["uncertainty_s"])
    offset = float(best["offset_s"])
    uncertainty = max(float(r["uncertainty_s"]) + abs(float(r["offset_s"]) - offset) for r in clocks)
    return offset, uncertainty


def merge_shards(events: list[dict], shards: list[list[dict]]) -> list[dict]:
    """The run's events with every shard's write operations placed on the run's clock:
    t = worker wall + offset (→ master wall) - anchor wall + anchor t. Returns a new list ordered
    by t; without shards, the events unchanged. A shard without a clock estimate is still merged
    (offset 0) but makes the uncertainty unknown; a key used by more than one writer (two workers,
    or a worker and the history's own load) is listed as a collision: outcomes of such keys cannot
    be told apart."""
    if not shards:
        return list(events)
    writers_of: dict[Any, set] = {}
    for e in events:
        if e["kind"] == "op" and e.get("type") == "invoke":
            writers_of.setdefault(e["key"], set()).add(None)  # None: the history's own writer
    merged = list(events)
    workers: dict[str, dict] = {}
    problems: list[str] = []
    ids = Counter()
    for n, records in enumerate(shards):
        header = next((r for r in records if r.get("kind") == "shard"), None)
        worker = str(header.get("worker")) if header and header.get("worker") is not None else f"shard-{n}"
        ids[worker] += 1
        if header is None or not (_num(header.get("anchor_t")) and _num(header.get("anchor_wall_s"))):
            problems.append(f"ledger shard of {worker} has no anchor to the run's clock")
            anchor_t, anchor_wall = 0.0, 0.0
        else:
            anchor_t, anchor_wall = float(header["anchor_t"]), float(header["anchor_wall_s"])
        offset, uncertainty = shard_clock(records)
        if offset is None:
            problems.append(f"worker {worker} recorded no clock offset estimate")
        unreadable = [r.get("line") for r in records if r.get("kind") == "unreadable"]
        if unreadable:  # an acknowledgement may be among them: the loss cannot be known
            problems.append(f"ledger shard of {worker} has {len(unreadable)} unreadable line(s) (first: line {unreadable[0]})")
        ops = 0
        for r in records:
            if r.get("kind") != "op" or not _num(r.get("wall_s")):
                continue
            t = float(r["wall_s"]) + (offset or 0.0) - anchor_wall + anchor_t
            op = {k: v for k, v in r.items() if k not in ("wall_s", "kind")}
            merged.append({"kind": "op", "t": round(t, 6), **op, "worker": worker, "worker_wall_s": r["wall_s"]})
            if r.get("type") == "invoke":
                writers_of.setdefault(r["key"], set()).add(worker)
            ops += 1
        workers[worker] = {"offset_s": offset, "uncertainty_s": uncertainty, "ops": ops,
                           "host": header.get("host") if header else None}
    problems += [f"worker id {w} used by {k} shards" for w, k in ids.items() if k > 1]
    collisions = sorted(str(k) for k, who in writers_of.items() if len(who) > 1)
    if collisions:
        problems.append(f"{len(collisions)} keys written by more than one writer (e.g. {collisions[0]})")
    known = [w["uncertainty_s"] for w in workers.values()]
    uncertainty = None if any(u is None for u in known) else max(known, default=0.0)
    # One line per worker: the marker is also drawn on the report's timeline.
    merged.append({"kind": "marker", "name": MARKER, "t": min((e["t"] for e in merged), default=0.0),
                   "workers": [_describe(w, c) for w, c in workers.items()], "uncertainty_s": _r(uncertainty),
                   "collision_count": len(collisions), "error": "; ".join(problems) or None,
                   **({"collisions": collisions[:50]} if collisions else {})})
    merged.sort(key=lambda e: e["t"])
    return merged


def ledger_clock(events: list[dict]) -> dict | None:
    """The `ledger_shards` marker merge_shards left, or None (one clock: nothing to widen)."""
    return next((e for e in events if e["kind"] == "marker" and e.get("name") == MARKER), None)


def widen(avail: dict, lost: dict, clock: dict | None) -> tuple[dict, dict]:
    """Availability and loss results (checkers.availability / checkers.loss) judged at the far
    end of the clocks' disagreement. The write times of a shard are known only within its
    uncertainty u relative to the fault start, so:
      RPO  max(0, raw + u) when an acknowledged write was lost (none lost: 0, whatever the clocks);
           the upper end of the recovery point's range + u as well; the span lost after the
           fault + 2u (its two ends may be on two clocks)
      RTO  + u when there was an outage. The sampler runs on the master's clock, so this is
           headroom rather than a correction: a verdict built on evidence from several clocks is
           judged where it is worst, so a PASS holds wherever the true alignment lies.
    A shard without a clock estimate, or keys used by more than one writer, make the loss
    unknown (the RPO criterion then fails): such a ledger cannot be judged. Returns new dicts
    carrying clock_uncertainty_s and the unwidened figures (rto_unwidened_s, rpo_unwidened_s)."""
    if clock is None:
        return avail, lost
    u = clock.get("uncertainty_s")
    avail, lost = dict(avail), dict(lost)
    avail["clock_uncertainty_s"] = lost["clock_uncertainty_s"] = u
    if clock.get("error"):
        lost.update(known=False, error=f"the load's ledger shards cannot be judged: {clock['error']}",
                    rpo_s=None, rpo_upper_s=None)
        return avail, lost
    u = float(u or 0.0)
    # Said in the verdict's flags (availability warnings become flags), with the raw figures kept.
    avail["warnings"] = [*avail.get("warnings", []), f"load from {len(clock.get('workers') or {})} workers: RTO and "
                         f"RPO widened by their clocks' uncertainty of {u:.3f} s"]
    if avail.get("rto_s") is not None and (avail["rto_s"] > 0 or avail.get("error_count")):
        avail["rto_unwidened_s"] = avail["rto_s"]
        avail["rto_s"] = _r(avail["rto_s"] + u)
    if lost.get("known") and lost.get("lost_writes") and lost.get("rpo_raw_s") is not None:
        lost["rpo_unwidened_s"] = lost["rpo_s"]
        lost["rpo_s"] = _r(max(0.0, lost["rpo_raw_s"] + u))
        if lost.get("rpo_upper_s") is not None:
            lost["rpo_upper_s"] = _r(lost["rpo_upper_s"] + u)
        if lost.get("lost_after_fault"):  # its two ends may be on two clocks
            lost["loss_after_fault_s"] = _r(lost["loss_after_fault_s"] + 2 * u)
    return avail, lost


# Internals ---------------------------------------------------------------------------------

def _describe(worker: str, c: dict) -> str:
    if c["offset_s"] is None:
        return f"{worker}: no clock estimate, {c['ops']} ops"
    return (f"{worker}@{c['host'] or '?'}: offset {1000 * c['offset_s']:+.3f} ms ± {1000 * c['uncertainty_s']:.3f} ms, "
            f"{c['ops']} ops")


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)
