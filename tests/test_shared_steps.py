"""Shared-step prediction equals the per-window path (published weights, every mask mode; tiny model via Predictor)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ercnn_napari.ml.data.pipeline import pad_numpy
from ercnn_napari.ml.data.tfrecords import write_stacked
from ercnn_napari.ml.inference import predict
from ercnn_napari.ml.model.network import ModelConfig, build_model
from ercnn_napari.ml.model.shared_steps import SharedStepModel, predict_series
from ercnn_napari.ml.model.weights import load_model

DAY = 86400.0


def series_with_gaps(n: int, size: int, seed: int) -> np.ndarray:
    """Sentinel-like values with the cases the masks care about."""
    rng = np.random.default_rng(seed)
    series = rng.uniform(0.0, 0.5, (n, size, size, 17)).astype(np.float32)
    series[5, 0, 0, 0] = 0.0       # "quirk": the top-left SAR value 0 skips step 5 for the whole tile
    series[9, 3, 4, :] = -1.0      # "pixel": one pixel without data at step 9
    series[12, 0, 0, :] = -1.0     # the top-left pixel without data at step 12
    return series


@pytest.mark.parametrize("mode", ["quirk", "step", "pixel"])
def test_published_weights_shared_equals_per_window(published_weights, mode):
    model, _ = load_model(published_weights, mask_mode=mode)
    series = series_with_gaps(48, 12, seed=1)
    starts, counts = np.array([0, 2, 5, 11]), np.array([40, 37, 43, 36])
    shared = predict_series([SharedStepModel(model)], series, starts, counts, batch_size=3)
    windows = np.stack([pad_numpy(series[s:s + c], 92) for s, c in zip(starts, counts, strict=True)])
    reference = model(windows, training=False).numpy()
    assert np.abs(shared - reference).max() < 1e-5
    # the masks matter here: without the quirk step the result is different
    if mode == "quirk":
        clean = series.copy()
        clean[5, 0, 0, 0] = 0.3
        other = predict_series([SharedStepModel(model)], clean, starts[:1], counts[:1])
        assert np.abs(other - shared[:1]).max() > 1e-4


def stacked_file(tmp_path, n: int = 70):
    """A stacked file of ``n`` dates over 6x6 pixels with series_with_gaps' values: (path, observations)."""
    rng = np.random.default_rng(5)
    stamps = 1.4832e9 + np.cumsum(rng.uniform(2.0, 3.4, n)) * DAY
    obs = series_with_gaps(n, 6, seed=6)
    path = tmp_path / "Liege_1_2.tfrecords"
    write_stacked(path, stamps, obs[..., :2], obs[..., 2:4], obs[..., 4:])
    return path, obs


def test_predictor_uses_shared_steps_for_stacked_files_and_agrees(tmp_path):
    config = ModelConfig(time_steps=92, sar_filters=2, opt_filters=3, head_filters=2)
    models = []
    for seed in (3, 4):
        keras.utils.set_random_seed(seed)
        models.append(build_model(config))
    path, _ = stacked_file(tmp_path)
    job = predict.file_job(path, stride=3)
    assert job.load_series is not None
    shared = predict.Predictor(models, "max", batch_size=4)
    per_window = predict.Predictor(models, "max", batch_size=4, shared_steps=False)
    got, n_got = shared.run(job)
    want, n_want = per_window.run(job)
    assert np.array_equal(n_got, n_want) and len(got) == len(job.table) > 3
    assert np.abs(got - want).max() < 1e-5
