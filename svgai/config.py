"""Approved configuration of the SVG AI system: VTracer parameter bounds, model version, timeouts.

The file is JSON; beside it lies ``<path>.sha256``, the approved checksum in ``sha256sum`` format
(``<hex>  <basename>``), so ``sha256sum -c config.json.sha256`` works from the config's folder.
Any change to the file that did not go through :func:`write_config` is detected by
:func:`verify_config`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from typing import Any

__all__ = [
    "ConfigError",
    "PARAMETER_NAMES",
    "default_config",
    "write_config",
    "load_config",
    "config_checksum",
    "sidecar_path",
    "verify_config",
]

# The six VTracer parameters: type and the widest bounds the system accepts.
_PARAMETER_LIMITS: dict[str, dict[str, Any]] = {
    "color_precision": {"type": "int", "min": 1, "max": 10},
    "corner_threshold": {"type": "int", "min": 10, "max": 90},
    "length_threshold": {"type": "float", "min": 1.0, "max": 10.0},
    "max_iterations": {"type": "int", "min": 5, "max": 30},
    "path_precision": {"type": "int", "min": 1, "max": 10},
    "splice_threshold": {"type": "int", "min": 20, "max": 90},
}
PARAMETER_NAMES: tuple[str, ...] = tuple(_PARAMETER_LIMITS)

DEFAULT_MODEL_VERSION = "1.0.0"
DEFAULT_WRITE_TIMEOUT_S = 2.0


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or has a bad field (the message says which)."""


def default_config(model_version: str = DEFAULT_MODEL_VERSION) -> dict:
    """Return the default configuration: full VTracer bounds, ``model_version``, ``write_timeout_s``."""
    return {
        "model_version": model_version,
        "write_timeout_s": DEFAULT_WRITE_TIMEOUT_S,
        "parameters": copy.deepcopy(_PARAMETER_LIMITS),
    }


def write_config(path: str | os.PathLike, cfg: dict) -> str:
    """Validate ``cfg``, write it to ``path`` and its approved checksum to ``<path>.sha256``.

    Both files are written atomically (temporary file + rename). Returns the SHA-256 hex digest.
    """
    _validate(cfg, str(path))
    data = (json.dumps(cfg, indent=2, sort_keys=True) + "\n").encode()
    digest = hashlib.sha256(data).hexdigest()
    atomic_write(str(path), data)
    atomic_write(sidecar_path(path), f"{digest}  {os.path.basename(str(path))}\n".encode())
    return digest


def load_config(path: str | os.PathLike) -> dict:
    """Read and validate the configuration at ``path``; raise :class:`ConfigError` naming the problem.

    This does not check the approved checksum: use :func:`verify_config` for that.
    """
    path = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ConfigError(f"config {path} cannot be read: {exc.strerror or exc}") from None
    try:
        cfg = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {path} is not valid JSON: {exc}") from None
    _validate(cfg, path)
    return cfg


def config_checksum(path: str | os.PathLike) -> str:
    """Return the SHA-256 hex digest of the configuration file's bytes (raises OSError if unreadable)."""
    with open(str(path), "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def sidecar_path(path: str | os.PathLike) -> str:
    """Return the path of the approved-checksum sidecar of the configuration at ``path``."""
    return str(path) + ".sha256"


def verify_config(path: str | os.PathLike) -> tuple[bool, str]:
    """Check the configuration against its approved checksum and that it parses.

    Returns ``(True, "config ok")`` or ``(False, reason)`` where the reason names the file and what
    is wrong (missing, no approved checksum, checksum mismatch, unparseable, bad field).
    """
    path = str(path)
    try:
        actual = config_checksum(path)
    except OSError as exc:
        return False, f"config {path} cannot be read: {exc.strerror or exc}"
    try:
        with open(sidecar_path(path), encoding="utf-8") as fh:
            approved = (fh.read().split() or [""])[0].lower()
    except OSError as exc:
        return False, f"approved checksum {sidecar_path(path)} cannot be read: {exc.strerror or exc}"
    if actual != approved:
        return False, (
            f"config {path} does not match its approved checksum "
            f"(sha256 {actual[:12]}…, approved {approved[:12] or 'empty'}…)"
        )
    try:
        load_config(path)
    except ConfigError as exc:
        return False, str(exc)
    return True, "config ok"


# ---------------------------------------------------------------------------------------------
# Internals


def atomic_write(path: str, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename: readers (the API's workers
    re-checking files every second) see the old file or the new one, never half of either."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _validate(cfg: Any, path: str) -> None:
    where = f"config {path}"
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: top level must be an object, got {type(cfg).__name__}")
    version = cfg.get("model_version")
    if not isinstance(version, str) or not version:
        raise ConfigError(f"{where}: field 'model_version' must be a non-empty string, got {version!r}")
    timeout = cfg.get("write_timeout_s")
    if not _is_number(timeout) or timeout <= 0:
        raise ConfigError(f"{where}: field 'write_timeout_s' must be a positive number, got {timeout!r}")
    params = cfg.get("parameters")
    if not isinstance(params, dict):
        raise ConfigError(f"{where}: field 'parameters' must be an object, got {params!r}")
    for name, limits in _PARAMETER_LIMITS.items():
        spec = params.get(name)
        field = f"parameters.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: field '{field}' is missing or not an object")
        lo, hi = spec.get("min"), spec.get("max")
        if not _is_number(lo) or not _is_number(hi):
            raise ConfigError(f"{where}: field '{field}' needs numeric 'min' and 'max', got {lo!r}, {hi!r}")
        if lo > hi:
            raise ConfigError(f"{where}: field '{field}' has min {lo} above max {hi}")
        if lo < limits["min"] or hi > limits["max"]:
            raise ConfigError(
                f"{where}: field '{field}' bounds [{lo}, {hi}] exceed the allowed "
                f"[{limits['min']}, {limits['max']}]"
            )
    unknown = sorted(set(params) - set(_PARAMETER_LIMITS))
    if unknown:
        raise ConfigError(f"{where}: unknown parameter(s) {', '.join(unknown)} in 'parameters'")
