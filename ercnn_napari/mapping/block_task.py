"""One map task, run inside a Dask worker process: predict a block of tiles and write each tile's file.

The driver (``ercnn-napari map``) never imports TensorFlow; this module imports it only inside
:func:`run_block`, which Dask calls in a worker process. Models and the observation source stay
loaded in the worker between tasks (module-level cache), so a worker pays for them once.

Per tile: with stacked observations, the tile plus its context halo
(:mod:`ercnn_napari.ml.data.halo`) goes through the shared-step predictor
(:mod:`ercnn_napari.ml.model.shared_steps`) and the centre is kept; stage-3 observations have no
neighbours and take the per-window path without halo (the driver says so). Each tile's
``tiles/{y}_{x}.npy`` is written atomically, so a killed task leaves only complete tiles.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from ercnn_napari.core.atomic import atomic_path
from ercnn_napari.core.errors import InputDataError
from ercnn_napari.core.tiles import format_tile_id, parse_tile_id
from ercnn_napari.core.window_table import WindowTable
from ercnn_napari.mapping.plan import tile_done, tile_path

_CACHE: dict[tuple, Any] = {}


def _loaded(task: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(source, shared-step models, per-window predictor) for the task's project and models, cached."""
    key = (task["project"], tuple(task["models"]), task["combine"], task["batch_size"])
    if key not in _CACHE:
        _CACHE.clear()
        from ercnn_napari.core.model_files import resolve_model_path
        from ercnn_napari.core.project import Project
        from ercnn_napari.ml.data.observations import open_observations
        from ercnn_napari.ml.inference.predict import Predictor
        from ercnn_napari.ml.model.weights import load_model

        source = open_observations(Project.open(task["project"]))
        models = [load_model(resolve_model_path(m))[0] for m in task["models"]]
        predictor = Predictor(models, task["combine"], task["batch_size"])
        _CACHE[key] = (source, predictor.shared_models(), predictor)
    return _CACHE[key]


def tile_windows(project: str, tile: str, stride: int) -> WindowTable:
    """The windows (every ``stride``-th) of one tile: the map's time axis, read in a worker."""
    from ercnn_napari.core.project import Project
    from ercnn_napari.ml.data.observations import open_observations

    source = open_observations(Project.open(project))
    full = source.window_table(parse_tile_id(tile))
    return full.select(full.every(int(stride)))


def run_block(task: dict[str, Any]) -> dict[str, Any]:
    """Predict the task's tiles that are not done yet; returns counts and seconds for the driver."""
    from ercnn_napari.ml.data.halo import HaloReader
    from ercnn_napari.ml.data.observations import StackedSource
    from ercnn_napari.ml.inference import predict
    from ercnn_napari.ml.model.shared_steps import predict_series

    started = time.perf_counter()
    source, shared, predictor = _loaded(task)
    tiles = [parse_tile_id(t) for t in task["tiles"]]
    stride = int(task["stride"])
    stacked = isinstance(source, StackedSource)
    reader = HaloReader(source, int(task["halo"]) if stacked else 0, task["edge"],
                        cache_tiles=3 * (int(task["block"]) + 2)) if stacked else None
    windows = 0
    written = []
    size = int(task["tile_size"])
    for tile in tiles:
        full = source.window_table(tile)
        table = full.select(full.every(stride))
        _check_windows(task, table, tile, source.path(tile))
        if tile_done(task["out"], tile, len(table), size):
            continue
        if stacked:
            block = reader.block(tile)
            probs = predict_series(shared, block.series, table.start_index, table.n_obs, task["combine"],
                                   int(task["batch_size"]), mask_region=block.centre,
                                   reference=(int(full.start_index[0]), int(full.n_obs[0])))
            probs = probs[:, block.centre[0], block.centre[1]]
        else:
            job = predict.tile_job(source, tile, stride)
            probs, n_obs = predictor.run(job)
            predict.finish_table(job, n_obs)
        if probs.shape != (len(table), size, size):
            raise InputDataError(f"tile {format_tile_id(tile)} gives predictions of shape {probs.shape[1:]}, "
                                 f"the grid's tiles are {size}x{size}", source.path(tile))
        if not np.isfinite(probs).all():
            raise InputDataError("the model produced non-finite probabilities", source.path(tile))
        probs = np.clip(probs, 0.0, 1.0).astype(np.float32)
        path = tile_path(task["out"], tile)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            np.save(tmp, probs)
        windows += len(probs)
        written.append(format_tile_id(tile))
    return {"tiles": task["tiles"], "written": written, "windows": windows,
            "seconds": time.perf_counter() - started, "pid": os.getpid()}


def _check_windows(task: dict[str, Any], table: WindowTable, tile: tuple[int, int], path: Any) -> None:
    """Every tile of a map must have the map's windows (one time axis for the whole stack)."""
    n_obs, starts = task.get("n_obs"), task.get("start_time")
    if n_obs is None:
        return
    same = (len(table) == len(n_obs) and np.array_equal(table.n_obs, np.asarray(n_obs))
            and np.allclose(table.start_time, np.asarray(starts, dtype=np.float64), equal_nan=True))
    if not same:
        raise InputDataError(f"tile {format_tile_id(tile)} has other windows than the map's first tile "
                             f"({len(table)} vs {len(n_obs)} at stride {task['stride']}); a map needs one "
                             "time axis for the whole AoI", path)
