"""The Label dock's worker sections: "Fetch reference imagery" and "Suggest tiles" run the command line
in a worker (progress, Cancel) and show the result; docks and project opened the way napari does."""

from __future__ import annotations

import json
import shutil

import numpy as np
from conftest import make_small_project
from gui_helpers import PLUGIN, open_plugin_dock
from test_reference_layers import write_source

from ercnn_napari.core.project import Project
from ercnn_napari.core.suggestions import SUGGESTIONS_FILE, suggestions_dir


def _wait_done(qtbot, panel, timeout: int) -> None:
    qtbot.waitUntil(lambda: not panel.action.running and panel.action.button.isEnabled(), timeout=timeout)


def test_fetch_reference_imagery_from_the_label_dock(make_napari_viewer, tmp_path, qtbot):
    project = make_small_project(tmp_path / "p", with_references=False)
    write_source(tmp_path / "ortho_2016.tif")
    write_source(tmp_path / "ortho.tif", tint=150)  # no year in the name: the year field gives it
    viewer = make_napari_viewer()
    viewer.open(str(project.root), plugin=PLUGIN)
    dock = open_plugin_dock(viewer, "label")
    assert dock.project is not None and not dock.reference_layers
    panel = dock.fetch_reference
    panel.sources["before"].setText(str(tmp_path / "ortho_2016.tif"))
    panel.sources["after"].setText(str(tmp_path / "ortho.tif"))
    panel.years["after"].setValue(2021)
    panel.factor.setValue(2)
    panel.action.button.click()
    assert panel.cancel_button.isEnabled() and not panel.run_progress.isHidden()
    assert panel.action.worker.args[-2:] == ["--progress", "json"] and "--after-year" in panel.action.worker.args
    _wait_done(qtbot, panel, 90_000)
    assert "cached" in panel.state_label.text(), panel.state_label.text()
    assert not panel.cancel_button.isEnabled() and panel.run_progress.isHidden()
    before, after = dock.reference_layers["before"], dock.reference_layers["after"]
    assert (before.name, after.name) == ("before 2016", "after 2021")
    # under the labels, aligned with them, and the dock's toggle and swipe now act on them
    assert viewer.layers.index(before) == 0 and viewer.layers.index(after) == 1
    assert viewer.layers.index(dock.labels_layer) > 1
    np.testing.assert_allclose(np.asarray(after.scale) * 2, dock.labels_layer.scale)
    level = np.asarray(after.data[0] if after.multiscale else after.data)
    assert level.shape[:2] == (128, 192) and np.all(level[..., 2] == 190)
    assert dock.reference.isEnabled() and dock.swipe.isEnabled()
    # showing a (re)fetched cache replaces the layers instead of stacking more
    panel.action.show(project.root / "reference")
    assert sum(1 for layer in viewer.layers if layer.name.startswith(("before", "after"))) == 2


def test_suggest_tiles_from_the_label_dock_with_cancel(make_napari_viewer, worker_project, tmp_path, qtbot):
    root = tmp_path / "project"
    shutil.copytree(worker_project, root)
    project = Project.open(root)
    for tile in ((1, 1), (1, 2)):
        project.labels.delete(tile)
    viewer = make_napari_viewer()
    dock = open_plugin_dock(viewer, "label")
    viewer.open(str(root), plugin=PLUGIN)
    run = dock.suggest.run
    models = [str(root / f"small_model_{seed}.ercnn.h5") for seed in (0, 1)]
    run.models.select_only(models)
    run.n.setValue(1)
    # Cancel: the worker stops, nothing is saved, the button comes back
    run.action.button.click()
    assert run.cancel_button.isEnabled()
    run.cancel_button.click()
    _wait_done(qtbot, run, 60_000)
    assert "cancelled" in run.state_label.text() and not (suggestions_dir(root) / SUGGESTIONS_FILE).exists()
    # a full run: the list and the uncertainty layer appear, among the unlabelled tiles only
    run.action.button.click()
    assert not run.run_progress.isHidden()
    _wait_done(qtbot, run, 400_000)
    assert "suggestions saved" in run.state_label.text(), run.state_label.text()
    document = json.loads((suggestions_dir(root) / SUGGESTIONS_FILE).read_text())
    assert document["method"] == "disagreement" and sorted(document["scores"]) == ["1:1", "1:2"]
    assert dock.suggest.list.count() == 1 and dock.suggest.tiles[0] in {(1, 1), (1, 2)}
    assert "uncertainty" in viewer.layers
