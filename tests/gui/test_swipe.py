"""The true swipe: before left of a dragged divider, after right of it; side by side; back to normal."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import QPoint, Qt
from qtpy.QtTest import QTest

from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.project import Project
from ercnn_napari.napari_plugin.first_frame import canvas_of
from ercnn_napari.napari_plugin.swipe import viewer_grid

BLUE, RED = (0, 0, 255), (255, 0, 0)


@pytest.fixture
def two_colour_project(tmp_path):
    """Before all blue, after all red: what the canvas shows tells which image is where."""
    grid = TileGrid("EPSG:32631", 682000.0, 5612000.0, 10.0, 10.0, 2, 3)
    project = Project.create(tmp_path / "p", "Liege", grid)
    for tile in grid.tiles():
        project.write_reference_image(tile, 2016, np.tile(np.uint8(BLUE), (64, 64, 1)))
        project.write_reference_image(tile, 2021, np.tile(np.uint8(RED), (64, 64, 1)))
    return project


@pytest.fixture
def dock(make_napari_viewer, two_colour_project):
    viewer = make_napari_viewer(show=True)
    _widget, dock = viewer.window.add_plugin_dock_widget("ercnn-napari", "Label change")
    dock.open_project(two_colour_project.root)
    assert dock.wait_for_references(60)   # built in a thread after the first frame
    viewer.layers[f"labels {two_colour_project.site}"].visible = False
    viewer.layers["tiles"].visible = False
    return dock


def _screen_x(dock, world_x):
    """Canvas pixel column of a world x (napari's camera: centre and zoom, screen px per world unit)."""
    camera = dock.context.camera
    width = canvas_of(dock.window()).width()
    return (world_x - camera.center[-1]) * camera.zoom + width / 2.0


def _colours_across(viewer):
    shot = viewer.screenshot(canvas_only=True, flash=False)
    return shot[shot.shape[0] // 2, :, :3].astype(int)


def test_swipe_shows_before_left_and_after_right(dock, qtbot):
    viewer = dock.viewer
    swipe = dock.swipe.controller
    after = dock.reference_layers["after"]
    dock.swipe.position.setValue(300)
    dock.swipe.swipe_button.click()
    assert swipe.active and not after.visible and dock.reference_layers["before"].visible
    clip = swipe.clip_layer
    c0 = swipe._crop_column()
    assert c0 == round(0.3 * after.data.shape[1])
    np.testing.assert_array_equal(clip.data, after.data[:, c0:])
    assert np.shares_memory(clip.data, after.data), "the crop must be a view, not a copy"
    viewer.reset_view()
    qtbot.wait(50)
    row = _colours_across(viewer)
    x_div = _screen_x(dock, swipe.divider_x())
    left_edge, right_edge = _screen_x(dock, 0.0), _screen_x(dock, 960.0)
    blue = [c for c in range(int(left_edge) + 3, int(x_div) - 8)]
    red = [c for c in range(int(x_div) + 8, int(right_edge) - 3)]
    assert len(blue) > 50 and len(red) > 50
    assert np.all(row[blue] == BLUE), "left of the divider must show the before image"
    assert np.all(row[red] == RED), "right of the divider must show the after image"

    # drag the divider with the mouse (the divider layer is active): it follows to 75 % of the width
    canvas = canvas_of(dock.window())
    y = canvas.height() // 2
    target = _screen_x(dock, 0.75 * 960.0)
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(int(x_div), y))
    QTest.mouseMove(canvas, QPoint(int((x_div + target) / 2), y))
    QTest.mouseMove(canvas, QPoint(int(target), y))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(int(target), y))
    qtbot.waitUntil(lambda: abs(swipe.fraction - 0.75) < 0.02, timeout=3000)
    np.testing.assert_array_equal(swipe.clip_layer.data, after.data[:, swipe._crop_column():])
    qtbot.wait(50)
    row = _colours_across(viewer)
    x_div = _screen_x(dock, swipe.divider_x())
    assert np.all(row[int(x_div) - 30:int(x_div) - 8] == BLUE)
    assert np.all(row[int(x_div) + 8:int(x_div) + 30] == RED)

    # T (toggle) flips the after half off and on; the fade fades it; the divider stays
    dock.reference.toggle()
    assert not after.visible and not swipe.clip_layer.visible
    dock.reference.toggle()
    assert not after.visible and swipe.clip_layer.visible
    dock.reference.fade.setValue(40)
    assert swipe.clip_layer.opacity == pytest.approx(0.4) and not after.visible

    # side by side replaces the swipe; switching it off leaves the after image as it was
    dock.swipe.side_button.click()
    assert viewer_grid(viewer).enabled and not swipe.active and after.visible
    assert [layer.name for layer in viewer.layers].count("swipe divider") == 0
    dock.swipe.side_button.click()
    assert not viewer_grid(viewer).enabled
    # W toggles the swipe; stopping restores the layers
    dock.swipe.swipe_button.toggle()
    assert swipe.active
    dock.swipe.swipe_button.toggle()
    assert not swipe.active and after.visible
    assert all(layer.metadata.get("ercnn_role") not in ("swipe", "swipe_divider") for layer in viewer.layers)
