""""Fetch reference imagery" in the Label dock: run ``ercnn-napari reference`` in a worker, show the result.

An analyst on a new AoI has orthophotos or a map service, not the authors' per-tile PNGs. The
fields take what the command line takes (a local GeoTIFF/COG/VRT, a GDAL WMS/WMTS/TMS XML file, or
a ``WMS:``/``WMTS:`` connection string, and the years when the names do not tell them); the run is
the command line in a worker process with a progress bar and Cancel (reading a map service can
take minutes; a cancelled run resumes from the bands already cached). When it finishes, the
cached COGs replace the before/after layers, under the labels, and the dock's toggle, fade and
swipe are pointed at them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari.utils.notifications import show_warning
from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QPushButton, QSpinBox, QWidget

from ercnn_napari.napari_plugin.project_layers import PROJECT_KEY, ROLE_KEY
from ercnn_napari.napari_plugin.worker_action import WorkerAction
from ercnn_napari.napari_plugin.worker_panel import WorkerPanel

ROLES = ("before", "after")


def reference_args(project_root: str | Path, sources: dict[str, str], years: dict[str, int], factor: int) -> list[str]:
    """The ``reference`` command line; a year or factor of 0 means "let the command decide"."""
    args = ["reference", str(project_root)]
    for role in ROLES:
        if sources.get(role):
            args += [f"--{role}", sources[role]]
            if years.get(role):
                args += [f"--{role}-year", str(years[role])]
    if factor:
        args += ["--factor", str(factor)]
    return args + ["--progress", "json"]


class ReferenceAction(WorkerAction):
    """The panel's "Fetch reference imagery" button and the run behind it."""

    label = "Fetch reference imagery"
    tooltip = "read the sources on the project grid, cache them as COGs in the project and show them"
    stage = "caching reference imagery"
    what = "reference imagery"

    def command(self, project: Any) -> tuple[list[str], Path] | None:
        panel = self.dock
        sources = {role: panel.sources[role].text().strip() for role in ROLES}
        if not any(sources.values()):
            show_warning("give a before and/or an after source (a raster file or a GDAL WMS/WMTS/TMS description)")
            return None
        years = {role: panel.years[role].value() for role in ROLES}
        return reference_args(project.root, sources, years, panel.factor.value()), Path(project.root) / "reference"

    def show(self, folder: Path) -> list[Any]:
        from ercnn_napari.napari_plugin.project_layers import reference_layer_data

        project = self.dock.context.project
        viewer = self.dock.viewer
        for layer in [ly for ly in viewer.layers if ly.metadata.get(ROLE_KEY) in ROLES
                      and Path(ly.metadata.get(PROJECT_KEY, "")) == Path(project.root)]:
            viewer.layers.remove(layer)
        data, problems = reference_layer_data(project)
        for message in problems:
            show_warning(message)
        layers = {}
        for position, (array, kwargs, _kind) in enumerate(data):  # before, then after: under everything else
            layer = viewer.add_image(array, **kwargs)
            viewer.layers.move(viewer.layers.index(layer), position)
            layers[layer.metadata[ROLE_KEY]] = layer
        self.dock.on_layers(layers)
        self.dock.state_label.setText(f"reference imagery cached in {folder}")
        return list(layers.values())


class ReferencePanel(WorkerPanel):
    """Before/after source and year fields, the cache factor and the fetch button."""

    def __init__(self, viewer: Any, on_layers: Callable[[dict[str, Any]], None], parent: QWidget | None = None) -> None:
        super().__init__("Fetch reference imagery", viewer, "reference imagery", parent)
        self.on_layers = on_layers
        self.sources: dict[str, QLineEdit] = {}
        self.years: dict[str, QSpinBox] = {}
        for role in ROLES:
            source = QLineEdit()
            source.setPlaceholderText("GeoTIFF/COG/VRT, GDAL WMS/WMTS/TMS .xml, or WMTS:… / WMS:…")
            browse = QPushButton("…")
            browse.setMaximumWidth(30)
            browse.clicked.connect(lambda _checked=False, field=source: self._browse(field))
            year = QSpinBox()
            year.setRange(0, 2100)
            year.setSpecialValueText("year from name")
            row = QHBoxLayout()
            row.addWidget(source, 1)
            row.addWidget(browse)
            row.addWidget(year)
            self.form.addRow(role, row)
            self.sources[role], self.years[role] = source, year
        self.factor = QSpinBox()
        self.factor.setRange(0, 10)
        self.factor.setSpecialValueText("the imagery's own (at most 1 m)")
        self.factor.setSuffix(" px per 10 m")
        self.form.addRow("resolution", self.factor)
        self.action = ReferenceAction(self)

    def _browse(self, field: QLineEdit) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Reference imagery", "",
                                              "Rasters and GDAL service descriptions (*.tif *.tiff *.vrt *.xml);;All (*)")
        if path:
            field.setText(path)
