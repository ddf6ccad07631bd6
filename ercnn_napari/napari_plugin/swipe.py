"""A true swipe between the before and after images, and a side-by-side view.

Swipe: a divider the analyst drags across the canvas; left of it the before image shows, right
of it the after image. napari 0.9 clips only 3-D volumes (``experimental_clipping_planes`` does
nothing for a 2-D image), so the after image is cropped instead: a temporary ``after (swipe)``
layer holds the after data from the divider's column to the right edge (a numpy view, or a lazy
crop of each COG level, so no pixels are copied), translated by the cropped width; the full after
layer is hidden underneath meanwhile and restored when the swipe ends. The divider is a one-line
shapes layer; while it is the active layer a drag anywhere on the canvas moves it (panning is off
for that layer only), and the dock's slider does the same.

Side by side uses napari's own grid mode (linked cameras), before and after in two cells.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QGroupBox, QHBoxLayout, QPushButton, QSlider, QWidget

SWIPE_ROLE = "swipe"
DIVIDER_ROLE = "swipe_divider"
ROLE_KEY = "ercnn_role"
#: drags refresh the cropped image at most this often (the divider line itself follows every move)
DRAG_REFRESH_S = 0.05



def viewer_grid(viewer: Any) -> Any:
    """The viewer's grid settings (``viewer.canvas.grid`` since napari 0.9, ``viewer.grid`` before)."""
    canvas = getattr(viewer, "canvas", None)
    return canvas.grid if canvas is not None and hasattr(canvas, "grid") else viewer.grid

