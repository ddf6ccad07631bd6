"""Each of the 16 augmentation codes against an independent numpy construction."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from ercnn_napari.ml.training.augment import N_CODES, augment, describe_code  # noqa: E402

K, T, H, W, C = 2, 5, 4, 4, 3
N_VALID = (5, 3)  # window 0 has 5 observations, window 1 has 3 and 2 padded steps


def _sample() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    windows = rng.normal(size=(K, T, H, W, C)).astype(np.float32)
    for k, n in enumerate(N_VALID):
        windows[k, n:] = -1.0
    windows[0, 2, 0, 0, :] = -1.0  # a real observation with a nodata pixel: not a padded step
    label = rng.integers(0, 2, size=(H, W)).astype(np.uint8)
    return windows, label


def _oracle(windows: np.ndarray, label: np.ndarray, code: int) -> tuple[np.ndarray, np.ndarray]:
    """Built from np.flip/np.rot90 and explicit loops, independently of the TF code."""
    w, lab = windows.copy(), label.copy()
    if (code // 4) % 2:
        w, lab = np.flip(w, axis=3), np.flip(lab, axis=1)
    turns = {0: 0, 1: -1, 2: 1, 3: 2}[code % 4]  # np.rot90 turns counter-clockwise for k > 0
    w, lab = np.rot90(w, k=turns, axes=(2, 3)), np.rot90(lab, k=turns, axes=(0, 1))
    w, lab = w.copy(), lab.copy()
    if code // 8:
        for k, n in enumerate(N_VALID):
            for t in range(n):  # padded steps t >= n are left alone
                for x in range(1, W, 2):
                    w[k, t, :, x, :] = w[k, 0, :, x, :]
        lab[:, 1::2] = 0
    return w, lab


@pytest.mark.parametrize("code", range(N_CODES))
def test_code_matches_numpy_construction(code: int) -> None:
    windows, label = _sample()
    out_w, out_l = augment(windows, label, code)
    exp_w, exp_l = _oracle(windows, label, code)
    np.testing.assert_array_equal(out_w.numpy(), exp_w)
    np.testing.assert_array_equal(out_l.numpy(), exp_l)
    assert out_l.dtype == tf.uint8 and out_w.dtype == tf.float32
    # the same through a tensor code inside tf.data
    ds = tf.data.Dataset.from_tensors((windows, label, np.int32(code))).map(augment)
    (ds_w, ds_l), = list(ds)
    np.testing.assert_array_equal(ds_w.numpy(), exp_w)
    np.testing.assert_array_equal(ds_l.numpy(), exp_l)


def test_rotation_directions_by_hand() -> None:
    label = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    windows = np.zeros((1, 1, 2, 2, 1), np.float32)
    assert augment(windows, label, 1)[1].numpy().tolist() == [[3, 1], [4, 2]]  # 90 cw
    assert augment(windows, label, 2)[1].numpy().tolist() == [[2, 4], [1, 3]]  # 90 ccw
    assert augment(windows, label, 3)[1].numpy().tolist() == [[4, 3], [2, 1]]  # 180
    assert augment(windows, label, 4)[1].numpy().tolist() == [[2, 1], [4, 3]]  # flip


def test_frozen_columns_keep_padding_and_have_no_change() -> None:
    windows, label = _sample()
    out_w, out_l = (a.numpy() for a in augment(windows, label, 8))
    assert np.all(out_w[1, 3:] == -1.0)                        # padded steps stay padded
    assert np.all(out_l[:, 1::2] == 0) and np.array_equal(out_l[:, ::2], label[:, ::2])
    for k, n in enumerate(N_VALID):                            # odd columns never change in time
        assert np.all(out_w[k, :n, :, 1::2] == out_w[k, :1, :, 1::2])
    np.testing.assert_array_equal(out_w[:, :, :, ::2], windows[:, :, :, ::2])


def test_single_window_and_invalid_code() -> None:
    windows, label = _sample()
    one, _ = augment(windows[0], label, 9)
    np.testing.assert_array_equal(one.numpy(), _oracle(windows, label, 9)[0][0])
    with pytest.raises(ValueError, match="0..15"):
        augment(windows, label, 16)
    with pytest.raises(tf.errors.InvalidArgumentError):
        augment(windows, label, tf.constant(16))
    assert describe_code(13) == "flip + 90 cw + frozen columns"
