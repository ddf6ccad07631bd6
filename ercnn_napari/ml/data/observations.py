"""Where a project's observation windows come from, behind one interface.

Two storage forms exist and the trainer, evaluator and predictor should not care which:

``stacked``  stage-2 files ``{y}_{x}.tfrecords`` (or ``<Site>_{y}_{x}.tfrecords``), one record
             per time step; windows are cut ON THE FLY by the authors' rules
             (:mod:`ercnn_napari.core.windowing`). About an order of magnitude smaller than
             stage 3, because overlapping windows share their observations.
``stage3``   the authors' windowed files ``training/V{n}/data/{train,val}/<Site>_{y}_{x}.tfrecords``
             (read-only), one record per window; window times come from the window CSV the
             project file names (``window_csv``), else only the observation counts are known.

Every source answers ``tiles()``, ``window_table(tile)``, ``windows(tile, positions)`` ->
float32 [k, 92, H, W, 17] padded with -1, and ``dataset(tile, positions)`` -> tf.data of
``(n_obs, window)``. ``positions`` are row positions in the window table (0-based), not ids.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from ercnn_napari.core.constants import MAX_OBSERVATIONS
from ercnn_napari.core.errors import InputDataError, ProjectError
from ercnn_napari.core.tiles import TileId, format_tile_id, parse_tile_stem
from ercnn_napari.core.window_table import WindowTable, read_window_csv
from ercnn_napari.core.windowing import compute_windows
from ercnn_napari.ml.data import pipeline
from ercnn_napari.ml.data.tfrecords import (
    StackedSeries,
    decode_stage3_record,
    iter_raw_records,
    read_stacked,
    read_stacked_timestamps,
    stage3_counts,
)


def _positions(indices: Any, table: WindowTable, path: Path) -> np.ndarray:
    positions = np.asarray(indices, dtype=np.int64).reshape(-1)
    if positions.size and (positions.min() < 0 or positions.max() >= len(table)):
        raise InputDataError(f"window positions {positions.min()}..{positions.max()} are outside the "
                             f"{len(table)} windows of this tile", path)
    return positions


def _find_tile_files(folder: Path, site: str | None, recursive: bool) -> dict[TileId, Path]:
    """Tile -> file for every ``[<Site>_]{y}_{x}.tfrecords`` in (or below) ``folder``, first in sorted order.

    The authors' V1-V3 datasets hold the same tile's windows in several versions' train/val
    folders; those copies are identical, so the first one is as good as any.
    """
    found: dict[TileId, Path] = {}
    for path in sorted(folder.rglob("*.tfrecords") if recursive else folder.glob("*.tfrecords")):
        parsed = parse_tile_stem(path.stem)
        if parsed is None:
            continue
        file_site, tile = parsed
        if site is not None and file_site is not None and file_site != site:
            continue
        found.setdefault(tile, path)
    return found


class ObservationSource(ABC):
    """The windows of a set of tiles, whatever the storage form."""

    kind = ""

    def __init__(self, folder: Path, site: str | None = None, files: dict[TileId, Path] | None = None) -> None:
        if not folder.is_dir():
            raise ProjectError("observations folder does not exist", folder)
        self.folder = folder
        self.site = site
        self._files = dict(files) if files is not None else _find_tile_files(folder, site, self.kind == "stage3")

    def tiles(self) -> list[TileId]:
        """Tiles that have observations, sorted by (y, x)."""
        return sorted(self._files)

    def path(self, tile: TileId) -> Path:
        """The file holding ``tile``'s observations."""
        tile = (int(tile[0]), int(tile[1]))
        try:
            return self._files[tile]
        except KeyError:
            raise InputDataError(f"no observations for tile {format_tile_id(tile)}", self.folder) from None

    @abstractmethod
    def window_table(self, tile: TileId) -> WindowTable:
        """Every window of the tile, in file/time order."""

    @abstractmethod
    def windows(self, tile: TileId, indices: Any) -> np.ndarray:
        """float32 [k, 92, H, W, 17] for the table rows ``indices`` (in that order), padded with -1."""

    @abstractmethod
    def dataset(self, tile: TileId, indices: Any = None, time_steps: int = MAX_OBSERVATIONS) -> tf.data.Dataset:
        """tf.data of (n_obs, window [time_steps, H, W, 17]) for rows ``indices`` (all if None)."""

    def describe(self) -> dict[str, Any]:
        """What prediction.json and run folders record about the source."""
        return {"kind": self.kind, "path": str(self.folder), "tiles": len(self._files)}