class ColumnCrop:
    """A lazy view of an [H, W, C] array-like from column ``c0`` on (for COG levels read on demand)."""

    def __init__(self, base: Any, c0: int) -> None:
        self.base = base
        self.c0 = int(c0)
        self.shape = (base.shape[0], base.shape[1] - self.c0, *base.shape[2:])
        self.dtype = base.dtype
        self.ndim = len(self.shape)
        self.size = int(np.prod(self.shape))

    def __getitem__(self, key: Any) -> Any:
        key = key if isinstance(key, tuple) else (key,)
        if len(key) >= 2:
            cols = key[1]
            if isinstance(cols, slice):
                start, stop, step = cols.indices(self.shape[1])
                cols = slice(start + self.c0, stop + self.c0, step)
            else:
                cols = int(cols) + (self.shape[1] if cols < 0 else 0) + self.c0
            key = (key[0], cols, *key[2:])
        return self.base[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        data = np.asarray(self[:, :])
        return data if dtype is None else data.astype(dtype)


def crop_columns(data: Any, c0: int) -> Any:
    """``data[:, c0:]`` without copying pixels."""
    if isinstance(data, np.ndarray):
        return data[:, c0:]
    return ColumnCrop(data, c0)


class SwipeController:
    """Owns the swipe's two temporary layers; public napari API only."""

    def __init__(self, viewer: Any) -> None:
        self.viewer = viewer
        self.before: Any = None
        self.after: Any = None
        self.clip_layer: Any = None
        self.divider: Any = None
        self.fraction = 0.5
        self._after_was_visible = True
        self._last_refresh = 0.0
        self.viewer.layers.events.removed.connect(self._on_removed)

    # -- state -----------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.clip_layer is not None

    def set_layers(self, before: Any, after: Any) -> None:
        if self.active:
            self.stop()
        self.before, self.after = before, after

    def _levels(self) -> list[Any]:
        return list(self.after.data) if self.after.multiscale else [self.after.data]

    def _edges(self) -> tuple[float, float, float, float]:
        """World (top, left, bottom, right) of the after image's outer pixel edges."""
        half = np.asarray(self.after.scale[-2:]) / 2.0
        lo = np.asarray(self.after.extent.world[0][-2:]) - half
        hi = np.asarray(self.after.extent.world[1][-2:]) + half
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    def _column_step(self) -> int:
        """Crop at multiples of the coarsest level's downsampling, so every level crops at one x."""
        levels = self._levels()
        return max(1, round(levels[0].shape[1] / levels[-1].shape[1]))

    def divider_x(self) -> float:
        """World x of the divider (snapped to where the crop really is)."""
        _top, left, _bottom, _right = self._edges()
        return left + self._crop_column() * float(self.after.scale[-1])

    def _crop_column(self) -> int:
        width = self._levels()[0].shape[1]
        step = self._column_step()
        column = int(round(self.fraction * width / step)) * step
        return int(min(max(column, 0), max(width - step, 0)))

    # -- start / stop ----------------------------------------------------------------------------
    def start(self, fraction: float | None = None) -> None:
        """Show before left and after right of a divider (at ``fraction`` of the image width)."""
        if self.before is None or self.after is None:
            return
        if fraction is not None:
            self.fraction = float(np.clip(fraction, 0.0, 1.0))
        if viewer_grid(self.viewer).enabled:
            viewer_grid(self.viewer).enabled = False
        if self.active:
            self.set_fraction(self.fraction)
            return
        self.before.visible = True
        self._after_was_visible = self.after.visible
        data, translate = self._cropped()
        meta = {ROLE_KEY: SWIPE_ROLE, "ercnn_project": self.after.metadata.get("ercnn_project", "")}
        self.clip_layer = self.viewer.add_image(
            data, name=f"{self.after.name} (swipe)", rgb=self.after.rgb, multiscale=self.after.multiscale,
            scale=self.after.scale, translate=translate, opacity=self.after.opacity,
            contrast_limits=self.after.contrast_limits, metadata=meta)
        self.after.visible = False
        self.after.events.visible.connect(self._after_visibility)
        self.after.events.opacity.connect(self._after_opacity)
        layers = self.viewer.layers
        layers.move(layers.index(self.clip_layer), layers.index(self.after) + 1)
        top, _left, bottom, _right = self._edges()
        x = self.divider_x()
        self.divider = self.viewer.add_shapes(
            [np.array([[top, x], [bottom, x]])], shape_type="line", name="swipe divider",
            edge_color="#ffd400", edge_width=max(2.0, (bottom - top) / 300.0),
            metadata={ROLE_KEY: DIVIDER_ROLE})
        self.divider.mouse_pan = False
        self.divider.mouse_drag_callbacks.append(self._drag)
        self.divider.events.mode.connect(lambda _e: self._keep_pan_off())
        self.viewer.layers.selection.active = self.divider

    def stop(self) -> None:
        """Remove the swipe layers and show the after image again as it was."""
        clip, divider = self.clip_layer, self.divider
        self.clip_layer = self.divider = None
        if self.after is not None and clip is not None:
            self.after.events.visible.disconnect(self._after_visibility)
            self.after.events.opacity.disconnect(self._after_opacity)
        for layer in (divider, clip):
            if layer is not None and layer in self.viewer.layers:
                self.viewer.layers.remove(layer)
        if self.after is not None and clip is not None:
            self.after.visible = self._after_was_visible

    def toggle(self) -> None:
        self.stop() if self.active else self.start()

    def _on_removed(self, event: Any) -> None:
        layer = getattr(event, "value", None)
        if layer is not None and layer in (self.clip_layer, self.divider, self.before, self.after):
            if layer in (self.before, self.after):
                self.stop()
                self.before = self.after = None
            elif self.active:
                self.stop()

    def _after_visibility(self, event: Any = None) -> None:
        """Toggle (T) during a swipe: flip the swipe's after half instead of covering the divider."""
        if self.active and self.after.visible:
            self.after.visible = False
            self.clip_layer.visible = not self.clip_layer.visible

    def _after_opacity(self, event: Any = None) -> None:
        """The fade slider fades the swipe's after half."""
        if self.active:
            self.clip_layer.opacity = self.after.opacity
            self.clip_layer.visible = True

    def _keep_pan_off(self) -> None:
        if self.divider is not None:
            self.divider.mouse_pan = False

    # -- moving ----------------------------------------------------------------------------------
    def _cropped(self) -> tuple[Any, tuple[float, ...]]:
        c0 = self._crop_column()
        levels = self._levels()
        width0 = levels[0].shape[1]
        cropped = [crop_columns(level, c0 * level.shape[1] // width0) for level in levels]
        translate = list(self.after.translate)
        translate[-1] += c0 * float(self.after.scale[-1])
        return (cropped if self.after.multiscale else cropped[0]), tuple(translate)

    def set_fraction(self, fraction: float, refresh_image: bool = True) -> None:
        """Move the divider to ``fraction`` (0 = left edge, 1 = right edge) of the image."""
        self.fraction = float(np.clip(fraction, 0.0, 1.0))
        if not self.active:
            return
        x = self.divider_x()
        top, _left, bottom, _right = self._edges()
        self.divider.data = [np.array([[top, x], [bottom, x]])]
        if refresh_image:
            data, translate = self._cropped()
            self.clip_layer.translate = translate
            self.clip_layer.data = data
            self._last_refresh = time.monotonic()

    def move_to_world_x(self, x: float, refresh_image: bool = True) -> None:
        _top, left, _bottom, right = self._edges()
        self.set_fraction((x - left) / max(right - left, 1e-9), refresh_image)

    def _drag(self, layer: Any, event: Any) -> Any:
        """Mouse drag on the canvas while the divider layer is active: the divider follows."""
        self.move_to_world_x(event.position[-1])
        yield
        while event.type == "mouse_move":
            due = time.monotonic() - self._last_refresh >= DRAG_REFRESH_S
            self.move_to_world_x(event.position[-1], refresh_image=due)
            yield
        self.move_to_world_x(event.position[-1])

    # -- side by side ----------------------------------------------------------------------------
    def side_by_side(self, on: bool) -> None:
        """Before and after in two linked cells of napari's grid (the other layers stay on top of both)."""
        if on and self.before is not None and self.after is not None:
            if self.active:
                self.stop()
            self.before.visible = self.after.visible = True
            layers = self.viewer.layers
            layers.move(layers.index(self.before), 0)
            layers.move(layers.index(self.after), 1)
            viewer_grid(self.viewer).shape = (1, 2)
            viewer_grid(self.viewer).stride = 1
            viewer_grid(self.viewer).enabled = True
        else:
            viewer_grid(self.viewer).enabled = False


class SwipeControls(QGroupBox):
    """Swipe button (W), divider slider and side-by-side switch, for the label dock."""

    def __init__(self, viewer: Any, parent: QWidget | None = None) -> None:
        super().__init__("Swipe / side by side", parent)
        self.controller = SwipeController(viewer)
        self.swipe_button = QPushButton("Swipe (W)")
        self.swipe_button.setCheckable(True)
        self.swipe_button.setToolTip("before left, after right of a divider: drag it on the canvas")
        self.swipe_button.toggled.connect(self._swipe_toggled)
        self.position = QSlider(Qt.Orientation.Horizontal)
        self.position.setRange(0, 1000)
        self.position.setValue(500)
        self.position.setToolTip("where the divider is")
        self.position.valueChanged.connect(lambda v: self.controller.set_fraction(v / 1000.0))
        self.side_button = QPushButton("Side by side")
        self.side_button.setCheckable(True)
        self.side_button.toggled.connect(self._side_toggled)
        layout = QHBoxLayout(self)
        layout.addWidget(self.swipe_button)
        layout.addWidget(self.position, 1)
        layout.addWidget(self.side_button)
        viewer.bind_key("w", lambda _viewer: self.swipe_button.toggle(), overwrite=True)
        self.setEnabled(False)

    def set_layers(self, layers: dict[str, Any]) -> None:
        before, after = layers.get("before"), layers.get("after")
        self.swipe_button.setChecked(False)
        self.side_button.setChecked(False)
        self.controller.set_layers(before, after)
        self.setEnabled(before is not None and after is not None)

    def _swipe_toggled(self, on: bool) -> None:
        if on:
            self.side_button.setChecked(False)
            self.controller.start(self.position.value() / 1000.0)
        else:
            self.controller.stop()

    def _side_toggled(self, on: bool) -> None:
        if on:
            self.swipe_button.setChecked(False)
        self.controller.side_by_side(on)
