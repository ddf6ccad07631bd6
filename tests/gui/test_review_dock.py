"""Review dock without a worker: a prediction folder becomes dated layers; exports are georeferenced."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
import rasterio
from gui_helpers import write_prediction_folder

from ercnn_napari.napari_plugin.label_dock import LabelDock
from ercnn_napari.napari_plugin.prediction_layers import STACK_ROLE
from ercnn_napari.napari_plugin.review_dock import ReviewDock


@pytest.fixture
def docks(make_napari_viewer, small_project):
    viewer = make_napari_viewer()
    label = LabelDock(viewer)
    viewer.window.add_dock_widget(label)
    label.open_project(small_project.root)
    review = ReviewDock(viewer)
    viewer.window.add_dock_widget(review)
    return viewer, label, review


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
    # the slider is labelled with the window dates
    assert "window 0: mid 2017-04-02 (2017-01-01 - 2017-07-02, 40 obs)" in review.labeller.text
    viewer.dims.set_current_step(0, 2)
    assert "window 2: mid 2017-04-22 (2017-01-21 - 2017-07-22" in review.labeller.text
    assert viewer.canvas.overlays.text.text == review.labeller.text
    assert viewer.dims.axis_labels[0] == "window"
    # the threshold only swaps the colormap
    review.threshold.setValue(80)
    assert stack_layer.colormap.name.endswith("0.80")


def test_exports_are_georeferenced(docks, small_project, tmp_path):
    viewer, _label, review = docks
    folder = tmp_path / "pred"
    write_prediction_folder(folder, small_project.grid, [(1, 1)], n_windows=3)
    review.load_predictions(folder)
    stack_path, max_path = review.export_geotiffs(tmp_path / "export")
    with rasterio.open(stack_path) as src:
        assert src.count == 3 and src.crs.to_epsg() == 32631
        assert src.transform.c == 682000.0 + 320.0 and src.transform.f == 5612000.0 - 320.0
        assert src.descriptions[1].startswith("window 1: mid 2017-04-12")
        assert src.tags(2)["start_time"] == "2017-01-11T00:00:00Z"
    with rasterio.open(max_path) as src:
        assert src.count == 1 and src.read(1)[15, 15] == pytest.approx(1.0)
    gif = review.export_animation(tmp_path / "export" / "change.gif")
    frames = iio.imread(gif, index=None)
    assert frames.shape[0] == 3
    # red change where the probability passed the threshold in the last frame
    last = frames[-1]
    h = last.shape[0]
    assert last[int(h * 0.45), int(last.shape[1] * 0.45), 0] > 200
    mp4 = review.export_animation(tmp_path / "export" / "change.mp4")
    assert mp4.stat().st_size > 1000
