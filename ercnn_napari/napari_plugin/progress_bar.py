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


class WorkerBar:
    """The one progress bar of a dock's worker run: opened on ``started``, closed when the run ends.

    Both docks drive a worker the same way; keeping the bar's life cycle here means a run never
    leaves a stale bar in the Activity panel (which would also make napari ask before closing).
    """

    def __init__(self, viewer: Any, desc: str) -> None:
        self.viewer = viewer
        self.desc = desc
        self.bar: progress | None = None

    def open(self, total: int | None) -> None:
        self.close()
        self.bar = worker_progress(self.viewer, total, self.desc)

    def advance(self, description: str | None = None) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if description:
                self.bar.set_description(description)

    def set_done(self, done: int) -> None:
        if self.bar is not None:
            self.bar.n = done
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
