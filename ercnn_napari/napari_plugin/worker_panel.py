"""A dock section that runs one ``ercnn-napari`` command through :class:`.worker_action.WorkerAction`.

``WorkerAction`` drives a host with ``context``, ``running``, ``progress``, ``run_progress``,
``cancel_button`` and ``state_label`` (the Review dock is one). The Label dock's sections
("Fetch reference imagery", "What to label next") are not docks of their own, so this group box
gives each of them those parts: a form for the command's fields, the run's stage line and bar, a
state line and a Cancel button. The action's button lands above Cancel.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QFormLayout, QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from ercnn_napari.napari_plugin.context import context_for
from ercnn_napari.napari_plugin.progress_bar import RunProgress, WorkerBar


class WorkerPanel(QGroupBox):
    """A titled form plus the progress, state and Cancel that a :class:`WorkerAction` drives."""

    def __init__(self, title: str, viewer: Any, stage: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.viewer = viewer
        self.context = context_for(viewer)
        self.form = QFormLayout()
        self.progress = WorkerBar(self, stage)
        self.run_progress = RunProgress(self)
        self.state_label = QLabel("")
        self.state_label.setWordWrap(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(self.run_progress)
        layout.addWidget(self.state_label)
        layout.addWidget(self.cancel_button)  # WorkerAction inserts its button just above this

    @property
    def running(self) -> bool:
        """The panel runs nothing itself (its action knows whether its worker runs)."""
        return False
