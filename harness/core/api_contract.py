"""The SVG AI API as every client of the harness calls it (sampler, load, probes): paths, the
optimize request body, what an answer must hold, and the digest of a stored row. One definition,
so the critical path the sampler measures is the one the probes and the load exercise, and the
row the load acknowledged is compared with the row the final read finds the same way.
The bottom layer: imports nothing of ours.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["OPTIMIZE_PATH", "HISTORY_PATH", "READY_PATH", "HEALTH_PATH", "SAMPLE_FEATURES", "optimize_body",
           "stored_digest", "answer_digest", "answer_server", "ROW_SQL", "SESSION_OPTIONS", "optimize_answer_ok"]

OPTIMIZE_PATH = "/api/v1/optimization/optimize"
HISTORY_PATH = "/api/v1/optimization/history"  # + "/{request_id}"
READY_PATH = "/ready"
HEALTH_PATH = "/health"

# Image features of an ordinary logo: every model input in range, a stable answer.
SAMPLE_FEATURES = {"edge_density": 0.2, "unique_colors": 12, "entropy": 3.1, "corner_density": 0.05,
                   "gradient_strength": 0.3, "complexity_score": 0.4}


def optimize_body(request_id: str, features: dict | None = None, target_quality: float = 0.9) -> dict:
    """The JSON body of POST OPTIMIZE_PATH, keyed by the client's request id."""
    return {"request_id": request_id, "features": dict(features or SAMPLE_FEATURES), "target_quality": target_quality}


def optimize_answer_ok(body: Any) -> bool:
    """An optimize answer that did the work: parameters, and a predicted SSIM strictly between 0
    and 1 (a null or a default would be a service up in name only)."""
    if not isinstance(body, dict) or not isinstance(body.get("parameters"), dict):
        return False
    ssim = body.get("predicted_ssim")
    return isinstance(ssim, (int, float)) and not isinstance(ssim, bool) and 0 < ssim < 1


# What an optimize write stored: the API answers with the whole row as PostgreSQL renders it
# (`stored`: to_jsonb of every column, timestamps in UTC), and the final read renders the rows the
# same way from the table itself. Equal digests mean the row still holds, in every column, what
# was acknowledged; a column added to the table later is covered without anyone listing it.
ROW_SQL = "to_jsonb({alias})"  # the rendering of a whole row, for a table alias, with TimeZone=UTC
SESSION_OPTIONS = "-c TimeZone=UTC"


def stored_digest(row: dict[str, Any]) -> str:
    """A short digest of a whole stored row (a dict of every column, as to_jsonb renders it)."""
    canonical = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def answer_digest(answer: Any) -> str | None:
    """The digest of what an optimize (or history) answer says was stored; None when the answer
    does not carry the whole row (content cannot be compared, which the verdict says)."""
    stored = answer.get("stored") if isinstance(answer, dict) else None
    return stored_digest(stored) if isinstance(stored, dict) and stored else None


def answer_server(answer: Any) -> dict | None:
    """Which server took a write: {system_id, timeline, port[, at]}, as the answer says (`at`: the
    server's clock as it executed the write); None if it does not say."""
    server = answer.get("server") if isinstance(answer, dict) else None
    if not isinstance(server, dict) or not isinstance(server.get("system_id"), str):
        return None
    at = server.get("at")
    return {"system_id": server["system_id"], "timeline": server.get("timeline"), "port": server.get("port"),
            **({"at": float(at)} if isinstance(at, (int, float)) and not isinstance(at, bool) else {})}
