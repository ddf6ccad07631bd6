""""What to label next" in the Label dock: the saved suggestions as a list and an uncertainty layer.

``ercnn-napari suggest`` (a worker: it needs TensorFlow) ranks unlabelled tiles and saves the
ranking and the per-pixel uncertainty in the project; the panel's "Suggest tiles" runs it in a
worker (:mod:`.suggest_action`) and this panel only reads the result (core), so the viewer stays
TensorFlow-free. One click on a suggestion jumps to its tile; tiles labelled since
are shown struck out rather than dropped, so the list keeps its order while the analyst works.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from napari.utils.notifications import show_warning
from qtpy.QtGui import QFont
from qtpy.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
)

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.suggestions import read_suggestions
from ercnn_napari.core.tiles import TileId, format_tile_id
from ercnn_napari.napari_plugin.layers import mosaic_placement
from ercnn_napari.napari_plugin.suggest_action import SuggestRunPanel

ROLE_KEY = "ercnn_role"
UNCERTAINTY_ROLE = "uncertainty"


class SuggestPanel(QGroupBox):
    """The ranked suggestions of ``PROJECT/suggestions/`` and their uncertainty layer."""

    def __init__(self, viewer: Any, jump: Callable[[TileId], None], parent: Any = None) -> None:
        super().__init__("What to label next", parent)
        self.viewer = viewer
        self.jump = jump
        self.project: Any = None
        self.tiles: list[TileId] = []
        self.layer: Any = None
        self.list = QListWidget()
        self.list.setMaximumHeight(130)
        self.list.itemClicked.connect(self._clicked)
        self.hint = QLabel("Suggest tiles below (or run `ercnn-napari suggest PROJECT --model …`, then Reload)")
        self.hint.setWordWrap(True)
        self.reload_button = QPushButton("Reload")
        self.reload_button.clicked.connect(self.reload)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(self.hint, 1)
        row.addWidget(self.reload_button)
        layout.addLayout(row)
        layout.addWidget(self.list)
        self.run = SuggestRunPanel(viewer, lambda: self.reload(), self)
        layout.addWidget(self.run)

    def set_project(self, project: Any) -> None:
        self.project = project
        self.run.refresh_models()
        self.reload()

    def reload(self, labelled: set[TileId] | None = None) -> None:
        """Read the saved suggestions; (re)place the uncertainty layer."""
        self.list.clear()
        self.tiles = []
        if self.project is None:
            return
        try:
            ranked, mosaic, document = read_suggestions(self.project.root)
        except ErcnnError as exc:
            show_warning(str(exc))
            return
        if not ranked:
            return
        done = set(self.project.tiles_with_labels()) if labelled is None else labelled
        method = document.get("method", "")
        self.hint.setText(f"{len(ranked)} suggestion(s) by {method.replace('_', ' ')}; click to go there")
        for rank, (tile, score) in enumerate(ranked, start=1):
            item = QListWidgetItem(f"{rank}. tile {format_tile_id(tile)}   uncertainty {score:.3f}")
            if tile in done:
                font = QFont()
                font.setStrikeOut(True)
                item.setFont(font)
            self.list.addItem(item)
            self.tiles.append(tile)
        if mosaic is not None:
            self._show_layer(mosaic)

    def _show_layer(self, mosaic: np.ndarray) -> None:
        top = float(np.nanmax(mosaic)) if np.isfinite(mosaic).any() else 1.0
        if self.layer is not None and self.layer in self.viewer.layers:
            self.layer.data = mosaic
            self.layer.contrast_limits = (0.0, max(top, 1e-6))
            return
        meta = {ROLE_KEY: UNCERTAINTY_ROLE, "ercnn_project": str(self.project.root)}
        self.layer = self.viewer.add_image(mosaic, name="uncertainty", colormap="magma", opacity=0.55,
                                           contrast_limits=(0.0, max(top, 1e-6)), blending="translucent",
                                           metadata=meta, **mosaic_placement(self.project.grid, (0, 0)))

    def _clicked(self, item: QListWidgetItem) -> None:
        row = self.list.row(item)
        if 0 <= row < len(self.tiles):
            self.jump(self.tiles[row])
