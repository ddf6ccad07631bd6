"""Pixel story dock: a click on the canvas -> the pixel's series (read TF-free off the GUI thread),
its change probability per window with the slider's window highlighted, and the answer key's events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from gui_helpers import DAY, T0, write_prediction_folder
from qtpy.QtCore import QPoint, Qt
from qtpy.QtTest import QTest

from ercnn_napari.napari_plugin.first_frame import canvas_of
from ercnn_napari.napari_plugin.prediction_layers import prediction_layer_data
from ercnn_napari.napari_plugin.predictions import load_prediction_mosaic

TILE, ROW, COL = (0, 1), 5, 6
N_STEPS = 30


def _write_stacked_in_a_worker(path):
    """The stacked file written by TensorFlow itself, in a process of its own (never in the viewer's)."""
    code = textwrap.dedent(f"""
        import numpy as np
        from ercnn_napari.ml.data.tfrecords import write_stacked
        rng = np.random.default_rng(4)
        n = {N_STEPS}
        stamps = {T0} + np.arange(n) * 40 * {DAY}
        s1a = rng.uniform(0.01, 0.3, (n, 32, 32, 2)).astype(np.float32)
        s1d = rng.uniform(0.01, 0.3, (n, 32, 32, 2)).astype(np.float32)
        s2 = rng.uniform(0.02, 0.5, (n, 32, 32, 13)).astype(np.float32)
        s2[7, {ROW}, {COL}] = s2[6, {ROW}, {COL}]   # a cloud over the pixel at step 7
        s2[12, {ROW}, {COL}] = s2[11, {ROW}, {COL}]  # and at step 12
        write_stacked(r"{path}", stamps, s1a, s1d, s2)
        np.save(r"{path}.s2.npy", s2[:, {ROW}, {COL}])
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return np.load(f"{path}.s2.npy")


@pytest.fixture
def story(make_napari_viewer, small_project, tmp_path):
    obs = small_project.root / "observations"
    obs.mkdir()
    s2 = _write_stacked_in_a_worker(obs / "0_1.tfrecords")
    small_project.set_observations({"kind": "stacked", "path": "observations"})
    grid = small_project.grid
    x_mid = grid.origin_x + (TILE[1] * 32 + COL + 0.5) * 10.0
    y_mid = grid.origin_y - (TILE[0] * 32 + ROW + 0.5) * 10.0
    event = {"id": 1, "kind": "construction", "bounds": [x_mid - 20, y_mid - 20, x_mid + 20, y_mid + 20],
             "tiles": ["0:1"], "phases": [{"name": "start", "time": T0 + 300 * DAY},
                                          {"name": "end", "time": T0 + 500 * DAY}]}
    (small_project.root / "answer_key").mkdir()
    (small_project.root / "answer_key" / "sample.json").write_text(json.dumps({"events": [event]}))
    probs = write_prediction_folder(tmp_path / "pred", grid, [TILE, (1, 1)], n_windows=4)
    viewer = make_napari_viewer(show=True)
    _w, label_dock = viewer.window.add_plugin_dock_widget("ercnn-napari", "Label change")
    label_dock.open_project(small_project.root)
    mosaic = load_prediction_mosaic(tmp_path / "pred", 32)
    for data, kwargs, _kind in prediction_layer_data(mosaic, grid, 0.5):
        viewer.add_image(data, **kwargs)
    _w, dock = viewer.window.add_plugin_dock_widget("ercnn-napari", "Pixel story")
    return dock, s2, probs[TILE]


def test_a_click_tells_the_pixels_story(story, qtbot):
    dock, s2, probs = story
    viewer = dock.viewer
    viewer.layers.selection.active = viewer.layers["tiles"]
    viewer.layers["tiles"].mode = "pan_zoom"
    viewer.reset_view()
    qtbot.wait(50)
    # click (press + release, no drag) on the pixel's centre through the real canvas
    canvas = canvas_of(dock.window())  # through Qt, not napari's private attributes
    world = np.array([(TILE[0] * 32 + ROW + 0.5) * 10.0, (TILE[1] * 32 + COL + 0.5) * 10.0])
    camera = dock.context.camera
    centre = np.asarray(camera.center[-2:])
    screen = (world - centre) * camera.zoom + np.array([canvas.height(), canvas.width()]) / 2.0
    point = QPoint(int(screen[1]), int(screen[0]))
    QTest.mouseClick(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point)
    qtbot.waitUntil(lambda: dock.pixel is not None, timeout=3000)
    qtbot.waitUntil(lambda: dock.series is not None, timeout=20000)
    assert dock.pixel == (TILE, ROW, COL)
    series = dock.series
    assert len(series.timestamps) == N_STEPS
    np.testing.assert_array_equal(series.streams["S2"].values, s2)
    assert np.flatnonzero(series.streams["S2"].masked).tolist() == [7, 12]
    assert "2 cloud-masked" in dock.info.text()
    # the plot holds the curves: 4 S1 lines (+ markers), NDVI, the chosen bands, the masked crosses
    names = [item.name() for item in dock.plot.s2.listDataItems()]
    assert names == ["NDVI", "B04", "B08", "cloud-masked"]
    crosses = dock.plot.s2.listDataItems()[-1].getData()
    np.testing.assert_array_equal(crosses[0], series.timestamps[[7, 12]])
    # probability per window = the prediction stack at this pixel; the slider's window is highlighted
    np.testing.assert_allclose(dock.plot.probabilities, probs[:, ROW, COL], rtol=1e-6)
    viewer.dims.set_current_step(0, 2)
    start, end = dock.plot.highlight.getRegion()
    assert dock.plot.highlight.isVisible() and start == pytest.approx(dock.plot.windows[2][0])
    assert end == pytest.approx(dock.plot.windows[2][1])
    # the answer key's event at this pixel: two dated phases, solid
    assert [(t, here) for t, _label, here in dock.answer_events()] == [(T0 + 300 * DAY, True), (T0 + 500 * DAY, True)]
    assert len(dock.plot.event_lines) == 2 * 3
    # a tile without observations says so instead of failing
    dock.show_pixel((1, 2), 0, 0)
    assert "no observations" in dock.info.text()
    # ticking a band redraws with it
    dock.bands.item(11).setCheckState(Qt.CheckState.Checked)  # B11
    dock.series = series
    dock._redraw_series()
    assert [item.name() for item in dock.plot.s2.listDataItems()] == ["NDVI", "B04", "B08", "B11", "cloud-masked"]