class StackedSource(ObservationSource):
    """Stage-2 stacked series, windowed on the fly; decoded series are kept for the last few tiles."""

    kind = "stacked"

    def __init__(self, folder: Path, site: str | None = None, files: dict[TileId, Path] | None = None,
                 cache_tiles: int = 2, window_days: float | None = None, min_obs: int | None = None,
                 window_csv: Path | None = None) -> None:
        super().__init__(folder, site, files)
        self.window_csv = window_csv
        self._csv_table = read_window_csv(window_csv) if window_csv is not None else None
        self._cache: OrderedDict[tuple, tuple[StackedSeries, WindowTable]] = OrderedDict()
        self._tables: dict[tuple, WindowTable] = {}
        self._cache_tiles = max(1, cache_tiles)
        self._rules = {k: v for k, v in (("window_days", window_days), ("min_obs", min_obs)) if v is not None}

    def series(self, tile: TileId) -> tuple[StackedSeries, WindowTable]:
        """The decoded series and its windows; each file is read once while it stays in the cache."""
        path = self.path(tile)
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        series = read_stacked(path)
        table = self._table(series.timestamps, tile, path)
        self._cache[key] = (series, table)
        while len(self._cache) > self._cache_tiles:
            self._cache.popitem(last=False)
        return series, table

    def window_table(self, tile: TileId) -> WindowTable:
        """From the cached series, else from the file's time axis only (tables of many tiles stay cheap)."""
        path = self.path(tile)
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key in self._cache:
            return self._cache[key][1]
        if key not in self._tables:
            self._tables[key] = self._table(read_stacked_timestamps(path), tile, path)
        return self._tables[key]

    def _table(self, stamps: np.ndarray, tile: TileId, path: Path) -> WindowTable:
        table = compute_windows(stamps, source=path, **self._rules)
        if not len(table):
            raise InputDataError(f"the series of {len(stamps)} time steps has no window with enough observations "
                                 f"(a window needs at least {self._rules.get('min_obs', 35)})", path)
        if self._csv_table is not None:
            _check_same_windows(table, self._csv_table, tile, self.window_csv)
        return table

    def windows(self, tile: TileId, indices: Any) -> np.ndarray:
        series, table = self.series(tile)
        positions = _positions(indices, table, self.path(tile))
        out = np.empty((len(positions), MAX_OBSERVATIONS, *series.observations.shape[1:]), np.float32)
        for k, row in enumerate(positions):
            start, count = int(table.start_index[row]), int(table.n_obs[row])
            out[k] = pipeline.pad_numpy(series.observations[start:start + count], MAX_OBSERVATIONS)
        return out

    def dataset(self, tile: TileId, indices: Any = None, time_steps: int = MAX_OBSERVATIONS) -> tf.data.Dataset:
        series, table = self.series(tile)
        positions = None if indices is None else _positions(indices, table, self.path(tile))
        pipeline.check_fits(table if positions is None else table.select(positions), time_steps, self.path(tile))
        return pipeline.stacked_windows(series.observations, table, positions, time_steps)


def _check_same_windows(computed: WindowTable, listed: WindowTable, tile: TileId, csv: Path | None) -> None:
    """A window CSV next to stacked series must describe the windows the series gives, or it misleads."""
    if computed.equals(listed):
        return
    n = min(len(computed), len(listed))
    differ = [i for i in range(n) if not computed.select([i]).equals(listed.select([i]))]
    where = (f"window {int(listed.ids[differ[0]])} differs" if differ
             else f"it lists {len(listed)} windows, the series gives {len(computed)}")
    raise InputDataError(f"does not match the windows of tile {format_tile_id(tile)}'s stacked series ({where}); "
                         "fix or remove the window table", csv)


