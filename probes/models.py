"""Model and configuration probes: artifacts against their SHA-256 manifest, golden predictions
served by the live API, the configuration against its approved checksum."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import requests

from harness.targets import description as target_mod
from harness.core.api_contract import OPTIMIZE_PATH, optimize_body
from harness.core.checksums import sha256_file

__all__ = ["models_intact", "golden_predictions_match", "config_intact", "check_models", "check_golden",
           "check_config", "verify_model_dir", "verify_config_file", "sha256_file"]


def verify_model_dir(model_dir: Path) -> tuple[bool, str]:
    """Every file listed in the folder's manifest.json exists with that SHA-256 (also used by the
    restore runbook on a freshly extracted backup)."""
    try:
        manifest = json.loads((model_dir / "manifest.json").read_text())
        files = manifest["files"]
        if not isinstance(files, dict) or not files:
            return False, f"model manifest in {model_dir} lists no files"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return False, f"model manifest in {model_dir} unreadable: {e}"
    for rel, want in sorted(files.items()):
        try:
            got = sha256_file(model_dir / rel)
        except OSError as e:
            return False, f"model file {rel}: {e.strerror}"
        if got != want:
            return False, f"model file {rel}: sha256 {got[:12]}… does not match manifest {want[:12]}…"
    return True, f"{len(files)} model files match manifest (version {manifest.get('model_version')})"


def verify_config_file(path: Path) -> tuple[bool, str]:
    """The configuration file matches its approved checksum (sidecar `<config>.sha256`)."""
    sidecar = Path(str(path) + ".sha256")
    try:
        got = sha256_file(path)
    except OSError as e:
        return False, f"config {path.name}: {e.strerror}"
    try:
        approved = (sidecar.read_text().split() or [""])[0].lower()
    except OSError as e:
        return False, f"approved checksum {sidecar.name}: {e.strerror}"
    if got != approved:
        return False, f"config {path.name}: sha256 {got[:12]}… differs from approved {approved[:12] or 'empty'}…"
    return True, f"config {path.name} matches its approved checksum"


def check_models(target: str | None = None) -> tuple[bool, str]:
    """Every model artifact exists and matches the SHA-256 in manifest.json."""
    return verify_model_dir(Path(target_mod.load(target)["model_dir"]))


def check_golden(target: str | None = None, tolerance: float = 1e-6, timeout_s: float = 5.0) -> tuple[bool, str]:
    """The live API reproduces the manifest's golden predictions (the models it serves are right)."""
    t = target_mod.load(target)
    try:
        manifest = json.loads((Path(t["model_dir"]) / "manifest.json").read_text())
        golden = manifest["golden"]
    except (OSError, ValueError, KeyError) as e:
        return False, f"golden cases unreadable: {e}"
    for i, case in enumerate(golden):
        rid = f"probe-golden-{i}-{time.time_ns()}"  # fresh id: an old row would hide a bad model
        try:
            r = requests.post(t["api_url"] + OPTIMIZE_PATH, timeout=timeout_s,
                              json=optimize_body(rid, case["features"], case["target_quality"]))
        except requests.RequestException as e:
            return False, f"golden case {i}: {type(e).__name__}"
        if r.status_code != 200:
            return False, f"golden case {i}: HTTP {r.status_code} {r.text[:200]}"
        body = r.json()
        for name, want in case["parameters"].items():
            got = body["parameters"].get(name)
            if got is None or not math.isclose(got, want, rel_tol=0, abs_tol=tolerance):
                return False, f"golden case {i}: {name} served {got!r}, manifest says {want!r}"
        if not math.isclose(body["predicted_ssim"], case["predicted_ssim"], rel_tol=0, abs_tol=tolerance):
            return False, f"golden case {i}: predicted_ssim served {body['predicted_ssim']!r}, manifest says {case['predicted_ssim']!r}"
    return True, f"{len(golden)} golden predictions reproduced by the live API"


def check_config(target: str | None = None) -> tuple[bool, str]:
    """The configuration file matches its approved checksum (sidecar `<config>.sha256`)."""
    return verify_config_file(Path(target_mod.load(target)["config_path"]))


def models_intact(target: str | None = None) -> bool:
    """True when every model artifact matches its manifest SHA-256."""
    return check_models(target)[0]


def golden_predictions_match(target: str | None = None) -> bool:
    """True when the live API reproduces the golden predictions."""
    return check_golden(target)[0]


def config_intact(target: str | None = None) -> bool:
    """True when the configuration matches its approved checksum."""
    return check_config(target)[0]
