"""The rows that existed before the fault: users' data is not only the run's writes. Pure.

Just before the fault the control fingerprints the whole table (probes/fingerprint.py: every row,
any writer, any age); after recovery it compares the table with it (`fingerprint` events, phase
"before" then "after"). Every row committed before the recovery point must still be there and
unchanged:
  changed   a row present but not what it was: harm, whatever the recovery point
  lost      a row gone: harm when it was created before the recovery point (the run's own
            acknowledged writes and the heartbeat say how far back the recovery rewound, see
            loss.py); a row created after it went with the rewind the RPO criterion judges

    existing_rows(events, recovery_point_t)   the criterion's evidence: {known, error, rows_before,
                                              lost, lost_before_recovery_point, lost_after, changed,
                                              samples}
"""
from __future__ import annotations

from bisect import bisect_left
from typing import Any

__all__ = ["existing_rows", "CREATED_MARGIN_S"]

# created_at is when the row's transaction began, not when it committed: a row begun just before
# the recovery point may have committed after it and gone with the rewind legitimately.
CREATED_MARGIN_S = 1.0


def existing_rows(events: list[dict], recovery_point_t: float | None) -> dict:
    """Judge the fingerprint events against the recovery point (on the run's clock; None: the
    run's loss is unknown, so every row that existed must have survived)."""
    before = _last(events, "before")
    after = _last(events, "after")
    out: dict[str, Any] = {"known": False, "error": None, "rows_before": None, "rows_now": None, "lost": None,
                           "lost_before_recovery_point": None, "lost_after_recovery_point": None,
                           "lost_at_least": False, "changed": None, "lost_sample": [], "changed_sample": []}
    # Each missing or failed piece of evidence, in the order it would have been gathered.
    for event, failed, missing in ((before, "the fingerprint before the fault failed",
                                    "the table was never fingerprinted before the fault: harm to existing rows would go unseen"),
                                   (after, "the table could not be compared after recovery",
                                    "the rows that existed before the fault were never compared after recovery")):
        if event is None or event.get("ok") is False:
            out["error"] = missing if event is None else f"{failed}: {event.get('error')}"
            return out
    lost, changed = int(after.get("lost") or 0), int(after.get("changed") or 0)
    created = [_run_t(before, c) for c in after.get("lost_created_epoch") or []]
    cut = None if recovery_point_t is None else recovery_point_t - CREATED_MARGIN_S
    if cut is None:
        early = lost
    else:
        early = bisect_left(created, cut)  # created oldest first
        if not after.get("lost_created_complete", True) and early == len(created):
            out["lost_at_least"] = True  # every row listed is early; the unlisted ones may be too
    out.update(known=True, rows_before=before.get("rows"), rows_now=after.get("rows_now"), lost=lost,
               lost_before_recovery_point=early, lost_after_recovery_point=lost - early, changed=changed,
               lost_sample=list(after.get("lost_sample") or []), changed_sample=list(after.get("changed_sample") or []),
               recovery_point_t=recovery_point_t)
    return out


def _last(events: list[dict], phase: str) -> dict | None:
    found = [e for e in events if e["kind"] == "fingerprint" and e.get("phase") == phase]
    return found[-1] if found else None


def _run_t(before: dict, epoch: float) -> float:
    """An epoch on the run's clock, through the fingerprint's own (taken_epoch, taken_t) pair."""
    anchor_t = before.get("taken_t", before["t"])
    return float(anchor_t) - (float(before.get("taken_epoch") or 0.0) - float(epoch))
