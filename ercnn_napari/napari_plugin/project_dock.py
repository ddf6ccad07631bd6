"""Project dock: "New project from AoI…" and "Add observations…" without leaving the viewer.

Both actions run the same command an analyst would type (``ercnn-napari new`` and
``ercnn-napari ingest --progress json``) as a :class:`WorkerProcess`: ingesting reads and warps
gigabytes and must neither freeze nor crash the viewer, and Cancel must really stop it (the ingest
resumes where it stopped on the next run). The dock turns the worker's JSON lines into one progress
bar, shows a failure as one sentence, and opens the project when the command has finished so the
grid and the tiles appear.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ercnn_napari.core.messages import Finished, Message, Progress, Started, Unknown, describe
from ercnn_napari.napari_plugin.context import context_for
from ercnn_napari.napari_plugin.progress_bar import WorkerBar
from ercnn_napari.napari_plugin.worker_process import WorkerProcess, WorkerResult

#: AoI formats ``new`` reads.
AOI_FILTER = "AoI polygon (*.shp *.geojson *.json *.gpkg)"
#: What the remote-source box offers (STAC presets and the Sentinel Hub fidelity path); free text too.
REMOTE_SOURCES = (
    "earth-search/sentinel-2-l1c",
    "earth-search/sentinel-2-l2a",
    "planetary-computer/sentinel-2-l2a",
    "planetary-computer/sentinel-1-rtc",
    "sentinelhub",
)
_CLI_ERROR_PREFIX = "ercnn-napari: error: "


def new_project_args(project: str | Path, aoi: str | Path, site: str = "", crs: str = "auto",
                     start: str = "", end: str = "", authors_grid: bool = False) -> list[str]:
    """``ercnn-napari new`` for the dock's fields (empty fields keep the command's defaults)."""
    args = ["new", str(project), "--aoi", str(aoi)]
    for flag, value in (("--site", site), ("--start", start), ("--end", end)):
        if value.strip():
            args += [flag, value.strip()]
    if authors_grid:
        args.append("--authors-grid")
    elif crs.strip() and crs.strip() != "auto":
        args += ["--crs", crs.strip()]
    return args


def ingest_args(project: str | Path, sources: list[str], workers: int = 0) -> list[str]:
    """``ercnn-napari ingest PROJECT SOURCE... [--workers N] --progress json`` (0: the command's default)."""
    return ["ingest", str(project), *sources, *(["--workers", str(workers)] if workers > 0 else []),
            "--progress", "json"]


def one_sentence(result: WorkerResult) -> str:
    """The worker's failure as the analyst should read it: the command's own sentence, one line."""
    text = result.error_message or "the command failed"
    if _CLI_ERROR_PREFIX in text:
        text = text.split(_CLI_ERROR_PREFIX, 1)[1]
    return " ".join(text.split())


class ProjectDock(QWidget):
    """Create a project from an AoI file and add observations to it, each in a worker process."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.context = context_for(napari_viewer)
        self.worker: WorkerProcess | None = None
        self.result: WorkerResult | None = None
        self.problems: list[str] = []
        self._target: Path | None = None
        self.progress = WorkerBar(self, "project")
        self._build_ui()
        self.context.project_changed.connect(self._project_changed)
        self._project_changed(self.context.project)

    # -- UI ----------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.aoi_edit = QLineEdit()
        self.aoi_edit.setPlaceholderText("AoI polygon: .shp, .geojson or .gpkg")
        self.new_folder_edit = QLineEdit()
        self.new_folder_edit.setPlaceholderText("new project folder")
        self.site_edit = QLineEdit()
        self.site_edit.setPlaceholderText("default: the AoI file name")
        self.crs_box = QComboBox()
        self.crs_box.setEditable(True)
        self.crs_box.addItems(["auto"])
        self.crs_box.setToolTip("auto: the AoI's UTM zone; or any EPSG:xxxx")
        self.authors_grid = QCheckBox("the authors' grid (EPSG:4326, ~10 m)")
        self.authors_grid.toggled.connect(lambda on: self.crs_box.setEnabled(not on))
        self.start_edit = QLineEdit()
        self.start_edit.setPlaceholderText("2017-01-01")
        self.end_edit = QLineEdit()
        self.end_edit.setPlaceholderText("2021-01-17")
        self.new_button = QPushButton("New project from AoI…")
        self.new_button.clicked.connect(self._new_clicked)
        new_form = QFormLayout()
        new_form.addRow("AoI", _with_browse(self.aoi_edit, self._browse_aoi))
        new_form.addRow("folder", _with_browse(self.new_folder_edit, self._browse_new_folder))
        new_form.addRow("site", self.site_edit)
        new_form.addRow("CRS", self.crs_box)
        new_form.addRow("", self.authors_grid)
        new_form.addRow("start", self.start_edit)
        new_form.addRow("end", self.end_edit)
        new_form.addRow(self.new_button)
        new_group = QGroupBox("New project")
        new_group.setLayout(new_form)

        self.project_edit = QLineEdit()
        self.project_edit.setPlaceholderText("project folder (the open project by default)")
        self.sources = QListWidget()
        self.sources.setToolTip("folders with manifest.csv, STAC catalogues, STAC API URLs, presets, sentinelhub")
        self.remote_box = QComboBox()
        self.remote_box.setEditable(True)
        self.remote_box.addItems(REMOTE_SOURCES)
        add_folder = QPushButton("Folder…")
        add_folder.setToolTip("a folder of GeoTIFF/COG files with manifest.csv")
        add_folder.clicked.connect(self._browse_folder_source)
        add_catalog = QPushButton("catalog.json…")
        add_catalog.clicked.connect(self._browse_catalog_source)
        add_remote = QPushButton("Add")
        add_remote.clicked.connect(lambda: self.add_source(self.remote_box.currentText()))
        remove = QPushButton("Remove")
        remove.clicked.connect(lambda: [self.sources.takeItem(self.sources.row(i)) for i in self.sources.selectedItems()])
        local_row = QHBoxLayout()
        local_row.addWidget(add_folder)
        local_row.addWidget(add_catalog)
        local_row.addWidget(remove)
        remote_row = QHBoxLayout()
        remote_row.addWidget(self.remote_box, 1)
        remote_row.addWidget(add_remote)
        self.workers = QSpinBox()
        self.workers.setRange(0, 64)
        self.workers.setSpecialValueText("auto")
        self.workers.setToolTip("Dask worker processes (1: in one process, best for a small AoI; auto: the command's default)")
        self.ingest_button = QPushButton("Add observations…")
        self.ingest_button.clicked.connect(self._ingest_clicked)
        ingest_form = QFormLayout()
        ingest_form.addRow("project", _with_browse(self.project_edit, self._browse_project))
        ingest_form.addRow("sources", self.sources)
        ingest_form.addRow("", local_row)
        ingest_form.addRow("", remote_row)
        ingest_form.addRow("workers", self.workers)
        ingest_form.addRow(self.ingest_button)
        ingest_group = QGroupBox("Observations")
        ingest_group.setLayout(ingest_form)

        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.state_label = QLabel("idle")
        self.state_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(new_group)
        layout.addWidget(ingest_group)
        layout.addWidget(self.cancel_button)
        layout.addWidget(self.state_label)
        layout.addStretch(1)

    def _project_changed(self, project: Any) -> None:
        if project is not None and not self.project_edit.text().strip():
            self.project_edit.setText(str(project.root))

    # -- browsing (the buttons; tests call the start methods directly) -----------------------------
    def _browse_aoi(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "AoI polygon", "", AOI_FILTER)
        if path:
            self.aoi_edit.setText(path)

    def _browse_new_folder(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "New project folder")
        if path:
            self.new_folder_edit.setText(path)

    def _browse_project(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Project folder")
        if path:
            self.project_edit.setText(path)

    def _browse_folder_source(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder with manifest.csv")
        if path:
            self.add_source(path)

    def _browse_catalog_source(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "STAC catalogue", "", "STAC catalogue (catalog.json *.json)")
        if path:
            self.add_source(path)

    def add_source(self, source: str) -> None:
        source = source.strip()
        existing = [self.sources.item(i).text() for i in range(self.sources.count())]
        if source and source not in existing:
            self.sources.addItem(source)

    def _new_clicked(self) -> None:
        if not self.aoi_edit.text().strip():
            self._browse_aoi()
        if not self.new_folder_edit.text().strip():
            self._browse_new_folder()
        if self.aoi_edit.text().strip() and self.new_folder_edit.text().strip():
            self.start_new()

    def _ingest_clicked(self) -> None:
        if self.sources.count() == 0:
            self._browse_folder_source()
        self.start_ingest()

    # -- runs --------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def start_new(self) -> None:
        """Run ``ercnn-napari new`` for the fields; the project opens when it is made."""
        folder = self.new_folder_edit.text().strip()
        args = new_project_args(folder, self.aoi_edit.text().strip(), self.site_edit.text(),
                                self.crs_box.currentText(), self.start_edit.text(), self.end_edit.text(),
                                self.authors_grid.isChecked())
        self._launch(args, Path(folder), "creating the project…")

    def start_ingest(self) -> None:
        """Run ``ercnn-napari ingest`` on the listed sources; the project (re)opens when it is done."""
        project = self.project_edit.text().strip()
        sources = [self.sources.item(i).text() for i in range(self.sources.count())]
        if not project or not sources:
            show_warning("choose a project folder and at least one source")
            return
        self._launch(ingest_args(project, sources, self.workers.value()), Path(project), "adding observations…")

    def _launch(self, args: list[str], target: Path, state: str) -> None:
        if self.running:
            return
        self.result = None
        self.problems = []
        self._target = target
        self.worker = WorkerProcess(args, self)
        self.worker.message.connect(self._on_message)
        self.worker.done.connect(self._on_done)
        self.worker.start()
        self.state_label.setText(state)
        self.new_button.setEnabled(False)
        self.ingest_button.setEnabled(False)
        self.cancel_button.setEnabled(True)

    def cancel(self) -> None:
        if self.running:
            self.state_label.setText("cancelling…")
            self.worker.cancel()

    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, Started):
            self.progress.open(msg.total or None)
        elif isinstance(msg, Progress):
            if self.progress.bar is None or self.progress.bar.total != msg.total:
                self.progress.open(msg.total or None)
                self.progress.bar.set_description(msg.desc or "ingest")
            self.progress.set_done(msg.done)
        problem = _problem_text(msg)
        if problem:
            self.problems.append(problem)
        text = describe(msg) or (f"[{msg.job}] skipped: {problem}" if problem else "")
        if text and not isinstance(msg, Finished):
            self.state_label.setText(text)

    def _on_done(self, result: WorkerResult) -> None:
        self.result = result
        self.progress.close()
        self.new_button.setEnabled(True)
        self.ingest_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if result.status == "failed":
            sentence = one_sentence(result)
            self.state_label.setText(f"failed: {sentence}")
            show_error(sentence)
            return
        if result.status == "cancelled":
            self.state_label.setText("cancelled (adding observations again resumes where it stopped)")
            show_info("cancelled")
            return
        skipped = f"; {len(self.problems)} input(s) skipped" if self.problems else ""
        self.state_label.setText(f"done: {self._target}{skipped}")
        if self.problems:
            show_warning(f"{len(self.problems)} input(s) skipped, first: {self.problems[0]}")
        if self._target is not None:  # "Add observations" goes to the project just made or filled
            self.project_edit.setText(str(self._target))
        self.open_project(self._target)

    def open_project(self, folder: Path | None) -> None:
        """Show the project in the viewer through the plugin's reader (grid, tiles, observations)."""
        if folder is None:
            return
        try:
            self.viewer.open(str(folder), plugin="ercnn-napari")
        except Exception as exc:  # noqa: BLE001 - a reader failure must be a message, never a traceback
            show_error(f"{folder}: could not open the project: {' '.join(str(exc).split())}")

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        if self.running:
            self.worker.cancel()
        self.progress.close()
        super().closeEvent(event)


def _problem_text(msg: Message) -> str:
    """The sentence of a ``problem`` event (one skipped input), whichever message class carries it."""
    if getattr(msg, "event", "") == "problem":
        return str(getattr(msg, "message", ""))
    if isinstance(msg, Unknown) and msg.raw.get("event") == "problem":
        return str(msg.raw.get("message", ""))
    return ""


def _with_browse(edit: QLineEdit, browse: Any) -> QHBoxLayout:
    row = QHBoxLayout()
    button = QPushButton("…")
    button.setMaximumWidth(30)
    button.clicked.connect(browse)
    row.addWidget(edit, 1)
    row.addWidget(button)
    return row
