"""The learned router's bundle: numpy arrays (``arrays.npz``) + a JSON manifest.

Loading never unpickles (``np.load(..., allow_pickle=False)``); each array's sha256 is
checked against the manifest and an unknown format version is refused, both with a
``BundleError``. Saving writes into a temporary directory and renames it into place, so
a crash never leaves a half-written bundle.

Usage::

    from aco_langchain.routing.bundle import load_bundle
    bundle = load_bundle()            # the one shipped in aco_langchain/data/router_bundle
    bundle.manifest.tier_map          # {"1": "mistralai/mistral-7b-chat", ...}
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aco_langchain.errors import BundleError
from aco_langchain.routing.features import DENSE_NAMES, FeatureSpec

# /2: packed char n-gram hashing (features.py) and mixed operating points
BUNDLE_FORMAT = "aco-router-bundle/2"
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"

#: Arrays every bundle holds (name -> number of dimensions).
REQUIRED_ARRAYS = {
    "w_hash": 2,  # (buckets, models) logistic weights of hashed n-grams
    "w_dense": 2,  # (dense, models) logistic weights of standardised dense features
    "bias": 1,  # (models,)
    "dense_mean": 1,
    "dense_std": 1,
    "cost_w": 2,  # (dense + 1, models) log-cost regression (last row: intercept)
    "out_w": 1,  # (dense + 1,) log output-token regression (last: intercept)
}


def default_bundle_dir() -> Path:
    """Where the shipped bundle lives (``aco_langchain/data/router_bundle``)."""
    return Path(__file__).resolve().parent.parent / "data" / "router_bundle"


class OperatingPoint(BaseModel):
    """A calibrated knob value: keeps ``quality_target`` of the best model's accuracy."""

    model_config = ConfigDict(extra="forbid")

    quality_target: float = Field(..., gt=0.0, le=1.0)
    lam: float = Field(..., ge=0.0)
    lam_next: float | None = Field(
        None, ge=0.0, description="Mixed point: the cheaper knob value taken with ``mix``."
    )
    mix: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="Share of prompts (by the prompt's crc32 coin u < mix) that use "
        "``lam_next`` instead of ``lam``: the derandomised mix of two neighbouring points.",
    )
    val_accuracy: float
    val_cost_share: float = Field(..., description="Mean cost / always-best-model cost.")


class Manifest(BaseModel):
    """What the bundle is: features, models, tier map, calibration, provenance, checksums."""

    model_config = ConfigDict(extra="forbid")

    format: str
    feature_spec: FeatureSpec
    dense_names: list[str]
    models: list[str] = Field(..., min_length=1)
    tier_map: dict[str, str] = Field(..., description="Tier number ('1'..'5') -> bundle model.")
    tier_map_rule: str = ""
    cost_reference: float = Field(
        ..., gt=0.0, description="Mean USD/call of the best model in training: costs / this."
    )
    token_reference: dict[str, float] = Field(
        default_factory=dict, description="Mean input/output tokens per call in training."
    )
    decision_rule: str = (
        "argmax_t p(t) - lam' * cost(t) / cost_reference, lam' = lam_next if "
        "crc32(prompt) / 2**32 < mix else lam"
    )
    operating_points: list[OperatingPoint] = Field(default_factory=list)
    tier_operating_points: list[OperatingPoint] = Field(default_factory=list)
    difficulty_edges: list[float] = Field(default_factory=list)
    seed: int = 0
    training: dict[str, Any] = Field(default_factory=dict)
    validation: dict[str, Any] = Field(default_factory=dict)
    arrays_sha256: dict[str, str]

    def tier_model(self, tier: int) -> str:
        """The bundle model standing for ``tier``."""
        return self.tier_map[str(tier)]


