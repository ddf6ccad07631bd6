"""Label dock, tile side: pick a tile (double-click, typed id, selection) and act on it.

A mixin of :class:`~.label_dock.LabelDock`: mark labelled, unlabel, start painting, and restyle the
tile grid by labelled state and split role. It reads the widgets and layers the dock creates.
"""

from __future__ import annotations

from typing import Any

from napari.utils.notifications import show_warning

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.tiles import TileId, format_tile_id, parse_tile_id
from ercnn_napari.napari_plugin.layers import tile_at_display
from ercnn_napari.napari_plugin.project_layers import split_roles, tile_styles


class LabelTileActions:
    """What the analyst does to one tile (or the selected tiles) of the grid."""

    viewer: Any
    project: Any
    session: Any
    context: Any
    labels_layer: Any
    tiles_layer: Any
    splits: Any
    tile_edit: Any
    tile_label: Any

    def _on_double_click(self, viewer: Any, event: Any) -> None:
        if self.project is None:
            return
        row, col = event.position[-2:]
        tile = tile_at_display(self.project.grid, row, col)
        if tile is not None:
            self.select_tile(tile)

    def _jump_typed(self) -> None:
        if self.project is None:
            return
        try:
            tile = self.project.grid.check_tile(parse_tile_id(self.tile_edit.text()))
        except ErcnnError as exc:
            show_warning(str(exc))
            return
        self.context.jump_to(tile)
        self.select_tile(tile)

    def select_tile(self, tile: TileId) -> None:
        self.context.set_tile(tile)
        state = "labelled" if tile in self.session.labelled else "not labelled"
        role = split_roles(self.splits.current_split()).get(tile, "no split role")
        self.tile_label.setText(f"tile {format_tile_id(tile)}: {state}, {role}")

    def selected_tiles(self) -> list[TileId]:
        """Rectangles selected in the tiles layer, else the current tile."""
        chosen: list[TileId] = []
        if self.tiles_layer is not None and self.tiles_layer.selected_data:
            names = self.tiles_layer.features["tile"]
            chosen = [parse_tile_id(names[i]) for i in sorted(self.tiles_layer.selected_data)]
        if not chosen and self.context.current_tile is not None:
            chosen = [self.context.current_tile]
        return chosen

    def mark_current_labelled(self) -> None:
        for tile in self.selected_tiles():
            try:
                self.session.mark_labelled(tile)
            except ErcnnError as exc:
                show_warning(str(exc))
        self._restyle_tiles()
        self._update_status()

    def unlabel_current(self) -> None:
        for tile in self.selected_tiles():
            try:
                self.session.unlabel(tile)
            except ErcnnError as exc:
                show_warning(str(exc))
        self.labels_layer.refresh()
        self._restyle_tiles()
        self._update_status()

    def start_painting(self, value: int = 1) -> None:
        """Brush mode on the labels layer: 1 paints change, :data:`UNSURE` paints "cannot tell"."""
        if self.labels_layer is None:
            return
        self.viewer.layers.selection.active = self.labels_layer
        self.labels_layer.selected_label = int(value)
        self.labels_layer.mode = "paint"

    def _split_changed(self, name: str) -> None:
        self.context.set_split(name)
        self._restyle_tiles()

    def _restyle_tiles(self) -> None:
        if self.tiles_layer is None or self.session is None:
            return
        tiles = [parse_tile_id(n) for n in self.tiles_layer.features["tile"]]
        style = tile_styles(tiles, self.session.labelled, split_roles(self.splits.current_split()))
        self.tiles_layer.edge_color = style["edge_color"]
        self.tiles_layer.face_color = style["face_color"]
        for key in ("labelled", "role"):
            self.tiles_layer.features[key] = style["features"][key]
        self.context.labels_saved.emit()  # "no labels in split" reasons of the other docks may change
