"""Progress of a worker run: a bar inside the dock (stage, done/total, ETA) and napari's Activity bar.

The dock's own bar is what the analyst looks at: napari's Activity panel is collapsed by default.
A run goes through stages (TensorFlow start-up, building the model, feature caching, training,
evaluation); start-up and caching take minutes on a CPU and report no steps, so a stage without a
count shows a busy bar with the seconds spent in it, and a counted stage shows done/total and an
ETA estimated from the pace of that stage alone (caching and training run at different speeds).

napari's own ``progress`` bar is kept as well (napari then asks before closing during a run), but
its status-bar GIF animation is stopped: with software OpenGL (Xvfb, many Linux desktops) each
frame re-composites the window with the GL canvas; measured with benchmarks/viewer_latency.py it
pushed the event loop's p99 lateness from under 10 ms to over 100 ms during a run. Our bars are
determinate, so the animation adds nothing.
"""

from __future__ import annotations

import time

from napari.utils import progress
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget


def stop_activity_animation(widget: QWidget) -> None:
    """Stop animated status-bar labels of the window ``widget`` lives in (Qt's public API only)."""
    try:
        window = widget.window()
        if window is widget:  # not docked yet: nothing of napari's to stop
            return
        for label in window.findChildren(QLabel):
            movie = label.movie()
            if movie is not None:
                movie.stop()
    except RuntimeError:  # the window is being destroyed
        pass


def format_seconds(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"1 h 02 min"``: short enough for one dock line."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class RunProgress(QWidget):
    """A stage line and a bar for one worker run, shown inside a dock while the run lasts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stage_label = QLabel("")
        self.stage_label.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stage_label)
        layout.addWidget(self.bar)
        self.stage = ""
        self.unit = ""
        self.total = 0
        self.done = 0
        self._stage_started = time.monotonic()
        self._count_started: tuple[float, int] | None = None  # (time, done) of the stage's first count
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._refresh)
        self.setVisible(False)

    def begin(self, stage: str) -> None:
        """A run starts (or resumes): show the bar, busy, in its first stage."""
        self.setVisible(True)
        self._ticker.start()
        self.set_stage(stage)

    def set_stage(self, stage: str) -> None:
        """A new stage without a count yet: a busy bar and the seconds spent in it."""
        self.stage = stage
        self.total = self.done = 0
        self._stage_started = time.monotonic()
        self._count_started = None
        self._refresh()

    def set_count(self, done: int, total: int, unit: str = "") -> None:
        """Counted progress within the current stage (steps, windows, tiles)."""
        self.unit = unit
        if total != self.total or self._count_started is None:
            self._count_started = (time.monotonic(), int(done))
        self.total, self.done = int(total), int(done)
        self._refresh()

    def eta_seconds(self) -> float | None:
        """Remaining seconds at this stage's pace so far (None until one unit is done)."""
        if self._count_started is None or self.total <= 0:
            return None
        t0, done0 = self._count_started
        units = self.done - done0
        if units <= 0:
            return None
        return (time.monotonic() - t0) / units * max(self.total - self.done, 0)

    def end(self) -> None:
        self._ticker.stop()
        self.setVisible(False)

    def _refresh(self) -> None:
        elapsed = format_seconds(time.monotonic() - self._stage_started)
        if self.total > 0:
            self.bar.setRange(0, self.total)
            self.bar.setValue(min(self.done, self.total))
            self.bar.setFormat(f"%v/%m {self.unit}".rstrip())
            eta = self.eta_seconds()
            left = f", about {format_seconds(eta)} left" if eta is not None else ""
            self.stage_label.setText(f"{self.stage} ({elapsed}{left})")
        else:
            self.bar.setRange(0, 0)  # busy
            self.stage_label.setText(f"{self.stage} ({elapsed})")

    @property
    def text(self) -> str:
        """The stage line as shown (tests and screenshots read it)."""
        return self.stage_label.text()


class WorkerBar:
    """The napari Activity bar of a dock's worker run: opened on ``started``, closed when the run ends.

    Both docks drive a worker the same way; keeping the bar's life cycle here means a run never
    leaves a stale bar in the Activity panel (which would also make napari ask before closing).
    """

    def __init__(self, widget: QWidget, desc: str) -> None:
        self.widget = widget
        self.desc = desc
        self.bar: progress | None = None

    def open(self, total: int | None) -> None:
        self.close()
        self.bar = progress(total=total, desc=self.desc)
        stop_activity_animation(self.widget)
        QTimer.singleShot(0, lambda: stop_activity_animation(self.widget))  # napari may start it a tick later

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

