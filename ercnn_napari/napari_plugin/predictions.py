"""Read a prediction folder (written by ``ercnn-napari predict``) into one time-stacked mosaic.

The worker writes, per tile, ``{y}_{x}.npy`` (float32 ``[n_windows, 32, 32]``) and
``{y}_{x}_windows.csv`` (its window table). The viewer needs one array ``[n_windows, H, W]`` over the
predicted tiles, stitched in place, with one date range per slice. Tiles of one project normally
share the same windows; when they do not (different observation dates), slices are matched by
window start time and a tile without that window is NaN there (transparent), never shifted.

numpy + core only: this runs in the viewer process.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.core.tiles import TileId, parse_tile_stem
from ercnn_napari.core.window_table import WindowTable, read_window_csv
from ercnn_napari.napari_plugin.layers import tiles_bounding_box

DAY = 86400.0


@dataclass
class WindowInfo:
    """One slice of the time axis: when its window starts and ends, and how many observations it holds."""

    start_time: float
    end_time: float
    n_obs: int
    window_id: int | None = None  # the authors' window ID (the windows CSV's "ID": 1, 6, 11, ...)

    @property
    def mid_time(self) -> float:
        return (self.start_time + self.end_time) / 2.0

    def label(self, index: int | None = None) -> str:
        """``"window 56: mid 2017-05-02 (2017-02-01 - 2017-08-02, 41 obs)"`` for the slider text.

        The number is the authors' window ID when known (one numbering everywhere: canvas, slider,
        GeoTIFF bands and the windows CSV agree), else ``index``.
        """
        number = self.window_id if self.window_id is not None else index
        prefix = "" if number is None else f"window {number}: "
        return (f"{prefix}mid {_date(self.mid_time)} ({_date(self.start_time)} - {_date(self.end_time)}, "
                f"{self.n_obs} obs)")


@dataclass
class PredictionMosaic:
    """Per-window change probabilities of the predicted tiles, stitched into one array."""

    folder: Path
    name: str
    stack: np.ndarray            # float32 [n_windows, rows * 32, cols * 32], NaN where not predicted
    windows: list[WindowInfo]
    origin: TileId               # top-left tile of the mosaic
    tiles: list[TileId]
    info: dict[str, Any]         # prediction.json (model, stride, ...) when present

    @property
    def max_map(self) -> np.ndarray:
        """Maximum over all windows per pixel (the authors' "maximum over all detected changes")."""
        with np.errstate(invalid="ignore"):
            finite = np.where(np.isnan(self.stack), -np.inf, self.stack)
            result = finite.max(axis=0)
        return np.where(np.isinf(result), np.nan, result).astype(np.float32)


def prediction_tiles(folder: str | Path) -> dict[TileId, Path]:
    """Tiles with a ``{y}_{x}.npy`` in ``folder`` (other .npy files are ignored)."""
    found: dict[TileId, Path] = {}
    for path in sorted(Path(folder).glob("*.npy")):
        parsed = parse_tile_stem(path.stem)
        if parsed is not None:
            found[parsed[1]] = path
    return found


def read_prediction_info(folder: str | Path) -> dict[str, Any]:
    """``prediction.json`` as a dict ({} if the folder has none); a broken file is an error naming it."""
    path = Path(folder) / "prediction.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputDataError(f"not a readable prediction description ({exc})", path) from exc
    return data if isinstance(data, dict) else {}


def read_tile_prediction(npy_path: Path, tile_size: int) -> tuple[np.ndarray, WindowTable]:
    """One tile's probabilities and window table, checked against each other."""
    csv_path = npy_path.with_name(f"{npy_path.stem}_windows.csv")
    try:
        probs = np.load(npy_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputDataError(f"not a readable prediction array ({exc})", npy_path) from exc
    if probs.ndim != 3 or probs.shape[1:] != (tile_size, tile_size):
        raise InputDataError(f"expected shape [n_windows, {tile_size}, {tile_size}], found {list(probs.shape)}",
                             npy_path)
    if not csv_path.is_file():
        raise InputDataError("window table is missing (every prediction array needs its _windows.csv)", csv_path)
    table = read_window_csv(csv_path)
    if len(table.ids) != probs.shape[0]:
        raise InputDataError(f"{len(table.ids)} windows in the table but {probs.shape[0]} in "
                             f"{npy_path.name}", csv_path)
    return probs.astype(np.float32, copy=False), table


def load_prediction_mosaic(folder: str | Path, tile_size: int = 32, tiles: list[TileId] | None = None,
                           name: str | None = None) -> PredictionMosaic:
    """Stitch the tiles of a prediction folder (all of them, or ``tiles``) into a time-stacked mosaic."""
    folder = Path(folder)
    available = prediction_tiles(folder)
    wanted = sorted(available) if tiles is None else [t for t in tiles if t in available]
    if not wanted:
        raise InputDataError("no tile predictions ({y}_{x}.npy) found", folder)
    per_tile = {t: read_tile_prediction(available[t], tile_size) for t in wanted}
    starts = sorted({float(s) for _, table in per_tile.values() for s in table.start_time})
    slot = {s: i for i, s in enumerate(starts)}
    windows: list[WindowInfo | None] = [None] * len(starts)
    origin, (rows, cols) = tiles_bounding_box(wanted)
    stack = np.full((len(starts), rows * tile_size, cols * tile_size), np.nan, dtype=np.float32)
    for tile, (probs, table) in per_tile.items():
        y0 = (tile[0] - origin[0]) * tile_size
        x0 = (tile[1] - origin[1]) * tile_size
        for k in range(len(table.ids)):
            i = slot[float(table.start_time[k])]
            stack[i, y0:y0 + tile_size, x0:x0 + tile_size] = probs[k]
            if windows[i] is None:
                windows[i] = WindowInfo(float(table.start_time[k]), float(table.end_time[k]), int(table.n_obs[k]),
                                        int(table.ids[k]))
    info = read_prediction_info(folder)
    label = name or _model_name(info) or folder.name
    return PredictionMosaic(folder, label, stack, [w for w in windows if w is not None], origin, wanted, info)


def _model_name(info: dict[str, Any]) -> str:
    """A short layer name from prediction.json's model entry (a path, or a list for an ensemble)."""
    models = info.get("models") or info.get("model")
    if isinstance(models, str):
        models = [models]
    if not isinstance(models, list) or not models:
        return ""
    stems = [_short_model(str(m)) for m in models]
    if len(stems) == 1:
        return stems[0]
    return f"{info.get('combine', 'mean')}({', '.join(stems)})"


def _short_model(path: str) -> str:
    p = Path(path)
    if p.name in ("model.ercnn.h5", "best.ercnn.h5", "last.ercnn.h5"):
        # a run folder's model: name it after the run (RUN/model.ercnn.h5, RUN/checkpoints/best...)
        parent = p.parent.parent if p.parent.name == "checkpoints" else p.parent
        return parent.name
    return p.name.split(".")[0]


def _date(seconds: float) -> str:
    return dt.datetime.fromtimestamp(float(seconds), tz=dt.timezone.utc).strftime("%Y-%m-%d")
