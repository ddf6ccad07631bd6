"""The index baseline's GeoTIFFs as Review-dock layers, in a real viewer (TF-free process).

The baseline folder is written by the baseline's own writer (``baseline.run.write_layers``) from
score maps made here, so the test checks the whole path from scores to what the analyst sees:
the fitted cut lands at 0.5 of the displayed layer, tiles line up with the grid, the index
chosen on training tiles is the visible one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import make_small_project  # tests/gui/conftest.py

from ercnn_napari.baseline.run import write_layers
from ercnn_napari.core.errors import ErcnnError
from ercnn_napari.napari_plugin.index_baseline_layers import index_baseline_layer_data


def test_layers_show_the_fitted_cut(make_napari_viewer, tmp_path: Path) -> None:
    project = make_small_project(tmp_path / "p", with_references=False)
    scores = {}
    for tile in ((0, 0), (1, 2)):
        maps = {name: np.zeros((32, 32), np.float32) for name in ("ndvi", "ndbi", "sar")}
        maps["ndvi"][5:9, 5:9] = 0.4                   # above the ndvi cut of 0.2
        maps["ndvi"][20:22, 20:22] = 0.1               # below it
        scores[tile] = maps
    fitted = {"indices": {"ndvi": {"threshold": 0.2, "train_f1": 0.8}, "ndbi": {"threshold": 0.1, "train_f1": 0.5},
                          "sar": {"threshold": float("nan"), "train_f1": float("nan")}}, "best": "ndvi"}
    out = tmp_path / "baseline"
    write_layers(out, project, scores, fitted)
    layers = index_baseline_layer_data(out, project.grid)
    names = [kwargs["name"] for _, kwargs, _ in layers]
    assert names == ["index baseline ndbi", "index baseline ndvi"]      # sar: nothing fitted, not shown
    data, kwargs, kind = layers[1]
    assert kind == "image" and kwargs["visible"] and not layers[0][1]["visible"]
    assert data.shape == (64, 96)
    tile = data[32:64, 64:96]                                            # tile 1:2
    assert np.all(tile[5:9, 5:9] == 1.0) and np.all(tile[20:22, 20:22] == 0.25)
    assert np.all(data[32:64, 0:32] == 0.0)                              # a tile never computed
    viewer = make_napari_viewer()
    layer = viewer.add_image(data, **kwargs)
    assert layer.scale[0] == pytest.approx(10.0) and layer.metadata["threshold"] == 0.2


def test_a_folder_without_baseline_is_one_clear_error(tmp_path: Path) -> None:
    project = make_small_project(tmp_path / "p", with_references=False)
    with pytest.raises(ErcnnError, match="baseline.json"):
        index_baseline_layer_data(tmp_path, project.grid)


def _project_with_two_years(root: Path):
    """The small 2 x 3 project with stacked observations over the whole period, written TF-free:
    bright new roofs appear in the last year where tiles are labelled."""
    from ercnn_napari.core.splits import Split
    from ercnn_napari.ingest.tfrecord_writer import write_stacked_records

    project = make_small_project(root, with_references=False)
    project.set_observations({"kind": "stacked", "path": "observations"})
    rng = np.random.default_rng(3)
    start = 1483228800.0                                  # 2017-01-01
    stamps = start + np.arange(0, 1460, 12) * 86400.0     # four years, every 12 days
    late = stamps > start + 1000 * 86400.0
    for tile in project.grid.tiles():
        label = np.zeros((32, 32), np.uint8)
        label[6:14, 4 + 6 * tile[1]:12 + 6 * tile[1]] = 1
        project.labels.write(tile, label)
        records = []
        for when, is_late in zip(stamps, late, strict=True):
            s1 = rng.normal(0.05, 0.005, (32, 32, 2)).astype(np.float32)
            s2 = rng.uniform(0.04, 0.08, (32, 32, 13)).astype(np.float32)
            s2[..., 7] += 0.3                               # vegetation: bright NIR
            if is_late:
                s2[label == 1] = 0.3                        # a roof: flat and bright, NDVI ~ 0
            records.append((float(when), s1, s1.copy(), s2))
        write_stacked_records(project.root / "observations" / f"{tile[0]}_{tile[1]}.tfrecords", records)
    project.write_splits({"V1": Split("V1", [(0, 0), (0, 1), (0, 2), (1, 0)], [(1, 1)], [(1, 2)])})
    return project


def test_review_dock_runs_the_index_baseline_and_shows_it(make_napari_viewer, tmp_path, qtbot) -> None:
    """The Review dock's button runs `ercnn-napari baseline` in a worker on the project napari opened."""
    from gui_helpers import open_plugin_dock

    from ercnn_napari.napari_plugin.index_baseline_layers import IndexBaselineAction

    viewer = make_napari_viewer()
    review = open_plugin_dock(viewer, "review")
    project = _project_with_two_years(tmp_path / "project")
    viewer.open(str(project.root), plugin="ercnn-napari")
    action = next(a for a in review.worker_actions if isinstance(a, IndexBaselineAction))
    assert review.layout().indexOf(action.button) >= 0
    before = len(viewer.layers)
    action.button.click()
    assert action.worker is not None
    qtbot.waitUntil(lambda: not action.running, timeout=240_000)
    qtbot.waitUntil(lambda: action.button.isEnabled(), timeout=10_000)
    added = [layer for layer in viewer.layers[before:] if layer.metadata.get("ercnn_role") == "index_baseline"]
    assert added, review.state_label.text()
    assert (project.root / "baselines" / "index_V1" / "baseline.json").is_file()
    assert sum(layer.visible for layer in added) == 1


def test_review_dock_baseline_failure_is_one_message(make_napari_viewer, worker_project, qtbot) -> None:
    """Ten months of observations cannot make two yearly medians: one sentence naming the file, no layer."""
    from gui_helpers import open_plugin_dock

    from ercnn_napari.napari_plugin.index_baseline_layers import IndexBaselineAction

    viewer = make_napari_viewer()
    review = open_plugin_dock(viewer, "review")
    viewer.open(str(worker_project), plugin="ercnn-napari")
    action = next(a for a in review.worker_actions if isinstance(a, IndexBaselineAction))
    before = len(viewer.layers)
    action.button.click()
    qtbot.waitUntil(lambda: action.button.isEnabled(), timeout=240_000)
    text = review.state_label.text()
    assert text.startswith("index baseline failed:") and ".tfrecords" in text and "Traceback" not in text
    assert len(viewer.layers) == before
