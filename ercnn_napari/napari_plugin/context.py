"""What the three docks of one viewer share: the open project, the current tile and split.

npe2 creates each dock on its own and hands each its OWN public proxy of the viewer
(``napari.utils._proxies.PublicOnlyProxy``), so neither the proxy object nor its ``id`` identifies
the viewer. The docks meet through one :class:`ViewerContext` per *real* viewer instead: a proxy
is unwrapped with ``__wrapped__`` (wrapt's public proxy attribute, the same one napari itself uses)
and contexts live in a weak mapping keyed by that viewer, so they go away with it.

The context also discovers the project by itself: whenever a layer carrying our project metadata
appears (File › Open of a project folder, the sample, the label dock), the project is published,
so the docks work whatever order they and the project were opened in.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject, Signal

from ercnn_napari.core.tiles import TileId
from ercnn_napari.napari_plugin.layers import tile_box
from ercnn_napari.napari_plugin.project_layers import PROJECT_KEY, ROLE_KEY

_CONTEXTS: weakref.WeakKeyDictionary[Any, ViewerContext] = weakref.WeakKeyDictionary()


def real_viewer(viewer: Any) -> Any:
    """The viewer behind a napari public proxy (the viewer itself if it is not a proxy)."""
    return getattr(viewer, "__wrapped__", viewer)


class ViewerContext(QObject):
    """Shared state of the docks of one napari viewer."""

    project_changed = Signal(object)   # Project
    tile_changed = Signal(object)      # TileId | None
    split_changed = Signal(str)        # split version name
    labels_saved = Signal()            # tiles were written: "has labels" reasons may change
    run_finished = Signal(str)         # run folder of a completed fine-tune
    predict_requested = Signal(object)  # (model paths, tiles) from the fine-tune dock

    def __init__(self, viewer: Any) -> None:
        super().__init__()
        self._viewer_ref = weakref.ref(real_viewer(viewer))
        self.project: Any = None
        self.current_tile: TileId | None = None
        self.split_name: str = "V1"
        self.flush_labels: Callable[[], Any] | None = None
        self.runs: list[str] = []
        self.project_error: str = ""
        self.viewer.layers.events.inserted.connect(self._on_layer_inserted)
        self.adopt_from_layers()

    def release(self) -> None:
        """Forget this viewer (its window closed): the docks' signal connections go with the context.

        Qt connections hold the docks, and the docks hold the viewer, so without this a closed
        viewer would stay alive as long as the registry entry does. Idempotent.
        """
        for key, context in list(_CONTEXTS.items()):
            if context is self:
                del _CONTEXTS[key]
        viewer = self._viewer_ref()
        if viewer is not None:
            try:
                viewer.layers.events.inserted.disconnect(self._on_layer_inserted)
            except (TypeError, ValueError, RuntimeError):
                pass
        self.flush_labels = None
        self.deleteLater()

    @property
    def viewer(self) -> Any:
        viewer = self._viewer_ref()
        if viewer is None:
            raise RuntimeError("the viewer of this dock is closed")
        return viewer

    def set_project(self, project: Any) -> None:
        self.project = project
        self.project_error = ""
        self.project_changed.emit(project)

    def set_tile(self, tile: TileId | None) -> None:
        self.current_tile = tile
        self.tile_changed.emit(tile)

    def set_split(self, name: str) -> None:
        self.split_name = name
        self.split_changed.emit(name)

    # -- discovering the project from layers ---------------------------------------------------------
    def adopt_from_layers(self) -> None:
        """Publish the project of the first project layer already in the viewer (if none is open)."""
        for layer in self.viewer.layers:
            self._adopt(layer)

    def _on_layer_inserted(self, event: object) -> None:
        layer = getattr(event, "value", None)
        if layer is not None:
            self._adopt(layer)

    def _adopt(self, layer: Any) -> None:
        root = layer.metadata.get(PROJECT_KEY)
        if not root or layer.metadata.get(ROLE_KEY) != "labels" or self.project is not None:
            return
        from ercnn_napari.core.errors import ErcnnError
        from ercnn_napari.core.project import Project

        try:
            project = Project.open(root)
        except ErcnnError as exc:
            self.project_error = str(exc)
            return
        self.set_project(project)

    # -- camera --------------------------------------------------------------------------------------
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
    """The context of ``viewer`` or of the viewer behind a napari proxy (created on first use).

    Every proxy of one viewer gets the same context; it is dropped when the viewer is collected.
    """
    key = real_viewer(viewer)
    context = _CONTEXTS.get(key)
    if context is None:
        context = ViewerContext(key)
        _CONTEXTS[key] = context
    return context
