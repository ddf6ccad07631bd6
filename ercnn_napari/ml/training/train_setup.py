"""Everything a training run checks and builds before its first step.

Kept apart from the loop (ml.train) because these are the places where a user's input is wrong:
an empty split, a tile without a label or without observations, a weights file that is not a
model, a batch that cannot fit in memory. Each is refused here with one sentence naming the file,
before any time is spent training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.core.errors import InputDataError, LabelError, ProjectError, ResourceError
from ercnn_napari.core.messages import Preflight
from ercnn_napari.core.tiles import TileId, format_tile_id
from ercnn_napari.ml.inference.evaluate import load_labels
from ercnn_napari.ml.training.presets import TrainConfig

#: Layers of each input path of the network (see ml.model); "both" freezes both paths.
FREEZE_LAYERS = {
    "sar": ("sar_conv", "sar_convlstm"),
    "optical": ("opt_conv_1", "opt_conv_2", "opt_convlstm"),
}


@dataclass
class TrainingInputs:
    """The tiles, labels and window counts a run uses (written to inputs.json)."""

    train_tiles: list[TileId]
    val_tiles: list[TileId]
    test_tiles: list[TileId]
    labels: dict[TileId, np.ndarray]
    n_windows: dict[TileId, int]
    label_sha256: dict[str, str | None]
    skipped_test_tiles: list[str] = field(default_factory=list)

    def to_dict(self, project_root: Path, split_name: str) -> dict[str, Any]:
        return {
            "project": str(project_root),
            "split": split_name,
            "train_tiles": [format_tile_id(t) for t in self.train_tiles],
            "val_tiles": [format_tile_id(t) for t in self.val_tiles],
            "test_tiles": [format_tile_id(t) for t in self.test_tiles],
            "skipped_test_tiles": self.skipped_test_tiles,
            "label_sha256": self.label_sha256,
            "windows_per_tile": {format_tile_id(t): n for t, n in self.n_windows.items()},
        }


def collect_inputs(project: Any, split_name: str, source: Any, min_windows: int) -> TrainingInputs:
    """Read the split, its labels and its window counts; refuse anything that cannot be trained on.

    Training and validation tiles must all have a label and observations (a silently skipped
    tile would change what the run means). Test tiles are only evaluated; unlabelled ones are
    skipped and listed in inputs.json.
    """
    split = project.split(split_name)
    split_file = project.training_dir / split_name
    if not split.train:
        raise ProjectError(f"split {split_name} has no training tiles; add labelled tiles to its train list",
                           split_file)
    labels = load_labels(project.labels, split.train + split.val)
    test_tiles, skipped = [], []
    for tile in split.test:
        if project.labels.exists(tile):
            test_tiles.append(tile)
        else:
            skipped.append(format_tile_id(tile))
    labels.update(load_labels(project.labels, test_tiles))
    available = set(source.tiles())
    n_windows: dict[TileId, int] = {}
    for tile in split.train + split.val + test_tiles:
        if tile not in available:
            raise InputDataError(f"tile {format_tile_id(tile)} of split {split_name} has no observations",
                                 project.observations_path() or project.root)
        n = len(source.window_table(tile))
        if n < min_windows:
            raise InputDataError(f"tile {format_tile_id(tile)} has {n} windows, fewer than the {min_windows} "
                                 f"windows per sample this run needs", project.observations_path())
        n_windows[tile] = n
    sha = {format_tile_id(t): project.labels.sha256(t) for t in split.train + split.val + test_tiles}
    for tile in split.train + split.val:
        if labels[tile].shape != labels[split.train[0]].shape:
            raise LabelError(f"label of tile {format_tile_id(tile)} has shape {labels[tile].shape}",
                             project.labels.npy_path(tile))
    return TrainingInputs(list(split.train), list(split.val), test_tiles, labels, n_windows, sha, skipped)


def apply_freeze(model: Any, freeze: str) -> list[str]:
    """Make the layers of the chosen input path(s) non-trainable; returns their names.

    Frozen batch-norm layers also stop updating their moving statistics (Keras 3 runs a
    non-trainable BatchNormalization in inference mode), so a frozen path is truly unchanged.
    """
    if freeze == "none":
        return []
    names = FREEZE_LAYERS["sar"] + FREEZE_LAYERS["optical"] if freeze == "both" else FREEZE_LAYERS[freeze]
    for name in names:
        model.get_layer(name).trainable = False
    return list(names)


def _initialise(layer: Any, names: tuple[str, ...], seed: int) -> None:
    """Give ``layer``'s weights ``names`` fresh values from their initialisers, random ones seeded.

    A Keras 3 initialiser draws its seed once, when it is made, so calling the layer's own again
    would give back the values it was built with; a copy with an explicit seed draws anew.
    """
    for offset, name in enumerate(names):
        variable = getattr(layer, name)
        initializer = getattr(layer, f"{name}_initializer")
        config = initializer.get_config()
        if "seed" in config:
            initializer = type(initializer).from_config({**config, "seed": seed + offset})
        variable.assign(initializer(variable.shape, variable.dtype))


def refresh_head(model: Any, seed: int) -> None:
    """``head_start="fresh"``: keep the head's first convolution, start the rest anew.

    The first convolution's kernel reads the branches' features and, with a reference input,
    their change (zeros when widened from a plain model): the baseline's kernel keeps what the
    published head knows about one window's features. Its batch norm, the second block and the
    output layer start from Keras' seeded initialisers: on five sample AoIs a head started this
    way reached a held-out F1 0.08 higher on average than one started entirely as published
    (docs/training.md, "A head that compares with the first window").
    """
    norm = ("gamma", "beta", "moving_mean", "moving_variance")
    second = model.get_layer("head_conv_2")
    _initialise(model.get_layer("head_conv_1").norm, norm, seed)
    _initialise(second.norm, norm, seed)
    _initialise(second.conv, ("kernel", "bias"), seed)
    _initialise(model.get_layer("head_out"), ("kernel", "bias"), seed + 2)


def build_start_model(tf: Any, model_config: Any, baseline: Path | None, seed: int) -> Any:
    """Build the network (inside the caller's strategy scope) and load the baseline weights.

    Built here rather than via ``ml.weights.load_model`` because its variables must be created
    under the distribution strategy. Without a baseline the weights come from Keras' seeded
    initialisers (the tiny preset and ab-initio runs).
    """
    import keras

    from ercnn_napari.ml.model.network import build_model
    from ercnn_napari.ml.model.weights import load_weights

    keras.utils.set_random_seed(seed)
    model = build_model(model_config, seed=seed)
    if baseline is not None:
        load_weights(model, baseline)
    return model


def preflight(model_config: Any, config: TrainConfig, layout: Any, tile_size: int, tiles: int = 0) -> Preflight:
    """Estimated peak memory of one step on one replica (ml.memory) versus what is usable.

    On a CPU the budget is the free host memory; on GPUs the first GPU's free memory when
    nvidia-smi can tell it (else the check only reports the estimate). ``fits`` compares with
    ml.memory's usable fraction, leaving room for the OS and the viewer.
    """
    from ercnn_napari.ml.training.memory import (
        USABLE_FRACTION,
        available_bytes,
        estimate_cached_head_bytes,
        estimate_peak_bytes,
    )

    if config.cache_features:  # ``tiles``: training + validation tiles, whose features are cached
        estimate = estimate_cached_head_bytes(model_config, config.batch_size, config.windows_per_sample,
                                              tiles * config.windows_per_sample, tile_size, tile_size)
        gradients = "head only, on cached frozen-branch features"
    else:
        estimate = int(estimate_peak_bytes(model_config, config.batch_size, config.windows_per_sample,
                                           lean=config.lean_gradients, height=tile_size, width=tile_size))
        gradients = f"{'lean' if config.lean_gradients else 'straightforward'} gradients"
    on_gpu = any("GPU" in d.upper() for d in layout.devices)
    available = available_bytes("gpu:0" if on_gpu else "cpu")
    detail = ("first GPU's free memory" if on_gpu else "free host memory") if available else \
        "available memory unknown; not checked"
    fits = available is None or estimate <= available * USABLE_FRACTION
    detail += (f"; batch {config.batch_size} x {config.windows_per_sample} windows per replica, "
               f"{gradients}, {tile_size}x{tile_size} tiles")
    return Preflight(estimated_peak_bytes=estimate, available_bytes=int(available or 0), fits=fits, detail=detail)


def refuse_if_too_big(message: Preflight, where: Path) -> None:
    if not message.fits:
        raise ResourceError(
            f"one training step needs about {message.estimated_peak_bytes / 2**30:.1f} GiB but only "
            f"{message.available_bytes / 2**30:.1f} GiB is available ({message.detail}), of which a run may "
            f"plan to use 90%; lower --batch-size "
            f"or --windows-per-sample, or pass --skip-memory-check to try anyway", where)

