"""The transfer loss against values worked out by hand on small arrays (smoothing in the denominator only)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ercnn_napari.ml.training.loss import (  # noqa: E402
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
    t_change = 1.5 / (1.3125 + 2.0 - 1.5 + S)
    t_complement = 1.75 / (1.8125 + 2.0 - 1.75 + S)
    expected = 1.0 - (t_change + t_complement) / 2.0
    got = tanimoto_complement_loss(label[None], pred[None])
    assert float(got) == pytest.approx(expected, abs=1e-6)


def test_border_zero_uses_every_pixel() -> None:
    pred = np.array([[[1.0, 0.0], [0.0, 0.0]]], dtype=np.float32)
    label = np.array([[[1.0, 1.0], [0.0, 0.0]]], dtype=np.float32)
    # change: pl = 1, p^2 = 1, l^2 = 2 -> 1/(2+s); complement: pl = 2, p^2 = 3, l^2 = 2 -> 2/(3+s)
    expected = 1.0 - (1 / (2 + S) + 2 / (3 + S)) / 2.0
    assert float(tanimoto_complement_loss(label, pred, border=0)) == pytest.approx(expected, abs=1e-6)


def test_batch_mean_of_per_sample_losses() -> None:
    pred = np.zeros((2, 4, 4), dtype=np.float32)
    label = np.zeros((2, 4, 4), dtype=np.float32)
    pred[0, 1:3, 1:3] = 1.0  # sample 0: everything predicted, nothing labelled (inner 2x2)
    # sample 0 change: pl = 0 -> 0; complement: 1-p = 0 everywhere, 1-l = 1: pl = 0 -> 0. Loss 1.
    # sample 1 (all zero, no change): change coefficient 0 / s = 0; complement: pl = 4, p^2 = 4,
    # l^2 = 4 -> 4 / (4 + s). Loss 1 - 4/(4+s)/2, i.e. just above 0.5.
    loss1 = 1.0 - 0.5 * 4.0 / (4.0 + S)
    per_sample = tanimoto_complement_per_sample(label, pred).numpy()
    assert per_sample[0] == pytest.approx(1.0, abs=1e-7)
    assert per_sample[1] == pytest.approx(loss1, abs=1e-7)
    assert float(tanimoto_complement_loss(label, pred)) == pytest.approx((1.0 + loss1) / 2.0, abs=1e-6)


def test_perfect_prediction_has_zero_loss_and_wrong_one_is_worse() -> None:
    label = np.zeros((1, 32, 32), dtype=np.float32)
    label[0, 5:12, 7:20] = 1.0
    # T = n / (n + s) for each class: 7*13 = 91 change and 900 - 91 = 809 unchanged inner pixels
    expected = 1.0 - 0.5 * (91 / (91 + S) + 809 / (809 + S))
    assert float(tanimoto_complement_loss(label, label)) == pytest.approx(expected, abs=1e-7)  # float32 sums
    assert expected < 1e-6
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
        return both / ((a * a).sum() + (b * b).sum() - both + 1e-4)

    expected = 1 - 0.5 * (tanimoto(p, t) + tanimoto(1 - p, 1 - t))
    assert float(tanimoto_complement_pooled(label, pred)) == pytest.approx(expected, rel=1e-5)
    single = float(tanimoto_complement_pooled(label[:1], pred[:1]))
    assert single == pytest.approx(float(tanimoto_complement_loss(label[:1], pred[:1])), rel=1e-6)


def test_change_free_tile_never_below_one_half() -> None:
    """The authors' form: without change pixels T(p, l) = 0, so the loss is >= 0.5 for any p."""
    rng = np.random.default_rng(11)
    label = np.zeros((5, 32, 32), dtype=np.float32)
    pred = rng.uniform(size=(5, 32, 32)).astype(np.float32)
    pred[0] = 0.0  # the best a model can do on such a tile
    pred[1] = 1e-3
    losses = tanimoto_complement_per_sample(label, pred).numpy()
    assert np.all(losses >= 0.5 - 1e-7)
    # all-zero prediction, 900 inner pixels: complement = 900 / (900 + 900 - 900 + s)
    assert losses[0] == pytest.approx(1.0 - 0.5 * 900.0 / (900.0 + S), abs=1e-7)
    assert losses[0] < losses[1] < losses[2:].min()  # lower predictions are still better


def test_change_free_tile_gradient_pushes_down_only_through_the_complement() -> None:
    pred = tf.Variable(np.full((1, 6, 6), 0.2, dtype=np.float32))
    label = np.zeros((1, 6, 6), dtype=np.float32)
    with tf.GradientTape() as tape:
        loss = tanimoto_complement_loss(label, pred)
    grad = tape.gradient(loss, pred).numpy()[0, 1:-1, 1:-1]
    # complement only: q = 1 - p = 0.8 on 16 pixels, c = 1: T = 16q / (16q^2 + 16 - 16q + s);
    # dT/dq per pixel = [D - 16q(2q - 1)] / D^2 with D = 16q^2 + 16 - 16q + s; dloss/dp = +dT/dq / 2
    q, n = 0.8, 16.0
    d = n * q * q + n - n * q + S
    expected = 0.5 * (d - n * q * (2 * q - 1)) / d**2
    assert np.allclose(grad, expected, rtol=1e-4)
    assert np.all(grad > 0)


def test_pooled_change_free_batch_never_below_one_half() -> None:
    label = np.zeros((2, 8, 8), dtype=np.float32)
    pred = np.full((2, 8, 8), 0.01, dtype=np.float32)
    assert float(tanimoto_complement_pooled(label, pred)) >= 0.5
