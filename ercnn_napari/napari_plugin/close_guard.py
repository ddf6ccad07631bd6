"""The close guard: labels are flushed when napari closes, and the analyst is asked first if needed.

An event filter on napari's main window sees the close before napari handles it, so it can flush
the labels and, for a close the analyst started (spontaneous), ask before work would be lost. A
programmatic close (scripts, tests) never blocks: it flushes and lets the window go.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QMessageBox, QWidget


def ask_unsaved_dialog(parent: QWidget, count: int) -> str:
    """Save / discard / cancel dialog for ``count`` unsaved tiles; returns the choice as a word."""
    box = QMessageBox(parent)
    box.setWindowTitle("Unsaved labels")
    box.setText(f"{count} tile(s) have label changes that are not on disk yet.")
    save = box.addButton("Save and close", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Close without saving", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(save)
    box.exec()
    clicked = box.clickedButton()
    return "save" if clicked is save else "discard" if clicked is discard else "cancel"


class CloseGuard(QObject):
    """Event filter on the main window: runs the dock's close check before napari closes."""

    def __init__(self, dock: Any) -> None:
        super().__init__(dock)
        self.dock = dock

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Close:
            try:
                allowed = self.dock.handle_close(event.spontaneous())
            except RuntimeError:  # the dock's C++ side is already gone
                return False
            if not allowed:
                event.ignore()
                return True
            # the window goes away: stop timers now so none fires into destroyed layers
            obj.removeEventFilter(self)
            self.dock.shutdown()
        return False
