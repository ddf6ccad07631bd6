"""Layers of a whole-AoI map folder (``ercnn-napari map``), opened lazily so a big AoI opens at once.

The per-window stack comes from ``windows.zarr`` as a napari multiscale image of dask arrays (one
per pyramid level, max-pooled), the max-change map from the COG's overviews, read block by block
on demand. Nothing is read until napari draws it, so a 4,958-tile AoI costs the blocks on screen,
not the 2 GB stack. The layers carry the same metadata roles as a prediction folder's
(:mod:`.prediction_layers`), so the threshold control and the window dates work on them too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.napari_plugin.layers import geo_metadata, mosaic_placement, mosaic_transform
from ercnn_napari.napari_plugin.prediction_layers import MAX_ROLE, ROLE_KEY, STACK_ROLE, change_colormap

MAP_FILE = "map.json"
BLOCK = 256


def is_map_folder(folder: Path) -> bool:
    return folder.is_dir() and (folder / MAP_FILE).is_file() and (folder / "windows.zarr").is_dir()


def _cog_levels(path: Path) -> list[Any]:
    """The COG's full resolution and overviews as lazy dask arrays (each block one windowed read)."""
    import dask.array as da
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(path) as src:
        height, width = src.height, src.width
        factors = [1, *src.overviews(1)]

    def level(factor: int) -> Any:
        h, w = -(-height // factor), -(-width // factor)

        def read(block_info: dict | None = None) -> np.ndarray:
            (r0, r1), (c0, c1) = block_info[None]["array-location"]
            window = Window(c0 * factor, r0 * factor, min((c1 - c0) * factor, width - c0 * factor),
                            min((r1 - r0) * factor, height - r0 * factor))
            with rasterio.open(path) as src:
                return src.read(1, window=window, out_shape=(r1 - r0, c1 - c0)).astype(np.float32)

        chunks = (tuple(min(BLOCK, h - i) for i in range(0, h, BLOCK)),
                  tuple(min(BLOCK, w - j) for j in range(0, w, BLOCK)))
        return da.map_blocks(read, chunks=chunks, dtype=np.float32)

    return [level(f) for f in factors]


def map_layer_data(folder: str | Path, threshold: float = 0.5) -> list[tuple[Any, dict, str]]:
    """(stack multiscale, kwargs, "image") and (max-change multiscale, kwargs, "image") of a map folder."""
    import dask.array as da
    import zarr

    from ercnn_napari.core.geo import TileGrid
    from ercnn_napari.core.window_table import read_window_csv

    folder = Path(folder)
    info = json.loads((folder / MAP_FILE).read_text(encoding="utf-8"))
    grid = TileGrid.from_dict(info["grid"])
    group = zarr.open_group(str(folder / "windows.zarr"), mode="r")
    levels = [da.from_zarr(group[str(k)]) for k in range(int(group.attrs.get("levels", 1)))]
    table = read_window_csv(folder / "windows.csv")
    windows = [{"start": float(s), "end": float(e), "n_obs": int(n)}
               for s, e, n in zip(table.start_time, table.end_time, table.n_obs, strict=True)]
    name = f"map {folder.name}"
    placement = mosaic_placement(grid, (0, 0))
    transform = mosaic_transform(grid, (0, 0))
    common = {"folder": str(folder), "windows": windows, "tiles": [list(map(int, t.split(":"))) for t in info["tiles"]],
              "mosaic_origin": [0, 0], "model_name": name, "tile_size": grid.tile_size, "map": info.get("settings")}
    cmap = change_colormap(threshold)
    stack = ({"name": f"change {name}", "colormap": cmap, "contrast_limits": (0.0, 1.0), "multiscale": True,
              "blending": "translucent", "interpolation2d": "nearest",
              "metadata": geo_metadata(grid.crs, transform, folder, **common, **{ROLE_KEY: STACK_ROLE}),
              "scale": (1.0, *placement["scale"]), "translate": (0.0, *placement["translate"]),
              "axis_labels": ("window", "y", "x")})
    peak = ({"name": f"max change {name}", "colormap": cmap, "contrast_limits": (0.0, 1.0), "multiscale": True,
             "blending": "translucent", "interpolation2d": "nearest", "visible": False,
             "metadata": geo_metadata(grid.crs, transform, folder, **common, **{ROLE_KEY: MAX_ROLE}), **placement})
    return [(levels, stack, "image"), (_cog_levels(folder / "change_max.tif"), peak, "image")]
