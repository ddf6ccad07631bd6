"""The transfer loss: Tanimoto coefficient with complement, per sample on the inner 30x30 pixels.

Why this loss: change pixels are rare, so a plain cross-entropy is dominated by the no-change
class. The Tanimoto coefficient of (prediction, label) rewards overlap of the change class; adding
the coefficient of the complements (1-p, 1-l) keeps tiles without any change informative. The
authors (``transfer/training/train.py``, class ``TanimotoCompl``) compute it per sample on the
inner 30x30 pixels (the outermost pixel ring of a tile sees zero padding in every 3x3
convolution), add the smoothing 1e-4 to the DENOMINATOR ONLY, and average over the batch:

    T(p, l) = sum p*l / (sum p^2 + sum l^2 - sum p*l + s)
    loss    = 1 - (T(p, l) + T(1-p, 1-l)) / 2

Consequence, on purpose: on a tile without any change pixel T(p, l) = 0 whatever the prediction,
so that tile's loss never falls below 0.5 and only the complement term moves its predictions
(towards 0, with a gradient that fades as they approach it). A smoothing term in the numerator as
well (a common variant, which this project used before) makes such a tile's loss reach 0 only when
every pixel is ~0: a harsher objective that pulls the model towards "no change anywhere". That
variant is not kept: nothing here needs it.

Labels are used as given (float); the data pipeline turns label files into 0/1 (``> 0`` = change).
A negative label marks a pixel the analyst was unsure about: it is left out of every sum (its
weight is 0). Labels without such pixels give exactly the authors' loss.
"""

from __future__ import annotations

import tensorflow as tf

SMOOTH = 1e-4
BORDER = 1


def _tanimoto(pred: tf.Tensor, label: tf.Tensor, smooth: float) -> tf.Tensor:
    """Per-sample Tanimoto coefficient of two [B, H, W] maps, smoothing in the denominator only."""
    axes = [1, 2]
    both = tf.reduce_sum(pred * label, axis=axes)
    sum_sq = tf.reduce_sum(tf.square(pred), axis=axes) + tf.reduce_sum(tf.square(label), axis=axes)
    return both / (sum_sq - both + smooth)


def _inner(y_true: tf.Tensor, y_pred: tf.Tensor, border: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Cast the labels to the prediction dtype, drop a ``border``-pixel ring of both maps and zero
    the unsure pixels; returns (labels, predictions, 0/1 mask of known pixels)."""
    y_pred = tf.convert_to_tensor(y_pred)
    y_true = tf.cast(tf.convert_to_tensor(y_true), y_pred.dtype)
    if y_pred.shape.rank != 3 or y_true.shape.rank != 3:
        raise ValueError(f"expected [B, H, W] maps, got labels {y_true.shape} and predictions {y_pred.shape}")
    if border:
        y_true = y_true[:, border:-border, border:-border]
        y_pred = y_pred[:, border:-border, border:-border]
    return _drop_unsure(y_true, y_pred)


def tanimoto_complement_per_sample(
    y_true: tf.Tensor, y_pred: tf.Tensor, border: int = BORDER, smooth: float = SMOOTH
) -> tf.Tensor:
    """The loss of every sample, shape [B]: useful for per-tile reports and for tests."""
    y_true, y_pred, known = _inner(y_true, y_pred, border)
    coefficient = _tanimoto(y_pred, y_true, smooth)
    complement = _tanimoto((1.0 - y_pred) * known, (1.0 - y_true) * known, smooth)
    return 1.0 - 0.5 * (coefficient + complement)


def _drop_unsure(y_true: tf.Tensor, y_pred: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Zero both maps where the label is negative (unsure); returns the 0/1 mask of known pixels too."""
    known = tf.cast(y_true >= 0, y_pred.dtype)
    return y_true * known, y_pred * known, known


def tanimoto_complement_loss(
    y_true: tf.Tensor, y_pred: tf.Tensor, border: int = BORDER, smooth: float = SMOOTH
) -> tf.Tensor:
    """Scalar loss: the per-sample Tanimoto-with-complement loss averaged over the batch."""
    return tf.reduce_mean(tanimoto_complement_per_sample(y_true, y_pred, border=border, smooth=smooth))


def tanimoto_complement_pooled(y_true: tf.Tensor, y_pred: tf.Tensor, border: int = BORDER,
                               smooth: float = SMOOTH) -> tf.Tensor:
    """The same loss with the sums pooled over the whole batch: the authors' PRE-training loss.

    Pre-training (Zitzlsberger et al. 2021, ``Sentinel1_2/train/train.py``) reduced over the batch
    as one map, with the same denominator-only smoothing. With per-window synthetic labels most
    windows hold no change; per sample, such a window's change coefficient is 0 whatever the
    prediction, while pooled every pixel weighs the same.
    """
    y_true, y_pred, known = _inner(y_true, y_pred, border)
    flat_pred = tf.reshape(y_pred, [1, -1, 1])
    flat_true = tf.reshape(y_true, [1, -1, 1])
    flat_known = tf.reshape(known, [1, -1, 1])
    coefficient = _tanimoto(flat_pred, flat_true, smooth)
    complement = _tanimoto((1.0 - flat_pred) * flat_known, (1.0 - flat_true) * flat_known, smooth)
    return 1.0 - 0.5 * (coefficient[0] + complement[0])
