"""The index-difference baseline on a synthetic project whose answer is known.

Four tiles of a vegetated area; on two of them a block turns into a bright roof in mid-2018 (NDVI
drops, NDBI rises, SAR backscatter x8). Clouds (bright frames) and speckle are added so a method
that used single dates instead of period medians would fail. The stacked files are written with
the project's TensorFlow writer and read back by the TF-free reader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ercnn_napari.baseline.index_diff import index_scores, seconds_of
from ercnn_napari.core.ranking import average_precision, best_f1_threshold, roc_auc

UTM31 = "EPSG:32631"
START, END = seconds_of("2017-01-01"), seconds_of("2021-01-16")
CHANGE_AT = seconds_of("2018-06-01")
TILES = {(0, 0): (slice(4, 14), slice(6, 20)), (0, 1): None, (1, 0): (slice(10, 22), slice(3, 13)), (1, 1): None}


def _series(block, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    stamps = np.arange(START - 20 * 86400, END, 4 * 86400.0)
    n = len(stamps)
    obs = np.empty((n, 32, 32, 17), np.float32)
    obs[..., :4] = np.array([0.08, 0.015, 0.07, 0.014]) * rng.gamma(4.0, 0.25, size=(n, 32, 32, 4))  # speckle
    veg = np.array([0.08, 0.06, 0.05, 0.03, 0.07, 0.2, 0.28, 0.32, 0.33, 0.1, 0.005, 0.18, 0.09])
    roof = np.array([0.16, 0.15, 0.16, 0.17, 0.18, 0.19, 0.2, 0.2, 0.21, 0.07, 0.006, 0.3, 0.26])
    obs[..., 4:] = veg + rng.normal(0, 0.01, size=(n, 32, 32, 13))
    if block is not None:
        after = stamps >= CHANGE_AT
        rows, cols = np.arange(32)[block[0]], np.arange(32)[block[1]]
        noise = rng.normal(0, 0.01, size=(int(after.sum()), len(rows), len(cols), 13))
        obs[np.ix_(after, rows, cols, np.arange(4, 17))] = roof + noise
        obs[np.ix_(after, rows, cols, np.arange(4))] *= 8.0
    clouds = rng.uniform(size=n) < 0.15
    obs[clouds, :, :, 4:] = 0.6                      # residual clouds: whole bright frames
    return stamps, np.maximum(obs, 0.0).astype(np.float32)


def _truth(block) -> np.ndarray:
    mask = np.zeros((32, 32), np.float32)
    if block is not None:
        mask[block] = 1.0
    return mask


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
    stamps, obs = _series(block, seed=1)
    scores = index_scores(stamps, obs, START, END)
    truth = _truth(block)
    for name in ("ndvi", "ndbi", "sar"):
        assert roc_auc(scores[name], truth) > 0.99, name
    quiet = index_scores(*_series(None, seed=2), START, END)
    assert quiet["ndvi"].max() < scores["ndvi"][block].min()


def test_index_scores_refuse_a_series_without_an_after_period() -> None:
    stamps, obs = _series(None, seed=3)
    keep = stamps < seconds_of("2019-06-01")
    with pytest.raises(ValueError, match="both periods"):
        index_scores(stamps[keep], obs[keep], START, END)


@pytest.fixture(scope="module")
def known_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ercnn_napari.core.geo import TileGrid
    from ercnn_napari.core.project import Project
    from ercnn_napari.core.splits import Split
    from ercnn_napari.ml.tfrecords import write_stacked

    root = tmp_path_factory.mktemp("known") / "site"
    project = Project.create(root, "Known", TileGrid(UTM31, 600000.0, 5610000.0, 10.0, 10.0, 2, 2),
                             period=("2017-01-01", "2021-01-16"), observations={"kind": "stacked", "path": "obs"})
    (root / "answer_key").mkdir()
    for k, (tile, block) in enumerate(TILES.items()):
        stamps, obs = _series(block, seed=10 + k)
        write_stacked(root / "obs" / f"{tile[0]}_{tile[1]}.tfrecords", stamps, obs[..., :2], obs[..., 2:4],
                      obs[..., 4:])
        np.save(root / "answer_key" / f"{tile[0]}_{tile[1]}.npy", _truth(block).astype(np.uint8))
    for tile in ((0, 0), (0, 1)):
        project.labels.write(tile, _truth(TILES[tile]).astype(np.uint8))
    project.write_splits({"V1": Split("V1", [(0, 0), (0, 1)], [], [(1, 0), (1, 1)])})
    return root


def test_stacked_reader_matches_the_tensorflow_reader(known_project: Path) -> None:
    from ercnn_napari.baseline.stacked_reader import read_stacked_numpy
    from ercnn_napari.ml.tfrecords import read_stacked

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
    assert np.array_equal(changed[1:-1, 1:-1], _truth(TILES[(1, 0)])[1:-1, 1:-1] > 0)
