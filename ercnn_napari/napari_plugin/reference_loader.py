"""The reference pair of a project, built off the GUI thread and added after the first frame.

Stitching the before/after mosaics reads and resamples one picture per tile and date (about a
hundred PNGs for the sample: seconds on a busy machine). Done on the GUI thread, it held back the
first painted frame of ``ercnn-napari demo`` and froze the window each time a project was opened.
A worker thread now builds the layer data (numpy, PIL, rasterio: no Qt, no napari), started once
the canvas has painted its first frame with the grid and labels; the image layers are inserted
under the tile grid and the labels when it returns, without moving the camera.
A result that arrives for a project that is no longer open (switched, window closed) is dropped.
"""

from __future__ import annotations

import time
from typing import Any

from napari.utils.notifications import show_warning
from qtpy.QtCore import QObject, QTimer, Signal
from qtpy.QtWidgets import QApplication, QWidget

from ercnn_napari.napari_plugin.first_frame import on_first_paint
from ercnn_napari.napari_plugin.project_layers import ROLE_KEY, reference_layer_data

#: Longest wait for the first frame before the reference pair is built anyway (ms).
PAINT_WAIT_MS = 3000
_WAITING = "waiting for the first frame"


def _build(project: Any) -> tuple[list[Any], list[str]]:
    """Runs in the worker thread: the layer tuples and the problems worth telling the analyst."""
    return reference_layer_data(project)


class ReferenceLoader(QObject):
    """Loads one project's reference pair at a time; ``loaded`` carries ``{role: layer}``."""

    loaded = Signal(object)

    def __init__(self, viewer: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self._request = 0
        self._worker: Any = None

    @property
    def busy(self) -> bool:
        """True while a load started by :meth:`start` has not been added (nor dropped)."""
        return self._worker is not None

    def start(self, project: Any, window: QWidget | None = None, shown_later: bool = False) -> None:
        """Build the project's reference layers in a worker thread, once ``window`` has painted a frame.

        Started at once, the thread competed with the first frame for the GIL and the CPU (the
        first frame came later, not sooner); so it waits for the canvas's next paint (at most
        :data:`PAINT_WAIT_MS`; at once when the window is hidden or has no canvas, unless
        ``shown_later`` says the hidden window is about to be shown, as ``demo``'s is).
        """
        self._request += 1
        request = self._request
        self._worker = _WAITING
        launch = lambda: self._launch(request, project)  # noqa: E731 - one callback, two triggers
        visible = window is not None and (window.isVisible() or shown_later)
        if visible and on_first_paint(window, lambda: QTimer.singleShot(0, launch)):
            QTimer.singleShot(PAINT_WAIT_MS, launch)
        else:
            launch()

    def _launch(self, request: int, project: Any) -> None:
        if request != self._request or self._worker is not _WAITING:
            return  # launched already (paint or timeout), or a newer request won
        from napari.qt.threading import create_worker

        worker = create_worker(_build, project, _start_thread=False)
        worker.returned.connect(lambda result: self._add(request, result))
        worker.errored.connect(lambda exc: self._failed(request, exc))
        self._worker = worker
        worker.start()

    def cancel(self) -> None:
        """Forget the load in flight: its result will not be added (project switched, window closing)."""
        self._request += 1
        self._worker = None

    def wait(self, timeout_s: float = 120.0) -> bool:
        """Process events until the load in flight is added (demo's screenshot, tests); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.busy and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.01)
        return not self.busy

    def _add(self, request: int, result: tuple[list[Any], list[str]]) -> None:
        if request != self._request:
            return
        from napari.layers import Image

        layers, problems = result
        for message in problems:
            show_warning(message)
        added: dict[str, Any] = {}
        active = self.viewer.layers.selection.active   # inserting selects: the brush stays on the labels
        for index, (data, kwargs, _kind) in enumerate(layers):
            layer = Image(data, **kwargs)
            self.viewer.layers.insert(index, layer)   # under the grid and the labels, as before
            added[kwargs["metadata"][ROLE_KEY]] = layer
        if active is not None and active in self.viewer.layers:
            self.viewer.layers.selection.active = active
        self._worker = None
        self.loaded.emit(added)

    def _failed(self, request: int, exc: BaseException) -> None:
        if request != self._request:
            return
        self._worker = None
        show_warning(f"the reference images could not be loaded: {exc}")
        self.loaded.emit({})
