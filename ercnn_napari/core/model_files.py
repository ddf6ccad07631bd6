"""Which file a model argument means, and what is in it, without TensorFlow.

The viewer shows the model a run produced or a baseline it will fine-tune; it must not import
TensorFlow for that (see docs/architecture.md), so everything here reads HDF5 with h5py only.
Two kinds of model file exist:

``published``  the authors' Keras-2.4 HDF5 (``model_weights`` group, or a ``save_weights`` file
               with ``layer_names`` at the root); the published configuration is implied.
``ercnn``      our own ``*.ercnn.h5`` (root attribute ``format = "ercnn-napari-model"``) with the
               model configuration and run metadata as JSON attributes.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import h5py

from ercnn_napari.core.errors import ModelFileError

OUR_FORMAT = "ercnn-napari-model"
OUR_FORMAT_VERSION = 1
MODEL_FILE_NAME = "model.ercnn.h5"
DEMO_BASELINE = Path(__file__).resolve().parents[1] / "resources" / "demo_baseline.ercnn.h5"


def resolve_model_path(path: str | os.PathLike) -> Path:
    """A model file as given, or ``RUN/model.ercnn.h5`` for a training run folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        candidate = path / MODEL_FILE_NAME
        if not candidate.is_file():
            raise ModelFileError(
                f"folder has no {MODEL_FILE_NAME}; is it a finished training run? "
                "(an interrupted run keeps its checkpoints under checkpoints/)", path)
        return candidate
    if not path.exists():
        raise ModelFileError("model file does not exist", path)
    if not path.is_file():
        raise ModelFileError("not a regular file", path)
    return path


def model_file_kind(handle: h5py.File) -> str:
    """``"ercnn"`` or ``"published"`` for an open HDF5 file; raises for anything else."""
    fmt = handle.attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt == OUR_FORMAT:
        return "ercnn"
    if "model_weights" in handle or "layer_names" in handle.attrs:
        return "published"
    raise ModelFileError(
        "HDF5 file is neither an ercnn-napari model nor a Keras 2 weights file "
        "(no 'format' attribute, no 'model_weights' group)", handle.filename)


def open_model_h5(path: str | os.PathLike) -> h5py.File:
    """Open an HDF5 model file read-only, turning h5py's errors into one clear message."""
    path = Path(path)
    if not h5py.is_hdf5(path):
        raise ModelFileError("not an HDF5 file (expected a Keras .h5/.hdf5 or an .ercnn.h5 model)", path)
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise ModelFileError(f"cannot read HDF5 file, truncated or corrupted? ({exc})", path) from exc


def read_json_attr(handle: h5py.File, name: str) -> dict[str, Any]:
    """A JSON object stored as a string attribute; a clear error if missing or malformed."""
    raw = handle.attrs.get(name)
    if raw is None:
        raise ModelFileError(f"model file lacks the '{name}' attribute", handle.filename)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    try:
        value = json.loads(str(raw))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"attribute '{name}' is not valid JSON ({exc})", handle.filename) from exc
    if not isinstance(value, dict):
        raise ModelFileError(f"attribute '{name}' is not a JSON object", handle.filename)
    return value


def describe_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """Kind, configuration and metadata of a model file or run folder (h5py only).

    Returns ``{"path", "kind", "config", "metadata"}`` plus ``keras_version`` for published files.
    ``config`` is the ModelConfig as a dict (for published files the published configuration:
    the file's own stored graph is deliberately not interpreted, it describes 18 channels).
    """
    path = resolve_model_path(path)
    with open_model_h5(path) as handle:
        kind = model_file_kind(handle)
        if kind == "ercnn":
            return {
                "path": str(path), "kind": kind,
                "format_version": int(handle.attrs.get("version", 0)),
                "config": read_json_attr(handle, "config"),
                "metadata": read_json_attr(handle, "metadata"),
            }
        keras_version = handle.attrs.get("keras_version")
        if keras_version is None and "model_weights" in handle:
            keras_version = handle["model_weights"].attrs.get("keras_version")
        if isinstance(keras_version, bytes):
            keras_version = keras_version.decode()
        return {
            "path": str(path), "kind": kind,
            "keras_version": None if keras_version is None else str(keras_version),
            "config": published_config_dict(),
            "metadata": {"source": "ERCNN-DRS published weights (Keras 2)"},
        }


def trained_context(path: str | os.PathLike) -> int:
    """The context halo (pixels) a model was trained with (``train --context``), 0 if none (h5py only).

    Why here: the map driver and ``predict`` choose their halo from it without TensorFlow, so a
    model trained with context is always predicted with the neighbours it learned from.
    """
    path = resolve_model_path(path)
    with open_model_h5(path) as handle:
        if model_file_kind(handle) != "ercnn":
            return 0
        value = read_json_attr(handle, "metadata").get("context") or 0
    if not isinstance(value, int) or value < 0:
        raise ModelFileError(f"metadata 'context' must be a whole number of pixels, not {value!r}", path)
    return value


def published_config_dict() -> dict[str, Any]:
    """The configuration of the authors' network (same defaults as ``ml.model.ModelConfig``)."""
    return {"time_steps": 92, "sar_filters": 10, "opt_filters": 26, "head_filters": 8,
            "recurrent_dropout": 0.4, "mask_mode": "quirk", "reference": False}


class BaselineWarning(UserWarning):
    """The default baseline is not the one the environment asked for (shown loudly, never silent)."""


def published_weights_problem() -> str | None:
    """A sentence when ``$ERCNN_PUBLISHED_WEIGHTS`` is set but names no file, else None.

    A typo in that variable used to fall back silently to the much weaker demo baseline, so a
    fine-tune "from the published weights" started from something else: callers must say so.
    """
    published = os.environ.get("ERCNN_PUBLISHED_WEIGHTS")
    if not published:
        return None
    path = Path(published).expanduser()
    if path.is_file():
        return None
    what = "a folder, not a file" if path.is_dir() else "a file that does not exist"
    fallback = f"the demo baseline {DEMO_BASELINE.name}" if DEMO_BASELINE.is_file() else "no baseline"
    return f"ERCNN_PUBLISHED_WEIGHTS points to {what} ({path}): using {fallback} instead"


def default_baseline() -> Path | None:
    """The model fine-tuning starts from when none is given.

    ``$ERCNN_NAPARI_BASELINE`` (must exist), else the authors' published file if
    ``$ERCNN_PUBLISHED_WEIGHTS`` points to one, else the shipped demo baseline if present. A
    ``$ERCNN_PUBLISHED_WEIGHTS`` naming no file issues a :class:`BaselineWarning` (printed on
    stderr by the command line; the docks show :func:`published_weights_problem` themselves).
    """
    explicit = os.environ.get("ERCNN_NAPARI_BASELINE")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.exists():
            raise ModelFileError("ERCNN_NAPARI_BASELINE points to a file that does not exist", path)
        return resolve_model_path(path)
    published = os.environ.get("ERCNN_PUBLISHED_WEIGHTS")
    if published and Path(published).expanduser().is_file():
        return Path(published).expanduser()
    problem = published_weights_problem()
    if problem:
        warnings.warn(problem, BaselineWarning, stacklevel=2)
    if DEMO_BASELINE.is_file():
        return DEMO_BASELINE
    return None
