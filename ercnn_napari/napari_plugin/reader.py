"""npe2 reader: project folders and our GeoTIFFs (labels, predictions, exports) with their CRS.

napari's own TIFF reader drops the georeference; ours keeps CRS WKT, transform, nodata and source in
``layer.metadata`` and places the raster in the display frame (see :mod:`.layers`) so it lines up
with the project it belongs to. Readers must never raise: anything we cannot read returns None and
napari falls back to other readers (a plain TIFF without a CRS is left to them on purpose).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.napari_plugin.layers import geo_metadata, is_north_up, lattice_anchor, raster_placement

LOG = logging.getLogger(__name__)
PROJECT_FILE = "ercnn_project.json"
GEOTIFF_SUFFIXES = (".tif", ".tiff")

LayerData = tuple[Any, dict[str, Any], str]


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """Return a reader function for ``path`` if we understand it, else None (never raises)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        p = Path(path)
        if p.is_dir() and (p / "prediction.json").is_file():
            return read_prediction_folder
        if p.is_dir() and (p / "map.json").is_file() and (p / "windows.zarr").is_dir():
            return read_map_folder  # a whole-AoI map (ercnn-napari map), opened lazily
        if p.is_dir() and _looks_like_project(p):
            return read_project
        if p.name == PROJECT_FILE and p.is_file():
            return read_project
        if p.suffix.lower() in GEOTIFF_SUFFIXES and p.is_file() and _has_georeference(p):
            return read_geotiff
    except Exception:  # noqa: BLE001 - a reader must never raise into napari
        LOG.debug("ercnn-napari reader declined %s", path, exc_info=True)
    return None


def _looks_like_project(folder: Path) -> bool:
    return (folder / PROJECT_FILE).is_file() or (folder / "ground_truth").is_dir()


def _has_georeference(path: Path) -> bool:
    import rasterio

    with rasterio.open(path) as src:
        return src.crs is not None and is_north_up(src.transform)


def read_project(path: str | list[str]) -> list[LayerData]:
    """A project folder (or its ercnn_project.json) -> reference pair, tile grid and labels layers."""
    from ercnn_napari.core.project import Project
    from ercnn_napari.napari_plugin.project_layers import project_layer_data

    p = Path(path[0] if isinstance(path, list) else path)
    return project_layer_data(Project.open(p.parent if p.is_file() else p))


def read_prediction_folder(path: str | list[str]) -> list[LayerData]:
    """A prediction folder -> its window stack and max-change layers, placed on the grid it records."""
    from ercnn_napari.core.geo import TileGrid
    from ercnn_napari.napari_plugin.prediction_layers import prediction_layer_data
    from ercnn_napari.napari_plugin.predictions import load_prediction_mosaic, read_prediction_info

    folder = Path(path[0] if isinstance(path, list) else path)
    grid = TileGrid.from_dict(read_prediction_info(folder)["grid"])
    return prediction_layer_data(load_prediction_mosaic(folder, grid.tile_size), grid, threshold=0.5)


def read_map_folder(path: str | list[str]) -> list[LayerData]:
    """A whole-AoI map folder -> its per-window stack and max-change map, multiscale and lazy."""
    from ercnn_napari.napari_plugin.map_layers import map_layer_data

    return map_layer_data(Path(path[0] if isinstance(path, list) else path))


def find_project_root(path: Path, levels: int = 4) -> Path | None:
    """The project folder a file lives in (a parent with ercnn_project.json), if any."""
    for parent in list(path.resolve().parents)[:levels]:
        if (parent / PROJECT_FILE).is_file():
            return parent
    return None


def display_anchor_for(path: Path, crs: Any) -> tuple[float, float] | None:
    """The anchor of the project the file belongs to (same CRS), so it lines up with that project."""
    root = find_project_root(path)
    if root is None:
        return None
    try:
        from ercnn_napari.core.geo import same_crs
        from ercnn_napari.core.project import Project

        project = Project.open(root)
    except Exception:  # noqa: BLE001 - a foreign or broken project only costs the alignment
        return None
    if not same_crs(project.grid.crs, crs):
        return None
    return project.grid.origin_x, project.grid.origin_y


def read_geotiff(path: str | list[str]) -> list[LayerData]:
    """One GeoTIFF -> a labels layer (single integer band) or an image layer (bands = time axis)."""
    import rasterio

    p = Path(path[0] if isinstance(path, list) else path)
    with rasterio.open(p) as src:
        data = src.read()
        crs_wkt = src.crs.to_wkt()
        transform = src.transform
        nodata = src.nodata
        descriptions = list(src.descriptions)
        tags = src.tags()
        anchor = display_anchor_for(p, src.crs) or lattice_anchor(transform)
    meta = geo_metadata(crs_wkt, transform, p, nodata=nodata, band_descriptions=descriptions, tags=tags,
                        anchor=list(anchor))
    placement = raster_placement(transform, anchor)
    integer = np.issubdtype(data.dtype, np.integer)
    if data.shape[0] == 1 and integer:
        labels = data[0].astype(np.uint8 if data.max(initial=0) < 256 else np.int32)
        if nodata is not None:
            labels = np.where(data[0] == nodata, 0, labels).astype(labels.dtype)
        meta["ercnn_role"] = "labels_file"
        return [(labels, {"name": p.stem, "metadata": meta, "opacity": 0.6, **placement}, "labels")]
    image = data.astype(np.float32)
    if nodata is not None:
        image[data == nodata] = np.nan
    kwargs: dict[str, Any] = {"name": p.stem, "metadata": meta}
    if data.shape[0] == 1:
        return [(image[0], {**kwargs, **placement}, "image")]
    if data.shape[0] in (3, 4) and data.dtype == np.uint8:
        return [(np.moveaxis(data, 0, -1), {**kwargs, "rgb": True, **placement}, "image")]
    # several bands: one per window (our exports) -> a leading time axis, not stretched in display
    scale = (1.0, *placement["scale"])
    translate = (0.0, *placement["translate"])
    return [(image, {**kwargs, "scale": scale, "translate": translate}, "image")]
