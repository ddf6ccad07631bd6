"""The close guard: labels are flushed when napari closes, and the analyst is asked if any would be lost.

Every way of closing ends in a Qt close event on napari's main window: the title-bar button
(spontaneous), File › Close Window / Ctrl+W and File › Exit (napari calls ``close()`` on the
window), ``viewer.close()`` from a script. An event filter on that window sees the event before
napari handles it, so the dock can flush the labels and, when a tile still cannot be saved (a
conflict with an outside edit, a disk error), ask before the window goes; a close that cannot be
taken back any more (``viewer.close()`` has already removed the layers) asks without a Cancel.

The window is found with Qt's public API only (the dock's ancestors), not napari's private
``Window._qt_window``: npe2 creates the dock before napari puts it into the window, so the guard
follows the dock's parents and attaches as soon as a main window is among them.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QMainWindow, QMessageBox, QWidget


def ask_unsaved_dialog(parent: QWidget, tiles_text: str, can_cancel: bool) -> str:
    """Overwrite / discard / cancel dialog for unsaved tiles; returns "save", "discard" or "cancel"."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Unsaved labels")
    box.setText(f"These label changes could not be saved: {tiles_text}.")
    box.setInformativeText("Save writes the viewer's labels over what is on disk now; "
                           "closing without saving loses those strokes.")
    save = box.addButton("Save (overwrite) and close", QMessageBox.ButtonRole.AcceptRole)
    discard = box.addButton("Close without saving", QMessageBox.ButtonRole.DestructiveRole)
    if can_cancel:
        box.setDefaultButton(box.addButton(QMessageBox.StandardButton.Cancel))
    box.exec()
    clicked = box.clickedButton()
    return "save" if clicked is save else "discard" if clicked is discard else "cancel"


def main_window_of(widget: QWidget) -> QMainWindow | None:
    """The nearest QMainWindow among the widget's ancestors (napari's window once docked)."""
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QMainWindow):
            return parent
        parent = parent.parentWidget()
    return None


class CloseGuard(QObject):
    """Follows the dock into napari's main window and runs the dock's close check there.

    ``dock`` provides ``handle_close(can_cancel: bool) -> bool`` and ``shutdown()``; ``can_cancel``
    tells whether the close can still be called off (see the module docstring).
    """

    def __init__(self, dock: Any, can_cancel: Any) -> None:
        super().__init__(dock)
        self.dock = dock
        self.can_cancel = can_cancel
        self.window: QMainWindow | None = None
        self._watched: list[QWidget] = []
        dock.installEventFilter(self)
        self._follow()

    def _follow(self) -> None:
        """Watch every ancestor for re-parenting, and attach to the main window once it is one."""
        parent = self.dock.parentWidget()
        while parent is not None:
            if parent not in self._watched and not isinstance(parent, QMainWindow):
                parent.installEventFilter(self)
                self._watched.append(parent)
            parent = parent.parentWidget()
        window = main_window_of(self.dock)
        if window is not None and window is not self.window:
            if self.window is not None:
                self.window.removeEventFilter(self)
            window.installEventFilter(self)
            self.window = window

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        kind = event.type()
        if kind == QEvent.Type.ParentChange and obj is not self.window:
            self._follow()
        elif kind == QEvent.Type.Close and obj is self.window:
            try:
                allowed = self.dock.handle_close(bool(self.can_cancel()))
            except RuntimeError:  # the dock's C++ side is already gone
                return False
            if not allowed:
                event.ignore()
                return True
            # the window goes away: stop timers now so none fires into destroyed layers
            obj.removeEventFilter(self)
            self.window = None
            self.dock.shutdown()
        return False
