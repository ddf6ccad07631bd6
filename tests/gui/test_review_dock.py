"""Review dock without a worker: a prediction folder becomes dated layers; exports are georeferenced."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import rasterio
from gui_helpers import open_plugin_dock, write_prediction_folder

from ercnn_napari.napari_plugin.prediction_layers import STACK_ROLE

EXPORT_TIMEOUT_MS = 180_000


@pytest.fixture
def docks(make_napari_viewer, small_project):
    viewer = make_napari_viewer()
    label = open_plugin_dock(viewer, "label")
    viewer.open(str(small_project.root), plugin="ercnn-napari")
    review = open_plugin_dock(viewer, "review")
    return viewer, label, review


def _wait_export(review, qtbot):
    assert review.exporter.busy and not review.export_anim_button.isEnabled()
    qtbot.waitUntil(lambda: not review.exporter.busy, timeout=EXPORT_TIMEOUT_MS)
    assert not review.exporter.error, review.exporter.error
    return review.exporter.result


def test_prediction_folder_becomes_dated_layers(docks, small_project, tmp_path):
    viewer, _label, review = docks
    folder = tmp_path / "pred"
    arrays = write_prediction_folder(folder, small_project.grid, [(0, 1), (1, 2)])
    stack_layer, max_layer = review.load_predictions(folder)
    assert stack_layer.metadata["ercnn_role"] == STACK_ROLE
    assert stack_layer.name == "change run1"
    # mosaic over the bounding box of tiles (0,1)..(1,2): 2 x 2 tiles, stitched in place
    assert stack_layer.data.shape == (4, 64, 64)
    np.testing.assert_array_equal(stack_layer.data[:, 0:32, 0:32], arrays[(0, 1)])
    np.testing.assert_array_equal(stack_layer.data[:, 32:64, 32:64], arrays[(1, 2)])
    assert np.isnan(stack_layer.data[0, 40, 5])  # tile (1, 1) was not predicted
    # placed on the grid: tile (0, 1) starts 320 m east of the grid origin
    assert tuple(stack_layer.translate[-2:]) == (5.0, 325.0)
    np.testing.assert_allclose(max_layer.data[15, 15], 1.0)
    # the slider is labelled with the window dates and the authors' window IDs (1, 6, 11, 16 here)
    assert "window 1: mid 2017-04-02 (2017-01-01 - 2017-07-02, 40 obs)" in review.labeller.text
    assert viewer.dims.axis_labels[0] == "window 1"
    viewer.dims.set_current_step(0, 2)
    assert "window 11: mid 2017-04-22 (2017-01-21 - 2017-07-22" in review.labeller.text
    assert viewer.canvas.overlays.text.text == review.labeller.text
    assert viewer.dims.axis_labels[0] == "window 11"
    assert "window IDs 1, 6, … 16" in review.state_label.text()
    # the threshold only swaps the colormap
    review.threshold.setValue(80)
    assert stack_layer.colormap.name.endswith("0.80")


def test_exports_are_georeferenced(docks, small_project, tmp_path, qtbot):
    viewer, _label, review = docks
    folder = tmp_path / "pred"
    write_prediction_folder(folder, small_project.grid, [(1, 1)], n_windows=3)
    review.load_predictions(folder)
    assert review.export_geotiffs(tmp_path / "export")
    stack_path, max_path = _wait_export(review, qtbot)
    with rasterio.open(stack_path) as src:
        assert src.count == 3 and src.crs.to_epsg() == 32631
        assert src.transform.c == 682000.0 + 320.0 and src.transform.f == 5612000.0 - 320.0
        # band descriptions use the same window IDs as the slider and the windows CSV
        assert src.descriptions[1].startswith("window 6: mid 2017-04-12")
        assert src.tags(2)["start_time"] == "2017-01-11T00:00:00Z"
    with rasterio.open(max_path) as src:
        assert src.count == 1 and src.read(1)[15, 15] == pytest.approx(1.0)
    assert review.export_animation(tmp_path / "export" / "change.gif")
    gif = _wait_export(review, qtbot)
    frames = iio.imread(gif, index=None)
    assert frames.shape[0] == 3
    # red change where the probability passed the threshold in the last frame
    last = frames[-1]
    h = last.shape[0]
    assert last[int(h * 0.45), int(last.shape[1] * 0.45), 0] > 200
    assert review.export_animation(tmp_path / "export" / "change.mp4")
    mp4 = _wait_export(review, qtbot)
    assert mp4.stat().st_size > 1000


def test_animation_export_keeps_the_viewer_responsive_and_fails_as_one_notification(docks, small_project,
                                                                                      tmp_path, qtbot, monkeypatch):
    """The export runs in a thread: the event loop keeps turning while frames render; errors notify once."""
    import time

    from qtpy.QtCore import QTimer

    viewer, _label, review = docks
    folder = tmp_path / "pred"
    write_prediction_folder(folder, small_project.grid, [(0, 0), (0, 1)], n_windows=10)
    review.load_predictions(folder)
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    started = time.monotonic()
    assert review.export_animation(tmp_path / "change.gif")
    assert review.export_progress.isVisible() or not review.isVisible()
    _wait_export(review, qtbot)
    timer.stop()
    took = time.monotonic() - started
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    # the machine may be busy, so allow short stalls; a GUI-thread export would stall for all of it
    assert ticks and max(gaps, default=0) < max(1.5, took / 3), f"event loop stalled {max(gaps):.2f} s of {took:.2f} s"
    # a failure (unwritable folder) is one error notification naming the file, no exception escapes
    shown = []
    monkeypatch.setattr("ercnn_napari.napari_plugin.export_actions.show_error", shown.append)
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    assert review.export_animation(blocker / "change.gif")
    qtbot.waitUntil(lambda: not review.exporter.busy, timeout=EXPORT_TIMEOUT_MS)
    assert len(shown) == 1 and "GIF export failed" in shown[0] and "Traceback" not in shown[0]
    assert review.export_anim_button.isEnabled()


def test_only_installed_animation_formats_are_offered():
    import importlib.util

    from ercnn_napari.napari_plugin.export import animation_formats

    formats = animation_formats()
    assert ".gif" in formats
    assert (".mp4" in formats) == (importlib.util.find_spec("imageio_ffmpeg") is not None)
