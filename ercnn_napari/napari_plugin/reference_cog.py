"""Cached reference imagery (``reference/<role>_<year>.tif`` COGs) as multiscale napari layers.

An orthophoto over a city at 1 m is far too big to hold in memory as one array, and the COG
already carries the pyramid: each overview becomes one level of a napari multiscale image, read
window by window only where and when napari draws it. The levels share the grid's origin, so
``scale``/``translate`` of level 0 put the image exactly on the tile grid (its outer edges are the
grid's edges), like the per-tile PNG mosaics it replaces.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from ercnn_napari.napari_plugin.layers import mosaic_placement
from ercnn_napari.reference.store import CachedImage, read_manifest


class CogLevel:
    """One pyramid level of a COG as a lazy [H, W, bands] uint8 array (what napari slices)."""

    def __init__(self, path: Path, overview: int | None) -> None:
        self.path = Path(path)
        self.overview = overview
        kwargs = {} if overview is None else {"overview_level": overview}
        self._dataset = rasterio.open(self.path, **kwargs)
        self._lock = threading.Lock()  # a rasterio dataset must not be read from two threads at once
        self.shape = (self._dataset.height, self._dataset.width, self._dataset.count)
        self.dtype = np.dtype(self._dataset.dtypes[0])
        self.ndim = 3
        self.size = int(np.prod(self.shape))

    def close(self) -> None:
        self._dataset.close()

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = self[:, :, :]
        return data if dtype is None else data.astype(dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = key + (slice(None),) * (3 - len(key))
        rows, cols, bands = key
        rows_s = _as_slice(rows, self.shape[0])
        cols_s = _as_slice(cols, self.shape[1])
        r0, r1, rstep = rows_s.indices(self.shape[0])
        c0, c1, cstep = cols_s.indices(self.shape[1])
        if r1 <= r0 or c1 <= c0:
            block = np.zeros((max(r1 - r0, 0), max(c1 - c0, 0), self.shape[2]), self.dtype)
        else:
            with self._lock:
                block = self._dataset.read(window=Window(c0, r0, c1 - c0, r1 - r0))
            block = np.moveaxis(block, 0, -1)
        block = block[::rstep, ::cstep][:, :, bands]
        if isinstance(rows, (int, np.integer)):
            block = block[0]
            if isinstance(cols, (int, np.integer)):
                return block[0]
            return block
        if isinstance(cols, (int, np.integer)):
            return block[:, 0]
        return block


def _as_slice(index: Any, size: int) -> slice:
    if isinstance(index, (int, np.integer)):
        i = int(index) + (size if index < 0 else 0)
        return slice(i, i + 1)
    if isinstance(index, slice):
        return index
    raise TypeError(f"unsupported index {index!r} for a cached reference image")


def cog_pyramid(path: Path, min_size: int = 256) -> list[CogLevel]:
    """Level 0 and every overview down to about ``min_size`` pixels (napari picks the level it needs)."""
    levels = [CogLevel(path, None)]
    with rasterio.open(path) as dataset:
        n_overviews = len(dataset.overviews(1))
    for overview in range(n_overviews):
        level = CogLevel(path, overview)
        levels.append(level)
        if max(level.shape[:2]) <= min_size:
            break
    return levels


def cached_reference_layer_data(project: Any) -> list[tuple[Any, dict[str, Any], str]]:
    """Before/after layers from the project's cached COGs (empty unless both roles are cached)."""
    from ercnn_napari.napari_plugin.project_layers import layer_metadata

    images: dict[str, CachedImage] = read_manifest(project.root)
    if not {"before", "after"} <= set(images):
        return []
    layers = []
    for role in ("before", "after"):
        image = images[role]
        pyramid = cog_pyramid(image.path)
        meta = layer_metadata(project, role, years=str(image.year), factor=image.factor, mosaic_origin=[0, 0],
                              cached=str(image.path), source_description=image.source)
        kwargs = {"name": f"{role} {image.year}", "rgb": True, "metadata": meta, "visible": role == "after",
                  "multiscale": len(pyramid) > 1, "contrast_limits": (0, 255),
                  **mosaic_placement(project.grid, (0, 0), image.factor)}
        data = pyramid if len(pyramid) > 1 else np.asarray(pyramid[0])  # small: one plain array
        layers.append((data, kwargs, "image"))
    return layers
