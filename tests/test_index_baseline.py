"""The index-difference baseline on a synthetic project whose answer is known
(``known_change_project``): clouds (bright frames) and speckle are there so that a method using
single dates instead of period medians would fail. The stacked files are written with the
project's TensorFlow writer and read back by the TF-free reader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from known_change_project import END, START, TILES, UTM31, make_known_project, series
from known_change_project import truth as truth_mask

from ercnn_napari.baseline.index_diff import index_scores, seconds_of
from ercnn_napari.core.ranking import average_precision, best_f1_threshold, roc_auc


def test_ranking_scores_by_hand() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    truth = np.array([1, 0, 1, 0, 0])
    # positives ranked 1st and 3rd: 5 of 6 (pos, neg) pairs in order
    assert roc_auc(scores, truth) == pytest.approx(5 / 6)
    # AP: recall 1/2 at precision 1, recall 1 at precision 2/3
    assert average_precision(scores, truth) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    threshold, f1 = best_f1_threshold(scores, truth)
    assert f1 == pytest.approx(0.8) and 0.6 < threshold < 0.7      # cut below the 3rd score
    assert roc_auc(np.ones(4), np.array([1, 0, 1, 0])) == pytest.approx(0.5)   # ties: chance
    assert np.isnan(roc_auc(scores, np.zeros(5)))


def test_index_scores_find_the_known_change() -> None:
    block = TILES[(0, 0)]
    stamps, obs = series(block, seed=1)
    scores = index_scores(stamps, obs, START, END)
    truth = truth_mask(block)
    for name in ("ndvi", "ndbi", "sar"):
        assert roc_auc(scores[name], truth) > 0.99, name
    quiet = index_scores(*series(None, seed=2), START, END)
    assert quiet["ndvi"].max() < scores["ndvi"][block].min()


def test_index_scores_refuse_a_series_without_an_after_period() -> None:
    stamps, obs = series(None, seed=3)
    keep = stamps < seconds_of("2019-06-01")
    with pytest.raises(ValueError, match="both periods"):
        index_scores(stamps[keep], obs[keep], START, END)


@pytest.fixture(scope="module")
def known_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_known_project(tmp_path_factory.mktemp("known") / "site")


def test_stacked_reader_matches_the_tensorflow_reader(known_project: Path) -> None:
    from ercnn_napari.baseline.stacked_reader import read_stacked_numpy
    from ercnn_napari.ml.data.tfrecords import read_stacked

    path = known_project / "obs" / "1_0.tfrecords"
    stamps, obs = read_stacked_numpy(path)
    series = read_stacked(path)
    assert np.array_equal(stamps, series.timestamps) and np.array_equal(obs, series.observations)


def test_baseline_command_fits_on_training_labels_and_scores_held_out_tiles(known_project: Path) -> None:
    out = known_project / "baseline_out"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    code = ("import sys; from ercnn_napari.cli.main import main; rc = main(sys.argv[1:]); "
            "assert 'tensorflow' not in sys.modules, 'the baseline imported TensorFlow'; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, "baseline", str(known_project), "--out", str(out),
                             "--progress", "none"], capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((out / "baseline.json").read_text())
    assert info["fitted_on"] == ["0:0", "0:1"]
    held = info["held_out"]
    for name in ("ndvi", "ndbi", "sar"):
        assert held[name]["tiles"] == ["1:0", "1:1"]
        assert held[name]["inner"]["auc"] > 0.99
        assert held[name]["inner"]["at_fitted"]["f1"] > 0.95, (name, held[name]["inner"])
    import rasterio

    with rasterio.open(out / f"{info['best']}.tif") as src:
        mosaic = src.read(1)
        assert src.crs.to_string() == UTM31 and mosaic.shape == (64, 64)
        threshold = float(src.tags()["threshold"])
    changed = mosaic[32:, :32] >= threshold                       # tile 1:0, never seen when fitting
    assert np.array_equal(changed[1:-1, 1:-1], truth_mask(TILES[(1, 0)])[1:-1, 1:-1] > 0)


def test_before_after_row_of_a_training_run(known_project: Path) -> None:
    """The index row a training run writes into evaluation.json: fitted on the training labels,
    scored on a set's labelled tiles at the fitted cut; a project that cannot give it says why."""
    from ercnn_napari.baseline.run import before_after_rows, index_row_or_reason
    from ercnn_napari.core.project import Project

    project = Project.open(known_project)
    train = {t: truth_mask(TILES[t]) for t in ((0, 0), (0, 1))}
    held = {t: truth_mask(TILES[t]) for t in ((1, 0), (1, 1))}
    row = before_after_rows(project, train, {"test": held})
    assert row["index"] in ("ndvi", "ndbi", "sar") and row["train_f1"] > 0.95
    overall = row["sets"]["test"]["overall"]
    assert overall["f1"] > 0.95 and overall["tiles"] == 2
    assert row["sets"]["test"]["per_tile"]["1:1"]["fp"] == 0            # the quiet tile stays quiet
    project.set_observations({"kind": "stage3", "path": "obs"}, save=False)
    assert "stacked" in index_row_or_reason(project, train, {"test": held})["skipped"]
