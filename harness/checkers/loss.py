"""Lost writes and RPO: Jepsen's set checker over the load generator's write operations.

A pure function of the history (see harness/history.py): no I/O, no clock.

Every write carries a unique key. Its outcome is `ok` (took effect), `fail` (did not) or `info`
(unknown: a timeout, a connection lost during commit); an invocation with no completion at all is
unknown too. After recovery the control reads every key back (`final_read`). Then:
  lost        acknowledged keys absent from the read: data the BCP promised and did not keep
  unexpected  keys in the read that were never attempted
  recovered   keys whose outcome was fail or unknown, found after all (not an error: evidence)
  duplicates  keys the read returned more than once
Without a successful final read the loss is UNKNOWN, never assumed to be zero.

RPO: 0 when nothing acknowledged was lost; otherwise fault start minus the earliest
acknowledgement among lost writes: how far before the fault the loss reaches.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from .availability import fault_window

__all__ = ["loss"]


def loss(events: list[dict]) -> dict:
    """Judge write operations against the last final read. Returns counts, sorted key lists,
    rpo_s (clamped to >= 0), rpo_raw_s, loss_window and `known` (False: no usable final read)."""
    t_fault, _ = fault_window(events)
    attempted: set = set()
    acked: dict[Any, float] = {}      # key -> time of its (first) acknowledgement
    failed: set = set()
    info: set = set()
    final = None
    for e in events:
        kind = e["kind"]
        if kind == "op":
            if e.get("f") != "write":
                continue
            key, typ = e["key"], e["type"]
            attempted.add(key)
            if typ == "ok":
                if key not in acked:
                    acked[key] = e["t"]
            elif typ == "fail":
                failed.add(key)
            elif typ == "info":
                info.add(key)
        elif kind == "final_read":
            final = e

    # Outcome per key: ok wins; otherwise unknown (info, or no completion) beats fail.
    completed = acked.keys() | failed | info
    in_doubt = (info | (attempted - completed)) - acked.keys()
    failed_only = failed - acked.keys() - in_doubt

    result: dict[str, Any] = {
        "known": False, "error": None,
        "attempted_writes": len(attempted), "acked_writes": len(acked),
        "failed_writes": len(failed_only), "in_doubt_writes": len(in_doubt),
        "lost_writes": None, "unexpected_writes": None, "recovered_writes": None, "duplicate_writes": None,
        "lost_keys": [], "unexpected_keys": [], "recovered_keys": [], "duplicate_keys": [],
        "read_keys": None, "rpo_s": None, "rpo_raw_s": None, "loss_window": None,
        "fault_start_t": t_fault, "final_read_t": None,
    }
    if final is None:
        result["error"] = "no final read"
        return result
    result["final_read_t"] = final["t"]
    if final.get("ok") is False:
        result["error"] = f"final read failed: {final.get('error') or 'no error given'}"
        return result
    keys = final.get("keys")
    if not isinstance(keys, list):
        result["error"] = f"final read has no key list (got {type(keys).__name__})"
        return result

    read = set(keys)
    counts = Counter(keys) if len(read) != len(keys) else {}
    lost = [k for k in acked if k not in read]
    unexpected = read - attempted
    recovered = (in_doubt | failed_only) & read
    duplicates = [k for k, n in counts.items() if n > 1]

    result.update(
        known=True, read_keys=len(read),
        lost_writes=len(lost), unexpected_writes=len(unexpected),
        recovered_writes=len(recovered), duplicate_writes=len(duplicates),
        lost_keys=_sorted(lost), unexpected_keys=_sorted(unexpected),
        recovered_keys=_sorted(recovered), duplicate_keys=_sorted(duplicates),
    )
    if not lost:
        result.update(rpo_s=0.0, rpo_raw_s=0.0)
        return result
    ack_times = [acked[k] for k in lost]
    earliest, latest = min(ack_times), max(ack_times)
    if t_fault is None:
        result["loss_window"] = {"earliest_t": None, "latest_t": None,
                                 "earliest_ack_t": _r(earliest), "latest_ack_t": _r(latest)}
        return result  # no fault to measure from: RPO stays unknown
    raw = t_fault - earliest
    result.update(
        rpo_raw_s=_r(raw), rpo_s=_r(max(0.0, raw)),
        # Relative to the fault start: negative = acknowledged before the fault.
        loss_window={"earliest_t": _r(earliest - t_fault), "latest_t": _r(latest - t_fault),
                     "earliest_ack_t": _r(earliest), "latest_ack_t": _r(latest)},
    )
    return result


# Internals ---------------------------------------------------------------------------------

def _r(x: float) -> float:
    return round(float(x), 6)


def _sorted(keys: Iterable) -> list:
    keys = list(keys)
    try:
        return sorted(keys)
    except TypeError:  # mixed key types (e.g. str and int): order by type, then value
        return sorted(keys, key=lambda k: (type(k).__name__, str(k)))
