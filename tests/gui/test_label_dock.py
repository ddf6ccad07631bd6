"""Label dock: layers in place, every stroke autosaved to both files, outside edits, close guard."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import PLUGIN, open_plugin_dock

from ercnn_napari.napari_plugin.layers import tile_box


@pytest.fixture
def dock(make_napari_viewer, small_project):
    """The Label dock as napari's Plugins menu opens it, then the project through File › Open."""
    viewer = make_napari_viewer()
    widget = open_plugin_dock(viewer, "label")
    viewer.open(str(small_project.root), plugin=PLUGIN)
    assert widget.project is not None
    yield widget
    widget.flush()


def _paint_square(layer, rows, cols):
    """What a brush stroke does: one history item through data_setitem, which emits the paint event."""
    ys, xs = np.meshgrid(np.arange(*rows), np.arange(*cols), indexing="ij")
    layer.data_setitem((ys.ravel(), xs.ravel()), 1)


def test_layers_are_geo_aligned(dock, small_project):
    names = [layer.name for layer in dock.viewer.layers]
    assert names == ["before 2016", "after 2020", "tiles", "labels Liege"]
    labels = dock.labels_layer
    assert labels.data.shape == (64, 96)
    assert labels.metadata["crs"] == "EPSG:32631"
    assert tuple(labels.scale) == (10.0, 10.0)
    # pixel (0, 0) centre sits 5 m into the grid; reference pixel 0 centre at half its own pixel
    assert tuple(labels.translate) == (5.0, 5.0)
    after = dock.reference_layers["after"]
    factor = after.metadata["factor"]
    assert after.data.shape[:2] == (64 * factor, 96 * factor)
    np.testing.assert_allclose(after.scale, (10.0 / factor, 10.0 / factor))
    # the outer pixel edges of labels and reference images coincide (both cover the grid exactly)
    def edges(layer):
        half = np.asarray(layer.scale[-2:]) / 2
        return layer.extent.world[0][-2:] - half, layer.extent.world[1][-2:] + half

    for mine, theirs in zip(edges(labels), edges(after), strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-6)
    np.testing.assert_allclose(edges(labels)[0], (0.0, 0.0), atol=1e-9)
    np.testing.assert_allclose(edges(labels)[1], (640.0, 960.0), atol=1e-9)
    # the labelled tile from disk is in the mosaic
    assert labels.data[8:16, 32 + 8:32 + 16].all()


def test_stroke_reaches_disk_through_autosave(dock, small_project, qtbot):
    store = small_project.labels
    assert not store.exists((1, 2))
    _paint_square(dock.labels_layer, (40, 44), (70, 74))  # tile (1, 2)
    assert dock.unsaved_tiles == [(1, 2)]
    qtbot.waitUntil(lambda: "unsaved" in dock.status.text(), timeout=900)  # dirty shown before the save
    qtbot.waitUntil(lambda: store.exists((1, 2)), timeout=5000)
    label = store.read((1, 2))
    assert label[8:12, 6:10].all() and label.sum() == 16
    # both files exist (npy for the trainer, GeoTIFF for GIS)
    assert store.npy_path((1, 2)).is_file() and store.tif_path((1, 2)).is_file()
    qtbot.waitUntil(lambda: "saved" in dock.status.text() and "unsaved" not in dock.status.text(), timeout=3000)


def test_undo_is_saved_too(dock, small_project, qtbot):
    """Undo back to before the first stroke: the tile is unlabelled again, not "labelled, no change"."""
    _paint_square(dock.labels_layer, (0, 4), (0, 4))
    dock.flush()
    assert small_project.labels.read((0, 0)).sum() == 16
    assert (0, 0) in dock.session.labelled
    dock.labels_layer.undo()  # emits no paint event: the poll must notice
    qtbot.waitUntil(lambda: not small_project.labels.exists((0, 0)), timeout=6000)
    assert (0, 0) not in dock.session.labelled and not dock.session.dirty
    # a tile that WAS labelled keeps its label file when a stroke on it is undone
    _paint_square(dock.labels_layer, (0, 2), (32, 34))  # tile (0, 1), labelled on disk
    dock.flush()
    dock.labels_layer.undo()
    qtbot.waitUntil(lambda: small_project.labels.read((0, 1)).sum() == 64, timeout=6000)
    assert small_project.labels.exists((0, 1))


def test_outside_edit_is_reported_not_overwritten(dock, small_project, qtbot):
    store = small_project.labels
    outside = np.ones((32, 32), np.uint8)
    store.write((0, 1), outside)  # someone else rewrites the tile
    _paint_square(dock.labels_layer, (0, 2), (32, 34))  # and the analyst paints the same tile
    report = dock.flush()
    assert report.conflicts == [(0, 1)]
    assert store.read((0, 1)).sum() == 32 * 32, "the outside edit must not be overwritten"
    assert "changed outside" in dock.conflict_label.text()
    dock.resolve_conflicts(keep_mine=False)
    assert dock.labels_layer.data[0:32, 32:64].sum() == 32 * 32
    assert not dock.session.conflicts


def test_outside_edit_of_untouched_tile_is_reloaded(dock, small_project, qtbot):
    label = np.zeros((32, 32), np.uint8)
    label[0, 0] = 1
    small_project.labels.write((1, 0), label)
    qtbot.waitUntil(lambda: dock.labels_layer.data[32, 0] == 1, timeout=6000)
    assert (1, 0) in dock.session.labelled


