"""The BCP's notification templates ("Critical Incident", "Recovery Complete") filled from a
run's verdict, and a Slack-compatible webhook post that can never fail an experiment.

The texts follow BCP.md's Communication Plan line for line (its emoji, garbled there as
"ðŸš¨" / "âœ…", are the real 🚨 / ✅ here). A run that never recovered gets an honest variant of
the recovery message ("❌ NOT RESTORED") instead of a false "RESOLVED". The critical message
carries one extra line saying it is an exercise, so a post into a real channel is not mistaken
for a real outage.
"""
from __future__ import annotations

import base64
import json
import socket
import threading
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from harness.core.redact import redact, secrets_of
from harness.report.page import fmt_s, is_number

__all__ = ["render_messages", "post_webhook"]

CONTACT = "ops-team@company.com"
UPDATES = "Every 15 minutes"


def render_messages(verdict: dict, target: str | None = None, fault_name: str | None = None) -> dict:
    """The two BCP messages for this run: {"critical": str, "resolved": str}.

    target: the system's name (default: the verdict's `target`, else "SVG AI game-day target").
    fault_name: the injected fault (default: the verdict's `fault`/`faults`, else the experiment).
    """
    verdict = verdict if isinstance(verdict, dict) else {}
    m = verdict.get("measured") if isinstance(verdict.get("measured"), dict) else {}
    o = verdict.get("objectives") if isinstance(verdict.get("objectives"), dict) else {}
    scenario = str(verdict.get("scenario") or "unknown scenario")
    target = target or _name(verdict.get("target")) or "SVG AI game-day target"
    fault = fault_name or _fault_name(verdict) or str(verdict.get("experiment") or "fault not recorded")

    downtime, rto = m.get("downtime_s"), m.get("rto_s")
    fault_injected = is_number(m.get("fault_start_t")) or is_number(rto)
    if (is_number(downtime) and downtime > 0) or (fault_injected and rto is None):
        impact = "Service unavailable"
    elif fault_injected:
        impact = "Degraded: no downtime"
    else:
        impact = "None: no fault was injected"
    lost = m.get("lost_writes")
    if is_number(lost) and lost > 0:
        impact += f"; {int(lost)} acknowledged write{'s' if lost != 1 else ''} lost"
    elif fault_injected and lost is None and (m.get("acked_writes") or 0) > 0:
        impact += "; data loss unknown"
    rto_objective = o.get("rto_s")
    eta = "Investigating" + (f" (RTO objective {fmt_s(rto_objective)})" if is_number(rto_objective) else "")

    critical = "\n".join([
        "🚨 CRITICAL: SVG AI System Incident",
        f"System: {target}",
        f"Impact: {impact}",
        f"ETA: {eta}",
        f"Updates: {UPDATES}",
        f"Contact: {CONTACT}",
        f"Exercise: game day {scenario}, run {verdict.get('run_id') or 'unknown'} (not a real incident)",
    ])
    root_cause = f"Root Cause: Game day: {scenario} ({fault})"
    if is_number(rto):
        resolved = "\n".join([
            "✅ RESOLVED: SVG AI System Restored",
            f"Duration: {rto / 60:.1f} minutes ({fmt_s(rto)})",
            root_cause,
            "Next Steps: Post-incident review scheduled",
        ])
    elif fault_injected:
        timeout = o.get("timeout_s")
        beyond = f"more than {timeout / 60:.1f} minutes" if is_number(timeout) else "unknown"
        resolved = "\n".join([
            "❌ NOT RESTORED: SVG AI System still unavailable",
            f"Duration: {beyond} (not stable again before the game day's timeout)",
            root_cause,
            "Next Steps: Manual recovery required; post-incident review scheduled",
        ])
    else:
        reason = str(verdict.get("reason") or "the run stopped before the fault")
        resolved = "\n".join([
            "✅ RESOLVED: SVG AI System Restored",
            f"Duration: none (no fault was injected: {reason})",
            root_cause,
            "Next Steps: Post-incident review scheduled",
        ])
    return {"critical": critical, "resolved": resolved}


def post_webhook(url: str, text: str, timeout_s: float = 2.0) -> tuple[bool, str]:
    """POST {"text": text} to a Slack-compatible incoming webhook, once, within timeout_s.

    Returns (ok, detail) and never raises: a notification that fails must never fail the
    experiment that sent it. No retries, so a game day is never held up by a dead endpoint.
    """
    secrets = secrets_of(None, url if isinstance(url, str) else None)
    try:
        if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
            return False, redact(f"not an http(s) URL: {url!r}", secrets)
        timeout_s = float(timeout_s)
        body = json.dumps({"text": str(text)}).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "svgai-gameday"}
        # Credentials in the URL (https://user:token@host/...) go into an Authorization header:
        # urllib would otherwise take "user:token@host" for the host name.
        parts = urlsplit(url)
        if parts.username is not None:
            creds = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(creds).decode()
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    except Exception as e:  # bad arguments are reported, like every other failure
        return False, redact(f"cannot build the request: {e}", secrets)

    result: list[tuple[bool, str]] = []

    def attempt() -> None:
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                status = resp.status
                reply = resp.read(200).decode("utf-8", "replace").strip()
            ok = 200 <= status < 300
            result.append((ok, f"HTTP {status}" + (f": {reply}" if reply and not ok else "")))
        except urllib.error.HTTPError as e:
            reply = ""
            try:
                reply = e.read(200).decode("utf-8", "replace").strip()
            except Exception:
                pass
            result.append((False, f"HTTP {e.code}" + (f": {reply}" if reply else "")))
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                result.append((False, f"timed out after {timeout_s:g} s"))
            elif isinstance(reason, ConnectionRefusedError):
                result.append((False, "connection refused"))
            else:
                result.append((False, f"cannot reach {url}: {reason}"))
        except (socket.timeout, TimeoutError):
            result.append((False, f"timed out after {timeout_s:g} s"))
        except Exception as e:  # anything else: reported, never raised
            result.append((False, f"{type(e).__name__}: {e}"))

    # The socket timeout bounds each read, not the whole exchange (a receiver trickling bytes
    # could stretch it), so the attempt runs in a daemon thread and we stop waiting at the deadline.
    worker = threading.Thread(target=attempt, name="webhook-post", daemon=True)
    worker.start()
    worker.join(timeout_s + 0.05)
    if not result:
        return False, f"timed out after {timeout_s:g} s"
    ok, detail = result[0]
    return ok, redact(detail, secrets)


# Internals ------------------------------------------------------------------------------------

def _name(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, dict):
        for key in ("name", "title", "id"):
            if isinstance(value.get(key), str) and value[key].strip():
                return value[key].strip()
    return None


def _fault_name(verdict: dict) -> str | None:
    for key in ("fault", "fault_name"):
        name = _name(verdict.get(key))
        if name:
            return name
    m = verdict.get("measured") if isinstance(verdict.get("measured"), dict) else {}
    if _name(m.get("fault_name")):
        return _name(m.get("fault_name"))
    faults = verdict.get("faults")
    if isinstance(faults, list):
        names = [n for n in (_name(f) for f in faults) if n]
        if names:
            return ", ".join(dict.fromkeys(names))
    return None