class Stage3Source(ObservationSource):
    """The authors' windowed stage-3 files (read-only)."""

    kind = "stage3"

    def __init__(self, folder: Path, site: str | None = None, files: dict[TileId, Path] | None = None,
                 window_csv: Path | None = None) -> None:
        super().__init__(folder, site, files)
        self.window_csv = window_csv
        self._csv_table = read_window_csv(window_csv) if window_csv is not None else None
        self._scanned: dict[Path, WindowTable] = {}

    def window_table(self, tile: TileId) -> WindowTable:
        """From the window CSV if there is one, else by reading the file once (counts, no times)."""
        if self._csv_table is not None:
            return self._csv_table
        path = self.path(tile)
        if path not in self._scanned:
            counts = stage3_counts(path)
            self._scanned[path] = WindowTable.build(np.arange(1, len(counts) + 1), counts)
        return self._scanned[path]

    def windows(self, tile: TileId, indices: Any) -> np.ndarray:
        table = self.window_table(tile)
        path = self.path(tile)
        positions = _positions(indices, table, path)
        wanted = set(int(p) for p in positions)
        decoded: dict[int, np.ndarray] = {}
        last = max(wanted) if wanted else -1
        for index, raw in iter_raw_records(path) if wanted else ():
            if index in wanted:
                feature, _ = decode_stage3_record(raw, path, index)
                self._check_count(table, index, feature.shape[0], path)
                decoded[index] = pipeline.pad_numpy(feature, MAX_OBSERVATIONS)
            if index >= last:
                break
        missing = sorted(wanted - set(decoded))
        if missing:
            raise InputDataError(f"has no record {missing[0]}; the window table lists {len(table)} windows", path)
        if not decoded:
            return np.zeros((0, MAX_OBSERVATIONS, 0, 0, 0), np.float32)
        return np.stack([decoded[int(p)] for p in positions])

    def _check_count(self, table: WindowTable, index: int, n_obs: int, path: Path) -> None:
        if int(table.n_obs[index]) != n_obs:
            raise InputDataError(
                f"record {index}: window has {n_obs} observations but the window table "
                f"{self.window_csv or ''} says {int(table.n_obs[index])}; the table does not belong to this file",
                path)

    def dataset(self, tile: TileId, indices: Any = None, time_steps: int = MAX_OBSERVATIONS) -> tf.data.Dataset:
        path = self.path(tile)
        table = self.window_table(tile)
        positions = None if indices is None else _positions(indices, table, path)
        pipeline.check_fits(table if positions is None else table.select(positions), time_steps, path)
        if positions is not None and positions.size > 1 and np.any(np.diff(positions) <= 0):
            # out of file order or repeated: decode in numpy, serve from memory
            windows = self.windows(tile, positions)[:, :time_steps]
            counts = table.n_obs[positions]
            return tf.data.Dataset.from_tensor_slices((counts, windows))
        return pipeline.stage3_windows(path, positions, time_steps)


def open_observation_folder(folder: str | os.PathLike, kind: str, site: str | None = None,
                            window_csv: str | os.PathLike | None = None,
                            files: dict[TileId, Path] | None = None) -> ObservationSource:
    """A source for a folder of ``kind`` ``"stacked"`` or ``"stage3"`` files.

    ``files`` (tile -> file) overrides the search of the folder (a Project knows its files).
    A stacked series defines its own windows; a window CSV given with it is checked against them.
    """
    folder = Path(folder)
    csv = None if window_csv is None else Path(window_csv)
    if kind == "stacked":
        return StackedSource(folder, site, files, window_csv=csv)
    if kind == "stage3":
        return Stage3Source(folder, site, files, csv)
    raise ProjectError(f"unknown observations kind {kind!r} (expected 'stacked' or 'stage3')", folder)


def open_observations(project: Any) -> ObservationSource:
    """The observation source a project's file names (``observations`` entry of ercnn_project.json)."""
    config = getattr(project, "observations_config", None)
    root = Path(project.root)
    if not config:
        raise ProjectError("project has no observations (no 'observations' entry in its project file, "
                           "and no observations/ or training/V*/data/ TFRecords)", root)

    def resolve(value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else root / path

    csv = config.get("window_csv")
    files = project.observation_files() if hasattr(project, "observation_files") else None
    return open_observation_folder(resolve(config["path"]), config.get("kind", ""),
                                   site=getattr(project, "site", None),
                                   window_csv=resolve(csv) if csv else None, files=files)
