"""Label GeoTIFFs: write one on its tile's footprint, read one back onto its tile.

A label GeoTIFF is what an analyst opens in QGIS, so it carries the project CRS and the tile's
transform. Files made elsewhere may come in geographic coordinates (a download over a WGS84 box
gives EPSG:4326 with ~10 m pixels) or slightly off the grid; those are accepted only when they
demonstrably cover the tile they are named after, and nearest-neighbour resampled onto it. A
label in another projected CRS, of another shape, or on another tile is refused with the file
named, because guessing would put change on the wrong houses.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.warp import Resampling, reproject, transform_bounds

from ercnn_napari import __version__
from ercnn_napari.core.errors import LabelError
from ercnn_napari.core.geo import TileGrid, same_crs
from ercnn_napari.core.tiles import TileId, format_tile_id

#: Largest offset (in pixels) of a same-CRS label from its tile that still counts as "on the tile".
MAX_OFFSET_PIXELS = 0.5
#: A reprojected label must cover at least this fraction of its tile.
MIN_TILE_COVERAGE = 0.5
#: Pixel value (and the band's nodata) of "unsure" pixels: GIS tools show them as no data, and a
#: reader that fills nodata with 0 gets what the authors' trainer reads (unsure is not change).
UNSURE_NODATA = 255
#: Value of an unsure pixel in the arrays this project passes around (0 no change, 1 change).
UNSURE = 2


def geotiff_band(label: np.ndarray, unsure: np.ndarray | None = None) -> np.ndarray:
    """The band a label GeoTIFF holds: 0/1, and :data:`UNSURE_NODATA` where the analyst was unsure."""
    band = np.asarray(label, dtype=np.uint8).copy()
    if unsure is not None:
        band[np.asarray(unsure, dtype=bool)] = UNSURE_NODATA
    return band


def write_label_geotiff(path: str | os.PathLike, label: np.ndarray, grid: TileGrid, tile: TileId,
                        unsure: np.ndarray | None = None) -> None:
    """Write a uint8 0/1 label with the project CRS and the tile's transform (deflate).

    Unsure pixels (``unsure`` true) are written as :data:`UNSURE_NODATA`, the band's nodata value.
    """
    with rasterio.open(
        path, "w", driver="GTiff", width=grid.tile_size, height=grid.tile_size, count=1,
        dtype="uint8", crs=grid.crs, transform=grid.tile_transform(tile), compress="deflate",
        nodata=UNSURE_NODATA,
    ) as dst:
        dst.write(geotiff_band(label, unsure), 1)
        dst.update_tags(
            TIFFTAG_SOFTWARE=f"ercnn-napari {__version__}",
            ERCNN_TILE=format_tile_id(tile),
            ERCNN_LABEL=(f"1 = urban change anywhere in the project period, 0 = no change, "
                         f"{UNSURE_NODATA} (nodata) = the analyst could not tell"),
        )


def read_geotiff_band(path: str | os.PathLike) -> np.ndarray:
    """The raw first band (used to verify a freshly written file before it replaces the old one)."""
    with rasterio.open(path) as src:
        return src.read(1)


def read_label_geotiff(path: str | os.PathLike, tile: TileId, grid: TileGrid, with_unsure: bool = False) -> np.ndarray:
    """Read a label GeoTIFF as uint8 0/1 on the tile's 32x32 pixels, or raise a LabelError naming it.

    Nodata pixels read as 0 (no change), as the authors' trainer reads them. With
    ``with_unsure`` the pixels our writer marked unsure (value and nodata :data:`UNSURE_NODATA`)
    read as :data:`UNSURE` instead; labels made elsewhere have none.
    """
    values = _read_label_geotiff(Path(path), tile, grid)
    if not with_unsure:
        values = np.where(values == UNSURE, 0, values).astype(np.uint8)
    return values


def _read_label_geotiff(path: Path, tile: TileId, grid: TileGrid) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                if src.count != 1:
                    raise LabelError(f"label GeoTIFF has {src.count} bands, expected 1", path)
                raw = src.read(1)
                data = src.read(1, masked=True).filled(0)
                crs, transform = src.crs, src.transform
                unsure = (raw == UNSURE_NODATA) if src.nodata == UNSURE_NODATA else None
    except (RasterioError, OSError) as exc:
        raise LabelError(f"not a readable GeoTIFF: {exc}", path) from exc
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise LabelError("label GeoTIFF contains NaN or infinite values", path)
    size = grid.tile_size
    if crs is None and transform.is_identity:
        # no georeference at all: only the file name places it; the shape must still fit
        _check_shape(data, size, path)
        return (data > 0).astype(np.uint8)
    if crs is None or same_crs(crs, grid.crs):
        if grid.is_geographic and not _is_aligned(transform, data.shape, tile, grid):
            # per-tile downloads over WGS84 boxes do not share one exact degree grid
            return _reproject_onto_tile(data, grid.crs_object, transform, tile, grid, path)
        _check_shape(data, size, path)
        _check_aligned(transform, tile, grid, path)
        values = (data > 0).astype(np.uint8)
        if unsure is not None:
            values[unsure] = UNSURE
        return values
    if crs.is_geographic and not grid.is_geographic:
        return _reproject_onto_tile(data, crs, transform, tile, grid, path)
    raise LabelError(
        f"label GeoTIFF is in {crs.to_string()} but the project grid is in {grid.crs}; "
        "reproject it to the project CRS (only geographic EPSG:4326 labels are reprojected automatically)",
        path,
    )


def _check_shape(data: np.ndarray, size: int, path: Path) -> None:
    if data.shape != (size, size):
        raise LabelError(f"label GeoTIFF has {data.shape[0]} x {data.shape[1]} pixels, expected {size} x {size}", path)


def _same_pixel_size(transform, grid: TileGrid) -> bool:
    return (abs(transform.a - grid.pixel_width) <= 1e-3 * grid.pixel_width
            and abs(-transform.e - grid.pixel_height) <= 1e-3 * grid.pixel_height
            and transform.b == 0 and transform.d == 0)


def _offsets(transform, tile: TileId, grid: TileGrid) -> tuple[float, float]:
    expected = grid.tile_transform(tile)
    return abs(transform.c - expected.c) / grid.pixel_width, abs(transform.f - expected.f) / grid.pixel_height


def _is_aligned(transform, shape: tuple[int, ...], tile: TileId, grid: TileGrid) -> bool:
    offset_x, offset_y = _offsets(transform, tile, grid)
    return (tuple(shape) == (grid.tile_size, grid.tile_size) and _same_pixel_size(transform, grid)
            and offset_x <= MAX_OFFSET_PIXELS and offset_y <= MAX_OFFSET_PIXELS)


def _check_aligned(transform, tile: TileId, grid: TileGrid, path: Path) -> None:
    """Same CRS: pixel size must match and the corner must be within half a pixel of the tile's."""
    same_size = _same_pixel_size(transform, grid)
    offset_x, offset_y = _offsets(transform, tile, grid)
    if same_size and offset_x <= MAX_OFFSET_PIXELS and offset_y <= MAX_OFFSET_PIXELS:
        return
    center = transform @ (grid.tile_size / 2, grid.tile_size / 2)
    where = grid.tile_at(*center)
    place = f"tile {format_tile_id(where)}" if where is not None else "outside the project grid"
    if not same_size:
        raise LabelError(
            f"label GeoTIFF has pixels of {transform.a:g} x {-transform.e:g}, the grid has "
            f"{grid.pixel_width:g} x {grid.pixel_height:g}; its centre lies {place}, it should be tile {format_tile_id(tile)}",
            path,
        )
    raise LabelError(
        f"label GeoTIFF is not on tile {format_tile_id(tile)}: its top-left corner is off by "
        f"{offset_x:.1f} x {offset_y:.1f} pixels and its centre lies {place}",
        path,
    )


