""""Map the whole AoI" for the Review dock: run ``ercnn-napari map`` in a worker, show the map lazily.

Kept apart from the dock so the dock only needs ``MapAction(dock)``: the action adds its button to
the dock's layout, reuses the dock's model list, ensemble rule, stride, progress bar, state label
and Cancel button, and writes into ``<project>/maps/<timestamp>/``. The run is the command line in
a worker process (TensorFlow never enters the viewer); the finished folder opens through
:func:`ercnn_napari.napari_plugin.map_layers.map_layer_data`, which reads nothing up front.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QPushButton

from ercnn_napari.core.messages import Message, Progress, Started, describe
from ercnn_napari.napari_plugin.worker_process import WorkerProcess, WorkerResult


def map_args(project_root: str | Path, models: list[str], combine: str, stride: int, out_dir: Path) -> list[str]:
    args = ["map", str(project_root)]
    for model in models:
        args += ["--model", model]
    return args + ["--combine", combine, "--stride", str(stride), "--all", "--out", str(out_dir),
                   "--progress", "json"]


class MapAction:
    """The "Map the whole AoI" button of a Review dock and the run behind it."""

    def __init__(self, dock: Any) -> None:
        self.dock = dock
        self.worker: WorkerProcess | None = None
        self.out_dir: Path | None = None
        self.button = QPushButton("Map the whole AoI")
        self.button.setToolTip("every tile with observations, seamless (context halo), on local Dask workers; "
                               "a re-run into the same folder resumes")
        self.button.clicked.connect(self.start)
        dock.layout().insertWidget(dock.layout().count() - 1, self.button)  # above the final stretch

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def start(self) -> None:
        project = self.dock.context.project
        if project is None or self.running or self.dock.running:
            return
        models = self.dock.selected_models()
        if not models:
            show_warning("tick at least one model to map with")
            return
        self.out_dir = Path(project.root) / "maps" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        args = map_args(project.root, models, self.dock.combine.currentText(), self.dock.stride.value(), self.out_dir)
        self.worker = WorkerProcess(args, self.dock)
        self.worker.message.connect(self._on_message)
        self.worker.done.connect(self._on_done)
        self.dock.cancel_button.clicked.connect(self.cancel)
        self.worker.start()
        self.button.setEnabled(False)
        self.dock.cancel_button.setEnabled(True)
        self.dock.state_label.setText("mapping the whole AoI…")

    def cancel(self) -> None:
        if self.running:
            self.worker.cancel()

    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, Started):
            self.dock.progress.open(msg.total or None)
        elif isinstance(msg, Progress):
            self.dock.progress.set_done(msg.done)
        text = describe(msg)
        if text:
            self.dock.state_label.setText(text)

    def _on_done(self, result: WorkerResult) -> None:
        self.dock.progress.close()
        self.button.setEnabled(True)
        self.dock.cancel_button.setEnabled(False)
        self.dock.cancel_button.clicked.disconnect(self.cancel)
        if result.status == "failed":
            self.dock.state_label.setText(f"failed: {result.error_message}")
            show_error(f"mapping failed: {result.error_message}")
        elif result.status == "cancelled":
            self.dock.state_label.setText("mapping cancelled; mapping again into the same folder resumes")
            show_info("mapping cancelled")
        else:
            self.show_map(self.out_dir)

    def show_map(self, folder: Path) -> list[Any]:
        from ercnn_napari.napari_plugin.map_layers import map_layer_data

        layers = []
        for data, kwargs, _kind in map_layer_data(folder, self.dock.threshold.value() / 100.0):
            layers.append(self.dock.viewer.add_image(data, **kwargs))
        self.dock.state_label.setText(f"map of the whole AoI: {folder}")
        return layers
