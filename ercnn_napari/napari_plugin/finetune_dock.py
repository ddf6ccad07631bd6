"""Fine-tune dock: one button starts ``ercnn-napari train`` on the current labels and split.

The trainer runs as a separate process (:class:`WorkerProcess`); the dock only reads its JSON
lines: a napari progress bar for the steps, a live loss curve, the memory pre-flight estimate, the
run folder. Cancel sends SIGTERM and kills after a grace period. An ``error`` event becomes one
napari notification with the trainer's sentence (never a traceback). The labels are flushed to
disk before the trainer starts, so it learns what the analyst sees. When the run completes, its
before/after evaluation appears as a table and the new model can predict the visible tiles.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.core.messages import Message, Preflight, Progress, Stage, Started, Step, describe
from ercnn_napari.napari_plugin.baseline_notice import BaselineNotice
from ercnn_napari.napari_plugin.close_guard import CloseGuard
from ercnn_napari.napari_plugin.context import context_for
from ercnn_napari.napari_plugin.devices import device_choices
from ercnn_napari.napari_plugin.loss_plot import LossPlot
from ercnn_napari.napari_plugin.progress_bar import RunProgress, WorkerBar
from ercnn_napari.napari_plugin.readiness import finetune_blocker
from ercnn_napari.napari_plugin.run_results import ResultsTable, index_note, read_evaluation, result_rows
from ercnn_napari.napari_plugin.worker_process import WorkerProcess, WorkerResult

PRESETS = ("quick", "paper")
#: where a cancelled run keeps its loop state (the trainer's run folder layout, ml.run_folder)
RESUME_STATE = Path("checkpoints", "resume", "state.json")
#: Cancel lets the trainer finish its step and write the resume checkpoint before it is killed: the
#: default 5 s was too short on a busy 2-core machine, and a killed trainer leaves nothing to resume.
STOP_GRACE_SECONDS = 60.0
#: Set to 1 to offer the "tiny" preset (a smoke test of the whole loop in seconds).
DEV_ENV = "ERCNN_NAPARI_DEV"


class FinetuneDock(QWidget):
    """Start, watch and cancel a fine-tune; show its evaluation."""

    def __init__(self, napari_viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.context = context_for(napari_viewer)
        self.worker: WorkerProcess | None = None
        self.total_steps = 0
        self.run_dir: Path | None = None
        self.result: WorkerResult | None = None
        self.progress = WorkerBar(self, "fine-tune")
        self._build_ui()
        self._close_guard = CloseGuard(self, lambda: True)  # the window closes: stop the trainer
        self.context.project_changed.connect(self._project_changed)
        self.context.split_changed.connect(self._split_changed)
        self.context.labels_saved.connect(self.update_readiness)
        self.split.currentTextChanged.connect(lambda _name: self.update_readiness())
        self.preset.currentTextChanged.connect(lambda _name: self.update_readiness())
        self.baseline.currentTextChanged.connect(lambda _name: self.update_readiness())
        self._project_changed(self.context.project)

    # -- UI ----------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.baseline = QComboBox()
        self.baseline.setEditable(True)
        self.baseline.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.baseline.setMinimumContentsLength(18)
        self.baseline.setToolTip("model to start from: published .hdf5, *.ercnn.h5 or a run folder")
        self.browse = QPushButton("…")
        self.browse.setMaximumWidth(30)
        self.browse.clicked.connect(self._browse_baseline)
        self.split = QComboBox()
        self.split.addItems(["V1", "V2", "V3"])
        self.preset = QComboBox()
        self.preset.addItems(PRESETS)
        self.preset.setToolTip("quick: minutes on a CPU (about 5-8 on two cores for 8 training tiles, 15 for "
                               "the sample's 22, evaluation included); a fresh head that compares every window with the "
                               "tile's first, trained on cached features of the frozen branches (not the paper's "
                               "recipe). paper: the authors' recipe on the whole network")
        if os.environ.get(DEV_ENV) == "1":
            self.preset.addItem("tiny")
        self.device = QComboBox()
        for choice in device_choices():
            self.device.addItem(choice.label, choice.gpus_arg)
        self.start_button = QPushButton("Fine-tune")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("continue the cancelled run from its last checkpoint")
        self.resume_button.setEnabled(False)
        self.resume_button.clicked.connect(self.resume)
        self.state_label = QLabel("")
        self.state_label.setWordWrap(True)
        self.why_label = QLabel("")  # why Fine-tune is disabled, in one sentence
        self.why_label.setWordWrap(True)
        self.why_label.setStyleSheet("color: #ffa040")
        self.baseline_warning = BaselineNotice()  # a loud line when ERCNN_PUBLISHED_WEIGHTS names no file
        self.run_progress = RunProgress(self)
        self.preflight_label = QLabel("")
        self.preflight_label.setWordWrap(True)
        self.run_label = QLabel("")
        self.run_label.setWordWrap(True)
        self.run_label.setTextInteractionFlags(self.run_label.textInteractionFlags() | _selectable())
        self.loss_plot = LossPlot(self)
        self.results = ResultsTable(self.context.jump_to)
        self.index_label = QLabel("")  # which index the "index" columns show, or why they are empty
        self.index_label.setWordWrap(True)
        self.predict_button = QPushButton("Predict visible tiles with this run")
        self.predict_button.setEnabled(False)
        self.predict_button.clicked.connect(self.predict_visible)

        form = QFormLayout()
        base_row = QHBoxLayout()
        base_row.addWidget(self.baseline, 1)
        base_row.addWidget(self.browse)
        form.addRow("baseline", base_row)
        form.addRow("split", self.split)
        form.addRow("preset", self.preset)
        form.addRow("device", self.device)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button, 1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.resume_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.baseline_warning)
        layout.addLayout(buttons)
        layout.addWidget(self.why_label)
        layout.addWidget(self.run_progress)
        layout.addWidget(self.state_label)
        layout.addWidget(self.preflight_label)
        layout.addWidget(self.run_label)
        layout.addWidget(self.loss_plot, 1)
        layout.addWidget(QLabel("Validation / test before → after, beside the index baseline (click a tile to go there)"))
        layout.addWidget(self.results, 1)
        layout.addWidget(self.index_label)
        layout.addWidget(self.predict_button)
        self._fill_baselines()

    def _fill_baselines(self) -> None:
        self.baseline.clear()
        found = self.baseline_warning.default_baseline()
        if found is not None:
            self.baseline.addItem(str(found))
        project = self.context.project
        if project is not None:
            for run in sorted((Path(project.root) / "runs").glob("*/model.ercnn.h5"), reverse=True):
                self.baseline.addItem(str(run.parent))

    def _browse_baseline(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Baseline model", "", "Models (*.h5 *.hdf5)")
        if path:
            self.baseline.setCurrentText(path)

    def _project_changed(self, project: Any) -> None:
        if project is not None:
            self._fill_baselines()
            names = sorted(set(project.split_names()) | {"V1", "V2", "V3"})
            self.split.clear()
            self.split.addItems(names)
            self.split.setCurrentText(self.context.split_name)
        self.update_readiness()

    def blocker(self) -> str:
        """Why Fine-tune cannot start now ("" when it can)."""
        if self.running:
            return ""
        reason = finetune_blocker(self.context.project, self.split.currentText())
        if not reason and self.preset.currentText() != "tiny" and not self.baseline.currentText().strip():
            reason = "no baseline model: choose one with … (or set ERCNN_PUBLISHED_WEIGHTS)"
        return reason

    def update_readiness(self) -> None:
        """Enable Fine-tune only when it can run, and say why not otherwise."""
        reason = self.blocker()
        self.start_button.setEnabled(not self.running and not reason)
        self.start_button.setToolTip(reason or "fine-tune from the baseline on the split's labelled tiles")
        self.why_label.setText(f"Fine-tune is disabled: {reason}" if reason else "")
        self.why_label.setVisible(bool(reason))

    def _split_changed(self, name: str) -> None:
        if self.split.findText(name) < 0:
            self.split.addItem(name)
        self.split.setCurrentText(name)
        self.update_readiness()  # the split's lists may have changed even if its name did not

    def set_preset(self, name: str) -> None:
        """Select a preset (tests and scripts may pick the hidden "tiny" one)."""
        if self.preset.findText(name) < 0:
            self.preset.addItem(name)
        self.preset.setCurrentText(name)

    # -- run -----------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def train_args(self, run_dir: Path) -> list[str]:
        """The trainer's command line for the dock's current choices."""
        project = self.context.project
        args = ["train", str(project.root), "--split", self.split.currentText(),
                "--preset", self.preset.currentText(), "--out", str(run_dir), "--progress", "json",
                "--gpus", str(self.device.currentData() or "none")]
        baseline = self.baseline.currentText().strip()
        if baseline and self.preset.currentText() != "tiny":
            args += ["--baseline", baseline]
        return args

    def start(self) -> None:
        """Flush labels, then start the trainer in its own process."""
        project = self.context.project
        if project is None or self.running:
            return
        reason = self.blocker()
        if reason:
            show_warning(reason)
            return
        if self.context.flush_labels is not None:
            report = self.context.flush_labels()
            if report is not None and not report.ok:
                show_warning("some labels could not be saved (see the label dock); resolve that before training")
                return
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.run_dir = Path(project.root) / "runs" / f"{stamp}_{self.split.currentText()}_{self.preset.currentText()}"
        self.loss_plot.clear()
        self.preflight_label.setText("")
        self.run_label.setText(f"run folder: {self.run_dir}")
        self._launch(self.train_args(self.run_dir), "starting the trainer…")

    def resume(self) -> None:
        """Continue the cancelled run from its last checkpoint; the loss curve goes on where it stopped."""
        if self.running or self.run_dir is None or not (self.run_dir / RESUME_STATE).is_file():
            return
        args = ["train", "--resume", str(self.run_dir), "--progress", "json",
                "--gpus", str(self.device.currentData() or "none")]
        self._launch(args, f"resuming {self.run_dir.name}…")

    def _launch(self, args: list[str], state: str) -> None:
        self.results.show_rows([])
        self.index_label.setText("")
        self.predict_button.setEnabled(False)
        self.resume_button.setEnabled(False)
        self.result = None
        self.worker = WorkerProcess(args, self, grace_seconds=STOP_GRACE_SECONDS)
        self.worker.message.connect(self._on_message)
        self.worker.done.connect(self._on_done)
        self.worker.start()
        self.state_label.setText(state)
        self.run_progress.begin("starting the trainer (TensorFlow start-up)")
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.update_readiness()

    def cancel(self) -> None:
        if self.running:
            self.state_label.setText("cancelling…")
            self.worker.cancel()

    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, Started):
            self.total_steps = msg.total
            self.progress.open(msg.total or None)
            resumed_at = (msg.config or {}).get("resumed_at")
            if resumed_at and msg.steps_per_epoch:  # a resumed run: the bar starts where it stopped
                self.progress.set_done((resumed_at["epoch"] - 1) * msg.steps_per_epoch + resumed_at["step"] - 1)
        elif isinstance(msg, Stage):
            where = f" (stage {msg.index} of {msg.count})" if msg.index > 0 else ""
            self.run_progress.set_stage(f"{msg.name}{where}")
        elif isinstance(msg, Progress):
            self.run_progress.set_count(msg.done, msg.total, msg.unit)
        elif isinstance(msg, Preflight):
            self.preflight_label.setText(
                f"memory estimate {msg.estimated_peak_bytes / 2**30:.2f} GiB of "
                f"{msg.available_bytes / 2**30:.2f} GiB available" + ("" if msg.fits else " — does NOT fit")
                + (f" ({msg.detail})" if msg.detail else ""))
        elif isinstance(msg, Step):
            self.progress.advance(f"fine-tune epoch {msg.epoch}")
            done = (msg.epoch - 1) * msg.steps_per_epoch + msg.step
            self.run_progress.set_count(done, self.total_steps or done, "steps")
        text = describe(msg)
        if text and not isinstance(msg, Preflight):
            self.state_label.setText(text)
        self.loss_plot.add_message(msg)

    def _on_done(self, result: WorkerResult) -> None:
        self.result = result
        self.progress.close()
        self.run_progress.end()
        self.cancel_button.setEnabled(False)
        self.update_readiness()
        if result.status == "failed":
            self.state_label.setText(f"failed: {result.error_message}")
            show_error(f"fine-tune failed: {result.error_message}")
            return
        if result.status == "cancelled":
            resumable = self.run_dir is not None and (self.run_dir / RESUME_STATE).is_file()
            self.resume_button.setEnabled(resumable)
            self.state_label.setText(f"cancelled; partial run kept in {self.run_dir}"
                                     + (" (Resume continues it)" if resumable else ""))
            show_info("fine-tune cancelled")
            return
        self.state_label.setText(f"finished: {self.run_dir}")
        self.context.runs.append(str(self.run_dir))
        self.context.run_finished.emit(str(self.run_dir))
        self.predict_button.setEnabled(True)
        self._fill_baselines()
        self.show_results(self.run_dir)

    def show_results(self, run_dir: Path) -> None:
        """The run's before/after table, the index baseline's columns and the line naming that index."""
        try:
            evaluation = read_evaluation(run_dir)
        except ErcnnError as exc:
            show_info(str(exc))
            return
        self.results.show_rows(result_rows(evaluation))
        self.index_label.setText(index_note(evaluation))

    def predict_visible(self) -> None:
        """Hand the finished run and the tiles in view to the review dock."""
        if self.run_dir is None:
            return
        self.context.predict_requested.emit(([str(self.run_dir)], self.context.visible_tiles()))

    def handle_close(self, can_cancel: bool = True) -> bool:
        """Closing never waits for a run (napari asks itself while its Activity bar is open)."""
        return True

    def shutdown(self) -> None:
        """The window closes: stop the trainer and forget the viewer."""
        if self.running:
            self.worker.cancel()
        self.progress.close()
        self.run_progress.end()
        self.context.release()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        if self.running:
            self.worker.cancel()
        self.progress.close()
        super().closeEvent(event)


def _selectable() -> Any:
    from qtpy.QtCore import Qt

    return Qt.TextInteractionFlag.TextSelectableByMouse
