"""Label dock, saving side: autosave reports, conflicts with outside edits, the status lines.

A mixin of :class:`~.label_dock.LabelDock` (split out so the dock module keeps one job: building
the workspace and opening projects). It reads the dock's ``session``, ``autosaver``,
``labels_layer`` and status widgets, which :class:`LabelDock` creates.
"""

from __future__ import annotations

from typing import Any

from napari.utils.notifications import show_info, show_warning

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.tiles import TileId, format_tile_id
from ercnn_napari.napari_plugin.label_session import SaveReport, status_html


class LabelSaving:
    """Flush, report and resolve: every label write of the dock goes through here."""

    session: Any
    autosaver: Any
    labels_layer: Any
    context: Any
    status: Any
    conflict_label: Any
    theirs_button: Any
    mine_button: Any
    _shown_errors: dict[TileId, str]

    def flush(self) -> SaveReport | None:
        """Save every changed tile now (before a run starts, on close, on project switch)."""
        if self.autosaver is None:
            return None
        return self.autosaver.save_now()

    @property
    def unsaved_tiles(self) -> list[TileId]:
        return [] if self.session is None else self.session.changed_tiles()

    def _on_saved(self, report: SaveReport) -> None:
        for tile, message in report.errors.items():
            if self._shown_errors.get(tile) != message:  # autosave retries: say it once, keep it in the status
                show_warning(f"tile {format_tile_id(tile)} not saved: {message}")
        for tile in report.saved:
            self._shown_errors.pop(tile, None)
        self._shown_errors.update(report.errors)
        if report.saved:
            self._restyle_tiles()
            if self.context.current_tile in report.saved:
                self.select_tile(self.context.current_tile)  # the tile line says "labelled" at once

    def _on_conflict(self, tiles: list[TileId]) -> None:
        for tile in tiles:
            show_warning(self.session.conflicts.get(tile, f"tile {format_tile_id(tile)} changed outside"))
        self._update_status()

    def _on_reloaded(self, tiles: list[TileId]) -> None:
        show_info("reloaded label(s) changed outside the viewer: " + ", ".join(format_tile_id(t) for t in tiles))
        self._restyle_tiles()

    def resolve_conflicts(self, keep_mine: bool) -> None:
        if self.session is None:
            return
        for tile in list(self.session.conflicts):
            try:
                if keep_mine:
                    self.session.keep_mine(tile)
                else:
                    self.session.take_theirs(tile)
            except ErcnnError as exc:
                show_warning(str(exc))
        self.labels_layer.refresh()
        self._restyle_tiles()
        self._update_status()

    def _update_status(self) -> None:
        if self.session is None:
            self.status.setText("")
            self.conflict_label.setText("")
            for button in (self.theirs_button, self.mine_button):
                button.setVisible(False)
            return
        self.status.setText(status_html(self.session, self._shown_errors))
        conflicts = sorted(self.session.conflicts)
        self.conflict_label.setText(
            "" if not conflicts else "changed outside the viewer: " + ", ".join(format_tile_id(t) for t in conflicts))
        for button in (self.theirs_button, self.mine_button):
            button.setVisible(bool(conflicts))
