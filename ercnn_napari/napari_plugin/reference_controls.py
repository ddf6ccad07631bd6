"""Before/after controls: toggle which reference image is on top, or fade the after image over it.

Comparing two dates is the analyst's main act when labelling change; a key press (T) flips between
them without moving the eye, and the fade slider works like a swipe in opacity.
"""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QGroupBox, QHBoxLayout, QPushButton, QSlider, QWidget


class ReferenceControls(QGroupBox):
    """Toggle button and fade slider for the ``before``/``after`` image layers."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Reference pair", parent)
        self.layers: dict[str, Any] = {}
        self.toggle_button = QPushButton("Before / after (T)")
        self.toggle_button.clicked.connect(self.toggle)
        self.fade = QSlider(Qt.Orientation.Horizontal)
        self.fade.setRange(0, 100)
        self.fade.setValue(100)
        self.fade.setToolTip("opacity of the after image over the before image")
        self.fade.valueChanged.connect(self._fade_changed)
        layout = QHBoxLayout(self)
        layout.addWidget(self.toggle_button)
        layout.addWidget(self.fade, 1)

    def set_layers(self, layers: dict[str, Any]) -> None:
        self.layers = layers
        self.setEnabled(bool(layers))

    def toggle(self) -> None:
        """Show the after image if hidden, hide it if shown (the before image stays underneath)."""
        after, before = self.layers.get("after"), self.layers.get("before")
        if after is None or before is None:
            return
        before.visible = True
        after.visible = not after.visible
        if after.visible:
            after.opacity = self.fade.value() / 100.0

    def _fade_changed(self, value: int) -> None:
        after, before = self.layers.get("after"), self.layers.get("before")
        if after is None:
            return
        if before is not None:
            before.visible = True
        after.visible = True
        after.opacity = value / 100.0
