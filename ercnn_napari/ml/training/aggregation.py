"""Window aggregation of the transfer method: which windows a sample uses, and how they combine.

The transfer labels say "change somewhere in 2017-2020", but the network answers per 6-month
window. The authors bridge the two by predicting K windows spread over the period and taking the
per-pixel MAXIMUM: a pixel is "changed" if any window sees a change there. The windows are a
random subset drawn anew each time a tile is used: window index 20 first, then each next one a
uniform random 45..55 windows after the previous (the authors' ``(20, 45, 56)``, upper bound
exclusive), K = 10 in total, so the subset spans about 515 of the tile's ~540 windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ercnn_napari.core.errors import InputDataError


def max_over_windows(predictions: tf.Tensor) -> tf.Tensor:
    """Per-pixel maximum over the window axis: [B, K, H, W] -> [B, H, W].

    Its gradient (tf.reduce_max's) goes to the winning window of each pixel, split equally among
    tied windows; :mod:`ercnn_napari.ml.training.lean_gradients` relies on exactly that rule.
    """
    predictions = tf.convert_to_tensor(predictions)
    if predictions.shape.rank != 4:
        raise ValueError(f"expected predictions [B, K, H, W], got shape {predictions.shape}")
    return tf.reduce_max(predictions, axis=1)


@dataclass(frozen=True)
class WindowSelection:
    """The rule for drawing a sample's windows (defaults: the authors' Liège parameters).

    ``step_high`` is exclusive, as in the authors' ``(20, 45, 56)``; Mariupol used (20, 40, 50).
    """

    first: int = 20
    step_low: int = 45
    step_high: int = 56
    count: int = 10

    def __post_init__(self) -> None:
        if self.first < 0 or self.count < 1 or not 1 <= self.step_low < self.step_high:
            raise ValueError(f"invalid window selection {self}")

    @property
    def windows_needed(self) -> int:
        """Windows a tile must have so that every draw of the exact rule fits."""
        return self.first + (self.count - 1) * (self.step_high - 1) + 1


def select_window_indices(
    n_windows: int,
    rng: np.random.Generator | int | None = None,
    selection: WindowSelection = WindowSelection(),
    path: str | None = None,
) -> np.ndarray:
    """Draw the window indices of one sample (int64, strictly increasing, length ``count``).

    Tiles with at least ``selection.windows_needed`` windows (516 for the defaults) get the exact
    authors' rule. Shorter tiles get the DOCUMENTED FALLBACK: the first index and the step range
    are scaled by ``(n_windows - 1) / (windows_needed - 1)`` (steps at least 1), so the subset still
    spans the tile's period with the same relative spacing and randomness. A tile with fewer
    windows than ``count`` cannot give distinct windows and raises :class:`InputDataError`
    (``path`` names its file in the message).
    """
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    count = selection.count
    if n_windows < count:
        raise InputDataError(
            f"has {n_windows} usable windows, but a training sample needs {count} distinct windows "
            f"(fewer windows per sample, or a longer observation period, would fix this)",
            path,
        )
    first, low, high = selection.first, selection.step_low, selection.step_high - 1  # high inclusive
    if n_windows < selection.windows_needed:
        scale = (n_windows - 1) / (selection.windows_needed - 1)
        low = max(1, int(np.floor(low * scale)))
        high = max(low, int(np.floor(high * scale)))
        first = max(0, min(int(np.floor(first * scale)), n_windows - 1 - (count - 1) * high))
    steps = generator.integers(low, high + 1, size=count - 1)
    indices = first + np.concatenate([[0], np.cumsum(steps)]).astype(np.int64)
    assert indices[-1] < n_windows, (indices, n_windows)  # guaranteed by the scaling above
    return indices