def _reproject_onto_tile(data: np.ndarray, crs, transform, tile: TileId, grid: TileGrid, path: Path) -> np.ndarray:
    """Resample a label onto its tile (nearest neighbour) after checking that it covers that tile.

    Used for geographic labels on a projected grid, and for labels on a geographic grid whose
    degree spacing differs slightly from the grid's.
    """
    height, width = data.shape
    left, top = transform @ (0, 0)
    right, bottom = transform @ (width, height)
    left, right = min(left, right), max(left, right)
    bottom, top = min(bottom, top), max(bottom, top)
    pl, pb, pr, pt = transform_bounds(crs, grid.crs_object, left, bottom, right, top, densify_pts=21)
    tl, tb, tr, tt = grid.tile_bounds(tile)
    overlap = max(0.0, min(pr, tr) - max(pl, tl)) * max(0.0, min(pt, tt) - max(pb, tb))
    tile_area = (tr - tl) * (tt - tb)
    label_area = (pr - pl) * (pt - pb)
    where = grid.tile_at((pl + pr) / 2, (pb + pt) / 2)
    if where != tile or overlap < MIN_TILE_COVERAGE * tile_area or label_area > 4 * tile_area:
        place = f"tile {format_tile_id(where)}" if where is not None else "outside the project grid"
        raise LabelError(
            f"label GeoTIFF ({crs.to_string()}) does not lie on tile {format_tile_id(tile)}: its centre lies {place} "
            f"and it covers {overlap / tile_area:.0%} of the tile",
            path,
        )
    size = grid.tile_size
    source = (data > 0).astype(np.uint8)
    destination = np.zeros((size, size), dtype=np.uint8)
    reproject(
        source, destination, src_transform=transform, src_crs=crs,
        dst_transform=grid.tile_transform(tile), dst_crs=grid.crs_object,
        resampling=Resampling.nearest, src_nodata=None, dst_nodata=None,
    )
    return destination
