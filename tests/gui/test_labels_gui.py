"""Label dock, opened the way napari opens it: unsure painting, the tile line after autosave,
conflicts naming the file that changed, and saves that fail without losing anything."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from ercnn_napari.core.label_geotiff import UNSURE

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import label_fault_harness as harness  # noqa: E402

MOUNT_PROBLEM = harness.can_mount()


@pytest.fixture
def napari_dock(make_napari_viewer, small_project):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("ercnn-napari", "Label change")
    widget.open_project(small_project.root)
    yield widget
    widget.flush()


def _paint(layer, rows, cols, value=1):
    """What a brush stroke does: one history item through data_setitem, which emits the paint event."""
    ys, xs = np.meshgrid(np.arange(*rows), np.arange(*cols), indexing="ij")
    layer.data_setitem((ys.ravel(), xs.ravel()), value)


def test_unsure_is_painted_shown_distinctly_saved_and_counted(napari_dock, small_project, qtbot):
    napari_dock.unsure_button.click()
    layer = napari_dock.labels_layer
    assert layer.selected_label == UNSURE and layer.mode == "paint"
    colors = layer.colormap.color_dict
    assert not np.allclose(colors[UNSURE], colors[1]) and colors[UNSURE][3] > 0, "unsure has its own colour"
    _paint(layer, (40, 44), (70, 74), UNSURE)  # tile (1, 2)
    _paint(layer, (50, 52), (80, 82), 1)
    qtbot.waitUntil(lambda: small_project.labels.exists((1, 2)), timeout=6000)
    values = small_project.labels.read_values((1, 2))
    assert (values == UNSURE).sum() == 16 and (values == 1).sum() == 4
    assert np.load(small_project.labels.npy_path((1, 2))).sum() == 4, "the trainer's .npy: unsure is not change"
    qtbot.waitUntil(lambda: "16 unsure" in napari_dock.status.text(), timeout=3000)


def test_tile_line_updates_after_autosave(napari_dock, small_project, qtbot):
    napari_dock.select_tile((1, 2))
    assert "not labelled" in napari_dock.tile_label.text()
    _paint(napari_dock.labels_layer, (40, 42), (70, 72))
    qtbot.waitUntil(lambda: small_project.labels.exists((1, 2)), timeout=6000)
    qtbot.waitUntil(lambda: "tile 1:2: labelled" in napari_dock.tile_label.text(), timeout=3000)
    napari_dock.labels_layer.undo()  # back to before the first stroke: unlabelled again, and said so
    qtbot.waitUntil(lambda: "not labelled" in napari_dock.tile_label.text(), timeout=6000)
    assert not small_project.labels.exists((1, 2))


def test_conflict_message_names_the_npy_when_the_npy_changed(napari_dock, small_project, qtbot):
    npy = small_project.labels.npy_path((0, 1))
    stat = npy.stat()
    np.save(npy, np.ones((32, 32), np.uint8))  # same size; same time restored below
    os.utime(npy, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    _paint(napari_dock.labels_layer, (0, 2), (32, 34))
    report = napari_dock.flush()
    assert report.conflicts == [(0, 1)]
    message = napari_dock.session.conflicts[(0, 1)]
    assert str(npy) in message and ".tif" not in message
    assert "changed outside" in napari_dock.conflict_label.text()
    assert np.load(npy).sum() == 32 * 32


@pytest.mark.skipif(MOUNT_PROBLEM is not None, reason=f"no real tmpfs: {MOUNT_PROBLEM}")
def test_failed_save_stays_visible_and_closing_does_not_raise(make_napari_viewer, qtbot):
    with harness.tmpfs("4m") as mount:
        project = harness.make_project(mount / "project")  # 2 x 2 tiles, no reference images
        viewer = make_napari_viewer()
        _, widget = viewer.window.add_plugin_dock_widget("ercnn-napari", "Label change")
        widget.open_project(project.root)
        harness.remount(mount, "ro")
        try:
            _paint(widget.labels_layer, (0, 2), (0, 2))  # tile (0, 0)
            _paint(widget.labels_layer, (40, 42), (40, 42))  # tile (1, 1)
            report = widget.flush()
            assert sorted(report.errors) == [(0, 0), (1, 1)]
            assert "not saved: 2 tile(s)" in widget.status.text() and "read-only" in widget.status.text()
            # a close with unsaveable tiles asks (every close path does); this analyst closes anyway
            widget.ask_unsaved = lambda tiles, can_cancel: "discard"
            assert widget.handle_close(can_cancel=False) is True  # flushes first, never raises
            assert widget.session.dirty
        finally:
            harness.remount(mount, "rw")
        report = widget.flush()
        assert report.ok and project.labels.read((1, 1)).sum() == 4
        qtbot.waitUntil(lambda: "all labels saved" in widget.status.text(), timeout=3000)
        widget.shutdown()
        viewer.close()
