"""Split editor: which tiles train, validate and test each version (V1-V3), saved as the authors' lists.

Assigning a role writes the version's list files at once (atomically, through the project), so the
trainer started a second later reads exactly what the map shows. "Generate" draws the authors'
design from the labelled tiles: one common test set and pairwise disjoint validation sets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.splits import Split, generate_splits
from ercnn_napari.core.tiles import TileId

VERSIONS = ("V1", "V2", "V3")
ROLES = ("train", "val", "test")


def assign_role(split: Split, tiles: list[TileId], role: str | None) -> Split:
    """A copy of ``split`` with ``tiles`` moved to ``role`` (None removes them from every list)."""
    moving = set(tiles)
    lists = {r: [t for t in getattr(split, r) if t not in moving] for r in ROLES}
    not_used = [t for t in split.not_used if t not in moving]
    if role is not None:
        lists[role] = sorted(lists[role] + sorted(moving))
    return Split(split.name, lists["train"], lists["val"], lists["test"], not_used)


class SplitEditor(QWidget):
    """Version picker, role buttons for the selected tiles, generator; emits ``changed`` after each write."""

    changed = Signal(str)  # version name

    def __init__(self, selected_tiles: Callable[[], list[TileId]], notify: Callable[[str], None],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.project: Any = None
        self.splits: dict[str, Split] = {}
        self._selected_tiles = selected_tiles
        self._notify = notify
        self.version = QComboBox()
        self.version.addItems(VERSIONS)
        self.version.currentTextChanged.connect(self._version_changed)
        self.counts = QLabel("")
        buttons = QGridLayout()
        self.role_buttons: dict[str, QPushButton] = {}
        for column, role in enumerate((*ROLES, "none")):
            button = QPushButton(role)
            button.setToolTip(f"put the current/selected tiles into the {role} list of this version")
            button.clicked.connect(lambda _=False, r=role: self.assign(None if r == "none" else r))
            buttons.addWidget(button, 0, column)
            self.role_buttons[role] = button
        self.seed = QSpinBox()
        self.seed.setRange(0, 10_000)
        self.generate_button = QPushButton("Generate V1-V3 from labelled tiles")
        self.generate_button.clicked.connect(self.generate)
        top = QHBoxLayout()
        top.addWidget(QLabel("version"))
        top.addWidget(self.version)
        top.addWidget(self.counts, 1)
        gen = QHBoxLayout()
        gen.addWidget(self.generate_button, 1)
        gen.addWidget(QLabel("seed"))
        gen.addWidget(self.seed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addLayout(gen)

    # -- state -----------------------------------------------------------------------------------
    def set_project(self, project: Any) -> None:
        self.project = project
        self.splits = dict(project.splits()) if project is not None else {}
        names = sorted(set(VERSIONS) | set(self.splits))
        current = self.version.currentText()
        self.version.blockSignals(True)
        self.version.clear()
        self.version.addItems(names)
        self.version.setCurrentText(current if current in names else names[0])
        self.version.blockSignals(False)
        self._update_counts()

    @property
    def current_name(self) -> str:
        return self.version.currentText()

    def current_split(self) -> Split | None:
        return self.splits.get(self.current_name)

    def _version_changed(self, name: str) -> None:
        self._update_counts()
        self.changed.emit(name)

    def _update_counts(self) -> None:
        split = self.current_split()
        if split is None:
            self.counts.setText("(no lists yet)")
        else:
            self.counts.setText(f"train {len(split.train)} / val {len(split.val)} / test {len(split.test)}")

    # -- edits -----------------------------------------------------------------------------------
    def assign(self, role: str | None) -> None:
        """Move the selected tiles into ``role`` of the current version and write its lists."""
        if self.project is None:
            return
        tiles = self._selected_tiles()
        if not tiles:
            self._notify("select a tile first (double-click it on the map, type its id, or select rectangles)")
            return
        name = self.current_name
        split = self.splits.get(name) or Split(name, [], [], self._common_test(), [])
        updated = assign_role(split, tiles, role)
        if role == "test":
            # the test set is common to all versions (the authors' design): keep them consistent
            for other in list(self.splits):
                if other != name:
                    self.splits[other] = assign_role(self.splits[other], tiles, "test")
        self._write({**self.splits, name: updated})

    def _common_test(self) -> list[TileId]:
        for split in self.splits.values():
            if split.test:
                return list(split.test)
        return []

    def generate(self) -> None:
        """Generate disjoint V1-V3 from the labelled tiles (overwrites the versions' lists)."""
        if self.project is None:
            return
        try:
            generated = generate_splits(self.project.tiles_with_labels(), n_versions=3, seed=self.seed.value())
        except ErcnnError as exc:
            self._notify(str(exc))
            return
        self._write(generated)

    def _write(self, splits: dict[str, Split]) -> None:
        try:
            self.project.write_splits(splits)
        except ErcnnError as exc:
            self._notify(str(exc))
            return
        self.splits = dict(self.project.splits())
        self._update_counts()
        self.changed.emit(self.current_name)
