"""Polygons -> 10 m labels: draw fine outlines on the reference images, or import a shapefile/GeoJSON.

The reference images are ten times finer than the Sentinel grid, so outlining a new building there
is more precise than painting 10 m pixels. The polygons are converted from the display frame back
to project CRS coordinates and rasterized onto the tiles by :mod:`ercnn_napari.core.polygons`
(pixel-centre rule, or all-touched). The result is *added* to the labels through the labels
layer's ``data_setitem``, so it is one undoable step and autosaves like a brush stroke.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import QCheckBox, QFileDialog, QGroupBox, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.tiles import TileId
from ercnn_napari.napari_plugin.layers import display_to_crs, grid_anchor
from ercnn_napari.napari_plugin.project_layers import PROJECT_KEY, ROLE_KEY, layer_metadata

if TYPE_CHECKING:   # shapely loads when polygons are used, not with the label dock (its first frame)
    from shapely.geometry import Polygon

FINE_ROLE = "fine_polygons"


def display_polygons_to_crs(shapes: list[np.ndarray], anchor: tuple[float, float]) -> list[Polygon]:
    """napari shapes vertices (row, col in the display frame) -> shapely polygons in CRS coordinates."""
    from shapely.geometry import Polygon

    polygons = []
    for vertices in shapes:
        points = [display_to_crs(float(r), float(c), anchor) for r, c in np.asarray(vertices)[:, -2:]]
        if len(points) >= 3:
            polygon = Polygon(points)
            if not polygon.is_valid:
                polygon = polygon.buffer(0)
            if not polygon.is_empty:
                polygons.append(polygon)
    return polygons


def burn_into_layer(labels_layer: Any, grid: Any, tile_labels: dict[TileId, np.ndarray]) -> int:
    """Add change pixels of ``tile_labels`` to the labels mosaic as one undoable edit; returns pixels set."""
    rows_all, cols_all = [], []
    data = labels_layer.data
    for tile, label in tile_labels.items():
        rows, cols = grid.tile_slices(tile)
        ys, xs = np.nonzero((label > 0) & (data[rows, cols] == 0))
        rows_all.append(ys + rows.start)
        cols_all.append(xs + cols.start)
    if not rows_all:
        return 0
    ys = np.concatenate(rows_all)
    xs = np.concatenate(cols_all)
    if ys.size:
        labels_layer.data_setitem((ys, xs), 1)
    return int(ys.size)


class PolygonTools(QGroupBox):
    """Buttons for fine polygons and polygon import; needs the label dock for the project and layers."""

    def __init__(self, dock: Any, parent: QWidget | None = None) -> None:
        super().__init__("Polygons", parent)
        self.dock = dock
        self.project: Any = None
        self.draw_button = QPushButton("Draw fine polygons")
        self.draw_button.setToolTip("outline change on the reference images; then burn them into the 10 m labels")
        self.draw_button.clicked.connect(self.start_drawing)
        self.burn_button = QPushButton("Burn into labels")
        self.burn_button.clicked.connect(self.burn_drawn)
        self.all_touched = QCheckBox("all touched")
        self.all_touched.setToolTip("mark every 10 m pixel a polygon touches (default: pixel centre inside)")
        self.import_button = QPushButton("Import polygons…")
        self.import_button.setToolTip("shapefile (.shp with .prj) or GeoJSON, any CRS")
        self.import_button.clicked.connect(self._choose_file)
        top = QHBoxLayout()
        top.addWidget(self.draw_button)
        top.addWidget(self.burn_button)
        top.addWidget(self.all_touched)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.import_button)

    def set_project(self, project: Any) -> None:
        self.project = project

    def fine_layer(self, create: bool = False) -> Any:
        viewer = self.dock.viewer
        for layer in viewer.layers:
            if layer.metadata.get(ROLE_KEY) == FINE_ROLE and layer.metadata.get(PROJECT_KEY) == str(self.project.root):
                return layer
        if not create:
            return None
        return viewer.add_shapes(name="fine polygons", edge_color="yellow", face_color=[1, 1, 0, 0.15],
                                 edge_width=1.0, metadata=layer_metadata(self.project, FINE_ROLE))

    def start_drawing(self) -> None:
        if self.project is None:
            return
        layer = self.fine_layer(create=True)
        self.dock.viewer.layers.selection.active = layer
        layer.mode = "add_polygon"

    def burn_drawn(self) -> int:
        """Rasterize the drawn polygons onto the grid and add them to the labels; clears the drawing."""
        layer = self.fine_layer()
        if layer is None or len(layer.data) == 0:
            show_info("draw polygons first (Draw fine polygons)")
            return 0
        geometries = display_polygons_to_crs(layer.data, grid_anchor(self.project.grid))
        count = self._burn(geometries, self.project.grid.crs, None)
        layer.data = []
        return count

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import change polygons", "",
                                              "Polygons (*.shp *.geojson *.json)")
        if path:
            self.import_file(path)

    def import_file(self, path: str) -> int:
        """Read a polygon file (any CRS) and add its change to the labels."""
        from ercnn_napari.core.polygons import read_polygons

        try:
            polygon_set = read_polygons(path)
        except ErcnnError as exc:
            show_warning(str(exc))
            return 0
        return self._burn(polygon_set.geometries, polygon_set.crs, path)

    def _burn(self, geometries: list[Any], crs: str, path: Any) -> int:
        from ercnn_napari.core.polygons import PolygonSet, rasterize_polygons

        if self.project is None or self.dock.labels_layer is None:
            return 0
        try:
            tile_labels = rasterize_polygons(PolygonSet(list(geometries), crs, "argument", path),
                                             self.project.grid, all_touched=self.all_touched.isChecked())
        except ErcnnError as exc:
            show_warning(str(exc))
            return 0
        count = burn_into_layer(self.dock.labels_layer, self.project.grid, tile_labels)
        show_info(f"{count} pixel(s) of change added in {len(tile_labels)} tile(s)")
        return count
