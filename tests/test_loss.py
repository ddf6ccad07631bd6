"""The transfer loss against values worked out by hand on small arrays."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ercnn_napari.ml.loss import (  # noqa: E402
    tanimoto_complement_loss,
    tanimoto_complement_per_sample,
    tanimoto_complement_pooled,
)

S = 1e-4


def _with_garbage_border(inner: np.ndarray, value: float) -> np.ndarray:
    """Embed a 2x2 inner block in a 4x4 map whose 1-pixel border holds ``value``."""
    full = np.full((4, 4), value, dtype=np.float32)
    full[1:3, 1:3] = inner
    return full


def test_hand_computed_value_ignores_border() -> None:
    pred = _with_garbage_border(np.array([[0.5, 1.0], [0.0, 0.25]]), 0.9)
    label = _with_garbage_border(np.array([[1.0, 1.0], [0.0, 0.0]]), 0.0)
    # change class:     sum pl = 1.5, sum p^2 = 1.3125, sum l^2 = 2
    # complement class: sum pl = 1.75, sum p^2 = 1.8125, sum l^2 = 2
    t_change = (1.5 + S) / (1.3125 + 2.0 - 1.5 + S)
    t_complement = (1.75 + S) / (1.8125 + 2.0 - 1.75 + S)
    expected = 1.0 - (t_change + t_complement) / 2.0
    got = tanimoto_complement_loss(label[None], pred[None])
    assert float(got) == pytest.approx(expected, abs=1e-6)


def test_border_zero_uses_every_pixel() -> None:
    pred = np.array([[[1.0, 0.0], [0.0, 0.0]]], dtype=np.float32)
    label = np.array([[[1.0, 1.0], [0.0, 0.0]]], dtype=np.float32)
    # change: pl = 1, p^2 = 1, l^2 = 2 -> (1+s)/(2+s); complement: pl = 2, p^2 = 3, l^2 = 2 -> (2+s)/(3+s)
    expected = 1.0 - ((1 + S) / (2 + S) + (2 + S) / (3 + S)) / 2.0
    assert float(tanimoto_complement_loss(label, pred, border=0)) == pytest.approx(expected, abs=1e-6)


def test_batch_mean_of_per_sample_losses() -> None:
    pred = np.zeros((2, 4, 4), dtype=np.float32)
    label = np.zeros((2, 4, 4), dtype=np.float32)
    pred[0, 1:3, 1:3] = 1.0  # sample 0: everything predicted, nothing labelled (inner 2x2)
    # sample 0 change: pl = 0, p^2 = 4, l^2 = 0 -> s / (4 + s); complement: all zero vs all one -> s / (4 + s)
    loss0 = 1.0 - S / (4 + S)
    per_sample = tanimoto_complement_per_sample(label, pred).numpy()
    assert per_sample[0] == pytest.approx(loss0, abs=1e-6)
    assert per_sample[1] == pytest.approx(0.0, abs=1e-7)  # both empty: T = s/s = 1 for both classes
    assert float(tanimoto_complement_loss(label, pred)) == pytest.approx(loss0 / 2.0, abs=1e-6)


def test_perfect_prediction_has_zero_loss_and_wrong_one_is_worse() -> None:
    label = np.zeros((1, 32, 32), dtype=np.float32)
    label[0, 5:12, 7:20] = 1.0
    assert float(tanimoto_complement_loss(label, label)) == pytest.approx(0.0, abs=1e-7)
    assert float(tanimoto_complement_loss(label, 1.0 - label)) > 0.99


def test_gradient_is_finite_and_zero_on_border() -> None:
    pred = tf.Variable(np.full((1, 6, 6), 0.3, dtype=np.float32))
    label = np.zeros((1, 6, 6), dtype=np.float32)
    label[0, 2, 2] = 1.0
    with tf.GradientTape() as tape:
        loss = tanimoto_complement_loss(label, pred)
    grad = tape.gradient(loss, pred).numpy()
    assert np.isfinite(grad).all()
    assert np.all(grad[0, 0, :] == 0) and np.all(grad[0, :, -1] == 0)
    assert grad[0, 2, 2] < 0  # raising the prediction on a labelled change lowers the loss


def test_wrong_rank_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\[B, H, W\]"):
        tanimoto_complement_loss(np.zeros((4, 4)), np.zeros((4, 4)))


def test_pooled_loss_is_one_map_over_the_batch() -> None:
    rng = np.random.default_rng(5)
    pred = rng.uniform(size=(3, 32, 32)).astype(np.float32)
    label = (rng.uniform(size=(3, 32, 32)) > 0.9).astype(np.float32)
    label[1] = 0.0  # a sample without change: pooled, it does not dominate the loss
    p, t = pred[:, 1:-1, 1:-1].astype(np.float64), label[:, 1:-1, 1:-1].astype(np.float64)

    def tanimoto(a: np.ndarray, b: np.ndarray) -> float:
        both = (a * b).sum()
        return (both + 1e-4) / ((a * a).sum() + (b * b).sum() - both + 1e-4)

    expected = 1 - 0.5 * (tanimoto(p, t) + tanimoto(1 - p, 1 - t))
    assert float(tanimoto_complement_pooled(label, pred)) == pytest.approx(expected, rel=1e-5)
    single = float(tanimoto_complement_pooled(label[:1], pred[:1]))
    assert single == pytest.approx(float(tanimoto_complement_loss(label[:1], pred[:1])), rel=1e-6)
