"""The SVG AI API as every client of the harness calls it (sampler, load, probes): paths and the
optimize request body. One definition, so the critical path the sampler measures is the one the
probes and the load exercise. The bottom layer: imports nothing of ours.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["OPTIMIZE_PATH", "HISTORY_PATH", "READY_PATH", "HEALTH_PATH", "SAMPLE_FEATURES", "optimize_body",
           "stored_digest", "DIGEST_FIELDS", "optimize_answer_ok"]

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


# What an optimize write stores that a later reader can compare: the API answers with the stored
# row's values, and the final read selects the same columns.
DIGEST_FIELDS = ("parameters", "predicted_ssim", "model_version")


def stored_digest(row: dict[str, Any]) -> str:
    """A short digest of what one write stored (DIGEST_FIELDS of the API's answer or of the table
    row): equal digests mean the row still holds what was acknowledged."""
    canonical = json.dumps({k: row.get(k) for k in DIGEST_FIELDS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
