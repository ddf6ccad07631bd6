"""A small project whose change is known exactly: four tiles of a vegetated area, on two of them a
block turns into a bright roof in mid-2018 (NDVI drops, NDBI rises, SAR backscatter x8), with
speckle and residual clouds (bright frames). Labels on two training tiles, the answer key on all.
Used by the index-baseline and the held-out evaluation tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ercnn_napari.baseline.index_diff import seconds_of

UTM31 = "EPSG:32631"
START, END = seconds_of("2017-01-01"), seconds_of("2021-01-16")
CHANGE_AT = seconds_of("2018-06-01")
TILES = {(0, 0): (slice(4, 14), slice(6, 20)), (0, 1): None, (1, 0): (slice(10, 22), slice(3, 13)), (1, 1): None}


def series(block, seed: int) -> tuple[np.ndarray, np.ndarray]:
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


def truth(block) -> np.ndarray:
    mask = np.zeros((32, 32), np.float32)
    if block is not None:
        mask[block] = 1.0
    return mask



def make_known_project(root: Path) -> Path:
    """Write the project (stacked files through the project's TensorFlow writer) and return its root."""
    from ercnn_napari.core.geo import TileGrid
    from ercnn_napari.core.project import Project
    from ercnn_napari.core.splits import Split
    from ercnn_napari.ml.data.tfrecords import write_stacked

    project = Project.create(root, "Known", TileGrid(UTM31, 600000.0, 5610000.0, 10.0, 10.0, 2, 2),
                             period=("2017-01-01", "2021-01-16"), observations={"kind": "stacked", "path": "obs"})
    (root / "answer_key").mkdir()
    for k, (tile, block) in enumerate(TILES.items()):
        stamps, obs = series(block, seed=10 + k)
        write_stacked(root / "obs" / f"{tile[0]}_{tile[1]}.tfrecords", stamps, obs[..., :2], obs[..., 2:4],
                      obs[..., 4:])
        np.save(root / "answer_key" / f"{tile[0]}_{tile[1]}.npy", truth(block).astype(np.uint8))
    for tile in ((0, 0), (0, 1)):
        project.labels.write(tile, truth(TILES[tile]).astype(np.uint8))
    project.write_splits({"V1": Split("V1", [(0, 0), (0, 1)], [], [(1, 0), (1, 1)])})
    return root


def save_biased_tiny_model(path: Path, seed: int = 3) -> Path:
    """A tiny network whose head is biased towards "change", so its scores are not all zero.

    Imports TensorFlow: call it from TensorFlow test modules only (never from tests/gui).
    """
    import keras

    from ercnn_napari.ml.model.network import ModelConfig, build_model
    from ercnn_napari.ml.model.weights import save_model

    keras.utils.set_random_seed(seed)
    config = ModelConfig.tiny()
    model = build_model(config, seed=seed)
    head = model.get_layer("head_out")
    head.bias.assign(np.full(head.bias.shape, 0.3, np.float32))
    save_model(model, config, path, {"kind": "test"})
    return path
