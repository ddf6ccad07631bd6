"""Label dock's "What to label next": saved suggestions listed, uncertainty layer on the grid, click jumps."""

from __future__ import annotations

import numpy as np

from ercnn_napari.core.suggestions import write_suggestions


def test_suggestions_list_layer_and_jump(make_napari_viewer, small_project):
    grid = small_project.grid
    mosaic = np.full(grid.shape_pixels, np.nan, np.float32)
    mosaic[32:64, 64:96] = 0.3  # tile (1, 2)
    mosaic[0:32, 0:32] = 0.1    # tile (0, 0)
    scores = {(1, 2): 0.3, (0, 0): 0.1, (0, 1): 0.05}
    write_suggestions(small_project.root, [(1, 2), (0, 0), (0, 1)], scores, mosaic, {"method": "disagreement"})
    viewer = make_napari_viewer()
    _w, dock = viewer.window.add_plugin_dock_widget("ercnn-napari", "Label change")
    dock.open_project(small_project.root)
    panel = dock.suggest
    assert [panel.list.item(i).text().split()[2] for i in range(panel.list.count())] == ["1:2", "0:0", "0:1"]
    assert panel.list.item(2).font().strikeOut()      # (0, 1) is labelled already (fixture)
    assert not panel.list.item(0).font().strikeOut()
    layer = viewer.layers["uncertainty"]
    np.testing.assert_array_equal(layer.data, mosaic)
    np.testing.assert_allclose(layer.scale, dock.labels_layer.scale)
    np.testing.assert_allclose(layer.translate, dock.labels_layer.translate)
    panel.list.itemClicked.emit(panel.list.item(0))
    assert dock.context.current_tile == (1, 2)
    assert "1:2" in dock.tile_label.text()
    centre = dock.context.camera.center[-2:]   # viewer.camera is deprecated in napari 0.9
    assert 320 <= centre[0] <= 640 and 640 <= centre[1] <= 960  # the view moved onto tile (1, 2)
