"""Ledger shards from load workers on other clocks: the RTO and RPO widened by how little those
clocks are known to agree. Pure, like every checker. (The shards are merged onto the run's
timeline as they are read: harness/records/shards.py.)

With distributed load (harness/recorders/distributed.py) every worker keeps its own ledger shard,
timed by its host's wall clock; merging them leaves one `ledger_shards` marker saying how well the
clocks are known (uncertainty_s: the largest; None when a shard has no clock estimate) and which
keys more than one writer used.

    ledger_clock(events)           that marker, or None (single-process load: one clock)
    widen(avail, lost, clock)      availability/loss results judged at the far end of the clocks'
                                   disagreement: RTO + u, RPO + u (both larger: conservative)
"""
from __future__ import annotations

__all__ = ["ledger_clock", "widen", "MARKER"]

MARKER = "ledger_shards"  # the marker harness.records.shards.merge_shards leaves (a test keeps them equal)


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

def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)
