"""Open a reference imagery source and read it on the project grid, in the project CRS.

Anything GDAL opens is a source: a GeoTIFF/COG/VRT in any CRS, a GDAL WMS/WMTS/TMS XML description
(``<GDAL_WMS>`` / ``<GDAL_WMTS>`` file or inline), or a ``WMS:``/``WMTS:`` connection string. We
never fetch tiles by hand: GDAL does the HTTP, retries and tile maths, and rasterio's
:class:`~rasterio.vrt.WarpedVRT` reprojects onto the grid. Why pick an overview first: a warped
read at 1 m from a service whose full resolution is 0.25 m would download sixteen times the tiles;
opening the source at the overview just finer than the target keeps the download proportional
to what is cached.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from ercnn_napari.core.errors import InputDataError

#: Finest cache: pixels per 10 m grid pixel (1 m imagery on the Sentinel grid).
MAX_FACTOR = 10
_YEAR = re.compile(r"(?<!\d)(19[5-9]\d|20\d\d)(?!\d)")


def year_from_source(source: str) -> int | None:
    """A four-digit year in the source's name (``ORTHO_2021``, ``liege_2016.tif``), else None."""
    found = _YEAR.findall(str(source))
    return int(found[-1]) if found else None


def open_source(source: str, overview_level: int | None = None) -> Any:
    """Open ``source`` with rasterio; a failure is an :class:`InputDataError` naming it."""
    kwargs = {} if overview_level is None else {"overview_level": overview_level}
    try:
        dataset = rasterio.open(source, **kwargs)
    except (RasterioError, OSError, ValueError) as exc:
        raise InputDataError(f"cannot open the reference imagery ({exc})", _short(source)) from exc
    if dataset.crs is None:
        dataset.close()
        raise InputDataError("the reference imagery has no coordinate reference system", _short(source))
    if dataset.count < 1:
        dataset.close()
        raise InputDataError("the reference imagery has no bands", _short(source))
    return dataset


def _short(source: str) -> str:
    text = str(source).strip()
    return text if len(text) < 160 else text[:150] + "…"


@dataclass(frozen=True)
class SourceInfo:
    """What the cache needs to know of a source before reading it."""

    name: str
    crs: str
    native_size_m: float | None  # source pixel size expressed in project CRS units (approx.)
    dtype: str
    bands: int


def describe_source(source: str, grid: Any) -> SourceInfo:
    """The source's pixel size seen from the project's AoI (None if it does not cover it)."""
    with open_source(source) as dataset:
        try:
            left, bottom, right, top = transform_bounds(grid.crs, dataset.crs, *grid.bounds, densify_pts=21)
        except Exception as exc:  # noqa: BLE001 - any PROJ failure means: cannot place the AoI
            raise InputDataError(f"cannot express the project's AoI in the imagery's CRS ({exc})",
                                 _short(source)) from exc
        inter = (max(left, dataset.bounds.left), max(bottom, dataset.bounds.bottom),
                 min(right, dataset.bounds.right), min(top, dataset.bounds.top))
        if inter[2] <= inter[0] or inter[3] <= inter[1]:
            raise InputDataError("the reference imagery does not cover the project's AoI "
                                 f"(AoI in its CRS: {left:.6g}, {bottom:.6g}, {right:.6g}, {top:.6g}; "
                                 f"imagery: {tuple(round(v, 6) for v in dataset.bounds)})", _short(source))
        grid_width = grid.bounds[2] - grid.bounds[0]
        src_res = abs(dataset.transform.a)
        native = src_res * grid_width / max(right - left, 1e-12)
        return SourceInfo(_short(source), dataset.crs.to_string(), native, dataset.dtypes[0], dataset.count)


def choose_factor(native_size: float | None, grid_pixel: float) -> int:
    """Cache pixels per grid pixel: the source's own resolution, at most :data:`MAX_FACTOR`."""
    if not native_size or native_size <= 0:
        return 1
    return int(max(1, min(MAX_FACTOR, math.floor(grid_pixel / native_size + 1e-6))))


