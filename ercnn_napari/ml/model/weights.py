"""Reading the authors' Keras-2.4 HDF5 weights, and saving/loading our own model files.

Model files are user input, so they are read as data only: h5py arrays and JSON attributes,
never ``keras.models.load_model`` (which can deserialise code: lambdas, custom objects) and never
pickle. The authors' file stores its training graph (18 input channels, other layer names than
their model code); like Keras 2's ``load_weights`` we ignore that graph and map the weights by
layer order onto our layers (:data:`ercnn_napari.ml.model.network.WEIGHTED_LAYERS`), checking every
shape first so that a mismatched file is refused before any weight is changed.

Our format ``*.ercnn.h5``: root attributes ``format="ercnn-napari-model"``, ``version``,
``config`` (ModelConfig JSON), ``metadata`` (JSON: provenance, training run, ...), and one
dataset per variable named ``<layer>/<weight>`` (e.g. ``opt_convlstm/recurrent_kernel``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np

from ercnn_napari.core.atomic import atomic_path
from ercnn_napari.core.errors import ModelFileError
from ercnn_napari.core.model_files import (
    OUR_FORMAT,
    OUR_FORMAT_VERSION,
    model_file_kind,
    open_model_h5,
    read_json_attr,
    resolve_model_path,
)
from ercnn_napari.ml.model.network import (
    WEIGHTED_LAYERS,
    ModelConfig,
    build_model,
    ordered_weights,
    uses_reference,
)


def _decode(name: Any) -> str:
    return name.decode("utf-8") if isinstance(name, bytes | np.bytes_) else str(name)


def _keras2_weight_groups(handle: h5py.File, path: Path) -> list[tuple[str, list[np.ndarray]]]:
    """(file layer name, arrays) of every layer that has weights, in the file's layer order."""
    root = handle["model_weights"] if "model_weights" in handle else handle
    if "layer_names" not in root.attrs:
        raise ModelFileError("Keras weights file lacks the 'layer_names' attribute", path)
    groups = []
    try:
        for layer_name in (_decode(n) for n in root.attrs["layer_names"]):
            if layer_name not in root:
                raise ModelFileError(f"layer '{layer_name}' is listed in layer_names but missing", path)
            group = root[layer_name]
            names = [_decode(n) for n in group.attrs.get("weight_names", [])]
            if not names:
                continue
            arrays = []
            for weight_name in names:
                if weight_name not in group:
                    raise ModelFileError(f"layer '{layer_name}': weight '{weight_name}' is missing", path)
                arrays.append(np.asarray(group[weight_name][()], dtype=np.float32))
            groups.append((layer_name, arrays))
    except (OSError, KeyError) as exc:
        raise ModelFileError(f"cannot read weights, truncated or corrupted? ({exc})", path) from exc
    return groups


def _assign_checked(model: keras.Model, file_layers: list[tuple[str, list[np.ndarray]]], path: Path) -> None:
    """Check every layer's count and shapes against the model, then assign all of them."""
    expected = ordered_weights(model)
    if len(file_layers) != len(expected):
        names = ", ".join(name for name, _ in file_layers) or "none"
        raise ModelFileError(
            f"file has {len(file_layers)} layers with weights ({names}), "
            f"the ERCNN-DRS network has {len(expected)}", path)
    for index, ((file_name, arrays), (our_name, pairs)) in enumerate(zip(file_layers, expected, strict=True), 1):
        where = f"layer {index} ({file_name}, our {our_name})"
        if len(arrays) != len(pairs):
            raise ModelFileError(f"{where}: {len(arrays)} weights in file, {len(pairs)} expected", path)
        for array, (weight_name, variable) in zip(arrays, pairs, strict=True):
            if tuple(array.shape) != tuple(variable.shape):
                raise ModelFileError(
                    f"{where}: {weight_name} shape {tuple(array.shape)} in file, "
                    f"{tuple(variable.shape)} expected", path)
            if not np.all(np.isfinite(array)):
                raise ModelFileError(f"{where}: {weight_name} contains NaN or infinite values", path)
    for arrays, (_, pairs) in zip((a for _, a in file_layers), expected, strict=True):
        for array, (_, variable) in zip(arrays, pairs, strict=True):
            variable.assign(array)


def _widened_for_reference(model: keras.Model, file_layers: list[tuple[str, list[np.ndarray]]]
                           ) -> list[tuple[str, list[np.ndarray]]]:
    """A plain model's weights for a model with a reference input (ml.model.network).

    The head's first kernel reads twice the channels: the window's features, as in the file, and
    their difference to the reference window's, given zeros, so the widened model computes
    exactly what the file's model computes. Files whose first head kernel is already wide pass
    unchanged; anything else is left to the shape check to refuse.
    """
    if not uses_reference(model):
        return file_layers
    index = WEIGHTED_LAYERS.index("head_conv_1")
    if index >= len(file_layers) or not file_layers[index][1]:
        return file_layers
    name, arrays = file_layers[index]
    kernel = arrays[0]
    wanted = tuple(model.get_layer("head_conv_1").conv.kernel.shape)
    if kernel.ndim != 4 or tuple(kernel.shape) == wanted or 2 * kernel.shape[2] != wanted[2]:
        return file_layers
    wide = np.concatenate([kernel, np.zeros_like(kernel)], axis=2)
    return [*file_layers[:index], (name, [wide, *arrays[1:]]), *file_layers[index + 1:]]


