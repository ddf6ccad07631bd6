"""A napari progress bar for worker runs, without napari's spinning "in progress" animation.

napari shows every ``napari.utils.progress`` in its Activity panel (good: the analyst sees the run
and napari asks before closing while it runs) and also animates a GIF in the status bar. With
software OpenGL (Xvfb, many Linux desktops) each frame of that GIF re-composites the window with
the GL canvas; measured with benchmarks/viewer_latency.py it pushed the event loop's p99 lateness
from under 10 ms to over 100 ms during a run. Our bars are determinate (steps/windows are known),
so the animation adds nothing: it is stopped, the bar itself stays.
"""

from __future__ import annotations

from typing import Any

from napari.utils import progress
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel


def worker_progress(viewer: Any, total: int | None, desc: str) -> progress:
    """A napari progress bar; the status-bar animation of ``viewer``'s window is stopped."""
    bar = progress(total=total, desc=desc)
    stop_activity_animation(viewer)
    QTimer.singleShot(0, lambda: stop_activity_animation(viewer))  # napari may start it a tick later
    return bar


def stop_activity_animation(viewer: Any) -> None:
    """Stop animated status-bar labels of the viewer's window (napari internals: best effort)."""
    window = getattr(getattr(viewer, "window", None), "_qt_window", None)
    if window is None:
        return
    try:
        for label in window.findChildren(QLabel):
            movie = label.movie()
            if movie is not None:
                movie.stop()
    except RuntimeError:  # the window is being destroyed
        pass
