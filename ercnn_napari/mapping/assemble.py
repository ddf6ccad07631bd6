"""Mosaic outputs of a map from its per-tile files: the max-change COG and the per-window Zarr pyramid.

Runs in the driver after the workers are done (numpy, rasterio, zarr; no TensorFlow). Memory is
bounded by one region of tiles (``REGION_PIXELS`` square x n_windows floats), not by the AoI:
tiles are read region by region, written into a tiled GeoTIFF and a chunked Zarr store, and the
pyramid levels are pooled from the same region. The Zarr pyramid pools by the MAXIMUM so a small
change stays visible when zoomed out (an average would dilute it away); the COG's overviews are
GDAL's AVERAGE, because GDAL's overview builder offers no maximum. Pixels of tiles that were not
mapped are NaN (the nodata value of both outputs).

Both outputs appear atomically: the GeoTIFF via a temporary file converted to a COG and renamed,
the Zarr store in a temporary folder swapped in when complete.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.core.atomic import atomic_path
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.tiles import TileId
from ercnn_napari.core.window_table import WindowTable, write_window_csv
from ercnn_napari.mapping.plan import COG_FILE, WINDOWS_FILE, ZARR_DIR, pyramid_shapes, tile_path

#: side of the square of pixels assembled at a time (and of the Zarr chunks)
REGION_PIXELS = 256


def _pool_max(data: np.ndarray, factor: int) -> np.ndarray:
    """[n, h, w] -> [n, ceil(h/f), ceil(w/f)]: NaN-aware maximum over f x f blocks."""
    if factor == 1:
        return data
    n, h, w = data.shape
    hp, wp = math.ceil(h / factor) * factor, math.ceil(w / factor) * factor
    padded = np.full((n, hp, wp), np.nan, np.float32)
    padded[:, :h, :w] = data
    blocks = padded.reshape(n, hp // factor, factor, wp // factor, factor)
    finite = np.isfinite(blocks).any(axis=(2, 4))
    out = np.where(np.isfinite(blocks), blocks, -np.inf).max(axis=(2, 4))
    return np.where(finite, out, np.nan).astype(np.float32)


def _region_tiles(grid: TileGrid) -> int:
    """Tiles per region side: REGION_PIXELS rounded up to whole tiles."""
    return max(1, math.ceil(REGION_PIXELS / grid.tile_size))


def _max_factor(region_pixels: int) -> int:
    """The largest power of two dividing the region side (pyramid levels stay chunk-aligned)."""
    return region_pixels & -region_pixels


def assemble(out: str | os.PathLike, grid: TileGrid, tiles: Sequence[TileId], table: WindowTable,
             description: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``windows.csv``, ``windows.zarr`` and ``change_max.tif`` from ``tiles/``; returns what was made."""
    import rasterio
    import rasterio.shutil
    import zarr

    out = Path(out)
    n, size = len(table), grid.tile_size
    height, width = grid.rows * size, grid.cols * size
    per_region = _region_tiles(grid)
    region = per_region * size
    shapes = [s for k, s in enumerate(pyramid_shapes(height, width)) if 2 ** k <= _max_factor(region)]
    write_window_csv(table, out / WINDOWS_FILE)

    zarr_tmp = out / f".{ZARR_DIR}.tmp"
    shutil.rmtree(zarr_tmp, ignore_errors=True)
    group = zarr.open_group(str(zarr_tmp), mode="w")
    group.attrs.update({"levels": len(shapes), "pooling": "max", "nodata": "NaN",
                        "crs": grid.crs, "grid": grid.to_dict(), **(description or {})})
    arrays = [group.create_array(str(k), shape=(n, h, w), chunks=(1, REGION_PIXELS, REGION_PIXELS),
                                 dtype="float32", fill_value=np.nan) for k, (h, w) in enumerate(shapes)]
    wanted = set(tiles)
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "float32",
               "crs": grid.crs, "transform": grid.transform, "nodata": np.nan, "tiled": True,
               "blockxsize": REGION_PIXELS if width >= REGION_PIXELS else 16 * math.ceil(width / 16),
               "blockysize": REGION_PIXELS if height >= REGION_PIXELS else 16 * math.ceil(height / 16)}
    mapped = 0
    staging = out / f".{COG_FILE}.stage.tif"  # a by-product, removed whatever happens
    try:
        with rasterio.open(staging, "w", **profile) as dst:
            dst.update_tags(windows=str(n), pooling="max over windows")
            for ry in range(0, grid.rows, per_region):
                for rx in range(0, grid.cols, per_region):
                    rows, cols = min(per_region, grid.rows - ry), min(per_region, grid.cols - rx)
                    data = np.full((n, rows * size, cols * size), np.nan, np.float32)
                    for ty in range(ry, ry + rows):
                        for tx in range(rx, rx + cols):
                            if (ty, tx) not in wanted:
                                continue
                            probs = np.load(tile_path(out, (ty, tx)))
                            y0, x0 = (ty - ry) * size, (tx - rx) * size
                            data[:, y0:y0 + size, x0:x0 + size] = probs
                            mapped += 1
                    y0, x0 = ry * size, rx * size
                    for k, array in enumerate(arrays):
                        f = 2 ** k
                        pooled = _pool_max(data, f)
                        array[:, y0 // f:y0 // f + pooled.shape[1], x0 // f:x0 // f + pooled.shape[2]] = pooled
                    with np.errstate(all="ignore"):
                        peak = np.where(np.isfinite(data).any(0), np.nanmax(np.where(np.isfinite(data), data, -1), 0),
                                        np.nan).astype(np.float32)
                    dst.write(peak, 1, window=rasterio.windows.Window(x0, y0, peak.shape[1], peak.shape[0]))
        blocksize = REGION_PIXELS if max(height, width) > 4 * REGION_PIXELS else 128  # GDAL's smallest
        with atomic_path(out / COG_FILE) as cog:
            rasterio.shutil.copy(staging, cog, driver="COG", BLOCKSIZE=blocksize, COMPRESS="DEFLATE",
                                 PREDICTOR="YES", OVERVIEWS="AUTO", OVERVIEW_RESAMPLING="AVERAGE")
    finally:
        staging.unlink(missing_ok=True)
    final = out / ZARR_DIR
    old = out / f".{ZARR_DIR}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(zarr_tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return {"cog": str(out / COG_FILE), "zarr": str(final), "levels": len(shapes), "tiles_mapped": mapped,
            "shape": [n, height, width]}
