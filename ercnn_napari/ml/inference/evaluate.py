"""Precision / recall / F1 / IoU of a model on labelled tiles, on the max-over-windows map.

The transfer labels say "change somewhere in the period", so a model is judged the way it is
trained: predict windows spread over the whole period, take the per-pixel maximum, threshold it
(0.5) and compare with the label. Scores are reported per tile and pooled over all tiles
(core.metrics, the same code the viewer uses, so both agree to the last digit).

Which windows: ``windows_per_tile`` evenly spaced windows of the tile's window table (the first
and the last included), or every window when it is 0. Evenly spaced rather than random so a
before/after comparison sees the very same windows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ercnn_napari.core.constants import REFERENCE_WINDOW
from ercnn_napari.core.errors import LabelError
from ercnn_napari.core.metrics import tile_scores
from ercnn_napari.core.tiles import TileId, format_tile_id


def evenly_spaced(n_windows: int, count: int) -> np.ndarray:
    """``count`` distinct window indices spread over ``0..n_windows-1`` (all if count is 0 or too big)."""
    if count <= 0 or count >= n_windows:
        return np.arange(n_windows, dtype=np.int64)
    return np.unique(np.round(np.linspace(0, n_windows - 1, count)).astype(np.int64))


def fit_time_steps(windows: np.ndarray, time_steps: int) -> np.ndarray:
    """Make windows [k, T_in, H, W, C] match a model with ``time_steps`` steps.

    Windows come padded to 92 steps. The full network takes them as they are; a test-sized
    network with fewer steps sees the first ``time_steps`` observations of each window (only
    tiny configurations have T < 92, and they exist to exercise the code, not to be accurate).
    """
    t_in = windows.shape[1]
    if t_in == time_steps:
        return windows
    if t_in > time_steps:
        return windows[:, :time_steps]
    pad = [(0, 0)] * windows.ndim
    pad[1] = (0, time_steps - t_in)
    return np.pad(windows, pad, constant_values=np.float32(-1.0))


#: Value of an unsure pixel in the float labels training and evaluation use: excluded from the
#: loss (ml.loss) and every score (core.metrics); ``> 0`` still reads it as "no change".
UNSURE_TARGET = -1.0


def load_labels(labels: Any, tiles: Sequence[TileId]) -> dict[TileId, np.ndarray]:
    """Every tile's label as float32 0/1 (-1 where unsure), refusing tiles without one (naming the file)."""
    from ercnn_napari.core.label_geotiff import UNSURE

    result = {}
    for tile in tiles:
        array = labels.read_values(tile)
        if array is None:
            raise LabelError(f"tile {format_tile_id(tile)} has no label; label it or remove it from the split",
                             labels.npy_path(tile))
        values = np.asarray(array)
        result[tile] = np.where(values == UNSURE, UNSURE_TARGET, values > 0).astype(np.float32)
    return result


