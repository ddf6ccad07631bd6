"""Source 1: a local folder of per-acquisition GeoTIFF/COG files described by ``manifest.csv``.

Files may be in any CRS and resolution: :meth:`LocalScene.read` warps them onto the requested
grid with GDAL (``rasterio.warp.reproject``, nearest neighbour, which is also Sentinel Hub's
default, so 20 m and 60 m bands are repeated, not smoothed). Reading goes through
``rasterio.band`` so GDAL fetches only the source blocks that cover the target, which keeps
memory bound to the target block however large the file is. Pixels outside the file, the file's
nodata and masked pixels are invalid; values are converted to network units by ``units``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.warp import reproject

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.ingest.manifest import MANIFEST_NAME, ManifestRow, read_manifest, row_error
from ercnn_napari.ingest.scene import S1_BANDS, S2_BANDS, SceneInfo, TargetGrid
from ercnn_napari.ingest.units import to_network_units

#: GDAL's block cache and warp buffer while warping (MB). The cache defaults to 5 % of RAM per
#: process and the warper reads as much of the source as its limit allows, so without these bounds
#: memory would grow with the size of the files (which are often whole Sentinel tiles).
GDAL_CACHE_MB = 16


@dataclass(frozen=True)
class LocalScene:
    """One manifest row; picklable, so Dask workers can read it."""

    info: SceneInfo
    path: Path
    mask_band: str | None
    mask_path: Path | None
    manifest: Path
    row: int

    def _error(self, what: str) -> InputDataError:
        return row_error(self.manifest, self.row, self.path.name, what)

    def check(self) -> None:
        """Open the header: a raster, with a CRS and a geotransform, with as many bands as listed."""
        with self._open(self.path) as src:
            if src.count != len(self.info.bands):
                raise self._error(f"file has {src.count} band(s) but the row lists {len(self.info.bands)} "
                                  f"({', '.join(self.info.bands)})")
        if self.mask_path is not None:
            with self._open(self.mask_path):
                pass

    def _open(self, path: Path):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                src = rasterio.open(path)
        except (RasterioError, OSError) as exc:
            raise self._error(f"{path.name} is not a readable raster ({str(exc).splitlines()[0]})") from None
        if src.crs is None or src.transform.is_identity:
            src.close()
            raise self._error(f"{path.name} has no coordinate reference system or geotransform")
        return src

    def read(self, grid: TargetGrid) -> tuple[np.ndarray, np.ndarray]:
        """float32 [H, W, C] in network units (band order S1_BANDS/S2_BANDS) and valid bool [H, W]."""
        wanted = S1_BANDS if self.info.sensor == "S1" else S2_BANDS
        present = [b for b in wanted if b in self.info.bands]
        indexes = [self.info.bands.index(b) + 1 for b in present]
        if self.mask_band is not None:
            indexes.append(self.info.bands.index(self.mask_band) + 1)
        warped = self._warp(self.path, indexes, grid)
        mask = warped[-1] if self.mask_band is not None else None
        if self.mask_path is not None:
            mask = self._warp(self.mask_path, [1], grid)[0]
        data = warped[:len(present)]
        valid = np.isfinite(data).all(axis=0)
        if mask is not None:
            valid &= mask == 1
        values = np.zeros((grid.height, grid.width, len(wanted)), np.float32)
        offset = self.info.processing.get("dn_offset")
        converted = to_network_units(np.moveaxis(data, 0, -1), self.info.sensor, self.info.units, self.info.time,
                                     None if offset is None else float(offset))
        for k, band in enumerate(present):
            values[..., wanted.index(band)] = converted[..., k]
        if self.info.processing.get("cloud_mask", "").startswith("s2cloudless"):
            from ercnn_napari.ingest.cloudmask import s2cloudless_valid  # the optional "cloudmask" extra

            valid &= s2cloudless_valid(np.where(valid[..., None], values, 0.0), grid)
        values[~valid] = 0.0
        return values, valid

    def _warp(self, path: Path, indexes: list[int], grid: TargetGrid) -> np.ndarray:
        out = np.full((len(indexes), grid.height, grid.width), np.nan, np.float64)
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), self._open(path) as src:
            try:
                reproject(source=rasterio.band(src, indexes), destination=out, src_nodata=src.nodata,
                          dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
                          resampling=Resampling.nearest, warp_mem_limit=GDAL_CACHE_MB)
            except (RasterioError, OSError, ValueError) as exc:
                raise self._error(f"cannot warp {path.name} onto the grid ({str(exc).splitlines()[0]})") from None
        return out


class LocalSource:
    """The acquisitions of a folder with ``manifest.csv``; bad rows are kept in :attr:`problems`."""

    def __init__(self, folder: str | Path, **_context: object) -> None:
        self.folder = Path(folder)
        self.problems: list[InputDataError] = []
        self.description = f"local folder {self.folder}"

    def scenes(self) -> list[LocalScene]:
        rows, self.problems = read_manifest(self.folder)
        manifest = self.folder / MANIFEST_NAME
        scenes = []
        for row in rows:
            scene = _scene(row, manifest)
            try:
                scene.check()
            except InputDataError as exc:
                self.problems.append(exc)
                continue
            scenes.append(scene)
        return scenes


def _scene(row: ManifestRow, manifest: Path) -> LocalScene:
    return LocalScene(row.info, row.path, row.mask_band, row.mask_path, manifest, row.row)
