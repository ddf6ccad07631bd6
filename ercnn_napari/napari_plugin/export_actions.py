"""Export actions of the review dock: the shown prediction as GeoTIFFs and as an animation, off the GUI thread.

Rendering 100+ animation frames or encoding an MP4 takes tens of seconds: done on the GUI thread
it froze the window (23 s for a 108-frame GIF). The data is picked up on the GUI thread (layers are
napari objects), then one :class:`ExportRunner` job does the rendering and writing in a napari
thread worker, reporting progress through a Qt signal (queued into the GUI thread) to the dock's
bar. Any failure becomes ONE notification naming the file, never an uncaught exception. The file
formats live in :mod:`.export`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.napari_plugin.prediction_layers import MAX_ROLE, ROLE_KEY, windows_of

Job = Callable[[Callable[[int, int], None]], Any]


class ExportRunner(QObject):
    """One export at a time in a worker thread; ``finished(result)`` (None on failure) on the GUI thread."""

    progressed = Signal(int, int)
    finished = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worker: Any = None
        self.result: Any = None
        self.error: str = ""

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def start(self, what: str, job: Job) -> bool:
        """Run ``job(report)`` in a thread; False (and a notification) if an export is still running."""
        from napari.qt.threading import create_worker

        if self.busy:
            show_info("an export is still running; wait for it to finish")
            return False
        self.result, self.error = None, ""
        # errors are ours to show (one notification), not re-raised into the GUI thread
        worker = create_worker(job, self.progressed.emit, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda result: self._done(what, result, ""))
        worker.errored.connect(lambda exc: self._done(what, None, _sentence(exc)))
        self.worker = worker
        worker.start()
        return True

    def _done(self, what: str, result: Any, error: str) -> None:
        self.worker = None
        self.result, self.error = result, error
        if error:
            show_error(f"{what} failed: {error}")
        elif result:
            written = result if isinstance(result, list) else [result]
            show_info(f"{what}: wrote " + ", ".join(str(p) for p in written))
        self.finished.emit(result)


def _sentence(exc: BaseException) -> str:
    if isinstance(exc, ErcnnError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def geotiff_job(viewer: Any, layer: Any, folder: Path) -> Job:
    """The GeoTIFF export of the prediction ``layer`` (window stack + max map), data taken now."""
    from ercnn_napari.napari_plugin.export import write_max_map, write_window_stack
    from ercnn_napari.napari_plugin.layers import transform_from_metadata

    meta = layer.metadata
    windows = windows_of(layer)
    transform = transform_from_metadata(meta)
    stem = _safe(meta.get("model_name", layer.name))
    stack = layer.data
    max_layer = next((lay for lay in viewer.layers if lay.metadata.get(ROLE_KEY) == MAX_ROLE
                      and lay.metadata.get("folder") == meta.get("folder")), None)
    max_data = max_layer.data if max_layer is not None else None

    def job(report: Callable[[int, int], None]) -> list[Path]:
        import numpy as np

        report(0, 2)
        stack_path = write_window_stack(folder / f"{stem}_windows.tif", stack, windows, meta["crs"], transform)
        report(1, 2)
        data = max_data if max_data is not None else np.nanmax(stack, axis=0)
        max_path = write_max_map(folder / f"{stem}_max_change.tif", data, windows, meta["crs"], transform)
        report(2, 2)
        return [stack_path, max_path]

    return job


def animation_job(viewer: Any, layer: Any, path: Path, threshold: float, fps: float = 8.0) -> Job:
    """The moving-window animation (red change over the after image) as GIF or MP4, data taken now."""
    from ercnn_napari.napari_plugin.export import animation_frames, write_animation

    background = background_for(viewer, layer)
    stack = layer.data
    windows = windows_of(layer)

    def job(report: Callable[[int, int], None]) -> Path:
        total = len(windows) + 1  # one unit per frame, one for encoding the file
        frames = animation_frames(stack, windows, threshold, background, on_frame=lambda i, _n: report(i, total))
        written = write_animation(path, frames, fps)
        report(total, total)
        return written

    return job


def background_for(viewer: Any, layer: Any) -> Any:
    """The after reference image cropped to the prediction's tiles (None if there is none)."""
    after = next((lay for lay in viewer.layers if lay.metadata.get("ercnn_role") == "after"), None)
    if after is None:
        return None
    factor = int(after.metadata.get("factor", 1))
    ref_origin = after.metadata.get("mosaic_origin", [0, 0])
    origin = layer.metadata["mosaic_origin"]
    ts = int(layer.metadata.get("tile_size", 32))
    _, height, width = layer.data.shape
    y0 = (origin[0] - ref_origin[0]) * ts * factor
    x0 = (origin[1] - ref_origin[1]) * ts * factor
    if y0 < 0 or x0 < 0:
        return None
    crop = after.data[y0:y0 + height * factor, x0:x0 + width * factor]
    return crop if crop.shape[0] == height * factor and crop.shape[1] == width * factor else None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("_") or "prediction"