def array_sha256(arr: np.ndarray) -> str:
    """sha256 over an array's dtype, shape and bytes (stable across npz rewrites)."""
    h = hashlib.sha256()
    h.update(str(arr.dtype.str).encode())
    h.update(str(tuple(arr.shape)).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A loaded (or freshly trained) router: manifest + arrays."""

    manifest: Manifest
    arrays: dict[str, np.ndarray]
    path: str | None = None
    #: A freshly trained bundle's cross-validated metrics (``evaluate.report``: curve,
    #: singles, oracle, zero router); not saved, None for a loaded bundle.
    cv_report: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def fingerprint(self) -> str:
        """One sha256 over all array checksums (what tests compare for reproducibility)."""
        joined = "".join(f"{k}={v}" for k, v in sorted(self.manifest.arrays_sha256.items()))
        return hashlib.sha256(joined.encode()).hexdigest()


def _check_arrays(arrays: dict[str, np.ndarray], manifest: Manifest, where: str) -> None:
    m = len(manifest.models)
    f = len(manifest.dense_names)
    for name, ndim in REQUIRED_ARRAYS.items():
        if name not in arrays:
            raise BundleError(f"{where}: array {name!r} is missing: retrain the bundle")
        if arrays[name].ndim != ndim:
            raise BundleError(f"{where}: array {name!r} has {arrays[name].ndim} dims, not {ndim}")
    shapes = {
        "w_hash": (manifest.feature_spec.n_buckets, m),
        "w_dense": (f, m),
        "bias": (m,),
        "dense_mean": (f,),
        "dense_std": (f,),
        "cost_w": (f + 1, m),
        "out_w": (f + 1,),
    }
    for name, shape in shapes.items():
        if arrays[name].shape != shape:
            raise BundleError(
                f"{where}: array {name!r} has shape {arrays[name].shape}, expected {shape}"
            )
        if not np.all(np.isfinite(arrays[name])):
            raise BundleError(f"{where}: array {name!r} holds NaN or infinite values")


def load_bundle(path: str | os.PathLike[str] | None = None) -> Bundle:
    """Read and verify a bundle directory (None: the shipped default).

    Raises ``BundleError`` when a file is missing, the format version is unknown, an
    array's checksum differs from the manifest, or shapes do not fit.
    """
    d = Path(path) if path is not None else default_bundle_dir()
    man_path, arr_path = d / MANIFEST, d / ARRAYS
    if not d.is_dir():
        raise BundleError(f"{d}: no such bundle directory (train one with `aco train`)")
    for p in (man_path, arr_path):
        if not p.is_file():
            raise BundleError(f"{d}: bundle is incomplete, {p.name} is missing")
    try:
        raw = json.loads(man_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BundleError(f"{man_path}: not valid JSON ({err})") from None
    if not isinstance(raw, dict):
        raise BundleError(f"{man_path}: the manifest must be a JSON object")
    version = raw.get("format")
    if version != BUNDLE_FORMAT:
        raise BundleError(
            f"{man_path}: unknown bundle format {version!r} (this version reads "
            f"{BUNDLE_FORMAT!r}): retrain with `aco train` or upgrade aco-langchain"
        )
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise BundleError(f"{man_path}: field {loc!r}: {first['msg']}") from None
    try:
        with np.load(arr_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise BundleError(
            f"{arr_path}: cannot read arrays ({type(err).__name__}: {err}): the file is "
            "corrupted; retrain with `aco train` or reinstall the shipped bundle"
        ) from err
    if set(arrays) != set(manifest.arrays_sha256):
        raise BundleError(
            f"{d}: arrays {sorted(arrays)} do not match the manifest's "
            f"{sorted(manifest.arrays_sha256)}"
        )
    for name, arr in arrays.items():
        if array_sha256(arr) != manifest.arrays_sha256[name]:
            raise BundleError(
                f"{arr_path}: checksum mismatch for array {name!r}: the bundle was modified "
                "or corrupted; retrain it or reinstall the package"
            )
    _check_arrays(arrays, manifest, str(d))
    return Bundle(manifest=manifest, arrays=arrays, path=str(d))


def make_manifest(arrays: dict[str, np.ndarray], **fields: Any) -> Manifest:
    """A manifest for ``arrays`` (checksums filled in) from the other fields."""
    return Manifest(
        format=BUNDLE_FORMAT,
        dense_names=list(DENSE_NAMES),
        arrays_sha256={k: array_sha256(v) for k, v in sorted(arrays.items())},
        **fields,
    )


def save_bundle(bundle: Bundle, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``bundle`` to ``out_dir`` atomically (temp dir beside it, then rename)."""
    out = Path(out_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not out.is_dir():
        raise BundleError(f"{out}: exists and is not a directory")
    _check_arrays(bundle.arrays, bundle.manifest, str(out))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        arrays: dict[str, Any] = dict(bundle.arrays)
        np.savez_compressed(tmp / ARRAYS, **arrays)
        (tmp / MANIFEST).write_text(
            json.dumps(bundle.manifest.model_dump(mode="json"), indent=2, sort_keys=False) + "\n",
            encoding="utf-8",
        )
        old: Path | None = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