def pick_overview_level(dataset: Any, target_res_src: float) -> int | None:
    """The coarsest overview still at least as fine as ``target_res_src`` (None = full resolution)."""
    chosen = None
    base = abs(dataset.transform.a)
    factors = dataset.overviews(1) if dataset.count else []
    for level, factor in enumerate(factors):
        if base * factor <= target_res_src * 1.0001:
            chosen = level
    return chosen


def cache_transform(grid: Any, factor: int) -> Affine:
    """The cache's transform: the grid's origin, pixels ``factor`` times finer (edges coincide)."""
    return Affine(grid.pixel_width / factor, 0.0, grid.origin_x, 0.0, -grid.pixel_height / factor, grid.origin_y)


class GridReader:
    """Reads row bands of a source reprojected onto the cache grid (RGBA uint8)."""

    def __init__(self, source: str, grid: Any, factor: int) -> None:
        self.source = source
        self.grid = grid
        self.factor = factor
        self.transform = cache_transform(grid, factor)
        height, width = grid.shape_pixels
        self.height, self.width = height * factor, width * factor
        with open_source(source) as dataset:
            left, bottom, right, top = transform_bounds(grid.crs, dataset.crs, *grid.bounds, densify_pts=21)
            target_res_src = (right - left) / self.width
            level = pick_overview_level(dataset, target_res_src)
        self._dataset = open_source(source, level)
        self._vrt = WarpedVRT(self._dataset, crs=grid.crs, transform=self.transform, width=self.width,
                              height=self.height, resampling=Resampling.bilinear)
        self._stretch = self._find_stretch()

    def close(self) -> None:
        self._vrt.close()
        self._dataset.close()

    def __enter__(self) -> GridReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rgb_indexes(self) -> list[int]:
        interp = list(self._dataset.colorinterp)
        bands = [i + 1 for i, c in enumerate(interp) if c != ColorInterp.alpha]
        if len(bands) >= 3:
            order = {ColorInterp.red: 0, ColorInterp.green: 1, ColorInterp.blue: 2}
            named = sorted((order[interp[b - 1]], b) for b in bands if interp[b - 1] in order)
            return [b for _, b in named] if len(named) == 3 else bands[:3]
        return [bands[0]] * 3 if bands else [1, 1, 1]

    def _find_stretch(self) -> tuple[np.ndarray, np.ndarray] | None:
        """8-bit imagery is shown as it is; other types are stretched 2–98 % from a coarse read."""
        if self._dataset.dtypes[0] == "uint8":
            return None
        shape = (min(self.height, 512), min(self.width, 512))
        data = self._vrt.read(self._rgb_indexes(), out_shape=(3, *shape), masked=True).astype("float64")
        lows, highs = [], []
        for band in data:
            values = band.compressed()
            lo, hi = (np.percentile(values, [2, 98]) if values.size else (0.0, 1.0))
            lows.append(lo)
            highs.append(hi if hi > lo else lo + 1.0)
        return np.array(lows)[:, None, None], np.array(highs)[:, None, None]

    def read_rows(self, row0: int, rows: int) -> np.ndarray:
        """Cache rows ``row0 .. row0+rows`` as uint8 [4, rows, width] (alpha 0 where there is no data)."""
        window = rasterio.windows.Window(0, row0, self.width, rows)
        try:
            data = self._vrt.read(self._rgb_indexes(), window=window)
            alpha = self._vrt.dataset_mask(window=window)
        except (RasterioError, OSError) as exc:
            raise InputDataError(f"reading the reference imagery failed at cache rows {row0}-{row0 + rows} "
                                 f"({exc}); run the command again to resume", _short(self.source)) from exc
        if self._stretch is not None:
            lo, hi = self._stretch
            data = np.clip((data.astype("float64") - lo) / (hi - lo) * 255.0, 0, 255)
        out = np.empty((4, rows, self.width), dtype=np.uint8)
        out[:3] = data.astype(np.uint8)
        out[3] = alpha.astype(np.uint8)
        return out
