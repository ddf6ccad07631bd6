"""Fine-tuning the head on cached features of a frozen backbone: how the quick preset fits a CPU.

Why. A full fine-tuning step costs about a second per window on two CPU cores (92 ConvLSTM
steps forward and backward), so a few minutes buy a few dozen tile-samples, and the sample AoI
showed that this is not enough to move the network at all (val F1 unchanged after 24 to 48
steps from the published weights). With both input branches frozen (``freeze="both"``, which the
paper allows as an option) everything up to the concatenated ConvLSTM states is fixed: the
"backbone". Run in inference mode (no recurrent dropout, batch norm on its moving statistics,
as a frozen network is normally used), its output for a given (tile, window) never changes, so
it is computed once and the head (two 3x3 conv blocks and the 1x1 sigmoid, 3,225 weights;
5,817 with a reference input) trains on the cached maps, hundreds of steps a minute. The window
maximum and the Tanimoto loss are the recipe's; the head sees the same per-window calls as in
the full model.

What differs from the recipe (stated in the run's configuration):

- windows are the tile's ``K`` evenly spaced windows, the same every epoch (so they can be
  cached), instead of window 20 plus random 45-55 steps;
- augmentation rotates and flips the cached feature maps (codes 0-7), not the observations:
  the backbone's 3x3 kernels are not rotation-equivariant, so this is an approximation of the
  recipe's input augmentation that costs nothing; the frozen-column codes (8-15) have no
  meaning for feature maps and are refused (ml.presets.TrainConfig.validate).

With a reference input (``ModelConfig.reference``) the cache holds each tile's first window's
features too (the reference shares the frozen branches), and the head trains on
``concat(f_k, f_k - f_first)``, built from the cache for every sample.

Everything else (checkpoints, resume, cancellation, validation, evaluation with the whole
model) is the ordinary training loop's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ercnn_napari.core.constants import N_CHANNELS, REFERENCE_WINDOW
from ercnn_napari.core.tiles import TileId
from ercnn_napari.ml.model.network import BRANCH_LAYERS, apply_branches

#: the layers trained on the cached features, in order
HEAD_LAYERS = ("head_conv_1", "head_conv_2", "head_out")


def split_model(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    """``(backbone, head)`` sharing the model's layers: training the head trains the model.

    The backbone takes ONE window [B, T, H, W, 17] (also for a model with a reference input,
    whose two windows go through the same branches) and gives its features [B, H, W, 36]; the
    head takes what ``head_conv_1`` reads: those features, or with a reference
    ``concat(f, f - f_ref)`` [B, H, W, 72] (:func:`head_input`).
    """
    layers = {name: model.get_layer(name) for name in BRANCH_LAYERS}
    window = keras.Input(shape=(int(model.input_shape[1]), None, None, N_CHANNELS), name="window")
    backbone = keras.Model(window, apply_branches(layers, window), name="ercnn_backbone")
    channels = int(model.get_layer("head_conv_1").conv.kernel.shape[2])
    features = keras.Input(shape=(None, None, channels), name="head_input")
    x = features
    for name in HEAD_LAYERS:
        x = model.get_layer(name)(x)
    head = keras.Model(features, keras.ops.squeeze(x, axis=-1), name="ercnn_head")
    return backbone, head


def head_input(features: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """What the head reads: features [K, H, W, C], or beside a reference [H, W, C] ``concat(f, f - f_ref)``."""
    if reference is None:
        return features
    return np.concatenate([features, features - reference[np.newaxis]], axis=-1)


class FeatureCache:
    """Backbone output per (tile, window index), computed once in inference mode.

    ``load_windows(tile, indices)`` gives single windows [k, T, H, W, 17]. With ``reference``
    every tile's first window is cached as well and :meth:`features` returns the head's input
    beside it (:func:`head_input`).
    """

    def __init__(self, backbone: keras.Model, load_windows: Callable[[TileId, Sequence[int]], np.ndarray],
                 batch_size: int = 8, reference: bool = False) -> None:
        self._load = load_windows
        self._batch = int(batch_size)
        self.reference = bool(reference)
        self._store: dict[tuple[TileId, int], np.ndarray] = {}
        self._forward = tf.function(lambda x: backbone(x, training=False), reduce_retracing=True)

    def __len__(self) -> int:
        return len(self._store)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self._store.values())

    def fill(self, wanted: dict[TileId, Sequence[int]], on_tile: Callable[[int, int, TileId], bool] | None = None) -> bool:
        """Compute the features of every wanted (tile, window) not cached yet.

        ``on_tile(done, total, tile)`` is called after each tile; returning False stops early
        (a cancelled run), and ``fill`` then returns False.
        """
        for done, (tile, windows) in enumerate(wanted.items(), start=1):
            indices = [int(w) for w in windows] + ([REFERENCE_WINDOW] if self.reference else [])
            missing = [w for w in dict.fromkeys(indices) if (tile, w) not in self._store]
            for start in range(0, len(missing), self._batch):
                chunk = missing[start:start + self._batch]
                features = np.asarray(self._forward(tf.constant(self._load(tile, chunk), tf.float32)))
                if not np.all(np.isfinite(features)):
                    raise FloatingPointError(f"the frozen backbone gave non-finite features for tile {tile}")
                for index, feature in zip(chunk, features, strict=True):
                    self._store[(tile, index)] = feature
            if on_tile is not None and on_tile(done, len(wanted), tile) is False:
                return False
        return True

    def features(self, tile: TileId, windows: Sequence[int]) -> np.ndarray:
        """The head's input for ``windows`` of ``tile`` from the cache, stacked [K, H, W, C]."""
        stacked = np.stack([self._store[(tile, int(w))] for w in windows])
        return head_input(stacked, self._store[(tile, REFERENCE_WINDOW)] if self.reference else None)


def feature_augment(features: Any, label: Any, code: Any) -> tuple[Any, Any]:
    """Rotate/flip cached features [K, H, W, C] and the label [H, W] by an augmentation code 0-7.

    ``ml.augment`` reads a rank-4 input as [T, H, W, C], so its geometric part applies unchanged
    with the window axis in the place of time.
    """
    from ercnn_napari.ml.training.augment import augment

    return augment(features, label, code)
