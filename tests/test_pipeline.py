"""tf.data pipeline: padding at the end with -1, counts that travel with windows, batching."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from ercnn_napari.core.errors import InputDataError
from ercnn_napari.core.windowing import compute_windows
from ercnn_napari.ml.data import pipeline
from ercnn_napari.ml.data.tfrecords import write_stage3

DAY = 86400.0


def test_pad_window_pads_at_the_end_with_minus_one():
    window = tf.ones((5, 3, 3, 17))
    padded = pipeline.pad_window(window, 8).numpy()
    assert padded.shape == (8, 3, 3, 17)
    assert np.all(padded[:5] == 1.0) and np.all(padded[5:] == -1.0)
    assert np.array_equal(pipeline.pad_numpy(np.ones((5, 3, 3, 17), np.float32), 8), padded)
    with pytest.raises(tf.errors.InvalidArgumentError, match="more observations"):
        pipeline.pad_window(tf.ones((9, 3, 3, 17)), 8)


def test_stacked_windows_equal_numpy_slices_in_order():
    rng = np.random.default_rng(0)
    n = 70
    stamps = 1.5e9 + np.arange(n) * 3 * DAY
    series = rng.normal(size=(n, 2, 2, 17)).astype(np.float32)
    table = compute_windows(stamps)
    positions = np.array([7, 0, len(table) - 1])
    got = list(pipeline.stacked_windows(series, table, positions))
    for (count, window), row in zip(got, positions, strict=True):
        start, k = table.start_index[row], table.n_obs[row]
        assert int(count) == k
        expected = np.full((92, 2, 2, 17), -1.0, np.float32)
        expected[:k] = series[start:start + k]
        assert np.array_equal(window.numpy(), expected)


def test_batched_shapes_and_stage3_counts(tmp_path):
    rng = np.random.default_rng(1)
    counts = [3, 5, 2, 7, 4]
    path = tmp_path / "w.tfrecords"
    write_stage3(path, [rng.normal(size=(c, 2, 2, 17)).astype(np.float32) for c in counts])
    batches = list(pipeline.batched(pipeline.stage3_windows(path, time_steps=8), 2))
    assert [b[1].shape[0] for b in batches] == [2, 2, 1]
    assert batches[0][1].shape[1:] == (8, 2, 2, 17)
    assert np.concatenate([b[0].numpy() for b in batches]).tolist() == counts
    picked = list(pipeline.stage3_windows(path, positions=[1, 3], time_steps=8))
    assert [int(c) for c, _ in picked] == [5, 7]
    with pytest.raises(ValueError, match="increasing"):
        pipeline.stage3_windows(path, positions=[3, 1])


def test_window_longer_than_the_model_is_refused_up_front():
    stamps = 1.5e9 + np.arange(60) * 2 * DAY
    table = compute_windows(stamps)
    with pytest.raises(InputDataError, match="takes at most 12 time steps"):
        pipeline.stacked_windows(np.zeros((60, 1, 1, 17), np.float32), table, None, time_steps=12)
