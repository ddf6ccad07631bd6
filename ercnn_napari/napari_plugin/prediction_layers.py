"""Prediction layers: a time stack per model (one slice per window), its max-over-windows map, dates.

Both layers use the same colormap: transparent below the threshold, red above, so they read as a
red change overlay on the reference pair (the authors' visualisation); moving the threshold only
swaps the colormap. The slice shown is labelled with its window's dates (mid-point and span) in the
canvas text overlay and the dims axis label, updated whenever the slider moves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from napari.utils.colormaps import Colormap

from ercnn_napari.napari_plugin.layers import geo_metadata, mosaic_placement, mosaic_transform
from ercnn_napari.napari_plugin.predictions import PredictionMosaic, WindowInfo

ROLE_KEY = "ercnn_role"
STACK_ROLE = "prediction"
MAX_ROLE = "prediction_max"


def change_colormap(threshold: float, name: str = "change") -> Colormap:
    """Transparent below ``threshold``; red from it up to 1, more opaque as the probability grows.

    "zero" interpolation holds each colour from its control point to the next, so the threshold is
    a hard edge (a pixel is either shown as change or not), as the analyst sets it.
    """
    t = float(np.clip(threshold, 1e-3, 0.999))
    levels = np.linspace(t, 1.0, 5)[:-1]
    controls = [0.0, *levels.tolist(), 1.0]
    colors = [[1.0, 0.0, 0.0, 0.0]] + [[1.0, 0.15 * (3 - i), 0.0, 0.55 + 0.15 * i] for i in range(4)]
    return Colormap(colors=colors, controls=controls, interpolation="zero", name=f"{name}>{t:.2f}")


def prediction_layer_data(mosaic: PredictionMosaic, grid: Any, threshold: float) -> list[tuple[Any, dict, str]]:
    """The stack (time axis first) and the max map of one prediction, placed on the project grid."""
    placement = mosaic_placement(grid, mosaic.origin)
    transform = mosaic_transform(grid, mosaic.origin)
    windows = [{"start": w.start_time, "end": w.end_time, "n_obs": w.n_obs, "id": w.window_id}
               for w in mosaic.windows]
    common = {"folder": str(mosaic.folder), "windows": windows, "tiles": [list(t) for t in mosaic.tiles],
              "mosaic_origin": list(mosaic.origin), "model_name": mosaic.name, "tile_size": grid.tile_size}
    cmap = change_colormap(threshold)
    stack_meta = geo_metadata(grid.crs, transform, mosaic.folder, **common, **{ROLE_KEY: STACK_ROLE})
    max_meta = geo_metadata(grid.crs, transform, mosaic.folder, **common, **{ROLE_KEY: MAX_ROLE})
    stack_kwargs = {
        "name": f"change {mosaic.name}", "colormap": cmap, "contrast_limits": (0.0, 1.0),
        "blending": "translucent", "metadata": stack_meta, "interpolation2d": "nearest",
        "scale": (1.0, *placement["scale"]), "translate": (0.0, *placement["translate"]),
        "axis_labels": ("window", "y", "x"),
    }
    max_kwargs = {
        "name": f"max change {mosaic.name}", "colormap": cmap, "contrast_limits": (0.0, 1.0),
        "blending": "translucent", "metadata": max_meta, "visible": False, "interpolation2d": "nearest",
        **placement,
    }
    return [(mosaic.stack, stack_kwargs, "image"), (mosaic.max_map, max_kwargs, "image")]


def windows_of(layer: Any) -> list[WindowInfo]:
    return [WindowInfo(w["start"], w["end"], int(w["n_obs"]), None if w.get("id") is None else int(w["id"]))
            for w in layer.metadata.get("windows", [])]


def is_prediction(layer: Any) -> bool:
    return layer.metadata.get(ROLE_KEY) in (STACK_ROLE, MAX_ROLE)


def set_threshold(layers: Any, threshold: float) -> None:
    """Apply a new threshold to every prediction layer of the viewer."""
    cmap = change_colormap(threshold)
    for layer in layers:
        if is_prediction(layer):
            layer.colormap = cmap


def window_text(layer: Any, step: int) -> str:
    """The label of slice ``step`` of a prediction stack layer ("" if it has no such window)."""
    windows = windows_of(layer)
    if not 0 <= step < len(windows):
        return ""
    return windows[step].label(step)


class WindowLabeller:
    """Keeps the canvas text overlay on the dates of the window under the slider."""

    def __init__(self, viewer: Any) -> None:
        self.viewer = viewer
        self.text = ""
        self.window_id: int | None = None
        viewer.dims.events.current_step.connect(self.update)
        viewer.layers.selection.events.active.connect(self.update)

    def disconnect(self) -> None:
        self.viewer.dims.events.current_step.disconnect(self.update)
        self.viewer.layers.selection.events.active.disconnect(self.update)

    def stack_layer(self) -> Any:
        active = self.viewer.layers.selection.active
        if active is not None and active.metadata.get(ROLE_KEY) == STACK_ROLE:
            return active
        stacks = [lay for lay in self.viewer.layers if lay.metadata.get(ROLE_KEY) == STACK_ROLE and lay.visible]
        return stacks[-1] if stacks else None

    def update(self, event: Any = None) -> None:
        layer = self.stack_layer()
        overlay = _text_overlay(self.viewer)
        if layer is None:
            return
        world_step = self.viewer.dims.point[0] if self.viewer.dims.ndim >= 3 else 0.0
        step = int(round(layer.world_to_data((world_step, 0.0, 0.0))[0]))
        self.text = window_text(layer, step)
        windows = windows_of(layer)
        self.window_id = windows[step].window_id if 0 <= step < len(windows) else None
        overlay.text = self.text
        overlay.visible = bool(self.text)
        overlay.color = "white"
        overlay.font_size = 10
        overlay.position = "top_left"
        if self.viewer.dims.ndim >= 3:
            # the slider counts slices from 0; its label names the authors' window ID shown
            labels = list(self.viewer.dims.axis_labels)
            labels[0] = "window" if self.window_id is None else f"window {self.window_id}"
            if list(self.viewer.dims.axis_labels) != labels:
                self.viewer.dims.axis_labels = labels


def _text_overlay(viewer: Any) -> Any:
    canvas = getattr(viewer, "canvas", None)
    overlays = getattr(canvas, "overlays", None)
    return overlays.text if overlays is not None and hasattr(overlays, "text") else viewer.text_overlay
