"""npe2 writer for labels: into the project (LabelStore, per tile) and as one georeferenced GeoTIFF.

napari's built-in writer stores labels without CRS or transform. For the project's labels layer
this writer saves every changed tile through :class:`LabelStore` (the .npy the trainer reads and
the per-tile GeoTIFF, atomically) and writes the whole mosaic to the chosen ``.tif`` with the
project CRS. A labels layer read from a GeoTIFF is written back with the georeference it came with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.core.atomic import atomic_path
from ercnn_napari.core.errors import LabelError
from ercnn_napari.napari_plugin.layers import transform_from_metadata


def write_labels(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """Write one labels layer; returns the files written (the tiles saved into the project, then ``path``)."""
    meta = attributes.get("metadata") or {}
    target = Path(path)
    if target.suffix.lower() not in (".tif", ".tiff"):
        target = target.with_suffix(".tif")
    array = np.asarray(data)
    if array.ndim != 2:
        raise LabelError(f"only 2-D labels can be written as a GeoTIFF (layer has shape {array.shape})", target)
    written: list[str] = []
    if meta.get("ercnn_role") == "labels" and meta.get("ercnn_project"):
        written += save_into_project(Path(meta["ercnn_project"]), array)
    if not meta.get("crs") or not meta.get("transform"):
        raise LabelError("the layer carries no georeference (crs/transform); open the labels through the "
                         "project or a GeoTIFF so that they can be saved in place", target)
    write_label_mosaic(target, array, meta["crs"], transform_from_metadata(meta))
    return [*written, str(target)]


def save_into_project(root: Path, mosaic: np.ndarray) -> list[str]:
    """Save the tiles of ``mosaic`` that differ from the project's files; an outside edit is refused."""
    from ercnn_napari.core.project import Project
    from ercnn_napari.napari_plugin.label_session import LabelSession

    project = Project.open(root)
    session = LabelSession(project)
    if mosaic.shape != session.mosaic.shape:
        raise LabelError(f"labels of shape {mosaic.shape} do not match the project grid "
                         f"{session.mosaic.shape}", root)
    session.mosaic[:] = mosaic
    report = session.save()
    if report.errors:
        raise LabelError("; ".join(report.errors.values()), root)
    return [str(session.store.npy_path(t)) for t in report.saved]


def write_label_mosaic(path: Path, array: np.ndarray, crs: str, transform: Any) -> None:
    """One-band GeoTIFF (uint8 when it fits) with the given CRS and transform, written atomically."""
    import rasterio

    dtype = "uint8" if array.min(initial=0) >= 0 and array.max(initial=0) < 256 else "int32"
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=1,
                           dtype=dtype, crs=crs, transform=transform, compress="deflate") as dst:
            dst.write(array.astype(dtype), 1)
            dst.update_tags(content="change labels (1 = change)")