def test_close_guard(dock, small_project, monkeypatch):
    """A tile that saves is saved without a question; one in conflict asks (every close path:
    tests/gui/test_plugin_docks.py)."""
    _paint_square(dock.labels_layer, (0, 3), (64, 67))  # tile (0, 2)
    monkeypatch.setattr(dock, "ask_unsaved", lambda tiles, can_cancel: pytest.fail("nothing to ask"))
    assert dock.handle_close(can_cancel=True) is True
    assert small_project.labels.read((0, 2)).sum() == 9
    small_project.labels.write((0, 2), np.ones((32, 32), np.uint8))  # edited outside meanwhile
    _paint_square(dock.labels_layer, (4, 6), (64, 66))
    dock.flush()
    monkeypatch.setattr(dock, "ask_unsaved", lambda tiles, can_cancel: "cancel")
    assert dock.handle_close(can_cancel=True) is False
    assert small_project.labels.read((0, 2)).sum() == 32 * 32
    monkeypatch.setattr(dock, "ask_unsaved", lambda tiles, can_cancel: "save")
    assert dock.handle_close(can_cancel=True) is True
    assert small_project.labels.read((0, 2)).sum() == 9 + 4


def test_programmatic_close_flushes(make_napari_viewer, small_project):
    viewer = make_napari_viewer()
    widget = open_plugin_dock(viewer, "label")
    widget.open_project(small_project.root)
    _paint_square(widget.labels_layer, (33, 35), (1, 3))  # tile (1, 0)
    viewer.close()
    assert small_project.labels.read((1, 0)).sum() == 4


def test_jump_and_split_editor(dock, small_project):
    dock.tile_edit.setText("1:2")
    dock._jump_typed()
    assert dock.context.current_tile == (1, 2)
    top, left, bottom, right = tile_box(small_project.grid, (1, 2))
    np.testing.assert_allclose(dock.context.camera.center[-2:], ((top + bottom) / 2, (left + right) / 2))
    dock.splits.assign("val")
    split = small_project.split("V1")
    assert split.val == [(1, 2)]
    dock.tile_edit.setText("0:0")
    dock._jump_typed()
    dock.splits.assign("test")
    assert small_project.split("V1").test == [(0, 0)]
    roles = dict(zip(dock.tiles_layer.features["tile"], dock.tiles_layer.features["role"], strict=True))
    assert roles["1:2"] == "val" and roles["0:0"] == "test"


def test_fine_polygons_burn_into_labels(dock, small_project, qtbot):
    tools = dock.polygons
    tools.start_drawing()
    layer = tools.fine_layer()
    # a 30 m x 30 m square inside tile (1, 1) in display metres: rows 330..360, cols 330..360
    layer.add_polygons([np.array([[330.0, 330.0], [330.0, 360.0], [360.0, 360.0], [360.0, 330.0]])])
    count = tools.burn_drawn()
    assert count == 9
    assert dock.labels_layer.data[33:36, 33:36].all()
    dock.flush()
    assert small_project.labels.read((1, 1)).sum() == 9


def test_project_opened_through_the_reader_is_adopted(make_napari_viewer, small_project, qtbot):
    viewer = make_napari_viewer()
    widget = open_plugin_dock(viewer, "label")
    viewer.open(str(small_project.root), plugin=PLUGIN)
    assert widget.project is not None and widget.labels_layer is not None
    assert [layer.name for layer in viewer.layers].count("labels Liege") == 1
    _paint_square(widget.labels_layer, (0, 2), (0, 2))
    qtbot.waitUntil(lambda: small_project.labels.exists((0, 0)), timeout=5000)


def test_import_geojson_polygons_in_lonlat(dock, small_project, tmp_path):
    import json

    from rasterio.warp import transform

    # a 25 m square in tile (1, 0), written in lon/lat as GeoJSON (RFC 7946) expects
    left, top = 682000.0 + 100.0, 5612000.0 - 320.0 - 100.0
    xs = [left, left + 25.0, left + 25.0, left, left]
    ys = [top, top, top - 25.0, top - 25.0, top]
    lons, lats = transform("EPSG:32631", "EPSG:4326", xs, ys)
    feature = {"type": "Feature", "properties": {},
               "geometry": {"type": "Polygon", "coordinates": [list(zip(lons, lats, strict=True))]}}
    path = tmp_path / "change.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    added = dock.polygons.import_file(str(path))
    assert added >= 4  # pixel centres inside a 25 m square: 2 x 2 or more at 10 m
    ys_px, xs_px = np.nonzero(dock.labels_layer.data[32:64, 0:32])
    assert ys_px.min() >= 9 and xs_px.min() >= 9 and ys_px.max() <= 13 and xs_px.max() <= 13
    dock.flush()
    assert small_project.labels.read((1, 0)).sum() == added


def test_fidelity_note_shows_what_differs_from_the_published_weights(dock, small_project):
    import json

    assert not dock.fidelity.isVisible() and dock.fidelity.text() == ""
    small_project.set_observations({"kind": "stacked", "path": "observations"})
    folder = small_project.root / "observations"
    folder.mkdir(exist_ok=True)
    from ercnn_napari.core.fidelity import build_record

    scenes = [{"stream": "S2", "product": "S2_L2A", "units": "reflectance", "source": "a.tif"},
              {"stream": "S1_ascending", "product": "S1_GRD_GAMMA0_ELLIPSOID", "units": "db", "source": "b.tif"},
              {"stream": "S1_descending", "product": "S1_GRD_GAMMA0_ELLIPSOID", "units": "linear", "source": "c.tif"}]
    (folder / "fidelity.json").write_text(json.dumps(build_record(scenes)))
    dock.open_project(small_project.root)
    assert not dock.fidelity.isHidden()
    assert "S2 holds S2_L2A" in dock.fidelity.text() and "no B10" in dock.fidelity.text()
    assert "S1_ascending" not in dock.fidelity.text()
