"""Label dock: open a project, paint change on the 10 m grid over the reference pair, never lose a stroke.

The layers (reference pair, tile grid, ONE labels mosaic) come from :mod:`.project_layers`, the
same code the reader uses; if the project was opened through File > Open, the dock adopts those
layers instead of adding a second copy. Painting uses napari's own brush, fill, polygon and undo;
:class:`Autosaver` writes changed tiles to disk about a second after each stroke. Closing the
window flushes, and asks first when a tile cannot be saved.

Saving and conflicts live in :mod:`.label_saving`, tile actions in :mod:`.label_tile_actions`
(mixins of :class:`LabelDock`, so every public name stays on the dock).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from napari.utils.notifications import show_info, show_warning
from qtpy.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.label_geotiff import UNSURE
from ercnn_napari.core.tiles import TileId, format_tile_id
from ercnn_napari.napari_plugin.autosave import Autosaver
from ercnn_napari.napari_plugin.close_guard import CloseGuard, ask_unsaved_dialog
from ercnn_napari.napari_plugin.context import context_for
from ercnn_napari.napari_plugin.fidelity_note import FidelityNote
from ercnn_napari.napari_plugin.label_saving import LabelSaving
from ercnn_napari.napari_plugin.label_session import LabelSession
from ercnn_napari.napari_plugin.label_tile_actions import LabelTileActions
from ercnn_napari.napari_plugin.polygon_tools import PolygonTools
from ercnn_napari.napari_plugin.project_layers import (
    PROJECT_KEY,
    ROLE_KEY,
    grid_layer_data,
    labels_layer_data,
)
from ercnn_napari.napari_plugin.reference_controls import ReferenceControls
from ercnn_napari.napari_plugin.reference_loader import ReferenceLoader
from ercnn_napari.napari_plugin.reference_panel import ReferencePanel
from ercnn_napari.napari_plugin.split_editor import SplitEditor
from ercnn_napari.napari_plugin.suggest_panel import SuggestPanel
from ercnn_napari.napari_plugin.swipe import SwipeControls


class LabelDock(LabelSaving, LabelTileActions, QWidget):
    """The analyst's labelling workspace for one project."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.context = context_for(napari_viewer)
        self.project: Any = None
        self.session: LabelSession | None = None
        self.autosaver: Autosaver | None = None
        self.labels_layer: Any = None
        self.tiles_layer: Any = None
        self.reference_layers: dict[str, Any] = {}
        self._references = ReferenceLoader(napari_viewer, self)   # off the GUI thread (reference_loader.py)
        self._references.loaded.connect(self._set_reference_layers)
        self._build_ui()
        # napari's Window.close() removes the layers before it closes the Qt window: by then the
        # close can no longer be called off, so the question has no Cancel
        self._close_guard = CloseGuard(self, lambda: len(self.viewer.layers) > 0)
        self.viewer.mouse_double_click_callbacks.append(self._on_double_click)
        self.context.flush_labels = self.flush
        # the context finds a project opened through File > Open (before or after this dock)
        self.context.project_changed.connect(self._on_project_published)
        if self.context.project is not None:
            self.open_project(self.context.project.root)

    # -- UI ----------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.open_button = QPushButton("Open project…")
        self.open_button.clicked.connect(self._choose_project)
        self.project_label = QLabel("no project open")
        self.project_label.setWordWrap(True)
        self.status = QLabel("")
        self.status.setObjectName("ercnn_label_status")
        self.fidelity = FidelityNote(self)
        self.conflict_label = QLabel("")
        self.conflict_label.setWordWrap(True)
        self.theirs_button = QPushButton("Reload from disk")
        self.theirs_button.clicked.connect(lambda: self.resolve_conflicts(keep_mine=False))
        self.mine_button = QPushButton("Keep viewer's")
        self.mine_button.clicked.connect(lambda: self.resolve_conflicts(keep_mine=True))
        self.reference = ReferenceControls(self)
        self.swipe = SwipeControls(self.viewer, self)  # swipe + side by side (swipe.py)
        self.fetch_reference = ReferencePanel(self.viewer, self._set_reference_layers, self)  # reference_panel.py
        self.suggest = SuggestPanel(self.viewer, lambda t: (self.context.jump_to(t), self.select_tile(t)), self)
        self.tile_edit = QLineEdit()
        self.tile_edit.setPlaceholderText("y:x")
        self.tile_edit.returnPressed.connect(self._jump_typed)
        self.go_button = QPushButton("Go")
        self.go_button.clicked.connect(self._jump_typed)
        self.tile_label = QLabel("double-click a tile on the map, or type its id")
        self.mark_button = QPushButton("Mark labelled")
        self.mark_button.setToolTip("save the current tile as painted, even if it shows no change: 'looked, nothing "
                                    "changed'")
        self.mark_button.clicked.connect(self.mark_current_labelled)
        self.unlabel_button = QPushButton("Unlabel")
        self.unlabel_button.clicked.connect(self.unlabel_current)
        self.paint_button = QPushButton("Paint change")
        self.paint_button.clicked.connect(lambda: self.start_painting(1))
        self.unsure_button = QPushButton("Paint unsure")
        self.unsure_button.setToolTip("cyan: the imagery does not tell; left out of training and of every score "
                                      "(the trainer's .npy reads 0 there)")
        self.unsure_button.clicked.connect(lambda: self.start_painting(UNSURE))
        self._shown_errors: dict[TileId, str] = {}
        self.polygons = PolygonTools(self)
        self.splits = SplitEditor(self.selected_tiles, show_warning, self)
        self.splits.changed.connect(self._split_changed)

        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.project_label, 1)
        layout.addLayout(row)
        layout.addWidget(self.fidelity)
        layout.addWidget(self.status)
        conflicts = QHBoxLayout()
        conflicts.addWidget(self.conflict_label, 1)
        conflicts.addWidget(self.theirs_button)
        conflicts.addWidget(self.mine_button)
        layout.addLayout(conflicts)
        layout.addWidget(self.reference)
        layout.addWidget(self.swipe)
        layout.addWidget(self.fetch_reference)
        tile_box = QGroupBox("Tile")
        tile_layout = QVBoxLayout(tile_box)
        jump = QHBoxLayout()
        jump.addWidget(self.tile_edit, 1)
        jump.addWidget(self.go_button)
        tile_layout.addLayout(jump)
        tile_layout.addWidget(self.tile_label)
        actions = QHBoxLayout()
        actions.addWidget(self.paint_button)
        actions.addWidget(self.unsure_button)
        actions.addWidget(self.mark_button)
        actions.addWidget(self.unlabel_button)
        tile_layout.addLayout(actions)
        layout.addWidget(tile_box)
        layout.addWidget(self.polygons)
        split_box = QGroupBox("Train / validation / test split")
        QVBoxLayout(split_box).addWidget(self.splits)
        layout.addWidget(split_box)
        layout.addWidget(self.suggest)
        layout.addStretch(1)
        self.viewer.bind_key("t", lambda _viewer: self.reference.toggle(), overwrite=True)
        self._update_status()

    # -- project -----------------------------------------------------------------------------------
    def _choose_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open an ERCNN project folder")
        if folder:
            self.open_project(folder)

    def _on_project_published(self, project: Any) -> None:
        """Attach to a project another part of the viewer opened (File > Open, the sample, a script)."""
        if project is None or (self.project is not None and Path(self.project.root) == Path(project.root)):
            return
        self.open_project(project.root)

    def open_project(self, path: str | Path, shown_later: bool = False) -> None:
        """Open (or re-attach to) a project: layers, autosave, splits; flushes a previous project first.

        ``shown_later``: the window is hidden now and shown next (``demo``): the reference pair still
        waits for its first painted frame rather than competing with it.
        """
        from ercnn_napari.core.project import Project

        if self.session is not None:
            self.flush()
        try:
            project = Project.open(path)
        except ErcnnError as exc:
            show_warning(str(exc))
            return
        self._detach()
        self.project = project
        self.session = LabelSession(project)
        for tile, problem in self.session.load_errors.items():
            show_warning(f"label of tile {format_tile_id(tile)} not loaded: {problem}")
        self._add_layers(shown_later)
        self.autosaver = Autosaver(self.session, self.labels_layer, self)
        self.autosaver.state_changed.connect(self._update_status)
        self.autosaver.saved.connect(self._on_saved)
        self.autosaver.conflict.connect(self._on_conflict)
        self.autosaver.reloaded.connect(self._on_reloaded)
        self.project_label.setText(f"{project.site}: {project.root}")
        self.splits.set_project(project)
        self.polygons.set_project(project)
        for warning in getattr(project, "warnings", []):
            show_info(warning)
        self.fidelity.set_project(project)
        self.context.set_split(self.splits.current_name)
        self.context.set_project(project)
        self.suggest.set_project(project)
        self._restyle_tiles()
        self._update_status()

    def _existing(self, role: str) -> Any:
        for layer in self.viewer.layers:
            meta = layer.metadata
            if meta.get(ROLE_KEY) == role and Path(meta.get(PROJECT_KEY, "")) == Path(self.project.root):
                return layer
        return None

    def _add_layers(self, shown_later: bool = False) -> None:
        project = self.project
        self._references.cancel()
        if self._existing("before") is None:   # not adopted from File > Open: built after the first frame
            self._set_reference_layers({})
            self.reference.setTitle("Reference pair (loading…)")
            self._references.start(project, self.window(), shown_later)
        else:
            self._set_reference_layers({r: self._existing(r) for r in ("before", "after") if self._existing(r)})
        self.tiles_layer = self._existing("tiles")
        if self.tiles_layer is None:
            data, kwargs, _ = grid_layer_data(project, self.session.labelled, {})
            self.tiles_layer = self.viewer.add_shapes(data, **kwargs)
        self.labels_layer = self._existing("labels")
        if self.labels_layer is None:
            data, kwargs, _ = labels_layer_data(project, self.session.mosaic)
            self.labels_layer = self.viewer.add_labels(data, **kwargs)
        elif self.labels_layer.data.shape == self.session.mosaic.shape:
            # adopt the reader's layer: what it shows is what was on disk when it was read
            self.session.mosaic = self.labels_layer.data
            self.session.mosaic[:] = self.session.saved
            self.labels_layer.refresh()
        self.session.mosaic = self.labels_layer.data
        self.viewer.layers.selection.active = self.labels_layer
        self.viewer.reset_view()

    def _set_reference_layers(self, layers: dict[str, Any]) -> None:
        self.reference_layers = layers
        self.reference.setTitle("Reference pair")
        self.reference.set_layers(layers)
        self.swipe.set_layers(layers)

    def wait_for_references(self, timeout_s: float = 120.0) -> bool:
        """Block (processing events) until the reference pair is on the map: screenshots and tests."""
        return self._references.wait(timeout_s)

    def shutdown(self) -> None:
        """Flush and stop autosaving (the window is closing)."""
        if self.session is not None and self.session.dirty:
            self.flush()
        self._detach()
        self._references.cancel()
        try:
            self.context.project_changed.disconnect(self._on_project_published)
        except (TypeError, RuntimeError):
            pass
        self.context.release()
        if self._on_double_click in self.viewer.mouse_double_click_callbacks:
            self.viewer.mouse_double_click_callbacks.remove(self._on_double_click)

    def _detach(self) -> None:
        if self.autosaver is not None:
            self.autosaver.stop()
            self.autosaver.setParent(None)
        self.autosaver = None

    # -- closing -------------------------------------------------------------------------------------
    def ask_unsaved(self, tiles: list[TileId], can_cancel: bool) -> str:
        """Ask what to do with tiles that could not be saved: "save", "discard" or "cancel".

        Tests replace this method; the real one is a modal dialog.
        """
        return ask_unsaved_dialog(self, ", ".join(format_tile_id(t) for t in tiles), can_cancel)

    def handle_close(self, can_cancel: bool = True) -> bool:
        """Decide whether the window may close: flush first, ask only when a tile still is unsaved.

        Called for every way of closing (see :mod:`.close_guard`). A tile that saves normally never
        needs a question; one in conflict with an outside edit, or whose write failed, does.
        """
        if self.session is None or not self.session.dirty:
            return True
        self.flush()
        if not self.session.dirty:
            return True
        choice = self.ask_unsaved(self.session.changed_tiles(), can_cancel)
        if choice == "cancel" and can_cancel:
            return False
        if choice == "save":
            self.resolve_conflicts(keep_mine=True)
            self.flush()
            if self.session.dirty and can_cancel:
                show_warning("some tiles could not be saved (see the label dock); the window stays open")
                return False
        return True
