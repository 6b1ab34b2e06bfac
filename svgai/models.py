"""Models of the SVG AI system: six VTracer parameter regressors and the torch quality predictor.

Everything is trained at setup from synthetic data generated with a fixed seed (no downloads):

* six scikit-learn regressors, one per VTracer parameter, each a Ridge regression on degree-2
  polynomial features of (6 normalised image features + target quality);
* a torch MLP quality predictor: (6 normalised features + 6 normalised parameters + target
  quality) -> 32 -> 32 -> 1 -> sigmoid = predicted SSIM in (0, 1).

A model directory holds ``quality_predictor.pt`` (state_dict), ``regressors/<param>.joblib`` and
``manifest.json`` with the model version, the SHA-256 of every file and five golden cases whose
predictions must be reproduced exactly by the loaded models.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import math
import os
from typing import Any, Mapping

import joblib
import numpy as np
import torch
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import PolynomialFeatures

from svgai.config import PARAMETER_NAMES, default_config

from svgai.config import atomic_write

__all__ = [
    "ModelError",
    "Models",
    "FEATURE_NAMES",
    "FEATURE_RANGES",
    "PARAMETER_NAMES",
    "DEFAULT_SEED",
    "MANIFEST_NAME",
    "QUALITY_PREDICTOR_FILE",
    "train_and_save",
    "verify_models",
    "load_models",
    "check_golden",
]

FEATURE_NAMES: tuple[str, ...] = (
    "edge_density",
    "unique_colors",
    "entropy",
    "corner_density",
    "gradient_strength",
    "complexity_score",
)
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    "edge_density": (0.0, 1.0),
    "unique_colors": (1.0, 256.0),
    "entropy": (0.0, 8.0),
    "corner_density": (0.0, 1.0),
    "gradient_strength": (0.0, 1.0),
    "complexity_score": (0.0, 1.0),
}

DEFAULT_SEED = 20240501
MANIFEST_NAME = "manifest.json"
QUALITY_PREDICTOR_FILE = "quality_predictor.pt"
REGRESSOR_DIR = "regressors"

# The absolute parameter limits (also the default config bounds); the quality predictor sees
# parameters normalised by these fixed ranges, so its input does not depend on the config.
_LIMITS: dict[str, dict[str, Any]] = default_config()["parameters"]
_INT_PARAMS = frozenset(n for n, s in _LIMITS.items() if s["type"] == "int")

_N_SAMPLES = 4096
_QP_HIDDEN = 32
_QP_STEPS = 300
_QP_LR = 0.01
_QP_INPUT = len(FEATURE_NAMES) + len(PARAMETER_NAMES) + 1

_GOLDEN_CASES: tuple[tuple[dict[str, float], float], ...] = (
    ({"edge_density": 0.2, "unique_colors": 12, "entropy": 3.1, "corner_density": 0.05,
      "gradient_strength": 0.3, "complexity_score": 0.4}, 0.9),
    ({"edge_density": 0.05, "unique_colors": 2, "entropy": 0.8, "corner_density": 0.01,
      "gradient_strength": 0.0, "complexity_score": 0.05}, 0.95),
    ({"edge_density": 0.7, "unique_colors": 200, "entropy": 7.2, "corner_density": 0.4,
      "gradient_strength": 0.8, "complexity_score": 0.9}, 0.8),
    ({"edge_density": 0.45, "unique_colors": 64, "entropy": 5.0, "corner_density": 0.2,
      "gradient_strength": 0.55, "complexity_score": 0.6}, 0.99),
    ({"edge_density": 0.3, "unique_colors": 24, "entropy": 4.0, "corner_density": 0.6,
      "gradient_strength": 0.1, "complexity_score": 0.3}, 0.7),
)


class ModelError(RuntimeError):
    """A model artifact is missing, does not match its manifest, or cannot be loaded."""


class _QualityPredictor(torch.nn.Module):
    """MLP: normalised features + normalised parameters + target quality -> SSIM in (0, 1)."""

    def __init__(self, n_in: int = _QP_INPUT, hidden: int = _QP_HIDDEN) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n_in, hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.Tanh(),
            torch.nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x)).squeeze(-1)


class Models:
    """Loaded, verified models of one model directory. Use :func:`load_models` to build one."""

    def __init__(
        self,
        regressors: Mapping[str, Pipeline],
        quality_predictor: _QualityPredictor,
        manifest: dict,
        model_dir: str,
    ) -> None:
        self.regressors = dict(regressors)
        self.quality_predictor = quality_predictor.eval()
        self.manifest = manifest
        self.model_dir = model_dir
        self.model_version: str = manifest["model_version"]
        # One stacked linear map replaces six sklearn predict() calls on the hot path: the
        # regressors are (PolynomialFeatures -> Ridge) pipelines, so their prediction is exactly
        # poly(x) @ coef + intercept. _fast_ok records that the shortcut reproduces predict().
        self._poly = None
        self._coef = None
        self._intercept = None
        self._fast_ok = False
        self._prepare_fast_path()

    def predict(
        self, features: Mapping[str, float], target_quality: float, bounds: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, float | int], float]:
        """Return ``(parameters, predicted_ssim)`` for one image.

        ``features`` maps the six FEATURE_NAMES to numbers; ``target_quality`` is the wanted SSIM in
        [0, 1]; ``bounds`` maps each parameter to ``{"min": .., "max": ..}`` (the config's
        ``parameters``; default: the full VTracer limits). Parameters are clipped to the bounds and
        are ``int`` where the parameter is an integer one.
        """
        x = _feature_vector(features, target_quality)
        raw = self._predict_raw(x)
        params = _finalise(raw, bounds if bounds is not None else _LIMITS)
        qp_in = np.concatenate([x[:-1], _param_vector(params), x[-1:]]).astype(np.float32)
        with torch.inference_mode():
            ssim = float(self.quality_predictor(torch.from_numpy(qp_in).unsqueeze(0))[0])
        return params, ssim

    # -- internals -------------------------------------------------------------------------
    def _predict_raw(self, x: np.ndarray) -> np.ndarray:
        row = x.reshape(1, -1)
        if self._fast_ok:
            return self._poly_row(x) @ self._coef + self._intercept
        return np.array([float(self.regressors[n].predict(row)[0]) for n in PARAMETER_NAMES])

    def _poly_row(self, x: np.ndarray) -> np.ndarray:
        # Degree-2 polynomial expansion in sklearn's column order (powers_ rows).
        return np.prod(np.power(x, self._poly), axis=1)

    def _prepare_fast_path(self) -> None:
        try:
            pipes = [self.regressors[n] for n in PARAMETER_NAMES]
            polys = [p.named_steps["poly"] for p in pipes]
            ridges = [p.named_steps["ridge"] for p in pipes]
            powers = polys[0].powers_
            if any(not np.array_equal(pl.powers_, powers) for pl in polys):
                return
            self._poly = powers.astype(np.float64)  # shape (n_out, n_in)
            self._coef = np.stack([r.coef_ for r in ridges], axis=1)
            self._intercept = np.array([r.intercept_ for r in ridges], dtype=np.float64)
            probe = np.linspace(0.1, 0.9, len(FEATURE_NAMES) + 1)
            fast = self._poly_row(probe) @ self._coef + self._intercept
            slow = np.array([float(p.predict(probe.reshape(1, -1))[0]) for p in pipes])
            self._fast_ok = bool(np.allclose(fast, slow, rtol=1e-9, atol=1e-9))
        except (KeyError, AttributeError, ValueError):
            self._fast_ok = False


def train_and_save(model_dir: str | os.PathLike, model_version: str = "1.0.0", seed: int = DEFAULT_SEED) -> dict:
    """Train all models deterministically from synthetic data and save them into ``model_dir``.

    Writes ``quality_predictor.pt``, ``regressors/<param>.joblib`` and ``manifest.json`` (SHA-256 of
    every file, ``model_version``, five golden cases). Returns the manifest. Takes a few seconds.
    """
    model_dir = str(model_dir)
    os.makedirs(os.path.join(model_dir, REGRESSOR_DIR), exist_ok=True)
    rng = np.random.default_rng(seed)
    x, targets = _synthetic_parameter_data(rng, _N_SAMPLES)

    regressors: dict[str, Pipeline] = {}
    for i, name in enumerate(PARAMETER_NAMES):
        pipe = Pipeline([("poly", PolynomialFeatures(degree=2, include_bias=False)), ("ridge", Ridge(alpha=1e-2))])
        pipe.fit(x, targets[:, i])
        regressors[name] = pipe

    qp = _train_quality_predictor(rng, seed, x)

    files: dict[str, str] = {}
    sizes: dict[str, int] = {}

    def _save(rel: str, data: bytes) -> None:
        atomic_write(os.path.join(model_dir, rel), data)
        files[rel] = hashlib.sha256(data).hexdigest()
        sizes[rel] = len(data)

    buf = io.BytesIO()
    torch.save(qp.state_dict(), buf)
    _save(QUALITY_PREDICTOR_FILE, buf.getvalue())
    for name, pipe in regressors.items():
        buf = io.BytesIO()
        joblib.dump(pipe, buf)
        _save(f"{REGRESSOR_DIR}/{name}.joblib", buf.getvalue())

    models = Models(regressors, qp, {"model_version": model_version}, model_dir)
    golden = []
    for features, tq in _GOLDEN_CASES:
        params, ssim = models.predict(features, tq)
        golden.append({"features": dict(features), "target_quality": tq, "parameters": params, "predicted_ssim": ssim})

    manifest = {
        "model_version": model_version,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "seed": seed,
        "feature_names": list(FEATURE_NAMES),
        "parameter_names": list(PARAMETER_NAMES),
        "quality_predictor": {"input_width": _QP_INPUT, "hidden": _QP_HIDDEN},
        "files": files,
        "sizes": sizes,
        "golden": golden,
    }
    atomic_write(os.path.join(model_dir, MANIFEST_NAME), (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest


def verify_models(model_dir: str | os.PathLike) -> tuple[bool, str]:
    """Check every model file's SHA-256 against the manifest.

    Returns ``(True, "models ok")`` or ``(False, reason)`` naming the file that is missing,
    truncated or altered (or the manifest itself when it is missing or unreadable).
    """
    try:
        _read_verified(str(model_dir))
    except ModelError as exc:
        return False, str(exc)
    return True, "models ok"


def load_models(model_dir: str | os.PathLike) -> Models:
    """Verify and load the models of ``model_dir``; raise :class:`ModelError` naming a bad file.

    Files are loaded from the very bytes that were verified, so a file swapped between check and
    load cannot slip through.
    """
    model_dir = str(model_dir)
    manifest, blobs = _read_verified(model_dir)
    try:
        qp = _QualityPredictor(
            manifest.get("quality_predictor", {}).get("input_width", _QP_INPUT),
            manifest.get("quality_predictor", {}).get("hidden", _QP_HIDDEN),
        )
        state = torch.load(io.BytesIO(blobs[QUALITY_PREDICTOR_FILE]), map_location="cpu", weights_only=True)
        qp.load_state_dict(state)
    except KeyError:
        raise ModelError(f"model manifest in {model_dir} does not list {QUALITY_PREDICTOR_FILE}") from None
    except Exception as exc:  # torch raises many types for a bad archive
        raise ModelError(f"model file {QUALITY_PREDICTOR_FILE} in {model_dir} cannot be loaded: {exc}") from None
    regressors = {}
    for name in PARAMETER_NAMES:
        rel = f"{REGRESSOR_DIR}/{name}.joblib"
        if rel not in blobs:
            raise ModelError(f"model manifest in {model_dir} does not list {rel}")
        try:
            regressors[name] = joblib.load(io.BytesIO(blobs[rel]))
        except Exception as exc:
            raise ModelError(f"model file {rel} in {model_dir} cannot be loaded: {exc}") from None
    return Models(regressors, qp, manifest, model_dir)


def check_golden(models: Models, manifest: dict, tol: float = 1e-6) -> tuple[bool, str]:
    """Re-run the manifest's golden cases on ``models``; every output must match within ``tol``."""
    golden = manifest.get("golden") or []
    if not golden:
        return False, "model manifest has no golden cases"
    for i, case in enumerate(golden):
        params, ssim = models.predict(case["features"], case["target_quality"])
        want = case["parameters"]
        for name in PARAMETER_NAMES:
            if name not in want or not math.isclose(params[name], want[name], rel_tol=0.0, abs_tol=tol):
                return False, (
                    f"golden case {i}: {name} is {params[name]!r}, manifest says {want.get(name)!r}"
                )
        if not math.isclose(ssim, case["predicted_ssim"], rel_tol=0.0, abs_tol=tol):
            return False, f"golden case {i}: predicted_ssim is {ssim!r}, manifest says {case['predicted_ssim']!r}"
    return True, f"{len(golden)} golden cases reproduced"


