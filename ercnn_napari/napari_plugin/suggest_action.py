"""Run ``ercnn-napari suggest`` from the Label dock: models from the project's run list, how many tiles.

The ranking needs TensorFlow (MC dropout or the disagreement of several fine-tunes), so it runs as
the command line in a worker process with a progress bar (tiles scored) and Cancel; when it
finishes, the "What to label next" list and the uncertainty layer are read back from the project
(:class:`.suggest_panel.SuggestPanel`). One ticked model: MC dropout; several: their disagreement.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari.utils.notifications import show_warning
from qtpy.QtWidgets import QSpinBox, QWidget

from ercnn_napari.napari_plugin.baseline_notice import BaselineNotice
from ercnn_napari.napari_plugin.model_list import ModelList, model_entries
from ercnn_napari.napari_plugin.worker_action import WorkerAction
from ercnn_napari.napari_plugin.worker_panel import WorkerPanel


def suggest_args(project_root: str | Path, models: list[str], n: int) -> list[str]:
    args = ["suggest", str(project_root)]
    for model in models:
        args += ["--model", model]
    return args + ["--n", str(n), "--progress", "json"]


class SuggestAction(WorkerAction):
    """The "Suggest tiles" button and the run behind it."""

    label = "Suggest tiles"
    tooltip = "rank the unlabelled tiles with observations by uncertainty (one model) or disagreement (several)"
    stage = "scoring unlabelled tiles"
    what = "suggest"

    def command(self, project: Any) -> tuple[list[str], Path] | None:
        models = self.dock.models.selected_models()
        if not models:
            show_warning("tick at least one model: one for MC-dropout uncertainty, several for their disagreement")
            return None
        return suggest_args(project.root, models, self.dock.n.value()), Path(project.root) / "suggestions"

    def show(self, folder: Path) -> list[Any]:
        self.dock.on_done()
        self.dock.state_label.setText(f"suggestions saved in {folder}")
        return []


class SuggestRunPanel(WorkerPanel):
    """Model list (baseline and the project's runs), number of tiles, the run button."""

    def __init__(self, viewer: Any, on_done: Callable[[], None], parent: QWidget | None = None) -> None:
        super().__init__("Suggest", viewer, "suggest", parent)
        self.setFlat(True)
        self.on_done = on_done
        self.baseline_notice = BaselineNotice(self)
        self.models = ModelList()
        self.models.setMaximumHeight(80)
        self.n = QSpinBox()
        self.n.setRange(1, 500)
        self.n.setValue(10)
        self.form.addRow(self.baseline_notice)
        self.form.addRow("models", self.models)
        self.form.addRow("tiles", self.n)
        self.action = SuggestAction(self)
        self.context.run_finished.connect(lambda _run: self.refresh_models())

    def refresh_models(self) -> None:
        """Baseline and the project's finished runs; ticks survive (first entry ticked otherwise)."""
        self.models.set_entries(model_entries(self.context.project, self.baseline_notice.default_baseline()))
