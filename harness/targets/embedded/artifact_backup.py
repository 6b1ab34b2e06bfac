"""Model and configuration backups on disk: the format, writing one, reading the catalogue.

A backup is a folder `<artifact_backup_dir>/<id>/` holding `models.tar.gz` and/or
`config.tar.gz` and a `manifest.json` {id, created, kind, files: {name: sha256}, model_version,
source}. Ids are `model_backup_<UTC stamp>`, `config_backup_…` or `all_backup_…`.

The stack writes the first one when it is set up, as it takes the first base backup of the
database: a restore needs something to restore from. The runbooks (harness.recovery.artifacts)
verify the artifacts before they back them up, and verify, restore and clean up backups.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["KINDS", "ARCHIVE", "PREFIX", "MANIFEST", "write_backup", "scan", "ensure_first_backup",
           "config_sidecar", "archive_sha256", "folder_size"]

KINDS = ("models", "config", "all")
ARCHIVE = {"models": "models.tar.gz", "config": "config.tar.gz"}
PREFIX = {"models": "model_backup", "config": "config_backup", "all": "all_backup"}
MANIFEST = "manifest.json"


def write_backup(root: Path, model_dir: Path, config_path: Path, kind: str) -> dict:
    """Archive the models and/or the config (`kind`: models, config or all) into a new backup folder
    under `root`, with its manifest. The folder appears complete or not at all. Does not check the
    artifacts: the caller knows they are intact. Returns the manifest plus path, size_bytes, took_s."""
    parts = ["models", "config"] if kind == "all" else [kind]
    root.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    backup_id = f"{PREFIX[kind]}_{now:%Y%m%dT%H%M%SZ}"
    n = 1
    while (root / backup_id).exists():
        backup_id = f"{PREFIX[kind]}_{now:%Y%m%dT%H%M%SZ}_{n}"
        n += 1
    t0 = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix=f".{backup_id}.", dir=root))
    try:
        files = {}
        if "models" in parts:
            with tarfile.open(staging / ARCHIVE["models"], "w:gz") as tar:
                tar.add(model_dir, arcname="models")
            files[ARCHIVE["models"]] = archive_sha256(staging / ARCHIVE["models"])
        if "config" in parts:
            with tarfile.open(staging / ARCHIVE["config"], "w:gz") as tar:
                tar.add(config_path, arcname=f"config/{config_path.name}")
                tar.add(config_sidecar(config_path), arcname=f"config/{config_sidecar(config_path).name}")
            files[ARCHIVE["config"]] = archive_sha256(staging / ARCHIVE["config"])
        manifest = {"id": backup_id, "created": now.isoformat(), "kind": kind, "files": files,
                    "model_version": _model_version(model_dir, config_path),
                    "source": {"model_dir": str(model_dir), "config_path": str(config_path)}}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        staging.chmod(0o755)
        staging.rename(root / backup_id)  # a backup appears complete or not at all
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {**manifest, "path": str(root / backup_id), "size_bytes": folder_size(root / backup_id),
            "took_s": round(time.monotonic() - t0, 3)}


def scan(root: Path) -> list[dict]:
    """Every backup under `root`, oldest first: id, path, created, kind, files, model_version,
    size_bytes (and `error` for a folder whose manifest cannot be read)."""
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        if not d.is_dir() or d.name.startswith("."):
            continue
        entry = {"id": d.name, "path": str(d)}
        try:
            m = json.loads((d / MANIFEST).read_text())
            entry.update({"created": m["created"], "kind": m["kind"], "files": dict(m["files"]),
                          "model_version": m.get("model_version")})
        except (OSError, ValueError, KeyError, TypeError) as e:
            entry.update({"created": datetime.fromtimestamp(d.stat().st_mtime, timezone.utc).isoformat(),
                          "kind": None, "files": {}, "error": f"{MANIFEST} unreadable: {e}"})
        entry["size_bytes"] = folder_size(d)
        out.append(entry)
    return sorted(out, key=lambda b: (b["created"], b["id"]))


def ensure_first_backup(root: Path, model_dir: Path, config_path: Path) -> dict:
    """Back up models and config (kind all) if `root` holds no readable backup yet. Idempotent:
    {created: bool, backup_id}."""
    good = [b for b in scan(root) if "error" not in b]
    if good:
        return {"created": False, "backup_id": good[-1]["id"]}
    return {"created": True, "backup_id": write_backup(root, model_dir, config_path, "all")["id"]}


def config_sidecar(config_path: Path) -> Path:
    """The approved-checksum file that travels with the configuration."""
    return Path(str(config_path) + ".sha256")


def archive_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


# ---------------------------------------------------------------------------------------------
# Internals

def _model_version(model_dir: Path, config_path: Path) -> str | None:
    for path in (model_dir / MANIFEST, config_path):
        try:
            return json.loads(path.read_text())["model_version"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None
