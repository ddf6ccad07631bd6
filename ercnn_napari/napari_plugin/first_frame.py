"""Tell when napari's canvas first paints a frame: what "demo starts in N seconds" measures.

The canvas is vispy's ``QOpenGLWidget`` inside napari's window, found with Qt's public API
(``findChildren``), not through napari's private attributes. An event filter notes the first
paint event delivered after :func:`watch_first_frame` is called (call it once the project's
layers are on the viewer, so the frame counted is one that shows them).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable

from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QWidget

_IMPORTED = time.perf_counter()


def process_age() -> float:
    """Seconds since this process started (Linux ``/proc``), else since this module was imported."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as uptime:
            now = float(uptime.read().split()[0])
        return max(0.0, now - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.perf_counter() - _IMPORTED


class _FirstPaint(QObject):
    def __init__(self, canvas: QWidget, on_paint: Callable[[], None]) -> None:
        super().__init__(canvas)
        self.on_paint = on_paint
        canvas.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if event.type() == QEvent.Type.Paint:
            obj.removeEventFilter(self)
            self.on_paint()
        return False


def canvas_of(window: QWidget) -> QWidget | None:
    """napari's OpenGL canvas inside ``window`` (Qt's ``findChildren``), or None."""
    try:
        from qtpy.QtOpenGLWidgets import QOpenGLWidget
    except ImportError:  # Qt5 bindings keep it in QtWidgets
        from qtpy.QtWidgets import QOpenGLWidget
    canvases = window.findChildren(QOpenGLWidget)
    return canvases[0] if canvases else None


def on_first_paint(window: QWidget, callback: Callable[[], None]) -> bool:
    """Call ``callback`` at the canvas's next paint event; False (and no call) if there is no canvas."""
    canvas = canvas_of(window)
    if canvas is None:
        return False
    _FirstPaint(canvas, callback)
    return True


def watch_first_frame(window: QWidget, label: str = "ercnn-napari demo") -> bool:
    """Print ``<label>: first frame painted after S s (CPU C s)``: wall since the process started, CPU so far.

    CPU seconds say more than wall seconds on a busy machine (other jobs stretch the wall time).

    Returns False when the window has no OpenGL canvas (nothing is printed then).
    """
    def report() -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)   # all threads of this process
        print(f"{label}: first frame painted after {process_age():.2f} s "
              f"(CPU {usage.ru_utime + usage.ru_stime:.2f} s)", file=sys.stderr, flush=True)

    return on_first_paint(window, report)
