"""BCP 2, Model Corruption and Configuration Recovery, for real: a corrupted model is restored
from backup and the live API serves the golden predictions again; a damaged backup is refused
and nothing is touched; configuration drift is undone; storage lost entirely is restored."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import requests
from chaoslib.exceptions import ActivityFailed

from harness.targets import description as target_mod
from harness.recovery import artifacts
from probes.models import check_config, check_golden, check_models

pytestmark = pytest.mark.integration


def flip_bytes(path: Path, at: int = 64, n: int = 16) -> None:
    data = bytearray(path.read_bytes())
    data[at:at + n] = bytes(b ^ 0xFF for b in data[at:at + n])
    path.write_bytes(bytes(data))


def staging_folders(model_dir: Path) -> list[str]:
    return sorted(p.name for p in model_dir.parent.iterdir() if p.name.startswith(f".{model_dir.name}."))


def test_restore_model_after_corruption(healthy_stack):
    artifacts.ensure_initial_artifact_backup()
    backup = artifacts.backup_artifacts("all")
    model = Path(healthy_stack["model_dir"]) / "quality_predictor.pt"
    flip_bytes(model)
    assert not check_models()[0]

    r = artifacts.restore_model("model_backup_latest")

    assert r["backup_id"] == backup["id"] and r["ready"]
    assert check_models()[0]
    ok, detail = check_golden()
    assert ok, detail


def test_damaged_backup_is_refused_and_nothing_touched(healthy_stack):
    good = artifacts.backup_artifacts("models")
    damaged = artifacts.backup_artifacts("models")
    flip_bytes(Path(damaged["path"]) / "models.tar.gz", at=200)
    assert not artifacts.verify_artifact_backup(damaged["id"])["ok"]
    model_dir = Path(healthy_stack["model_dir"])
    model = model_dir / "quality_predictor.pt"
    flip_bytes(model)  # a live corruption the refused restore must leave exactly as it is
    before = (model.read_bytes(), model.stat().st_ino, staging_folders(model_dir))

    with pytest.raises(ActivityFailed, match="damaged"):
        artifacts.restore_model("latest")  # resolves to the newest backup: the damaged one

    assert (model.read_bytes(), model.stat().st_ino, staging_folders(model_dir)) == before == (*before[:2], [])
    artifacts.restore_model(good["id"])
    assert check_models()[0]
    shutil.rmtree(damaged["path"])


def test_restore_config_undoes_drift(healthy_stack):
    artifacts.backup_artifacts("config")
    path = Path(healthy_stack["config_path"])
    cfg = json.loads(path.read_text())
    cfg["write_timeout_s"] = 9.5  # a hand edit that never went through approval
    path.write_text(json.dumps(cfg))
    assert not check_config()[0]

    r = artifacts.restore_config("latest")

    assert r["ready"] and check_config()[0]
    assert json.loads(path.read_text())["write_timeout_s"] != 9.5


def test_restore_model_when_storage_is_lost_entirely(healthy_stack):
    artifacts.ensure_initial_artifact_backup()
    shutil.rmtree(healthy_stack["model_dir"])

    r = artifacts.restore_model()

    assert r["swap"] == "created" and r["ready"]
    assert check_models()[0]
    assert requests.get(healthy_stack["api_url"] + "/ready", timeout=2).status_code == 200


def test_cleanup_keeps_the_newest_of_each_kind(healthy_stack):
    newest_models = artifacts.backup_artifacts("models")
    for _ in range(2):
        artifacts.backup_artifacts("config")

    r = artifacts.cleanup_artifact_backups(keep=1)

    assert newest_models["id"] in r["kept"]
    remaining = artifacts.list_artifact_backups()
    assert {b["id"] for b in remaining} == set(r["kept"]) and len(remaining) == 2
    assert target_mod.load()["artifact_backup_dir"] == healthy_stack["artifact_backup_dir"]