def load_published_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """Load a Keras-2 HDF5 (the authors' file or a ``save_weights`` .h5) into ``model`` by order."""
    path = Path(path)
    with open_model_h5(path) as handle:
        if model_file_kind(handle) != "published":
            raise ModelFileError("this is an ercnn-napari model file, not Keras 2 weights; use load_model", path)
        file_layers = _keras2_weight_groups(handle, path)
    _assign_checked(model, _widened_for_reference(model, file_layers), path)


def _our_weight_groups(handle: h5py.File, model: keras.Model, path: Path) -> list[tuple[str, list[np.ndarray]]]:
    groups = []
    try:
        for layer_name, pairs in ordered_weights(model):
            arrays = []
            for weight_name, _ in pairs:
                key = f"{layer_name}/{weight_name}"
                if key not in handle:
                    raise ModelFileError(f"dataset '{key}' is missing", path)
                arrays.append(np.asarray(handle[key][()], dtype=np.float32))
            groups.append((layer_name, arrays))
    except (OSError, KeyError) as exc:
        raise ModelFileError(f"cannot read weights, truncated or corrupted? ({exc})", path) from exc
    return groups


def read_config(path: str | os.PathLike) -> ModelConfig:
    """The ModelConfig of a model file or run folder (the published one for Keras-2 files)."""
    path = resolve_model_path(path)
    with open_model_h5(path) as handle:
        if model_file_kind(handle) == "published":
            return ModelConfig()
        return _config_from(handle, path)


def _config_from(handle: h5py.File, path: Path) -> ModelConfig:
    version = int(handle.attrs.get("version", 0))
    if version > OUR_FORMAT_VERSION:
        raise ModelFileError(
            f"model file format version {version} is newer than this program understands "
            f"({OUR_FORMAT_VERSION}); update ercnn-napari", path)
    try:
        return ModelConfig.from_dict(read_json_attr(handle, "config"))
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"invalid model configuration: {exc}", path) from exc


def load_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """Load either kind of model file into an already built ``model`` (shapes must match).

    A plain file loads into a model with a reference input too: the head's first kernel gets
    zeros for the reference difference, so the model starts as the file's.
    """
    path = resolve_model_path(path)
    with open_model_h5(path) as handle:
        if model_file_kind(handle) == "published":
            file_layers = _keras2_weight_groups(handle, path)
        else:
            _config_from(handle, path)
            file_layers = _our_weight_groups(handle, model, path)
    _assign_checked(model, _widened_for_reference(model, file_layers), path)


def load_model(path_or_run: str | os.PathLike, mask_mode: str | None = None) -> tuple[keras.Model, ModelConfig]:
    """Build the network a model file describes and load its weights: ``(model, config)``.

    Auto-detects the authors' published Keras-2 HDF5 (published configuration) and our own
    ``*.ercnn.h5``; a run folder means its ``model.ercnn.h5``. ``mask_mode`` overrides the
    stored mask mode (weights do not depend on it).
    """
    path = resolve_model_path(path_or_run)
    config = read_config(path)
    if mask_mode is not None and mask_mode != config.mask_mode:
        config = ModelConfig.from_dict({**config.to_dict(), "mask_mode": mask_mode})
    model = build_model(config)
    load_weights(model, path)
    return model, config


def _json_default(value: Any) -> Any:
    """numpy scalars/arrays and paths are fine in metadata; anything else is a caller's mistake."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def save_model(model: keras.Model, config: ModelConfig, path: str | os.PathLike,
               metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` as an ``*.ercnn.h5`` file, atomically (a crash leaves the old file intact)."""
    path = Path(path)
    try:
        metadata_json = json.dumps(metadata or {}, sort_keys=True, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"model metadata is not JSON-serialisable ({exc})", path) from exc
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.attrs["format"] = OUR_FORMAT
            handle.attrs["version"] = OUR_FORMAT_VERSION
            handle.attrs["config"] = json.dumps(config.to_dict(), sort_keys=True)
            handle.attrs["metadata"] = metadata_json
            handle.attrs["keras_version"] = keras.__version__
            for layer_name, pairs in ordered_weights(model):
                for weight_name, variable in pairs:
                    handle.create_dataset(f"{layer_name}/{weight_name}", data=np.asarray(variable.numpy()))
    return path
