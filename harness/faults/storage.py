"""Storage faults: the volume holding the model artifacts fails (BCP "Storage Failure").

The folder is not deleted: it is renamed aside (`<model_dir>.lost-<stamp>`), which to the system
is the same as a volume that vanished, and lets the rollback put it back if no restore did.
"""
from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from chaoslib.exceptions import ActivityFailed

from harness.faults import clear_undo, register_undo
from harness.faults._common import effect, lease, local_target
from harness.faults.models import await_unready

__all__ = ["lose_model_volume", "restore_model_volume"]

LOST_SUFFIX = ".lost-"


def lose_model_volume(await_detection_s: float = 10.0, target: str | None = None, configuration: dict = None) -> dict:
    """The model volume disappears: the model folder is moved aside to `<model_dir>.lost-<stamp>`.
    The API keeps serving from the models in memory, but it is no longer ready (nothing on disk to
    verify). Registers an undo that puts the folder back if it is still missing; the recovery is
    a restore from backup storage (harness.recovery.artifacts.restore_model). Waits up to
    `await_detection_s` seconds (0: not at all) until the API's readiness reports the loss."""
    t = local_target(target)
    model_dir = Path(t["model_dir"])
    if not model_dir.is_dir():
        raise ActivityFailed(f"model folder {model_dir} does not exist: nothing to lose")
    files = [p for p in model_dir.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    aside = model_dir.with_name(f"{model_dir.name}{LOST_SUFFIX}{stamp}")
    register_undo("lose_model_volume", lambda: restore_model_volume(target),
                  spec={"kind": "rename_back", "from": str(aside), "to": str(model_dir)}, **lease(t, configuration))
    os.rename(model_dir, aside)
    lost_at = time.time()
    detected = await_unready(t["api_url"], await_detection_s)
    return {"model_dir": str(model_dir), "moved_to": str(aside), "files": len(files), "bytes": size, "at": lost_at,
            "effect": effect(not model_dir.exists(), f"{model_dir} is gone ({len(files)} files moved aside)"), **detected}


def restore_model_volume(target: str | None = None) -> dict:
    """Rollback of lose_model_volume. If the model folder is still missing, the lost folder is put
    back; if a restore already recreated it, the restored folder is kept. Either way the aside
    copies are then deleted."""
    t = local_target(target)
    model_dir = Path(t["model_dir"])
    asides = sorted(model_dir.parent.glob(f"{model_dir.name}{LOST_SUFFIX}*"))
    put_back = None
    if not model_dir.exists() and asides:
        put_back = asides.pop()
        os.rename(put_back, model_dir)
    for aside in asides:
        shutil.rmtree(aside, ignore_errors=True)
    clear_undo("lose_model_volume")
    if put_back:
        what = f"model folder was still missing: put back from {put_back.name}"
    elif model_dir.exists():
        what = "model folder present (restored): kept it"
    else:
        what = "model folder missing and no lost copy to put back"
    return {"model_dir": str(model_dir), "put_back": str(put_back) if put_back else None,
            "deleted": [str(a) for a in asides], "present": model_dir.is_dir(), "detail": what}
