"""What a whole-AoI map run does and where its files go (numpy only: the driver and the viewer import it).

Layout of a map folder (``ercnn-napari map ... --out DIR``)::

    map.json              the settings (models, stride, combine, halo, edge), the grid, the tiles
    windows.csv           the window table shared by every tile (authors' columns)
    tiles/{y}_{x}.npy     float32 [n_windows, S, S] per tile: the unit of work and of resume
    change_max.tif        Cloud-Optimized GeoTIFF of the whole AoI: max over windows, with overviews
    windows.zarr/         the per-window stack [n_windows, H, W], chunked, as a pyramid "0", "1", ...

Why per-tile files as the unit: each is written atomically by whichever worker predicted it, so a
re-run (after a crash, a killed worker or Cancel) skips exactly the tiles that exist and are
complete, and the mosaic outputs are assembled from them at the end in bounded memory.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.core.atomic import atomic_write_text
from ercnn_napari.core.errors import ProjectError
from ercnn_napari.core.tiles import TileId, format_tile_id, parse_tile_id, tile_stem

MAP_FILE = "map.json"
WINDOWS_FILE = "windows.csv"
TILES_DIR = "tiles"
COG_FILE = "change_max.tif"
ZARR_DIR = "windows.zarr"
FORMAT = "ercnn-napari-map"

#: settings that must be the same for a re-run to resume (else the tiles would not belong together)
RESUME_KEYS = ("models", "combine", "stride", "halo", "edge", "tile_size")


@dataclass
class MapPlan:
    """The run's settings and its tasks (blocks of neighbouring tiles)."""

    project: str
    out: Path
    models: list[str]
    tiles: list[TileId]
    combine: str = "mean"
    stride: int = 5
    halo: int = 8
    edge: str = "reflect"
    block: int = 2
    batch_size: int = 16
    tile_size: int = 32
    extra: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        return {"models": list(self.models), "combine": self.combine, "stride": self.stride, "halo": self.halo,
                "edge": self.edge, "tile_size": self.tile_size}

    def blocks(self) -> list[list[TileId]]:
        """Tiles grouped into ``block`` x ``block`` squares of the grid, each in row order.

        Neighbouring tiles in one task share their series reads (a halo needs the neighbours).
        """
        groups: dict[tuple[int, int], list[TileId]] = {}
        for tile in sorted(self.tiles):
            groups.setdefault((tile[0] // self.block, tile[1] // self.block), []).append(tile)
        return [groups[key] for key in sorted(groups)]

    def task(self, tiles: Sequence[TileId]) -> dict[str, Any]:
        """What a worker needs for one block (plain data: it travels to another process)."""
        return {"project": self.project, "out": str(self.out), "models": list(self.models),
                "combine": self.combine, "stride": self.stride, "halo": self.halo, "edge": self.edge,
                "batch_size": self.batch_size, "block": self.block,
                "tiles": [format_tile_id(t) for t in tiles]}


def tile_path(out: str | os.PathLike, tile: TileId) -> Path:
    return Path(out) / TILES_DIR / f"{tile_stem(tile)}.npy"


def tile_done(out: str | os.PathLike, tile: TileId, n_windows: int | None, size: int) -> bool:
    """True when the tile's file exists and has the expected shape (writes are atomic, so complete)."""
    path = tile_path(out, tile)
    if not path.is_file():
        return False
    try:
        array = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return (array.ndim == 3 and array.shape[1:] == (size, size) and array.dtype == np.float32
            and (n_windows is None or array.shape[0] == n_windows))


def read_map_info(out: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(out) / MAP_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ProjectError(f"cannot read the map description ({exc}); remove it or choose another --out", path) from exc
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ProjectError("is not an ercnn-napari map description; choose another --out", path)
    return info


def check_resumable(out: Path, plan: MapPlan) -> None:
    """A folder with an earlier map may be resumed only with the same settings."""
    info = read_map_info(out)
    if info is None:
        if (out / TILES_DIR).is_dir() and any((out / TILES_DIR).iterdir()):
            raise ProjectError(f"holds {TILES_DIR}/ but no {MAP_FILE}; choose an empty --out", out)
        return
    before = info.get("settings", {})
    for key in RESUME_KEYS:
        if before.get(key) != plan.settings()[key]:
            raise ProjectError(f"holds a map made with {key}={before.get(key)!r}, this run asks for "
                               f"{plan.settings()[key]!r}; resume with the same settings or choose another --out",
                               out)


def write_map_info(out: Path, plan: MapPlan, status: str, **extra: Any) -> dict[str, Any]:
    info = {"format": FORMAT, "version": 1, "status": status, "project": plan.project,
            "settings": plan.settings(), "tiles": [format_tile_id(t) for t in plan.tiles],
            "block": plan.block, **plan.extra, **extra}
    atomic_write_text(out / MAP_FILE, json.dumps(info, indent=2, default=str) + "\n")
    return info


def parse_tiles(text: str | None, available: Iterable[TileId]) -> list[TileId]:
    """``--tiles y:x,...`` (every tile must have observations) or, with None, every available tile."""
    available = sorted(available)
    if text is None:
        return available
    wanted = [parse_tile_id(t.strip()) for t in text.split(",") if t.strip()]
    missing = [format_tile_id(t) for t in wanted if t not in set(available)]
    if missing:
        raise ProjectError(f"no observations for tile(s) {', '.join(missing)}")
    return sorted(set(wanted))


def pyramid_shapes(height: int, width: int, smallest: int = 256) -> list[tuple[int, int]]:
    """Level sizes for the viewer: halve (rounding up) until the image fits in ``smallest`` pixels."""
    shapes = [(height, width)]
    while max(shapes[-1]) > smallest:
        h, w = shapes[-1]
        shapes.append((math.ceil(h / 2), math.ceil(w / 2)))
    return shapes
