"""Render docs/screenshots/swipe.png and pixel_story.png from a project (run under a display / xvfb-run).

    python docs/screenshots/make_swipe_and_pixel.py PROJECT PREDICTION_DIR --tile 2:6 --pixel 8,3

The viewer side only (no TensorFlow): the prediction folder is one ``ercnn-napari predict`` made.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from ercnn_napari.core.tiles import parse_tile_id
from ercnn_napari.napari_plugin.prediction_layers import prediction_layer_data
from ercnn_napari.napari_plugin.predictions import load_prediction_mosaic


def settle(n: int = 20) -> None:
    for _ in range(n):
        QApplication.processEvents()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("project")
    parser.add_argument("predictions")
    parser.add_argument("--tile", default="2:6")
    parser.add_argument("--pixel", default="8,3")
    parser.add_argument("--window", type=int, default=12)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent))
    args = parser.parse_args()
    tile = parse_tile_id(args.tile)
    row, col = (int(v) for v in args.pixel.split(","))
    out = Path(args.out)

    viewer = napari.Viewer(title="ercnn-napari", show=True)
    viewer.window._qt_window.resize(1500, 950)
    _w, label = viewer.window.add_plugin_dock_widget("ercnn-napari", "Label change")
    label.open_project(args.project)
    grid = label.project.grid
    mosaic = load_prediction_mosaic(Path(args.predictions), grid.tile_size)
    for data, kwargs, _kind in prediction_layer_data(mosaic, grid, 0.5):
        kwargs["visible"] = False
        viewer.add_image(data, **kwargs)
    settle()
    label.context.jump_to(tile, tiles_across=2.2)
    label.select_tile(tile)
    settle()
    swipe = label.swipe.controller
    _top, left, _bottom, right = swipe._edges() if swipe.after is not None else (0, 0, 0, 1)
    centre_x = viewer.camera.center[-1]
    label.swipe.position.setValue(int(1000 * (centre_x - left) / (right - left)))
    label.swipe.swipe_button.setChecked(True)
    settle(30)
    viewer.window.screenshot(path=str(out / "swipe.png"), canvas_only=False, flash=False)
    label.swipe.swipe_button.setChecked(False)

    _w, pixel = viewer.window.add_plugin_dock_widget("ercnn-napari", "Pixel story")
    for layer in viewer.layers:
        if layer.metadata.get("ercnn_role") == "prediction":
            layer.visible = True
    viewer.dims.set_current_step(0, args.window)
    import time

    pixel.show_pixel(tile, row, col)
    deadline = time.monotonic() + 120
    while pixel.series is None and time.monotonic() < deadline:
        settle(5)
        time.sleep(0.05)
    settle(30)
    pixel.setFixedSize(1000, 640)
    settle(30)
    pixel.grab().save(str(out / "pixel_story.png"))
    print("written", out / "swipe.png", out / "pixel_story.png")
    viewer.close()


if __name__ == "__main__":
    main()
