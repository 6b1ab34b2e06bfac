"""Model and configuration backups: the BCP's `model_config_backup.py restore-model
--backup-id model_backup_latest` and `restore-config --backup-id latest`.

A backup is a folder `<artifact_backup_dir>/<id>/` holding `models.tar.gz` and/or
`config.tar.gz` and a `manifest.json` (the format: harness.targets.embedded.artifact_backup, which also
makes the stack's first backup when it is set up). Ids are `model_backup_<UTC stamp>`,
`config_backup_…` or `all_backup_…`. Wherever an id is asked for, `latest` (and
`model_backup_latest`, `config_backup_latest`, `all_backup_latest`) means the newest backup
holding what is being restored.

A restore never trusts what it unpacks: the archive's SHA-256 is checked against the backup's
manifest first (a damaged backup is refused and nothing is touched), the unpacked models against
their own manifest.json (the config against its approved-checksum sidecar), and only then are they
swapped in atomically. The API is asked to reload (its workers also notice within ~1 s) and the
restore waits until it is ready again.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import requests
from chaoslib.exceptions import ActivityFailed

from harness.recovery.runbook import RecoveryInputError, load_target
from harness.targets.embedded import artifact_backup as store
from harness.targets.embedded.artifact_backup import ARCHIVE, KINDS
from probes.models import verify_config_file, verify_model_dir

__all__ = ["backup_artifacts", "list_artifact_backups", "verify_artifact_backup", "restore_model",
           "restore_config", "cleanup_artifact_backups", "ensure_initial_artifact_backup"]

READY_WAIT_S = 30.0


def backup_artifacts(kind: str = "all", target: str | None = None) -> dict:
    """Back up the model files and/or the approved configuration (`kind`: models, config or all).

    Refuses to back up artifacts that do not match their own checksums (a backup of a corrupted
    model is worse than none). Returns the backup's manifest plus its path and size."""
    if kind not in KINDS:
        raise RecoveryInputError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    t = load_target(target)
    parts = ["models", "config"] if kind == "all" else [kind]
    model_dir, config_path = Path(t["model_dir"]), Path(t["config_path"])
    if "models" in parts:
        ok, detail = verify_model_dir(model_dir)
        if not ok:
            raise ActivityFailed(f"models in {model_dir} are not intact, refusing to back them up: {detail}")
    if "config" in parts:
        ok, detail = verify_config_file(config_path)
        if not ok:
            raise ActivityFailed(f"config {config_path} is not approved, refusing to back it up: {detail}")
    return store.write_backup(Path(t["artifact_backup_dir"]), model_dir, config_path, kind)


def list_artifact_backups(target: str | None = None) -> list[dict]:
    """Every model/config backup, oldest first: id, created, kind, model_version, files, path,
    size_bytes (and `error` for a folder whose manifest cannot be read)."""
    return _scan(load_target(target))


def verify_artifact_backup(backup_id: str = "latest", target: str | None = None) -> dict:
    """Check a backup without restoring it: each archive against the backup's SHA-256, and inside
    them the model files against their manifest and the config against its approved checksum.
    Returns {backup_id, ok, detail}."""
    t = load_target(target)
    b = _resolve(_scan(t), backup_id, None)
    ok, detail = _verify_backup(b)
    return {"backup_id": b["id"], "kind": b["kind"], "ok": ok, "detail": detail}


def restore_model(backup_id: str = "latest", target: str | None = None, ready_wait_s: float = READY_WAIT_S) -> dict:
    """Restore the model files from a backup (`latest`/`model_backup_latest`: the newest backup
    holding models). Verifies the archive and every unpacked file before anything is replaced,
    swaps the model folder atomically (works if the folder is gone entirely), asks the API to
    reload and waits until it is ready. Returns what was restored and how long it took."""
    t = load_target(target)
    b = _resolve(_scan(t), backup_id, "models")
    return _restore(t, b, "models", Path(t["model_dir"]), ready_wait_s)


def restore_config(backup_id: str = "latest", target: str | None = None, ready_wait_s: float = READY_WAIT_S) -> dict:
    """Restore the approved configuration (file + checksum sidecar) from a backup (`latest` /
    `config_backup_latest`: the newest backup holding the config), verified before it replaces
    anything, then reload the API and wait until it is ready."""
    t = load_target(target)
    b = _resolve(_scan(t), backup_id, "config")
    return _restore(t, b, "config", Path(t["config_path"]).parent, ready_wait_s)


