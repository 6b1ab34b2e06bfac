"""Lost writes and RPO: Jepsen's set checker over the load generator's write operations.

A pure function of the history (see harness/records/history.py): no I/O, no clock.

Every write carries a unique key. Its outcome is `ok` (took effect), `fail` (did not) or `info`
(unknown: a timeout, a connection lost during commit); an invocation with no completion at all is
unknown too. After recovery the control reads every key back (`final_read`). Then:
  lost        acknowledged keys absent from the read: data the BCP promised and did not keep
  unexpected  keys in the read that were never attempted
  recovered   keys whose outcome was fail or unknown, found after all (not an error: evidence)
  duplicates  keys the read returned more than once
  corrupted   acknowledged keys present but not holding what was acknowledged (the write's `digest`
              differs from the digest of the row read back): changed, not lost
Without a successful final read the loss is UNKNOWN, never assumed to be zero; so it is when
more than one database server accepted writes as the read was taken (a split brain: the read shows
one side only).

The acknowledged writes that count are the run's own AND the heartbeat ledger's (a `heartbeat`
event: one keyed write a second, acknowledged long before the run), so that a restore to an old
backup shows its true age.

RPO: the recovery point R is the newest instant at or before the fault start up to which every
acknowledged write survived; RPO = fault start - R: 0 when nothing acknowledged before the fault
was lost, else fault start minus the earliest lost acknowledgement. When even the oldest
acknowledgement in the window is lost, the loss reaches further back than the ledger was read:
RPO is then only a lower bound (`rpo_at_least`). Otherwise the recovery point lies between the
earliest lost acknowledgement and the newest surviving one before it: `rpo_upper_s` is the RPO
at that end (the two are about one heartbeat apart when the ledger is dense). Without any acknowledgement before the fault the
recovery point cannot be measured at all (`rpo_unproven`). Writes acknowledged after the fault and
lost are counted, with the span of acknowledged time they cover (`loss_after_fault_s`), which the
RPO criterion adds: data lost after the fault started is data lost all the same. Heartbeat times
come from the wall clock: when it stepped during the run (`clock_step_s` of the heartbeat
evidence), the RPO is widened by the step whenever a heartbeat was lost.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Iterable

from .availability import fault_window

__all__ = ["loss", "witnesses", "witness_window_s", "largest_gap", "CLOCK_STEP_S", "WITNESS_GAP_S"]

CLOCK_STEP_S = 0.05  # a smaller wall-clock drift over a run is within the sampler's own resolution
# Enough witnesses for a recovery point: over the last rpo_s / 10 before the fault (at most 10 s,
# at least 4 s), no stretch of more than 2 s without an acknowledged write (the heartbeat alone
# gives one a second; 2 s leaves it room for scheduling jitter). A rewind whose cut falls in a
# silent stretch just before the fault could not be dated: the run would read "RPO 0". Further
# back, dating is what the heartbeat's rpo_upper_s bounds conservatively, and every committed row
# a rewind takes is seen by the table's fingerprint (existing.py) whatever the witnesses.
WITNESS_GAP_S = 2.0
WITNESS_WINDOW_FRACTION = 0.1
WITNESS_WINDOW_MAX_S = 10.0


def witness_window_s(rpo_s: float, max_gap_s: float = WITNESS_GAP_S) -> float:
    """The window before the fault that must be witnessed densely (see above)."""
    return max(min(float(rpo_s) * WITNESS_WINDOW_FRACTION, WITNESS_WINDOW_MAX_S), 2 * max_gap_s)


def loss(events: list[dict]) -> dict:
    """Judge write operations against the last final read. Returns counts, sorted key lists,
    rpo_s (clamped to >= 0), rpo_raw_s, loss_window and `known` (False: no usable final read)."""
    t_fault, _ = fault_window(events)
    attempted: set = set()
    acked: dict[Any, float] = {}      # key -> time of its (first) acknowledgement
    failed: set = set()
    info: set = set()
    final = None
    heartbeats: dict[Any, float] = {}  # heartbeat key -> time of its acknowledgement
    digest: dict[Any, str] = {}        # acknowledged key -> digest of what it stored
    heartbeat_error = None
    set_aside = 0
    clock_step = 0.0
    for e in events:
        kind = e["kind"]
        if kind == "heartbeat":
            set_aside += int(e.get("set_aside") or 0)
            step = e.get("clock_step_s")
            if isinstance(step, (int, float)) and not isinstance(step, bool) and math.isfinite(step):
                clock_step = max(clock_step, abs(float(step)))
            if e.get("ok") is False:
                heartbeat_error = e.get("error") or "the heartbeat ledger could not be read"
            for entry in e.get("acked") or []:
                heartbeats.setdefault(entry[0], entry[1])
                if len(entry) > 2 and entry[2]:
                    digest.setdefault(entry[0], entry[2])
        elif kind == "op":
            if e.get("f") != "write":
                continue
            key, typ = e["key"], e["type"]
            attempted.add(key)
            if typ == "ok":
                if key not in acked:
                    acked[key] = e["t"]
                if e.get("digest"):
                    digest.setdefault(key, e["digest"])
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
        "corrupted_writes": None, "corrupted_keys": [], "content_checked": 0, "content_error": None,
        "content_unchecked": 0,
        "read_keys": None, "rpo_s": None, "rpo_raw_s": None, "loss_window": None,
        "rpo_at_least": False, "rpo_unproven": None, "rpo_upper_s": None,
        "lost_after_fault": 0, "loss_after_fault_s": 0.0, "heartbeat_clock_step_s": clock_step,
        "heartbeat_acked": len(heartbeats), "heartbeat_lost": None, "heartbeat_error": heartbeat_error,
        "heartbeat_set_aside": set_aside,
        "fault_start_t": t_fault, "final_read_t": None,
    }
    if final is None:
        result["error"] = "no final read"
        return result
    result["final_read_t"] = final["t"]
    if final.get("ok") is False:
        result["error"] = f"final read failed: {final.get('error') or 'no error given'}"
        return result
    servers = final.get("servers")
    writable = sorted(port for port, role in servers.items() if role == "primary") if isinstance(servers, dict) else []
    if len(writable) > 1:
        result["error"] = (f"{len(writable)} database servers accepted writes at the final read (ports "
                           f"{', '.join(writable)}): a split brain, so what clients will keep cannot be told")
        return result
    keys = final.get("keys")
    if not isinstance(keys, list):
        result["error"] = f"final read has no key list (got {type(keys).__name__})"
        return result

    read = set(keys)
    counts = Counter(keys) if len(read) != len(keys) else {}
    hb_lost = [k for k in heartbeats if k not in read]
    lost = [k for k in acked if k not in read] + hb_lost
    unexpected = read - attempted - heartbeats.keys()
    recovered = (in_doubt | failed_only) & read
    duplicates = [k for k, n in counts.items() if n > 1]
    ack_time = {**heartbeats, **acked}
    read_digests = final.get("digests")
    if isinstance(read_digests, dict):
        present = [k for k in ack_time if k in read and k in digest]
        corrupted = [k for k in present if read_digests.get(k) != digest[k]]
        result.update(corrupted_writes=len(corrupted), corrupted_keys=_sorted(corrupted), content_checked=len(present))
        # A 200 whose body broke (the API killed mid-answer) carries no digest: that write's
        # content cannot be compared, which is said, but it cannot make the others unverifiable.
        unchecked = sum(1 for k in ack_time if k in read and k not in digest)
        result["content_unchecked"] = unchecked
        if unchecked and not present:
            result["content_error"] = f"none of the {unchecked} acknowledged writes read back carries a digest"
    else:
        result["content_error"] = "the final read returned no digests: what the rows hold was not compared"
    before = [t for t in ack_time.values() if t_fault is not None and t <= t_fault]

    result.update(
        known=True, read_keys=len(read), heartbeat_lost=len(hb_lost),
        rpo_unproven=None if before or t_fault is None else "no write was acknowledged before the fault "
                                                            "(no heartbeat ledger reached back)",
        lost_writes=len(lost), unexpected_writes=len(unexpected),
        recovered_writes=len(recovered), duplicate_writes=len(duplicates),
        lost_keys=_sorted(lost), unexpected_keys=_sorted(unexpected),
        recovered_keys=_sorted(recovered), duplicate_keys=_sorted(duplicates),
    )
    if not lost:
        result.update(rpo_s=0.0, rpo_raw_s=0.0)
        return result
    ack_times = [ack_time[k] for k in lost]
    earliest, latest = min(ack_times), max(ack_times)
    if t_fault is None:
        result["loss_window"] = {"earliest_t": None, "latest_t": None,
                                 "earliest_ack_t": _r(earliest), "latest_ack_t": _r(latest)}
        return result  # no fault to measure from: RPO stays unknown
    raw = t_fault - earliest
    # The recovery point lies between the newest acknowledgement that survived before the earliest
    # lost one and that lost one: no write was acknowledged in between, so nothing can tell where.
    survived = [t for k, t in ack_time.items() if k in read and t < earliest]
    upper = t_fault - max(survived) if survived else None
    after, after_s = _loss_after(t_fault, ack_time, read)
    result.update(
        # Acknowledged after the fault started and lost all the same (a split brain, a restore that
        # discards what came after the incident): acknowledged data lost too, which the RPO, measured
        # back from the fault start, does not show. The criterion judges the two together.
        lost_after_fault=after, loss_after_fault_s=_r(after_s),
        rpo_raw_s=_r(raw), rpo_s=_r(max(0.0, raw)),
        rpo_upper_s=_r(max(0.0, upper)) if upper is not None else None,
        # The oldest acknowledgement read is lost too: the loss may reach further back than we read.
        rpo_at_least=bool(before) and earliest <= min(before),
        # Relative to the fault start: negative = acknowledged before the fault.
        loss_window={"earliest_t": _r(earliest - t_fault), "latest_t": _r(latest - t_fault),
                     "earliest_ack_t": _r(earliest), "latest_ack_t": _r(latest)},
    )
    if hb_lost and clock_step > CLOCK_STEP_S:  # a lost heartbeat's time is uncertain by the wall clock's step
        result["rpo_s"] = _r(result["rpo_s"] + clock_step)
        if result["rpo_upper_s"] is not None:
            result["rpo_upper_s"] = _r(result["rpo_upper_s"] + clock_step)
    return result


def witnesses(events: list[dict], rpo_s: float, max_gap_s: float = WITNESS_GAP_S) -> dict:
    """Whether the recovery point rests on enough acknowledged writes: over the witness window
    before the fault start (witness_window_s), the acknowledgements of the run's writes and of
    the heartbeat ledger leave no gap longer than `max_gap_s`, counting from the window's start
    and up to the fault. Returns {ok, window_s, count, largest_gap_s, gap_from_t, max_gap_s, detail}."""
    t_fault, _ = fault_window(events)
    window = witness_window_s(rpo_s, max_gap_s)
    out = {"ok": True, "window_s": round(window, 3), "max_gap_s": max_gap_s, "count": 0, "largest_gap_s": None,
           "gap_from_t": None, "detail": "no fault: nothing to witness"}
    if t_fault is None:
        return out
    acks = []
    for e in events:
        if e["kind"] == "op" and e.get("f") == "write" and e.get("type") == "ok":
            acks.append(e["t"])
        elif e["kind"] == "heartbeat":
            acks += [entry[1] for entry in e.get("acked") or [] if isinstance(entry[1], (int, float))]
    start = t_fault - window
    inside = sorted(t for t in acks if start <= t <= t_fault)
    gap, at = largest_gap(inside, start, t_fault)
    ok = gap <= max_gap_s
    out.update(ok=ok, count=len(inside), largest_gap_s=round(gap, 3), gap_from_t=round(at - t_fault, 3),
               detail=(f"{len(inside)} acknowledged writes in the {window:g} s before the fault, the largest gap "
                       f"{gap:.1f} s (at most {max_gap_s:g} s allowed)"
                       + ("" if ok else f", starting {t_fault - at:.1f} s before the fault")))
    return out


def largest_gap(times: list[float], start: float, end: float) -> tuple[float, float]:
    """(the longest stretch of [start, end] without one of `times` in it, where it begins): the
    window's own ends count as its edges. The control's wait for witnesses uses it too."""
    points = [start, *sorted(t for t in times if start <= t <= end), end]
    return max(((b - a, a) for a, b in zip(points, points[1:])), key=lambda g: g[0])


# Internals ---------------------------------------------------------------------------------

def _loss_after(t_fault: float, ack_time: dict, read: set) -> tuple[int, float]:
    """(lost writes acknowledged after the fault start, seconds of acknowledged time they span):
    from the newest surviving acknowledgement before the first of them (or the fault start) to the
    last of them. Writes that survived in between do not shorten it: lost and kept interleaved (two
    API replicas on two primaries) is still that long a span of acknowledged data partly gone, and
    a PASS must hold however the loss is spread."""
    after = [t for k, t in ack_time.items() if t > t_fault and k not in read]
    if not after:
        return 0, 0.0
    first = min(after)
    kept_before = [t for k, t in ack_time.items() if k in read and t_fault < t < first]
    return len(after), max(after) - max([t_fault, *kept_before])


def _r(x: float) -> float:
    return round(float(x), 6)


def _sorted(keys: Iterable) -> list:
    keys = list(keys)
    try:
        return sorted(keys)
    except TypeError:  # mixed key types (e.g. str and int): order by type, then value
        return sorted(keys, key=lambda k: (type(k).__name__, str(k)))
