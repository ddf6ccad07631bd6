"""The index baseline on a project: scores of its tiles, thresholds fitted on training labels, files.

``score_tiles`` reads each tile's stacked series (without TensorFlow) and computes the three
index-difference scores; ``fit_indices`` fits each index's F1-best threshold on the training
tiles' labels (the analyst's labels, never the answer key) and names the index with the best
training F1 (chosen on training tiles only, so held-out figures stay honest); ``write_layers``
writes one GeoTIFF per index (float32 scores, NaN outside the tiles computed, the fitted
threshold in the tags) and ``baseline.json``, which the Review dock can show as layers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.baseline.index_diff import INDICES, PERIOD_DAYS, index_scores, seconds_of
from ercnn_napari.baseline.stacked_reader import read_stacked_numpy
from ercnn_napari.core.atomic import atomic_path, atomic_write_text
from ercnn_napari.core.errors import InputDataError, ProjectError
from ercnn_napari.core.heldout import fit_threshold
from ercnn_napari.core.tiles import TileId, format_tile_id

INFO_FILE = "baseline.json"
Scores = dict[TileId, dict[str, np.ndarray]]


def score_tiles(project: Any, tiles: Sequence[TileId], period_days: float = PERIOD_DAYS,
                on_tile: Callable[[int, int, TileId], None] | None = None) -> Scores:
    """Index scores of every tile (tiles without observations are refused, naming the folder)."""
    config = project.observations_config or {}
    if config.get("kind") != "stacked":
        raise ProjectError("the index baseline needs stacked (stage-2) observations; this project has "
                           f"{config.get('kind') or 'none'}", project.file_path)
    files = project.observation_files()
    start = seconds_of(project.period.start)
    end = seconds_of(project.period.end) + 86400.0          # the end day is included
    result: Scores = {}
    for done, tile in enumerate(tiles, start=1):
        if tile not in files:
            raise InputDataError(f"tile {format_tile_id(tile)} has no observations", project.observations_path())
        stamps, observations = read_stacked_numpy(files[tile])
        try:
            result[tile] = index_scores(stamps, observations, start, end, period_days)
        except ValueError as exc:
            raise InputDataError(str(exc), files[tile]) from None
        if on_tile is not None:
            on_tile(done, len(tiles), tile)
    return result


def per_index(scores: Scores, name: str) -> dict[TileId, np.ndarray]:
    return {tile: maps[name] for tile, maps in scores.items()}


def fit_indices(scores: Scores, labels: Mapping[TileId, np.ndarray], border: int = 1) -> dict[str, Any]:
    """``{"indices": {name: {"threshold", "train_f1"}}, "best": name}`` fitted on ``labels``' tiles."""
    fitted = {}
    for name in INDICES:
        maps = {t: m for t, m in per_index(scores, name).items() if t in labels}
        fitted[name] = fit_threshold(maps, labels, border)
    ranked = [n for n in INDICES if not math.isnan(fitted[n]["train_f1"])]
    best = max(ranked, key=lambda n: fitted[n]["train_f1"]) if ranked else INDICES[0]
    return {"indices": fitted, "best": best}


def write_layers(out_dir: Path, project: Any, scores: Scores, fitted: Mapping[str, Any],
                 extra: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """One float32 GeoTIFF per index over the project grid + ``baseline.json``; returns the paths."""
    import rasterio

    grid = project.grid
    height, width = grid.shape_pixels
    size = grid.tile_size
    paths = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in INDICES:
        mosaic = np.full((height, width), np.nan, np.float32)
        for (y, x), maps in scores.items():
            mosaic[y * size:(y + 1) * size, x * size:(x + 1) * size] = maps[name]
        path = out_dir / f"{name}.tif"
        with atomic_path(path) as tmp:
            with rasterio.open(tmp, "w", driver="GTiff", height=height, width=width, count=1, dtype="float32",
                               crs=grid.crs, transform=grid.transform, nodata=float("nan"),
                               compress="deflate") as dst:
                dst.write(mosaic, 1)
                dst.update_tags(index=name, threshold=str(fitted["indices"][name]["threshold"]),
                                note="index-difference change score; change where score >= threshold")
        paths[name] = path
    info = {"indices": fitted["indices"], "best": fitted["best"], "files": {n: p.name for n, p in paths.items()},
            "tiles": [format_tile_id(t) for t in scores], **(extra or {})}
    atomic_write_text(out_dir / INFO_FILE, json.dumps(_jsonable(info), indent=1, sort_keys=True) + "\n")
    return paths


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def before_after_rows(project: Any, train_labels: Mapping[TileId, np.ndarray],
                      sets: Mapping[str, Mapping[TileId, np.ndarray]], border: int = 1) -> dict[str, Any]:
    """The index baseline's row of a run's before/after table.

    Fitted on the training tiles' labels, the index with the best training F1 is scored on each
    set's labelled tiles at its fitted threshold (per tile and pooled, ``core.metrics``), so a
    fine-tune's "after" can be read against what an index difference gets on the same tiles.
    """
    from ercnn_napari.core.metrics import tile_scores

    tiles = sorted(set(train_labels).union(*[set(s) for s in sets.values()]))
    scores = score_tiles(project, tiles)
    fitted = fit_indices({t: scores[t] for t in train_labels}, train_labels, border)
    best = fitted["best"]
    threshold = fitted["indices"][best]["threshold"]
    out: dict[str, Any] = {"index": best, "threshold": threshold, "train_f1": fitted["indices"][best]["train_f1"],
                           "sets": {}}
    if math.isnan(threshold):
        return out
    for name, labels in sets.items():
        pairs = {format_tile_id(t): (scores[t][best], labels[t]) for t in labels}
        per_tile, overall = tile_scores(pairs, threshold=threshold, border=border)
        out["sets"][name] = {"per_tile": per_tile, "overall": overall}
    return out


def index_row_or_reason(project: Any, train_labels: Mapping[TileId, np.ndarray],
                        sets: Mapping[str, Mapping[TileId, np.ndarray]], border: int = 1) -> dict[str, Any]:
    """:func:`before_after_rows`, or ``{"skipped": reason}`` when the project cannot give it
    (stage-3 observations, a series that does not cover both periods): a before/after table must
    never hide why its index row is missing."""
    from ercnn_napari.core.errors import ErcnnError

    try:
        return before_after_rows(project, train_labels, sets, border)
    except ErcnnError as exc:
        return {"skipped": str(exc)}