def cleanup_artifact_backups(keep: int = 5, target: str | None = None) -> dict:
    """Delete all but the `keep` newest backups. The newest backup holding models and the newest
    holding the config are always kept, so both can still be restored."""
    try:
        keep = int(keep)
    except (TypeError, ValueError):
        raise RecoveryInputError(f"keep must be a whole number, got {keep!r}") from None
    if keep < 1:
        raise RecoveryInputError(f"keep must be at least 1, got {keep}")
    backups = _scan(load_target(target))
    good = [b for b in backups if "error" not in b]
    keep_ids = {b["id"] for b in good[-keep:]}
    for part in ("models", "config"):
        holding = [b for b in good if ARCHIVE[part] in b["files"]]
        if holding:
            keep_ids.add(holding[-1]["id"])
    deleted = []
    for b in backups:
        if b["id"] not in keep_ids:
            shutil.rmtree(b["path"], ignore_errors=True)
            deleted.append(b["id"])
    return {"kept": [b["id"] for b in backups if b["id"] in keep_ids], "deleted": deleted}


def ensure_initial_artifact_backup(target: str | None = None) -> dict:
    """Make a first backup of models and config if there is none yet (restores need one to restore
    from). Idempotent: {created: bool, backup_id}."""
    t = load_target(target)
    good = [b for b in _scan(t) if "error" not in b]
    if good:
        return {"created": False, "backup_id": good[-1]["id"]}
    return {"created": True, "backup_id": backup_artifacts("all", target)["id"]}


# ---------------------------------------------------------------------------------------------
# Internals

def _scan(t: dict) -> list[dict]:
    return store.scan(Path(t["artifact_backup_dir"]))


def _resolve(backups: list[dict], backup_id: str, part: str | None) -> dict:
    """`latest`, `<prefix>_latest` or an exact id → a backup holding `part` (None: any)."""
    good = [b for b in backups if "error" not in b]
    backup_id = backup_id or "latest"
    latest = re.fullmatch(r"(?:(model|config|all)_backup_)?latest", backup_id)
    if latest:
        which = {"model": "models", "config": "config", "all": "all"}.get(latest.group(1) or "", part)
        if which == "all":
            pool = [b for b in good if b["kind"] == "all"]
        elif which:
            pool = [b for b in good if ARCHIVE[which] in b["files"]]
        else:
            pool = good
        if part and which != part and which != "all":
            raise RecoveryInputError(f"{backup_id!r} names a {which} backup, but {part} is being restored")
        if not pool:
            raise RecoveryInputError(f"there is no backup holding {which or 'anything'} yet; create one with "
                                     f"backup_artifacts (gameday backup artifacts create)")
        return pool[-1]
    by_id = {b["id"]: b for b in backups}
    if backup_id not in by_id:
        known = ", ".join(b["id"] for b in backups) or "none"
        raise RecoveryInputError(f"unknown backup id {backup_id!r}; known backups: {known} (or 'latest')")
    b = by_id[backup_id]
    if "error" in b:
        raise ActivityFailed(f"backup {backup_id} is damaged: {b['error']}; nothing was touched")
    if part and ARCHIVE[part] not in b["files"]:
        raise RecoveryInputError(f"backup {backup_id} holds no {part} (kind {b['kind']}); choose another or 'latest'")
    return b


def _check_archive(b: dict, name: str) -> None:
    path = Path(b["path"]) / name
    try:
        got = store.archive_sha256(path)
    except OSError as e:
        raise ActivityFailed(f"backup {b['id']} is damaged: {name}: {e.strerror}; nothing was touched") from None
    if got != b["files"][name]:
        raise ActivityFailed(f"backup {b['id']} is damaged: {name} sha256 {got[:12]}… does not match its manifest "
                             f"({b['files'][name][:12]}…); nothing was touched")


def _verify_backup(b: dict) -> tuple[bool, str]:
    notes = []
    for name in b["files"]:
        try:
            _check_archive(b, name)
            with tempfile.TemporaryDirectory(prefix=".verify-", dir=Path(b["path"]).parent) as tmp:
                folder = _extract(Path(b["path"]) / name, Path(tmp), name.split(".")[0])
                ok, detail = verify_model_dir(folder) if name == ARCHIVE["models"] else verify_config_file(_config_in(folder))
        except (ActivityFailed, OSError, tarfile.TarError) as e:
            return False, str(e)
        if not ok:
            return False, f"{name}: {detail}"
        notes.append(f"{name}: {detail}")
    return True, "; ".join(notes)


def _extract(archive: Path, into: Path, top: str) -> Path:
    """Unpack `archive` (whose entries all lie under `top/`) into `into`; return into/top."""
    with tarfile.open(archive, "r:gz") as tar:
        for m in tar.getmembers():
            if not (m.name == top or m.name.startswith(top + "/")):
                raise ActivityFailed(f"{archive.name} holds an unexpected entry {m.name!r}; refusing to unpack it")
        tar.extractall(into, filter="data")
    return into / top