# ---------------------------------------------------------------------------------------------
# Internals


def _feature_vector(features: Mapping[str, float], target_quality: float) -> np.ndarray:
    """6 features normalised to [0, 1] (unique_colors on a log2 scale) + target quality."""
    try:
        e = float(features["edge_density"])
        u = float(features["unique_colors"])
        h = float(features["entropy"])
        c = float(features["corner_density"])
        g = float(features["gradient_strength"])
        k = float(features["complexity_score"])
    except KeyError as exc:
        raise ValueError(f"feature {exc.args[0]!r} is missing") from None
    return np.array([e, math.log2(max(u, 1.0)) / 8.0, h / 8.0, c, g, k, float(target_quality)])


def _param_vector(params: Mapping[str, float]) -> np.ndarray:
    return np.array(
        [(params[n] - _LIMITS[n]["min"]) / (_LIMITS[n]["max"] - _LIMITS[n]["min"]) for n in PARAMETER_NAMES]
    )


def _finalise(raw: np.ndarray, bounds: Mapping[str, Any]) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    for i, name in enumerate(PARAMETER_NAMES):
        b = bounds[name]
        lo, hi = (b["min"], b["max"]) if isinstance(b, Mapping) else (b[0], b[1])
        v = float(raw[i])
        if not math.isfinite(v):
            v = (lo + hi) / 2.0
        if name in _INT_PARAMS:
            out[name] = int(min(max(round(v), math.ceil(lo)), math.floor(hi)))
        else:
            out[name] = round(min(max(v, float(lo)), float(hi)), 4)
    return out


