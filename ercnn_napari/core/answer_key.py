"""A project's answer key: exact change masks and dated events, when the project has them.

Analysts' labels are what a model is trained on; an answer key is what really changed. Only a
generated sample has one (``answer_key/{y}_{x}.npy``: 1 = changed pixel; ``answer_key/sample.json``:
the dated events with their bounds and tiles), written by ``sample.project_writer``. Evaluation
scores a model against it on the tiles no training or validation list names, so the figures are
neither flattered by label noise nor by tiles the model or its selection has seen. numpy only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.core.errors import ProjectError
from ercnn_napari.core.tiles import TileId, format_tile_id, parse_tile_id, tile_stem

ANSWER_DIR = "answer_key"
EVENTS_FILE = "sample.json"


@dataclass(frozen=True)
class Event:
    """One dated change: when it started and ended (UNIX s) and where (CRS bounds, tiles)."""

    event_id: int
    kind: str
    start: float
    end: float
    bounds: tuple[float, float, float, float]   # left, bottom, right, top
    tiles: tuple[TileId, ...]


def has_answer_key(root: str | Path) -> bool:
    return (Path(root) / ANSWER_DIR).is_dir() and any((Path(root) / ANSWER_DIR).glob("*_*.npy"))


def answer_key_tiles(root: str | Path) -> list[TileId]:
    """Tiles with an answer-key mask, sorted."""
    tiles = []
    for path in (Path(root) / ANSWER_DIR).glob("*_*.npy"):
        try:
            y, x = (int(v) for v in path.stem.split("_"))
        except ValueError:
            continue
        tiles.append((y, x))
    return sorted(tiles)


def read_answer_key(root: str | Path, tile: TileId) -> np.ndarray:
    """float32 [H, W] 0/1 mask of a tile; a missing or unreadable file is one clear error."""
    path = Path(root) / ANSWER_DIR / f"{tile_stem(tile)}.npy"
    try:
        mask = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ProjectError(f"answer key of tile {format_tile_id(tile)} is unreadable ({exc})", path) from exc
    if mask.ndim != 2:
        raise ProjectError(f"answer key of tile {format_tile_id(tile)} has shape {mask.shape}, expected [H, W]", path)
    return (mask > 0).astype(np.float32)


def read_events(root: str | Path) -> list[Event]:
    """The dated events of the answer key (empty when the project has none)."""
    path = Path(root) / ANSWER_DIR / EVENTS_FILE
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        events = []
        for record in data.get("events", []):
            times = [float(p["time"]) for p in record.get("phases", [])]
            if not times:
                continue
            events.append(Event(int(record["id"]), str(record.get("kind", "")), min(times), max(times),
                                tuple(float(v) for v in record["bounds"]),
                                tuple(parse_tile_id(t) for t in record.get("tiles", []))))
        return events
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ProjectError(f"answer key events are unreadable ({exc})", path) from exc


def held_out_tiles(root: str | Path, splits: Iterable[Any]) -> list[TileId]:
    """Answer-key tiles in no training or validation list of ``splits`` (labelled or not)."""
    seen: set[TileId] = set()
    for split in splits:
        seen.update(split.train)
        seen.update(split.val)
    return [t for t in answer_key_tiles(root) if t not in seen]


def event_pixels(event: Event, grid: Any, tile: TileId) -> np.ndarray:
    """bool [tile, tile]: pixels of ``tile`` whose centre lies inside the event's bounds."""
    size = grid.tile_size
    y, x = tile
    cols = grid.origin_x + (x * size + np.arange(size) + 0.5) * grid.pixel_width
    rows = grid.origin_y - (y * size + np.arange(size) + 0.5) * grid.pixel_height
    left, bottom, right, top = event.bounds
    inside_x = (cols >= left) & (cols <= right)
    inside_y = (rows >= bottom) & (rows <= top)
    return inside_y[:, None] & inside_x[None, :]


def overlaps(window_start: float, window_end: float, event: Event) -> bool:
    """Whether a window's time span and the event's (first to last phase) overlap."""
    if math.isnan(window_start) or math.isnan(window_end):
        return False
    return window_start <= event.end and event.start <= window_end
