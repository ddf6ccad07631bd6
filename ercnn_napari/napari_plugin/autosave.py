"""Every stroke reaches disk: debounced autosave of the labels layer, with outside-edit checks.

A paint event (one per stroke) restarts a one-second single-shot timer; when the analyst pauses,
the changed tiles are saved through :class:`LabelSession` (atomic, only the changed tiles). A slower
poll catches edits that emit no paint event (undo/redo) and label files changed by someone else
(reloaded when the viewer has not touched the tile, reported as a conflict when it has).
Everything runs on the Qt main thread: saving a few 32x32 tiles takes milliseconds.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QObject, QTimer, Signal

from ercnn_napari.napari_plugin.label_session import LabelSession, SaveReport

DEBOUNCE_MS = 1000
POLL_MS = 1500


class Autosaver(QObject):
    """Saves a :class:`LabelSession` shortly after each edit and watches the files for outside edits.

    Signals: ``state_changed()`` whenever dirty/conflict state may have changed, ``saved(SaveReport)``
    after each save, ``conflict(list[TileId])`` for new outside edits on tiles the viewer changed,
    ``reloaded(list[TileId])`` for outside edits taken over silently.
    """

    state_changed = Signal()
    saved = Signal(object)
    conflict = Signal(object)
    reloaded = Signal(object)

    def __init__(self, session: LabelSession, layer: Any, parent: QObject | None = None,
                 debounce_ms: int = DEBOUNCE_MS, poll_ms: int = POLL_MS) -> None:
        super().__init__(parent)
        self.session = session
        self.layer = layer
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(debounce_ms)
        self._debounce.timeout.connect(self.save_now)
        self._poll = QTimer(self)
        self._poll.setInterval(poll_ms)
        self._poll.timeout.connect(self._on_poll)
        self._poll.start()
        self._state_tick = QTimer(self)  # a child timer dies with us; a bare singleShot could outlive us
        self._state_tick.setSingleShot(True)
        self._state_tick.setInterval(0)
        self._state_tick.timeout.connect(self.state_changed.emit)
        self._known_conflicts: set = set()
        self._painted_since_save = False
        layer.events.paint.connect(self._on_paint)

    def stop(self) -> None:
        """Stop the timers and forget the layer (the dock is closing or opens another project)."""
        self._debounce.stop()
        self._poll.stop()
        self._state_tick.stop()
        try:
            self.layer.events.paint.disconnect(self._on_paint)
        except (TypeError, ValueError, RuntimeError):
            pass

    @property
    def pending(self) -> bool:
        """True while an edit waits for its save (or the labels differ from disk)."""
        return self._debounce.isActive() or self.session.dirty

    def _on_paint(self, event: Any = None) -> None:
        # napari emits the paint event before it writes the pixels: report the state a tick later
        self._painted_since_save = True
        self._debounce.start()
        self._state_tick.start()

    def _on_poll(self) -> None:
        reloaded = self.session.refresh_unedited()
        if reloaded:
            self.layer.refresh()
            self.reloaded.emit(reloaded)
            self.state_changed.emit()
        if self.session.dirty and not self._debounce.isActive():
            self._debounce.start()
            self.state_changed.emit()

    def save_now(self) -> SaveReport:
        """Save the changed tiles at once (also used to flush before a run and on close)."""
        self._debounce.stop()
        report = self.session.save()
        self._painted_since_save = False
        new = [t for t in report.conflicts if t not in self._known_conflicts]
        self._known_conflicts = set(self.session.conflicts)
        if new:
            self.conflict.emit(new)
        self.saved.emit(report)
        self.state_changed.emit()
        return report
