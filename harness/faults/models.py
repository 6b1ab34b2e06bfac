"""Model and configuration faults: a corrupted model artifact (BCP "Model Corruption") and a
configuration that drifted from its approved version (BCP "Configuration Recovery").

The API keeps serving from the models and configuration it has in memory, but its readiness
(/ready) fails as soon as the files on disk stop matching their checksums: the restore
(harness.recovery.artifacts.restore_model / restore_config) is the recovery, so these faults
register no undo; the negative controls restore in their rollbacks.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import requests

from chaoslib.exceptions import ActivityFailed

from harness.core.api_contract import READY_PATH
from harness.faults._common import effect, local_target

__all__ = ["corrupt_model", "drift_config"]

MANIFEST = "manifest.json"
MODES = ("bitflip", "truncate")


def corrupt_model(file: str | None = None, mode: str = "bitflip", nbytes: int = 16, await_detection_s: float = 10.0,
                  target: str | None = None) -> dict:
    """Corrupt one model artifact in place.

    `file`: a path relative to the model folder as listed in manifest.json (default: the torch
    quality predictor, the manifest's `.pt` file). `mode`: 'bitflip' inverts `nbytes` bytes in the
    middle of the file (the size stays the same, only the checksum can tell), 'truncate' cuts the
    file to half its size. Returns the file and its SHA-256 before and after; the manifest's
    checksum no longer matches, which is how the BCP says corrupted models are identified.

    Then it waits up to `await_detection_s` seconds (0: not at all) until the API's readiness
    reports the damage, so that a recovery that follows starts from a detected incident, as an
    on-call engineer's would; `detected_after_s` says how long that took (null: never seen)."""
    if mode not in MODES:
        raise ActivityFailed(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 1:
        raise ActivityFailed(f"nbytes must be a whole number of at least 1, got {nbytes!r}")
    t = local_target(target)
    model_dir = Path(t["model_dir"])
    files = _manifest_files(model_dir)
    if file is None:
        torch_files = sorted(f for f in files if f.endswith((".pt", ".pth")))
        if not torch_files:
            raise ActivityFailed(f"manifest in {model_dir} lists no torch model (.pt) file; name one with `file`")
        file = torch_files[0]
    if file not in files:
        raise ActivityFailed(f"file {file!r} is not a model artifact listed in {model_dir / MANIFEST} "
                             f"(listed: {', '.join(sorted(files))})")
    path = model_dir / file
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ActivityFailed(f"cannot read model file {path}: {e.strerror}") from None
    if not data:
        raise ActivityFailed(f"model file {path} is empty: nothing to corrupt")
    old_sha = _sha256(data)
    if mode == "bitflip":
        n = min(nbytes, len(data))
        start = max(0, len(data) // 2 - n // 2)
        changed = data[:start] + bytes(b ^ 0xFF for b in data[start:start + n]) + data[start + n:]
        detail = {"offset": start, "bytes_flipped": n}
    else:
        changed = data[:len(data) // 2]
        detail = {"truncated_to_bytes": len(changed)}
    # In place, as a bad disk write or a half-finished copy would leave it.
    with open(path, "r+b") as f:
        f.write(changed)
        f.truncate(len(changed))
        f.flush()
        os.fsync(f.fileno())
    new_sha = _sha256(path.read_bytes())
    if new_sha == old_sha:
        raise ActivityFailed(f"model file {path} still has its old checksum after the {mode}")
    detected = await_unready(t["api_url"], await_detection_s)
    return {"file": file, "path": str(path), "mode": mode, "size_before": len(data), "size_after": len(changed),
            "sha256_before": old_sha, "sha256_after": new_sha, "manifest_sha256": files[file],
            "matches_manifest": new_sha == files[file], **detail,
            "effect": effect(True, f"{file}: SHA-256 {new_sha[:12]}… no longer matches the manifest"), **detected}


def drift_config(key: str = "write_timeout_s", value=None, await_detection_s: float = 10.0,
                 target: str | None = None) -> dict:
    """Change one value in the deployed configuration file without updating its approved checksum
    (`<config>.sha256`): configuration drift, as a hand edit on a server would cause.

    `key` may be dotted to reach nested values (e.g. 'parameters.color_precision.max'). `value`
    is the new value; by default a different value of the same type is chosen (a number doubled
    and then some, a string suffixed). Returns the old and new value and checksums. Like
    corrupt_model it then waits up to `await_detection_s` seconds until readiness reports it."""
    if not isinstance(key, str) or not key.strip():
        raise ActivityFailed(f"key must name a configuration field, got {key!r}")
    t = local_target(target)
    path = Path(t["config_path"])
    try:
        raw = path.read_bytes()
        cfg = json.loads(raw)
    except OSError as e:
        raise ActivityFailed(f"cannot read the configuration {path}: {e.strerror}") from None
    except ValueError as e:
        raise ActivityFailed(f"the configuration {path} is not JSON: {e}") from None
    parent, leaf = _walk(cfg, key, path)
    old = parent[leaf]
    new = _drifted(old, key) if value is None else value
    if new == old:
        raise ActivityFailed(f"value {value!r} for {key} equals the current value: that is no drift")
    parent[leaf] = new
    # Same layout as the approved file (svgai.config.write_config), so only the value differs.
    data = (json.dumps(cfg, indent=2, sort_keys=True) + "\n").encode()
    tmp = path.with_name(path.name + ".drift-tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    sidecar = Path(str(path) + ".sha256")
    try:
        approved = (sidecar.read_text().split() or [""])[0]
    except OSError:
        approved = None
    detected = await_unready(t["api_url"], await_detection_s)
    return {"config": str(path), "key": key, "old": old, "new": new, "sha256_before": _sha256(raw),
            "sha256_after": _sha256(data), "approved_sha256": approved, "matches_approved": _sha256(data) == approved,
            "effect": effect(_sha256(data) != approved, f"{key}: {old!r} -> {new!r}, checksum no longer the approved one"),
            **detected}


# ---------------------------------------------------------------------------------------------
# Internals

def await_unready(api_url: str, timeout_s: float) -> dict:
    """Poll GET /ready until it answers 503 (the API noticed) or timeout_s passes."""
    try:
        timeout_s = float(timeout_s)
    except (TypeError, ValueError):
        raise ActivityFailed(f"await_detection_s must be a number of seconds, got {timeout_s!r}") from None
    if not 0 <= timeout_s <= 600:
        raise ActivityFailed(f"await_detection_s must be between 0 and 600 seconds, got {timeout_s!r}")
    if timeout_s == 0:
        return {"detected_after_s": None, "detection": "not awaited"}
    # Evidence of the fault's effect: the service itself reports the damage (a corruption the
    # API never notices tested nothing).
    start = time.monotonic()
    last = "no answer"
    while True:
        try:
            r = requests.get(api_url + READY_PATH, timeout=1.0)
            if r.status_code == 503:
                reason = r.json().get("reason") if r.headers.get("content-type", "").startswith("application/json") else None
                detection = reason or r.text[:300]
                return {"detected_after_s": round(time.monotonic() - start, 3), "detection": detection,
                        "effect": effect(True, f"readiness reports it: {detection}")}
            last = f"HTTP {r.status_code}"
        except (requests.RequestException, ValueError) as e:
            last = type(e).__name__
        if time.monotonic() - start >= timeout_s:
            detection = f"readiness did not report it within {timeout_s:g} s ({last})"
            return {"detected_after_s": None, "detection": detection, "effect": effect(False, detection)}
        time.sleep(0.05)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest_files(model_dir: Path) -> dict:
    try:
        files = json.loads((model_dir / MANIFEST).read_text())["files"]
    except FileNotFoundError:
        raise ActivityFailed(f"no model manifest at {model_dir / MANIFEST}") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ActivityFailed(f"model manifest {model_dir / MANIFEST} is unreadable: {e}") from None
    if not isinstance(files, dict) or not files:
        raise ActivityFailed(f"model manifest {model_dir / MANIFEST} lists no files")
    return files


def _walk(cfg, key: str, path: Path):
    parts = key.split(".")
    node = cfg
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(parts[:i]) or "the top level"
            known = ", ".join(sorted(node)) if isinstance(node, dict) else "nothing (not an object)"
            raise ActivityFailed(f"configuration {path} has no field {key!r} ({part!r} not in {where}; "
                                 f"known there: {known})")
        if i == len(parts) - 1:
            return node, part
        node = node[part]
    raise ActivityFailed(f"key {key!r} is empty")  # pragma: no cover


def _drifted(old, key: str):
    if isinstance(old, bool):
        return not old
    if isinstance(old, int):
        return old * 2 + 1
    if isinstance(old, float):
        return round(old * 2 + 0.5, 6)
    if isinstance(old, str):
        return old + "-drifted"
    raise ActivityFailed(f"field {key} holds a {type(old).__name__}; give the drifted `value` explicitly")
