"""Review dock: predict with a baseline, a run or an ensemble of runs, then look through the windows.

Prediction runs in a worker process (``ercnn-napari predict ... --progress json``) with a progress
bar and Cancel. The result folder is read back with numpy (:mod:`.predictions`) and shown as a time
stack per prediction plus its max-over-windows map (:mod:`.prediction_layers`), labelled with the
window dates. Exports write the stack and the max map as GeoTIFFs and the moving window as GIF/MP4.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.messages import Message, Progress, Started, describe
from ercnn_napari.core.tiles import TileId, format_tile_id, parse_tile_id
from ercnn_napari.napari_plugin.baseline_notice import BaselineNotice
from ercnn_napari.napari_plugin.close_guard import CloseGuard
from ercnn_napari.napari_plugin.context import context_for
from ercnn_napari.napari_plugin.export_actions import ExportRunner, animation_job, geotiff_job
from ercnn_napari.napari_plugin.index_baseline_layers import IndexBaselineAction
from ercnn_napari.napari_plugin.map_action import MapAction
from ercnn_napari.napari_plugin.model_list import ModelList, model_entries
from ercnn_napari.napari_plugin.prediction_layers import (
    WindowLabeller,
    prediction_layer_data,
    set_threshold,
)
from ercnn_napari.napari_plugin.predictions import load_prediction_mosaic
from ercnn_napari.napari_plugin.progress_bar import RunProgress, WorkerBar
from ercnn_napari.napari_plugin.readiness import predict_blocker
from ercnn_napari.napari_plugin.worker_process import WorkerProcess, WorkerResult

TILE_CHOICES = ("visible tiles", "labelled tiles", "tiles with observations", "these tiles:")


class ReviewDock(QWidget):
    """Run predictions and review them window by window."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.context = context_for(napari_viewer)
        self.worker: WorkerProcess | None = None
        self.out_dir: Path | None = None
        self.result: WorkerResult | None = None
        self.loaded: list[Any] = []  # PredictionMosaic of each prediction shown
        self.progress = WorkerBar(self, "predict")
        self.labeller = WindowLabeller(napari_viewer)
        self._build_ui()
        self._close_guard = CloseGuard(self, lambda: True)  # the window closes: stop the predictor
        self.exporter = ExportRunner(self)
        self.exporter.progressed.connect(lambda done, total: self.export_progress.set_count(done, total))
        self.exporter.finished.connect(lambda _result: self._export_done())
        self.context.project_changed.connect(lambda _p: self.refresh_models())
        self.context.run_finished.connect(lambda _r: self.refresh_models())
        self.context.predict_requested.connect(self._on_predict_requested)
        self.models.itemChanged.connect(lambda _item: self.update_readiness())
        self.refresh_models()

    # -- UI ----------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.models = ModelList()
        self.add_model_button = QPushButton("Add model…")
        self.add_model_button.clicked.connect(self._browse_model)
        self.combine = QComboBox()
        self.combine.addItems(["mean", "max"])
        self.tiles_choice = QComboBox()
        self.tiles_choice.addItems(TILE_CHOICES)
        self.tiles_edit = QLineEdit()
        self.tiles_edit.setPlaceholderText("y:x,y:x,…")
        self.stride = QSpinBox()
        self.stride.setRange(1, 100)
        self.stride.setValue(5)
        self.stride.setToolTip("every k-th window (the authors' video used 5)")
        self.predict_button = QPushButton("Predict")
        self.predict_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.state_label = QLabel("")
        self.state_label.setWordWrap(True)
        self.why_label = QLabel("")  # why Predict is disabled, in one sentence
        self.why_label.setWordWrap(True)
        self.why_label.setStyleSheet("color: #ffa040")
        self.baseline_warning = BaselineNotice()  # a loud line when ERCNN_PUBLISHED_WEIGHTS names no file
        self.run_progress = RunProgress(self)
        self.export_progress = RunProgress(self)
        self.open_button = QPushButton("Open prediction folder…")
        self.open_button.clicked.connect(self._browse_predictions)
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setRange(1, 99)
        self.threshold.setValue(50)
        self.threshold_label = QLabel("0.50")
        self.threshold.valueChanged.connect(self._threshold_changed)
        self.export_tif_button = QPushButton("Export GeoTIFFs…")
        self.export_tif_button.clicked.connect(self._choose_export_tifs)
        self.export_anim_button = QPushButton("Export animation…")
        self.export_anim_button.clicked.connect(self._choose_export_animation)

        form = QFormLayout()
        models_row = QVBoxLayout()
        models_row.addWidget(self.models)
        models_row.addWidget(self.add_model_button)
        form.addRow("models", models_row)
        form.addRow("ensemble", self.combine)
        tiles_row = QHBoxLayout()
        tiles_row.addWidget(self.tiles_choice)
        tiles_row.addWidget(self.tiles_edit, 1)
        form.addRow("tiles", tiles_row)
        form.addRow("window stride", self.stride)
        buttons = QHBoxLayout()
        buttons.addWidget(self.predict_button, 1)
        buttons.addWidget(self.cancel_button)
        threshold_row = QHBoxLayout()
        threshold_row.addWidget(QLabel("change threshold"))
        threshold_row.addWidget(self.threshold, 1)
        threshold_row.addWidget(self.threshold_label)
        exports = QHBoxLayout()
        exports.addWidget(self.export_tif_button)
        exports.addWidget(self.export_anim_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.baseline_warning)
        layout.addLayout(buttons)
        layout.addWidget(self.why_label)
        layout.addWidget(self.run_progress)
        layout.addWidget(self.state_label)
        layout.addWidget(self.open_button)
        layout.addLayout(threshold_row)
        layout.addLayout(exports)
        layout.addWidget(self.export_progress)
        layout.addStretch(1)
        self.worker_actions = [MapAction(self), IndexBaselineAction(self)]  # whole-AoI map; what networks must beat

    # -- models ------------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """Baseline first, then the project's finished runs (newest first); keeps ticks by path."""
        self.models.set_entries(model_entries(self.context.project, self.baseline_warning.default_baseline()))
        self.update_readiness()

    def update_readiness(self) -> None:
        """Enable Predict only when it can run, and say why not otherwise."""
        reason = "" if self.running else predict_blocker(self.context.project, self.selected_models(), None)
        self.predict_button.setEnabled(not self.running and not reason)
        self.predict_button.setToolTip(reason or "predict the chosen tiles with the ticked model(s)")
        self.why_label.setText(f"Predict is disabled: {reason}" if reason else "")
        self.why_label.setVisible(bool(reason))

    def add_model(self, path: str, text: str | None = None, checked: bool = True) -> None:
        self.models.add_model(path, text, checked)

    def selected_models(self) -> list[str]:
        return self.models.selected_models()

    def select_only(self, paths: list[str]) -> None:
        self.models.select_only(paths)

    def _browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model file", "", "Models (*.h5 *.hdf5)")
        if path:
            self.add_model(path)

    # -- tiles ---------------------------------------------------------------------------------------
    def chosen_tiles(self) -> list[TileId]:
        project = self.context.project
        if project is None:
            return []
        choice = self.tiles_choice.currentText()
        if choice == "visible tiles":
            tiles = self.context.visible_tiles()
        elif choice == "labelled tiles":
            tiles = project.tiles_with_labels()
        elif choice == "tiles with observations":
            tiles = project.tiles_with_observations()
        else:
            tiles = [parse_tile_id(t) for t in self.tiles_edit.text().split(",") if t.strip()]
        with_obs = set(project.tiles_with_observations())
        return [t for t in tiles if t in with_obs]

    def set_tiles(self, tiles: list[TileId]) -> None:
        self.tiles_choice.setCurrentText("these tiles:")
        self.tiles_edit.setText(",".join(format_tile_id(t) for t in tiles))

    # -- prediction run ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def predict_args(self, models: list[str], tiles: list[TileId], out_dir: Path) -> list[str]:
        args = ["predict"]
        for model in models:
            args += ["--model", model]
        args += ["--combine", self.combine.currentText(), "--project", str(self.context.project.root),
                 "--tiles", ",".join(format_tile_id(t) for t in tiles), "--stride", str(self.stride.value()),
                 "--out", str(out_dir), "--progress", "json"]
        return args

    def start(self) -> None:
        project = self.context.project
        if project is None or self.running:
            return
        models = self.selected_models()
        try:
            tiles = self.chosen_tiles()
        except ErcnnError as exc:
            show_warning(str(exc))
            return
        reason = predict_blocker(project, models, tiles)
        if reason:
            show_warning(reason)
            return
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.out_dir = Path(project.root) / "predictions" / stamp
        self.result = None
        self.worker = WorkerProcess(self.predict_args(models, tiles, self.out_dir), self)
        self.worker.message.connect(self._on_message)
        self.worker.done.connect(self._on_done)
        self.worker.start()
        self.state_label.setText(f"predicting {len(tiles)} tile(s) with {len(models)} model(s)…")
        self.run_progress.begin("starting the predictor (TensorFlow start-up)")
        self.predict_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.update_readiness()

    def cancel(self) -> None:
        if self.running:
            self.state_label.setText("cancelling…")
            self.worker.cancel()

    def _on_predict_requested(self, request: tuple[list[str], list[TileId]]) -> None:
        models, tiles = request
        self.select_only(models)
        self.set_tiles(tiles)
        self.start()

    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, Started):
            self.progress.open(msg.total or None)
            self.run_progress.set_stage("predicting")
            self.run_progress.set_count(0, msg.total, "windows")
        elif isinstance(msg, Progress):
            self.progress.set_done(msg.done)
            self.run_progress.set_count(msg.done, msg.total, msg.unit)
        text = describe(msg)
        if text:
            self.state_label.setText(text)

    def _on_done(self, result: WorkerResult) -> None:
        self.result = result
        self.progress.close()
        self.run_progress.end()
        self.cancel_button.setEnabled(False)
        self.update_readiness()
        if result.status == "failed":
            self.state_label.setText(f"failed: {result.error_message}")
            show_error(f"prediction failed: {result.error_message}")
        elif result.status == "cancelled":
            self.state_label.setText("prediction cancelled")
            show_info("prediction cancelled")
        else:
            self.load_predictions(self.out_dir)

    def handle_close(self, can_cancel: bool = True) -> bool:
        return True

    def shutdown(self) -> None:
        """The window closes: stop the predictor, unhook from the viewer, forget it."""
        if self.running:
            self.worker.cancel()
        for action in self.worker_actions:
            action.cancel()
        self.progress.close()
        self.run_progress.end()
        self.labeller.disconnect()
        self.context.release()

    # -- showing -------------------------------------------------------------------------------------
    def _browse_predictions(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a prediction folder")
        if folder:
            self.load_predictions(Path(folder))

    def load_predictions(self, folder: Path) -> list[Any]:
        """Add (or replace) the layers of a prediction folder; returns the layers."""
        project = self.context.project
        try:
            grid = project.grid if project is not None else _grid_of(folder)
            mosaic = load_prediction_mosaic(folder, grid.tile_size)
        except ErcnnError as exc:
            show_error(str(exc))
            return []
        # adding a time stack makes napari fit the view to the new extent: keep where the analyst was
        camera = self.context.camera
        view = (tuple(camera.center), camera.zoom) if len(self.viewer.layers) else None
        for layer in [lay for lay in self.viewer.layers if lay.metadata.get("folder") == str(folder)]:
            self.viewer.layers.remove(layer)
        threshold = self.threshold.value() / 100.0
        added = []
        for data, kwargs, _kind in prediction_layer_data(mosaic, grid, threshold):
            added.append(self.viewer.add_image(data, **kwargs))
        self.loaded.append(mosaic)
        self.viewer.layers.selection.active = added[0]
        self.viewer.dims.set_current_step(0, 0)
        if view is not None:
            center, zoom = view
            camera.center = center[-2:] if len(camera.center) == 2 else (*camera.center[:-2], *center[-2:])
            camera.zoom = zoom
        self.labeller.update()
        ids = [w.window_id for w in mosaic.windows if w.window_id is not None]
        numbering = f" (window IDs {ids[0]}, {ids[1]}, … {ids[-1]})" if len(ids) > 2 else ""
        self.state_label.setText(f"{mosaic.name}: {len(mosaic.tiles)} tile(s), {len(mosaic.windows)} windows"
                                 f"{numbering} ({folder})")
        return added

    def _threshold_changed(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        set_threshold(self.viewer.layers, value / 100.0)

    # -- export --------------------------------------------------------------------------------------
    def current_stack_layer(self) -> Any:
        layer = self.labeller.stack_layer()
        if layer is None:
            show_warning("no prediction to export: predict or open a prediction folder first")
        return layer

    def _choose_export_tifs(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export GeoTIFFs into")
        if folder:
            self.export_geotiffs(Path(folder))

    def _choose_export_animation(self) -> None:
        from ercnn_napari.napari_plugin.export import animation_formats

        filters = ";;".join(animation_formats().values())  # MP4 only where imageio-ffmpeg is installed
        path, _ = QFileDialog.getSaveFileName(self, "Export animation", "change.gif", filters)
        if path:
            self.export_animation(Path(path))

    def export_geotiffs(self, folder: Path) -> bool:
        """Start writing the current prediction's window stack and max map as GeoTIFFs into ``folder``.

        Runs in a thread; ``self.exporter.finished`` carries the written paths (None on failure).
        """
        layer = self.current_stack_layer()
        if layer is None:
            return False
        return self._export("GeoTIFF export", geotiff_job(self.viewer, layer, folder))

    def export_animation(self, path: Path, fps: float = 8.0) -> bool:
        """Start writing the moving-window animation (red change over the after image) as GIF or MP4."""
        layer = self.current_stack_layer()
        if layer is None:
            return False
        job = animation_job(self.viewer, layer, path, self.threshold.value() / 100.0, fps)
        return self._export(f"{Path(path).suffix.lstrip('.').upper()} export", job)

    def _export(self, what: str, job: Any) -> bool:
        if not self.exporter.start(what, job):
            return False
        self.export_progress.begin(what)
        self.export_tif_button.setEnabled(False)
        self.export_anim_button.setEnabled(False)
        return True

    def _export_done(self) -> None:
        self.export_progress.end()
        self.export_tif_button.setEnabled(True)
        self.export_anim_button.setEnabled(True)

def _grid_of(folder: Path) -> Any:
    from ercnn_napari.core.geo import TileGrid
    from ercnn_napari.napari_plugin.predictions import read_prediction_info

    info = read_prediction_info(folder)
    if "grid" not in info:
        raise ErcnnError("prediction.json has no grid: open the project first", folder / "prediction.json")
    return TileGrid.from_dict(info["grid"])
