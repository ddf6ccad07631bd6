"""Pixel story dock: click a pixel, see its whole series, the model's answer per window, and the truth.

A click on the canvas (in pan/zoom mode, or with Alt in any mode so painting is undisturbed) picks
the 10 m pixel under the cursor. Its tile's stacked observations are read by the TensorFlow-free
reader in a worker thread (a tile file is tens of MB of GZIP), so the viewer never waits; a newer
click supersedes an older read. The probabilities come from the prediction stack shown in the
viewer, the highlighted window follows the slider, and the answer key's dated events (sample
projects have one) are drawn where they touch the pixel (solid) or its tile (dotted).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from napari.utils.notifications import show_warning
from qtpy.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from ercnn_napari.core.pixel_series import S2_BANDS, PixelSeries, read_pixel_series
from ercnn_napari.core.tiles import TileId, format_tile_id
from ercnn_napari.napari_plugin.context import context_for
from ercnn_napari.napari_plugin.layers import display_to_crs, grid_anchor, tile_at_display
from ercnn_napari.napari_plugin.pixel_plot import PixelPlot
from ercnn_napari.napari_plugin.prediction_layers import STACK_ROLE, windows_of

ROLE_KEY = "ercnn_role"
ANSWER_KEY_FILE = Path("answer_key") / "sample.json"
DEFAULT_BANDS = ("B04", "B08")


class PixelDock(QWidget):
    """Click a pixel -> its S1/S2 series, change probability per window and dated true events."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.context = context_for(napari_viewer)
        self.plot = PixelPlot(self)
        self.info = QLabel("click a pixel on the map (Alt+click while painting)")
        self.info.setWordWrap(True)
        self.bands = QListWidget()
        self.bands.setMaximumWidth(80)
        for band in S2_BANDS:
            item = QListWidgetItem(band)
            item.setCheckState(_checked(band in DEFAULT_BANDS))
            self.bands.addItem(item)
        self.bands.itemChanged.connect(lambda _item: self._redraw_series())
        row = QHBoxLayout()
        row.addWidget(self.plot, 1)
        row.addWidget(self.bands)
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addLayout(row, 1)
        self.pixel: tuple[TileId, int, int] | None = None
        self.series: PixelSeries | None = None
        self._request = 0
        self._worker: Any = None
        self._own_project: Any = None
        self.viewer.mouse_drag_callbacks.append(self._on_mouse)
        self.viewer.dims.events.current_step.connect(self._update_window)

    # -- picking ---------------------------------------------------------------------------------
    def _on_mouse(self, viewer: Any, event: Any) -> Any:
        if getattr(event, "button", 1) != 1:
            return
        active = viewer.layers.selection.active
        mode = str(getattr(active, "mode", "pan_zoom"))
        if mode not in ("pan_zoom", "Mode.PAN_ZOOM") and "Alt" not in {str(m) for m in event.modifiers}:
            return
        moved = False
        yield
        while event.type == "mouse_move":
            moved = True
            yield
        if not moved:
            self.pick_world(*event.position[-2:])

    def project(self) -> Any:
        """The shared context's project, else the one the viewer's project layers name (opened once)."""
        if self.context.project is not None:
            return self.context.project
        from ercnn_napari.core.errors import ErcnnError
        from ercnn_napari.core.project import Project

        roots = [layer.metadata.get("ercnn_project") for layer in self.viewer.layers]
        root = next((r for r in roots if r), None)
        if root is None:
            return None
        if self._own_project is None or str(self._own_project.root) != str(root):
            try:
                self._own_project = Project.open(root)
            except ErcnnError as exc:
                show_warning(str(exc))
                return None
        return self._own_project

    def pick_world(self, row: float, col: float) -> None:
        project = self.project()
        if project is None:
            return
        grid = project.grid
        tile = tile_at_display(grid, row, col)
        if tile is None:
            return
        r = int(row // grid.pixel_height) - tile[0] * grid.tile_size
        c = int(col // grid.pixel_width) - tile[1] * grid.tile_size
        self.show_pixel(tile, r, c)

    def show_pixel(self, tile: TileId, row: int, col: int) -> Any:
        """Start reading the pixel's series in a worker thread; returns the worker (tests wait on it)."""
        from napari.qt.threading import create_worker

        project = self.project()
        self.pixel = (tuple(tile), int(row), int(col))
        name = f"tile {format_tile_id(tile)} pixel ({row}, {col})"
        self._show_probabilities()
        self._show_events()
        path = project.observation_files().get(tuple(tile)) if project is not None else None
        if path is None:
            self.info.setText(f"{name}: this tile has no observations")
            return None
        if project.observations_config and project.observations_config.get("kind") != "stacked":
            self.info.setText(f"{name}: the pixel series needs stacked (stage-2) observations")
            return None
        self.info.setText(f"{name}: reading {path.name}…")
        self._request += 1
        request = self._request
        worker = create_worker(read_pixel_series, path, row, col, _start_thread=False)
        worker.returned.connect(lambda series: self._series_read(request, name, series))
        worker.errored.connect(lambda exc: self._series_failed(request, name, exc))
        self._worker = worker
        worker.start()
        return worker

    def _series_read(self, request: int, name: str, series: PixelSeries) -> None:
        if request != self._request:
            return  # a newer click won
        self.series = series
        masked = int(series.streams["S2"].masked.sum())
        self.info.setText(f"{name}: {len(series.timestamps)} stacked steps, {masked} cloud-masked S2 "
                          f"acquisition(s)")
        self._redraw_series()

    def _series_failed(self, request: int, name: str, exc: BaseException) -> None:
        if request == self._request:
            self.info.setText(f"{name}: {exc}")
            show_warning(str(exc))

    def chosen_bands(self) -> list[str]:
        return [self.bands.item(i).text() for i in range(self.bands.count())
                if self.bands.item(i).checkState() == _checked(True)]

    def _redraw_series(self) -> None:
        if self.series is not None:
            self.plot.show_series(self.series, self.chosen_bands())

    # -- predictions and truth ---------------------------------------------------------------------
    def stack_layer(self) -> Any:
        stacks = [layer for layer in self.viewer.layers if layer.metadata.get(ROLE_KEY) == STACK_ROLE]
        visible = [layer for layer in stacks if layer.visible]
        return (visible or stacks or [None])[-1]

    def probabilities(self) -> tuple[list[tuple[float, float]], np.ndarray | None, str]:
        """The stack layer's windows and this pixel's probability in each (None outside its tiles)."""
        layer = self.stack_layer()
        if layer is None or self.pixel is None:
            return [], None, ""
        tile, r, c = self.pixel
        origin = layer.metadata.get("mosaic_origin", [0, 0])
        size = int(layer.metadata.get("tile_size", 32))
        if [list(t) for t in layer.metadata.get("tiles", [])].count(list(tile)) == 0:
            return [], None, ""
        y, x = (tile[0] - origin[0]) * size + r, (tile[1] - origin[1]) * size + c
        data = layer.data
        if not (0 <= y < data.shape[1] and 0 <= x < data.shape[2]):
            return [], None, ""
        windows = [(w.start_time, w.end_time) for w in windows_of(layer)]
        return windows, np.asarray(data[:, y, x], dtype=float), layer.name

    def _show_probabilities(self) -> None:
        windows, values, name = self.probabilities()
        self.plot.show_probabilities(windows, values, name)
        self._update_window()

    def current_window(self) -> int | None:
        layer = self.stack_layer()
        if layer is None or self.viewer.dims.ndim < 3:
            return None
        return int(round(layer.world_to_data((self.viewer.dims.point[0], 0.0, 0.0))[0]))

    def _update_window(self, event: Any = None) -> None:
        self.plot.set_current_window(self.current_window())

    def answer_events(self) -> list[tuple[float, str, bool]]:
        """Dated phases of the answer key's events that touch the pixel (True) or its tile (False)."""
        project = self.project()
        if project is None or self.pixel is None:
            return []
        path = Path(project.root) / ANSWER_KEY_FILE
        if not path.is_file():
            return []
        try:
            events = json.loads(path.read_text(encoding="utf-8")).get("events", [])
        except ValueError:
            return []
        tile, r, c = self.pixel
        grid = project.grid
        x, y = display_to_crs((tile[0] * grid.tile_size + r + 0.5) * grid.pixel_height,
                              (tile[1] * grid.tile_size + c + 0.5) * grid.pixel_width, grid_anchor(grid))
        found = []
        for event in events:
            left, bottom, right, top = event.get("bounds", [0, 0, 0, 0])
            here = left <= x <= right and bottom <= y <= top
            if not here and format_tile_id(tile) not in event.get("tiles", []):
                continue
            for phase in event.get("phases", []):
                found.append((float(phase["time"]), f"{event.get('kind', '')} {phase.get('name', '')}", here))
        return found

    def _show_events(self) -> None:
        self.plot.show_events(self.answer_events())

    def shutdown(self) -> None:
        if self._on_mouse in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._on_mouse)
        self.viewer.dims.events.current_step.disconnect(self._update_window)


def _checked(on: bool) -> Any:
    from qtpy.QtCore import Qt

    return Qt.CheckState.Checked if on else Qt.CheckState.Unchecked
