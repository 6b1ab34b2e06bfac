"""Model, configuration and storage faults on the real stack: each is detected the way the BCP
says (model checksums, the approved config checksum, readiness) and undone by its restore or
rollback."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from harness.faults import models, pending, storage
from harness.recovery import artifacts
from probes.models import check_config, check_golden, check_models
from waiting import ready

pytestmark = pytest.mark.integration


@pytest.fixture
def backed_up(healthy_stack):
    artifacts.ensure_initial_artifact_backup()
    return healthy_stack


def test_bitflipped_model_is_caught_by_checksum_and_restored(backed_up):
    record = models.corrupt_model(mode="bitflip")
    assert record["file"].endswith(".pt")  # the torch quality predictor by default
    assert record["size_before"] == record["size_after"] and record["sha256_before"] != record["sha256_after"]
    path = Path(record["path"])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256_after"]
    ok, detail = check_models()
    assert not ok and record["file"] in detail
    assert record["detected_after_s"] is not None and not ready(backed_up)

    artifacts.restore_model(backup_id="model_backup_latest")
    assert check_models()[0] and check_golden()[0] and ready(backed_up)


def test_truncated_regressor_is_caught_and_restored(backed_up):
    record = models.corrupt_model(file="regressors/color_precision.joblib", mode="truncate", await_detection_s=0)
    assert record["size_after"] == record["size_before"] // 2
    assert not check_models()[0]
    artifacts.restore_model(backup_id="latest")
    assert check_models()[0]


def test_corrupt_model_refuses_unknown_files_and_modes(backed_up):
    with pytest.raises(ActivityFailed, match="not a model artifact"):
        models.corrupt_model(file="nope.pt")
    with pytest.raises(ActivityFailed, match="mode must be one of"):
        models.corrupt_model(mode="shred")


def test_config_drift_is_caught_by_the_approved_checksum_and_restored(backed_up):
    record = models.drift_config(key="write_timeout_s")
    assert record["old"] != record["new"] and not record["matches_approved"]
    ok, detail = check_config()
    assert not ok and "differs from approved" in detail
    assert record["detected_after_s"] is not None and not ready(backed_up)
    with pytest.raises(ActivityFailed, match="no field 'parameters.nope'"):
        models.drift_config(key="parameters.nope")

    artifacts.restore_config(backup_id="latest")
    assert check_config()[0] and ready(backed_up)


def test_lost_model_volume_is_put_back_by_the_rollback(backed_up):
    model_dir = Path(backed_up["model_dir"])
    record = storage.lose_model_volume(await_detection_s=5)
    assert not model_dir.exists() and Path(record["moved_to"]).is_dir()
    assert "lose_model_volume" in pending()
    assert record["detected_after_s"] is not None

    back = storage.restore_model_volume()
    assert back["put_back"] == record["moved_to"] and back["present"]
    assert "lose_model_volume" not in pending()
    assert check_models()[0]
    assert not list(model_dir.parent.glob(model_dir.name + ".lost-*"))


def test_restored_model_volume_is_kept_and_the_lost_copy_discarded(backed_up):
    model_dir = Path(backed_up["model_dir"])
    record = storage.lose_model_volume(await_detection_s=0)
    assert not model_dir.exists()
    artifacts.restore_model(backup_id="latest")  # the BCP's recovery: restore into the missing folder
    assert model_dir.is_dir() and check_models()[0]
    back = storage.restore_model_volume()
    assert back["put_back"] is None and back["deleted"] == [record["moved_to"]]
    assert not Path(record["moved_to"]).exists()
    deadline = time.monotonic() + 10
    while not ready(backed_up) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ready(backed_up)
