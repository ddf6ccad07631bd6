"""The index-difference baseline (``ercnn-napari baseline``) as napari layers for the Review dock.

One image layer per index (NDVI, NDBI, SAR log-ratio), placed on the project grid like the
predictions, coloured with the same change colormap cut at the index's *fitted* threshold
(normalised so that the cut sits where 0.5 sits for a network): what the analyst sees is what the
baseline calls change. The index the baseline chose on its training tiles is shown, the others
are added hidden. numpy/rasterio only (the viewer never imports TensorFlow).

The Review dock's "Index baseline" button (:class:`IndexBaselineAction`) runs ``ercnn-napari
baseline`` for the dock's split in a worker and adds these layers, so the analyst always sees
what the network adds beyond a plain index difference.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.napari_plugin.layers import geo_metadata, mosaic_placement
from ercnn_napari.napari_plugin.worker_action import WorkerAction

INFO_FILE = "baseline.json"


def read_baseline_info(folder: str | Path) -> dict[str, Any]:
    """``baseline.json`` of a baseline folder; a missing or broken file is one clear error."""
    path = Path(folder) / INFO_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ErcnnError("not an index-baseline folder (no baseline.json); run `ercnn-napari baseline` first",
                         path) from None
    except (OSError, ValueError) as exc:
        raise ErcnnError(f"baseline description is unreadable ({exc})", path) from exc


def index_baseline_layer_data(folder: str | Path, grid: Any) -> list[tuple[np.ndarray, dict, str]]:
    """``(data, kwargs, "image")`` per index: scores / threshold / 2, so 0.5 marks the fitted cut."""
    import rasterio

    from ercnn_napari.napari_plugin.prediction_layers import change_colormap

    folder = Path(folder)
    info = read_baseline_info(folder)
    layers = []
    for name, file_name in sorted(info.get("files", {}).items()):
        path = folder / file_name
        try:
            with rasterio.open(path) as src:
                scores = src.read(1).astype(np.float32)
                transform = src.transform
        except Exception as exc:  # rasterio raises several types for a broken file
            raise ErcnnError(f"index layer is unreadable ({exc})", path) from exc
        if scores.shape != grid.shape_pixels:
            raise ErcnnError(f"index layer has shape {scores.shape}, the project grid {grid.shape_pixels}", path)
        threshold = (info.get("indices", {}).get(name) or {}).get("threshold")
        if threshold is None or not math.isfinite(threshold) or threshold <= 0:
            continue                                   # nothing was fitted: no cut to show
        shown = np.clip(np.nan_to_num(scores / (2.0 * threshold), nan=0.0), 0.0, 1.0)
        meta = geo_metadata(grid.crs, transform, path, ercnn_role="index_baseline", index=name,
                            threshold=threshold)
        kwargs = {"name": f"index baseline {name}", "colormap": change_colormap(0.5, f"index {name}"),
                  "contrast_limits": (0.0, 1.0), "blending": "translucent", "metadata": meta,
                  "interpolation2d": "nearest", "visible": name == info.get("best"),
                  **mosaic_placement(grid, (0, 0))}
        layers.append((shown, kwargs, "image"))
    return layers


class IndexBaselineAction(WorkerAction):
    """The Review dock's "Index baseline" button: fit on the split's training tiles, show the layers."""

    label = "Index baseline (NDVI / NDBI / SAR)"
    tooltip = ("index differences of the same stacked observations (medians of the first and the last "
               "year), thresholds fitted on the split's training labels: what a network must beat")
    stage = "index baseline"
    what = "index baseline"

    def command(self, project: Any) -> tuple[list[str], Path]:
        split = self.dock.context.split_name
        out_dir = Path(project.root) / "baselines" / f"index_{split}"
        return ["baseline", str(project.root), "--split", split, "--out", str(out_dir), "--progress", "json"], out_dir

    def show(self, folder: Path) -> list[Any]:
        grid = self.dock.context.project.grid
        layers = [self.dock.viewer.add_image(data, **kwargs) for data, kwargs, _ in index_baseline_layer_data(folder, grid)]
        self.dock.state_label.setText(f"index baseline: {len(layers)} layer(s) from {folder}")
        return layers
