"""The default baseline for the docks, and a loud red line when the environment asked for another.

Both the Fine-tune and the Review dock list the default baseline; a typo in
``ERCNN_PUBLISHED_WEIGHTS`` used to fall back silently to the weak demo baseline. The check lives
in the core (:func:`ercnn_napari.core.model_files.published_weights_problem`), shared with the
command line; this label is how the docks say it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from napari.utils.notifications import show_warning
from qtpy.QtWidgets import QLabel, QWidget

from ercnn_napari.core.errors import ErcnnError


class BaselineNotice(QLabel):
    """Hidden unless ``ERCNN_PUBLISHED_WEIGHTS`` names no file; then it names the path, in red."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.setWordWrap(True)
        self.setStyleSheet("color: #ff5050; font-weight: bold")
        self.setVisible(False)

    def default_baseline(self) -> Path | None:
        """The default baseline (None if there is none), updating the notice on the way."""
        from ercnn_napari.core.model_files import BaselineWarning, default_baseline, published_weights_problem

        problem = published_weights_problem()
        text = f"⚠ {problem}" if problem else ""
        if problem and self.text() != text:  # notify once per new problem, the line stays
            show_warning(problem)
        self.setText(text)
        self.setVisible(bool(problem))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", BaselineWarning)  # shown by this label instead
                return default_baseline()
        except ErcnnError as exc:
            show_warning(str(exc))
            return None
