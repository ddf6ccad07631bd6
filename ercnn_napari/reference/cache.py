"""Cache reference imagery inside a project: resumable row bands -> one COG -> per-tile PNGs.

Why in row bands: a map service over a city-sized AoI takes minutes to hours and networks fail;
each band of one tile row is written as its own small GeoTIFF (atomically), so a rerun after an
interruption skips the bands already there. When every band exists they are assembled through a
VRT into a Cloud-Optimised GeoTIFF with overviews (the viewer's multiscale pyramid), verified, and
only then named in the manifest. Last, every tile with imagery gets ``<year>.png`` in the authors'
layout (``ground_truth/{y}:{x}/``), which their tools and the PNG mosaics of this plugin read.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.windows import Window

from ercnn_napari.core.atomic import atomic_path
from ercnn_napari.core.errors import InputDataError
from ercnn_napari.core.tiles import TileId
from ercnn_napari.reference.source import GridReader, choose_factor, describe_source
from ercnn_napari.reference.store import CachedImage, cog_path, parts_dir, record_image

#: progress(done, total, description)
ProgressFn = Callable[[int, int, str], None]

_BAND_NAMES = ("Red", "Green", "Blue", "Alpha")


def _noop(done: int, total: int, desc: str) -> None:
    return None


def cache_reference(project: Any, source: str, role: str, year: int, factor: int | None = None,
                    progress: ProgressFn = _noop, write_pngs: bool = True,
                    should_stop: Callable[[], bool] = lambda: False) -> CachedImage:
    """Read ``source`` over the project's grid and cache it as ``reference/<role>_<year>.tif``.

    ``factor`` (cache pixels per 10 m grid pixel) defaults to the source's own resolution, capped
    at 1 m. Raises :class:`InputDataError` for a source that cannot be opened or does not cover
    the AoI. ``should_stop`` is polled between bands; stopping keeps the bands already written.
    """
    grid = project.grid
    info = describe_source(source, grid)  # also refuses a source that does not cover the AoI
    if factor is None:
        factor = choose_factor(info.native_size_m, min(grid.pixel_width, grid.pixel_height))
    target = cog_path(project.root, role, year)
    parts = parts_dir(project.root, role, year)
    band_rows = grid.tile_size * factor
    n_bands = grid.rows
    with GridReader(source, grid, factor) as reader:
        _claim_parts(parts, {"source": str(source).strip(), "factor": int(factor), "grid": grid.to_dict()})
        for row in range(n_bands):
            part = parts / f"row_{row:05d}.tif"
            if not part.is_file():
                if should_stop():
                    raise KeyboardInterrupt
                data = reader.read_rows(row * band_rows, band_rows)
                _write_part(part, data, reader, row * band_rows)
            progress(row + 1, n_bands, f"{role} {year}: tile rows read")
        vrt = _write_vrt(parts, reader, band_rows, n_bands)
        _write_cog(vrt, target)
    image = CachedImage(role, int(year), target, int(factor), str(source).strip()[:500])
    record_image(project.root, image)
    shutil.rmtree(parts, ignore_errors=True)
    if write_pngs:
        write_tile_pngs(project, image, progress)
    return image


def _claim_parts(parts: Path, what: dict[str, Any]) -> None:
    """Resume only the work of the same source, factor and grid; anything else starts afresh."""
    import json

    stamp = parts / "job.json"
    text = json.dumps(what, sort_keys=True)
    if parts.is_dir() and (not stamp.is_file() or stamp.read_text(encoding="utf-8") != text):
        shutil.rmtree(parts)
    parts.mkdir(parents=True, exist_ok=True)
    if not stamp.is_file():
        stamp.write_text(text, encoding="utf-8")


def _write_part(path: Path, data: np.ndarray, reader: GridReader, row0: int) -> None:
    profile = {"driver": "GTiff", "width": data.shape[2], "height": data.shape[1], "count": 4,
               "dtype": "uint8", "crs": reader.grid.crs, "compress": "deflate",
               "transform": reader.transform * rasterio.Affine.translation(0, row0)}
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as out:
        out.write(data)


def _write_vrt(parts: Path, reader: GridReader, band_rows: int, n_bands: int) -> Path:
    """A VRT stacking the row bands (written by hand: rasterio has no BuildVRT)."""
    from rasterio.crs import CRS

    t = reader.transform
    lines = [f'<VRTDataset rasterXSize="{reader.width}" rasterYSize="{reader.height}">',
             f"  <SRS>{escape(CRS.from_user_input(reader.grid.crs).to_wkt())}</SRS>",
             f"  <GeoTransform>{t.c!r}, {t.a!r}, {t.b!r}, {t.f!r}, {t.d!r}, {t.e!r}</GeoTransform>"]
    for band, name in enumerate(_BAND_NAMES, start=1):
        lines.append(f'  <VRTRasterBand dataType="Byte" band="{band}"><ColorInterp>{name}</ColorInterp>')
        for row in range(n_bands):
            lines.append(
                f'    <SimpleSource><SourceFilename relativeToVRT="1">row_{row:05d}.tif</SourceFilename>'
                f"<SourceBand>{band}</SourceBand>"
                f'<SrcRect xOff="0" yOff="0" xSize="{reader.width}" ySize="{band_rows}"/>'
                f'<DstRect xOff="0" yOff="{row * band_rows}" xSize="{reader.width}" ySize="{band_rows}"/>'
                "</SimpleSource>")
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    path = parts / "bands.vrt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _write_cog(vrt: Path, target: Path) -> None:
    """VRT -> COG with overviews, atomically; checked by reopening before it is named final."""
    with atomic_path(target) as tmp:
        rasterio.shutil.copy(str(vrt), str(tmp), driver="COG", COMPRESS="DEFLATE", PREDICTOR="2",
                             BLOCKSIZE="256", OVERVIEWS="IGNORE_EXISTING", RESAMPLING="AVERAGE")
        with rasterio.open(tmp) as check:
            if check.count != 4 or check.width <= 0:
                raise InputDataError("the cached image came out malformed", target)
            check.read(1, window=Window(0, 0, min(check.width, 64), min(check.height, 64)))


def tile_image(dataset: Any, grid: Any, factor: int, tile: TileId) -> np.ndarray:
    """One tile of a cached COG as uint8 [H, W, 4]."""
    size = grid.tile_size * factor
    window = Window(tile[1] * size, tile[0] * size, size, size)
    return np.moveaxis(dataset.read(window=window), 0, -1)


def write_tile_pngs(project: Any, image: CachedImage, progress: ProgressFn = _noop) -> int:
    """``ground_truth/{y}:{x}/<year>.png`` for every tile with imagery; existing up-to-date PNGs are kept."""
    grid = project.grid
    written = 0
    cog_time = image.path.stat().st_mtime
    tiles = list(grid.tiles())
    with rasterio.open(image.path) as dataset:
        for i, tile in enumerate(tiles, start=1):
            target = project.reference_path(tile, image.year)
            if not (target.is_file() and target.stat().st_mtime >= cog_time):
                rgba = tile_image(dataset, grid, image.factor, tile)
                alpha = rgba[..., 3]
                if alpha.any():
                    project.write_reference_image(tile, image.year, rgba[..., :3] if alpha.all() else rgba)
                    written += 1
            if i % 50 == 0 or i == len(tiles):
                progress(i, len(tiles), f"{image.role} {image.year}: tile PNGs")
    return written
