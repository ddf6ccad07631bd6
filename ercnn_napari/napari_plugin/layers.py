"""Where things go on the napari canvas: one display frame for every layer of a project.

napari has no notion of a CRS; layers line up through ``scale`` and ``translate``. Every layer this
plugin creates is placed in the same *display frame*: world row = metres south of an anchor,
world column = metres east of it (both in the project's CRS units). The anchor is the tile grid's
top-left corner for project layers. Why not raw northing/easting: vispy draws in float32, and at
UTM magnitudes (5.6e6 m) float32 resolves only half a metre, which makes 1 m reference imagery
jitter; offsets of a few kilometres from the anchor keep centimetre precision.

napari puts pixel *centres* on integer data coordinates, so a layer whose top-left pixel corner is
at world (y0, x0) gets ``translate = (y0 + sy / 2, x0 + sx / 2)``.

The true georeference (CRS WKT, affine transform, source path) always travels in
``layer.metadata``; scale/translate are only for display.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from ercnn_napari.core.tiles import TileId, format_tile_id

#: Standalone GeoTIFFs (no project around them) are anchored on a 100 km lattice so that several
#: files of the same area still line up with each other.
STANDALONE_ANCHOR_STEP = 100_000.0

Anchor = tuple[float, float]  # (x, y) in CRS units


def grid_anchor(grid: Any) -> Anchor:
    """The display anchor of a project: its tile grid's top-left corner."""
    return float(grid.origin_x), float(grid.origin_y)


def lattice_anchor(transform: Affine) -> Anchor:
    """Anchor for a raster seen without its project: its top-left corner snapped to a 100 km lattice."""
    step = STANDALONE_ANCHOR_STEP
    return math.floor(transform.c / step) * step, math.ceil(transform.f / step) * step


def is_north_up(transform: Affine) -> bool:
    """True for the only rasters we can place with scale/translate (no rotation, y pixel size < 0)."""
    return transform.b == 0 and transform.d == 0 and transform.a > 0 and transform.e < 0


def raster_placement(transform: Affine, anchor: Anchor) -> dict[str, tuple[float, float]]:
    """``scale``/``translate`` that put a north-up raster with ``transform`` in the display frame."""
    if not is_north_up(transform):
        raise ValueError("only north-up rasters (no rotation, negative y pixel size) can be shown")
    sy, sx = -transform.e, transform.a
    top = anchor[1] - transform.f
    left = transform.c - anchor[0]
    return {"scale": (sy, sx), "translate": (top + sy / 2.0, left + sx / 2.0)}


def box_placement(top: float, left: float, pixel_h: float, pixel_w: float) -> dict[str, tuple[float, float]]:
    """``scale``/``translate`` of an image whose top-left corner is at display (top, left)."""
    return {"scale": (pixel_h, pixel_w), "translate": (top + pixel_h / 2.0, left + pixel_w / 2.0)}


def crs_to_display(x: float, y: float, anchor: Anchor) -> tuple[float, float]:
    """CRS (x, y) -> display (row, col)."""
    return anchor[1] - y, x - anchor[0]


def display_to_crs(row: float, col: float, anchor: Anchor) -> tuple[float, float]:
    """Display (row, col) -> CRS (x, y)."""
    return col + anchor[0], anchor[1] - row


def tile_box(grid: Any, tile: TileId) -> tuple[float, float, float, float]:
    """Display (top, left, bottom, right) of a tile."""
    y, x = tile
    h = grid.tile_size * grid.pixel_height
    w = grid.tile_size * grid.pixel_width
    return y * h, x * w, (y + 1) * h, (x + 1) * w


def tile_rectangle(grid: Any, tile: TileId) -> np.ndarray:
    """The four display corners of a tile, as a napari shapes rectangle."""
    top, left, bottom, right = tile_box(grid, tile)
    return np.array([[top, left], [top, right], [bottom, right], [bottom, left]], dtype=float)


def tile_at_display(grid: Any, row: float, col: float) -> TileId | None:
    """The tile under a display position, or None outside the grid."""
    ty = math.floor(row / (grid.tile_size * grid.pixel_height))
    tx = math.floor(col / (grid.tile_size * grid.pixel_width))
    if 0 <= ty < grid.rows and 0 <= tx < grid.cols:
        return ty, tx
    return None


def tile_pixel_slices(tile: TileId, tile_size: int, origin: TileId = (0, 0)) -> tuple[slice, slice]:
    """Rows/columns of ``tile`` inside a mosaic whose top-left tile is ``origin``."""
    y, x = tile[0] - origin[0], tile[1] - origin[1]
    return slice(y * tile_size, (y + 1) * tile_size), slice(x * tile_size, (x + 1) * tile_size)


def tiles_bounding_box(tiles: Iterable[TileId]) -> tuple[TileId, TileId]:
    """(top-left tile, (rows, cols) in tiles) of the smallest rectangle holding ``tiles``."""
    tiles = list(tiles)
    if not tiles:
        raise ValueError("no tiles")
    ys = [t[0] for t in tiles]
    xs = [t[1] for t in tiles]
    return (min(ys), min(xs)), (max(ys) - min(ys) + 1, max(xs) - min(xs) + 1)


def mosaic_placement(grid: Any, origin: TileId, factor: float = 1.0) -> dict[str, tuple[float, float]]:
    """``scale``/``translate`` of a mosaic starting at tile ``origin`` with ``factor`` pixels per 10 m pixel."""
    top, left, _, _ = tile_box(grid, origin)
    return box_placement(top, left, grid.pixel_height / factor, grid.pixel_width / factor)


def geo_metadata(crs_wkt: str, transform: Affine, source: str | Path | None, **extra: Any) -> dict[str, Any]:
    """The ``layer.metadata`` every georeferenced layer carries (the true georeference)."""
    meta: dict[str, Any] = {"crs": crs_wkt, "transform": tuple(transform)[:6],
                            "source": None if source is None else str(source)}
    meta.update(extra)
    return meta


def transform_from_metadata(meta: dict[str, Any]) -> Affine:
    """The affine transform a layer's metadata carries (6 numbers, rasterio order)."""
    values = meta.get("transform")
    if values is None or len(values) < 6:
        raise ValueError("layer metadata has no affine transform")
    return Affine(*[float(v) for v in values[:6]])


def mosaic_transform(grid: Any, origin: TileId) -> Affine:
    """The CRS transform of a 10 m mosaic whose top-left tile is ``origin``."""
    return Affine(grid.pixel_width, 0.0, grid.origin_x + origin[1] * grid.tile_size * grid.pixel_width,
                  0.0, -grid.pixel_height, grid.origin_y - origin[0] * grid.tile_size * grid.pixel_height)


def tile_names(tiles: Iterable[TileId]) -> list[str]:
    return [format_tile_id(t) for t in tiles]
