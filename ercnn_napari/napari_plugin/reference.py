"""The before/after reference images of a project as two geo-aligned RGBA mosaics.

The authors' reference images are per-tile PNGs (Google Earth captures in the sample's layout:
``ground_truth/{y}:{x}/<year>.png``) without a georeference of their own: each covers exactly its
tile. Showing hundreds of them as separate layers would swamp napari's layer list, so they are
resampled onto one common grid of ``factor`` pixels per 10 m pixel and stitched: one "before" and
one "after" layer that line up with the labels through scale and translate. Tiles without an
image stay transparent (alpha 0) rather than black, so a missing image is visible as missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ercnn_napari.core.tiles import TileId, format_tile_id
from ercnn_napari.napari_plugin.layers import tiles_bounding_box

#: Upper bound of pixels per reference mosaic (RGBA uint8: 4 bytes each), to keep memory bounded.
MAX_MOSAIC_PIXELS = 48_000_000
#: Finest resampling: pixels per 10 m pixel.
MAX_FACTOR = 10


@dataclass
class ReferenceMosaics:
    """Before and after RGBA mosaics over the bounding box of the tiles that have images."""

    before: np.ndarray   # uint8 [H, W, 4]
    after: np.ndarray    # uint8 [H, W, 4]
    origin: TileId       # top-left tile
    factor: int          # mosaic pixels per 10 m grid pixel
    before_years: dict[TileId, int | None]
    after_years: dict[TileId, int | None]
    problems: list[str]  # unreadable images (named), shown to the analyst; the rest still load

    def years_text(self, which: str) -> str:
        years = sorted({y for y in (self.before_years if which == "before" else self.after_years).values() if y})
        return "/".join(str(y) for y in years)


def choose_factor(image_width: int, tile_size: int, n_tiles_box: int) -> int:
    """Pixels per grid pixel: the images' own resolution, capped so the mosaic stays bounded."""
    native = max(1, round(image_width / tile_size))
    budget = int((MAX_MOSAIC_PIXELS / max(n_tiles_box * tile_size * tile_size, 1)) ** 0.5)
    return int(max(1, min(native, MAX_FACTOR, budget)))


def read_rgba(path: Path, size: int) -> np.ndarray:
    """A PNG/JPEG/TIFF resized to ``size`` x ``size`` RGBA (the tile it covers is square in pixels)."""
    with Image.open(path) as image:
        rgba = image.convert("RGBA")
        if rgba.size != (size, size):
            rgba = rgba.resize((size, size), Image.BILINEAR)
        return np.asarray(rgba, dtype=np.uint8)


def build_reference_mosaics(project: Any, tiles: Iterable[TileId] | None = None) -> ReferenceMosaics | None:
    """Stitch the reference pair of every tile with one (or of ``tiles``); None if no tile has any."""
    grid = project.grid
    candidates = list(project.tiles_with_reference() if tiles is None else tiles)
    pairs = {t: project.reference_pair(t) for t in candidates}
    pairs = {t: p for t, p in pairs.items() if p.before is not None or p.after is not None}
    if not pairs:
        return None
    origin, (rows, cols) = tiles_bounding_box(pairs)
    first = next(p.before or p.after for p in pairs.values())
    try:
        with Image.open(first) as image:
            width = image.size[0]
    except OSError:
        width = grid.tile_size
    factor = choose_factor(width, grid.tile_size, rows * cols)
    size = grid.tile_size * factor
    before = np.zeros((rows * size, cols * size, 4), dtype=np.uint8)
    after = np.zeros_like(before)
    problems: list[str] = []
    before_years: dict[TileId, int | None] = {}
    after_years: dict[TileId, int | None] = {}
    for tile, pair in pairs.items():
        y0 = (tile[0] - origin[0]) * size
        x0 = (tile[1] - origin[1]) * size
        for path, target, years, year in ((pair.before, before, before_years, pair.before_year),
                                          (pair.after, after, after_years, pair.after_year)):
            if path is None:
                continue
            try:
                target[y0:y0 + size, x0:x0 + size] = read_rgba(Path(path), size)
                years[tile] = year
            except (OSError, ValueError) as exc:
                problems.append(f"{path}: reference image of tile {format_tile_id(tile)} is unreadable ({exc})")
    return ReferenceMosaics(before, after, origin, factor, before_years, after_years, problems)