def _ideal_parameters(x: np.ndarray) -> np.ndarray:
    """The hidden mapping the regressors learn: normalised features + quality -> raw parameters."""
    e, uc, hn, c, g, k, q = (x[:, i] for i in range(7))
    qn = np.clip((q - 0.6) / 0.4, 0.0, 1.0)
    return np.stack(
        [
            1.5 + 5.5 * uc + 2.0 * qn + 1.0 * g,                       # color_precision
            75.0 - 40.0 * c - 15.0 * e + 10.0 * (1.0 - qn),             # corner_threshold
            1.5 + 6.0 * (1.0 - k) * (1.0 - 0.5 * qn) + 1.0 * (1.0 - e),  # length_threshold
            8.0 + 14.0 * k + 6.0 * qn,                                  # max_iterations
            2.0 + 5.0 * qn + 2.0 * e + 1.0 * hn,                        # path_precision
            40.0 + 30.0 * g + 15.0 * k - 10.0 * c,                      # splice_threshold
        ],
        axis=1,
    )


def _synthetic_parameter_data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.empty((n, 7))
    x[:, :6] = rng.uniform(0.0, 1.0, size=(n, 6))
    x[:, 6] = rng.uniform(0.6, 1.0, size=n)
    ideal = _ideal_parameters(x)
    spans = np.array([_LIMITS[p]["max"] - _LIMITS[p]["min"] for p in PARAMETER_NAMES])
    lows = np.array([_LIMITS[p]["min"] for p in PARAMETER_NAMES])
    noisy = ideal + rng.normal(0.0, 0.02, size=ideal.shape) * spans
    return x, np.clip(noisy, lows, lows + spans)


