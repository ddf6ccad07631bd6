"""A Review-dock button that runs one ``ercnn-napari`` command in a worker and shows its result.

"Map the whole AoI" and "Index baseline" work the same way: build a command line from the dock's
state, run it as a worker process (TensorFlow never enters the viewer), drive the dock's progress
bars and Cancel button from its JSON events, and turn the finished output folder into layers.
Subclasses say only what to run and what to show; the dock needs one line per action.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QPushButton

from ercnn_napari.core.messages import Message, Progress, Started, describe
from ercnn_napari.napari_plugin.worker_process import WorkerProcess, WorkerResult


class WorkerAction:
    """One button of a dock that has ``context``, ``running``, ``progress``, ``run_progress``,
    ``cancel_button`` and ``state_label`` (the Review dock)."""

    label = ""       #: button text
    tooltip = ""
    stage = ""       #: stage shown in the dock's progress bar
    what = ""        #: noun for messages ("mapping", "index baseline")

    def __init__(self, dock: Any) -> None:
        self.dock = dock
        self.worker: WorkerProcess | None = None
        self.out_dir: Path | None = None
        self.button = QPushButton(self.label)
        self.button.setToolTip(self.tooltip)
        self.button.clicked.connect(self.start)
        dock.layout().insertWidget(dock.layout().count() - 1, self.button)  # above the final stretch

    # -- what subclasses define --------------------------------------------------------------------
    def command(self, project: Any) -> tuple[list[str], Path] | None:
        """The CLI arguments and the output folder, or None (after telling the analyst why)."""
        raise NotImplementedError

    def show(self, folder: Path) -> list[Any]:
        """Add the finished folder's layers to the viewer."""
        raise NotImplementedError

    # -- the run -----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.is_running()

    def start(self) -> None:
        project = self.dock.context.project
        if project is None or self.running or self.dock.running:
            return
        planned = self.command(project)
        if planned is None:
            return
        args, self.out_dir = planned
        self.worker = WorkerProcess(args, self.dock)
        self.worker.message.connect(self._on_message)
        self.worker.done.connect(self._on_done)
        self.dock.cancel_button.clicked.connect(self.cancel)
        self.worker.start()
        self.button.setEnabled(False)
        self.dock.cancel_button.setEnabled(True)
        self.dock.run_progress.begin(self.stage)
        self.dock.state_label.setText(f"{self.what}…")

    def cancel(self) -> None:
        if self.running:
            self.worker.cancel()

    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, Started):
            self.dock.progress.open(msg.total or None)
            if msg.total:
                self.dock.run_progress.set_count(0, msg.total)
        elif isinstance(msg, Progress):
            self.dock.progress.set_done(msg.done)
            self.dock.run_progress.set_count(msg.done, msg.total, msg.unit)
        text = describe(msg)
        if text:
            self.dock.state_label.setText(text)

    def _on_done(self, result: WorkerResult) -> None:
        self.dock.progress.close()
        self.dock.run_progress.end()
        self.button.setEnabled(True)
        self.dock.cancel_button.setEnabled(False)
        self.dock.cancel_button.clicked.disconnect(self.cancel)
        if result.status == "failed":
            self.dock.state_label.setText(f"{self.what} failed: {result.error_message}")
            show_error(f"{self.what} failed: {result.error_message}")
        elif result.status == "cancelled":
            self.dock.state_label.setText(f"{self.what} cancelled")
            show_info(f"{self.what} cancelled")
        else:
            try:
                self.show(self.out_dir)
            except Exception as exc:  # a broken output is one message, never a traceback in the viewer
                show_error(f"{self.what}: {exc}")
