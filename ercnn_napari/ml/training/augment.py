"""The 16 augmentation variants of a training sample (4 rotations x horizontal flip x frozen columns).

The transfer set is small (120 training tiles in the paper), so each tile is shown 16 times per
epoch, once per code. The geometric part (rotation, flip) is applied identically to every window
and time step and to the label. The "frozen odd columns" part teaches the network that a pixel
whose observations never change must not be called a change: every odd x-column of every time
step is overwritten with the window's FIRST time step and the label is 0 there.

Code layout (``code`` in 0..15):

- ``code % 4``: rotation 0 = none, 1 = 90 deg clockwise, 2 = 90 deg counter-clockwise, 3 = 180 deg;
- ``(code // 4) % 2``: 1 = horizontal (left-right) flip, applied BEFORE the rotation;
- ``code // 8``: 1 = frozen odd columns, applied LAST, so the frozen stripes are columns of what
  the network sees (x = 1, 3, 5, ... of the output).

Padding: windows are padded at the end of the time axis with -1. A padded step (all values -1)
stays padded under the column mask; copying the first step into it would turn "no observation"
into a fake observation. Real observations that happen to contain -1 values are copied normally.

Works on tensors or numpy arrays, eagerly or inside ``tf.data`` (``code`` may be a tensor).
"""

from __future__ import annotations

import tensorflow as tf

from ercnn_napari.core.constants import PAD_VALUE

N_CODES = 16
ROTATIONS = ("none", "90 cw", "90 ccw", "180")


def describe_code(code: int) -> str:
    """Human name of an augmentation code, e.g. ``"flip + 90 cw + frozen columns"``."""
    if not 0 <= int(code) < N_CODES:
        raise ValueError(f"augmentation code must be in 0..{N_CODES - 1}, got {code}")
    parts = ["flip"] if (code // 4) % 2 else []
    parts.append(ROTATIONS[code % 4])
    if code // 8:
        parts.append("frozen columns")
    return " + ".join(parts)


def _rotate(image: tf.Tensor, rotation: int, h_axis: int) -> tf.Tensor:
    """Rotate the (h_axis, h_axis + 1) plane; ``h_axis`` is non-negative."""
    w_axis = h_axis + 1
    if rotation == 0:
        return image
    if rotation == 3:
        return tf.reverse(image, axis=[h_axis, w_axis])
    perm = list(range(image.shape.rank))
    perm[h_axis], perm[w_axis] = w_axis, h_axis
    transposed = tf.transpose(image, perm)
    # out[i, j] = in[n-1-j, i] (clockwise) is a transpose followed by a reversal of the columns
    return tf.reverse(transposed, axis=[w_axis if rotation == 1 else h_axis])


def _freeze_odd_columns(windows: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Replace odd columns of every non-padded step by the window's first step; label 0 there."""
    rank = windows.shape.rank
    t_axis, w_axis = rank - 4, rank - 2
    width = tf.shape(windows)[w_axis]
    odd = tf.math.equal(tf.range(width) % 2, 1)                      # [W]
    odd_windows = tf.reshape(odd, [width, 1])                        # broadcasts over [..., W, C]
    first_step = tf.gather(windows, [0], axis=t_axis)                # [..., 1, H, W, C]
    padded = tf.reduce_all(tf.equal(windows, PAD_VALUE), axis=[rank - 3, rank - 2, rank - 1])
    keep_step = tf.logical_not(padded)[..., tf.newaxis, tf.newaxis, tf.newaxis]
    frozen = tf.where(tf.logical_and(odd_windows, keep_step), first_step, windows)
    # the label's own columns: with a context halo (an even number of pixels: train --context) the
    # windows are wider than the label and their odd columns are the label's odd columns, shifted
    odd_label = tf.math.equal(tf.range(tf.shape(label)[1]) % 2, 1)
    new_label = tf.where(odd_label[tf.newaxis, :], tf.zeros_like(label), label)
    return frozen, new_label


def augment_static(windows: tf.Tensor, label: tf.Tensor, code: int) -> tuple[tf.Tensor, tf.Tensor]:
    """:func:`augment` for a Python int ``code`` (no graph branches)."""
    code = int(code)
    if not 0 <= code < N_CODES:
        raise ValueError(f"augmentation code must be in 0..{N_CODES - 1}, got {code}")
    windows = tf.convert_to_tensor(windows)
    label = tf.convert_to_tensor(label)
    if windows.shape.rank not in (4, 5) or label.shape.rank != 2:
        raise ValueError(
            f"expected windows [K, T, H, W, C] or [T, H, W, C] and label [H, W], "
            f"got {windows.shape} and {label.shape}"
        )
    h_axis = windows.shape.rank - 3
    if (code // 4) % 2:
        windows = tf.reverse(windows, axis=[h_axis + 1])
        label = tf.reverse(label, axis=[1])
    windows = _rotate(windows, code % 4, h_axis)
    label = _rotate(label, code % 4, 0)
    if code // 8:
        windows, label = _freeze_odd_columns(windows, label)
    return windows, label


def augment(windows: tf.Tensor, label: tf.Tensor, code: int | tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Apply augmentation ``code`` (0..15) to windows [K, T, H, W, C] (or [T, H, W, C]) and label [H, W].

    A Python int is applied directly; a tensor code (as in ``dataset.map``) selects one of the 16
    static variants with ``tf.switch_case``. Returns ``(windows, label)`` with the input dtypes.
    """
    if not tf.is_tensor(code):
        return augment_static(windows, label, int(code))
    windows = tf.convert_to_tensor(windows)
    label = tf.convert_to_tensor(label)
    tf.debugging.assert_less(code, N_CODES, message="augmentation code out of range")
    tf.debugging.assert_greater_equal(code, 0, message="augmentation code out of range")
    branches = [lambda c=c: augment_static(windows, label, c) for c in range(N_CODES)]
    return tf.switch_case(tf.cast(code, tf.int32), branches)