def predict_max_map(model: Any, windows: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """Per-pixel maximum of the model's predictions over windows [k, T, H, W, C] -> [H, W]."""
    best = None
    for start in range(0, len(windows), batch_size):
        pred = np.asarray(model(windows[start:start + batch_size], training=False))
        chunk = pred.max(axis=0)
        best = chunk if best is None else np.maximum(best, chunk)
    return best


def tile_windows(source: Any, tile: TileId, table: Any, indices: np.ndarray, time_steps: int,
                 halo_reader: Any = None, reference: bool = False) -> np.ndarray:
    """The windows ``indices`` of a tile fitted to ``time_steps``; with a ``halo_reader``
    (:class:`ercnn_napari.ml.data.halo.HaloReader`, for a model trained with ``--context``) they carry
    the neighbours' halo, as the model saw in training. ``reference`` (a model with a reference
    input, ml.model.network): each beside the tile's first window, [k, T, H, W, 34]."""
    indices = np.asarray(indices, dtype=np.int64)
    if reference:
        from ercnn_napari.ml.model.network import attach_reference

        both = tile_windows(source, tile, table, np.concatenate([[REFERENCE_WINDOW], indices]), time_steps,
                            halo_reader)
        return attach_reference(both[1:], both[0])
    if halo_reader is not None and halo_reader.halo:
        from ercnn_napari.ml.data.halo import context_windows

        return context_windows(halo_reader, tile, table, indices, time_steps)
    return fit_time_steps(np.asarray(source.windows(tile, indices), np.float32), time_steps)


def reads_reference(model: Any) -> bool:
    """Whether ``model`` takes each window beside its tile's first one (ml.model.network.uses_reference)."""
    from ercnn_napari.ml.model.network import uses_reference

    return uses_reference(model)


def make_halo_reader(source: Any, halo: int) -> Any:
    """A halo reader for a model trained with context ``halo`` (None for 0: each tile alone)."""
    if not halo:
        return None
    from ercnn_napari.ml.data.halo import HaloReader

    return HaloReader(source, int(halo), "reflect")


def predict_window_maps(model: Any, time_steps: int, source: Any, tile: TileId, windows_per_tile: int,
                        batch_size: int = 8, halo_reader: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(maps [k, H, W], starts [k], ends [k])`` of one tile's evenly spaced windows.

    The per-window maps are kept (not only their maximum) so the held-out report can ask *when*
    a model saw a dated event; k x 32 x 32 floats per tile are nothing next to the inputs.
    """
    from ercnn_napari.ml.data.halo import crop_centre

    table = source.window_table(tile)
    indices = evenly_spaced(len(table), windows_per_tile)
    windows = tile_windows(source, tile, table, indices, time_steps, halo_reader, reads_reference(model))
    halo = halo_reader.halo if halo_reader is not None else 0
    maps = [crop_centre(np.asarray(model(windows[a:a + batch_size], training=False)), halo)
            for a in range(0, len(windows), batch_size)]
    return (np.concatenate(maps, axis=0).astype(np.float32), np.asarray(table.start_time)[indices],
            np.asarray(table.end_time)[indices])


def evaluate_tiles(
    model: Any,
    time_steps: int,
    source: Any,
    labels: dict[TileId, np.ndarray],
    *,
    windows_per_tile: int = 20,
    threshold: float = 0.5,
    border: int = 0,
    batch_size: int = 8,
    should_stop: Callable[[], bool] | None = None,
    on_tile: Callable[[int, int, TileId], None] | None = None,
    halo: int = 0,
) -> dict[str, Any]:
    """Scores of ``model`` on ``labels``' tiles; ``source`` is an ml.observations source.

    Returns ``{"per_tile": {"y:x": scores+counts}, "overall": ..., "windows": {"y:x": [window ids]},
    "threshold", "border", "windows_per_tile"}``. ``should_stop`` is polled between tiles so a
    cancelled worker does not sit through a long evaluation; a stopped evaluation returns the
    tiles done so far with ``"complete": False``. ``halo``: the model's training context
    (``train --context``), predicted with the same halo of neighbours and scored on the tile.
    """
    from ercnn_napari.ml.data.halo import crop_centre

    reader = make_halo_reader(source, halo)
    reference = reads_reference(model)
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    window_ids: dict[str, list[int]] = {}
    tiles = list(labels)
    complete = True
    for done, tile in enumerate(tiles):
        if should_stop is not None and should_stop():
            complete = False
            break
        table = source.window_table(tile)
        indices = evenly_spaced(len(table), windows_per_tile)
        windows = tile_windows(source, tile, table, indices, time_steps, reader, reference)
        prediction = crop_centre(predict_max_map(model, windows, batch_size), halo)
        label = labels[tile]
        if prediction.shape != label.shape:
            raise LabelError(f"label of tile {format_tile_id(tile)} has shape {label.shape}, the "
                             f"observations give {prediction.shape}")
        key = format_tile_id(tile)
        pairs[key] = (prediction, label)
        window_ids[key] = [int(table.ids[i]) for i in indices]
        if on_tile is not None:
            on_tile(done + 1, len(tiles), tile)
    per_tile, overall = tile_scores(pairs, threshold=threshold, border=border)
    return {
        "per_tile": per_tile, "overall": overall, "windows": window_ids, "threshold": threshold,
        "border": border, "windows_per_tile": windows_per_tile, "complete": complete,
    }


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """Overall score changes after - before (nan stays nan): the headline of evaluation.json."""
    delta = {}
    for key in ("precision", "recall", "f1", "iou"):
        delta[key] = float(after["overall"][key]) - float(before["overall"][key])
    return delta
