"""After the rollbacks: did undoing the fault leave the system as the run found it? Pure.

The method's measurements end at the final read; the rollbacks run after it (and the runner's
safety net after them). Damage a rollback does, or that shows only after the final read, would
otherwise be judged by nobody (or quietly set aside by the next run's baseline). So the control
checks again once every rollback ran (one `after_rollbacks` event):
  steady_state   the experiment's own hypothesis holds again
  digests        every row of the final read, read again: none gone, none changed
  fingerprint    the table compared with its state right after recovery: none lost, none changed
and every rollback step must have succeeded (checkers/steps.py).

    after_rollbacks(events, failed_rollback_steps)   {checked, problems: [sentences], ...evidence}
"""
from __future__ import annotations

from typing import Any

__all__ = ["after_rollbacks"]

SAMPLE = 5


def after_rollbacks(events: list[dict], failed_rollback_steps: list[dict] = ()) -> dict:
    checked = [e for e in events if e["kind"] == "after_rollbacks"]
    problems: list[str] = []
    out: dict[str, Any] = {"checked": bool(checked), "problems": problems, "lost_by_rollbacks": 0,
                           "changed_by_rollbacks": 0}
    for s in failed_rollback_steps:
        problems.append(f"rollback step {s['name']} failed" + (f" ({_short(s.get('detail'))})" if s.get("detail") else ""))
    if not checked:
        problems.append("the system was never checked after the rollbacks")
        return out
    e = checked[-1]
    steady = e.get("steady_state") or {}
    if steady.get("met") is not True:
        problems.append(f"the steady-state hypothesis does not hold after the rollbacks ({_short(steady.get('detail'))})")
    reread = e.get("read") or {}
    first = next((x for x in reversed(events) if x["kind"] == "final_read"), None)
    if reread.get("ok") is False:
        problems.append(f"the rows could not be read again after the rollbacks: {_short(reread.get('error'))}")
    elif first is not None and isinstance(first.get("digests"), dict) and isinstance(reread.get("digests"), dict):
        now = reread["digests"]
        gone = sorted(k for k in first["digests"] if k not in now)
        changed = sorted(k for k, d in first["digests"].items() if k in now and now[k] != d)
        out.update(lost_by_rollbacks=len(gone), changed_by_rollbacks=len(changed))
        if gone:
            problems.append(f"{len(gone)} rows present at the final read are gone after the rollbacks "
                            f"(e.g. {', '.join(map(str, gone[:SAMPLE]))})")
        if changed:
            problems.append(f"{len(changed)} rows read at the final read changed after the rollbacks "
                            f"(e.g. {', '.join(map(str, changed[:SAMPLE]))})")
    fp = e.get("fingerprint") or {}
    if fp.get("ok") is False:
        problems.append(f"the table could not be compared after the rollbacks: {_short(fp.get('error'))}")
    elif fp:
        if fp.get("lost"):
            problems.append(f"{fp['lost']} rows of the table as it was after recovery are gone after the rollbacks "
                            f"(e.g. {', '.join(map(str, (fp.get('lost_sample') or [])[:SAMPLE]))})")
        if fp.get("changed"):
            problems.append(f"{fp['changed']} rows of the table changed after the rollbacks "
                            f"(e.g. {', '.join(map(str, (fp.get('changed_sample') or [])[:SAMPLE]))})")
        out["table_lost_by_rollbacks"] = fp.get("lost")
        out["table_changed_by_rollbacks"] = fp.get("changed")
    return out


def _short(value: Any, limit: int = 160) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