def _config_in(folder: Path) -> Path:
    configs = [f for f in folder.iterdir() if f.is_file() and not f.name.endswith(".sha256")]
    if len(configs) != 1:
        raise ActivityFailed(f"config archive holds {len(configs)} config files, expected 1")
    return configs[0]


def _restore(t: dict, b: dict, part: str, dest: Path, ready_wait_s: float) -> dict:
    name = ARCHIVE[part]
    t0 = time.monotonic()
    _check_archive(b, name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.restore-", dir=dest.parent))
    try:
        try:
            new = _extract(Path(b["path"]) / name, staging, part)
        except (tarfile.TarError, OSError) as e:
            raise ActivityFailed(f"backup {b['id']}: {name} cannot be unpacked ({e}); nothing was touched") from None
        if part == "models":
            ok, detail = verify_model_dir(new)
        else:
            config_file = _config_in(new)
            if config_file.name != Path(t["config_path"]).name:
                raise ActivityFailed(f"backup {b['id']} holds config {config_file.name}, the stack uses "
                                     f"{Path(t['config_path']).name}; nothing was touched")
            ok, detail = verify_config_file(config_file)
        if not ok:
            raise ActivityFailed(f"backup {b['id']}: unpacked {part} failed verification ({detail}); nothing was touched")
        _match_owner(new, dest)
        how = _swap_in(new, dest, allowed={f.name for f in new.iterdir()} if part == "config" else None)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    swapped_s = time.monotonic() - t0
    reload = _ask_reload(t["api_url"])
    ready_s, ready_detail = _wait_ready(t["api_url"], ready_wait_s)
    result = {"backup_id": b["id"], "restored": part, "dest": str(dest), "swap": how, "verified": detail,
              "swapped_s": round(swapped_s, 3), "reload": reload, "ready": ready_s is not None,
              "ready_s": round(ready_s, 3) if ready_s is not None else None,
              "took_s": round(time.monotonic() - t0, 3)}
    if ready_s is None:
        raise ActivityFailed(f"{part} restored from {b['id']} into {dest}, but the API was not ready within "
                             f"{ready_wait_s:.0f} s ({ready_detail})")
    return result


def _match_owner(new: Path, dest: Path) -> None:
    mode = (dest.stat().st_mode & 0o7777) if dest.exists() else 0o755
    new.chmod(mode)
    if os.geteuid() == 0 and dest.exists():
        st = dest.stat()
        for p in [new, *new.rglob("*")]:
            os.lchown(p, st.st_uid, st.st_gid)


def _swap_in(new: Path, dest: Path, allowed: set[str] | None = None) -> str:
    """Put folder `new` in the place of `dest` atomically. `allowed`: for a folder that may hold
    other files too (the config's), swap the whole folder only if it holds nothing else, otherwise
    replace just those files."""
    if not dest.exists():
        new.rename(dest)
        return "created"
    if allowed is not None and {f.name for f in dest.iterdir()} - allowed:
        for f in sorted(new.iterdir(), key=lambda p: p.name.endswith(".sha256")):
            os.replace(f, dest / f.name)
        return "files replaced"
    if _exchange(new, dest):  # one atomic step: `new` now holds the old folder
        shutil.rmtree(new, ignore_errors=True)
        return "exchanged"
    old = dest.with_name(f".{dest.name}.old-{time.time_ns()}")
    dest.rename(old)
    new.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return "renamed"


def _exchange(a: Path, b: Path) -> bool:
    """renameat2(RENAME_EXCHANGE): swap two paths atomically (Linux); False if unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _ask_reload(api_url: str) -> dict:
    try:
        r = requests.post(api_url + "/admin/reload", timeout=3)
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        return {"status_code": r.status_code, "status": body.get("status"), "reason": body.get("reason")}
    except Exception as e:  # the workers pick the files up by themselves within ~1 s
        return {"status_code": None, "error": type(e).__name__}


def _wait_ready(api_url: str, wait_s: float, in_a_row: int = 3) -> tuple[float | None, str]:
    """Wait until GET /ready answers 200 `in_a_row` times (each worker gets asked)."""
    t0 = time.monotonic()
    streak, detail = 0, "not asked"
    while time.monotonic() - t0 < wait_s:
        try:
            r = requests.get(api_url + "/ready", timeout=2, headers={"Connection": "close"})
            streak = streak + 1 if r.status_code == 200 else 0
            detail = f"HTTP {r.status_code}" + ("" if r.status_code == 200 else f" {r.text[:200]}")
        except requests.RequestException as e:
            streak, detail = 0, type(e).__name__
        if streak >= in_a_row:
            return time.monotonic() - t0, detail
        time.sleep(0.1)
    return None, detail

