"""Max-over-windows aggregation and the authors' random window selection."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ercnn_napari.core.errors import InputDataError  # noqa: E402
from ercnn_napari.ml.training.aggregation import WindowSelection, max_over_windows, select_window_indices  # noqa: E402


def test_max_over_windows_values_and_tie_gradient() -> None:
    preds = tf.Variable(np.array([[[[0.2, 0.7]], [[0.9, 0.7]], [[0.1, 0.7]]]], dtype=np.float32))  # [1,3,1,2]
    with tf.GradientTape() as tape:
        agg = max_over_windows(preds)
        total = tf.reduce_sum(agg)
    np.testing.assert_allclose(agg.numpy(), [[[0.9, 0.7]]])
    grad = tape.gradient(total, preds).numpy()[0, :, 0]
    np.testing.assert_allclose(grad[:, 0], [0, 1, 0])                 # one winner takes the gradient
    np.testing.assert_allclose(grad[:, 1], [1 / 3, 1 / 3, 1 / 3])     # a three-way tie splits it


def test_max_over_windows_refuses_wrong_rank() -> None:
    with pytest.raises(ValueError, match=r"\[B, K, H, W\]"):
        max_over_windows(np.zeros((3, 4, 4), np.float32))


def test_authors_rule_on_a_full_tile() -> None:
    draws = [select_window_indices(540, rng=seed) for seed in range(300)]
    steps = np.concatenate([np.diff(d) for d in draws])
    assert all(len(d) == 10 and d[0] == 20 for d in draws)
    assert steps.min() == 45 and steps.max() == 55  # upper bound 56 is exclusive
    assert len(set(steps.tolist())) == 11
    assert max(d[-1] for d in draws) <= 20 + 9 * 55
    np.testing.assert_array_equal(select_window_indices(540, rng=7), select_window_indices(540, rng=7))
    assert not np.array_equal(select_window_indices(540, rng=7), select_window_indices(540, rng=8))


def test_configurable_rule() -> None:
    rule = WindowSelection(first=0, step_low=2, step_high=3, count=4)
    np.testing.assert_array_equal(select_window_indices(100, rng=1, selection=rule), [0, 2, 4, 6])
    assert rule.windows_needed == 7


@pytest.mark.parametrize("n_windows", [10, 11, 37, 200, 515])
def test_short_tiles_use_the_scaled_fallback(n_windows: int) -> None:
    for seed in range(50):
        indices = select_window_indices(n_windows, rng=seed)
        assert len(indices) == 10
        assert np.all(np.diff(indices) >= 1)
        assert indices[0] >= 0 and indices[-1] < n_windows


def test_too_few_windows_is_a_clear_error() -> None:
    with pytest.raises(InputDataError, match=r"tile_3_5.tfrecords: has 9 usable windows.*10 distinct"):
        select_window_indices(9, rng=0, path="tile_3_5.tfrecords")
