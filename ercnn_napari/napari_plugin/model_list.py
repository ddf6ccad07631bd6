"""The review dock's list of models: tick one, or several for an ensemble; ticks survive refreshes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QListWidget, QListWidgetItem, QWidget


def model_entries(project: Any, baseline: Path | None) -> list[tuple[str, str]]:
    """(text, path) of the baseline, then the project's finished runs, newest first."""
    entries: list[tuple[str, str]] = []
    if baseline is not None:
        entries.append((f"baseline ({baseline.name})", str(baseline)))
    if project is not None:
        for model in sorted((Path(project.root) / "runs").glob("*/model.ercnn.h5"), reverse=True):
            entries.append((f"run {model.parent.name}", str(model.parent)))
    return entries


class ModelList(QListWidget):
    """Checkable model entries; each item's data is the model path (file or run folder)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMaximumHeight(110)
        self.setToolTip("tick one model, or several for an ensemble")

    def set_entries(self, entries: list[tuple[str, str]]) -> None:
        """Replace the listed baseline/runs by ``entries`` (text, path), keeping added files and ticks."""
        ticked = set(self.selected_models())
        extra = [self.item(i) for i in range(self.count())]
        extra = [(i.text(), i.data(Qt.ItemDataRole.UserRole)) for i in extra if i.text().startswith("file ")]
        self.clear()
        for text, path in entries + extra:
            self.add_model(path, text, checked=path in ticked)
        if not ticked and self.count():
            self.item(0).setCheckState(Qt.CheckState.Checked)

    def add_model(self, path: str, text: str | None = None, checked: bool = True) -> None:
        item = QListWidgetItem(text or f"file {Path(path).name}")
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        item.setToolTip(str(path))
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.addItem(item)

    def selected_models(self) -> list[str]:
        items = [self.item(i) for i in range(self.count())]
        return [i.data(Qt.ItemDataRole.UserRole) for i in items if i.checkState() == Qt.CheckState.Checked]

    def select_only(self, paths: list[str]) -> None:
        known = {self.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.count())}
        for path in paths:
            if path not in known:
                self.add_model(path, f"run {Path(path).name}")
        for i in range(self.count()):
            item = self.item(i)
            state = Qt.CheckState.Checked if item.data(Qt.ItemDataRole.UserRole) in paths else Qt.CheckState.Unchecked
            item.setCheckState(state)
