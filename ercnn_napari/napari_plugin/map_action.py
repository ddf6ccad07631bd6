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

from napari.utils.notifications import show_warning

from ercnn_napari.napari_plugin.worker_action import WorkerAction


def map_args(project_root: str | Path, models: list[str], combine: str, stride: int, out_dir: Path) -> list[str]:
    args = ["map", str(project_root)]
    for model in models:
        args += ["--model", model]
    return args + ["--combine", combine, "--stride", str(stride), "--all", "--out", str(out_dir),
                   "--progress", "json"]


class MapAction(WorkerAction):
    """The "Map the whole AoI" button of a Review dock and the run behind it."""

    label = "Map the whole AoI"
    tooltip = ("every tile with observations, seamless (context halo), on local Dask workers; "
               "a re-run into the same folder resumes")
    stage = "mapping the whole AoI"
    what = "mapping"

    def command(self, project: Any) -> tuple[list[str], Path] | None:
        models = self.dock.selected_models()
        if not models:
            show_warning("tick at least one model to map with")
            return None
        out_dir = Path(project.root) / "maps" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        return map_args(project.root, models, self.dock.combine.currentText(), self.dock.stride.value(),
                        out_dir), out_dir

    def show(self, folder: Path) -> list[Any]:
        from ercnn_napari.napari_plugin.map_layers import map_layer_data

        layers = []
        for data, kwargs, _kind in map_layer_data(folder, self.dock.threshold.value() / 100.0):
            layers.append(self.dock.viewer.add_image(data, **kwargs))
        self.dock.state_label.setText(f"map of the whole AoI: {folder}")
        return layers