def _hidden_ssim(x: np.ndarray, params_norm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The hidden quality the MLP learns: best near the ideal parameters, lower for complex images."""
    lows = np.array([_LIMITS[p]["min"] for p in PARAMETER_NAMES])
    spans = np.array([_LIMITS[p]["max"] - _LIMITS[p]["min"] for p in PARAMETER_NAMES])
    ideal_norm = (np.clip(_ideal_parameters(x), lows, lows + spans) - lows) / spans
    weights = np.array([1.2, 0.6, 0.8, 0.5, 1.0, 0.6])
    dist = ((params_norm - ideal_norm) ** 2 * weights).sum(axis=1)
    base = 0.985 - 0.10 * x[:, 5] - 0.04 * x[:, 2] - 0.03 * x[:, 0]
    ssim = base - 1.2 * dist + rng.normal(0.0, 0.005, size=len(x))
    return np.clip(ssim, 0.2, 0.995)


def _train_quality_predictor(rng: np.random.Generator, seed: int, x: np.ndarray) -> _QualityPredictor:
    n = len(x)
    lows = np.array([_LIMITS[p]["min"] for p in PARAMETER_NAMES])
    spans = np.array([_LIMITS[p]["max"] - _LIMITS[p]["min"] for p in PARAMETER_NAMES])
    ideal_norm = (np.clip(_ideal_parameters(x), lows, lows + spans) - lows) / spans
    # Half the samples near the ideal parameters, half anywhere: the predictor must rank both.
    near = np.clip(ideal_norm + rng.normal(0.0, 0.15, size=ideal_norm.shape), 0.0, 1.0)
    anywhere = rng.uniform(0.0, 1.0, size=ideal_norm.shape)
    params_norm = np.where((np.arange(n) % 2 == 0)[:, None], near, anywhere)
    y = _hidden_ssim(x, params_norm, rng)
    inputs = np.concatenate([x[:, :6], params_norm, x[:, 6:7]], axis=1).astype(np.float32)

    prev_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: bit-identical results from run to run
    try:
        torch.manual_seed(seed)
        model = _QualityPredictor()
        opt = torch.optim.Adam(model.parameters(), lr=_QP_LR)
        xt, yt = torch.from_numpy(inputs), torch.from_numpy(y.astype(np.float32))
        for _ in range(_QP_STEPS):
            opt.zero_grad()
            loss = torch.mean((model(xt) - yt) ** 2)
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(prev_threads)
    return model.eval()


def _read_manifest(model_dir: str) -> dict:
    path = os.path.join(model_dir, MANIFEST_NAME)
    try:
        with open(path, "rb") as fh:
            manifest = json.loads(fh.read())
    except FileNotFoundError:
        raise ModelError(f"model manifest {MANIFEST_NAME} is missing in {model_dir}") from None
    except OSError as exc:
        raise ModelError(f"model manifest {MANIFEST_NAME} in {model_dir} cannot be read: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"model manifest {MANIFEST_NAME} in {model_dir} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict) or not manifest["files"]:
        raise ModelError(f"model manifest {MANIFEST_NAME} in {model_dir} has no 'files' map")
    if not isinstance(manifest.get("model_version"), str):
        raise ModelError(f"model manifest {MANIFEST_NAME} in {model_dir} has no 'model_version'")
    return manifest


def _read_verified(model_dir: str) -> tuple[dict, dict[str, bytes]]:
    manifest = _read_manifest(model_dir)
    sizes = manifest.get("sizes") or {}
    blobs: dict[str, bytes] = {}
    for rel, expected in sorted(manifest["files"].items()):
        path = os.path.join(model_dir, *rel.split("/"))
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise ModelError(f"model file {rel} is missing in {model_dir}") from None
        except OSError as exc:
            raise ModelError(f"model file {rel} in {model_dir} cannot be read: {exc.strerror or exc}") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != str(expected).lower():
            want_size = sizes.get(rel)
            if isinstance(want_size, int) and len(data) < want_size:
                what = f"is truncated ({len(data)} of {want_size} bytes)"
            elif isinstance(want_size, int) and len(data) != want_size:
                what = f"has the wrong size ({len(data)} bytes, manifest says {want_size})"
            else:
                what = "does not match the manifest"
            raise ModelError(
                f"model file {rel} in {model_dir} {what}: sha256 {actual[:12]}…, manifest {str(expected)[:12]}…"
            )
        blobs[rel] = data
    return manifest, blobs

