"""A small note in a dock when a project's observations differ from what the published weights saw.

Ingest records per stream what the data is (``observations/fidelity.json``); an L2A or RTC
stream is usable for fine-tuning but is not what the network was trained on, and an analyst
should see that where they work, not only in ``info``. Hidden when there is nothing to say.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QLabel, QWidget

from ercnn_napari.core.fidelity import project_fidelity_warnings


class FidelityNote(QLabel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.setObjectName("ercnn_fidelity_warning")
        self.setWordWrap(True)
        self.setToolTip("from observations/fidelity.json, written by 'ercnn-napari ingest'")
        self.setVisible(False)

    def set_project(self, project: Any) -> None:
        """Show the project's fidelity warnings (hidden when there are none)."""
        warnings = project_fidelity_warnings(project)
        self.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.setVisible(bool(warnings))
