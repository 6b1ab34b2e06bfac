"""The reference system's models and config: determinism, integrity checks, bounds."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from svgai import train
from svgai.config import (
    ConfigError,
    config_checksum,
    default_config,
    load_config,
    verify_config,
    write_config,
)
from svgai.models import (
    FEATURE_NAMES,
    FEATURE_RANGES,
    PARAMETER_NAMES,
    ModelError,
    check_golden,
    load_models,
    train_and_save,
    verify_models,
)

REGRESSOR = "regressors/corner_threshold.joblib"
PREDICTOR = "quality_predictor.pt"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two independent trainings with the same seed: one via the API, one via the CLI."""
    first = tmp_path_factory.mktemp("models-a")
    manifest = train_and_save(first, model_version="1.0.0")
    second = tmp_path_factory.mktemp("models-b")
    config = second / "config.json"
    assert train.main(["--model-dir", str(second), "--config", str(config)]) == 0
    return first, manifest, second, config


@pytest.fixture
def model_copy(trained, tmp_path):
    """A private copy of the trained models that a test may damage."""
    dst = tmp_path / "models"
    shutil.copytree(trained[0], dst)
    return dst


def _random_features(rng, n):
    out = []
    for _ in range(n):
        feats = {name: float(rng.uniform(*FEATURE_RANGES[name])) for name in FEATURE_NAMES}
        feats["unique_colors"] = int(round(feats["unique_colors"]))
        out.append((feats, float(rng.uniform(0.0, 1.0))))
    return out


def test_training_is_deterministic(trained):
    first, manifest, second, _ = trained
    other = json.loads((second / "manifest.json").read_text())
    assert [g["parameters"] for g in other["golden"]] == [g["parameters"] for g in manifest["golden"]]
    assert [g["predicted_ssim"] for g in other["golden"]] == [g["predicted_ssim"] for g in manifest["golden"]]
    a, b = load_models(first), load_models(second)
    for feats, tq in _random_features(np.random.default_rng(7), 50):
        assert a.predict(feats, tq) == b.predict(feats, tq)


def test_golden_cases_reproduce_and_detect_drift(trained):
    first, manifest, _, _ = trained
    models = load_models(first)
    assert check_golden(models, manifest) == (True, "5 golden cases reproduced")
    assert len(manifest["golden"]) == 5
    drifted = json.loads(json.dumps(manifest))
    drifted["golden"][2]["predicted_ssim"] += 1e-3
    ok, reason = check_golden(models, drifted)
    assert not ok and "golden case 2" in reason and "predicted_ssim" in reason


def test_manifest_lists_every_file_with_its_sha256(trained):
    first, manifest, _, _ = trained
    expected = {PREDICTOR} | {f"regressors/{p}.joblib" for p in PARAMETER_NAMES}
    assert set(manifest["files"]) == expected
    assert all(len(h) == 64 for h in manifest["files"].values())
    assert verify_models(first) == (True, "models ok")


def test_verify_detects_bit_flip_naming_the_file(model_copy):
    path = model_copy / REGRESSOR
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    ok, reason = verify_models(model_copy)
    assert not ok and REGRESSOR in reason and "does not match" in reason


def test_verify_detects_truncation_naming_the_file(model_copy):
    path = model_copy / PREDICTOR
    path.write_bytes(path.read_bytes()[:100])
    ok, reason = verify_models(model_copy)
    assert not ok and PREDICTOR in reason and "truncated" in reason


def test_verify_detects_missing_file_and_manifest(model_copy):
    os.remove(model_copy / REGRESSOR)
    ok, reason = verify_models(model_copy)
    assert not ok and REGRESSOR in reason and "missing" in reason
    os.remove(model_copy / "manifest.json")
    ok, reason = verify_models(model_copy)
    assert not ok and "manifest.json" in reason and "missing" in reason


def test_load_models_refuses_a_mismatch(model_copy):
    path = model_copy / PREDICTOR
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=PREDICTOR):
        load_models(model_copy)


def test_predictions_respect_bounds_and_types(trained):
    models = load_models(trained[0])
    cfg = default_config()
    bounds = cfg["parameters"]
    tight = json.loads(json.dumps(bounds))
    tight["color_precision"].update(min=4, max=5)
    tight["length_threshold"].update(min=2.5, max=3.0)
    tight["splice_threshold"].update(min=60, max=61)
    cases = _random_features(np.random.default_rng(3), 100)
    lows = {n: FEATURE_RANGES[n][0] for n in FEATURE_NAMES}
    highs = {n: FEATURE_RANGES[n][1] for n in FEATURE_NAMES}
    cases += [(lows, 0.0), (highs, 1.0), (lows, 1.0), (highs, 0.0)]
    for b in (bounds, tight):
        for feats, tq in cases:
            params, ssim = models.predict(feats, tq, b)
            assert set(params) == set(PARAMETER_NAMES)
            assert 0.0 < ssim < 1.0
            for name, value in params.items():
                kind = int if bounds[name]["type"] == "int" else float
                assert type(value) is kind, (name, value)
                assert b[name]["min"] <= value <= b[name]["max"], (name, value, b[name])


def test_config_checksum_detects_a_changed_value(tmp_path):
    path = tmp_path / "config.json"
    digest = write_config(path, default_config("2.0.0"))
    assert config_checksum(path) == digest
    assert verify_config(path) == (True, "config ok")
    assert load_config(path)["model_version"] == "2.0.0"
    cfg = json.loads(path.read_text())
    cfg["parameters"]["corner_threshold"]["max"] = 80
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    ok, reason = verify_config(path)
    assert not ok and "approved checksum" in reason and str(path) in reason


def test_config_problems_are_named(tmp_path):
    path = tmp_path / "config.json"
    ok, reason = verify_config(path)
    assert not ok and "cannot be read" in reason
    write_config(path, default_config())
    os.remove(str(path) + ".sha256")
    ok, reason = verify_config(path)
    assert not ok and ".sha256" in reason
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(path)
    bad = default_config()
    bad["parameters"]["max_iterations"]["min"] = 40
    with pytest.raises(ConfigError, match="parameters.max_iterations"):
        write_config(path, bad)


def test_train_cli_writes_config_once(trained, tmp_path, capsys):
    _, _, second, config = trained
    assert verify_config(config) == (True, "config ok")
    assert load_config(config)["model_version"] == "1.0.0"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert train.main(["--model-dir", str(tmp_path / "x"), "--config", str(bad)]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before training
