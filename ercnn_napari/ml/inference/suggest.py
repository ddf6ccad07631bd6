"""Model uncertainty per tile on the max-over-windows map: ensemble disagreement or MC dropout.

Two estimates, both of the map the labels describe (the per-pixel maximum over windows spread
across the period, as ``ml.evaluate`` scores it):

* several models (e.g. the V1-V3 fine-tunes, trained on different splits): the per-pixel standard
  deviation of their maps, the "query by committee" disagreement;
* one model: Monte-Carlo dropout, ``passes`` forward passes with the ConvLSTMs' recurrent dropout
  switched on (``training=True``), and the per-pixel standard deviation over passes. The network
  has batch normalisation: :func:`dropout_only` keeps it in inference mode, or each pass would
  normalise with its own batch statistics and update the moving statistics as it went.

A tile's score is the mean pixel uncertainty inside ``border`` (the inner 30 x 30 the loss trains).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ercnn_napari.core.constants import REFERENCE_WINDOW
from ercnn_napari.core.tiles import TileId
from ercnn_napari.ml.inference.evaluate import evenly_spaced, fit_time_steps, predict_max_map


def dropout_only(model: Any) -> None:
    """Make ``training=True`` switch on dropout only: batch normalisation stays in inference mode.

    Keras runs a ``BatchNormalization`` with ``trainable=False`` in inference mode whatever
    ``training`` says (our ``Keras2BatchNorm`` too), so its moving statistics are used and never
    changed. Only for a model that is not trained afterwards (it changes what fitting would do).
    """
    import keras

    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False


def _mc_max_map(model: Any, windows: np.ndarray, batch_size: int) -> np.ndarray:
    best = None
    for start in range(0, len(windows), batch_size):
        pred = np.asarray(model(windows[start:start + batch_size], training=True)).max(axis=0)
        best = pred if best is None else np.maximum(best, pred)
    return best


def tile_maps(models: Sequence[tuple[Any, int]], source: Any, tile: TileId, windows_per_tile: int,
              passes: int, batch_size: int) -> np.ndarray:
    """[k, H, W] max-over-windows maps: one per model, or ``passes`` MC-dropout passes of one model."""
    from ercnn_napari.ml.model.network import attach_reference, uses_reference

    table = source.window_table(tile)
    indices = evenly_spaced(len(table), windows_per_tile)
    raw = np.asarray(source.windows(tile, np.concatenate([[REFERENCE_WINDOW], indices])), np.float32)

    def model_input(model: Any, steps: int) -> np.ndarray:
        fitted = fit_time_steps(raw, steps)
        return attach_reference(fitted[1:], fitted[0]) if uses_reference(model) else fitted[1:]

    if len(models) >= 2:
        return np.stack([predict_max_map(m, model_input(m, t), batch_size) for m, t in models])
    model, steps = models[0]
    windows = model_input(model, steps)
    return np.stack([_mc_max_map(model, windows, batch_size) for _ in range(max(2, passes))])


def tile_uncertainty(models: Sequence[tuple[Any, int]], source: Any, tiles: Sequence[TileId], *,
                     windows_per_tile: int = 6, passes: int = 8, border: int = 1, batch_size: int = 8,
                     on_tile: Callable[[int, int, TileId], None] | None = None,
                     should_stop: Callable[[], bool] | None = None) -> dict[TileId, tuple[float, np.ndarray]]:
    """tile -> (score, per-pixel uncertainty [H, W]) for each tile (stops early if asked)."""
    result: dict[TileId, tuple[float, np.ndarray]] = {}
    if len(models) == 1:
        dropout_only(models[0][0])
    for done, tile in enumerate(tiles, start=1):
        if should_stop is not None and should_stop():
            break
        maps = tile_maps(models, source, tile, windows_per_tile, passes, batch_size)
        pixel = maps.std(axis=0)
        inner = pixel[border:pixel.shape[0] - border, border:pixel.shape[1] - border] if border else pixel
        result[tile] = (float(inner.mean()), pixel.astype(np.float32))
        if on_tile is not None:
            on_tile(done, len(tiles), tile)
    return result
