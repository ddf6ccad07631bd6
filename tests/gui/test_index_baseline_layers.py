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
