"""What the three docks of one viewer share: the open project, the current tile and split.

npe2 creates each dock on its own, so they meet through this per-viewer object instead of through
each other: the label dock publishes the project and a ``flush_labels`` callback (labels must be on
disk before a fine-tune starts); the fine-tune dock publishes finished runs; the review dock
listens to both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject, Signal

from ercnn_napari.core.tiles import TileId
from ercnn_napari.napari_plugin.layers import tile_box

_CONTEXTS: dict[int, ViewerContext] = {}


class ViewerContext(QObject):
    """Shared state of the docks of one napari viewer."""

    project_changed = Signal(object)   # Project
    tile_changed = Signal(object)      # TileId | None
    split_changed = Signal(str)        # split version name
    run_finished = Signal(str)         # run folder of a completed fine-tune
    predict_requested = Signal(object)  # (model paths, tiles) from the fine-tune dock

    def __init__(self, viewer: Any) -> None:
        super().__init__()
        self.viewer = viewer
        self.project: Any = None
        self.current_tile: TileId | None = None
        self.split_name: str = "V1"
        self.flush_labels: Callable[[], Any] | None = None
        self.runs: list[str] = []

    def set_project(self, project: Any) -> None:
        self.project = project
        self.project_changed.emit(project)

    def set_tile(self, tile: TileId | None) -> None:
        self.current_tile = tile
        self.tile_changed.emit(tile)

    def set_split(self, name: str) -> None:
        self.split_name = name
        self.split_changed.emit(name)

    @property
    def camera(self) -> Any:
        """The viewer's camera (``viewer.scene.camera`` since napari 0.9, ``viewer.camera`` before)."""
        scene = getattr(self.viewer, "scene", None)
        return scene.camera if scene is not None else self.viewer.camera

    def visible_tiles(self) -> list[TileId]:
        """Grid tiles that overlap the part of the canvas the analyst is looking at."""
        if self.project is None:
            return []
        grid = self.project.grid
        height, width = self.viewer.canvas.size
        zoom = max(float(self.camera.zoom), 1e-9)
        center = self.camera.center[-2:]
        half_h, half_w = height / zoom / 2.0, width / zoom / 2.0
        top, bottom = center[0] - half_h, center[0] + half_h
        left, right = center[1] - half_w, center[1] + half_w
        span_y = grid.tile_size * grid.pixel_height
        span_x = grid.tile_size * grid.pixel_width
        y0, y1 = max(0, math.floor(top / span_y)), min(grid.rows - 1, math.floor(bottom / span_y))
        x0, x1 = max(0, math.floor(left / span_x)), min(grid.cols - 1, math.floor(right / span_x))
        return [(y, x) for y in range(y0, y1 + 1) for x in range(x0, x1 + 1)]

    def jump_to(self, tile: TileId, tiles_across: float = 1.6) -> None:
        """Centre the canvas on a tile and zoom so that it fills most of the view."""
        if self.project is None:
            return
        top, left, bottom, right = tile_box(self.project.grid, tile)
        self.camera.center = ((top + bottom) / 2.0, (left + right) / 2.0)
        height, width = self.viewer.canvas.size
        self.camera.zoom = min(height, width) / ((bottom - top) * tiles_across)
        self.set_tile(tile)


def context_for(viewer: Any) -> ViewerContext:
    """The context of ``viewer`` (created on first use, dropped when its window is destroyed).

    npe2 hands each dock opened from the Plugins menu its own proxy of the viewer; the proxy is
    unwrapped so that all docks of one viewer meet in one context."""
    viewer = getattr(viewer, "__wrapped__", viewer)
    key = id(viewer)
    context = _CONTEXTS.get(key)
    if context is None or context.viewer is not viewer:
        context = ViewerContext(viewer)
        _CONTEXTS[key] = context
        window = getattr(getattr(viewer, "window", None), "_qt_window", None)
        if window is not None:
            window.destroyed.connect(lambda *_: _CONTEXTS.pop(key, None))
    return context
